"""A basic market population: requesters, truthful workers and one capability verifier.

The workload that drives the market pallets: agents act only by submitting calls (``CallBook.submit``,
the RPC client) and react only to runtime events — as real users do. Attributes live in numpy arrays;
decisions over many workers (who bids on a task) are vectorized; timers are bare SimPy timeouts with a
callback (no process per agent), and requests arrive from one Poisson process for all requesters.

* **Workers** register a DID claiming their capabilities and stake at onboarding (spread over ten
  minutes from ``population.onboarding_s``). On ``TaskPosted`` every eligible worker (verified for the
  capability, enough stake, cost below the budget) bids its cost — truthful bidding; the cheapest
  ``market.auction.max_bidders`` bid. A winner delivers after an exponential work time with quality good
  (≥ threshold) with its own probability ``quality`` ~ Beta(α, β), or never delivers (``non_delivery_prob``).
* **Requesters** post tasks (capability, lognormal budget, quality threshold 0.7, maximum wait one hour)
  from ``population.market_start_s``. On delivery: a bad result is disputed with ``dispute_prob``, a good
  one with ``frivolous_dispute_prob``; otherwise released at once with ``release_prob`` (else it
  auto-releases after the challenge window).
* **The verifier** answers each capability claim after ``verification_delay_s`` with a credential, except
  with ``verification_failure_prob`` (and never while ``population.verifier_up`` is false).

Richer strategies, adoption curves and Mesa bookkeeping are the agents layer's next step (issue 6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import simpy

from ainur_sim.chain.economy import tokens

if TYPE_CHECKING:
    from ainur_sim.config import Config
    from ainur_sim.market.protocol import Market

THRESHOLD = 0.7
MAX_WAIT_S = 3600.0
ONBOARDING_SPREAD_S = 600.0


class BasicPopulation:
    """Requesters, workers and the verifier of one run."""

    def __init__(self, cfg: Config, env: simpy.Environment, market: Market, rng: np.random.Generator) -> None:
        p = cfg.population
        self.cfg = cfg
        self.env = env
        self.market = market
        self.book = market.book
        self.rng = rng
        ledger = market.economy.ledger
        self.workers = ledger.create_accounts(p.n_workers)
        self.requesters = ledger.create_accounts(p.n_requesters)
        if p.n_workers and p.worker_tokens > 0:
            ledger.apply("genesis", self.workers, -1, tokens(p.worker_tokens))
        if p.n_requesters and p.requester_tokens > 0:
            ledger.apply("genesis", self.requesters, -1, tokens(p.requester_tokens))
        n_cap = p.n_capabilities
        caps = rng.random((p.n_workers, n_cap)) < 0.5
        caps[np.arange(p.n_workers), rng.integers(0, n_cap, p.n_workers)] = True  # at least one each
        self.capabilities = caps
        self.quality = rng.beta(p.quality_alpha, p.quality_beta, p.n_workers)
        self.budget_median = tokens(p.budget_tokens)
        self.cost_factor = rng.uniform(0.5, 1.5, (p.n_workers, n_cap)) * p.cost_share
        self._index = {int(a): i for i, a in enumerate(self.workers)}
        ev = market.events
        ev.subscribe("DidRegistered", self._on_registered)
        ev.subscribe("TaskPosted", self._on_posted)
        ev.subscribe("TaskAssigned", self._on_assigned)
        ev.subscribe("TaskDelivered", self._on_delivered)
        if p.n_workers:
            env.process(self._onboard())
        if p.n_requesters and p.tasks_per_hour > 0:
            env.process(self._requests())

    # --- timers --------------------------------------------------------------------------------------
    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        """Call ``fn(*args)`` after ``delay`` simulated seconds (one bare timeout, no process)."""
        self.env.timeout(max(float(delay), 0.0)).callbacks.append(lambda _e: fn(*args))

    def _onboard(self):  # noqa: ANN202 - SimPy generator
        p = self.cfg.population
        yield self.env.timeout(p.onboarding_s)
        offsets = np.sort(self.rng.uniform(0.0, ONBOARDING_SPREAD_S, self.workers.size))
        order = self.rng.permutation(self.workers.size)
        stake = tokens(p.stake_tokens)
        for off, i in zip(offsets.tolist(), order.tolist(), strict=True):
            self._later(off, self._register, i, stake)

    def _register(self, i: int, stake: int) -> None:
        account = int(self.workers[i])
        mask = int(sum(1 << c for c in np.flatnonzero(self.capabilities[i]).tolist()))
        self.book.submit("register_agent", account, self.env.now, (mask,))
        if stake:
            self.book.submit("stake_reputation", account, self.env.now, (stake,))

    def _requests(self):  # noqa: ANN202 - SimPy generator
        p = self.cfg.population
        yield self.env.timeout(p.market_start_s)
        rate = p.tasks_per_hour / 3600.0
        while True:
            yield self.env.timeout(self.rng.exponential(1.0 / rate))
            who = int(self.requesters[self.rng.integers(0, self.requesters.size)])
            cap = int(self.rng.integers(0, p.n_capabilities))
            budget = int(self.budget_median * self.rng.lognormal(0.0, p.budget_sigma))
            self.book.submit("post_task", who, self.env.now, (cap, max(budget, 1), int(THRESHOLD * 1e6),
                                                                int(MAX_WAIT_S)))

    # --- reactions -----------------------------------------------------------------------------------
    def _on_registered(self, e: dict[str, Any]) -> None:
        """The verifier checks each claimed capability."""
        reg = self.cfg.market.registry
        if not self.cfg.population.verifier_up:
            return
        mask = int(e["capabilities"])
        for cap in range(self.cfg.population.n_capabilities):
            if mask >> cap & 1 and self.rng.random() >= reg.verification_failure_prob:
                self._later(reg.verification_delay_s, self._issue, int(e["account"]), cap)

    def _issue(self, account: int, cap: int) -> None:
        self.book.submit("issue_credential", self.market.verifier, self.env.now, (account, cap))

    def _on_posted(self, e: dict[str, Any]) -> None:
        """Eligible workers bid their cost (vectorized over all workers)."""
        if not self.workers.size:
            return
        cap, budget = int(e["capability"]), int(e["budget"])
        m = self.market
        st = m.staking
        staked = m.economy.ledger.staked[self.workers]
        verified = np.array([m.registry.is_verified(int(a), cap) for a in self.workers])
        cost = (self.cost_factor[:, cap] * self.budget_median).astype(np.int64)
        ok = verified & (staked >= st.min_stake) & (budget <= st.max_value_per_stake * staked) \
            & (cost < budget) & (cost > 0)
        idx = np.flatnonzero(ok)
        if idx.size > self.cfg.market.auction.max_bidders:
            idx = idx[np.argsort(cost[idx], kind="stable")[: self.cfg.market.auction.max_bidders]]
        for i in idx.tolist():
            self.book.submit("submit_bid", int(self.workers[i]), self.env.now, (int(e["task"]), int(cost[i])))

    def _on_assigned(self, e: dict[str, Any]) -> None:
        i = self._index.get(int(e["worker"]))
        if i is None or self.rng.random() < self.cfg.population.non_delivery_prob:
            return
        good = self.rng.random() < self.quality[i]
        q = self.rng.uniform(THRESHOLD, 1.0) if good else self.rng.uniform(0.0, THRESHOLD)
        self._later(self.rng.exponential(self.cfg.population.work_s), self._deliver, int(e["worker"]),
                    int(e["task"]), int(q * 1e6))

    def _deliver(self, worker: int, task: int, quality_ppm: int) -> None:
        self.book.submit("deliver_result", worker, self.env.now, (task, quality_ppm))

    def _on_delivered(self, e: dict[str, Any]) -> None:
        p = self.cfg.population
        good = e["quality"] >= THRESHOLD
        u = self.rng.random()
        who, task = int(e["requester"]), int(e["task"])
        if u < (p.frivolous_dispute_prob if good else p.dispute_prob):
            self.book.submit("open_dispute", who, self.env.now, (task,))
        elif good and self.rng.random() < p.release_prob:
            self.book.submit("release_payment", who, self.env.now, (task,))

    # --- output --------------------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """``agents.parquet``: one row per agent at the end of the run."""
        m = self.market
        led = m.economy.ledger
        ids = np.concatenate([self.workers, self.requesters, [m.verifier]]).astype(np.int64)
        kind = ["worker"] * self.workers.size + ["requester"] * self.requesters.size + ["verifier"]
        m.reputation.ensure(int(ids.max()) + 1 if ids.size else 0)
        rep = m.reputation.score(ids, self.env.now) if ids.size else np.zeros(0)
        rep = np.where(np.isin(ids, self.workers), rep, np.nan)
        return pd.DataFrame({
            "agent_id": ids, "kind": pd.Series(kind, dtype=object),
            "strategy": pd.Series(["truthful" if k == "worker" else "" for k in kind], dtype=object),
            "reputation": rep.astype(np.float64), "stake": led.staked[ids].astype(np.int64),
            "balance": led.free[ids].astype(np.int64),
            "quality": np.concatenate([self.quality, np.full(ids.size - self.workers.size, np.nan)]),
        })
