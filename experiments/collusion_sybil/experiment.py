"""Collusion rings and sybils against VCG: what a bid ring adds to the payments, and what splitting pays.

Two parts, every number measured:

* **Mechanism** — seeded random instances cleared by the model's own Numba kernel
  (``ainur_sim.market.vcg.clear`` / ``clear_capacity``), reproducing research/vcg.md §4.2's Design A
  (one task, n = 10 bidders, a ring of k) and Design B (20 tasks, would-be losers bidding the reserve),
  and §4.3's identity-splitting null result. The closed forms of Design A and the research tables are
  the *theory* column.
* **Market** — simulation runs (``ainur_sim.run``) of one market with truthful workers, a bid ring
  (``population.ring_bidding=designated``) holding 25 % or 50 % of the workers, the model's price-floor
  ring (preset ``adversarial_collusion``) and sybils (preset ``adversarial_sybil``), all cleared by VCG;
  every value is computed from the run's tables (tasks, calls, agents).

``run(size, seeds, overrides=())``: ``overrides`` are extra Hydra overrides appended to every market
run (e.g. ``["population.ring_reserve=0.9"]``) — the way to check that a changed model fails.
See README.md for the question, the method and the tolerances.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ainur_sim import compose
from ainur_sim import run as run_model
from ainur_sim.config import Config
from ainur_sim.market.vcg import Outcome, clear, clear_capacity
from ainur_sim.reproduce import Expectation, MetricResult
from ainur_sim.result import RunResult
from ainur_sim.sim import to_config

TOKEN = 10**12
Clear = Callable[[np.ndarray | float, np.ndarray], Outcome]


@dataclass(frozen=True)
class Size:
    auctions: int  # Design A: single-task auctions per seed and variant
    instances: int  # Design B and the sybil split: random markets per seed
    duration_s: float  # market runs: simulated seconds (tasks from MARKET_START_S on)


SIZES = {"quick": Size(auctions=1_000, instances=40, duration_s=750.0),
         "full": Size(auctions=10_000, instances=200, duration_s=3_600.0)}


def _rng(seed: int, *tag: int) -> np.random.Generator:
    """An independent stream per (seed, part): adding a part never shifts another part's draws."""
    return np.random.default_rng([seed, *tag])


# ---------------------------------------------------------------------------------------------------
# Part A, Design A: one task, n bidders with costs U[0, 1], reserve r; a ring of k whose cheapest member
# bids its cost while the other k − 1 bid the reserve (research/vcg.md §4.2).

DESIGN_A_RINGS = (2, 3, 5, 10)  # ring sizes k with n = 10, r = 1 (the research's table)
DESIGN_A_N, DESIGN_A_RESERVE = 10, 1.0
#: mitigations: more bidders per task (n = 20) against the k = 5 ring; a lower reserve (r = 0.5) against
#: the k = 5 ring and against the ring of all ten
DESIGN_A_MITIGATIONS = {"k5_n20": (20, 5, 1.0), "k5_r05": (10, 5, 0.5), "k10_r05": (10, 10, 0.5)}
DESIGN_A_GAINS = ("k5", "k10", *DESIGN_A_MITIGATIONS)  # variants whose ring gain per auction is a metric
BATCH = 100  # auctions per clearing: independent auctions as one block-diagonal market (exact)


def expected_payment(n: int, k: int, r: float) -> float:
    """Closed form of E[payment] in one second-price (= VCG) procurement auction with reserve ``r ≤ 1``,
    n i.i.d. U[0, 1] costs and a ring of ``k`` whose cheapest member bids its cost, the rest ``r``.

    The payment is min(Y, r) when the lowest cost is ≤ r (else no trade), Y the second-lowest bid below
    the reserve; P(Y > z) = (n − k)·z·(1 − z)^(n−1) + (1 − z)^(n−k) (k = 0: no ring), so
    E = ∫₀ʳ P(Y > z) dz − r·(1 − r)^n. With r = 1: 2/(n + 1) truthful; 1 for k = n.
    """
    s = 1.0 - r
    m = n - k
    tail = (1.0 - s**n) / n - (1.0 - s ** (n + 1)) / (n + 1)  # ∫₀ʳ z (1 − z)^(n−1) dz
    return m * tail + (1.0 - s ** (m + 1)) / (m + 1) - r * s**n


