"""Benchmark: wall time per simulated interval within one run — does a run get slower as it goes?

Usage::

    NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_intervals.py [OVERRIDES...] [--pieces 12]
                                                                          [--repeats 3] [--no-write]

Overrides are Hydra overrides as for ``ainur_sim.compose`` (default: ``scenario=baseline duration_s=86400``,
the duration curve's largest point in bench_growth.py). After a short warm-up (Numba caches, imports), the
run is built once and driven piece by piece: ``env.run(until=…)`` for ``--pieces`` equal simulated
intervals, each timed; with ``--repeats`` the run is repeated and each interval's median is taken (a
shared machine's speed drifts by ±15 % over a minute; the medians damp it). Under a steady load
(``baseline``) the cost of an interval is the same at the end of the run as at the start when nothing
grows worse than linearly in duration; the ratio of the last third's mean to the first third's is
reported (1 = flat). A scenario whose load grows (``launch_day``,
``launch_week``) shows its load in the profile, not super-linearity.

Driving the run piece by piece simulates the same events as one ``env.run`` (SimPy processes the same
queue), so the profile is that of a normal run; tables and the KPI verdict are not built.
The figures go to benchmarks/RESULTS.md under "## Cost over a run (issue 8)" (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import commit, write_section  # noqa: E402

from ainur_sim import compose, run  # noqa: E402
from ainur_sim.sim import build_world, to_config  # noqa: E402

SECTION = "## Cost over a run (issue 8)"
DEFAULT_OVERRIDES = ["scenario=baseline", "duration_s=86400"]


def interval_walls(overrides: list[str], pieces: int) -> tuple[float, list[float]]:
    """(simulated duration s, wall seconds of each of ``pieces`` equal simulated intervals of one run)."""
    cfg = to_config(compose(overrides))
    world = build_world(cfg)
    duration = cfg.run_duration_s
    walls = []
    for i in range(1, pieces + 1):
        t0 = time.perf_counter()
        world.env.run(until=duration * i / pieces)
        walls.append(time.perf_counter() - t0)
    return duration, walls


def drift(walls: list[float]) -> float:
    """Mean wall of the last third of the intervals over that of the first third (1 = a flat profile)."""
    third = max(len(walls) // 3, 1)
    return statistics.fmean(walls[-third:]) / statistics.fmean(walls[:third])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="Hydra overrides (default: scenario=baseline duration_s=86400)")
    ap.add_argument("--pieces", type=int, default=12, help="equal simulated intervals (default 12)")
    ap.add_argument("--repeats", type=int, default=3, help="runs; per-interval medians (default 3)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch RESULTS.md")
    args = ap.parse_args(argv)
    if args.pieces < 3:
        print("bench_intervals: --pieces must be ≥ 3", file=sys.stderr)
        return 2
    overrides = args.overrides or DEFAULT_OVERRIDES
    run(compose([o for o in overrides if not o.startswith("duration_s=")] + ["duration_s=600"]))  # warm-up
    runs = [interval_walls(overrides, args.pieces) for _ in range(max(args.repeats, 1))]
    duration = runs[0][0]
    walls = [statistics.median(r[1][i] for r in runs) for i in range(args.pieces)]
    for _, w in runs:
        print("run: " + " ".join(f"{x:.2f}" for x in w) + f"  (drift {drift(w):.2f})")
    ratio = drift(walls)
    piece_h = duration / args.pieces / 3600.0
    print(f"overrides: {' '.join(overrides)}")
    print(f"wall per {piece_h:g} simulated h: " + " ".join(f"{w:.2f}" for w in walls) + f"  (total {sum(walls):.1f} s)")
    print(f"last third / first third: {ratio:.2f}")
    if not args.no_write:
        write_section(SECTION, "\n".join([
            SECTION,
            "",
            f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. Commit {commit()}.",
            f"- Command: `NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_intervals.py "
            f"{' '.join(args.overrides)}{' ' if args.overrides else ''}--pieces {args.pieces} --repeats "
            f"{len(runs)}` — each run driven in "
            f"{args.pieces} equal simulated intervals of {piece_h:g} h, each timed, after a warm-up; per-interval "
            f"medians of {len(runs)} run(s) (the runs' own ratios: "
            f"{', '.join(f'{drift(w):.2f}' for _, w in runs)}).",
            "",
            "| overrides | wall per interval (s), in order | total | last third / first third |",
            "|---|---|---:|---:|",
            f"| `{' '.join(overrides)}` | {' · '.join(f'{w:.2f}' for w in walls)} | {sum(walls):.1f} s | {ratio:.2f} |",
            "",
            "Under a steady load, a ratio near 1 says the cost of simulating an hour does not grow with the "
            "simulated time already run: cost is linear in duration (the duration curve's per-point medians "
            "above are noisier: whole runs on a shared machine).",
            "",
        ]))
        print(f"written: {SECTION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
