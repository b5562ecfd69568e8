"""Tests for ainur_sim.chain.balances: conservation, exact splits, ED reaping, sequential batches.

The reference is ``ModelLedger`` below: a plain-Python ledger (lists of dicts of ints, one movement at a
time) written from the rules in the module docstring, against which the vectorised ledger is compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ainur_sim import schemas
from ainur_sim.chain.balances import (
    KIND_CODE,
    KINDS,
    SUPPLY_SCHEMA,
    Ledger,
    LedgerInvariantError,
    LedgerParams,
    SupplyRecorder,
    _scan,
    exact_sum,
    perbill_of,
)
from ainur_sim.chain.fees import FeeParams, split_fee

COLS = ("free", "reserved", "escrowed", "staked")
SLASH = {"slash_staked_treasury": ("staked", "treasury"), "slash_staked_burn": ("staked", "burn"),
         "slash_reserved_treasury": ("reserved", "treasury"), "slash_reserved_burn": ("reserved", "burn")}


# --------------------------------------------------------------------------------------------------
# The plain-Python reference
# --------------------------------------------------------------------------------------------------


class ModelLedger:
    """One movement at a time over Python ints; the rules of the balances module, written out plainly."""

    def __init__(self, ed: int, max_issuance: int, max_escrow_id: int) -> None:
        self.ed = ed
        self.max_issuance = max_issuance
        self.max_escrow_id = max_escrow_id
        self.acc: list[dict[str, int]] = []
        self.escrows: dict[int, list[int]] = {}  # id -> [owner, amount], only while amount > 0
        self.treasury = self.burned = self.dust = self.minted = self.genesis = 0

    def issuance(self) -> int:
        return self.genesis + self.minted - self.burned

    def create(self, k: int) -> None:
        self.acc.extend({c: 0 for c in COLS} for _ in range(k))

    def known(self, i: int) -> bool:
        return 0 <= i < len(self.acc)

    def holds(self, i: int) -> int:
        a = self.acc[i]
        return a["reserved"] + a["escrowed"] + a["staked"]

    def tracked(self, i: int) -> int:
        return sum(amt for owner, amt in self.escrows.values() if owner == i)

    def exists(self, i: int) -> bool:
        return self.acc[i]["free"] >= self.ed or self.holds(i) > 0

    def can_credit(self, i: int, x: int) -> bool:
        after = self.acc[i]["free"] + x
        return not (self.holds(i) == 0 and 0 < after < self.ed)

    def can_debit(self, i: int, x: int, keep_alive: bool) -> bool:
        a = self.acc[i]
        if a["free"] < x:
            return False
        # keep_alive: an existing account must still exist afterwards
        return not (keep_alive and x > 0 and self.exists(i) and self.holds(i) == 0 and a["free"] - x < self.ed)

    def row(self, kind: str, a: int, b: int, x: int, aux: int, keep_alive: bool) -> tuple[bool, int, int]:
        """Apply one row; returns (ok, moved, dust)."""
        if x < 0 or not self.known(a):
            return False, 0, 0
        acc = self.acc
        moved = x
        if kind == "transfer":
            if not self.known(b):
                return False, 0, 0
            if a == b:
                if acc[a]["free"] < x:
                    return False, 0, 0
            else:
                if not (self.can_debit(a, x, keep_alive) and self.can_credit(b, x)):
                    return False, 0, 0
                acc[a]["free"] -= x
                acc[b]["free"] += x
        elif kind in ("reserve", "stake", "escrow_lock"):
            col = {"reserve": "reserved", "stake": "staked", "escrow_lock": "escrowed"}[kind]
            if acc[a]["free"] < x:
                return False, 0, 0
            if kind == "escrow_lock" and aux != -1:
                if not 0 <= aux < self.max_escrow_id:
                    return False, 0, 0
                owner = self.escrows.get(aux, [-1, 0])[0]
                if owner not in (-1, a):
                    return False, 0, 0
                if x > 0:
                    self.escrows[aux] = [a, self.escrows.get(aux, [a, 0])[1] + x]
            acc[a]["free"] -= x
            acc[a][col] += x
        elif kind in ("unreserve", "unstake"):
            col = "reserved" if kind == "unreserve" else "staked"
            if acc[a][col] < x:
                return False, 0, 0
            acc[a][col] -= x
            acc[a]["free"] += x
        elif kind in ("escrow_release", "escrow_refund"):
            dst = a if kind == "escrow_refund" else b
            if not self.known(dst):
                return False, 0, 0
            if aux == -1:
                if acc[a]["escrowed"] - self.tracked(a) < x:
                    return False, 0, 0
            else:
                owner, amt = self.escrows.get(aux, [-1, 0])
                if owner != a or amt < x:
                    return False, 0, 0
            if dst != a and not self.can_credit(dst, x):
                return False, 0, 0
            if aux != -1 and x > 0:
                self.escrows[aux][1] -= x
                if self.escrows[aux][1] == 0:
                    del self.escrows[aux]
            acc[a]["escrowed"] -= x
            acc[dst]["free"] += x
        elif kind in SLASH:
            col, to = SLASH[kind]
            moved = min(x, acc[a][col])
            acc[a][col] -= moved
            if to == "treasury":
                self.treasury += moved
            else:
                self.burned += moved
        elif kind == "fee":
            if not 0 <= aux <= 10**9 or not self.can_debit(a, x, keep_alive):
                return False, 0, 0
            t = x * aux // 10**9
            acc[a]["free"] -= x
            self.treasury += t
            self.burned += x - t
        elif kind in ("mint", "genesis"):
            if self.issuance() + x > self.max_issuance or not self.can_credit(a, x):
                return False, 0, 0
            acc[a]["free"] += x
            if kind == "mint":
                self.minted += x
            else:
                self.genesis += x
        elif kind == "burn":
            if not self.can_debit(a, x, keep_alive):
                return False, 0, 0
            acc[a]["free"] -= x
            self.burned += x
        elif kind == "treasury_spend":
            if x > self.treasury or not self.can_credit(a, x):
                return False, 0, 0
            self.treasury -= x
            acc[a]["free"] += x
        else:
            raise AssertionError(kind)
        dust = 0
        if self.holds(a) == 0 and 0 < acc[a]["free"] < self.ed:
            dust = acc[a]["free"]
            acc[a]["free"] = 0
            self.burned += dust
            self.dust += dust
        return True, moved, dust

    def batch(self, kind: str, rows: list[tuple[int, int, int, int, bool]]) -> tuple[list[bool], list[int]]:
        out = [self.row(kind, *r) for r in rows]
        return [o[0] for o in out], [o[1] for o in out]


def assert_same(ledger: Ledger, model: ModelLedger) -> None:
    assert ledger.n_accounts == len(model.acc)
    for c in COLS:
        assert getattr(ledger, c).tolist() == [a[c] for a in model.acc], c
    assert ledger.treasury == model.treasury
    assert ledger.burned == model.burned
    assert ledger.dust_burned == model.dust
    assert ledger.minted == model.minted
    assert ledger.genesis_issuance == model.genesis
    assert ledger.total_issuance == model.issuance()
    for z in range(12):
        assert ledger.escrow_balance(z) == model.escrows.get(z, [-1, 0])[1]
        assert ledger.escrow_owner(z) == model.escrows.get(z, [-1, 0])[0]


def run_rows(ledger: Ledger, kind: str, rows: list) -> tuple[list[bool] | None, list[int]]:
    """Apply rows through the named method for ``kind`` (one call, the whole batch).

    Returns (success mask, amounts slashed); slashes give no mask, other kinds no amounts.
    """
    a = [r[0] for r in rows]
    b = [r[1] for r in rows]
    x = [r[2] for r in rows]
    z = [r[3] for r in rows]
    ka = rows[0][4] if rows else False
    if kind == "transfer":
        ok = ledger.transfer(a, b, x, keep_alive=ka)
    elif kind in ("reserve", "unreserve", "stake", "unstake", "mint", "treasury_spend"):
        ok = getattr(ledger, kind)(a, x)
    elif kind == "genesis":
        ok = ledger.genesis(x, a)
    elif kind == "burn":
        ok = ledger.burn(a, x, keep_alive=ka)
    elif kind == "escrow_lock":
        ok = ledger.escrow_lock(a, x, z)
    elif kind == "escrow_refund":
        ok = ledger.escrow_refund(a, x, z)
    elif kind == "escrow_release":
        ok = ledger.escrow_release(b, a, x, z)
    elif kind in SLASH:
        return None, ledger.slash(a, x, *SLASH[kind]).tolist()
    elif kind == "fee":
        ok = ledger.pay_fee(a, x, z[0] / 10**9 if rows else 0.0, keep_alive=ka)
    else:
        raise AssertionError(kind)
    return ok.tolist(), []


# --------------------------------------------------------------------------------------------------
# Conservation: stateful comparison with the model
# --------------------------------------------------------------------------------------------------

ED = 100
MAX_ISSUANCE = 60_000
MAX_ESCROW_ID = 8

accounts = st.integers(-2, 13)
amounts = st.one_of(
    st.integers(0, 300),
    st.sampled_from([0, ED - 1, ED, ED + 1]),
    st.integers(0, 6_000),
    st.integers(-300, -1),
    st.integers(2**62, 2**63 - 1),
)
escrow_ids = st.one_of(st.integers(0, 4), st.sampled_from([-1, -1, -2, MAX_ESCROW_ID, 10**12]))
keep = st.booleans()


def rows_of(share_ppb: int | None = None):
    aux = st.just(share_ppb) if share_ppb is not None else escrow_ids
    return st.lists(st.tuples(accounts, accounts, amounts, aux, st.just(False)), min_size=0, max_size=6)


class LedgerMachine(RuleBasedStateMachine):
    """Random batches of every kind (valid and invalid); the ledger must match the model after each."""

    @initialize(k=st.integers(1, 8))
    def setup(self, k: int) -> None:
        self.ledger = Ledger(LedgerParams(existential_deposit=ED, max_issuance=MAX_ISSUANCE,
                                          max_escrow_id=MAX_ESCROW_ID, initial_capacity=2))
        self.model = ModelLedger(ED, MAX_ISSUANCE, MAX_ESCROW_ID)
        self.ledger.create_accounts(k)
        self.model.create(k)

    def _compare(self, kind: str, rows: list) -> None:
        before = self.ledger.counts(kind)
        ok, moved = run_rows(self.ledger, kind, rows)
        m_ok, m_moved = self.model.batch(kind, rows)
        if ok is None:
            assert moved == m_moved, (kind, rows)
        else:
            assert ok == m_ok, (kind, rows)
        after = self.ledger.counts(kind)
        assert after[0] - before[0] == sum(m_ok) and after[1] - before[1] == len(rows) - sum(m_ok)

    @rule(k=st.integers(0, 3))
    def create(self, k: int) -> None:
        ids = self.ledger.create_accounts(k)
        assert ids.tolist() == list(range(len(self.model.acc), len(self.model.acc) + k))
        self.model.create(k)

    @rule(rows=st.lists(st.tuples(accounts, st.just(-1), st.one_of(amounts, st.integers(0, 20_000)),
                                  st.just(-1), st.just(False)), max_size=6))
    def genesis(self, rows) -> None:
        self._compare("genesis", rows)

    @rule(rows=rows_of(), keep_alive=keep)
    def transfer(self, rows, keep_alive: bool) -> None:
        self._compare("transfer", [r[:4] + (keep_alive,) for r in rows])

    @rule(kind=st.sampled_from(["reserve", "unreserve", "stake", "unstake", "mint", "treasury_spend"]),
          rows=rows_of())
    def simple(self, kind: str, rows) -> None:
        self._compare(kind, rows)

    @rule(kind=st.sampled_from(["escrow_lock", "escrow_release", "escrow_refund"]), rows=rows_of())
    def escrow(self, kind: str, rows) -> None:
        self._compare(kind, rows)

    @rule(kind=st.sampled_from(sorted(SLASH)), rows=rows_of())
    def slash(self, kind: str, rows) -> None:
        self._compare(kind, rows)

    @rule(share=st.sampled_from([0, 333_333_333, 800_000_000, 10**9]), rows=st.data(), keep_alive=keep)
    def fee(self, share: int, rows, keep_alive: bool) -> None:
        batch = rows.draw(rows_of(share))
        self._compare("fee", [r[:4] + (keep_alive,) for r in batch])

    @rule(rows=rows_of(), keep_alive=keep)
    def burn(self, rows, keep_alive: bool) -> None:
        self._compare("burn", [r[:4] + (keep_alive,) for r in rows])

    @rule(rows=st.lists(st.tuples(st.sampled_from(KINDS), accounts, accounts, amounts, escrow_ids, keep),
                        max_size=8))
    def mixed(self, rows) -> None:
        """One ``apply`` over rows of different kinds equals the rows one at a time, in order."""
        if not rows:
            return
        fixed = [(k, a, b, x, (800_000_000 if k == "fee" else z), ka) for k, a, b, x, z, ka in rows]
        ok, moved = self.ledger.apply([r[0] for r in fixed], [r[1] for r in fixed], [r[2] for r in fixed],
                                      [r[3] for r in fixed], [r[4] for r in fixed], [r[5] for r in fixed])
        expect = [self.model.row(*r) for r in fixed]
        assert ok.tolist() == [e[0] for e in expect]
        assert moved.tolist() == [e[1] for e in expect]

    @invariant()
    def books_balance(self) -> None:
        if hasattr(self, "ledger"):
            self.ledger.check()
            assert_same(self.ledger, self.model)


LedgerMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=20, deadline=None,
                                           derandomize=True, database=None,
                                           suppress_health_check=[HealthCheck.too_slow])
TestLedgerMachine = LedgerMachine.TestCase


# --------------------------------------------------------------------------------------------------
# Exact arithmetic
# --------------------------------------------------------------------------------------------------


def funded(amounts: list[int], ed: int = 1, **kw) -> Ledger:
    ledger = Ledger(LedgerParams(existential_deposit=ed, **kw))
    ledger.create_accounts(len(amounts))
    assert ledger.genesis(amounts).all()
    return ledger


def test_fee_split_is_exact_and_matches_fees_module():
    fees = [0, 1, 7, 999_999_999, 10**9 + 1, 123_456_789_012_345_678]
    ledger = funded([f + 10 for f in fees])
    assert ledger.pay_fee(np.arange(6), fees, 0.8).all()
    # hand values: ⌊0.8·fee⌋
    expected_t = [0, 0, 5, 799_999_999, 800_000_000, 98_765_431_209_876_542]
    assert ledger.treasury == sum(expected_t)
    assert ledger.burned == sum(fees) - sum(expected_t)
    t, b = split_fee(np.array(fees), FeeParams(treasury_share=0.8))
    assert t.tolist() == expected_t and (t + b).tolist() == fees
    assert ledger.free.tolist() == [10] * 6
    assert ledger.stats().loc["fee", "amount"] == sum(fees)
    ledger.check()


def test_perbill_of_equals_python_integer_floor():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2**63 - 1, 2000, dtype=np.int64)
    ppb = rng.integers(0, 10**9 + 1, 2000, dtype=np.int64)
    got = perbill_of(x, ppb)
    assert got.tolist() == [int(a) * int(p) // 10**9 for a, p in zip(x, ppb, strict=True)]


def test_exact_sum_beyond_int64():
    x = np.array([2**62, 2**62, 2**62, 2**63 - 1, -(2**63)], dtype=np.int64)
    assert exact_sum(x) == 3 * 2**62 + 2**63 - 1 - 2**63
    assert exact_sum(np.zeros(0, np.int64)) == 0


def test_slash_returns_exactly_the_amounts_moved():
    ledger = funded([1_000, 1_000])
    ledger.stake([0, 1], [500, 300])
    ledger.reserve(1, 200)
    # sequential in one batch: 300 then what is left (200) then nothing
    got = ledger.slash([0, 0, 0], [300, 300, 300], "staked", "treasury")
    assert got.tolist() == [300, 200, 0]
    assert ledger.treasury == 500 and ledger.staked.tolist() == [0, 300]
    got = ledger.slash([1, 1], [250, 10**18], "reserved", "burn")
    assert got.tolist() == [200, 0]
    assert ledger.burned == 200 and ledger.reserved.tolist() == [0, 0]
    assert ledger.slash([1, 5, -1, 1], [-3, 10, 10, 100], "staked", "burn").tolist() == [0, 0, 0, 100]
    assert ledger.burned == 300 and ledger.total_issuance == 1_700
    stats = ledger.stats()
    assert stats.loc["slash_staked_treasury", "amount"] == 500
    assert stats.loc["slash_reserved_burn", "amount"] == 200
    assert stats.loc["slash_staked_burn", "failed"] == 3
    ledger.check()
    with pytest.raises(ValueError, match="slash"):
        ledger.slash(0, 1, "free", "treasury")


# --------------------------------------------------------------------------------------------------
# Existential deposit
# --------------------------------------------------------------------------------------------------


def test_ed_reaping_burns_dust_and_records_it():
    ledger = funded([150, 0, 0], ed=100)
    assert not ledger.transfer(0, 1, 60, keep_alive=True).any()  # would kill the sender
    assert ledger.transfer(0, 1, 60).tolist() == [False]  # 60 would open account 1 below ED
    assert ledger.transfer(0, 1, 100).tolist() == [True]  # 50 left: reaped
    assert ledger.free.tolist() == [0, 100, 0]
    assert ledger.burned == ledger.dust_burned == 50 and ledger.n_reaped == 1
    assert ledger.total_issuance == 100
    assert ledger.stats().loc["reap", "count"] == 1 and ledger.stats().loc["reap", "amount"] == 50
    assert not ledger.exists()[0] and ledger.exists()[1]
    # a reaped id can be opened again with at least ED
    assert ledger.mint([0, 2], [99, 100]).tolist() == [False, True]
    ledger.check()


def test_holds_keep_an_account_alive_until_the_last_hold_goes():
    ledger = funded([180, 500], ed=100)
    assert ledger.stake(0, 150).all()  # free 30 < ED but staked: exists
    assert ledger.free[0] == 30 and ledger.exists()[0]
    ledger.check()
    assert ledger.slash(0, 100).tolist() == [100]  # 50 staked left: still alive, dust kept
    assert ledger.free[0] == 30 and ledger.dust_burned == 0
    assert ledger.transfer(1, 0, 5).all()  # credit to an account alive by holds is fine
    assert ledger.slash(0, 80, to="burn").tolist() == [50]  # last hold gone: 35 dust reaped
    assert ledger.free[0] == 0 and ledger.staked[0] == 0
    assert ledger.dust_burned == 35 and ledger.burned == 85 and ledger.treasury == 100
    # unstaking the last hold into free dust reaps too
    ledger2 = funded([150], ed=100)
    ledger2.stake(0, 100)
    ledger2.burn(0, 50)  # free 0, staked 100: alive by the hold
    assert ledger2.slash(0, 50).tolist() == [50]
    assert ledger2.unstake(0, 20).all() and ledger2.free[0] == 20  # staked 30 left: alive
    assert ledger2.unstake(0, 30).all()  # free 50, no holds: reaped
    assert ledger2.free[0] == 0 and ledger2.dust_burned == 50 and ledger2.total_issuance == ledger2.treasury == 50
    ledger2.check()


def test_fee_keeps_payer_alive_by_default():
    ledger = funded([150], ed=100)
    assert not ledger.pay_fee(0, 60, 0.5).any()
    assert ledger.pay_fee(0, 50, 0.5).all() and ledger.free[0] == 100
    assert ledger.pay_fee(0, 60, 0.5, keep_alive=False).all()
    assert ledger.free[0] == 0 and ledger.dust_burned == 40
    assert ledger.treasury == 25 + 30 and ledger.burned == 25 + 30 + 40
    ledger.check()


# --------------------------------------------------------------------------------------------------
# Sequential batches
# --------------------------------------------------------------------------------------------------


def test_duplicate_sources_apply_in_order():
    ledger = funded([100, 0, 0])
    assert ledger.transfer([0, 0], [1, 2], [70, 70]).tolist() == [True, False]
    assert ledger.free.tolist() == [30, 70, 0]
    # money received earlier in a batch can be spent later in it
    assert ledger.transfer([1, 2, 2], [2, 0, 1], [70, 70, 1]).tolist() == [True, True, False]
    assert ledger.free.tolist() == [100, 0, 0]
    # escrow lock then release in one mixed batch
    ok, moved = ledger.apply(["escrow_lock", "escrow_release", "escrow_release"], [0, 0, 0], [-1, 1, 2],
                             [40, 40, 1], [7, 7, 7])
    assert ok.tolist() == [True, True, False] and moved.tolist() == [40, 40, 0]
    assert ledger.free.tolist() == [60, 40, 0]
    ledger.check()


def model_transfers(free: list[int], src, dst, amt, keep, ed: int) -> tuple[list[bool], list[int], int]:
    """Sequential transfers on free balances only (no holds): plain Python, one at a time."""
    free = list(free)
    ok = []
    dust = 0
    for s, d, x, ka in zip(src, dst, amt, keep, strict=True):
        good = 0 <= x <= free[s] and (s == d or not (0 < free[d] + x < ed)) \
            and not (ka and s != d and x > 0 and free[s] - x < ed)
        ok.append(good)
        if good and s != d:
            free[s] -= x
            free[d] += x
            if 0 < free[s] < ed:
                dust += free[s]
                free[s] = 0
    return ok, free, dust


def test_vectorised_batch_of_100k_matches_sequential_model():
    rng = np.random.default_rng(11)
    n, m, ed = 2_000, 100_000, 1_000
    start = rng.integers(0, 200_000, n)
    start[start < ed] = 0
    ledger = funded(start.tolist(), ed=ed)
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    amt = rng.integers(0, 60_000, m)
    amt[rng.random(m) < 0.01] = -5
    keep = rng.random(m) < 0.3
    ok, _ = ledger.apply("transfer", src, dst, amt, keep_alive=keep)
    m_ok, m_free, m_dust = model_transfers(start.tolist(), src.tolist(), dst.tolist(), amt.tolist(),
                                           keep.tolist(), ed)
    assert ok.tolist() == m_ok
    assert ledger.free.tolist() == m_free
    assert ledger.dust_burned == m_dust
    assert 0.2 < ok.mean() < 0.9 and m_dust > 0  # the sample exercises failures and reaping
    ledger.check()


# --------------------------------------------------------------------------------------------------
# Escrow ids, issuance cap, inputs
# --------------------------------------------------------------------------------------------------


def test_tracked_escrows_protect_each_others_funds():
    ledger = funded([1_000, 1_000, 0])
    assert ledger.escrow_lock([0, 0, 1, 0], [300, 100, 50, 200], [3, 3, 3, -1]).tolist() == [True, True, False, True]
    assert ledger.escrow_balance(3) == 400 and ledger.escrow_owner(3) == 0 and ledger.escrowed[0] == 600
    assert not ledger.escrow_release(2, 1, 10, 3).any()  # not the owner
    assert not ledger.escrow_release(2, 0, 401, 3).any()  # more than the escrow holds
    assert not ledger.escrow_refund(0, 201).any()  # untracked part is only 200
    assert ledger.escrow_release(2, 0, 400, 3).all()
    assert ledger.escrow_owner(3) == -1 and ledger.free.tolist() == [400, 1_000, 400]
    assert ledger.escrow_lock(1, 50, 3).all() and ledger.escrow_owner(3) == 1  # drained id reused
    assert not ledger.escrow_lock(0, 1, 1 << 24).any()  # beyond max_escrow_id
    ledger.check()


def test_issuance_cap_and_huge_amounts():
    ledger = funded([600, 0], max_issuance=1_000)
    assert ledger.mint([1, 1], [500, 400]).tolist() == [False, True]
    assert ledger.total_issuance == 1_000
    assert not ledger.transfer(0, 1, 2**63 - 1).any()
    assert not ledger.mint(0, 2**63 - 1).any()
    assert ledger.burn(0, 300).all() and ledger.mint(1, 300).all()
    assert ledger.total_issuance == 1_000 and ledger.minted == 700 and ledger.burned == 300
    ledger.check()


def test_treasury_spend_is_bounded_by_the_treasury():
    ledger = funded([1_000, 0])
    ledger.pay_fee(0, 500, 1.0)
    assert ledger.treasury_spend([1, 1], [300, 300]).tolist() == [True, False]
    assert ledger.treasury == 200 and ledger.free.tolist() == [500, 300]
    ledger.check()


def test_bad_inputs_raise():
    ledger = funded([10, 10])
    with pytest.raises(TypeError, match="integers"):
        ledger.transfer(0, 1, 1.5)
    with pytest.raises(ValueError, match="lengths"):
        ledger.transfer([0, 1], [1, 0, 1], [1, 1])
    with pytest.raises(ValueError, match="treasury_share"):
        ledger.pay_fee(0, 1, 1.5)
    with pytest.raises(ValueError, match="unknown movement kind"):
        ledger.apply("teleport", 0, 1, 1)
    with pytest.raises(ValueError, match="codes"):
        ledger.apply(99, 0, 1, 1)
    with pytest.raises(ValueError, match="existential_deposit"):
        LedgerParams(existential_deposit=0)
    assert ledger.transfer([], [], []).shape == (0,)
    with pytest.raises(ValueError, match="read-only"):
        ledger.free[0] = 5


# --------------------------------------------------------------------------------------------------
# Invariant check and supply recording
# --------------------------------------------------------------------------------------------------


def test_check_names_the_broken_invariant():
    ledger = funded([500, 500], ed=100)
    ledger.check()
    ledger._bal[1, 0] = -1
    with pytest.raises(LedgerInvariantError, match=r"\(a\) negative balance: account 1 free = -1"):
        ledger.check()
    ledger._bal[1, 0] = 501
    with pytest.raises(LedgerInvariantError, match=r"\(b\).*= 1001 ≠ total_issuance 1000 \(difference 1\)"):
        ledger.check()
    ledger._bal[1, 0] = 500
    ledger.burned += 7
    with pytest.raises(LedgerInvariantError, match=r"\(c\).*difference 7"):
        ledger.check()
    ledger.burned -= 7
    ledger._bal[0, 0], ledger._bal[1, 0] = 50, 950
    with pytest.raises(LedgerInvariantError, match=r"\(d\) dust account 0"):
        ledger.check()
    ledger._bal[0, 0], ledger._bal[1, 0] = 500, 500
    assert ledger.escrow_lock(1, 200, 2).all()
    ledger.check()
    ledger._esc_amt[2] += 1
    with pytest.raises(LedgerInvariantError, match=r"\(e\) account 1: tracked escrows sum to 201"):
        ledger.check()


def test_supply_recorder_gives_contract_columns():
    assert SUPPLY_SCHEMA == schemas.SUPPLY
    ledger = funded([10**15, 10**15, 0], ed=10**10)
    rec = SupplyRecorder(ledger, capacity=1, check=True)
    rec.record(1)
    ledger.stake(0, 4 * 10**14)
    ledger.reserve(1, 10**14)
    ledger.escrow_lock(1, 2 * 10**14, 0)
    ledger.pay_fee(0, 10**12, 0.8)
    ledger.mint(2, 5 * 10**12)
    rec.record(2)
    df = rec.frame()
    assert list(df.columns) == list(SUPPLY_SCHEMA)
    assert all(str(df[c].dtype) == "int64" for c in df.columns)
    assert df["block"].tolist() == [1, 2]
    last = df.iloc[-1]
    assert last["staked"] == 4 * 10**14 and last["reserved"] == 10**14 and last["escrowed"] == 2 * 10**14
    assert last["treasury"] == 8 * 10**11 and last["burned"] == 2 * 10**11 and last["minted"] == 5 * 10**12
    assert last["total_issuance"] == 2 * 10**15 + 5 * 10**12 - 2 * 10**11
    assert (df["free"] + df["reserved"] + df["escrowed"] + df["staked"] + df["treasury"]
            == df["total_issuance"]).all()
    assert len(rec) == 2


def test_kind_codes_are_stable():
    assert KINDS[KIND_CODE["transfer"]] == "transfer" and len(KIND_CODE) == len(KINDS) == 17


def test_snapshot_totals_are_the_accounts_sums_after_every_kind_of_movement():
    """The column totals the kernel keeps (what a supply snapshot reports, without a scan) equal the
    accounts' exact sums after random batches of every movement kind, failed rows and reaped dust
    included; corrupting one is caught by check() as invariant (f)."""
    rng = np.random.default_rng(9)
    ledger = funded([10**15] * 6 + [150, 0], ed=100)
    # (sure to happen: account 6's transfer leaves 51 < ED, reaped; a tracked escrow lock and release)
    ledger.apply(["transfer", "escrow_lock", "escrow_release"], [6, 0, 0], [5, -1, 1], [99, 10**12, 10**11],
                 [-1, 3, 3], [False, True, True])
    for _ in range(60):
        m = int(rng.integers(1, 12))
        kinds = [KINDS[int(k)] for k in rng.integers(0, len(KINDS), m)]
        ledger.apply(kinds, rng.integers(-1, 9, m), rng.integers(-1, 9, m),
                     rng.choice([0, 1, 99, 101, 10**12, 10**14, 2 * 10**15], m),
                     np.where(np.array(kinds) == "fee", 800_000_000, rng.integers(-1, 5, m)),
                     rng.random(m) < 0.5)
        hi, lo, _, _, _ = _scan(ledger._bal, np.int64(ledger._n), np.int64(ledger.ed))
        snap = ledger.snapshot(0)
        assert [snap[c] for c in ("free", "reserved", "escrowed", "staked")] == \
            [(int(hi[c]) << 32) + int(lo[c]) for c in range(4)]
        ledger.check()
    assert ledger.counts("reap")[0] > 0 and ledger.counts("escrow_lock")[0] > 0  # (exercised)
    ledger._state[2 + 3] += 1
    with pytest.raises(LedgerInvariantError, match=r"\(f\) running total of staked"):
        ledger.check()


@pytest.mark.parametrize(("fee", "tip", "author", "free"), [
    (10**9, 5 * 10**8, 2, 10**13),        # both paid
    (10**9, 0, -1, 10**13),               # no author: the tip row fails
    (10**13, 10**8, 2, 10**13),           # keep-alive refuses the fee, the tip is paid
    (10**13 - 10**10 + 1, 10**8, 2, 10**13),  # the fee would leave dust: refused
    (2 * 10**13, 0, 2, 10**13),           # insufficient funds
])
def test_pay_fee_and_tip_is_the_two_row_batch(fee: int, tip: int, author: int, free: int) -> None:
    """``pay_fee_and_tip`` = ``apply_prepared([fee, transfer], …)``: balances, protocol totals and statistics."""
    from ainur_sim.chain.balances import OP_FEE, OP_TRANSFER
    ledgers = []
    for _ in range(2):
        led = Ledger()
        led.create_accounts(3)
        led.genesis([free, 10**12, 10**12])
        led.stake(2, 10**11)
        ledgers.append(led)
    ppb = 200_000_000
    ok, _ = ledgers[0].apply_prepared(np.array([OP_FEE, OP_TRANSFER]), np.array([0, 0]), np.array([-1, author]),
                                      np.array([fee, tip]), np.array([ppb, -1]), np.array([1]), escrow_locks=False)
    assert ledgers[1].pay_fee_and_tip(0, author, fee, tip, ppb) == tuple(ok.tolist())
    a, b = ledgers
    assert np.array_equal(a.free, b.free) and np.array_equal(a.staked, b.staked)
    assert (a.treasury, a.burned, a.total_issuance, a.n_reaped) == (b.treasury, b.burned, b.total_issuance, b.n_reaped)
    assert a.stats().equals(b.stats())
