"""Hydra multiruns (sweeps): collect every job into one table, summarise it, plot it, and re-run only
what is unfinished.

A multirun dir is what ``ainur-sim -m …`` writes: ``multirun/DATE/TIME/{multirun.yaml, 0/, 1/, …}``. Each
job dir holds Hydra's ``.hydra/`` (written when the job *starts*) and, once the run has finished, the
run-dir files of CONTRACT.md, ``kpis.json`` last. A job is

- ``ok`` when it has ``kpis.json``,
- ``failed`` when it wrote ``error.txt`` (the app does that on an exception, see ``write_error``),
- ``incomplete`` otherwise: still running, or killed before it finished.

``sweep_table`` has one row per job: ``job``, ``status``, one column per override key of the job (values
parsed by Hydra's override grammar, so ``4`` is an int and ``0.25`` a float), ``seed``, ``wall_s``, then
one column per KPI named exactly as in ``kpis.json`` (``block_time_mean_s``, …; NaN where the KPI is null
or the job did not finish), then ``error`` (first line of ``error.txt``). ``write_sweep`` turns it into
``sweep.parquet``, ``sweep.md`` and ``plots/*.png``. ``report_cli`` is ``ainur-sim-report DIR``.

Confidence intervals are Student-t intervals of the mean over seeds; the t quantile is computed here
(regularised incomplete beta + bisection) because scipy is only a dev dependency.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ainur_sim.kpi import KPI_NAMES, KPI_UNITS
from ainur_sim.result import TABLES

#: Written by the app into the job dir when a run raises; its presence marks a failed job.
ERROR_FILE = "error.txt"
#: Environment variable that makes the app skip jobs whose dir already holds the same finished run.
SKIP_FINISHED_ENV = "AINUR_SIM_SKIP_FINISHED"
#: Config subtrees that do not change results, ignored when deciding whether a job is already finished.
PRESENTATION_KEYS = ("output",)
#: Columns of ``sweep_table`` that are not overrides or KPIs (an override key equal to one of these is
#: stored as ``override.<key>``; ``seed`` is the exception: the override and the run's seed are one column).
BASE_COLUMNS = ("job", "status", "seed", "wall_s", "error")
SEED = "seed"
CI_LEVEL = 0.95
#: Up to this many values, a parameter's summary in ``sweep.md`` has one column per value (rows: KPIs).
MAX_SUMMARY_COLUMNS = 8

_PROG = "ainur-sim-report"
_SWEEP_PLOT = re.compile(r".+(_vs_.+|_across_seeds)\.png$")


# ---------------------------------------------------------------------------------------------------
# Student-t confidence intervals


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for t ≥ 0, T ~ Student t with ``df`` degrees of freedom."""
    return 0.5 * _betai(df / 2.0, 0.5, df / (df + t * t))


def student_t_ppf(p: float, df: float) -> float:
    """Quantile ``t`` with P(T ≤ t) = p of Student's t with ``df`` > 0 degrees of freedom.

    Bisection on the upper tail, accurate to ~1e-12 relative; no scipy needed at run time.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_ppf(1.0 - p, df)
    tail = 1.0 - p
    lo, hi = 0.0, 1.0
    while _t_upper_tail(hi, df) > tail:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_upper_tail(mid, df) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class MeanCI:
    """Mean of ``n`` values and its Student-t confidence interval ``[lo, hi]`` (NaN when n < 2)."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2.0


