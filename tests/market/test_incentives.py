"""Incentives: VCG is strategy-proof, pay-as-bid is not; single-task second-price order statistics."""

from __future__ import annotations

import numpy as np
import pytest

from ainur_sim.market.mechanisms import Mechanism, first_price, second_price, vcg
from ainur_sim.market.valuation import effective_values

SCALES = (0.5, 0.67, 0.8, 0.9, 0.95, 0.99, 1.01, 1.05, 1.1, 1.25, 1.5, 2.0)
SHIFTS = (-0.3, -0.1, -0.02, 0.02, 0.1, 0.3)


def misreports(row: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """A grid of alternative bid rows for one agent: scaled, shifted, single-task, and noisy."""
    rows = [row * s for s in SCALES] + [row + d for d in SHIFTS]
    for j in np.flatnonzero(np.isfinite(row)):
        only = np.full_like(row, np.inf)
        only[j] = row[j]
        rows.append(only)
    rows.append(row * rng.uniform(0.6, 1.6, row.shape))
    return rows


def best_deviation_gain(mechanism: Mechanism, values: np.ndarray, costs: np.ndarray, rng: np.random.Generator) -> float:
    """The largest utility gain (payment − true cost) any single agent gets from any misreport."""
    truthful = mechanism(values, costs)
    best = -np.inf
    for i in range(costs.shape[0]):
        for row in misreports(costs[i], rng):
            reported = costs.copy()
            reported[i] = row
            out = mechanism(values, reported)
            j = out.task_of_agent[i]
            utility = out.payment[i] - costs[i, j] if j >= 0 else 0.0
            best = max(best, utility - truthful.utility[i])
    return best


def random_market(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n_agents, n_tasks = int(rng.integers(2, 6)), int(rng.integers(1, 5))
    costs = rng.uniform(0, 1, (n_agents, n_tasks))
    costs[rng.random(costs.shape) < 0.2] = np.inf
    if rng.random() < 0.5:
        return rng.uniform(0.4, 1.3, n_tasks), costs
    values = effective_values(
        rng.uniform(0.5, 2.0, n_tasks), rng.uniform(0, 1, n_agents), rng.uniform(0.4, 1.2, n_tasks)
    )
    return values, costs


def test_vcg_is_strategy_proof_on_random_markets() -> None:
    rng = np.random.default_rng(51)
    gains = [best_deviation_gain(vcg, *random_market(rng), rng) for _ in range(100)]
    assert max(gains) <= 1e-9


def test_first_price_rewards_misreporting_on_the_same_markets() -> None:
    rng = np.random.default_rng(51)
    gains = np.array([best_deviation_gain(first_price, *random_market(rng), rng) for _ in range(40)])
    assert (gains > 1e-3).mean() > 0.5  # most markets have a profitable overbid


def test_second_price_is_strategy_proof_for_a_single_task() -> None:
    rng = np.random.default_rng(52)
    for _ in range(50):
        costs = rng.uniform(0, 1, (int(rng.integers(1, 7)), 1))
        assert best_deviation_gain(second_price, np.asarray(rng.uniform(0.3, 1.2)), costs, rng) <= 1e-12


def block_market(draws: np.ndarray, value: float) -> tuple[float, np.ndarray]:
    """Many independent single-task auctions as one market: task t is bid on only by its own n agents."""
    n_auctions, n_bidders = draws.shape
    costs = np.full((n_auctions * n_bidders, n_auctions), np.inf)
    costs[np.arange(n_auctions * n_bidders), np.repeat(np.arange(n_auctions), n_bidders)] = draws.ravel()
    return value, costs


@pytest.mark.parametrize("mechanism", [second_price, vcg])
@pytest.mark.parametrize("n_bidders", [2, 5, 10, 20])
def test_single_task_order_statistics(mechanism: Mechanism, n_bidders: int) -> None:
    """U[0,1] costs, value 1 (never binding): E[payment] = 2/(n+1), E[winner's cost] = 1/(n+1)."""
    rng = np.random.default_rng(60 + n_bidders)
    payments, winner_costs = [], []
    for _ in range(200):  # 200 × 100 = 20,000 auctions
        draws = rng.uniform(0, 1, (100, n_bidders))
        values, costs = block_market(draws, 1.0)
        out = mechanism(values, costs)
        winners = out.agent_of_task
        assert (winners >= 0).all()
        np.testing.assert_allclose(out.payment[winners], np.sort(draws, axis=1)[:, 1], rtol=1e-12)
        payments.append(out.payment[winners])
        winner_costs.append(costs[winners, np.arange(100)])
    np.testing.assert_allclose(np.concatenate(payments).mean(), 2 / (n_bidders + 1), rtol=0.02)
    np.testing.assert_allclose(np.concatenate(winner_costs).mean(), 1 / (n_bidders + 1), rtol=0.02)


def test_reserve_raises_buyer_utility_and_one_more_bidder_beats_it() -> None:
    """vcg.md §1a, V = 1, U[0,1] costs: buyer utility 1/3 (n = 2), 5/12 (n = 2, reserve 0.5 inside the
    value), 1/2 (n = 3, no reserve; Bulow–Klemperer)."""
    rng = np.random.default_rng(70)
    for n_bidders, reserve, expected in [(2, None, 1 / 3), (2, 0.5, 5 / 12), (3, None, 1 / 2)]:
        utility = []
        for _ in range(100):
            draws = rng.uniform(0, 1, (100, n_bidders))
            value = effective_values(np.ones(100), np.ones(1), reserve)[0]
            _, costs = block_market(draws, 1.0)
            out = second_price(value, costs)
            traded = out.agent_of_task >= 0
            utility.append(np.where(traded, 1.0 - out.payment[np.maximum(out.agent_of_task, 0)], 0.0))
        np.testing.assert_allclose(np.concatenate(utility).mean(), expected, rtol=0.02)
