"""The runtime: executes finalized blocks' extrinsics in order (state is applied on finality, DESIGN §3).

Fees are charged before dispatch (they are settled per block by ``txflow``); then each call passes the
call filter (emergency pause) and is dispatched. A filtered call fails with ``CallFiltered``: its fee is
kept and nothing else changes. Outcomes are counted per call and per finalization, never kept per
transaction. Pallets (the market) register dispatch handlers for their calls as they are built.
"""

from __future__ import annotations

import numpy as np

from ainur_sim.chain.calls import FIRST_DYNAMIC_RECORD, FULL_NAMES
from ainur_sim.chain.pause import CallFilter
from ainur_sim.record import ColumnStore

OUTCOME_SCHEMA = {"t": "float64", "block": "int64", "call": "str", "ok": "int64", "failed_paused": "int64"}


class Runtime:
    """Executes finalized extrinsics: filter, then dispatch; counts outcomes."""

    def __init__(self, call_filter: CallFilter) -> None:
        self.filter = call_filter
        self.ok = np.zeros(len(FULL_NAMES), dtype=np.int64)
        self.failed_paused = np.zeros(len(FULL_NAMES), dtype=np.int64)
        self.outcomes = ColumnStore({k: ("object" if v == "str" else v) for k, v in OUTCOME_SCHEMA.items()}, 256)

    def execute(self, payloads: np.ndarray, blocks: np.ndarray, t_blocks: np.ndarray, t: float) -> int:
        """Execute finalized calls (``payloads``: call records, in block order; ``blocks``: their blocks;
        ``t_blocks``: the blocks' authoring times). Returns the number of failed calls."""
        if payloads.size == 0:
            return 0
        codes = np.where(payloads >= FIRST_DYNAMIC_RECORD, -1, payloads)
        if (codes < 0).any():
            raise NotImplementedError("market call records are dispatched by the market pallets")
        n = len(FULL_NAMES)
        if not self.filter.active:
            self.ok += np.bincount(codes, minlength=n)
            return 0
        paused = self.filter.paused(codes, t_blocks)
        ok = np.bincount(codes[~paused], minlength=n)
        bad = np.bincount(codes[paused], minlength=n)
        self.ok += ok
        self.failed_paused += bad
        if paused.any():  # a failure event per (block, call) with failures
            keys = np.unique(np.column_stack([blocks[paused], codes[paused]]), axis=0)
            for b, c in keys:
                sel = (blocks == b) & (codes == c)
                self.outcomes.append(t=t, block=int(b), call=FULL_NAMES[c], ok=int((sel & ~paused).sum()),
                                     failed_paused=int((sel & paused).sum()))
        return int(bad.sum())

    def totals(self) -> dict[str, dict[str, int]]:
        """Per call with any traffic: ``{"pallet.call": {"ok": n, "failed_paused": m}}``."""
        return {FULL_NAMES[i]: {"ok": int(self.ok[i]), "failed_paused": int(self.failed_paused[i])}
                for i in range(len(FULL_NAMES)) if self.ok[i] or self.failed_paused[i]}
