"""Benchmark the ledger: batches of 10^3..10^6 movements, µs per movement.

Run from the repository root::

    NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_ledger.py [--quick] [--no-write]

Setup: 10^6 accounts endowed with 10^3..10^5 tokens (1 token = 10^12 base units, ED 0.01 token).
Each case times one ``Ledger`` call on a fresh batch of random rows (accounts uniform, so sources repeat
inside a batch and the sequential semantics matter), end to end: argument conversion, the Numba loop and
the per-kind bookkeeping. Cases: ``transfer`` (amounts up to ~2× a typical balance, so ~⅓ fail),
``transfer`` with every row from one account (the worst case for "insufficient funds" order), ``pay_fee``,
a mixed ``apply`` (escrow lock → release → stake → slash → fee), and ``slash``. Reference rows: a
pure-Python loop over dicts doing the same transfers, the fixed cost of a one-row call, ``check()`` and
``snapshot()`` over 10^6 accounts. Times are the median of ``--repeats`` runs after a warm-up, one process.
Results are printed as markdown and written to ``benchmarks/RESULTS.md`` under "## Ledger (issue 5)";
other sections of that file are left untouched (the file is re-read right before writing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import time

import numba
import numpy as np
from _results import RESULTS, write_section

from ainur_sim.chain.balances import KIND_CODE, Ledger, LedgerParams

SECTION = "## Ledger (issue 5)"
TOKEN = 10**12
N_ACCOUNTS = 1_000_000


def fresh_ledger(n: int, rng: np.random.Generator) -> Ledger:
    ledger = Ledger(LedgerParams(initial_capacity=n))
    ledger.create_accounts(n)
    ledger.genesis(rng.integers(10**3, 10**5, n) * TOKEN // 1000)  # 1..100 tokens each
    return ledger


def timed(fn, repeats: int) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` calls (each call builds its own state)."""
    out = []
    for _ in range(repeats):
        out.append(fn())
    return float(np.median(out))


