"""Benchmark the transaction pool: a simulated hour of background load through submit/select/finality.

Run from the repository root::

    NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_txpool.py [--quick] [--no-write]

Per 6 s slot: generate the slot's NHPP arrivals (``load.generate``), ``submit``, ``expire``, ``select`` on
the best head (excluding its unfinalized ancestry), ``mark_included``, and ``on_finalized`` for the block
two slots back (finality lag 2 blocks). Every 25th slot a second author builds a sibling block on the
same parent; the sibling is orphaned when its rival finalizes, so its transactions return to ready.
Offered loads: 1,000 TPS (near the ≈ 1,033 TPS ceiling) and 10,000 TPS (10× overload: the pool is full
and evicts every slot). A micro-benchmark times ``select`` alone on 20,000 ready candidates.
Times are wall clock after a warm-up (Numba kernels compiled/cached), one process. Results are printed
as markdown and written to ``benchmarks/RESULTS.md`` under "## Transaction pool (issue 3)"; other
sections of that file are left untouched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import subprocess
import time

import numba
import numpy as np
from _results import RESULTS, write_section

from ainur_sim.chain.load import LoadSchedule, generate
from ainur_sim.chain.txpool import PoolLimits, TxBatch, TxPool

SECTION = "## Transaction pool (issue 3)"
SLOT_S = 6.0
FINALITY_LAG = 2
FORK_EVERY = 25
OPS = ("generate", "submit", "expire", "select", "mark_included", "on_finalized")


def simulate(tps: float, duration_s: float, seed: int = 1) -> dict:
    """Run the slot loop; returns per-op per-slot times (s), pool counters and latency summaries."""
    rng = np.random.default_rng(seed)
    schedule = LoadSchedule(tps=tps)
    pool = TxPool()
    n_slots = int(duration_s / SLOT_S)
    times = {op: np.zeros(n_slots) for op in OPS}
    chain: list[int] = []  # canonical blocks, oldest first; the finalized prefix is chain[:n_final]
    siblings: dict[int, int] = {}  # canonical block -> its orphan-to-be sibling
    n_final = 0
    next_id = 1
    selected = np.zeros(n_slots, np.int64)
    t_wall0 = time.perf_counter()
    for k in range(n_slots):
        t = (k + 1) * SLOT_S
        c0 = time.perf_counter()
        batch = generate(schedule, t - SLOT_S, t, rng)
        c1 = time.perf_counter()
        pool.submit(batch)
        c2 = time.perf_counter()
        pool.expire(t)
        c3 = time.perf_counter()
        exclude = np.array(chain[n_final:], dtype=np.int64)
        ids = pool.select(t, exclude_blocks=exclude)
        c4 = time.perf_counter()
        block = next_id
        next_id += 1
        pool.mark_included(ids, block, t)
        if k % FORK_EVERY == FORK_EVERY - 1:  # a rival author on the same parent, seen slightly later
            rival_ids = pool.select(t + 0.5, exclude_blocks=exclude)
            pool.mark_included(rival_ids, next_id, t + 0.5)
            siblings[block] = next_id
            next_id += 1
        c5 = time.perf_counter()
        chain.append(block)
        selected[k] = ids.size
        fin_upto = len(chain) - FINALITY_LAG
        if fin_upto > n_final:
            fin = chain[n_final:fin_upto]
            orphans = [siblings.pop(b) for b in fin if b in siblings]
            pool.on_finalized(np.array(fin), np.array(orphans, dtype=np.int64), t)
            n_final = fin_upto
        c6 = time.perf_counter()
        for op, a, b in zip(OPS, (c0, c1, c2, c3, c4, c5), (c1, c2, c3, c4, c5, c6), strict=True):
            times[op][k] = b - a
    wall = time.perf_counter() - t_wall0
    return {"tps": tps, "slots": n_slots, "wall": wall, "times": times, "selected": selected,
            "counts": pool.counts(), "incl": pool.inclusion_latency.summary(),
            "fin": pool.finality_latency.summary(), "success": pool.tx_success_rate()}


def select_micro(n: int = 20_000, repeats: int = 50) -> tuple[float, float, int]:
    """Median and min time of ``select`` with ``n`` ready transfers (mixed tips), and the block size."""
    rng = np.random.default_rng(0)
    pool = TxPool(PoolLimits(ready_count=10 * n, ready_bytes=2**40))
    tips = np.where(rng.random(n) < 0.9, 0, rng.integers(1, 10**10, n))
    pool.submit(TxBatch.of(rng.uniform(0, 6, n), 144.81e-6, 140, tip=tips, longevity_s=330.0))
    pool.select(6.0)
    ts = []
    for _ in range(repeats):
        a = time.perf_counter()
        ids = pool.select(6.0)
        ts.append(time.perf_counter() - a)
    return float(np.median(ts)), float(np.min(ts)), int(ids.size)


def warm_up() -> None:
    simulate(100.0, 60.0)
    select_micro(2000, 2)


def machine() -> str:
    cpu = "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        cpu = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), cpu)
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"`nproc` = {os.cpu_count()}, {cpu}; Python {platform.python_version()}, numpy {np.__version__}, "
            f"numba {numba.__version__}; load average at start (1, 5, 15 min): {load}")


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
                             cwd=RESULTS.parent).stdout.strip()
    except OSError:
        out = ""
    return f"{out or 'unknown'} + working tree"


def ms(x: float) -> str:
    return f"{x * 1e3:.2f}"


def render(runs: list[dict], micro: tuple[float, float, int], duration_s: float, cmd: str, header: str) -> str:
    lines = [SECTION, "", f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}, commit {commit()}.",
             f"- Machine: {header}.", f"- Command: `{cmd}`.",
             f"- Setup: {duration_s / 3600:g} simulated hour(s), 6 s slots, default `PoolLimits` (8,192 / 20 MiB), "
             "Polkadot `BlockLimits`, transfers 242 µs / 140 B, 90 % zero tips, gossip Exp(0.5 s), longevity 330 s, "
             f"finality lag {FINALITY_LAG} blocks, a sibling fork every {FORK_EVERY} slots (orphaned at finality). "
             f"Peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB.", "",
             "| offered TPS | wall | simulated/wall | tx/block (mean) | submitted | finalized | evicted + rejected "
             "| success (excl. pending) | inclusion p50/p95/p99 (s) | finality p50/p95/p99 (s) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in runs:
        c = r["counts"]
        lines.append(
            f"| {r['tps']:,.0f} | {r['wall']:.2f} s | {duration_s / r['wall']:,.0f}× | {r['selected'].mean():,.0f} "
            f"| {c['submitted']:,} | {c['finalized']:,} | {c['evicted'] + c['rejected']:,} | {r['success']:.3f} "
            f"| {r['incl']['p50']:.1f} / {r['incl']['p95']:.1f} / {r['incl']['p99']:.1f} "
            f"| {r['fin']['p50']:.1f} / {r['fin']['p95']:.1f} / {r['fin']['p99']:.1f} |")
    lines += ["", "Per-slot cost, ms (mean / p50 / max over slots):", "",
              "| offered TPS | " + " | ".join(OPS) + " | pool total (excl. generate) |",
              "|---:|" + "---|" * (len(OPS) + 1)]
    for r in runs:
        cells = [f"{ms(v.mean())} / {ms(float(np.median(v)))} / {ms(v.max())}" for v in r["times"].values()]
        pool_total = sum(v for op, v in r["times"].items() if op != "generate")
        cells.append(f"{ms(pool_total.mean())} / {ms(float(np.median(pool_total)))} / {ms(pool_total.max())}")
        lines.append(f"| {r['tps']:,.0f} | " + " | ".join(cells) + " |")
    med, best, k = micro
    lines += ["", f"`select` alone on 20,000 ready transfers (10 % tipped) → {k:,} selected: median {ms(med)} ms, "
              f"min {ms(best)} ms.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 simulated minutes instead of an hour")
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch RESULTS.md")
    args = ap.parse_args()
    header = machine()
    duration = 600.0 if args.quick else 3600.0
    warm_up()
    runs = [simulate(tps, duration) for tps in (1_000.0, 10_000.0)]
    micro = select_micro()
    cmd = "NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_txpool.py" + (" --quick" if args.quick else "")
    text = render(runs, micro, duration, cmd, header)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
