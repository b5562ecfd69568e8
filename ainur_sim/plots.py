"""Figures of one run: pure functions, tables in, ``matplotlib.figure.Figure`` out (or None when the run
has nothing to show), one function per figure. ``ainur_sim.report`` picks the inputs and saves them.

No pyplot: figures are built from ``matplotlib.figure.Figure`` directly, so no global state is touched and
no backend has to be selected. ``save`` writes PNGs without a ``Software`` entry, so that the same data
gives the same bytes.

Conventions: times are simulated seconds since genesis; a ``TimeContext`` converts them to the axis unit
(minutes for short runs, hours for runs longer than ``HOURS_AFTER_S``, days beyond ``DAYS_AFTER_S``) and
carries the scenario windows (outages, partitions, load spikes, pauses) that time-series figures shade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator, NullFormatter

from ainur_sim.kpi import canonical_intervals, finality_lags

TOKEN = 10**12
#: Runs longer than this (s) get time axes in hours; longer than ``DAYS_AFTER_S``, in days.
HOURS_AFTER_S = 5400.0
DAYS_AFTER_S = 4 * 86400.0
#: Figure sizes, inches (at ``DPI``): one panel, and two stacked panels.
SIZE_ONE = (9.0, 4.6)
SIZE_TWO = (9.0, 6.6)
DPI = 110

#: Final task statuses in contract order; the ones after which a worker had delivered a result.
TASK_STATUSES = ("completed", "failed", "refunded", "expired", "disputed_won", "disputed_lost", "open")
DELIVERED_STATUSES = ("completed", "failed", "disputed_won", "disputed_lost")

BLUE, ORANGE, RED, TEAL, GREEN, YELLOW, PURPLE, PINK, BROWN, GREY = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#79706e")
WINDOW_COLORS = {"outage": RED, "partition": PURPLE, "degradation": BROWN, "spike": ORANGE,
                 "tx_pause": YELLOW, "safe_mode": TEAL}
OUTAGE_KIND_COLORS = {"outage": RED, "crash": ORANGE, "outage+crash": "#9d2a2b"}


# ---------------------------------------------------------------------------------------------------
# Time axis and scenario windows


@dataclass(frozen=True)
class Window:
    """A scenario window ``[start_s, end_s)`` to shade: ``kind`` picks the colour, ``label`` the legend."""

    kind: str
    label: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class TimeContext:
    """Run length (s), scenario windows and named phases ``(name, t_s)`` shared by time-series figures."""

    duration_s: float
    windows: tuple[Window, ...] = ()
    phases: tuple[tuple[str, float], ...] = ()
    divisor: float = field(init=False)
    unit: str = field(init=False)

    def __post_init__(self) -> None:
        d = self.duration_s
        divisor, unit = (86400.0, "d") if d > DAYS_AFTER_S else (3600.0, "h") if d > HOURS_AFTER_S else (60.0, "min")
        object.__setattr__(self, "divisor", divisor)
        object.__setattr__(self, "unit", unit)

    def x(self, t_s: Any) -> Any:
        """Seconds → axis unit."""
        return np.asarray(t_s, dtype=float) / self.divisor

    @property
    def label(self) -> str:
        return f"time since genesis ({self.unit})"

    def fmt(self, t_s: float) -> str:
        """A time in the axis unit for text, e.g. ``"1.50 h"`` or ``"12.0 min"``."""
        v = t_s / self.divisor
        return f"{v:,.2f} {self.unit}" if self.unit != "min" else f"{v:,.1f} min"

    def span(self, start_s: float, end_s: float) -> str:
        """An interval for text, e.g. ``"1.00–1.50 h"``."""
        a, b = start_s / self.divisor, end_s / self.divisor
        return f"{a:,.2f}–{b:,.2f} {self.unit}" if self.unit != "min" else f"{a:,.1f}–{b:,.1f} min"


def _get(cfg: Mapping[str, Any] | None, dotted: str, default: Any = None) -> Any:
    cur: Any = cfg
    for key in dotted.split("."):
        if not isinstance(cur, Mapping) or key not in cur or cur[key] is None:
            return default
        cur = cur[key]
    return cur


def scenario_windows(config: Mapping[str, Any]) -> tuple[Window, ...]:
    """The fault, load and pause windows a resolved run config declares, in start order.

    Reads ``faults`` (outage window, partitions, degradations), ``load.spikes`` and ``emergency``
    (tx-pause, safe mode). Windows of zero length or with no effect (no validators offline, factor 1)
    are left out.
    """
    out: list[Window] = []
    n_off = int(_get(config, "faults.offline_validators", 0) or 0)
    dur = float(_get(config, "faults.outage_duration_s", 0.0) or 0.0)
    if n_off > 0 and dur > 0:
        n = _get(config, "chain.n_validators")
        start = float(_get(config, "faults.outage_start_s", 0.0))
        of = f" of {n}" if n is not None else ""
        out.append(Window("outage", f"validator outage ({n_off}{of} offline)", start, start + dur))
    for p in _get(config, "faults.partitions", []) or []:
        if float(p.get("duration_s", 0.0)) > 0:
            regions = p.get("regions") or []
            share = float(p.get("minority_fraction", 0.0))
            who = f"{len(regions)} regions" if regions else f"{share:.0%} of validators"
            start = float(p.get("start_s", 0.0))
            out.append(Window("partition", f"network partition ({who} cut off)", start, start + float(p["duration_s"])))
    for g in _get(config, "faults.degradations", []) or []:
        if float(g.get("duration_s", 0.0)) > 0 and float(g.get("factor", 1.0)) != 1.0:
            start = float(g.get("start_s", 0.0))
            out.append(Window("degradation", f"latency ×{float(g['factor']):g}", start, start + float(g["duration_s"])))
    for s in _get(config, "load.spikes", []) or []:
        if float(s.get("duration_s", 0.0)) > 0 and float(s.get("factor", 1.0)) != 1.0:
            start = float(s.get("start_s", 0.0))
            out.append(Window("spike", f"load ×{float(s['factor']):g}", start, start + float(s["duration_s"])))
    for w in _get(config, "emergency.tx_pause", []) or []:
        if float(w.get("duration_s", 0.0)) > 0:
            start = float(w.get("start_s", 0.0))
            calls = ", ".join(w.get("calls") or []) or "no calls"
            out.append(Window("tx_pause", f"tx-pause ({calls})", start, start + float(w["duration_s"])))
    for w in _get(config, "emergency.safe_mode", []) or []:
        if float(w.get("duration_s", 0.0)) > 0:
            start = float(w.get("start_s", 0.0))
            out.append(Window("safe_mode", "safe mode", start, start + float(w["duration_s"])))
    return tuple(sorted(out, key=lambda w: (w.start_s, w.kind)))


def scenario_phases(config: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    """Named phases ``(name, t_s)`` of the scenario timeline (e.g. launch-day phases), genesis left out."""
    phases = _get(config, "scenario.phases", []) or []
    return tuple((str(p.get("name", "")), float(p.get("t_s", 0.0))) for p in phases if float(p.get("t_s", 0.0)) > 0)


def time_context(config: Mapping[str, Any], duration_s: float) -> TimeContext:
    """The ``TimeContext`` of a run from its resolved config."""
    return TimeContext(float(duration_s), scenario_windows(config), scenario_phases(config))


# ---------------------------------------------------------------------------------------------------
# Small data helpers (also used by the report's explanations)


def finality_stalls(blocks: pd.DataFrame, duration_s: float, min_gap_s: float) -> list[tuple[float, float]]:
    """Stretches ``(start_s, end_s)`` longer than ``min_gap_s`` in which no block was finalized, longest first.

    Measured between consecutive finality events (distinct ``t_finalized`` of canonical blocks), from genesis
    to the first one and from the last one to the end of the run.
    """
    fin = blocks.loc[blocks["canonical"] & blocks["t_finalized"].notna(), "t_finalized"].to_numpy(dtype=float)
    events = np.unique(np.concatenate([[0.0], fin[fin <= duration_s], [duration_s]]))
    starts, ends = events[:-1], events[1:]
    keep = ends - starts > min_gap_s
    out = list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))
    return sorted(out, key=lambda se: (-(se[1] - se[0]), se[0]))


def offline_at(outages: pd.DataFrame, t_s: np.ndarray) -> np.ndarray:
    """Number of distinct validators offline at each time in ``t_s`` (outage rows ``[start, end)``)."""
    counts = np.zeros(len(t_s), dtype=np.int64)
    for _, rows in outages.groupby("validator", sort=True):
        down = np.zeros(len(t_s), dtype=bool)
        for start, end in zip(rows["start"].to_numpy(float), rows["end"].to_numpy(float), strict=True):
            down |= (t_s >= start) & (t_s < end)
        counts += down
    return counts


def supermajority(n_validators: int) -> int:
    """Smallest number of (equal-weight) GRANDPA voters that is more than 2/3 of ``n_validators``."""
    return (2 * n_validators) // 3 + 1


def rate_bin_s(duration_s: float) -> float:
    """Bin width (s) for per-time rates: a minute, or ten minutes for runs longer than a day."""
    return 60.0 if duration_s <= 86400.0 else 600.0


def binned_rate(t_s: np.ndarray, counts: np.ndarray, duration_s: float, bin_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``(bin starts s, rate per s)``: ``counts`` summed into ``bin_s`` bins over ``[0, duration_s)``."""
    n = max(1, math.ceil(duration_s / bin_s))
    k = np.floor(np.asarray(t_s, float) / bin_s).astype(np.int64)
    keep = (k >= 0) & (k < n)
    sums = np.bincount(k[keep], weights=np.asarray(counts, float)[keep], minlength=n)
    return np.arange(n) * bin_s, sums / bin_s


