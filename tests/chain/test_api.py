"""Tests for ainur_sim.chain.api (RPC queue kernel, Erlang formulas, API simulation) and autoscale."""

import math

import numpy as np
import pytest

from ainur_sim.chain.api import (
    ApiResult,
    SamplePlan,
    ServiceModel,
    erlang_b,
    erlang_c,
    latency_percentiles_ms,
    mmc_mean_wait,
    poisson_arrivals,
    rate_cells,
    simulate_api,
    simulate_queue,
)
from ainur_sim.chain.autoscale import AutoscalePolicy, fluid_autoscale


@pytest.fixture(scope="module", autouse=True)
def _jit_warm():
    """Compile (or load from the Numba cache) the kernels once, so test timings measure the tests."""
    simulate_api(50.0, 60.0, rng=np.random.default_rng(0), servers=1, policy=AutoscalePolicy(),
                 sample=SamplePlan(period_s=30.0, window_s=15.0))
    simulate_api(50.0, 60.0, rng=np.random.default_rng(0), servers=1, policy=AutoscalePolicy())


# --------------------------------------------------------------------------------------------------
# Closed forms
# --------------------------------------------------------------------------------------------------


def erlang_c_factorial(c: int, a: float) -> float:
    """Textbook Erlang C with factorials (fine for small c)."""
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.8, 0.99])
def test_erlang_c_single_server_is_rho(rho):
    assert erlang_c(1, rho, 1.0) == pytest.approx(rho, rel=1e-12)
    # M/M/1: Wq = rho / (mu - lam)
    assert mmc_mean_wait(1, rho * 2.0, 2.0) == pytest.approx(rho / (2.0 - 2.0 * rho), rel=1e-12)


def test_erlang_known_values():
    assert erlang_b(2, 1.0) == pytest.approx(0.2, rel=1e-12)
    assert erlang_c(2, 1.0, 1.0) == pytest.approx(1 / 3, rel=1e-12)  # textbook: c = 2, a = 1
    for c, a in [(4, 3.4), (10, 8.0), (16, 14.4), (30, 25.0)]:
        assert erlang_c(c, a, 1.0) == pytest.approx(erlang_c_factorial(c, a), rel=1e-10)
    # stable where factorials overflow: 2,000 servers at rho = 0.99 still gives a probability
    big = erlang_c(2000, 1980.0, 1.0)
    assert 0.0 < big < 1.0
    assert erlang_c(3, 3.0, 1.0) == 1.0 and mmc_mean_wait(3, 3.0, 1.0) == math.inf


# --------------------------------------------------------------------------------------------------
# Kernel against Erlang C
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("c", "rho", "n", "seed"),
                         [(1, 0.8, 2_000_000, 11), (4, 0.85, 2_000_000, 12), (16, 0.9, 4_000_000, 13)])
def test_mean_wait_matches_erlang_c(c, rho, n, seed):
    rng = np.random.default_rng(seed)
    mu = 200.0  # 5 ms mean service
    lam = rho * c * mu
    arr = np.cumsum(rng.exponential(1 / lam, n))
    svc = rng.exponential(1 / mu, n)
    run = simulate_queue(arr, svc, c)
    warm = n // 50  # drop the start from an empty system
    assert run.wait_s[warm:].mean() == pytest.approx(mmc_mean_wait(c, lam, mu), rel=0.05)
    # the share of requests that waited is Erlang C too
    assert np.mean(run.wait_s[warm:] > 0) == pytest.approx(erlang_c(c, lam, mu), abs=0.02)
    assert run.series["utilization"][1:-1].mean() == pytest.approx(rho, rel=0.02)


def test_kernel_small_case_by_hand():
    # two servers; the third request waits for the first server to free at t = 1.0
    arr = np.array([0.0, 0.1, 0.2, 5.0])
    svc = np.array([1.0, 2.0, 0.5, 0.1])
    run = simulate_queue(arr, svc, 2)
    np.testing.assert_allclose(run.wait_s, [0.0, 0.0, 0.8, 0.0])
    run1 = simulate_queue(arr, svc, 1)
    np.testing.assert_allclose(run1.wait_s, [0.0, 0.9, 2.8, 0.0])