def mean_ci(values: Iterable[float], level: float = CI_LEVEL) -> MeanCI:
    """Mean and two-sided ``level`` Student-t CI of the mean; NaN/None values are dropped."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return MeanCI(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n == 1:
        return MeanCI(mean, math.nan, math.nan, 1)
    half = student_t_ppf(0.5 + level / 2.0, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return MeanCI(mean, mean - half, mean + half, n)


# ---------------------------------------------------------------------------------------------------
# Reading a multirun dir


def _job_num(job_dir: Path) -> int:
    if job_dir.name.isdigit():
        return int(job_dir.name)
    try:
        hydra_cfg = yaml.safe_load((job_dir / ".hydra" / "hydra.yaml").read_text()) or {}
        return int(hydra_cfg["hydra"]["job"]["num"])
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return -1


def find_runs(multirun_dir: str | os.PathLike[str]) -> list[Path]:
    """Job dirs of a multirun, finished or not, ordered by job number.

    A job dir is a direct subdir holding ``.hydra/`` (Hydra writes it when the job starts). Numbered dirs
    (the default ``hydra.sweep.subdir``) and named ones (e.g. ``${hydra.job.override_dirname}``, whose
    number is read from ``.hydra/hydra.yaml``) are both found.
    """
    d = Path(multirun_dir)
    if not d.is_dir():
        return []
    jobs = [p for p in d.iterdir() if p.is_dir() and (p / ".hydra").is_dir()]
    return sorted(jobs, key=lambda p: (_job_num(p), p.name))


def is_multirun_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a Hydra multirun dir: it has ``multirun.yaml`` or at least one job dir."""
    d = Path(path)
    return d.is_dir() and ((d / "multirun.yaml").is_file() or bool(find_runs(d)))


def read_error(job_dir: str | os.PathLike[str]) -> str | None:
    """First line of the job's ``error.txt`` (the exception), or None if it has none."""
    f = Path(job_dir) / ERROR_FILE
    if not f.is_file():
        return None
    lines = f.read_text(errors="replace").strip().splitlines()
    return lines[0].strip() if lines else "failed (empty error.txt)"


def write_error(job_dir: str | os.PathLike[str], exc: BaseException) -> Path:
    """Write ``error.txt`` for a run that raised: line 1 ``Type: message``, then the traceback.

    Called by the app in its ``except`` clause before re-raising, so a sweep can tell a failed job from
    one that was killed (which leaves neither ``error.txt`` nor ``kpis.json``).
    """
    d = Path(job_dir)
    d.mkdir(parents=True, exist_ok=True)
    head = traceback.format_exception_only(type(exc), exc)[-1].strip().replace("\n", " ")
    body = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    f = d / ERROR_FILE
    f.write_text(f"{head}\n\n{body}")
    return f


def _read_kpis(job_dir: Path) -> dict[str, Any] | None:
    try:
        payload = json.loads((job_dir / "kpis.json").read_text())
    except (OSError, ValueError):
        return None
    return payload if isinstance(payload, dict) and isinstance(payload.get("kpis"), dict) else None


def job_status(job_dir: str | os.PathLike[str]) -> str:
    """``failed`` (has ``error.txt``), ``ok`` (has a readable ``kpis.json``) or ``incomplete``."""
    d = Path(job_dir)
    if (d / ERROR_FILE).is_file():
        return "failed"
    return "ok" if _read_kpis(d) is not None else "incomplete"


def _override_value(ov: Any) -> Any:
    value = ov.value()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return ov.get_value_element_as_str()  # lists, dicts, sweeps: keep the text


