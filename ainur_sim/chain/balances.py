"""The ledger: every token of the chain, in integer base units, in one place (DESIGN §7).

Pure bookkeeping, no kernel. Accounts are integer indices ``0..n−1`` (agents, validators, protocol
accounts), created in batches. Each account has four balances, int64 numpy columns in base units
(1 token = 10^12 units):

* ``free``      — spendable;
* ``reserved``  — held deposits (DID deposits, dispute bonds, …);
* ``escrowed``  — task escrow locked by the account, released to someone else or refunded;
* ``staked``    — reputation / validator stake, slashable.

Protocol-level amounts (Python ints): ``treasury`` (a balance), ``burned`` (cumulative: burns, the
burned part of fees, slashes to burn and reaped dust), ``minted`` (cumulative mints *after* genesis),
``genesis_issuance`` (cumulative endowments by :meth:`Ledger.genesis`) and ``total_issuance``.

**Movements.** Every change is a movement between two of these places, applied by one Numba loop over
a batch of rows. Rows are applied *sequentially, in the given order*, exactly as if one at a time: a row
sees the balances left by the rows before it, so two transfers from the same account in one batch
succeed only while funds last, and money received early in a batch can be spent later in it. Each row
either happens completely or not at all (a failed row changes nothing); only slashes are partial by
nature (they take what is there, up to the amount). A row fails on: a negative amount, an unknown
account (id < 0 or ≥ n), insufficient funds, the existential-deposit rules below, the issuance cap, or
an escrow-id mismatch. Scalars broadcast against arrays; every method returns arrays of the batch
length (a boolean mask of success, or the amounts slashed). Amount 0 succeeds and changes nothing.

**Existential deposit (ED) — the rule.** Substrate-style (``pallet_balances`` with holds): an account
*exists* while ``free ≥ ED`` or it has any hold (``reserved + escrowed + staked > 0``); holds keep an
account alive like Substrate's consumer references. Hence the invariant: no account has
``holds == 0 and 0 < free < ED``.

1. *Reaping.* After every successful row, the row's debited account is examined; if it has no holds and
   ``0 < free < ED`` it is reaped: the free dust is burned (added to ``burned`` and ``dust_burned``, kind
   ``"reap"`` in the statistics). This covers transfers/fees/burns that leave dust, slashes that take
   the last hold, and unstake/unreserve/refund/release that empty the holds of an account with dust.
2. *No dust creation.* A row crediting ``free`` of *another* account (transfer, escrow release, mint,
   genesis, treasury spend) fails if that account would end with no holds and ``0 < free < ED``
   (Substrate's ``BelowMinimum``): an empty account must be opened with at least ED.
3. *keep_alive.* A debit with ``keep_alive=True`` fails instead of killing the account (exists before,
   not after) — ``transfer_keep_alive`` and Substrate's fee withdrawal (``Preservation::Preserve``).
   ``transfer`` and ``burn`` default to ``keep_alive=False`` (``transfer_allow_death``), ``pay_fee`` to True.

Ids are never reused: a reaped or emptied account keeps its index and can be opened again.

**Overflow.** Total issuance is capped at ``LedgerParams.max_issuance`` ≤ 2^63 − 1 (≈ 9.22 M tokens at
10^12 units/token, the range of the int64 columns of ``supply.parquet``); a mint or genesis row beyond
the cap fails. Because every balance is non-negative and part of the issuance, no per-account balance,
column sum, treasury or in-batch credit can then overflow int64. Cumulative counters (``burned``,
``minted``, per-kind amounts) are Python ints, and :meth:`Ledger.check` sums columns exactly with a
32-bit split (no reliance on the bound it is checking).

**Escrow ids.** ``escrow_lock``/``escrow_release``/``escrow_refund`` take an optional ``escrow_id``: a
small non-negative integer (e.g. a task id; ids are dense array indices, < ``max_escrow_id``). A tracked
escrow has one owner and an amount; a release or refund of it must name the account that currently
owns it (a drained id has no owner) and cannot exceed its amount; untracked (``escrow_id = −1``)
releases and refunds cannot touch tracked funds. A fully drained escrow id can be reused by another owner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from ainur_sim.record import ColumnStore

INT64_MAX: int = 2**63 - 1
PERBILL: int = 10**9
"""Parts per billion in one (Substrate ``Perbill``)."""

# Columns of the account table (the last one is a sub-ledger, not money: tracked escrow per owner).
FREE, RESERVED, ESCROWED, STAKED, ESCROW_TRACKED = 0, 1, 2, 3, 4
_N_COLS = 5
_SUM = 2  # the kernel's state holds Σ column c (FREE … STAKED) at index _SUM + c

# Movement kinds. The code is the row's ``op``; ``a`` is the account debited (or credited, for
# mint/genesis/treasury spend), ``b`` the account credited by transfer/escrow release, ``aux`` the
# escrow id (escrow kinds) or the treasury share in parts per billion (fee).
KINDS: tuple[str, ...] = (
    "transfer", "reserve", "unreserve", "escrow_lock", "escrow_release", "escrow_refund", "stake",
    "unstake", "slash_staked_treasury", "slash_staked_burn", "slash_reserved_treasury",
    "slash_reserved_burn", "fee", "mint", "burn", "treasury_spend", "genesis",
)
KIND_CODE: dict[str, int] = {k: i for i, k in enumerate(KINDS)}
(OP_TRANSFER, OP_RESERVE, OP_UNRESERVE, OP_ESCROW_LOCK, OP_ESCROW_RELEASE, OP_ESCROW_REFUND, OP_STAKE,
 OP_UNSTAKE, OP_SLASH_STAKED_TREASURY, OP_SLASH_STAKED_BURN, OP_SLASH_RESERVED_TREASURY,
 OP_SLASH_RESERVED_BURN, OP_FEE, OP_MINT, OP_BURN, OP_TREASURY_SPEND, OP_GENESIS) = range(len(KINDS))

SUPPLY_SCHEMA: dict[str, str] = {
    "block": "int64",
    "free": "int64",
    "reserved": "int64",
    "escrowed": "int64",
    "staked": "int64",
    "treasury": "int64",
    "burned": "int64",
    "minted": "int64",
    "total_issuance": "int64",
}
"""Columns of ``supply.parquet`` (CONTRACT.md), one row per finalized block, base units."""


class LedgerInvariantError(AssertionError):
    """The ledger's books do not balance (a bug in the ledger or in code that bypassed it)."""


