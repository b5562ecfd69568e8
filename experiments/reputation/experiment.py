"""Reputation robustness: on-off, whitewashing and camouflage workers against beta, EMA and EigenTrust
reputation, with re-registration open and closed, and with and without deposits.

One market per seed, run seven times: an all-truthful **control** and six **arms** in which 30 % of the
same worker identities attack (a tenth each: ``on_off``, ``whitewash``, ``camouflage``; see
``agents/strategies.py``). The population's draws (capabilities, costs, qualities, joining times) come
first from the run's stream, so with the same seed the arms and the control hold *the same workers*; an
attacker's wins are compared with what the same identities won behaving honestly in the control. Every
value is measured from the runs' tables (``tasks``, ``agents``); the theory column holds the few closed
forms (see README.md). The deposit arms (``no_deposits``, ``forfeit``), ``beta`` and ``beta_closed`` are
also measured in tokens (``DEPOSIT_ARMS``): the whitewashers' net earnings from the ledger's end state,
against the same identities' in the control.

``run(size, seeds, overrides=())``: ``overrides`` are extra Hydra overrides appended to every run, the
control included (e.g. ``["market.reputation.q_min=1"]``) — the way to check that a wrong model fails.
Keys an override sets win over the arms' own values.
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
from ainur_sim.agents.strategies import LOW_QUALITY_AB
from ainur_sim.config import Config
from ainur_sim.reproduce import Expectation, MetricResult
from ainur_sim.result import RunResult
from ainur_sim.sim import to_config

TOKEN = 10**12
ATTACKS = ("on_off", "whitewash", "camouflage")

#: The market: a healthy chain whose only transactions are the market's; 40 workers and 24 requesters
#: joining in the first 600 s, tasks from 900 s at 10 per requester-hour (≈ 6 per worker-hour). On-off
#: workers cheat in every second half hour (honest for 1,800 s, then low quality for 1,800 s: the phase is
#: the simulated time modulo 3,600 s); camouflage workers cheat on tasks with a budget ≥ 75 tokens
#: (≈ 21 % of tasks at the median budget of 50, σ = 0.5); whitewashers leave and re-register when their
#: reputation falls below 0.4. Re-registration is allowed (the arms close it where they say so).
BASE = (
    "scenario=baseline", "api.enabled=false", "load.tps=0",
    "population.n_workers=40", "population.n_requesters=24", "population.tasks_per_requester_hour=10",
    "population.market_start_s=900", "population.on_period_s=1800", "population.off_period_s=1800",
    "population.camouflage_above_tokens=75", "population.whitewash_below=0.4",
    "market.registry.allow_reregistration=true",
)
ATTACK_MIX = {"truthful": 0.7, "on_off": 0.1, "whitewash": 0.1, "camouflage": 0.1}
CONTROL_MIX = {"truthful": 1.0}

#: Deposits off: no DID deposit, no slashing, no stake rule, so leaving, re-entering and cheating cost
#: nothing but the reputation. ``min_stake`` = 0 and ``max_value_per_stake`` = 10^6 make the bidding rule
#: (stake ≥ min_stake, budget ≤ max_value_per_stake × stake) never bind. The stake itself stays (200
#: tokens; nothing takes it but the loser-pays dispute fee of 1 token): it is never topped up, so a tiny
#: stake would be emptied by the first slash or dispute fee and, with budget ≤ k × 0 = 0, bar the worker
#: from bidding for good — a ban, not "no deposit".
NO_DEPOSITS: dict[str, object] = {"market.registry.did_deposit_tokens": 0.0,
                                  "market.staking.slash_non_delivery": 0.0,
                                  "market.staking.slash_dispute_loss": 0.0,
                                  "market.staking.min_stake_tokens": 0.0,
                                  "market.staking.max_value_per_stake": 1e6}
#: Deposits that bind: a 50-token DID deposit (5 × the default) that is forfeited to the treasury on
#: ``deactivate_did`` (``deposit_refund_share`` = 0): every whitewash re-entry costs 50 tokens.
FORFEIT: dict[str, object] = {"market.registry.did_deposit_tokens": 50.0,
                              "market.registry.deposit_refund_share": 0.0}
#: Arms measured in tokens too (the whitewashers' net earnings, the requesters' extra bad tasks per hour);
#: ``beta_closed`` is the cheater that cannot re-enter, the yardstick for what a re-entry is worth.
DEPOSIT_ARMS = ("beta", "no_deposits", "forfeit", "beta_closed")

#: The arms: config keys set on top of BASE (dotted path → value). ``ema`` keeps its default half-life
#: of 7 days: over a run of hours it forgets nothing (2^(−4 h / 168 h) = 0.98), so beta (λ = 0.98 per
#: event) against ema is "forgetting" against "none" at the attacks' time scale.
ARMS: dict[str, dict[str, object]] = {
    "beta": {},
    "ema": {"market.reputation.model": "ema"},
    "eigentrust": {"market.reputation.model": "eigentrust"},
    "beta_closed": {"market.registry.allow_reregistration": False},
    "no_deposits": NO_DEPOSITS,
    "forfeit": FORFEIT,
}
CONTROL = "control"

#: End states of an assigned task; bad = not delivered, dispute lost, or delivered below the threshold.
ENDED = ("completed", "disputed_won", "disputed_lost", "failed")


@dataclass(frozen=True)
class Size:
    duration_s: float  # simulated seconds per run (tasks are posted from 900 s on)


SIZES = {"quick": Size(duration_s=2_700.0), "full": Size(duration_s=14_400.0)}

#: Paired differences between arms (same seed), judged as ordering claims: name → (arm, minus arm, metric).
DIFFERENCES: dict[str, tuple[str, str, str]] = {
    "diff_ema_minus_beta_on_off_bad_per_hour": ("ema", "beta", "on_off_bad_per_hour"),
    "diff_ema_minus_beta_on_off_off_win_ratio": ("ema", "beta", "on_off_off_win_ratio"),
    "diff_closed_minus_open_whitewash_win_ratio": ("beta_closed", "beta", "whitewash_win_ratio"),
    "diff_closed_minus_open_whitewash_bad_per_hour": ("beta_closed", "beta", "whitewash_bad_per_hour"),
    "diff_eigentrust_minus_beta_whitewash_reentries_per_hour": ("eigentrust", "beta", "whitewash_reentries_per_hour"),
    "diff_forfeit_minus_beta_whitewash_net_per_hour": ("forfeit", "beta", "whitewash_net_per_hour"),
    "diff_no_deposits_minus_beta_whitewash_net_per_hour": ("no_deposits", "beta", "whitewash_net_per_hour"),
    "diff_forfeit_minus_beta_whitewash_reentries_per_hour": ("forfeit", "beta", "whitewash_reentries_per_hour"),
    "diff_forfeit_minus_no_deposits_excess_bad_per_hour": ("forfeit", "no_deposits", "excess_bad_per_hour"),
    "diff_open_minus_closed_whitewash_net_per_hour": ("beta", "beta_closed", "whitewash_net_per_hour"),
}


def metric_name(arm: str, metric: str) -> str:
    return f"{arm}_{metric}"


# ---------------------------------------------------------------------------------------------------
# Configs


def _set(cfg: Config, path: str, value: object) -> Config:
    """``cfg`` with the dotted ``path`` set to ``value`` (as composing ``path=value`` would)."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(cfg, **{head: value})
    return dataclasses.replace(cfg, **{head: _set(getattr(cfg, head), rest, value)})


