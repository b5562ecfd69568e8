"""Validation: the model against closed forms and published figures, every value measured from runs.

Each metric is measured once per seed from a simulation run (``run(compose([...]))``, or the queue and
auction kernels on seeded draws) and summarised over seeds; the closed forms only fill the *theory*
column. See README.md for the question, the method and the tolerances.

``run(size, seeds, overrides=())``: ``overrides`` are extra Hydra overrides appended to every model run
(e.g. ``["chain.babe_c=0.3"]``) — the way to check that a wrong model fails the comparison.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ainur_sim import compose
from ainur_sim import run as run_model
from ainur_sim.chain.api import mmc_mean_wait, simulate_queue
from ainur_sim.chain.consensus import aura_mean_interval, babe_empty_slot_share, babe_primary_count_shares
from ainur_sim.chain.fees import SUBSTRATE_DEFAULT_LIMITS, BlockLimits, FeeParams, max_transfer_tps
from ainur_sim.chain.finality import supermajority
from ainur_sim.kpi import canonical_intervals, finality_lags
from ainur_sim.market.mechanisms import second_price
from ainur_sim.reproduce import Expectation, MetricResult
from ainur_sim.result import RunResult

SLOT_S = 6.0
BABE_C = 0.25
BABE_N = 20                      # equal-stake validators for the primary-count shares
EMPTY_N, EMPTY_K = 9, 3          # BABE with a third offline
AURA_N, AURA_K = 10, 3           # Aura with 3 of 10 offline
GRANDPA_CASES = ((3, 1), (4, 1))  # (validators, offline): 3/1 stalls, 4/1 finalizes
GRANDPA_SETTLE_S = 60.0          # skip the rounds in flight when the outage starts
OVERLOAD = ("load.tps=2000", "duration_s=3600", "api.enabled=false")
OVERLOAD_BLOCKS = 600            # slots in the overloaded hour
QUEUE_SERVERS, QUEUE_RHO, QUEUE_MU = 4, 0.85, 200.0  # M/M/4 at 85 %, 5 ms mean service
AUCTION_BIDDERS = 5
AUCTION_BATCH = 100              # independent single-task auctions per second_price call
POLKADOT_BLOCK_TIME_S = 6.04875  # research/substrate.md §1.1 (11.7 min/day drift)
OFFLINE_1PCT = (100, 1)          # validators, offline: Polkadot-like share of missed slots


@dataclass(frozen=True)
class Size:
    """Sample sizes per seed."""

    babe_slots: int        # slots of the 20-validator BABE run
    empty_slots: int       # slots of the BABE run with a third offline
    aura_slots: int        # slots of the Aura run
    grandpa_outage_s: float  # outage length in the GRANDPA threshold runs
    healthy_s: float       # length of the healthy global-network run (finality lag, block time)
    offline_1pct_slots: int  # slots of the 100-validator run with 1 offline (reported only)
    queue_requests: int    # requests through the M/M/c queue
    auction_draws: int     # single-task auctions


SIZES: dict[str, Size] = {
    "quick": Size(babe_slots=5_000, empty_slots=5_000, aura_slots=2_000, grandpa_outage_s=600.0,
                  healthy_s=1_800.0, offline_1pct_slots=2_000, queue_requests=500_000, auction_draws=4_000),
    "full": Size(babe_slots=20_000, empty_slots=20_000, aura_slots=6_000, grandpa_outage_s=1_200.0,
                 healthy_s=3_600.0, offline_1pct_slots=10_000, queue_requests=2_000_000, auction_draws=20_000),
}


# ---------------------------------------------------------------------------------------------------
# Theory (closed forms; they fill the theory column only)


def theory() -> dict[str, float]:
    """The closed-form value of each metric that has one."""
    p0, p1, p2 = babe_primary_count_shares(BABE_N, BABE_C)
    v, d = FeeParams().adjustment_variable, 1.0 - FeeParams().target_fullness
    lam = QUEUE_RHO * QUEUE_SERVERS * QUEUE_MU
    n100, k100 = OFFLINE_1PCT
    return {
        "babe_p0_primaries": p0,
        "babe_p1_primary": p1,
        "babe_p2plus_primaries": p2,
        "babe_empty_share_third_offline": babe_empty_slot_share(EMPTY_N, EMPTY_K, BABE_C),
        "aura_mean_interval_s": aura_mean_interval(SLOT_S, AURA_N, AURA_K),
        **{_grandpa_name(n, k): float(n - k >= supermajority(n)) for n, k in GRANDPA_CASES},
        "fee_multiplier_after_full_hour": (1 + v * d + (v * d) ** 2 / 2) ** OVERLOAD_BLOCKS,
        "tps_ceiling": max_transfer_tps(BlockLimits(), SLOT_S),
        "erlang_c_mean_wait_ms": 1e3 * mmc_mean_wait(QUEUE_SERVERS, lam, QUEUE_MU),
        "second_price_mean_payment": 2 / (AUCTION_BIDDERS + 1),
        "second_price_mean_winner_cost": 1 / (AUCTION_BIDDERS + 1),
        "block_time_1pct_offline_s": SLOT_S / (1 - babe_empty_slot_share(n100, k100, BABE_C)),
    }


NOTES = {
    "tps_ceiling": f"Substrate-default weights: {max_transfer_tps(SUBSTRATE_DEFAULT_LIMITS, SLOT_S):.1f}",
    "finality_median_lag_s": "research band 12–18 s",
    "block_time_all_online_s": f"Polkadot measured {POLKADOT_BLOCK_TIME_S}",
    "block_time_1pct_offline_s": f"Polkadot measured {POLKADOT_BLOCK_TIME_S}",
}


def _grandpa_name(n: int, k: int) -> str:
    return f"grandpa_n{n}_k{k}_finalized_share"


# ---------------------------------------------------------------------------------------------------
# Measurements: each returns {metric: value} for one seed


def _model(seed: int, overrides: Sequence[str], extra: Sequence[str]) -> RunResult:
    """One baseline-scenario run with ``overrides`` then the caller's ``extra`` overrides."""
    return run_model(compose(["scenario=baseline", f"seed={seed}", *overrides, *extra]))


