"""The market side of the runtime, assembled from a config: registry, staking, auction and escrow pallets
sharing one task book and one reputation model — and the market KPIs measured from them.

``Market.build`` registers the pallets with the runtime (``chain/`` never imports this package). The
verifier's account is created here: it is the only origin allowed to issue capability credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ainur_sim.chain.economy import TOKEN, tokens
from ainur_sim.chain.events import EventBus
from ainur_sim.chain.extrinsics import CallBook
from ainur_sim.chain.runtime import Economy, Runtime
from ainur_sim.market.auction import Auction
from ainur_sim.market.disputes import CourtParams
from ainur_sim.market.escrow import Escrow, EscrowParams
from ainur_sim.market.mechanisms import get_mechanism
from ainur_sim.market.registry import Registry
from ainur_sim.market.reputation import ReputationModel, make_reputation
from ainur_sim.market.staking import Staking
from ainur_sim.market.tasks import TaskBook

if TYPE_CHECKING:
    from ainur_sim.config import Config

DAY_S = 86400.0


def reputation_model(cfg: Config) -> ReputationModel:
    """The configured reputation model (``market.reputation.model``)."""
    r = cfg.market.reputation
    if r.model == "beta":
        return make_reputation("beta", forgetting=r.forgetting)
    if r.model == "ema":
        return make_reputation("ema", half_life_s=r.half_life_s)
    return make_reputation(r.model)


@dataclass
class Market:
    """The market pallets of one run and their shared state."""

    economy: Economy
    book: CallBook
    events: EventBus
    tasks: TaskBook
    registry: Registry
    staking: Staking
    auction: Auction
    escrow: Escrow
    reputation: ReputationModel
    verifier: int

    @classmethod
    def build(cls, cfg: Config, runtime: Runtime, economy: Economy, book: CallBook, events: EventBus,
              rng: np.random.Generator) -> Market:
        """Create the pallets from ``cfg`` and register them with ``runtime``."""
        m = cfg.market
        ledger = economy.ledger
        verifier = int(ledger.create_accounts(1)[0])
        if m.registry.verifier_tokens > 0:
            ledger.genesis([tokens(m.registry.verifier_tokens)], [verifier])
        tasks = TaskBook()
        rep = reputation_model(cfg)
        registry = Registry(ledger, book, events, deposit=tokens(m.registry.did_deposit_tokens), verifier=verifier,
                            allow_reregistration=m.registry.allow_reregistration,
                            refund_share=m.registry.deposit_refund_share)
        staking = Staking(ledger, book, events, min_stake=tokens(m.staking.min_stake_tokens),
                          max_value_per_stake=m.staking.max_value_per_stake, fallback=registry.slash_deposit)
        auction = Auction(ledger, book, events, tasks, registry=registry, staking=staking, reputation=rep,
                          mechanism=get_mechanism(m.mechanism), bid_window_blocks=m.auction.bid_window_blocks,
                          deadline_blocks=m.auction.deadline_blocks, max_bidders=m.auction.max_bidders,
                          q_min=m.reputation.q_min)
        d = m.dispute
        params = EscrowParams(
            challenge_window_blocks=m.escrow.challenge_window_blocks, protocol_fee_share=m.escrow.protocol_fee_share,
            slash_non_delivery=m.staking.slash_non_delivery, slash_dispute_loss=m.staking.slash_dispute_loss,
            dispute_model=d.model, bond=tokens(d.bond_tokens), fee=tokens(d.fee_tokens), false_accept=d.false_accept,
            false_reject=d.false_reject, resolution_blocks=d.resolution_blocks,
            court=CourtParams(initial_jurors=d.initial_jurors, max_rounds=d.max_rounds,
                              fee_per_juror=tokens(d.juror_fee_tokens),
                              stake_at_risk_per_vote=tokens(d.juror_stake_at_risk_tokens)),
            juror_accuracy=d.juror_accuracy)
        escrow = Escrow(ledger, book, events, tasks, staking=staking, reputation=rep, params=params, rng=rng)
        for pallet in (registry, staking, auction, escrow):
            runtime.register(pallet)

        def fresh_identity(e: dict[str, Any]) -> None:  # a re-created DID starts from the prior
            if e["registrations"] > 1:
                rep.ensure(int(e["account"]) + 1)
                rep.reset(np.array([int(e["account"])]))

        events.subscribe("DidRegistered", fresh_identity)
        return cls(economy, book, events, tasks, registry, staking, auction, escrow, rep, verifier)

    # --- measurement ---------------------------------------------------------------------------------
    def kpis(self, cfg: Config, duration_s: float, supply: pd.DataFrame
             ) -> tuple[dict[str, float | None], dict[str, str], dict[str, Any]]:
        """Market KPIs (values, reasons for nulls, statistics). Definitions:

        * ``task_completion_rate`` — of tasks that reached an end state, the share whose worker delivered
          and was paid (``completed`` or ``disputed_won``);
        * ``task_success_rate`` — of those paid tasks, the share whose delivered quality met the task's
          threshold;
        * ``tvl_escrow`` — the most held in escrow at any finalized block, USD;
        * ``daily_tx_value`` — payments released to workers during the run's last full day, USD/day
          (null for runs shorter than a day);
        * ``reputation_staked`` — workers' stake at the end of the run, USD (validator bonds excluded);
        * ``agents_registered`` — active DIDs with at least one capability credential at the end of the
          run, counted if the run is at most a week long (the plan's "first week").
        """
        usd = cfg.economics.token_usd / TOKEN
        frame = self.tasks.frame()
        status = frame["status"]
        terminal = status != "open"
        paid = status.isin(["completed", "disputed_won"])
        values: dict[str, float | None] = {}
        reasons: dict[str, str] = {}
        if terminal.any():
            values["task_completion_rate"] = float(paid.sum() / terminal.sum())
        else:
            reasons["task_completion_rate"] = "no task reached an end state"
        if paid.any():
            met = frame.loc[paid, "quality"] >= frame.loc[paid, "threshold"]
            values["task_success_rate"] = float(met.mean())
        else:
            reasons["task_success_rate"] = "no task was paid"
        if len(supply):
            values["tvl_escrow"] = float(supply["escrowed"].max()) * usd
        else:
            reasons["tvl_escrow"] = "no block was finalized"
        if duration_s >= DAY_S:
            last = [p for t, p in self.escrow.settlements if t >= duration_s - DAY_S]
            values["daily_tx_value"] = float(sum(last)) * usd
        else:
            reasons["daily_tx_value"] = "run shorter than one day"
        staked = self.economy.ledger.staked
        workers = sorted(self.staking.stakers)
        values["reputation_staked"] = float(staked[workers].sum()) * usd if workers else 0.0
        if duration_s <= 7 * DAY_S:
            values["agents_registered"] = float(self.registry.n_verified())
        else:
            reasons["agents_registered"] = "the plan counts the first week; run longer than 7 days"
        counts = status.value_counts()
        stats = {
            "tasks": len(frame), **{f"tasks_{k}": int(v) for k, v in counts.items()},
            "market_calls": self.book.counts(), "protocol_fees_units": self.escrow.protocol_fees,
            "dispute_fees_units": self.escrow.court_fees, "juror_rewards_units": self.escrow.juror_rewards,
            "worker_slashed_units": self.staking.slashed, "settled_value_units": self.escrow.settled_value,
            "auction_clearings": self.auction.clearings, "events": dict(sorted(self.events.counts.items())),
        }
        lat = (frame["t_cleared"] - frame["t_created"]).dropna()
        if len(lat):
            stats["task_clearing_latency_mean_s"] = float(lat.mean())
            stats["task_clearing_latency_p95_s"] = float(np.percentile(lat, 95))
        return values, reasons, stats