def base_config(size: Size, overrides: Sequence[str]) -> Config:
    """The typed config shared by every run (composed once; arms and seeds are set on copies)."""
    return to_config(compose([*BASE, f"duration_s={size.duration_s:g}", *overrides]))


def arm_config(base: Config, arm: str, overrides: Sequence[str] = ()) -> Config:
    """``base`` with the arm's keys and strategy mix, except keys that ``overrides`` set (those apply to
    every arm: how a perturbation reaches them)."""
    mine = {o.split("=", 1)[0] for o in overrides}
    cfg = base
    if "population.strategy_mix" not in mine and not any(k.startswith("population.strategy_mix.") for k in mine):
        cfg = _set(cfg, "population.strategy_mix", dict(CONTROL_MIX if arm == CONTROL else ATTACK_MIX))
    for key, value in ARMS.get(arm, {}).items():
        if key not in mine:
            cfg = _set(cfg, key, value)
    return cfg


# ---------------------------------------------------------------------------------------------------
# Measurement


@dataclass(frozen=True)
class Outcomes:
    """One run's assigned tasks: ``won`` (every task with a winner) and ``ended`` (those in an end state,
    with a ``bad`` flag), plus the workers' strategies, end-of-run reputations and ``net`` earnings (base
    units) by identity.

    ``net`` = what the worker holds at the end — free balance + stake + the DID deposit it still holds —
    minus its genesis endowment: payments received (net of the protocol fee) minus slashes, forfeited
    deposits, lost-dispute fees and transaction fees. The deposit still held is the configured deposit if
    the DID is active at the end (successful ``register_agent`` calls outnumber ``deactivate_did``), else 0;
    exact unless a slash emptied the stake and took part of the deposit (the stake column shows it)."""

    won: pd.DataFrame
    ended: pd.DataFrame
    workers: pd.DataFrame

    @classmethod
    def of(cls, res: RunResult, cfg: Config) -> Outcomes:
        t = res.tasks
        won = t[t["winner"] >= 0]
        ended = won[won["stage"].isin(ENDED)].copy()
        ended["bad"] = ended["stage"].isin(["failed", "disputed_lost"]) | (ended["quality"] < ended["threshold"])
        workers = res.agents[res.agents["kind"] == "worker"].set_index("agent_id")
        calls = res.extra_tables["calls"]
        ok = calls[calls["status"] == "ok"]
        regs = ok.loc[ok["call"] == "registry.register_agent", "origin"].value_counts()
        exits = ok.loc[ok["call"] == "registry.deactivate_did", "origin"].value_counts()
        active = (regs.reindex(workers.index, fill_value=0) > exits.reindex(workers.index, fill_value=0))
        held = active.astype(np.int64) * round(cfg.market.registry.did_deposit_tokens * TOKEN)
        workers = workers.assign(
            net=workers["balance"] + workers["stake"] + held - round(cfg.population.worker_tokens * TOKEN))
        return cls(won, ended, workers)


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def off_phase(t: pd.Series, cfg: Config) -> pd.Series:
    """Whether time ``t`` (s) falls in the on-off workers' cheating phase (``strategies.defecting``)."""
    pop = cfg.population
    return (t % (pop.on_period_s + pop.off_period_s)) >= pop.on_period_s


