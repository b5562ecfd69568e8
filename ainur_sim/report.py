"""``report.md`` and ``plots/*.png`` for one run: a run summary, the KPI verdict grouped by area with the
launch-plan targets, a "what failed and why" list computed from the run's own tables, and the figures of
``ainur_sim.plots``.

Only what the data shows is said: every explanation is built from the blocks table, the extra tables
(``finality_rounds``, ``outages``, ``chain_series``, ``api_series``, ``call_failures``), ``stats`` and the
config's scenario windows. A KPI with no specific explanation gets its value and target only.

The output depends only on the ``RunResult`` (no clock, no paths, no PNG ``Software`` tag), and a result
read back with ``load_run`` gives the same bytes as the one that wrote the run dir.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ainur_sim import plots
from ainur_sim.kpi import KPI_UNITS, canonical_intervals, finality_lags

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ainur_sim.result import RunResult

TOKEN = 10**12

#: KPIs by area, in report order; a KPI in none of these is listed under "Other".
KPI_GROUPS: dict[str, tuple[str, ...]] = {
    "Chain": ("block_time_mean_s", "block_time_p99_s", "finality_p95_s", "tps_sustained", "tx_success_rate",
              "uptime", "storage_growth_gb_per_year", "bandwidth_gb_per_day"),
    "API": ("api_p50_ms", "api_p95_ms", "api_p99_ms"),
    "Market": ("task_completion_rate", "task_success_rate", "agents_registered"),
    "Economics": ("tvl_escrow", "daily_tx_value", "reputation_staked", "fee_revenue_vs_opex"),
}

#: What the launch plan adds to a bare target (when it must hold, or what a reported KPI is compared with).
TARGET_NOTES: dict[str, str] = {
    "block_time_mean_s": "6 s ± 0.5 s",
    "block_time_p99_s": "the ± 0.5 s tolerance, on the tail",
    "agents_registered": "in the first week",
    "tvl_escrow": "by day 30",
    "daily_tx_value": "by day 7",
    "storage_growth_gb_per_year": "1 TB provisioned for year 1",
    "bandwidth_gb_per_day": "plan: capacity ≥ 10 GB/day",
}

#: Every figure the report may draw, in report order: file stem → (heading, one-line caption).
FIGURES: dict[str, tuple[str, str]] = {
    "block_time_hist": ("Block time", "Intervals between consecutive canonical blocks; multiples of the slot are "
                        "empty slots."),
    "finality_lag_cdf": ("Finality lag", "Share of canonical blocks finalized within a given time after authoring."),
    "throughput_pool": ("Throughput and transaction pool", "Offered, included and finalized transactions per "
                        "second, and the ready pool against its limit."),
    "fee_multiplier": ("Fee multiplier", "TargetedFeeAdjustment multiplier of each canonical block."),
    "api_latency": ("API latency", "Request latency percentiles per window against their targets, and the "
                    "autoscaled server count."),
    "finality_progress": ("Finality progress", "Best and finalized height; the gap between them is what awaits "
                          "finality."),
    "validator_availability": ("Validator availability", "When each validator was offline, and how many were "
                               "online against the GRANDPA supermajority."),
    "call_outcomes": ("Call outcomes", "Calls that failed at dispatch because they were paused, over time and per "
                      "call."),
    "task_funnel": ("Task funnel", "Tasks posted, cleared, delivered, settled and disputed; final status of each."),
    "escrow_tvl": ("Escrow TVL", "Tokens held in escrow after each finalized block."),
    "reputation_by_strategy": ("Reputation by strategy", "Agents' reputation at the end of the run, per strategy."),
}


# ---------------------------------------------------------------------------------------------------
# Formatting


def _num(v: float, digits: int = 3) -> str:
    """A number for text: thousands separators, ``digits`` decimals below 1,000 (trailing zeros kept)."""
    if v is None or not math.isfinite(v):
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def _fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "share":
        return f"{v:.4f}"
    return _num(v)


_OPS = {">=": "≥", "<=": "≤", "<": "<", ">": ">"}


def _fmt_target(target: str | None, name: str) -> str:
    """``"< 12"`` → ``"< 12"``, ``">= 1000"`` → ``"≥ 1,000"``, ``"5.5..6.5"`` → ``"5.5 – 6.5"``; plus the
    launch plan's note (when it must hold)."""
    note = TARGET_NOTES.get(name)
    if not target:
        return f"— ({note})" if note else "—"
    m = re.fullmatch(r"\s*(>=|<=|<|>)\s*([-+0-9.eE]+)\s*", target)
    between = re.fullmatch(r"\s*([-+0-9.eE]+)\s*\.\.\s*([-+0-9.eE]+)\s*", target)
    if m:
        v = float(m.group(2))
        text = f"{_OPS[m.group(1)]} {v:,.0f}" if v >= 1000 else f"{_OPS[m.group(1)]} {v:g}"
    elif between:
        text = f"{float(between.group(1)):g} – {float(between.group(2)):g}"
    else:
        text = target
    return f"{text} ({note})" if note else text


