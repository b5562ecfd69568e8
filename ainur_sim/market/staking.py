"""The staking pallet (``reputation.stake`` / ``reputation.unstake``) and the slashing rules for workers.

A worker stakes to bid: it needs at least ``min_stake`` staked, and may bid only on tasks whose budget is
at most ``max_value_per_stake × stake`` (an exit-scam bound: the value at risk is covered by stake). Stake
cannot be withdrawn while the worker holds a task (assigned, delivered or disputed): ``StakeLocked``.

Slashes are a share of the task's payment, in Perbill like Substrate's: ``slash_amount(payment, share) =
⌊payment · ⌊share·10^9⌋ / 10^9⌋``, taken from stake up to what is there (then from the DID deposit), to
the treasury.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from ainur_sim.chain.balances import Ledger, perbill_int, share_to_ppb
from ainur_sim.chain.events import EventBus
from ainur_sim.chain.extrinsics import CallBook
from ainur_sim.chain.runtime import BlockContext


def slash_amount(payment: int, share: float) -> int:
    """The slash for a task paid ``payment`` base units at ``share`` of it (Perbill, rounded down)."""
    return perbill_int(int(payment), share_to_ppb(share))


class Staking:
    """Worker stake: deposits, withdrawals, the bidding rule and slashing."""

    calls = ("stake_reputation", "unstake_reputation")

    def __init__(self, ledger: Ledger, book: CallBook, events: EventBus, *, min_stake: int,
                 max_value_per_stake: float, fallback: Callable[[int, int], int] | None = None) -> None:
        self.ledger = ledger
        self.book = book
        self.events = events
        self.min_stake = int(min_stake)
        self.max_value_per_stake = float(max_value_per_stake)
        self.fallback = fallback
        self.locks: Counter[int] = Counter()
        """Tasks each worker currently holds (stake cannot be withdrawn while > 0)."""
        self.stakers: set[int] = set()
        """Accounts that ever staked through this pallet (the juror pool)."""
        self.slashed = 0
        """Base units slashed from workers so far."""

    def stake_of(self, account: int) -> int:
        return self.ledger.staked_of(account)

    def may_bid(self, account: int, budget: int) -> str | None:
        """None if ``account``'s stake lets it bid on a task of ``budget``, else the error name."""
        stake = self.stake_of(account)
        if stake < self.min_stake or budget > self.max_value_per_stake * stake:
            return "InsufficientStake"
        return None

    def dispatch(self, call: str, record: int, ctx: BlockContext) -> str | None:
        origin = self.book.origin[record]
        amount = self.book.args[record][0]
        if amount <= 0:
            return "BadAmount"
        if call == "stake_reputation":
            if not self.ledger.stake(origin, amount)[0]:
                return "InsufficientBalance"
            self.stakers.add(origin)
            self.events.emit("Staked", account=origin, amount=amount, t=ctx.t)
            return None
        if self.locks[origin] > 0:
            return "StakeLocked"
        if not self.ledger.unstake(origin, amount)[0]:
            return "InsufficientStake"
        self.events.emit("Unstaked", account=origin, amount=amount, t=ctx.t)
        return None

    def slash(self, account: int, amount: int) -> int:
        """Take up to ``amount`` of ``account``'s stake to the treasury — and, where the stake falls short,
        from its DID deposit (``fallback``, the registry's slashable deposit); returns what was taken."""
        if amount <= 0:
            return 0
        taken = int(self.ledger.slash(account, int(amount))[0])
        if taken < amount and self.fallback is not None:
            taken += self.fallback(account, int(amount) - taken)
        self.slashed += taken
        return taken

    def on_finalize(self, ctx: BlockContext) -> None:
        """No per-block work."""
