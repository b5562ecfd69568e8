"""Clearing mechanisms behind one interface, so experiments can swap them by name (``market.mechanism``).

Every mechanism is a pure function ``(values, costs, **params) -> Outcome``. ``values`` and ``costs``
follow ``vcg.clear``'s conventions: costs (n_agents, n_tasks) with ``np.inf`` = no bid, values
broadcastable to that shape. A pair is matched only if ``values − costs > 0``, and each agent wins at
most one task. The mechanisms differ in who wins and what winners are paid:

============== ======================================================= ========================
name           allocation                                              payment to the winner
============== ======================================================= ========================
vcg            maximum total surplus                                   bid + (W* − W*₋ᵢ)
second_price   per task, in index order: highest surplus among agents  value − max(runner-up
               that have not won yet (lowest bid when values are       surplus, 0)
               common)
first_price    maximum total surplus (the VCG allocation)              its bid
posted_price   per task, in index order: the cheapest agent that has   the posted price
               not won yet with bid ≤ price ≤ value
greedy         highest-surplus pairs first                             its bid
============== ======================================================= ========================

Only ``vcg`` is strategy-proof in multi-task markets. ``second_price`` is strategy-proof for one task;
with several tasks an agent may shade its bid on an early task to stay free for a better later one.
``first_price`` and ``greedy`` reward overbidding, and ``posted_price`` gives up welfare to fix prices.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ainur_sim.market.vcg import Outcome, clear, efficient_allocation, market_arrays, outcome_from_allocation

Mechanism = Callable[..., Outcome]

#: Default posted price as a share of the pair's value (``posted_price``).
DEFAULT_PRICE_FRACTION = 0.8


def _no_trade(values: np.ndarray, costs: np.ndarray) -> Outcome:
    n_agents = costs.shape[0]
    return outcome_from_allocation(values, costs, np.full(n_agents, -1, np.int64), np.zeros(n_agents))


def vcg(values: np.ndarray | float, costs: np.ndarray) -> Outcome:
    """VCG: welfare-maximizing allocation; winner i paid ``bid + W* − W*₋ᵢ`` (see ``vcg.clear``)."""
    return clear(values, costs)


def first_price(values: np.ndarray | float, costs: np.ndarray) -> Outcome:
    """Pay-as-bid on the welfare-maximizing (VCG) allocation: each winner is paid its own bid.

    With the same allocation as VCG, the two differ only in payments, which isolates the effect of the
    payment rule. Not truthful: a winner gains by raising its bid while it stays in the allocation.
    """
    v, c = market_arrays(values, costs)
    if c.size == 0:
        return _no_trade(v, c)
    task_of_agent = efficient_allocation(v, c)
    winners = np.flatnonzero(task_of_agent >= 0)
    payment = np.zeros(c.shape[0])
    payment[winners] = c[winners, task_of_agent[winners]]
    return outcome_from_allocation(v, c, task_of_agent, payment)


def second_price(values: np.ndarray | float, costs: np.ndarray) -> Outcome:
    """Independent per-task reverse second-score auctions, run in task-index order.

    For task j, the bidders are the agents that have not won an earlier task and whose surplus
    ``s_i = values_ij − costs_ij`` is positive. The highest surplus wins (the lowest bid when values are
    common) and is paid ``values_wj − max(s_(2), 0)``, where ``s_(2)`` is the runner-up's surplus. With a
    common value V this is ``min(second-lowest bid, V)``: the classic Vickrey reverse auction with the
    value as reserve (Che 1993's second-score rule otherwise). A winner leaves the market, so each agent
    wins at most one task.
    """
    v, c = market_arrays(values, costs)
    n_agents, n_tasks = c.shape
    task_of_agent = np.full(n_agents, -1, np.int64)
    payment = np.zeros(n_agents)
    if c.size == 0:
        return _no_trade(v, c)
    surplus = v - c
    free = np.ones(n_agents, bool)
    for j in range(n_tasks):
        score = np.where(free, surplus[:, j], -np.inf)
        winner = int(np.argmax(score))
        if not score[winner] > 0.0:
            continue
        score[winner] = -np.inf
        runner_up = max(float(score.max()), 0.0)
        payment[winner] = v[winner, j] - runner_up
        task_of_agent[winner] = j
        free[winner] = False
    return outcome_from_allocation(v, c, task_of_agent, payment)


def posted_price(
    values: np.ndarray | float,
    costs: np.ndarray,
    *,
    price: np.ndarray | float | None = None,
    price_fraction: float = DEFAULT_PRICE_FRACTION,
) -> Outcome:
    """Posted prices: for each task in index order, the cheapest free agent with bid ≤ price takes it.

    Args:
        price: the posted price, broadcastable to (n_tasks,) or (n_agents, n_tasks); if None it is
            ``price_fraction · values`` for each pair (a share of what the agent's work is worth).
        price_fraction: in (0, 1]; used only when ``price`` is None.

    A pair is eligible if ``bid ≤ price ≤ value`` and ``value − bid > 0``; the winner is paid the price.
    Each agent takes at most one task.
    """
    v, c = market_arrays(values, costs)
    n_agents, n_tasks = c.shape
    if price is None:
        if not 0.0 < price_fraction <= 1.0:
            raise ValueError(f"price_fraction must be in (0, 1]; got {price_fraction}")
        posted = price_fraction * v
    else:
        posted = np.asarray(price, dtype=np.float64)
        try:
            posted = np.broadcast_to(posted, c.shape)
        except ValueError:
            raise ValueError(
                f"price with shape {posted.shape} cannot be broadcast to (n_agents, n_tasks) = {c.shape}"
            ) from None
        if not np.isfinite(posted).all():
            raise ValueError("price must be finite")
    if c.size == 0:
        return _no_trade(v, c)
    eligible = (c <= posted) & (posted <= v) & (v - c > 0.0)
    task_of_agent = np.full(n_agents, -1, np.int64)
    payment = np.zeros(n_agents)
    free = np.ones(n_agents, bool)
    for j in range(n_tasks):
        bid = np.where(free & eligible[:, j], c[:, j], np.inf)
        winner = int(np.argmin(bid))
        if bid[winner] == np.inf:
            continue
        payment[winner] = posted[winner, j]
        task_of_agent[winner] = j
        free[winner] = False
    return outcome_from_allocation(v, c, task_of_agent, payment)


def greedy(values: np.ndarray | float, costs: np.ndarray) -> Outcome:
    """Greedy matching, highest-surplus pair first, each winner paid its bid.

    A fast heuristic that reaches at least half the optimal welfare; not truthful (pay-as-bid).
    """
    v, c = market_arrays(values, costs)
    n_agents, n_tasks = c.shape
    if c.size == 0:
        return _no_trade(v, c)
    surplus = (v - c).ravel()
    positive = np.flatnonzero(surplus > 0.0)
    order = positive[np.argsort(-surplus[positive], kind="stable")]
    task_of_agent = np.full(n_agents, -1, np.int64)
    task_taken = np.zeros(n_tasks, bool)
    payment = np.zeros(n_agents)
    n_left = min(n_agents, n_tasks)
    for flat in order:
        i, j = divmod(int(flat), n_tasks)
        if task_of_agent[i] >= 0 or task_taken[j]:
            continue
        task_of_agent[i] = j
        task_taken[j] = True
        payment[i] = c[i, j]
        n_left -= 1
        if n_left == 0:
            break
    return outcome_from_allocation(v, c, task_of_agent, payment)


MECHANISMS: dict[str, Mechanism] = {
    "vcg": vcg,
    "second_price": second_price,
    "first_price": first_price,
    "posted_price": posted_price,
    "greedy": greedy,
}


def get_mechanism(name: str) -> Mechanism:
    """The mechanism registered as ``name`` (the ``market.mechanism`` config value).

    Raises:
        ValueError: naming the allowed mechanisms, if ``name`` is unknown.
    """
    try:
        return MECHANISMS[name]
    except (KeyError, TypeError):
        allowed = ", ".join(MECHANISMS)
        raise ValueError(f"unknown market.mechanism {name!r}; allowed: {allowed}") from None
