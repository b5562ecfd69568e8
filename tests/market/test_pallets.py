"""The market pallets through the runtime: every failure path keeps the fee and changes nothing else;
the task lifecycle moves the money it should; slashes match their formulas."""

from __future__ import annotations

import numpy as np
import pytest

from ainur_sim.chain.balances import perbill_of, share_to_ppb
from ainur_sim.chain.economy import tokens
from ainur_sim.chain.pause import CallFilter
from ainur_sim.market.staking import slash_amount
from tests.market.harness import Harness

W1, W2, R1, R2, STRANGER, POOR = range(6)


def _h(*overrides: str, **kw) -> Harness:
    h = Harness(*overrides, **kw)
    h.acc = {name: int(a) for name, a in zip(("w1", "w2", "r1", "r2", "x", "poor"), h.accounts[:6], strict=True)}
    return h


def _post(h: Harness, requester: int, budget: float = 50.0, cap: int = 0) -> int:
    task = len(h.market.tasks)
    rec = h.call("post_task", requester, cap, tokens(budget), 700_000, 0)
    h.block()
    assert h.result(rec) is None
    return task


def _assigned(h: Harness, cost: float = 20.0) -> tuple[int, int, int]:
    """w1 onboarded and assigned a task of r1; returns (task, worker, requester)."""
    w, r = h.acc["w1"], h.acc["r1"]
    h.onboard(w)
    task = _post(h, r)
    h.call("submit_bid", w, task, tokens(cost))
    h.blocks(h.cfg.market.auction.bid_window_blocks)
    assert h.market.tasks.status[task] == "assigned"
    return task, w, r


def _assert_failed_cleanly(h: Harness, rec: int, error: str) -> None:
    """Execute the next block: ``rec`` fails with ``error``; its origin paid exactly its fee, nothing else moved."""
    origin = h.book.origin[rec]
    before = h.ledger.snapshot(0)
    acct_before = (h.free(origin), int(h.ledger.reserved[origin]), int(h.ledger.escrowed[origin]),
                   int(h.ledger.staked[origin]))
    treasury_before = h.ledger.treasury
    h.block()
    assert h.result(rec) == error
    failed = [e for k, e in h.log if k == "ExtrinsicFailed" and e["record"] == rec]
    assert len(failed) == 1 and failed[0]["error"] == error and failed[0]["origin"] == origin
    fee = h.fee_of(rec)
    assert (h.free(origin), int(h.ledger.reserved[origin]), int(h.ledger.escrowed[origin]),
            int(h.ledger.staked[origin])) == (acct_before[0] - fee, *acct_before[1:])
    after = h.ledger.snapshot(0)
    assert after["escrowed"] == before["escrowed"] and after["staked"] == before["staked"]
    assert h.ledger.treasury - treasury_before == int(perbill_of(fee, share_to_ppb(0.8)))


def test_insufficient_balance_fails_cleanly():
    h = _h()
    rec = h.call("post_task", h.acc["r1"], 0, tokens(5_000.0), 700_000, 0)  # more than its 1,000 tokens
    _assert_failed_cleanly(h, rec, "InsufficientBalance")
    assert len(h.market.tasks) == 0


def test_unregistered_and_unverified_bidders_fail_cleanly():
    h = _h()
    task = _post(h, h.acc["r1"])
    rec = h.call("submit_bid", h.acc["w1"], task, tokens(10))
    _assert_failed_cleanly(h, rec, "NotRegistered")
    h.call("register_agent", h.acc["w2"], 0b1)
    h.call("stake_reputation", h.acc["w2"], tokens(200))
    h.block()
    rec = h.call("submit_bid", h.acc["w2"], task, tokens(10))  # registered, no credential yet
    _assert_failed_cleanly(h, rec, "NotVerified")
    assert h.market.tasks.bids[task] == {}


def test_bid_after_the_window_fails_cleanly():
    h = _h()
    h.onboard(h.acc["w1"])
    task = _post(h, h.acc["r1"])
    h.blocks(h.cfg.market.auction.bid_window_blocks)  # the window closes and the task is cleared (no bids)
    rec = h.call("submit_bid", h.acc["w1"], task, tokens(10))
    _assert_failed_cleanly(h, rec, "BidWindowClosed")
    assert h.market.tasks.status[task] == "refunded"


def test_bid_without_enough_stake_fails_cleanly():
    h = _h()
    h.onboard(h.acc["w1"], stake=20.0)  # below the 100-token minimum
    task = _post(h, h.acc["r1"])
    rec = h.call("submit_bid", h.acc["w1"], task, tokens(10))
    _assert_failed_cleanly(h, rec, "InsufficientStake")


