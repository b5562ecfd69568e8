"""The population on the chain: activation cost, launch-day phases, strategies as designed, adoption."""

from __future__ import annotations

import numpy as np
import pytest

from ainur_sim import compose, run
from ainur_sim.agents.adoption import joining_times, logistic_times
from ainur_sim.agents.strategies import (
    COLLUSION,
    STRATEGIES,
    TRUTHFUL,
    asks,
    assign,
    camouflaging,
    designated,
    rings,
)
from ainur_sim.sim import to_config

SMALL = ["scenario=baseline", "api.enabled=false", "load.tps=20"]


def _run(*overrides: str):
    return run(compose([*SMALL, *overrides]))


def test_idle_workers_cost_no_kernel_events():
    """10,000 extra idle workers: the kernel's event count and the agents' activations barely move."""
    base = ["duration_s=3600", "population.n_workers=30", "population.n_requesters=15"]
    a = _run(*base)
    b = _run(*base, "population.idle_workers=10000")
    assert b.stats["kernel_events"] < 1.2 * a.stats["kernel_events"]
    assert b.stats["agent_activations"] < 1.2 * a.stats["agent_activations"]
    assert len(b.agents) == len(a.agents) + 10_000


@pytest.fixture(scope="module")
def launch_day():
    """Launch day's first six hours at a tenth of its agents (phases at the plan's times)."""
    return run(compose(["scenario=launch_day", "duration_s=21600", "api.enabled=false", "population.n_workers=12",
                        "population.n_requesters=6", "population.waves=[{t_s: 12600, workers: 30, requesters: 15, "
                        "spread_s: 7200}]", "population.tasks_per_requester_hour=4"]))


def test_launch_day_phases_happen_at_their_times(launch_day):
    calls = launch_day.extra_tables["calls"]
    market = calls[calls["call"].isin(["auction.post_task", "auction.submit_bid"])]
    regs = calls[calls["call"] == "registry.register_agent"]
    assert len(market) > 50 and market["t_submit"].min() >= 5400.0  # no market extrinsic before 01:30
    assert regs["t_submit"].min() >= 1800.0  # registrations from 00:30 ...
    assert (regs["t_submit"] < 5400.0).sum() == 12  # ... the early adopters before market activation
    assert ((regs["t_submit"] >= 12600.0).sum()) == 30  # the public wave after 03:30
    series = launch_day.extra_tables["chain_series"]
    before = series.loc[series["t"].between(6000, 12600), "offered"].mean()
    after = series.loc[series["t"].between(18000, 21600), "offered"].mean()
    assert after > 2.0 * before  # the public traffic ramp after 03:30


def test_strategies_bid_as_designed():
    mix = ("population.strategy_mix={truthful: 0.3, shading: 0.2, underbid: 0.2, collusion: 0.2, "
           "malicious: 0.1}")
    res = _run("duration_s=5400", "population.n_workers=40", "population.n_requesters=20",
               "population.tasks_per_requester_hour=6", mix)
    calls = res.extra_tables["calls"]
    bids = calls[calls["call"] == "auction.submit_bid"].merge(
        res.agents[["agent_id", "strategy"]], left_on="origin", right_on="agent_id")
    ask, cost = bids["a1"], bids["a2"]
    by = bids["strategy"]
    assert (by == "truthful").sum() > 20 and (ask[by == "truthful"] == cost[by == "truthful"]).all()
    assert (ask[by == "shading"] > cost[by == "shading"]).all() and (by == "shading").sum() > 20
    assert (ask[by == "underbid"] < cost[by == "underbid"]).all() and (by == "underbid").sum() > 20
    assert (ask[by == "malicious"] < cost[by == "malicious"]).all()
    tasks = res.tasks.set_index("task_id")
    ring = bids[by == "collusion"]
    assert len(ring) > 10
    assert (ring["a1"] >= np.floor(0.7 * tasks.loc[ring["a0"], "budget"].to_numpy())).all()


