"""Launch KPIs: their names, how each is measured from a run's tables, and the verdict against targets.

A KPI that a run cannot measure (its subsystem is not modelled, or the run is too short) is reported as
``value: None, pass: None`` with a ``reason`` — never a made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ainur_sim.config import KpiTarget

if TYPE_CHECKING:
    from ainur_sim.chain.txflow import TransactionFlow
    from ainur_sim.config import Config

TOKEN = 10**12
SUSTAINED_WINDOW_S = 600.0

#: Every KPI of the contract, in report order, with its unit.
KPI_UNITS: dict[str, str] = {
    "block_time_mean_s": "s",
    "block_time_p99_s": "s",
    "finality_p95_s": "s",
    "tps_sustained": "tx/s",
    "tx_success_rate": "share",
    "api_p50_ms": "ms",
    "api_p95_ms": "ms",
    "api_p99_ms": "ms",
    "uptime": "share",
    "task_completion_rate": "share",
    "task_success_rate": "share",
    "agents_registered": "agents",
    "tvl_escrow": "USD",
    "daily_tx_value": "USD/day",
    "reputation_staked": "USD",
    "fee_revenue_vs_opex": "ratio",
    "storage_growth_gb_per_year": "GB/year",
    "bandwidth_gb_per_day": "GB/day",
}

KPI_NAMES: tuple[str, ...] = tuple(KPI_UNITS)


def judge(value: float | None, target: KpiTarget | None) -> bool | None:
    """Whether ``value`` meets ``target``; None if either is missing or the target only reports."""
    if value is None or target is None or target.op == "none" or not math.isfinite(value):
        return None
    op = target.op
    if op == "between":
        return bool(target.lo <= value <= target.hi)
    t = target.value
    return bool({"<": value < t, "<=": value <= t, ">": value > t, ">=": value >= t}[op])


def describe_target(target: KpiTarget | None) -> str | None:
    """Human form of a target, e.g. ``"< 12"`` or ``"5.5..6.5"``; None when the KPI is only reported."""
    if target is None or target.op == "none":
        return None
    if target.op == "between":
        return f"{target.lo:g}..{target.hi:g}"
    return f"{target.op} {target.value:g}"


def canonical_intervals(blocks: pd.DataFrame) -> np.ndarray:
    """Seconds between consecutive canonical blocks (authoring times along the canonical chain)."""
    canon = blocks.loc[blocks["canonical"]].sort_values("number")
    return np.diff(canon["t_authored"].to_numpy())


def block_kpis(blocks: pd.DataFrame) -> tuple[dict[str, float | None], dict[str, str]]:
    """Block-time KPIs from the blocks table; (values, reasons for nulls)."""
    iv = canonical_intervals(blocks)
    if iv.size < 2:
        reason = "fewer than 3 canonical blocks"
        return {"block_time_mean_s": None, "block_time_p99_s": None}, {
            "block_time_mean_s": reason, "block_time_p99_s": reason}
    return {"block_time_mean_s": float(iv.mean()), "block_time_p99_s": float(np.percentile(iv, 99))}, {}


def finality_lags(blocks: pd.DataFrame) -> np.ndarray:
    """Seconds from authoring to finality of every finalized canonical block."""
    fin = blocks.loc[blocks["canonical"] & blocks["t_finalized"].notna()]
    return (fin["t_finalized"] - fin["t_authored"]).to_numpy()


def finality_kpis(blocks: pd.DataFrame, *, enabled: bool) -> tuple[dict[str, float | None], dict[str, str]]:
    """``finality_p95_s``: 95th percentile of block finality lag (authored → finalized), canonical blocks."""
    if not enabled:
        return {"finality_p95_s": None}, {"finality_p95_s": "finality disabled (finality.enabled=false)"}
    lags = finality_lags(blocks)
    if lags.size < 20:
        return {"finality_p95_s": None}, {"finality_p95_s": f"only {lags.size} blocks finalized (< 20)"}
    return {"finality_p95_s": float(np.percentile(lags, 95))}, {}


def uptime(blocks: pd.DataFrame, duration_s: float, *, max_block_gap_s: float, max_finality_lag_s: float | None,
           step_s: float = 1.0) -> float:
    """Share of the run during which the chain is up.

    Up at time ``t`` means: the newest canonical block authored by ``t`` is at most ``max_block_gap_s``
    old (blocks are being produced) and, when finality is modelled, the newest block finalized by ``t`` was
    authored at most ``max_finality_lag_s`` before ``t`` (transactions reach finality). Evaluated on a grid
    of ``step_s`` seconds, from the first moment the criteria could hold (``max(gap, lag)`` after genesis).
    """
    canon = blocks.loc[blocks["canonical"]].sort_values("number")
    warmup = max(max_block_gap_s, max_finality_lag_s or 0.0)
    grid = np.arange(warmup, duration_s, step_s)
    if grid.size == 0:
        return float("nan")
    t_auth = canon["t_authored"].to_numpy()
    i = np.searchsorted(t_auth, grid, side="right") - 1
    last_block = np.where(i >= 0, t_auth[np.maximum(i, 0)], 0.0)
    up = grid - last_block <= max_block_gap_s
    if max_finality_lag_s is not None:
        fin = canon.loc[canon["t_finalized"].notna()]
        t_fin = fin["t_finalized"].to_numpy()
        j = np.searchsorted(t_fin, grid, side="right") - 1
        fin_auth = np.where(j >= 0, fin["t_authored"].to_numpy()[np.maximum(j, 0)], 0.0)
        up &= grid - fin_auth <= max_finality_lag_s
    return float(up.mean())


def sustained_tps(blocks: pd.DataFrame, duration_s: float, window_s: float = SUSTAINED_WINDOW_S) -> float | None:
    """Highest mean rate of finalized canonical transactions over any aligned ``window_s`` window, tx/s."""
    n_win = int(duration_s // window_s)
    if n_win < 1:
        return None
    fin = blocks.loc[blocks["canonical"] & blocks["t_finalized"].notna()]
    k = (fin["t_authored"].to_numpy() // window_s).astype(np.int64)
    keep = k < n_win
    per_window = np.bincount(k[keep], weights=fin["n_tx"].to_numpy()[keep], minlength=n_win)
    return float(per_window.max() / window_s)


def transaction_kpis(blocks: pd.DataFrame, flow: TransactionFlow, duration_s: float, cfg: Config
                     ) -> tuple[dict[str, float | None], dict[str, str], dict[str, Any]]:
    """Throughput, success, fee revenue and transaction statistics of a run with load.

    ``tx_success_rate`` = (finalized − failed at execution) / (finalized + rejected + evicted + expired):
    transactions still in the pool at the end (pending) are excluded; dropped and expired ones, and calls
    that failed at dispatch (e.g. paused), count as failures.
    ``fee_revenue_vs_opex`` = fees paid on the ledger (inclusion fees + tips, in USD at
    ``economics.token_usd``) per day over ``economics.opex_usd_per_day``.
    """
    c = flow.pool.counters
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    tps = sustained_tps(blocks, duration_s)
    values["tps_sustained"] = tps
    if tps is None:
        reasons["tps_sustained"] = f"run shorter than one {SUSTAINED_WINDOW_S:.0f} s window"
    failed = c.rejected + c.evicted + c.expired
    settled = c.finalized + failed
    values["tx_success_rate"] = (c.finalized - flow.failed_execution) / settled if settled else None
    if not settled:
        reasons["tx_success_rate"] = "no transaction settled"
    econ = cfg.economics
    rt = flow.runtime
    fees_paid = rt.fees_charged + rt.tips_paid
    if econ.opex_usd_per_day > 0:
        usd_per_day = fees_paid / TOKEN * econ.token_usd / (duration_s / 86400.0)
        values["fee_revenue_vs_opex"] = usd_per_day / econ.opex_usd_per_day
    else:
        reasons["fee_revenue_vs_opex"] = "economics.opex_usd_per_day is 0"
    pool = flow.pool
    stats = {
        "tx_submitted": c.submitted, "tx_finalized": c.finalized, "tx_rejected": c.rejected,
        "tx_evicted": c.evicted, "tx_expired": c.expired, "tx_failed_execution": flow.failed_execution,
        "tx_pending_end": c.submitted - settled,
        "tx_returned_from_orphans": c.returned_from_orphans,
        "tx_inclusion_p50_s": _finite(pool.inclusion_latency.quantile(0.5)),
        "tx_inclusion_p95_s": _finite(pool.inclusion_latency.quantile(0.95)),
        "tx_finality_p50_s": _finite(pool.finality_latency.quantile(0.5)),
        "tx_finality_p95_s": _finite(pool.finality_latency.quantile(0.95)),
        "fees_priced_units": flow.fees_priced, "fees_paid_units": fees_paid,
        "inclusion_fees_paid_units": rt.fees_charged, "author_tips_units": rt.tips_paid,
        "background_shortfall_blocks": rt.background_shortfall_blocks,
    }
    return values, reasons, stats


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def storage_bandwidth_kpis(blocks: pd.DataFrame, duration_s: float, tx_bytes: int = 0) -> dict[str, float]:
    """``storage_growth_gb_per_year``: canonical chain bytes per year at this run's rate (GB = 1e9 B).
    ``bandwidth_gb_per_day``: traffic one validator handles per day — every authored block (orphans too)
    and every submitted transaction received once and relayed once."""
    year, day = 365.0 * 86400.0, 86400.0
    canon = float(blocks.loc[blocks["canonical"], "length_bytes"].sum())
    gossip = 2.0 * (float(blocks["length_bytes"].sum()) + tx_bytes)
    return {"storage_growth_gb_per_year": canon / duration_s * year / 1e9,
            "bandwidth_gb_per_day": gossip / duration_s * day / 1e9}


def evaluate(
    measured: Mapping[str, float | None],
    reasons: Mapping[str, str],
    targets: Mapping[str, KpiTarget],
) -> dict[str, dict[str, Any]]:
    """The verdict for every contract KPI: ``{name: {value, target, pass, unit[, reason]}}``."""
    out: dict[str, dict[str, Any]] = {}
    for name in KPI_NAMES:
        value = measured.get(name)
        if value is not None:
            value = float(value)
        target = targets.get(name)
        row: dict[str, Any] = {
            "value": value,
            "target": describe_target(target),
            "pass": judge(value, target),
            "unit": KPI_UNITS[name],
        }
        if value is None:
            row["reason"] = reasons.get(name, "not modelled yet")
        out[name] = row
    return out
