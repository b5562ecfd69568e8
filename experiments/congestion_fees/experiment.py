"""Congestion fees: at 10× load, does fast fee adjustment, tipping or a different pool limit change who gets in?

``scenario=congestion_10x`` (150 TPS, a 10× surge to 1,500 TPS offered — above the ≈ 1,033 TPS a 6 s block
carries) is run in six variants that differ in one setting each:

- ``polkadot``: the scenario as it is (``fees.adjustment_variable`` = 0.000075, 90 % of transfers untipped,
  8,192-transaction ready pool);
- ``fast``: W3F's fast multiplier, ``fees.adjustment_variable=0.0033``;
- ``no_tips`` / ``all_tips``: ``load.tip_zero_share`` = 1 / 0 (nobody / everybody tips);
- ``pool_small`` / ``pool_large``: ``pool.ready_count`` = 2,048 / 32,768.

Per variant and seed it measures ``tx_success_rate`` (the KPI), the inclusion latency p95 of included
transactions (``stats.tx_inclusion_p95_s``), the highest fee multiplier of the canonical chain and the
dropped share (rejected + evicted + expired over the settled transactions). The fee multiplier's theory
is ``chain.fees.multiplier_path`` applied to the run's own measured block fullness. See README.md.

The ``full`` size runs the scenario as written (2 h, surge 0:30–1:00); ``quick`` compresses it (25 min,
surge 5:00–15:00), so its expected values differ.

``run(size, seeds, overrides=())``: ``overrides`` are Hydra overrides appended to the base composition
(e.g. ``["chain.slot_s=5"]``) — the way to check that a wrong model fails. The variant's setting, the
size's schedule and the seed are applied on top, so overrides of those keys have no effect.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ainur_sim import compose
from ainur_sim import run as run_model
from ainur_sim.chain.fees import BlockLimits, FeeParams, multiplier_path, transfers_per_block
from ainur_sim.config import Config, SpikeConfig
from ainur_sim.reproduce import Expectation, MetricResult
from ainur_sim.result import RunResult
from ainur_sim.sim import to_config

BASE = ("scenario=congestion_10x", "api.enabled=false")  # the API layer does not feed back into the chain
POLKADOT_V, FAST_V = 0.000075, 0.0033
VARIANTS: dict[str, dict[str, Any]] = {
    "polkadot": {},
    "fast": {"fees.adjustment_variable": FAST_V},
    "no_tips": {"load.tip_zero_share": 1.0},
    "all_tips": {"load.tip_zero_share": 0.0},
    "pool_small": {"pool.ready_count": 2048},
    "pool_large": {"pool.ready_count": 32768},
}
METRICS = ("success_rate", "inclusion_p95_s", "fee_multiplier_max", "dropped_share", "evicted_share")
SERIES_SEED = 0  # the seed whose multiplier path the figure draws


@dataclass(frozen=True)
class Size:
    """The run's schedule: duration and the 10× surge window (``None``: the scenario's own)."""

    duration_s: float | None
    surge: tuple[float, float] | None  # (start, duration), seconds


SIZES: dict[str, Size] = {
    "quick": Size(duration_s=1_500.0, surge=(300.0, 600.0)),
    "full": Size(duration_s=None, surge=None),  # congestion_10x as written: 7,200 s, surge 1,800–3,600 s
}

#: Multiplier paths (time, measured, theory) of SERIES_SEED per variant, filled by ``run`` for ``figure``.
SERIES: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
#: ``nominal_multiplier_max`` per variant (from the config alone), filled by ``run``.
NOMINAL: dict[str, float] = {}


def name(variant: str, metric: str) -> str:
    return f"{variant}_{metric}"


# ---------------------------------------------------------------------------------------------------
# Model runs


def with_values(cfg: Config, values: dict[str, Any]) -> Config:
    """A copy of a typed config with dotted keys set (``{"pool.ready_count": 2048}``); ``run`` validates it."""
    for key, value in values.items():
        head, _, rest = key.partition(".")
        cfg = dataclasses.replace(cfg, **{head: with_values(getattr(cfg, head), {rest: value}) if rest else value})
    return cfg


def base_config(size: Size, overrides: Sequence[str]) -> Config:
    """The composed scenario (Hydra, once per experiment run) with the size's schedule, typed."""
    cfg = to_config(compose([*BASE, *overrides]))
    if size.duration_s is not None:
        cfg = with_values(cfg, {"duration_s": size.duration_s})
    if size.surge is not None:
        (spike,) = cfg.load.spikes
        surge = SpikeConfig(start_s=size.surge[0], duration_s=size.surge[1], factor=spike.factor)
        cfg = with_values(cfg, {"load.spikes": [surge]})
    return cfg


