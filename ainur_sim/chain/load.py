"""Background transfer load: a non-homogeneous Poisson process of plain transfers, generated per window.

The rate is ``tps × daily(t) × ramp(t) × Π spike(t)``:

* daily: ``1 + amplitude · cos(2π (t − peak_hour·3600) / 86400)`` with ``t = 0`` at midnight;
* ramp: ``ramp_from`` until ``ramp_start_s``, linear to ``ramp_to`` at ``ramp_end_s``, then ``ramp_to``
  (a step when start = end);
* spikes: each ``(start_s, duration_s, factor)`` multiplies the rate by ``factor`` on
  ``[start_s, start_s + duration_s)`` (e.g. ``(3600, 1800, 10)`` for 10× launch traffic).

:func:`generate` draws one window's arrivals exactly by thinning (Lewis–Shedler): a homogeneous process at
an upper bound of the rate on the window, each point kept with probability rate(t)/bound. Everything is
vectorised; the result is a :class:`~ainur_sim.chain.txpool.TxBatch` of independent background
transfers (``sender = -1``). Units: seconds, bytes, base units (1 token = 10**12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ainur_sim.chain.fees import CALL_LENGTHS, CALL_WEIGHTS
from ainur_sim.chain.sorting import insertion_sort_prefix
from ainur_sim.chain.txpool import TxBatch

DAY_S: float = 86400.0

_U_MAX: float = 1.0 - 2.0**-53
"""The largest value ``Generator.random`` returns ((2^53 − 1) / 2^53)."""

DEFAULT_LONGEVITY_S: float = 330.0
"""Mortal era of user transactions: Polkadot-JS signs for 5 min / 6 s + 5 = 55 blocks ≈ 330 s (substrate.md §5)."""

DEFAULT_GOSSIP_MEAN_S: float = 0.5
"""Mean of the exponential delay from submission at an RPC node until block authors have the transaction.
[assumption] `sc-network-transactions` propagates on import (plus a re-propagation every 2.9 s), so most
transactions reach authors within a few hundred ms of gossip hops; 0.5 s is a round figure for that."""


@dataclass(frozen=True)
class LoadSchedule:
    """Offered background load over time, transactions per second (see the module docstring)."""

    tps: float
    daily_amplitude: float = 0.0
    peak_hour: float = 14.0
    spikes: tuple[tuple[float, float, float], ...] = ()
    ramp_start_s: float = 0.0
    ramp_end_s: float = 0.0
    ramp_from: float = 1.0
    ramp_to: float = 1.0

    def __post_init__(self) -> None:
        if not self.tps >= 0:
            raise ValueError(f"load.tps must be ≥ 0, got {self.tps}")
        if not 0.0 <= self.daily_amplitude <= 1.0:
            raise ValueError(f"load.daily_amplitude must be in [0, 1], got {self.daily_amplitude}")
        if self.ramp_end_s < self.ramp_start_s:
            raise ValueError("load.ramp_end_s must be ≥ ramp_start_s")
        if self.ramp_from < 0 or self.ramp_to < 0:
            raise ValueError("load.ramp_from and ramp_to must be ≥ 0")
        spikes = tuple(tuple(float(x) for x in sp) for sp in self.spikes)
        for sp in spikes:
            if len(sp) != 3 or sp[1] <= 0 or sp[2] < 0:
                raise ValueError(f"each spike is (start_s, duration_s > 0, factor ≥ 0), got {sp}")
        object.__setattr__(self, "spikes", spikes)
        object.__setattr__(self, "_regimes", {})  # constant_multiplier's values (not a field)
        # (start, duration, factor) rows for _rate_1d (not a field)
        object.__setattr__(self, "_spike_table", np.array(spikes, dtype=np.float64).reshape(-1, 3))

    def _daily(self, t: np.ndarray) -> np.ndarray:
        phase = 2.0 * np.pi * (t - self.peak_hour * 3600.0) / DAY_S
        return 1.0 + self.daily_amplitude * np.cos(phase)

    def _ramp(self, t: np.ndarray) -> np.ndarray:
        a, b = self.ramp_start_s, self.ramp_end_s
        if b > a:
            frac = np.clip((t - a) / (b - a), 0.0, 1.0)
            return self.ramp_from + (self.ramp_to - self.ramp_from) * frac
        return np.where(t < a, self.ramp_from, self.ramp_to)

    def multiplier(self, t) -> np.ndarray:
        """Rate relative to ``tps`` at times ``t`` (s)."""
        t = np.asarray(t, dtype=np.float64)
        m = self._daily(t) * self._ramp(t)
        for start, dur, factor in self.spikes:
            m = np.where((t >= start) & (t < start + dur), m * factor, m)
        return m

    def rate(self, t) -> np.ndarray:
        """Arrival rate at times ``t``, transactions per second."""
        return self.tps * self.multiplier(t)

    def max_rate(self, t0: float, t1: float) -> float:
        """An upper bound of the rate on ``[t0, t1]`` (exact for the daily and ramp parts)."""
        if self.daily_amplitude == 0.0:
            daily = 1.0  # what both expressions below give: 1 + 0 and max(1 + 0·cos) are exactly 1
        else:
            peak = self.peak_hour * 3600.0
            k = math.ceil((t0 - peak) / DAY_S)
            has_peak = peak + k * DAY_S <= t1
            daily = 1.0 + self.daily_amplitude if has_peak else self._daily_max(t0, t1)
        # a flat ramp: from + (to − from)·frac is from + 0, exactly from
        flat = self.ramp_from == self.ramp_to
        ramp = float(self.ramp_from) if flat else self._ramp_max(t0, t1)
        spike = 1.0
        for start, dur, factor in self.spikes:
            if start < t1 and start + dur > t0:
                spike *= max(factor, 1.0)
        return self.tps * daily * ramp * spike

    def min_rate(self, t0: float, t1: float) -> float:
        """A lower bound of the rate on ``[t0, t1]``, tx/s, below every value :meth:`rate` computes there: the
        exact minimum of each factor (the daily cycle's trough when it falls inside, else its lower end
        point; the ramp's lower end; the factor of a spike active throughout, of one active in part when below
        1), less a relative 1e-9
        for rounding (the computed rate is within a few ulp of the exact one)."""
        daily = 1.0
        a = self.daily_amplitude
        if a != 0.0:
            trough = self.peak_hour * 3600.0 + DAY_S / 2.0
            k = math.ceil((t0 - trough) / DAY_S)
            if trough + k * DAY_S <= t1:
                daily = 1.0 - a
            else:
                p = self.peak_hour * 3600.0
                daily = min(1.0 + a * math.cos(2.0 * math.pi * (t0 - p) / DAY_S),
                            1.0 + a * math.cos(2.0 * math.pi * (t1 - p) / DAY_S))
        ra, rb = self.ramp_start_s, self.ramp_end_s
        if self.ramp_from == self.ramp_to:
            ramp = float(self.ramp_from)
        elif rb > ra:
            ramp = min(self.ramp_from + (self.ramp_to - self.ramp_from) * min(max((t - ra) / (rb - ra), 0.0), 1.0)
                       for t in (t0, t1))
        else:
            ramp = min(self.ramp_from if t < ra else self.ramp_to for t in (t0, t1))
        spike = 1.0
        for start, dur, factor in self.spikes:
            if start <= t0 and t1 < start + dur:  # active throughout
                spike *= factor
            elif start < t1 and start + dur > t0:  # active in part of the window
                spike *= min(factor, 1.0)
        return max(self.tps * daily * ramp * spike * (1.0 - 1e-9), 0.0)

    def _daily_max(self, t0: float, t1: float) -> float:
        """``float(self._daily(np.array([t0, t1])).max())``: the same IEEE operations in the same order on
        Python floats, only the cosine by numpy (on the same two-element array)."""
        p = self.peak_hour * 3600.0
        c = np.cos(np.array([2.0 * np.pi * (t0 - p) / DAY_S, 2.0 * np.pi * (t1 - p) / DAY_S]))
        a = self.daily_amplitude
        return float(max(1.0 + a * float(c[0]), 1.0 + a * float(c[1])))

    def _ramp_max(self, t0: float, t1: float) -> float:
        """``float(self._ramp(np.array([t0, t1])).max())`` on Python floats (clipping is exact)."""
        a, b = self.ramp_start_s, self.ramp_end_s
        if b > a:
            vals = [self.ramp_from + (self.ramp_to - self.ramp_from) * min(max((float(t) - a) / (b - a), 0.0), 1.0)
                    for t in (t0, t1)]
        else:
            vals = [self.ramp_from if float(t) < a else self.ramp_to for t in (t0, t1)]
        return float(max(float(vals[0]), float(vals[1])))

    def _rate_1d(self, t: np.ndarray) -> np.ndarray:
        """``self.rate(t)`` of a 1-D float64 array (finite values), bit for bit, in three calls: the cosine's
        argument, numpy's cosine, and the rest in one pass (:func:`_rate_from_cos`)."""
        amp = float(self.daily_amplitude)
        # (with no daily cycle, 1 + 0·cos(·) is exactly 1: the cosine is not needed)
        c = t if amp == 0.0 else np.cos(_daily_phase(t, 2.0 * np.pi, self.peak_hour * 3600.0, DAY_S))
        a, b = float(self.ramp_start_s), float(self.ramp_end_s)
        return _rate_from_cos(t, c, amp, float(self.tps), a, b, float(self.ramp_from), float(self.ramp_to),
                              float(self.ramp_to - self.ramp_from), self._spike_table)

    def constant_multiplier(self, t0: float, t1: float) -> float | None:
        """The multiplier if it is the same at every ``t`` in ``[t0, t1]`` (bit for bit: what
        :meth:`multiplier` returns at any such ``t``), else None.

        That holds when there is no daily cycle (``1 + 0·cos`` is exactly 1), the ramp is flat or the
        window lies on one side of it (its clipped fraction is then exactly 0 or 1 throughout), and no
        spike starts or ends in ``(t0, t1]``. Arrival times are drawn in ``[t0, t1]``, so a generator
        may then compare against one number instead of evaluating the rate per arrival.
        """
        if self.daily_amplitude != 0.0:
            return None
        a, b = self.ramp_start_s, self.ramp_end_s
        if self.ramp_from != self.ramp_to:
            if b > a and not (t1 <= a or t0 >= b):
                return None
            if b <= a and t0 < a <= t1:
                return None
        active = []
        for start, dur, _ in self.spikes:
            end = start + dur
            if t0 < start <= t1 or t0 < end <= t1:
                return None
            active.append(start <= t0 < end)
        # the multiplier only depends on the ramp's side and the active spikes: computed once per such regime
        before = self.ramp_from == self.ramp_to or (t1 <= a if b > a else t1 < a)  # (a flat ramp: one side)
        regime = (before, *active)
        value = self._regimes.get(regime)
        if value is None:
            value = self._regimes[regime] = float(self.multiplier(np.array([t0]))[0])
        return value

    def expected_count(self, t0: float, t1: float) -> float:
        """∫ rate over ``[t0, t1]``: Gauss–Legendre on pieces split at every ramp and spike edge and at
        most 1 h long (the integrand is smooth on each piece, so this is exact to rounding)."""
        edges = [t0, t1, self.ramp_start_s, self.ramp_end_s]
        for start, dur, _ in self.spikes:
            edges += [start, start + dur]
        cuts = np.unique(np.clip(np.array(edges, dtype=np.float64), t0, t1))
        pieces = [np.linspace(a, b, max(2, math.ceil((b - a) / 3600.0) + 1)) for a, b in zip(cuts[:-1], cuts[1:],
                                                                                             strict=True)]
        x, wts = np.polynomial.legendre.leggauss(16)
        total = 0.0
        for grid in pieces:
            a, b = grid[:-1, None], grid[1:, None]
            mid, half = (a + b) / 2.0, (b - a) / 2.0
            total += float((self.rate(mid + half * x) * wts * half).sum())
        return total