def _verdict(row: Mapping[str, Any]) -> str:
    if row["pass"] is True:
        return "pass"
    if row["pass"] is False:
        return "**FAIL**"
    if row["value"] is None:
        return f"null: {row.get('reason') or 'not measured'}"
    return "reported (no target)"


def verdict_table(kpis: Mapping[str, Mapping[str, Any]], names: list[str] | None = None,
                  target_header: str = "launch-plan target") -> str:
    """Markdown table of ``names`` (default: all): KPI, value, unit, target, verdict (pass / FAIL / null
    with the reason / reported)."""
    lines = [f"| KPI | value | unit | {target_header} | verdict |", "|---|---:|---|---|---|"]
    for name in names if names is not None else list(kpis):
        row = kpis[name]
        unit = row.get("unit") or KPI_UNITS.get(name, "")
        lines.append(f"| `{name}` | {_fmt_value(row['value'], unit)} | {unit} | "
                     f"{_fmt_target(row.get('target'), name)} | {_verdict(row)} |")
    return "\n".join(lines)


def grouped_verdict(kpis: Mapping[str, Mapping[str, Any]], target_header: str = "launch-plan target") -> list[str]:
    """The verdict as one table per area (chain, API, market, economics, other)."""
    lines: list[str] = []
    grouped = {n for names in KPI_GROUPS.values() for n in names}
    groups = {**KPI_GROUPS, "Other": tuple(n for n in kpis if n not in grouped)}
    for group, names in groups.items():
        present = [n for n in names if n in kpis]
        if present:
            lines += [f"### {group}", "", verdict_table(kpis, present, target_header), ""]
    return lines


