"""``report.md`` and figures for one run: the KPI verdict table and plots of what the run measured."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ainur_sim.kpi import canonical_intervals

if TYPE_CHECKING:
    from ainur_sim.result import RunResult


def _fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "share":
        return f"{v:.4f}"
    return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"


def verdict_table(kpis: dict[str, dict[str, Any]]) -> str:
    """Markdown table: KPI, value, unit, target, verdict (pass / FAIL / not judged, with the reason)."""
    lines = ["| KPI | value | unit | target | verdict |", "|---|---:|---|---|---|"]
    for name, row in kpis.items():
        if row["pass"] is True:
            verdict = "pass"
        elif row["pass"] is False:
            verdict = "**FAIL**"
        elif row["value"] is None:
            verdict = f"null: {row.get('reason', '')}"
        else:
            verdict = "reported"
        lines.append(f"| `{name}` | {_fmt_value(row['value'], row['unit'])} | {row['unit']} | "
                     f"{row['target'] or '—'} | {verdict} |")
    return "\n".join(lines)


def _plot_block_intervals(result: RunResult, path: Path) -> bool:
    iv = canonical_intervals(result.blocks)
    if iv.size == 0:
        return False
    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    bins = np.arange(0, max(iv.max(), 1.0) + 0.25, 0.25)
    ax.hist(iv, bins=bins, color="#3b75af", edgecolor="white")
    ax.axvspan(5.5, 6.5, color="#59a14f", alpha=0.15, label="target 6 s ± 0.5 s")
    ax.axvline(iv.mean(), color="#e15759", lw=1.5, label=f"mean {iv.mean():.2f} s")
    ax.set_yscale("log")
    ax.set_xlabel("interval between consecutive canonical blocks (s)")
    ax.set_ylabel("blocks (log scale)")
    ax.set_title("Block time")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(result: RunResult, out: Path) -> list[str]:
    """Write ``report.md`` and ``plots/*.png`` into ``out``; returns the top-level names written."""
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    figures = []
    if _plot_block_intervals(result, plots / "block_time_hist.png"):
        figures.append(("Block time histogram", "plots/block_time_hist.png"))
    cfg = result.config
    scenario = cfg.get("scenario", {}).get("name", "?")
    chain = cfg.get("chain", {})
    failing = [k for k, v in result.kpis.items() if v["pass"] is False]
    lines = [
        f"# ainur-sim run: scenario `{scenario}`",
        "",
        f"seed {result.seed} · {result.duration_s:,.0f} simulated s · {chain.get('n_validators')} validators "
        f"({chain.get('consensus')}, {chain.get('slot_s')} s slots)",
        "",
        "## KPI verdict",
        "",
        verdict_table(result.kpis),
        "",
        f"Failing targets: {', '.join(f'`{k}`' for k in failing) if failing else 'none'}.",
        "",
    ]
    if result.stats:
        lines += ["## Run statistics", ""]
        lines += [f"- `{k}`: {v}" for k, v in result.stats.items()]
        lines.append("")
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{title}]({p})" for title, p in figures]
        lines.append("")
    (out / "report.md").write_text("\n".join(lines))
    return ["report.md", "plots"]
