"""A chain-free harness for the market pallets: calls go straight from the CallBook into blocks that the
runtime executes one by one (no pool, no consensus), so tests control exactly which block holds which call."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from ainur_sim import compose
from ainur_sim.chain.calls import FIRST_DYNAMIC_RECORD
from ainur_sim.chain.economy import build_economy, tokens
from ainur_sim.chain.events import EventBus
from ainur_sim.chain.extrinsics import CallBook
from ainur_sim.chain.fees import inclusion_fee
from ainur_sim.chain.pause import CallFilter
from ainur_sim.chain.runtime import BlockContext, Runtime
from ainur_sim.config import Config
from ainur_sim.market.protocol import Market
from ainur_sim.sim import fee_params, to_config

BLOCK_S = 6.0


@lru_cache(maxsize=64)
def _config(overrides: tuple[str, ...]) -> Config:
    """Composing is slow (Hydra); harnesses with the same overrides share one config (never mutated)."""
    return to_config(compose(["scenario=baseline", *overrides]))


class Harness:
    """Market pallets on a ledger, driven block by block."""

    def __init__(self, *overrides: str, n_accounts: int = 6, endowment: float = 1_000.0,
                 call_filter: CallFilter | None = None, seed: int = 0) -> None:
        self.cfg = _config(overrides)
        self.economy = build_economy(2, background=0, validator_bond=tokens(100), treasury_share=0.8,
                                     check_invariants=True)
        self.book, self.events = CallBook(), EventBus()
        self.fees = fee_params(self.cfg)
        self.runtime = Runtime(call_filter or CallFilter([]), economy=self.economy, book=self.book,
                               fee_params=self.fees, events=self.events)
        self.market = Market.build(self.cfg, self.runtime, self.economy, self.book, self.events,
                                   np.random.default_rng(seed))
        self.ledger = self.economy.ledger
        self.accounts = self.ledger.create_accounts(n_accounts)
        if endowment:
            self.ledger.apply("genesis", self.accounts, -1, tokens(endowment))
        self.number = 0
        self.log: list[tuple[str, dict[str, Any]]] = []
        for kind in ("TaskPosted", "TaskAssigned", "TaskDelivered", "TaskSettled", "TaskRefunded",
                     "DisputeOpened", "DisputeResolved", "ExtrinsicFailed"):
            self.events.subscribe(kind, lambda e, k=kind: self.log.append((k, e)))

    def call(self, name: str, origin: int, *args: int) -> int:
        """Submit a call; it goes into the next block."""
        return self.book.submit(name, origin, self.number * BLOCK_S, tuple(args))

    def block(self, t: float | None = None) -> BlockContext:
        """Execute the next block with every call submitted since the last one (at time ``t``: default 12 s
        after it was authored; a later ``t`` models finality catching up after a stall)."""
        batch = self.book.take_outbox()
        recs = batch.payload if batch is not None else np.zeros(0, np.int64)
        self.number += 1
        ctx = BlockContext(block_id=self.number, number=self.number, t_authored=self.number * BLOCK_S,
                           t=self.number * BLOCK_S + 12.0 if t is None else t,
                           author_account=int(self.economy.validator_accounts[0]), fee_multiplier=1.0)
        self.runtime.execute_block(ctx, recs)
        return ctx

    def blocks(self, k: int) -> None:
        for _ in range(k):
            self.block()

    def catch_up(self, k: int) -> None:
        """``k`` blocks finalized together after a stall: all executed at the time of the last one."""
        t = (self.number + k) * BLOCK_S + 12.0
        for _ in range(k):
            self.block(t)

    def result(self, record: int) -> str | None:
        """The error of an executed record (None = success)."""
        return self.book.error[record] or None

    def fee_of(self, record: int) -> int:
        """The inclusion fee of a record at multiplier 1, base units."""
        return int(inclusion_fee(self.book.weight_s(record), self.book.length_bytes(record), 1.0, self.fees))

    def free(self, account: int) -> int:
        return int(self.ledger.free[account])

    def onboard(self, worker: int, capabilities: int = 0b1, stake: float = 200.0) -> None:
        """Register, verify every claimed capability and stake ``worker`` (three blocks)."""
        self.call("register_agent", worker, capabilities)
        self.call("stake_reputation", worker, tokens(stake))
        self.block()
        for cap in range(8):
            if capabilities >> cap & 1:
                self.call("issue_credential", self.market.verifier, worker, cap)
        self.block()


def payload(record: int) -> int:
    return record + FIRST_DYNAMIC_RECORD