def parse_overrides(lines: Sequence[str]) -> dict[str, Any]:
    """``{key: value}`` of Hydra override strings, values typed by Hydra's grammar (deletions dropped).

    ``+``/``++`` prefixes are not part of the key; a ``group@package`` override keeps its ``@package``.
    Unparsable lines fall back to splitting at the first ``=`` and keeping the text.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    out: dict[str, Any] = {}
    for text in lines:
        try:
            ov = parser.parse_overrides([str(text)])[0]
        except Exception:  # noqa: BLE001 - a hand-edited file should not break the table
            key, sep, value = str(text).lstrip("+~").partition("=")
            if sep:
                out[key] = value
            continue
        if ov.is_delete():
            continue
        key = ov.key_or_group if ov.package is None else f"{ov.key_or_group}@{ov.package}"
        out[key] = _override_value(ov)
    return out


def _job_overrides(job_dir: Path) -> dict[str, Any]:
    try:
        lines = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    except (OSError, yaml.YAMLError):
        return {}
    return parse_overrides([str(x) for x in lines])


def _job_seed(job_dir: Path, payload: dict[str, Any] | None, overrides: dict[str, Any]) -> Any:
    if payload is not None and payload.get("seed") is not None:
        return payload["seed"]
    if SEED in overrides:
        return overrides[SEED]
    try:
        composed = yaml.safe_load((job_dir / ".hydra" / "config.yaml").read_text()) or {}
        return composed.get(SEED)
    except (OSError, AttributeError, yaml.YAMLError):
        return None


def _tidy_column(values: pd.Series) -> pd.Series:
    """Make a column storable in parquet: numbers stay numbers, mixed kinds become text."""
    kinds = {type(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))}
    if not kinds or kinds <= {int, float} or len(kinds) == 1:
        return values
    return values.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))


def sweep_table(multirun_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per job of the multirun (see the module docstring for the columns).

    ``df.attrs["overrides"]`` lists the override columns and ``df.attrs["kpis"]`` the KPI columns.
    """
    rows: list[dict[str, Any]] = []
    override_keys: list[str] = []
    kpi_names: list[str] = list(KPI_NAMES)
    for job_dir in find_runs(multirun_dir):
        overrides = _job_overrides(job_dir)
        payload = _read_kpis(job_dir)
        status = job_status(job_dir)
        row: dict[str, Any] = {"job": _job_num(job_dir), "status": status}
        for key, value in overrides.items():
            col = key if key == SEED or key not in BASE_COLUMNS else f"override.{key}"
            if col not in override_keys:
                override_keys.append(col)
            row[col] = value
        row[SEED] = _job_seed(job_dir, payload, overrides)
        row["wall_s"] = payload.get("wall_s") if payload else None
        kpis = payload["kpis"] if payload else {}
        for name, entry in kpis.items():
            if name not in kpi_names:
                kpi_names.append(name)
            row[name] = entry.get("value") if isinstance(entry, dict) else entry
        row["error"] = read_error(job_dir) if status == "failed" else None
        rows.append(row)
    cols = ["job", "status", *[k for k in override_keys if k != SEED], SEED, "wall_s", *kpi_names, "error"]
    df = pd.DataFrame(rows, columns=cols)
    df["job"] = df["job"].astype("int64")
    for name in ["wall_s", *kpi_names]:
        df[name] = pd.to_numeric(df[name], errors="coerce").astype("float64")
    for col in [*override_keys, SEED]:
        df[col] = _tidy_column(df[col])
    df["error"] = df["error"].astype(object)
    df.attrs["overrides"] = override_keys
    df.attrs["kpis"] = kpi_names
    return df


def swept_parameters(df: pd.DataFrame) -> list[str]:
    """Override columns that take more than one value across the jobs (``seed`` included)."""
    return [c for c in df.attrs.get("overrides", []) if df[c].astype(str).nunique() > 1]


# ---------------------------------------------------------------------------------------------------
# sweep.md


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, bool | np.bool_):
        return str(bool(v)).lower()
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        v = float(v)
        return f"{v:,.0f}" if abs(v) >= 1e5 else f"{v:.5g}"
    return str(v).replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _fmt_ci(ci: MeanCI) -> str:
    if ci.n == 0:
        return "—"
    if ci.n == 1:
        return f"{_fmt(ci.mean)} (1 run)"
    return f"{_fmt(ci.mean)} [{_fmt(ci.lo)}, {_fmt(ci.hi)}]"


def _sort_values(values: Iterable[Any]) -> list[Any]:
    vals = list(dict.fromkeys(values))
    try:
        return sorted(vals)
    except TypeError:
        return sorted(vals, key=str)


def _kpis_with_values(ok: pd.DataFrame, kpis: Sequence[str]) -> list[str]:
    return [k for k in kpis if ok[k].notna().any()]