@dataclass(frozen=True)
class LedgerParams:
    """Ledger parameters (amounts in integer base units, 1 token = 10^12 units).

    ``existential_deposit``: 10^10 units = 0.01 token by default — an order between Kusama's
    (≈ 3.3·10^-5 KSM) and Polkadot's (1 DOT); it prices a throw-away account. ``max_issuance``: cap on
    total issuance (≤ 2^63 − 1, see the module docstring). ``max_escrow_id``: escrow ids must be below it
    (they index a dense array). ``initial_capacity``: accounts preallocated (the table grows by doubling).
    """

    existential_deposit: int = 10**10
    max_issuance: int = INT64_MAX
    max_escrow_id: int = 1 << 24
    initial_capacity: int = 1024

    def __post_init__(self) -> None:
        if not isinstance(self.existential_deposit, int | np.integer) or self.existential_deposit < 1:
            raise ValueError(f"ledger.existential_deposit must be an integer ≥ 1, got {self.existential_deposit!r}")
        if not 0 < int(self.max_issuance) <= INT64_MAX:
            raise ValueError(f"ledger.max_issuance must be in (0, 2^63 − 1], got {self.max_issuance}")
        if int(self.max_escrow_id) < 1:
            raise ValueError(f"ledger.max_escrow_id must be ≥ 1, got {self.max_escrow_id}")
        if int(self.initial_capacity) < 1:
            raise ValueError(f"ledger.initial_capacity must be ≥ 1, got {self.initial_capacity}")


# --------------------------------------------------------------------------------------------------
# Integer helpers
# --------------------------------------------------------------------------------------------------


def perbill_of(amount: np.ndarray | int, ppb: np.ndarray | int) -> np.ndarray:
    """⌊amount · ppb / 10^9⌋ without overflow for 0 ≤ amount ≤ 2^63 − 1 and 0 ≤ ppb ≤ 10^9 (int64).

    The same split as ``fees.split_fee``: quotient and remainder by 10^9 are scaled separately.
    """
    x = np.asarray(amount, dtype=np.int64)
    p = np.asarray(ppb, dtype=np.int64)
    q, r = np.divmod(x, np.int64(PERBILL))
    return q * p + (r * p) // np.int64(PERBILL)


def perbill_int(amount: int, ppb: int) -> int:
    """:func:`perbill_of` of one amount as a Python int (the same integer formula, no arrays)."""
    x, p = int(amount), int(ppb)
    if not (0 <= x <= INT64_MAX and 0 <= p <= PERBILL):
        return int(perbill_of(x, p))
    return (x // PERBILL) * p + (x % PERBILL) * p // PERBILL


def share_to_ppb(share: float) -> int:
    """A share in [0, 1] as parts per billion, rounded as ``fees.split_fee`` does."""
    s = float(share)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"treasury_share must be in [0, 1], got {share}")
    return int(round(s * PERBILL))


def exact_sum(x: np.ndarray) -> int:
    """Exact sum of an int64 array as a Python int (no int64 overflow; negatives allowed).

    Each value is split as ``hi·2^32 + lo`` with ``0 ≤ lo < 2^32``; the two partial sums fit int64 for
    fewer than 2^31 values.
    """
    v = np.asarray(x, dtype=np.int64).ravel()
    if v.size <= 256:  # small batches: Python ints directly
        return sum(v.tolist())
    hi = int(np.sum(v >> np.int64(32)))
    lo = int(np.sum(v & np.int64(0xFFFFFFFF)))
    return (hi << 32) + lo


# --------------------------------------------------------------------------------------------------
# The movement kernel (sequential semantics)
# --------------------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _at(x, i):
    """Row ``i`` of ``x``, or its only element when it has length 1 (scalar broadcast)."""
    return x[0] if x.shape[0] == 1 else x[i]


@numba.njit(cache=True, inline="always")
def _holds(bal, i):
    return bal[i, RESERVED] + bal[i, ESCROWED] + bal[i, STAKED]


@numba.njit(cache=True, inline="always")
def _can_debit_free(bal, s, x, keep_alive, ed):
    """``x`` can leave ``s``'s free balance (and, with keep_alive, ``s`` keeps existing)."""
    f = bal[s, FREE]
    if f < x:
        return False
    return not (keep_alive and x > 0 and _holds(bal, s) == 0 and f - x < ed)


@numba.njit(cache=True, inline="always")
def _can_credit_free(bal, d, x, ed):
    """Crediting ``x`` to ``d``'s free balance does not create a dust account."""
    nf = bal[d, FREE] + x
    return not (0 < nf < ed and _holds(bal, d) == 0)