def _quiet(n: int, slots: int) -> list[str]:
    """Leader-election runs: no finality, no load, no API (they do not affect who authors a slot)."""
    return [f"chain.n_validators={n}", f"duration_s={slots * SLOT_S:g}", "finality.enabled=false",
            "load.tps=0", "api.enabled=false"]


def _offline_all_run(k: int, slots: int) -> list[str]:
    return [f"faults.offline_validators={k}", "faults.outage_start_s=0",
            f"faults.outage_duration_s={slots * SLOT_S:g}"]


def babe_shares(seed: int, size: Size, extra: Sequence[str]) -> dict[str, float]:
    """Shares of slots with 0, 1 and ≥ 2 primary blocks, 20 equal validators all online."""
    res = _model(seed, _quiet(BABE_N, size.babe_slots), extra)
    b = res.blocks
    primaries = np.bincount(b.loc[b["primary"], "slot"].to_numpy(), minlength=res.stats["slots"])
    return {"babe_p0_primaries": float(np.mean(primaries == 0)),
            "babe_p1_primary": float(np.mean(primaries == 1)),
            "babe_p2plus_primaries": float(np.mean(primaries >= 2))}


def babe_empty(seed: int, size: Size, extra: Sequence[str]) -> dict[str, float]:
    """Share of slots without any authored block, a third of the validators offline all run."""
    res = _model(seed, _quiet(EMPTY_N, size.empty_slots) + _offline_all_run(EMPTY_K, size.empty_slots), extra)
    return {"babe_empty_share_third_offline": 1.0 - res.blocks["slot"].nunique() / res.stats["slots"]}


def aura_interval(seed: int, size: Size, extra: Sequence[str]) -> dict[str, float]:
    """Mean interval between canonical Aura blocks, seconds, with AURA_K of AURA_N offline all run."""
    res = _model(seed, [*_quiet(AURA_N, size.aura_slots), "chain.consensus=aura",
                        *_offline_all_run(AURA_K, size.aura_slots)], extra)
    return {"aura_mean_interval_s": float(canonical_intervals(res.blocks).mean())}


def _height_at(t: float, times: pd.Series, numbers: pd.Series) -> int:
    """Highest block number whose event time (authored/finalized) is ≤ t; 0 if none."""
    hit = numbers[times <= t]
    return int(hit.max()) if len(hit) else 0


