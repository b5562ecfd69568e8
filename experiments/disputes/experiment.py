"""Disputes: automated verification versus a juror court (with and without appeals) — accuracy and cost.

One simulation run per (arm, seed) of a market whose workers often deliver below the requesters'
quality threshold, so that many deliveries are disputed. Every value is measured from the run's tables:
the ground truth of a dispute is the delivered quality against the task's threshold (``tasks.quality``,
``tasks.threshold``), the ruling its end state (``disputed_won`` = for the worker), the rounds it took
from the blocks it was opened and ruled in, its cost from ``stats.dispute_fees_units`` and
``stats.juror_rewards_units``. The closed forms (error rates, Condorcet, the appeal rule of
``market/disputes.py`` evaluated exactly for each dispute's value) fill the theory column only. See
README.md.

``run(size, seeds, overrides=())``: ``overrides`` are extra Hydra overrides appended to every model run
(e.g. ``["market.dispute.juror_accuracy=0.7"]``) — the way to check that a wrong model fails.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ainur_sim import compose
from ainur_sim import run as run_model
from ainur_sim.config import Config
from ainur_sim.market.disputes import majority_accuracy
from ainur_sim.reproduce import Expectation, MetricResult
from ainur_sim.result import RunResult
from ainur_sim.sim import to_config

TOKEN = 10**12

#: The market: a healthy chain; 100 workers whose chance of meeting the threshold is Beta(2, 1)
#: (mean 2/3), 60 requesters posting 10 tasks/h each; requesters dispute 90 % of bad deliveries
#: (default) and 20 % of good ones, so both sides of a dispute are well represented.
BASE = (
    "scenario=baseline", "api.enabled=false", "load.tps=0",
    "population.n_workers=100", "population.n_requesters=60", "population.tasks_per_requester_hour=10",
    "population.market_start_s=900", "population.quality_alpha=2", "population.frivolous_dispute_prob=0.2",
)

#: The arms: (name, dispute config). Unlisted dispute keys keep their defaults (bond 5, automated fee 1,
#: juror fee 0.2 per vote, 1 token at risk per incoherent vote, 10 blocks per round, 3 initial jurors).
ARMS: dict[str, dict[str, object]] = {
    "automated": {"model": "automated", "false_accept": 0.05, "false_reject": 0.10},
    "court_no_appeal": {"model": "court", "juror_accuracy": 0.8, "max_rounds": 1},
    "court": {"model": "court", "juror_accuracy": 0.8, "max_rounds": 4},
    "court_weak_jurors": {"model": "court", "juror_accuracy": 0.65, "max_rounds": 4},
}
METRICS = ("accuracy", "accuracy_worker_right", "accuracy_worker_wrong", "mean_rounds", "cost_per_dispute",
           "juror_rewards_per_dispute")


@dataclass(frozen=True)
class Size:
    duration_s: float  # simulated seconds per run (tasks are posted from 900 s on)


SIZES = {"quick": Size(duration_s=2_700.0), "full": Size(duration_s=10_800.0)}


def metric_name(arm: str, metric: str) -> str:
    return f"{arm}_{metric}"


# ---------------------------------------------------------------------------------------------------
# Theory: the dispute rules of market/disputes.py and market/escrow.py, evaluated exactly


@dataclass(frozen=True)
class Court:
    """The court's parameters in tokens (as configured)."""

    q: float
    sizes: tuple[int, ...]
    fee: float            # per drawn vote
    at_risk: float        # stake lost per incoherent vote
    bond: float           # the requester's dispute bond (caps what a losing requester pays)
    appeal_threshold: float = 1.0

    @classmethod
    def of(cls, cfg: Config) -> Court:
        d = cfg.market.dispute
        sizes = [d.initial_jurors]
        for _ in range(d.max_rounds - 1):
            sizes.append(2 * sizes[-1] + 1)
        return cls(d.juror_accuracy, tuple(sizes), d.juror_fee_tokens, d.juror_stake_at_risk_tokens, d.bond_tokens)


def _binom_pmf(n: int, q: float) -> np.ndarray:
    k = np.arange(n + 1)
    logc = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in k])
    with np.errstate(divide="ignore"):
        return np.exp(logc + k * np.log(q) + (n - k) * np.log1p(-q)) if 0 < q < 1 else (k == round(n * q)) * 1.0


