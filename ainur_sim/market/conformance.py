"""Conformance kit: the properties every clearing mechanism must have, checked on random markets.

``check_mechanism(mechanism)`` runs a mechanism (a callable or a registered name) on a fixed set of
edge-case markets and on ``n_trials`` random small markets. It raises AssertionError naming the
property, the market and the offending agent or task at the first violation. The properties:

- the result is an ``Outcome`` with the right shapes and dtypes, and consistent fields (the two
  allocation maps agree, losers are paid 0, utility, requester surplus and welfare match the
  allocation);
- determinism: the same inputs give the same outcome, and the inputs are not modified;
- individual rationality: a winner is paid at least its bid for the task it won;
- payments within values: a winner is paid at most the value of its pair;
- no task is assigned twice;
- no-bid pairs (cost ``inf``) and pairs with non-positive surplus are never matched;
- invariance to agent order: permuting the agents permutes the outcome. Random costs are continuous,
  so ties, the one legitimate source of order dependence, have probability zero.

Strategy-proofness is not a conformance property: only VCG has it (see the tests).
"""

from __future__ import annotations

import numpy as np

from ainur_sim.market.mechanisms import Mechanism, get_mechanism
from ainur_sim.market.valuation import effective_values
from ainur_sim.market.vcg import Outcome

#: Absolute tolerance on payments, relative to the market's largest finite value or cost (at least 1).
RELATIVE_TOLERANCE = 1e-9


