"""The outcome of one run and how it is written to a run dir."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

#: Files of a run dir in the order they are written; ``kpis.json`` is last, so its presence marks a complete run.
TABLES = ("blocks", "tasks", "supply", "agents")


@dataclass
class RunResult:
    """Tables and KPI verdict of one run. DataFrame schemas: see CONTRACT.md and ``ainur_sim.schemas``."""

    blocks: pd.DataFrame
    tasks: pd.DataFrame
    supply: pd.DataFrame
    agents: pd.DataFrame
    kpis: dict[str, dict[str, Any]]
    config: dict[str, Any]
    seed: int
    duration_s: float
    wall_s: float
    stats: dict[str, Any] = field(default_factory=dict)
    extra_tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def kpi_values(self) -> dict[str, float | None]:
        """``{name: value}`` for every KPI."""
        return {k: v["value"] for k, v in self.kpis.items()}

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the run-dir files into ``path`` (created if needed) and return it.

        Files are first written to a temporary sibling directory and then moved in, ``kpis.json`` last:
        a reader never sees a half-written table, and a dir without ``kpis.json`` is not a finished run.
        """
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=out))
        try:
            names: list[str] = []
            (tmp / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))
            names.append("config.yaml")
            for name in TABLES:
                getattr(self, name).to_parquet(tmp / f"{name}.parquet", index=False)
                names.append(f"{name}.parquet")
            for name, df in self.extra_tables.items():
                df.to_parquet(tmp / f"{name}.parquet", index=False)
                names.append(f"{name}.parquet")
            from ainur_sim.report import write_report  # local: plotting stack only when writing

            output = self.config.get("output") if isinstance(self.config, dict) else None
            figures = bool(output.get("plots", True)) if isinstance(output, dict) else True
            names.extend(write_report(self, tmp, figures=figures))
            if "plots" not in names:
                shutil.rmtree(out / "plots", ignore_errors=True)  # an earlier run's figures would mislead
            payload = {"kpis": self.kpis, "seed": self.seed, "duration_s": self.duration_s,
                       "wall_s": round(self.wall_s, 3), "stats": self.stats}
            (tmp / "kpis.json").write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n")
            names.append("kpis.json")
            for name in names:
                dest = out / name
                if (tmp / name).is_dir():
                    if dest.exists():
                        shutil.rmtree(dest)
                    (tmp / name).rename(dest)
                else:
                    os.replace(tmp / name, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out
