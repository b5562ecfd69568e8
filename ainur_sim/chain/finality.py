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

from collections.abc import Callable

import numpy as np
import simpy

from ainur_sim.chain.blocktree import BlockTree
from ainur_sim.chain.faults import Availability
from ainur_sim.chain.network import Network
from ainur_sim.chain.production import BlockProduction
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
    ) -> None:
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
        production.block_listeners.append(self._on_block)
        self.process = env.process(self._run())

    # --- one round -------------------------------------------------------------------------------------
    def _jitter(self, shape: tuple[int, ...]) -> np.ndarray:
        s = self.network.message_jitter_sigma
        return self.rng.lognormal(-0.5 * s * s, s, size=shape) if s > 0 else np.ones(shape)

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
        """
        voters = np.flatnonzero(self.availability.online(t))
        connectivity = self.production.connectivity
        if connectivity is not None and voters.size:  # votes only travel within a connected component
            label = connectivity.connected(t)[voters]
            voters = voters[label == np.bincount(label).argmax()]
        none = np.zeros(0, dtype=np.int64)
        if voters.size < self.threshold:
            return np.inf, -1, none, int(voters.size)
        self.production.update_views(t)
        number = self.tree.store.cols["number"]
        base_number = int(number[self.finalized])
        reach = vote_target_heights(number[self.production.head[voters]], base_number, self.before_best)
        if np.count_nonzero(reach > base_number) < self.threshold and self.equivocation_prob == 0:
            return t + self._round_s, self.finalized, none, int(voters.size)  # nothing new can be finalized
        targets = self._targets(voters)
        second = targets.copy()
        equivocating = np.zeros(voters.size, dtype=bool)
        if self.equivocation_prob > 0:
            equivocating = self.byzantine[voters] & (self.rng.random(voters.size) < self.equivocation_prob)
            # the second, conflicting prevote goes to the target's parent (a different vote in the same round)
            parent = self.tree.store.cols["parent_id"][targets[equivocating]]
            second[equivocating] = np.where(parent >= 0, parent, targets[equivocating])
        g = ghost(self.tree, np.column_stack([targets, second]), self.threshold, self.finalized)
        if g < 0:
            return np.inf, -1, voters[equivocating], int(voters.size)
        if g == self.finalized:  # nothing new to finalize: the round's timing does not matter
            return t + self._round_s, g, voters[equivocating], int(voters.size)

        obs = np.intersect1d(self.observers, voters)
        if obs.size == 0:
            obs = voters[: min(voters.size, 16)]
        lat = self.network.gossip_s[np.ix_(voters, obs)]
        if connectivity is not None:
            lat = connectivity.vote_delay_matrix(t, voters, obs, lat)
        jitter = self._jitter((2, *lat.shape))
        prevote = np.maximum(t, np.minimum(self._done_prev[voters], t + 2 * self.T)) + self.processing
        arr_pv = prevote[:, None] + lat * jitter[0]
        ghost_ready = _kth_smallest(arr_pv, self.threshold)
        if self.tree.descends_from(targets, g).all():  # unanimous: completable at the threshold-th prevote
            precommit_obs = ghost_ready + self.processing
        else:
            waited = np.minimum(arr_pv.max(axis=0), t + 4 * self.T)
            precommit_obs = np.maximum(ghost_ready, waited) + self.processing
        # precommit send time of every voter: exact for observers, drawn from theirs for the others
        precommit = self.rng.choice(precommit_obs, size=voters.size)
        precommit[np.searchsorted(voters, obs)] = precommit_obs
        arr_pc = precommit[:, None] + lat * jitter[1]
        done_obs = _kth_smallest(arr_pc, self.threshold) + self.processing
        t_complete = float(np.quantile(done_obs, self.threshold / voters.size, method="inverted_cdf"))
        self._done_prev[:] = t_complete
        self._done_prev[obs] = done_obs
        self._round_s = t_complete - t
        return t_complete, g, voters[equivocating], int(voters.size)

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
        finite = arrivals[np.isfinite(arrivals)]
        if finite.size >= self.threshold:
            self._wake.succeed(float(np.partition(finite, self.threshold - 1)[self.threshold - 1]))

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