# ---------------------------------------------------------------------------------------------------
# Figure plumbing


def _figure(nrows: int = 1, *, size: tuple[float, float] | None = None, sharex: bool = True,
            height_ratios: Sequence[float] | None = None) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=size or (SIZE_ONE if nrows == 1 else SIZE_TWO), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=sharex, squeeze=False,
                        gridspec_kw={"height_ratios": list(height_ratios)} if height_ratios else None)[:, 0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, list(axes)


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG without metadata that would change between runs (no ``Software`` entry)."""
    p = Path(path)
    fig.savefig(p, format="png", metadata={"Software": None})
    return p


def _thousands(ax: Axes, axis: str = "y") -> None:
    fmt = FuncFormatter(lambda v, _pos: f"{v:,.0f}" if abs(v) >= 1000 or float(v).is_integer() else f"{v:g}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def _plain_log(ax: Axes, axis: str) -> None:
    """Log-axis ticks as plain numbers (10, 100, 1,000) instead of powers of ten."""
    fmt = FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(fmt)
    target.set_minor_formatter(NullFormatter())


#: Tick spacings tried for time axes, per unit: the first giving at most 12 ticks is used.
TICK_STEPS = {"min": (1, 2, 5, 10, 15, 30, 60), "h": (0.25, 0.5, 1, 2, 3, 6, 12, 24), "d": (0.5, 1, 2, 7, 14, 30)}


def _time_axis(ax: Axes, ctx: TimeContext, *, label: bool = True) -> None:
    span = ctx.duration_s / ctx.divisor
    ax.set_xlim(0.0, span)
    step = next((s for s in TICK_STEPS[ctx.unit] if span / s <= 12), None)
    if step is not None:
        ax.xaxis.set_major_locator(MultipleLocator(step))
    if label:
        ax.set_xlabel(ctx.label)


def _shade(ax: Axes, ctx: TimeContext, *, legend: bool = True, phase_labels: bool = False) -> None:
    """Shade the scenario windows (one legend entry per kind) and mark phases with dotted lines."""
    seen: set[str] = set()
    for w in ctx.windows:
        a, b = max(0.0, w.start_s), min(ctx.duration_s, w.end_s)
        if b <= a:
            continue
        label = w.label if legend and w.label not in seen else "_nolegend_"
        seen.add(w.label)
        ax.axvspan(ctx.x(a), ctx.x(b), color=WINDOW_COLORS.get(w.kind, GREY), alpha=0.16, lw=0, label=label, zorder=0)
    for name, t in ctx.phases:
        if 0 < t < ctx.duration_s:
            ax.axvline(ctx.x(t), color="0.45", ls=":", lw=0.9, zorder=0)
            if phase_labels:
                ax.text(ctx.x(t), 0.98, f" {name}", transform=ax.get_xaxis_transform(), rotation=90, va="top",
                        ha="right", fontsize=7, color="0.35")


def _legend_below(fig: Figure, axes: Sequence[Axes], ncol: int = 4) -> None:
    """One legend for all ``axes`` under the figure, so it never covers data."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(handles)), frameon=False,
                   fontsize=8.5)


