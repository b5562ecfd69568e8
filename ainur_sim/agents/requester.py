"""A requester: posts tasks (the population draws when) and judges deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mesa

if TYPE_CHECKING:
    from ainur_sim.agents.population import MarketPopulation


class Requester(mesa.Agent):
    """One requester account; ``rate`` is its relative task rate (mean 1 over requesters)."""

    model: MarketPopulation

    def __init__(self, model: MarketPopulation, index: int, account: int, rate: float) -> None:
        super().__init__(model)
        self.index = index
        self.account = account
        self.rate = rate
        self.disputes = 0

    def on_delivered(self, e: dict[str, Any]) -> None:
        """Dispute a bad delivery (usually) or a good one (rarely); release a good one at once or let it
        auto-release."""
        m = self.model
        pop = m.cfg.population
        good = e["quality"] >= pop.quality_threshold
        task = int(e["task"])
        if m.rng.random() < (pop.frivolous_dispute_prob if good else pop.dispute_prob):
            self.disputes += 1
            m.submit("open_dispute", self.account, (task,))
        elif good and m.rng.random() < pop.release_prob:
            m.submit("release_payment", self.account, (task,))