def arm_metrics(arm: Outcomes, control: Outcomes, cfg: Config, deposits: bool = False) -> dict[str, float]:
    """The metrics of one attacked run against the control run of the same seed; ``deposits``: also the
    token ones (whitewashers' net earnings, the requesters' extra bad tasks per hour)."""
    pop = cfg.population
    hours = (cfg.run_duration_s - pop.market_start_s) / 3600.0
    strategy = arm.workers["strategy"]
    honest_rep = arm.workers.loc[strategy == "truthful", "reputation"].mean()
    out = {
        "excess_bad_share": float(arm.ended["bad"].mean() - control.ended["bad"].mean()),
        "bad_share": float(arm.ended["bad"].mean()),
    }
    if deposits:
        out["excess_bad_per_hour"] = float((arm.ended["bad"].sum() - control.ended["bad"].sum()) / hours)
    for s in ATTACKS:
        ids = strategy.index[strategy == s]
        n = len(ids)
        mine = arm.won["winner"].isin(ids)
        twin = control.won["winner"].isin(ids)
        ended_mine = arm.ended["winner"].isin(ids)
        out[f"{s}_win_ratio"] = _ratio(mine.sum(), twin.sum())
        out[f"{s}_bad_per_hour"] = float((arm.ended["bad"] & ended_mine).sum() / n / hours)
        out[f"{s}_reputation_gap"] = float(arm.workers.loc[ids, "reputation"].mean() - honest_rep)
        if s == "on_off":
            off, off_twin = off_phase(arm.won["t_cleared"], cfg), off_phase(control.won["t_cleared"], cfg)
            out["on_off_off_win_ratio"] = _ratio((mine & off).sum(), (twin & off_twin).sum())
        if s == "whitewash":
            out["whitewash_reentries_per_hour"] = float((arm.workers.loc[ids, "registrations"] - 1).sum() / n / hours)
            if deposits:
                out["whitewash_net_per_hour"] = float(arm.workers.loc[ids, "net"].sum() / TOKEN / n / hours)
                out["whitewash_net_minus_twin_per_hour"] = float(
                    (arm.workers.loc[ids, "net"].sum() - control.workers.loc[ids, "net"].sum()) / TOKEN / n / hours)
        if s == "camouflage":
            mine_ended = arm.ended[ended_mine]
            high = mine_ended["budget"] >= round(pop.camouflage_above_tokens * TOKEN)
            out["camouflage_high_minus_low_bad_rate"] = float(mine_ended.loc[high, "bad"].mean()
                                                              - mine_ended.loc[~high, "bad"].mean())
    return out