def _fmt_num(v: float) -> str:
    if not math.isfinite(v):
        return "—"
    a = abs(v)
    return f"{v:,.0f}" if a >= 100 else f"{v:,.1f}" if a >= 10 else f"{v:.2f}" if a >= 0.1 else f"{v:.3g}"


# ---------------------------------------------------------------------------------------------------
# 1. block time


def block_time_hist(blocks: pd.DataFrame, *, slot_s: float = 6.0, target: tuple[float, float] | None = (5.5, 6.5)
                    ) -> Figure | None:
    """Histogram of the intervals between consecutive canonical blocks (s), log counts, with the target
    band, mean and p99. Intervals of several slots are empty slots; their count is in the title."""
    iv = canonical_intervals(blocks)
    if iv.size == 0:
        return None
    hi = max(float(iv.max()), slot_s * 1.5)
    width = slot_s / 24.0 * max(1, math.ceil(hi / 300.0 / (slot_s / 24.0)))  # a divisor of the slot, <= 300 bins
    bins = np.arange(-width / 2.0, hi + width, width)  # bins centred on whole multiples of the width (6.0 s)
    fig, (ax,) = _figure()
    counts, _ = np.histogram(iv, bins=bins)
    floor = 0.7  # log scale: empty bins are drawn at the floor, i.e. not at all
    ax.stairs(np.maximum(counts, floor), bins, baseline=floor, fill=True, color=BLUE, label="canonical block intervals")
    ax.set_yscale("log")
    ax.set_ylim(floor, float(counts.max()) * 2.0)
    if target is not None:
        ax.axvspan(target[0], target[1], color=GREEN, alpha=0.18, lw=0,
                   label=f"target mean {target[0]:g}–{target[1]:g} s")
    mean, p99 = float(iv.mean()), float(np.percentile(iv, 99))
    ax.axvline(mean, color=RED, lw=1.5, label=f"mean {mean:.2f} s")
    ax.axvline(p99, color=ORANGE, lw=1.5, ls="--", label=f"p99 {p99:.2f} s")
    _plain_log(ax, "y")
    ax.set_xlim(0.0, hi + width)
    long = int((iv > 1.5 * slot_s).sum())
    ax.set_title(f"Block time: {iv.size:,} intervals between canonical blocks; "
                 f"{long:,} span empty slots (> {1.5 * slot_s:g} s)")
    ax.set_xlabel("interval between consecutive canonical blocks (s)")
    ax.set_ylabel("intervals (log scale)")
    ax.legend(frameon=False, fontsize=9, loc="upper right")
    return fig