def test_schedule_adds_servers_for_new_requests():
    # one server busy until t = 10; a second server joins at t = 2: requests after 2 use it at once
    arr = np.array([0.0, 1.0, 3.0, 3.5])
    svc = np.array([10.0, 1.0, 1.0, 1.0])
    run = simulate_queue(arr, svc, 1, schedule=(np.array([2.0]), np.array([2])), window_s=5.0,
                         duration_s=10.0)
    np.testing.assert_allclose(run.wait_s, [0.0, 9.0, 0.0, 0.5])
    assert run.series["servers"].tolist() == [2, 2]
    # capacity: 1 server for [0, 2), 2 servers for [2, 5) → 8 server-seconds in the first window
    assert run.series["capacity_s"][0] == pytest.approx(8.0)


# --------------------------------------------------------------------------------------------------
# Arrivals and service
# --------------------------------------------------------------------------------------------------


def test_poisson_arrivals_follow_the_rate():
    rng = np.random.default_rng(5)
    cells = rate_cells(lambda t: np.where(t < 50, 100.0, 1000.0), 100.0, 1.0)
    arr = poisson_arrivals(cells, 1.0, 0.0, 100.0, rng)
    assert np.all(np.diff(arr) >= 0) and arr[0] >= 0 and arr[-1] < 100
    assert np.sum(arr < 50) == pytest.approx(5_000, rel=0.05)
    assert np.sum(arr >= 50) == pytest.approx(50_000, rel=0.02)
    gaps = np.diff(arr[arr >= 50])
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.03)  # exponential gaps


def test_service_model_means():
    rng = np.random.default_rng(6)
    for dist in ("exponential", "lognormal"):
        sm = ServiceModel(read_mean_s=0.002, submit_mean_s=0.01, submit_share=0.25, distribution=dist, cv=2.0)
        s, sub = sm.sample(400_000, rng)
        assert sub.mean() == pytest.approx(0.25, abs=0.005)
        assert s[~sub].mean() == pytest.approx(0.002, rel=0.03)
        assert s[sub].mean() == pytest.approx(0.01, rel=0.03)
        assert s.mean() == pytest.approx(sm.mean_s, rel=0.03)
        if dist == "exponential":
            assert (s**2).mean() == pytest.approx(sm.second_moment_s2, rel=0.05)
    s, sub = ServiceModel(distribution="lognormal", cv=2.0).sample(400_000, rng)
    assert s[~sub].std() / s[~sub].mean() == pytest.approx(2.0, rel=0.15)


# --------------------------------------------------------------------------------------------------
# Autoscaling
# --------------------------------------------------------------------------------------------------


def step_rate(base: float, t_step: float = 600.0):
    return lambda t: np.where(t < t_step, base, 10.0 * base)


def test_autoscaler_reaches_3x_within_5_minutes_of_a_10x_step():
    svc = ServiceModel()
    c0 = 4
    base = 0.5 * c0 / svc.mean_s  # 50 % utilization before the step
    policy = AutoscalePolicy(max_servers=64)
    res = simulate_api(step_rate(base), 1500.0, rng=np.random.default_rng(3), servers=c0, service=svc,
                       rtt_ms=20.0, policy=policy)
    s = res.series
    before = s["t"] <= 600
    assert np.all(s["servers"][before] == c0)  # steady at 50 % load: no scaling
    reached = s["t"][(s["t"] > 600) & (s["servers"] >= 3 * c0)]
    assert reached.size and reached[0] - 600 <= 300
    # first order at the first evaluation after the step, capped at 2× the pool
    assert s["pool"][s["t"] == 615][0] == 2 * c0
    # the queue then drains: latency back near its pre-step level and utilization near target
    after = s["t"] > 1000
    assert np.nanmax(s["p99_ms"][after]) < 2 * np.nanmax(s["p99_ms"][before])
    assert s["utilization"][after].mean() < 0.7


