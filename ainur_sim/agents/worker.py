"""A worker: an AI agent that delivers tasks — its reactions to being assigned and to settlements.

Bidding is decided for all workers at once by the population (vectorized); a worker object reacts only to
events about itself: it schedules its delivery when it wins (its quality as its strategy has it: an
on-off worker by the time, a camouflage worker by the task's budget), and a whitewasher leaves and
re-registers when its reputation has fallen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from ainur_sim.agents.strategies import (
    CAMOUFLAGE,
    LOW_QUALITY,
    MALICIOUS,
    ON_OFF,
    STRATEGIES,
    WHITEWASH,
    camouflaging,
    defecting,
)

if TYPE_CHECKING:
    from ainur_sim.agents.population import MarketPopulation

GARBAGE_QUALITY = 0.05


class Worker(mesa.Agent):
    """One worker identity (a DID on its own account); ``index`` is its row in the population's arrays."""

    model: MarketPopulation

    def __init__(self, model: MarketPopulation, index: int, account: int, principal: int, strategy: int) -> None:
        super().__init__(model)
        self.index = index
        self.account = account
        self.principal = principal
        self.strategy = strategy
        self.whitewash_attempts = 0

    @property
    def strategy_name(self) -> str:
        return STRATEGIES[self.strategy]

    def on_assigned(self, e: dict[str, Any]) -> None:
        """Won a task: deliver after the work time — or not, as the strategy has it."""
        m = self.model
        pop = m.cfg.population
        m.load[self.index] += 1
        rng = m.rng
        task = int(e["task"])
        if self.strategy == MALICIOUS:
            if rng.random() < 0.5:
                return  # never delivers: the deadline passes, stake is slashed
            quality = GARBAGE_QUALITY
        elif rng.random() < pop.non_delivery_prob:
            return
        else:
            p_good = m.quality[self.index]
            me = m.strategy[self.index: self.index + 1]
            off = self.strategy == ON_OFF and defecting(me, m.env.now, pop)[0]
            # a camouflage worker cheats on valuable tasks (the budget is public chain state)
            cam = self.strategy == CAMOUFLAGE and camouflaging(me, m.market.tasks.budget[task], pop)[0]
            if self.strategy in LOW_QUALITY or off or cam:
                p_good = m.low_quality[self.index]
            good = rng.random() < p_good
            thr = pop.quality_threshold
            quality = rng.uniform(thr, 1.0) if good else rng.uniform(0.0, thr)
        m.later(rng.exponential(pop.work_s), m.submit, "deliver_result", self.account, (task, int(quality * 1e6)))

    def on_settled(self, e: dict[str, Any]) -> None:
        """A task of this worker ended: free capacity; a whitewasher checks its standing once the settlement's
        feedback is on record (the escrow records a block's feedback after its settlements: the check runs
        after the block, at the same simulated time)."""
        m = self.model
        m.load[self.index] = max(m.load[self.index] - 1, 0)
        if self.strategy == WHITEWASH and m.load[self.index] == 0:
            m.later(0.0, self._check_standing)

    def _check_standing(self) -> None:
        """Whitewasher holding no task: leave (then re-register) if its reputation is below ``whitewash_below``."""
        m = self.model
        if m.load[self.index] or not m.market.registry.is_active(self.account):
            return
        score = float(m.market.reputation.score(np.array([self.account], dtype=np.int64), m.env.now)[0])
        if score < m.cfg.population.whitewash_below:
            self.whitewash_attempts += 1
            m.submit("deactivate_did", self.account, ())

    def on_deactivated(self) -> None:
        """Left the registry: try to come back under the same DID (the registry may refuse)."""
        if self.strategy == WHITEWASH:
            self.model.register(self.index)