def summary_rows(df: pd.DataFrame, param: str, kpis: Sequence[str]) -> list[tuple[Any, int, int, list[MeanCI]]]:
    """Per value of ``param``: (value, ok runs, all runs, CI of each KPI over the ok runs with that value)."""
    ok = df[df["status"] == "ok"]
    out = []
    for value in _sort_values(df[param].dropna()):
        sel = ok[ok[param] == value]
        n_all = int((df[param] == value).sum())
        out.append((value, len(sel), n_all, [mean_ci(sel[k]) for k in kpis]))
    return out


def _unit(name: str) -> str:
    return KPI_UNITS.get(name, "")


def _kpi_label(name: str) -> str:
    unit = _unit(name)
    return f"{name} ({unit})" if unit else name


def sweep_markdown(df: pd.DataFrame, title: str, plots: Sequence[str]) -> str:
    """The text of ``sweep.md``: counts, per-parameter CI summaries, the run table and the figures."""
    kpis = df.attrs.get("kpis", list(KPI_NAMES))
    overrides = df.attrs.get("overrides", [])
    ok = df[df["status"] == "ok"]
    measured = _kpis_with_values(ok, kpis)
    swept = swept_parameters(df)
    fixed = [c for c in overrides if c not in swept]
    counts = df["status"].value_counts()
    lines = [f"# Sweep `{title}`", "",
             f"{len(df)} jobs: {counts.get('ok', 0)} ok, {counts.get('failed', 0)} failed, "
             f"{counts.get('incomplete', 0)} incomplete (no `kpis.json`: still running or killed).", ""]
    if swept:
        lines.append("Swept: " + ", ".join(f"`{c}` ({df[c].astype(str).nunique()} values)" for c in swept) + ".")
    if fixed:
        lines.append("Fixed overrides: " + ", ".join(f"`{c}={_fmt(df[c].iloc[0])}`" for c in fixed) + ".")
    lines.append("")
    bad = df[df["status"] != "ok"]
    if len(bad):
        lines += ["## Unfinished jobs", ""]
        lines += [f"- job {r.job}: {r.status}" + (f": `{r.error}`" if r.error else "") for r in bad.itertuples()]
        lines += ["", f"Re-run the same command with `{SKIP_FINISHED_ENV}=1` to run only these (docs/sweeps.md).", ""]
    pct = f"{CI_LEVEL:.0%}"
    for param in (p for p in swept if p != SEED):
        others = [c for c in swept if c not in (param, SEED)]
        lines += [f"## By `{param}`", ""]
        note = f"Mean and {pct} Student-t confidence interval over the ok runs with that value"
        note += f" (pooled over {', '.join(f'`{c}`' for c in others)})." if others else "."
        lines += [note, ""]
        if not measured:
            lines += ["No KPI has a value in any ok run.", ""]
            continue
        summary = summary_rows(df, param, measured)
        if len(summary) <= MAX_SUMMARY_COLUMNS:  # few values: one column per value, one row per KPI
            header = ["KPI", *[f"`{param}={_fmt(v)}`" for v, *_ in summary]]
            rows = [("ok runs", *[f"{n_ok}/{n_all}" for _, n_ok, n_all, _ in summary])]
            rows += [(_kpi_label(k), *[_fmt_ci(cis[i]) for *_, cis in summary]) for i, k in enumerate(measured)]
        else:
            header = [f"`{param}`", "ok runs", *[_kpi_label(k) for k in measured]]
            rows = [(v, f"{n_ok}/{n_all}", *[_fmt_ci(c) for c in cis]) for v, n_ok, n_all, cis in summary]
        lines += _md_table(header, rows) + [""]
    if SEED in df.columns and ok[SEED].nunique() > 1 and measured:
        lines += [f"## Over all ok runs ({len(ok)})", ""]
        lines += _md_table(["KPI", f"mean [{pct} CI]", "min", "max"],
                           [(_kpi_label(k), _fmt_ci(mean_ci(ok[k])), ok[k].min(), ok[k].max()) for k in measured])
        lines.append("")
    lines += ["## Runs", ""]
    cols = ["job", "status", *[c for c in overrides if c != SEED], SEED, "wall_s", *measured]
    lines += _md_table([f"`{c}`" for c in cols], df[cols].itertuples(index=False, name=None))
    never = [k for k in kpis if k not in measured]
    if never:
        lines += ["", "Null in every ok run (not measurable by these runs): " + ", ".join(f"`{k}`" for k in never)
                  + ". All KPI columns are in `sweep.parquet`."]
    if plots:
        lines += ["", "## Figures", ""] + [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------
# Plots


def _figure() -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # no pyplot: no global state, no backend switch needed

    fig = Figure(figsize=(7.5, 4.5), dpi=110)
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    return fig, ax


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    return path


def _param_label(param: str) -> str:
    leaf = param.rsplit(".", 1)[-1]
    for suffix, unit in (("_ms", "ms"), ("_s", "s"), ("_pct", "%")):
        if leaf.endswith(suffix):
            return f"{param} ({unit})"
    return param


def _is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
               for v in values)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)


