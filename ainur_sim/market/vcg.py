"""VCG clearing of a task market: one assignment solve plus one Dijkstra for all payments.

Agents bid a cost for each task and each requester gains a value from each agent's work. The pair
surplus is ``w_ij = values_ij − costs_ij``. Pairs with ``w_ij ≤ 0`` (including ``costs_ij = inf``, "no
bid") can never be matched. The allocation is a maximum-weight matching ``W*``; with unit demand each
agent wins at most one task. A winner is paid ``costs_ij + W* − W*₋ᵢ``, where ``W*₋ᵢ`` is the best
welfare without agent i.

The payments do not need n + 1 re-solves (research/vcg.md §2). The solver is a shortest augmenting path
(SAP, Jonker–Volgenant family) with an augmenting-row-reduction warm-up. Its dual potentials are an
optimal core point ``(a, p)``. One Dijkstra over the matched tasks, on the reduced costs
``a_i + p_k − w_ik ≥ 0``, lowers ``p`` to the minimum Walrasian prices ``p_min``. Then
``a_i + (p_j − p_min_j) = W* − W*₋ᵢ`` for every agent at once (Leonard 1983).

Agents with capacity ``k_i`` (they may win up to ``k_i`` tasks) use a different route, because
per-task minimum prices are not VCG once ``k > 1``. The solve runs on agent copies. For each winning
agent, its copies are removed from the optimal solution and only the freed tasks are re-augmented,
warm-started from the optimal duals.

All Numba kernels live in this file: Numba's on-disk cache does not notice edits to jitted callees in
other modules. Units are those of the inputs (any currency); only differences of values and costs matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

# --------------------------------------------------------------------------------------------------
# Kernels (minimisation form: rows ≤ columns, every row gets a column; C is finite)
# --------------------------------------------------------------------------------------------------


@njit(cache=True)
def _augment(C, cur, u, v, col4row, row4col, cols, n_cols, shortest, path, remaining, rows_seen, cols_seen):
    """Grow one shortest augmenting path from free row ``cur`` over columns ``cols[:n_cols]`` and flip it.

    Invariants kept (and required on entry): ``C_ij − u_i − v_j ≥ 0`` for usable columns, equality on
    matched pairs, ``v_j ≤ 0`` everywhere and ``v_j = 0`` on unmatched columns. Returns False when the
    row reaches no usable column.
    """
    for t in range(n_cols):
        j = cols[t]
        remaining[t] = j
        shortest[j] = np.inf
    n_remaining = n_cols
    n_rows_seen = 0
    n_cols_seen = 0
    min_val = 0.0
    i = cur
    sink = -1
    while sink == -1:
        rows_seen[n_rows_seen] = i
        n_rows_seen += 1
        base = min_val - u[i]
        lowest = np.inf
        index = -1
        for t in range(n_remaining):
            j = remaining[t]
            reduced = base + C[i, j] - v[j]
            if reduced < shortest[j]:
                path[j] = i
                shortest[j] = reduced
            s = shortest[j]
            # On ties prefer a free column: it ends the search sooner.
            if s < lowest or (s == lowest and row4col[j] == -1):
                lowest = s
                index = t
        if index == -1 or lowest == np.inf:
            return False
        min_val = lowest
        j = remaining[index]
        cols_seen[n_cols_seen] = j
        n_cols_seen += 1
        n_remaining -= 1
        remaining[index] = remaining[n_remaining]
        if row4col[j] == -1:
            sink = j
        else:
            i = row4col[j]

    u[cur] += min_val
    for t in range(1, n_rows_seen):
        i = rows_seen[t]
        u[i] += min_val - shortest[col4row[i]]
    for t in range(n_cols_seen):
        j = cols_seen[t]
        v[j] -= min_val - shortest[j]

    j = sink
    while True:
        i = path[j]
        row4col[j] = i
        previous = col4row[i]
        col4row[i] = j
        j = previous
        if i == cur:
            break
    return True


@njit(cache=True)
def _reduce_rows(C, v, col4row, row4col, free):
    """Jonker–Volgenant augmenting row reduction: an auction-like warm-up that matches most rows cheaply.

    A free row takes its best column ``j1`` and lowers ``v_j1`` until it is indifferent to its second
    best, displacing the previous holder. Column duals only decrease, from 0, and only on columns that
    stay matched from then on, so the rectangular invariants (``v ≤ 0``, ``v = 0`` on unmatched
    columns) hold and every matched row is tight at its column. ``free`` holds the free rows on entry;
    the rows still free are written to its front and their number returned.
    """
    n_rows, n_cols = C.shape
    n_free = free.shape[0]
    if n_cols < 2:
        return n_free
    for _sweep in range(2):
        k = 0
        n_new = 0
        steps = 0
        step_limit = 8 * n_rows + 64
        while k < n_free:
            i = free[k]
            k += 1
            u1 = np.inf
            u2 = np.inf
            j1 = -1
            j2 = -1
            for j in range(n_cols):
                h = C[i, j] - v[j]
                if h < u2:
                    if h < u1:
                        u2 = u1
                        j2 = j1
                        u1 = h
                        j1 = j
                    else:
                        u2 = h
                        j2 = j
            i0 = row4col[j1]
            lowered = u1 < u2
            if lowered:
                v[j1] -= u2 - u1
            elif i0 >= 0:
                j1 = j2
                i0 = row4col[j2]
            col4row[i] = j1
            row4col[j1] = i
            if i0 >= 0:
                col4row[i0] = -1
                steps += 1
                if lowered and steps < step_limit:
                    k -= 1
                    free[k] = i0
                else:
                    free[n_new] = i0
                    n_new += 1
        n_free = n_new
        if n_free == 0:
            break
    return n_free


@njit(cache=True)
def _solve(C):
    """Min-cost assignment of every row of ``C`` (rows ≤ columns) with duals ``(u, v)``.

    Returns ``(col4row, row4col, u, v)`` with ``u_i + v_j ≤ C_ij``, equality on matched pairs,
    ``v ≤ 0`` and ``v = 0`` on unmatched columns.
    """
    n_rows, n_cols = C.shape
    u = np.zeros(n_rows)
    v = np.zeros(n_cols)
    col4row = np.full(n_rows, -1, np.int64)
    row4col = np.full(n_cols, -1, np.int64)
    free = np.arange(n_rows)
    n_free = _reduce_rows(C, v, col4row, row4col, free)
    for i in range(n_rows):
        j = col4row[i]
        if j >= 0:
            u[i] = C[i, j] - v[j]
    for t in range(n_free):
        i = free[t]
        lowest = np.inf
        for j in range(n_cols):
            h = C[i, j] - v[j]
            if h < lowest:
                lowest = h
        u[i] = lowest

    cols = np.arange(n_cols)
    shortest = np.empty(n_cols)
    path = np.full(n_cols, -1, np.int64)
    remaining = np.empty(n_cols, np.int64)
    rows_seen = np.empty(n_rows, np.int64)
    cols_seen = np.empty(n_cols, np.int64)
    for t in range(n_free):
        _augment(C, free[t], u, v, col4row, row4col, cols, n_cols, shortest, path, remaining, rows_seen, cols_seen)
    return col4row, row4col, u, v


@njit(cache=True)
def _min_prices(C, agents_are_rows, task_of_agent, agent_of_task, a, p):
    """How far each task's price can drop: ``dist = p − p_min`` (one dense Dijkstra).

    ``C`` is the solver's cost matrix, ``−W`` with ``W`` the clipped surplus, laid out agents × tasks
    (plus a dummy column) or tasks × agents; ``(a, p)`` is an optimal dual, zero on unmatched agents
    and tasks. The minimum Walrasian prices are the least ``p_min ≥ 0`` with ``p_min_k ≥ W_ik`` for
    unmatched agents i and ``p_min_k ≥ p_min_j + W_ik − W_ij`` for the owner i of task j: a
    longest-path problem, which ``p`` turns into a shortest-path problem with edge lengths
    ``a_i + p_k − W_ik ≥ 0``. Unmatched tasks have ``p = p_min = 0`` and need no search.
    """
    n_agents = task_of_agent.shape[0]
    n_tasks = agent_of_task.shape[0]
    dist = np.zeros(n_tasks)
    best_free = np.zeros(n_tasks)
    if agents_are_rows:
        for i in range(n_agents):
            if task_of_agent[i] < 0:
                for k in range(n_tasks):
                    if -C[i, k] > best_free[k]:
                        best_free[k] = -C[i, k]
    else:
        for k in range(n_tasks):
            for i in range(n_agents):
                if task_of_agent[i] < 0 and -C[k, i] > best_free[k]:
                    best_free[k] = -C[k, i]
    todo = np.empty(n_tasks, np.int64)
    n_left = 0
    for k in range(n_tasks):
        if agent_of_task[k] >= 0:
            todo[n_left] = k
            n_left += 1
            dist[k] = max(p[k] - best_free[k], 0.0)
    while n_left > 0:
        index = 0
        for t in range(1, n_left):
            if dist[todo[t]] < dist[todo[index]]:
                index = t
        j = todo[index]
        n_left -= 1
        todo[index] = todo[n_left]
        i = agent_of_task[j]
        base = dist[j] + a[i]
        for t in range(n_left):
            k = todo[t]
            w_ik = -C[i, k] if agents_are_rows else -C[k, i]
            candidate = base + p[k] - w_ik
            if candidate < dist[k]:
                dist[k] = candidate
    return dist


@njit(cache=True)
def _unit_vcg(C, agents_are_rows, n_agents, n_tasks):
    """Solve, read the matching and core point ``(a, p)`` off the duals, then run :func:`_min_prices`.

    ``C = −max(values − costs, 0)`` with the smaller side as rows (see :func:`_cost_matrix`). Zero-surplus
    pairs the solver happens to match count as unmatched; their duals are 0 anyway. Returns
    ``(task_of_agent, agent_of_task, marginal)`` with ``marginal_i = W* − W*₋ᵢ`` (0 for losers).
    """
    col4row, _, u, v = _solve(C)
    task_of_agent = np.full(n_agents, -1, np.int64)
    agent_of_task = np.full(n_tasks, -1, np.int64)
    a = np.zeros(n_agents)
    p = np.zeros(n_tasks)
    if agents_are_rows:
        for i in range(n_agents):
            j = col4row[i]
            if 0 <= j < n_tasks and C[i, j] < 0.0:
                task_of_agent[i] = j
                agent_of_task[j] = i
                a[i] = -u[i]
                p[j] = -v[j]
    else:
        for j in range(n_tasks):
            i = col4row[j]
            if i >= 0 and C[j, i] < 0.0:
                task_of_agent[i] = j
                agent_of_task[j] = i
                a[i] = -v[i]
                p[j] = -u[j]
    dist = _min_prices(C, agents_are_rows, task_of_agent, agent_of_task, a, p)
    marginal = np.zeros(n_agents)
    for i in range(n_agents):
        if task_of_agent[i] >= 0:
            marginal[i] = a[i] + dist[task_of_agent[i]]
    return task_of_agent, agent_of_task, marginal


@njit(cache=True)
def _capacity_marginals(C, owner, n_owners, col4row, row4col, u, v):
    """``W* − W*₋g`` for every owner g by warm-started re-augmentation (research/vcg.md §2.3).

    ``C`` is tasks × columns (agent copies, then one zero-cost dummy per task so that every task row
    always has a column); ``owner[col]`` is the agent of a copy or −1. ``(col4row, row4col, u, v)`` is the
    optimal solution of :func:`_solve`. Deleting g's columns keeps the duals feasible and the other
    matched pairs tight, so only the rows g held need new augmenting paths.
    """
    n_rows, n_cols = C.shape
    start = np.zeros(n_owners + 1, np.int64)
    for r in range(n_rows):
        g = owner[col4row[r]]
        if g >= 0:
            start[g + 1] += 1
    for g in range(n_owners):
        start[g + 1] += start[g]
    held = np.empty(n_rows, np.int64)
    fill = start[:-1].copy()
    for r in range(n_rows):
        g = owner[col4row[r]]
        if g >= 0:
            held[fill[g]] = r
            fill[g] += 1

    marginal = np.zeros(n_owners)
    cols = np.empty(n_cols, np.int64)
    shortest = np.empty(n_cols)
    path = np.full(n_cols, -1, np.int64)
    remaining = np.empty(n_cols, np.int64)
    rows_seen = np.empty(n_rows, np.int64)
    cols_seen = np.empty(n_cols, np.int64)
    for g in range(n_owners):
        if start[g + 1] == start[g]:
            continue
        u_g = u.copy()
        v_g = v.copy()
        c4r = col4row.copy()
        r4c = row4col.copy()
        n_usable = 0
        for j in range(n_cols):
            if owner[j] != g:
                cols[n_usable] = j
                n_usable += 1
        for t in range(start[g], start[g + 1]):
            r = held[t]
            r4c[c4r[r]] = -1
            c4r[r] = -1
        for t in range(start[g], start[g + 1]):
            _augment(
                C,
                held[t],
                u_g,
                v_g,
                c4r,
                r4c,
                cols,
                n_usable,
                shortest,
                path,
                remaining,
                rows_seen,
                cols_seen,
            )
        delta = 0.0
        for r in range(n_rows):
            if c4r[r] != col4row[r]:
                delta += C[r, c4r[r]] - C[r, col4row[r]]
        marginal[g] = delta
    return marginal


# --------------------------------------------------------------------------------------------------
# Inputs and outcomes
# --------------------------------------------------------------------------------------------------


def market_arrays(values: np.ndarray | float, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a market and return ``(values, costs)`` as float64 arrays of shape (n_agents, n_tasks).

    ``costs`` must be 2-D, with finite entries or ``+inf`` (no bid). ``values`` must be finite and
    broadcastable to ``costs.shape``; the returned values are a read-only broadcast view.
    Raises ValueError with the offending shape or entry otherwise.
    """
    try:
        c = np.asarray(costs, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"values and costs must be numeric arrays: {exc}") from None
    if c.ndim != 2:
        raise ValueError(f"costs must be a 2-D array (n_agents, n_tasks); got shape {c.shape}")
    if not (c > -np.inf).all():  # one pass that catches both NaN and -inf
        i, j = np.argwhere(~(c > -np.inf))[0]
        raise ValueError(f"costs must be finite or +inf (no bid); costs[{i}, {j}] = {c[i, j]}")
    if not np.isfinite(v).all():
        index = tuple(int(x) for x in np.argwhere(~np.isfinite(v))[0])
        raise ValueError(f"values must be finite; values{list(index)} = {v[index]}")
    if v.shape == c.shape:  # already full size: a read-only view, as broadcast_to would give (cheaper)
        v = v.view()
        v.flags.writeable = False
        return v, c
    try:
        v = np.broadcast_to(v, c.shape)
    except ValueError:
        raise ValueError(
            f"values with shape {v.shape} cannot be broadcast to costs' shape {c.shape} (n_agents, n_tasks)"
        ) from None
    return v, c