def test_malicious_workers_lose_disputes_and_stake():
    res = _run("duration_s=7200", "population.n_workers=30", "population.n_requesters=20",
               "population.tasks_per_requester_hour=6", "population.strategy_mix={truthful: 0.5, malicious: 0.5}",
               "market.dispute.false_accept=0")
    agents = res.agents.set_index("agent_id")
    t = res.tasks[res.tasks["winner"] >= 0]
    bad = t[agents.loc[t["winner"], "strategy"].to_numpy() == "malicious"]
    assert len(bad) > 10
    ended = bad[bad["stage"].isin(["failed", "disputed_lost", "completed", "disputed_won"])]
    lost = ended["stage"].isin(["failed", "disputed_lost"])
    assert lost.sum() > 5 and lost.mean() > 0.8  # only unchallenged garbage (10 % not disputed) gets paid
    assert (ended.loc[~lost, "quality"] < 0.7).all()
    workers = agents[agents["kind"] == "worker"]
    mal_losers = workers.loc[workers.index.isin(bad.loc[bad["stage"].isin(["failed", "disputed_lost"]),
                                                        "winner"])]
    assert (mal_losers["stake"] < 200 * 10**12).all()  # slashed below what they staked


@pytest.mark.parametrize("allow", [False, True])
def test_whitewashers_reregister_only_when_allowed(allow):
    res = _run("duration_s=7200", "population.n_workers=20", "population.n_requesters=20",
               "population.tasks_per_requester_hour=8", "population.strategy_mix={truthful: 0.5, whitewash: 0.5}",
               "population.whitewash_below=0.99", f"market.registry.allow_reregistration={str(allow).lower()}")
    calls = res.extra_tables["calls"]
    ww = set(res.agents.loc[res.agents["strategy"] == "whitewash", "agent_id"])
    leave = calls[(calls["call"] == "registry.deactivate_did") & calls["origin"].isin(ww) & (calls["status"] == "ok")]
    again = calls[(calls["call"] == "registry.register_agent") & calls["origin"].isin(ww)
                  & calls["origin"].isin(leave["origin"])]
    assert len(leave) > 0
    regs = res.agents.set_index("agent_id").loc[list(ww), "registrations"]
    if allow:
        assert (regs > 1).any()
        assert (again["status"] == "ok").sum() > len(leave["origin"].unique()) - 1
    else:
        assert (regs <= 1).all()
        assert (again.loc[again["t_submit"] > leave["t_submit"].min(), "error"] == "Deactivated").any()
    honest = res.agents[res.agents["strategy"] == "truthful"]
    assert (honest["registrations"] == 1).all()


def test_verifier_outage_delays_verification():
    up = run(compose(["scenario=verifier_outage", "duration_s=10800", "api.enabled=false",
                      "population.verifier_outages=[]"]))
    down = run(compose(["scenario=verifier_outage", "duration_s=10800", "api.enabled=false"]))
    creds = (lambda r: r.extra_tables["calls"].query("call == 'registry.issue_credential'")["t_submit"])  # noqa: E731
    assert creds(up).min() < 1800 + 3600 and creds(down).min() >= 1800 + 7200  # nothing issued while down
    assert down.stats["verifier_delayed_requests"] > 0
    assert down.stats["tasks_completed"] < up.stats["tasks_completed"]


def test_adoption_curve_and_retention():
    cfg = to_config(compose(["scenario=launch_week"]))
    pop = cfg.population
    rng = np.random.default_rng(1)
    t = logistic_times(200_000, pop.growth_midpoint_s, pop.growth_width_s, rng)
    m, w = pop.growth_midpoint_s, pop.growth_width_s
    s0 = 1 / (1 + np.exp(m / w))  # the curve is shifted so that nobody joins before t = 0
    q = s0 + 0.5 * (1 - s0)
    median = m + w * np.log(q / (1 - q))
    density = (q * (1 - q) / w) / (1 - s0)
    assert t.min() >= 0 and abs(np.median(t) - median) < 4 / (2 * density * np.sqrt(t.size))
    assert np.mean(t < m) == pytest.approx((0.5 - s0) / (1 - s0), abs=0.005)
    joined = joining_times(pop, "workers", rng)
    assert joined.size == pop.joining_workers() and pop.joining_workers() + pop.joining_requesters() >= 10_000
    # more than 10,000 agents join within the week itself (≈ 10,150: ≈ 7 standard deviations above)
    in_week = (joined < cfg.run_duration_s).sum() + (joining_times(pop, "requesters", rng) < cfg.run_duration_s).sum()
    assert in_week > 10_000
    # retention: exponential lifetimes with mean 84 days keep 70 % after 30 days
    assert np.exp(-30 / pop.mean_active_days) == pytest.approx(0.70, abs=0.005)


