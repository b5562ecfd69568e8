"""Reading a run dir back into a ``RunResult`` (for reports and sweeps)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import yaml

from ainur_sim.result import TABLES, RunResult


class RunDirError(ValueError):
    """The directory is not a finished run dir."""


def load_run(path: str | os.PathLike[str]) -> RunResult:
    """Load the tables (contract and extra), KPIs, stats and config of a finished run dir."""
    d = Path(path)
    if not d.is_dir():
        raise RunDirError(f"{d}: not a directory")
    if not (d / "kpis.json").is_file():
        missing = "run never finished (no kpis.json)" if (d / ".hydra").is_dir() else "not a run dir (no kpis.json)"
        raise RunDirError(f"{d}: {missing}")
    payload = json.loads((d / "kpis.json").read_text())
    tables = {}
    for name in TABLES:
        f = d / f"{name}.parquet"
        if not f.is_file():
            raise RunDirError(f"{d}: incomplete run dir, {f.name} is missing")
        tables[name] = pd.read_parquet(f)
    config = yaml.safe_load((d / "config.yaml").read_text()) if (d / "config.yaml").is_file() else {}
    return RunResult(kpis=payload["kpis"], config=config, seed=payload.get("seed", 0),
                     duration_s=payload.get("duration_s", 0.0), wall_s=payload.get("wall_s", 0.0),
                     stats=payload.get("stats", {}), extra_tables=load_extra_tables(d), **tables)


def load_extra_tables(d: Path) -> dict[str, pd.DataFrame]:
    """Every ``*.parquet`` of a run dir other than the contract tables (``finality_rounds``, ``outages``,
    ``chain_series``, ``api_series``, …), by file stem in name order; hidden (partial) files are skipped."""
    return {f.stem: pd.read_parquet(f) for f in sorted(d.glob("*.parquet"))
            if f.stem not in TABLES and not f.name.startswith(".") and f.is_file()}
