"""Benchmark: one run of the chain (block production, GRANDPA, transaction pool) end to end.

Usage::

    NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_chain_day.py [OVERRIDES...] [--repeats N]

Overrides are Hydra overrides as for ``ainur_sim.compose``; the default is the issue's target run
``scenario=baseline duration_s=86400 chain.n_validators=50 load.tps=1000 api.enabled=false`` (one
simulated day, 50 validators, a steady 1,000 TPS). A short warm-up run (same overrides, 10 simulated
minutes) loads the Numba caches and imports first; then the run is repeated ``--repeats`` times (default 3)
and the median wall time is reported, with simulated/wall ratio, peak RSS of the process (includes the
warm-up and every repeat), slots, blocks authored and transactions finalized.

``--preset validators_day`` runs issue 8's target instead: the same day with 1,000 validators
(``chain.n_validators=1000 economics.validator_bond_tokens=1000``: the default bond would exceed the genesis
cap), target 120 s, one repeat by default.

The result is written to ``benchmarks/RESULTS.md`` under the preset's section ("## Chain day (issue 3)" or
"## 1,000 validators day (issue 8)"; ``--no-write``: print only); other sections are left untouched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import numba
import numpy as np
import simpy
from _results import RESULTS, commit, write_section

from ainur_sim import compose, run

DEFAULT_OVERRIDES = ["scenario=baseline", "duration_s=86400", "chain.n_validators=50", "load.tps=1000",
                     "api.enabled=false"]
WARMUP_S = 600.0  # simulated seconds of the warm-up run


@dataclass(frozen=True)
class Preset:
    """A benchmarked run: its RESULTS.md section, default overrides, wall-time target (s), whose target."""

    section: str
    overrides: list[str]
    target_s: float
    issue: str
    repeats: int


PRESETS = {
    # issue 3: one simulated day, 50 validators, a steady 1,000 TPS, under 15 s wall
    "chain_day": Preset("## Chain day (issue 3)", DEFAULT_OVERRIDES, 15.0, "issue 3", 3),
    # issue 8: the same day with 1,000 validators, at most 120 s wall
    "validators_day": Preset("## 1,000 validators day (issue 8)",
                             [o if not o.startswith("chain.n_validators=") else "chain.n_validators=1000"
                              for o in DEFAULT_OVERRIDES] + ["economics.validator_bond_tokens=1000"],
                             120.0, "issue 8", 1),
}
HISTORY = (
    "Earlier figures for the default run on this machine kind: 80.9 s before the first optimization pass "
    "(commit 7fd33ff), 29.1 s after it (commit 33a8032: Numba kernels for GRANDPA rounds, view updates, "
    "ancestor walks and the pool's select/include/finalize); the no-load day went 16.4 s → 6.4 s and 1 h at "
    "2,000 TPS 4.16 s → 2.34 s in that pass."
)


def _with_duration(overrides: list[str], duration_s: float) -> list[str]:
    """``overrides`` with ``duration_s`` replaced (or added)."""
    return [o for o in overrides if not o.startswith("duration_s=")] + [f"duration_s={duration_s:g}"]


def _peak_rss_mib() -> float:
    """Peak resident set size of this process, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _machine() -> str:
    """CPU, core count, library versions and the load average when the benchmark starts."""
    cpu = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        cpu = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), cpu)
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"`nproc` = {os.cpu_count()}, {cpu}; Python {platform.python_version()}, numpy {np.__version__}, "
            f"numba {numba.__version__}, simpy {simpy.__version__}; load average at start (1, 5, 15 min): {load}")