def _plain(obj: Any) -> Any:
    """JSON round trip: what ``kpis.json`` stores, so a loaded run reports exactly like the original."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


# ---------------------------------------------------------------------------------------------------
# Run summary


def _cfg(cfg: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    return plots._get(cfg, dotted, default)


def run_summary(result: RunResult, ctx: plots.TimeContext) -> list[str]:
    """A two-column table: scenario, seed, duration, validators and consensus, load, market, windows, wall time."""
    cfg = result.config
    n_val = _cfg(cfg, "chain.n_validators", "?")
    consensus = str(_cfg(cfg, "chain.consensus", "?")).upper()
    finality = "GRANDPA finality" if _cfg(cfg, "finality.enabled", True) else "no finality gadget"
    dur = result.duration_s
    dur_text = f"{dur:,.0f} s" + (f" ({dur / 3600:,.2f} h)" if dur >= 3600 else f" ({dur / 60:,.1f} min)")
    rows = [
        ("scenario", f"`{_cfg(cfg, 'scenario.name', '?')}` — {_cfg(cfg, 'scenario.description', '') or '—'}"),
        ("seed", str(result.seed)),
        ("simulated duration", dur_text),
        ("validators", f"{n_val} ({consensus}, {_cfg(cfg, 'chain.slot_s', '?')} s slots, {finality})"),
        ("background load", f"{_num(float(_cfg(cfg, 'load.tps', 0.0)), 1)} tx/s mean (before scenario multipliers)"),
        ("market", f"mechanism `{_cfg(cfg, 'market.mechanism', '?')}`, {_cfg(cfg, 'population.n_workers', 0)} "
                   f"workers, {_cfg(cfg, 'population.n_requesters', 0)} requesters"),
        ("scenario windows", "; ".join(window_text(w, ctx) for w in ctx.windows) or "none"),
        ("wall time", f"{round(float(result.wall_s), 3):,.1f} s"),
    ]
    if ctx.phases:
        rows.insert(-1, ("phases", ", ".join(f"{name} at {ctx.fmt(t)}" for name, t in ctx.phases)))
    n_pass = sum(r["pass"] is True for r in result.kpis.values())
    n_fail = sum(r["pass"] is False for r in result.kpis.values())
    rows.append(("KPIs", f"{n_pass} pass, {n_fail} FAIL, {len(result.kpis) - n_pass - n_fail} not judged"))
    return ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]


# ---------------------------------------------------------------------------------------------------
# What failed and why


@dataclass(frozen=True)
class Facts:
    """What the explanations read: the result, its time context and the JSON-plain stats."""

    result: RunResult
    ctx: plots.TimeContext
    stats: dict[str, Any]

    def table(self, name: str) -> pd.DataFrame | None:
        """An extra table of the run, None when absent or empty."""
        df = self.result.extra_tables.get(name)
        return df if df is not None and not df.empty else None

    @property
    def slot_s(self) -> float:
        return float(_cfg(self.result.config, "chain.slot_s", 6.0))

    def target(self, name: str) -> float | None:
        """The numeric target of a KPI from the config (None for ``between`` / ``none`` targets)."""
        v = _cfg(self.result.config, f"kpi.targets.{name}.value")
        return float(v) if v is not None else None

    def during(self, start: float, end: float, kinds: tuple[str, ...] | None = None) -> str:
        """``" during the validator outage (4 of 10 offline, 1.00–1.50 h)"`` for the scenario windows (of
        ``kinds``, default all) overlapping ``[start, end]``; empty when none does."""
        hits = [w for w in self.ctx.windows
                if w.start_s < end and w.end_s > start and (kinds is None or w.kind in kinds)]
        if not hits:
            return ""
        return " during the " + " and the ".join(window_text(w, self.ctx) for w in hits)


def window_text(w: plots.Window, ctx: plots.TimeContext) -> str:
    """``"validator outage (4 of 10 offline, 1.00–1.50 h)"``: a window's label with its time span."""
    span = ctx.span(w.start_s, w.end_s)
    return f"{w.label[:-1]}, {span})" if w.label.endswith(")") else f"{w.label} ({span})"


def _head(name: str, row: Mapping[str, Any]) -> str:
    """``"`finality_p95_s` = 1,378 s (target < 12)"``."""
    unit = row.get("unit") or KPI_UNITS.get(name, "")
    unit_text = "" if unit in ("share", "ratio") else f" {unit}"
    target = _fmt_target(row.get("target"), name).split(" (")[0]
    return f"`{name}` = {_fmt_value(row['value'], unit)}{unit_text} (target {target})"


def _offline_during(f: Facts, start: float, end: float) -> str:
    """``" while 4 of 10 validators were offline (GRANDPA needs 7 …)"`` from the outages table; empty when no
    validator was down in ``[start, end]``."""
    out = f.table("outages")
    n = _cfg(f.result.config, "chain.n_validators")
    if out is None or n is None:
        return ""
    hit = int(out.loc[(out["start"] < end) & (out["end"] > start), "validator"].nunique())
    if not hit:
        return ""
    need = plots.supermajority(int(n))
    left = int(n) - hit
    short = f" ({left} left, fewer than the {need} a GRANDPA supermajority needs)" if left < need else ""
    return f" while {hit} of {n} validators were offline{short}"


def _why_block_time(f: Facts) -> str:
    canon = f.result.blocks.loc[f.result.blocks["canonical"]].sort_values("number")
    iv = canonical_intervals(f.result.blocks)
    if iv.size == 0:
        return ""
    t_end = canon["t_authored"].to_numpy(float)[1:]
    long = iv > 1.5 * f.slot_s
    if not long.any():
        return f"no interval spanned an empty slot; the intervals themselves average {iv.mean():.2f} s"
    text = (f"{int(long.sum()):,} of {iv.size:,} canonical block intervals ({long.mean():.1%}) spanned one or more "
            f"empty slots (> {1.5 * f.slot_s:g} s)")
    for w in f.ctx.windows:
        k = int(((t_end >= w.start_s) & (t_end < w.end_s) & long).sum())
        if k:
            text += f", {k:,} of them during the {window_text(w, f.ctx)}"
    outages = f.table("outages")
    if outages is not None and not any(w.kind == "outage" for w in f.ctx.windows):
        k = int((plots.offline_at(outages, t_end[long]) > 0).sum())
        if k:
            text += f", {k:,} of them ending while at least one validator was offline"
    k = int(np.argmax(iv))
    return text + f"; the longest was {iv[k]:,.1f} s, ending at {f.ctx.fmt(float(t_end[k]))}"