def test_scale_down_after_cooldown_and_floor():
    svc = ServiceModel()
    policy = AutoscalePolicy(min_servers=2, max_servers=32, scale_down_cooldown_s=120)
    res = simulate_api(50.0, 900.0, rng=np.random.default_rng(4), servers=16, service=svc, policy=policy)
    s = res.series
    assert s["servers"][0] == 2  # 50 req/s · 3.2 ms = 0.16 server: straight down to the floor
    assert np.all(s["servers"] >= 2)
    res2 = simulate_api(lambda t: np.where(t < 60, 2000.0, 50.0), 900.0, rng=np.random.default_rng(4),
                        servers=16, service=svc, policy=policy)
    s2 = res2.series
    # 2000 req/s · 3.2 ms = 6.4 busy servers → ⌈6.4 / 0.6⌉ = 11 at the first evaluation (t = 15)
    assert s2["servers"][0] == 11
    # load drops at 60 s, but the pool holds until 120 s after its last change (t = 15 + 120)
    assert s2["servers"][s2["t"] == 120][0] == 11
    assert s2["servers"][s2["t"] == 135][0] == 2
    assert s2["servers"][-1] == 2


def test_fluid_model_matches_kernel_decisions():
    svc = ServiceModel()
    policy = AutoscalePolicy(max_servers=64)
    rate = step_rate(0.5 * 4 / svc.mean_s)
    res = simulate_api(rate, 1500.0, rng=np.random.default_rng(8), servers=4, service=svc, policy=policy)
    expected_work = rate((np.arange(100) + 0.5) * 15.0) * 15.0 * svc.mean_s
    fl = fluid_autoscale(expected_work, 15.0, 1500.0, 4, policy)
    np.testing.assert_array_equal(fl.pool_end[:55], res.series["pool"][:55])
    np.testing.assert_array_equal(fl.online_end[:55], res.series["servers"][:55])
    assert fl.online_at(675.0) == 8 and fl.online_at(674.9) == 4


# --------------------------------------------------------------------------------------------------
# simulate_api: percentiles, topology, sampling, determinism
# --------------------------------------------------------------------------------------------------


def test_histogram_percentiles_match_exact():
    res = simulate_api(800.0, 300.0, rng=np.random.default_rng(9), servers=4, rtt_ms=np.array([10.0, 60.0]),
                       keep_latencies=True)
    exact = latency_percentiles_ms(res.latencies_ms)
    approx = latency_percentiles_ms(res)
    for k in exact:
        assert approx[k] == pytest.approx(exact[k], rel=0.005)
    assert set(approx) == {"api_p50_ms", "api_p95_ms", "api_p99_ms"}
    assert res.n_simulated == res.latencies_ms.size == pytest.approx(240_000, rel=0.01)


def test_latency_adds_network_round_trip():
    svc = ServiceModel(read_mean_s=0.001, submit_mean_s=0.001)
    far = simulate_api(100.0, 120.0, rng=np.random.default_rng(1), servers=8, service=svc, rtt_ms=150.0)
    near = simulate_api(100.0, 120.0, rng=np.random.default_rng(1), servers=8, service=svc, rtt_ms=0.0)
    assert far.percentiles_ms()["api_p50_ms"] == pytest.approx(near.percentiles_ms()["api_p50_ms"] + 150,
                                                               rel=0.002)
    # median of an exponential service of 1 ms with no queueing (rho = 0.0125): ln 2 ms
    assert near.percentiles_ms()["api_p50_ms"] == pytest.approx(math.log(2), rel=0.02)


def test_nearest_node_routing_and_shares():
    rtt = np.array([[20.0, 90.0], [85.0, 25.0], [150.0, 160.0]])
    res = simulate_api(1000.0, 120.0, rng=np.random.default_rng(2), servers=[4, 2], rtt_ms=rtt,
                       client_share=np.array([0.5, 0.3, 0.2]), keep_latencies=True)
    lat = res.latencies_ms
    # 70 % of requests (regions 0 and 2) go to node 0, 30 % to node 1: RTT floors 20 / 25 / 150 ms
    assert np.mean(lat >= 150) == pytest.approx(0.2, abs=0.01)
    assert lat.min() >= 20.0
    node_util = [d["utilization"].mean() for d in res.per_node]
    assert node_util[0] == pytest.approx(700 * 0.0032 / 4, rel=0.05)
    assert node_util[1] == pytest.approx(300 * 0.0032 / 2, rel=0.05)


