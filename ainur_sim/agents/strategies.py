"""Worker strategies: how an AI agent prices its bids and what it delivers — pure functions over arrays.

=============== ===================================================== =====================================
strategy        ask (bid) for a task it can do at cost ``c``           delivery
=============== ===================================================== =====================================
``truthful``    ``c``                                                  honest quality
``shading``     ``c · (1 + shade)`` (above cost)                       honest quality
``underbid``    ``c · (1 − underbid)`` (below cost: buys market share) honest quality
``collusion``   ``max(c, ring_reserve · budget)`` — the ring's shared  honest quality
                reserve price; with ``ring_bidding = designated``
                the ring's cheapest member among those bidding on
                the task asks ``c`` (a bid ring)
``sybil``       ``c``, from ``sybil_identities`` DIDs of one principal honest quality
``lazy``        ``c``                                                  low quality (Beta(2, 2))
``malicious``   ``c · (1 − underbid)``                                 never delivers (half) or garbage
``whitewash``   ``c``                                                  low quality; leaves and re-registers
                                                                       when its reputation falls below
                                                                       ``whitewash_below``
``on_off``      ``c``                                                  honest for ``on_period_s``, then low
                                                                       quality for ``off_period_s``, …
``camouflage``  ``c``                                                  honest on tasks whose budget is below
                                                                       ``camouflage_above_tokens``, low
                                                                       quality on those at or above it
=============== ===================================================== =====================================

"Low quality" is the worker's own chance of meeting the threshold drawn from Beta(2, 2) at creation
(``LOW_QUALITY_AB``) instead of its honest one. A camouflage worker builds its reputation on the many
cheap tasks and cheats on the few valuable ones (EigenTrust's threat model C with the cheating aimed at
value): with the default median budget of 50 tokens (lognormal, σ = 0.5) and the threshold at 75 tokens
it cheats on ≈ 21 % of the tasks it wins, which carry ≈ 38 % of their value.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ainur_sim.chain.economy import tokens

if TYPE_CHECKING:
    from ainur_sim.config import PopulationConfig

STRATEGIES: tuple[str, ...] = ("truthful", "shading", "underbid", "collusion", "sybil", "lazy", "malicious",
                               "whitewash", "on_off", "camouflage")
CODE: dict[str, int] = {name: i for i, name in enumerate(STRATEGIES)}
(TRUTHFUL, SHADING, UNDERBID, COLLUSION, SYBIL, LAZY, MALICIOUS, WHITEWASH, ON_OFF,
 CAMOUFLAGE) = range(len(STRATEGIES))

#: Strategies whose delivered quality is drawn from the low-quality distribution Beta(2, 2).
LOW_QUALITY = (LAZY, WHITEWASH)
LOW_QUALITY_AB = (2.0, 2.0)


def shares(mix: dict[str, float]) -> np.ndarray:
    """Normalized shares of every strategy (in ``STRATEGIES`` order)."""
    x = np.array([float(mix.get(name, 0.0)) for name in STRATEGIES])
    return x / x.sum()


def assign(n: int, mix: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    """Strategy codes of ``n`` principals: exact counts by largest remainder, in random order."""
    p = shares(mix)
    counts = np.floor(p * n).astype(np.int64)
    rest = n - counts.sum()
    if rest:
        counts[np.argsort(-(p * n - counts), kind="stable")[:rest]] += 1
    codes = np.repeat(np.arange(len(STRATEGIES), dtype=np.int64), counts)
    return rng.permutation(codes)


def worker_identities(pop: PopulationConfig) -> int:
    """Upper bound of the funded worker identities of a run: joining principals, sybils holding several
    DIDs each (idle workers get no endowment) — for the genesis budget check."""
    p = shares(dict(pop.strategy_mix))
    n = pop.joining_workers()
    return n + math.ceil(n * p[SYBIL]) * (pop.sybil_identities - 1)


def base_asks(strategy: np.ndarray, cost: np.ndarray, pop: PopulationConfig) -> np.ndarray:
    """The asks before the collusion ring's reserve and rounding (base units, float; a new array): shading
    marks the cost up, underbidders and malicious workers mark it down. It does not depend on the budget."""
    ask = cost.astype(np.float64)
    ask[strategy == SHADING] *= 1.0 + pop.shade
    low = (strategy == UNDERBID) | (strategy == MALICIOUS)
    ask[low] *= 1.0 - pop.underbid
    return ask


def asks(strategy: np.ndarray, cost: np.ndarray, budget: float, pop: PopulationConfig) -> np.ndarray:
    """What each worker asks for a task of ``budget`` given its ``cost`` (base units, float)."""
    ask = base_asks(strategy, cost, pop)
    ring = strategy == COLLUSION
    ask[ring] = np.maximum(ask[ring], pop.ring_reserve * budget)
    return np.floor(ask)


def rings(strategy: np.ndarray, ring_size: int) -> np.ndarray:
    """Ring of each worker identity: collusion identities in index order, ``ring_size`` to a ring; −1 for
    everyone else. Deterministic (the principals' order is already random), so it draws no random numbers."""
    ring = np.full(strategy.size, -1, dtype=np.int64)
    members = strategy == COLLUSION
    ring[members] = np.arange(int(members.sum()), dtype=np.int64) // ring_size
    return ring


def designated(bidders: np.ndarray, ring: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """The ring members among ``bidders`` (worker indices) that bid their cost on a task under a bid ring:
    per ring, the one with the lowest cost (ties: lowest index) — the others ask the ring's reserve, so a
    ring member wins exactly when it would have won bidding truthfully, at a payment the reserve bids raise
    (research/vcg.md §4.2, Design A)."""
    members = bidders[ring[bidders] >= 0]
    if members.size == 0:
        return members
    order = members[np.lexsort((members, cost[members], ring[members]))]
    first = np.ones(order.size, dtype=bool)
    first[1:] = ring[order[1:]] != ring[order[:-1]]
    return order[first]


def defecting(strategy: np.ndarray, t: float, pop: PopulationConfig) -> np.ndarray:
    """On-off workers in their "off" phase at time ``t`` (all others: False)."""
    period = pop.on_period_s + pop.off_period_s
    off = (t % period) >= pop.on_period_s if period > 0 else False
    return (strategy == ON_OFF) & off


def camouflaging(strategy: np.ndarray, budget: int, pop: PopulationConfig) -> np.ndarray:
    """Camouflage workers that cheat on a task of ``budget`` base units: all of them if the budget is at
    least ``camouflage_above_tokens`` (compared in base units), none below it; other strategies: False."""
    return (strategy == CAMOUFLAGE) & (int(budget) >= tokens(pop.camouflage_above_tokens))
