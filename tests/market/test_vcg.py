"""VCG clearing (``ainur_sim.market.vcg``) against brute-force oracles, scipy, and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from ainur_sim.market.valuation import effective_values
from ainur_sim.market.vcg import CapacityOutcome, Outcome, clear, clear_capacity, clear_payments
from tests.market import oracles

RTOL = 1e-9
ATOL = 1e-12


def random_market(rng: np.random.Generator, max_side: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Small random market: square, tall or wide; continuous or integer (tie-heavy) costs; some no-bids;
    scalar, per-task, or reputation-weighted-with-reserve values."""
    n_agents, n_tasks = (int(x) for x in rng.integers(1, max_side + 1, 2))
    integer = rng.random() < 0.25
    if integer:
        costs = rng.integers(0, 5, (n_agents, n_tasks)).astype(float)
    else:
        costs = rng.uniform(0.0, 1.0, (n_agents, n_tasks))
    costs[rng.random((n_agents, n_tasks)) < rng.choice([0.0, 0.2, 0.5, 0.8])] = np.inf
    style = rng.integers(3)
    if integer:
        values: np.ndarray = rng.integers(1, 6, n_tasks).astype(float)
    elif style == 0:
        values = np.asarray(rng.uniform(0.2, 1.5))
    elif style == 1:
        values = rng.uniform(0.2, 1.5, n_tasks)
    else:
        values = effective_values(
            rng.uniform(0.3, 2.0, n_tasks), rng.uniform(0, 1, n_agents), rng.uniform(0.3, 1.5, n_tasks)
        )
    return values, costs


def assert_matches_oracle(out: Outcome, values: np.ndarray, costs: np.ndarray, exhaustive: bool) -> None:
    w = oracles.surplus(values, costs)
    total, marginal = oracles.vcg_marginals(w, exhaustive=exhaustive)
    assert out.welfare == pytest.approx(total, rel=RTOL, abs=ATOL)
    winners = out.winners
    tasks = out.task_of_agent[winners]
    assert w[winners, tasks].sum() == pytest.approx(total, rel=RTOL, abs=ATOL)  # the allocation is optimal
    expected = np.zeros(costs.shape[0])
    expected[winners] = costs[winners, tasks] + marginal[winners]
    np.testing.assert_allclose(out.payment, expected, rtol=RTOL, atol=ATOL)
    losers = out.task_of_agent < 0
    np.testing.assert_allclose(marginal[losers], 0.0, atol=ATOL)


@pytest.mark.parametrize("chunk", range(12))
def test_payments_match_scipy_resolves_on_random_small_markets(chunk: int) -> None:
    rng = np.random.default_rng(1000 + chunk)
    for _ in range(100):
        values, costs = random_market(rng)
        assert_matches_oracle(clear(values, costs), values, costs, exhaustive=False)


@pytest.mark.parametrize("chunk", range(4))
def test_payments_match_exhaustive_search_on_random_small_markets(chunk: int) -> None:
    rng = np.random.default_rng(2000 + chunk)
    for _ in range(100):
        values, costs = random_market(rng, max_side=5)
        assert_matches_oracle(clear(values, costs), values, costs, exhaustive=True)


