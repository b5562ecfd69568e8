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
import warnings
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


_preflight_done = False


def preflight_done() -> bool:
    """Whether :func:`preflight` validated this process's command line (then the sweeper does not repeat it)."""
    return _preflight_done


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
    composed = compose(base + firsts)
    checker = _ValueSweepChecker(composed)
    for i, (key, values) in enumerate(sweeps):
        others = [s for j, s in enumerate(firsts) if j != i]
        for v in values[1:]:
            if not checker.check(f"{key}={v}"):
                compose(base + others + [f"{key}={v}"])


class _ValueSweepChecker:
    """Validates one swept value of a plain key (``seed=0,1,…``, ``chain.n_validators=4,10``) in ≈ 10 ms.

    A full Hydra compose costs ≈ 0.35 s, so checking a 100-seed sweep that way kept both cores idle for
    half a minute before the first job. A value override of a key that is a leaf of the composed config
    changes nothing but that leaf, so it is set on the typed config (OmegaConf converts and type-checks
    it, raising with the key's name) and the whole config is validated as ``to_config`` does. Group
    choices (``scenario=…``), containers, ``+``/``~`` overrides and unknown keys are not handled here
    (``check`` returns False) and get a full compose.
    """

    def __init__(self, composed: DictConfig) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        from ainur_sim.sim import _config_schema

        self._parser = OverridesParser.create()
        self._typed = OmegaConf.merge(_config_schema(), composed)

    def check(self, override: str) -> bool:
        """True if ``override`` was validated here; raises ``ConfigError`` if it is invalid."""
        from hydra.core.override_parser.types import OverrideType
        from omegaconf import Container, OmegaConf

        from ainur_sim.compose import explain
        from ainur_sim.config import validate

        ov = self._parser.parse_override(override)
        if ov.type != OverrideType.CHANGE or ov.package is not None:
            return False
        key = ov.get_key_element()
        missing = object()
        old = OmegaConf.select(self._typed, key, default=missing)
        if old is missing or isinstance(old, Container):
            return False
        try:
            OmegaConf.update(self._typed, key, ov.value(), merge=False)
            validate(OmegaConf.to_object(self._typed))
        except OmegaConfBaseException as exc:
            raise explain(exc) from exc
        finally:
            OmegaConf.update(self._typed, key, old, merge=False)
        return True


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


#: The app's ``hydra/launcher/joblib.yaml`` deliberately shadows hydra-joblib-launcher's structured config of
#: that name (same keys, forked workers: hydra_plugins/ainur_sim_plugins). Hydra 1.3 still validates the
#: YAML against the plugin's schema (the keys must match, so that is welcome) and warns that this
#: "automatic schema matching" is deprecated, on every sweep; the warning says nothing the user can act on.
_SHADOWED_SCHEMA_WARNING = r"\s*'hydra/launcher/joblib' is validated against ConfigStore schema with the same name"


def main() -> None:
    """``ainur-sim [OVERRIDES…]``: run the configured scenario and print the KPI table and the run dir."""
    argv = sys.argv[1:]
    warnings.filterwarnings("ignore", message=_SHADOWED_SCHEMA_WARNING, category=UserWarning)
    if not os.environ.get("HYDRA_FULL_ERROR") and not (set(argv) & _PASSTHROUGH_FLAGS_SKIP_PREFLIGHT):
        try:
            preflight(argv)
        except ConfigError as exc:
            _fail(exc)
        global _preflight_done
        _preflight_done = True
    _app()


def report_main() -> None:
    """``ainur-sim-report DIR``: rebuild a run dir's report.md + plots, or summarise a multirun dir."""
    from ainur_sim.sweep import report_cli

    sys.exit(report_cli(sys.argv[1:]))


def reproduce_main() -> None:
    """``ainur-sim-reproduce [NAME…]``: re-run experiments against their expected results."""
    from ainur_sim.reproduce import reproduce_cli

    sys.exit(reproduce_cli(sys.argv[1:]))