# ---------------------------------------------------------------------------------------------------
# 2. finality lag CDF


def finality_lag_cdf(blocks: pd.DataFrame, *, target_s: float | None = 12.0) -> Figure | None:
    """Empirical CDF of the finality lag (authored → finalized, s) of finalized canonical blocks, with the
    target and the p50 / p95 marked; log x when the lags span more than a decade."""
    lags = np.sort(finality_lags(blocks))
    if lags.size == 0:
        return None
    y = np.arange(1, lags.size + 1) / lags.size
    fig, (ax,) = _figure()
    ax.step(lags, y, where="post", color=BLUE, lw=1.8, label=f"{lags.size:,} finalized canonical blocks")
    p50, p95 = float(np.percentile(lags, 50)), float(np.percentile(lags, 95))
    if target_s is not None:
        within = float((lags < target_s).mean())
        ax.axvline(target_s, color=RED, lw=1.5, ls="--", label=f"target {target_s:g} s ({within:.1%} of blocks within)")
    ax.plot([p50], [0.5], "o", color=GREEN, ms=7, label=f"p50 {_fmt_num(p50)} s")
    ax.plot([p95], [0.95], "s", color=ORANGE, ms=7, label=f"p95 {_fmt_num(p95)} s")
    ax.axhline(0.95, color=ORANGE, lw=0.8, ls=":")
    if lags[-1] > 10 * max(lags[0], 1e-9):
        ax.set_xscale("log")
        _plain_log(ax, "x")
        ax.set_xlabel("finality lag, authored → finalized (s, log scale)")
    else:
        ax.set_xlabel("finality lag, authored → finalized (s)")
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("share of blocks finalized within")
    ax.set_title("Finality lag (GRANDPA), canonical blocks")
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    return fig


# ---------------------------------------------------------------------------------------------------
# 3. throughput and pool


def throughput_pool(blocks: pd.DataFrame, chain_series: pd.DataFrame | None, ctx: TimeContext, *,
                    pool_limit: int | None = 8192) -> Figure | None:
    """Transactions per second over time: offered (``chain_series.offered``), included in canonical blocks
    (by authoring time) and finalized (by finality time), per ``rate_bin_s`` bin; the ready-pool size
    (count) on the right axis with its limit. A finality catch-up burst far above the rest is clipped and
    its peak written on the plot, so that it does not flatten everything else."""
    canon = blocks.loc[blocks["canonical"]]
    if canon.empty:
        return None
    bin_s = rate_bin_s(ctx.duration_s)
    per = "minute" if bin_s == 60 else f"{bin_s / 60:g} min"
    fig, (ax,) = _figure()
    _shade(ax, ctx, phase_labels=True)
    series: list[np.ndarray] = []
    if chain_series is not None and not chain_series.empty and "offered" in chain_series:
        t, r = binned_rate(chain_series["t"].to_numpy(float), chain_series["offered"].to_numpy(float), ctx.duration_s,
                           bin_s)
        ax.step(ctx.x(t), r, where="post", color=GREY, lw=1.2, ls="--", label="offered")
        series.append(r)
    t, inc = binned_rate(canon["t_authored"].to_numpy(float), canon["n_tx"].to_numpy(float), ctx.duration_s, bin_s)
    ax.step(ctx.x(t), inc, where="post", color=BLUE, lw=2.4, alpha=0.8, label="included (canonical blocks)")
    series.append(inc)
    fin = canon.loc[canon["t_finalized"].notna()]
    t, fr = binned_rate(fin["t_finalized"].to_numpy(float), fin["n_tx"].to_numpy(float), ctx.duration_s, bin_s)
    ax.step(ctx.x(t), fr, where="post", color=GREEN, lw=1.1, label="finalized")
    base = max(float(np.max(s)) for s in series) if series else 0.0
    top = max(base * 1.25, 1.0)
    if fr.size and fr.max() > top * 1.2:
        k = int(np.argmax(fr))
        ax.set_ylim(0.0, top)
        ax.annotate(f"finality catch-up: {fr[k]:,.0f} tx/s ↑", xy=(ctx.x(t[k]), top), xytext=(4, -14),
                    textcoords="offset points", fontsize=8, color=GREEN, ha="left", va="top",
                    bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 1.5})
    else:
        ax.set_ylim(0.0, max(top, float(fr.max()) * 1.1 if fr.size else 0.0))
    _thousands(ax)
    ax.set_ylabel(f"transactions per second (mean per {per})")
    axes = [ax]
    if chain_series is not None and not chain_series.empty and "pool_ready" in chain_series:
        ax2 = ax.twinx()
        tp, ready = ctx.x(chain_series["t"].to_numpy(float)), chain_series["pool_ready"].to_numpy(float)
        ax2.fill_between(tp, ready, step="post", color=PURPLE, alpha=0.12, lw=0)
        ax2.step(tp, ready, where="post", color=PURPLE, lw=0.8, alpha=0.7, label="ready pool (right axis)")
        ymax = float(chain_series["pool_ready"].max())
        if pool_limit:
            ax2.axhline(pool_limit, color=PURPLE, lw=1.2, ls="-.", label=f"ready-pool limit {pool_limit:,}")
            ymax = max(ymax, pool_limit)
        ax2.set_ylim(0.0, ymax * 1.15 if ymax > 0 else 1.0)
        ax2.set_ylabel("transactions in the ready pool")
        _thousands(ax2)
        ax.set_zorder(ax2.get_zorder() + 1)
        ax.patch.set_visible(False)
        axes.append(ax2)
    _time_axis(ax, ctx)
    ax.set_title("Throughput and transaction pool")
    _legend_below(fig, axes)
    return fig