def control_metrics(control: Outcomes, res: RunResult) -> dict[str, float]:
    return {"bad_share": float(control.ended["bad"].mean()),
            "task_success_rate": float(res.kpis["task_success_rate"]["value"])}


def theory(cfg: Config) -> dict[str, float]:
    """Closed forms (theory column only).

    * control bad share without selection: a winner fails to deliver with probability ``nd`` and
      otherwise misses the threshold with probability ``1 − E[q]``, q ~ Beta(α, β) the honest quality:
      ``nd + (1 − nd)·β/(α + β)`` — what the share would be if the auction picked workers blind to quality;
    * camouflage, bad rate on tasks ≥ the threshold minus below it: ``(1 − nd)·(E[q] − E[q_low])``,
      q_low ~ Beta(2, 2) — the rule's effect, if wins were independent of the workers' qualities;
    * beta_closed: no whitewasher can re-register, 0 re-entries;
    * forfeit − beta re-entries: 0 — the whitewash rule looks at the reputation only, never at the cost.
    """
    pop = cfg.population
    nd = pop.non_delivery_prob
    q = pop.quality_alpha / (pop.quality_alpha + pop.quality_beta)
    q_low = LOW_QUALITY_AB[0] / sum(LOW_QUALITY_AB)
    th = {metric_name(CONTROL, "bad_share"): nd + (1.0 - nd) * (1.0 - q),
          metric_name("beta_closed", "whitewash_reentries_per_hour"): 0.0,
          "diff_forfeit_minus_beta_whitewash_reentries_per_hour": 0.0}
    for arm in ARMS:
        th[metric_name(arm, "camouflage_high_minus_low_bad_rate")] = (1.0 - nd) * (q - q_low)
    return th


def loss_beyond_deposits(per_arm: dict[str, dict[str, float]]) -> float:
    """Paired (same seed): the whitewashers' net earnings per attacker-hour in ``forfeit`` minus in ``beta``,
    plus the arm's declared deposit (``FORFEIT``'s 50 tokens, not the run's config) times their re-entries
    per attacker-hour in ``forfeit``: what leaving costs them beyond one forfeited deposit per re-entry.
    0 when the two arms run the same paths and each exit forfeits exactly the declared deposit; a refund
    (e.g. ``deposit_refund_share=1``) makes it +50 × re-entries per hour."""
    f, b = per_arm["forfeit"], per_arm["beta"]
    declared = float(FORFEIT["market.registry.did_deposit_tokens"]) * (
        1.0 - float(FORFEIT["market.registry.deposit_refund_share"]))
    return (f["whitewash_net_per_hour"] - b["whitewash_net_per_hour"]
            + declared * f["whitewash_reentries_per_hour"])


def measure(size: str, seeds: Sequence[int], overrides: Sequence[str] = (),
            arms: Sequence[str] = tuple(ARMS)) -> dict[str, list[float]]:
    """Per-seed values of every metric (control, ``arms`` and the paired differences between them)."""
    base = base_config(SIZES[size], overrides)
    cfgs = {arm: arm_config(base, arm, overrides) for arm in (CONTROL, *arms)}
    values: dict[str, list[float]] = defaultdict(list)
    for seed in seeds:
        res = run_model(dataclasses.replace(cfgs[CONTROL], seed=seed))
        control = Outcomes.of(res, cfgs[CONTROL])
        for metric, v in control_metrics(control, res).items():
            values[metric_name(CONTROL, metric)].append(v)
        per_arm: dict[str, dict[str, float]] = {}
        for arm in arms:
            res = run_model(dataclasses.replace(cfgs[arm], seed=seed))
            per_arm[arm] = arm_metrics(Outcomes.of(res, cfgs[arm]), control, cfgs[arm], arm in DEPOSIT_ARMS)
            per_arm[arm]["task_success_rate"] = float(res.kpis["task_success_rate"]["value"])
            for metric, v in per_arm[arm].items():
                values[metric_name(arm, metric)].append(v)
        for name, (a, b, metric) in DIFFERENCES.items():
            if a in per_arm and b in per_arm:
                values[name].append(per_arm[a][metric] - per_arm[b][metric])
        if "forfeit" in per_arm and "beta" in per_arm:
            values["forfeit_whitewash_loss_beyond_deposits_per_hour"].append(loss_beyond_deposits(per_arm))
    return dict(values)