def multiplier_theory(res: RunResult, params: FeeParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical blocks' times, their fee multipliers, and ``multiplier_path`` over their measured fullness."""
    canon = res.blocks[res.blocks["canonical"]].sort_values("number")
    fullness = canon["normal_weight_s"].to_numpy() / BlockLimits().normal_max_weight_s
    path = multiplier_path(float(canon["fee_multiplier"].iloc[0]), fullness, params)[:-1]
    return canon["t_authored"].to_numpy(), canon["fee_multiplier"].to_numpy(), path


def nominal_multiplier_max(cfg: Config) -> float:
    """Closed form of the highest multiplier from the scenario's nominal load, no measurement.

    Blocks before the surge carry ``tps·slot`` transfers, during it as many as fit (``transfers_per_block``);
    each block multiplies by 1 ± v·d + (v·d)²/2 with d = |fullness − target| (TargetedFeeAdjustment). The
    highest value is the start (1) or the end of the surge. It ignores the pool: a backlog drained after
    the surge adds a few full blocks, a ready pool smaller than a block keeps blocks from filling.
    """
    limits, slot = BlockLimits(), cfg.chain.slot_s
    (spike,) = cfg.load.spikes
    cap = transfers_per_block(limits)

    def factor(tps: float) -> float:
        fullness = min(tps * slot, cap) * limits.extrinsic_weight_s("transfer")
        d = fullness / limits.normal_max_weight_s - cfg.fees.target_fullness
        x = cfg.fees.adjustment_variable * abs(d)
        return 1 + x + x * x / 2 if d >= 0 else 1 - x + x * x / 2

    before, during = round(spike.start_s / slot), round(spike.duration_s / slot)
    return max(1.0, factor(cfg.load.tps) ** before * factor(cfg.load.tps * spike.factor) ** during)


def fee_params(cfg: Config) -> FeeParams:
    f = cfg.fees
    return FeeParams(adjustment_variable=f.adjustment_variable, target_fullness=f.target_fullness,
                     min_multiplier=f.min_multiplier)


def measure(res: RunResult, cfg: Config) -> tuple[dict[str, float], float]:
    """The metrics of one run, and ``multiplier_path``'s highest multiplier over the measured fullness."""
    s = res.stats
    dropped = s["tx_rejected"] + s["tx_evicted"] + s["tx_expired"]
    _, measured, theory = multiplier_theory(res, fee_params(cfg))
    return {"success_rate": float(res.kpis["tx_success_rate"]["value"]),
            "inclusion_p95_s": float(s["tx_inclusion_p95_s"]),
            "fee_multiplier_max": float(measured.max()),
            "dropped_share": dropped / s["tx_submitted"],
            "evicted_share": s["tx_evicted"] / dropped if dropped else float("nan")}, float(theory.max())


# ---------------------------------------------------------------------------------------------------
# The experiment interface


def per_seed(size: str, seeds: Sequence[int], overrides: Sequence[str] = ()
             ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Every metric's value for every seed, and the multiplier theory per variant (lists in seed order)."""
    base = base_config(SIZES[size], overrides)
    values: dict[str, list[float]] = defaultdict(list)
    theory: dict[str, list[float]] = defaultdict(list)
    for seed in seeds:
        for variant, changes in VARIANTS.items():
            cfg = with_values(base, {**changes, "seed": seed})
            res = run_model(cfg)
            got, m_theory = measure(res, cfg)
            for metric, value in got.items():
                values[name(variant, metric)].append(value)
            theory[variant].append(m_theory)
            NOMINAL[variant] = nominal_multiplier_max(cfg)
            if seed == SERIES_SEED:
                SERIES[variant] = multiplier_theory(res, fee_params(cfg))
    return dict(values), dict(theory)


def run(size: str, seeds: list[int], overrides: Sequence[str] = ()) -> dict[str, MetricResult]:
    """Mean and 95 % CI over ``seeds`` of every metric; the multiplier's theory from ``multiplier_path``."""
    values, theory = per_seed(size, seeds, overrides)
    out = {}
    for variant in VARIANTS:
        for metric in METRICS:
            key = name(variant, metric)
            th, note = None, ""
            if metric == "fee_multiplier_max":
                th = float(np.mean(theory[variant]))
                note = f"multiplier_path(measured fullness); nominal closed form {NOMINAL[variant]:.6f}"
            out[key] = MetricResult.from_values(values[key], th, note)
    return out


# ---------------------------------------------------------------------------------------------------
# Figure


def figure(results: dict[str, MetricResult], expected: dict[str, Expectation], path: Path) -> None:
    """Top left: the fee multiplier over the run (seed 0), Polkadot's v vs the fast v, with
    ``multiplier_path`` of the measured fullness dashed. Other panels: success rate and inclusion p95
    per variant (mean, 95 % CI, expected ± tolerance as grey bars); the dropped share split into evicted and
    rejected transfers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0, 0]
    for j, variant in enumerate(("polkadot", "fast")):
        if variant in SERIES:
            t, measured, theory = SERIES[variant]
            v = VARIANTS[variant].get("fees.adjustment_variable", POLKADOT_V)
            ax.plot(t / 60, measured, color=f"C{j}", label=f"{variant} (v = {v:g})")
            ax.plot(t / 60, theory, color="k", ls="--", lw=0.8)
    ax.set_xlabel("time (min)")
    ax.set_ylabel("fee multiplier")
    ax.set_title(f"multiplier (seed {SERIES_SEED}); dashed: multiplier_path of the measured fullness", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    panels = (("success_rate", "tx_success_rate", axes[0, 1]), ("inclusion_p95_s", "inclusion p95 (s)", axes[1, 0]))
    variants = list(VARIANTS)
    ax = axes[1, 1]  # dropped share, split into evicted (after admission) and rejected (at submission)
    for i, variant in enumerate(variants):
        d, e = results.get(name(variant, "dropped_share")), results.get(name(variant, "evicted_share"))
        if d is None or e is None:
            continue
        ax.bar(i, d.mean * e.mean, width=0.6, color="C1", label="evicted" if i == 0 else None)
        ax.bar(i, d.mean * (1 - e.mean), bottom=d.mean * e.mean, width=0.6, color="C0",
               label="rejected" if i == 0 else None)
    ax.set_xticks(range(len(variants)), variants, fontsize=8, rotation=20)
    ax.set_ylabel("dropped share of submitted")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    for metric, label, ax in panels:
        for i, variant in enumerate(variants):
            key = name(variant, metric)
            if key in expected and not expected[key].report_only:
                e = expected[key]
                ax.bar(i, 2 * e.tolerance, bottom=e.expected - e.tolerance, width=0.6, color="0.85", zorder=1)
            if key in results:
                r = results[key]
                ax.errorbar(i, r.mean, yerr=r.ci if np.isfinite(r.ci) else 0, fmt="o", color="C0", capsize=4,
                            zorder=2)
        shown = [results[name(v, metric)].mean for v in variants if name(v, metric) in results]
        if shown:  # explicit limits: the bars' sticky edges would defeat margins
            pad = 0.08 * (max(shown) - min(shown)) or 0.01
            ax.set_ylim(min(shown) - pad, max(shown) + pad)
        ax.set_xticks(range(len(variants)), variants, fontsize=8, rotation=20)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    nseeds = max(r.n for r in results.values())
    fig.suptitle(f"Congestion at 10×: fee adjustment, tips and pool limits (mean, 95 % CI over {nseeds} seeds; "
                 "grey: expected ± tolerance)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
