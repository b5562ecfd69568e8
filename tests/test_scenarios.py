"""Every scenario runs end to end and writes every contract file and KPI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import ainur_sim
from ainur_sim.kpi import KPI_NAMES
from tests.conftest import cached_run

SCENARIOS = sorted(p.stem for p in (Path(ainur_sim.__file__).parent / "configs" / "scenario").glob("*.yaml"))
SHORTENED = {"launch_day": ("duration_s=7200",), "launch_week": ("duration_s=21600",),
             "verifier_outage": ("duration_s=10800",), "low_adoption": ("duration_s=21600",)}
MARKET_SCENARIOS = ("launch_day", "launch_week", "verifier_outage", "low_adoption")
CONFIGS = Path(ainur_sim.__file__).parent / "configs"
PRESETS = sorted(p.stem for p in (CONFIGS / "population").glob("adversarial_*.yaml"))


def test_contract_scenarios_that_exist_so_far():
    assert {"baseline", "launch_day", "launch_week", "congestion_10x", "validator_outage", "partition",
            "emergency_pause", "verifier_outage", "low_adoption"} == set(SCENARIOS)


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_runs_end_to_end(name, tmp_path):
    res = cached_run(f"scenario={name}", *SHORTENED.get(name, ()))
    out = res.write(tmp_path / name)
    for f in ("config.yaml", "blocks.parquet", "tasks.parquet", "supply.parquet", "agents.parquet", "kpis.json",
              "report.md"):
        assert (out / f).is_file(), f
    kpis = json.loads((out / "kpis.json").read_text())["kpis"]
    assert set(kpis) == set(KPI_NAMES)
    for key in ("block_time_mean_s", "finality_p95_s", "uptime", "tps_sustained", "tx_success_rate", "api_p95_ms"):
        assert kpis[key]["value"] is not None, (name, key)
    assert res.stats["finality_safe"]
    assert len(pd.read_parquet(out / "blocks.parquet")) > 0.9 * res.stats["slots"]
    if name in MARKET_SCENARIOS:
        assert len(pd.read_parquet(out / "tasks.parquet")) > 0 and len(pd.read_parquet(out / "agents.parquet")) > 0
        assert len(pd.read_parquet(out / "supply.parquet")) > 100
        for key in ("task_completion_rate", "agents_registered", "tvl_escrow", "reputation_staked"):
            assert kpis[key]["value"] is not None, (name, key)


@pytest.mark.parametrize("preset", PRESETS)
def test_population_presets_run(preset):
    res = cached_run("scenario=launch_day", "duration_s=10800", f"population={preset}", "api.enabled=false")
    strategies = set(res.agents.loc[res.agents["kind"] == "worker", "strategy"])
    assert len(strategies) >= 2 and len(res.tasks) > 10


def test_scenarios_judge_as_their_stories_say():
    base = cached_run("scenario=baseline", "duration_s=1800")
    assert base.kpis["uptime"]["pass"] and base.kpis["block_time_mean_s"]["pass"]
    outage = cached_run("scenario=validator_outage")
    assert outage.kpis["uptime"]["value"] < 0.8 and outage.kpis["finality_p95_s"]["pass"] is False
    congestion = cached_run("scenario=congestion_10x")
    assert congestion.kpis["tx_success_rate"]["pass"] is False
    assert congestion.kpis["tps_sustained"]["value"] > 1000
    assert congestion.kpis["api_p99_ms"]["pass"] is False  # a 10x step outruns the autoscaler
