"""Emergency pause: ``pallet-tx-pause`` (pause chosen ``pallet.call``s) and ``pallet-safe-mode`` (pause
everything outside a whitelist), each for time windows.

As on Substrate the filter acts at dispatch (``BaseCallFilter``), not at pool validation: a paused call
is still accepted, included and charged its fee, and then fails with ``CallFiltered``. Whitelisted calls
can never be paused. The filter state of a block is that of its authoring time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ainur_sim.chain.calls import FULL_NAMES, matching_codes


@dataclass(frozen=True)
class PauseWindow:
    """``[start_s, end_s)``; ``codes``: the paused call codes (tx-pause) — ignored for safe mode."""

    start_s: float
    end_s: float
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


class CallFilter:
    """Which calls are paused when."""

    def __init__(self, whitelist: list[str]) -> None:
        self.whitelisted = np.zeros(len(FULL_NAMES), dtype=bool)
        self.whitelisted[matching_codes(whitelist)] = True
        self.tx_pause: list[PauseWindow] = []
        self.safe_mode: list[PauseWindow] = []

    def pause(self, start_s: float, end_s: float, patterns: list[str]) -> None:
        """tx-pause: pause calls matching ``patterns`` (``pallet.call`` / ``pallet.*``) during the window."""
        self.tx_pause.append(PauseWindow(start_s, end_s, matching_codes(patterns)))

    def enter_safe_mode(self, start_s: float, end_s: float) -> None:
        """safe-mode: every call outside the whitelist is paused during the window."""
        self.safe_mode.append(PauseWindow(start_s, end_s))

    @property
    def active(self) -> bool:
        return bool(self.tx_pause or self.safe_mode)

    def paused(self, codes: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Mask: call ``codes[i]`` dispatched at time ``t[i]`` is filtered."""
        codes = np.asarray(codes, dtype=np.int64)
        t = np.asarray(t, dtype=np.float64)
        out = np.zeros(codes.shape, dtype=bool)
        for w in self.safe_mode:
            out |= (t >= w.start_s) & (t < w.end_s)
        for w in self.tx_pause:
            out |= (t >= w.start_s) & (t < w.end_s) & np.isin(codes, w.codes)
        out &= ~self.whitelisted[codes]
        return out
