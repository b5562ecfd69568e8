"""Adoption: when agents join and how long they stay active.

Joining times come from three sources, drawn once at build time (vectorized): the initial cohort at
``onboarding_s`` spread uniformly over ``onboarding_spread_s``; onboarding ``waves``; and a logistic growth
curve — ``N(t) = growth · (σ((t − midpoint)/width) − σ(−midpoint/width)) / (1 − σ(−midpoint/width))`` joins
by time ``t`` (so ``N(0) = 0`` and ``N(∞) = growth``), sampled by inverse transform. Activity lifetimes
are exponential with mean ``mean_active_days`` (retention after 30 days = ``exp(−30 / mean)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ainur_sim.config import PopulationConfig

DAY_S = 86400.0


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def logistic_times(n: int, midpoint_s: float, width_s: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` joining times following the logistic curve above (inverse transform of uniforms), sorted."""
    if n <= 0:
        return np.zeros(0)
    s0 = float(_sigmoid(-midpoint_s / width_s))
    u = rng.random(n)
    p = s0 + u * (1.0 - s0)
    return np.sort(midpoint_s + width_s * np.log(p / (1.0 - p)))


def joining_times(pop: PopulationConfig, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Joining times (s, sorted) of all ``kind`` ("workers" | "requesters") principals of a run."""
    first = pop.n_workers if kind == "workers" else pop.n_requesters
    parts = [pop.onboarding_s + rng.uniform(0.0, pop.onboarding_spread_s, first)]
    for w in pop.waves:
        k = w.workers if kind == "workers" else w.requesters
        parts.append(w.t_s + rng.uniform(0.0, w.spread_s, k))
    growth = pop.growth_workers if kind == "workers" else pop.growth_requesters
    parts.append(logistic_times(growth, pop.growth_midpoint_s, pop.growth_width_s, rng))
    return np.sort(np.concatenate(parts))


def lifetimes(n: int, mean_active_days: float, rng: np.random.Generator) -> np.ndarray:
    """Seconds each of ``n`` agents stays active after joining (exponential)."""
    return rng.exponential(mean_active_days * DAY_S, n)
