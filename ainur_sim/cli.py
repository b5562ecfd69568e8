"""Command-line entry points: ``ainur-sim`` (a Hydra app), ``ainur-sim-report``, ``ainur-sim-reproduce``.

Bad input never reaches Hydra's run-dir creation: ``ainur-sim`` first composes and validates the config
for the given overrides (every value of every swept key in ``-m`` mode) and exits with status 2 and a
one-line message naming the key if anything is wrong. ``HYDRA_FULL_ERROR=1`` skips that and shows
Hydra's own errors with tracebacks.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from ainur_sim.config import ConfigError

_PASSTHROUGH_FLAGS_SKIP_PREFLIGHT = {
    "-h", "--help", "--hydra-help", "--version", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion",
    "-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "-p", "--package",
    "--experimental-rerun",
}


def _fail(err: ConfigError | str, code: int = 2) -> None:
    print(f"ainur-sim: error: {err}", file=sys.stderr)
    sys.exit(code)


def preflight(argv: Sequence[str]) -> None:
    """Compose and validate the config(s) that ``argv`` asks for; raise ``ConfigError`` on bad input."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    from ainur_sim.compose import compose

    multirun = any(a in ("-m", "--multirun") for a in argv)
    args = [a for a in argv if not a.startswith("-")]
    args = [a for a in args if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except OverrideParseException as exc:
        raise ConfigError("overrides", str(exc).splitlines()[0]) from exc
    base: list[str] = []
    sweeps: list[tuple[str, list[str]]] = []
    for text, ov in zip(args, parsed, strict=True):
        if multirun and ov.is_sweep_override():
            try:
                values = list(ov.sweep_string_iterator())
            except Exception:  # interval() etc. cannot be enumerated: leave them to the sweeper
                continue
            sweeps.append((ov.get_key_element(), values))
        else:
            base.append(text)
    firsts = [f"{k}={v[0]}" for k, v in sweeps if v]
    compose(base + firsts)
    for i, (key, values) in enumerate(sweeps):
        others = [s for j, s in enumerate(firsts) if j != i]
        for v in values[1:]:
            compose(base + others + [f"{key}={v}"])


def _kpi_lines(kpis: dict) -> list[str]:
    lines = [f"{'KPI':28s} {'value':>14s}  {'target':>12s}  verdict"]
    for name, row in kpis.items():
        v = row["value"]
        value = "null" if v is None else (f"{v:.4f}" if abs(v) < 1e4 else f"{v:,.0f}")
        verdict = {True: "pass", False: "FAIL", None: "-"}[row["pass"]]
        lines.append(f"{name:28s} {value:>14s}  {row['target'] or '-':>12s}  {verdict}")
    return lines


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def _app(cfg: DictConfig) -> None:
    from ainur_sim.compose import explain
    from ainur_sim.sim import run, to_config
    from ainur_sim.sweep import (
        SKIP_FINISHED_ENV,
        already_finished,
        pin_numba_threads,
        skip_finished_requested,
        write_error,
    )

    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    pin_numba_threads(hc.launcher.get("_target_"))  # joblib/Ray workers: Numba on one thread per job
    try:
        typed = to_config(cfg)
    except (ConfigError, OmegaConfBaseException) as exc:
        shutil.rmtree(out, ignore_errors=True)
        _fail(explain(exc))
    if skip_finished_requested() and already_finished(out, typed):
        print(f"already finished, skipped ({SKIP_FINISHED_ENV}=1)")
        print(out)
        return
    for stale in ("kpis.json", "error.txt"):  # a re-run: unfinished until its own kpis.json lands
        (out / stale).unlink(missing_ok=True)
    try:
        result = run(typed, progress=typed.output.progress)
        result.write(out)
    except Exception as exc:
        write_error(out, exc)  # marks the job failed (a killed job has neither error.txt nor kpis.json)
        raise
    print("\n".join(_kpi_lines(result.kpis)))
    print(f"wall {result.wall_s:.2f} s for {result.duration_s:,.0f} simulated s")
    print(out)


def main() -> None:
    """``ainur-sim [OVERRIDES…]``: run the configured scenario and print the KPI table and the run dir."""
    argv = sys.argv[1:]
    if not os.environ.get("HYDRA_FULL_ERROR") and not (set(argv) & _PASSTHROUGH_FLAGS_SKIP_PREFLIGHT):
        try:
            preflight(argv)
        except ConfigError as exc:
            _fail(exc)
    _app()


def report_main() -> None:
    """``ainur-sim-report DIR``: rebuild a run dir's report.md + plots, or summarise a multirun dir."""
    from ainur_sim.sweep import report_cli

    sys.exit(report_cli(sys.argv[1:]))


def reproduce_main() -> None:
    """``ainur-sim-reproduce [NAME…]``: re-run experiments against their expected results."""
    from ainur_sim.reproduce import reproduce_cli

    sys.exit(reproduce_cli(sys.argv[1:]))