def clipped_surplus(values: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """``max(values − costs, 0)``: the weight of each pair, 0 meaning "never matched" (float64, new array)."""
    with np.errstate(over="ignore"):  # callers reject the resulting inf with a clear message
        w = np.subtract(values, costs)
    np.maximum(w, 0.0, out=w)
    return w


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Outcome:
    """The result of one unit-demand clearing; every mechanism returns this type.

    Attributes:
        task_of_agent: int64 (n_agents,), the task each agent won, −1 if none.
        agent_of_task: int64 (n_tasks,), the agent each task went to, −1 if none.
        payment: float64 (n_agents,), paid by the task's requester to the agent; 0 for losers.
        utility: float64 (n_agents,), ``payment − cost`` of the won task at the reported costs; for VCG
            this is ``W* − W*₋ᵢ``, the agent's marginal contribution.
        requester_surplus: float64 (n_tasks,), ``value − payment`` of each allocated task, 0 otherwise;
            for VCG these are the minimum Walrasian prices.
        welfare: total surplus ``Σ (value − cost)`` of the allocation (``W*`` for VCG).
    """

    task_of_agent: np.ndarray
    agent_of_task: np.ndarray
    payment: np.ndarray
    utility: np.ndarray
    requester_surplus: np.ndarray
    welfare: float

    @property
    def n_agents(self) -> int:
        return int(self.task_of_agent.shape[0])

    @property
    def n_tasks(self) -> int:
        return int(self.agent_of_task.shape[0])

    @property
    def winners(self) -> np.ndarray:
        """Indices of the agents that won a task, ascending."""
        return np.flatnonzero(self.task_of_agent >= 0)


def outcome_from_allocation(
    values: np.ndarray, costs: np.ndarray, task_of_agent: np.ndarray, payment: np.ndarray
) -> Outcome:
    """Build an :class:`Outcome` from validated arrays, an allocation and per-agent payments.

    Losers' payments are forced to 0; the derived fields (utility, requester surplus, welfare) are
    computed here so that every mechanism reports them identically.
    """
    n_agents, n_tasks = costs.shape
    task_of_agent = np.array(task_of_agent, dtype=np.int64)
    winners = np.flatnonzero(task_of_agent >= 0)
    tasks = task_of_agent[winners]
    agent_of_task = np.full(n_tasks, -1, np.int64)
    agent_of_task[tasks] = winners
    won_pay = np.asarray(payment, dtype=np.float64)[winners]
    won_cost = costs[winners, tasks]
    won_value = values[winners, tasks]
    pay = np.zeros(n_agents)
    pay[winners] = won_pay
    utility = np.zeros(n_agents)
    utility[winners] = won_pay - won_cost
    requester = np.zeros(n_tasks)
    requester[tasks] = won_value - won_pay
    return Outcome(
        task_of_agent=_frozen(task_of_agent),
        agent_of_task=_frozen(agent_of_task),
        payment=_frozen(pay),
        utility=_frozen(utility),
        requester_surplus=_frozen(requester),
        welfare=float(np.sum(won_value - won_cost)),
    )


# --------------------------------------------------------------------------------------------------
# Unit demand
# --------------------------------------------------------------------------------------------------


def _cost_matrix(values: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, bool]:
    """``C = −max(values − costs, 0)`` oriented with the smaller side as rows, and whether agents are rows.

    A square market gets one dummy zero column so that some column stays free: that is what makes the
    duals ``a = −u``, ``p = −v`` non-negative (research/vcg.md §2.2).
    """
    n_agents, n_tasks = costs.shape
    agents_are_rows = n_agents <= n_tasks
    if agents_are_rows:
        c = np.zeros((n_agents, n_tasks + (n_agents == n_tasks)))
        block = c[:, :n_tasks]
        with np.errstate(over="ignore"):
            np.subtract(costs, values, out=block)
        np.minimum(block, 0.0, out=block)
    else:
        c = np.empty((n_tasks, n_agents))
        with np.errstate(over="ignore"):
            np.subtract(costs.T, values.T, out=c)
        np.minimum(c, 0.0, out=c)
    if not c.min() > -np.inf:
        raise ValueError("values − costs overflows float64; rescale values and costs")
    return c, agents_are_rows


def _unit_solution(values: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(task_of_agent, W* − W*₋ᵢ)`` for a validated, non-empty market."""
    c, agents_are_rows = _cost_matrix(values, costs)
    task_of_agent, _, marginal = _unit_vcg(c, agents_are_rows, costs.shape[0], costs.shape[1])
    return task_of_agent, marginal


def efficient_allocation(values: np.ndarray | float, costs: np.ndarray) -> np.ndarray:
    """The welfare-maximizing unit-demand allocation that :func:`clear` uses: task per agent, −1 if none."""
    v, c = market_arrays(values, costs)
    if c.size == 0:
        return np.full(c.shape[0], -1, np.int64)
    return _unit_solution(v, c)[0]


def clear(values: np.ndarray | float, costs: np.ndarray) -> Outcome:
    """Clear a unit-demand market by VCG (CONTRACT.md).

    Args:
        values: float64, broadcastable to (n_agents, n_tasks): the requester's gain from that agent doing
            the task, e.g. ``valuation.effective_values(...)``.
        costs: float64 (n_agents, n_tasks): each agent's bid per task; ``np.inf`` = no bid.

    Returns:
        An :class:`Outcome`. A pair is matched only if ``values − costs > 0``; the matching maximizes
        ``W*``; a winner i on task j is paid ``costs[i, j] + W* − W*₋ᵢ``; losers are paid 0.

    Raises:
        ValueError: on NaN, −inf costs, non-finite values, non-2-D costs or unbroadcastable values.
    """
    v, c = market_arrays(values, costs)
    n_agents = c.shape[0]
    if c.size == 0:
        return outcome_from_allocation(v, c, np.full(n_agents, -1, np.int64), np.zeros(n_agents))
    task_of_agent, payment = _allocation_and_payments(v, c)
    return outcome_from_allocation(v, c, task_of_agent, payment)


def _allocation_and_payments(v: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The VCG allocation (task per agent, −1 none) and each winner's payment (its cost plus its marginal
    contribution; 0 for losers) of a non-empty validated market."""
    task_of_agent, marginal = _unit_solution(v, c)
    winners = np.flatnonzero(task_of_agent >= 0)
    payment = np.zeros(c.shape[0])
    payment[winners] = c[winners, task_of_agent[winners]] + marginal[winners]
    return task_of_agent, payment


def clear_payments(values: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(clear(values, costs).task_of_agent, clear(values, costs).payment)`` — the same arrays by the same
    operations — for a non-empty market that needs no broadcasting: ``values`` and ``costs`` float64 of one
    2-D shape, costs finite or ``+inf``, values finite. None when these do not hold (``clear`` then
    decides, raising what it raises). For callers that read only the allocation and the payments (the
    auction pallet, once per clearing) without building the full :class:`Outcome`."""
    if not (type(values) is np.ndarray and type(costs) is np.ndarray and values.dtype == np.float64
            and costs.dtype == np.float64 and costs.ndim == 2 and values.shape == costs.shape and costs.size
            and (costs > -np.inf).all() and np.isfinite(values).all()):
        return None
    return _allocation_and_payments(values, costs)


# --------------------------------------------------------------------------------------------------
# Capacity-k agents
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CapacityOutcome:
    """The result of a clearing where agent i may win up to ``capacity[i]`` tasks.

    Attributes:
        agent_of_task: int64 (n_tasks,), the agent each task went to, −1 if none.
        n_won: int64 (n_agents,), how many tasks each agent won.
        payment: float64 (n_agents,), total paid to each agent: the sum of its bids on the tasks it won
            plus ``W* − W*₋ᵢ`` (all of i's capacity removed); 0 for agents that won nothing.
        utility: float64 (n_agents,), ``W* − W*₋ᵢ`` for winners, 0 otherwise.
        welfare: ``W*``.
    """

    agent_of_task: np.ndarray
    n_won: np.ndarray
    payment: np.ndarray
    utility: np.ndarray
    welfare: float

    def tasks_of(self, agent: int) -> np.ndarray:
        """The tasks won by ``agent``, ascending."""
        return np.flatnonzero(self.agent_of_task == agent)


def _capacity_array(capacity: np.ndarray | int, n_agents: int) -> np.ndarray:
    """``capacity`` as int64 (n_agents,); a scalar applies to every agent. Whole floats are accepted."""
    cap = np.asarray(capacity)
    try:
        cap = np.broadcast_to(cap, (n_agents,))
    except ValueError:
        raise ValueError(f"capacity with shape {cap.shape} does not match n_agents = {n_agents}") from None
    whole = cap.dtype.kind in "iu" or (
        cap.dtype.kind == "f" and bool(np.isfinite(cap).all()) and bool((cap == np.round(cap)).all())
    )
    if not whole or (cap < 0).any():
        raise ValueError(f"capacity must hold non-negative integers; got {cap.tolist()}")
    return cap.astype(np.int64)


def clear_capacity(values: np.ndarray | float, costs: np.ndarray, capacity: np.ndarray | int) -> CapacityOutcome:
    """Clear a market by VCG where agent i may win up to ``capacity[i]`` tasks (costs are additive).

    Same ``values``/``costs`` conventions as :func:`clear`. The allocation maximizes total surplus
    subject to the capacities; agent i's payment is the sum of its bids on the tasks it won plus
    ``W* − W*₋ᵢ``. With all capacities 1 this equals :func:`clear`.
    """
    v, c = market_arrays(values, costs)
    n_agents, n_tasks = c.shape
    cap = _capacity_array(capacity, n_agents)
    empty = CapacityOutcome(
        agent_of_task=_frozen(np.full(n_tasks, -1, np.int64)),
        n_won=_frozen(np.zeros(n_agents, np.int64)),
        payment=_frozen(np.zeros(n_agents)),
        utility=_frozen(np.zeros(n_agents)),
        welfare=0.0,
    )
    if n_agents == 0 or n_tasks == 0:
        return empty
    w = clipped_surplus(v, c)
    if not w.max() < np.inf:
        raise ValueError("values − costs overflows float64; rescale values and costs")
    copies = np.minimum(cap, np.count_nonzero(w > 0.0, axis=1))
    owner = np.repeat(np.arange(n_agents, dtype=np.int64), copies)
    if owner.size == 0:
        return empty
    n_copies = owner.size
    cost_matrix = np.zeros((n_tasks, n_copies + n_tasks))
    np.negative(w.T[:, owner], out=cost_matrix[:, :n_copies])
    owner_of_col = np.concatenate([owner, np.full(n_tasks, -1, np.int64)])
    col4row, row4col, u, v_dual = _solve(cost_matrix)
    marginal = _capacity_marginals(cost_matrix, owner_of_col, n_agents, col4row, row4col, u, v_dual)

    agent_of_task = owner_of_col[col4row]
    tasks = np.arange(n_tasks)
    matched = agent_of_task >= 0
    matched[matched] = w[agent_of_task[matched], tasks[matched]] > 0.0
    agent_of_task[~matched] = -1
    won_agents = agent_of_task[matched]
    n_won = np.bincount(won_agents, minlength=n_agents).astype(np.int64)
    bids = np.bincount(won_agents, weights=c[won_agents, tasks[matched]], minlength=n_agents)
    utility = np.where(n_won > 0, marginal, 0.0)
    payment = np.where(n_won > 0, bids + utility, 0.0)
    return CapacityOutcome(
        agent_of_task=_frozen(agent_of_task),
        n_won=_frozen(n_won),
        payment=_frozen(payment),
        utility=_frozen(utility),
        welfare=float(w[won_agents, tasks[matched]].sum()),
    )
