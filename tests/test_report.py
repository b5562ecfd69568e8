"""The run report: report.md (summary, grouped KPI verdict, failure explanations) and the figures of
``ainur_sim.plots``, on real runs and on synthetic market tables with known content; byte-identical output
for the same result; ``ainur-sim-report DIR`` rebuilds the same files from a written run dir."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ainur_sim import plots
from ainur_sim.kpi import KPI_NAMES
from ainur_sim.report import FIGURES, TOKEN, write_report
from ainur_sim.result import RunResult
from ainur_sim.rundir import load_run
from ainur_sim.sweep import report_cli
from tests.conftest import cached_run

CHAIN_FIGURES = ("block_time_hist", "finality_lag_cdf", "throughput_pool", "fee_multiplier", "api_latency",
                 "finality_progress")
MARKET_FIGURES = ("task_funnel", "escrow_tvl", "reputation_by_strategy")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def outage_run() -> RunResult:
    """4 of 10 validators offline for 10 min of a 30-min run: finality stalls, uptime fails."""
    return cached_run("scenario=validator_outage", "duration_s=1800", "faults.outage_start_s=600",
                      "faults.outage_duration_s=600")


@pytest.fixture(scope="module")
def outage_dir(outage_run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The outage run written as a run dir (tables, kpis.json, report.md, plots)."""
    return outage_run.write(tmp_path_factory.mktemp("outage") / "run")


