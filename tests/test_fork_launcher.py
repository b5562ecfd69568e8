"""The app's ``hydra/launcher=joblib`` (hydra_plugins/ainur_sim_launcher): forked joblib workers.

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

from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

from hydra_plugins.ainur_sim_launcher import fork_joblib_launcher as fork_module

FORK_JOBLIB = "hydra_plugins.ainur_sim_launcher.fork_joblib_launcher.ForkJoblibLauncher"

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


def test_sys_exit_in_a_job_fails_the_sweep_instead_of_hanging_it(tmp_path):
    r = _probe(tmp_path, "1,exit,3")  # a multiprocessing worker that exits leaves its task unanswered
    assert r.returncode != 0
    assert "job 1 exited (SystemExit: 3)" in r.stderr


def test_without_fork_it_is_the_plugins_loky_launcher(monkeypatch):
    calls = []
    monkeypatch.setattr(fork_module, "fork_available", lambda: False)
    monkeypatch.setattr(JoblibLauncher, "launch", lambda self, overrides, idx: calls.append((overrides, idx)) or [])
    assert fork_module.ForkJoblibLauncher(n_jobs=2).launch([["seed=1"]], 5) == []
    assert calls == [([["seed=1"]], 5)]