@numba.njit(cache=True)
def _daily_phase(t: np.ndarray, two_pi: float, peak_s: float, day_s: float) -> np.ndarray:
    """``two_pi * (t - peak_s) / day_s`` elementwise, in numpy's order of operations."""
    out = np.empty(t.shape[0])
    for i in range(t.shape[0]):
        out[i] = two_pi * (t[i] - peak_s) / day_s
    return out


@numba.njit(cache=True)
def _rate_from_cos(t: np.ndarray, c: np.ndarray, amp: float, tps: float, a: float, b: float, r_from: float,
                   r_to: float, r_diff: float, spikes: np.ndarray) -> np.ndarray:
    """:meth:`LoadSchedule.rate` at finite times ``t`` given ``c = cos(phase(t))`` (unused when ``amp`` is 0):
    ``(1 + amp·c) · ramp``, times each active spike's factor in order, times ``tps`` — numpy's operations
    in numpy's order (``r_diff`` = ramp_to − ramp_from as computed by Python)."""
    n = t.shape[0]
    out = np.empty(n)
    for i in range(n):
        ti = t[i]
        daily = 1.0 + amp * c[i] if amp != 0.0 else 1.0
        if b > a:
            frac = (ti - a) / (b - a)
            if frac < 0.0:
                frac = 0.0
            elif frac > 1.0:
                frac = 1.0
            ramp = r_from + r_diff * frac
        else:
            ramp = r_from if ti < a else r_to
        m = daily * ramp
        for k in range(spikes.shape[0]):
            start = spikes[k, 0]
            if ti >= start and ti < start + spikes[k, 1]:
                m = m * spikes[k, 2]
        out[i] = tps * m
    return out