def _why_finality(f: Facts, name: str) -> str:
    lags = finality_lags(f.result.blocks)
    if lags.size == 0:
        return "no canonical block was finalized"
    p50 = float(np.percentile(lags, 50))
    target = f.target(name)
    late = (f"; {float((lags >= target).mean()):.1%} of finalized blocks took {target:g} s or longer "
            f"(p50 {p50:,.1f} s)") if target else ""
    stalls = plots.finality_stalls(f.result.blocks, f.result.duration_s, 3.0 * f.slot_s)
    if stalls:
        a, b = stalls[0]
        offline = _offline_during(f, a, b)
        windows = f.during(a, b, ("partition", "degradation") if offline else None)
        more = f" ({len(stalls) - 1} shorter stall(s) besides)" if len(stalls) > 1 else ""
        return f"GRANDPA finalized nothing for {b - a:,.0f} s ({f.ctx.span(a, b)}){offline}{windows}{more}{late}"
    gaps = np.diff(np.unique(finality_times(f.result.blocks)))
    longest = float(gaps.max()) if gaps.size else 0.0
    depth = _cfg(f.result.config, "finality.before_best")
    why = (f": with `finality.before_best` = {depth}, GRANDPA votes on a block only once {depth} newer blocks "
           f"exist, about {depth * f.slot_s:g} s after it was authored") if depth else ""
    return (f"finality never stalled (longest pause between finality events {longest:,.1f} s), but its lag is "
            f"steady at p50 {p50:,.1f} s{why}")


def finality_times(blocks: pd.DataFrame) -> np.ndarray:
    """``t_finalized`` of every finalized canonical block (s)."""
    return blocks.loc[blocks["canonical"] & blocks["t_finalized"].notna(), "t_finalized"].to_numpy(float)


def _why_tps(f: Facts, name: str) -> str:
    cs = f.table("chain_series")
    target = f.target(name)
    if cs is None or target is None:
        return ""
    _, offered = plots.binned_rate(cs["t"].to_numpy(float), cs["offered"].to_numpy(float), f.result.duration_s, 600.0)
    peak = float(offered.max()) if offered.size else 0.0
    if peak < target:
        tps = _num(float(_cfg(f.result.config, "load.tps", 0.0)), 1)
        return (f"the run never offered that much: at most {peak:,.0f} tx/s in any 10-min window "
                f"(`load.tps` = {tps}), so the target was not put to the test")
    canon = f.result.blocks.loc[f.result.blocks["canonical"]]
    biggest = int(canon["n_tx"].max()) if len(canon) else 0
    text = (f"up to {peak:,.0f} tx/s were offered per 10-min window, but the largest block carried {biggest:,} tx "
            f"({biggest / f.slot_s:,.0f} tx/s at {f.slot_s:g} s slots)")
    full = _pool_full(f)
    text += f"; {full}" if full else ""
    dropped = int(cs["dropped_total"].iloc[-1]) if "dropped_total" in cs else 0
    return text + (f" and {dropped:,} tx were dropped" if dropped else "")


def _pool_full(f: Facts) -> str:
    """``"the ready pool was at its 8,192 limit for 1,800 s (0.50–1.00 h)"``; empty when it never was."""
    cs = f.table("chain_series")
    limit = _cfg(f.result.config, "pool.ready_count")
    if cs is None or not limit or "pool_ready" not in cs:
        return ""
    full = cs["pool_ready"].to_numpy() >= int(limit)
    if not full.any():
        return ""
    t = cs["t"].to_numpy(float)
    return (f"the ready pool was at its {int(limit):,} limit for {int(full.sum()) * f.slot_s:,.0f} s "
            f"({f.ctx.span(float(t[full].min()), float(t[full].max()) + f.slot_s)})")