def _wrong_votes(n: int, q: float, majority_right: bool) -> float:
    """E[votes against the truth | the round's majority is (not) right] with n votes, each right w.p. q."""
    pmf = _binom_pmf(n, q)  # over the number of right votes
    right = np.arange(n + 1)
    sel = right > n / 2 if majority_right else right < n / 2
    p = pmf[sel].sum()
    return float(((n - right[sel]) * pmf[sel]).sum() / p) if p > 0 else 0.0


def court_expectation(value: float, worker_right: bool, c: Court) -> dict[str, float]:
    """Exact expectations for one dispute of ``value`` tokens: P(final ruling right), rounds, fees collected
    from the loser and juror rewards (fees collected + stake of incoherent votes), tokens.

    Rules (disputes.juror_court, loser_appeals; escrow._rule): round k has n_k votes, its majority is
    right with P_k = majority_accuracy(n_k, q); while rounds remain the loser appeals iff
    P(reverse)·value > threshold·fee·n_{k+1}, with P(reverse) = P_{k+1} if the loser is right and
    1 − P_{k+1} if not; the last round decides. The loser pays fee·Σ n_k — a losing requester at most
    its bond. A vote is incoherent if it disagrees with the final ruling.
    """
    out = {"accuracy": 0.0, "rounds": 0.0, "fees": 0.0, "rewards": 0.0}
    p_round = [majority_accuracy(n, c.q) for n in c.sizes]

    def walk(k: int, prob: float, path: tuple[bool, ...]) -> None:
        for right in (True, False):
            p = prob * (p_round[k] if right else 1.0 - p_round[k])
            if p == 0.0:
                continue
            here = (*path, right)
            nxt = k + 1
            if nxt < len(c.sizes):
                p_rev = p_round[nxt] if not right else 1.0 - p_round[nxt]
                if p_rev * value > c.appeal_threshold * c.fee * c.sizes[nxt]:
                    walk(nxt, p, here)
                    continue
            final = here[-1]
            held = c.sizes[: len(here)]
            fees = c.fee * sum(held)
            for_worker = final == worker_right
            collected = min(fees, c.bond) if for_worker else fees
            wrong = [_wrong_votes(n, c.q, r) for n, r in zip(held, here, strict=True)]
            incoherent = sum(w if final else n - w for n, w in zip(held, wrong, strict=True))
            out["accuracy"] += p * final
            out["rounds"] += p * len(held)
            out["fees"] += p * collected
            out["rewards"] += p * (collected + c.at_risk * incoherent)

    walk(0, 1.0, ())
    return out


def theory(arm: str, cfg: Config, disputes: pd.DataFrame) -> dict[str, float]:
    """The theory value of every metric of ``arm`` that has one, for the disputes measured (all seeds)."""
    d = cfg.market.dispute
    if d.model == "automated":
        w = disputes["worker_right"].mean() if len(disputes) else float("nan")
        return {"accuracy": 1.0 - w * d.false_reject - (1.0 - w) * d.false_accept,
                "accuracy_worker_right": 1.0 - d.false_reject, "accuracy_worker_wrong": 1.0 - d.false_accept,
                "mean_rounds": 1.0, "cost_per_dispute": d.fee_tokens, "juror_rewards_per_dispute": 0.0}
    c = Court.of(cfg)
    rows = [court_expectation(v, r, c) for v, r in zip(disputes["payment_tokens"], disputes["worker_right"],
                                                        strict=True)]
    ex = pd.DataFrame(rows)
    right = disputes["worker_right"].to_numpy(bool)
    return {"accuracy": ex["accuracy"].mean(), "accuracy_worker_right": ex["accuracy"][right].mean(),
            "accuracy_worker_wrong": ex["accuracy"][~right].mean(), "mean_rounds": ex["rounds"].mean(),
            "cost_per_dispute": ex["fees"].mean(), "juror_rewards_per_dispute": ex["rewards"].mean()}


def condorcet(arm: str, cfg: Config) -> float:
    """Condorcet's bound for a court arm: majority_accuracy(initial_jurors, q) (NaN for automated)."""
    d = cfg.market.dispute
    return majority_accuracy(d.initial_jurors, d.juror_accuracy) if d.model == "court" else float("nan")


# ---------------------------------------------------------------------------------------------------
# Measurement


