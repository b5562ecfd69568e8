"""Mechanisms: vcg, second_price, first_price and posted_price with truthful and strategic bidders.

One simulation run per (mechanism, population, seed): the same market — workers, requesters, task
stream — cleared by a different ``market.mechanism``. Every metric is measured from the run's tables;
allocative efficiency re-solves each clearing batch with the bidders' *true* costs (from the bid
records) by ``ainur_sim.market.vcg.clear``. See README.md for the question, the method and the
tolerances.

``run(size, seeds, overrides=())``: ``overrides`` are extra Hydra overrides appended to every model run
(e.g. ``["market.reputation.q_min=0.5"]``) — the way to check that a wrong model fails the comparison.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ainur_sim import compose
from ainur_sim import run as run_model
from ainur_sim.config import Config
from ainur_sim.market.mechanisms import DEFAULT_PRICE_FRACTION
from ainur_sim.market.vcg import clear
from ainur_sim.reproduce import Expectation, MetricResult
from ainur_sim.result import RunResult
from ainur_sim.sim import to_config

TOKEN = 10**12
MECHANISMS = ("vcg", "second_price", "first_price", "posted_price")
POPULATIONS: dict[str, dict[str, float]] = {
    "truthful": {"truthful": 1.0},
    # exogenous strategic bidders (agents/strategies.py): ask = 1.3·cost, 0.7·cost
    "strategic": {"truthful": 0.4, "shading": 0.3, "underbid": 0.3},
}
METRICS = ("efficiency", "requester_cost", "worker_surplus", "completion")

#: The market every cell runs: a healthy chain, a busy market, values = budgets (q_min = 1, so the
#: requesters' value of a task does not depend on reputation and is the same for every bidder).
BASE = (
    "scenario=baseline", "api.enabled=false", "load.tps=0",
    "population.n_workers=60", "population.n_requesters=40", "population.tasks_per_requester_hour=8",
    "population.market_start_s=900",  # after onboarding (600 s spread) and the 120 s verification
    "market.reputation.q_min=1",
)


@dataclass(frozen=True)
class Size:
    duration_s: float  # simulated seconds per run (tasks are posted from 900 s on)


SIZES = {"quick": Size(duration_s=1_800.0), "full": Size(duration_s=7_200.0)}


def metric_name(mechanism: str, population: str, metric: str) -> str:
    return f"{mechanism}_{population}_{metric}"


# ---------------------------------------------------------------------------------------------------
# Theory (fills the theory column only)


def theory() -> dict[str, float]:
    """Closed forms where the mechanism pins the value down regardless of the draws."""
    th = {}
    for mech in ("vcg", "first_price"):  # the welfare-maximizing allocation on truthful bids
        th[metric_name(mech, "truthful", "efficiency")] = 1.0
    th[metric_name("first_price", "truthful", "worker_surplus")] = 0.0  # pay-as-bid, bid = cost
    th[metric_name("first_price", "strategic", "surplus_per_worker_truthful")] = 0.0
    for pop in POPULATIONS:  # the winner is paid the posted price, a fixed share of the value (= budget)
        th[metric_name("posted_price", pop, "requester_cost")] = DEFAULT_PRICE_FRACTION
    return th


NOTES = {
    metric_name("second_price", "truthful", "efficiency"): "1 for one-task batches",
}


# ---------------------------------------------------------------------------------------------------
# Measurement


def true_bids(res: RunResult) -> pd.DataFrame:
    """The bids the auction held: successful ``submit_bid`` calls (the last per worker and task), with
    columns task, worker, ask and cost (the worker's true cost, ``a2``), base units."""
    calls = res.extra_tables["calls"]
    b = calls[(calls["call"] == "auction.submit_bid") & (calls["status"] == "ok")].sort_values("record")
    b = b.drop_duplicates(["a0", "origin"], keep="last")
    return pd.DataFrame({"task": b["a0"].to_numpy(np.int64), "worker": b["origin"].to_numpy(np.int64),
                         "ask": b["a1"].to_numpy(np.int64), "cost": b["a2"].to_numpy(np.int64)})


def efficiency(tasks: pd.DataFrame, bids: pd.DataFrame) -> tuple[float, float]:
    """(realized, optimal) surplus summed over the run's clearing batches, base units.

    A batch is the set of non-expired tasks cleared in one block (same ``t_cleared``). Realized: Σ over
    its assigned tasks of budget − the winner's true cost. Optimal: ``vcg.clear`` on the batch's bidders
    × tasks with their true costs and the budgets as values (each bidder wins at most one task per batch,
    as in every mechanism).
    """
    cost_of = {(t, w): c for t, w, c in zip(bids["task"], bids["worker"], bids["cost"], strict=True)}
    cleared = tasks[tasks["t_cleared"].notna() & (tasks["status"] != "expired")]
    realized = optimal = 0.0
    for _, batch in cleared.groupby("t_cleared"):
        ids = batch["task_id"].to_numpy(np.int64)
        budgets = batch["budget"].to_numpy(np.float64)
        for k, w, v in zip(ids, batch["winner"], budgets, strict=True):
            if w >= 0:
                realized += v - cost_of[(int(k), int(w))]
        bb = bids[bids["task"].isin(ids)]
        if bb.empty:
            continue
        workers = np.unique(bb["worker"].to_numpy())
        costs = np.full((workers.size, ids.size), np.inf)
        costs[np.searchsorted(workers, bb["worker"].to_numpy()),
              np.searchsorted(ids, bb["task"].to_numpy())] = bb["cost"].to_numpy(np.float64)
        optimal += clear(budgets[None, :], costs).welfare
    return realized, optimal


def market_metrics(res: RunResult, strategies: Sequence[str] = ()) -> dict[str, float]:
    """Efficiency, requester cost, worker surplus (tokens) and completion rate of one run; and for each of
    ``strategies`` the auction surplus its workers won over the run per worker identity of that strategy
    (``surplus_per_worker_STRATEGY``, tokens)."""
    tasks = res.tasks.sort_values("task_id")
    bids = true_bids(res)
    realized, optimal = efficiency(tasks, bids)
    won = tasks[tasks["winner"] >= 0]
    cost_of = bids.set_index(["task", "worker"])["cost"]
    winner_cost = cost_of.loc[list(zip(won["task_id"], won["winner"], strict=True))].to_numpy(np.float64)
    pay = won["payment"].to_numpy(np.float64)
    out = {
        "efficiency": realized / optimal,
        "requester_cost": float(np.mean(pay / won["budget"].to_numpy(np.float64))),
        "worker_surplus": float(np.mean(pay - winner_cost)) / TOKEN,
        "completion": float(res.kpis["task_completion_rate"]["value"]),
    }
    workers = res.agents[res.agents["kind"] == "worker"].set_index("agent_id")["strategy"]
    surplus = pd.Series(pay - winner_cost, index=won["winner"].to_numpy()).groupby(level=0).sum()
    by_strategy = surplus.groupby(workers.reindex(surplus.index).to_numpy()).sum()
    counts = workers.value_counts()
    for strategy in strategies:
        out[f"surplus_per_worker_{strategy}"] = float(by_strategy.get(strategy, 0.0)) / counts[strategy] / TOKEN
    return out


def base_config(size: Size, overrides: Sequence[str]) -> Config:
    """The typed config shared by every cell (composed once; cells and seeds are set on copies)."""
    return to_config(compose([*BASE, f"duration_s={size.duration_s:g}", *overrides]))


def cell_config(base: Config, mechanism: str, population: str) -> Config:
    """``base`` with ``market.mechanism`` and the population's strategy mix (its strategies set, the
    rest 0) — the same as composing ``market.mechanism=… population.strategy_mix.…=…``."""
    mix = {name: 0.0 for name in base.population.strategy_mix} | POPULATIONS[population]
    return dataclasses.replace(base, market=dataclasses.replace(base.market, mechanism=mechanism),
                               population=dataclasses.replace(base.population, strategy_mix=mix))


def per_seed(size: str, seeds: Sequence[int], overrides: Sequence[str] = ()) -> dict[str, list[float]]:
    """Every metric's value for every seed (lists in seed order)."""
    base = base_config(SIZES[size], overrides)
    values: dict[str, list[float]] = defaultdict(list)
    for mech in MECHANISMS:
        for pop in POPULATIONS:
            cfg = cell_config(base, mech, pop)
            mixed = list(POPULATIONS[pop]) if len(POPULATIONS[pop]) > 1 else []
            for seed in seeds:
                for metric, v in market_metrics(run_model(dataclasses.replace(cfg, seed=seed)), mixed).items():
                    values[metric_name(mech, pop, metric)].append(v)
    return dict(values)


def run(size: str, seeds: list[int], overrides: Sequence[str] = ()) -> dict[str, MetricResult]:
    """Mean and 95 % CI over ``seeds`` of every metric, with its theory value where there is one."""
    th = theory()
    return {name: MetricResult.from_values(vals, th.get(name), NOTES.get(name, ""))
            for name, vals in per_seed(size, seeds, overrides).items()}


# ---------------------------------------------------------------------------------------------------
# Figure

PANELS = {
    "efficiency": "allocative efficiency (realized / optimal surplus)",
    "requester_cost": "requester cost (payment / budget)",
    "worker_surplus": "worker surplus (payment − true cost), tokens",
    "completion": "task completion rate",
}


def figure(results: dict[str, MetricResult], expected: dict[str, Expectation], path: Path) -> None:
    """Four panels (one per metric) with bars per mechanism for truthful and strategic bidders, and a fifth
    with the surplus won per worker by strategy in the strategic mix; 95 % CIs as error bars, the expected
    value ± tolerance as a grey band, theory values as black diamonds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(16, 7.5))
    grid = fig.add_gridspec(2, 3)
    x = np.arange(len(MECHANISMS))

    def bars(ax, groups: list[tuple[str, list[str]]], width: float) -> None:  # noqa: ANN001 - matplotlib axes
        for k, (group, names) in enumerate(groups):
            xs = x + (k - (len(groups) - 1) / 2) * width
            for xi, mech, name in zip(xs, MECHANISMS, names, strict=True):
                r = results.get(name)
                if r is None:
                    continue
                e = expected.get(name)
                if e is not None and not e.report_only:
                    ax.fill_between([xi - width / 2, xi + width / 2], e.expected - e.tolerance,
                                    e.expected + e.tolerance, color="0.8", zorder=1)
                ax.bar(xi, r.mean, width * 0.8, color=f"C{k}", alpha=0.75, zorder=2,
                       label=group if mech == MECHANISMS[0] else None)
                ax.errorbar(xi, r.mean, yerr=r.ci if np.isfinite(r.ci) else 0.0, fmt="none", color="k",
                            capsize=3, zorder=3)
                if r.theory is not None:
                    ax.plot(xi, r.theory, "D", color="k", ms=5, zorder=4)
        ax.set_xticks(x, MECHANISMS)
        ax.grid(axis="y", alpha=0.3)
        ax.axhline(0.0, color="0.4", lw=0.8)

    slots = [grid[0, 0], grid[0, 1], grid[0, 2], grid[1, 0]]
    for slot, (metric, title) in zip(slots, PANELS.items(), strict=True):
        ax = fig.add_subplot(slot)
        bars(ax, [(pop, [metric_name(m, pop, metric) for m in MECHANISMS]) for pop in POPULATIONS], 0.38)
        ax.set_title(title, fontsize=10)
        if metric in ("efficiency", "completion"):
            lo = min((results[n].mean for n in results if n.endswith(metric)), default=0.0)
            ax.set_ylim(max(0.0, lo - 0.05), 1.01)
        if metric == "efficiency":
            ax.plot([], [], "D", color="k", ms=5, label="theory")
            ax.legend(fontsize=8, loc="lower left")
    ax = fig.add_subplot(grid[1, 1:])
    bars(ax, [(f"{s} workers", [metric_name(m, "strategic", f"surplus_per_worker_{s}") for m in MECHANISMS])
              for s in POPULATIONS["strategic"]], 0.27)
    ax.set_yscale("symlog", linthresh=10.0)
    ax.set_title("strategic mix: auction surplus won per worker over the run, by strategy (tokens; linear within "
                 "±10, log beyond)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    n = max(r.n for r in results.values())
    fig.suptitle(f"Mechanisms × bidder populations (mean, 95 % CI over {n} seeds; grey: expected ± tolerance)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