def run(size: str, seeds: list[int], overrides: Sequence[str] = ()) -> dict[str, MetricResult]:
    """Mean and 95 % CI over ``seeds`` of every metric, with its theory value where there is one."""
    values = measure(size, seeds, overrides)
    th = theory(base_config(SIZES[size], overrides))
    return {name: MetricResult.from_values(vals, th.get(name)) for name, vals in values.items()}


# ---------------------------------------------------------------------------------------------------
# Figure


def figure(results: dict[str, MetricResult], expected: dict[str, Expectation], path: Path) -> None:
    """Left: each attack's wins relative to the same identities behaving honestly (win ratio; 1 = the
    reputation system does not hold it back), per arm. Middle: bad tasks each attacker delivers per hour
    (the requesters' loss). Third: the attackers' reputation minus the honest workers' at the end.
    Right: the whitewashers' net earnings per hour in the deposit arms, and the same identities' when
    honest (the control). 95 % CIs over seeds; grey bands = expected ± tolerance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [a for a in ARMS if metric_name(a, "on_off_win_ratio") in results]
    panels = (("win_ratio", "wins ÷ the same identities' wins when honest"),
              ("bad_per_hour", "bad tasks per attacker per hour"),
              ("reputation_gap", "reputation − honest workers' (end of run)"))
    fig, axes = plt.subplots(1, 4, figsize=(20.0, 4.8), gridspec_kw={"width_ratios": [3, 3, 3, 1.6]})
    x = np.arange(len(arms))
    width = 0.26
    for ax, (metric, label) in zip(axes[:3], panels, strict=True):
        for k, s in enumerate(ATTACKS):
            xs = x + (k - 1) * width
            r = [results[metric_name(a, f"{s}_{metric}")] for a in arms]
            means = [v.mean for v in r]
            cis = [v.ci if np.isfinite(v.ci) else 0.0 for v in r]
            ax.bar(xs, means, width * 0.9, color=f"C{k}", alpha=0.8, label=s.replace("_", "-"), zorder=2)
            ax.errorbar(xs, means, yerr=cis, fmt="none", color="k", capsize=3, zorder=3)
            for xi, a in zip(xs, arms, strict=True):
                e = expected.get(metric_name(a, f"{s}_{metric}"))
                if e is not None and not e.report_only:
                    ax.fill_between([xi - width * 0.45, xi + width * 0.45], e.expected - e.tolerance,
                                    e.expected + e.tolerance, color="0.85", zorder=1, lw=0)
        if metric == "win_ratio":
            ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.axhline(0.0, color="k", lw=0.6)
        ax.set_xticks(x, [a.replace("_", "\n") for a in arms])
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    ax = axes[3]
    dep = [a for a in DEPOSIT_ARMS if metric_name(a, "whitewash_net_per_hour") in results]
    for k, a in enumerate(dep):
        net = results[metric_name(a, "whitewash_net_per_hour")]
        gap = results[metric_name(a, "whitewash_net_minus_twin_per_hour")]
        for j, (mean, ci, lab) in enumerate(((net.mean, net.ci, "whitewashers"),
                                             (net.mean - gap.mean, float("nan"), "same identities, honest"))):
            ax.bar(k + (j - 0.5) * 0.4, mean, 0.36, color=f"C{1 + 2 * j}", alpha=0.8,
                   label=lab if k == 0 else None, zorder=2)
            if np.isfinite(ci):
                ax.errorbar(k - 0.2, mean, yerr=ci, fmt="none", color="k", capsize=3, zorder=3)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(np.arange(len(dep)), [a.replace("_", "\n") for a in dep])
    ax.set_ylabel("net earnings per worker per hour (tokens)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    n = max(r.n for r in results.values())
    fig.suptitle(f"Reputation robustness: on-off, whitewashing and camouflage workers (mean, 95 % CI over {n} seeds; "
                 "grey: expected ± tolerance)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