def test_strategy_assignment_and_asks_are_exact():
    rng = np.random.default_rng(0)
    codes = assign(1000, {"truthful": 0.55, "shading": 0.3, "sybil": 0.15}, rng)
    counts = np.bincount(codes, minlength=len(STRATEGIES))
    assert counts[STRATEGIES.index("truthful")] == 550 and counts[STRATEGIES.index("sybil")] == 150
    pop = to_config(compose(["scenario=baseline"])).population
    s = np.array([STRATEGIES.index(x) for x in ("truthful", "shading", "underbid", "collusion")])
    a = asks(s, np.array([100.0, 100.0, 100.0, 100.0]), 1000.0, pop)
    assert a.tolist() == [100.0, 130.0, 70.0, 700.0]


def test_rings_and_their_designated_bidders():
    """Collusion identities form rings of ``ring_size`` in index order; per ring the cheapest bidder (ties:
    lowest index) is the one that bids its cost."""
    s = np.array([TRUTHFUL, COLLUSION, COLLUSION, TRUTHFUL, COLLUSION, COLLUSION, COLLUSION])
    ring = rings(s, 2)
    assert ring.tolist() == [-1, 0, 0, -1, 1, 1, 2]
    cost = np.array([1.0, 5.0, 3.0, 0.5, 4.0, 4.0, 9.0])
    assert designated(np.array([0, 1, 2, 3, 4, 5, 6]), ring, cost).tolist() == [2, 4, 6]
    assert designated(np.array([0, 1, 3, 5]), ring, cost).tolist() == [1, 5]
    assert designated(np.array([0, 3]), ring, cost).size == 0


def test_designated_bid_ring_bids_as_designed():
    """``ring_bidding=designated``: on every task the cheapest bidder of each ring asks its cost and the
    ring's other bidders ask max(cost, ring_reserve · budget)."""
    res = _run("duration_s=3600", "population.n_workers=40", "population.n_requesters=20",
               "population.tasks_per_requester_hour=6", "population.strategy_mix={truthful: 0.5, collusion: 0.5}",
               "population.ring_bidding=designated", "population.ring_size=10")
    workers = res.agents[res.agents["kind"] == "worker"]  # in identity order
    codes = np.where(workers["strategy"] == "collusion", COLLUSION, TRUTHFUL)
    ring_of = dict(zip(workers["agent_id"], rings(codes, 10), strict=True))
    calls = res.extra_tables["calls"]
    bids = calls[calls["call"] == "auction.submit_bid"].copy()
    bids["ring"] = bids["origin"].map(ring_of)
    bids["budget"] = res.tasks.set_index("task_id").loc[bids["a0"], "budget"].to_numpy()
    ring = bids[bids["ring"] >= 0]
    assert ring["ring"].nunique() == 2
    n_lead = n_reserve = 0
    for _, g in ring.groupby(["a0", "ring"]):
        g = g.sort_values(["a2", "origin"])
        assert g["a1"].iloc[0] == g["a2"].iloc[0]  # the ring's cheapest bidder asks its cost
        rest = g.iloc[1:]
        assert (rest["a1"] == np.floor(np.maximum(rest["a2"], 0.7 * rest["budget"]))).all()
        n_lead += 1
        n_reserve += int((rest["a1"] > rest["a2"]).sum())
    assert n_lead > 20 and n_reserve > 20


def test_camouflage_rule_at_the_threshold():
    """Cheats exactly on budgets ≥ camouflage_above_tokens (base units), only when it is a camouflage worker."""
    pop = to_config(compose(["scenario=baseline", "population.camouflage_above_tokens=60"])).population
    s = np.array([STRATEGIES.index(x) for x in ("camouflage", "camouflage", "camouflage", "truthful", "on_off")])
    at = 60 * 10**12
    assert camouflaging(s, at, pop).tolist() == [True, True, True, False, False]
    assert not camouflaging(s, at - 1, pop).any()


