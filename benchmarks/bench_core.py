"""Benchmark of the runnable core: one simulated day of block production.

    python benchmarks/bench_core.py            # baseline, 50 validators, 86,400 s (14,400 slots)

Prints wall time (median of 3 runs in this process, after one warm-up), simulated-to-wall ratio, peak RSS
and the number of slots and blocks.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time

from ainur_sim import compose, run


def main(argv: list[str]) -> None:
    overrides = argv or ["scenario=baseline", "duration_s=86400", "chain.n_validators=50"]
    cfg = compose(overrides)
    run(compose([*overrides, "duration_s=600"]))  # warm-up: imports, first-touch allocations
    walls = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = run(cfg)
        walls.append(time.perf_counter() - t0)
    wall = statistics.median(walls)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"overrides: {' '.join(overrides)}")
    print(f"wall (median of 3): {wall:.2f} s   runs: {', '.join(f'{w:.2f}' for w in walls)}")
    print(f"simulated/wall: {res.duration_s / wall:,.0f}x   peak RSS: {rss_mib:.0f} MiB")
    print(f"slots: {res.stats['slots']:,}   blocks: {res.stats['blocks_authored']:,}")


if __name__ == "__main__":
    main(sys.argv[1:])