# ---------------------------------------------------------------------------------------------------
# 4. fee multiplier


def fee_multiplier(blocks: pd.DataFrame, ctx: TimeContext) -> Figure | None:
    """The TargetedFeeAdjustment multiplier of each canonical block over time (plain numbers, no offset)."""
    canon = blocks.loc[blocks["canonical"]].sort_values("number")
    if canon.empty:
        return None
    fig, (ax,) = _figure()
    _shade(ax, ctx)
    m = canon["fee_multiplier"].to_numpy(float)
    ax.step(ctx.x(canon["t_authored"].to_numpy(float)), m, where="post", color=BLUE, lw=1.5,
            label="fee multiplier (canonical blocks)")
    ax.axhline(1.0, color="0.4", lw=0.8, ls=":", label="1.0 (genesis)")
    lo, hi = float(min(m.min(), 1.0)), float(max(m.max(), 1.0))
    pad = max((hi - lo) * 0.15, 1e-3)
    ax.set_ylim(lo - pad, hi + pad)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    _time_axis(ax, ctx)
    ax.set_ylabel("fee multiplier (×)")
    ax.set_title(f"Fee multiplier: {m[0]:.4f} → {m[-1]:.4f} (min {m.min():.4f}, max {m.max():.4f})")
    _legend_below(fig, [ax])
    return fig


# ---------------------------------------------------------------------------------------------------
# 5. API latency


def api_latency(api_series: pd.DataFrame | None, ctx: TimeContext, *,
                targets_ms: Mapping[str, float | None] | None = None) -> Figure | None:
    """API latency percentiles per series window (ms, log scale) with their targets, and below them the
    number of API servers the autoscaler ran. Windows that were not simulated (sampled mode) are gaps."""
    if api_series is None or api_series.empty or "p50_ms" not in api_series:
        return None
    targets_ms = targets_ms or {}
    t = ctx.x(api_series["t"].to_numpy(float))
    fig, (ax, ax2) = _figure(2, height_ratios=[3.0, 1.0])
    _shade(ax, ctx)
    _shade(ax2, ctx, legend=False)
    sparse = "simulated" in api_series and float(api_series["simulated"].mean()) < 0.5
    quantiles = (("p50_ms", GREEN), ("p95_ms", ORANGE), ("p99_ms", RED))
    for col, color in quantiles:
        ax.plot(t, api_series[col].to_numpy(float), color=color, lw=1.3, marker="." if sparse else None, ms=3,
                label=col.split("_")[0])
    for col, color in quantiles:
        target = targets_ms.get(col)
        if target is not None:
            ax.axhline(target, color=color, lw=1.0, ls="--", label=f"{col.split('_')[0]} target {target:g} ms")
    ax.set_yscale("log")
    _plain_log(ax, "y")
    ax.set_ylabel("request latency (ms, log scale)")
    title = "API latency per window and autoscaled servers"
    if "simulated" in api_series and not bool(api_series["simulated"].all()):
        title += f" (sampled: {float(api_series['simulated'].mean()):.0%} of windows simulated)"
    ax.set_title(title)
    servers = api_series["servers"].to_numpy(float)
    ax2.step(t, servers, where="post", color=GREY, lw=1.3, label="API servers")
    ax2.set_ylim(0.0, max(float(servers.max()) * 1.2, 1.0))
    ax2.set_ylabel("servers")
    _thousands(ax2)
    _time_axis(ax2, ctx)
    _legend_below(fig, [ax, ax2], ncol=4)
    return fig


# ---------------------------------------------------------------------------------------------------
# 6–8. market


def task_funnel_counts(tasks: pd.DataFrame) -> dict[str, int]:
    """Funnel stages of the tasks table: posted (every task), cleared (allocated to a worker at clearing),
    delivered (the worker handed in a result: status completed / failed / disputed_*), settled (delivered
    and ``t_settled`` set), disputed_won / disputed_lost (delivered, then disputed)."""
    status = tasks["status"].astype(str)
    cleared = (tasks["winner"] >= 0) & tasks["t_cleared"].notna()
    delivered = cleared & status.isin(DELIVERED_STATUSES)
    return {"posted": len(tasks), "cleared": int(cleared.sum()), "delivered": int(delivered.sum()),
            "settled": int((delivered & tasks["t_settled"].notna()).sum()),
            "disputed_won": int((delivered & (status == "disputed_won")).sum()),
            "disputed_lost": int((delivered & (status == "disputed_lost")).sum())}