def random_market(rng: np.random.Generator, max_agents: int = 6, max_tasks: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A random small market ``(values, costs)`` with continuous costs (ties have probability 0).

    Shapes range over 1..max on each side, so square, tall and wide markets all occur. A random share
    of pairs (none, some or most) has no bid. Values are a scalar, one per task, or reputation-weighted
    with reserves (full matrix), and sit in the same range as costs, so many pairs have no surplus.
    """
    n_agents = int(rng.integers(1, max_agents + 1))
    n_tasks = int(rng.integers(1, max_tasks + 1))
    costs = rng.uniform(0.0, 1.0, (n_agents, n_tasks))
    no_bid_share = rng.choice([0.0, 0.3, 0.7])
    costs[rng.random((n_agents, n_tasks)) < no_bid_share] = np.inf
    style = int(rng.integers(3))
    if style == 0:
        values: np.ndarray = np.asarray(rng.uniform(0.3, 1.5))
    elif style == 1:
        values = rng.uniform(0.2, 1.5, n_tasks)
    else:
        values = effective_values(
            rng.uniform(0.3, 2.0, n_tasks), rng.uniform(0.0, 1.0, n_agents), rng.uniform(0.3, 1.2, n_tasks)
        )
    return values, costs


def edge_markets() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Named degenerate markets every mechanism must handle: empty, 1×1, all no-bid, no surplus."""
    inf = np.inf
    return [
        ("0x0", np.zeros((0, 0)), np.zeros((0, 0))),
        ("0 agents", np.ones(3), np.zeros((0, 3))),
        ("0 tasks", np.asarray(1.0), np.zeros((3, 0))),
        ("1x1 trade", np.asarray(1.0), np.array([[0.4]])),
        ("1x1 no surplus", np.asarray(1.0), np.array([[1.0]])),
        ("1x1 no bid", np.asarray(1.0), np.array([[inf]])),
        ("all no bid", np.ones(3), np.full((4, 3), inf)),
        ("values <= costs", np.array([0.1, 0.2, 0.3]), np.array([[0.5, 0.2, 0.9], [0.1, 0.7, 0.3]])),
        ("one row", np.array([1.0, 1.0, 1.0]), np.array([[0.7, 0.2, inf]])),
        ("one column", np.asarray(1.0), np.array([[0.7], [0.2], [inf], [0.5]])),
        ("all-inf row", np.asarray(1.0), np.array([[inf, inf], [0.3, 0.6], [0.5, 0.1]])),
    ]


def _tolerance(values: np.ndarray, costs: np.ndarray) -> float:
    finite = costs[np.isfinite(costs)]
    scale = max(1.0, float(np.abs(values).max(initial=0.0)), float(np.abs(finite).max(initial=0.0)))
    return RELATIVE_TOLERANCE * scale


def _check_structure(out: object, n_agents: int, n_tasks: int, where: str) -> None:
    assert isinstance(out, Outcome), f"{where}: returned {type(out).__name__}, expected Outcome"
    for field, length, dtype in (
        ("task_of_agent", n_agents, np.int64),
        ("agent_of_task", n_tasks, np.int64),
        ("payment", n_agents, np.float64),
        ("utility", n_agents, np.float64),
        ("requester_surplus", n_tasks, np.float64),
    ):
        array = getattr(out, field)
        assert isinstance(array, np.ndarray), f"{where}: {field} is {type(array).__name__}, not an ndarray"
        assert array.shape == (length,), f"{where}: {field} has shape {array.shape}, expected ({length},)"
        assert array.dtype == dtype, f"{where}: {field} has dtype {array.dtype}, expected {np.dtype(dtype)}"
    assert isinstance(out.welfare, float | np.floating), f"{where}: welfare is {type(out.welfare).__name__}"
    assert np.isfinite(out.welfare), f"{where}: welfare is {out.welfare}"
    assert np.isfinite(out.payment).all(), f"{where}: non-finite payment {out.payment}"


def _check_allocation(out: Outcome, values: np.ndarray, costs: np.ndarray, where: str) -> None:
    n_agents, n_tasks = costs.shape
    task_of_agent, agent_of_task = out.task_of_agent, out.agent_of_task
    assert ((task_of_agent >= -1) & (task_of_agent < n_tasks)).all(), (
        f"{where}: task_of_agent out of range: {task_of_agent}"
    )
    assert ((agent_of_task >= -1) & (agent_of_task < n_agents)).all(), (
        f"{where}: agent_of_task out of range: {agent_of_task}"
    )
    winners = np.flatnonzero(task_of_agent >= 0)
    tasks = task_of_agent[winners]
    assert np.unique(tasks).size == tasks.size, f"{where}: a task is assigned twice: task_of_agent = {task_of_agent}"
    assert np.count_nonzero(agent_of_task >= 0) == winners.size and (agent_of_task[tasks] == winners).all(), (
        f"{where}: task_of_agent {task_of_agent} and agent_of_task {agent_of_task} disagree"
    )
    for i, j in zip(winners, tasks, strict=True):
        assert np.isfinite(costs[i, j]), f"{where}: agent {i} won task {j} without a bid (cost inf)"
        assert values[i, j] - costs[i, j] > 0.0, (
            f"{where}: agent {i} won task {j} with non-positive surplus "
            f"(value {values[i, j]:.6g}, cost {costs[i, j]:.6g})"
        )


def _check_payments(out: Outcome, values: np.ndarray, costs: np.ndarray, where: str) -> None:
    tol = _tolerance(values, costs)
    winners = out.winners
    tasks = out.task_of_agent[winners]
    losers = np.flatnonzero(out.task_of_agent < 0)
    assert (out.payment[losers] == 0.0).all(), (
        f"{where}: agents {losers} won nothing but are paid {out.payment[losers]}"
    )
    for i, j in zip(winners, tasks, strict=True):
        pay, cost, value = out.payment[i], costs[i, j], values[i, j]
        assert pay >= cost - tol, (
            f"{where}: individual rationality violated: agent {i} won task {j} at cost {cost:.9g} but is paid {pay:.9g}"
        )
        assert pay <= value + tol, (
            f"{where}: payment above value: agent {i} is paid {pay:.9g} for task {j} worth {value:.9g}"
        )
    surplus = values[winners, tasks] - costs[winners, tasks]
    assert abs(out.welfare - surplus.sum()) <= tol * max(1, winners.size), (
        f"{where}: welfare {out.welfare:.9g} differs from the allocation's surplus {surplus.sum():.9g}"
    )
    assert np.allclose(out.utility[winners], out.payment[winners] - costs[winners, tasks], rtol=0, atol=tol), (
        f"{where}: utility {out.utility} is not payment − cost"
    )
    expected = np.zeros(costs.shape[1])
    expected[tasks] = values[winners, tasks] - out.payment[winners]
    assert np.allclose(out.requester_surplus, expected, rtol=0, atol=tol), (
        f"{where}: requester_surplus {out.requester_surplus} is not value − payment ({expected})"
    )


def _same(a: Outcome, b: Outcome) -> bool:
    return (
        np.array_equal(a.task_of_agent, b.task_of_agent)
        and np.array_equal(a.agent_of_task, b.agent_of_task)
        and np.array_equal(a.payment, b.payment)
        and a.welfare == b.welfare
    )


def _check_permutation(
    mechanism: Mechanism,
    out: Outcome,
    values: np.ndarray,
    costs: np.ndarray,
    perm: np.ndarray,
    where: str,
    params: dict[str, object],
) -> None:
    permuted_values = values[perm] if values.ndim == 2 else values
    permuted = mechanism(permuted_values, costs[perm], **params)
    tol = _tolerance(np.asarray(values), costs)
    assert np.array_equal(permuted.task_of_agent, out.task_of_agent[perm]), (
        f"{where}: allocation depends on agent order: with agents reordered as {perm.tolist()} the tasks "
        f"are {permuted.task_of_agent.tolist()}, expected {out.task_of_agent[perm].tolist()}"
    )
    assert np.allclose(permuted.payment, out.payment[perm], rtol=0, atol=tol), (
        f"{where}: payments depend on agent order: with agents reordered as {perm.tolist()} they are "
        f"{permuted.payment.tolist()}, expected {out.payment[perm].tolist()}"
    )


def _check_market(
    mechanism: Mechanism,
    values: np.ndarray,
    costs: np.ndarray,
    where: str,
    rng: np.random.Generator,
    params: dict[str, object],
) -> None:
    values_in, costs_in = values.copy(), costs.copy()
    out = mechanism(values, costs, **params)
    full_values = np.broadcast_to(values, costs.shape)
    where = f"{where} ({costs.shape[0]} agents × {costs.shape[1]} tasks)"
    _check_structure(out, *costs.shape, where)
    assert np.array_equal(values, values_in) and np.array_equal(costs, costs_in), f"{where}: inputs were modified"
    again = mechanism(values, costs, **params)
    assert _same(out, again), f"{where}: not deterministic: two calls on the same market differ"
    _check_allocation(out, full_values, costs, where)
    _check_payments(out, full_values, costs, where)
    if costs.shape[0] > 1:
        _check_permutation(mechanism, out, values, costs, rng.permutation(costs.shape[0]), where, params)


def check_mechanism(mechanism: Mechanism | str, n_trials: int = 300, seed: int = 0, **params: object) -> int:
    """Check that ``mechanism`` satisfies the conformance properties (module docstring).

    Args:
        mechanism: a callable ``(values, costs, **params) -> Outcome`` or a registered name.
        n_trials: how many random markets to check, on top of the edge cases.
        seed: seed of the market generator; the same seed checks the same markets.
        params: passed to every call of the mechanism.

    Returns:
        The number of markets checked.

    Raises:
        AssertionError: at the first violated property, naming it, the market and the agent or task.
    """
    mech = get_mechanism(mechanism) if isinstance(mechanism, str) else mechanism
    name = mechanism if isinstance(mechanism, str) else getattr(mechanism, "__name__", repr(mechanism))
    rng = np.random.default_rng(seed)
    n_checked = 0
    for label, values, costs in edge_markets():
        _check_market(mech, values, costs, f"{name}: edge market '{label}'", rng, params)
        n_checked += 1
    for trial in range(n_trials):
        values, costs = random_market(rng)
        _check_market(mech, values, costs, f"{name}: random market #{trial} (seed {seed})", rng, params)
        n_checked += 1
    return n_checked
