"""Sweeps: a real joblib multirun summarised by ``ainur-sim-report``, kill/failure tolerance, determinism
across launchers, report_cli error paths, Student-t CIs, skip-finished check, Numba threads in workers,
and the shipped launcher presets."""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ainur_sim import compose
from ainur_sim.result import TABLES
from ainur_sim.rundir import load_run
from ainur_sim.sim import to_config
from ainur_sim.sweep import (
    already_finished,
    find_runs,
    is_multirun_dir,
    mean_ci,
    parse_overrides,
    pin_numba_threads,
    report_cli,
    skip_finished_requested,
    student_t_ppf,
    sweep_markdown,
    sweep_table,
    write_error,
    write_sweep,
)

CLI = "import sys; from ainur_sim.cli import main; sys.argv = ['ainur-sim', *sys.argv[1:]]; main()"
BASE = ["scenario=baseline", "duration_s=600"]
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
FORK_JOBLIB = "hydra_plugins.ainur_sim_plugins.fork_joblib_launcher.ForkJoblibLauncher"
LAUNCHER_DIR = Path(str(importlib.resources.files("ainur_sim.configs") / "hydra" / "launcher"))


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    r = subprocess.run([sys.executable, "-c", CLI, *args], cwd=cwd, capture_output=True, text=True, env=env,
                       timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2 seeds × 2 validator-counts multirun with the joblib launcher (2 workers)."""
    root = tmp_path_factory.mktemp("sweep")
    r = _run_cli(["-m", *BASE, "seed=1,2", "chain.n_validators=4,7", "hydra/launcher=joblib",
                  "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={root}/sweep"], cwd=root)
    assert "automatic_schema_matching" not in r.stderr  # the shadowed plugin schema's warning is filtered
    return root / "sweep"


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def _job_dir(sweep: Path, seed: int, n_validators: int) -> Path:
    df = sweep_table(sweep)
    row = df[(df["seed"] == seed) & (df["chain.n_validators"] == n_validators)]
    assert len(row) == 1
    return sweep / str(int(row["job"].iloc[0]))


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, needle: str) -> None:
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("ainur-sim-report: error: ") and needle in err, err


# --- the real multirun ---------------------------------------------------------------------------


def test_joblib_sweep_report(sweep_dir, tmp_path, capsys):
    sweep = _copy(sweep_dir, tmp_path / "s")
    assert is_multirun_dir(sweep) and [p.name for p in find_runs(sweep)] == ["0", "1", "2", "3"]
    assert report_cli([str(sweep)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(sweep / "sweep.md")

    df = pd.read_parquet(sweep / "sweep.parquet")
    assert len(df) == 4 and df["job"].tolist() == [0, 1, 2, 3] and (df["status"] == "ok").all()
    assert {"scenario", "duration_s", "seed", "chain.n_validators", "wall_s"} <= set(df.columns)
    assert sorted(zip(df["seed"], df["chain.n_validators"], strict=True)) == [(1, 4), (1, 7), (2, 4), (2, 7)]
    assert df["chain.n_validators"].dtype == np.int64 and (df["scenario"] == "baseline").all()
    assert (df["duration_s"] == 600).all() and (df["wall_s"] > 0).all()
    assert np.allclose(df["block_time_mean_s"], 6.0, atol=0.05)
    for row in df.itertuples(index=False):  # every KPI column is the job's kpis.json value, NaN for null
        kpis = json.loads((sweep / str(row.job) / "kpis.json").read_text())["kpis"]
        for name, entry in kpis.items():
            got = getattr(row, name)
            assert (math.isnan(got) if entry["value"] is None else got == pytest.approx(entry["value"])), name

    md = (sweep / "sweep.md").read_text()
    assert "4 jobs: 4 ok, 0 failed, 0 incomplete" in md and "## By `chain.n_validators`" in md
    assert "## By `seed`" not in md and "| KPI | `chain.n_validators=4` | `chain.n_validators=7` |" in md
    assert "| ok runs | 2/2 | 2/2 |" in md
    four = df.loc[df["chain.n_validators"] == 4, "block_time_mean_s"]
    assert f"| block_time_mean_s (s) | {four.mean():.5g} [" in md
    plot = sweep / "plots" / "block_time_mean_s_vs_chain.n_validators.png"
    assert plot.stat().st_size > 5000 and f"]({plot.relative_to(sweep).as_posix()})" in md
    assert not list((sweep / "plots").glob("*_vs_seed.png"))


def test_killed_job_is_incomplete_and_others_stay_loadable(sweep_dir, tmp_path, capsys):
    sweep = _copy(sweep_dir, tmp_path / "s")
    killed = _job_dir(sweep, seed=2, n_validators=4)
    (killed / "kpis.json").unlink()  # what a run killed before its last write leaves behind
    df = sweep_table(sweep)
    assert df["status"].value_counts().to_dict() == {"ok": 3, "incomplete": 1}
    row = df[df["status"] == "incomplete"].iloc[0]
    assert (row["seed"], row["chain.n_validators"]) == (2, 4)  # overrides still known from .hydra/
    assert math.isnan(row["block_time_mean_s"]) and math.isnan(row["wall_s"])
    for job in find_runs(sweep):
        if job != killed:
            original = pd.read_parquet(sweep_dir / job.name / "blocks.parquet")
            pd.testing.assert_frame_equal(load_run(job).blocks, original)
    assert report_cli([str(sweep)]) == 0
    capsys.readouterr()
    assert f"job {killed.name}: incomplete" in (sweep / "sweep.md").read_text()
    assert len(pd.read_parquet(sweep / "sweep.parquet")) == 4
    _one_line_error(capsys, report_cli([str(killed)]), "never finished")


def test_failed_job_is_marked(sweep_dir, tmp_path, capsys):
    sweep = _copy(sweep_dir, tmp_path / "s")
    failed = sweep / "1"
    (failed / "kpis.json").unlink()
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError as exc:
        write_error(failed, exc)
    assert (failed / "error.txt").read_text().splitlines()[0] == "RuntimeError: boom second line"
    assert "Traceback" in (failed / "error.txt").read_text()
    df = sweep_table(sweep)
    assert df.set_index("job")["status"].to_dict() == {0: "ok", 1: "failed", 2: "ok", 3: "ok"}
    assert df.set_index("job").loc[1, "error"] == "RuntimeError: boom second line"
    assert df["error"].isna().sum() == 3
    assert "job 1: failed: `RuntimeError: boom second line`" in sweep_markdown(df, "s", [])
    _one_line_error(capsys, report_cli([str(failed)]), "run failed: RuntimeError: boom")


def test_blocks_identical_to_a_basic_launcher_run(sweep_dir, tmp_path):
    _run_cli([*BASE, "seed=1", "chain.n_validators=4", f"hydra.run.dir={tmp_path}/alone"], cwd=tmp_path)
    swept = _job_dir(sweep_dir, seed=1, n_validators=4)
    for name in TABLES:
        assert (tmp_path / "alone" / f"{name}.parquet").read_bytes() == (swept / f"{name}.parquet").read_bytes()
    other = _job_dir(sweep_dir, seed=2, n_validators=4)
    assert (other / "blocks.parquet").read_bytes() != (swept / "blocks.parquet").read_bytes()


def test_report_cli_rebuilds_a_run_report(sweep_dir, tmp_path, capsys):
    run = _copy(sweep_dir / "0", tmp_path / "run")
    (run / "report.md").unlink()
    shutil.rmtree(run / "plots")
    assert report_cli([str(run)]) == 0
    assert capsys.readouterr().out.strip() == str(run / "report.md")
    assert "KPI verdict" in (run / "report.md").read_text()
    assert (run / "plots" / "block_time_hist.png").is_file()


def test_already_finished_compares_the_recorded_config(sweep_dir, tmp_path):
    job = _copy(_job_dir(sweep_dir, seed=1, n_validators=4), tmp_path / "job")
    same = to_config(compose([*BASE, "seed=1", "chain.n_validators=4"]))
    assert already_finished(job, same)
    assert already_finished(job, to_config(compose([*BASE, "seed=1", "chain.n_validators=4", "output.progress=false"])))
    assert not already_finished(job, to_config(compose([*BASE, "seed=2", "chain.n_validators=4"])))
    assert not already_finished(job, to_config(compose(["scenario=baseline", "duration_s=900", "seed=1",
                                                        "chain.n_validators=4"])))
    recorded = yaml.safe_load((job / "config.yaml").read_text())
    assert already_finished(job, recorded)
    (job / "error.txt").write_text("RuntimeError: x\n")
    assert not already_finished(job, same)
    (job / "error.txt").unlink()
    (job / "kpis.json").unlink()
    assert not already_finished(job, same)
    assert not already_finished(tmp_path / "missing", same)
    assert skip_finished_requested({"AINUR_SIM_SKIP_FINISHED": "1"})
    assert skip_finished_requested({"AINUR_SIM_SKIP_FINISHED": "true"})
    assert not skip_finished_requested({"AINUR_SIM_SKIP_FINISHED": "0"}) and not skip_finished_requested({})


# --- error paths ---------------------------------------------------------------------------------


def test_report_cli_error_paths(tmp_path, capsys):
    _one_line_error(capsys, report_cli([str(tmp_path / "nope")]), "no such directory")
    (tmp_path / "file.txt").write_text("x")
    _one_line_error(capsys, report_cli([str(tmp_path / "file.txt")]), "not a directory")
    (tmp_path / "empty").mkdir()
    _one_line_error(capsys, report_cli([str(tmp_path / "empty")]), "not a run dir")
    (tmp_path / "started" / ".hydra").mkdir(parents=True)
    _one_line_error(capsys, report_cli([str(tmp_path / "started")]), "never finished")
    (tmp_path / "failed" / ".hydra").mkdir(parents=True)
    (tmp_path / "failed" / "error.txt").write_text("ValueError: bad\n\nTraceback ...\n")
    _one_line_error(capsys, report_cli([str(tmp_path / "failed")]), "run failed: ValueError: bad")
    (tmp_path / "mr").mkdir()
    (tmp_path / "mr" / "multirun.yaml").write_text("hydra: {}\n")
    _one_line_error(capsys, report_cli([str(tmp_path / "mr")]), "no job has started")
    _one_line_error(capsys, report_cli([]), "usage")
    _one_line_error(capsys, report_cli(["a", "b"]), "usage")


# --- synthetic multiruns: statistics, plots, odd layouts -----------------------------------------


def _fake_job(root: Path, name: str, overrides: list[str], kpis: dict[str, float | None] | None,
              seed: int, num: int | None = None) -> Path:
    d = root / name
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if num is not None:
        (d / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    if kpis is not None:
        payload = {"kpis": {k: {"value": v, "target": None, "pass": None} for k, v in kpis.items()},
                   "seed": seed, "duration_s": 600.0, "wall_s": 0.5}
        (d / "kpis.json").write_text(json.dumps(payload))
    return d


def test_summary_ci_values_and_plots(tmp_path):
    values = {(4, 0): 6.0, (4, 1): 6.2, (4, 2): 6.7, (10, 0): 7.0, (10, 1): 7.5, (10, 2): 7.3}
    for i, ((nv, seed), v) in enumerate(sorted(values.items(), key=lambda kv: (kv[0][1], kv[0][0]))):
        _fake_job(tmp_path, str(i), [f"seed={seed}", f"chain.n_validators={nv}", "chain.consensus=aura"],
                  {"block_time_mean_s": v, "uptime": None}, seed)
    paths = write_sweep(tmp_path)
    x = np.array([6.0, 6.2, 6.7])
    half = 4.302652729911275 * x.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    md = (tmp_path / "sweep.md").read_text()
    y = np.array([7.0, 7.5, 7.3])
    half_y = 4.302652729911275 * y.std(ddof=1) / math.sqrt(3)
    assert "| ok runs | 3/3 | 3/3 |" in md
    assert (f"| block_time_mean_s (s) | {x.mean():.5g} [{x.mean() - half:.5g}, {x.mean() + half:.5g}] | "
            f"{y.mean():.5g} [{y.mean() - half_y:.5g}, {y.mean() + half_y:.5g}] |") in md
    assert "uptime" not in md.split("## Runs")[0]  # null everywhere: not summarised
    assert "Fixed overrides: `chain.consensus=aura`" in md
    names = sorted(p.name for p in paths if p.suffix == ".png")
    assert names == ["block_time_mean_s_vs_chain.n_validators.png"]  # uptime has no value: no plot


def test_seed_only_sweep_plots_distributions(tmp_path):
    rng = np.random.default_rng(3)
    for seed in range(6):
        _fake_job(tmp_path, f"seed={seed}", [f"seed={seed}"], {"finality_p95_s": 9 + rng.normal()}, seed,
                  num=5 - seed)  # named job dirs (override_dirname): the number comes from hydra.yaml
    assert [p.name for p in find_runs(tmp_path)] == [f"seed={s}" for s in range(5, -1, -1)]
    paths = write_sweep(tmp_path)
    assert sorted(p.name for p in paths if p.suffix == ".png") == ["finality_p95_s_across_seeds.png"]
    df = pd.read_parquet(tmp_path / "sweep.parquet")
    assert df["job"].tolist() == [0, 1, 2, 3, 4, 5] and df["seed"].tolist() == [5, 4, 3, 2, 1, 0]
    assert "## Over all ok runs (6)" in (tmp_path / "sweep.md").read_text()


def test_many_values_summary_has_one_row_per_value(tmp_path):
    for i in range(9):
        _fake_job(tmp_path, str(i), ["seed=0", f"load.tps={10 * i}"], {"block_time_mean_s": 6.0 + i / 100}, 0)
    write_sweep(tmp_path)
    md = (tmp_path / "sweep.md").read_text()
    assert "| `load.tps` | ok runs | block_time_mean_s (s) |" in md and "| 80 | 1/1 | 6.08 (1 run) |" in md
    assert (tmp_path / "plots" / "block_time_mean_s_vs_load.tps.png").is_file()


def test_mixed_override_types_still_write_parquet(tmp_path):
    _fake_job(tmp_path, "0", ["seed=0", "load.tps=100", "+note=abc"], {"block_time_mean_s": 6.0}, 0)
    _fake_job(tmp_path, "1", ["seed=0", "load.tps=150.5", "+note=7"], {"block_time_mean_s": 6.1}, 0)
    _fake_job(tmp_path, "2", ["seed=0", "load.tps=200", "+note=abc"], None, 0)
    write_sweep(tmp_path)
    df = pd.read_parquet(tmp_path / "sweep.parquet")
    assert df["load.tps"].tolist() == [100.0, 150.5, 200.0] and df["note"].tolist() == ["abc", "7", "abc"]
    assert df["status"].tolist() == ["ok", "ok", "incomplete"]


def test_parse_overrides_types_values():
    got = parse_overrides(["seed=3", "chain.slot_s=6.5", "+fees.x=1e-3", "scenario=baseline", "~faults",
                           "flag=true", "d=null", "xs=[1,2]", "db@pkg=x"])
    assert got == {"seed": 3, "chain.slot_s": 6.5, "fees.x": 0.001, "scenario": "baseline", "flag": True,
                   "d": None, "xs": "[1,2]", "db@pkg": "x"}
    assert type(got["seed"]) is int and type(got["chain.slot_s"]) is float


# --- Student t -----------------------------------------------------------------------------------


def test_student_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 7.5, 10, 30, 120, 1e4):
        for p in (0.6, 0.9, 0.975, 0.995, 0.9995, 0.025):
            assert student_t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-9, abs=1e-12), (p, df)
    assert student_t_ppf(0.975, 4) == pytest.approx(2.7764451051977987, rel=1e-12)
    assert student_t_ppf(0.5, 3) == 0.0
    with pytest.raises(ValueError):
        student_t_ppf(1.0, 3)


def test_mean_ci_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    ci = mean_ci([*x, None, float("nan")])
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (ci.n, ci.mean) == (5, 3.0) and ci.lo == pytest.approx(lo) and ci.hi == pytest.approx(hi)
    assert ci.half_width == pytest.approx(2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5))
    one = mean_ci([4.0])
    assert one.n == 1 and one.mean == 4.0 and math.isnan(one.lo) and math.isnan(one.hi)
    assert mean_ci([]).n == 0


# --- Numba threads in joblib workers -------------------------------------------------------------

PROBE_APP = """
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def app(cfg):
    hc = HydraConfig.get()
    from ainur_sim.sweep import pin_numba_threads  # imports Numba, as the app's own imports do
    import numba

    pool = numba.config.NUMBA_NUM_THREADS  # what loky gave the worker
    pinned = pin_numba_threads(hc.launcher._target_)
    Path(hc.runtime.output_dir, "threads.txt").write_text(f"{pool} {pinned} {numba.get_num_threads()}")


app()
"""


def test_joblib_workers_run_numba_single_threaded(tmp_path):
    app = tmp_path / "probe_app.py"
    app.write_text(textwrap.dedent(PROBE_APP))
    env = dict(os.environ, NUMBA_NUM_THREADS="2")  # loky hands the parent's value on to its workers
    r = subprocess.run([sys.executable, str(app), "-m", "+k=1,2,3", "hydra/launcher=joblib",
                        "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path}/sweep"], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [(tmp_path / "sweep" / str(i) / "threads.txt").read_text().split() for i in range(3)]
    assert rows == [["2", "1", "1"]] * 3  # 2-thread pool in every worker, each job capped at 1


def test_pin_numba_threads_is_a_noop_for_other_launchers():
    assert pin_numba_threads("hydra._internal.core_plugins.basic_launcher.BasicLauncher") is None
    assert pin_numba_threads(None) is None
    assert pin_numba_threads("hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher") is None


@pytest.mark.parametrize("pool_started", [False, True])
def test_pin_after_numba_was_imported_caps_the_thread(pool_started):
    """Numba imported with a 2-thread pool, started or not: the calling thread is capped at 1, and a later
    compile (which re-reads Numba's config) does not raise."""
    start = "numba.get_num_threads(); " if pool_started else ""
    code = (f"import os, numba; {start}from ainur_sim.sweep import pin_numba_threads; "
            f"n = pin_numba_threads({JOBLIB!r}); "
            "numba.njit(lambda x: x + 1)(1); "
            "print(n, numba.config.NUMBA_NUM_THREADS, numba.get_num_threads())")
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "1 2 1"


def test_pin_before_numba_import_sets_the_pool_size(monkeypatch):
    monkeypatch.delitem(sys.modules, "numba", raising=False)
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")
    assert pin_numba_threads("hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher") == 1
    assert os.environ["NUMBA_NUM_THREADS"] == "1"


# --- launcher presets ----------------------------------------------------------------------------

SLURM_KEYS = {  # hydra-submitit-launcher 1.2.0 SlurmQueueConf
    "submitit_folder", "timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes",
    "name", "stderr_to_stdout", "partition", "qos", "comment", "constraint", "exclude", "gres",
    "cpus_per_gpu", "gpus_per_task", "mem_per_gpu", "mem_per_cpu", "account", "signal_delay_s",
    "max_num_timeout", "additional_parameters", "array_parallelism", "setup",
}


def test_slurm_preset_parses():
    cfg = yaml.safe_load((LAUNCHER_DIR / "slurm_cpu.yaml").read_text())
    assert cfg.pop("defaults") == ["submitit_slurm", "_self_"]
    assert set(cfg) <= SLURM_KEYS
    assert cfg["cpus_per_task"] == 1 and cfg["mem_gb"] >= 1 and cfg["timeout_min"] >= 30
    assert "export NUMBA_NUM_THREADS=1" in cfg["setup"]


def test_ray_preset_parses():
    cfg = yaml.safe_load((LAUNCHER_DIR / "ray_local.yaml").read_text())
    assert cfg.pop("defaults") == ["ray", "_self_"]
    assert set(cfg) == {"ray"} and set(cfg["ray"]) <= {"init", "remote"}
    assert cfg["ray"]["remote"] == {"num_cpus": 1} and cfg["ray"]["init"]["address"] is None


def _compose_launcher(name: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="ainur_sim.configs", version_base="1.3"):
        return hydra_compose("config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True)


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
                    reason="hydra-submitit-launcher not installed (it comes with the `cluster` extra)")
def test_slurm_preset_composes():
    launcher = _compose_launcher("slurm_cpu").hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher") and launcher.cpus_per_task == 1
    assert launcher.partition is None and launcher.array_parallelism == 64


@pytest.mark.skipif(importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None,
                    reason="hydra-ray-launcher not installed (it comes with the `cluster` extra)")
def test_ray_preset_composes():
    launcher = _compose_launcher("ray_local").hydra.launcher
    assert launcher._target_.endswith("RayLauncher") and launcher.ray.remote.num_cpus == 1


@pytest.mark.filterwarnings("ignore:\\s*'hydra/launcher/joblib' is validated against ConfigStore schema")
def test_joblib_launcher_still_composes_next_to_the_presets():
    """``hydra/launcher=joblib`` is the app's forking joblib launcher, with every key of the plugin's own
    config at the plugin's default (the app's YAML shadows the plugin's structured config)."""
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
    from omegaconf import OmegaConf

    launcher = OmegaConf.to_container(_compose_launcher("joblib").hydra.launcher)
    plugin = OmegaConf.to_container(OmegaConf.structured(JobLibLauncherConf))
    assert launcher.pop("_target_") == FORK_JOBLIB and plugin.pop("_target_") == JOBLIB
    assert launcher == plugin
