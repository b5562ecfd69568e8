"""Benchmark: how a run's cost grows with simulated duration, validators, agents and offered TPS.

Usage::

    NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_growth.py [--curves duration,validators,agents,tps]
                                                                       [--repeats N] [--quick] [--no-write]

Four curves, each varying one size with everything else fixed (``BASE`` plus the curve's own overrides):

============ ======================================================= =========================================
curve        varied                                                   fixed
============ ======================================================= =========================================
duration     ``duration_s`` 1.5 h … 24 h                             ``baseline``: 10 validators, 100 TPS, API on
validators   ``chain.n_validators`` 10 … 1,000                        1 h, 100 TPS, bonds 1,000 tokens (*)
agents       ``population.n_workers`` 250 … 4,000 (requesters = ½)   3 h, 1 task per requester-hour, no background
tps          ``load.tps`` 125 … 1,000 (below the ≈ 1,033 ceiling)    6 h, 10 validators
============ ======================================================= =========================================

(*) 1,000 validators bonded at the default 10,000 tokens would exceed the int64 ledger's 9 M-token genesis
cap, so the validators curve bonds every validator with 1,000 tokens; for the same reason the agents curve
(no background load) endows the background account with 100,000 tokens, workers with 300 and requesters
with 1,000 (≥ 6 times what a requester spends in the 3 h).

Each point is the median wall time of ``--repeats`` runs (default 3) in one process after a warm-up
(imports, Numba caches). The **exponent** of a curve is the least-squares slope of log(wall) against
log(size) over all its points; the *marginal* exponent is the slope between its two largest points, where
fixed costs (composing the config, building the network, writing nothing — runs are not written to disk)
matter least. Linear growth is exponent 1. ``--record`` (default; ``--no-write`` to print only) writes the
table to benchmarks/RESULTS.md under "## Cost growth (issue 8)".
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ainur_sim import compose, run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import commit, write_section  # noqa: E402

SECTION = "## Cost growth (issue 8)"


@dataclass(frozen=True)
class Curve:
    """One size varied over ``values`` with ``fixed`` overrides; ``key`` is the Hydra key varied and each
    ``(key, factor)`` of ``scaled`` is set to ⌊factor × value⌋ alongside it."""

    name: str
    key: str
    values: tuple[float, ...]
    quick_values: tuple[float, ...]
    fixed: tuple[str, ...]
    unit: str
    scaled: tuple[tuple[str, float], ...] = ()

    def overrides(self, value: float) -> list[str]:
        v = int(value) if float(value).is_integer() else value
        return [*self.fixed, f"{self.key}={v}", *(f"{k}={int(f * value)}" for k, f in self.scaled)]


CURVES: dict[str, Curve] = {c.name: c for c in (
    Curve("duration", "duration_s", (5_400.0, 10_800.0, 21_600.0, 43_200.0, 86_400.0),
          (1_800.0, 3_600.0, 7_200.0), ("scenario=baseline",), "simulated s"),
    Curve("validators", "chain.n_validators", (10, 50, 200, 1_000), (10, 50, 200),
          ("scenario=baseline", "duration_s=3600", "api.enabled=false",
           "economics.validator_bond_tokens=1000"), "validators"),
    Curve("agents", "population.n_workers", (250, 500, 1_000, 2_000, 4_000), (100, 200, 400),
          ("scenario=baseline", "duration_s=10800", "api.enabled=false", "load.tps=0",
           "population.tasks_per_requester_hour=1", "population.market_start_s=900",
           "population.onboarding_spread_s=600", "economics.background_tokens=100000",
           "population.worker_tokens=300", "population.requester_tokens=1000"),
          "workers (+ ½ as many requesters)", scaled=(("population.n_requesters", 0.5),)),
    Curve("tps", "load.tps", (125.0, 250.0, 500.0, 1_000.0), (125.0, 250.0, 500.0),
          ("scenario=baseline", "duration_s=21600", "api.enabled=false"), "offered tx/s"),
)}


def time_run(overrides: Sequence[str], repeats: int) -> tuple[float, int]:
    """Median wall seconds of ``repeats`` runs and the kernel events of the last one."""
    walls, events = [], 0
    for _ in range(repeats):
        cfg = compose(list(overrides))
        t0 = time.perf_counter()
        res = run(cfg)
        walls.append(time.perf_counter() - t0)
        events = int(res.stats.get("kernel_events", 0))
    return statistics.median(walls), events


def exponent(sizes: Sequence[float], walls: Sequence[float]) -> tuple[float, float]:
    """(least-squares slope over all points, slope between the two largest) of log wall vs log size."""
    x, y = np.log(np.asarray(sizes, float)), np.log(np.asarray(walls, float))
    slope = float(np.polyfit(x, y, 1)[0])
    marginal = float((y[-1] - y[-2]) / (x[-1] - x[-2]))
    return slope, marginal


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--curves", default=",".join(CURVES))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke test of the script")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    names = [c for c in args.curves.split(",") if c]
    unknown = sorted(set(names) - set(CURVES))
    if unknown:
        ap.error(f"unknown curve(s) {unknown}; choose from {sorted(CURVES)}")
    run(compose(["scenario=baseline", "duration_s=600"]))  # warm-up: imports and Numba caches
    load0 = os.getloadavg()
    rows, summary = [], []
    for name in names:
        curve = CURVES[name]
        values = curve.quick_values if args.quick else curve.values
        walls = []
        for v in values:
            wall, events = time_run(curve.overrides(v), args.repeats)
            walls.append(wall)
            rows.append((name, v, wall, events))
            print(f"{name:10s} {v:>10g}  wall {wall:7.2f} s  kernel events {events:,}", flush=True)
        slope, marginal = exponent(values, walls)
        summary.append((curve, values, walls, slope, marginal))
        print(f"{name}: exponent {slope:.2f} (marginal {marginal:.2f})", flush=True)
    if args.no_write:
        return 0
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION, "",
        f"- Date: {now}. Commit {commit()}. Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average at start (1, 5, 15 min): "
        f"{', '.join(f'{x:.2f}' for x in load0)}.",
        f"- Command: `NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_growth.py"
        f"{' --quick' if args.quick else ''} --curves {','.join(names)} --repeats {args.repeats}` — median of "
        f"{args.repeats} runs per point in one process after a warm-up; runs are not written to disk.",
        "- Exponent: least-squares slope of log(wall) on log(size); marginal: between the two largest "
        "points. 1 = linear.", "",
        "| curve | varied | fixed | sizes | wall (s) | exponent | marginal |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for curve, values, walls, slope, marginal in summary:
        lines.append(f"| {curve.name} | `{curve.key}` ({curve.unit}) | `{' '.join(curve.fixed)}` | "
                     f"{', '.join(f'{v:g}' for v in values)} | {', '.join(f'{w:.2f}' for w in walls)} | "
                     f"{slope:.2f} | {marginal:.2f} |")
    write_section(SECTION, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
