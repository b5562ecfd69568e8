"""The third-party capability verifier: answers DID registrations with credentials after a delay.

Each claimed capability is verified with probability ``1 − verification_failure_prob`` after
``verification_delay_s``; a request that would be answered during an outage (``population.verifier_outages``)
waits until the verifier is back. The verifier signs ``registry.issue_credential`` calls (it pays their fees).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mesa

if TYPE_CHECKING:
    from ainur_sim.agents.population import MarketPopulation


class Verifier(mesa.Agent):
    """The verifier service on its own account."""

    model: MarketPopulation

    def __init__(self, model: MarketPopulation, account: int) -> None:
        super().__init__(model)
        self.account = account
        self.outages = [(w.start_s, w.start_s + w.duration_s) for w in model.cfg.population.verifier_outages]
        self.delayed = 0

    def answer_time(self, t: float) -> float:
        """When a request received at ``t`` is answered (after the delay; after any outage it falls into)."""
        reg = self.model.cfg.market.registry
        when = t + reg.verification_delay_s
        for start, end in self.outages:
            if start <= when < end:
                self.delayed += 1
                when = end + reg.verification_delay_s
        return when

    def on_registered(self, e: dict[str, Any]) -> None:
        m = self.model
        reg = m.cfg.market.registry
        mask = int(e["capabilities"])
        when = self.answer_time(m.env.now)
        for cap in range(m.cfg.population.n_capabilities):
            if mask >> cap & 1 and m.rng.random() >= reg.verification_failure_prob:
                m.later(when - m.env.now, m.submit, "issue_credential", self.account, (int(e["account"]), cap))
