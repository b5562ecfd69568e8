"""Shared fixtures: composed configs and cached small runs."""

from __future__ import annotations

import functools

import pytest

from ainur_sim import compose, run
from ainur_sim.result import RunResult


@functools.cache
def cached_run(*overrides: str) -> RunResult:
    """Run once per distinct override tuple within the test session (runs are pure and deterministic)."""
    return run(compose(list(overrides)))


@pytest.fixture(scope="session")
def baseline_run() -> RunResult:
    return cached_run("scenario=baseline", "duration_s=1800")
