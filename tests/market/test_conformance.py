"""The conformance kit passes every registered mechanism and catches deliberately broken ones."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ainur_sim.market.conformance import check_mechanism, edge_markets, random_market
from ainur_sim.market.mechanisms import MECHANISMS
from ainur_sim.market.vcg import Outcome, clear, market_arrays, outcome_from_allocation


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_every_registered_mechanism_conforms(name: str) -> None:
    assert check_mechanism(name, n_trials=200, seed=1) == 200 + len(edge_markets())


def test_callable_and_parameters_are_accepted() -> None:
    assert check_mechanism(MECHANISMS["posted_price"], n_trials=50, seed=2, price_fraction=0.6) > 50


def test_random_markets_cover_square_tall_wide_and_no_bids() -> None:
    rng = np.random.default_rng(0)
    shapes = [random_market(rng)[1].shape for _ in range(200)]
    assert any(m > n for m, n in shapes) and any(m < n for m, n in shapes) and any(m == n for m, n in shapes)


def _with_payment(rule: Callable[[np.ndarray, np.ndarray, Outcome], np.ndarray]) -> Callable[..., Outcome]:
    """A mechanism on the VCG allocation whose payments are ``rule(values, costs, vcg_outcome)``."""

    def mechanism(values: np.ndarray, costs: np.ndarray) -> Outcome:
        v, c = market_arrays(values, costs)
        out = clear(v, c)
        return outcome_from_allocation(v, c, out.task_of_agent, rule(v, c, out))

    return mechanism


def _pays_below_cost(v: np.ndarray, c: np.ndarray, out: Outcome) -> np.ndarray:
    winners = out.winners
    pay = np.zeros(c.shape[0])
    pay[winners] = 0.9 * c[winners, out.task_of_agent[winners]]
    return pay


def _pays_above_value(v: np.ndarray, c: np.ndarray, out: Outcome) -> np.ndarray:
    return out.payment + 0.01


_counter = iter(range(10**9))


def _not_deterministic(v: np.ndarray, c: np.ndarray, out: Outcome) -> np.ndarray:
    return out.payment - 1e-3 * (next(_counter) % 2) * (out.utility > 1e-3)


def _order_dependent(v: np.ndarray, c: np.ndarray, out: Outcome) -> np.ndarray:
    """Pays the first agent in input order a bonus when it wins: breaks invariance to agent order."""
    pay = out.payment.copy()
    if c.shape[0] > 1 and out.task_of_agent[0] >= 0:
        pay[0] = c[0, out.task_of_agent[0]] + 0.5 * (pay[0] - c[0, out.task_of_agent[0]])
    return pay


def _index_order_allocation(values: np.ndarray, costs: np.ndarray) -> Outcome:
    """Each task to the lowest-index free agent with positive surplus: depends on agent order."""
    v, c = market_arrays(values, costs)
    task_of_agent = np.full(c.shape[0], -1, np.int64)
    for j in range(c.shape[1]):
        for i in range(c.shape[0]):
            if task_of_agent[i] < 0 and v[i, j] > c[i, j]:
                task_of_agent[i] = j
                break
    winners = np.flatnonzero(task_of_agent >= 0)
    pay = np.zeros(c.shape[0])
    pay[winners] = c[winners, task_of_agent[winners]]
    return outcome_from_allocation(v, c, task_of_agent, pay)


def _matches_no_bid_pairs(values: np.ndarray, costs: np.ndarray) -> Outcome:
    """Treats ``inf`` as a zero bid."""
    v, c = market_arrays(values, costs)
    return clear(v, np.where(np.isinf(c), 0.0, c))


def _matches_zero_surplus(values: np.ndarray, costs: np.ndarray) -> Outcome:
    """Pretends every real bid leaves some surplus, so it matches pairs bid at or above their value."""
    v, c = market_arrays(values, costs)
    return clear(v, np.where(np.isfinite(c), np.minimum(c, v - 1e-3), c))


def _assigns_a_task_twice(values: np.ndarray, costs: np.ndarray) -> Outcome:
    out = clear(values, costs)
    tasks = out.task_of_agent.copy()
    winners = out.winners
    if winners.size == 1 and tasks.size > 1:
        loser = int(np.flatnonzero(tasks < 0)[0])
        tasks[loser] = tasks[winners[0]]
    return Outcome(tasks, out.agent_of_task, out.payment, out.utility, out.requester_surplus, out.welfare)


def _wrong_dtype(values: np.ndarray, costs: np.ndarray) -> Outcome:
    out = clear(values, costs)
    return Outcome(
        out.task_of_agent.astype(np.int32),
        out.agent_of_task,
        out.payment,
        out.utility,
        out.requester_surplus,
        out.welfare,
    )


def _mutates_input(values: np.ndarray, costs: np.ndarray) -> Outcome:
    out = clear(values, costs)
    costs[np.isfinite(costs)] += 1.0
    return out


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (_with_payment(_pays_below_cost), "individual rationality violated"),
        (_with_payment(_pays_above_value), "payment above value"),
        (_with_payment(_not_deterministic), "not deterministic"),
        (_with_payment(_order_dependent), "payments depend on agent order"),
        (_index_order_allocation, "allocation depends on agent order"),
        (_matches_no_bid_pairs, "without a bid"),
        (_matches_zero_surplus, "non-positive surplus"),
        (_assigns_a_task_twice, "assigned twice"),
        (_wrong_dtype, "dtype int32"),
        (_mutates_input, "inputs were modified"),
    ],
)
def test_broken_mechanisms_are_caught(broken: Callable[..., Outcome], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_mechanism(broken, n_trials=300, seed=3)
