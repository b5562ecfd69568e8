"""The DID registry pallet: agent identities with a refundable, slashable deposit and capability credentials.

Calls (origin = the caller's account; arguments are the record's integers):

* ``register_agent(a0 = capability bitmask claimed)`` — reserve the DID deposit and create an active DID.
  Errors: ``AlreadyRegistered`` (active DID), ``Deactivated`` (the account's DID was deactivated and
  ``allow_reregistration`` is off — the anti-whitewashing knob), ``InsufficientBalance``.
* ``update_did()`` — touch the DID document. Errors: ``NotRegistered``.
* ``deactivate_did()`` — unreserve ⌊``refund_share`` × what is left of the deposit⌋ and slash the rest from
  reserve to the treasury (``refund_share`` = 1: the whole deposit comes back; 0: leaving forfeits it, so
  every re-entry of a whitewasher costs a deposit), drop all credentials. Errors: ``NotRegistered``.
* ``issue_credential(a0 = subject, a1 = capability index)`` / ``revoke_credential(a0, a1)`` — by the
  verifier only (``BadOrigin`` otherwise); the subject must have an active DID (``NotRegistered``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ainur_sim.chain.balances import Ledger, perbill_of, share_to_ppb
from ainur_sim.chain.events import EventBus
from ainur_sim.chain.extrinsics import CallBook
from ainur_sim.chain.runtime import BlockContext

NONE, ACTIVE, DEACTIVATED = 0, 1, 2


@dataclass
class Did:
    """One account's identity: status, deposit held (base units), verified capability bitmask."""

    status: int = NONE
    deposit: int = 0
    claimed: int = 0
    verified: int = 0
    t_registered: float = float("nan")
    registrations: int = 0


class Registry:
    """DIDs by account, credentials by capability bit."""

    calls = ("register_agent", "update_did", "deactivate_did", "issue_credential", "revoke_credential")

    def __init__(self, ledger: Ledger, book: CallBook, events: EventBus, *, deposit: int, verifier: int,
                 allow_reregistration: bool, refund_share: float = 1.0) -> None:
        self.ledger = ledger
        self.book = book
        self.events = events
        self.deposit = int(deposit)
        self.verifier = int(verifier)
        self.allow_reregistration = allow_reregistration
        self.refund_ppb = share_to_ppb(refund_share)
        """Share of the remaining deposit unreserved on deactivation, parts per billion (Perbill)."""
        self.forfeited = 0
        """Base units of DID deposits forfeited to the treasury on deactivation so far."""
        self.dids: dict[int, Did] = {}

    def did(self, account: int) -> Did:
        """The account's DID record (a blank one if it never registered)."""
        return self.dids.get(account) or Did()

    def is_active(self, account: int) -> bool:
        return self.did(account).status == ACTIVE

    def is_verified(self, account: int, capability: int) -> bool:
        """Active DID holding a credential for ``capability``."""
        d = self.did(account)
        return d.status == ACTIVE and bool(d.verified >> capability & 1)

    def credential_error(self, account: int, capability: int) -> str | None:
        """Why ``account`` may not act on ``capability``: ``NotRegistered`` (no active DID), ``NotVerified``
        (no credential for it), or None (``is_active`` and ``is_verified`` in one lookup)."""
        d = self.dids.get(account)
        if d is None or d.status != ACTIVE:
            return "NotRegistered"
        return None if d.verified >> capability & 1 else "NotVerified"

    def n_verified(self) -> int:
        """Active DIDs with at least one capability credential."""
        return sum(1 for d in self.dids.values() if d.status == ACTIVE and d.verified)

    def dispatch(self, call: str, record: int, ctx: BlockContext) -> str | None:
        origin = self.book.origin[record]
        args = self.book.args[record]
        return getattr(self, "_" + call)(origin, args, ctx)

    def _register_agent(self, origin: int, args: tuple[int, ...], ctx: BlockContext) -> str | None:
        d = self.dids.setdefault(origin, Did())
        if d.status == ACTIVE:
            return "AlreadyRegistered"
        if d.status == DEACTIVATED and not self.allow_reregistration:
            return "Deactivated"
        if self.deposit and not self.ledger.reserve(origin, self.deposit)[0]:
            return "InsufficientBalance"
        d.status, d.deposit, d.claimed, d.verified = ACTIVE, self.deposit, max(args[0], 0), 0
        d.t_registered = ctx.t
        d.registrations += 1
        self.events.emit("DidRegistered", account=origin, capabilities=d.claimed, registrations=d.registrations,
                         t=ctx.t)
        return None

    def _update_did(self, origin: int, args: tuple[int, ...], ctx: BlockContext) -> str | None:
        return None if self.is_active(origin) else "NotRegistered"

    def _deactivate_did(self, origin: int, args: tuple[int, ...], ctx: BlockContext) -> str | None:
        d = self.did(origin)
        if d.status != ACTIVE:
            return "NotRegistered"
        held = min(d.deposit, int(self.ledger.reserved[origin]))
        refund = int(perbill_of(held, self.refund_ppb))
        if refund and not self.ledger.unreserve(origin, refund)[0]:  # pragma: no cover - refund ≤ reserved
            return "InsufficientBalance"
        if held > refund:
            self.forfeited += int(self.ledger.slash(origin, held - refund, from_="reserved")[0])
        d.status, d.deposit, d.verified = DEACTIVATED, 0, 0
        self.events.emit("DidDeactivated", account=origin, t=ctx.t)
        return None

    def _credential(self, origin: int, args: tuple[int, ...], issue: bool, ctx: BlockContext) -> str | None:
        if origin != self.verifier:
            return "BadOrigin"
        subject, cap = args[0], args[1]
        d = self.dids.get(subject)
        if d is None or d.status != ACTIVE:
            return "NotRegistered"
        if not 0 <= cap < 63:
            return "BadCapability"
        d.verified = d.verified | (1 << cap) if issue else d.verified & ~(1 << cap)
        self.events.emit("CredentialIssued" if issue else "CredentialRevoked", account=subject, capability=cap,
                         t=ctx.t)
        return None

    def _issue_credential(self, origin: int, args: tuple[int, ...], ctx: BlockContext) -> str | None:
        return self._credential(origin, args, True, ctx)

    def _revoke_credential(self, origin: int, args: tuple[int, ...], ctx: BlockContext) -> str | None:
        return self._credential(origin, args, False, ctx)

    def slash_deposit(self, account: int, amount: int) -> int:
        """Take up to ``amount`` of the DID deposit to the treasury; returns what was taken."""
        d = self.did(account)
        take = int(self.ledger.slash(account, min(int(amount), d.deposit), from_="reserved")[0])
        if account in self.dids:
            self.dids[account].deposit -= take
        return take

    def on_finalize(self, ctx: BlockContext) -> None:
        """No per-block work."""