def task_funnel(tasks: pd.DataFrame) -> Figure | None:
    """Task funnel (posted → cleared → delivered → settled, disputed) with counts and shares of posted, and
    the final status of every task."""
    if tasks.empty:
        return None
    c = task_funnel_counts(tasks)
    fig = Figure(figsize=(10.0, 4.6), dpi=DPI, layout="constrained")
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.35, 1.0]})
    stages = ["posted", "cleared", "delivered", "settled", "disputed"]
    values = [c["posted"], c["cleared"], c["delivered"], c["settled"], c["disputed_won"] + c["disputed_lost"]]
    y = np.arange(len(stages))[::-1]
    ax.barh(y[:4], values[:4], color=[BLUE, TEAL, GREEN, "#2f7a3a"], height=0.62)
    ax.barh(y[4], c["disputed_won"], color=ORANGE, height=0.62, label="disputed, won")
    ax.barh(y[4], c["disputed_lost"], left=c["disputed_won"], color=RED, height=0.62, label="disputed, lost")
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f"  {v:,} ({v / c['posted']:.0%})", va="center", fontsize=9)
    ax.set_yticks(y, stages)
    ax.set_xlim(0.0, c["posted"] * 1.3)
    ax.set_xlabel("tasks")
    _thousands(ax, "x")
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(f"Task funnel ({c['posted']:,} tasks posted)")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    status = tasks["status"].astype(str)
    names = list(TASK_STATUSES) + sorted(set(status) - set(TASK_STATUSES))
    counts = [int((status == s).sum()) for s in names]
    yy = np.arange(len(names))[::-1]
    colors = {"completed": GREEN, "failed": RED, "refunded": GREY, "expired": BROWN, "disputed_won": ORANGE,
              "disputed_lost": "#9d2a2b", "open": BLUE}
    ax2.barh(yy, counts, color=[colors.get(s, PURPLE) for s in names], height=0.62)
    for yi, v in zip(yy, counts, strict=True):
        ax2.text(v, yi, f"  {v:,}", va="center", fontsize=9)
    ax2.set_yticks(yy, names)
    ax2.set_xlim(0.0, max(max(counts), 1) * 1.25)
    ax2.set_xlabel("tasks")
    _thousands(ax2, "x")
    ax2.grid(True, axis="x", alpha=0.3)
    ax2.set_title("Final status")
    return fig


def escrow_tvl(supply: pd.DataFrame, blocks: pd.DataFrame, ctx: TimeContext, *, token_usd: float = 1.0,
               target_usd: float | None = None) -> Figure | None:
    """Tokens held in escrow after each finalized block over time (x: the block's authoring time), with the
    TVL target converted to tokens at ``token_usd`` when it is within reach of the plotted range. None
    when nothing was ever escrowed (no market)."""
    if supply.empty or not supply["escrowed"].any():
        return None
    canon = blocks.loc[blocks["canonical"], ["number", "t_authored"]].drop_duplicates("number")
    times = pd.Series(canon["t_authored"].to_numpy(float), index=canon["number"].to_numpy())
    s = supply.sort_values("block")
    t = s["block"].map(times).to_numpy(float)
    slot = ctx.duration_s / max(len(canon), 1)
    t = np.where(np.isnan(t), s["block"].to_numpy(float) * slot, t)
    tokens = s["escrowed"].to_numpy(float) / TOKEN
    fig, (ax,) = _figure()
    _shade(ax, ctx, phase_labels=True)
    ax.step(ctx.x(t), tokens, where="post", color=BLUE, lw=1.6, label="escrowed")
    top = float(tokens.max()) if tokens.size else 0.0
    title = f"Escrow TVL: {tokens[-1]:,.0f} tokens at the end (max {top:,.0f})"
    if target_usd is not None and token_usd > 0:
        target_tok = target_usd / token_usd
        if target_tok <= 10 * max(top, 1e-9):
            ax.axhline(target_tok, color=RED, ls="--", lw=1.2, label=f"target {target_usd:,.0f} USD")
            top = max(top, target_tok)
        else:
            title += f"; target {target_usd:,.0f} USD off scale"
    ax.set_ylim(0.0, max(top * 1.12, 1.0))
    _thousands(ax)
    ax.set_ylabel(f"escrowed (tokens; 1 token = {token_usd:g} USD)")
    _time_axis(ax, ctx)
    ax.set_title(title)
    _legend_below(fig, [ax])
    return fig