def _figure_ok(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 15_000, f"{path.name}: only {len(data)} bytes"


def _files(d: Path) -> dict[str, bytes]:
    """report.md and every PNG of a report dir, by relative path."""
    out = {"report.md": (d / "report.md").read_bytes()}
    out.update({f"plots/{p.name}": p.read_bytes() for p in sorted((d / "plots").glob("*.png"))})
    return out


# ---------------------------------------------------------------------------------------------------
# Synthetic market tables with known content


def synthetic_tasks() -> pd.DataFrame:
    """100 tasks: 80 cleared, of which 40 completed, 10 failed, 6 disputed_won, 4 disputed_lost (60
    delivered, 55 of them settled), 12 expired, 8 open; 20 never cleared: 15 refunded, 5 open."""
    status = (["completed"] * 40 + ["failed"] * 10 + ["disputed_won"] * 6 + ["disputed_lost"] * 4
              + ["expired"] * 12 + ["open"] * 8 + ["refunded"] * 15 + ["open"] * 5)
    n = len(status)
    cleared = np.arange(n) < 80
    t_created = np.linspace(0.0, 1500.0, n)
    settled = np.zeros(n, dtype=bool)
    settled[:55] = True  # completed, failed and 5 of the won disputes
    return pd.DataFrame({
        "task_id": np.arange(n, dtype=np.int64),
        "requester": (np.arange(n) % 7).astype(np.int64),
        "t_created": t_created,
        "t_cleared": np.where(cleared, t_created + 30.0, np.nan),
        "winner": np.where(cleared, np.arange(n) % 13, -1).astype(np.int64),
        "payment": np.where(cleared, 5 * TOKEN, 0).astype(np.int64),
        "budget": np.full(n, 8 * TOKEN, dtype=np.int64),
        "status": pd.array(status, dtype="str"),
        "quality": np.where(np.arange(n) < 60, 0.8, np.nan),
        "t_settled": np.where(settled, t_created + 200.0, np.nan),
    })


def synthetic_supply(blocks: pd.DataFrame) -> pd.DataFrame:
    """One row per finalized canonical block: escrow grows by 100 tokens per block (block 10: 1,000 tokens)."""
    fin = blocks.loc[blocks["canonical"] & blocks["t_finalized"].notna(), "number"].sort_values().to_numpy()
    esc = fin.astype(np.int64) * 100 * TOKEN
    zeros = np.zeros(len(fin), dtype=np.int64)
    return pd.DataFrame({"block": fin.astype(np.int64), "free": zeros + 10**6 * TOKEN, "reserved": zeros,
                         "escrowed": esc, "staked": zeros, "treasury": zeros, "burned": zeros, "minted": zeros,
                         "total_issuance": zeros + 10**6 * TOKEN + esc})


def synthetic_agents() -> pd.DataFrame:
    """60 workers in three strategies with distinct reputation levels, and 20 requesters."""
    rng = np.random.default_rng(7)
    strategies = ["truthful"] * 30 + ["shading"] * 20 + ["lazy"] * 10 + ["requester"] * 20
    centre = {"truthful": 0.8, "shading": 0.6, "lazy": 0.3, "requester": 0.5}
    rep = np.clip([centre[s] + rng.normal(0.0, 0.08) for s in strategies], 0.0, 1.0)
    n = len(strategies)
    return pd.DataFrame({
        "agent_id": np.arange(n, dtype=np.int64),
        "kind": pd.array(["worker"] * 60 + ["requester"] * 20, dtype="str"),
        "strategy": pd.array(strategies, dtype="str"),
        "reputation": rep,
        "stake": np.full(n, 100 * TOKEN, dtype=np.int64),
        "balance": np.full(n, 1000 * TOKEN, dtype=np.int64),
    })


@pytest.fixture(scope="module")
def market_dir(market_result: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of ``market_result``."""
    out = tmp_path_factory.mktemp("market")
    write_report(market_result, out)
    return out


@pytest.fixture(scope="module")
def market_result(baseline_run: RunResult) -> RunResult:
    """The baseline run with synthetic tasks, supply and agents, and failing market KPIs."""
    kpis = {k: dict(v) for k, v in baseline_run.kpis.items()}
    kpis["task_completion_rate"] = {"value": 0.55, "target": "> 0.85", "pass": False, "unit": "share"}
    kpis["tvl_escrow"] = {"value": 30000.0, "target": "> 100000", "pass": False, "unit": "USD"}
    return dataclasses.replace(baseline_run, tasks=synthetic_tasks(), supply=synthetic_supply(baseline_run.blocks),
                               agents=synthetic_agents(), kpis=kpis)


# ---------------------------------------------------------------------------------------------------
# Real runs


def test_baseline_report_figures_and_verdict(tmp_path, baseline_run):
    out = tmp_path / "run"
    out.mkdir()
    write_report(baseline_run, out)
    for name in CHAIN_FIGURES:
        _figure_ok(out / "plots" / f"{name}.png")
    text = (out / "report.md").read_text()
    for name in KPI_NAMES:
        assert re.search(rf"^\| `{name}` \| .+ \|$", text, re.M), name
    for group in ("### Chain", "### API", "### Market", "### Economics"):
        assert group in text
    assert "| scenario | `baseline`" in text and "| seed | 0 |" in text and "| wall time |" in text
    assert "10 (BABE, 6.0 s slots, GRANDPA finality)" in text
    assert "≥ 1,000" in text and "5.5 – 6.5 (6 s ± 0.5 s)" in text
    assert "null: no market participants" in text
    # every failing KPI is explained, from the data; no market figure without market data
    failing = [k for k, v in baseline_run.kpis.items() if v["pass"] is False]
    why = text.split("## What failed and why")[1].split("## Figures")[0]
    for name in failing:
        assert f"`{name}` = " in why
    assert "the run never offered that much" in why  # tps target: baseline offers 100 tx/s
    assert "no tasks in this run" in text
    for name in MARKET_FIGURES + ("validator_availability", "call_outcomes"):
        assert not (out / "plots" / f"{name}.png").exists()
        assert f"plots/{name}.png" not in text
    for name in CHAIN_FIGURES:
        assert f"![{FIGURES[name][0]}](plots/{name}.png)" in text


def test_outage_report_explains_the_stall(outage_dir, outage_run):
    out = outage_dir
    for name in (*CHAIN_FIGURES, "validator_availability"):
        _figure_ok(out / "plots" / f"{name}.png")
    text = (out / "report.md").read_text()
    assert "validator outage (4 of 10 offline, 10.0–20.0 min)" in text
    why = text.split("## What failed and why")[1].split("## Figures")[0]
    fin = next(line for line in why.splitlines() if "`finality_p95_s`" in line)
    # the stall starts at the last finality before the outage and ends when the validators are back
    m = re.search(r"GRANDPA finalized nothing for ([\d,]+) s", fin)
    assert m and 590 <= int(m.group(1).replace(",", "")) <= 640, fin
    assert "while 4 of 10 validators were offline (6 left, fewer than the 7" in fin
    up = next(line for line in why.splitlines() if "`uptime`" in line)
    assert "finality more than 60 s behind" in up
    assert outage_run.kpis["uptime"]["pass"] is False


def test_plots_helpers_on_the_outage(outage_run):
    stalls = plots.finality_stalls(outage_run.blocks, outage_run.duration_s, 18.0)
    a, b = stalls[0]
    assert 580 <= a <= 600 and 1200 <= b <= 1230
    grid = np.array([0.0, 599.0, 600.0, 1199.0, 1200.0])
    assert plots.offline_at(outage_run.extra_tables["outages"], grid).tolist() == [0, 0, 4, 4, 0]
    assert plots.supermajority(10) == 7 and plots.supermajority(3) == 3 and plots.supermajority(4) == 3


def test_scenario_windows_from_config():
    cfg = {"chain": {"n_validators": 10},
           "faults": {"offline_validators": 4, "outage_start_s": 3600.0, "outage_duration_s": 1800.0,
                      "partitions": [{"start_s": 100.0, "duration_s": 50.0, "regions": ["a", "b"]}],
                      "degradations": [{"start_s": 0.0, "duration_s": 10.0, "factor": 1.0}]},
           "load": {"spikes": [{"start_s": 1800.0, "duration_s": 600.0, "factor": 10.0}]},
           "emergency": {"tx_pause": [{"start_s": 10.0, "duration_s": 20.0, "calls": ["escrow.*"]}],
                         "safe_mode": [{"start_s": 5000.0, "duration_s": 60.0}]}}
    got = [(w.kind, w.label, w.start_s, w.end_s) for w in plots.scenario_windows(cfg)]
    assert got == [("tx_pause", "tx-pause (escrow.*)", 10.0, 30.0),
                   ("partition", "network partition (2 regions cut off)", 100.0, 150.0),
                   ("spike", "load ×10", 1800.0, 2400.0),
                   ("outage", "validator outage (4 of 10 offline)", 3600.0, 5400.0),
                   ("safe_mode", "safe mode", 5000.0, 5060.0)]
    assert plots.TimeContext(1800.0).unit == "min" and plots.TimeContext(7200.0).unit == "h"
    assert plots.TimeContext(7 * 86400.0).unit == "d"


# ---------------------------------------------------------------------------------------------------
# Synthetic market tables


def test_task_funnel_counts_known_content():
    assert plots.task_funnel_counts(synthetic_tasks()) == {
        "posted": 100, "cleared": 80, "delivered": 60, "settled": 55, "disputed_won": 6, "disputed_lost": 4}


def test_market_figures_from_synthetic_tables(market_dir, market_result):
    out = market_dir
    for name in MARKET_FIGURES:
        _figure_ok(out / "plots" / f"{name}.png")
    text = (out / "report.md").read_text()
    assert "no tasks in this run" not in text
    for name in MARKET_FIGURES:
        assert f"![{FIGURES[name][0]}](plots/{name}.png)" in text
    why = text.split("## What failed and why")[1].split("## Figures")[0]
    assert ("`task_completion_rate` = 0.5500 (target > 0.85): of 100 tasks, 40 completed, 15 refunded, 13 open, "
            "12 expired, 10 failed, 6 disputed_won, 4 disputed_lost.") in why
    top = int(market_result.supply["escrowed"].max() // TOKEN)
    assert f"escrow held at most {top:,} tokens" in why


def test_market_plot_functions_skip_empty_tables(baseline_run):
    ctx = plots.TimeContext(1800.0)
    assert plots.task_funnel(baseline_run.tasks) is None
    assert plots.escrow_tvl(baseline_run.supply, baseline_run.blocks, ctx) is None
    assert plots.reputation_by_strategy(baseline_run.agents) is None
    assert plots.task_funnel(synthetic_tasks()) is not None


# ---------------------------------------------------------------------------------------------------
# Determinism and the CLI round trip


def test_same_result_same_bytes(tmp_path, market_dir, market_result):
    write_report(market_result, tmp_path)
    fa, fb = _files(market_dir), _files(tmp_path)
    assert len(fa) == 1 + len(CHAIN_FIGURES) + len(MARKET_FIGURES)
    assert fa == fb
    assert b"Software" not in fa["plots/block_time_hist.png"]


def test_report_cli_rebuilds_the_same_files(tmp_path, outage_dir, outage_run, capsys):
    d = Path(shutil.copytree(outage_dir, tmp_path / "run"))
    before = _files(d)
    back = load_run(d)
    assert set(back.extra_tables) == set(outage_run.extra_tables)
    pd.testing.assert_frame_equal(back.extra_tables["finality_rounds"], outage_run.extra_tables["finality_rounds"])
    for p in (d / "plots").glob("*.png"):
        p.unlink()
    (d / "report.md").unlink()
    assert report_cli([str(d)]) == 0
    assert capsys.readouterr().out.strip() == str(d / "report.md")
    assert _files(d) == before
    assert "plots/validator_availability.png" in before


def test_output_plots_false_writes_the_report_alone_and_ainur_sim_report_draws_later(tmp_path, outage_dir,
                                                                                      outage_run, capsys):
    """``output.plots=false`` (sweeps): report.md without figures, no plots/ (an earlier run's is removed
    with the rest of that run), and ``ainur-sim-report`` draws exactly what a default write would have."""
    config = {**outage_run.config, "output": {**outage_run.config.get("output", {}), "plots": False}}
    quiet = dataclasses.replace(outage_run, config=config)
    d = Path(shutil.copytree(outage_dir, tmp_path / "run"))  # a full earlier write into the same dir
    quiet.write(d)
    assert not (d / "plots").exists()
    text = (d / "report.md").read_text()
    assert "`output.plots=false`" in text and "](plots/" not in text and "## KPI verdict" in text
    assert report_cli([str(d)]) == 0
    capsys.readouterr()
    drawn = {k: v for k, v in _files(d).items() if k.startswith("plots/")}
    assert drawn == {k: v for k, v in _files(outage_dir).items() if k.startswith("plots/")}
    assert "](plots/validator_availability.png)" in (d / "report.md").read_text()
