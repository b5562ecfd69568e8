"""Bad input: every malformed override is rejected with a message naming the key, exit 2, no run dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ainur_sim import compose
from ainur_sim.cli import preflight
from ainur_sim.config import RANGES, ConfigError, Range

MALFORMED: list[tuple[list[str], str]] = [
    (["chain.n_validators=0"], "chain.n_validators"),
    (["chain.n_validators=-4"], "chain.n_validators"),
    (["chain.n_validators=abc"], "chain.n_validators"),
    (["chain.n_validators=2.5"], "chain.n_validators"),
    (["chain.babe_c=0"], "chain.babe_c"),
    (["chain.babe_c=1.01"], "chain.babe_c"),
    (["chain.babe_c=-0.2"], "chain.babe_c"),
    (["chain.slot_s=0"], "chain.slot_s"),
    (["chain.consensus=pow"], "chain.consensus"),
    (["scenario=moon_landing"], "scenario"),
    (["chain.nvalidators=5"], "chain.nvalidators"),
    (["bogus=1"], "bogus"),
    (["duration_s=-5"], "duration_s"),
    (["seed=-1"], "seed"),
    (["seed=x"], "seed"),
    (["population.n_workers=-1"], "population.n_workers"),
    (["load.tps=fast"], "load.tps"),
    (["market.mechanism=dutch"], "market.mechanism"),
    (["fees.target_fullness=1.5"], "fees.target_fullness"),
    (["network.regions=[mars]"], "network.regions"),
    (["network.region_weights=[1,2]"], "network.region_weights"),
    (["faults.offline_validators=11"], "faults.offline_validators"),
    (["faults.offline_validators=2", "faults.outage_duration_s=0"], "faults.outage_duration_s"),
    (["duration_s=3600", "faults.offline_validators=1", "faults.outage_start_s=3000",
      "faults.outage_duration_s=1200"], "faults.outage_start_s"),
    (["duration_s=1", "chain.slot_s=6"], "duration_s"),
    (["+load.call_mix.mine_bitcoin=0.5"], "load.call_mix"),
    (["scenario=baseline", "+emergency.tx_pause=[{start_s: 10, duration_s: 60, calls: [vault.*]}]"],
     "emergency.tx_pause[0].calls"),
    (["scenario=baseline", "+faults.partitions=[{start_s: 10, duration_s: 60}]"], "faults.partitions[0]"),
    (["scenario=baseline", "+faults.degradations=[{start_s: 3000, duration_s: 900, factor: 2}]"],
     "faults.degradations[0]"),
    (["api.node_regions=[atlantis]"], "api.node_regions"),
    (["load.tps=10", "finality.enabled=false"], "load.tps"),
    (["finality.byzantine_fraction=1.5"], "finality.byzantine_fraction"),
    (["output.plots=maybe"], "output.plots"),
    (["finality.enabled=perhaps"], "finality.enabled"),
    (["perf.draw_ahead=sometimes"], "perf.draw_ahead"),
    (["perf.api_concurrent=maybe"], "perf.api_concurrent"),
]


@pytest.mark.parametrize(("overrides", "key"), MALFORMED, ids=[" ".join(o) for o, _ in MALFORMED])
def test_malformed_input_names_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        preflight(overrides)
    assert info.value.key == key
    msg = str(info.value)
    assert msg.startswith(key) and "\n" not in msg and "allowed" in msg
    if key in RANGES and "got" in msg and "0.." not in msg and "when" not in msg and "slot" not in msg:
        assert RANGES[key].describe() in msg  # single-key range errors state the whole range


def test_sweep_values_are_each_validated():
    preflight(["-m", "seed=1,2", "chain.n_validators=3,4"])
    with pytest.raises(ConfigError, match="chain.n_validators"):
        preflight(["-m", "seed=1,2", "chain.n_validators=3,0"])


def test_valid_overrides_compose_typed_values():
    cfg = compose(["scenario=baseline", "chain.n_validators=7", "chain.consensus=aura", "seed=3"])
    assert cfg.chain.n_validators == 7 and cfg.chain.consensus == "aura" and cfg.seed == 3
    assert cfg.scenario.name == "baseline" and cfg.load.tps == 100.0


def test_command_line_beats_scenario_defaults():
    cfg = compose(["load.tps=5", "scenario=baseline"])
    assert cfg.load.tps == 5.0


def test_range_describe():
    assert Range(0, 1, lo_open=True).describe() == "a number in (0, 1]"
    assert Range(1, integer=True).describe() == "an integer >= 1"


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    code = "import sys; from ainur_sim.cli import main; sys.argv = ['ainur-sim', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.mark.parametrize("args", [["chain.babe_c=2"], ["scenario=nope"], ["chain.foo=1"],
                                  ["-m", "seed=1,2", "chain.n_validators=0,3"]])
def test_cli_bad_input_exits_2_without_traceback_or_run_dir(tmp_path, args):
    r = _cli(args, tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and "Traceback" not in r.stderr
    key = [a for a in args if not a.startswith("-")][-1].split("=")[0]
    assert key in lines[0]
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


SWEPT_VALUES = ["seed=7", "seed=x", "chain.n_validators=0", "chain.n_validators=12", "load.tps=-3", "load.tps=2.5",
                "finality.byzantine_fraction=1.5", "chain.consensus=aura", "chain.consensus=pow", "duration_s=null",
                "duration_s=1"]


@pytest.mark.parametrize("override", SWEPT_VALUES)
def test_sweep_value_fast_check_agrees_with_a_full_compose(override):
    """The pre-flight checks a plain key's swept values on one typed config instead of composing each: it
    must accept and reject exactly what a full compose does, naming the same key."""
    from ainur_sim.cli import _ValueSweepChecker

    base = ["scenario=baseline"]
    checker = _ValueSweepChecker(compose(base))
    try:
        compose([*base, override])
        expected = None
    except ConfigError as exc:
        expected = exc.key
    try:
        assert checker.check(override) is True
        got = None
    except ConfigError as exc:
        got = exc.key
    assert got == expected
    assert checker.check("seed=1") is True  # a rejected value leaves the checker's config as it was


@pytest.mark.parametrize("override", ["scenario=partition", "+load.call_mix.x=1", "~seed", "chain.n_validatorz=3",
                                      "network.regions=[us-east-1]"])
def test_sweep_value_fast_check_leaves_the_rest_to_compose(override):
    from ainur_sim.cli import _ValueSweepChecker

    assert _ValueSweepChecker(compose(["scenario=baseline"])).check(override) is False


def _strictly_equal(a: object, b: object) -> bool:
    """Equal values of equal types, all the way down (5 and 5.0 differ: config.yaml would too)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_strictly_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b or (a != a and b != b)  # (NaN)


@pytest.mark.parametrize("overrides", [
    [], ["scenario=launch_week"], ["scenario=emergency_pause"], ["scenario=partition"],
    ["scenario=congestion_10x"], ["scenario=verifier_outage"], ["population=adversarial_mixed"],
    ["scenario=validator_outage", "faults.mtbf_s=3600", "chain.consensus=aura"],
])
def test_config_container_is_omegaconfs(overrides: list[str]) -> None:
    """The run's config as plain containers (config.yaml) is OmegaConf's, value for value and type for type."""
    from omegaconf import OmegaConf

    from ainur_sim import compose
    from ainur_sim.sim import _NotPlain, _plain, config_container, to_config
    typed = to_config(compose(overrides))
    expected = OmegaConf.to_container(OmegaConf.structured(typed), resolve=True)
    assert _strictly_equal(_plain(typed, type(typed)), expected)  # (the direct path, not the fallback)
    assert _strictly_equal(config_container(typed), expected)
    typed.duration_s = 600  # an int in a float field: OmegaConf converts it, so it decides
    with pytest.raises(_NotPlain):
        _plain(typed, type(typed))
    assert _strictly_equal(config_container(typed), OmegaConf.to_container(OmegaConf.structured(typed), resolve=True))