def reputation_by_strategy(agents: pd.DataFrame, *, max_groups: int = 12) -> Figure | None:
    """Reputation at the end of the run, one box per strategy (the ``max_groups`` largest), with every agent
    as a dot (deterministic jitter) and the mean as a diamond; group sizes in the tick labels."""
    a = agents.loc[np.isfinite(agents["reputation"].to_numpy(float))]
    if a.empty:
        return None
    strat = a["strategy"].astype(str)
    sizes = strat.value_counts()
    groups = sorted(sizes.index[:max_groups].tolist(), key=lambda s: (-sizes[s], s))
    data = [a.loc[strat == g, "reputation"].to_numpy(float) for g in groups]
    fig = Figure(figsize=(max(6.0, 1.1 * len(groups) + 3.0), 4.8), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.grid(True, axis="y", alpha=0.3)
    pos = np.arange(1, len(groups) + 1)
    ax.boxplot(data, positions=pos, widths=0.55, showfliers=False, patch_artist=True,
               boxprops={"facecolor": "#dce6f1", "edgecolor": BLUE}, medianprops={"color": BLUE, "lw": 1.8})
    rng = np.random.default_rng(0)
    for p, d in zip(pos, data, strict=True):
        shown = d if d.size <= 400 else np.sort(d)[:: math.ceil(d.size / 400)]
        ax.scatter(p + rng.uniform(-0.18, 0.18, shown.size), shown, s=7, color=GREY, alpha=0.45, lw=0, zorder=3)
        ax.plot([p], [d.mean()], "D", color=RED, ms=6, zorder=4)
    ax.set_xticks(pos, [f"{g}\n(n={d.size:,})" for g, d in zip(groups, data, strict=True)], fontsize=9)
    ax.set_xlabel("strategy")
    ax.set_ylabel("reputation at run end")
    hidden = len(sizes) - len(groups)
    note = f"; {hidden} smaller strategies not shown" if hidden else ""
    ax.set_title("Reputation by strategy\n"
                 f"box = quartiles, whiskers = 1.5 IQR, red diamond = mean, dots = agents{note}", fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------------------
# 9–11. chain health


def finality_progress(blocks: pd.DataFrame, ctx: TimeContext, *, slot_s: float = 6.0) -> Figure | None:
    """Best (canonical) and finalized height over time, and below it the unfinalized depth (best −
    finalized, blocks): a finality stall is a rising ramp that drops when finality catches up. None when
    no block was finalized (finality disabled)."""
    canon = blocks.loc[blocks["canonical"]].sort_values("t_authored")
    if canon.empty or not canon["t_finalized"].notna().any():
        return None
    step = max(slot_s / 3.0, ctx.duration_s / 6000.0)
    grid = np.arange(0.0, ctx.duration_s + step, step)
    ta, num = canon["t_authored"].to_numpy(float), canon["number"].to_numpy(float)
    best = np.maximum.accumulate(num)
    i = np.searchsorted(ta, grid, side="right") - 1
    best_h = np.where(i >= 0, best[np.maximum(i, 0)], 0.0)
    fin = canon.loc[canon["t_finalized"].notna()].sort_values("t_finalized")
    tf, fnum = fin["t_finalized"].to_numpy(float), np.maximum.accumulate(fin["number"].to_numpy(float))
    j = np.searchsorted(tf, grid, side="right") - 1
    fin_h = np.where(j >= 0, fnum[np.maximum(j, 0)] if fnum.size else 0.0, 0.0)
    fig, (ax, ax2) = _figure(2, height_ratios=[1.0, 1.0])
    x = ctx.x(grid)
    for a in (ax, ax2):
        _shade(a, ctx, legend=a is ax)
    ax.plot(x, best_h, color=BLUE, lw=1.5, label="best (canonical chain)")
    ax.plot(x, fin_h, color=GREEN, lw=1.5, ls="--", label="finalized")
    ax.set_ylabel("block height")
    _thousands(ax)
    depth = best_h - fin_h
    ax2.fill_between(x, depth, color=RED, alpha=0.35, lw=0)
    ax2.plot(x, depth, color=RED, lw=1.0, label="unfinalized blocks (best − finalized)")
    ax2.set_ylabel("unfinalized depth (blocks)")
    ax2.set_ylim(0.0, max(float(depth.max()) * 1.1, 5.0))
    _thousands(ax2)
    _time_axis(ax2, ctx)
    stalls = finality_stalls(blocks, ctx.duration_s, 3.0 * slot_s)
    if stalls:
        a, b = stalls[0]
        title = f"Finality progress: longest stall {b - a:,.0f} s ({ctx.span(a, b)})"
    else:
        title = f"Finality progress: no stall longer than {3 * slot_s:g} s"
    ax.set_title(title)
    _legend_below(fig, [ax, ax2], ncol=3)
    return fig


def validator_availability(outages: pd.DataFrame | None, n_validators: int, ctx: TimeContext) -> Figure | None:
    """Offline intervals per validator (one row each; only validators with an outage when there are more
    than 40) and, below, validators online over time against the GRANDPA supermajority (> 2/3)."""
    if outages is None or outages.empty:
        return None
    o = outages.assign(kind=outages["kind"].astype(str) if "kind" in outages else "outage")
    rows = list(range(n_validators)) if n_validators <= 40 else sorted(int(v) for v in o["validator"].unique())
    row_of = {v: k for k, v in enumerate(rows)}
    fig, (ax, ax2) = _figure(2, height_ratios=[max(1.0, min(len(rows), 40) / 12.0), 1.0])
    span = ctx.x(ctx.duration_s)
    ax.barh(np.arange(len(rows)), span, left=0.0, height=0.7, color=GREEN, alpha=0.25, lw=0, label="online")
    seen: set[str] = set()
    for r in o.sort_values(["validator", "start"]).itertuples(index=False):
        a, b = ctx.x(max(0.0, float(r.start))), ctx.x(min(ctx.duration_s, float(r.end)))
        label = f"offline: {r.kind}" if r.kind not in seen else "_nolegend_"
        seen.add(r.kind)
        ax.barh(row_of[int(r.validator)], b - a, left=a, height=0.7, color=OUTAGE_KIND_COLORS.get(r.kind, RED),
                lw=0, label=label)
    ax.set_yticks(np.arange(len(rows)), [str(v) for v in rows], fontsize=8 if len(rows) <= 20 else 6)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_ylabel("validator" if len(rows) == n_validators else "validator (those that went offline)")
    ax.grid(False)
    step = max(1.0, ctx.duration_s / 6000.0)
    grid = np.arange(0.0, ctx.duration_s + step, step)
    online = n_validators - offline_at(o, grid)
    need = supermajority(n_validators)
    ax2.step(ctx.x(grid), online, where="post", color=BLUE, lw=1.5, label="validators online")
    ax2.axhline(need, color=RED, ls="--", lw=1.2, label=f"GRANDPA supermajority ({need} of {n_validators})")
    ax2.set_ylim(0.0, n_validators * 1.1)
    ax2.set_ylabel("validators online")
    _shade(ax2, ctx)
    _time_axis(ax2, ctx)
    below = float((online < need).mean() * ctx.duration_s)
    quorum = f"below the GRANDPA supermajority for {below:,.0f} s" if below > 0 else "never below the supermajority"
    ax.set_title(f"Validator availability: {o['validator'].nunique()} of {n_validators} validators went offline; "
                 + quorum)
    _legend_below(fig, [ax, ax2], ncol=4)
    return fig


def call_outcomes(call_failures: pd.DataFrame | None, ctx: TimeContext,
                  totals: Mapping[str, tuple[int, int]] | None = None) -> Figure | None:
    """Calls that failed at dispatch because they were paused: per call, per minute over time (stacked), and
    the run totals per call, dispatched ok vs failed (``totals``: call → (ok, failed_paused); from the
    table's own columns when not given)."""
    if call_failures is None or call_failures.empty or float(call_failures["failed_paused"].sum()) <= 0:
        return None
    cf = call_failures.assign(call=call_failures["call"].astype(str))
    calls = sorted(cf["call"].unique())
    bin_s = rate_bin_s(ctx.duration_s)
    fig, (ax, ax2) = _figure(2, sharex=False, height_ratios=[1.3, 1.0])
    _shade(ax, ctx)
    stacks, palette = [], [PURPLE, ORANGE, BROWN, TEAL, PINK, BLUE, YELLOW, GREY]
    for c in calls:
        sub = cf.loc[cf["call"] == c]
        t, r = binned_rate(sub["t"].to_numpy(float), sub["failed_paused"].to_numpy(float), ctx.duration_s, bin_s)
        stacks.append(r * bin_s)
    ax.stackplot(ctx.x(t), *stacks, step="post", colors=[palette[i % len(palette)] for i in range(len(calls))],
                 labels=calls, alpha=0.9)
    ax.legend(frameon=False, fontsize=8, loc="best", ncol=2)
    ax.set_ylabel(f"calls failed (paused) per {'minute' if bin_s == 60 else f'{bin_s / 60:g} min'}")
    _thousands(ax)
    _time_axis(ax, ctx)
    ax.set_title("Calls failed at dispatch because paused (CallFiltered)")
    if totals is None:
        g = cf.groupby("call")[["ok", "failed_paused"]].sum()
        totals = {c: (int(g.loc[c, "ok"]), int(g.loc[c, "failed_paused"])) for c in g.index}
    names = sorted(totals)
    ok = np.array([totals[n][0] for n in names], float)
    bad = np.array([totals[n][1] for n in names], float)
    y = np.arange(len(names))[::-1]
    ax2.barh(y, ok, color=GREEN, height=0.6, label="dispatched ok")
    ax2.barh(y, bad, left=ok, color=RED, height=0.6, label="failed: paused")
    for yi, o_, b_ in zip(y, ok, bad, strict=True):
        share = b_ / (o_ + b_) if o_ + b_ else 0.0
        ax2.text(o_ + b_, yi, f"  {share:.1%} failed", va="center", fontsize=8.5)
    ax2.set_yticks(y, names, fontsize=8.5)
    ax2.set_xlim(0.0, float((ok + bad).max()) * 1.25 if len(names) else 1.0)
    ax2.set_xlabel("calls in the run")
    _thousands(ax2, "x")
    ax2.grid(True, axis="x", alpha=0.3)
    ax2.grid(False, axis="y")
    ax2.set_title("Totals per call")
    _legend_below(fig, [ax2])
    return fig
