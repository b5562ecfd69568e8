"""The chain's own money: genesis of the protocol accounts and validator slashing for equivocation.

Accounts: ``0`` is the background users (one aggregate account that pays the fees and tips of the
opaque background load), ``1..n`` are the validators (each bonded with ``validator_bond`` at genesis,
tips of their blocks credited to their free balance). Market participants get accounts after these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ainur_sim.chain.balances import Ledger, LedgerParams, SupplyRecorder
from ainur_sim.chain.runtime import BlockContext, Economy

if TYPE_CHECKING:
    from ainur_sim.record import ColumnStore

TOKEN = 10**12


def tokens(x: float) -> int:
    """Base units of ``x`` tokens (rounded to the unit)."""
    return int(round(float(x) * TOKEN))


def build_economy(n_validators: int, *, background: int, validator_bond: int, treasury_share: float,
                  check_invariants: bool = False, params: LedgerParams | None = None) -> Economy:
    """A ledger with the background account and ``n_validators`` bonded validator accounts (base units)."""
    ledger = Ledger(params)
    bg = int(ledger.create_accounts(1)[0])
    vals = ledger.create_accounts(n_validators)
    if background:
        ledger.genesis([background], [bg])
    if validator_bond:
        ledger.apply("genesis", vals, -1, validator_bond)
        ledger.stake(vals, validator_bond)
    return Economy(ledger=ledger, background_account=bg, validator_accounts=vals, treasury_share=treasury_share,
                   supply=SupplyRecorder(ledger, check=check_invariants))


class ValidatorSlashing:
    """Applies GRANDPA equivocation offences to the ledger: ``fraction × bond`` of each offender's stake.

    Reads the finality gadget's offence log at every finalized block (offences reported since the last
    block are slashed then); the slash goes to the treasury.
    """

    calls: tuple[str, ...] = ()

    def __init__(self, economy: Economy, offences: ColumnStore, bond: int) -> None:
        self.economy = economy
        self.offences = offences
        self.bond = int(bond)
        self._seen = 0
        self.slashed = 0
        """Base units slashed so far."""

    def dispatch(self, call: str, record: int, ctx: BlockContext) -> str | None:  # pragma: no cover - no calls
        return "NoCall"

    def on_finalize(self, ctx: BlockContext) -> None:
        n = len(self.offences)
        if n == self._seen:
            return
        cols = self.offences.cols
        who = np.asarray(cols["validator"][self._seen:n], dtype=np.int64)
        frac = np.asarray(cols["slash_fraction"][self._seen:n], dtype=np.float64)
        self._seen = n
        amounts = np.floor(frac * self.bond).astype(np.int64)
        taken = self.economy.ledger.slash(self.economy.validator_accounts[who], amounts)
        self.slashed += int(taken.sum())
