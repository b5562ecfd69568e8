"""Benchmark of the API queue kernel and of simulate_api (full and sampled).

Run:  NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_api.py [--quick]

Prints: kernel requests/s for M/M/c queues; the wall time of a simulated day at 1,000 req/s (full
simulation and sampled); and the sampled-vs-full percentile error on a day with a diurnal load and an
overload spike, both as relative latency error and as CDF error F_full(q̂) − q.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ainur_sim.chain.api import HIST_EDGES_MS, SamplePlan, simulate_api, simulate_queue
from ainur_sim.chain.autoscale import AutoscalePolicy

DAY = 86_400.0


def kernel_rate(c: int, rho: float, n: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    mu = 200.0
    arr = np.cumsum(rng.exponential(1 / (rho * c * mu), n))
    svc = rng.exponential(1 / mu, n)
    simulate_queue(arr[:1000], svc[:1000], c)  # compile / load from cache
    t = time.perf_counter()
    simulate_queue(arr, svc, c)
    return n / (time.perf_counter() - t)


def diurnal(mean: float, spike: float = 1.0, spike_at: float = 0.5 * DAY, spike_len: float = 600.0):
    """Rate (req/s) with a daily ±60 % cycle around ``mean`` and a ``spike``× burst of ``spike_len`` s."""
    def rate(t):
        r = mean * (1.0 - 0.6 * np.cos(2 * np.pi * t / DAY))
        return np.where((t >= spike_at) & (t < spike_at + spike_len), spike * r, r)
    return rate


def cdf_at(hist: np.ndarray, x: float) -> float:
    cum = np.cumsum(hist) / hist.sum()
    i = np.searchsorted(HIST_EDGES_MS, x) - 1
    i = min(max(i, 0), hist.size - 1)
    lo, hi = HIST_EDGES_MS[i], HIST_EDGES_MS[i + 1]
    below = cum[i - 1] if i > 0 else 0.0
    frac = np.log(x / lo) / np.log(hi / lo)
    return float(below + frac * (cum[i] - below))


def run_day(duration: float, spike: float, seed: int, sample: SamplePlan | None):
    rtt = np.array([[20.0, 90.0], [85.0, 25.0], [150.0, 160.0]])  # 3 client regions × 2 RPC nodes
    t = time.perf_counter()
    res = simulate_api(diurnal(1000.0, spike, spike_at=duration / 2), duration,
                       rng=np.random.default_rng(seed), servers=[4, 3], rtt_ms=rtt,
                       client_share=np.array([0.5, 0.3, 0.2]),
                       policy=AutoscalePolicy(min_servers=2, max_servers=128), sample=sample)
    return res, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a 2 h 'day')")
    args = ap.parse_args()
    n = 2_000_000 if args.quick else 10_000_000
    duration = 7200.0 if args.quick else DAY

    print("## kernel (simulate_queue, M/M/c, exponential service, fixed c)")
    for c, rho in [(1, 0.8), (4, 0.8), (16, 0.9), (64, 0.9)]:
        print(f"c={c:3d} rho={rho}: {kernel_rate(c, rho, n) / 1e6:6.1f} M requests/s  (n = {n:,})")

    print(f"\n## simulate_api, {duration / 3600:.0f} h at mean 1,000 req/s (diurnal ±60 %), "
          "2 nodes, autoscaling")
    simulate_api(100.0, 60.0, rng=np.random.default_rng(0), servers=2)  # warm numba caches
    for spike in (1.0, 3.0):
        full, t_full = run_day(duration, spike, 1, None)
        smp, t_smp = run_day(duration, spike, 2, SamplePlan())
        pf, ps = full.percentiles_ms(), smp.percentiles_ms()
        label = "no spike" if spike == 1.0 else f"{spike:.0f}x spike for 10 min at mid-run"
        print(f"\n### {label}")
        print(f"full:    {t_full:7.2f} s wall, {full.n_simulated:,} requests, "
              f"{full.n_simulated / t_full / 1e6:.2f} M req/s end to end")
        print(f"sampled: {t_smp:7.2f} s wall, {smp.n_simulated:,} requests simulated "
              f"({smp.n_simulated / full.n_simulated:.1%}), represents {smp.n_represented:,.0f}; "
              f"speed-up {t_full / t_smp:.1f}x")
        for key, q in (("api_p50_ms", 0.5), ("api_p95_ms", 0.95), ("api_p99_ms", 0.99)):
            rel = ps[key] / pf[key] - 1
            dq = cdf_at(full.hist, ps[key]) - q
            print(f"  {key}: full {pf[key]:9.1f}  sampled {ps[key]:9.1f}  rel {rel:+.2%}  "
                  f"F_full(sampled) - q = {dq:+.4f}")
        print(f"  max servers: full {full.series['servers'].max()}, sampled {smp.series['servers'].max()}")


if __name__ == "__main__":
    main()
