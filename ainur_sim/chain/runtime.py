"""The runtime: executes finalized blocks in order — fees, then each extrinsic, then ``on_finalize`` hooks.

State is applied on finality (DESIGN §3). For each newly finalized block, in chain order:

1. **Market calls** (records of the :class:`~ainur_sim.chain.extrinsics.CallBook`): first every origin
   pays its call's fee, in block order (inclusion fee at the block's multiplier, split treasury/burn, plus
   its tip to the block author) — one ledger batch per block, so a call's fee is withdrawn before the
   block's calls run rather than just before its own; a call whose fee cannot be paid fails with
   ``Payment`` and changes nothing. Then, in block order, the
   call filter (emergency pause) may reject it (``CallFiltered``), else it is dispatched to the pallet
   that registered it. A failed call keeps its fee, changes nothing else, is recorded with its error and
   announced as an ``ExtrinsicFailed`` event.
2. **Background calls** (opaque load: transfers and modelled traffic) are settled in aggregate: the
   block's remaining fees (its priced fees and tips minus what its market calls paid) are charged to the
   background users' account; if that account cannot pay, the block's background calls fail (``Payment``).
   Paused background calls fail with ``CallFiltered`` and are counted per (block, call).
3. Every pallet's ``on_finalize`` runs (timers, batch clearing).
4. A supply row is recorded for the block (the supply recorder can check the ledger's books first).

Without a ledger (chain-only runs of the past) fees are not moved and only outcomes are counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numba
import numpy as np

from ainur_sim.chain.balances import OP_FEE, OP_TRANSFER, Ledger, SupplyRecorder, share_to_ppb
from ainur_sim.chain.calls import CALLS, FIRST_DYNAMIC_RECORD, FULL_NAMES, code_of
from ainur_sim.chain.fees import CALL_LENGTHS, FeeParams, inclusion_fee
from ainur_sim.chain.pause import CallFilter
from ainur_sim.record import ColumnStore

if TYPE_CHECKING:
    from ainur_sim.chain.blocktree import BlockTree
    from ainur_sim.chain.events import EventBus
    from ainur_sim.chain.extrinsics import CallBook

#: Code → short call name (the pallets' vocabulary).
SHORT_NAMES: tuple[str, ...] = tuple(CALLS)

_FEE_OP = np.array([OP_FEE], dtype=np.int64)
_NO_ACCOUNT = np.array([-1], dtype=np.int64)
_KEEP_ALIVE = np.array([1], dtype=np.int64)

OUTCOME_SCHEMA = {"t": "float64", "block": "int64", "call": "str", "ok": "int64", "failed_paused": "int64"}


@numba.njit(cache=True)
def _split_records(recs, first_dynamic, n_codes):
    """One pass over a block's call records: (the market records ``≥ first_dynamic``, minus it, in block
    order; per call code the number of the other, background records; how many those are; whether every
    background record is a code below ``n_codes`` — if not, the counts are incomplete)."""
    n = recs.shape[0]
    dyn = np.empty(n, np.int64)
    counts = np.zeros(n_codes, np.int64)
    k = 0
    for i in range(n):
        r = recs[i]
        if r >= first_dynamic:
            dyn[k] = r - first_dynamic
            k += 1
        elif 0 <= r < n_codes:
            counts[r] += 1
        else:
            return dyn[:k], counts, n - k, False
    return dyn[:k], counts, n - k, True


class BlockContext(NamedTuple):
    """The block being executed: ids, its number and authoring time, its author's account, and ``t``,
    the simulated time of execution (its finalization), s."""

    block_id: int
    number: int
    t_authored: float
    t: float
    author_account: int
    fee_multiplier: float


class Pallet(Protocol):
    """A runtime module: handles its calls and runs once per finalized block."""

    calls: tuple[str, ...]
    """Short call names (``chain.calls.CALLS``) this pallet dispatches."""

    def dispatch(self, call: str, record: int, ctx: BlockContext) -> str | None:
        """Execute one call record; return None on success or the error name (then nothing changed)."""
        ...

    def on_finalize(self, ctx: BlockContext) -> None:
        """End-of-block hook."""
        ...


@dataclass
class Economy:
    """The ledger and the protocol accounts the runtime charges."""

    ledger: Ledger
    background_account: int
    validator_accounts: np.ndarray
    treasury_share: float
    supply: SupplyRecorder


class Runtime:
    """Executes finalized blocks: fees, filter, dispatch, hooks; counts outcomes."""

    def __init__(self, call_filter: CallFilter, *, economy: Economy | None = None, book: CallBook | None = None,
                 fee_params: FeeParams | None = None, events: EventBus | None = None) -> None:
        self.filter = call_filter
        self.events = events
        self.economy = economy
        self.book = book
        self.fee_params = fee_params or FeeParams()
        self.pallets: list[Pallet] = []
        self._handler: dict[int, Pallet] = {}
        self.ok = np.zeros(len(FULL_NAMES), dtype=np.int64)
        self.failed_paused = np.zeros(len(FULL_NAMES), dtype=np.int64)
        self.failed_payment = np.zeros(len(FULL_NAMES), dtype=np.int64)
        self.failed_dispatch = np.zeros(len(FULL_NAMES), dtype=np.int64)
        self.outcomes = ColumnStore({k: ("object" if v == "str" else v) for k, v in OUTCOME_SCHEMA.items()}, 256)
        self.n_failed = 0
        """Executed calls that failed (paused, unpaid or rejected by their pallet)."""
        self.fees_charged = 0
        """Inclusion fees actually paid (treasury + burned parts), base units."""
        self.tips_paid = 0
        """Tips actually paid to block authors, base units."""
        self.background_shortfall_blocks = 0
        """Finalized blocks whose background calls could not pay their fees."""
        self._ppb = share_to_ppb(self.fee_params.treasury_share)
        limits = book.limits if book is not None else None
        #: dispatch weight (s) and length (bytes) per call code, for pricing market calls
        self._weights = np.array([limits.call_weights[c] if limits else 0.0 for c in CALLS])
        self._lengths = np.array([CALL_LENGTHS[c] for c in CALLS], dtype=np.int64)
        self._weight_list: list[float] = self._weights.tolist()
        self._length_list: list[int] = self._lengths.tolist()
        self._fee_multiplier = float("nan")
        self._fee_cache: dict[int, int] = {}
        self._ppb_arr = np.array([self._ppb], dtype=np.int64)

    def register(self, pallet: Pallet) -> None:
        """Route ``pallet.calls`` to ``pallet`` and run its ``on_finalize`` every block (registration order)."""
        for name in pallet.calls:
            code = code_of(name)
            if code in self._handler:
                raise ValueError(f"call {name!r} is already handled by another pallet")
            self._handler[code] = pallet
        self.pallets.append(pallet)

    # --- execution -----------------------------------------------------------------------------------
    def execute_finalized(self, tree: BlockTree, newly: np.ndarray, payloads: np.ndarray,
                          payload_blocks: np.ndarray, t: float) -> int:
        """Execute the newly finalized blocks ``newly`` (ascending) at time ``t``; ``payloads`` are the call
        records of their transactions in block order and ``payload_blocks`` the block of each, grouped by
        block (as :meth:`TxPool.on_finalized` gives them). Returns the number of calls that failed."""
        before = self.n_failed
        cols = tree.store.cols
        authors, numbers, t_authored = cols["author"], cols["number"], cols["t_authored"]
        multipliers, fees, tips = cols["fee_multiplier"], cols["fees"], cols["tips"]
        validators = self.economy.validator_accounts if self.economy is not None else None
        first = last = None
        if payloads.size:
            first, last = payload_blocks.item(0), payload_blocks.item(-1)
        for b in np.asarray(newly, dtype=np.int64).tolist():
            # (payloads come grouped by block: first and last in b means all are b's, no mask needed)
            whole = first is None or (first == b and last == b)
            recs = payloads if whole else payloads[payload_blocks == b]
            author = authors.item(b)  # (``.item``: the Python scalar ``int(…)``/``float(…)`` would give)
            ctx = BlockContext(block_id=b, number=numbers.item(b), t_authored=t_authored.item(b), t=t,
                               author_account=validators.item(author) if validators is not None and author >= 0
                               else -1, fee_multiplier=multipliers.item(b))
            self.execute_block(ctx, recs, fees.item(b), tips.item(b))
        return self.n_failed - before

    def execute_block(self, ctx: BlockContext, recs: np.ndarray, block_fees: int = 0, block_tips: int = 0) -> None:
        """Execute one finalized block: ``recs`` are its call records (pool payloads) in block order;
        ``block_fees``/``block_tips`` what the block was priced at (its background part is charged to the
        background account)."""
        market_fees = market_tips = 0
        recs = np.asarray(recs, dtype=np.int64)
        dynamic, counts, n_static, ok = _split_records(recs, FIRST_DYNAMIC_RECORD, len(FULL_NAMES))
        if not ok:  # (a record that is no call code: bincount's own error or result)
            counts = np.bincount(recs[recs < FIRST_DYNAMIC_RECORD], minlength=len(FULL_NAMES))
        if dynamic.size:
            market_fees, market_tips = self._execute_market(ctx, dynamic)
        self._execute_background(ctx, recs, counts, n_static, max(block_fees - market_fees, 0),
                                 max(block_tips - market_tips, 0))
        for pallet in self.pallets:
            pallet.on_finalize(ctx)
        if self.economy is not None:
            self.economy.supply.record(ctx.number)

    def _execute_market(self, ctx: BlockContext, rows: np.ndarray) -> tuple[int, int]:
        """Fees, filter and dispatch of the block's market calls; returns (inclusion fees, tips) they were
        priced at. The fees (and tips) of all of them are withdrawn first, in block order, in one ledger
        batch; then the calls that paid are dispatched in block order."""
        book = self.book
        if book is None:
            raise RuntimeError("market call records need a CallBook")
        recs = rows.tolist()
        code_of_rec, origin_of_rec, tip_of_rec = book.code, book.origin, book.tip
        code_list = [code_of_rec[i] for i in recs]
        tip_list = [tip_of_rec[i] for i in recs]
        fee_list = self._fees_of(code_list, ctx.fee_multiplier)
        any_tip = any(tip_list)
        paid = self._charge(np.array([origin_of_rec[i] for i in recs], dtype=np.int64),
                            np.array(fee_list, dtype=np.int64), np.array(tip_list, dtype=np.int64) if any_tip else None,
                            ctx, any_tip=any_tip).tolist()
        paused = (self.filter.paused(np.array(code_list, dtype=np.int64), np.full(len(recs), ctx.t_authored)).tolist()
                  if self.filter.active else None)
        handler = self._handler
        # successful calls are counted per code at the end of the block
        settle, block_id, t_exec = book.settle, ctx.block_id, ctx.t
        n_ok: dict[int, int] = {}
        for k, i in enumerate(recs):
            code = code_list[k]
            if not paid[k]:
                self.failed_payment[code] += 1
                self.n_failed += 1
                self._settle(i, "Payment", ctx)
                continue
            if paused is not None and paused[k]:
                self.failed_paused[code] += 1
                self.n_failed += 1
                self._settle(i, "CallFiltered", ctx)
                continue
            pallet = handler.get(code)
            error = "NoPallet" if pallet is None else pallet.dispatch(SHORT_NAMES[code], i, ctx)
            if error is None:
                n_ok[code] = n_ok.get(code, 0) + 1
                settle(i, None, block_id, t_exec)
                continue
            self.failed_dispatch[code] += 1
            self.n_failed += 1
            self._settle(i, error, ctx)
        ok = self.ok
        for code, count in n_ok.items():
            ok[code] += count
        return sum(fee_list), sum(tip_list)

    def _fees_of(self, code_list: list[int], multiplier: float) -> list[int]:
        """Inclusion fee of each call (by code) at ``multiplier``: one ``inclusion_fee`` per distinct code —
        its Python-number path, the array path's very float operations — kept while the multiplier holds."""
        if multiplier != self._fee_multiplier:
            self._fee_cache = {}
            self._fee_multiplier = multiplier
        cache = self._fee_cache
        out = []
        for c in code_list:
            fee = cache.get(c)
            if fee is None:
                fee = cache[c] = int(inclusion_fee(self._weight_list[c], self._length_list[c], multiplier,
                                                   self.fee_params))
            out.append(fee)
        return out

    def _settle(self, record: int, error: str | None, ctx: BlockContext) -> None:
        """Record a market call's outcome; a failure is announced as an ``ExtrinsicFailed`` event."""
        self.book.settle(record, error, ctx.block_id, ctx.t)
        if error is not None and self.events is not None:
            self.events.emit("ExtrinsicFailed", record=record, call=SHORT_NAMES[self.book.code[record]],
                             origin=self.book.origin[record], error=error, t=ctx.t)

    def _charge(self, accounts: np.ndarray, fees: np.ndarray, tips: np.ndarray, ctx: BlockContext, *,
                any_tip: bool = True) -> np.ndarray:
        """Each account pays its fee (treasury/burn, keep-alive) in one ordered batch, then the tip of every
        call whose fee was paid goes to the block author; returns which fees were paid."""
        if self.economy is None:
            return np.ones(accounts.size, dtype=bool)
        led = self.economy.ledger
        paid, moved = led.apply_prepared(_FEE_OP, accounts, _NO_ACCOUNT, fees, self._ppb_arr, _KEEP_ALIVE,
                                          escrow_locks=False)
        self.fees_charged += sum(moved.tolist())
        if not any_tip:
            return paid
        tipped = paid & (tips > 0)
        if tipped.any() and ctx.author_account >= 0:
            _, moved = led.apply(OP_TRANSFER, accounts[tipped], ctx.author_account, tips[tipped], keep_alive=True)
            self.tips_paid += int(moved.sum())
        return paid

    def _execute_background(self, ctx: BlockContext, recs: np.ndarray, counts: np.ndarray, n_calls: int, fees: int,
                            tips: int) -> None:
        """The block's background calls: ``counts`` per call code, ``n_calls`` in all (the records of ``recs``
        below ``FIRST_DYNAMIC_RECORD``); ``fees``/``tips`` what they were priced at."""
        if n_calls == 0 and fees == 0 and tips == 0:
            return
        n = len(FULL_NAMES)
        if self.economy is not None and (fees or tips):
            ok = self._charge_background(ctx, fees, tips)
            if not ok:
                self.background_shortfall_blocks += 1
                self.failed_payment += counts
                self.n_failed += n_calls
                return
        if not self.filter.active:
            self.ok += counts
            return
        codes = recs[recs < FIRST_DYNAMIC_RECORD]
        paused = self.filter.paused(codes, np.full(codes.size, ctx.t_authored))
        self.ok += np.bincount(codes[~paused], minlength=n)
        self.failed_paused += np.bincount(codes[paused], minlength=n)
        self.n_failed += int(paused.sum())
        if paused.any():  # a failure event per (block, call) with failures
            for c in np.unique(codes[paused]).tolist():
                sel = codes == c
                self.outcomes.append(t=ctx.t, block=ctx.block_id, call=FULL_NAMES[c],
                                     ok=int((sel & ~paused).sum()), failed_paused=int((sel & paused).sum()))

    def _charge_background(self, ctx: BlockContext, fees: int, tips: int) -> bool:
        eco = self.economy
        fee_ok, tip_ok = eco.ledger.pay_fee_and_tip(eco.background_account, ctx.author_account, fees, tips, self._ppb)
        if fee_ok:
            self.fees_charged += fees
        if tip_ok:
            self.tips_paid += tips
        return fee_ok

    # --- reporting -----------------------------------------------------------------------------------
    def totals(self) -> dict[str, dict[str, int]]:
        """Per call with any traffic: ``{"pallet.call": {"ok", "failed_paused", "failed_payment",
        "failed_dispatch"}}``."""
        out = {}
        for i in range(len(FULL_NAMES)):
            row = {"ok": int(self.ok[i]), "failed_paused": int(self.failed_paused[i]),
                   "failed_payment": int(self.failed_payment[i]), "failed_dispatch": int(self.failed_dispatch[i])}
            if any(row.values()):
                out[FULL_NAMES[i]] = row
        return out

