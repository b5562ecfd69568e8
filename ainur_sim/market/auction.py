"""The auction pallet: tasks are posted with their budget in escrow, bid on, and cleared in batches.

Calls:

* ``post_task(a0 = capability, a1 = budget, a2 = quality threshold in ppm, a3 = requester's maximum wait
  for clearing, s; 0 = none)`` — locks the budget in escrow under the task id; bidding stays open for
  ``bid_window_blocks`` blocks after the block that includes the post. Errors: ``BadBudget``,
  ``InsufficientBalance``.
* ``submit_bid(a0 = task, a1 = cost)`` — a bid (the worker's asking price, base units); a later bid of
  the same worker replaces its earlier one. Errors: ``UnknownTask``, ``BidWindowClosed`` (included after
  the window's last block, or the task is no longer open), ``BadOrigin`` (the requester itself),
  ``NotRegistered``, ``NotVerified`` (no credential for the task's capability), ``InsufficientStake``,
  ``BadAmount`` (cost ≤ 0 or above the budget).

``on_finalize`` clears, together, every open task whose window has closed (DESIGN §6): the bidders'
costs form the (agents × tasks) matrix, values are ``budget × q(ρ)`` with the reputation score ρ, and
the configured mechanism allocates and prices. A winner's payment (rounded down, at most the budget)
stays in escrow and the rest of the budget is refunded; a task without a winner is refunded in full
(``refunded``), and a task cleared after the requester's maximum wait is refunded as ``expired``.
"""

from __future__ import annotations

import numpy as np

from ainur_sim.chain.balances import Ledger
from ainur_sim.chain.events import EventBus
from ainur_sim.chain.extrinsics import CallBook
from ainur_sim.chain.runtime import BlockContext
from ainur_sim.market.mechanisms import Mechanism, vcg
from ainur_sim.market.registry import Registry
from ainur_sim.market.reputation import ReputationModel
from ainur_sim.market.staking import Staking
from ainur_sim.market.tasks import ASSIGNED, OPEN, TaskBook
from ainur_sim.market.valuation import linear_quality
from ainur_sim.market.vcg import clear_payments


