"""Reproducible experiments: re-run them and compare every metric with its expected value.

An experiment is a directory ``experiments/NAME/`` holding

- ``experiment.py`` with ``run(size: str, seeds: list[int]) -> dict[str, MetricResult]`` — one
  ``MetricResult`` per metric: the mean over seeds, the half-width of its 95 % Student-t CI
  (``sweep.mean_ci``), the number of seeds and the theory value if there is one; optionally
  ``figure(results: dict[str, MetricResult], expected: dict[str, Expectation], path: Path) -> None``
  to draw one figure (written as ``figure.png`` beside the results);
- ``expected.json``: per metric and size, the expected value and its tolerance (schema below and in
  ``experiments/README.md``);
- ``README.md``: question, method, results, how to run.

``expected.json``::

    {"description": "...",
     "metrics": {
        "NAME": {"label": "...", "unit": "s", "source": "where the expected value comes from",
                 "basis": "how the tolerance was derived", "report_only": false,
                 "sizes": {"quick": {"expected": 0.75, "abs_tol": 0.014},
                           "full":  {"expected": 0.75, "rel_tol": 0.01}}}}}

Exactly one of ``abs_tol`` / ``rel_tol`` per size (relative: tolerance = rel_tol · |expected|). A metric
passes when ``|mean − expected| ≤ tolerance``; ``report_only`` metrics are shown but never judged.

``reproduce_cli`` is ``ainur-sim-reproduce [NAME…] [--size quick|full] [--seeds N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import ainur_sim
from ainur_sim.sweep import mean_ci

#: Environment variable naming the experiments root (overrides ``./experiments``).
EXPERIMENTS_ENV = "AINUR_SIM_EXPERIMENTS"
SIZES = ("quick", "full")
DEFAULT_SEEDS = {"quick": 3, "full": 10}
DEFAULT_OUT = "reproduce_out"
EXPECTED_FILE = "expected.json"
EXPERIMENT_FILE = "experiment.py"
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
FIGURE_FILE = "figure.png"

PASS, FAIL, REPORTED, MISSING, ERROR = "pass", "FAIL", "reported", "MISSING", "ERROR"

_PROG = "ainur-sim-reproduce"


class ExperimentError(Exception):
    """A problem with the experiments themselves (root not found, bad ``expected.json``): usage error."""


# ---------------------------------------------------------------------------------------------------
# Metric results and expectations


@dataclass(frozen=True)
class MetricResult:
    """One measured metric: mean over seeds, 95 % CI half-width, number of seeds, theory (if any).

    ``ci`` is NaN with fewer than 2 seeds. ``note`` is free text shown beside the value (e.g. a second
    reference figure); units are the metric's own (see ``expected.json``).
    """

    mean: float
    ci: float
    n: int
    theory: float | None = None
    note: str = ""

    @classmethod
    def from_values(cls, values: Iterable[float], theory: float | None = None, note: str = "") -> MetricResult:
        """Mean and Student-t 95 % half-width of per-seed values (``sweep.mean_ci``)."""
        ci = mean_ci(values)
        return cls(ci.mean, ci.half_width, ci.n, None if theory is None else float(theory), note)


@dataclass(frozen=True)
class Expectation:
    """What one metric should measure at one size: ``|mean − expected| ≤ tolerance`` (absolute)."""

    expected: float
    tolerance: float
    relative: float | None = None  # the rel_tol it came from, for display
    report_only: bool = False
    label: str = ""
    unit: str = ""
    source: str = ""
    basis: str = ""

    def verdict(self, result: MetricResult | None) -> str:
        """``pass``/``FAIL``/``reported``/``MISSING`` for a measured result (None = not measured)."""
        if result is None:
            return MISSING
        if self.report_only:
            return REPORTED
        if not math.isfinite(result.mean):
            return FAIL
        return PASS if abs(result.mean - self.expected) <= self.tolerance * (1 + 1e-12) else FAIL


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ExperimentError(f"{where}: must be a finite number, got {value!r}")
    return float(value)


def _size_expectation(spec: Mapping[str, Any], meta: Mapping[str, Any], where: str) -> Expectation:
    """Parse one ``sizes.SIZE`` entry of a metric."""
    if not isinstance(spec, Mapping) or "expected" not in spec:
        raise ExperimentError(f"{where}: needs an 'expected' value")
    expected = _number(spec["expected"], f"{where}.expected")
    kinds = [k for k in ("abs_tol", "rel_tol") if k in spec]
    if len(kinds) != 1:
        raise ExperimentError(f"{where}: needs exactly one of abs_tol, rel_tol")
    tol = _number(spec[kinds[0]], f"{where}.{kinds[0]}")
    if tol < 0:
        raise ExperimentError(f"{where}.{kinds[0]}: must be ≥ 0, got {tol}")
    relative = tol if kinds[0] == "rel_tol" else None
    absolute = tol * abs(expected) if relative is not None else tol
    return Expectation(expected, absolute, relative, bool(meta.get("report_only", False)),
                       str(meta.get("label", "")), str(meta.get("unit", "")), str(meta.get("source", "")),
                       str(meta.get("basis", "")))


def load_expected(path: Path, size: str) -> dict[str, Expectation]:
    """The expectations of every metric at ``size`` from an ``expected.json``; ExperimentError if malformed.

    Every metric must define every size in ``SIZES``.
    """
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ExperimentError(f"{path}: cannot read ({exc})") from None
    metrics = doc.get("metrics") if isinstance(doc, Mapping) else None
    if not isinstance(metrics, Mapping) or not metrics:
        raise ExperimentError(f"{path}: needs a non-empty 'metrics' object")
    out: dict[str, Expectation] = {}
    for name, meta in metrics.items():
        sizes = meta.get("sizes") if isinstance(meta, Mapping) else None
        missing = [s for s in SIZES if not isinstance(sizes, Mapping) or s not in sizes]
        if missing:
            raise ExperimentError(f"{path}: metric {name!r} has no entry for size(s) {', '.join(missing)}")
        out[name] = _size_expectation(sizes[size], meta, f"{path.name}: {name}.sizes.{size}")
    return out


# ---------------------------------------------------------------------------------------------------
# Finding and loading experiments


def experiments_root(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Path:
    """The experiments directory: ``$AINUR_SIM_EXPERIMENTS``, else ``./experiments``, else the checkout's.

    The last is ``<package parent>/experiments`` (an editable install inside the repository).
    Raises ExperimentError if none exists.
    """
    env = os.environ if environ is None else environ
    if env.get(EXPERIMENTS_ENV):
        root = Path(env[EXPERIMENTS_ENV])
        if not root.is_dir():
            raise ExperimentError(f"{EXPERIMENTS_ENV}={root} is not a directory")
        return root
    local = (cwd or Path.cwd()) / "experiments"
    if local.is_dir():
        return local
    checkout = Path(ainur_sim.__file__).resolve().parent.parent / "experiments"
    if checkout.is_dir():
        return checkout
    raise ExperimentError(f"no experiments directory: set {EXPERIMENTS_ENV} or run from the repository root")


def find_experiments(root: str | os.PathLike[str]) -> dict[str, Path]:
    """Experiments under ``root`` by name (sorted): subdirs holding ``experiment.py`` and ``expected.json``."""
    base = Path(root)
    if not base.is_dir():
        return {}
    found = [d for d in base.iterdir()
             if d.is_dir() and not d.name.startswith((".", "_"))
             and (d / EXPERIMENT_FILE).is_file() and (d / EXPECTED_FILE).is_file()]
    return {d.name: d for d in sorted(found, key=lambda d: d.name)}


def load_experiment(path: Path) -> ModuleType:
    """Import ``path/experiment.py`` as a fresh module (not cached in ``sys.modules`` across roots)."""
    module_name = f"_ainur_sim_experiment_{path.name}"
    spec = importlib.util.spec_from_file_location(module_name, path / EXPERIMENT_FILE)
    if spec is None or spec.loader is None:
        raise ExperimentError(f"{path / EXPERIMENT_FILE}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses in the module need it while it executes
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(module_name, None)
    if not callable(getattr(module, "run", None)):
        raise ExperimentError(f"{path / EXPERIMENT_FILE}: defines no run(size, seeds)")
    return module


# ---------------------------------------------------------------------------------------------------
# Comparing and formatting


@dataclass(frozen=True)
class Row:
    """One metric of one experiment run: what was measured, what was expected, and the verdict."""

    metric: str
    result: MetricResult | None
    expectation: Expectation | None
    verdict: str


def compare(results: Mapping[str, MetricResult], expected: Mapping[str, Expectation]) -> list[Row]:
    """Rows in ``expected.json`` order, then measured metrics without an expectation (reported only)."""
    rows = [Row(name, results.get(name), exp, exp.verdict(results.get(name))) for name, exp in expected.items()]
    rows += [Row(name, res, None, REPORTED) for name, res in results.items() if name not in expected]
    return rows


def passed(rows: Sequence[Row]) -> bool:
    """True when no row failed or is missing."""
    return all(r.verdict in (PASS, REPORTED) for r in rows)


def _decimals(scale: float) -> int:
    """Decimals that show two significant digits of ``scale`` (0…8); 4 if ``scale`` is not positive."""
    if not math.isfinite(scale) or scale <= 0:
        return 4
    return int(min(8, max(0, 1 - math.floor(math.log10(scale)))))


def _scale(res: MetricResult | None, exp: Expectation | None) -> float:
    """The resolution worth printing: the larger of the CI half-width and a tenth of the tolerance."""
    candidates = [res.ci if res is not None else math.nan, exp.tolerance / 10 if exp is not None else math.nan]
    finite = [c for c in candidates if math.isfinite(c) and c > 0]
    if finite:
        return max(finite)
    ref = exp.expected if exp is not None else (res.mean if res is not None else math.nan)
    return abs(ref) * 1e-3 if math.isfinite(ref) and ref != 0 else math.nan


def fmt_pm(value: float | None, half: float | None, decimals: int) -> str:
    """``value ± half`` with ``decimals``; the ``±`` part is left out when ``half`` is NaN/None; ``—`` for NaN."""
    if value is None or not math.isfinite(value):
        return "—"
    if half is None or not math.isfinite(half):
        return f"{value:.{decimals}f}"
    return f"{value:.{decimals}f} ± {half:.{decimals}f}"


def _row_cells(row: Row) -> list[str]:
    res, exp = row.result, row.expectation
    d = _decimals(_scale(res, exp))
    measured = fmt_pm(res.mean, res.ci, d) if res is not None else "—"
    if exp is None:
        expected = "—"
    elif exp.report_only:
        expected = f"{exp.expected:g} (reference)"
    else:
        expected = fmt_pm(exp.expected, exp.tolerance, d)
        if exp.relative is not None:
            expected += f" ({100 * exp.relative:g} %)"
    theory = "—" if res is None or res.theory is None else f"{res.theory:.{d}f}"
    if res is not None and res.note:
        theory = res.note if theory == "—" else f"{theory}; {res.note}"
    return [row.metric, measured, str(res.n) if res is not None else "—", expected, theory, row.verdict]


HEADER = ["metric", "measured (95 % CI)", "n", "expected ± tol", "theory", "verdict"]


def text_table(rows: Sequence[Row]) -> str:
    """Aligned plain-text table for the terminal."""
    cells = [HEADER] + [_row_cells(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(HEADER))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Row]) -> str:
    """The same table as Markdown, with each metric's label and unit."""
    out = ["| " + " | ".join(["metric", "unit", *HEADER[1:]]) + " |", "|" + "---|" * (len(HEADER) + 1)]
    for r in rows:
        cells = _row_cells(r)
        label = r.expectation.label if r.expectation and r.expectation.label else r.metric
        unit = r.expectation.unit if r.expectation else ""
        out.append("| " + " | ".join([f"{label} (`{r.metric}`)", unit, *cells[1:]]) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------
# Running one experiment and writing its results


@dataclass
class ExperimentRun:
    """The outcome of one experiment at one size."""

    name: str
    size: str
    seeds: list[int]
    rows: list[Row]
    wall_s: float
    error: str | None = None
    figure: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and passed(self.rows)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    return x


def results_payload(er: ExperimentRun) -> dict[str, Any]:
    """``results.json``: run metadata and, per metric, the measurement, expectation and verdict."""
    metrics = {}
    for r in er.rows:
        entry: dict[str, Any] = {"verdict": r.verdict}
        if r.result is not None:
            entry.update(asdict(r.result))
        if r.expectation is not None:
            e = r.expectation
            entry.update(expected=e.expected, tolerance=e.tolerance, rel_tol=e.relative,
                         report_only=e.report_only, label=e.label, unit=e.unit, source=e.source)
            if r.result is not None:
                entry["deviation"] = r.result.mean - e.expected
        metrics[r.metric] = _jsonable(entry)
    return {"experiment": er.name, "size": er.size, "seeds": er.seeds, "wall_s": er.wall_s,
            "passed": er.ok, "error": er.error, "metrics": metrics,
            "figure": er.figure.name if er.figure else None}


def results_markdown(er: ExperimentRun) -> str:
    """``results.md``: a heading, the run's parameters, the table and the sources of the expected values."""
    status = "all pass" if er.ok else ("ERROR" if er.error else "FAIL")
    lines = [f"# {er.name} — {er.size}, seeds {er.seeds[0]}…{er.seeds[-1]} ({len(er.seeds)}), "
             f"{er.wall_s:.1f} s wall: {status}", ""]
    if er.error:
        lines += ["```", er.error, "```", ""]
    lines += [markdown_table(er.rows), ""]
    sources = [(r.metric, r.expectation) for r in er.rows if r.expectation and (r.expectation.source or
                                                                                r.expectation.basis)]
    if sources:
        lines += ["Expected values and tolerances:", ""]
        lines += [f"- `{m}`: {e.source} Tolerance: {e.basis}".rstrip() for m, e in sources]
        lines.append("")
    if er.figure:
        lines += [f"![{er.name}]({er.figure.name})", ""]
    return "\n".join(lines)


def write_results(er: ExperimentRun, out_dir: Path) -> Path:
    """Write ``results.json`` and ``results.md`` into ``out_dir/NAME/``; returns that directory."""
    d = out_dir / er.name
    d.mkdir(parents=True, exist_ok=True)
    (d / RESULTS_JSON).write_text(json.dumps(results_payload(er), indent=2) + "\n")
    (d / RESULTS_MD).write_text(results_markdown(er))
    return d


def _draw_figure(module: ModuleType, results: Mapping[str, MetricResult], expected: Mapping[str, Expectation],
                 path: Path) -> Path | None:
    """Call the experiment's optional ``figure(results, expected, path)``; a failing figure fails no check."""
    draw: Callable[..., Any] | None = getattr(module, "figure", None)
    if draw is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(dict(results), dict(expected), path)
    except Exception as exc:  # the figure is a by-product; report and go on
        print(f"{_PROG}: figure of {path.parent.name} not drawn: {exc}", file=sys.stderr)
        return None
    return path if path.is_file() else None


def run_experiment(name: str, path: Path, size: str, seeds: list[int], out_dir: Path | None = None) -> ExperimentRun:
    """Run one experiment, compare it with its ``expected.json``, and (with ``out_dir``) write its results.

    ``expected.json`` is validated before the (possibly long) run; ExperimentError if it is malformed.
    An exception inside the experiment is caught and recorded as an error (the run then fails).
    """
    expected = load_expected(path / EXPECTED_FILE, size)
    t0 = time.perf_counter()
    module: ModuleType | None = None
    results: dict[str, MetricResult] = {}
    error = None
    try:
        module = load_experiment(path)
        results = dict(module.run(size, list(seeds)))
    except Exception:  # a crashing experiment is a failed reproduction, not a crash of the CLI
        error = traceback.format_exc().rstrip()
    wall = time.perf_counter() - t0
    er = ExperimentRun(name, size, list(seeds), compare(results, expected), wall, error)
    if out_dir is not None:
        if results and module is not None:
            er.figure = _draw_figure(module, results, expected, out_dir / name / FIGURE_FILE)
        write_results(er, out_dir)
    return er


# ---------------------------------------------------------------------------------------------------
# The command line


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (raised, printed by ``reproduce_cli``)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=_PROG, description="Re-run experiments and compare every metric with its expected value.")
    p.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (default: all)")
    p.add_argument("--size", choices=SIZES, default="quick", help="quick (CI, ~minutes) or full (≥ 10 seeds)")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="seeds 0…N−1 (default: 3 for quick, 10 for full)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"results directory (default: {DEFAULT_OUT}/)")
    return p


