"""The escrow pallet: delivery, release, disputes and timeouts of assigned tasks.

Calls (``a0`` = task id):

* ``deliver_result(a0, a1 = delivered quality in ppm)`` — by the winner, by the deadline block
  (``BadOrigin``, ``WrongState``, ``DeadlinePassed``). The quality is the simulator's ground truth of the
  work (on a real chain, a hash of the result); it decides who is right in a dispute.
* ``release_payment(a0)`` — by the requester (``BadOrigin`` for anyone else, ``WrongState``): pays the worker.
* ``open_dispute(a0)`` — by the requester while the task is delivered, i.e. within the challenge window
  (``BadOrigin``; ``WrongState`` once released), reserving the dispute bond (``InsufficientBalance``).
* ``settle_task(a0)`` — anyone: releases a delivered task whose challenge window has passed (Kleros'
  ``executeTransaction``; ``on_finalize`` does the same automatically, so this only succeeds first when
  included in the very block the window closes).

``on_finalize`` each block: deliveries whose challenge window has passed are released (auto-release);
assigned tasks past their deadline are refunded and the worker slashed (``failed``); disputes whose
ruling is due are settled. No funds stay locked past every timeout: each non-terminal state has one.

Money: a payment ``P`` goes to the worker minus the protocol fee ``⌊P·share⌋`` (to the treasury). Lost
disputes slash the worker ``slash_amount(P, slash_dispute_loss)``; missed deadlines
``slash_amount(P, slash_non_delivery)``. Dispute fees: automated model — the loser pays ``fee`` to the
treasury (the requester out of its bond, the worker out of its stake); court model — the loser pays the
court fees of all rounds the same way, and drawn jurors are rewarded and penalized as in
:func:`ainur_sim.market.disputes.juror_court` (penalties from their stake to the treasury, rewards paid
from the treasury out of what was actually collected).

Reputation: every end state is feedback about the worker from its requester (good: paid and the quality
met the threshold, or a dispute won; bad otherwise), recorded in one batch at the end of the block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ainur_sim.chain.balances import OP_FEE, PERBILL, Ledger, perbill_int, share_to_ppb
from ainur_sim.chain.events import EventBus
from ainur_sim.chain.extrinsics import CallBook
from ainur_sim.chain.runtime import BlockContext
from ainur_sim.market.disputes import CourtParams, automated_verdict, juror_court, split_pro_rata
from ainur_sim.market.reputation import ReputationModel
from ainur_sim.market.staking import Staking, slash_amount
from ainur_sim.market.tasks import ASSIGNED, DELIVERED, DISPUTED, TaskBook


@dataclass(frozen=True)
class EscrowParams:
    """Escrow and dispute parameters (amounts in base units, windows in blocks)."""

    challenge_window_blocks: int = 50
    protocol_fee_share: float = 0.02
    slash_non_delivery: float = 0.1
    slash_dispute_loss: float = 0.2
    dispute_model: str = "automated"
    bond: int = 5 * 10**12
    fee: int = 10**12
    false_accept: float = 0.05
    false_reject: float = 0.05
    resolution_blocks: int = 10
    court: CourtParams = field(default_factory=CourtParams)
    juror_accuracy: float = 0.8


@dataclass
class Dispute:
    """A pending dispute: when it is due and how it was decided."""

    task: int
    due_block: int
    for_worker: bool
    rounds: int = 1
    court: object | None = None


class Escrow:
    """Delivery, release, disputes and timeouts."""

    calls = ("deliver_result", "release_payment", "open_dispute", "settle_task")

    def __init__(self, ledger: Ledger, book: CallBook, events: EventBus, tasks: TaskBook, *, staking: Staking,
                 reputation: ReputationModel, params: EscrowParams, rng: np.random.Generator) -> None:
        self.ledger = ledger
        self.book = book
        self.events = events
        self.tasks = tasks
        self.staking = staking
        self.reputation = reputation
        self.p = params
        self.rng = rng
        self._fee_ppb = share_to_ppb(params.protocol_fee_share)
        self.disputes: dict[int, Dispute] = {}
        self._feedback: list[tuple[int, float, int]] = []  # (worker, outcome, requester) of this block
        self.protocol_fees = 0
        """Protocol fees paid to the treasury, base units."""
        self.court_fees = 0
        """Dispute and court fees collected from losers, base units."""
        self.juror_rewards = 0
        """Paid to coherent jurors, base units."""
        self.settled_value = 0
        """Payments released to workers (before the protocol fee), base units."""
        self.settlements: list[tuple[float, int]] = []
        """(time, payment) of every release to a worker."""

    # --- calls ---------------------------------------------------------------------------------------
    def dispatch(self, call: str, record: int, ctx: BlockContext) -> str | None:
        origin = self.book.origin[record]
        a = self.book.args[record]
        task = a[0]
        tb = self.tasks
        if not tb.exists(task):
            return "UnknownTask"
        if call == "deliver_result":
            if origin != tb.winner[task]:
                return "BadOrigin"
            if tb.status[task] != ASSIGNED:
                return "WrongState"
            if ctx.number > tb.deadline_block[task]:
                return "DeadlinePassed"
            tb.set_status(task, DELIVERED)
            tb.quality[task] = min(max(a[1], 0), 10**6) / 1e6
            tb.delivered_block[task] = ctx.number
            tb.t_delivered[task] = ctx.t
            self.events.emit("TaskDelivered", task=task, worker=origin, requester=tb.requester[task],
                             quality=tb.quality[task], t=ctx.t)
            return None
        if call == "settle_task":
            if tb.status[task] != DELIVERED:
                return "WrongState"
            if ctx.number < tb.delivered_block[task] + self.p.challenge_window_blocks:
                return "ChallengeWindowOpen"
            self._pay_worker(task, "completed", ctx)
            return None
        if origin != tb.requester[task]:
            return "BadOrigin"
        if tb.status[task] != DELIVERED:
            return "WrongState"
        if call == "release_payment":
            self._pay_worker(task, "completed", ctx)
            return None
        if self.p.bond and not self.ledger.reserve(origin, self.p.bond)[0]:
            return "InsufficientBalance"
        self._open(task, ctx)
        return None

    def _open(self, task: int, ctx: BlockContext) -> None:
        tb = self.tasks
        right = bool(tb.quality[task] >= tb.threshold[task])
        if self.p.dispute_model == "court":
            jurors = self._jurors(exclude=(tb.requester[task], tb.winner[task]))
            if jurors.size:
                out = juror_court(right, tb.payment[task], jurors, self.ledger.staked[jurors].astype(np.int64),
                                  self.p.juror_accuracy, self.p.court, self.rng)
                d = Dispute(task, ctx.number + self.p.resolution_blocks * out.rounds, bool(out.ruling_for_worker),
                            out.rounds, out)
            else:  # no juror holds stake: the automated check decides
                d = self._automated(task, right, ctx)
        else:
            d = self._automated(task, right, ctx)
        tb.set_status(task, DISPUTED)
        tb.dispute_due_block[task] = d.due_block
        self.disputes[task] = d
        self.events.emit("DisputeOpened", task=task, requester=tb.requester[task], worker=tb.winner[task],
                         t=ctx.t)

    def _automated(self, task: int, right: bool, ctx: BlockContext) -> Dispute:
        verdict = automated_verdict(np.array([right]), self.p.false_accept, self.p.false_reject, self.rng)[0]
        return Dispute(task, ctx.number + self.p.resolution_blocks, bool(verdict))

    def _jurors(self, exclude: tuple[int, ...]) -> np.ndarray:
        """Accounts eligible as jurors: market stakers with stake left (validators' bonds excluded), not the
        parties, in account order."""
        staked = self.ledger.staked
        return np.asarray(sorted(a for a in self.staking.stakers if staked[a] > 0 and a not in exclude),
                          dtype=np.int64)

    # --- hooks ---------------------------------------------------------------------------------------
    def on_finalize(self, ctx: BlockContext) -> None:
        tb = self.tasks
        n = ctx.number
        # (delivered tasks with n ≥ delivered_block + window, then assigned ones with n > deadline_block, each
        # in task order)
        for k in tb.due(DELIVERED, tb.delivered_block, n - self.p.challenge_window_blocks):
            self._pay_worker(k, "completed", ctx)
        for k in tb.due(ASSIGNED, tb.deadline_block, n - 1):
            self._non_delivery(k, ctx)
        if self.disputes:
            for k in [k for k, d in self.disputes.items() if d.due_block <= n]:
                self._rule(self.disputes.pop(k), ctx)
        if self._feedback:
            self._flush_feedback(ctx.t)

    def _flush_feedback(self, t: float) -> None:
        """Record the block's settlement outcomes with the reputation model, in settlement order (one batch
        per block: reputation changes take effect from the next block's clearing)."""
        if not self._feedback:
            return
        fb = self._feedback
        self._feedback = []
        worker_list, rater_list = [w for w, _, _ in fb], [r for _, _, r in fb]
        self.reputation.ensure(max(max(worker_list), max(rater_list)) + 1)
        self.reputation.record(np.array(worker_list, dtype=np.int64), np.array([x for _, x, _ in fb]), t,
                               raters=np.array(rater_list, dtype=np.int64))

    # --- settlement ----------------------------------------------------------------------------------
    def _pay_worker(self, task: int, status: str, ctx: BlockContext) -> None:
        tb = self.tasks
        worker, pay = tb.winner[task], tb.payment[task]
        if pay and not self.ledger.escrow_release(worker, tb.requester[task], pay, task)[0]:  # pragma: no cover
            raise RuntimeError(f"escrow of task {task} short of its payment")
        fee = perbill_int(pay, self._fee_ppb)
        if fee and self.ledger.apply(OP_FEE, worker, -1, fee, PERBILL)[0][0]:
            self.protocol_fees += fee
        self.settled_value += pay
        self.settlements.append((ctx.t, pay))
        good = status == "disputed_won" or bool(tb.quality[task] >= tb.threshold[task])
        self._finish(task, status, ctx, good=good)

    def _refund_requester(self, task: int) -> None:
        tb = self.tasks
        pay = tb.payment[task]
        if pay and not self.ledger.escrow_refund(tb.requester[task], pay, task)[0]:  # pragma: no cover
            raise RuntimeError(f"escrow of task {task} short of its payment")

    def _non_delivery(self, task: int, ctx: BlockContext) -> None:
        tb = self.tasks
        self._refund_requester(task)
        self.staking.slash(tb.winner[task], slash_amount(tb.payment[task], self.p.slash_non_delivery))
        self._finish(task, "failed", ctx, good=False)

    def _rule(self, d: Dispute, ctx: BlockContext) -> None:
        tb = self.tasks
        task = d.task
        requester, worker = tb.requester[task], tb.winner[task]
        court = d.court
        fees = court.fees_total if court is not None else self.p.fee
        if d.for_worker:  # the requester lost: its fee comes out of its bond
            collected = int(self.ledger.slash(requester, min(fees, self.p.bond), from_="reserved")[0])
            left = self.p.bond - collected
            if left:
                self.ledger.unreserve(requester, left)
        else:
            self._refund_requester(task)
            if self.p.bond:
                self.ledger.unreserve(requester, self.p.bond)
            self.staking.slash(worker, slash_amount(tb.payment[task], self.p.slash_dispute_loss))
            collected = self.staking.slash(worker, fees)
        self.court_fees += collected
        if court is not None:
            self._pay_jurors(court, collected)
        if d.for_worker:
            self._pay_worker(task, "disputed_won", ctx)
        else:
            self._finish(task, "disputed_lost", ctx, good=False)
        self.events.emit("DisputeResolved", task=task, for_worker=d.for_worker, rounds=d.rounds, t=ctx.t)

    def _pay_jurors(self, court, collected: int) -> None:
        """Penalize incoherent jurors (stake → treasury) and pay coherent ones from what was collected."""
        pen = np.asarray(court.penalties, dtype=np.int64).reshape(-1, 2)
        taken = 0
        for juror, amount in pen.tolist():
            taken += self.staking.slash(juror, amount)
        rew = np.asarray(court.rewards, dtype=np.int64).reshape(-1, 2)
        if rew.size == 0:
            return
        shares, _ = split_pro_rata(collected + taken, rew[:, 1])
        ok = self.ledger.treasury_spend(rew[:, 0], shares)
        self.juror_rewards += int(shares[ok].sum())

    def _finish(self, task: int, status: str, ctx: BlockContext, *, good: bool) -> None:
        tb = self.tasks
        worker = tb.winner[task]
        tb.set_status(task, status)
        tb.t_settled[task] = ctx.t
        self.staking.locks[worker] -= 1
        if self.staking.locks[worker] <= 0:
            del self.staking.locks[worker]
        self._feedback.append((worker, 1.0 if good else 0.0, tb.requester[task]))
        self.events.emit("TaskSettled", task=task, worker=worker, requester=tb.requester[task], status=status,
                         payment=tb.payment[task], t=ctx.t)