def plot_kpi_vs_param(df: pd.DataFrame, param: str, kpi: str, path: Path, max_series: int = 6) -> Path:
    """KPI against one swept parameter: mean ± CI over seeds per value, one line per combination of the
    other swept parameters (pooled when there are more than ``max_series``), individual runs as dots."""
    ok = df[(df["status"] == "ok") & df[kpi].notna()]
    others = [c for c in swept_parameters(df) if c not in (param, SEED)]
    groups: list[tuple[str, pd.DataFrame]] = [("all runs", ok)]
    if others:
        combos = list(ok.groupby(others, sort=True, dropna=False))
        if 1 < len(combos) <= max_series:
            groups = [(", ".join(f"{c}={_fmt(v)}" for c, v in zip(others, key if isinstance(key, tuple) else (key,),
                                                                  strict=True)), sub) for key, sub in combos]
    values = _sort_values(ok[param].dropna())
    numeric = _is_numeric(values)
    pos = {v: (float(v) if numeric else i) for i, v in enumerate(values)}
    fig, ax = _figure()
    for label, sub in groups:
        xs, means, errs = [], [], []
        for v in values:
            ci = mean_ci(sub.loc[sub[param] == v, kpi])
            if ci.n:
                xs.append(pos[v])
                means.append(ci.mean)
                errs.append(ci.half_width if ci.n > 1 else 0.0)
        ax.scatter([pos[v] for v in sub[param]], sub[kpi], s=12, color="0.6", alpha=0.6, zorder=1)
        ax.errorbar(xs, means, yerr=errs, marker="o", capsize=4, lw=1.5, ls="-" if numeric else "none",
                    label=label, zorder=2)
    if not numeric or len(values) <= 12:
        ax.set_xticks(list(pos.values()), [_fmt(v) for v in values])
    n_seeds = ok[SEED].nunique() if SEED in ok.columns else 1
    ax.set_title(f"{kpi} vs {param}\nmean ± {CI_LEVEL:.0%} CI (Student t) over {n_seeds} seed(s); dots: single runs")
    ax.set_xlabel(_param_label(param))
    ax.set_ylabel(_kpi_label(kpi))
    if len(groups) > 1:
        ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def plot_kpi_across_seeds(df: pd.DataFrame, kpi: str, path: Path) -> Path:
    """A KPI in each seed's run, with the mean and its CI band: the spread a seed-only sweep measures."""
    ok = df[(df["status"] == "ok") & df[kpi].notna()].sort_values(SEED)
    ci = mean_ci(ok[kpi])
    fig, ax = _figure()
    seeds = ok[SEED].to_numpy()
    x = seeds if _is_numeric(list(seeds)) else np.arange(len(seeds))
    ax.plot(x, ok[kpi], "o", color="#3b75af", label="one run per seed")
    ax.axhline(ci.mean, color="#e15759", lw=1.5, label=f"mean {_fmt(ci.mean)}")
    if ci.n > 1:
        ax.axhspan(ci.lo, ci.hi, color="#e15759", alpha=0.15, label=f"{CI_LEVEL:.0%} CI [{_fmt(ci.lo)}, {_fmt(ci.hi)}]")
    if not _is_numeric(list(seeds)):
        ax.set_xticks(x, [str(s) for s in seeds])
    ax.set_title(f"{kpi} across {ci.n} seeds")
    ax.set_xlabel("seed")
    ax.set_ylabel(_kpi_label(kpi))
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, path)