def _why_tx_success(f: Facts) -> str:
    s = f.stats
    parts: list[str] = []
    failed_exec = int(s.get("tx_failed_execution") or 0)
    calls = s.get("calls") or {}
    paused = {c: int(v.get("failed_paused", 0)) for c, v in calls.items() if int(v.get("failed_paused", 0))}
    if failed_exec:
        detail = ""
        if paused:
            top = sorted(paused.items(), key=lambda kv: (-kv[1], kv[0]))
            detail = " because their call was paused (" + ", ".join(f"{c} {n:,}" for c, n in top) + ")"
            detail += f.during(0.0, f.result.duration_s, ("tx_pause", "safe_mode"))
        parts.append(f"{failed_exec:,} finalized tx failed at dispatch{detail}")
    drops = [(k, int(s.get(f"tx_{k}") or 0)) for k in ("rejected", "evicted", "expired")]
    drops = [(k, n) for k, n in drops if n]
    if drops:
        total = sum(n for _, n in drops)
        parts.append(f"{total:,} tx never made it into a block (" + ", ".join(f"{n:,} {k}" for k, n in drops)
                     + " by the pool)" + f.during(0.0, f.result.duration_s, ("spike",)))
        parts.append(_pool_full(f))
    return "; ".join(p for p in parts if p)


