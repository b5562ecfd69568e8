"""GRANDPA finality: rounds of prevotes and precommits, vectorised over voters.

One SimPy event per round. At the round start every online voter picks its vote target from its own
view with the default voting rules (at least ``before_best`` blocks behind its best block, at most 3/4 of
the unfinalized chain). The prevote-GHOST is the highest block that a supermajority
(``n - floor((n-1)/3)`` of *all* ``n`` validators) supports — votes for a block count for its ancestors,
an equivocator counts once per block. Timing is computed with order statistics over the latency matrix:
voter ``j`` can precommit once the threshold-th prevote has reached it (immediately if the prevotes are
unanimous, otherwise when all online prevotes arrived or the 4T timer fired), and finalizes once the
threshold-th precommit has reached it; a voter still finishing the previous round prevotes at the latest
2T after the new round starts. The round completes, and the GHOST block with all its ancestors is
finalized, when a supermajority of voters has finalized it. With fewer than the threshold online,
rounds fail and finality stalls while blocks continue; when voters return it catches up, 3/4 of the gap
per round.

Equivocation: a configured share of validators is byzantine; each round an online byzantine voter
equivocates with some probability (two different prevotes). Every equivocation is seen by honest voters
and reported as an offence with slash fraction ``min((3k/n)**2, 1)`` (k = offenders in the round).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy
from numba import njit

from ainur_sim.chain.blocktree import BlockTree
from ainur_sim.chain.faults import Availability
from ainur_sim.chain.network import Network
from ainur_sim.chain.production import BlockProduction
from ainur_sim.chain.sorting import insertion_sort_prefix
from ainur_sim.draw_ahead import DrawAhead
from ainur_sim.record import ColumnStore

#: Called as ``listener(finalized_ids, t)`` with the newly finalized block ids (oldest first).
FinalityListener = Callable[[np.ndarray, float], None]

ROUND_SCHEMA = {
    "round": "int64",
    "t_start": "float64",
    "t_complete": "float64",
    "voters": "int64",
    "ghost": "int64",
    "finalized_number": "int64",
    "newly_finalized": "int64",
    "equivocators": "int64",
    "stalled": "bool",
}

OFFENCE_SCHEMA = {"round": "int64", "t": "float64", "validator": "int64", "offenders": "int64",
                  "slash_fraction": "float64"}


def supermajority(n: int) -> int:
    """GRANDPA threshold: ``n - floor((n - 1) / 3)`` votes of ``n`` (finality-grandpa voter_set.rs)."""
    return n - (n - 1) // 3


def equivocation_slash_fraction(offenders: int, n: int) -> float:
    """Slash fraction for ``offenders`` equivocating in one round among ``n`` validators: min((3k/n)^2, 1)."""
    return min((3.0 * offenders / n) ** 2, 1.0)


def vote_target_heights(best: np.ndarray, base: int, before_best: int) -> np.ndarray:
    """Default voting rules: target <= best - before_best and <= base + floor((3(best - base) + 2)/4), >= base."""
    best = np.asarray(best, dtype=np.int64)
    rule1 = best - before_best
    rule2 = base + (3 * (best - base) + 2) // 4
    return np.maximum(np.minimum(rule1, rule2), base)


def ghost(tree: BlockTree, votes: np.ndarray, threshold: int, base: int) -> int:
    """Highest block supported by >= ``threshold`` voters; ``votes`` is (n_voters, 2): each voter's vote
    and its second vote (the same block if it did not equivocate). -1 if even ``base`` lacks support."""
    if (votes[:, 0] == votes[:, 1]).all():  # no equivocation: one vote per voter
        single, mult = np.unique(votes[:, 0], return_counts=True)
        pairs = np.column_stack([single, single])
    else:
        pairs, mult = np.unique(votes, axis=0, return_counts=True)
    parent = tree.store.cols["parent_id"]
    number = tree.store.cols["number"]
    base_number = number[base]
    support: dict[int, int] = {}
    for (a, b), m in zip(pairs, mult, strict=True):
        seen: set[int] = set()
        for x in (int(a), int(b)):
            while x >= 0 and number[x] >= base_number and x not in seen:
                seen.add(x)
                x = int(parent[x])
        for x in seen:
            support[x] = support.get(x, 0) + int(m)
    best, best_num = -1, -1
    for blk, c in support.items():
        if c >= threshold and number[blk] > best_num:
            best, best_num = blk, int(number[blk])
    return best


def _kth_smallest(x: np.ndarray, k: int, axis: int = 0) -> np.ndarray:
    """k-th smallest (1-based) along ``axis``."""
    return np.partition(x, k - 1, axis=axis).take(k - 1, axis=axis)


@njit(cache=True)
def _round_votes(heads: np.ndarray, equivocating: np.ndarray, parent: np.ndarray, number: np.ndarray,
                 base: int, before_best: int, threshold: int, need_reach: bool) -> tuple[np.ndarray, int, bool]:
    """Vote targets, prevote-GHOST and unanimity of one round, by walking the block tree (ids, heights).

    ``heads``: each voter's best block; a head off the chain of ``base`` (the last finalized block) votes
    ``base``. Targets follow :func:`vote_target_heights`; an equivocating voter's second prevote is its
    target's parent (same chain, so it only adds support to blocks the first vote already supports — the
    support of one voter is always one chain, and two blocks at one height can never both reach a
    supermajority, which makes the GHOST unique). Returns (targets, GHOST block or -1, whether every target
    descends from the GHOST). Same results as :meth:`Grandpa._targets` + :func:`ghost` (kept as the
    readable reference and for tests).

    With ``need_reach``, first checks that at least ``threshold`` voters' best blocks allow a target above
    ``base`` (:func:`vote_target_heights` > base, heads taken as they are); if not, returns GHOST -2 at
    once (nothing new can be finalized).
    """
    nv = heads.shape[0]
    base_num = number[base]
    if need_reach:
        can = 0
        for i in range(nv):
            best = number[heads[i]]
            if best - before_best > base_num and (3 * (best - base_num) + 2) // 4 > 0:
                can += 1
        if can < threshold:
            return np.empty(0, np.int64), -2, False
    targets = np.empty(nv, np.int64)
    hi = base
    for i in range(nv):
        h = heads[i]
        x = h
        while number[x] > base_num:
            x = parent[x]
        if x != base:
            h = base
        best = number[h]
        height = min(best - before_best, base_num + (3 * (best - base_num) + 2) // 4)
        if height < base_num:
            height = base_num
        x = h
        while number[x] > height:
            x = parent[x]
        targets[i] = x
        if x > hi:
            hi = x
    # support per block id in [base, hi]: every descendant of base has a larger id than base
    support = np.zeros(hi - base + 1, np.int64)
    stamp = np.zeros(hi - base + 1, np.int64)
    for i in range(nv):
        x = targets[i]
        while x >= 0 and number[x] >= base_num and stamp[x - base] != i + 1:
            stamp[x - base] = i + 1
            support[x - base] += 1
            x = parent[x]
        if equivocating[i]:
            x = parent[targets[i]]
            if x < 0:
                x = targets[i]
            while x >= 0 and number[x] >= base_num and stamp[x - base] != i + 1:
                stamp[x - base] = i + 1
                support[x - base] += 1
                x = parent[x]
    g = -1
    g_num = -1
    for k in range(hi - base + 1):
        if support[k] >= threshold and number[base + k] > g_num:
            g = base + k
            g_num = number[g]
    unanimous = True
    if g >= 0:
        for i in range(nv):
            x = targets[i]
            while number[x] > g_num:
                x = parent[x]
            if x != g:
                unanimous = False
                break
    return targets, g, unanimous


@njit(cache=True)
def _median3(a: float, b: float, c: float) -> float:
    """The median of three numbers."""
    if a < b:
        return b if b < c else max(a, c)
    return a if a < c else max(b, c)


@njit(cache=True)
def _kth_of_column(m: np.ndarray, j: int, k: int, buf: np.ndarray) -> float:
    """k-th smallest (1-based) of column ``j`` of ``m`` (quickselect; ``buf``: scratch, ``m.shape[0]`` long).

    An order statistic is a value of the column, so any exact selection gives the same number."""
    n = m.shape[0]
    for i in range(n):
        buf[i] = m[i, j]
    lo = 0
    hi = n - 1
    k0 = k - 1
    while hi > lo:
        mid = (lo + hi) // 2  # median of three as pivot
        pivot = _median3(buf[lo], buf[mid], buf[hi])
        i = lo
        jj = hi
        while i <= jj:
            while buf[i] < pivot:
                i += 1
            while buf[jj] > pivot:
                jj -= 1
            if i <= jj:
                tmp = buf[i]
                buf[i] = buf[jj]
                buf[jj] = tmp
                i += 1
                jj -= 1
        if k0 <= jj:
            hi = jj
        elif k0 >= i:
            lo = i
        else:
            return buf[k0]
    return buf[k0]


@njit(cache=True)
def _kth_finite(values: np.ndarray, k: int) -> float:
    """k-th smallest (1-based) of the finite ``values``; ``inf`` if fewer than ``k`` are finite."""
    buf = np.empty((values.shape[0], 1))
    m = 0
    for v in values:
        if np.isfinite(v):
            buf[m, 0] = v
            m += 1
    if m < k:
        return np.inf
    return _kth_of_column(buf[:m], 0, k, np.empty(m))


def selection_network(n: int, k: int) -> np.ndarray:
    """Comparators ``(a, b)``, ``a < b``, that leave the k-th smallest (1-based) of ``n`` values at position
    ``k − 1`` and the largest at ``n − 1`` when each puts the smaller value at ``a`` (shape (m, 2), int64).

    Batcher's odd–even merge sort on the next power of two ≥ ``n``, keeping only comparators within the
    first ``n`` positions (the others would only touch padding of +inf, which never moves) that can still
    affect one of the two positions. With no NaN the result is the exact order statistic, as a selection.
    """
    size = 1
    while size < n:
        size *= 2
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < size:
        step = p
        while step >= 1:
            for j in range(step % p, size - step, 2 * step):
                for i in range(min(step - 1, size - j - step - 1) + 1):
                    a, b = i + j, i + j + step
                    if a // (2 * p) == b // (2 * p) and b < n:
                        pairs.append((a, b))
            step //= 2
        p *= 2
    wanted = {k - 1, n - 1}
    kept: list[tuple[int, int]] = []
    for a, b in reversed(pairs):  # backwards: a comparator matters if it writes a position that matters
        if a in wanted or b in wanted:
            kept.append((a, b))
            wanted.update((a, b))
    return np.array(kept[::-1], dtype=np.int64).reshape(-1, 2)


@njit(cache=True)
def _kth_and_max(arr: np.ndarray, k: int, net: np.ndarray, buf: np.ndarray, kth: np.ndarray,
                 largest: np.ndarray) -> None:
    """Per column ``j`` of ``arr``: ``kth[j]`` = its k-th smallest (1-based), ``largest[j]`` = its maximum.

    Without NaN the comparators ``net`` (:func:`selection_network` for ``arr.shape[0]`` rows and ``k``)
    sort the columns in place enough for both — branch-free and vectorised across columns, where a
    quickselect per column mispredicts on fresh random data; an order statistic is a value of the column,
    so the result is the same number. With a NaN, quickselect and a comparison scan (as before; ``arr``
    is left as it is).
    """
    nv, no = arr.shape
    has_nan = False
    for i in range(nv):
        for j in range(no):
            if arr[i, j] != arr[i, j]:
                has_nan = True
    if not has_nan:
        for c in range(net.shape[0]):
            a = net[c, 0]
            b = net[c, 1]
            for j in range(no):
                x = arr[a, j]
                y = arr[b, j]
                arr[a, j] = min(x, y)
                arr[b, j] = max(x, y)
        for j in range(no):
            kth[j] = arr[k - 1, j]
            largest[j] = arr[nv - 1, j]
        return
    for j in range(no):
        kth[j] = _kth_of_column(arr, j, k, buf)
        last = arr[0, j]
        for i in range(1, nv):
            if arr[i, j] > last:
                last = arr[i, j]
        largest[j] = last


_BUCKETS = 256  # value buckets of the column-by-column order statistics (:func:`_kth_and_max_of`)
#: voters from which the round timing takes order statistics column by column (:func:`_kth_and_max_of`) rather
#: than with a comparator network over the whole matrix: the network's O(n log² n) comparators per column win
#: for small n, the bucketed selection's O(n) for large n (a round with min(n, 100) observers, measured: equal at 50
#: voters, 0.30 vs 0.35 ms at 100, 1.7 vs 3.8 ms at 1,000)
COLUMN_MODE_MIN_VOTERS = 100


@njit(cache=True)
def _kth_and_max_of(col: np.ndarray, k: int, cnt: np.ndarray, cand: np.ndarray) -> tuple[float, float]:
    """(k-th smallest (1-based), largest) of the values ``col`` — the numbers :func:`_kth_and_max` gives for a
    column (``cnt``: ``_BUCKETS`` counts, ``cand``: scratch as long as ``col``; ``col`` is reordered only
    when it holds a NaN).

    Finite values: ``floor((v − min) · B / (max − min))`` is non-decreasing in ``v``, so counting values
    per bucket finds the bucket holding the k-th smallest, and only that bucket's values are sorted — three
    branch-free passes instead of a sort. Infinities: a sort. A NaN: quickselect and a comparison scan, as
    :func:`_kth_and_max` does for a matrix with a NaN.
    """
    n = col.shape[0]
    lo = col[0]
    hi = col[0]
    finite = True
    for i in range(n):
        v = col[i]
        if not abs(v) < np.inf:
            finite = False
        lo = min(lo, v)
        hi = max(hi, v)
    if not finite:
        for i in range(n):
            if col[i] != col[i]:
                last = col[0]
                for r in range(1, n):
                    if col[r] > last:
                        last = col[r]
                return _kth_of_column(col.reshape(n, 1), 0, k, cand), last
        srt = np.sort(col)
        return srt[k - 1], srt[n - 1]
    span = hi - lo
    if not span > 0:
        return lo, hi
    nb = cnt.shape[0]
    scale = nb / span
    if not scale < np.inf:
        srt = np.sort(col)
        return srt[k - 1], hi
    cnt[:] = 0
    for i in range(n):
        cnt[min(int((col[i] - lo) * scale), nb - 1)] += 1
    below = 0
    b = 0
    while below + cnt[b] < k:
        below += cnt[b]
        b += 1
    m = 0
    for i in range(n):
        v = col[i]
        if min(int((v - lo) * scale), nb - 1) == b:
            cand[m] = v
            m += 1
    r = k - below - 1  # rank (0-based) of the answer among the bucket's values
    if m > 64:
        return np.sort(cand[:m])[r], hi
    insertion_sort_prefix(cand, m)
    return cand[r], hi


@njit(cache=True)
def _arrivals_kth_and_max(send: np.ndarray, lat: np.ndarray, noise: np.ndarray, phase: int, mu: float,
                          sigma: float, k: int, net: np.ndarray, by_columns: bool, kth: np.ndarray,
                          largest: np.ndarray, jitter_given: bool) -> None:
    """Per observer ``j``: the k-th smallest and the largest arrival time of the votes, where voter ``i``'s
    vote sent at ``send[i]`` arrives at ``send[i] + lat[i, j] · exp(mu + sigma · noise[phase, i, j])`` (s).
    ``jitter_given``: ``noise`` holds the factors ``exp(mu + sigma · z)`` already (:func:`jitter_factors`).

    ``by_columns``: one observer's column at a time (:func:`_kth_and_max_of`), never the whole matrix;
    else the matrix and the comparator network ``net`` (:func:`_kth_and_max`). Same numbers either way.
    """
    nv, no = lat.shape
    if by_columns:
        col = np.empty(nv)
        cand = np.empty(nv)
        cnt = np.empty(_BUCKETS, np.int64)
        for j in range(no):
            for i in range(nv):
                f = noise[phase, i, j] if jitter_given else math.exp(mu + sigma * noise[phase, i, j])
                col[i] = send[i] + lat[i, j] * f
            kth[j], largest[j] = _kth_and_max_of(col, k, cnt, cand)
        return
    arr = np.empty((nv, no))
    for i in range(nv):
        for j in range(no):
            f = noise[phase, i, j] if jitter_given else math.exp(mu + sigma * noise[phase, i, j])
            arr[i, j] = send[i] + lat[i, j] * f
    _kth_and_max(arr, k, net, np.empty(nv), kth, largest)


@njit(cache=True)
def jitter_factors(z: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """``exp(mu + sigma · z)`` elementwise, as a new flat array in ``z``'s C order: the factors
    :func:`_arrivals_kth_and_max` computes from the draws, the same expression compiled the same way, so the
    same doubles (drawn ahead, they are computed in the child)."""
    flat = z.reshape(-1)
    out = np.empty(flat.shape[0])
    for i in range(flat.shape[0]):
        out[i] = math.exp(mu + sigma * flat[i])
    return out


@njit(cache=True)
def _round_timing(t: float, prev_done: np.ndarray, lat: np.ndarray, noise: np.ndarray, mu: float, sigma: float,
                  pick: np.ndarray, obs_pos: np.ndarray, unanimous: bool, threshold: int, T: float,
                  processing: float, rank: int, net: np.ndarray, by_columns: bool,
                  jitter_given: bool = False) -> tuple[np.ndarray, float]:
    """Order-statistic timing of a round that finalizes (all times in s).

    Message jitter is lognormal: ``jitter = exp(mu + sigma · noise)`` with ``noise`` standard normal draws
    (shape (2, voters, observers)) — what ``Generator.lognormal(mu, sigma)`` computes from the same draws,
    with the same C library ``exp``, done here instead of in a separate array.
    Voter ``i`` (rows) prevotes at ``max(t, min(prev_done[i], t + 2T)) + processing``; its prevote reaches
    observer ``j`` (columns) after ``lat[i, j] * jitter[0, i, j]``. Observer ``j`` precommits
    ``processing`` after the threshold-th prevote (unanimous) or after the later of that and
    ``min(last prevote, t + 4T)``. Non-observers precommit when observer ``pick[i]`` does; observer ``j``
    is voter ``obs_pos[j]``. Observer ``j`` is done ``processing`` after the threshold-th precommit
    (delays ``lat * jitter[1]``). Returns (done time per observer, round completion = the ``rank``-th
    smallest done time, 0-based). Same arithmetic, in the same order, as the numpy formulation it replaced.
    ``net``/``by_columns``: how the order statistics are taken (:func:`_arrivals_kth_and_max`).
    ``jitter_given``: ``noise`` holds the jitter factors themselves (:func:`jitter_factors` of the draws).
    """
    nv, no = lat.shape
    kth = np.empty(no)
    last = np.empty(no)
    t_cap = t + 2 * T
    prevote = np.empty(nv)
    for i in range(nv):
        prevote[i] = max(t, min(prev_done[i], t_cap)) + processing
    _arrivals_kth_and_max(prevote, lat, noise, 0, mu, sigma, threshold, net, by_columns, kth, last,
                          jitter_given)
    precommit_obs = np.empty(no)
    t_wait = t + 4 * T
    for j in range(no):
        if unanimous:
            precommit_obs[j] = kth[j] + processing
        else:
            precommit_obs[j] = max(kth[j], min(last[j], t_wait)) + processing
    precommit = np.empty(nv)
    for i in range(nv):
        precommit[i] = precommit_obs[pick[i]]
    for j in range(no):
        precommit[obs_pos[j]] = precommit_obs[j]
    _arrivals_kth_and_max(precommit, lat, noise, 1, mu, sigma, threshold, net, by_columns, kth, last,
                          jitter_given)
    done = np.empty(no)
    for j in range(no):
        done[j] = kth[j] + processing
    return done, np.sort(done)[rank]


class Grandpa:
    """The finality gadget of one run."""

    def __init__(
        self,
        env: simpy.Environment,
        *,
        production: BlockProduction,
        tree: BlockTree,
        network: Network,
        availability: Availability,
        gossip_duration_s: float,
        before_best: int,
        vote_processing_s: float,
        byzantine: np.ndarray,
        equivocation_prob: float,
        timing_observers: int,
        rng: np.random.Generator,
        draw_ahead: bool = False,
    ) -> None:
        """``draw_ahead``: draw the rounds' vote jitter ahead in a forked child process
        (:meth:`_draw_ahead`; the same draws)."""
        self.env = env
        self.production = production
        self.tree = tree
        self.network = network
        self.availability = availability
        self.T = float(gossip_duration_s)
        self.before_best = int(before_best)
        self.processing = float(vote_processing_s)
        self.byzantine = np.zeros(network.n, dtype=bool)
        self.byzantine[byzantine] = True
        self.equivocation_prob = float(equivocation_prob)
        self.rng = rng
        self.n = network.n
        self.threshold = supermajority(self.n)
        k = min(int(timing_observers), self.n)
        self.observers = np.arange(self.n) if k == self.n else np.sort(rng.choice(self.n, k, replace=False))
        self.finalized = 0
        self.listeners: list[FinalityListener] = []
        self.rounds = ColumnStore(ROUND_SCHEMA, 4096)
        self.offences = ColumnStore(OFFENCE_SCHEMA, 64)
        self._done_prev = np.zeros(self.n)  # when each voter completed the previous round
        self._round_s = 2 * float(np.median(network.gossip_s)) + 2 * self.processing  # last round's length
        self._wake: simpy.Event | None = None  # set while idle: fired when a new block reaches a supermajority
        self._none = np.zeros(0, dtype=np.int64)
        self._everyone = np.arange(self.n)
        self._no_equivocation = np.zeros(self.n, dtype=bool)
        self._rank: dict[tuple[int, int], int] = {}  # (observers, voters) -> rank of the completion time
        self._networks: dict[int, np.ndarray] = {}  # voters -> selection_network(voters, threshold)
        self._noise: np.ndarray | None = None  # the last round's jitter draws (dead once the round is timed)
        # vote delays between all voters and the observers (the common case: everyone online)
        self._lat_all = np.ascontiguousarray(network.gossip_s[:, self.observers], dtype=np.float64)
        production.block_listeners.append(self._on_block)
        honest = self.equivocation_prob == 0
        self.ahead = self._draw_ahead() if draw_ahead and honest and network.message_jitter_sigma > 0 else None
        self.process = env.process(self._run())

    def _draw_ahead(self) -> DrawAhead:
        """A child drawing each timed round's draws as :meth:`play_round` makes them when every validator
        votes and none equivocates: the ``2 × n × observers`` jitter normals (sent as their jitter factors,
        :func:`jitter_factors`: the child's core computes the exponentials), then the ``n`` precommit picks.
        A round with fewer voters ends drawing ahead (the run draws itself from there on)."""
        n, k = self.n, int(self.observers.size)
        s = self.network.message_jitter_sigma
        mu, sigma = -0.5 * s * s, float(s)

        def draw_round(rng: np.random.Generator, _i: int) -> tuple[tuple[float, ...], list[np.ndarray]]:
            z = rng.standard_normal((2, n, k))
            return (float(n), float(k)), [jitter_factors(z, mu, sigma), rng.integers(0, k, size=n, dtype=np.int64)]

        return DrawAhead(self.rng, draw_round, [np.float64, np.int64], 2, 8 * (2 * n * k + n) + 128)

    # --- one round -------------------------------------------------------------------------------------
    def _vote_noise(self, shape: tuple[int, ...]) -> tuple[np.ndarray, float, float]:
        """(standard normal draws, mu, sigma) of the votes' lognormal jitter ``exp(mu + sigma · z)`` (mean 1):
        the draws ``Generator.lognormal(mu, sigma, shape)`` makes; none when sigma is 0 (zeros: jitter 1)."""
        s = self.network.message_jitter_sigma
        if s > 0:  # drawn into the last round's buffer when the shape is the same (the same C-order fill)
            z = self._noise
            if z is None or z.shape != shape:
                z = self._noise = np.empty(shape)
            self.rng.standard_normal(out=z)
        else:
            z = np.zeros(shape)
        return z, -0.5 * s * s, float(s)

    def _targets(self, voters: np.ndarray) -> np.ndarray:
        """Each voter's vote target from its own best block (a voter off the finalized chain votes the base)."""
        tree = self.tree
        heads = self.production.head[voters].copy()
        heads[~tree.descends_from(heads, self.finalized)] = self.finalized
        base_number = int(tree.store.cols["number"][self.finalized])
        heights = vote_target_heights(tree.store.cols["number"][heads], base_number, self.before_best)
        cols = tree.store.cols
        out = heads
        up = cols["number"][out] > heights
        while up.any():
            out[up] = cols["parent_id"][out[up]]
            up[up] = cols["number"][out[up]] > heights[up]
        return out

    def play_round(self, t: float) -> tuple[float, int, np.ndarray, int]:
        """Play a round starting at ``t``.

        Returns (completion time, GHOST block, equivocating validators, voters online); the GHOST is -1
        and the time ``inf`` when the round cannot complete (fewer than the threshold online).

        The random draws are made in a fixed order (equivocations, the 2 × voters × observers jitter,
        then the observers whose precommit time each non-observer takes); the tree walks and order
        statistics run in :func:`_round_votes` and :func:`_round_timing`.
        """
        avail = self.availability  # (without any outage interval everyone is online)
        voters = np.flatnonzero(avail.online(t)) if avail.validator.size else self._everyone
        connectivity = self.production.connectivity
        if connectivity is not None and voters.size:  # votes only travel within a connected component
            label = connectivity.connected(t)[voters]
            voters = voters[label == np.bincount(label).argmax()]
        none = self._none
        nv = int(voters.size)
        if nv < self.threshold:
            return np.inf, -1, none, nv
        production = self.production
        production.update_views(t)
        cols = self.tree.store.cols
        number = cols["number"]
        heads = production.head[voters] if nv < self.n else production.head
        honest = self.equivocation_prob == 0
        if honest:
            equivocating = self._no_equivocation if nv == self.n else np.zeros(nv, dtype=bool)
        else:
            equivocating = self.byzantine[voters] & (self.rng.random(nv) < self.equivocation_prob)
        # without equivocations a round that cannot reach above the base is skipped (-2)
        targets, g, unanimous = _round_votes(heads, equivocating, cols["parent_id"], number, self.finalized,
                                             self.before_best, self.threshold, honest)
        if g == -2:
            return t + self._round_s, self.finalized, none, nv  # nothing new can be finalized
        offenders = none if honest or not equivocating.any() else voters[equivocating]
        if g < 0:
            return np.inf, -1, offenders, nv
        if g == self.finalized:  # nothing new to finalize: the round's timing does not matter
            return t + self._round_s, g, offenders, nv

        if nv == self.n:
            obs = self.observers
            lat = self._lat_all
        else:
            obs = np.intersect1d(self.observers, voters)
            if obs.size == 0:
                obs = voters[: min(nv, 16)]
            lat = self.network.gossip_s[np.ix_(voters, obs)]
        if connectivity is not None:
            lat = connectivity.vote_delay_matrix(t, voters, obs, lat)
        drawn = self.ahead.take((float(nv), float(obs.size))) if self.ahead is not None else None
        if drawn is None:
            noise, mu, sigma = self._vote_noise((2, *lat.shape))
            # rng.choice(precommit_obs, size=nv) draws exactly these indices (numpy: integers(0, k, size))
            pick = self.rng.integers(0, obs.size, size=nv, dtype=np.int64)
        else:  # (the jitter factors themselves)
            noise, mu, sigma, pick = drawn[0].reshape(2, nv, obs.size), 0.0, 0.0, drawn[1]
        obs_pos = obs if nv == self.n else np.searchsorted(voters, obs)
        key = (int(obs.size), nv)
        rank = self._rank.get(key)
        if rank is None:  # np.quantile(done, threshold / nv, method="inverted_cdf") is this order statistic
            rank = int(np.quantile(np.arange(obs.size, dtype=np.float64), self.threshold / nv,
                                   method="inverted_cdf"))
            self._rank[key] = rank
        prev = self._done_prev if nv == self.n else self._done_prev[voters]
        by_columns = nv >= COLUMN_MODE_MIN_VOTERS
        net = self._networks.get(nv)
        if net is None:
            net = self._networks[nv] = self._none.reshape(0, 2) if by_columns else selection_network(nv,
                                                                                                      self.threshold)
        done_obs, t_complete = _round_timing(float(t), prev, np.ascontiguousarray(lat, dtype=np.float64),
                                             noise, mu, sigma, pick, obs_pos, bool(unanimous), self.threshold,
                                             self.T, self.processing, rank, net, by_columns, drawn is not None)
        t_complete = float(t_complete)
        self._done_prev[:] = t_complete
        self._done_prev[obs] = done_obs
        self._round_s = t_complete - t
        return t_complete, g, offenders, nv

    # --- finalization ----------------------------------------------------------------------------------
    def finalize(self, block: int, t: float) -> np.ndarray:
        """Finalize ``block`` (and its ancestors) at ``t``; tell block production and the listeners."""
        ids = self.tree.mark_finalized(block, t)
        if ids.size:
            self.finalized = int(block)
            self.production.on_finalized(int(block))
            for listener in self.listeners:
                listener(ids, t)
        return ids

    def _report(self, r: int, t: float, offenders: np.ndarray) -> None:
        frac = equivocation_slash_fraction(offenders.size, self.n)
        self.offences.extend(offenders.size, round=r, t=t, validator=offenders, offenders=offenders.size,
                             slash_fraction=frac)

    def _on_block(self, block: int, arrivals: np.ndarray) -> None:
        """A block was authored: if idle, wake up once it has reached a supermajority of validators."""
        if self._wake is None or self._wake.triggered:
            return
        t_seen = _kth_finite(np.ascontiguousarray(arrivals, dtype=np.float64), self.threshold)
        if t_seen < np.inf:  # (the threshold-th arrival among those delivered)
            self._wake.succeed(float(t_seen))

    def _idle(self, t: float):  # noqa: ANN202 - SimPy generator
        """Nothing new to finalize: wait for a block that a supermajority has seen. Rounds keep their rhythm
        (the last round's length), so the next useful round starts on that rhythm; idle rounds are skipped."""
        self._wake = self.env.event()
        t_seen = yield self._wake
        self._wake = None
        d = max(self._round_s, 1e-3)
        start = t + np.ceil((t_seen - t) / d) * d
        if start > self.env.now:
            yield self.env.timeout(start - self.env.now)

    def _run(self):  # noqa: ANN202 - SimPy generator
        r = 0
        while True:
            t = self.env.now
            t_complete, g, offenders, n_voters = self.play_round(t)
            if offenders.size:
                self._report(r, t, offenders)
            number = self.tree.store.cols["number"]
            if g < 0:
                self.rounds.append(round=r, t_start=t, t_complete=np.nan, voters=n_voters, ghost=-1,
                                   finalized_number=number[self.finalized], newly_finalized=0,
                                   equivocators=offenders.size, stalled=True)
                yield self.env.timeout(self.T)  # a stalled voter set retries every gossip period
                continue
            if g == self.finalized:
                yield from self._idle(t)
                continue
            yield self.env.timeout(t_complete - t)
            newly = self.finalize(g, t_complete)
            self.rounds.append(round=r, t_start=t, t_complete=t_complete, voters=n_voters, ghost=g,
                               finalized_number=number[self.finalized], newly_finalized=newly.size,
                               equivocators=offenders.size, stalled=False)
            r += 1
