"""The market's population as a Mesa 3 model, activated event-driven by the SimPy kernel.

Agents (``Worker``, ``Requester``, ``Verifier``) are Mesa agents in the model's AgentSets; their attributes
that decisions need in bulk live in numpy arrays on the model (one row per worker identity / requester),
so the hot decision — which workers bid on a task, and at what price — is one vectorized pass. Nothing
loops over all agents per block: the kernel wakes the model only

* at joining times (one process walks the sorted joins of every principal),
* at task arrivals (one Poisson process for all requesters, thinned by the daily cycle and by who is
  active),
* on runtime events (``TaskPosted`` → the vectorized bid; ``TaskAssigned``, ``TaskDelivered``,
  ``TaskSettled``, ``DidRegistered``, ``CredentialIssued``, ``DidDeactivated`` → the agent concerned),
* on bare timeouts scheduled by agents (deliveries, credentials), and
* every ``collect_every_s`` for the DataCollector.

Agents act only by submitting calls through the CallBook (the RPC client) and see only events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mesa
import numba
import numpy as np
import pandas as pd
import simpy

from ainur_sim.agents.adoption import joining_times, lifetimes
from ainur_sim.agents.requester import Requester
from ainur_sim.agents.strategies import (
    COLLUSION,
    LOW_QUALITY_AB,
    STRATEGIES,
    SYBIL,
    assign,
    base_asks,
    designated,
    rings,
)
from ainur_sim.agents.verifier import Verifier
from ainur_sim.agents.worker import Worker
from ainur_sim.chain.calls import CALLS
from ainur_sim.chain.economy import tokens
from ainur_sim.chain.load import DAY_S, LoadSchedule

if TYPE_CHECKING:
    from ainur_sim.config import Config
    from ainur_sim.market.protocol import Market

NEVER = np.inf
SHORT_CALLS = tuple(CALLS)


@numba.njit(cache=True)
def eligible_workers(active: np.ndarray, verified: np.ndarray, staked: np.ndarray, min_stake: int,
                     max_value_per_stake: float, budget: int, load: np.ndarray, capacity: int, offer: np.ndarray,
                     accounts: np.ndarray, requester: int) -> np.ndarray:
    """Indices of the workers who may bid on a task: active, verified for its capability, staked at least
    ``min_stake`` and enough for the ``budget`` (base units; ``budget ≤ max_value_per_stake × stake``), with
    spare capacity, an offer in (0, budget), and not the requester's own account. One pass (the same
    comparisons, int and float, as the elementwise numpy expression)."""
    out = np.empty(active.shape[0], np.int64)
    k = 0
    for i in range(active.shape[0]):
        if (active[i] and verified[i] and staked[i] >= min_stake and budget <= max_value_per_stake * staked[i]
                and load[i] < capacity and offer[i] < budget and offer[i] > 0 and accounts[i] != requester):
            out[k] = i
            k += 1
    return out[:k]


class MarketPopulation(mesa.Model):
    """Workers, requesters and the verifier of one run."""

    def __init__(self, cfg: Config, env: simpy.Environment, market: Market, rng: np.random.Generator,
                 regions: list[str], region_weights: list[float]) -> None:
        super().__init__(rng=rng)
        self.cfg = cfg
        self.env = env
        self.market = market
        pop = cfg.population
        ledger = market.economy.ledger
        n_cap = pop.n_capabilities
        self.budget_median = tokens(pop.budget_tokens)

        # --- workers: principals → identities (sybils hold several) ---------------------------------
        n_principals = pop.joining_workers()
        strat_p = assign(n_principals, dict(pop.strategy_mix), self.rng)
        copies = np.where(strat_p == SYBIL, pop.sybil_identities, 1)
        principal = np.repeat(np.arange(n_principals, dtype=np.int64), copies)
        n_idle = pop.idle_workers
        principal = np.concatenate([principal, n_principals + np.arange(n_idle, dtype=np.int64)])
        n_w = principal.size
        self.principal = principal
        self.strategy = np.concatenate([np.repeat(strat_p, copies), np.zeros(n_idle, np.int64)])
        self.ring = rings(self.strategy, pop.ring_size)
        join_p = joining_times(pop, "workers", self.rng)
        self.join = np.concatenate([np.repeat(join_p, copies), np.full(n_idle, NEVER)])
        self.leave = self.join + np.repeat(lifetimes(n_principals + n_idle, pop.mean_active_days, self.rng),
                                           np.concatenate([copies, np.ones(n_idle, np.int64)]))
        caps_p = self.rng.random((n_principals + n_idle, n_cap)) < 0.5
        caps_p[np.arange(caps_p.shape[0]), self.rng.integers(0, n_cap, caps_p.shape[0])] = True
        cost_p = self.rng.uniform(0.5, 1.5, (caps_p.shape[0], n_cap)) * pop.cost_share * self.budget_median
        qual_p = self.rng.beta(pop.quality_alpha, pop.quality_beta, caps_p.shape[0])
        low_p = self.rng.beta(*LOW_QUALITY_AB, caps_p.shape[0])
        # (column-major: a task's bid pass reads one capability's column of all workers)
        self.caps, self.cost = caps_p[principal], np.asfortranarray(cost_p[principal])
        self.quality, self.low_quality = qual_p[principal], low_p[principal]
        self.verified = np.zeros((n_cap, n_w), dtype=bool).T  # (n_w, n_cap), each column contiguous
        self.load = np.zeros(n_w, dtype=np.int64)
        self.accounts = ledger.create_accounts(n_w)
        funded = self.accounts[: n_w - n_idle]  # idle workers exist but hold nothing
        if funded.size and pop.worker_tokens > 0:
            ledger.apply("genesis", funded, -1, tokens(pop.worker_tokens))
        w_regions = self.rng.choice(len(regions), n_principals + n_idle, p=np.asarray(region_weights)
                                    / np.sum(region_weights))
        self.region = np.asarray(regions, dtype=object)[w_regions[principal]] if n_w else np.zeros(0, object)
        self.workers = [Worker(self, i, int(self.accounts[i]), int(principal[i]), int(self.strategy[i]))
                        for i in range(n_w)]
        self._worker_of = {int(a): w for a, w in zip(self.accounts, self.workers, strict=True)}

        # --- requesters --------------------------------------------------------------------------------
        r_join = joining_times(pop, "requesters", self.rng)
        n_r = r_join.size
        self.r_join, self.r_leave = r_join, r_join + lifetimes(n_r, pop.mean_active_days, self.rng)
        rate = self.rng.lognormal(0.0, pop.requester_rate_sigma, n_r)
        self.r_rate = rate / rate.mean() if n_r else rate
        self.r_accounts = ledger.create_accounts(n_r)
        if n_r and pop.requester_tokens > 0:
            ledger.apply("genesis", self.r_accounts, -1, tokens(pop.requester_tokens))
        self.r_region = np.asarray(regions, dtype=object)[
            self.rng.choice(len(regions), n_r, p=np.asarray(region_weights) / np.sum(region_weights))]
        self.requesters = [Requester(self, i, int(self.r_accounts[i]), float(self.r_rate[i])) for i in range(n_r)]
        self._requester_of = {int(a): r for a, r in zip(self.r_accounts, self.requesters, strict=True)}
        self.verifier = Verifier(self, market.verifier)

        self.tasks_submitted = 0
        self.activations = 0
        """Agent activations (joins, task arrivals, event reactions, timers) — the model's own event count."""
        self._daily = LoadSchedule(tps=1.0, daily_amplitude=pop.task_daily_amplitude, peak_hour=cfg.load.peak_hour)
        self.datacollector = mesa.DataCollector(model_reporters={
            "t": lambda m: m.env.now,
            "workers_active": lambda m: int(m.active_workers(m.env.now).sum()),
            "requesters_active": lambda m: int(m.active_requesters(m.env.now).sum()),
            "dids_active": lambda m: sum(1 for d in m.market.registry.dids.values() if d.status == 1),
            "verified_agents": lambda m: m.market.registry.n_verified(),
            "tasks_posted": lambda m: len(m.market.tasks),
            "tasks_submitted": lambda m: m.tasks_submitted,
            "worker_stake_tokens": lambda m: float(m.market.economy.ledger.staked[m.accounts].sum()) / 1e12
            if m.accounts.size else 0.0,
        })
        #: worker-level series: every ``collect_agents_every_s`` one row per worker identity (a collection
        #: is a Mesa "step": the model is never stepped, the kernel drives it)
        self.agent_collector = mesa.DataCollector(agenttype_reporters={Worker: {
            "account": "account",
            "tasks_held": lambda a: int(a.model.load[a.index]),
            "active": lambda a: bool(a.model.join[a.index] <= a.model.env.now < a.model.leave[a.index]),
            "stake": lambda a: int(a.model.market.economy.ledger.staked[a.account]),
        }})
        ev = market.events
        ev.subscribe("TaskPosted", self._on_posted)
        ev.subscribe("TaskAssigned", self._route("on_assigned", worker=True))
        ev.subscribe("TaskSettled", self._route("on_settled", worker=True))
        ev.subscribe("TaskDelivered", self._route("on_delivered", worker=False))
        ev.subscribe("DidRegistered", self._on_registered)
        ev.subscribe("CredentialIssued", self._on_credential)
        ev.subscribe("DidDeactivated", self._on_deactivated)
        ev.subscribe("CallDropped", self._on_dropped)
        self.resubmitted = 0
        # worker activity changes only at joining/leaving times: the mask is cached on [lo, hi)
        self._w_changes = np.unique(np.concatenate([self.join, self.leave]))
        self._w_active: tuple[float, float, np.ndarray] = (np.inf, -np.inf, np.zeros(0, bool))
        self._ask_base: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._ring_members = np.flatnonzero(self.strategy == COLLUSION)
        # the workers' accounts were created together: a slice of the ledger's columns, not a gather
        a = self.accounts
        self._acct_sel = slice(int(a[0]), int(a[0]) + a.size) if a.size and np.array_equal(
            a, np.arange(int(a[0]), int(a[0]) + a.size)) else a
        self._bumps: dict[int, int] = {}  # record → how many resubmissions led to it
        """Calls resubmitted with a higher tip after the pool dropped them."""
        env.process(self._joins())
        if n_r and pop.tasks_per_requester_hour > 0:
            env.process(self._arrivals())
        env.process(self._collect())

    # --- the kernel's handles ------------------------------------------------------------------------
    def release(self) -> None:
        """Forget this model in Mesa's class-level agent-id counters (``mesa.Agent._ids``: one per model, keyed
        by the model and never removed by Mesa 3.3), which otherwise keep the whole run (kernel, pool, ledger,
        draw-ahead rings) alive after it ends: ≈ 23 MiB more per 6-hour ``launch_day`` in a process that runs
        many (a sweep's worker, a notebook). Call once no agent will be created any more."""
        mesa.Agent._ids.pop(self, None)

    def later(self, delay: float, fn: Any, *args: Any) -> None:
        """Call ``fn(*args)`` after ``delay`` simulated seconds (one bare timeout, no process)."""
        def fire(_e: simpy.Event) -> None:
            self.activations += 1
            fn(*args)

        self.env.timeout(max(float(delay), 0.0)).callbacks.append(fire)

    def submit(self, call: str, origin: int, args: tuple[int, ...], tip: int = 0) -> int:
        """Submit a call through the RPC client now."""
        return self.market.book.submit(call, origin, self.env.now, args, tip)

    def active_workers(self, t: float) -> np.ndarray:
        return (self.join <= t) & (t < self.leave)

    def _active_workers_cached(self, t: float) -> np.ndarray:
        """``active_workers(t)`` (not to be written), recomputed only when ``t`` leaves the interval between
        two joining/leaving times on which it is constant."""
        lo, hi, mask = self._w_active
        if not lo <= t < hi:
            ch = self._w_changes
            k = int(np.searchsorted(ch, t, side="right"))
            lo = float(ch[k - 1]) if k > 0 else -np.inf
            hi = float(ch[k]) if k < ch.size else np.inf
            mask = self.active_workers(t)
            self._w_active = (lo, hi, mask)
        return mask

    def _asks(self, cap: int, budget: float) -> np.ndarray:
        """``asks(self.strategy, self.cost[:, cap], budget, pop)`` (a new array): the budget-independent
        part (every strategy but the ring's reserve) is computed once per capability."""
        base = self._ask_base.get(cap)
        if base is None:
            raw = base_asks(self.strategy, self.cost[:, cap], self.cfg.population)
            base = self._ask_base[cap] = (np.floor(raw), raw[self._ring_members])
        ask = base[0].copy()
        ring = self._ring_members
        if ring.size:
            ask[ring] = np.floor(np.maximum(base[1], self.cfg.population.ring_reserve * budget))
        return ask

    def active_requesters(self, t: float) -> np.ndarray:
        return (self.r_join <= t) & (t < self.r_leave)

    # --- processes -----------------------------------------------------------------------------------
    def _joins(self):  # noqa: ANN202 - SimPy generator
        """Principals join in time order: workers register, stake and claim capabilities."""
        order = np.argsort(self.join, kind="stable")
        order = order[np.isfinite(self.join[order])]
        for i in order.tolist():
            wait = self.join[i] - self.env.now
            if wait > 0:
                yield self.env.timeout(wait)
            self.activations += 1
            self.register(i)
            stake = tokens(self.cfg.population.stake_tokens)
            if stake:
                self.submit("stake_reputation", int(self.accounts[i]), (stake,))

    def register(self, i: int) -> None:
        """Worker identity ``i`` registers its DID claiming its capabilities."""
        mask = int(sum(1 << c for c in np.flatnonzero(self.caps[i]).tolist()))
        self.submit("register_agent", int(self.accounts[i]), (mask,))

    def _arrivals(self):  # noqa: ANN202 - SimPy generator
        """Task requests: a Poisson process at the peak rate of all requesters, thinned to the active ones'
        rate under the daily cycle; the requester is drawn in proportion to its rate.

        The active set only changes at joining and leaving times, so the per-requester rates, their sum and
        the CDF of the requester draw are rebuilt only when an arrival crosses such a time. The draw is what
        ``rng.choice(n, p=rates / rates.sum())`` does (the CDF of ``p`` normalised by its last entry, one
        uniform, ``searchsorted(side="right")``), with the same generator calls in the same order."""
        pop = self.cfg.population
        yield self.env.timeout(pop.market_start_s)
        per_s = pop.tasks_per_requester_hour / 3600.0
        peak = per_s * float(self.r_rate.sum()) * (1.0 + pop.task_daily_amplitude)
        rng, env = self.rng, self.env
        changes = np.unique(np.concatenate([self.r_join, self.r_leave]))
        lo, hi = np.inf, -np.inf  # the active set is constant on [lo, hi)
        total = 0.0
        cdf: np.ndarray | None = None
        rate_at = self._daily_rate_at()
        while True:
            yield env.timeout(rng.exponential(1.0 / peak))
            t = env.now
            if not lo <= t < hi:
                k = int(np.searchsorted(changes, t, side="right"))
                lo = float(changes[k - 1]) if k > 0 else -np.inf
                hi = float(changes[k]) if k < changes.size else np.inf
                rates = np.where(self.active_requesters(t), self.r_rate, 0.0) * per_s
                total = float(rates.sum())
                cdf = None
            lam = total * rate_at(t)
            if rng.random() * peak >= lam:
                continue
            self.activations += 1
            if cdf is None:
                cdf = (rates / rates.sum()).cumsum()
                cdf /= cdf[-1]
            who = int(cdf.searchsorted(rng.random(), side="right"))
            cap = int(rng.integers(0, pop.n_capabilities))
            budget = max(int(self.budget_median * rng.lognormal(0.0, pop.budget_sigma)), 1)
            self.tasks_submitted += 1
            self.submit("post_task", int(self.r_accounts[who]),
                        (cap, budget, int(pop.quality_threshold * 1e6), int(pop.max_wait_s)))

    def _daily_rate_at(self):  # noqa: ANN202 - returns a function
        """``t ↦ float(self._daily.rate(np.array([t]))[0])``. For a schedule with only the daily cycle (tps 1,
        no ramp, no spikes) the same IEEE operations on Python floats, the cosine by numpy on a one-element
        array as there; otherwise the schedule itself."""
        d = self._daily
        if not (d.tps == 1.0 and not d.spikes and d.ramp_end_s <= d.ramp_start_s and d.ramp_from == 1.0
                and d.ramp_to == 1.0):
            return lambda t: float(d.rate(np.array([t]))[0])
        buf = np.empty(1)
        two_pi, shift, amp, cos = 2.0 * np.pi, d.peak_hour * 3600.0, d.daily_amplitude, np.cos

        def rate_at(t: float) -> float:
            buf[0] = two_pi * (t - shift) / DAY_S
            cos(buf, out=buf)
            return 1.0 + amp * float(buf[0])

        return rate_at

    def _collect(self):  # noqa: ANN202 - SimPy generator
        pop = self.cfg.population
        every = max(int(round(pop.collect_agents_every_s / pop.collect_every_s)), 1)
        k = 0
        while True:
            self.datacollector.collect(self)
            if k % every == 0:
                self.steps += 1
                self.agent_collector.collect(self)
            k += 1
            yield self.env.timeout(pop.collect_every_s)

    # --- reactions -----------------------------------------------------------------------------------
    def _route(self, method: str, *, worker: bool):  # noqa: ANN202 - returns a handler
        """An event handler calling ``method`` of the worker (or requester) the event names."""
        key = "worker" if worker else "requester"
        table = self._worker_of if worker else self._requester_of

        def handler(e: dict[str, Any]) -> None:
            agent = table.get(int(e[key]))
            if agent is not None:
                self.activations += 1
                getattr(agent, method)(e)

        return handler

    def _on_posted(self, e: dict[str, Any]) -> None:
        """Eligible workers (active, verified for the capability, staked enough for the budget, with spare
        capacity, asking below the budget) notice the task with probability ``min(1, bidders_per_task /
        eligible)`` and bid their strategy's ask; at most ``max_bidders`` (the cheapest) are submitted.

        With ``ring_bidding = designated`` a ring member is eligible if its cost is below the budget; among
        the members that noticed the task, each ring's cheapest asks its cost and the rest the ring's ask
        (dropped if that reaches the budget: the same as bidding the reserve)."""
        if not self.workers:
            return
        self.activations += 1
        t = self.env.now
        pop = self.cfg.population
        cap, budget, task = int(e["capability"]), int(e["budget"]), int(e["task"])
        st = self.market.staking
        staked = self.market.economy.ledger.staked[self._acct_sel]
        cost = self.cost[:, cap]
        ask = self._asks(cap, float(budget))
        ring_bid = pop.ring_bidding == "designated"
        offer = np.where(self.ring >= 0, np.floor(cost), ask) if ring_bid else ask
        idx = eligible_workers(self._active_workers_cached(t), self.verified[:, cap], staked, st.min_stake,
                               st.max_value_per_stake, budget, self.load, pop.capacity, offer, self.accounts,
                               int(e["requester"]))
        attention = pop.bidders_per_task / max(idx.size, 1)
        if attention < 1.0:
            idx = idx[self.rng.random(idx.size) < attention]
        if ring_bid:
            lead = designated(idx, self.ring, cost)
            ask[lead] = offer[lead]
            idx = idx[ask[idx] < budget]
        k = self.cfg.market.auction.max_bidders
        if idx.size > k:
            idx = idx[np.argsort(ask[idx], kind="stable")[:k]]
        # (args as the book stores them: (task, ask, cost, −1), the asks and costs truncated to ints as int())
        self.market.book.submit_many("submit_bid", self.accounts[idx].tolist(), self.env.now,
                                     [(task, a, c, -1) for a, c in zip(ask[idx].astype(np.int64).tolist(),
                                                                       cost[idx].astype(np.int64).tolist(),
                                                                       strict=True)], padded=True)

    def _on_dropped(self, e: dict[str, Any]) -> None:
        """Fee bumping: the pool dropped an agent's call (congestion) — resubmit it with a higher tip, at
        most ``resubmits`` times in a chain (first tip ``bump_tip_tokens``, then doubling)."""
        book = self.market.book
        rec = int(e["record"])
        depth = self._bumps.get(rec, 0)
        pop = self.cfg.population
        if depth >= pop.resubmits:
            return
        self.activations += 1
        tip = max(2 * book.tip[rec], tokens(pop.bump_tip_tokens))
        new = book.submit(SHORT_CALLS[book.code[rec]], book.origin[rec], self.env.now, book.args[rec], tip,
                          resubmits=rec)
        self._bumps[new] = depth + 1
        self.resubmitted += 1

    def _on_registered(self, e: dict[str, Any]) -> None:
        self.activations += 1
        self.verifier.on_registered(e)

    def _on_credential(self, e: dict[str, Any]) -> None:
        w = self._worker_of.get(int(e["account"]))
        if w is not None:
            self.verified[w.index, int(e["capability"])] = True

    def _on_deactivated(self, e: dict[str, Any]) -> None:
        w = self._worker_of.get(int(e["account"]))
        if w is not None:
            self.activations += 1
            self.verified[w.index] = False
            w.on_deactivated()

    # --- output --------------------------------------------------------------------------------------
    def frame(self) -> pd.DataFrame:
        """``agents.parquet``: one row per agent identity at the end of the run."""
        m = self.market
        led = m.economy.ledger
        n_w, n_r = len(self.workers), len(self.requesters)
        ids = np.concatenate([self.accounts, self.r_accounts, [m.verifier]]).astype(np.int64)
        m.reputation.ensure(int(ids.max()) + 1)
        rep = np.full(ids.size, np.nan)
        if n_w:
            rep[:n_w] = m.reputation.score(self.accounts.astype(np.int64), self.env.now)
        kind = ["worker"] * n_w + ["requester"] * n_r + ["verifier"]
        strategy = [STRATEGIES[s] for s in self.strategy.tolist()] + [""] * (n_r + 1)
        regs = m.registry
        return pd.DataFrame({
            "agent_id": ids, "kind": pd.Series(kind, dtype=object), "strategy": pd.Series(strategy, dtype=object),
            "reputation": rep, "stake": led.staked[ids].astype(np.int64), "balance": led.free[ids].astype(np.int64),
            "principal": np.concatenate([self.principal, np.full(n_r + 1, -1)]).astype(np.int64),
            "region": pd.Series(list(self.region) + list(self.r_region) + [""], dtype=object),
            "joined_s": np.concatenate([self.join, self.r_join, [0.0]]),
            "active_until_s": np.concatenate([self.leave, self.r_leave, [np.inf]]),
            "quality": np.concatenate([self.quality, np.full(n_r + 1, np.nan)]),
            "registrations": np.array([regs.did(int(a)).registrations for a in ids], dtype=np.int64),
            "verified_capabilities": np.array([bin(regs.did(int(a)).verified).count("1") for a in ids],
                                              dtype=np.int64),
        })

    def series(self) -> pd.DataFrame:
        """The DataCollector's model-level time series (one row per collection)."""
        return self.datacollector.get_model_vars_dataframe().reset_index(drop=True)

    def worker_series(self) -> pd.DataFrame:
        """Worker-level time series: ``t`` (s), account, tasks held, active, stake (base units)."""
        if not self.workers:
            return pd.DataFrame({"t": [], "account": [], "tasks_held": [], "active": [], "stake": []})
        df = self.agent_collector.get_agenttype_vars_dataframe(Worker).reset_index()
        every = self.cfg.population.collect_agents_every_s
        t = (df["Step"].to_numpy(np.float64) - 1.0) * max(round(every / self.cfg.population.collect_every_s), 1) \
            * self.cfg.population.collect_every_s
        return pd.DataFrame({"t": t, "account": df["account"].to_numpy(np.int64),
                             "tasks_held": df["tasks_held"].to_numpy(np.int64), "active": df["active"].to_numpy(bool),
                             "stake": df["stake"].to_numpy(np.int64)})