def test_release_by_a_stranger_fails_cleanly():
    h = _h()
    task, w, r = _assigned(h)
    h.call("deliver_result", w, task, 900_000)
    h.block()
    rec = h.call("release_payment", h.acc["x"], task)
    _assert_failed_cleanly(h, rec, "BadOrigin")
    rec = h.call("deliver_result", h.acc["x"], task, 900_000)
    _assert_failed_cleanly(h, rec, "BadOrigin")
    assert h.market.tasks.status[task] == "delivered"


def test_paused_calls_fail_cleanly():
    flt = CallFilter([])
    flt.pause(0.0, 1e9, ["auction.*"])
    h = _h(call_filter=flt)
    rec = h.call("post_task", h.acc["r1"], 0, tokens(50), 700_000, 0)
    _assert_failed_cleanly(h, rec, "CallFiltered")
    assert len(h.market.tasks) == 0
    assert h.runtime.failed_paused.sum() == 1


def test_unpayable_fee_fails_without_dispatch():
    h = _h(endowment=0.0)
    rec = h.call("register_agent", h.acc["w1"], 1)
    h.block()
    assert h.result(rec) == "Payment"
    assert not h.market.registry.is_active(h.acc["w1"])
    assert h.runtime.failed_payment.sum() == 1


def test_happy_path_pays_the_vcg_price_minus_the_protocol_fee():
    h = _h()
    w1, w2, r = h.acc["w1"], h.acc["w2"], h.acc["r1"]
    h.onboard(w1)
    h.onboard(w2)
    task = _post(h, r, budget=50.0)
    h.call("submit_bid", w1, task, tokens(20))
    h.call("submit_bid", w2, task, tokens(30))
    h.blocks(h.cfg.market.auction.bid_window_blocks)
    tb = h.market.tasks
    assert tb.winner[task] == w1
    # one task: VCG pays the winner its bid + (W* − W*₋ᵢ) = 20 + (q·50−20) − (q·50−30) = the runner-up's 30
    assert tb.payment[task] == pytest.approx(tokens(30), abs=1)
    pay = tb.payment[task]
    assert int(h.ledger.escrowed[r]) == pay  # the rest of the budget came back
    free_w = h.free(w1)
    rec = h.call("deliver_result", w1, task, 900_000)
    h.block()
    rec2 = h.call("release_payment", r, task)
    h.block()
    assert h.result(rec2) is None and tb.status[task] == "completed"
    protocol_fee = int(perbill_of(pay, share_to_ppb(h.cfg.market.escrow.protocol_fee_share)))
    assert h.free(w1) == free_w - h.fee_of(rec) + pay - protocol_fee
    assert int(h.ledger.escrowed[r]) == 0
    assert h.market.escrow.protocol_fees == protocol_fee


def test_auto_release_after_the_challenge_window():
    h = _h()
    task, w, r = _assigned(h)
    h.call("deliver_result", w, task, 900_000)
    h.block()
    h.blocks(h.cfg.market.escrow.challenge_window_blocks - 1)
    assert h.market.tasks.status[task] == "delivered"
    h.block()
    assert h.market.tasks.status[task] == "completed"
    assert int(h.ledger.escrowed[r]) == 0


def test_missed_deadline_refunds_and_slashes_by_the_formula():
    h = _h("market.auction.deadline_blocks=20")
    task, w, r = _assigned(h)
    pay = h.market.tasks.payment[task]
    stake = int(h.ledger.staked[w])
    free_r = h.free(r)
    h.blocks(21)
    assert h.market.tasks.status[task] == "failed"
    expected = slash_amount(pay, h.cfg.market.staking.slash_non_delivery)
    assert expected == pay * 100_000_000 // 10**9
    assert stake - int(h.ledger.staked[w]) == expected
    assert h.free(r) == free_r + pay