def disputes_of(res: RunResult, resolution_blocks: int, max_rounds: int) -> pd.DataFrame:
    """One row per resolved dispute: worker_right (quality ≥ threshold), for_worker (``disputed_won``),
    payment_tokens and rounds.

    Rounds: a dispute opened in block n is ruled in block n + resolution_blocks·rounds (escrow: due block),
    executed when that block is finalized; the tasks table's ``t_settled`` is that finalization time.
    """
    tasks = res.tasks
    done = tasks[tasks["status"].isin(["disputed_won", "disputed_lost"])]
    calls = res.extra_tables["calls"]
    opened = calls[(calls["call"] == "escrow.open_dispute") & (calls["status"] == "ok")]
    open_block = opened.drop_duplicates("a0").set_index("a0")["block"]
    blocks = res.blocks
    number_of = blocks.set_index("block_id")["number"]
    canon = blocks[blocks["canonical"]].set_index("number")["t_finalized"]
    rounds = []
    for task, t_settled in zip(done["task_id"], done["t_settled"], strict=True):
        n = int(number_of[int(open_block[task])])
        hits = [r for r in range(1, max_rounds + 1)
                if n + resolution_blocks * r in canon.index and canon[n + resolution_blocks * r] == t_settled]
        if len(hits) != 1:
            raise RuntimeError(f"task {task}: cannot tell the rounds of its dispute (candidates {hits})")
        rounds.append(hits[0])
    return pd.DataFrame({
        "worker_right": (done["quality"] >= done["threshold"]).to_numpy(bool),
        "for_worker": (done["status"] == "disputed_won").to_numpy(bool),
        "payment_tokens": done["payment"].to_numpy(np.float64) / TOKEN,
        "rounds": np.asarray(rounds, dtype=np.int64),
    })


def dispute_metrics(res: RunResult, d: pd.DataFrame) -> dict[str, float]:
    """The arm's metrics for one run."""
    correct = d["for_worker"] == d["worker_right"]
    n = len(d)
    return {
        "accuracy": float(correct.mean()),
        "accuracy_worker_right": float(correct[d["worker_right"]].mean()),
        "accuracy_worker_wrong": float(correct[~d["worker_right"]].mean()),
        "mean_rounds": float(d["rounds"].mean()),
        "cost_per_dispute": res.stats["dispute_fees_units"] / n / TOKEN,
        "juror_rewards_per_dispute": res.stats["juror_rewards_units"] / n / TOKEN,
    }


def base_config(size: Size, overrides: Sequence[str]) -> Config:
    """The typed config shared by every arm (composed once; arms and seeds are set on copies)."""
    return to_config(compose([*BASE, f"duration_s={size.duration_s:g}", *overrides]))


def arm_config(base: Config, arm: str, overrides: Sequence[str] = ()) -> Config:
    """``base`` with the arm's ``market.dispute.*`` values (as composing ``market.dispute.…=…``), except
    the keys that ``overrides`` set: those apply to every arm (how a perturbation reaches the arms)."""
    mine = {o.split("=", 1)[0].removeprefix("market.dispute.") for o in overrides
            if o.startswith("market.dispute.")}
    keys = {k: v for k, v in ARMS[arm].items() if k not in mine}
    return dataclasses.replace(base, market=dataclasses.replace(
        base.market, dispute=dataclasses.replace(base.market.dispute, **keys)))


def measure(size: str, seeds: Sequence[int], overrides: Sequence[str] = ()
            ) -> tuple[dict[str, list[float]], dict[str, float], dict[str, str]]:
    """Per-seed values of every metric, the theory of each, and notes."""
    base = base_config(SIZES[size], overrides)
    values: dict[str, list[float]] = defaultdict(list)
    th: dict[str, float] = {}
    notes: dict[str, str] = {}
    for arm in ARMS:
        cfg = arm_config(base, arm, overrides)
        d = cfg.market.dispute
        pooled = []
        for seed in seeds:
            res = run_model(dataclasses.replace(cfg, seed=seed))
            disputes = disputes_of(res, d.resolution_blocks, d.max_rounds if d.model == "court" else 1)
            pooled.append(disputes)
            for metric, v in dispute_metrics(res, disputes).items():
                values[metric_name(arm, metric)].append(v)
        all_disputes = pd.concat(pooled, ignore_index=True)
        for metric, v in theory(arm, cfg, all_disputes).items():
            th[metric_name(arm, metric)] = float(v)
        bound = condorcet(arm, cfg)
        if d.model == "court" and d.max_rounds > 1:
            notes[metric_name(arm, "accuracy")] = f"≥ Condorcet {bound:.4f}"
        values[metric_name(arm, "disputes_per_run")] = [float(len(p)) for p in pooled]
    return dict(values), th, notes