def down_masks(blocks: pd.DataFrame, duration_s: float, max_block_gap_s: float, max_finality_lag_s: float | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(grid, no_blocks, finality_behind)`` on the 1 s grid of ``kpi.uptime``: where the newest canonical
    block is older than ``max_block_gap_s``, and where the newest finalized block was authored more than
    ``max_finality_lag_s`` ago (the two ways the uptime KPI counts the chain as down)."""
    canon = blocks.loc[blocks["canonical"]].sort_values("number")
    grid = np.arange(max(max_block_gap_s, max_finality_lag_s or 0.0), duration_s, 1.0)
    t_auth = canon["t_authored"].to_numpy(float)
    i = np.searchsorted(t_auth, grid, side="right") - 1
    no_blocks = grid - np.where(i >= 0, t_auth[np.maximum(i, 0)], 0.0) > max_block_gap_s
    behind = np.zeros(grid.size, dtype=bool)
    if max_finality_lag_s is not None:
        fin = canon.loc[canon["t_finalized"].notna()]
        t_fin = fin["t_finalized"].to_numpy(float)
        j = np.searchsorted(t_fin, grid, side="right") - 1
        fin_auth = np.where(j >= 0, fin["t_authored"].to_numpy(float)[np.maximum(j, 0)], 0.0)
        behind = grid - fin_auth > max_finality_lag_s
    return grid, no_blocks, behind


def _true_runs(grid: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    """Maximal stretches ``(start, end)`` of ``grid`` (1 s steps) where ``mask`` holds."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(float(grid[s]), float(grid[e - 1]) + 1.0) for s, e in zip(starts, ends, strict=True)]


def _why_uptime(f: Facts) -> str:
    cfg = f.result.config
    gap = float(_cfg(cfg, "kpi.uptime_max_block_gap_s", 18.0))
    lag = _cfg(cfg, "kpi.uptime_max_finality_lag_s", 60.0) if _cfg(cfg, "finality.enabled", True) else None
    grid, no_blocks, no_fin = down_masks(f.result.blocks, f.result.duration_s, gap, None if lag is None else float(lag))
    down = no_blocks | no_fin
    if grid.size == 0 or not down.any():
        return ""
    runs = _true_runs(grid, down)
    a, b = max(runs, key=lambda r: (r[1] - r[0], -r[0]))
    causes = []
    if no_fin.any():
        causes.append(f"finality more than {float(lag):g} s behind for {int(no_fin.sum()):,} s")
    if no_blocks.any():
        causes.append(f"no new canonical block for more than {gap:g} s for {int(no_blocks.sum()):,} s")
    where = f"in {len(runs)} stretches, the longest {b - a:,.0f} s ({f.ctx.span(a, b)})" if len(runs) > 1 \
        else f"({f.ctx.span(a, b)})"
    offline = _offline_during(f, a, b)
    windows = f.during(a, b, ("partition", "degradation", "spike") if offline else None)
    return f"the chain was down {int(down.sum()):,} s {where}{offline}{windows}: " + " and ".join(causes)


def _why_api(f: Facts, name: str) -> str:
    api = f.table("api_series")
    col = name.removeprefix("api_")
    target = f.target(name)
    if api is None or col not in api or target is None:
        return ""
    q = api[col].to_numpy(float)
    over = np.nan_to_num(q, nan=-np.inf) >= target
    if not over.any():
        return f"no single window reached {target:g} ms: the excess is spread thinly over the run"
    t = api["t"].to_numpy(float)
    win = float(np.median(np.diff(t))) if t.size > 1 else 0.0
    k = int(np.nanargmax(q))
    sampled = " simulated" if "simulated" in api and not bool(api["simulated"].all()) else ""
    return (f"{col.split('_')[0]} was {target:g} ms or more in {int(over.sum()):,} of {int(np.isfinite(q).sum()):,}"
            f"{sampled} {win:g}-s windows; the peak, {q[k]:,.0f} ms at {f.ctx.fmt(float(t[k]))}, came with "
            f"{float(api['rate'].iloc[k]):,.0f} req/s on {int(api['servers'].iloc[k])} servers (the autoscaler "
            f"went up to {int(api['servers'].max()):,}){f.during(float(t[k]) - win, float(t[k]))}")


def _why_storage(f: Facts) -> str:
    canon = f.result.blocks.loc[f.result.blocks["canonical"]]
    if canon.empty or f.result.duration_s <= 0:
        return ""
    per_day = float(canon["length_bytes"].sum()) / f.result.duration_s * 86400.0 / 1e9
    return (f"the canonical chain grew {per_day:,.2f} GB/day: {len(canon):,} blocks of "
            f"{float(canon['length_bytes'].mean()) / 1e3:,.0f} kB on average, carrying "
            f"{float(canon['n_tx'].sum()) / f.result.duration_s:,.0f} tx/s")


def _why_tasks(f: Facts) -> str:
    tasks = f.result.tasks
    if tasks.empty:
        return ""
    counts = tasks["status"].astype(str).value_counts()
    top = ", ".join(f"{n:,} {s}" for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"of {len(tasks):,} tasks, {top}"


def _why_agents(f: Facts) -> str:
    agents = f.result.agents
    if agents.empty:
        return "no agents at the end of the run"
    kinds = agents["kind"].astype(str).value_counts()
    return ", ".join(f"{n:,} {k}" for k, n in sorted(kinds.items())) + " at the end of the run"


def _why_escrow(f: Facts) -> str:
    sup = f.result.supply
    if sup.empty:
        return ""
    esc = sup.sort_values("block")["escrowed"].to_numpy(float) / TOKEN
    usd = float(_cfg(f.result.config, "economics.token_usd", 1.0))
    return (f"escrow held at most {esc.max():,.0f} tokens ({esc.max() * usd:,.0f} USD at {usd:g} USD/token), "
            f"{esc[-1]:,.0f} at the end")


def _why_fees(f: Facts) -> str:
    fees = f.stats.get("fees_paid_units")
    opex = _cfg(f.result.config, "economics.opex_usd_per_day")
    if fees is None or not opex:
        return ""
    usd = float(_cfg(f.result.config, "economics.token_usd", 1.0))
    per_day = float(fees) / TOKEN * usd / (f.result.duration_s / 86400.0)
    return f"fees came to {per_day:,.0f} USD/day against {float(opex):,.0f} USD/day of opex"


#: KPI → function of the run's facts (and the KPI name) that says why it failed; "" when the data says nothing.
EXPLAIN: dict[str, Callable[[Facts, str], str]] = {
    "block_time_mean_s": lambda f, _n: _why_block_time(f),
    "block_time_p99_s": lambda f, _n: _why_block_time(f),
    "finality_p95_s": _why_finality,
    "tps_sustained": _why_tps,
    "tx_success_rate": lambda f, _n: _why_tx_success(f),
    "uptime": lambda f, _n: _why_uptime(f),
    "api_p50_ms": _why_api,
    "api_p95_ms": _why_api,
    "api_p99_ms": _why_api,
    "task_completion_rate": lambda f, _n: _why_tasks(f),
    "task_success_rate": lambda f, _n: _why_tasks(f),
    "agents_registered": lambda f, _n: _why_agents(f),
    "tvl_escrow": lambda f, _n: _why_escrow(f),
    "fee_revenue_vs_opex": lambda f, _n: _why_fees(f),
    "storage_growth_gb_per_year": lambda f, _n: _why_storage(f),
}


def failure_explanations(result: RunResult, ctx: plots.TimeContext) -> list[str]:
    """One line per failing KPI, in KPI order: value, target and what the run's data shows about why.
    KPIs with the same explanation (block-time mean and p99, say) share one line."""
    facts = Facts(result, ctx, _plain(result.stats))
    heads: dict[str, list[str]] = {}
    for name, row in result.kpis.items():
        if row["pass"] is False:
            explain = EXPLAIN.get(name)
            why = explain(facts, name) if explain else ""
            heads.setdefault(why or f"\0{name}", []).append(_head(name, row))
    return [" and ".join(h) + ("." if why.startswith("\0") else f": {why}.") for why, h in heads.items()]

# ---------------------------------------------------------------------------------------------------
# Figures


def _api_targets(cfg: Mapping[str, Any]) -> dict[str, float | None]:
    return {f"{q}_ms": _cfg(cfg, f"kpi.targets.api_{q}_ms.value") for q in ("p50", "p95", "p99")}


def _call_totals(stats: Mapping[str, Any]) -> dict[str, tuple[int, int]] | None:
    calls = stats.get("calls")
    if not isinstance(calls, Mapping) or not calls:
        return None
    return {c: (int(v.get("ok", 0)), int(v.get("failed_paused", 0))) for c, v in calls.items()}


def figure_builders(result: RunResult, ctx: plots.TimeContext) -> dict[str, Callable[[], Figure | None]]:
    """For every figure of ``FIGURES``, a function drawing it for this run (None where the run has no data)."""
    cfg = result.config
    x = result.extra_tables
    slot_s = float(_cfg(cfg, "chain.slot_s", 6.0))
    lo, hi = _cfg(cfg, "kpi.targets.block_time_mean_s.lo"), _cfg(cfg, "kpi.targets.block_time_mean_s.hi")
    fin_target = _cfg(cfg, "kpi.targets.finality_p95_s.value")
    tvl_target = _cfg(cfg, "kpi.targets.tvl_escrow.value")
    builders: dict[str, Callable[[], Figure | None]] = {
        "block_time_hist": lambda: plots.block_time_hist(
            result.blocks, slot_s=slot_s, target=(float(lo), float(hi)) if lo is not None and hi is not None else None),
        "finality_lag_cdf": lambda: plots.finality_lag_cdf(
            result.blocks, target_s=float(fin_target) if fin_target is not None else None),
        "throughput_pool": lambda: plots.throughput_pool(
            result.blocks, x.get("chain_series"), ctx, pool_limit=_cfg(cfg, "pool.ready_count")),
        "fee_multiplier": lambda: plots.fee_multiplier(result.blocks, ctx),
        "api_latency": lambda: plots.api_latency(x.get("api_series"), ctx, targets_ms=_api_targets(cfg)),
        "finality_progress": lambda: plots.finality_progress(result.blocks, ctx, slot_s=slot_s),
        "validator_availability": lambda: plots.validator_availability(
            x.get("outages"), int(_cfg(cfg, "chain.n_validators", 0) or 0), ctx),
        "call_outcomes": lambda: plots.call_outcomes(x.get("call_failures"), ctx, _call_totals(_plain(result.stats))),
        "task_funnel": lambda: plots.task_funnel(result.tasks),
        "escrow_tvl": lambda: plots.escrow_tvl(
            result.supply, result.blocks, ctx, token_usd=float(_cfg(cfg, "economics.token_usd", 1.0)),
            target_usd=float(tvl_target) if tvl_target is not None else None),
        "reputation_by_strategy": lambda: plots.reputation_by_strategy(result.agents),
    }
    return {name: builders[name] for name in FIGURES}


def _missing_note(name: str, result: RunResult) -> str:
    """Why a figure was not drawn, from what the run lacks."""
    notes = {
        "task_funnel": "no tasks in this run (`tasks.parquet` is empty)",
        "escrow_tvl": "no supply rows in this run (`supply.parquet` is empty): no escrow to plot",
        "reputation_by_strategy": "no agents in this run (`agents.parquet` is empty)",
        "validator_availability": "no validator went offline in this run",
        "call_outcomes": "no call failed at dispatch (nothing was paused)",
        "api_latency": "no API series (API layer disabled)",
        "throughput_pool": "no canonical blocks",
        "finality_lag_cdf": "no canonical block was finalized",
        "finality_progress": "no canonical block was finalized",
    }
    if name in ("finality_lag_cdf", "finality_progress") and not _cfg(result.config, "finality.enabled", True):
        return "finality disabled (`finality.enabled=false`)"
    return notes.get(name, "no data in this run")


# ---------------------------------------------------------------------------------------------------
# Assembly


def _stat_lines(stats: Mapping[str, Any]) -> list[str]:
    lines = []
    for k, v in stats.items():
        if isinstance(v, Mapping):
            inner = "; ".join(f"{ik}: " + (", ".join(f"{a} {_stat_value(b)}" for a, b in iv.items())
                                           if isinstance(iv, Mapping) else _stat_value(iv)) for ik, iv in v.items())
            lines.append(f"- `{k}`: {inner or '—'}")
        else:
            lines.append(f"- `{k}`: {_stat_value(v)}")
    return lines


def _stat_value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_stat_value(x) for x in v) + "]"
    return str(v)


#: What report.md says instead of the figures when a run was written with ``output.plots=false``.
FIGURES_OFF = ("Not drawn: this run was written with `output.plots=false`. `ainur-sim-report DIR` draws the "
               "figures from the run's tables.")


def report_markdown(result: RunResult, figures: Mapping[str, bool] | None) -> str:
    """The text of ``report.md``; ``figures``: figure name → whether its PNG was drawn (None: figures off)."""
    ctx = plots.time_context(result.config, result.duration_s)
    scenario = _cfg(result.config, "scenario.name", "?")
    kpi_set = _cfg(result.config, "kpi.name", "?")
    header = "launch-plan target" if kpi_set == "launch" else f"target (`{kpi_set}`)"
    lines = [f"# ainur-sim run report: scenario `{scenario}`", "", "## Run summary", "",
             *run_summary(result, ctx), "", "## KPI verdict", "",
             f"Targets: KPI set `{kpi_set}`{' (the launch plan’s)' if kpi_set == 'launch' else ''}. "
             "null = not measurable by this run (reason given), never a made-up number.", "",
             *grouped_verdict(result.kpis, header), "## What failed and why", ""]
    failing = failure_explanations(result, ctx)
    lines += [f"- {s}" for s in failing] if failing else ["No KPI failed its target."]
    lines += ["", "## Figures", ""]
    if figures is None:
        lines += [FIGURES_OFF, ""]
    else:
        for name, (title, caption) in FIGURES.items():
            if figures.get(name):
                lines += [f"### {title}", "", caption, "", f"![{title}](plots/{name}.png)", ""]
        skipped = [name for name in FIGURES if not figures.get(name)]
        if skipped:
            lines += ["Not drawn:", ""]
            lines += [f"- {FIGURES[n][0]}: {_missing_note(n, result)}." for n in skipped]
            lines.append("")
    stats = _plain(result.stats)
    if stats:
        lines += ["## Run statistics", "", *_stat_lines(stats), ""]
    return "\n".join(lines)


def write_report(result: RunResult, out: Path, *, figures: bool = True) -> list[str]:
    """Write ``report.md`` and ``plots/*.png`` into ``out``; returns the top-level names written.

    Figures the run has no data for are not drawn (an old PNG of that name is removed) and ``report.md``
    says why. ``figures=False`` writes ``report.md`` alone (``output.plots=false``: drawing costs
    ≈ 0.3 s a figure, a quarter of a short sweep job's time) and says how to draw them later.
    """
    out = Path(out)
    if not figures:
        (out / "report.md").write_text(report_markdown(result, None))
        return ["report.md"]
    plot_dir = out / "plots"
    plot_dir.mkdir(exist_ok=True)
    ctx = plots.time_context(result.config, result.duration_s)
    drawn: dict[str, bool] = {}
    for name, build in figure_builders(result, ctx).items():  # one figure in memory at a time
        fig = build()
        path = plot_dir / f"{name}.png"
        if fig is None:
            path.unlink(missing_ok=True)
            drawn[name] = False
        else:
            plots.save(fig, path)
            drawn[name] = True
    (out / "report.md").write_text(report_markdown(result, drawn))
    return ["report.md", "plots"]
