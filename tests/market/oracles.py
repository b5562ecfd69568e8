"""Brute-force VCG oracles for the tests: exhaustive search and scipy re-solves (n + 1 solves).

These are deliberately naive: they recompute ``W*₋ᵢ`` from scratch for every agent, which is exactly
what the fast code avoids. Weights are the clipped surpluses ``max(values − costs, 0)``.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.optimize import linear_sum_assignment


def surplus(values: np.ndarray | float, costs: np.ndarray) -> np.ndarray:
    """``max(values − costs, 0)`` with ``inf`` costs giving 0."""
    costs = np.asarray(costs, dtype=float)
    w = np.broadcast_to(np.asarray(values, dtype=float), costs.shape) - costs
    return np.where(w > 0, w, 0.0)


def exhaustive_welfare(w: np.ndarray, skip: int = -1) -> float:
    """Best total weight of a matching (each agent ≤ 1 task, each task ≤ 1 agent), agent ``skip`` removed.

    Exhaustive over matchings: for each agent in turn, try every free task and "none"; memoised on
    (agent, set of used tasks) so that 6 × 6 markets stay instant.
    """
    n_agents, n_tasks = w.shape

    @functools.cache
    def best(i: int, used: int) -> float:
        if i == n_agents:
            return 0.0
        if i == skip:
            return best(i + 1, used)
        result = best(i + 1, used)
        for j in range(n_tasks):
            if not used >> j & 1 and w[i, j] > 0:
                result = max(result, w[i, j] + best(i + 1, used | 1 << j))
        return result

    return best(0, 0)


def scipy_welfare(w: np.ndarray) -> float:
    """Best total weight of a matching by ``scipy.optimize.linear_sum_assignment``."""
    if w.size == 0:
        return 0.0
    rows, cols = linear_sum_assignment(w, maximize=True)
    return float(w[rows, cols].sum())


def vcg_marginals(w: np.ndarray, exhaustive: bool = False) -> tuple[float, np.ndarray]:
    """``(W*, W* − W*₋ᵢ for every agent)`` by n + 1 independent solves."""
    if exhaustive:
        total = exhaustive_welfare(w)
        return total, np.array([total - exhaustive_welfare(w, skip=i) for i in range(w.shape[0])])
    total = scipy_welfare(w)
    return total, np.array([total - scipy_welfare(np.delete(w, i, axis=0)) for i in range(w.shape[0])])


def capacity_welfare_scipy(w: np.ndarray, capacity: np.ndarray, drop: int = -1) -> float:
    """Best welfare when agent i may take ``capacity[i]`` tasks (row copies); agent ``drop`` removed."""
    keep = np.array([i for i in range(w.shape[0]) if i != drop], dtype=int)
    owner = np.repeat(keep, np.asarray(capacity)[keep])
    return scipy_welfare(w[owner]) if owner.size else 0.0


def capacity_welfare_exhaustive(w: np.ndarray, capacity: np.ndarray, drop: int = -1) -> float:
    """Same as :func:`capacity_welfare_scipy`, by trying every agent (or nobody) for every task."""
    n_agents, n_tasks = w.shape

    @functools.cache
    def best(j: int, left: tuple[int, ...]) -> float:
        if j == n_tasks:
            return 0.0
        result = best(j + 1, left)
        for i in range(n_agents):
            if i != drop and left[i] > 0 and w[i, j] > 0:
                rest = left[:i] + (left[i] - 1,) + left[i + 1 :]
                result = max(result, w[i, j] + best(j + 1, rest))
        return result

    return best(0, tuple(int(k) for k in capacity))


def capacity_marginals(w: np.ndarray, capacity: np.ndarray, exhaustive: bool = False) -> tuple[float, np.ndarray]:
    """``(W*, W* − W*₋ᵢ)`` with all of agent i's capacity removed, by n + 1 solves."""
    solve = capacity_welfare_exhaustive if exhaustive else capacity_welfare_scipy
    total = solve(w, capacity)
    return total, np.array([total - solve(w, capacity, drop=i) for i in range(w.shape[0])])
