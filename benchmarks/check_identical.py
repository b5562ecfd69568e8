"""Check that a code change leaves every output of a set of runs byte-identical.

Usage::

    # outputs of the base code (run with the base tree first on PYTHONPATH)
    PYTHONPATH=/path/to/base python benchmarks/check_identical.py save /tmp/ref [CASE...]
    # outputs of the changed code, compared file by file with the reference
    PYTHONPATH=. python benchmarks/check_identical.py compare /tmp/ref [CASE...]

Each case is one run (``ainur_sim.run``); every table (``RunResult`` tables and extra tables) is written as
parquet exactly as ``RunResult.write`` does, plus ``kpis.json`` without ``wall_s`` (the only field that
differs between identical runs). ``compare`` writes the new outputs next to the reference (``DIR/new``) and
prints the first differing file per case; exit status 1 if anything differs. ``list`` prints the cases.
Long cases (``launch_week``, ``launch_day``) run only when named.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from ainur_sim import compose, run
from ainur_sim.result import TABLES

CASES: dict[str, list[str]] = {
    "bench_short": ["scenario=launch_day", "duration_s=7200"],
    "chain_1000tps_2h": ["scenario=baseline", "duration_s=7200", "chain.n_validators=50", "load.tps=1000",
                         "api.enabled=false"],
    "validators_1000_20min": ["scenario=baseline", "duration_s=1200", "chain.n_validators=1000", "load.tps=1000",
                              "api.enabled=false", "economics.validator_bond_tokens=1000"],
    "partition_300v": ["scenario=partition", "chain.n_validators=300", "economics.validator_bond_tokens=1000"],
    "launch_6h": ["scenario=launch_day", "duration_s=21600"],
    "congestion_10x": ["scenario=congestion_10x"],
    "validator_outage": ["scenario=validator_outage"],
    "partition": ["scenario=partition"],
    "emergency_pause": ["scenario=emergency_pause"],
    "adversarial_4h": ["scenario=launch_day", "population=adversarial_mixed", "duration_s=14400"],
    "aura_2h": ["scenario=launch_day", "chain.consensus=aura", "duration_s=7200"],
    "court_4h": ["scenario=launch_day", "market.dispute.model=court", "duration_s=14400",
                 "market.reputation.model=eigentrust", "population=adversarial_fraud"],
    "ema_invariants_3h": ["scenario=launch_day", "market.reputation.model=ema", "duration_s=10800",
                          "output.check_invariants=true", "population=adversarial_collusion"],
    # launch_week's growth compressed into half a day: thousands of agents, a market-heavy run
    "week_growth_12h": ["scenario=launch_week", "duration_s=43200", "population.growth_midpoint_s=14400",
                        "population.growth_width_s=3600"],
}
#: long cases, run only when named (``compare DIR launch_week``): ≈ 3–4 min each
LONG_CASES: dict[str, list[str]] = {"launch_week": ["scenario=launch_week"], "launch_day": ["scenario=launch_day"]}


def write_outputs(overrides: list[str], out: Path) -> dict[str, str]:
    """Run and write every table plus kpis.json (minus wall_s); return {file: sha256}."""
    res = run(compose(overrides))
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        getattr(res, name).to_parquet(out / f"{name}.parquet", index=False)
    for name, df in res.extra_tables.items():
        df.to_parquet(out / f"{name}.parquet", index=False)
    payload = {"kpis": res.kpis, "seed": res.seed, "duration_s": res.duration_s, "stats": res.stats}
    (out / "kpis.json").write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir()) if p.is_file()}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("save", "compare", "list"):
        print(__doc__)
        return 2
    if argv[0] == "list":
        for name, over in {**CASES, **LONG_CASES}.items():
            print(name, " ".join(over))
        return 0
    mode, root, names = argv[0], Path(argv[1]), argv[2:] or list(CASES)
    bad = 0
    cases = {**CASES, **LONG_CASES}
    for name in names:
        t0 = time.process_time()
        if mode == "save":
            digest = write_outputs(cases[name], root / name)
            (root / f"{name}.sha256.json").write_text(json.dumps(digest, indent=1))
            print(f"{name}: saved {len(digest)} files ({time.process_time() - t0:.1f} s CPU)", flush=True)
            continue
        ref = json.loads((root / f"{name}.sha256.json").read_text())
        new = write_outputs(cases[name], root / "new" / name)
        diff = sorted(f for f in set(ref) | set(new) if ref.get(f) != new.get(f))
        bad += bool(diff)
        print(f"{name}: {'IDENTICAL' if not diff else 'DIFFERS: ' + ', '.join(diff)} "
              f"({time.process_time() - t0:.1f} s CPU)", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
