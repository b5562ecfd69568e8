"""Validator availability: offline intervals, and what they do to block delivery.

An offline validator authors nothing and receives nothing; when it comes back it syncs, i.e. every block
that reached it while it was down is imported at ``end + sync_delay_s``. Intervals are held as three
parallel arrays so that checks over all validators are vectorised.
"""

from __future__ import annotations

import numpy as np


class Availability:
    """Offline intervals ``[start, end)`` per validator."""

    def __init__(self, n_validators: int, sync_delay_s: float = 1.0) -> None:
        self.n = n_validators
        self.sync_delay_s = float(sync_delay_s)
        self.validator = np.zeros(0, dtype=np.int64)
        self.start = np.zeros(0)
        self.end = np.zeros(0)

    def add_outage(self, validators: np.ndarray, start: float, end: float) -> None:
        """Take ``validators`` offline for ``[start, end)``."""
        v = np.asarray(validators, dtype=np.int64)
        self.validator = np.concatenate([self.validator, v])
        self.start = np.concatenate([self.start, np.full(v.shape, float(start))])
        self.end = np.concatenate([self.end, np.full(v.shape, float(end))])

    def online(self, t: float) -> np.ndarray:
        """Boolean mask of validators online at time ``t``."""
        mask = np.ones(self.n, dtype=bool)
        if self.validator.size:
            down = (self.start <= t) & (t < self.end)
            mask[self.validator[down]] = False
        return mask

    def defer_arrivals(self, arrival: np.ndarray) -> np.ndarray:
        """Move arrivals that fall inside a validator's offline interval to its return plus sync delay."""
        out = arrival
        while self.validator.size:  # a deferred arrival may land in the validator's next interval
            t = out[self.validator]
            hit = (self.start <= t) & (t < self.end)
            if not hit.any():
                break
            out = out.copy()
            np.maximum.at(out, self.validator[hit], self.end[hit] + self.sync_delay_s)
        return out

    def offline_seconds(self, horizon: float) -> np.ndarray:
        """Seconds each validator spent offline within ``[0, horizon)`` (intervals assumed disjoint per validator)."""
        out = np.zeros(self.n)
        np.add.at(out, self.validator, np.clip(self.end, 0, horizon) - np.clip(self.start, 0, horizon))
        return out
