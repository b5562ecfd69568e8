"""Compose a run config from the packaged Hydra configs, with errors that name the key.

``compose(overrides)`` is what notebooks, tests and the CLI's pre-flight check use: Hydra's compose API
(no CLI, no working-directory change), then type conversion into the dataclass schema and validation of
every range. All failures surface as ``ConfigError`` with a one-line message naming the key and what it
allows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from ainur_sim.config import ConfigError, allowed

CONFIG_MODULE = "ainur_sim.configs"

_QUOTED = re.compile(r"'([^']+)'")


def explain(exc: BaseException) -> ConfigError:
    """Turn a Hydra/OmegaConf composition error into a ``ConfigError`` naming the key."""
    if isinstance(exc, ConfigError):
        return exc
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and "/" in exc.missing_cfg_file:
        group, _, option = exc.missing_cfg_file.rpartition("/")
        options = ", ".join(o for o in (exc.options or []) if not o.startswith("base_"))
        return ConfigError(group, f"unknown option {option!r}; allowed: {options}")
    cause = exc.__cause__ if isinstance(exc.__cause__, OmegaConfBaseException) else exc
    key = getattr(cause, "full_key", None)
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if not key:
        m = _QUOTED.search(str(exc))
        key = m.group(1) if m else "config"
    if "not in" in text or "No match in the defaults list" in str(exc) or "Could not append" in str(exc):
        return ConfigError(key, f"unknown config key; allowed: {_known_keys(key)}")
    rule = allowed(key)
    suffix = f"; allowed: {rule}" if rule else ""
    return ConfigError(key, f"{text}{suffix}")


def _known_keys(key: str) -> str:
    """The keys that exist next to ``key`` (its siblings in the schema), for an unknown-key message."""
    from dataclasses import fields, is_dataclass

    from ainur_sim.config import Config

    node: object = Config
    parent, _, _ = key.rpartition(".")
    for part in parent.split(".") if parent else []:
        match = [f for f in fields(node) if f.name == part] if is_dataclass(node) else []
        if not match:
            break
        node = match[0].type if not isinstance(match[0].type, str) else _resolve(match[0].type)
    names = [f.name for f in fields(node)] if is_dataclass(node) else []
    where = f"keys of {parent}" if parent else "top-level keys"
    return f"{where}: {', '.join(names)}" if names else "see `ainur-sim --cfg job`"


def _resolve(type_name: str) -> object:
    import ainur_sim.config as config_module

    return getattr(config_module, type_name, None)


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The run config for ``overrides`` (e.g. ``["scenario=baseline", "seed=3"]``), validated.

    Raises ``ConfigError`` (a ``ValueError``) naming the offending key.
    """
    from ainur_sim.sim import to_config

    if GlobalHydra.instance().is_initialized():
        raise RuntimeError("compose() cannot run inside an initialised Hydra context; use the given cfg")
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            cfg = hydra_compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        raise explain(exc) from exc
    try:
        to_config(cfg)
    except OmegaConfBaseException as exc:
        raise explain(exc) from exc
    return cfg
