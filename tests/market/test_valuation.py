"""Reputation-weighted values with reserves (``ainur_sim.market.valuation``)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from ainur_sim.market.valuation import DEFAULT_Q_MIN, effective_values, linear_quality


def test_linear_quality_runs_from_q_min_to_one() -> None:
    np.testing.assert_allclose(linear_quality(np.array([0.0, 0.5, 1.0])), [DEFAULT_Q_MIN, 0.75, 1.0])
    np.testing.assert_allclose(linear_quality(np.array([0.0, 1.0]), q_min=0.2), [0.2, 1.0])
    with pytest.raises(ValueError, match="q_min"):
        linear_quality(np.zeros(1), q_min=1.5)


def test_effective_values_formula() -> None:
    task_value = np.array([10.0, 4.0, 1.0])
    reputation = np.array([0.0, 1.0])
    reserve = np.array([6.0, 3.0, 2.0])
    got = effective_values(task_value, reputation, reserve)
    assert got.shape == (2, 3) and got.dtype == np.float64
    # agent 0: q = 0.5 → [5, 2, 0.5] capped at [6, 3, 2]; agent 1: q = 1 → [10, 4, 1] capped.
    np.testing.assert_allclose(got, [[5.0, 2.0, 0.5], [6.0, 3.0, 1.0]])


def test_no_reserve_and_scalar_reserve() -> None:
    np.testing.assert_allclose(effective_values(np.array([2.0]), np.array([0.5])), [[1.5]])
    np.testing.assert_allclose(effective_values(np.array([2.0, 8.0]), np.array([1.0]), 3.0), [[2.0, 3.0]])


def test_custom_quality_function() -> None:
    q = functools.partial(linear_quality, q_min=0.0)
    np.testing.assert_allclose(effective_values(np.array([4.0]), np.array([0.25]), q=q), [[1.0]])
    np.testing.assert_allclose(effective_values(np.array([4.0]), np.array([0.25]), q=np.sqrt), [[2.0]])


@pytest.mark.parametrize(
    ("task_value", "reputation", "reserve", "message"),
    [
        (np.array([1.0]), np.array([1.2]), None, "reputation"),
        (np.array([1.0]), np.array([-0.1]), None, "reputation"),
        (np.array([1.0]), np.array([np.nan]), None, "reputation"),
        (np.array([np.inf]), np.array([0.5]), None, "task_value"),
        (np.array([1.0, 2.0]), np.array([0.5]), np.array([1.0, 2.0, 3.0]), "reserve"),
        (np.array([1.0]), np.array([0.5]), np.nan, "reserve"),
        (np.ones((2, 2)), np.array([0.5]), None, "1-D"),
    ],
)
def test_bad_inputs(task_value: np.ndarray, reputation: np.ndarray, reserve: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        effective_values(task_value, reputation, reserve)  # type: ignore[arg-type]


def test_bad_quality_function() -> None:
    with pytest.raises(ValueError, match="q must map"):
        effective_values(np.array([1.0]), np.array([0.5, 0.6]), q=lambda rho: rho[:1])
