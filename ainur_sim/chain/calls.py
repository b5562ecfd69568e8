"""Call identities: every extrinsic is a ``pallet.call``; the pool carries a small integer code for it.

A transaction's ``payload`` in the pool is a *call record*: for opaque load calls (background transfers,
modelled market traffic) all transactions of one kind share the record whose id is the call's code; real
market calls (their own records with arguments) get ids above ``FIRST_DYNAMIC_RECORD``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import numpy as np

#: Short call name (as in ``fees.CALL_WEIGHTS``) → ``pallet.call``. Order fixes the codes.
CALLS: dict[str, str] = {
    "transfer": "balances.transfer_keep_alive",
    "transfer_allow_death": "balances.transfer_allow_death",
    "register_agent": "registry.register_agent",
    "post_task": "auction.post_task",
    "submit_bid": "auction.submit_bid",
    "settle_task": "escrow.settle_task",
    "open_dispute": "escrow.open_dispute",
    "stake_reputation": "reputation.stake",
    "unstake_reputation": "reputation.unstake",
    "update_did": "registry.update_did",
    "deactivate_did": "registry.deactivate_did",
    "issue_credential": "registry.issue_credential",
    "revoke_credential": "registry.revoke_credential",
    "deliver_result": "escrow.deliver_result",
    "release_payment": "escrow.release_payment",
}

CODES: dict[str, int] = {name: i for i, name in enumerate(CALLS)}
FULL_NAMES: tuple[str, ...] = tuple(CALLS.values())
FIRST_DYNAMIC_RECORD = 1 << 20


def code_of(name: str) -> int:
    """Code of a short call name; ``ValueError`` naming the allowed calls otherwise."""
    try:
        return CODES[name]
    except KeyError:
        raise ValueError(f"unknown call {name!r}; allowed: {', '.join(CALLS)}") from None


def matching_codes(patterns: Iterable[str]) -> np.ndarray:
    """Codes of calls whose ``pallet.call`` matches any pattern (``pallet.call`` or ``pallet.*``)."""
    pats = list(patterns)
    return np.array([i for i, full in enumerate(FULL_NAMES) if any(fnmatch.fnmatchcase(full, p) for p in pats)],
                    dtype=np.int64)


def valid_pattern(pattern: str) -> bool:
    """A pattern is ``pallet.call`` or ``pallet.*`` for a known pallet."""
    pallet, _, call = pattern.partition(".")
    pallets = {full.split(".")[0] for full in FULL_NAMES}
    return bool(call) and (pallet in pallets or pallet in ("system", "timestamp", "tx_pause", "safe_mode"))
