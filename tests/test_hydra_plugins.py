"""The app's Hydra plugins (hydra_plugins/ainur_sim_plugins): ``hydra/launcher=joblib`` (forked joblib
workers) and the default sweeper (no second validation of each job after ``ainur-sim``'s pre-flight).

The real multirun through it is tests/test_sweep.py's ``sweep_dir`` fixture (2 workers, results identical
to the basic launcher: ``test_blocks_identical_to_a_basic_launcher_run``). Here: what a forked worker
inherits and what it must not do (hang the sweep on ``sys.exit``), and the loky fallback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hydra.plugins.sweeper import Sweeper
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

from hydra_plugins.ainur_sim_plugins import fork_joblib_launcher as fork_module
from hydra_plugins.ainur_sim_plugins import preflighted_sweeper

FORK_JOBLIB = "hydra_plugins.ainur_sim_plugins.fork_joblib_launcher.ForkJoblibLauncher"

PROBE_APP = """
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig

PARENT = os.getpid()


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def app(cfg):
    hc = HydraConfig.get()
    if cfg.k == "exit":
        sys.exit(3)
    if cfg.k == "kill":
        os.kill(os.getpid(), 9)  # what the kernel's OOM killer does
    from ainur_sim.sweep import pin_numba_threads
    import numba

    pinned = pin_numba_threads(hc.launcher._target_)
    forked = os.getpid() != PARENT and PARENT == os.getppid()  # module state inherited from the parent
    Path(hc.runtime.output_dir, "probe.txt").write_text(f"{forked} {pinned} {numba.get_num_threads()}")


app()
"""


def _probe(tmp_path: Path, ks: str, n_jobs: int = 2) -> subprocess.CompletedProcess[str]:
    app = tmp_path / "probe_app.py"
    app.write_text(textwrap.dedent(PROBE_APP))
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    return subprocess.run([sys.executable, str(app), "-m", f"+k={ks}", f"hydra.launcher.n_jobs={n_jobs}",
                           "hydra/launcher=joblib", f"hydra.launcher._target_={FORK_JOBLIB}",
                           f"hydra.sweep.dir={tmp_path}/sweep"], cwd=tmp_path, capture_output=True, text=True,
                          env=env, timeout=120)


def test_jobs_run_in_forked_workers_with_numba_single_threaded(tmp_path):
    r = _probe(tmp_path, "1,2,3")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [(tmp_path / "sweep" / str(i) / "probe.txt").read_text().split() for i in range(3)]
    assert rows == [["True", "1", "1"]] * 3  # children of the main process; each job's Numba on 1 thread


def test_one_worker_runs_jobs_in_the_main_process(tmp_path):
    r = _probe(tmp_path, "1,2", n_jobs=1)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [(tmp_path / "sweep" / str(i) / "probe.txt").read_text().split()[0] for i in range(2)] == ["False"] * 2


def test_sys_exit_in_a_job_fails_the_sweep_not_the_main_process(tmp_path):
    r = _probe(tmp_path, "1,exit,3")
    assert r.returncode == 1
    assert "job 1 exited (SystemExit: 3)" in r.stderr


def test_a_killed_worker_fails_the_sweep_instead_of_hanging_it(tmp_path):
    r = _probe(tmp_path, "1,kill,3")  # a multiprocessing.Pool would wait forever for the lost job
    assert r.returncode == 1
    assert "BrokenProcessPool" in r.stderr


def test_without_fork_it_is_the_plugins_loky_launcher(monkeypatch):
    calls = []
    monkeypatch.setattr(fork_module, "fork_available", lambda: False)
    monkeypatch.setattr(JoblibLauncher, "launch", lambda self, overrides, idx: calls.append((overrides, idx)) or [])
    assert fork_module.ForkJoblibLauncher(n_jobs=2).launch([["seed=1"]], 5) == []
    assert calls == [([["seed=1"]], 5)]


# --- the sweeper ---------------------------------------------------------------------------------


def test_default_sweeper_is_the_preflighted_basic_sweeper():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="ainur_sim.configs", version_base="1.3"):
        sweeper = hydra_compose("config", return_hydra_config=True).hydra.sweeper
        basic = hydra_compose("config", overrides=["hydra/sweeper=basic"], return_hydra_config=True).hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.ainur_sim_plugins.preflighted_sweeper.PreflightedSweeper"
    assert sweeper.max_batch_size is None and sweeper.params is None
    assert basic._target_ == "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def test_sweeper_validates_each_job_unless_the_preflight_ran(monkeypatch):
    import ainur_sim.cli as cli

    checked = []
    # (Sweeper, not BasicSweeper: Hydra's plugin scan may have executed basic_sweeper.py a second time)
    monkeypatch.setattr(Sweeper, "validate_batch_is_legal", lambda self, batch: checked.append(batch))
    sweeper = preflighted_sweeper.PreflightedSweeper(max_batch_size=None)
    monkeypatch.setattr(cli, "_preflight_done", False)
    sweeper.validate_batch_is_legal([["seed=1"]])
    monkeypatch.setattr(cli, "_preflight_done", True)
    sweeper.validate_batch_is_legal([["seed=2"]])
    assert checked == [[["seed=1"]]]


def test_a_bad_value_stops_the_sweep_before_any_job(tmp_path):
    """The pre-flight is what replaces the sweeper's check: a bad value among good ones exits 2 with one
    line, before a sweep dir exists."""
    r = subprocess.run([sys.executable, "-m", "ainur_sim", "-m", "scenario=baseline", "duration_s=60",
                        "seed=1,2", "chain.n_validators=4,0", f"hydra.sweep.dir={tmp_path}/sweep"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "chain.n_validators" in r.stderr
    assert not (tmp_path / "sweep").exists()