def write_plots(df: pd.DataFrame, plots_dir: Path) -> list[Path]:
    """The sweep figures: each KPI with values against each swept non-seed parameter, or, when only the
    seed is swept, each KPI across seeds. Old sweep figures in ``plots_dir`` are removed first."""
    plots_dir.mkdir(parents=True, exist_ok=True)
    for old in plots_dir.glob("*.png"):
        if _SWEEP_PLOT.match(old.name):
            old.unlink()
    ok = df[df["status"] == "ok"]
    if ok.empty:
        return []
    measured = _kpis_with_values(ok, df.attrs.get("kpis", list(KPI_NAMES)))
    swept = swept_parameters(df)
    params = [p for p in swept if p != SEED]
    written = []
    for param in params:
        for kpi in measured:
            written.append(plot_kpi_vs_param(df, param, kpi, plots_dir / f"{kpi}_vs_{_safe(param)}.png"))
    if not params and SEED in swept:
        written += [plot_kpi_across_seeds(df, kpi, plots_dir / f"{kpi}_across_seeds.png") for kpi in measured]
    return written


# ---------------------------------------------------------------------------------------------------
# Writing and the CLI


def _replace_write(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_sweep(multirun_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``sweep.parquet``, ``sweep.md`` and ``plots/*.png`` into the multirun dir; return their paths.

    Job dirs are only read, so this can run while a sweep is still going (unfinished jobs are listed).
    """
    d = Path(multirun_dir)
    df = sweep_table(d)
    figures = write_plots(df, d / "plots")
    parquet = d / "sweep.parquet"
    _replace_write(parquet, lambda p: df.to_parquet(p, index=False))
    md = d / "sweep.md"
    text = sweep_markdown(df, str(d), [f.relative_to(d).as_posix() for f in figures])
    _replace_write(md, lambda p: p.write_text(text))
    return [parquet, md, *figures]


def _error(message: str) -> int:
    print(f"{_PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 2


def report_cli(argv: Sequence[str]) -> int:
    """``ainur-sim-report DIR``: rebuild a run dir's report, or a multirun dir's sweep summary.

    Prints the path of ``report.md`` / ``sweep.md``. Returns 2 with a one-line message on stderr for a
    failed or unfinished run and for a path that is neither a run dir nor a multirun dir.
    """
    args = list(argv)
    if args in (["-h"], ["--help"]):
        print(f"usage: {_PROG} DIR   (a run dir: rebuild report.md and plots; a multirun dir: sweep.md, "
              "sweep.parquet and plots)")
        return 0
    if len(args) != 1 or args[0].startswith("-"):
        return _error(f"usage: {_PROG} DIR")
    d = Path(args[0])
    if not d.exists():
        return _error(f"{d}: no such directory")
    if not d.is_dir():
        return _error(f"{d}: not a directory")
    if (d / ERROR_FILE).is_file():
        return _error(f"{d}: run failed: {read_error(d)}")
    if (d / "kpis.json").is_file():
        from ainur_sim.report import write_report
        from ainur_sim.rundir import RunDirError, load_run

        try:
            result = load_run(d)
        except RunDirError as exc:
            return _error(str(exc))
        except (OSError, ValueError, KeyError) as exc:
            return _error(f"{d}: unreadable run dir: {exc}")
        write_report(result, d)
        print(d / "report.md")
        return 0
    if (d / ".hydra").is_dir():
        return _error(f"{d}: run never finished (no kpis.json): still running or killed")
    if is_multirun_dir(d):
        if not find_runs(d):
            return _error(f"{d}: multirun dir without job dirs (no job has started)")
        paths = write_sweep(d)
        print(paths[1])
        return 0
    return _error(f"{d}: not a run dir (no kpis.json) nor a multirun dir (no multirun.yaml, no job dirs)")


# ---------------------------------------------------------------------------------------------------
# Re-running a sweep: skip finished jobs; joblib workers: single-threaded Numba


def skip_finished_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``AINUR_SIM_SKIP_FINISHED`` asks to skip jobs that already finished (1/true/yes/on)."""
    env = os.environ if environ is None else environ
    return env.get(SKIP_FINISHED_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _plain_config(config: Any) -> dict[str, Any]:
    """The config as ``RunResult.config`` records it: a plain, resolved dict, YAML round-tripped."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(config, DictConfig):
        plain = OmegaConf.to_container(config, resolve=True)
    elif is_dataclass(config) and not isinstance(config, type):
        plain = OmegaConf.to_container(OmegaConf.structured(config), resolve=True)
    else:
        plain = dict(config)
    return yaml.safe_load(yaml.safe_dump(plain, sort_keys=False)) or {}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def already_finished(job_dir: str | os.PathLike[str], config: Any) -> bool:
    """Whether ``job_dir`` already holds a finished run of exactly ``config``, so the job can be skipped.

    ``config`` is what the job would run: the typed ``ainur_sim.config.Config`` (or the resolved dict that
    ``RunResult.config`` holds). It is compared with the run's own ``config.yaml``, presentation-only keys
    (``output``) aside. Comparing overrides would not work: Hydra rewrites ``.hydra/overrides.yaml`` with
    the *new* job's overrides before the app starts, and a changed sweep renumbers its jobs. The run must
    also have ``kpis.json`` (written last), every table, and no ``error.txt``. Pure: only reads files.
    """
    d = Path(job_dir)
    if (d / ERROR_FILE).exists() or _read_kpis(d) is None:
        return False
    if not all((d / f"{name}.parquet").is_file() for name in TABLES):
        return False
    try:
        stored = yaml.safe_load((d / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    if not isinstance(stored, dict):
        return False
    expected = _plain_config(config)
    for key in PRESENTATION_KEYS:
        stored.pop(key, None)
        expected.pop(key, None)
    return _same(stored, expected)


#: Launchers that run several jobs at once on one machine's cores (module names in their ``_target_``).
POOL_LAUNCHERS = ("hydra_joblib_launcher", "ainur_sim_plugins.fork_joblib_launcher", "hydra_ray_launcher")


def pin_numba_threads(launcher_target: Any, n_threads: int = 1) -> int | None:
    """In a job of a process-pool launcher (joblib, Ray), make Numba use ``n_threads`` threads.

    Returns the thread count set, or None for other launchers (basic: one job at a time, Numba may use
    every core; SLURM: the ``slurm_cpu`` preset exports ``NUMBA_NUM_THREADS`` in the batch script).

    Why in the job: the app's joblib launcher forks its workers, which inherit the main process's Numba
    settings; hydra-joblib-launcher 1.2.0 (loky, where fork is missing) hands its config keys
    to ``joblib.Parallel``, which cannot set a worker's environment, and loky gives each worker
    ``NUMBA_NUM_THREADS = cpu_count // n_jobs`` unless the parent's environment sets it, and Ray sets no
    Numba limit at all. Numba reads that variable once, at import, and ainur_sim imports Numba, so in a
    worker it is normally already imported when the job starts: then ``numba.set_num_threads`` caps the
    job's thread (every parallel region runs on ``n_threads`` threads; the idle pool keeps its size).
    Changing the variable after import is not an option: Numba raises once its pool has started. If
    Numba is not imported yet, setting the variable makes the pool itself ``n_threads`` threads.
    """
    target = str(launcher_target or "")
    if not any(name in target for name in POOL_LAUNCHERS):
        return None
    numba = sys.modules.get("numba")
    if numba is None:
        os.environ["NUMBA_NUM_THREADS"] = str(n_threads)
        return n_threads
    n = max(1, min(n_threads, int(numba.config.NUMBA_NUM_THREADS)))
    numba.set_num_threads(n)
    return n