def run(size: str, seeds: list[int], overrides: Sequence[str] = ()) -> dict[str, MetricResult]:
    """Mean and 95 % CI over ``seeds`` of every metric, with its theory value and note."""
    values, th, notes = measure(size, seeds, overrides)
    return {name: MetricResult.from_values(vals, th.get(name), notes.get(name, ""))
            for name, vals in values.items()}


# ---------------------------------------------------------------------------------------------------
# Figure


def figure(results: dict[str, MetricResult], expected: dict[str, Expectation], path: Path) -> None:
    """Left: ruling accuracy per arm — all disputes and by which side was right — with 95 % CIs, theory
    (diamonds), Condorcet's majority_accuracy(3, q) for the court arms (red dashes) and the expected value
    ± tolerance of the overall accuracy (grey). Right: tokens per dispute — fees paid by the loser and
    rewards paid to coherent jurors — with the mean number of rounds written above each arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [a for a in ARMS if metric_name(a, "accuracy") in results]
    fig, (ax_a, ax_c) = plt.subplots(1, 2, figsize=(12.5, 5.0))
    x = np.arange(len(arms))
    width = 0.26

    def ci(r: MetricResult) -> float:
        return r.ci if np.isfinite(r.ci) else 0.0

    kinds = (("accuracy", "all disputes"), ("accuracy_worker_right", "worker right (good delivery)"),
             ("accuracy_worker_wrong", "worker wrong (bad delivery)"))
    for k, (metric, label) in enumerate(kinds):
        xs = x + (k - 1) * width
        r = [results[metric_name(a, metric)] for a in arms]
        ax_a.bar(xs, [v.mean for v in r], width * 0.9, color=f"C{k}", alpha=0.75, label=label, zorder=2)
        ax_a.errorbar(xs, [v.mean for v in r], yerr=[ci(v) for v in r], fmt="none", color="k", capsize=3, zorder=3)
        th = [v.theory if v.theory is not None else np.nan for v in r]
        ax_a.plot(xs, th, "D", color="k", ms=4, label="theory" if k == 0 else None, zorder=4)
    for i, a in enumerate(arms):
        e = expected.get(metric_name(a, "accuracy"))
        if e is not None and not e.report_only:
            ax_a.fill_between([i - 1.5 * width, i - 0.5 * width], e.expected - e.tolerance,
                              e.expected + e.tolerance, color="0.75", zorder=1)
        if ARMS[a]["model"] == "court":
            bound = majority_accuracy(3, float(ARMS[a]["juror_accuracy"]))
            ax_a.plot([i - 1.5 * width, i + 1.5 * width], [bound, bound], "--", color="C3", lw=1.5, zorder=5,
                      label="Condorcet, 3 jurors" if a == "court_no_appeal" else None)
    ax_a.set_xticks(x, [a.replace("_", "\n") for a in arms])
    ax_a.set_ylim(0.70, 1.01)
    ax_a.set_ylabel("share of disputes ruled for the right side")
    ax_a.legend(fontsize=8, loc="lower left")
    ax_a.grid(axis="y", alpha=0.3)
    ax_a.set_title("ruling accuracy", fontsize=10)

    top = 0.0
    for k, (metric, label) in enumerate((("cost_per_dispute", "fees paid by the loser"),
                                         ("juror_rewards_per_dispute", "rewards paid to coherent jurors"))):
        xs = x + (k - 0.5) * 0.38
        r = [results[metric_name(a, metric)] for a in arms]
        ax_c.bar(xs, [v.mean for v in r], 0.34, color=f"C{k + 4}", alpha=0.8, label=label)
        ax_c.errorbar(xs, [v.mean for v in r], yerr=[ci(v) for v in r], fmt="none", color="k", capsize=3)
        ax_c.plot(xs, [v.theory if v.theory is not None else np.nan for v in r], "D", color="k", ms=4)
        top = max(top, max(v.mean + ci(v) for v in r))
    for i, a in enumerate(arms):
        rr = results.get(metric_name(a, "mean_rounds"))
        if rr is not None:
            ax_c.text(i, top * 1.04, f"{rr.mean:.2f} rounds", ha="center", fontsize=8)
    ax_c.set_ylim(0, top * 1.15)
    ax_c.set_xticks(x, [a.replace("_", "\n") for a in arms])
    ax_c.set_ylabel("tokens per dispute")
    ax_c.legend(fontsize=8, loc="center left")
    ax_c.grid(axis="y", alpha=0.3)
    ax_c.set_title("cost per dispute (◆ theory)", fontsize=10)
    n = max(r.n for r in results.values())
    fig.suptitle(f"Dispute resolution: accuracy and cost (mean, 95 % CI over {n} seeds)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
