"""The life of transactions in a run: load → pool → blocks → finality → fees.

* At every slot start the background load of the past slot window is drawn (one vectorised NHPP batch)
  and submitted to the pool, and expired transactions are dropped.
* Authors build blocks from the pool: the pool selects by priority within the block limits, excluding
  transactions already in the parent's unfinalized ancestry. The fee multiplier in effect for a block
  follows TargetedFeeAdjustment from its parent's multiplier and normal-class fullness. The block's
  inclusion fees and tips are summed when it is built.
* When GRANDPA finalizes, the blocks included up to that height are resolved: finalized blocks' transactions
  leave the pool, orphaned blocks' transactions return to it, and the runtime executes the newly finalized
  blocks in order (fees are charged on the ledger, market calls dispatched, pallets' hooks run).
* Market calls (records of a :class:`~ainur_sim.chain.extrinsics.CallBook`) enter the pool with the load
  of the slot after their submission; the ones the pool drops are marked ``dropped`` and announced as
  ``CallDropped`` events.

Fees of background transfers are computed per block in aggregate (one integer per block):
``n·base + per_byte·Σlength + ⌊m·weight_fee·Σweight⌋ + Σtip`` — the same formula as per transaction
up to rounding of under one base unit per transaction, and the amount that is then moved is exactly the
one recorded.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import simpy

from ainur_sim.chain.blocktree import BlockTree
from ainur_sim.chain.calls import code_of
from ainur_sim.chain.events import EventBus
from ainur_sim.chain.extrinsics import CallBook
from ainur_sim.chain.fees import CALL_LENGTHS, BlockLimits, FeeParams, inclusion_fee, next_multiplier
from ainur_sim.chain.load import ConstantColumns, LoadSchedule, TipDistribution, draw, generate_with_facts
from ainur_sim.chain.production import BlockBody, BlockProduction
from ainur_sim.chain.runtime import Runtime
from ainur_sim.chain.txpool import TxBatch, TxPool, merged_facts
from ainur_sim.draw_ahead import DrawAhead
from ainur_sim.record import ColumnStore

SERIES_SCHEMA = {
    "slot": "int64",
    "t": "float64",
    "offered": "int64",
    "pool_ready": "int64",
    "pool_future": "int64",
    "pool_in_block": "int64",
    "pool_bytes": "int64",
    "submitted_total": "int64",
    "finalized_total": "int64",
    "dropped_total": "int64",
}


_NO_PAYLOADS = np.zeros(0, dtype=np.int64)
_NO_PAYLOADS.flags.writeable = False


def _in_order(t: np.ndarray) -> bool:
    """``t`` non-decreasing and NaN-free (a NaN compares false)."""
    if t.shape[0] < 2:
        return not np.isnan(t).any()
    return bool((t[1:] >= t[:-1]).all())


class TransactionFlow:
    """Background load, the shared pool, block building with fees, and settlement on finality."""

    def __init__(
        self,
        env: simpy.Environment,
        *,
        production: BlockProduction,
        tree: BlockTree,
        pool: TxPool,
        schedule: LoadSchedule,
        tips: TipDistribution,
        fee_params: FeeParams,
        block_limits: BlockLimits,
        exec_weight_s: float,
        header_bytes: int,
        gossip_mean_s: float,
        longevity_s: float,
        rng: np.random.Generator,
        runtime: Runtime,
        call_mix: dict[str, float] | None = None,
        audit: bool = False,
        book: CallBook | None = None,
        events: EventBus | None = None,
        draw_ahead_s: float | None = None,
    ) -> None:
        """``draw_ahead_s``: draw the load of every slot up to that time ahead in a forked child process
        (:mod:`ainur_sim.draw_ahead`; the same draws); None: in the run's process."""
        self.env = env
        self.runtime = runtime
        mix = call_mix or {"transfer": 1.0}
        total = sum(mix.values())
        #: (call code, schedule of that call kind, dispatch weight s, length bytes) per call kind in the mix
        self.kinds = [(code_of(name), dataclasses.replace(schedule, tps=schedule.tps * share / total),
                       block_limits.call_weights[name], CALL_LENGTHS[name])
                      for name, share in sorted(mix.items()) if share > 0 and schedule.tps > 0]
        self.book = book
        self.events = events
        self.failed_execution = 0
        #: with ``audit``: every accepted transaction id, and (block, tx id) of every inclusion
        self.audit = audit
        self.audit_accepted: list[np.ndarray] = []
        self.audit_inclusions: list[tuple[int, np.ndarray]] = []
        self.production = production
        self.tree = tree
        self.pool = pool
        self.schedule = schedule
        self.tips = tips
        self.fees = fee_params
        self.limits = block_limits
        self.exec_weight_s = float(exec_weight_s)
        self.header_bytes = int(header_bytes)
        self.gossip_mean_s = float(gossip_mean_s)
        self.longevity_s = float(longevity_s)
        self.rng = rng
        self._t_last = 0.0
        self._unresolved: list[int] = []  # blocks handed to the pool, not yet finalized or orphaned
        self._finalized_upto = 0
        self.fees_priced = 0
        """Inclusion fees and tips of finalized blocks as priced when the blocks were built, base units
        (what was actually paid is the runtime's ``fees_charged + tips_paid``)."""
        self.series = ColumnStore(SERIES_SCHEMA, 4096)
        self.ahead = self._draw_ahead(draw_ahead_s) if draw_ahead_s is not None and self.kinds else None
        self.constants = ConstantColumns()
        """The generated batches' one-value columns, shared from slot to slot (the pool copies what it keeps)."""
        production.slot_listeners.append(self.on_slot)
        production.builder = self.build

    # --- load --------------------------------------------------------------------------------------------
    def _draw_ahead(self, horizon_s: float) -> DrawAhead:
        """A child drawing each slot's load (:func:`~ainur_sim.chain.load.draw` per call kind, in order) for the
        window it predicts: from the previous slot's time to this one's, on SimPy's slot clock
        (``now + max(slot · slot_s − now, 0)``, as :class:`BlockProduction` advances). Room per slot: the
        schedule's peak rate over the run plus 8 standard deviations (a larger slot ends drawing ahead)."""
        kinds, tips, gossip_mean_s, slot_s = self.kinds, self.tips, self.gossip_mean_s, self.production.slot_s
        item_bytes = 0
        for _code, schedule, _w, _length in kinds:
            lam = schedule.max_rate(0.0, float(horizon_s)) * slot_s
            item_bytes += 3 * 8 * int(lam + 8 * math.sqrt(lam) + 256) + 4 * 64
        clock = [0.0]  # the child's slot time (its own copy after the fork)

        def draw_slot(rng: np.random.Generator, k: int) -> tuple[tuple[float, ...], list[np.ndarray]]:
            t0 = clock[0]
            t1 = clock[0] = t0 + max(k * slot_s - t0, 0.0)
            arrays: list[np.ndarray] = []
            for _code, schedule, _w, _length in kinds:
                t, t_ready, tip, ok = draw(schedule, t0, t1, rng, tips, gossip_mean_s)
                arrays += [t, t_ready, tip, np.array([ok], np.int8)]
            return (t0, t1), arrays

        return DrawAhead(self.rng, draw_slot, [np.float64, np.float64, np.int64, np.int8] * len(kinds), 2,
                         item_bytes)

    def on_slot(self, slot: int, t: float) -> None:
        """Submit the load that arrived since the last slot; drop expired transactions; record the pool."""
        batches = []
        facts = None  # of a lone generated batch (known without a scan)
        drawn = self.ahead.take((self._t_last, t)) if self.ahead is not None else None
        for i, (code, schedule, weight_s, length) in enumerate(self.kinds):
            b, facts = generate_with_facts(schedule, self._t_last, t, self.rng, tips=self.tips, weight_s=weight_s,
                                           length_bytes=length, gossip_mean_s=self.gossip_mean_s,
                                           longevity_s=self.longevity_s, payload=code, constants=self.constants,
                                           drawn=None if drawn is None else (*drawn[4 * i:4 * i + 3],
                                                                             bool(drawn[4 * i + 3][0])))
            batches.append(b)
        market, market_in_order = None, True
        if self.book is not None:
            market_in_order = self.book.outbox_in_order  # (``_in_order`` of the batch, kept as calls come in)
            market = self.book.take_outbox()
        if market is not None:
            batches.append(market)
        if len(batches) > 1 and (market is None or market_in_order):
            # every generated batch is in time order: the pool's stable sort of the concatenation, merged
            batch = TxBatch.merge_sorted(batches)
            # (a lone generated batch and market calls: the pool's facts from a scan of the calls only)
            facts = merged_facts(batches[0], facts, market) if len(batches) == 2 and market is not None \
                and facts is not None else None
        else:
            batch = (batches[0] if len(batches) == 1 else TxBatch.concat(batches)) if batches else TxBatch.empty()
            facts = facts if len(batches) == 1 else None
        self._t_last = t
        if len(batch):
            outcome = self.pool.submit(batch, facts)
            if self.audit:
                self.audit_accepted.append(outcome.accepted_ids.copy())
            self._dropped(outcome.dropped_payloads, t)
        self._dropped(self.pool.expire(t).dropped_payloads, t)
        snap = self.pool.snapshot()
        c = self.pool.counters
        self.series.append(slot=slot, t=t, offered=len(batch), pool_ready=snap["ready_count"],
                           pool_future=snap["future_count"], pool_in_block=snap["in_block_count"],
                           pool_bytes=snap["ready_bytes"], submitted_total=c.submitted,
                           finalized_total=c.finalized, dropped_total=c.rejected + c.evicted + c.expired)

    def _dropped(self, payloads: np.ndarray, t: float) -> None:
        """Mark dropped market calls and announce them."""
        if self.book is None or payloads.size == 0:
            return
        for rec in self.book.mark_dropped(payloads).tolist():
            if self.events is not None:
                self.events.emit("CallDropped", record=rec, t=t)

    # --- blocks ------------------------------------------------------------------------------------------
    def multiplier_for_child_of(self, parent: int) -> float:
        """Fee multiplier in effect for a block built on ``parent`` (TargetedFeeAdjustment of the parent)."""
        cols = self.tree.store.cols
        if parent == 0:
            return 1.0
        return next_multiplier(float(cols["fee_multiplier"][parent]), float(cols["normal_weight_s"][parent]),
                               self.limits.normal_max_weight_s, self.fees)

    def build(self, author: int, parent: int, slot: int, t: float, block_id: int) -> BlockBody:
        """Select the block's transactions, mark them included and price them."""
        m = self.multiplier_for_child_of(parent)
        chain = self.tree.unfinalized_chain(parent)
        if self.audit:  # (select + mark_included)
            ids = self.pool.select_into(t, chain, block_id)
            n_tx, tips = int(ids.size), self.pool.tip_total(ids)
            if n_tx:
                self.audit_inclusions.append((block_id, ids.copy()))
        else:
            n_tx, tips = self.pool.fill_block(t, chain, block_id)
        st = self.pool.last_selection
        fees = 0
        if n_tx:
            self._unresolved.append(block_id)
            dispatch_s = st.weight_s - n_tx * self.limits.extrinsic_base_weight_s
            fees = int(inclusion_fee(max(dispatch_s, 0.0), st.length_bytes, m, self.fees)) \
                + (n_tx - 1) * self.fees.base_fee
        return BlockBody(n_tx=n_tx, weight_s=self.exec_weight_s + st.weight_s,
                         length_bytes=self.header_bytes + int(st.length_bytes), fee_multiplier=m,
                         normal_weight_s=st.normal_weight_s, fees=fees, tips=tips)

    def audit_frames(self) -> dict[str, pd.DataFrame]:
        """``tx_inclusions`` (block, tx) and ``tx_accepted`` (tx) tables of an audited run."""
        inc = self.audit_inclusions or [(0, np.zeros(0, np.int64))]
        blocks = np.concatenate([np.full(ids.size, b, dtype=np.int64) for b, ids in inc])
        txs = np.concatenate([ids for _, ids in inc])
        acc = np.concatenate(self.audit_accepted) if self.audit_accepted else np.zeros(0, np.int64)
        return {"tx_inclusions": pd.DataFrame({"block": blocks, "tx": txs.astype(np.int64)}),
                "tx_accepted": pd.DataFrame({"tx": acc.astype(np.int64)})}

    # --- finality ----------------------------------------------------------------------------------------
    def on_finalized(self, newly: np.ndarray, t: float) -> None:
        """Settle the blocks decided by this finalization: finalized transactions leave the pool, orphans'
        return to it; then the runtime executes the newly finalized blocks."""
        cols = self.tree.store.cols
        number, t_fin = cols["number"], cols["t_finalized"]
        ids = newly.tolist()
        height = number.item(ids[-1])
        # (a few blocks: Python lists and scalars beat numpy's per-call cost)
        finalized, orphaned, rest = [], [], []
        for b in self._unresolved:
            if number.item(b) <= height:
                (orphaned if math.isnan(t_fin.item(b)) else finalized).append(b)
            else:
                rest.append(b)
        self._unresolved = rest
        payloads = payload_blocks = _NO_PAYLOADS
        if finalized or orphaned:
            out = self.pool.on_finalized(finalized, orphaned, t)
            payloads, payload_blocks = out.finalized_payloads, out.finalized_payload_blocks
            self._dropped(out.dropped_payloads, t)
        heights = [number.item(b) for b in ids]
        if all(a <= b for a, b in zip(heights, heights[1:], strict=False)):  # (chains come oldest first)
            in_order = newly
        else:
            in_order = newly[np.argsort(number[newly], kind="stable")]
        self.failed_execution += self.runtime.execute_finalized(self.tree, in_order, payloads, payload_blocks, t)
        fees, tips = cols["fees"], cols["tips"]
        self.fees_priced += sum([fees.item(b) + tips.item(b) for b in ids])
