"""The market on the chain, end to end: supply per finalized block with the books checked every block,
congestion delaying clearing, reputation from outcomes, validator slashes on the ledger."""

from __future__ import annotations

import numpy as np
import pytest

from ainur_sim import compose, run
from ainur_sim.chain.economy import tokens
from ainur_sim.schemas import SUPPLY, TASKS

MARKET = ["scenario=baseline", "api.enabled=false", "population.n_workers=30", "population.n_requesters=15",
          "population.tasks_per_requester_hour=8", "output.check_invariants=true"]


def _run(*overrides: str):
    return run(compose([*MARKET, *overrides]))


@pytest.fixture(scope="module")
def market_run():
    return _run("duration_s=3600", "load.tps=100")


def test_supply_rows_per_finalized_block_and_books_balance(market_run):
    res = market_run
    sup, blocks = res.supply, res.blocks
    assert list(sup.columns) == list(SUPPLY)
    finalized = blocks.loc[blocks["canonical"] & blocks["t_finalized"].notna(), "number"]
    assert sup["block"].tolist() == sorted(finalized.tolist())  # one row per finalized block, in order
    parts = sup[["free", "reserved", "escrowed", "staked", "treasury"]].sum(axis=1)
    assert (parts == sup["total_issuance"]).all()
    cfg = res.config
    genesis = (tokens(cfg["economics"]["background_tokens"]) + 10 * tokens(cfg["economics"]["validator_bond_tokens"])
               + 30 * tokens(500) + 15 * tokens(5_000) + tokens(1_000))
    assert (sup["total_issuance"] == genesis - sup["burned"] + sup["minted"]).all()
    assert (np.diff(sup["treasury"]) >= 0).all() or res.stats["juror_rewards_units"] > 0


def test_tasks_table_and_market_kpis(market_run):
    res = market_run
    t = res.tasks
    assert list(t.columns)[: len(TASKS)] == list(TASKS)
    assert len(t) > 50 and set(t["status"]) <= {"completed", "failed", "refunded", "expired", "disputed_won",
                                                "disputed_lost", "open"}
    paid = t["status"].isin(["completed", "disputed_won"])
    assert (t.loc[paid, "payment"] <= t.loc[paid, "budget"]).all() and (t.loc[paid, "winner"] >= 0).all()
    k = res.kpis
    terminal = t["status"] != "open"
    assert k["task_completion_rate"]["value"] == pytest.approx(paid.sum() / terminal.sum())
    assert k["tvl_escrow"]["value"] == pytest.approx(res.supply["escrowed"].max() / 1e12)
    assert k["reputation_staked"]["value"] == pytest.approx(30 * 200.0, rel=0.05)
    assert k["agents_registered"]["value"] == 30
    assert k["daily_tx_value"]["value"] is None  # one hour: not a day
    assert set(res.agents["kind"]) == {"worker", "requester", "verifier"}


def test_reputation_is_the_beta_posterior_of_outcomes():
    """With no forgetting each worker's score is (r+1)/(r+s+2) over its settled tasks."""
    res = _run("duration_s=3600", "load.tps=0", "market.reputation.forgetting=1.0")
    t = res.tasks
    done = t[t["stage"].isin(["completed", "disputed_won", "disputed_lost", "failed"])]
    good = (done["stage"] == "disputed_won") | ((done["stage"] == "completed") & (done["quality"] >= done["threshold"]))
    r = good.groupby(done["winner"]).sum()
    n = done.groupby("winner").size()
    workers = res.agents[res.agents["kind"] == "worker"].set_index("agent_id")
    expected = ((r.reindex(workers.index, fill_value=0) + 1) / (n.reindex(workers.index, fill_value=0) + 2))
    assert len(done) > 30
    assert np.allclose(workers["reputation"], expected, rtol=0, atol=1e-12)


