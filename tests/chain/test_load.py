"""Tests for ainur_sim.chain.load: rate shape, exact NHPP counts and times, batch fields, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ainur_sim.chain.fees import CALL_LENGTHS, CALL_WEIGHTS, BlockLimits, transfers_per_block
from ainur_sim.chain.load import (
    DAY_S,
    ConstantColumns,
    LoadSchedule,
    TipDistribution,
    _sorted_spread,
    _sorted_uniform_times,
    arrival_times,
    generate,
)
from ainur_sim.chain.txpool import TxPool

SLOT = 6.0


def windows(schedule: LoadSchedule, t0: float, t1: float, seed: int, width: float = SLOT):
    rng = np.random.default_rng(seed)
    edges = np.arange(t0, t1 + 1e-9, width)
    counts = np.array([arrival_times(schedule, a, b, rng).size for a, b in zip(edges[:-1], edges[1:], strict=True)])
    expected = np.array([schedule.expected_count(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)])
    return counts, expected


def test_rate_shape():
    s = LoadSchedule(tps=100.0, daily_amplitude=0.5, peak_hour=14.0)
    assert s.rate(14 * 3600.0) == pytest.approx(150.0)
    assert s.rate(2 * 3600.0) == pytest.approx(50.0)
    assert s.rate(14 * 3600.0 + DAY_S) == pytest.approx(150.0)
    spiky = LoadSchedule(tps=100.0, spikes=((100.0, 50.0, 10.0), (120.0, 100.0, 2.0)))
    assert spiky.rate([99.0, 100.0, 119.0, 120.0, 149.9, 150.0, 219.9, 220.0]).tolist() == pytest.approx(
        [100, 1000, 1000, 2000, 2000, 200, 200, 100])
    ramp = LoadSchedule(tps=100.0, ramp_start_s=1000.0, ramp_end_s=2000.0, ramp_from=1.0, ramp_to=3.0)
    assert ramp.rate([0.0, 1000.0, 1500.0, 2000.0, 9000.0]).tolist() == pytest.approx([100, 100, 200, 300, 300])
    step = LoadSchedule(tps=10.0, ramp_start_s=50.0, ramp_end_s=50.0, ramp_from=0.0, ramp_to=1.0)
    assert step.rate([49.9, 50.0]).tolist() == [0.0, 10.0]


def test_expected_count_closed_form():
    a, p = 0.6, 14 * 3600.0
    s = LoadSchedule(tps=7.0, daily_amplitude=a, peak_hour=14.0)
    for t0, t1 in [(0.0, DAY_S), (1234.5, 1234.5 + 3 * DAY_S), (100.0, 7000.0)]:
        w = 2 * math.pi / DAY_S
        exact = 7.0 * ((t1 - t0) + a / w * (math.sin(w * (t1 - p)) - math.sin(w * (t0 - p))))
        assert s.expected_count(t0, t1) == pytest.approx(exact, rel=1e-10)
    # spike and ramp edges inside the interval
    s = LoadSchedule(tps=3.0, daily_amplitude=0.3, spikes=((500.0, 250.0, 10.0),), ramp_start_s=200.0,
                     ramp_end_s=4000.0, ramp_from=0.5, ramp_to=2.0)
    grid = np.linspace(0.0, 5000.0, 2_000_001)
    assert s.expected_count(0.0, 5000.0) == pytest.approx(np.trapezoid(s.rate(grid), grid), rel=1e-5)


def test_max_rate_bounds_the_rate():
    rng = np.random.default_rng(5)
    s = LoadSchedule(tps=10.0, daily_amplitude=0.7, peak_hour=3.0, spikes=((1e4, 300.0, 5.0), (2e4, 60.0, 0.2)),
                     ramp_start_s=5e3, ramp_end_s=3e4, ramp_from=2.0, ramp_to=0.5)
    for _ in range(500):
        t0 = rng.uniform(0, 2 * DAY_S)
        t1 = t0 + rng.choice([6.0, 600.0, 20000.0])
        bound = s.max_rate(t0, t1)
        assert np.all(s.rate(np.linspace(t0, t1, 2001)) <= bound * (1 + 1e-12))
    # exact for the daily part: a window containing the peak
    assert LoadSchedule(tps=1.0, daily_amplitude=0.5).max_rate(14 * 3600 - 1, 14 * 3600 + 1) == 1.5


def test_counts_match_integral():
    s = LoadSchedule(tps=20.0, daily_amplitude=0.8, peak_hour=1.0, spikes=((3000.0, 900.0, 4.0),),
                     ramp_start_s=0.0, ramp_end_s=7200.0, ramp_from=0.5, ramp_to=1.5)
    counts, expected = windows(s, 0.0, 7200.0, seed=11)
    total_e = expected.sum()
    assert abs(counts.sum() - total_e) < 4 * math.sqrt(total_e)
    z = (counts - expected) / np.sqrt(expected)
    assert abs(z.mean()) < 4 / math.sqrt(z.size)
    assert z.var() == pytest.approx(1.0, abs=4 * math.sqrt(2 / z.size))


def test_step_multiplies_counts():
    s = LoadSchedule(tps=100.0, spikes=((600.0, 600.0, 10.0),))
    counts, _ = windows(s, 0.0, 1800.0, seed=2)
    before, during, after = counts[:100].sum(), counts[100:200].sum(), counts[200:].sum()
    assert during / before == pytest.approx(10.0, rel=0.03)
    assert after / before == pytest.approx(1.0, rel=0.05)


def test_arrival_times_follow_the_rate_shape():
    # rate ∝ t on [0, 100): the CDF of arrival times is (t / 100)²
    s = LoadSchedule(tps=50.0, ramp_start_s=0.0, ramp_end_s=100.0, ramp_from=0.0, ramp_to=1.0)
    t = arrival_times(s, 0.0, 100.0, np.random.default_rng(4))
    assert np.all(np.diff(t) >= 0) and t.min() >= 0.0 and t.max() < 100.0
    assert stats.kstest(t, lambda x: (x / 100.0) ** 2).pvalue > 0.01
    assert stats.kstest(t, lambda x: x / 100.0).pvalue < 1e-6  # a homogeneous process is rejected


def test_generated_batch_fields():
    s = LoadSchedule(tps=2000.0)
    b = generate(s, 60.0, 66.0, np.random.default_rng(9), gossip_mean_s=0.5)
    n = len(b)
    assert abs(n - 12_000) < 4 * math.sqrt(12_000)
    assert np.all(np.diff(b.t_submit) >= 0) and b.t_submit.min() >= 60.0 and b.t_submit.max() < 66.0
    delay = b.t_ready - b.t_submit
    assert np.all(delay >= 0) and delay.mean() == pytest.approx(0.5, abs=4 * 0.5 / math.sqrt(n))
    assert np.all(b.weight_s == CALL_WEIGHTS["transfer"]) and np.all(b.length_bytes == CALL_LENGTHS["transfer"])
    assert np.all(b.longevity_s == 330.0)
    assert np.all(b.sender == -1) and np.all(b.payload == -1) and not b.operational.any()
    zero = b.tip == 0
    assert zero.mean() == pytest.approx(0.9, abs=4 * math.sqrt(0.09 / n))
    assert np.median(b.tip[~zero]) == pytest.approx(1e9, rel=0.1)
    no_gossip = generate(s, 0.0, 1.0, np.random.default_rng(9), gossip_mean_s=0.0)
    assert np.array_equal(no_gossip.t_ready, no_gossip.t_submit)
    tips = TipDistribution(zero_share=0.0, median=5e6, sigma=0.0).sample(10, np.random.default_rng(0))
    assert tips.tolist() == [5_000_000] * 10


def test_determinism_with_seed():
    s = LoadSchedule(tps=500.0, daily_amplitude=0.3, spikes=((10.0, 5.0, 10.0),))
    a = generate(s, 0.0, 30.0, np.random.default_rng(123))
    b = generate(s, 0.0, 30.0, np.random.default_rng(123))
    c = generate(s, 0.0, 30.0, np.random.default_rng(124))
    for name in ("t_submit", "t_ready", "tip", "weight_s", "length_bytes", "longevity_s"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert len(a) != len(c) or not np.array_equal(a.t_submit, c.t_submit)


def test_validation():
    with pytest.raises(ValueError):
        LoadSchedule(tps=-1.0)
    with pytest.raises(ValueError):
        LoadSchedule(tps=1.0, daily_amplitude=1.5)
    with pytest.raises(ValueError):
        LoadSchedule(tps=1.0, spikes=((0.0, 0.0, 2.0),))
    with pytest.raises(ValueError):
        LoadSchedule(tps=1.0, ramp_start_s=10.0, ramp_end_s=5.0)
    assert len(generate(LoadSchedule(tps=0.0), 0.0, 6.0, np.random.default_rng(0))) == 0


def test_overload_saturates_blocks_at_the_weight_limit():
    """2,000 TPS offered through the pool: every block carries floor(1.5 s / 242 µs) transfers ≈ 1,033 TPS."""
    rng = np.random.default_rng(8)
    s = LoadSchedule(tps=2000.0)
    pool = TxPool()
    per_block = []
    prev: list[int] = []
    for k in range(12):
        t = (k + 1) * SLOT
        pool.submit(generate(s, t - SLOT, t, rng))
        pool.expire(t)
        ids = pool.select(t, exclude_blocks=prev)
        pool.mark_included(ids, k + 1, t)
        per_block.append(ids.size)
        if k >= 1:  # finality lags one block
            pool.on_finalized([k], [], t)
        prev = [k + 1]
    assert per_block == [transfers_per_block(BlockLimits())] * 12
    assert per_block[0] / SLOT == pytest.approx(1032.7, abs=0.1)
    assert pool.counters.evicted > 0
    assert pool.snapshot()["ready_count"] == 8192 - per_block[-1]  # the pool was full before the last block


def test_gossip_delays_are_generators_exponential_draws():
    """generate draws t_ready − t_submit as scale · standard_exponential: the same numbers, from the same
    stream position, as Generator.exponential(scale) (which the reference outputs were made with)."""
    for seed in range(5):
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        np.testing.assert_array_equal(a.exponential(0.5, 5000), 0.5 * b.standard_exponential(5000))
        assert a.random() == b.random()


def test_sorted_spread_is_numpys_sort():
    """The bucket sort of arrival times returns np.sort's array: spread values, ties, values outside the
    stated range, and the fallbacks (short arrays, a zero, a NaN)."""
    rng = np.random.default_rng(11)
    cases = [rng.uniform(6.0, 12.0, 6_000), np.round(rng.uniform(6.0, 12.0, 500), 1), rng.uniform(0.0, 30.0, 300),
             rng.uniform(6.0, 12.0, 10), np.append(rng.uniform(6.0, 12.0, 100), [0.0, -0.0]),
             np.append(rng.uniform(6.0, 12.0, 100), np.nan)]
    for x in cases:
        got = _sorted_spread(x, 6.0, 12.0)
        np.testing.assert_array_equal(got, np.sort(x))


def test_sorted_uniform_times_is_uniforms_sorted():
    """Arrival times made from the doubles after sorting them are rng.uniform's times sorted, bit for bit,
    and arrival_times leaves the generator where drawing the uniforms would (short and long windows, and
    the largest double)."""
    for n in (0, 1, 31, 32, 6_000, 50_000):
        for t0, t1 in ((0.0, 6.0), (6.0, 12.0), (86_394.0, 86_400.0), (25_200.1, 25_206.1)):
            a, b = np.random.default_rng(n), np.random.default_rng(n)
            want = np.sort(a.uniform(t0, t1, n))
            got = _sorted_uniform_times(b.random(n), t0, t1 - t0)
            np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))
            assert a.random() == b.random()
    edge = np.array([1.0 - 2.0**-53, 0.0, 0.5] * 20)
    np.testing.assert_array_equal(_sorted_uniform_times(edge, 6.0, 6.0), np.sort(6.0 + 6.0 * edge))


def _schedules() -> list[LoadSchedule]:
    return [LoadSchedule(tps=1000.0, daily_amplitude=0.42, peak_hour=14.0),
            LoadSchedule(tps=50.0, daily_amplitude=1.0, peak_hour=3.0, spikes=((1000.0, 500.0, 0.25),)),
            LoadSchedule(tps=200.0, daily_amplitude=0.3, ramp_start_s=100.0, ramp_end_s=50_000.0, ramp_from=0.2,
                         ramp_to=3.0, spikes=((40_000.0, 7_200.0, 10.0), (41_000.0, 100.0, 0.0))),
            LoadSchedule(tps=10.0, ramp_start_s=500.0, ramp_end_s=500.0, ramp_from=2.0, ramp_to=0.5)]


def test_min_rate_bounds_the_rate_from_below():
    """min_rate is below every rate the schedule computes in the window (troughs inside windows, ramps,
    spikes below and above 1, steps), and over a slot close to the smallest one."""
    rng = np.random.default_rng(5)
    for s in _schedules():
        for _ in range(300):
            t0 = float(rng.uniform(0.0, 2 * DAY_S))
            t1 = t0 + float(rng.choice([6.0, 600.0, 30_000.0]))
            grid = np.linspace(t0, t1, 2_001)
            low = s.min_rate(t0, t1)
            assert low <= s.rate(grid).min()
            if t1 - t0 <= 6.0:  # tight over a slot (over long windows the factors' minima may lie apart)
                assert low >= s.rate(grid).min() * (1 - 1e-3) - 1e-4 * s.tps  # (the grid misses the exact trough)


def test_thinning_evaluates_the_rate_only_where_in_doubt_with_the_same_result():
    """arrival_times skips the rate where u · bound is below min_rate; the points kept are exactly those
    of the plain thinning test u · bound < rate(t) on the same draws."""
    for k, s in enumerate(_schedules()):
        for w in range(40):
            t0 = 3_600.0 * w + 123.0
            t1 = t0 + (6.0 if w % 2 else 1_800.0)
            got = arrival_times(s, t0, t1, np.random.default_rng(100 * k + w))
            rng = np.random.default_rng(100 * k + w)
            bound = s.max_rate(t0, t1)
            if bound <= 0:
                assert got.size == 0
                continue
            n = rng.poisson(bound * (t1 - t0))
            t = rng.uniform(t0, t1, n)
            u = rng.random(n)
            want = np.sort(t[u * bound < s.rate(t)])
            np.testing.assert_array_equal(got, want)


def test_constant_columns_are_np_full_and_shared():
    cc = ConstantColumns()
    for n, v, dt in ((5, 2.4e-4, np.float64), (9000, -1, np.int64), (3, False, np.bool_), (7, -0.0, np.float64),
                     (7, 0.0, np.float64), (20_000, 140, np.int64), (4, math.inf, np.float64)):
        a = cc.get(n, v, dt)
        want = np.full(n, v, dt)
        assert a.dtype == want.dtype and a.tobytes() == want.tobytes()
    assert np.signbit(cc.get(2, -0.0, np.float64)).all() and not np.signbit(cc.get(2, 0.0, np.float64)).any()
    # values equal to others (0, False, -0.0, 0.0, 1, True) or to nothing (NaN), asked again in either order:
    # the remembered lookups never hand one value's column to another
    mixed = [(0, np.float64), (-0.0, np.float64), (0.0, np.float64), (False, np.int64), (0, np.int64),
             (math.nan, np.float64), (1, np.float64), (True, np.float64), (-1, np.int64), (2.5, np.float64)]
    for n, (v, dt) in enumerate(mixed * 2 + mixed[::-1], start=1):
        a, want = cc.get(n, v, dt), np.full(n, v, dt)
        assert a.dtype == want.dtype and a.tobytes() == want.tobytes(), (v, dt)
    assert np.shares_memory(cc.get(10, 140, np.int64), cc.get(30, 140, np.int64))  # (one array, grown once)
    assert cc.intact()
    cc.get(10, 140, np.int64)[3] = 7  # what a writer would do to every later batch
    assert not cc.intact()


def test_a_run_never_writes_the_shared_constant_columns():
    """The load's batches share their one-value columns (ConstantColumns): a run with market calls merged
    into them, fee pressure and evictions leaves every shared column as it was, and the run's outputs are
    the ones fresh columns give."""
    from ainur_sim import compose
    from ainur_sim.sim import build_world, to_config

    cfg = to_config(compose(["scenario=launch_day", "duration_s=7200", "load.tps=1500", "perf.draw_ahead=never",
                             "api.enabled=false"]))
    worlds = []
    for shared in (True, False):
        w = build_world(cfg)
        if not shared:
            w.txflow.constants = None  # (generate_with_facts then fills new columns each slot)
        w.env.run(until=cfg.run_duration_s)
        worlds.append(w)
    assert worlds[0].txflow.constants.intact() and len(worlds[0].txflow.constants._arrays) >= 6
    a, b = (w.tree.to_frame() for w in worlds)
    assert a.equals(b)
    assert worlds[0].txflow.pool.counts() == worlds[1].txflow.pool.counts()