@numba.njit(cache=True)
def _apply(bal, n, ed, op, a, b, amount, aux, keep, state, esc_amt, esc_owner, ok, moved, dust):  # noqa: C901
    """Apply movement rows in order. ``state = [treasury, issuance headroom, Σ free, Σ reserved, Σ escrowed,
    Σ staked]`` (int64, updated: the column totals move with every row, so a snapshot needs no scan).

    Writes per row: ``ok`` (applied), ``moved`` (amount moved; for slashes the amount taken) and
    ``dust`` (free dust burned by reaping the debited account after the row).
    """
    m = ok.shape[0]
    n_esc = esc_amt.shape[0]
    for i in range(m):
        o = _at(op, i)
        s = _at(a, i)
        d = _at(b, i)
        x = _at(amount, i)
        z = _at(aux, i)
        ka = _at(keep, i) != 0
        ok[i] = False
        moved[i] = 0
        dust[i] = 0
        if x < 0 or s < 0 or s >= n:
            continue
        took = x
        if o == OP_TRANSFER:
            if d < 0 or d >= n:
                continue
            if d == s:  # to oneself: needs the funds, changes nothing
                if bal[s, FREE] < x:
                    continue
            else:
                if not _can_debit_free(bal, s, x, ka, ed) or not _can_credit_free(bal, d, x, ed):
                    continue
                bal[s, FREE] -= x
                bal[d, FREE] += x
        elif o in (OP_RESERVE, OP_STAKE):
            if bal[s, FREE] < x:
                continue
            col = RESERVED if o == OP_RESERVE else STAKED
            bal[s, FREE] -= x
            bal[s, col] += x
            state[_SUM + FREE] -= x
            state[_SUM + col] += x
        elif o in (OP_UNRESERVE, OP_UNSTAKE):
            col = RESERVED if o == OP_UNRESERVE else STAKED
            if bal[s, col] < x:
                continue
            bal[s, col] -= x
            bal[s, FREE] += x
            state[_SUM + col] -= x
            state[_SUM + FREE] += x
        elif o == OP_ESCROW_LOCK:
            if bal[s, FREE] < x:
                continue
            if z != -1:
                if z < 0 or z >= n_esc or (esc_owner[z] != -1 and esc_owner[z] != s):
                    continue
                if x > 0:
                    esc_owner[z] = s
                    esc_amt[z] += x
                    bal[s, ESCROW_TRACKED] += x
            bal[s, FREE] -= x
            bal[s, ESCROWED] += x
            state[_SUM + FREE] -= x
            state[_SUM + ESCROWED] += x
        elif o in (OP_ESCROW_RELEASE, OP_ESCROW_REFUND):
            if o == OP_ESCROW_REFUND:
                d = s
            if d < 0 or d >= n:
                continue
            if z == -1:
                if bal[s, ESCROWED] - bal[s, ESCROW_TRACKED] < x:
                    continue
            elif z < 0 or z >= n_esc or esc_owner[z] != s or esc_amt[z] < x:
                continue
            if d != s and not _can_credit_free(bal, d, x, ed):
                continue
            if z != -1 and x > 0:
                esc_amt[z] -= x
                bal[s, ESCROW_TRACKED] -= x
                if esc_amt[z] == 0:
                    esc_owner[z] = -1
            bal[s, ESCROWED] -= x
            bal[d, FREE] += x
            state[_SUM + ESCROWED] -= x
            state[_SUM + FREE] += x
        elif OP_SLASH_STAKED_TREASURY <= o <= OP_SLASH_RESERVED_BURN:  # the four slash kinds
            col = STAKED if o <= OP_SLASH_STAKED_BURN else RESERVED
            took = min(x, bal[s, col])
            bal[s, col] -= took
            state[_SUM + col] -= took
            if (o - OP_SLASH_STAKED_TREASURY) % 2 == 0:  # to treasury
                state[0] += took
            else:
                state[1] += took
        elif o == OP_FEE:
            if z < 0 or z > PERBILL or not _can_debit_free(bal, s, x, ka, ed):
                continue
            t = (x // PERBILL) * z + ((x % PERBILL) * z) // PERBILL
            bal[s, FREE] -= x
            state[_SUM + FREE] -= x
            state[0] += t
            state[1] += x - t
        elif o in (OP_MINT, OP_GENESIS):
            if x > state[1] or not _can_credit_free(bal, s, x, ed):
                continue
            bal[s, FREE] += x
            state[1] -= x
            state[_SUM + FREE] += x
        elif o == OP_BURN:
            if not _can_debit_free(bal, s, x, ka, ed):
                continue
            bal[s, FREE] -= x
            state[1] += x
            state[_SUM + FREE] -= x
        elif o == OP_TREASURY_SPEND:
            if x > state[0] or not _can_credit_free(bal, s, x, ed):
                continue
            state[0] -= x
            bal[s, FREE] += x
            state[_SUM + FREE] += x
        else:
            continue
        ok[i] = True
        moved[i] = took
        f = bal[s, FREE]
        if 0 < f < ed and _holds(bal, s) == 0:
            bal[s, FREE] = 0
            dust[i] = f
            state[1] += f
            state[_SUM + FREE] -= f


@numba.njit(cache=True)
def _scan(bal, n, ed):
    """One pass over accounts ``0..n−1``: exact column sums and the first violations.

    Returns ``(hi, lo, neg, dust, over)``: column sums as ``Σ hi·2^32 + Σ lo`` (each value split as
    ``hi·2^32 + lo``, ``0 ≤ lo < 2^32``, so neither partial sum overflows for n < 2^31); and per check
    ``[first account or −1, count]`` for negative entries, dust accounts, and tracked escrow > escrowed.
    """
    hi = np.zeros(_N_COLS, np.int64)
    lo = np.zeros(_N_COLS, np.int64)
    neg = np.array([-1, 0], np.int64)
    dust = np.array([-1, 0], np.int64)
    over = np.array([-1, 0], np.int64)
    mask = np.int64(0xFFFFFFFF)
    for i in range(n):
        bad = False
        for c in range(_N_COLS):
            v = bal[i, c]
            hi[c] += v >> 32
            lo[c] += v & mask
            if v < 0:
                bad = True
        if bad:
            if neg[0] < 0:
                neg[0] = i
            neg[1] += 1
        f = bal[i, FREE]
        if 0 < f < ed and bal[i, RESERVED] + bal[i, ESCROWED] + bal[i, STAKED] == 0:
            if dust[0] < 0:
                dust[0] = i
            dust[1] += 1
        if bal[i, ESCROW_TRACKED] > bal[i, ESCROWED]:
            if over[0] < 0:
                over[0] = i
            over[1] += 1
    return hi, lo, neg, dust, over


# --------------------------------------------------------------------------------------------------
# The ledger
# --------------------------------------------------------------------------------------------------


def _ints(x: object, name: str) -> np.ndarray:
    """A 1-D int64 array from an integer scalar or array; floats and booleans are refused."""
    if type(x) is int or isinstance(x, np.integer):  # fast path for scalars (np.int64 raises on overflow)
        return np.array([x], dtype=np.int64)
    if type(x) is np.ndarray and x.dtype == np.int64 and x.ndim == 1 and x.flags.c_contiguous:
        return x  # already what the kernel takes (it never writes its inputs)
    arr = np.asarray(x)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu" and not (arr.dtype == object and all(isinstance(v, int) for v in arr.flat)):
        raise TypeError(f"{name} must be integers (base units / account ids), got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > INT64_MAX:
        raise OverflowError(f"{name} exceeds int64")
    out = np.ascontiguousarray(np.atleast_1d(arr).astype(np.int64))
    if out.ndim != 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {arr.shape}")
    return out


_SMALL_BATCH = 32
"""Batches up to this many rows are accounted in Python ints (cheaper than array passes)."""
_KEEP_ALIVE = {False: np.zeros(1, dtype=np.int64), True: np.ones(1, dtype=np.int64)}
_OP_ARRAYS = [np.array([k], dtype=np.int64) for k in range(len(KINDS))]
_N_KINDS = len(KINDS)
_PAIR_OPS = np.array([OP_FEE, OP_TRANSFER], dtype=np.int64)


class Ledger:
    """All balances of the chain, moved only by recorded, batch-vectorised movements.

    See the module docstring for the sequential batch semantics, the existential-deposit rule and the
    overflow bound. Amounts are integer base units (1 token = 10^12 units).
    """

    def __init__(self, params: LedgerParams | None = None) -> None:
        self.params = params or LedgerParams()
        self.ed = int(self.params.existential_deposit)
        self.max_issuance = int(self.params.max_issuance)
        self._n = 0
        self._bal = np.zeros((int(self.params.initial_capacity), _N_COLS), dtype=np.int64)
        self._esc_amt = np.zeros(0, dtype=np.int64)
        self._esc_owner = np.zeros(0, dtype=np.int64)
        #: [treasury, issuance headroom = max_issuance − total_issuance, Σ free, Σ reserved, Σ escrowed,
        #: Σ staked], updated by the kernel (each total ≤ total_issuance ≤ max_issuance: no int64 overflow)
        self._state = np.array([0, self.max_issuance, 0, 0, 0, 0], dtype=np.int64)
        self.burned = 0
        """Cumulative burned (burns, burned fee parts, slashes to burn, reaped dust), base units."""
        self.dust_burned = 0
        """Part of ``burned`` that is reaped dust, base units."""
        self.minted = 0
        """Cumulative minted after genesis, base units."""
        self.genesis_issuance = 0
        """Cumulative genesis endowments, base units."""
        self.n_reaped = 0
        """Accounts reaped with dust so far."""
        self._count_ok = [0] * (len(KINDS) + 1)  # last slot: "reap" (Python ints: cheap to bump per row)
        self._count_failed = [0] * (len(KINDS) + 1)
        self._amount = [0] * (len(KINDS) + 1)
        #: scratch rows of ``_apply_one``: account a, account b, amount, aux, dust out
        self._one = [np.zeros(1, dtype=np.int64) for _ in range(5)]
        #: scratch rows of ``pay_fee_and_tip``: accounts a, b (b[0] = −1), amounts, aux (aux[1] = −1), ok,
        #: moved, dust
        self._pair = [np.zeros(2, dtype=np.int64), np.full(2, -1, dtype=np.int64), np.zeros(2, dtype=np.int64),
                      np.full(2, -1, dtype=np.int64), np.zeros(2, dtype=np.bool_), np.zeros(2, dtype=np.int64),
                      np.zeros(2, dtype=np.int64)]

    # --- accounts -----------------------------------------------------------------------------------
    @property
    def n_accounts(self) -> int:
        return self._n

    def create_accounts(self, k: int) -> np.ndarray:
        """Create ``k`` empty accounts; returns their ids (contiguous, never reused)."""
        k = int(k)
        if k < 0:
            raise ValueError(f"k must be ≥ 0, got {k}")
        need = self._n + k
        cap = self._bal.shape[0]
        if need > cap:
            while cap < need:
                cap *= 2
            grown = np.zeros((cap, _N_COLS), dtype=np.int64)
            grown[: self._n] = self._bal[: self._n]
            self._bal = grown
        ids = np.arange(self._n, need, dtype=np.int64)
        self._n = need
        return ids

    def _column(self, col: int) -> np.ndarray:
        v = self._bal[: self._n, col]
        v.flags.writeable = False
        return v

    @property
    def free(self) -> np.ndarray:
        """Free balance per account (read-only view, valid until the next ``create_accounts``)."""
        return self._column(FREE)

    @property
    def reserved(self) -> np.ndarray:
        """Reserved balance per account (read-only view)."""
        return self._column(RESERVED)

    @property
    def escrowed(self) -> np.ndarray:
        """Escrowed balance per account (read-only view)."""
        return self._column(ESCROWED)

    @property
    def staked(self) -> np.ndarray:
        """Staked balance per account (read-only view)."""
        return self._column(STAKED)

    def staked_of(self, account: int) -> int:
        """Staked balance of one account (0 for an unknown id), a Python int."""
        return int(self._bal[account, STAKED]) if 0 <= account < self._n else 0

    def total(self) -> np.ndarray:
        """free + reserved + escrowed + staked per account (a new int64 array)."""
        return self._bal[: self._n, :ESCROW_TRACKED].sum(axis=1)

    def exists(self) -> np.ndarray:
        """Per account: it exists (free ≥ ED or any hold)."""
        b = self._bal[: self._n]
        return (b[:, FREE] >= self.ed) | (b[:, RESERVED] + b[:, ESCROWED] + b[:, STAKED] > 0)

    def escrow_balance(self, escrow_id: int) -> int:
        """Amount held under a tracked escrow id (0 for an unknown or drained id)."""
        z = int(escrow_id)
        return int(self._esc_amt[z]) if 0 <= z < self._esc_amt.size else 0

    def escrow_owner(self, escrow_id: int) -> int:
        """Owner account of a tracked escrow id, −1 if unowned."""
        z = int(escrow_id)
        return int(self._esc_owner[z]) if 0 <= z < self._esc_owner.size else -1

    # --- protocol totals ----------------------------------------------------------------------------
    @property
    def treasury(self) -> int:
        """Treasury balance, base units."""
        return int(self._state[0])

    @property
    def total_issuance(self) -> int:
        """All tokens in existence (accounts + treasury), base units."""
        return self.max_issuance - int(self._state[1])

    # --- the one entry point ------------------------------------------------------------------------
    def apply(self, kinds: object, a: object, b: object = -1, amount: object = 0, aux: object = -1,
              keep_alive: object = False) -> tuple[np.ndarray, np.ndarray]:
        """Apply a batch of movement rows, in order; returns ``(ok, moved)`` arrays.

        ``kinds``: op codes (``KIND_CODE``) or kind names, per row or one for all. ``a``: account debited
        (credited for mint/genesis/treasury_spend); ``b``: account credited by transfer/escrow_release;
        ``amount``: base units; ``aux``: escrow id (escrow kinds, −1 untracked) or treasury share in
        parts per billion (fee); ``keep_alive``: per row or one flag. Arguments of length 1 broadcast.
        ``moved`` is the amount moved per row (slashes: the amount taken; failed rows: 0).
        """
        if (type(a) is int and type(kinds) is int and type(b) is int and type(amount) is int and type(aux) is int
                and (keep_alive is True or keep_alive is False) and 0 <= kinds < _N_KINDS):
            return self._apply_one(kinds, a, b, amount, aux, keep_alive)
        op = self._ops(kinds)
        if keep_alive is True or keep_alive is False:
            ka_arr = _KEEP_ALIVE[keep_alive]
        else:
            ka_arr = np.atleast_1d(np.asarray(keep_alive, dtype=bool)).astype(np.int64)
        arrays = [op, _ints(a, "account"), _ints(b, "account"), _ints(amount, "amount"), _ints(aux, "aux"), ka_arr]
        lens = {x.shape[0] for x in arrays}
        m = max(lens)
        if 0 in lens:
            m = 0
        if not lens <= {1, m}:
            raise ValueError(f"batch arguments have incompatible lengths {sorted(lens)}")
        return self.apply_prepared(*arrays)

    def apply_prepared(self, op: np.ndarray, a: np.ndarray, b: np.ndarray, amount: np.ndarray, aux: np.ndarray,
                       keep: np.ndarray, *, escrow_locks: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``apply`` for callers holding the kernel's inputs already: 1-D C-contiguous int64 arrays (op codes,
        accounts, amounts, aux, keep-alive flags 0/1), each of the batch length or of length 1 (broadcast).
        Nothing is converted or validated (the runtime charges fees this way every block). ``escrow_locks=False``
        promises that ``op`` holds no escrow lock (no escrow ids to make room for)."""
        m = max(op.shape[0], a.shape[0], b.shape[0], amount.shape[0], aux.shape[0], keep.shape[0])
        if min(op.shape[0], a.shape[0], b.shape[0], amount.shape[0], aux.shape[0], keep.shape[0]) == 0:
            m = 0
        if m and escrow_locks:
            self._grow_escrows(op, aux)
        ok = np.zeros(m, dtype=np.bool_)
        moved = np.zeros(m, dtype=np.int64)
        dust = np.zeros(m, dtype=np.int64)
        if m:
            _apply(self._bal, np.int64(self._n), np.int64(self.ed), op, a, b, amount, aux, keep, self._state,
                   self._esc_amt, self._esc_owner, ok, moved, dust)
        self._account(op, aux, ok, moved, dust)
        return ok, moved

    def _apply_one(self, op: int, a: int, b: int, amount: int, aux: int, keep_alive: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
        """``apply`` of one row given as Python ints: the same kernel pass and the same accounting as the
        batch path, without its array conversions (most pallet movements are single rows)."""
        one = self._one
        one[0][0] = a  # (an int outside int64 raises OverflowError here, as in ``_ints``)
        one[1][0] = b
        one[2][0] = amount
        one[3][0] = aux
        if op == OP_ESCROW_LOCK and self._esc_amt.size <= aux < self.params.max_escrow_id:
            self._grow_escrows(_OP_ARRAYS[op], one[3])
        ok = np.zeros(1, dtype=np.bool_)
        moved = np.zeros(1, dtype=np.int64)
        dust = one[4]
        _apply(self._bal, np.int64(self._n), np.int64(self.ed), _OP_ARRAYS[op], one[0], one[1], one[2], one[3],
               _KEEP_ALIVE[keep_alive], self._state, self._esc_amt, self._esc_owner, ok, moved, dust)
        if ok[0]:
            self._count_ok[op] += 1
        else:
            self._count_failed[op] += 1
        amt = int(moved[0])
        burned = 0
        if amt:
            self._amount[op] += amt
            if op == OP_MINT:
                self.minted += amt
            elif op == OP_GENESIS:
                self.genesis_issuance += amt
            elif op in (OP_BURN, OP_SLASH_STAKED_BURN, OP_SLASH_RESERVED_BURN):
                burned = amt
            elif op == OP_FEE:
                p = min(max(aux, 0), PERBILL)
                burned = amt - perbill_int(amt, p)
        d = int(dust[0])
        if d:
            burned += self._reaped(1, d)
        if burned:
            self.burned += burned
        return ok, moved

    def pay_fee_and_tip(self, account: int, author: int, fee: int, tip: int, ppb: int) -> tuple[bool, bool]:
        """``apply_prepared([OP_FEE, OP_TRANSFER], [account] * 2, [−1, author], [fee, tip], [ppb, −1], [1])``:
        ``account`` pays ``fee`` (``ppb`` of it to the treasury, keep-alive), then ``tip`` to ``author``
        (keep-alive) — the same kernel pass and accounting, without the batch path's array handling (the
        runtime charges a block's background fees and tips this way every block). Returns (fee paid, tip paid)."""
        a, b, x, z, ok, moved, dust = self._pair
        a[0] = a[1] = account  # (an int outside int64 raises OverflowError here, as in ``_ints``)
        b[1] = author
        x[0] = fee
        x[1] = tip
        z[0] = ppb
        _apply(self._bal, np.int64(self._n), np.int64(self.ed), _PAIR_OPS, a, b, x, z, _KEEP_ALIVE[True],
               self._state, self._esc_amt, self._esc_owner, ok, moved, dust)
        fee_ok, tip_ok = ok.tolist()
        m_fee, m_tip = moved.tolist()
        count_ok, count_failed, amounts = self._count_ok, self._count_failed, self._amount
        (count_ok if fee_ok else count_failed)[OP_FEE] += 1
        (count_ok if tip_ok else count_failed)[OP_TRANSFER] += 1
        amounts[OP_FEE] += m_fee
        amounts[OP_TRANSFER] += m_tip
        burned = m_fee - perbill_int(m_fee, min(max(ppb, 0), PERBILL))
        dusts = [d for d in dust.tolist() if d]
        if dusts:
            burned += self._reaped(len(dusts), sum(dusts))
        self.burned += burned
        return fee_ok, tip_ok

    def _ops(self, kinds: object) -> np.ndarray:
        if type(kinds) is int or isinstance(kinds, np.integer):
            if 0 <= int(kinds) < len(KINDS):
                return _OP_ARRAYS[int(kinds)]
        elif type(kinds) is str and kinds in KIND_CODE:
            return _OP_ARRAYS[KIND_CODE[kinds]]
        arr = np.atleast_1d(np.asarray(kinds))
        if arr.dtype.kind in "US":
            try:
                return np.array([KIND_CODE[str(k)] for k in arr], dtype=np.int64)
            except KeyError as e:
                raise ValueError(f"unknown movement kind {e.args[0]!r}; kinds: {', '.join(KINDS)}") from None
        op = _ints(arr, "kinds")
        if op.size and (op.min() < 0 or op.max() >= len(KINDS)):
            raise ValueError(f"movement kind codes must be in [0, {len(KINDS)}), got {sorted(set(op.tolist()))}")
        return op

    def _grow_escrows(self, op: np.ndarray, z: np.ndarray) -> None:
        """Make the escrow arrays long enough for the ids locked by this batch (below max_escrow_id)."""
        if op.shape[0] == 1 and op[0] != OP_ESCROW_LOCK:
            return
        locks = op == OP_ESCROW_LOCK
        if not locks.any():
            return
        ids = z[locks] if (z.shape[0] > 1 and op.shape[0] > 1) else z
        ids = ids[(ids >= 0) & (ids < int(self.params.max_escrow_id))]
        if not ids.size:
            return
        need = int(ids.max()) + 1
        cap = self._esc_amt.size
        if need <= cap:
            return
        new_cap = max(cap, 64)
        while new_cap < need:
            new_cap *= 2
        new_cap = min(new_cap, int(self.params.max_escrow_id))
        amt = np.zeros(new_cap, dtype=np.int64)
        owner = np.full(new_cap, -1, dtype=np.int64)
        amt[:cap] = self._esc_amt
        owner[:cap] = self._esc_owner
        self._esc_amt, self._esc_owner = amt, owner

    def _account(self, op: np.ndarray, z: np.ndarray, ok: np.ndarray, moved: np.ndarray,
                 dust: np.ndarray) -> None:
        """Update cumulative totals and per-kind statistics from a kernel pass."""
        m = ok.shape[0]
        if m == 0:
            return
        if m <= _SMALL_BATCH:
            self._account_small(op, z, ok, moved, dust)
            return
        codes = [int(op[0])] if op.shape[0] == 1 else [int(c) for c in np.unique(op)]
        burned = 0
        for c in codes:
            sel = None if op.shape[0] == 1 else (op == c)
            ok_c = ok if sel is None else ok[sel]
            mv = moved if sel is None else moved[sel]
            n_ok = int(np.count_nonzero(ok_c))
            self._count_ok[c] += n_ok
            self._count_failed[c] += ok_c.shape[0] - n_ok
            amt = exact_sum(mv)
            self._amount[c] += amt
            if c == OP_MINT:
                self.minted += amt
            elif c == OP_GENESIS:
                self.genesis_issuance += amt
            elif c in (OP_BURN, OP_SLASH_STAKED_BURN, OP_SLASH_RESERVED_BURN):
                burned += amt
            elif c == OP_FEE:  # failed rows moved 0, so their treasury part is 0
                ppb = z if (z.shape[0] == 1 or sel is None) else z[sel]
                burned += amt - exact_sum(perbill_of(mv, np.clip(ppb, 0, PERBILL)))
        d = exact_sum(dust)
        if d:
            burned += self._reaped(int(np.count_nonzero(dust)), d)
        self.burned += burned

    def _reaped(self, n: int, dust: int) -> int:
        """Book ``n`` reaped accounts whose free ``dust`` (their total) is burned; returns ``dust``, for the
        caller's burned total."""
        self.n_reaped += n
        self._count_ok[-1] += n
        self._amount[-1] += dust
        self.dust_burned += dust
        return dust

    def _account_small(self, op: np.ndarray, z: np.ndarray, ok: np.ndarray, moved: np.ndarray,
                       dust: np.ndarray) -> None:
        """``_account`` for a few rows, in Python ints (the same totals, without array overheads)."""
        count_ok, count_failed, amount = self._count_ok, self._count_failed, self._amount
        burned = 0
        mvs = moved.tolist()
        if op.shape[0] == 1:  # one kind for the whole batch (fees, a pallet's movement): totals at once
            c = int(op[0])
            oks = ok.tolist()
            n_ok = sum(oks)
            count_ok[c] += n_ok
            count_failed[c] += len(oks) - n_ok
            amt = sum(mvs)
            amount[c] += amt
            if c == OP_MINT:
                self.minted += amt
            elif c == OP_GENESIS:
                self.genesis_issuance += amt
            elif c in (OP_BURN, OP_SLASH_STAKED_BURN, OP_SLASH_RESERVED_BURN):
                burned += amt
            elif c == OP_FEE and amt:
                zs = z.tolist()
                one_z = len(zs) == 1
                for i, m in enumerate(mvs):
                    if m:
                        burned += m - perbill_int(m, min(max(zs[0] if one_z else zs[i], 0), PERBILL))
        else:
            ops, oks, zs = op.tolist(), ok.tolist(), z.tolist()
            one_z = len(zs) == 1
            for i in range(len(oks)):
                c = ops[i]
                if oks[i]:
                    count_ok[c] += 1
                else:
                    count_failed[c] += 1
                amt = mvs[i]
                amount[c] += amt
                if c == OP_MINT:
                    self.minted += amt
                elif c == OP_GENESIS:
                    self.genesis_issuance += amt
                elif c in (OP_BURN, OP_SLASH_STAKED_BURN, OP_SLASH_RESERVED_BURN):
                    burned += amt
                elif c == OP_FEE:
                    p = min(max(zs[0] if one_z else zs[i], 0), PERBILL)
                    burned += amt - perbill_int(amt, p)
        dusts = [d for d in dust.tolist() if d]
        if dusts:
            burned += self._reaped(len(dusts), sum(dusts))
        self.burned += burned

    # --- named movements ----------------------------------------------------------------------------
    def genesis(self, amounts: object, accounts: object = None) -> np.ndarray:
        """Endow accounts (``accounts[i]`` gets ``amounts[i]``; default accounts 0..len−1); recorded in
        ``genesis_issuance``. Rows below ED to an empty account, or past the issuance cap, fail."""
        x = _ints(amounts, "amounts")
        acc = np.arange(x.shape[0], dtype=np.int64) if accounts is None else accounts
        return self.apply(OP_GENESIS, acc, -1, x)[0]

    def transfer(self, src: object, dst: object, amount: object, *, keep_alive: bool = False) -> np.ndarray:
        """free(src) → free(dst). ``keep_alive``: fail rather than kill ``src`` (transfer_keep_alive)."""
        return self.apply(OP_TRANSFER, src, dst, amount, keep_alive=keep_alive)[0]

    def reserve(self, account: object, amount: object) -> np.ndarray:
        """free → reserved of the same account."""
        return self.apply(OP_RESERVE, account, -1, amount)[0]

    def unreserve(self, account: object, amount: object) -> np.ndarray:
        """reserved → free of the same account (all or nothing)."""
        return self.apply(OP_UNRESERVE, account, -1, amount)[0]

    def escrow_lock(self, src: object, amount: object, escrow_id: object = -1) -> np.ndarray:
        """free → escrowed of ``src``, optionally under a tracked ``escrow_id`` owned by ``src``."""
        return self.apply(OP_ESCROW_LOCK, src, -1, amount, escrow_id)[0]

    def escrow_release(self, dst: object, from_account: object, amount: object,
                       escrow_id: object = -1) -> np.ndarray:
        """escrowed of ``from_account`` → free of ``dst`` (payment of an escrowed task)."""
        return self.apply(OP_ESCROW_RELEASE, from_account, dst, amount, escrow_id)[0]

    def escrow_refund(self, account: object, amount: object, escrow_id: object = -1) -> np.ndarray:
        """escrowed → free of the same account."""
        return self.apply(OP_ESCROW_REFUND, account, -1, amount, escrow_id)[0]

    def stake(self, account: object, amount: object) -> np.ndarray:
        """free → staked of the same account."""
        return self.apply(OP_STAKE, account, -1, amount)[0]

    def unstake(self, account: object, amount: object) -> np.ndarray:
        """staked → free of the same account (all or nothing; unbonding delays are the caller's)."""
        return self.apply(OP_UNSTAKE, account, -1, amount)[0]

    def slash(self, account: object, amount: object, from_: str = "staked", to: str = "treasury") -> np.ndarray:
        """Take ``min(amount, balance)`` from ``from_`` ("staked" | "reserved") to ``to`` ("treasury" |
        "burn"); returns the amounts actually slashed (0 for invalid rows)."""
        codes = {("staked", "treasury"): OP_SLASH_STAKED_TREASURY, ("staked", "burn"): OP_SLASH_STAKED_BURN,
                 ("reserved", "treasury"): OP_SLASH_RESERVED_TREASURY,
                 ("reserved", "burn"): OP_SLASH_RESERVED_BURN}
        if (from_, to) not in codes:
            raise ValueError(f"slash from_ must be 'staked'|'reserved' and to 'treasury'|'burn', got {from_!r}, {to!r}")
        return self.apply(codes[(from_, to)], account, -1, amount)[1]

    def pay_fee(self, account: object, amount: object, treasury_share: float, *,
                keep_alive: bool = True) -> np.ndarray:
        """free → treasury ⌊amount·share⌋ (Perbill, as ``fees.split_fee``) + burned (the rest), exact."""
        return self.apply(OP_FEE, account, -1, amount, share_to_ppb(treasury_share), keep_alive)[0]

    def mint(self, account: object, amount: object) -> np.ndarray:
        """New tokens to free of ``account`` (recorded in ``minted``; fails past the issuance cap)."""
        return self.apply(OP_MINT, account, -1, amount)[0]

    def burn(self, account: object, amount: object, *, keep_alive: bool = False) -> np.ndarray:
        """free of ``account`` destroyed (recorded in ``burned``)."""
        return self.apply(OP_BURN, account, -1, amount, keep_alive=keep_alive)[0]

    def treasury_spend(self, dst: object, amount: object) -> np.ndarray:
        """Treasury → free of ``dst`` (rewards, grants); fails beyond the treasury balance."""
        return self.apply(OP_TREASURY_SPEND, dst, -1, amount)[0]

    # --- invariants and reporting -------------------------------------------------------------------
    def check(self) -> None:
        """Raise ``LedgerInvariantError`` unless the books balance.

        (a) no negative balance (accounts, treasury, escrows); (b) Σ free + Σ reserved + Σ escrowed +
        Σ staked + treasury == total_issuance; (c) total_issuance == genesis + minted − burned and
        0 ≤ total_issuance ≤ max_issuance; (d) no dust account (no holds and 0 < free < ED);
        (e) tracked escrows: owned iff non-zero, per owner Σ tracked == the owner's tracked column ≤ escrowed;
        (f) the column totals the kernel keeps (what snapshots report) equal the accounts' sums.
        Sums are exact Python ints.
        """
        b = self._bal[: self._n]
        names = ("free", "reserved", "escrowed", "staked", "escrow_tracked")
        hi, lo, neg, dust, over = _scan(self._bal, np.int64(self._n), np.int64(self.ed))
        if neg[1]:
            i = int(neg[0])
            c = int(np.flatnonzero(b[i] < 0)[0])
            raise LedgerInvariantError(
                f"(a) negative balance: account {i} {names[c]} = {int(b[i, c])} ({int(neg[1])} accounts with a "
                f"negative entry)")
        treasury = int(self._state[0])
        if treasury < 0:
            raise LedgerInvariantError(f"(a) negative treasury: {treasury}")
        sums = [(int(hi[c]) << 32) + int(lo[c]) for c in range(ESCROW_TRACKED)]
        held = sum(sums) + treasury
        ti = self.total_issuance
        if held != ti:
            raise LedgerInvariantError(
                f"(b) Σ free {sums[0]} + Σ reserved {sums[1]} + Σ escrowed {sums[2]} + Σ staked {sums[3]} "
                f"+ treasury {treasury} = {held} ≠ total_issuance {ti} (difference {held - ti})")
        expected = self.genesis_issuance + self.minted - self.burned
        if ti != expected:
            raise LedgerInvariantError(
                f"(c) total_issuance {ti} ≠ genesis {self.genesis_issuance} + minted {self.minted} − burned "
                f"{self.burned} = {expected} (difference {ti - expected})")
        if not 0 <= ti <= self.max_issuance:
            raise LedgerInvariantError(f"(c) total_issuance {ti} outside [0, max_issuance {self.max_issuance}]")
        if dust[1]:
            i = int(dust[0])
            raise LedgerInvariantError(
                f"(d) dust account {i}: free {int(b[i, FREE])} < ED {self.ed} with no holds "
                f"({int(dust[1])} such accounts)")
        if over[1]:
            i = int(over[0])
            raise LedgerInvariantError(
                f"(e) account {i}: tracked escrow {int(b[i, ESCROW_TRACKED])} > escrowed {int(b[i, ESCROWED])}")
        amt, owner = self._esc_amt, self._esc_owner
        if amt.size:
            if np.any(amt < 0):
                z = int(np.flatnonzero(amt < 0)[0])
                raise LedgerInvariantError(f"(e) escrow {z} holds {int(amt[z])} < 0")
            bad = np.flatnonzero((amt > 0) != (owner >= 0))
            if bad.size:
                z = int(bad[0])
                raise LedgerInvariantError(f"(e) escrow {z}: amount {int(amt[z])} but owner {int(owner[z])}")
            if np.any(owner >= self._n):
                z = int(np.flatnonzero(owner >= self._n)[0])
                raise LedgerInvariantError(f"(e) escrow {z} owned by unknown account {int(owner[z])}")
        per_owner = np.zeros(self._n, dtype=np.int64)
        if amt.size:
            sel = owner >= 0
            np.add.at(per_owner, owner[sel], amt[sel])
        mismatch = np.flatnonzero(per_owner != b[:, ESCROW_TRACKED])
        if mismatch.size:
            i = int(mismatch[0])
            raise LedgerInvariantError(
                f"(e) account {i}: tracked escrows sum to {int(per_owner[i])} but its tracked column is "
                f"{int(b[i, ESCROW_TRACKED])}")
        running = self._state[_SUM:_SUM + ESCROW_TRACKED].tolist()
        if running != sums:
            c = next(k for k in range(ESCROW_TRACKED) if running[k] != sums[k])
            raise LedgerInvariantError(f"(f) running total of {names[c]} {running[c]} ≠ the accounts' sum {sums[c]}")

    def snapshot(self, block: int) -> dict[str, int]:
        """The ``supply.parquet`` row for ``block``: column totals and protocol totals, base units."""
        tot = self._state[_SUM:_SUM + ESCROW_TRACKED].tolist()  # (kept by the kernel; check() rescans them)
        return {
            "block": int(block),
            "free": tot[FREE],
            "reserved": tot[RESERVED],
            "escrowed": tot[ESCROWED],
            "staked": tot[STAKED],
            "treasury": self.treasury,
            "burned": self.burned,
            "minted": self.minted,
            "total_issuance": self.total_issuance,
        }

    def counts(self, kind: str) -> tuple[int, int, int]:
        """``(applied rows, failed rows, base units moved)`` of one movement kind (or ``"reap"``)."""
        c = len(KINDS) if kind == "reap" else KIND_CODE[kind]
        return int(self._count_ok[c]), int(self._count_failed[c]), self._amount[c]

    def stats(self) -> pd.DataFrame:
        """Per movement kind: rows applied (``count``), rows failed (``failed``) and base units moved
        (``amount``, exact; slashes count what was taken). The extra kind ``reap`` counts reaped accounts
        and their burned dust."""
        kinds = [*KINDS, "reap"]
        return pd.DataFrame({"kind": kinds, "count": np.array(self._count_ok, dtype=np.int64),
                             "failed": np.array(self._count_failed, dtype=np.int64),
                             "amount": pd.array(self._amount, dtype=object)}).set_index("kind")


class SupplyRecorder:
    """Appends one ``supply.parquet`` row per finalized block from a ledger (a ColumnStore).

    With ``check=True`` the ledger's invariants are checked before each row (DESIGN §7: tests run the
    check every block).
    """

    def __init__(self, ledger: Ledger, capacity: int = 4096, *, check: bool = False) -> None:
        self.ledger = ledger
        self.check = check
        self.store = ColumnStore(SUPPLY_SCHEMA, capacity)
        #: the snapshot's keys are the schema's columns in order: rows are appended positionally
        self._positional = list(ledger.snapshot(0)) == list(self.store.cols)

    def record(self, block: int) -> dict[str, int]:
        """Snapshot the ledger as of finalized ``block`` and append it; returns the row."""
        if self.check:
            self.ledger.check()
        row = self.ledger.snapshot(block)
        if self._positional:
            self.store.append_values(*row.values())
        else:
            self.store.append(**row)
        return row

    def frame(self) -> pd.DataFrame:
        """The recorded rows as a DataFrame with exactly the ``supply.parquet`` columns."""
        return self.store.to_frame()

    def __len__(self) -> int:
        return len(self.store)
