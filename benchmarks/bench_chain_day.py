"""Benchmark: one run of the chain (block production, GRANDPA, transaction pool) end to end.

Usage::

    NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_chain_day.py [OVERRIDES...] [--repeats N]

Overrides are Hydra overrides as for ``ainur_sim.compose``; the default is the issue's target run
``scenario=baseline duration_s=86400 chain.n_validators=50 load.tps=1000 api.enabled=false`` (one
simulated day, 50 validators, a steady 1,000 TPS). A short warm-up run (same overrides, 10 simulated
minutes) loads the Numba caches and imports first; then the run is repeated ``--repeats`` times (default 3)
and the median wall time is reported, with simulated/wall ratio, peak RSS of the process (includes the
warm-up and every repeat), slots, blocks authored and transactions finalized.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

from ainur_sim import compose, run

DEFAULT_OVERRIDES = ["scenario=baseline", "duration_s=86400", "chain.n_validators=50", "load.tps=1000",
                     "api.enabled=false"]
WARMUP_S = 600.0  # simulated seconds of the warm-up run


def _with_duration(overrides: list[str], duration_s: float) -> list[str]:
    """``overrides`` with ``duration_s`` replaced (or added)."""
    return [o for o in overrides if not o.startswith("duration_s=")] + [f"duration_s={duration_s:g}"]


def _peak_rss_mib() -> float:
    """Peak resident set size of this process, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per repeat plus a summary; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="Hydra overrides (default: the issue's 1-day, 1,000 TPS run)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs; the median is reported (default 3)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the 10-minute warm-up run")
    args = ap.parse_args(argv)
    overrides = args.overrides or DEFAULT_OVERRIDES
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
    for i in range(max(args.repeats, 1)):
        t0 = time.perf_counter()
        res = run(cfg)
        wall = time.perf_counter() - t0
        walls.append(wall)
        print(f"run {i + 1}: {wall:.2f} s wall", flush=True)
    assert res is not None
    wall = statistics.median(walls)
    st = res.stats
    tx_final = st.get("tx_finalized", st.get("transactions_finalized"))
    print(f"wall (median of {len(walls)}): {wall:.2f} s  [min {min(walls):.2f}, max {max(walls):.2f}]")
    print(f"simulated/wall: {res.duration_s / wall:,.0f}x  ({res.duration_s:g} simulated s)")
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB")
    print(f"slots: {st.get('slots')}  blocks: {st.get('blocks_authored')}  "
          f"finality rounds: {st.get('finality_rounds')}  tx finalized: {tx_final}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