def case_transfer(ledger: Ledger, m: int, rng: np.random.Generator, one_source: bool = False) -> float:
    n = ledger.n_accounts
    src = np.zeros(m, np.int64) if one_source else rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    amt = rng.integers(0, 100 * TOKEN // 1000 * 2, m) if not one_source else rng.integers(0, TOKEN // 100, m)
    t = time.perf_counter()
    ledger.transfer(src, dst, amt)
    return time.perf_counter() - t


def case_fee(ledger: Ledger, m: int, rng: np.random.Generator) -> float:
    acc = rng.integers(0, ledger.n_accounts, m)
    fee = rng.integers(10**9, 10**11, m)
    t = time.perf_counter()
    ledger.pay_fee(acc, fee, 0.8)
    return time.perf_counter() - t


def case_mixed(ledger: Ledger, m: int, rng: np.random.Generator) -> float:
    k = m // 5
    req = rng.integers(0, ledger.n_accounts, k)
    wrk = rng.integers(0, ledger.n_accounts, k)
    amt = rng.integers(TOKEN // 100, TOKEN, k)
    ids = np.arange(k, dtype=np.int64)
    op = np.repeat(np.array([KIND_CODE[x] for x in ("escrow_lock", "escrow_release", "stake",
                                                    "slash_staked_treasury", "fee")], np.int64)[None, :], k, 0)
    a = np.stack([req, req, wrk, wrk, req], 1)
    b = np.stack([req, wrk, wrk, wrk, req], 1)
    x = np.stack([amt, amt, amt, amt // 10, np.full(k, 10**10)], 1)
    z = np.stack([ids, ids, ids, ids, np.full(k, 800_000_000)], 1)
    t = time.perf_counter()
    ledger.apply(op.ravel(), a.ravel(), b.ravel(), x.ravel(), z.ravel())
    return time.perf_counter() - t


def case_slash(ledger: Ledger, m: int, rng: np.random.Generator) -> float:
    acc = rng.integers(0, ledger.n_accounts, m)
    t = time.perf_counter()
    ledger.slash(acc, rng.integers(0, TOKEN, m), "staked", "burn")
    return time.perf_counter() - t


def python_transfers(m: int, rng: np.random.Generator) -> float:
    """The same transfer rule in a plain Python loop over a list of ints (reference)."""
    n = N_ACCOUNTS
    free = (rng.integers(10**3, 10**5, n) * TOKEN // 1000).tolist()
    src = rng.integers(0, n, m).tolist()
    dst = rng.integers(0, n, m).tolist()
    amt = rng.integers(0, 100 * TOKEN // 1000 * 2, m).tolist()
    ed = 10**10
    t = time.perf_counter()
    for s, d, x in zip(src, dst, amt, strict=True):
        if 0 <= x <= free[s] and not (0 < free[d] + x < ed):
            free[s] -= x
            free[d] += x
            if 0 < free[s] < ed:
                free[s] = 0
    return time.perf_counter() - t


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"`nproc` = {os.cpu_count()}, {cpu}; Python {platform.python_version()}, numpy {np.__version__}, "
            f"numba {numba.__version__}; load average at start (1, 5, 15 min): {load}")


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=False, cwd=RESULTS.parent).stdout.strip()
    except OSError:
        out = ""
    return (out or "unknown") + " + working tree"


def run(sizes: list[int], repeats: int) -> tuple[list[tuple[str, int, float]], dict[str, float]]:
    rng = np.random.default_rng(5)
    cases = {
        "transfer (random accounts)": lambda L, m: case_transfer(L, m, rng),
        "transfer (all from one account)": lambda L, m: case_transfer(L, m, rng, one_source=True),
        "pay_fee": lambda L, m: case_fee(L, m, rng),
        "mixed apply: lock, release, stake, slash, fee": lambda L, m: case_mixed(L, m, rng),
        "slash (staked → burn)": lambda L, m: case_slash(L, m, rng),
    }
    ledger = fresh_ledger(N_ACCOUNTS, rng)
    for fn in cases.values():  # warm-up: load/compile the kernel, touch the pages
        fn(ledger, 1000)
    rows = []
    for name, fn in cases.items():
        for m in sizes:
            rows.append((name, m, timed(lambda fn=fn, m=m: fn(ledger, m), repeats)))
    for m in sizes[:2]:
        rows.append(("pure-Python loop, transfers (reference)", m, timed(lambda m=m: python_transfers(m, rng),
                                                                        repeats)))
    ledger.check()
    extra = {}
    small = fresh_ledger(10, rng)
    small.transfer(0, 1, 1)

    def thousand_calls() -> float:
        t = time.perf_counter()
        for _ in range(1000):
            small.transfer(0, 1, 10**10)
        return (time.perf_counter() - t) / 1000

    extra["one-row call (fixed cost per call, median of 5×1000)"] = timed(thousand_calls, 5)
    extra["check(), 10^6 accounts"] = timed(lambda: _time(ledger.check), repeats)
    extra["snapshot(), 10^6 accounts"] = timed(lambda: _time(lambda: ledger.snapshot(0)), repeats)
    return rows, extra


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def render(rows, extra, cmd: str, sizes: list[int]) -> str:
    lines = [SECTION, "",
             f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}, commit {commit()}.",
             f"- Machine: {machine()}.",
             f"- Command: `{cmd}`.",
             f"- Ledger of {N_ACCOUNTS:,} accounts; each figure is one call on a batch of random rows, end to end",
             "  (conversion + Numba loop + bookkeeping), median of repeats after a warm-up. µs per movement.",
             "  Rows are applied sequentially in order (the batch semantics), so this is the real cost, not a",
             "  vectorised approximation. The machine is shared (load average ≈ 2 on 2 cores), so a figure",
             "  varies up to ~2× between runs; sub-µs per movement is the stable finding.",
             "",
             "| case | " + " | ".join(f"{m:,}" for m in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    by_case: dict[str, dict[int, float]] = {}
    for name, m, s in rows:
        by_case.setdefault(name, {})[m] = s
    for name, d in by_case.items():
        cells = [f"{d[m] / m * 1e6:.3f}" if m in d else "—" for m in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| fixed costs | time |", "|---|---:|"]
    for name, s in extra.items():
        lines.append(f"| {name} | {s * 1e6:,.0f} µs |" if s < 1e-3 else f"| {name} | {s * 1e3:,.2f} ms |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="batches up to 10^5, 1 repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="print only; do not touch RESULTS.md")
    args = ap.parse_args()
    sizes = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6]
    repeats = 1 if args.quick else args.repeats
    rows, extra = run(sizes, repeats)
    cmd = "NUMBA_CACHE_DIR=/tmp/numba_cache python benchmarks/bench_ledger.py" + (" --quick" if args.quick else "") \
        + (f" --repeats {args.repeats}" if args.repeats != 3 and not args.quick else "")
    text = render(rows, extra, cmd, sizes)
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