@pytest.mark.parametrize("quality, for_worker", [(300_000, False), (900_000, True)])
def test_automated_dispute_outcomes_move_the_bond_fee_and_slash(quality, for_worker):
    h = _h("market.dispute.false_accept=0", "market.dispute.false_reject=0")
    task, w, r = _assigned(h)
    pay = h.market.tasks.payment[task]
    h.call("deliver_result", w, task, quality)
    h.block()
    stake, free_r = int(h.ledger.staked[w]), h.free(r)
    rec = h.call("open_dispute", r, task)
    h.block()
    assert h.result(rec) is None and int(h.ledger.reserved[r]) == tokens(10) + tokens(5) - tokens(10)
    h.blocks(h.cfg.market.dispute.resolution_blocks)
    tb = h.market.tasks
    fee = tokens(h.cfg.market.dispute.fee_tokens)
    if for_worker:
        assert tb.status[task] == "disputed_won"
        assert h.free(r) == free_r - h.fee_of(rec) - fee  # the bond came back less the fee
        assert int(h.ledger.staked[w]) == stake
    else:
        assert tb.status[task] == "disputed_lost"
        assert h.free(r) == free_r - h.fee_of(rec) + pay  # refunded, bond back
        slash = slash_amount(pay, h.cfg.market.staking.slash_dispute_loss)
        assert stake - int(h.ledger.staked[w]) == slash + fee
    assert int(h.ledger.reserved[r]) == 0 and int(h.ledger.escrowed[r]) == 0


def test_dispute_after_the_challenge_window_fails():
    h = _h("market.escrow.challenge_window_blocks=5")
    task, w, r = _assigned(h)
    h.call("deliver_result", w, task, 300_000)
    h.block()
    h.blocks(5)  # auto-released at the end of the window's last block
    assert h.market.tasks.status[task] == "completed"
    rec = h.call("open_dispute", r, task)
    h.block()
    assert h.result(rec) == "WrongState"


def test_court_dispute_pays_jurors_from_what_the_loser_paid():
    h = _h("market.dispute.model=court", "market.dispute.juror_accuracy=1.0", n_accounts=12)
    task, w, r = _assigned(h)
    jurors = [int(a) for a in h.accounts[6:]]
    for j in jurors:
        h.onboard(j)
    h.call("deliver_result", w, task, 300_000)  # bad work: with perfect jurors the requester wins
    h.block()
    treasury = h.ledger.treasury
    h.call("open_dispute", r, task)
    h.block()
    due = h.market.tasks.dispute_due_block[task]
    h.blocks(due - h.number)
    assert h.market.tasks.status[task] == "disputed_lost"
    esc = h.market.escrow
    assert esc.court_fees == 3 * tokens(h.cfg.market.dispute.juror_fee_tokens)
    assert esc.juror_rewards == esc.court_fees  # unanimous: no penalties, everything collected is paid out
    assert h.ledger.treasury >= treasury


def test_reregistration_follows_the_anti_whitewashing_knob():
    for allow, expected in ((False, "Deactivated"), (True, None)):
        h = _h(f"market.registry.allow_reregistration={str(allow).lower()}")
        w = h.acc["w1"]
        h.call("register_agent", w, 1)
        h.block()
        assert int(h.ledger.reserved[w]) == tokens(10)
        h.call("deactivate_did", w)
        h.block()
        assert int(h.ledger.reserved[w]) == 0
        rec = h.call("register_agent", w, 1)
        h.block()
        assert h.result(rec) == expected


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_deactivation_refunds_the_deposit_share_and_forfeits_the_rest(share):
    """``deposit_refund_share``: ⌊share × deposit⌋ back to free, the rest from reserve to the treasury;
    apart from the call's fee nothing else moves (no mint, no burn beyond the fee's)."""
    h = _h(f"market.registry.deposit_refund_share={share}", "market.registry.did_deposit_tokens=7")
    w = h.acc["w1"]
    h.call("register_agent", w, 1)
    h.block()
    held = tokens(7)
    assert int(h.ledger.reserved[w]) == held
    free, treasury, burned = h.free(w), h.ledger.treasury, h.ledger.burned
    others = [(h.free(a), int(h.ledger.reserved[a]), int(h.ledger.staked[a])) for a in h.accounts if a != w]
    escrowed, staked = h.ledger.snapshot(0)["escrowed"], h.ledger.snapshot(0)["staked"]
    rec = h.call("deactivate_did", w)
    h.block()
    assert h.result(rec) is None
    fee = h.fee_of(rec)
    fee_treasury = int(perbill_of(fee, share_to_ppb(0.8)))
    refund = int(perbill_of(held, share_to_ppb(share)))
    assert refund == {0.0: 0, 0.5: tokens(3.5), 1.0: held}[share]
    assert int(h.ledger.reserved[w]) == 0
    assert h.free(w) == free - fee + refund
    assert h.ledger.treasury - treasury == fee_treasury + (held - refund)
    assert h.market.registry.forfeited == held - refund
    assert h.ledger.burned - burned == fee - fee_treasury
    assert [(h.free(a), int(h.ledger.reserved[a]), int(h.ledger.staked[a]))
            for a in h.accounts if a != w] == others
    assert h.ledger.snapshot(0)["escrowed"] == escrowed and h.ledger.snapshot(0)["staked"] == staked