def finalized_share(blocks: pd.DataFrame, t0: float, t1: float) -> float:
    """Finalized-height gain over canonical-height gain between t0 and t1 (1 = finality keeps up, 0 = stall)."""
    canon = blocks[blocks["canonical"]]
    grown = _height_at(t1, canon["t_authored"], canon["number"]) - _height_at(t0, canon["t_authored"],
                                                                              canon["number"])
    fin = blocks[blocks["t_finalized"].notna()]
    finalized = _height_at(t1, fin["t_finalized"], fin["number"]) - _height_at(t0, fin["t_finalized"],
                                                                               fin["number"])
    return finalized / grown if grown > 0 else float("nan")


def grandpa_threshold(seed: int, size: Size, extra: Sequence[str]) -> dict[str, float]:
    """For each (n, k): share of the outage's new blocks GRANDPA finalized during the outage."""
    start, dur = 300.0, size.grandpa_outage_s
    out = {}
    for n, k in GRANDPA_CASES:
        res = _model(seed, [f"chain.n_validators={n}", f"duration_s={start + dur + 300:g}", "load.tps=0",
                            "api.enabled=false", f"faults.offline_validators={k}",
                            f"faults.outage_start_s={start:g}", f"faults.outage_duration_s={dur:g}"], extra)
        out[_grandpa_name(n, k)] = finalized_share(res.blocks, start + GRANDPA_SETTLE_S, start + dur)
    return out


def healthy(seed: int, size: Size, extra: Sequence[str]) -> dict[str, float]:
    """Median finality lag and mean block time of the baseline: 10 validators worldwide, 100 TPS."""
    res = _model(seed, [f"duration_s={size.healthy_s:g}", "api.enabled=false"], extra)
    return {"finality_median_lag_s": float(np.median(finality_lags(res.blocks))),
            "block_time_all_online_s": float(canonical_intervals(res.blocks).mean())}


def offline_1pct(seed: int, size: Size, extra: Sequence[str]) -> dict[str, float]:
    """Mean block time with 1 of 100 validators offline (a Polkadot-like share of missed slots)."""
    n, k = OFFLINE_1PCT
    res = _model(seed, _quiet(n, size.offline_1pct_slots) + _offline_all_run(k, size.offline_1pct_slots), extra)
    return {"block_time_1pct_offline_s": float(canonical_intervals(res.blocks).mean())}


def overload(seed: int, size: Size, extra: Sequence[str]) -> dict[str, float]:
    """One hour at 2,000 TPS offered: the last canonical block's fee multiplier and ``tps_sustained``."""
    res = _model(seed, list(OVERLOAD), extra)
    canon = res.blocks[res.blocks["canonical"]].sort_values("number")
    return {"fee_multiplier_after_full_hour": float(canon["fee_multiplier"].iloc[-1]),
            "tps_ceiling": float(res.kpis["tps_sustained"]["value"])}


