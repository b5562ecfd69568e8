"""Validator availability: offline intervals, and what they do to block delivery.

An offline validator authors nothing and receives nothing; it comes back at the end of its interval
and, ``sync_delay_s`` later, has caught up with the network (block production schedules that sync).
Intervals are held as parallel arrays (``validator``, ``start``, ``end``, ``kind``) so that checks over all
validators run in one call.

Two sources of intervals:

* fixed outage windows (``add_outage``): a chosen set of validators down for one window;
* random crashes (``add_random_crashes``): per validator an alternating renewal process, up for an
  exponential time with mean MTBF, down for a repair time with mean MTTR (exponential, or lognormal for
  the heavy right tail real repairs have), over a horizon.

After every addition the intervals of each validator are merged (overlapping or touching intervals become
one) and sorted by ``(validator, start)``, so per validator they are disjoint and sorted, and a row pointer
``ptr`` gives each validator's slice. Lookups at a time (``online``, ``offline_at``) binary-search every
validator's slice in one compiled loop: a few microseconds even with tens of thousands of intervals
(numpy ``searchsorted`` over all intervals costs ~100 µs for 1,000 validators).
"""

from __future__ import annotations

from typing import Literal

import numba
import numpy as np
import pandas as pd

#: Launch-plan reliability targets (seed/000 "Reliability"): MTBF > 720 h, MTTR < 30 min. Targets, not measurements.
LAUNCH_MTBF_S = 720 * 3600.0
LAUNCH_MTTR_S = 30 * 60.0

#: Interval kinds are bit flags, so an interval merged from both sources carries both.
KIND_OUTAGE = 1
KIND_CRASH = 2
KIND_LABELS = {KIND_OUTAGE: "outage", KIND_CRASH: "crash", KIND_OUTAGE | KIND_CRASH: "outage+crash"}

_MAX_DRAW = 4_000_000  # up/down times drawn at once by add_random_crashes (bounds memory)


@numba.njit(cache=True)
def _covered(ptr: np.ndarray, start: np.ndarray, end: np.ndarray, t: np.ndarray, out: np.ndarray) -> None:
    """``out[v]`` = validator ``v`` is inside one of its intervals at ``t[v]``.

    Validator ``v``'s intervals are ``ptr[v]:ptr[v + 1]``, disjoint and sorted; binary search for the last
    one starting at or before ``t[v]`` and test its end.
    """
    for v in range(ptr.shape[0] - 1):
        first = ptr[v]
        lo = first
        hi = ptr[v + 1]
        tv = t[v]
        while lo < hi:
            mid = (lo + hi) // 2
            if start[mid] <= tv:
                lo = mid + 1
            else:
                hi = mid
        out[v] = lo > first and tv < end[lo - 1]


