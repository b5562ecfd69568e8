"""Hydra launcher behind ainur-sim's ``hydra/launcher=joblib``: joblib workers forked from the main process.

hydra-joblib-launcher (1.2) hard-codes joblib's loky backend, so every worker is a fresh interpreter that
imports Hydra, numpy, pandas and ainur_sim again before its first job: ≈ 2 s of start-up per worker that a
one-worker sweep (run in the already-warm main process) never pays. That cost is what kept two workers
below 1.8× the throughput of one on a 2-core machine (benchmarks/RESULTS.md, "Sweep throughput").

This launcher keeps everything else of the plugin (its config keys, ``execute_job``, the job numbering and
the sweep dir layout) and swaps the pool: ``joblib.Parallel`` runs on :class:`ForkExecutorBackend`, a
joblib backend over a ``concurrent.futures.ProcessPoolExecutor`` whose workers are started with ``fork``,
so they start as copies of the main process with every module already imported. Nothing is pickled to
start a job: the launch state stays in this module, which the forked workers inherit, and a job is sent
as its index only. Where ``fork`` does not exist (Windows) it falls back to the plugin's loky launcher.

Why not joblib's own ``multiprocessing`` backend (which can fork too): its ``multiprocessing.Pool``
silently replaces a worker that dies (killed for memory, say) and waits forever for the lost job. The
executor marks itself broken instead, and the sweep fails at once with ``BrokenProcessPool``.

Why forking is safe here: the main process runs no other thread when the workers are forked (Python
forks all of a fork-context executor's workers before starting its manager thread; ainur_sim has no
Numba ``parallel=True`` kernels and starts no thread pools), and each job's RNG streams come from its
config's seed, not from inherited state, so a job's outputs are the same in a worker as in the main
process (checked by ``benchmarks/bench_sweep.py`` and tests/test_sweep.py).

A job that raises keeps Hydra's semantics (the sweep fails with the job's exception). ``SystemExit`` or
``KeyboardInterrupt`` inside a job would travel back and end the main process as if it were its own, so
they are turned into a ``RuntimeError`` naming the job and the exit code.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from joblib._parallel_backends import AutoBatchingMixin, FallbackToBackend, ParallelBackendBase, SequentialBackend

log = logging.getLogger(__name__)

#: The launch in progress: what :func:`_execute_pending` needs, inherited by the forked workers. Hydra's
#: plugin scan re-executes plugin modules in place (also inside a job), so a re-run keeps the value.
_PENDING: dict[str, Any] | None = globals().get("_PENDING")


def fork_available() -> bool:
    """Whether this platform can start processes with ``fork``."""
    return "fork" in multiprocessing.get_all_start_methods()


def _execute_pending(idx: int) -> JobReturn:
    """Run job ``idx`` of the launch in progress (in a forked worker, or in the main process for 1 job)."""
    from hydra_plugins.hydra_joblib_launcher._core import execute_job

    assert _PENDING is not None, "no launch in progress in this process"
    p = _PENDING
    try:
        ret = execute_job(p["initial_job_idx"] + idx, p["job_overrides"][idx], p["hydra_context"], p["config"],
                          p["task_function"], p["singleton_state"])
    except (SystemExit, KeyboardInterrupt) as exc:
        raise RuntimeError(f"job {p['initial_job_idx'] + idx} exited ({type(exc).__name__}: {exc})") from None
    return _picklable(ret)


def _picklable(ret: JobReturn) -> JobReturn:
    """``ret`` with its configs as plain (untyped) DictConfigs, so plain pickle can send it to the main process.

    A job's Hydra config can reference structured-config classes of plugins that Hydra's plugin scan
    imported a second time, which pickle cannot find by name (loky's cloudpickle copies them by value).
    The values are unchanged; only the dataclass typing of the nodes is dropped.
    """
    from omegaconf import DictConfig, OmegaConf

    for field in ("cfg", "hydra_cfg"):
        node = getattr(ret, field, None)
        if isinstance(node, DictConfig):
            setattr(ret, field, OmegaConf.create(OmegaConf.to_container(node, resolve=False)))
    return ret


class ForkExecutorBackend(AutoBatchingMixin, ParallelBackendBase):
    """A joblib backend on a fork-context ``ProcessPoolExecutor`` (see the module docstring).

    Same worker-count rules as joblib's loky backend (``n_jobs=-1``: one per CPU; 1: run in this process).
    Joblib's memmapping keys (``temp_folder``, ``max_nbytes``, ``mmap_mode``) do not apply: jobs receive
    an index, not arrays.
    """

    supports_retrieve_callback = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._workers: ProcessPoolExecutor | None = None
        self.parallel: Any = None

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            return max(multiprocessing.cpu_count() + 1 + n_jobs, 1)
        return n_jobs

    def configure(self, n_jobs: int = 1, parallel: Any = None, prefer: Any = None, require: Any = None,
                  **_memmapping: Any) -> int:
        n = self.effective_n_jobs(n_jobs)
        if n == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self._workers = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("fork"))
        self.parallel = parallel
        return n

    def submit(self, func: Any, callback: Any = None) -> Future:
        assert self._workers is not None
        future = self._workers.submit(func)
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def retrieve_result_callback(self, future: Future) -> Any:
        return future.result()

    def terminate(self) -> None:
        if self._workers is not None:
            self._workers.shutdown(wait=True)
            self._workers = None
        self.reset_batch_stats()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        if self._workers is not None:
            running = list((getattr(self._workers, "_processes", None) or {}).values())
            self._workers.shutdown(wait=False, cancel_futures=True)
            for proc in running:  # the jobs still running: the sweep has failed, stop them
                if proc.is_alive():
                    proc.kill()
            self._workers = None
        if ensure_ready and self.parallel is not None:
            self.configure(n_jobs=self.parallel.n_jobs, parallel=self.parallel)


class ForkJoblibLauncher(JoblibLauncher):
    """The joblib launcher with forked workers (see the module docstring); same config keys as the plugin."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        if not fork_available():
            return super().launch(job_overrides, initial_job_idx)
        import importlib

        from hydra.core.singleton import Singleton
        from hydra.core.utils import configure_log, filter_overrides, setup_globals
        from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
        from joblib import Parallel, delayed

        setup_globals()
        assert self.config is not None and self.task_function is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)

        joblib_cfg = dict(self.joblib)
        joblib_cfg.pop("backend", None)
        for key in ("temp_folder", "max_nbytes", "mmap_mode"):  # memmapping of array arguments: none here
            joblib_cfg.pop(key, None)
        process_joblib_cfg(joblib_cfg)
        log.info("Joblib.Parallel(%s) is launching %d jobs in forked workers",
                 ",".join(f"{k}={v}" for k, v in joblib_cfg.items()), len(job_overrides))
        log.info("Launching jobs, sweep output dir : %s", sweep_dir)
        for idx, overrides in enumerate(job_overrides):
            log.info("\t#%d : %s", initial_job_idx + idx, " ".join(filter_overrides(overrides)))

        # Hydra's plugin scan may have executed this file a second time, as a module object that is not the
        # one in sys.modules; the workers resolve _execute_pending by name, so the state goes where it leads.
        module = importlib.import_module(__name__)
        module._PENDING = {"initial_job_idx": initial_job_idx, "job_overrides": [list(o) for o in job_overrides],
                           "hydra_context": self.hydra_context, "config": self.config,
                           "task_function": self.task_function, "singleton_state": Singleton.get_state()}
        try:
            runs = Parallel(backend=module.ForkExecutorBackend(), **joblib_cfg)(
                delayed(module._execute_pending)(idx) for idx in range(len(job_overrides)))
        finally:
            module._PENDING = None
        assert isinstance(runs, list) and all(isinstance(r, JobReturn) for r in runs)
        return runs