def erlang_queue(seed: int, size: Size, extra: Sequence[str]) -> dict[str, float]:
    """Mean queue wait (ms) of ``simulate_queue`` with Poisson arrivals and exponential service (M/M/c)."""
    rng = np.random.default_rng([seed, 1])
    lam = QUEUE_RHO * QUEUE_SERVERS * QUEUE_MU
    n = size.queue_requests
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    services = rng.exponential(1 / QUEUE_MU, n)
    wait = simulate_queue(arrivals, services, QUEUE_SERVERS).wait_s
    return {"erlang_c_mean_wait_ms": 1e3 * float(wait[n // 50:].mean())}  # drop the start from empty


def block_diagonal_costs(draws: np.ndarray) -> np.ndarray:
    """Costs of independent single-task auctions in one matrix: auction j's bidders bid only on task j."""
    n_auctions, n_bidders = draws.shape
    costs = np.full((n_auctions * n_bidders, n_auctions), np.inf)
    costs[np.arange(n_auctions * n_bidders), np.repeat(np.arange(n_auctions), n_bidders)] = draws.ravel()
    return costs


def auctions(seed: int, size: Size, extra: Sequence[str]) -> dict[str, float]:
    """Mean payment and winner cost of ``second_price`` single-task auctions, U[0, 1] costs, value 1."""
    rng = np.random.default_rng([seed, 2])
    payments, winner_costs = [], []
    for _ in range(size.auction_draws // AUCTION_BATCH):
        costs = block_diagonal_costs(rng.uniform(0.0, 1.0, (AUCTION_BATCH, AUCTION_BIDDERS)))
        out = second_price(1.0, costs)
        winners = out.agent_of_task
        payments.append(out.payment[winners])
        winner_costs.append(costs[winners, np.arange(AUCTION_BATCH)])
    return {"second_price_mean_payment": float(np.concatenate(payments).mean()),
            "second_price_mean_winner_cost": float(np.concatenate(winner_costs).mean())}


MEASUREMENTS: tuple[Callable[[int, Size, Sequence[str]], dict[str, float]], ...] = (
    babe_shares, babe_empty, aura_interval, grandpa_threshold, healthy, overload, erlang_queue, auctions,
    offline_1pct,
)


# ---------------------------------------------------------------------------------------------------
# The experiment interface


def per_seed(size: str, seeds: Sequence[int], overrides: Sequence[str] = ()) -> dict[str, list[float]]:
    """Every metric's value for every seed (lists in seed order)."""
    params = SIZES[size]
    values: dict[str, list[float]] = defaultdict(list)
    for seed in seeds:
        for measure in MEASUREMENTS:
            for name, value in measure(seed, params, overrides).items():
                values[name].append(value)
    return dict(values)


def run(size: str, seeds: list[int], overrides: Sequence[str] = ()) -> dict[str, MetricResult]:
    """Mean and 95 % CI over ``seeds`` of every metric, with its theory value and note."""
    th = theory()
    return {name: MetricResult.from_values(vals, th.get(name), NOTES.get(name, ""))
            for name, vals in per_seed(size, seeds, overrides).items()}


# ---------------------------------------------------------------------------------------------------
# Figure


DEVIATION_LIMIT = 3.0  # right panel: deviations beyond ± this many tolerances are drawn at the edge


def figure(results: dict[str, MetricResult], expected: dict[str, Expectation], path: Path) -> None:
    """Two panels over the metrics: model / reference with 95 % CIs, and (model − expected) / tolerance.

    Left: the measured mean over its closed form (dots) or, without one, over the published figure
    (squares: the 12–18 s band's centre, Polkadot's 6.04875 s); error bars the 95 % CI over seeds, grey
    bars the tolerance. Right: every judged metric's deviation in units of its tolerance; the shaded band
    [−1, 1] is the pass region.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in results if n in expected][::-1]
    fig, (ax_t, ax_d) = plt.subplots(1, 2, sharey=True, figsize=(11, 0.36 * len(names) + 1.6))
    for i, name in enumerate(names):
        r, e = results[name], expected[name]
        ci = r.ci if np.isfinite(r.ci) else 0.0
        ref, marker = (r.theory, "o") if r.theory else (e.expected, "s")
        if ref:
            if not e.report_only:
                ax_t.plot([(e.expected - e.tolerance) / ref, (e.expected + e.tolerance) / ref], [i, i],
                          color="0.8", lw=6, solid_capstyle="butt", zorder=1)
            ax_t.errorbar(r.mean / ref, i, xerr=ci / abs(ref), fmt=marker, color="C0", capsize=3, zorder=2)
        if not e.report_only and e.tolerance > 0:
            dev = (r.mean - e.expected) / e.tolerance
            shown = float(np.clip(dev, -DEVIATION_LIMIT, DEVIATION_LIMIT))
            clipped = shown != dev
            ax_d.errorbar(shown, i, xerr=0.0 if clipped else ci / e.tolerance,
                          fmt=(">" if dev > 0 else "<") if clipped else "o",
                          color="C2" if abs(dev) <= 1 else "C3", capsize=3)
    ax_t.axvline(1.0, color="0.5", lw=1)
    ax_t.set_yticks(np.arange(len(names)), names, fontsize=8)
    ax_t.set_xlabel("model / theory (●) or published figure (■); grey: tolerance")
    ax_d.axvspan(-1, 1, color="C2", alpha=0.12)
    ax_d.axvline(0.0, color="0.5", lw=1)
    ax_d.set_xlim(-DEVIATION_LIMIT - 0.2, DEVIATION_LIMIT + 0.2)
    ax_d.set_xlabel("(model − expected) / tolerance; shaded = pass")
    n = max(r.n for r in results.values())
    fig.suptitle(f"Validation: model vs closed forms and published figures (mean, 95 % CI over {n} seeds)",
                 fontsize=10)
    for ax in (ax_t, ax_d):
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