def test_sampled_mode_agrees_with_full_simulation():
    """Moderate case (diurnal load, a 1.6× bump for 5 min, autoscaling, two client regions).

    Tolerance stated in the module docstring: P50 3 %, P95 5 %, P99 10 % (measured over 8 seed pairs:
    at most 1.0 %, 0.5 %, 1.2 %).
    """
    duration = 2 * 3600.0
    policy = AutoscalePolicy(min_servers=2, max_servers=32)

    def rate(t):
        r = 300.0 - 200.0 * np.cos(2 * np.pi * t / duration)
        return np.where((t > 3600) & (t < 3900), 1.6 * r, r)

    kw = dict(servers=3, rtt_ms=np.array([20.0, 80.0]), client_share=np.array([0.7, 0.3]), policy=policy)
    full = simulate_api(rate, duration, rng=np.random.default_rng(20), **kw)
    smp = simulate_api(rate, duration, rng=np.random.default_rng(21), sample=SamplePlan(), **kw)
    assert smp.sampled and not full.sampled
    assert smp.n_simulated < 0.3 * full.n_simulated
    assert smp.n_represented == pytest.approx(full.n_simulated, rel=0.01)
    pf, ps = full.percentiles_ms(), smp.percentiles_ms()
    for key, tol in (("api_p50_ms", 0.03), ("api_p95_ms", 0.05), ("api_p99_ms", 0.10)):
        assert ps[key] == pytest.approx(pf[key], rel=tol)
    # the bump pushes utilization past 0.8 before the autoscaler catches up: simulated in full
    bump = (smp.series["t"] > 3600) & (smp.series["t"] <= 3900)
    assert smp.series["simulated"][bump].all()
    assert 0.1 < smp.series["simulated"].mean() < 0.3
    # server counts agree between the fluid plan (sampled) and the request-level autoscaler (full)
    assert np.mean(smp.series["servers"] == full.series["servers"]) > 0.9


def test_deterministic_with_seed():
    kw = dict(servers=2, rtt_ms=np.array([10.0, 50.0]), policy=AutoscalePolicy(max_servers=8),
              keep_latencies=True)
    a = simulate_api(step_rate(200.0, 60.0), 240.0, rng=np.random.default_rng(7), **kw)
    b = simulate_api(step_rate(200.0, 60.0), 240.0, rng=np.random.default_rng(7), **kw)
    c = simulate_api(step_rate(200.0, 60.0), 240.0, rng=np.random.default_rng(8), **kw)
    np.testing.assert_array_equal(a.latencies_ms, b.latencies_ms)
    np.testing.assert_array_equal(a.hist, b.hist)
    for k in a.series:
        np.testing.assert_array_equal(a.series[k], b.series[k])
    assert not np.array_equal(a.hist, c.hist)
    sa = simulate_api(300.0, 1800.0, rng=np.random.default_rng(7), sample=SamplePlan(), servers=2)
    sb = simulate_api(300.0, 1800.0, rng=np.random.default_rng(7), sample=SamplePlan(), servers=2)
    np.testing.assert_array_equal(sa.hist, sb.hist)
    assert isinstance(sa, ApiResult)


def test_bad_inputs_rejected():
    with pytest.raises(ValueError, match="target_utilization"):
        AutoscalePolicy(target_utilization=0)
    with pytest.raises(ValueError, match="sorted"):
        simulate_queue(np.array([1.0, 0.5]), np.array([0.1, 0.1]), 1)
    with pytest.raises(ValueError, match="servers"):
        simulate_api(10.0, 10.0, rng=np.random.default_rng(0), servers=[1, 2], rtt_ms=5.0)
    with pytest.raises(ValueError, match="interval_s"):
        simulate_api(10.0, 10.0, rng=np.random.default_rng(0), policy=AutoscalePolicy(), window_s=60.0)
