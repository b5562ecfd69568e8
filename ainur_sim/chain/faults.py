"""Validator availability: offline intervals, and what they do to block delivery.

An offline validator authors nothing and receives nothing; it comes back at the end of its interval
and, ``sync_delay_s`` later, has caught up with the network (block production schedules that sync).
Intervals are held as three parallel arrays so that checks over all validators are vectorised.
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

    def offline_at(self, arrival: np.ndarray) -> np.ndarray:
        """Mask of validators that are offline at their own ``arrival[v]`` time (they miss that delivery)."""
        missed = np.zeros(arrival.shape[0], dtype=bool)
        if self.validator.size:
            t = arrival[self.validator]
            hit = (self.start <= t) & (t < self.end)
            missed[self.validator[hit]] = True
        return missed

    def returns(self) -> list[tuple[int, float]]:
        """(validator, time it is back online and synced) for every interval."""
        return [(int(v), float(e) + self.sync_delay_s) for v, e in zip(self.validator, self.end, strict=True)]

    def offline_seconds(self, horizon: float) -> np.ndarray:
        """Seconds each validator spent offline within ``[0, horizon)`` (intervals assumed disjoint per validator)."""
        out = np.zeros(self.n)
        np.add.at(out, self.validator, np.clip(self.end, 0, horizon) - np.clip(self.start, 0, horizon))
        return out
