"""Launch readiness: the launch plan's KPI verdict for launch day as written, and why each failing target fails.

Three simulation runs per seed, every value measured from their tables:

- **launch**: ``scenario=launch_day`` (the plan's T-0: genesis, onboarding 00:30, market 01:30, public
  launch 03:30 with the traffic ramp to 07:30, to 24:00) — at ``full`` size exactly as configured; at
  ``quick`` size the same phases, populations and rates on a timeline compressed 24× into one hour
  (``QUICK_DAY``). Every KPI of ``kpis.json`` (value and pass/fail against ``kpi=launch``), and the
  decompositions of the failing ones: finality lag = the voting rule's depth + block-to-round wait +
  GRANDPA round (per finalized block, from ``blocks`` and ``finality_rounds``); sustained TPS against
  the offered load (``chain_series``); the escrow balance against Little's law on the ``tasks`` table.
- **10×**: the plan's "handle 10× launch-day traffic": the launch day's chain with ten times its peak
  offered rate (``load.tps × (1 + daily_amplitude)``), ramped up from 1× over ``tenx_ramp_s`` and held;
  no market. Included TPS once blocks are full (the chain's ceiling), transaction success, API p95,
  finality p95 and storage growth.
- **what-if**: ``finality.before_best=1`` at the launch day's peak load: what finality would be with
  votes one block (instead of two) behind the best block.

``run(size, seeds, overrides=())``: ``overrides`` are extra Hydra overrides applied to every run (the
10× run's rate follows an overridden ``load.tps``; the what-if keeps ``before_best=1``) — the way to check
that a wrong model fails the comparison. See README.md.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ainur_sim import compose
from ainur_sim import run as run_model
from ainur_sim.chain.fees import BlockLimits, max_transfer_tps
from ainur_sim.config import Config, KpiTarget
from ainur_sim.kpi import KPI_NAMES, SUSTAINED_WINDOW_S, describe_target, judge
from ainur_sim.reproduce import Expectation, MetricResult
from ainur_sim.result import RunResult
from ainur_sim.sim import to_config

TOKEN = 10**12
DAY_S = 86_400.0

#: Launch day compressed 24× into one hour (quick size): onboarding at 5 min (over 5 min), market at
#: 15 min, public wave and traffic ramp 25–45 min, daily load peak at 48 min; same populations and rates.
QUICK_DAY = (
    "duration_s=3600", "population.onboarding_s=300", "population.onboarding_spread_s=300",
    "population.market_start_s=900", "population.waves=[{t_s:1500,workers:300,requesters:150,spread_s:1200}]",
    "load.ramp_start_s=1500", "load.ramp_end_s=2700", "load.peak_hour=0.8",
)
#: Companion runs carry no market (the load alone) and a flat daily profile.
NO_MARKET = ("population.n_workers=0", "population.n_requesters=0", "population.waves=[]", "load.daily_amplitude=0")

#: KPIs judged against a target (``bandwidth_gb_per_day`` is only reported by ``kpi=launch``).
JUDGED = tuple(k for k in KPI_NAMES if k != "bandwidth_gb_per_day")


@dataclass(frozen=True)
class Size:
    launch: tuple[str, ...]  # overrides of the launch-day run
    tenx_duration_s: float  # the 10× run: ramp, then hold at 10×
    tenx_ramp_s: float
    whatif_duration_s: float  # the before_best=1 run


SIZES = {
    "quick": Size(launch=QUICK_DAY, tenx_duration_s=600.0, tenx_ramp_s=300.0, whatif_duration_s=300.0),
    "full": Size(launch=(), tenx_duration_s=1_800.0, tenx_ramp_s=600.0, whatif_duration_s=3_600.0),
}


# ---------------------------------------------------------------------------------------------------
# Measurement: the launch-day run


def kpi_value(res: RunResult, name: str) -> float:
    """A KPI's value; NaN if null — except ``daily_tx_value`` on a run shorter than a day (quick), which is
    the payments released during the run at its per-day rate (``stats.settled_value_units`` / duration)."""
    v = res.kpis[name]["value"]
    if v is None and name == "daily_tx_value" and res.duration_s < DAY_S:
        usd = float(res.config["economics"]["token_usd"])
        return res.stats["settled_value_units"] / TOKEN * usd / res.duration_s * DAY_S
    return math.nan if v is None else float(v)


def finality_parts(res: RunResult, before_best: int) -> dict[str, float]:
    """The finality lag of every finalized canonical block ``h`` split into three parts (seconds):

    - ``depth``: ``t_authored(h + before_best) − t_authored(h)`` — GRANDPA votes at most ``before_best``
      blocks behind a voter's best block, so ``h`` cannot be voted on before ``h + before_best`` exists;
    - ``wait``: from block ``h + before_best`` authored to the start of the round that finalized ``h``
      (that block's gossip and import to a supermajority, then the rounds' rhythm);
    - ``round``: the round's prevote and precommit phases (``finality_rounds``: start → complete).

    Returns their means, the lag's p95 (the KPI), the p95 of wait + round, and the residual
    ``p95(lag) − (mean depth + p95(wait + round))`` (≈ 0 when the depth is the same for every block).
    """
    canon = res.blocks.loc[res.blocks["canonical"]].set_index("number").sort_index()
    fin = canon.loc[canon["t_finalized"].notna()]
    h = fin.index.to_numpy()
    authored = canon["t_authored"]
    t_auth = fin["t_authored"].to_numpy()
    t_fin = fin["t_finalized"].to_numpy()
    t_deep = authored.reindex(h + before_best).to_numpy()
    rounds = res.extra_tables["finality_rounds"]
    rounds = rounds.loc[~rounds["stalled"]].drop_duplicates("t_complete").set_index("t_complete")["t_start"]
    t_start = rounds.reindex(t_fin).to_numpy()  # a block is finalized exactly at its round's completion
    ok = np.isfinite(t_deep)  # the last blocks finalized may lack h + before_best only if fewer were authored
    if not np.isfinite(t_start).all():
        raise RuntimeError("a finalized block has no finality round completing at its finality time")
    depth, wait, rnd = (t_deep - t_auth)[ok], (t_start - t_deep)[ok], (t_fin - t_start)[ok]
    tail = float(np.percentile(wait + rnd, 95))
    p95 = float(np.percentile(t_fin - t_auth, 95))
    return {"finality_depth_s": float(depth.mean()), "finality_wait_s": float(wait.mean()),
            "finality_round_s": float(rnd.mean()), "finality_tail_p95_s": tail,
            "finality_p95_residual_s": p95 - (float(depth.mean()) + tail)}


def offered_peak_tps(res: RunResult) -> float:
    """Highest mean rate of *submitted* transactions (background load + market calls) over the same aligned
    10-minute windows as ``tps_sustained`` (``kpi.sustained_tps``), tx/s."""
    series = res.extra_tables["chain_series"]
    n_win = int(res.duration_s // SUSTAINED_WINDOW_S)
    k = (series["t"].to_numpy() // SUSTAINED_WINDOW_S).astype(np.int64)
    keep = k < n_win
    per_window = np.bincount(k[keep], weights=series["offered"].to_numpy()[keep], minlength=n_win)
    return float(per_window.max() / SUSTAINED_WINDOW_S)


def steady_start_s(cfg: Config) -> float:
    """Start of the steady market: when the last onboarding cohort (initial or wave) has finished joining."""
    p = cfg.population
    return max([p.onboarding_s + p.onboarding_spread_s, p.market_start_s]
               + [w.t_s + w.spread_s for w in p.waves])


def escrow_parts(res: RunResult, t0: float) -> dict[str, float]:
    """The escrow balance over the steady window ``[t0, end)`` and Little's law for it.

    A task's budget is escrowed from ``t_posted`` to ``t_cleared``; then its winner's payment (nothing if
    none) until ``t_settled`` (still open: the run's end). Measured: the time mean of ``supply.escrowed``
    over the finalized blocks of the window (one per slot), USD. Little's law: tasks posted per second in
    the window × their mean of ``budget · clearing wait + payment · settlement wait`` (token·s), USD.
    """
    usd = float(res.config["economics"]["token_usd"])
    end = res.duration_s
    canon = res.blocks.loc[res.blocks["canonical"]].set_index("number")["t_finalized"]
    supply = res.supply
    t_exec = canon.reindex(supply["block"]).to_numpy()
    escrow_mean = float(supply["escrowed"].to_numpy()[t_exec >= t0].mean()) / TOKEN * usd
    t = res.tasks
    posted = t["t_posted"].to_numpy()
    cleared = t["t_cleared"].fillna(end).to_numpy()
    settled = t["t_settled"].fillna(end).to_numpy()
    budget = t["budget"].to_numpy(np.float64) / TOKEN
    payment = np.where(t["winner"].to_numpy() >= 0, t["payment"].to_numpy(np.float64), 0.0) / TOKEN
    mine = posted >= t0
    rate = mine.sum() / (end - t0)
    token_s = (budget * (cleared - posted) + payment * (settled - cleared))[mine]
    little = rate * float(token_s.mean()) * usd
    tvl = kpi_value(res, "tvl_escrow")
    return {"escrow_tasks_per_h": rate * 3600.0, "escrow_token_s_per_task": float(token_s.mean()),
            "escrow_little_usd": little, "escrow_mean_usd": escrow_mean,
            "escrow_little_ratio": little / escrow_mean, "tvl_peak_to_mean": tvl / escrow_mean}


def launch_metrics(res: RunResult, cfg: Config) -> dict[str, float]:
    """Every KPI's value (``kpi_*``) and verdict (``pass_*``: 1 pass, 0 fail) and the decompositions."""
    out: dict[str, float] = {}
    for name in KPI_NAMES:
        out[f"kpi_{name}"] = kpi_value(res, name)
    for name in JUDGED:
        verdict = judge(out[f"kpi_{name}"], cfg.kpi.targets.get(name))
        out[f"pass_{name}"] = math.nan if verdict is None else float(verdict)
    out |= finality_parts(res, cfg.finality.before_best)
    out["tps_offered_peak"] = offered_peak_tps(res)
    out["tps_carried_share"] = out["kpi_tps_sustained"] / out["tps_offered_peak"]
    out |= escrow_parts(res, steady_start_s(cfg))
    out["tvl_shortfall_x"] = cfg.kpi.targets["tvl_escrow"].value / out["kpi_tvl_escrow"]
    return out


# ---------------------------------------------------------------------------------------------------
# Measurement: the 10× run and the what-if


def peak_offered_rate(cfg: Config) -> float:
    """The launch day's configured peak offered rate of background transactions, tx/s."""
    return cfg.load.tps * (1.0 + cfg.load.daily_amplitude)


def companion(launch: Config, *, duration_s: float, tps: float, ramp_s: float, api: bool,
              before_best: int) -> Config:
    """A run on the launch day's chain without the market: ``load.tps=tps`` flat (``daily_amplitude=0``),
    ramped linearly from 10 % over ``[0, ramp_s]`` when ``ramp_s > 0``; ``population.n_workers=0
    n_requesters=0 waves=[]``. Built from the typed launch config (same as composing those overrides on
    top of the launch run's, without a second Hydra compose)."""
    load = dataclasses.replace(launch.load, tps=tps, daily_amplitude=0.0, spikes=[], ramp_start_s=0.0,
                               ramp_end_s=ramp_s, ramp_from=0.1 if ramp_s > 0 else 1.0, ramp_to=1.0)
    population = dataclasses.replace(launch.population, n_workers=0, n_requesters=0, waves=[])
    return to_config(dataclasses.replace(
        launch, duration_s=duration_s, load=load, population=population,
        api=dataclasses.replace(launch.api, enabled=api),
        finality=dataclasses.replace(launch.finality, before_best=before_best)))


def tenx_config(launch: Config, size: Size) -> Config:
    """The 10× run: ten times the launch day's peak rate (1,560 tx/s), ramped up from 1× over
    ``tenx_ramp_s`` and held to ``tenx_duration_s``; API on."""
    return companion(launch, duration_s=size.tenx_duration_s, tps=10 * peak_offered_rate(launch),
                     ramp_s=size.tenx_ramp_s, api=launch.api.enabled, before_best=launch.finality.before_best)


def whatif_config(launch: Config, size: Size) -> Config:
    """The what-if: the launch day's peak rate (156 tx/s) flat, no API, GRANDPA voting one block behind."""
    return companion(launch, duration_s=size.whatif_duration_s, tps=peak_offered_rate(launch), ramp_s=0.0,
                     api=False, before_best=1)


def included_tps(res: RunResult, t0: float) -> float:
    """Transactions included in canonical blocks authored in ``[t0, end)`` per second (finalized or not):
    once the pool is full this is the chain's ceiling."""
    b = res.blocks.loc[res.blocks["canonical"]]
    return float(b.loc[b["t_authored"] >= t0, "n_tx"].sum()) / (res.duration_s - t0)


def tenx_metrics(res: RunResult, size: Size, launch_peak: float) -> dict[str, float]:
    """The 10× run's ceiling (after the ramp), headroom over the launch day's measured peak, its KPIs, and
    how many of the KPIs it measures (the chain's and the API's; no market) miss their target."""
    cap = included_tps(res, size.tenx_ramp_s)
    failing = sum(row["pass"] is False for row in res.kpis.values())
    return {"tenx_kpis_failing": float(failing), "tenx_included_tps": cap, "tenx_headroom_x": cap / launch_peak,
            "tenx_tx_success_rate": kpi_value(res, "tx_success_rate"),
            "tenx_api_p95_ms": kpi_value(res, "api_p95_ms"),
            "tenx_finality_p95_s": kpi_value(res, "finality_p95_s"),
            "tenx_storage_gb_per_year": kpi_value(res, "storage_growth_gb_per_year")}


# ---------------------------------------------------------------------------------------------------
# Runs


@functools.cache
def launch_config(size: Size, overrides: tuple[str, ...] = ()) -> Config:
    """The typed launch-day config of ``size`` with ``overrides`` (seed 0; seeds are set on copies).
    Cached: one Hydra compose per process and arguments (≈ 0.5 s each)."""
    return to_config(compose(["scenario=launch_day", *size.launch, *overrides]))


def configs(size: Size, overrides: Sequence[str]) -> tuple[Config, Config, Config]:
    """The typed launch, 10× and what-if configs (seed 0; seeds are set on copies)."""
    launch = launch_config(size, tuple(overrides))
    return launch, tenx_config(launch, size), whatif_config(launch, size)


def per_seed(size: str, seeds: Sequence[int], overrides: Sequence[str] = ()) -> dict[str, list[float]]:
    """Every metric's value for every seed (lists in seed order)."""
    sz = SIZES[size]
    launch, tenx, whatif = configs(sz, overrides)
    values: dict[str, list[float]] = defaultdict(list)
    for seed in seeds:
        m = launch_metrics(run_model(dataclasses.replace(launch, seed=seed)), launch)
        m |= tenx_metrics(run_model(dataclasses.replace(tenx, seed=seed)), sz, m["tps_offered_peak"])
        m["whatif_before_best1_finality_p95_s"] = kpi_value(
            run_model(dataclasses.replace(whatif, seed=seed)), "finality_p95_s")
        for name, v in m.items():
            values[name].append(v)
    return dict(values)


def theory(cfg: Config) -> dict[str, float]:
    """Closed forms for the theory column: the voting depth, the offered peak, the weight ceiling."""
    ceiling = max_transfer_tps(BlockLimits(), cfg.chain.slot_s)
    peak = peak_offered_rate(cfg)
    return {"finality_depth_s": cfg.finality.before_best * cfg.chain.slot_s, "finality_p95_residual_s": 0.0,
            "tps_offered_peak": peak, "tenx_included_tps": ceiling, "tenx_headroom_x": ceiling / peak,
            "escrow_little_ratio": 1.0}


NOTES = {
    "kpi_tps_sustained": "offered peak (config) 156 + market calls",
    "tenx_tx_success_rate": "hold phase alone: ceiling / 10× rate = 0.662",
}


def summarize(values: Sequence[float], theory_value: float | None, note: str) -> MetricResult:
    """Mean and 95 % CI of per-seed values; NaN (and so a FAIL) if any seed's value is null/NaN — rather
    than ``mean_ci``'s dropping it, which would judge a KPI that some run could not measure on fewer seeds."""
    if not all(math.isfinite(v) for v in values):
        return MetricResult(math.nan, math.nan, len(values), theory_value, "null in some seed")
    return MetricResult.from_values(values, theory_value, note)


def run(size: str, seeds: list[int], overrides: Sequence[str] = ()) -> dict[str, MetricResult]:
    """Mean and 95 % CI over ``seeds`` of every metric, with its theory value where there is one."""
    th = theory(configs(SIZES[size], overrides)[0])
    return {name: summarize(vals, th.get(name), NOTES.get(name, ""))
            for name, vals in per_seed(size, seeds, overrides).items()}


# ---------------------------------------------------------------------------------------------------
# Figure


def target_margin(value: float, target: KpiTarget) -> float:
    """How far ``value`` is inside (> 1) or outside (< 1) ``target``, as a ratio: value / bound for a floor
    (``>``, ``>=``), bound / value for a ceiling (``<``, ``<=``), and for a band the nearer bound's."""
    if target.op == "between":
        return min(target.hi / value, value / target.lo)
    return value / target.value if target.op in (">", ">=") else target.value / value


def figure(results: dict[str, MetricResult], expected: dict[str, Expectation], path: Path) -> None:
    """Four panels: every KPI against its target (value / target, log scale, coloured by the share of seeds
    passing); the finality lag's parts against the 12 s target; offered, carried and possible throughput
    against the 1,000 TPS target; the escrow balance (mean, Little's law, peak) against the TVL target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = launch_config(SIZES["quick"])  # targets and load rate are the same at every size (cached at quick)
    targets = cfg.kpi.targets
    fig, axes = plt.subplots(2, 2, figsize=(15, 10))

    ax = axes[0, 0]
    names = [k for k in JUDGED if f"kpi_{k}" in results]
    margins, colors = [], []
    for k in names:
        margins.append(target_margin(results[f"kpi_{k}"].mean, targets[k]))
        share = results[f"pass_{k}"].mean
        colors.append("tab:green" if share == 1 else ("tab:red" if share == 0 else "tab:orange"))
    y = np.arange(len(names))
    ax.barh(y, margins, color=colors, alpha=0.8)
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [f"{k} ({describe_target(targets[k])})" for k in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("margin (log): value / target for a floor, target / value for a ceiling; > 1 meets it\n"
                  "green: every seed passes, red: none, orange: some", fontsize=9)
    ax.set_title("Launch-day KPI verdict (mean over seeds)", fontsize=10)

    ax = axes[0, 1]
    parts = [("depth (2 blocks: voting rule)", "finality_depth_s"), ("block → round", "finality_wait_s"),
             ("GRANDPA round", "finality_round_s")]
    left = 0.0
    for i, (label, key) in enumerate(parts):
        v = results[key].mean
        ax.barh(1, v, left=left, color=f"C{i}", label=f"{label}: {v:.2f} s")
        left += v
    ax.barh(0, results["finality_depth_s"].mean, color="C0")
    ax.barh(0, results["finality_tail_p95_s"].mean, left=results["finality_depth_s"].mean, color="C3",
            label=f"p95 of block → round + round: {results['finality_tail_p95_s'].mean:.2f} s")
    ax.barh(2, results["whatif_before_best1_finality_p95_s"].mean, color="C4",
            label=f"what-if before_best=1: p95 {results['whatif_before_best1_finality_p95_s'].mean:.2f} s")
    ax.barh(3, results["tenx_finality_p95_s"].mean, color="C5",
            label=f"at 10× traffic: p95 {results['tenx_finality_p95_s'].mean:.2f} s")
    ax.axvline(12.0, color="r", ls="--", label="target < 12 s")
    ax.set_yticks([0, 1, 2, 3], ["p95 (KPI)", "mean", "what-if", "10×"])
    ax.set_xlabel("finality lag, s")
    ax.set_xlim(0, 15)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2)
    ax.set_title("Finality lag = voting depth + block → round + round", fontsize=10)

    ax = axes[1, 0]
    bars = [("offered peak\n(launch day)", results["tps_offered_peak"].mean),
            ("sustained\n(KPI)", results["kpi_tps_sustained"].mean),
            ("ceiling\n(10× run)", results["tenx_included_tps"].mean),
            ("10× offered", 10 * peak_offered_rate(cfg))]
    ax.bar(range(len(bars)), [b[1] for b in bars], color=["C0", "C0", "C2", "C3"], alpha=0.8)
    for i, (_, v) in enumerate(bars):
        ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=9)
    ax.axhline(1000.0, color="r", ls="--", label="target ≥ 1,000 TPS")
    ax.set_xticks(range(len(bars)), [b[0] for b in bars])
    ax.set_ylabel("tx/s")
    ax.legend(fontsize=8)
    ax.set_title(f"Throughput: demand vs capacity (10× run: tx success {results['tenx_tx_success_rate'].mean:.3f})",
                 fontsize=10)

    ax = axes[1, 1]
    bars = [("mean escrow\n(steady)", results["escrow_mean_usd"].mean),
            ("Little's law", results["escrow_little_usd"].mean),
            ("peak (KPI)", results["kpi_tvl_escrow"].mean), ("target", targets["tvl_escrow"].value)]
    ax.bar(range(len(bars)), [b[1] for b in bars], color=["C0", "C1", "C2", "0.6"], alpha=0.8)
    for i, (_, v) in enumerate(bars):
        ax.text(i, v, f"${v:,.0f}", ha="center", va="bottom", fontsize=9)
    ax.set_yscale("log")
    ax.set_xticks(range(len(bars)), [b[0] for b in bars])
    ax.set_ylabel("USD")
    ax.set_title(f"Escrow (TVL): {results['escrow_tasks_per_h'].mean:.0f} tasks/h × "
                 f"{results['escrow_token_s_per_task'].mean:,.0f} token·s each; "
                 f"{results['tvl_shortfall_x'].mean:.0f}× short", fontsize=10)

    n = max(r.n for r in results.values())
    fig.suptitle(f"Launch readiness: launch_day as written (mean over {n} seeds)", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