def _clearing_latency(res) -> np.ndarray:
    """Seconds from each ``post_task`` submission to its task's clearing; a post never cleared (dropped or
    still waiting) counts until the end of the run — a lower bound (censored)."""
    calls = res.extra_tables["calls"]
    posts = calls[(calls["call"] == "auction.post_task") & (calls["first"] == calls["record"])]  # originals
    cleared = res.tasks.set_index("post_record")["t_cleared"]
    t_clear = posts["record"].map(cleared).fillna(res.duration_s).to_numpy()
    return t_clear - posts["t_submit"].to_numpy()


def test_congestion_delays_clearing():
    """Background load beyond block capacity (≈1,032 transfers/s) crowds market calls out of the pool: the
    time from posting a task to its clearing grows. Agents that re-submit dropped calls with a tip get
    through late; agents that do not are starved (their posts never clear)."""
    calm = _run("duration_s=2400", "load.tps=50", "output.check_invariants=false")
    jam = _run("duration_s=2400", "load.tps=1500", "output.check_invariants=false")
    starved = _run("duration_s=2400", "load.tps=1500", "output.check_invariants=false", "population.resubmits=0")
    lat_calm, lat_jam, lat_starved = (_clearing_latency(r) for r in (calm, jam, starved))
    assert lat_calm.size > 30 and lat_jam.size > 30
    assert np.median(lat_calm) < 120.0  # window of 10 blocks + inclusion + finality
    assert calm.stats["market_calls"]["dropped"] == 0 and calm.stats["calls_resubmitted"] == 0
    assert jam.stats["calls_resubmitted"] > 100  # dropped at least once, then bumped in with a tip
    assert lat_jam.mean() > lat_calm.mean() + 4.0  # a slot or more on average: measurable, not noise
    assert lat_starved.mean() > 3 * lat_calm.mean()


@pytest.mark.parametrize("overrides", [
    ["faults.offline_validators=4", "faults.outage_start_s=600", "faults.outage_duration_s=600"],
    ["market.dispute.model=court", "population.quality_alpha=2"],
    ["emergency.tx_pause=[{start_s: 600, duration_s: 600, calls: ['escrow.*']}]"],
    ["finality.byzantine_fraction=0.2", "finality.equivocation_prob=0.05"],
], ids=["outage", "court", "pause", "equivocation"])
def test_books_balance_under_faults(overrides):
    res = _run("duration_s=1800", "load.tps=50", *overrides)  # check_invariants raises on any violation
    assert len(res.supply) > 100
    if "finality.byzantine_fraction=0.2" in overrides:
        slashed = res.stats["validator_slashed_units"]
        assert slashed > 0
        bond = tokens(res.config["economics"]["validator_bond_tokens"])
        off = res.extra_tables["offences"]
        expected = int(np.floor(off["slash_fraction"].to_numpy() * bond).sum())
        assert slashed == min(expected, slashed) and slashed <= expected


@pytest.mark.parametrize("overrides", [
    ["market.reputation.model=ema"], ["market.reputation.model=eigentrust"],
    ["market.mechanism=second_price"], ["market.mechanism=first_price"], ["market.mechanism=posted_price"],
    ["market.mechanism=greedy"],
], ids=lambda o: o[0].split("=")[1])
def test_every_mechanism_and_reputation_model_runs_on_the_chain(overrides):
    res = _run("duration_s=2400", "load.tps=20", *overrides)
    t = res.tasks
    paid = t["status"].isin(["completed", "disputed_won"])
    assert paid.sum() > 5
    assert (t.loc[paid, "payment"] <= t.loc[paid, "budget"]).all()
    if overrides[0].endswith("first_price"):  # pay-as-bid: winners get their own bid
        calls = res.extra_tables["calls"]
        bids = calls[(calls["call"] == "auction.submit_bid") & (calls["status"] == "ok")]
        asked = {(int(a), int(o)): int(c) for a, o, c in zip(bids["a0"], bids["origin"], bids["a1"], strict=True)}
        won = t[t["winner"] >= 0]
        assert all(asked[(int(k), int(w))] == int(p)
                   for k, w, p in zip(won["task_id"], won["winner"], won["payment"], strict=True))
