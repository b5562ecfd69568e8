"""Benchmark: sweep throughput with the joblib launcher, 1 worker against 2.

Usage::

    NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_sweep.py [--jobs 24] [--duration 7200]
                                                                      [--repeats 3] [--no-write]

Runs the same Hydra multirun twice through the real command line (``python -m ainur_sim -m …``): ``--jobs`` seeds of
``scenario=baseline duration_s=DURATION`` with ``hydra/launcher=joblib``, first with ``hydra.launcher.n_jobs=1``,
then ``n_jobs=2``, each into a fresh sweep dir. Throughput is jobs per wall second of the whole command (process
start, Hydra, joblib's worker start-up and every job's run dir, report and plots included — what a user waits for).
The speed-up is throughput(2) / throughput(1); the issue-8 target is ≥ 1.8× on this 2-core machine. With ``--repeats
R`` the pair of sweeps runs R times, in alternating order (1 then 2 workers, then 2 then 1, …) so that a drift of
the machine's speed does not favour either; the speed-up reported is the median of the R per-pair ratios. The
machine's own ceiling is measured too: one plain run alone against two started together (:func:`machine_ceiling`).
The two sweeps' run dirs are compared: every table (``*.parquet``) byte for byte and ``kpis.json`` without its
``wall_s``: the launcher must not change results. The figures go to benchmarks/RESULTS.md under "## Sweep throughput
(issue 8)" (``--no-write``: print only).

Every run gets ``perf.draw_ahead=never`` (``--draw-ahead`` to change it): this benchmark measures the launcher's
scaling over worker processes. With ``auto`` a serial sweep's runs (in the main process) would draw ahead on the
second core and the parallel sweep's (in pool workers) would not, so the ratio would mix the two."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ainur_sim.config import CHOICES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import commit, write_section  # noqa: E402

SECTION = "## Sweep throughput (issue 8)"


def sweep(n_workers: int, jobs: int, duration_s: float, out: Path, draw_ahead: str) -> float:
    """Wall seconds of one joblib multirun of ``jobs`` seeds with ``n_workers`` workers."""
    cmd = [sys.executable, "-m", "ainur_sim", "-m", "scenario=baseline", f"duration_s={duration_s:g}",
           f"seed=range(0,{jobs})", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_workers}",
           f"hydra.sweep.dir={out}", f"perf.draw_ahead={draw_ahead}"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def job_cmd(seed: int, duration_s: float, out: Path, draw_ahead: str) -> list[str]:
    """One plain run (no sweep) through the real command line."""
    return [sys.executable, "-m", "ainur_sim", "scenario=baseline", f"duration_s={duration_s:g}", f"seed={seed}",
            f"hydra.run.dir={out}", f"perf.draw_ahead={draw_ahead}"]


def machine_ceiling(duration_s: float, root: Path, draw_ahead: str, repeats: int = 2) -> tuple[float, float, float]:
    """(wall of one job alone, wall of two independent jobs started together, 2 · alone / pair): the speed-up
    two workers could reach on this machine if a sweep cost nothing beyond its jobs (medians of ``repeats``).
    Two processes on two cores share the caches and memory bandwidth, so each runs slower than alone."""
    alone, pair = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(job_cmd(0, duration_s, root / f"alone{r}", draw_ahead), check=True, capture_output=True)
        alone.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        procs = [subprocess.Popen(job_cmd(s, duration_s, root / f"pair{r}_{s}", draw_ahead), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for s in (0, 1)]
        if any(p.wait() != 0 for p in procs):
            raise RuntimeError("a paired job failed")
        pair.append(time.perf_counter() - t0)
    a, p = statistics.median(alone), statistics.median(pair)
    return a, p, 2 * a / p


def same_outputs(a: Path, b: Path, jobs: int) -> bool:
    """Every job's tables (``*.parquet``) are byte-identical between the two sweeps, and so are its KPIs
    (``kpis.json`` without ``wall_s``, the one field that measures the machine, not the model)."""
    def kpis(path: Path) -> object:
        payload = json.loads(path.read_text())
        payload.pop("wall_s", None)
        return payload

    for j in range(jobs):
        da, db = a / str(j), b / str(j)
        tables = sorted(p.name for p in da.glob("*.parquet"))
        if not tables or tables != sorted(p.name for p in db.glob("*.parquet")):
            return False
        if any((da / t).read_bytes() != (db / t).read_bytes() for t in tables):
            return False
        if kpis(da / "kpis.json") != kpis(db / "kpis.json"):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=24, help="seeds in each sweep (issue 8 is judged on 24)")
    ap.add_argument("--duration", type=float, default=7200.0, help="simulated seconds per job")
    ap.add_argument("--repeats", type=int, default=1, help="pairs of sweeps; the median ratio is reported")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--draw-ahead", default="never", choices=CHOICES["perf.draw_ahead"],
                    help="perf.draw_ahead of every run (default never: the launcher's scaling alone)")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    runs: dict[int, list[float]] = {1: [], 2: []}
    ratios: list[float] = []
    identical = True
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        root = Path(tmp)
        sweep(1, 1, 600.0, root / "warmup", args.draw_ahead)  # Numba caches and imports on disk warm
        for r in range(args.repeats):
            for k in ((1, 2) if r % 2 == 0 else (2, 1)):
                runs[k].append(sweep(k, args.jobs, args.duration, root / f"r{r}n{k}", args.draw_ahead))
            ratios.append(runs[1][-1] / runs[2][-1])
            identical = identical and same_outputs(root / f"r{r}n1", root / f"r{r}n2", args.jobs)
            print(f"pair {r + 1}: 1 worker {runs[1][-1]:.1f} s, 2 workers {runs[2][-1]:.1f} s, "
                  f"speed-up {ratios[-1]:.2f}x", flush=True)
        alone, pair, ceiling = machine_ceiling(args.duration, root, args.draw_ahead)
    walls = {k: statistics.median(v) for k, v in runs.items()}
    speedup = statistics.median(ratios)
    print(f"1 worker: {walls[1]:.1f} s   2 workers: {walls[2]:.1f} s   speed-up {speedup:.2f}x "
          f"(median of {args.repeats}: {', '.join(f'{x:.2f}' for x in ratios)})   outputs identical: {identical}")
    print(f"one job alone: {alone:.1f} s   two at once: {pair:.1f} s   machine ceiling {ceiling:.2f}x")
    if not args.no_write:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        write_section(SECTION, "\n".join([
            SECTION, "",
            f"- Date: {now}. Commit {commit()}. Machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}; load average at start (1, 5, 15 min): "
            f"{', '.join(f'{x:.2f}' for x in load0)}.",
            f"- Command: `NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_sweep.py --jobs {args.jobs} "
            f"--duration {args.duration:g} --repeats {args.repeats}` — {args.jobs} seeds of `scenario=baseline "
            f"duration_s={args.duration:g}` through `ainur-sim -m … hydra/launcher=joblib`, whole command timed.",
            "",
            f"| workers | wall (median of {args.repeats}) | jobs / minute | speed-up (median of the pairs' ratios) "
            "| outputs identical to 1 worker |",
            "|---:|---:|---:|---:|---|",
            f"| 1 | {walls[1]:.1f} s | {60 * args.jobs / walls[1]:.1f} | 1.00× | — |",
            f"| 2 | {walls[2]:.1f} s | {60 * args.jobs / walls[2]:.1f} | {speedup:.2f}× | "
            f"{'yes' if identical else 'NO'} |",
            "",
            f"Per-pair speed-ups, in run order: {', '.join(f'{x:.2f}×' for x in ratios)}.",
            "",
            f"Machine ceiling: one job alone (`ainur-sim scenario=baseline duration_s={args.duration:g}`, whole "
            f"command) takes {alone:.1f} s, two independent ones started together {pair:.1f} s (medians of 2): "
            f"two processes on this machine's two cores run at most {ceiling:.2f}× the throughput of one, before "
            "any cost of the sweep itself; the sweep reaches "
            f"{speedup / ceiling:.0%} of that.",
            "",
            "Target (issue 8): 2 workers ≥ 1.8× the throughput of 1 — "
            f"{'met' if speedup >= 1.8 else '**not met**'} ({speedup:.2f}×).",
        ]))
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
