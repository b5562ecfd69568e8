"""Draws made ahead in a forked child are the draws the run would make itself, whatever happens."""

from __future__ import annotations

import multiprocessing
import os
import signal

import numpy as np
import pytest

from ainur_sim import compose, run
from ainur_sim.draw_ahead import DrawAhead, spare_core
from ainur_sim.sim import build_world, draw_ahead, to_config

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _item(rng: np.random.Generator, k: int) -> tuple[tuple[float, ...], list[np.ndarray]]:
    """Item k: k + 1 uniforms and k integers (sizes vary, two dtypes)."""
    return (float(k), 0.5), [rng.random(k + 1), rng.integers(0, 100, size=k, dtype=np.int64)]


def _serial(n: int) -> tuple[list[list[np.ndarray]], np.random.Generator]:
    rng = np.random.default_rng(7)
    return [_item(rng, k)[1] for k in range(n)], rng


def _ahead(**kw) -> tuple[DrawAhead, np.random.Generator]:
    rng = np.random.default_rng(7)
    return DrawAhead(rng, _item, [np.float64, np.int64], 2, kw.pop("item_bytes", 4096), **kw), rng


def test_items_and_final_state_match_drawing_in_process():
    want, rng_serial = _serial(40)
    ahead, rng = _ahead(depth=4)  # (the ring wraps ten times)
    for k in range(40):
        got = ahead.take((float(k), 0.5))
        assert got is not None
        assert all(np.array_equal(g, w) and g.dtype == w.dtype for g, w in zip(got, want[k], strict=True))
    ahead.close()
    assert ahead.fell_back_at is None
    assert rng.random() == rng_serial.random()  # the generator ends where drawing in process leaves it


def test_after_close_the_generator_continues_the_sequence():
    want, _ = _serial(12)
    ahead, rng = _ahead()
    for k in range(5):
        ahead.take((float(k), 0.5))
    ahead.close()
    assert ahead.take((5.0, 0.5)) is None
    for k in range(5, 12):
        got = _item(rng, k)[1]
        assert all(np.array_equal(g, w) for g, w in zip(got, want[k], strict=True))


@pytest.mark.parametrize("case", ["key", "size", "error"])
def test_falls_back_exactly_where_the_child_cannot_serve(case):
    """A key that differs (item 6), a draw that raises (item 6), an item too large for its room (item 8:
    72 + 64 bytes, each array on its own 64-byte lines, in 128 B): the caller draws that item on, from the
    state after the one before."""
    want, _ = _serial(10)
    rng = np.random.default_rng(7)

    def item(r, k):
        if case == "error" and k == 6:
            raise ValueError("boom")
        return _item(r, k)

    ahead = DrawAhead(rng, item, [np.float64, np.int64], 2, 128 if case == "size" else 4096)
    first = 8 if case == "size" else 6
    for k in range(10):
        key = (float(k), 0.25 if case == "key" and k == 6 else 0.5)
        got = ahead.take(key)
        if k < first:
            assert got is not None
        else:
            assert got is None
            got = _item(rng, k)[1]
        assert all(np.array_equal(g, w) for g, w in zip(got, want[k], strict=True))
    assert ahead.fell_back_at == first and not ahead.active


def test_a_killed_child_leaves_the_items_it_sent_then_the_caller_draws():
    want, _ = _serial(30)
    ahead, rng = _ahead(depth=8)
    for k in range(3):
        assert ahead.take((float(k), 0.5)) is not None
    os.kill(ahead.pid, signal.SIGKILL)
    fell = None
    for k in range(3, 30):
        got = ahead.take((float(k), 0.5))
        if got is None:
            fell = k if fell is None else fell
            got = _item(rng, k)[1]
        else:
            assert fell is None  # (no item comes from the child once the caller draws)
        assert all(np.array_equal(g, w) for g, w in zip(got, want[k], strict=True))
    assert fell is not None and ahead.fell_back_at == fell and not ahead.active


def test_needs_pcg64():
    with pytest.raises(TypeError, match="PCG64"):
        DrawAhead(np.random.Generator(np.random.MT19937(1)), _item, [np.float64], 2, 64)


def _report_spare_core(q) -> None:
    q.put(spare_core())


def test_no_spare_core_inside_a_pool_worker():
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_report_spare_core, args=(q,))
    p.start()
    assert q.get(timeout=30) is False
    p.join()


def test_no_spare_core_off_linux(monkeypatch):
    monkeypatch.setattr("sys.platform", "darwin")
    assert spare_core() is False


def test_auto_mode_is_for_long_runs_only():
    assert not draw_ahead(to_config(compose(["scenario=baseline", "duration_s=600"])))
    assert not draw_ahead(to_config(compose(["perf.draw_ahead=never"])))
    assert draw_ahead(to_config(compose(["perf.draw_ahead=always", "duration_s=60"])))
    assert draw_ahead(to_config(compose(["duration_s=3600"]))) == spare_core()


BASE = ["scenario=baseline", "duration_s=3600", "load.tps=300", "api.enabled=false"]


# 3 of 10 offline from 3600 s: rounds keep finalizing with 7 voters
OUTAGE = ["scenario=validator_outage", "duration_s=7200", "faults.offline_validators=3"]


@pytest.mark.parametrize("extra", [[], OUTAGE],
                         ids=["steady", "outage"])
def test_run_outputs_identical_with_and_without_drawing_ahead(extra):
    """Same tables and KPIs. In the outage, rounds lose voters: the finality child's plan stops fitting
    and the run falls back mid-way (asserted), still identical."""
    results = {}
    for mode in ("always", "never"):
        results[mode] = run(compose([*BASE, *extra, f"perf.draw_ahead={mode}"]))
    a, b = results["always"], results["never"]
    for name in ("blocks", "supply", "tasks", "agents"):
        assert getattr(a, name).equals(getattr(b, name)), name
    strip = lambda k: {n: v for n, v in k.items() if n != "wall_s"}  # noqa: E731
    assert strip(a.kpis) == strip(b.kpis)


def test_outage_falls_back_after_the_outage_starts():
    cfg = to_config(compose([*OUTAGE, "perf.draw_ahead=always"]))
    world = build_world(cfg)
    assert world.finality.ahead is not None and world.txflow.ahead is not None
    try:
        world.env.run(until=cfg.run_duration_s)
        fin = world.finality.ahead
        assert fin.fell_back_at is not None and fin.fell_back_at > 0  # (rounds before the outage came ahead)
        assert world.txflow.ahead.fell_back_at is None  # the slot clock never differs
    finally:
        world.finality.ahead.close()
        world.txflow.ahead.close()
