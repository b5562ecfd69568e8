"""Validator availability: fixed outages, random crash/recover processes, and vectorised lookups."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ainur_sim.chain.faults import Availability

MTBF, MTTR, HORIZON, N = 1000.0, 100.0, 1.0e6, 200


@pytest.fixture(scope="module")
def crashes() -> Availability:
    a = Availability(N)
    a.add_random_crashes(MTBF, MTTR, HORIZON, np.random.default_rng(7))
    return a


def _brute_down(v: np.ndarray, s: np.ndarray, e: np.ndarray, n: int, t: np.ndarray) -> np.ndarray:
    """Offline mask by a plain loop over every interval; ``t`` is one time per validator."""
    down = np.zeros(n, dtype=bool)
    for vi, si, ei in zip(v, s, e, strict=True):
        if si <= t[vi] < ei:
            down[vi] = True
    return down


def _assert_disjoint_sorted(a: Availability) -> None:
    assert np.all(a.end > a.start)
    assert np.all(np.diff(a.validator) >= 0)
    same = a.validator[1:] == a.validator[:-1]
    assert np.all(a.start[1:][same] > a.end[:-1][same])  # disjoint, sorted, touching ones merged


# --- crash process statistics ----------------------------------------------------------------------------
def test_long_run_offline_share_matches_mttr_over_cycle(crashes):
    p = MTTR / (MTBF + MTTR)
    share = crashes.offline_seconds(HORIZON).mean() / HORIZON
    # alternating renewal with exponential phases: Var(down time over T) ≈ 2 T MTBF² MTTR² / (MTBF + MTTR)³
    se = np.sqrt(2 * HORIZON * MTBF**2 * MTTR**2 / (MTBF + MTTR) ** 3) / HORIZON / np.sqrt(N)
    assert abs(share - p) < 4 * se, (share, p, se)
    assert 4 * se < 0.1 * p  # the check is tight enough to tell p from MTTR/MTBF


def test_offline_count_matches_share_and_online(crashes):
    grid = np.linspace(1e4, HORIZON, 2001)
    count = crashes.offline_count(grid)
    assert count.shape == grid.shape
    for t in grid[::200]:
        assert count[np.searchsorted(grid, t)] == (~crashes.online(t)).sum()
    assert abs(count.mean() / N - MTTR / (MTBF + MTTR)) < 0.01


def test_mean_up_and_down_durations(crashes):
    a = crashes
    down = a.end - a.start
    assert down.size > 150_000
    assert abs(down.mean() - MTTR) < 4 * MTTR / np.sqrt(down.size)
    same = a.validator[1:] == a.validator[:-1]
    first = np.r_[True, ~same]
    up = np.where(first, a.start, a.start - np.r_[0.0, a.end[:-1]])
    assert abs(up.mean() - MTBF) < 4 * MTBF / np.sqrt(up.size)
    assert abs(np.std(up) / MTBF - 1) < 0.02  # exponential: sd = mean
    assert a.start.max() < HORIZON
    assert (a.end > HORIZON).sum() == a.offline_count(HORIZON) > 5  # repairs running at the horizon keep their end


def test_crash_intervals_disjoint_sorted_and_all_crash_kind(crashes):
    _assert_disjoint_sorted(crashes)
    assert set(crashes.intervals_frame()["kind"]) == {"crash"}
    assert np.array_equal(np.unique(crashes.validator), np.arange(N))


def test_lognormal_repair_keeps_mean_and_spread():
    a = Availability(100)
    a.add_random_crashes(MTBF, MTTR, 2e5, np.random.default_rng(3), repair="lognormal", repair_sigma=1.0)
    down = a.end - a.start
    log_d = np.log(down)
    assert abs(log_d.std() - 1.0) < 0.03
    assert abs(log_d.mean() - (np.log(MTTR) - 0.5)) < 0.03
    assert abs(down.mean() / MTTR - 1) < 0.08


def test_subset_start_and_determinism():
    def build(seed: int) -> Availability:
        a = Availability(50)
        a.add_random_crashes(600.0, 60.0, 20_000.0, np.random.default_rng(seed), validators=[3, 7, 11],
                             start_s=5_000.0)
        return a

    a, b, c = build(1), build(1), build(2)
    assert set(np.unique(a.validator)) == {3, 7, 11}
    assert a.start.min() > 5_000.0 and a.start.max() < 20_000.0
    for name in ("validator", "start", "end", "kind"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not (a.start.shape == c.start.shape and np.array_equal(a.start, c.start))


def test_bad_parameters_rejected():
    a = Availability(3)
    with pytest.raises(ValueError):
        a.add_random_crashes(0.0, 10.0, 100.0, np.random.default_rng(0))
    with pytest.raises(ValueError):
        a.add_random_crashes(10.0, 10.0, 100.0, np.random.default_rng(0), repair="weibull")
    with pytest.raises(ValueError):
        a.add_outage([3], 0.0, 1.0)


# --- merging ---------------------------------------------------------------------------------------------
def test_fixed_windows_merge_overlapping_and_touching():
    a = Availability(4, sync_delay_s=2.0)
    a.add_outage([0], 100.0, 200.0)
    a.add_outage([0, 1], 150.0, 300.0)
    a.add_outage([0], 300.0, 400.0)  # touches [150, 300): one interval
    a.add_outage([0], 500.0, 600.0)
    a.add_outage([2], 10.0, 10.0)  # empty: dropped
    assert a.validator.tolist() == [0, 0, 1]
    assert a.start.tolist() == [100.0, 500.0, 150.0]
    assert a.end.tolist() == [400.0, 600.0, 300.0]
    assert a.returns() == [(0, 402.0), (0, 602.0), (1, 302.0)]
    assert a.offline_seconds(1000.0).tolist() == [400.0, 150.0, 0.0, 0.0]
    assert a.online(399.999).tolist() == [False, True, True, True]
    assert a.online(400.0).tolist() == [True, True, True, True]


def test_crashes_merge_with_fixed_windows():
    rng = np.random.default_rng(11)
    a = Availability(30)
    a.add_outage(np.arange(10), 2_000.0, 6_000.0)
    a.add_random_crashes(500.0, 200.0, 10_000.0, rng)
    # the same crash draws alone, for the brute-force union
    b = Availability(30)
    b.add_random_crashes(500.0, 200.0, 10_000.0, np.random.default_rng(11))
    _assert_disjoint_sorted(a)
    v = np.r_[np.arange(10), b.validator]
    s = np.r_[np.full(10, 2_000.0), b.start]
    e = np.r_[np.full(10, 6_000.0), b.end]
    for t in np.linspace(0, 12_000, 601):
        assert np.array_equal(~a.online(t), _brute_down(v, s, e, 30, np.full(30, t)))
    frame = a.intervals_frame()
    assert list(frame.columns) == ["validator", "start", "end", "kind"]
    assert len(frame) == a.validator.size
    assert set(frame["kind"]) == {"crash", "outage+crash"}  # every fixed window overlaps some crash here
    both = frame[frame["kind"] == "outage+crash"]
    assert (both["start"] <= 2_000.0).all() and (both["end"] >= 6_000.0).all()
    assert a.offline_seconds(12_000.0)[:10].min() >= 4_000.0


def test_single_window_behaviour_unchanged():
    a = Availability(5, sync_delay_s=1.5)
    a.add_outage(np.array([1, 3]), 10.0, 20.0)
    assert a.online(9.99).all() and a.online(20.0).all()
    assert a.online(10.0).tolist() == [True, False, True, False, True]
    arr = np.array([15.0, 15.0, 25.0, 20.0, np.inf])
    assert a.offline_at(arr).tolist() == [False, True, False, False, False]
    assert a.returns() == [(1, 21.5), (3, 21.5)]
    assert a.offline_count(np.array([5.0, 10.0, 19.0, 20.0])).tolist() == [0, 2, 2, 0]
    empty = Availability(3)
    assert empty.online(1.0).all() and not empty.offline_at(np.zeros(3)).any()
    assert empty.intervals_frame().empty and empty.returns() == []


# --- lookups against brute force -------------------------------------------------------------------------
_interval = st.tuples(st.integers(0, 5), st.integers(0, 40), st.integers(1, 15))


@settings(max_examples=60, deadline=None)
@given(st.lists(_interval, max_size=25), st.lists(st.integers(-2, 60), min_size=6, max_size=6))
def test_online_and_offline_at_agree_with_brute_force(intervals, times):
    n = 6
    a = Availability(n)
    for v, s, d in intervals:
        a.add_outage([v], float(s), float(s + d))
    _assert_disjoint_sorted(a)
    raw = np.array(intervals, dtype=float).reshape(-1, 3)
    v, s, e = raw[:, 0].astype(int), raw[:, 1], raw[:, 1] + raw[:, 2]
    t = np.array(times, dtype=float) * 0.75  # hits interval boundaries exactly and falls between them
    assert np.array_equal(a.offline_at(t), _brute_down(v, s, e, n, t))
    for tk in t:
        assert np.array_equal(~a.online(tk), _brute_down(v, s, e, n, np.full(n, tk)))
    assert a.offline_count(t).tolist() == [_brute_down(v, s, e, n, np.full(n, tk)).sum() for tk in t]
    # merged intervals cover exactly the union: total offline time is the measure of the union
    grid = np.arange(0, 56, 0.25)
    assert np.isclose(a.offline_seconds(100.0).sum(), a.offline_count(grid).sum() * 0.25)


def test_lookups_fast_for_a_day_of_hourly_crashes():
    a = Availability(1000)
    a.add_random_crashes(3600.0, 600.0, 86_400.0, np.random.default_rng(5))
    assert a.validator.size > 15_000
    arr = np.random.default_rng(6).uniform(0, 86_400.0, 1000)
    a.online(0.0), a.offline_at(arr)  # compile / load the kernel

    def per_call(f) -> float:
        best = np.inf
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(200):
                f()
            best = min(best, (time.perf_counter() - t0) / 200)
        return best

    assert per_call(lambda: a.online(43_210.5)) < 100e-6  # ~15 µs here; loose bound against noisy machines
    assert per_call(lambda: a.offline_at(arr)) < 100e-6