def _usage_error(message: str) -> int:
    print(f"{_PROG}: error: {message}", file=sys.stderr)
    return 2


def _select(names: Sequence[str], available: Mapping[str, Path]) -> dict[str, Path]:
    """The requested experiments (all if none named); _UsageError naming the unknown ones."""
    if not names:
        return dict(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        listing = ", ".join(available) or "none"
        raise _UsageError(f"unknown experiment {', '.join(unknown)} (available: {listing})")
    return {n: available[n] for n in dict.fromkeys(names)}


def _summary_line(er: ExperimentRun) -> str:
    judged = [r for r in er.rows if r.verdict != REPORTED]
    ok = sum(r.verdict == PASS for r in judged)
    state = "ERROR" if er.error else ("pass" if er.ok else "FAIL")
    return (f"{er.name}: {state} — {ok}/{len(judged)} metrics within tolerance "
            f"({er.size}, {len(er.seeds)} seeds, {er.wall_s:.1f} s)")


def reproduce_cli(argv: Sequence[str]) -> int:
    """``ainur-sim-reproduce [NAME…] [--size quick|full] [--seeds N] [--out DIR]``.

    Returns 0 when every judged metric of every selected experiment is within its tolerance, 1 when
    any fails (or an experiment raises), 2 on bad usage or an unknown name (one line on stderr).
    """
    try:
        try:
            args = _parser().parse_args(list(argv))
        except SystemExit as done:  # --help printed the usage
            return int(done.code or 0)
        if args.seeds is not None and args.seeds < 1:
            raise _UsageError(f"--seeds must be ≥ 1, got {args.seeds}")
        root = experiments_root()
        selected = _select(args.names, find_experiments(root))
        if not selected:
            raise _UsageError(f"no experiments under {root}")
        for path in selected.values():  # validate every expected.json before the first (long) run
            load_expected(path / EXPECTED_FILE, args.size)
    except (_UsageError, ExperimentError) as exc:
        return _usage_error(str(exc))
    seeds = list(range(args.seeds if args.seeds is not None else DEFAULT_SEEDS[args.size]))
    out_dir = Path(args.out)
    runs = []
    for name, path in selected.items():
        er = run_experiment(name, path, args.size, seeds, out_dir)
        runs.append(er)
        print(f"\n== {name} ({args.size}, seeds {seeds[0]}…{seeds[-1]}) ==")
        print(text_table(er.rows))
        if er.error:
            print(er.error, file=sys.stderr)
        print(_summary_line(er))
        print(f"results: {out_dir / name}")
    return 0 if all(er.ok for er in runs) else 1
