"""A computation in a forked child gives the result (or the error) the run would have had in process."""

from __future__ import annotations

import os
import signal

import numpy as np
import pandas as pd
import pytest

from ainur_sim import compose, run
from ainur_sim.background import Background
from ainur_sim.draw_ahead import spare_core
from ainur_sim.sim import api_concurrent, to_config

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _draws(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """A result larger than a pipe's buffer (≈ 64 KiB), so the child blocks until it is collected."""
    return {"x": rng.random(n), "pid": np.array([os.getpid()])}


def test_result_is_the_in_process_result_computed_by_the_child():
    job = Background(_draws, np.random.default_rng(3), 100_000)
    got = job.result()
    want = _draws(np.random.default_rng(3), 100_000)
    assert np.array_equal(got["x"], want["x"])
    assert got["pid"][0] != os.getpid() and not job.failed  # (the child computed it)


def test_the_parents_arguments_are_untouched():
    rng = np.random.default_rng(3)
    Background(_draws, rng, 10).result()
    assert rng.random() == np.random.default_rng(3).random()


def _boom(k: int) -> int:
    raise ValueError(f"bad k={k}")


def test_an_error_in_the_child_is_raised_by_result():
    job = Background(_boom, 4)
    with pytest.raises(ValueError, match="bad k=4"):
        job.result()
    assert job.failed


def test_a_killed_child_is_replaced_by_computing_in_process():
    job = Background(_draws, np.random.default_rng(5), 100_000)
    os.kill(job.pid, signal.SIGKILL)
    got = job.result()
    assert job.failed and got["pid"][0] == os.getpid()
    assert np.array_equal(got["x"], np.random.default_rng(5).random(100_000))


def test_an_unpicklable_result_is_computed_in_process():
    job = Background(lambda: (lambda: 7), )
    assert job.result()() == 7 and job.failed


def test_close_stops_the_child_and_result_then_refuses():
    job = Background(_draws, np.random.default_rng(5), 100_000)
    pid = job.pid
    job.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # (reaped: no such child any more)
    with pytest.raises(RuntimeError):
        job.result()


def test_auto_mode_follows_the_spare_core_and_the_api_switch():
    assert not api_concurrent(to_config(compose(["scenario=baseline", "duration_s=600"])))
    assert not api_concurrent(to_config(compose(["perf.api_concurrent=never"])))
    assert api_concurrent(to_config(compose(["perf.api_concurrent=always", "duration_s=60"])))
    assert not api_concurrent(to_config(compose(["perf.api_concurrent=always", "api.enabled=false"])))
    assert api_concurrent(to_config(compose(["duration_s=3600"]))) == spare_core()


def test_run_outputs_identical_with_the_api_layer_beside_the_chain():
    """The API layer computed in the child (sampled, with autoscaling) gives the same series, statistics
    and KPIs as in process."""
    base = ["scenario=congestion_10x", "duration_s=1800", "api.sample=sampled", "perf.draw_ahead=never"]
    a = run(compose([*base, "perf.api_concurrent=always"]))
    b = run(compose([*base, "perf.api_concurrent=never"]))
    pd.testing.assert_frame_equal(a.extra_tables["api_series"], b.extra_tables["api_series"])
    keys = ("api_requests", "api_requests_simulated", "api_sampled", "api_max_servers")
    assert {k: a.stats[k] for k in keys} == {k: b.stats[k] for k in keys}
    strip = lambda k: {n: v for n, v in k.items() if n != "wall_s"}  # noqa: E731
    assert strip(a.kpis) == strip(b.kpis)
    assert a.kpis["api_p99_ms"] == b.kpis["api_p99_ms"]