class Auction:
    """Task posting, bidding and batch clearing."""

    calls = ("post_task", "submit_bid")

    def __init__(self, ledger: Ledger, book: CallBook, events: EventBus, tasks: TaskBook, *, registry: Registry,
                 staking: Staking, reputation: ReputationModel, mechanism: Mechanism, bid_window_blocks: int,
                 deadline_blocks: int, max_bidders: int, q_min: float) -> None:
        self.ledger = ledger
        self.book = book
        self.events = events
        self.tasks = tasks
        self.registry = registry
        self.staking = staking
        self.reputation = reputation
        self.mechanism = mechanism
        self.bid_window_blocks = int(bid_window_blocks)
        self.deadline_blocks = int(deadline_blocks)
        self.max_bidders = int(max_bidders)
        self.q_min = float(q_min)
        self.clearings = 0
        """Batches cleared so far."""

    def dispatch(self, call: str, record: int, ctx: BlockContext) -> str | None:
        book = self.book
        a = book.args[record]
        if call == "submit_bid":
            return self._bid(book.origin[record], a[0], a[1], ctx)
        first = book.first[record]  # a task is created when its requester first submitted it (resubmissions)
        return self._post(book.origin[record], a, book.t_submit[first], first, ctx)

    def _post(self, origin: int, a: tuple[int, ...], t_created: float, record: int, ctx: BlockContext
              ) -> str | None:
        capability, budget, threshold_ppm, max_wait = a
        if budget <= 0 or capability < 0:
            return "BadBudget"
        task = len(self.tasks)
        if not self.ledger.escrow_lock(origin, budget, task)[0]:
            return "InsufficientBalance"
        close = ctx.number + self.bid_window_blocks
        self.tasks.add(origin, capability, budget, min(max(threshold_ppm, 0), 10**6) / 1e6,
                       float(max_wait) if max_wait > 0 else float("inf"), t_created, ctx.t, close, record)
        self.events.emit("TaskPosted", task=task, requester=origin, capability=capability, budget=budget,
                         close_block=close, t=ctx.t)
        return None

    def _bid(self, origin: int, task: int, cost: int, ctx: BlockContext) -> str | None:
        tb = self.tasks
        if not 0 <= task < len(tb.status):
            return "UnknownTask"
        if tb.status[task] != OPEN or ctx.number > tb.close_block[task]:
            return "BidWindowClosed"
        if origin == tb.requester[task]:
            return "BadOrigin"
        err = self.registry.credential_error(origin, tb.capability[task])
        if err:
            return err
        budget = tb.budget[task]
        err = self.staking.may_bid(origin, budget)
        if err:
            return err
        if cost <= 0 or cost > budget:
            return "BadAmount"
        tb.bids[task][origin] = cost
        return None

    def on_finalize(self, ctx: BlockContext) -> None:
        tb = self.tasks
        due = [k for k in tb.open_ids if tb.close_block[k] <= ctx.number]
        if not due:
            return
        tb.open_ids = [k for k in tb.open_ids if tb.close_block[k] > ctx.number]
        live = []
        for k in due:
            tb.t_cleared[k] = ctx.t
            tb.n_bids[k] = len(tb.bids[k])
            if ctx.t - tb.t_created[k] > tb.max_wait_s[k]:
                self._refund(k, "expired", ctx)
            else:
                live.append(k)
        if live:
            self._clear(live, ctx)

    def _clear(self, task_ids: list[int], ctx: BlockContext) -> None:
        """Allocate and price ``task_ids`` together with the mechanism."""
        tb = self.tasks
        kept = [self._kept_bids(k) for k in task_ids]
        bidders = sorted({w for bids in kept for w in bids})
        self.clearings += 1
        if not bidders:
            for k in task_ids:
                self._refund(k, "refunded", ctx)
            return
        index = {w: i for i, w in enumerate(bidders)}
        costs = np.full((len(bidders), len(task_ids)), np.inf)
        for j, bids in enumerate(kept):
            for w, c in bids.items():
                costs[index[w], j] = float(c)
        budgets = np.array([float(tb.budget[k]) for k in task_ids])
        agents = np.asarray(bidders, dtype=np.int64)
        self.reputation.ensure(int(agents.max()) + 1)
        q = linear_quality(self.reputation.score(agents, ctx.t), self.q_min)
        values = q[:, None] * budgets[None, :]
        lean = clear_payments(values, costs) if self.mechanism is vcg else None
        if lean is None:
            out = self.mechanism(values, costs)
            task_of_agent, payment = out.task_of_agent, out.payment
        else:
            task_of_agent, payment = lean
        won = {j: i for i, j in enumerate(task_of_agent.tolist()) if j >= 0}
        for j, k in enumerate(task_ids):
            i = won.get(j)
            if i is None:
                self._refund(k, "refunded", ctx)
                continue
            worker = bidders[i]
            pay = int(min(np.floor(payment[i]), tb.budget[k]))
            rest = tb.budget[k] - pay
            if rest and not self.ledger.escrow_refund(tb.requester[k], rest, k)[0]:  # pragma: no cover
                raise RuntimeError(f"escrow of task {k} short of its budget")
            tb.set_status(k, ASSIGNED)
            tb.winner[k], tb.payment[k] = worker, pay
            tb.deadline_block[k] = ctx.number + self.deadline_blocks
            self.staking.locks[worker] += 1
            self.events.emit("TaskAssigned", task=k, worker=worker, requester=tb.requester[k], payment=pay,
                             deadline_block=tb.deadline_block[k], t=ctx.t)

    def _kept_bids(self, task: int) -> dict[int, int]:
        """The task's bids, at most ``max_bidders`` (the cheapest; ties by account)."""
        bids = self.tasks.bids[task]
        if len(bids) <= self.max_bidders:
            return bids
        return dict(sorted(bids.items(), key=lambda wc: (wc[1], wc[0]))[: self.max_bidders])

    def _refund(self, task: int, status: str, ctx: BlockContext) -> None:
        tb = self.tasks
        if not self.ledger.escrow_refund(tb.requester[task], tb.budget[task], task)[0]:  # pragma: no cover
            raise RuntimeError(f"escrow of task {task} short of its budget")
        tb.set_status(task, status)
        tb.t_settled[task] = ctx.t
        self.events.emit("TaskRefunded", task=task, requester=tb.requester[task], status=status, t=ctx.t)