def test_stake_is_locked_while_holding_a_task():
    h = _h()
    task, w, r = _assigned(h)
    rec = h.call("unstake_reputation", w, tokens(10))
    h.block()
    assert h.result(rec) == "StakeLocked"
    h.call("deliver_result", w, task, 900_000)
    h.block()
    h.call("release_payment", r, task)
    h.block()
    rec = h.call("unstake_reputation", w, tokens(10))
    h.block()
    assert h.result(rec) is None


def test_only_the_verifier_issues_credentials():
    h = _h()
    h.call("register_agent", h.acc["w1"], 1)
    h.block()
    rec = h.call("issue_credential", h.acc["x"], h.acc["w1"], 0)
    _assert_failed_cleanly(h, rec, "BadOrigin")
    assert not h.market.registry.is_verified(h.acc["w1"], 0)


def test_reputation_feeds_the_auction_weight():
    """Equal bids: the worker with the better record wins (values are budget × q(ρ))."""
    h = _h("market.reputation.forgetting=1.0")
    w1, w2 = h.acc["w1"], h.acc["w2"]
    h.onboard(w1)
    h.onboard(w2)
    h.market.reputation.ensure(int(max(w1, w2)) + 1)
    h.market.reputation.record(np.array([w2, w2, w1]), np.array([1.0, 1.0, 0.0]), 0.0)
    task = _post(h, h.acc["r1"])
    h.call("submit_bid", w1, task, tokens(20))
    h.call("submit_bid", w2, task, tokens(20))
    h.blocks(h.cfg.market.auction.bid_window_blocks)
    assert h.market.tasks.winner[task] == w2


def test_slash_beyond_stake_takes_the_did_deposit():
    h = _h("market.staking.slash_dispute_loss=1.0", "market.staking.max_value_per_stake=2.0",
           "market.dispute.false_accept=0", "market.dispute.false_reject=0")
    w, r = h.acc["w1"], h.acc["r1"]
    h.onboard(w, stake=100.0)
    task = _post(h, r, budget=150.0)
    h.call("submit_bid", w, task, tokens(20))
    h.blocks(h.cfg.market.auction.bid_window_blocks)
    pay = h.market.tasks.payment[task]
    assert pay > tokens(100)  # one bidder: VCG pays the value q·budget = 0.75 · 150
    h.call("deliver_result", w, task, 100_000)
    h.block()
    h.call("open_dispute", r, task)
    h.blocks(1 + h.cfg.market.dispute.resolution_blocks)
    assert h.market.tasks.status[task] == "disputed_lost"
    assert int(h.ledger.staked[w]) == 0
    assert int(h.ledger.reserved[w]) == 0  # the 10-token DID deposit covered part of the shortfall
    assert h.market.staking.slashed == tokens(100) + tokens(10)
    assert h.market.registry.did(w).deposit == 0


def test_failures_are_announced_as_events():
    h = _h()
    seen = []
    h.events.subscribe("ExtrinsicFailed", seen.append)
    rec = h.call("submit_bid", h.acc["w1"], 7, tokens(1))
    h.block()
    assert seen and seen[0]["record"] == rec and seen[0]["error"] == "UnknownTask"


def test_task_book_due_matches_a_pass_over_the_status() -> None:
    """``TaskBook.due`` = the tasks in the status whose key is ≤ the limit, ascending, as a full pass finds them."""
    from ainur_sim.market.tasks import ASSIGNED, DELIVERED, TaskBook
    rng = np.random.default_rng(3)
    tb = TaskBook()
    for _ in range(60):
        tb.add(1, 0, 10, 0.5, 1e9, 0.0, 0.0, 5)
    for step in range(40):
        for k in rng.choice(60, 5, replace=False).tolist():
            if tb.status[k] == "open":
                tb.set_status(k, ASSIGNED)
                tb.deadline_block[k] = step + int(rng.integers(0, 10))
            elif tb.status[k] == ASSIGNED:
                tb.set_status(k, DELIVERED)
                tb.delivered_block[k] = step
            elif tb.status[k] == DELIVERED:
                tb.set_status(k, "completed")
        for status, key, limit in ((DELIVERED, tb.delivered_block, step - 3), (ASSIGNED, tb.deadline_block, step)):
            expected = [k for k in tb.in_status(status) if key[k] <= limit]
            assert tb.due(status, key, limit) == expected
            for k in expected:  # (what the escrow does with them: they leave the status)
                tb.set_status(k, "failed")
