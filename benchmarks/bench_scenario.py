"""Benchmark: one named scenario at its default size, end to end (chain, market, agents, API layer).

Usage::

    NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_scenario.py [SCENARIO] [OVERRIDES...] [--repeats N]
                                                                         [--record]

Default scenario ``launch_day``. A 10-simulated-minute warm-up run (same overrides) loads imports and the
Numba caches; then the run is repeated ``--repeats`` times (default 3) and the median wall time is reported
with the simulated/wall ratio, peak RSS of the process (and of its largest forked child), each run's CPU
(the run's process and its forked children: drawing ahead, the API layer), kernel events, agent
activations, market calls and tasks. ``--record`` writes the figures into benchmarks/RESULTS.md (section
"Scenario <name>").
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

from ainur_sim import compose, run

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import commit, write_section  # noqa: E402

WARMUP_S = 600.0
#: wall-time targets (s) of the named scenarios at their default size, and whose
TARGETS: dict[str, list[tuple[str, float]]] = {
    "launch_day": [("issue 6", 20.0), ("issue 8", 10.0)],
    "launch_week": [("issue 8", 60.0)],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="launch_day")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args(argv)
    overrides = [f"scenario={args.scenario}", *args.overrides]
    run(compose([*overrides, f"duration_s={WARMUP_S:g}"]))
    walls, cpus, res = [], [], None
    for _ in range(args.repeats):
        res = None
        gc.collect()  # (the previous run's world is garbage: collected here, not inside the next timed run)
        c0 = os.times()
        t0 = time.perf_counter()
        res = run(compose(overrides))
        walls.append(time.perf_counter() - t0)
        c1 = os.times()
        # CPU of this process, and of its forked children (perf.draw_ahead, perf.api_concurrent; reaped by
        # the run)
        cpus.append(((c1.user - c0.user) + (c1.system - c0.system),
                     (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)))
    wall = statistics.median(walls)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    s = res.stats
    calls = sum(s.get("market_calls", {}).values())
    lines = [
        f"overrides: {' '.join(overrides)}",
        f"wall (median of {args.repeats}): {wall:.2f} s   runs: {', '.join(f'{w:.2f}' for w in walls)}",
        f"simulated/wall: {res.duration_s / wall:,.0f}x   peak RSS: {rss:.0f} MiB (largest child: "
        f"{rss_children:.0f} MiB, its pages mostly shared with the run's process)",
        "CPU per run (run's process + forked children): "
        + ", ".join(f"{c:.1f} + {k:.1f} s" for c, k in cpus),
        f"kernel events: {s['kernel_events']:,}   agent activations: {s.get('agent_activations', 0):,}   "
        f"market calls: {calls:,}   tasks: {s.get('tasks', 0):,}   tx finalized: {s.get('tx_finalized', 0):,}",
        f"agents joined: {s.get('workers_joined', 0) + s.get('requesters_joined', 0):,} "
        f"({s.get('workers_joined', 0):,} workers, {s.get('requesters_joined', 0):,} requesters)",
    ]
    if not args.overrides:  # (a target applies to the scenario at its default size)
        lines += [f"target ({who}): ≤ {target:g} s wall — {'met' if wall <= target else 'not met'}"
                  for who, target in TARGETS.get(args.scenario, [])]
    print("\n".join(lines))
    if args.record:
        cmd = " ".join(["NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_scenario.py", args.scenario,
                        *args.overrides])
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        write_section(f"## Scenario {args.scenario}", "\n".join([
            f"## Scenario {args.scenario}", "",
            f"- Date: {now}. Commit {commit()}. Machine: {platform.machine()}, 2 cores, Python "
            f"{platform.python_version()}.",
            f"- Command: `{cmd}` — median of {args.repeats} runs after a {WARMUP_S:g}-simulated-second warm-up.",
            "",
            *(f"    {line}" for line in lines),
        ]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