def single_task_auctions(bids: np.ndarray, reserve: float, clear_fn: Clear = clear) -> tuple[np.ndarray, np.ndarray]:
    """Clear ``bids.shape[0]`` independent single-task auctions (rows: auctions, columns: bidders) with
    value ``reserve``: returns (payment, winner's column or −1). The auctions are cleared ``BATCH`` at a
    time as one block-diagonal market (bidders bid only on their own task), whose VCG outcome is each
    auction's own: a bidder's externality stays within its block."""
    n_auctions, n = bids.shape
    pay, win = np.zeros(n_auctions), np.full(n_auctions, -1, np.int64)
    for start in range(0, n_auctions, BATCH):
        b = bids[start:start + BATCH]
        m = b.shape[0]
        costs = np.full((m * n, m), np.inf)
        rows = np.arange(m * n)
        costs[rows, rows // n] = b.ravel()
        out = clear_fn(reserve, costs)
        agent = out.agent_of_task
        sold = agent >= 0
        pay[start:start + m][sold] = out.payment[agent[sold]]
        win[start:start + m][sold] = agent[sold] % n
    return pay, win


def ring_bids(costs: np.ndarray, k: int, reserve: float) -> np.ndarray:
    """Bids when bidders 0…k−1 form a ring: its cheapest member bids its cost, the others the reserve
    (costs are i.i.d., so fixing the ring's seats loses nothing)."""
    bids = costs.copy()
    if k:
        ring = bids[:, :k]
        lead = np.argmin(ring, axis=1)
        keep = ring[np.arange(ring.shape[0]), lead]
        ring[:] = reserve
        ring[np.arange(ring.shape[0]), lead] = keep
    return bids


def design_a(seed: int, size: Size, clear_fn: Clear = clear) -> dict[str, float]:
    """Per seed: payment change (%) for each ring size, the k = 5 ring's win share and extra profit per
    auction, its mitigations, and the share of auctions whose winner the ring left unchanged."""
    out: dict[str, float] = {}
    same = total = 0
    variants = [(f"k{k}", DESIGN_A_N, k, DESIGN_A_RESERVE) for k in DESIGN_A_RINGS]
    variants += [(name, *spec) for name, spec in DESIGN_A_MITIGATIONS.items()]
    for i, (name, n, k, r) in enumerate(variants):
        costs = _rng(seed, 1, i).random((size.auctions, n))
        pay0, win0 = single_task_auctions(costs, r, clear_fn)
        pay1, win1 = single_task_auctions(ring_bids(costs, k, r), r, clear_fn)
        same += int(np.sum(win0 == win1))
        total += win0.size
        out[f"a_payment_change_{name}"] = 100.0 * (pay1.sum() / pay0.sum() - 1.0)
        ring_won = (win1 >= 0) & (win1 < k)
        if name in DESIGN_A_GAINS:
            # the ring's extra profit = its members' payments minus what they were paid bidding truthfully
            out[f"a_ring_gain_{name}"] = float(np.mean(np.where(ring_won, pay1 - pay0, 0.0)))
        if name == "k5":
            out["a_ring_win_share_k5"] = float(np.mean(ring_won))
    out["a_allocation_unchanged"] = same / total
    return out


def design_a_theory() -> dict[str, float]:
    th = {}
    for k in DESIGN_A_RINGS:
        base = expected_payment(DESIGN_A_N, 0, DESIGN_A_RESERVE)
        th[f"a_payment_change_k{k}"] = 100.0 * (expected_payment(DESIGN_A_N, k, DESIGN_A_RESERVE) / base - 1.0)
    for k in (5, 10):
        th[f"a_ring_gain_k{k}"] = expected_payment(10, k, 1.0) - expected_payment(10, 0, 1.0)
    for name, (n, k, r) in DESIGN_A_MITIGATIONS.items():
        th[f"a_payment_change_{name}"] = 100.0 * (expected_payment(n, k, r) / expected_payment(n, 0, r) - 1.0)
        th[f"a_ring_gain_{name}"] = expected_payment(n, k, r) - expected_payment(n, 0, r)
    th["a_ring_win_share_k5"] = 5 / DESIGN_A_N
    th["a_allocation_unchanged"] = 1.0
    return th


# ---------------------------------------------------------------------------------------------------
# Part A, Design B: 20 tasks of value 1, agents' costs U[0, 1] per (agent, task); a share of the agents
# that lose under truthful bidding bid the reserve (cost 1, no surplus) on every task.

DESIGN_B_TASKS = 20
DESIGN_B_AGENTS = (40, 25)
DESIGN_B_SHARES = {"f10": 0.10, "f25": 0.25, "f50": 0.50, "f100": 1.0}
#: research/vcg.md §4.2, Design B table (measured there): truthful total payment, then % change
DESIGN_B_RESEARCH = {40: {"truthful_payment": 1.26, "f10": 4.0, "f25": 9.0, "f50": 27.0, "f100": 1490.0},
                     25: {"truthful_payment": 2.56, "f10": 0.0, "f25": 6.0, "f50": 13.0, "f100": 626.0}}


def design_b(seed: int, size: Size, clear_fn: Clear = clear) -> dict[str, float]:
    """Per seed: truthful total payment and the % change of the total payment when ⌊share · losers⌋ of
    the would-be losers (drawn at random) bid the reserve, for 40 and 25 agents; and the share of
    clearings whose allocation the ring left unchanged."""
    out: dict[str, float] = {}
    same = total = 0
    for i, n_agents in enumerate(DESIGN_B_AGENTS):
        rng = _rng(seed, 2, i)
        base = 0.0
        ring = dict.fromkeys(DESIGN_B_SHARES, 0.0)
        for _ in range(size.instances):
            costs = rng.random((n_agents, DESIGN_B_TASKS))
            truthful = clear_fn(1.0, costs)
            base += truthful.payment.sum()
            losers = rng.permutation(np.flatnonzero(truthful.task_of_agent < 0))
            for name, share in DESIGN_B_SHARES.items():
                bids = costs.copy()
                bids[losers[: int(share * losers.size + 1e-9)]] = 1.0
                colluded = clear_fn(1.0, bids)
                ring[name] += colluded.payment.sum()
                same += int(np.array_equal(colluded.task_of_agent, truthful.task_of_agent))
                total += 1
        out[f"b{n_agents}_truthful_payment"] = base / size.instances
        for name in DESIGN_B_SHARES:
            out[f"b{n_agents}_payment_change_{name}"] = 100.0 * (ring[name] / base - 1.0)
    out["b_allocation_unchanged"] = same / total
    return out


def design_b_theory() -> dict[str, float]:
    th = {"b_allocation_unchanged": 1.0}
    for n, row in DESIGN_B_RESEARCH.items():
        th[f"b{n}_truthful_payment"] = row["truthful_payment"]
        for name in DESIGN_B_SHARES:
            th[f"b{n}_payment_change_{name}"] = row[name]
    return th


# ---------------------------------------------------------------------------------------------------
# Part A, sybils: a capacity-2 principal among unit-capacity rivals, as one identity (clear_capacity) or
# split into two unit-capacity identities with the same costs (clear) — research/vcg.md §4.3, Exp. 1.

SPLIT_TASKS, SPLIT_RIVALS = 6, 6


def sybil_split(seed: int, size: Size, clear_fn: Clear = clear) -> dict[str, float]:
    """Per seed over random markets (values 1, costs U[0, 1]): the largest and the mean gain of splitting
    (Σ utility of the two identities − the capacity-2 principal's VCG utility), and the mean gain of the
    extra capacity itself (capacity-2 principal − a capacity-1 principal)."""
    rng = _rng(seed, 3)
    split_gain, capacity_gain = [], []
    for _ in range(size.instances):
        costs = rng.random((SPLIT_RIVALS + 1, SPLIT_TASKS))  # row 0: the principal
        cap = np.ones(SPLIT_RIVALS + 1, np.int64)
        cap[0] = 2
        whole = clear_capacity(1.0, costs, cap).utility[0]
        single = clear_fn(1.0, costs).utility[0]
        split = clear_fn(1.0, np.vstack([costs[:1], costs])).utility[:2].sum()
        split_gain.append(split - whole)
        capacity_gain.append(whole - single)
    return {"sybil_split_gain_max": float(np.max(split_gain)), "sybil_split_gain_mean": float(np.mean(split_gain)),
            "sybil_capacity_gain_mean": float(np.mean(capacity_gain))}


# ---------------------------------------------------------------------------------------------------
# Part B: the market


MARKET_START_S = 300.0
#: A healthy chain and a busy VCG market: 60 workers and 40 requesters joining in the first 120 s, tasks
#: from 300 s (after the 120 s verification) at 30 per requester-hour, short work (60 s) so capacity does
#: not bind, and values = budgets (q_min = 1: reputation does not enter the auction).
BASE = (
    "scenario=baseline", "api.enabled=false", "load.tps=0", "chain.n_validators=4",
    "population.n_workers=60", "population.n_requesters=40", "population.tasks_per_requester_hour=30",
    "population.onboarding_spread_s=120", f"population.market_start_s={MARKET_START_S:g}", "population.work_s=60",
    "market.mechanism=vcg", "market.reputation.q_min=1",
)
ONE_RING = 10_000  # ring_size larger than any population: all collusion workers form one ring
RING = {"ring_bidding": "designated", "ring_size": ONE_RING, "ring_reserve": 0.7}


@dataclass(frozen=True)
class Cell:
    mix: dict[str, float]
    params: dict[str, object]


CELLS: dict[str, Cell] = {
    "ring25": Cell({"truthful": 0.75, "collusion": 0.25}, RING),
    "ring50": Cell({"truthful": 0.5, "collusion": 0.5}, RING),
    # mitigation: twice the attention, so twice the bidders per task (ring and truthful alike)
    "ring50_crowd": Cell({"truthful": 0.5, "collusion": 0.5}, RING | {"bidders_per_task": 24.0}),
    # the preset adversarial_collusion: every member asks max(cost, 0.7·budget), no designated bidder
    "floor30": Cell({"truthful": 0.7, "collusion": 0.3}, {"ring_bidding": "floor", "ring_reserve": 0.7}),
    # the preset adversarial_sybil: a fifth of the principals hold 5 DIDs each
    "sybil20": Cell({"truthful": 0.8, "sybil": 0.2}, {"sybil_identities": 5}),
}
RING_CELLS = ("ring25", "ring50", "ring50_crowd", "floor30")


def held_bids(res: RunResult) -> pd.DataFrame:
    """The bids the auction held: successful ``submit_bid`` calls (the last per worker and task) with
    the ask (``a1``) and the worker's true cost (``a2``), base units; sorted by task."""
    calls = res.extra_tables["calls"]
    b = calls[(calls["call"] == "auction.submit_bid") & (calls["status"] == "ok")].sort_values("record")
    b = b.drop_duplicates(["a0", "origin"], keep="last").sort_values(["a0", "origin"])
    return pd.DataFrame({"task": b["a0"].to_numpy(np.int64), "worker": b["origin"].to_numpy(np.int64),
                         "ask": b["a1"].to_numpy(np.float64), "cost": b["a2"].to_numpy(np.float64)})


@dataclass
class Batch:
    """One clearing batch (the tasks cleared in one block) as matrices over its bidders × tasks."""

    tasks: np.ndarray  # task ids
    budgets: np.ndarray  # base units
    winner: np.ndarray  # the recorded winner account per task (−1: none)
    payment: np.ndarray  # the recorded payment per task, base units
    workers: np.ndarray  # bidder accounts, ascending
    ask: np.ndarray  # (workers, tasks), inf = no bid
    cost: np.ndarray  # true costs, same layout


def batches(tasks: pd.DataFrame, bids: pd.DataFrame) -> list[Batch]:
    """The run's clearing batches with bids: the tasks cleared in the same block (same ``t_cleared``),
    expired ones excluded."""
    t = tasks[tasks["t_cleared"].notna() & (tasks["status"] != "expired")].sort_values(["t_cleared", "task_id"])
    ids, when = t["task_id"].to_numpy(np.int64), t["t_cleared"].to_numpy(np.float64)
    budget, winner = t["budget"].to_numpy(np.float64), t["winner"].to_numpy(np.int64)
    payment = t["payment"].to_numpy(np.float64)
    b_task, b_worker = bids["task"].to_numpy(), bids["worker"].to_numpy()
    b_ask, b_cost = bids["ask"].to_numpy(), bids["cost"].to_numpy()
    lo, hi = np.searchsorted(b_task, ids, "left"), np.searchsorted(b_task, ids, "right")
    out = []
    for sl in np.split(np.arange(ids.size), np.flatnonzero(np.diff(when)) + 1):
        rows = np.concatenate([np.arange(lo[k], hi[k]) for k in sl])
        if rows.size == 0:
            continue
        workers = np.unique(b_worker[rows])
        at = (np.searchsorted(workers, b_worker[rows]), np.searchsorted(ids[sl], b_task[rows]))
        ask, cost = np.full((workers.size, sl.size), np.inf), np.full((workers.size, sl.size), np.inf)
        ask[at], cost[at] = b_ask[rows], b_cost[rows]
        out.append(Batch(ids[sl], budget[sl], winner[sl], payment[sl], workers, ask, cost))
    return out


def _won(out: Outcome, b: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(winning rows, their tasks' columns, payments rounded down as the auction does)."""
    rows = out.winners
    cols = out.task_of_agent[rows]
    return rows, cols, np.minimum(np.floor(out.payment[rows]), b.budgets[cols])


def market_metrics(res: RunResult) -> dict[str, float]:
    """One run's metrics, every batch re-cleared by ``vcg.clear`` twice: on the asks (what the auction did:
    checked against the recorded winners and payments) and on the true costs (the *truthful
    counterfactual*: the same bidders and tasks had everyone asked its cost).

    ``payment_change`` (%): Σ payments ÷ Σ counterfactual payments − 1. ``efficiency``: realized surplus
    (budget − winner's true cost) ÷ the counterfactual's (the optimum). Per strategy S present:
    ``surplus_per_identity_S`` / ``_per_principal_S`` (tokens over the run: payment − true cost of its
    wins), ``win_share_S``, ``wins_per_principal_S``, ``zero_surplus_share_S`` (wins paid exactly their
    cost), ``gain_per_identity_S`` (tokens: its surplus minus its counterfactual surplus). Sybils:
    ``split_gain_per_principal`` (tokens): their surplus minus what each principal would have won as
    one identity with the capacity of its bidding DIDs (``clear_capacity``; clones' equal bids merged).
    """
    workers = res.agents[res.agents["kind"] == "worker"]
    names = sorted(workers["strategy"].unique())
    account = workers["agent_id"].to_numpy(np.int64)
    code = np.full(int(account.max()) + 1, -1, np.int64)
    code[account] = [names.index(x) for x in workers["strategy"]]
    principal = np.full(code.size, -1, np.int64)
    principal[account] = workers["principal"].to_numpy(np.int64)
    sybil_code = names.index("sybil") if "sybil" in names else -2
    pay = cf_pay = realized = optimal = split_gain = 0.0
    surplus, cf_surplus = np.zeros(len(names)), np.zeros(len(names))
    wins, zero = np.zeros(len(names)), np.zeros(len(names))
    for b in batches(res.tasks, held_bids(res)):
        strat = code[b.workers]
        rows, cols, paid = _won(clear(b.budgets[None, :], b.ask), b)
        recorded = b.winner >= 0
        if not (np.array_equal(np.sort(cols), np.flatnonzero(recorded)) and np.array_equal(
                b.workers[rows], b.winner[cols]) and np.array_equal(paid, b.payment[cols])):
            raise AssertionError(f"re-clearing the batch of tasks {b.tasks.tolist()} differs from the run")
        gain = paid - b.cost[rows, cols]
        pay += paid.sum()
        realized += float(np.sum(b.budgets[cols] - b.cost[rows, cols]))
        np.add.at(surplus, strat[rows], gain)
        np.add.at(wins, strat[rows], 1.0)
        np.add.at(zero, strat[rows], gain == 0.0)
        truthful = clear(b.budgets[None, :], b.cost)
        t_rows, t_cols, t_paid = _won(truthful, b)
        cf_pay += t_paid.sum()
        optimal += truthful.welfare
        np.add.at(cf_surplus, strat[t_rows], t_paid - b.cost[t_rows, t_cols])
        sybil = strat == sybil_code
        if sybil.any():
            split_gain += float(gain[strat[rows] == sybil_code].sum())
            split_gain -= merged_sybil_surplus(b, principal[b.workers], sybil)
    out = {"payment_change": 100.0 * (pay / cf_pay - 1.0), "efficiency": realized / optimal,
           "tasks_won": float(wins.sum())}
    for i, s in enumerate(names):
        ids = workers[workers["strategy"] == s]
        n_p = ids["principal"].nunique()
        out[f"surplus_per_identity_{s}"] = surplus[i] / len(ids) / TOKEN
        out[f"surplus_per_principal_{s}"] = surplus[i] / n_p / TOKEN
        out[f"gain_per_identity_{s}"] = (surplus[i] - cf_surplus[i]) / len(ids) / TOKEN
        out[f"win_share_{s}"] = wins[i] / wins.sum()
        out[f"wins_per_principal_{s}"] = wins[i] / n_p
        out[f"zero_surplus_share_{s}"] = zero[i] / wins[i] if wins[i] else float("nan")
        if s == "sybil":
            out["split_gain_per_principal"] = split_gain / n_p / TOKEN
    return out


def merged_sybil_surplus(b: Batch, principal: np.ndarray, sybil: np.ndarray) -> float:
    """The sybil principals' VCG surplus in batch ``b`` had each bid as one identity: its DIDs' rows merged
    into one (the lowest ask per task — they are equal, the DIDs share the principal's costs) with
    capacity = the number of its DIDs that bid, cleared by ``clear_capacity`` (base units)."""
    keys = np.where(sybil, principal, -1 - np.arange(principal.size))  # non-sybils stay apart
    uniq, row = np.unique(keys, return_inverse=True)
    ask = np.full((uniq.size, b.tasks.size), np.inf)
    np.minimum.at(ask, row, b.ask)
    cap = np.bincount(row, minlength=uniq.size)
    out = clear_capacity(b.budgets[None, :], ask, cap)
    # integer payments as the auction would round them: one floor per task is within n_won base units
    return float(np.sum(out.utility[uniq >= 0]))


def base_config(size: Size, overrides: Sequence[str]) -> Config:
    """The typed config every cell shares (composed once; cells and seeds are set on copies)."""
    return to_config(compose([*BASE, f"duration_s={size.duration_s:g}", *overrides]))


def cell_config(base: Config, cell: Cell, overrides: Sequence[str] = ()) -> Config:
    """``base`` with the cell's strategy mix (its strategies set, the rest 0) and parameters — the same as
    composing ``population.strategy_mix.…=… population.ring_bidding=…``. A ``population.KEY`` that
    ``overrides`` (already in ``base``) sets keeps the override's value: the caller's perturbation wins."""
    user = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    params = {k: v for k, v in cell.params.items() if f"population.{k}" not in user}
    mix = base.population.strategy_mix
    if not any(k.startswith("population.strategy_mix") for k in user):
        mix = dict.fromkeys(mix, 0.0) | cell.mix
    return dataclasses.replace(base, population=dataclasses.replace(base.population, strategy_mix=mix, **params))


def market(seed: int, base: Config, overrides: Sequence[str] = ()) -> dict[str, float]:
    """One seed's market metrics over every cell (the cells share the seed: same workers, same tasks)."""
    out = {}
    for name, cell in CELLS.items():
        c = market_metrics(run_model(dataclasses.replace(cell_config(base, cell, overrides), seed=seed)))
        if name in RING_CELLS:
            out[f"m_{name}_payment_change"] = c["payment_change"]
            out[f"m_{name}_efficiency"] = c["efficiency"]
            out[f"m_{name}_ring_win_share"] = c["win_share_collusion"]
            out[f"m_{name}_ring_gain_per_member"] = c["gain_per_identity_collusion"]
            out[f"m_{name}_ring_surplus_ratio"] = (c["surplus_per_identity_collusion"]
                                                   / c["surplus_per_identity_truthful"])
        else:
            out[f"m_{name}_surplus_per_principal_ratio"] = (c["surplus_per_principal_sybil"]
                                                            / c["surplus_per_principal_truthful"])
            out[f"m_{name}_surplus_per_identity_ratio"] = (c["surplus_per_identity_sybil"]
                                                           / c["surplus_per_identity_truthful"])
            out[f"m_{name}_wins_per_principal_ratio"] = (c["wins_per_principal_sybil"]
                                                         / c["wins_per_principal_truthful"])
            out[f"m_{name}_zero_surplus_share"] = c["zero_surplus_share_sybil"]
            out[f"m_{name}_split_gain_per_principal"] = c["split_gain_per_principal"]
    return out


# ---------------------------------------------------------------------------------------------------
# Run


def theory() -> dict[str, float]:
    th = design_a_theory() | design_b_theory()
    th["sybil_split_gain_max"] = 0.0  # false-name-proofness of VCG in capacitated assignment
    for name in ("ring25", "ring50", "ring50_crowd"):
        th[f"m_{name}_ring_win_share"] = CELLS[name].mix["collusion"]
    return th


def per_seed(size: str, seeds: Sequence[int], overrides: Sequence[str] = (),
             clear_fn: Clear = clear) -> dict[str, list[float]]:
    """Every metric's value for every seed (lists in seed order)."""
    sz = SIZES[size]
    base = base_config(sz, overrides)
    values: dict[str, list[float]] = defaultdict(list)
    for seed in seeds:
        for part in (design_a(seed, sz, clear_fn), design_b(seed, sz, clear_fn), sybil_split(seed, sz, clear_fn),
                     market(seed, base, overrides)):
            for name, v in part.items():
                values[name].append(v)
    return dict(values)


def run(size: str, seeds: list[int], overrides: Sequence[str] = ()) -> dict[str, MetricResult]:
    """Mean and 95 % CI over ``seeds`` of every metric, with its theory value where there is one."""
    th = theory()
    values = per_seed(size, seeds, overrides)
    return {name: MetricResult.from_values(vals, th.get(name)) for name, vals in values.items()}


# ---------------------------------------------------------------------------------------------------
# Figure


def figure(results: dict[str, MetricResult], expected: dict[str, Expectation], path: Path) -> None:
    """Five panels: Design A's payment change against ring size (closed form as a line); Design B's
    against the ring's share of the losers (research table as crosses); the ring's extra profit per
    auction and its mitigations; the market's rings (payment change and gain per member); the sybils
    (ratios to a truthful worker and the split gain). 95 % CIs as error bars, expected ± tolerance grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def point(ax, x: float, name: str, color: str, label: str | None = None) -> None:  # noqa: ANN001
        r = results.get(name)
        if r is None:
            return
        e = expected.get(name)
        if e is not None and not e.report_only:
            ax.fill_between([x - 0.3, x + 0.3], e.expected - e.tolerance, e.expected + e.tolerance,
                            color="0.8", zorder=1)
        ax.errorbar(x, r.mean, yerr=r.ci if np.isfinite(r.ci) else 0.0, fmt="o", color=color, capsize=3,
                    zorder=3, label=label)

    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    th = theory()

    ax = axes[0, 0]
    ks = np.arange(1, DESIGN_A_N + 1)
    base = expected_payment(DESIGN_A_N, 0, 1.0)
    ax.plot(ks, [100 * (expected_payment(DESIGN_A_N, int(k), 1.0) / base - 1) for k in ks], "-", color="0.3",
            label="closed form", zorder=2)
    research = {2: 1.0, 3: 4.0, 5: 17.0, 10: 459.0}
    for i, k in enumerate(DESIGN_A_RINGS):
        point(ax, k, f"a_payment_change_k{k}", "C0", "vcg.clear" if i == 0 else None)
        ax.plot(k, research[k], "x", color="C3", ms=8, label="research §4.2" if i == 0 else None, zorder=4)
    ax.set_yscale("symlog", linthresh=10.0)
    ax.set_xlabel("ring size k (of n = 10 bidders)")
    ax.set_ylabel("payment change, %")
    ax.set_title("Design A: one task, ring's cheapest bids its cost, the rest the reserve", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    xs = np.arange(len(DESIGN_B_SHARES))
    for c, n in zip(("C0", "C2"), DESIGN_B_AGENTS, strict=True):
        for x, name in zip(xs, DESIGN_B_SHARES, strict=True):
            point(ax, x + (0.12 if n == 25 else -0.12), f"b{n}_payment_change_{name}", c,
                  f"{n} agents" if x == 0 else None)
            ax.plot(x + (0.12 if n == 25 else -0.12), th[f"b{n}_payment_change_{name}"], "x", color="C3", ms=8,
                    label="research §4.2" if (x == 0 and n == 40) else None, zorder=4)
    ax.set_xticks(xs, [f"{int(100 * v)} %" for v in DESIGN_B_SHARES.values()])
    ax.set_yscale("symlog", linthresh=10.0)
    ax.set_ylim(-1.0, 4000.0)
    ax.set_xlabel("share of the would-be losers bidding the reserve")
    ax.set_ylabel("total payment change, %")
    ax.set_title("Design B: 20 tasks; the allocation never changes", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[0, 2]
    gains = ["k5", "k5_n20", "k5_r05", "k10", "k10_r05"]
    labels = ["k=5\nn=10 r=1", "k=5\nn=20", "k=5\nr=0.5", "k=10\nn=10 r=1", "k=10\nr=0.5"]
    for x, g in enumerate(gains):
        point(ax, x, f"a_ring_gain_{g}", "C0", "vcg.clear" if x == 0 else None)
        ax.plot(x, th[f"a_ring_gain_{g}"], "D", color="k", ms=5, label="closed form" if x == 0 else None, zorder=4)
    ax.set_xticks(range(len(gains)), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ring's extra profit per auction (value = 1)")
    ax.set_title("Mitigations: more bidders per task, a lower reserve", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    for x, cell in enumerate(RING_CELLS):
        point(ax, x - 0.15, f"m_{cell}_payment_change", "C0", "payment change, %" if x == 0 else None)
        point(ax, x + 0.15, f"m_{cell}_ring_gain_per_member", "C1",
              "ring's gain per member, tokens" if x == 0 else None)
    ax.axhline(0.0, color="0.4", lw=0.8)
    ax.set_xticks(range(len(RING_CELLS)), ["bid ring 25 %", "bid ring 50 %", "bid ring 50 %\n2× bidders/task",
                                           "floor ring 30 %\n(preset)"], fontsize=8)
    ax.set_title("Market (VCG): against the truthful counterfactual of the same bids", fontsize=10)
    ax.legend(fontsize=8)

    ax = axes[1, 1]
    for x, cell in enumerate(RING_CELLS):
        point(ax, x, f"m_{cell}_ring_surplus_ratio", "C1")
    ax.axhline(1.0, color="0.4", lw=0.8)
    ax.set_xticks(range(len(RING_CELLS)), ["bid ring 25 %", "bid ring 50 %", "bid ring 50 %\n2× bidders/task",
                                           "floor ring 30 %"], fontsize=8)
    ax.set_ylabel("surplus per ring member ÷ per truthful worker")
    ax.set_title("Market: does the ring pay its members?", fontsize=10)

    ax = axes[1, 2]
    syb = [("m_sybil20_wins_per_principal_ratio", "wins /\nprincipal"),
           ("m_sybil20_surplus_per_principal_ratio", "surplus /\nprincipal"),
           ("m_sybil20_surplus_per_identity_ratio", "surplus /\nidentity"),
           ("m_sybil20_zero_surplus_share", "wins paid\nexactly cost")]
    for x, (name, _) in enumerate(syb):
        point(ax, x, name, "C4")
    ax.axhline(1.0, color="0.4", lw=0.8)
    ax.set_xticks(range(len(syb)), [lab for _, lab in syb], fontsize=8)
    r = results.get("m_sybil20_split_gain_per_principal")
    s = results.get("sybil_split_gain_max")
    text = []
    if r is not None:
        text.append(f"market split gain per sybil principal: {r.mean:.2f} ± {r.ci:.2f} tokens")
    if s is not None:
        text.append(f"vcg.clear: largest split gain over all markets = {s.mean:.2g}")
    ax.set_title("Market: sybils (5 DIDs) ÷ a truthful principal\n" + "\n".join(text), fontsize=9)

    n = max(r.n for r in results.values())
    fig.suptitle(f"Collusion rings and sybils against VCG (mean, 95 % CI over {n} seeds; grey: expected ± "
                 "tolerance)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