def test_camouflage_workers_cheat_only_on_valuable_tasks():
    """Honest quality certain (Beta(1000, 1) never misses), every winner delivers: a camouflage worker's
    delivery misses the threshold only on tasks at or above camouflage_above_tokens, and there often."""
    res = _run("duration_s=7200", "population.n_workers=30", "population.n_requesters=20",
               "population.tasks_per_requester_hour=8", "population.strategy_mix={truthful: 0.5, camouflage: 0.5}",
               "population.quality_alpha=1000", "population.non_delivery_prob=0",
               "population.camouflage_above_tokens=55")
    t = res.tasks[res.tasks["quality"].notna()]
    strategy = res.agents.set_index("agent_id").loc[t["winner"], "strategy"].to_numpy()
    bad = (t["quality"] < t["threshold"]).to_numpy()
    high = (t["budget"] >= 55 * 10**12).to_numpy()
    cam = strategy == "camouflage"
    assert (cam & ~high).sum() > 20 and (cam & high).sum() > 20
    assert not bad[cam & ~high].any() and not bad[strategy == "truthful"].any()
    assert bad[cam & high].mean() > 0.2


def test_cached_asks_are_the_strategies_asks():
    """The bid pass's per-capability ask cache gives asks() for every capability and budget, collusion
    reserve included."""
    from ainur_sim.agents.strategies import asks
    from ainur_sim.sim import build_world

    cfg = to_config(compose(["scenario=launch_day", "population=adversarial_mixed", "duration_s=600"]))
    pop = build_world(cfg).population
    assert pop._ring_members.size > 0  # (the ring's reserve branch is exercised)
    for cap in range(pop.cost.shape[1]):
        for budget in (1e6, 5e10, 3e12):
            want = asks(pop.strategy, pop.cost[:, cap], budget, cfg.population)
            np.testing.assert_array_equal(pop._asks(cap, budget), want)
    t = float(pop.join.min()) + 1.0
    np.testing.assert_array_equal(pop._active_workers_cached(t), pop.active_workers(t))


def test_eligible_workers_kernel_is_the_elementwise_expression():
    """The one-pass kernel gives the workers the numpy expression of the bidding rule gives, on random
    workers with the boundaries hit (stake at the minimum, budget at the stake bound, offer at the budget
    and at zero, the requester's own account)."""
    from ainur_sim.agents.population import eligible_workers

    rng = np.random.default_rng(11)
    for _ in range(300):
        n = int(rng.integers(0, 60))
        budget, min_stake, mvps, capacity = int(rng.integers(1, 10**6)), int(rng.integers(0, 1000)), 2.5, 3
        active, verified = rng.random(n) < 0.8, rng.random(n) < 0.8
        staked = rng.choice([0, min_stake, min_stake + 1, budget // 2, int(np.ceil(budget / mvps)), 10**7], n)
        load = rng.integers(0, 5, n)
        offer = rng.choice([0.0, -1.0, float(budget), budget - 0.5, float(rng.integers(1, budget + 1))], n)
        accounts = rng.integers(0, 20, n)
        requester = int(rng.integers(0, 20))
        want = np.flatnonzero(active & verified & (staked >= min_stake) & (budget <= mvps * staked)
                              & (load < capacity) & (offer < budget) & (offer > 0) & (accounts != requester))
        got = eligible_workers(active, verified, staked, min_stake, mvps, budget, load, capacity, offer, accounts,
                               requester)
        np.testing.assert_array_equal(got, want)


def test_a_finished_run_leaves_its_world_to_the_garbage_collector(monkeypatch):
    """After run() returns, nothing keeps the run's population, pool or kernel alive (Mesa 3.3 keys its
    agent-id counters by model in a class attribute; the run removes its own): a process running many runs
    (a sweep's worker, a notebook) does not grow by a whole run each time."""
    import gc
    import weakref

    from ainur_sim import sim

    refs = []
    build = sim.build_world

    def build_and_watch(cfg):
        world = build(cfg)
        refs.extend(weakref.ref(x) for x in (world.population, world.txflow.pool, world.env))
        return world

    monkeypatch.setattr(sim, "build_world", build_and_watch)
    res = run(compose(["scenario=launch_day", "duration_s=5400"]))
    assert res.stats["workers_joined"] > 0 and len(refs) == 3
    del res
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
