"""The mechanism family (``ainur_sim.market.mechanisms``): registry and each rule's semantics."""

from __future__ import annotations

import numpy as np
import pytest

from ainur_sim.market.mechanisms import (
    MECHANISMS,
    first_price,
    get_mechanism,
    greedy,
    posted_price,
    second_price,
    vcg,
)
from ainur_sim.market.vcg import Outcome, clear

INF = np.inf


def test_registry_holds_the_config_names() -> None:
    assert set(MECHANISMS) == {"vcg", "second_price", "first_price", "posted_price", "greedy"}
    for name, mechanism in MECHANISMS.items():
        assert get_mechanism(name) is mechanism


@pytest.mark.parametrize("name", ["VCG", "auction", "", None])
def test_unknown_mechanism_names_the_allowed_ones(name: object) -> None:
    with pytest.raises(ValueError, match="allowed: vcg, second_price, first_price, posted_price, greedy"):
        get_mechanism(name)  # type: ignore[arg-type]


def test_vcg_is_clear() -> None:
    costs = np.array([[1.0, 2.0], [3.0, 7.0], [4.0, INF]])
    a, b = vcg(10.0, costs), clear(10.0, costs)
    assert isinstance(a, Outcome)
    np.testing.assert_array_equal(a.task_of_agent, b.task_of_agent)
    np.testing.assert_array_equal(a.payment, b.payment)


def test_second_price_pays_the_second_lowest_bid_capped_by_the_value() -> None:
    costs = np.array([[0.2], [0.5], [0.9]])
    out = second_price(1.0, costs)
    assert out.task_of_agent.tolist() == [0, -1, -1]
    assert out.payment[0] == pytest.approx(0.5)
    capped = second_price(0.4, costs)  # only agent 0 is below the value: paid the value
    assert capped.payment[0] == pytest.approx(0.4)


def test_second_price_runs_tasks_in_order_and_winners_leave() -> None:
    # Agent 0 is cheapest on both tasks; it takes task 0, so task 1 goes to agent 1 at agent 2's bid.
    costs = np.array([[0.1, 0.1], [0.3, 0.4], [0.35, 0.6]])
    out = second_price(1.0, costs)
    assert out.task_of_agent.tolist() == [0, 1, -1]
    np.testing.assert_allclose(out.payment, [0.3, 0.6, 0.0])


def test_second_price_with_agent_specific_values_is_second_score() -> None:
    # Scores v − b: agent 0: 0.9 − 0.5 = 0.4, agent 1: 0.6 − 0.1 = 0.5 → agent 1 wins, paid 0.6 − 0.4.
    values = np.array([[0.9], [0.6]])
    out = second_price(values, np.array([[0.5], [0.1]]))
    assert out.task_of_agent.tolist() == [-1, 0]
    assert out.payment[1] == pytest.approx(0.2)


def test_first_price_pays_bids_on_the_vcg_allocation() -> None:
    rng = np.random.default_rng(3)
    costs = rng.uniform(0, 1, (6, 4))
    values = rng.uniform(0.5, 1.2, 4)
    out, reference = first_price(values, costs), clear(values, costs)
    np.testing.assert_array_equal(out.task_of_agent, reference.task_of_agent)
    winners = out.winners
    np.testing.assert_allclose(out.payment[winners], costs[winners, out.task_of_agent[winners]])
    assert (out.utility == 0).all()
    assert out.welfare == pytest.approx(reference.welfare)


def test_posted_price_gives_each_task_to_the_cheapest_agent_under_the_price() -> None:
    costs = np.array([[0.7, 0.2], [0.5, 0.1], [0.9, 0.3]])
    out = posted_price(1.0, costs, price=0.8)
    # Task 0: agents 0 (0.7) and 1 (0.5) qualify → agent 1. Task 1: agent 0 (0.2) is cheapest left.
    assert out.task_of_agent.tolist() == [1, 0, -1]
    np.testing.assert_allclose(out.payment, [0.8, 0.8, 0.0])


def test_posted_price_default_is_a_share_of_the_value() -> None:
    costs = np.array([[0.85], [0.75]])
    out = posted_price(1.0, costs)  # price 0.8 · 1.0: only agent 1 qualifies
    assert out.task_of_agent.tolist() == [-1, 0] and out.payment[1] == pytest.approx(0.8)
    high = posted_price(1.0, costs, price_fraction=0.9)
    assert high.task_of_agent.tolist() == [-1, 0] and high.payment[1] == pytest.approx(0.9)


def test_posted_price_never_posts_above_the_value() -> None:
    out = posted_price(np.array([0.5, 1.0]), np.array([[0.1, 0.1]]), price=np.array([0.6, 0.6]))
    assert out.task_of_agent.tolist() == [1]  # task 0's price exceeds its value


@pytest.mark.parametrize(
    "kwargs",
    [
        {"price_fraction": 0.0},
        {"price_fraction": 1.5},
        {"price": np.ones(3)},
        {"price": np.array([np.nan, 1.0])},
    ],
)
def test_posted_price_rejects_bad_prices(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="price"):
        posted_price(1.0, np.zeros((2, 2)), **kwargs)  # type: ignore[arg-type]


def test_greedy_takes_the_best_pair_first_even_when_that_is_not_optimal() -> None:
    # Surpluses [[0.9, 0.8], [0.7, 0.0]]: greedy takes (0, 0) for 0.9; the optimum is 0.8 + 0.7 = 1.5.
    costs = np.array([[0.1, 0.2], [0.3, INF]])
    out = greedy(1.0, costs)
    assert out.task_of_agent.tolist() == [0, -1]
    assert out.welfare == pytest.approx(0.9)
    assert out.payment[0] == pytest.approx(0.1)
    assert clear(1.0, costs).welfare == pytest.approx(1.5)


def test_greedy_reaches_half_the_optimal_welfare() -> None:
    rng = np.random.default_rng(5)
    for _ in range(100):
        costs = rng.uniform(0, 1, (int(rng.integers(1, 8)), int(rng.integers(1, 8))))
        values = rng.uniform(0.3, 1.3, costs.shape[1])
        assert greedy(values, costs).welfare >= 0.5 * clear(values, costs).welfare - 1e-12


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_every_mechanism_validates_inputs(name: str) -> None:
    with pytest.raises(ValueError):
        get_mechanism(name)(1.0, np.array([[np.nan]]))
    with pytest.raises(ValueError):
        get_mechanism(name)(np.ones(3), np.zeros((2, 2)))


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_welfare_ranking_on_random_markets(name: str) -> None:
    """No mechanism beats VCG's welfare (it is the optimum)."""
    rng = np.random.default_rng(6)
    for _ in range(50):
        costs = rng.uniform(0, 1, (5, 4))
        values = rng.uniform(0.3, 1.3, 4)
        assert get_mechanism(name)(values, costs).welfare <= clear(values, costs).welfare + 1e-12
