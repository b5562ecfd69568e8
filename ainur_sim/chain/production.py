"""Block production: the slot clock, authors building on their own local view, and block propagation.

Once per slot (one SimPy event) the leaders are decided (BABE lottery + secondary author, or Aura round
robin); every leader that is online builds on the best head *it* has imported by the slot start, and the
new block's arrival time at every validator is computed in one numpy call from the latency matrix. Views
are updated lazily: arrivals are kept in a small in-flight set and applied (fork choice per validator,
vectorised) whenever a view is needed. So forks emerge from propagation delay and leader collisions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

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


@dataclass(frozen=True)
class BlockBody:
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
        # per-validator view: best imported block and its fork-choice key
        self.head = np.zeros(self.n, dtype=np.int64)
        self.head_key = np.zeros(self.n, dtype=np.int64)
        self._t_view = -np.inf
        self.finalized = 0  # last finalized block: fork choice only considers its descendants
        #: called as ``listener(slot, t)`` at every slot start, before its leaders author
        self.slot_listeners: list[Callable[[int, float], None]] = []
        #: called as ``listener(block_id, arrivals)`` whenever a block is authored
        self.block_listeners: list[Callable[[int, np.ndarray], None]] = []
        self._pending_ids: list[int] = []
        self._pending_arr: list[np.ndarray] = []
        self.slots_run = 0
        self.process = env.process(self._run())
        for v, t in availability.returns():
            self.schedule_sync(v, t)

    # --- leaders -------------------------------------------------------------------------------------
    def _leaders(self, slot: int, online: np.ndarray) -> list[tuple[int, bool]]:
        """(author, primary) pairs that author in ``slot``, online validators only."""
        if self.consensus == "aura":
            a = aura_author(slot, self.n)
            return [(a, False)] if online[a] else []
        i = slot - self._chunk_start
        if i >= self._secondary.shape[0]:
            self._chunk_start = slot
            self._wins = draw_primary_winners(self._p_primary, _DRAW_CHUNK, self._leader_rng)
            self._secondary = draw_secondary_authors(self.n, _DRAW_CHUNK, self._leader_rng)
            i = 0
        primaries = np.flatnonzero(self._wins[i] & online)
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
        if not self._pending_ids or t <= self._t_view:
            self._t_view = max(self._t_view, t)
            return
        ids = np.asarray(self._pending_ids, dtype=np.int64)
        arr = np.vstack(self._pending_arr)
        new = (arr > self._t_view) & (arr <= t)
        if self.finalized > 0:
            new &= self.tree.descends_from(ids, self.finalized)[:, None]
        if new.any():
            key = self.tree.choice_key(ids)
            masked = np.where(new, key[:, None], -1)
            best_key = masked.max(axis=0)
            # among the best new blocks at each validator, the one imported first
            first = np.where(masked == best_key[None, :], arr, np.inf).argmin(axis=0)
            better = best_key > self.head_key
            self.head[better] = ids[first[better]]
            self.head_key[better] = best_key[better]
        self._t_view = t
        done = ((arr <= t) | np.isinf(arr)).all(axis=1)
        if done.any():
            keep = np.flatnonzero(~done)
            self._pending_ids = [self._pending_ids[k] for k in keep]
            self._pending_arr = [self._pending_arr[k] for k in keep]

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
        off = np.flatnonzero(~self.tree.descends_from(self.head, block))
        for v in off:
            self.head[v], self.head_key[v] = block, int(self.tree.choice_key(block))
            self.sync(int(v))

    def schedule_sync(self, v: int, t: float) -> None:
        """Run ``sync(v)`` at simulated time ``t``."""
        ev = self.env.timeout(max(t - self.env.now, 0.0))
        ev.callbacks.append(lambda _ev: self.sync(v))

    def _arrivals_of(self, block: int) -> np.ndarray | None:
        for bid, arr in zip(self._pending_ids, self._pending_arr, strict=True):
            if bid == block:
                return arr
        return None

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
        arr[self.availability.offline_at(arr)] = np.inf
        self._pending_ids.append(bid)
        self._pending_arr.append(arr)
        for listener in self.block_listeners:
            listener(bid, arr)
        return bid

    def on_slot(self, slot: int) -> list[int]:
        """Author this slot's blocks; returns their ids."""
        t = self.env.now
        for listener in self.slot_listeners:
            listener(slot, t)
        self.update_views(t)
        online = self.availability.online(t)
        return [self._author(a, primary, slot, t) for a, primary in self._leaders(slot, online)]

    def _run(self):  # noqa: ANN202 - SimPy generator
        slot = 0
        while True:
            self.on_slot(slot)
            self.slots_run = slot + 1
            slot += 1
            yield self.env.timeout(max(slot * self.slot_s - self.env.now, 0.0))
