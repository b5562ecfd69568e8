"""Block production: the slot clock, authors building on their own local view, and block propagation.

Once per slot (one SimPy event) the leaders are decided (BABE lottery + secondary author, or Aura round
robin); every leader that is online builds on the best head *it* has imported by the slot start, and the
new block's arrival time at every validator is computed in one numpy call from the latency matrix. Views
are updated lazily: arrivals are kept in a small in-flight set and applied (fork choice per validator,
vectorised) whenever a view is needed. So forks emerge from propagation delay and leader collisions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import simpy
from numba import njit

from ainur_sim.chain.blocktree import BlockTree
from ainur_sim.chain.connectivity import Connectivity
from ainur_sim.chain.consensus import (
    aura_author,
    babe_primary_probability,
    draw_primary_winners,
    draw_secondary_authors,
)
from ainur_sim.chain.faults import Availability
from ainur_sim.chain.network import Network

_DRAW_CHUNK = 512  # slots of leader draws made at once


class BlockBody(NamedTuple):
    """What an author puts in a block: extrinsic count, weight (s of reference compute), encoded length."""

    n_tx: int
    weight_s: float
    length_bytes: int
    fee_multiplier: float = 1.0
    normal_weight_s: float = 0.0
    fees: int = 0  # inclusion fees of its extrinsics, base units
    tips: int = 0


#: Builds the body of a block: ``(author, parent_id, slot, t_start, block_id) -> BlockBody``.
BlockBuilder = Callable[[int, int, int, float, int], BlockBody]


@njit(cache=True)
def _import_arrivals(ids: np.ndarray, arr: np.ndarray, m: int, t_view: float, t: float, finalized: int,
                     parent: np.ndarray, number: np.ndarray, babe_weight: np.ndarray, head: np.ndarray,
                     head_key: np.ndarray) -> int:
    """Apply the in-flight arrivals of ``(t_view, t]`` to every validator's view; compact the in-flight set.

    ``ids[:m]`` are in-flight blocks (authoring order), ``arr[r, v]`` when block ``ids[r]`` reaches
    validator ``v`` (s; ``inf`` = missed while offline). Only descendants of ``finalized`` count. At each
    validator the best new block by fork-choice key (``babe_weight · 2**32 + number``) wins, ties to the
    one imported first, then the earliest authored; it replaces the head if its key is larger. Rows that
    have reached (or missed) every validator by ``t`` are dropped, keeping order. Updates ``head`` and
    ``head_key`` in place and returns the new in-flight count.
    """
    n = head.shape[0]
    fin_num = number[finalized]
    desc = np.empty(m, np.bool_)
    key = np.empty(m, np.int64)
    for r in range(m):
        b = ids[r]
        x = b
        while number[x] > fin_num:
            x = parent[x]
        desc[r] = x == finalized
        key[r] = babe_weight[b] * 4294967296 + number[b]
    for v in range(n):
        bk = -1
        ba = np.inf
        bi = -1
        for r in range(m):
            a = arr[r, v]
            if desc[r] and a > t_view and a <= t:
                k = key[r]
                if k > bk or (k == bk and a < ba):
                    bk = k
                    ba = a
                    bi = r
        if bi >= 0 and bk > head_key[v]:
            head[v] = ids[bi]
            head_key[v] = bk
    w = 0
    for r in range(m):
        done = True
        for v in range(n):
            a = arr[r, v]
            if not (a <= t or np.isinf(a)):
                done = False
                break
        if not done:
            if w != r:
                ids[w] = ids[r]
                arr[w, :] = arr[r, :]
            w += 1
    return w


def empty_block_builder(exec_weight_s: float, header_bytes: int) -> BlockBuilder:
    """A builder that authors empty blocks (used until a transaction pool is wired in)."""
    body = BlockBody(0, exec_weight_s, header_bytes)

    def build(author: int, parent: int, slot: int, t_start: float, block_id: int) -> BlockBody:
        return body

    return build


class BlockProduction:
    """Slot clock and per-validator chain views of one run."""

    def __init__(
        self,
        env: simpy.Environment,
        *,
        consensus: str,
        slot_s: float,
        babe_c: float,
        stake: np.ndarray,
        network: Network,
        availability: Availability,
        tree: BlockTree,
        builder: BlockBuilder,
        build_base_s: float,
        leader_rng: np.random.Generator,
        delivery_rng: np.random.Generator,
        connectivity: Connectivity | None = None,
    ) -> None:
        self.env = env
        self.consensus = consensus
        self.slot_s = float(slot_s)
        self.network = network
        self.availability = availability
        self.connectivity = connectivity
        self.tree = tree
        self.builder = builder
        self.build_base_s = float(build_base_s)
        self.n = network.n
        self._p_primary = babe_primary_probability(stake, babe_c)
        self._leader_rng = leader_rng
        self._delivery_rng = delivery_rng
        self._wins = np.zeros((0, self.n), dtype=bool)
        self._secondary = np.zeros(0, dtype=np.int64)
        self._chunk_start = 0
        self._all_online_leaders: list[list[tuple[int, bool]]] | None = None  # per slot of the chunk
        # per-validator view: best imported block and its fork-choice key
        self.head = np.zeros(self.n, dtype=np.int64)
        self.head_key = np.zeros(self.n, dtype=np.int64)
        self._t_view = -np.inf
        self.finalized = 0  # last finalized block: fork choice only considers its descendants
        #: called as ``listener(slot, t)`` at every slot start, before its leaders author
        self.slot_listeners: list[Callable[[int, float], None]] = []
        #: called as ``listener(block_id, arrivals)`` whenever a block is authored
        self.block_listeners: list[Callable[[int, np.ndarray], None]] = []
        # in-flight blocks (authoring order) and their arrival time at every validator, s
        self._pending_ids = np.zeros(16, dtype=np.int64)
        self._pending_arr = np.zeros((16, self.n), dtype=np.float64)
        self._n_pending = 0
        self.slots_run = 0
        self.process = env.process(self._run())
        for v, t in availability.returns():
            self.schedule_sync(v, t)

    # --- leaders -------------------------------------------------------------------------------------
    def _leaders(self, slot: int, online: np.ndarray | None) -> list[tuple[int, bool]]:
        """(author, primary) pairs that author in ``slot``, online validators only (``online`` None:
        everyone is)."""
        if self.consensus == "aura":
            a = aura_author(slot, self.n)
            return [(a, False)] if online is None or online[a] else []
        i = slot - self._chunk_start
        if i >= self._secondary.shape[0]:
            self._chunk_start = slot
            self._wins = draw_primary_winners(self._p_primary, _DRAW_CHUNK, self._leader_rng)
            self._secondary = draw_secondary_authors(self.n, _DRAW_CHUNK, self._leader_rng)
            self._all_online_leaders = None
            i = 0
        if online is None:  # everyone online: the chunk's leader lists, built once per chunk
            if self._all_online_leaders is None:
                wins, sec = self._wins, self._secondary
                self._all_online_leaders = [
                    [(int(a), True) for a in wins[j].nonzero()[0]]
                    + ([] if wins[j, sec[j]] else [(int(sec[j]), False)]) for j in range(sec.shape[0])]
            return list(self._all_online_leaders[i])
        primaries = (self._wins[i] & online).nonzero()[0]
        out = [(int(a), True) for a in primaries]
        sec = int(self._secondary[i])
        if online[sec] and not self._wins[i, sec]:
            out.append((sec, False))
        return out

    # --- views -----------------------------------------------------------------------------------------
    def update_views(self, t: float) -> None:
        """Import at every validator the in-flight blocks that reached it in ``(last update, t]``.

        An arrival of ``inf`` is a delivery the validator missed while offline; it catches up at its sync.
        """
        if self._n_pending == 0 or t <= self._t_view:
            self._t_view = max(self._t_view, t)
            return
        cols = self.tree.store.cols
        self._n_pending = _import_arrivals(self._pending_ids, self._pending_arr, self._n_pending, self._t_view,
                                           float(t), self.finalized, cols["parent_id"], cols["number"],
                                           cols["babe_weight"], self.head, self.head_key)
        self._t_view = t

    def sync(self, v: int) -> None:
        """Validator ``v`` is back and catches up: it adopts the best block that has reached its peers.

        Candidates are the blocks whose nominal arrival at ``v`` (authoring time plus path latency) has
        passed; ties go to the earliest authored.
        """
        t = self.env.now
        self.update_views(t)
        n = len(self.tree)
        cols = self.tree.store.cols
        author = cols["author"][1:n]
        reached = cols["t_authored"][1:n] + self.network.path_latency_s[author, v] <= t
        if not reached.any():
            return
        ids = np.flatnonzero(reached) + 1
        if self.finalized > 0:
            ids = ids[self.tree.descends_from(ids, self.finalized)]
        if ids.size == 0:
            return
        key = self.tree.choice_key(ids)
        best = ids[key == key.max()]
        b = int(best[np.argmin(cols["t_authored"][best])])
        k = int(self.tree.choice_key(b))
        if k > self.head_key[v]:
            self.head[v], self.head_key[v] = b, k

    def on_finalized(self, block: int) -> None:
        """``block`` is final: views on chains that do not contain it catch up to a chain that does."""
        self.finalized = block
        self.update_views(self.env.now)
        off = self.tree.not_descending(self.head, block)
        for v in off:
            self.head[v], self.head_key[v] = block, int(self.tree.choice_key(block))
            self.sync(int(v))

    def schedule_sync(self, v: int, t: float) -> None:
        """Run ``sync(v)`` at simulated time ``t``."""
        ev = self.env.timeout(max(t - self.env.now, 0.0))
        ev.callbacks.append(lambda _ev: self.sync(v))

    def _arrivals_of(self, block: int) -> np.ndarray | None:
        """Arrival times of ``block`` at every validator while it is in flight, else None."""
        for k, bid in enumerate(self._pending_ids[: self._n_pending].tolist()):  # (a few blocks)
            if bid == block:
                return self._pending_arr[k]
        return None

    def _add_pending(self, block: int, arr: np.ndarray) -> None:
        """Put ``block`` with its arrival times in the in-flight set (grows the buffer by doubling)."""
        m = self._n_pending
        if m == self._pending_ids.shape[0]:
            self._pending_ids = np.concatenate([self._pending_ids, np.zeros(m, dtype=np.int64)])
            self._pending_arr = np.concatenate([self._pending_arr, np.zeros((m, self.n))])
        self._pending_ids[m] = block
        self._pending_arr[m] = arr
        self._n_pending = m + 1

    # --- slots -----------------------------------------------------------------------------------------
    def _author(self, author: int, primary: bool, slot: int, t_start: float) -> int:
        parent = int(self.head[author])
        body = self.builder(author, parent, slot, t_start, len(self.tree))
        t_done = t_start + self.build_base_s + body.weight_s
        bid = self.tree.add(parent, slot, author, primary, t_done, body.n_tx, body.weight_s,
                            body.length_bytes, body.fee_multiplier, body.normal_weight_s, body.fees, body.tips)
        arr = self.network.arrival_times(author, t_done, body.length_bytes, body.weight_s, self._delivery_rng)
        if self.connectivity is not None:
            arr = self.connectivity.adjust_arrivals(author, t_done, arr, self.network.path_latency_s[author])
        parent_arr = self._arrivals_of(parent)
        if parent_arr is not None:  # a block is imported only after its parent (if that was delivered)
            arr = np.maximum(arr, np.where(np.isinf(parent_arr), -np.inf, parent_arr))
        if self.availability.validator.size:  # (no outage interval: nobody misses a delivery)
            arr[self.availability.offline_at(arr)] = np.inf
        self._add_pending(bid, arr)
        for listener in self.block_listeners:
            listener(bid, arr)
        return bid

    def on_slot(self, slot: int) -> list[int]:
        """Author this slot's blocks; returns their ids."""
        t = self.env.now
        for listener in self.slot_listeners:
            listener(slot, t)
        self.update_views(t)
        # (no outage interval at all: everyone is online, without building the mask)
        online = self.availability.online(t) if self.availability.validator.size else None
        return [self._author(a, primary, slot, t) for a, primary in self._leaders(slot, online)]

    def _run(self):  # noqa: ANN202 - SimPy generator
        slot = 0
        while True:
            self.on_slot(slot)
            self.slots_run = slot + 1
            slot += 1
            yield self.env.timeout(max(slot * self.slot_s - self.env.now, 0.0))