def _merge(
    validator: np.ndarray, start: np.ndarray, end: np.ndarray, kind: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort intervals by ``(validator, start)``, drop empty ones and merge overlapping or touching ones.

    Vectorised: the running maximum of earlier ends within a validator is taken on exact integer keys
    ``validator * (m + 1) + rank(end)``, so one ``maximum.accumulate`` serves all validators.
    """
    keep = end > start
    validator, start, end, kind = validator[keep], start[keep], end[keep], kind[keep]
    m = validator.shape[0]
    if m == 0:
        return validator, start, end, kind
    order = np.lexsort((end, start, validator))
    validator, start, end, kind = validator[order], start[order], end[order], kind[order]
    uniq_end, end_rank = np.unique(end, return_inverse=True)
    base = validator * (m + 1)
    run_max = np.maximum.accumulate(base + end_rank)
    same = validator[1:] == validator[:-1]
    prev_end = uniq_end[np.where(same, run_max[:-1] - base[1:], 0)]  # max earlier end of the same validator
    first = np.ones(m, dtype=bool)
    first[1:] = ~same | (start[1:] > prev_end)
    heads = np.flatnonzero(first)
    return (
        validator[heads],
        start[heads],
        np.maximum.reduceat(end, heads),
        np.bitwise_or.reduceat(kind, heads),
    )


class Availability:
    """Offline intervals ``[start, end)`` per validator (seconds of simulated time)."""

    def __init__(self, n_validators: int, sync_delay_s: float = 1.0) -> None:
        self.n = n_validators
        self.sync_delay_s = float(sync_delay_s)
        self.validator = np.zeros(0, dtype=np.int64)
        self.start = np.zeros(0)
        self.end = np.zeros(0)
        self.kind = np.zeros(0, dtype=np.int8)
        self._reindex()

    # --- building --------------------------------------------------------------------------------------
    def add_outage(self, validators: np.ndarray, start: float, end: float) -> None:
        """Take ``validators`` offline for ``[start, end)``; merged with any interval it overlaps or touches."""
        v = np.asarray(validators, dtype=np.int64).reshape(-1)
        self._add(v, np.full(v.shape, float(start)), np.full(v.shape, float(end)), KIND_OUTAGE)

    def add_random_crashes(
        self,
        mtbf_s: float,
        mttr_s: float,
        horizon_s: float,
        rng: np.random.Generator,
        validators: np.ndarray | None = None,
        *,
        repair: Literal["exponential", "lognormal"] = "exponential",
        repair_sigma: float = 1.0,
        start_s: float = 0.0,
    ) -> None:
        """Add independent crash/recover processes, one per validator, for crashes starting in ``[start_s, horizon_s)``.

        Each validator starts up at ``start_s`` and alternates: up for ``Exp(mean=mtbf_s)`` seconds, then
        down for a repair time with mean ``mttr_s``: ``Exp(mean=mttr_s)``, or with ``repair="lognormal"`` a
        lognormal of log-standard-deviation ``repair_sigma`` and the same mean (``mu = ln(mttr_s) - sigma²/2``).
        Long-run offline share is ``mttr_s / (mtbf_s + mttr_s)`` either way. A repair that runs past
        ``horizon_s`` keeps its true end (it is not clipped). ``validators`` defaults to all.
        Draws are vectorised (a block of cycles for all validators at a time) and deterministic for a
        given ``rng`` state.
        """
        if not (mtbf_s > 0 and mttr_s > 0):
            raise ValueError(f"mtbf_s and mttr_s must be > 0, got {mtbf_s}, {mttr_s}")
        if repair not in ("exponential", "lognormal"):
            raise ValueError(f"repair must be 'exponential' or 'lognormal', got {repair!r}")
        vs = np.arange(self.n, dtype=np.int64) if validators is None else np.asarray(validators, np.int64).reshape(-1)
        span = float(horizon_s) - float(start_s)
        if vs.size == 0 or span <= 0 or not np.isfinite(mtbf_s):
            return
        cycle = mtbf_s + mttr_s
        expected = span / cycle
        spread = np.sqrt(span * (mtbf_s**2 + mttr_s**2) / cycle**3)  # sd of the renewal count (exp. times)
        per_round = int(np.clip(np.ceil(expected + 5 * spread + 4), 1, max(1, _MAX_DRAW // vs.size)))
        offset = np.full(vs.size, float(start_s))
        rows = np.arange(vs.size)
        out_v, out_s, out_e = [], [], []
        mu = np.log(mttr_s) - 0.5 * repair_sigma**2
        while rows.size:
            shape = (rows.size, per_round)
            up = rng.exponential(mtbf_s, size=shape)
            if repair == "exponential":
                down = rng.exponential(mttr_s, size=shape)
            else:
                down = rng.lognormal(mu, repair_sigma, size=shape)
            ends = offset[rows, None] + np.cumsum(up + down, axis=1)
            starts = ends - down
            hit = starts < horizon_s
            out_v.append(np.broadcast_to(vs[rows, None], shape)[hit])
            out_s.append(starts[hit])
            out_e.append(ends[hit])
            offset[rows] = ends[:, -1]
            rows = rows[offset[rows] < horizon_s]
        v = np.concatenate(out_v)
        self._add(v, np.concatenate(out_s), np.concatenate(out_e), KIND_CRASH)

    def _add(self, v: np.ndarray, start: np.ndarray, end: np.ndarray, kind: int) -> None:
        if v.size and (v.min() < 0 or v.max() >= self.n):
            raise ValueError(f"validator index out of range 0..{self.n - 1}")
        self.validator, self.start, self.end, self.kind = _merge(
            np.concatenate([self.validator, v]),
            np.concatenate([self.start, start]),
            np.concatenate([self.end, end]),
            np.concatenate([self.kind, np.full(v.shape, kind, dtype=np.int8)]),
        )
        self._reindex()

    def _reindex(self) -> None:
        """Lookup structures: each validator's slice ``ptr[v]:ptr[v + 1]``, globally sorted starts and ends."""
        self._ptr = np.searchsorted(self.validator, np.arange(self.n + 1, dtype=np.int64), side="left")
        self._starts_sorted = np.sort(self.start)
        self._ends_sorted = np.sort(self.end)

    def _down(self, t: np.ndarray) -> np.ndarray:
        """Mask of validators inside an interval at their own time ``t[v]``."""
        out = np.empty(self.n, dtype=np.bool_)
        _covered(self._ptr, self.start, self.end, t, out)
        return out

    # --- queries ---------------------------------------------------------------------------------------
    def online(self, t: float) -> np.ndarray:
        """Boolean mask of validators online at time ``t``."""
        if not self.validator.size:
            return np.ones(self.n, dtype=bool)
        return ~self._down(np.full(self.n, float(t)))

    def offline_at(self, arrival: np.ndarray) -> np.ndarray:
        """Mask of validators that are offline at their own ``arrival[v]`` time (they miss that delivery)."""
        if not self.validator.size:
            return np.zeros(arrival.shape[0], dtype=bool)
        if arrival.shape[0] != self.n:
            raise ValueError(f"arrival has {arrival.shape[0]} entries, expected one per validator ({self.n})")
        return self._down(np.ascontiguousarray(arrival, dtype=np.float64))

    def offline_count(self, t_grid: np.ndarray) -> np.ndarray:
        """Number of validators offline at each time of ``t_grid`` (same shape).

        Intervals are disjoint per validator, so the count is ``#{start <= t} - #{end <= t}``.
        """
        t = np.asarray(t_grid, dtype=float)
        begun = np.searchsorted(self._starts_sorted, t, side="right")
        return begun - np.searchsorted(self._ends_sorted, t, side="right")

    def returns(self) -> list[tuple[int, float]]:
        """(validator, time it is back online and synced) for every interval."""
        return [(int(v), float(e) + self.sync_delay_s) for v, e in zip(self.validator, self.end, strict=True)]

    def offline_seconds(self, horizon: float) -> np.ndarray:
        """Seconds each validator spent offline within ``[0, horizon)`` (intervals are disjoint per validator)."""
        out = np.zeros(self.n)
        np.add.at(out, self.validator, np.clip(self.end, 0, horizon) - np.clip(self.start, 0, horizon))
        return out

    def intervals_frame(self) -> pd.DataFrame:
        """All intervals as a table: ``validator``, ``start`` (s), ``end`` (s), ``kind`` (outage / crash / both)."""
        labels = list(KIND_LABELS.values())
        kind = pd.Categorical.from_codes(
            np.searchsorted(list(KIND_LABELS), self.kind), categories=labels
        ) if self.kind.size else pd.Categorical([], categories=labels)
        return pd.DataFrame({"validator": self.validator, "start": self.start, "end": self.end, "kind": kind})
