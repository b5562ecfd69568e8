"""Money is conserved through every market path, and no task can keep funds locked.

A hypothesis state machine drives the pallets with random calls — valid and invalid, by the right and the
wrong origins, with pauses, finality stalls (blocks executed in a burst after an outage), disputes (both
resolution models), slashing and missed deadlines — checking the ledger's
books at every block; at the end, running past every timeout must leave every task in an end state with
nothing in escrow, and no task paid or refunded twice.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ainur_sim.chain.economy import tokens
from ainur_sim.chain.pause import CallFilter
from ainur_sim.market.tasks import TERMINAL
from tests.market.harness import Harness

WINDOWS = ["market.auction.bid_window_blocks=3", "market.auction.deadline_blocks=12",
           "market.escrow.challenge_window_blocks=4", "market.dispute.resolution_blocks=2"]
N_ACCOUNTS = 8


class MarketMachine(RuleBasedStateMachine):
    """Random market traffic against the pallets; the ledger is checked at every block."""

    @initialize(court=st.booleans(), seed=st.integers(0, 2**16), paused_from=st.integers(0, 60))
    def setup(self, court: bool, seed: int, paused_from: int) -> None:
        flt = CallFilter([])
        flt.pause(paused_from * 6.0, paused_from * 6.0 + 30.0, ["escrow.*"])
        self.h = Harness(*WINDOWS, f"market.dispute.model={'court' if court else 'automated'}",
                         n_accounts=N_ACCOUNTS, endowment=300.0, call_filter=flt, seed=seed)
        self.acc = [int(a) for a in self.h.accounts]
        self.settled = Counter()
        self.h.events.subscribe("TaskSettled", lambda e: self.settled.update([e["task"]]))
        self.h.events.subscribe("TaskRefunded", lambda e: self.settled.update([e["task"]]))

    def _task(self, k: int) -> int:
        """Mostly one of the newest tasks (where the action is), sometimes an unknown id."""
        n = len(self.h.market.tasks)
        return n - 1 - (k % n) if n and k < 40 else k

    @rule(who=st.integers(0, 3), caps=st.sampled_from([0, 1, 1, 3]),
          stake=st.sampled_from([0.0, 50.0, 150.0, 150.0]))
    def onboard(self, who: int, caps: int, stake: float) -> None:
        self.h.call("register_agent", self.acc[who], caps)
        if stake:
            self.h.call("stake_reputation", self.acc[who], tokens(stake))
        for cap in range(2):
            if caps >> cap & 1:
                self.h.call("issue_credential", self.h.market.verifier, self.acc[who], cap)

    @rule(who=st.integers(2, N_ACCOUNTS - 1), budget=st.sampled_from([1.0, 40.0, 120.0, 900.0]),
          cap=st.sampled_from([0, 0, 1]))
    def post(self, who: int, budget: float, cap: int) -> None:
        self.h.call("post_task", self.acc[who], cap, tokens(budget), 700_000, 0)

    @rule(who=st.integers(0, 4), k=st.integers(0, 50), cost=st.sampled_from([5.0, 10.0, 30.0, 200.0]))
    def bid(self, who: int, k: int, cost: float) -> None:
        self.h.call("submit_bid", self.acc[who], self._task(k), tokens(cost))

    @rule(who=st.integers(0, N_ACCOUNTS - 1), k=st.integers(0, 50), quality=st.sampled_from([200_000, 900_000]))
    def deliver(self, who: int, k: int, quality: int) -> None:
        task = self._task(k)
        tb = self.h.market.tasks
        origin = tb.winner[task] if tb.exists(task) and who % 2 else self.acc[who]  # half by the winner
        self.h.call("deliver_result", max(origin, 0), task, quality)

    @rule(who=st.integers(0, N_ACCOUNTS - 1), k=st.integers(0, 50), call=st.sampled_from(
        ["release_payment", "open_dispute", "settle_task"]))
    def requester_action(self, who: int, k: int, call: str) -> None:
        task = self._task(k)
        tb = self.h.market.tasks
        origin = tb.requester[task] if tb.exists(task) and who % 2 else self.acc[who]
        self.h.call(call, origin, task)

    @rule(w=st.integers(0, 3), r=st.integers(4, N_ACCOUNTS - 1),
          quality=st.sampled_from([None, 200_000, 900_000]),
          then=st.sampled_from(["release_payment", "open_dispute", "settle_task", None]))
    def lifecycle(self, w: int, r: int, quality: int | None, then: str | None) -> None:
        """A whole task: onboard, post, bid, clear; then maybe deliver and release or dispute."""
        h = self.h
        self.onboard(w, 1, 150.0)
        h.block()
        task = len(h.market.tasks)
        h.call("post_task", self.acc[r], 0, tokens(40.0), 700_000, 0)
        h.block()
        h.call("submit_bid", self.acc[w], task, tokens(10.0))
        h.blocks(3)
        if quality is not None:
            h.call("deliver_result", self.acc[w], task, quality)
            h.block()
            if then is not None:
                h.call(then, self.acc[r], task)

    @rule(who=st.integers(0, N_ACCOUNTS - 1), amount=st.sampled_from([10.0, 500.0]))
    def unstake(self, who: int, amount: float) -> None:
        self.h.call("unstake_reputation", self.acc[who], tokens(amount))

    @rule(k=st.sampled_from([1, 1, 2, 5]))
    def advance(self, k: int) -> None:
        self.h.blocks(k)  # the supply recorder checks the books at every block

    @rule(k=st.integers(2, 8))
    def finality_stall(self, k: int) -> None:
        self.h.catch_up(k)  # an outage: blocks finalized in a burst, at one time

    @invariant()
    def no_double_settlement(self) -> None:
        assert all(v == 1 for v in self.settled.values())

    def teardown(self) -> None:
        h = getattr(self, "h", None)
        if h is None:
            return
        h.blocks(3 + 12 + 4 + 2 * 4 * 2 + 4)  # past every window, deadline and court round
        tb = h.market.tasks
        assert all(s in TERMINAL for s in tb.status), Counter(tb.status)
        assert int(np.asarray(h.ledger.escrowed).sum()) == 0
        assert h.ledger.escrow_balance(0) == 0
        assert sorted(self.settled) == list(range(len(tb)))
        # every task's budget went somewhere: paid to the worker or back to the requester
        h.ledger.check()


MarketMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
TestMarketConservation = MarketMachine.TestCase
