"""Benchmark VCG clearing: one solve + one Dijkstra for all payments, against scipy and n + 1 re-solves.

Run from the repository root::

    NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_vcg.py [--quick] [--no-write]

All timings run in this one process, after a warm-up call, as the minimum over repeats. The markets are
dense: costs U[0,1], value 1, so every pair is eligible. Both sides solve the same assignment problem.
``clear`` is timed end to end (validation, allocation, all n payments, Outcome), and scipy's
``linear_sum_assignment`` is timed on the cost matrix, allocation only. The baseline for the payments
is n + 1 scipy solves (``W*`` and each ``W*₋ᵢ``). Only a sample of the re-solves is timed, and the
per-solve mean is multiplied by n + 1; the table marks such figures as extrapolated. Compile time is
measured in fresh subprocesses: the first with an empty ``NUMBA_CACHE_DIR``, the second reusing it.
The figures are printed as markdown and written to ``benchmarks/RESULTS.md`` under
"## VCG clearing (issue 4)"; other sections of that file are left untouched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
import scipy
from _results import RESULTS
from _results import write_section as write_results_section
from scipy.optimize import linear_sum_assignment

from ainur_sim.market.vcg import clear, clear_capacity

SECTION = "## VCG clearing (issue 4)"

_FIRST_CALL_SCRIPT = """
import time
t0 = time.perf_counter()
import numpy as np
from ainur_sim.market.vcg import clear, clear_capacity
t1 = time.perf_counter()
costs = np.random.default_rng(0).uniform(0, 1, (50, 60))
clear(1.0, costs)
t2 = time.perf_counter()
clear_capacity(1.0, costs, 2)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` runs, seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def resolve_time(weights: np.ndarray, sample: int, rng: np.random.Generator) -> tuple[float, bool]:
    """Seconds for n + 1 scipy solves (``W*`` and every ``W*₋ᵢ``), and whether it was extrapolated.

    Times ``sample`` of the n re-solves (all of them when ``sample ≥ n``) plus the full solve.
    """
    n = weights.shape[0]
    start = time.perf_counter()
    linear_sum_assignment(weights, maximize=True)
    full = time.perf_counter() - start
    agents = np.arange(n) if sample >= n else rng.choice(n, sample, replace=False)
    start = time.perf_counter()
    for i in agents:
        linear_sum_assignment(np.delete(weights, i, axis=0), maximize=True)
    per_resolve = (time.perf_counter() - start) / len(agents)
    return full + n * per_resolve, sample < n


def bench_market(n_agents: int, n_tasks: int, repeats: int, sample: int, seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    costs = rng.uniform(0.0, 1.0, (n_agents, n_tasks))
    weights = 1.0 - costs
    clear(1.0, costs)  # warm-up: JIT load and page faults
    fast = best_time(lambda: clear(1.0, costs), repeats)
    lsa = best_time(lambda: linear_sum_assignment(costs), repeats)
    slow, extrapolated = resolve_time(weights, sample, rng)
    return {
        "market": f"{n_agents} × {n_tasks}",
        "clear": fast,
        "lsa": lsa,
        "resolves": slow,
        "extrapolated": extrapolated,
        "sample": min(sample, n_agents),
    }


def bench_capacity(n_agents: int, n_tasks: int, max_capacity: int, repeats: int, sample: int) -> dict[str, object]:
    """Capacity-k clearing against m + 1 scipy solves on agent copies (sampled, extrapolated)."""
    rng = np.random.default_rng(1)
    costs = rng.uniform(0.0, 1.0, (n_agents, n_tasks))
    capacity = rng.integers(1, max_capacity + 1, n_agents)
    clear_capacity(1.0, costs, capacity)
    fast = best_time(lambda: clear_capacity(1.0, costs, capacity), repeats)
    weights = 1.0 - costs
    owner = np.repeat(np.arange(n_agents), capacity)
    start = time.perf_counter()
    linear_sum_assignment(weights[owner], maximize=True)
    full = time.perf_counter() - start
    start = time.perf_counter()
    for g in rng.choice(n_agents, sample, replace=False):
        linear_sum_assignment(weights[owner[owner != g]], maximize=True)
    per_resolve = (time.perf_counter() - start) / sample
    return {
        "market": f"{n_agents} × {n_tasks}, k ≤ {max_capacity}",
        "clear": fast,
        "resolves": full + n_agents * per_resolve,
        "sample": sample,
    }


def first_call_times() -> tuple[list[float], list[float]]:
    """(import, first clear, first clear_capacity) seconds in a fresh process: cold cache, then warm cache."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="numba_cache_") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        runs = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", _FIRST_CALL_SCRIPT],
                env=env,
                cwd=root,
                check=True,
                capture_output=True,
                text=True,
            )
            runs.append([float(x) for x in out.stdout.split()[-3:]])
    return runs[0], runs[1]


def commit() -> str:
    """Short hash of HEAD, marked when the working tree has changes (read-only git calls)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True)
    except OSError:
        return "unknown"
    name = head.stdout.strip() or "no commit yet"
    return name + (" + working tree" if dirty.stdout.strip() else "")


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cores} cores (nproc), {model}; Python {platform.python_version()}, numpy {np.__version__}, "
        f"numba {numba.__version__}, scipy {scipy.__version__}"
    )


def _fmt(seconds: float) -> str:
    """Seconds as a short figure: milliseconds below 1 s, seconds below 1 h, then hours."""
    if seconds >= 100:
        return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds:.0f} s"
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def report(rows: list[dict[str, object]], capacity: dict[str, object], cold: list[float], warm: list[float]) -> str:
    lines = [
        "| market (agents × tasks) | `clear`: allocation + all payments | scipy LSAP, allocation only | "
        "ratio | n + 1 scipy re-solves | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        note = f" (extrapolated from {r['sample']})" if r["extrapolated"] else ""
        lines.append(
            f"| {r['market']} | {_fmt(r['clear'])} | {_fmt(r['lsa'])} | {r['clear'] / r['lsa']:.2f}× | "
            f"{_fmt(r['resolves'])}{note} | {r['resolves'] / r['clear']:,.0f}× |"
        )
    lines += [
        "",
        "| capacity-k market | `clear_capacity` | m + 1 scipy solves on agent copies | speed-up |",
        "|---|---|---|---|",
        f"| {capacity['market']} | {_fmt(capacity['clear'])} | {_fmt(capacity['resolves'])} "
        f"(extrapolated from {capacity['sample']}) | {capacity['resolves'] / capacity['clear']:,.0f}× |",
        "",
        "| fresh process | import `ainur_sim.market.vcg` | first `clear` (50 × 60) | first `clear_capacity` |",
        "|---|---|---|---|",
        f"| empty `NUMBA_CACHE_DIR` (compile) | {_fmt(cold[0])} | {_fmt(cold[1])} | {_fmt(cold[2])} |",
        f"| cached | {_fmt(warm[0])} | {_fmt(warm[1])} | {_fmt(warm[2])} |",
    ]
    return "\n".join(lines)


def write_section(table: str, command: str, load: tuple[float, float, float]) -> None:
    when = dt.datetime.now().astimezone().strftime("%a %b %d %H:%M:%S %Z %Y")
    section = "\n".join(
        [
            SECTION,
            "",
            f"- Date: {when}",
            f"- Commit: {commit()}",
            f"- Machine: {machine()}",
            "- Load average when the run started (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in load),
            f"- Command: `{command}`",
            "- Dense markets: costs U[0,1], value 1 (every pair eligible). Times are the minimum over",
            "  repeats after a warm-up, all in one process. `clear` is end to end (validation, solve,",
            "  Dijkstra for all payments, Outcome); scipy gets the ready cost matrix. Re-solve columns",
            "  time a sample of the n re-solves and multiply the mean by n + 1, as marked.",
            "",
            table,
            "",
        ]
    )
    write_results_section(SECTION, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip n = 5000 (about a minute on 2 cores)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    load = os.getloadavg()

    sizes = [(100, 100, 20, 100), (1000, 1000, 5, 20)]
    if not args.quick:
        sizes += [(5000, 5000, 1, 1), (5000, 1000, 3, 10)]
    rows = []
    for n_agents, n_tasks, repeats, sample in sizes:
        rows.append(bench_market(n_agents, n_tasks, repeats, sample))
        print(f"done {n_agents} × {n_tasks}", file=sys.stderr)
    capacity = bench_capacity(250, 500, 2, repeats=3, sample=25)
    cold, warm = first_call_times()
    table = report(rows, capacity, cold, warm)
    print(table)
    if not args.no_write:
        command = "NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_vcg.py" + (" --quick" if args.quick else "")
        write_section(table, command, load)
        print(f"\nwrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