def _section(preset: Preset, name: str, overrides: list[str], walls: list[float], duration_s: float, stats: dict,
             machine: str, commit: str, default_run: bool, warmup: bool) -> str:
    """The RESULTS.md section for one benchmark invocation (markdown)."""
    wall = statistics.median(walls)
    tx_final = stats.get("tx_finalized", stats.get("transactions_finalized"))
    target = preset.target_s
    verdict = (f"Target ({preset.issue}): the default run under {target:g} s wall — "
               f"{'met' if wall <= target else '**not met**'} ({wall:.2f} s)." if default_run else
               f"(Not the default run: the {preset.issue} target of {target:g} s applies to the default overrides.)")
    flag = "" if name == "chain_day" else f" --preset {name}"
    return "\n".join([
        preset.section,
        "",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. Commit {commit}.",
        f"- Machine: {machine}.",
        f"- Command: `NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_chain_day.py{flag} [OVERRIDES]` "
        "— median "
        f"of {len(walls)} run(s) in one process"
        + (f" after a {WARMUP_S:g}-simulated-second warm-up (Numba caches warm)" if warmup else ", no warm-up")
        + "; peak RSS is the process's (warm-up and all repeats).",
        "",
        "| overrides | wall (median) | min – max | simulated/wall | peak RSS | slots | blocks | finality rounds "
        "| tx finalized |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| `{' '.join(overrides)}` | {wall:.2f} s | {min(walls):.2f} – {max(walls):.2f} s "
        f"| {duration_s / wall:,.0f}× | {_peak_rss_mib():.0f} MiB | {stats.get('slots'):,} "
        f"| {stats.get('blocks_authored'):,} | {stats.get('finality_rounds'):,} | {tx_final:,} |",
        "",
        verdict,
        "",
        *([HISTORY, ""] if name == "chain_day" else []),
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per repeat plus a summary; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="Hydra overrides (default: the issue's 1-day, 1,000 TPS run)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="chain_day",
                    help="the benchmarked run (default chain_day: issue 3's; validators_day: issue 8's)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed runs; the median is reported (default 3, validators_day 1)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the 10-minute warm-up run")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch RESULTS.md")
    args = ap.parse_args(argv)
    machine = _machine()
    preset = PRESETS[args.preset]
    overrides = args.overrides or preset.overrides
    if not any(o.startswith("api.enabled=") for o in overrides):
        overrides = [*overrides, "api.enabled=false"]
    cfg = compose(overrides)
    print("overrides:", " ".join(overrides), flush=True)

    if not args.no_warmup:
        t0 = time.perf_counter()
        run(compose(_with_duration(overrides, WARMUP_S)))
        print(f"warm-up ({WARMUP_S:g} simulated s): {time.perf_counter() - t0:.2f} s wall", flush=True)

    walls: list[float] = []
    res = None
    for i in range(max(preset.repeats if args.repeats is None else args.repeats, 1)):
        res = None
        gc.collect()  # (the previous run's world is garbage: collected here, not inside the next timed run)
        c0, t0 = os.times(), time.perf_counter()
        res = run(cfg)
        wall = time.perf_counter() - t0
        c1 = os.times()
        walls.append(wall)
        # CPU of this process, and of the children that drew ahead (perf.draw_ahead; reaped when the run ends)
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        cpu_children = (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system)
        print(f"run {i + 1}: {wall:.2f} s wall, CPU {cpu:.2f} s (run's process) + {cpu_children:.2f} s "
              f"(draw-ahead children)", flush=True)
    assert res is not None
    wall = statistics.median(walls)
    st = res.stats
    tx_final = st.get("tx_finalized", st.get("transactions_finalized"))
    print(f"wall (median of {len(walls)}): {wall:.2f} s  [min {min(walls):.2f}, max {max(walls):.2f}]")
    print(f"simulated/wall: {res.duration_s / wall:,.0f}x  ({res.duration_s:g} simulated s)")
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB")
    print(f"slots: {st.get('slots')}  blocks: {st.get('blocks_authored')}  "
          f"finality rounds: {st.get('finality_rounds')}  tx finalized: {tx_final}")
    if not args.no_write:
        write_section(preset.section, _section(preset, args.preset, overrides, walls, res.duration_s, st, machine,
                                               commit(), default_run=not args.overrides, warmup=not args.no_warmup))
        print(f"written: {RESULTS} ({preset.section})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
