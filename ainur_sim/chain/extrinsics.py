"""Market extrinsics as records: what was called, by whom, with which arguments, and what became of it.

A market call (register a DID, post a task, bid, …) is one row of the :class:`CallBook`. Its transaction
in the pool carries ``payload = FIRST_DYNAMIC_RECORD + row`` so that, when its block is finalized, the
runtime finds the call and dispatches it to its pallet. Calls are submitted through :meth:`CallBook.submit`
(the RPC client's job) into an outbox that the transaction flow drains into the pool at the next slot,
together with the background load — no process per call.

Outcomes: ``pending`` (submitted, not executed yet), ``ok``, ``failed`` (executed; the error names why;
the fee was kept) or ``dropped`` (left the pool unexecuted: rejected, evicted or expired). Arguments are
up to four integers per call; their meaning is the pallet's (documented with each call handler).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ainur_sim.chain.calls import CALLS, FIRST_DYNAMIC_RECORD, FULL_NAMES, code_of
from ainur_sim.chain.fees import CALL_LENGTHS, BlockLimits
from ainur_sim.chain.txpool import TxBatch

PENDING, OK, FAILED, DROPPED = 0, 1, 2, 3
STATUS_NAMES = ("pending", "ok", "failed", "dropped")
N_ARGS = 4
_PAD = [(-1,) * (N_ARGS - k) for k in range(N_ARGS + 1)]

CALLS_SCHEMA = {
    "record": "int64", "call": "str", "origin": "int64", "a0": "int64", "a1": "int64", "a2": "int64",
    "a3": "int64", "t_submit": "float64", "status": "str", "error": "str", "block": "int64", "t_exec": "float64",
    "first": "int64",
}


class CallBook:
    """Every market extrinsic of a run, one row each, and the outbox of calls not yet in the pool."""

    def __init__(self, limits: BlockLimits | None = None, *, gossip_s: float = 0.2,
                 longevity_s: float = 600.0) -> None:
        self.limits = limits or BlockLimits()
        self.gossip_s = float(gossip_s)
        self.longevity_s = float(longevity_s)
        self.code: list[int] = []
        self.origin: list[int] = []
        self.args: list[tuple[int, ...]] = []
        self.t_submit: list[float] = []
        self.tip: list[int] = []
        self.status: list[int] = []
        self.error: list[str] = []
        self.block: list[int] = []
        self.t_exec: list[float] = []
        self.first: list[int] = []
        """Per record: the first submission of the call it repeats (itself for an original)."""
        self._outbox_start = 0
        """Records ``_outbox_start ..`` are in the outbox (records enter it in order and leave it together)."""
        self._outbox_in_order = True
        """The outbox's submission times are non-decreasing and NaN-free."""
        self._outbox_last_t = -math.inf
        self._negative_tip = False
        """Some record has a negative tip (its batch then goes through ``TxBatch``'s checks, which refuse it)."""
        self._weight = {code_of(c): self.limits.call_weights[c] for c in CALLS}
        self._length = {code_of(c): CALL_LENGTHS[c] for c in CALLS}
        #: the outbox's batches pass ``TxBatch``'s checks by construction when these do
        self._valid_batches = (self.longevity_s > 0 and self.gossip_s >= 0
                               and all(w >= 0 for w in self._weight.values())
                               and all(n >= 0 for n in self._length.values()))

    def __len__(self) -> int:
        return len(self.code)

    def submit(self, call: str, origin: int, t: float, args: tuple[int, ...] = (), tip: int = 0,
               resubmits: int | None = None) -> int:
        """Record a call by ``origin`` (an account) submitted at ``t`` (s); returns its record index.
        ``resubmits``: the record this one resubmits (after the pool dropped it), if any."""
        if len(args) > N_ARGS:
            raise ValueError(f"at most {N_ARGS} arguments per call, got {len(args)}")
        i = len(self.code)
        self.code.append(code_of(call))
        self.origin.append(int(origin))
        self.args.append((*map(int, args), *_PAD[len(args)]))
        t = float(t)
        self.t_submit.append(t)
        tip = int(tip)
        self.tip.append(tip)
        self.status.append(PENDING)
        self.error.append("")
        self.block.append(-1)
        self.t_exec.append(math.nan)
        self.first.append(i if resubmits is None else self.first[resubmits])
        if not t >= self._outbox_last_t:
            self._outbox_in_order = False
        self._outbox_last_t = t
        if tip < 0:
            self._negative_tip = True
        return i

    def submit_many(self, call: str, origins: list[int], t: float, args: list[tuple[int, ...]], *,
                    padded: bool = False) -> None:
        """``submit(call, origin, t, a)`` for each ``origin, a`` of ``origins, args`` in turn (no tip, no
        resubmission): one record each, in order. ``padded``: every origin is a Python int and every ``a``
        a tuple of ``N_ARGS`` Python ints, unused ones −1 (as stored; taken as they are)."""
        n = len(origins)
        if len(args) != n:
            raise ValueError(f"{n} origins but {len(args)} argument tuples")
        if not n:
            return
        i = len(self.code)
        code = code_of(call)
        if padded:
            self.args.extend(args)
            self.origin.extend(origins)
        else:
            if any(len(a) > N_ARGS for a in args):
                raise ValueError(f"at most {N_ARGS} arguments per call, got {max(len(a) for a in args)}")
            self.args.extend([(*map(int, a), *_PAD[len(a)]) for a in args])
            self.origin.extend([int(o) for o in origins])
        self.code.extend([code] * n)
        t = float(t)
        self.t_submit.extend([t] * n)
        self.tip.extend([0] * n)
        self.status.extend([PENDING] * n)
        self.error.extend([""] * n)
        self.block.extend([-1] * n)
        self.t_exec.extend([math.nan] * n)
        self.first.extend(range(i, i + n))
        if not t >= self._outbox_last_t:
            self._outbox_in_order = False
        self._outbox_last_t = t

    @property
    def outbox_in_order(self) -> bool:
        """The outbox's submission times are non-decreasing and NaN-free (what ``take_outbox`` will return)."""
        return self._outbox_in_order

    def take_outbox(self) -> TxBatch | None:
        """The calls submitted since the last take, as a pool batch (None if there are none)."""
        r0, r1 = self._outbox_start, len(self.code)
        if r0 == r1:
            return None
        self._outbox_start = r1
        self._outbox_in_order = True
        self._outbox_last_t = -math.inf
        n = r1 - r0
        t = np.array(self.t_submit[r0:r1], dtype=np.float64)
        codes = self.code[r0:r1]
        weight, length = self._weight, self._length
        # the columns ``TxBatch.of`` would broadcast, built at their length directly
        columns = dict(t_submit=t, weight_s=np.array([weight[c] for c in codes], dtype=np.float64),
                       length_bytes=np.array([length[c] for c in codes], dtype=np.int64),
                       tip=np.array(self.tip[r0:r1], dtype=np.int64),
                       operational=np.zeros(n, dtype=np.bool_), longevity_s=np.full(n, self.longevity_s),
                       sender=np.full(n, -1, dtype=np.int64), nonce=np.zeros(n, dtype=np.int64),
                       payload=np.arange(r0 + FIRST_DYNAMIC_RECORD, r1 + FIRST_DYNAMIC_RECORD, dtype=np.int64),
                       t_ready=t + self.gossip_s, fee=np.zeros(n, dtype=np.int64))
        if self._valid_batches and not self._negative_tip and not np.isnan(t).any():
            # (weights, lengths, tips ≥ 0, longevity > 0, t_ready ≥ t_submit: what the checks would find)
            return TxBatch.unchecked(**columns)
        return TxBatch(**columns)

    def weight_s(self, i: int) -> float:
        """Dispatch weight of record ``i``, seconds."""
        return self._weight[self.code[i]]

    def length_bytes(self, i: int) -> int:
        """Encoded length of record ``i``, bytes."""
        return self._length[self.code[i]]

    def mark_dropped(self, payloads: np.ndarray) -> np.ndarray:
        """Mark the market calls among dropped pool payloads; returns their record indices."""
        recs = payloads[payloads >= FIRST_DYNAMIC_RECORD] - FIRST_DYNAMIC_RECORD
        for i in recs.tolist():
            if self.status[i] == PENDING:
                self.status[i] = DROPPED
        return recs

    def settle(self, i: int, error: str | None, block: int, t: float) -> None:
        """Record the execution outcome of record ``i`` (``error`` None = success)."""
        self.status[i] = OK if error is None else FAILED
        self.error[i] = error or ""
        self.block[i] = int(block)
        self.t_exec[i] = float(t)

    def counts(self) -> dict[str, int]:
        """Records per status name."""
        c = np.bincount(np.asarray(self.status, dtype=np.int64), minlength=len(STATUS_NAMES))
        return {name: int(c[k]) for k, name in enumerate(STATUS_NAMES)}

    def frame(self) -> pd.DataFrame:
        """One row per record (``calls.parquet``)."""
        args = np.asarray(self.args, dtype=np.int64).reshape(-1, N_ARGS)
        return pd.DataFrame({
            "record": np.arange(len(self.code), dtype=np.int64),
            "call": pd.Series([FULL_NAMES[c] for c in self.code], dtype=object),
            "origin": np.asarray(self.origin, dtype=np.int64),
            **{f"a{k}": args[:, k] for k in range(N_ARGS)},
            "t_submit": np.asarray(self.t_submit, dtype=np.float64),
            "status": pd.Series([STATUS_NAMES[s] for s in self.status], dtype=object),
            "error": pd.Series(self.error, dtype=object),
            "block": np.asarray(self.block, dtype=np.int64),
            "t_exec": np.asarray(self.t_exec, dtype=np.float64),
            "first": np.asarray(self.first, dtype=np.int64),
        })