@pytest.mark.parametrize("shape", [(30, 40), (40, 30), (35, 35)])
def test_payments_match_scipy_resolves_on_medium_markets(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    costs = rng.uniform(0, 1, shape)
    costs[rng.random(shape) < 0.3] = np.inf
    values = rng.uniform(0.3, 1.0, shape[1])
    assert_matches_oracle(clear(values, costs), values, costs, exhaustive=False)


@pytest.mark.parametrize("shape", [(300, 400), (400, 300), (300, 300)])
@pytest.mark.parametrize("no_bid_share", [0.0, 0.9])
def test_welfare_matches_scipy_on_large_markets(shape: tuple[int, int], no_bid_share: float) -> None:
    rng = np.random.default_rng(7)
    costs = rng.uniform(0, 1, shape)
    costs[rng.random(shape) < no_bid_share] = np.inf
    values = rng.uniform(0.2, 1.0, shape[1])
    out = clear(values, costs)
    assert out.welfare == pytest.approx(oracles.scipy_welfare(oracles.surplus(values, costs)), rel=RTOL)


def test_hand_worked_two_by_two() -> None:
    # Surplus A: [9, 8], B: [7, 3]. Best: A→T1, B→T0 (15). Without A: 7; without B: 9.
    out = clear(10.0, np.array([[1.0, 2.0], [3.0, 7.0]]))
    assert out.task_of_agent.tolist() == [1, 0]
    assert out.agent_of_task.tolist() == [1, 0]
    assert out.welfare == pytest.approx(15.0)
    np.testing.assert_allclose(out.payment, [2.0 + 15 - 7, 3.0 + 15 - 9])
    np.testing.assert_allclose(out.utility, [8.0, 6.0])
    np.testing.assert_allclose(out.requester_surplus, [1.0, 0.0])  # the minimum Walrasian prices


def test_requester_surplus_is_a_walrasian_price_vector() -> None:
    """At prices p = requester_surplus no agent prefers another task, or staying out, to what it got."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        values, costs = random_market(rng)
        out = clear(values, costs)
        w = oracles.surplus(values, costs)
        p = out.requester_surplus
        assert (p >= -ATOL).all()
        best_alternative = np.maximum((w - p[None, :]).max(axis=1), 0.0)
        assert (out.utility >= best_alternative - 1e-9).all()


def test_two_fast_methods_agree() -> None:
    """One Dijkstra (``clear``) and warm-started re-augmentation (``clear_capacity`` with k = 1)."""
    rng = np.random.default_rng(12)
    markets = [random_market(rng) for _ in range(300)]
    costs = rng.uniform(0, 1, (120, 90))
    costs[rng.random(costs.shape) < 0.5] = np.inf
    markets.append((rng.uniform(0.3, 1.0, 90), costs))
    for values, costs in markets:
        unit = clear(values, costs)
        cap = clear_capacity(values, costs, 1)
        assert cap.welfare == pytest.approx(unit.welfare, rel=RTOL, abs=ATOL)
        np.testing.assert_allclose(cap.utility, unit.utility, rtol=RTOL, atol=1e-11)


# --- edge cases and input errors -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0)])
def test_empty_markets(shape: tuple[int, int]) -> None:
    out = clear(1.0, np.zeros(shape))
    assert out.task_of_agent.shape == (shape[0],) and out.agent_of_task.shape == (shape[1],)
    assert out.task_of_agent.dtype == np.int64 and out.payment.dtype == np.float64
    assert out.welfare == 0.0
    cap = clear_capacity(1.0, np.zeros(shape), 2)
    assert cap.agent_of_task.shape == (shape[1],) and cap.welfare == 0.0


def test_one_by_one() -> None:
    out = clear(1.0, np.array([[0.4]]))
    assert out.task_of_agent.tolist() == [0]
    assert out.payment[0] == pytest.approx(1.0)  # W*₋ᵢ = 0: paid the whole value
    assert out.welfare == pytest.approx(0.6)
    none = clear(1.0, np.array([[1.0]]))
    assert none.task_of_agent.tolist() == [-1] and none.payment.tolist() == [0.0]


def test_all_infinite_and_no_surplus_markets_trade_nothing() -> None:
    for values, costs in [
        (1.0, np.full((3, 4), np.inf)),
        (np.array([0.1, 0.5]), np.array([[0.1, 0.6], [0.3, 0.5], [np.inf, 0.9]])),
        (0.0, np.zeros((2, 2))),
    ]:
        out = clear(values, costs)
        assert (out.task_of_agent == -1).all() and (out.agent_of_task == -1).all()
        assert (out.payment == 0).all() and out.welfare == 0.0


def test_all_infinite_row_never_wins_and_single_column() -> None:
    out = clear(1.0, np.array([[np.inf, np.inf], [0.3, 0.6], [0.5, 0.1]]))
    assert out.task_of_agent.tolist() == [-1, 0, 1]
    column = clear(1.0, np.array([[0.7], [0.2], [np.inf], [0.5]]))
    assert column.task_of_agent.tolist() == [-1, 0, -1, -1]
    assert column.payment[1] == pytest.approx(0.5)  # the second-lowest bid


def test_outcome_is_immutable() -> None:
    out = clear(1.0, np.array([[0.2, 0.5]]))
    with pytest.raises(ValueError):
        out.payment[0] = 5.0
    with pytest.raises(AttributeError):
        out.welfare = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("values", "costs", "message"),
    [
        (1.0, np.array([[np.nan, 1.0]]), "costs must be finite or \\+inf"),
        (1.0, np.array([[-np.inf, 1.0]]), "costs must be finite or \\+inf"),
        (1.0, np.array([0.1, 0.2]), "2-D"),
        (1.0, np.zeros((2, 2, 2)), "2-D"),
        (np.ones(3), np.zeros((2, 2)), "cannot be broadcast"),
        (np.array([np.nan, 1.0]), np.zeros((2, 2)), "values must be finite"),
        (np.inf, np.zeros((2, 2)), "values must be finite"),
        (1.0, [["a", "b"]], "numeric"),
        (1e308, np.array([[-1e308]]), "overflows"),
    ],
)
def test_bad_inputs_raise_value_error(values: object, costs: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clear(values, costs)  # type: ignore[arg-type]


@pytest.mark.parametrize("capacity", [np.array([1, -1]), np.array([1, 2, 3]), np.array([1.5, 1.0])])
def test_bad_capacity_raises_value_error(capacity: np.ndarray) -> None:
    with pytest.raises(ValueError, match="capacity"):
        clear_capacity(1.0, np.zeros((2, 2)), capacity)


def test_capacity_shares_the_input_validation() -> None:
    with pytest.raises(ValueError, match="costs must be finite"):
        clear_capacity(1.0, np.array([[np.nan]]), 1)
    with pytest.raises(ValueError, match="overflows"):
        clear_capacity(1e308, np.array([[-1e308]]), 1)


# --- capacity-k agents ---------------------------------------------------------------------------------


def random_capacity_market(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_agents, n_tasks = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    costs = rng.uniform(0, 1, (n_agents, n_tasks))
    costs[rng.random(costs.shape) < rng.choice([0.0, 0.3, 0.6])] = np.inf
    values = rng.uniform(0.3, 1.3, n_tasks) if rng.random() < 0.5 else np.asarray(rng.uniform(0.5, 1.2))
    return values, costs, rng.integers(0, 4, n_agents)


@pytest.mark.parametrize("exhaustive", [False, True])
def test_capacity_payments_match_brute_force(exhaustive: bool) -> None:
    rng = np.random.default_rng(31 + exhaustive)
    for _ in range(250):
        values, costs, capacity = random_capacity_market(rng)
        out = clear_capacity(values, costs, capacity)
        w = oracles.surplus(values, costs)
        total, marginal = oracles.capacity_marginals(w, capacity, exhaustive=exhaustive)
        assert out.welfare == pytest.approx(total, rel=RTOL, abs=ATOL)
        won = out.agent_of_task >= 0
        agents, tasks = out.agent_of_task[won], np.flatnonzero(won)
        assert w[agents, tasks].sum() == pytest.approx(total, rel=RTOL, abs=ATOL)
        assert (out.n_won <= capacity).all()
        bids = np.bincount(agents, weights=costs[agents, tasks], minlength=costs.shape[0])
        expected = np.where(out.n_won > 0, bids + marginal, 0.0)
        np.testing.assert_allclose(out.payment, expected, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(marginal[out.n_won == 0], 0.0, atol=ATOL)


def test_capacity_medium_market_matches_scipy_resolves() -> None:
    rng = np.random.default_rng(33)
    costs = rng.uniform(0, 1, (25, 40))
    capacity = rng.integers(1, 4, 25)
    out = clear_capacity(0.9, costs, capacity)
    total, marginal = oracles.capacity_marginals(oracles.surplus(0.9, costs), capacity)
    assert out.welfare == pytest.approx(total, rel=RTOL)
    np.testing.assert_allclose(out.utility, np.where(out.n_won > 0, marginal, 0.0), rtol=RTOL, atol=ATOL)


def test_capacity_counterexample_from_research_notes() -> None:
    """vcg.md §1c: A (capacity 2) has surplus 10 on both tasks, B 8, C 3. VCG leaves A utility 9,
    whereas uniform minimum per-task prices (8 each) would leave it only 4."""
    costs = np.array([[0.0, 0.0], [2.0, 2.0], [7.0, 7.0]])
    out = clear_capacity(10.0, costs, np.array([2, 1, 1]))
    assert isinstance(out, CapacityOutcome)
    assert out.tasks_of(0).tolist() == [0, 1] and out.n_won.tolist() == [2, 0, 0]
    assert out.welfare == pytest.approx(20.0)
    assert out.utility[0] == pytest.approx(9.0)
    assert out.payment[0] == pytest.approx(9.0)  # bids 0 + 0, plus W* − W*₋A = 20 − 11


def test_capacity_above_task_count_and_zero_capacity() -> None:
    costs = np.array([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]])
    out = clear_capacity(1.0, costs, np.array([10, 0]))
    assert out.agent_of_task.tolist() == [0, 0, 0]
    assert out.n_won.tolist() == [3, 0] and out.payment[1] == 0.0
    assert out.payment[0] == pytest.approx(3.0)  # no competitor: paid the full value of every task


def test_splitting_into_sybils_never_pays_in_unit_demand_markets() -> None:
    """False-name-proofness (Yokoo et al. 2004 + Lok et al. 2007, vcg.md §4.3): an agent of capacity k
    that splits into k unit-capacity identities, bidding its true costs on all tasks or on a partition of
    them, earns no more utility. With identical bids it wins the same tasks, so its total payment does
    not rise either."""
    rng = np.random.default_rng(41)
    gains = []
    for _ in range(400):
        n_agents, n_tasks = int(rng.integers(2, 6)), int(rng.integers(2, 6))
        costs = rng.uniform(0, 1, (n_agents, n_tasks))
        costs[rng.random(costs.shape) < 0.2] = np.inf
        values = rng.uniform(0.4, 1.3, n_tasks)
        k = int(rng.integers(2, 4))
        capacity = np.ones(n_agents, dtype=np.int64)
        capacity[0] = k
        honest = clear_capacity(values, costs, capacity)

        clones = clear(values, np.vstack([np.repeat(costs[:1], k, axis=0), costs[1:]]))
        assert sorted(clones.task_of_agent[:k][clones.task_of_agent[:k] >= 0]) == honest.tasks_of(0).tolist()
        assert clones.payment[:k].sum() <= honest.payment[0] + 1e-9
        gains.append(clones.utility[:k].sum() - honest.utility[0])

        part = rng.integers(0, k, n_tasks)
        split = np.repeat(costs[:1], k, axis=0)
        split[part[None, :] != np.arange(k)[:, None]] = np.inf
        partition = clear(values, np.vstack([split, costs[1:]]))
        gains.append(partition.utility[:k].sum() - honest.utility[0])
    assert max(gains) <= 1e-9
    assert min(gains) < -0.01  # splitting often costs the agent


def test_clear_payments_is_clears_allocation_and_payments():
    rng = np.random.default_rng(11)
    for n, m in ((1, 1), (3, 5), (8, 4), (12, 12)):
        costs = rng.uniform(0, 1, (n, m))
        costs[rng.random((n, m)) < 0.3] = np.inf  # ineligible pairs
        values = rng.uniform(0.5, 1.5, (n, m))
        task_of_agent, payment = clear_payments(values, costs)
        out = clear(values, costs)
        np.testing.assert_array_equal(task_of_agent, out.task_of_agent)
        np.testing.assert_array_equal(payment, out.payment)
        assert (task_of_agent >= 0).any()
    ok = np.ones((2, 2))
    assert clear_payments(np.ones(2), ok) is None  # needs broadcasting: left to clear
    assert clear_payments(ok, np.full((2, 2), -np.inf)) is None
    assert clear_payments(np.zeros((0, 0)), np.zeros((0, 0))) is None