@dataclass(frozen=True)
class TipDistribution:
    """Tips of background transfers, base units: 0 with probability ``zero_share``, else lognormal with
    the given median and log-sd. [assumption] Most transfers on Polkadot carry no tip; the default
    tipped median 10^9 units = 0.001 token is of the order of a transfer's base fee."""

    zero_share: float = 0.9
    median: float = 1e9
    sigma: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.zero_share <= 1.0:
            raise ValueError(f"zero_share must be in [0, 1], got {self.zero_share}")
        if not self.median > 0 or not self.sigma >= 0:
            raise ValueError("median must be > 0 and sigma ≥ 0")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` tips, base units (int64): one uniform per tip decides whether it is tipped, then one
        lognormal per tipped one, rounded (capped at 2^62)."""
        tipped = rng.random(n) >= self.zero_share
        z = rng.standard_normal(np.count_nonzero(tipped))  # the draws of lognormal(log(median), sigma)
        return _place_tips(tipped, z, math.log(self.median), float(self.sigma))


@numba.njit(cache=True)
def _place_tips(tipped: np.ndarray, z: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """Tips: 0 where not ``tipped``, else the next lognormal ``exp(mu + sigma · z)`` (what
    ``Generator.lognormal(mu, sigma)`` computes from the standard normal draws ``z``) rounded half to even
    after capping at 2^62 (as ``np.rint(np.minimum(draws, 2.0**62))`` assigned into int64), in order."""
    tips = np.zeros(tipped.shape[0], np.int64)
    j = 0
    for i in range(tipped.shape[0]):
        if tipped[i]:
            d = math.exp(mu + sigma * z[j])
            if d > 2.0**62:  # (np.minimum: a NaN stays NaN)
                d = 2.0**62
            tips[i] = np.int64(np.rint(d))
            j += 1
    return tips


def _filled(n: int, value: float | int, dtype: type) -> np.ndarray:
    """``np.full(n, value, dtype)`` without its Python-level overhead (a few µs per call)."""
    out = np.empty(n, dtype)
    out.fill(value)
    return out


class ConstantColumns:
    """Columns holding one value, shared by a caller's batches: views into one array per (dtype, value),
    grown as needed. For batches nobody writes to (the pool copies what it stores); the run's load uses
    them for the columns every generated transfer has in common (weight, length, longevity, sender, nonce,
    payload, class, fee), which saves filling eight new arrays a slot."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, str], tuple[float | int, np.ndarray]] = {}
        #: (dtype as given, value) → the entry of ``_arrays``, for values other than a float zero or NaN
        #: (which equal another value or none: ``-0.0 == 0.0``, ``nan != nan``)
        self._fast: dict[tuple[Any, float | int], tuple[float | int, np.ndarray]] = {}

    def get(self, n: int, value: float | int, dtype: type) -> np.ndarray:
        """A view of ``n`` copies of ``value`` as ``dtype`` (= ``np.full(n, value, dtype)``), not to be written."""
        plain = value == value and (bool(value) or not isinstance(value, float))
        if plain:
            held = self._fast.get((dtype, value))
            if held is not None and held[1].shape[0] >= n:
                return held[1][:n]
        key = (np.dtype(dtype).str, repr(value))  # (repr: -0.0 and 0.0 are two columns)
        held = self._arrays.get(key)
        if held is None or held[1].shape[0] < n:
            size = max(n, 2 * held[1].shape[0] if held is not None else 8192)
            held = self._arrays[key] = (value, _filled(size, value, dtype))
        if plain:
            self._fast[(dtype, value)] = held
        return held[1][:n]

    def intact(self) -> bool:
        """Whether every shared column still holds only its value, bit for bit (nobody wrote to one)."""
        return all(a.tobytes() == _filled(a.shape[0], v, a.dtype).tobytes() for v, a in self._arrays.values())


def _skip_doubles(rng: np.random.Generator, n: int) -> bool:
    """Advance ``rng`` past ``n`` doubles without drawing them, when that leaves it exactly where
    ``rng.random(n)`` would (a PCG64 advanced by ``n`` steps; its buffered 32-bit half, which ``advance``
    clears and ``random`` keeps, must be empty). Returns whether it did."""
    bg = rng.bit_generator
    if type(bg) is not np.random.PCG64 or bg.state["has_uint32"]:
        return False
    bg.advance(n)  # one 64-bit step per double
    return True


@numba.njit(cache=True)
def _sorted_spread(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``np.sort(x)`` (a new array), fast for values spread over ``[lo, hi]``: one pass into ``n`` ordered
    buckets (counting), a scatter, then an insertion sort that only moves values within a bucket. Any
    values sort correctly (a bucket index is monotone in the value); ones with a NaN or a zero (±0 compare
    equal) take ``np.sort``'s algorithm instead."""
    n = x.shape[0]
    span = hi - lo
    if not (n >= 32 and span > 0 and span < np.inf):
        return np.sort(x)
    scale = n / span
    start = np.zeros(n + 1, np.int64)
    b = np.empty(n, np.int64)
    for i in range(n):
        v = x[i]
        if v != v or v == 0.0:
            return np.sort(x)
        k = int((v - lo) * scale) if v > lo else 0
        if k >= n:
            k = n - 1
        b[i] = k
        start[k + 1] += 1
    for k in range(n):
        start[k + 1] += start[k]
    out = np.empty(n)
    for i in range(n):
        k = b[i]
        out[start[k]] = x[i]
        start[k] += 1
    insertion_sort_prefix(out, n)
    return out


def arrival_times(schedule: LoadSchedule, t0: float, t1: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times of the NHPP on ``[t0, t1)``, exact by thinning."""
    if t1 <= t0:
        return np.empty(0)
    bound = schedule.max_rate(t0, t1)
    if bound <= 0:
        return np.empty(0)
    n = rng.poisson(bound * (t1 - t0))
    span = float(t1) - float(t0)
    if not math.isfinite(span):  # (rng.uniform's check)
        raise OverflowError("Range exceeds valid bounds")
    # the doubles of rng.uniform(t0, t1, n), which computes t0 + span · next_double: times are made from them
    # where they are needed, else only after sorting them (the map is monotone: the same sorted times)
    x = rng.random(n)
    m = schedule.constant_multiplier(t0, t1)
    # the thinning test; with a constant multiplier the rate at every arrival is the same number, and when
    # even the largest u passes (rounded products grow with u) every point is kept without comparing: the
    # n uniforms of the test are then only stepped over
    rate = schedule.tps * m if m is not None else None
    if m is not None and _U_MAX * bound < rate and _skip_doubles(rng, n):
        return _sorted_uniform_times(x, float(t0), span)
    t = float(t0) + span * x
    u = rng.random(n)
    if m is None:  # the rate is computed only where the test is in doubt: at or above its lower bound
        ub = u * bound
        doubt = np.flatnonzero(ub >= schedule.min_rate(t0, t1))
        if doubt.size:
            passed = ub[doubt] < schedule._rate_1d(t[doubt])
            if not passed.all():
                keep = np.ones(n, dtype=bool)
                keep[doubt[~passed]] = False
                t = t[keep]
    elif not _U_MAX * bound < rate:
        keep = u * bound < rate
        if not keep.all():
            t = t[keep]
    return _sorted_spread(t, float(t0), float(t1))


def _sorted_uniform_times(x: np.ndarray, t0: float, span: float) -> np.ndarray:
    """``np.sort(t0 + span * x)`` for doubles ``x`` in [0, 1) (``Generator.random``'s): ``x`` sorted by
    :func:`_sorted_spread`, then mapped — the map rounds monotonically, so these are the sorted times, bit
    for bit."""
    return t0 + span * _sorted_spread(x, 0.0, 1.0)


def generate(schedule: LoadSchedule, t0: float, t1: float, rng: np.random.Generator, *,
             tips: TipDistribution | None = None, weight_s: float = CALL_WEIGHTS["transfer"],
             length_bytes: int = CALL_LENGTHS["transfer"], gossip_mean_s: float = DEFAULT_GOSSIP_MEAN_S,
             longevity_s: float = DEFAULT_LONGEVITY_S, payload: int = -1) -> TxBatch:
    """Background transfers submitted on ``[t0, t1)`` (one slot window), in time order.

    ``weight_s`` is the transfer's dispatch weight (144.8 µs; 242 µs of block weight with the extrinsic
    base), ``length_bytes`` its encoded length (140 B). ``t_ready = t_submit + Exp(gossip_mean_s)``
    (0 gives ``t_ready = t_submit``). ``payload`` is every row's payload reference (−1: plain transfer;
    a call code saves replacing the column afterwards). The draws are made in a fixed order, so a seeded
    ``rng`` reproduces the batch exactly.
    """
    return generate_with_facts(schedule, t0, t1, rng, tips=tips, weight_s=weight_s, length_bytes=length_bytes,
                               gossip_mean_s=gossip_mean_s, longevity_s=longevity_s, payload=payload)[0]


@numba.njit(cache=True)
def _ready_times(t: np.ndarray, e: np.ndarray, gossip_mean_s: float, tip: np.ndarray) -> tuple[np.ndarray, bool]:
    """(``t + gossip_mean_s · e``, computed as numpy's product then sum, and whether every tip is ≥ 0)."""
    n = t.shape[0]
    out = np.empty(n)
    for i in range(n):
        out[i] = t[i] + gossip_mean_s * e[i]
    ok = True
    for i in range(n):
        if tip[i] < 0:
            ok = False
    return out, ok


def draw(schedule: LoadSchedule, t0: float, t1: float, rng: np.random.Generator, tips: TipDistribution | None,
         gossip_mean_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """The random part of :func:`generate` on ``[t0, t1)``: (arrival times, ready times, tips, whether every
    tip is ≥ 0), drawn in this order: arrivals, tips, gossip delays."""
    t = arrival_times(schedule, t0, t1, rng)
    n = t.shape[0]
    tip = (tips or TipDistribution()).sample(n, rng)
    # gossip_mean_s · standard_exponential is Generator.exponential's own product on the same draws (its
    # per-element loop is slower than the standard distribution's fill loop)
    if gossip_mean_s > 0:
        t_ready, tips_ok = _ready_times(t, rng.standard_exponential(n), float(gossip_mean_s), tip)
    else:
        t_ready, tips_ok = t.copy(), bool(n == 0 or tip.min() >= 0)
    return t, t_ready, tip, tips_ok


def generate_with_facts(schedule: LoadSchedule, t0: float, t1: float, rng: np.random.Generator, *,
                        tips: TipDistribution | None = None, weight_s: float = CALL_WEIGHTS["transfer"],
                        length_bytes: int = CALL_LENGTHS["transfer"], gossip_mean_s: float = DEFAULT_GOSSIP_MEAN_S,
                        longevity_s: float = DEFAULT_LONGEVITY_S, payload: int = -1,
                        drawn: tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None = None,
                        constants: ConstantColumns | None = None,
                        ) -> tuple[TxBatch, tuple[bool, bool, bool, int]]:
    """:func:`generate`, and the batch's facts as :meth:`TxPool.submit` would find them (``facts=``: in time
    order, one call shape, no sender, total length). The batch is built without re-running
    ``TxBatch``'s per-row checks: by construction only the scalar arguments and the tips can fail them
    (times are sorted, ``t_ready ≥ t_submit``), and those are checked here with the same errors.
    ``drawn``: what :func:`draw` returns for these arguments, drawn beforehand (``rng`` is then not used).
    ``constants``: take the batch's one-value columns from there (shared: the batch must not be written)."""
    t, t_ready, tip, tips_ok = drawn if drawn is not None else draw(schedule, t0, t1, rng, tips, gossip_mean_s)
    n = t.shape[0]
    const = constants.get if constants is not None else _filled
    weight_col = const(n, weight_s, np.float64)
    length_col = const(n, length_bytes, np.int64)
    longevity_col = const(n, longevity_s, np.float64)
    if n:  # TxBatch's checks (none for an empty batch), on the values the columns hold
        if weight_col[0] < 0 or length_col[0] < 0 or not tips_ok:
            raise ValueError("weight_s, length_bytes and tip must be ≥ 0")
        if not longevity_col[0] > 0:
            raise ValueError("longevity_s must be > 0")
    # = TxBatch.of(t, weight_s, length_bytes, tip=tip, longevity_s=longevity_s, t_ready=t_ready), without
    # copying the arrays just drawn (fresh, or views of the draw-ahead ring valid until the next slot's take:
    # the pool copies what it stores within the slot)
    batch = TxBatch.unchecked(t_submit=t, weight_s=weight_col, length_bytes=length_col, tip=tip,
                              operational=const(n, False, np.bool_), longevity_s=longevity_col,
                              sender=const(n, -1, np.int64), nonce=const(n, 0, np.int64),
                              payload=const(n, payload, np.int64), t_ready=t_ready, fee=const(n, 0, np.int64))
    w0 = float(weight_col[0]) if n else 0.0
    return batch, (True, w0 == w0, False, n * int(length_col[0]) if n else 0)
