"""Transaction fees, the fee multiplier, pool priority and block limits of a Substrate-style chain.

Pure functions over numpy arrays plus frozen parameter dataclasses; no kernel, no global state.
Formulas follow `pallet-transaction-payment` (see shared/research/substrate.md §4–§6):

* inclusion fee = base fee + length fee + multiplier × weight fee; final fee = inclusion fee + tip;
* the multiplier follows ``TargetedFeeAdjustment`` once per block, from the block's *normal-class* weight;
* pool priority = (tip + 1) × max_per_block (+ 5 × final fee × max_per_block for Operational calls).

Units: weights in **seconds** of reference compute (Substrate's ref_time picoseconds / 10^12), lengths in
bytes, amounts in integer base units (1 token = 10^12 units).

Weight convention (as in Substrate): a call's ``weight_s`` is its *dispatch* weight (the benchmarked
call plus its DB reads/writes). The per-extrinsic overhead ``BlockLimits.extrinsic_base_weight_s`` is
not part of it: it is charged by the fixed ``base_fee`` and counted separately when filling a block
(``extrinsic_weight_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np

TOKEN: int = 10**12
"""Base units per token."""

WEIGHT_PER_SECOND: int = 10**12
"""Substrate ref_time units (picoseconds) per second of weight."""

FAST_ADJUSTMENT_VARIABLE: float = 0.0033
"""W3F token-economics "fast" example (k = 20 blocks, p = 5 %): v ≤ p / (k (1 − s*)) ≈ 0.0033.
With it a multiplier moves visibly within minutes (600 full blocks → ×≈4.4); Polkadot uses 0.000075."""

OPERATIONAL_FEE_MULTIPLIER: int = 5
"""Polkadot/Kusama ``OperationalFeeMultiplier``: an Operational call's final fee counts 5× as virtual tip."""

_INT64_MAX = np.iinfo(np.int64).max
_TWO_63 = 2.0**63  # the first double above int64's range


@dataclass(frozen=True)
class FeeParams:
    """Fee schedule and multiplier-update parameters.

    Defaults are Polkadot's (`polkadot/runtime/common/src/lib.rs`), rescaled to a 10^12-unit token:

    * ``base_fee`` = 10^9 units = 0.001 token: Polkadot maps ``ExtrinsicBaseWeight`` to 1/10 CENT = 0.001 DOT.
    * ``weight_fee_per_s`` = 10^13 units per second of weight (10 tokens/s): Polkadot's coefficient is
      0.001 DOT / 97.251 µs ≈ 10.28 DOT/s; rounded. A full 2 s block's weight then costs 20 tokens,
      inside Polkadot's own test bound "a full block costs between 10 and 100 DOT".
    * ``per_byte_fee`` = 10^8 units = 0.0001 token per byte: Polkadot ``TransactionByteFee`` = 10 MILLICENTS.

    A 140-byte transfer with 144.8 µs dispatch weight (242 µs with the extrinsic base) at multiplier 1
    costs 0.001 + 0.014 + 0.00145 ≈ 0.0164 token: length dominates, as on Polkadot (≈ 0.0157 DOT).

    ``treasury_share``: share of a fee paid to the treasury, the rest is burned (W3F's original split
    sends 80 % to the treasury; Polkadot's current ``DealWithFees`` gives the non-treasury part to the
    block author instead — model that by treating "burned" as "author" if needed). The caller decides
    whether tips are split too (Polkadot sends tips to the author).
    """

    adjustment_variable: float = 0.000075
    target_fullness: float = 0.25
    min_multiplier: float = 0.1
    max_multiplier: float = float("inf")
    base_fee: int = 10**9
    per_byte_fee: int = 10**8
    weight_fee_per_s: int = 10**13
    treasury_share: float = 0.8

    def __post_init__(self) -> None:
        if not self.adjustment_variable >= 0:
            raise ValueError(f"fees.adjustment_variable must be ≥ 0, got {self.adjustment_variable}")
        if not 0.0 <= self.target_fullness <= 1.0:
            raise ValueError(f"fees.target_fullness must be in [0, 1], got {self.target_fullness}")
        if not 0.0 < self.min_multiplier <= self.max_multiplier:
            raise ValueError(
                f"fees.min_multiplier must be in (0, max_multiplier], got {self.min_multiplier}"
            )
        if not 0.0 <= self.treasury_share <= 1.0:
            raise ValueError(f"fees.treasury_share must be in [0, 1], got {self.treasury_share}")
        if min(self.base_fee, self.per_byte_fee, self.weight_fee_per_s) < 0:
            raise ValueError("fees.base_fee, per_byte_fee and weight_fee_per_s must be ≥ 0")


# --------------------------------------------------------------------------------------------------
# Multiplier (TargetedFeeAdjustment)
# --------------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _multiplier_step(m: float, s: float, normal_max: float, v: float, target: float, lo: float,
                     hi: float) -> float:
    m = max(m, lo)  # Substrate recovers a stale multiplier below the floor ("defensive only")
    s = min(max(s, 0.0), normal_max)
    target_weight = target * normal_max
    d = abs(s - target_weight) / normal_max
    x = v * d
    m = m * (1.0 + x + x * x / 2.0) if s >= target_weight else m * (1.0 - (x - x * x / 2.0))
    return min(max(m, lo), hi)


@numba.njit(cache=True)
def _multiplier_path(m0: float, fullness: np.ndarray, v: float, target: float, lo: float,
                     hi: float) -> np.ndarray:
    out = np.empty(fullness.shape[0] + 1)
    out[0] = m0
    m = m0
    for i in range(fullness.shape[0]):
        m = _multiplier_step(m, fullness[i], 1.0, v, target, lo, hi)
        out[i + 1] = m
    return out


def next_multiplier(m: float, normal_weight_used: float, normal_max: float, params: FeeParams) -> float:
    """The multiplier for the next block, from the normal-class weight the current block used.

    ``TargetedFeeAdjustment``: d = |s − s*·max| / max; s ≥ s*·max → m·(1 + v·d + (v·d)²/2),
    else m·(1 − (v·d − (v·d)²/2)); clamped to [min, max]. As in Substrate, s is capped at
    ``normal_max`` and a stale m below the floor is first raised to it. ``normal_weight_used`` and
    ``normal_max`` share any unit (seconds of weight, or fullness with ``normal_max = 1``).
    """
    if normal_max <= 0:
        raise ValueError(f"normal_max must be > 0, got {normal_max}")
    return float(_multiplier_step(float(m), float(normal_weight_used), float(normal_max),
                                  params.adjustment_variable, params.target_fullness,
                                  params.min_multiplier, params.max_multiplier))


def multiplier_path(m0: float, fullness: np.ndarray, params: FeeParams) -> np.ndarray:
    """Multipliers along a sequence of blocks.

    ``fullness[i]`` is block i's normal-class weight as a share of the normal-class limit. Returns
    ``n + 1`` values: ``out[i]`` is the multiplier in effect for block i, ``out[n]`` the one after the
    last block. Bit-identical to iterating ``next_multiplier(m, fullness[i], 1.0, params)``.
    """
    f = np.ascontiguousarray(fullness, dtype=np.float64)
    if f.ndim != 1:
        raise ValueError("fullness must be 1-D")
    return _multiplier_path(float(m0), f, params.adjustment_variable, params.target_fullness,
                            params.min_multiplier, params.max_multiplier)


# --------------------------------------------------------------------------------------------------
# Fees
# --------------------------------------------------------------------------------------------------


def inclusion_fee(weight_s, length_bytes, multiplier, params: FeeParams) -> np.ndarray:
    """Inclusion fee in integer base units (int64), elementwise over broadcastable inputs.

    base_fee + length·per_byte_fee + ⌊multiplier · ⌊weight_s · weight_fee_per_s⌋⌋ — two floors, as
    Substrate floors ``WeightToFee`` and then the fixed-point multiplier product. Exact while the weight
    fee stays below 2^53 units (≈ 9,000 tokens).

    Python numbers (one block's totals, as the transaction flow passes them once per block) take a scalar
    path with the same float operations and the same ``np.int64`` result, without numpy's per-call cost.
    """
    if isinstance(weight_s, (int, float)) and isinstance(length_bytes, int) and isinstance(multiplier, (int, float)):
        fee = _inclusion_fee_scalar(float(weight_s), length_bytes, float(multiplier), params)
        if fee is not None:
            return np.int64(fee)
    w = np.asarray(weight_s, dtype=np.float64)
    length = np.asarray(length_bytes, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.float64)
    if np.any(w < 0) or np.any(length < 0) or np.any(m < 0):
        raise ValueError("weight_s, length_bytes and multiplier must be ≥ 0")
    unadjusted = np.floor(w * float(params.weight_fee_per_s))
    adjusted = np.floor(m * unadjusted).astype(np.int64)
    return np.int64(params.base_fee) + length * np.int64(params.per_byte_fee) + adjusted


def _inclusion_fee_scalar(w: float, length: int, m: float, params: FeeParams) -> int | None:
    """:func:`inclusion_fee` of one transaction (weight s, length bytes, multiplier) as a Python int, or None
    where the array path must decide: a non-finite value, or an integer outside int64 (numpy would wrap
    or raise).

    The floats are the array path's: ``w · weight_fee_per_s`` and ``m · ⌊…⌋`` are the same IEEE products,
    and ``math.floor`` of a finite double is exact, as ``np.floor`` + ``astype(int64)`` is in range.
    """
    if w < 0 or length < 0 or m < 0:
        raise ValueError("weight_s, length_bytes and multiplier must be ≥ 0")
    unadjusted = w * float(params.weight_fee_per_s)
    if not (math.isfinite(unadjusted) and math.isfinite(m)):
        return None
    adjusted = m * float(math.floor(unadjusted))
    if not adjusted < _TWO_63:  # (≥ 0 here; inf fails too)
        return None
    by_length = length * params.per_byte_fee
    partial = params.base_fee + by_length
    fee = partial + math.floor(adjusted)
    return fee if max(length, params.base_fee, by_length, partial, fee) <= _INT64_MAX else None


def total_fee(weight_s, length_bytes, multiplier, tip, params: FeeParams) -> np.ndarray:
    """Final fee = inclusion fee + tip, integer base units (int64)."""
    tip_arr = np.asarray(tip, dtype=np.int64)
    if np.any(tip_arr < 0):
        raise ValueError("tip must be ≥ 0")
    return inclusion_fee(weight_s, length_bytes, multiplier, params) + tip_arr


def split_fee(fee, params: FeeParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split fees into (treasury, burned), integers summing exactly to ``fee``.

    treasury = ⌊fee · treasury_share⌋ with the share held in parts per billion (Substrate's ``Perbill``),
    computed without overflow for any int64 fee. A Python int (one finalization's total, as the
    transaction flow passes it) is split in Python integers, exactly as the int64 array arithmetic does
    (no intermediate exceeds the fee), and returned as ``np.int64`` scalars like the array path.
    """
    params = params or FeeParams()
    ppb = round(params.treasury_share * 10**9)
    if isinstance(fee, int) and 0 <= fee <= _INT64_MAX:
        q, r = divmod(fee, 10**9)
        treasury = q * ppb + (r * ppb) // 10**9
        return np.int64(treasury), np.int64(fee - treasury)
    f = np.asarray(fee, dtype=np.int64)
    if np.any(f < 0):
        raise ValueError("fee must be ≥ 0")
    q, r = np.divmod(f, np.int64(10**9))
    treasury = q * np.int64(ppb) + (r * np.int64(ppb)) // np.int64(10**9)
    return treasury, f - treasury


# --------------------------------------------------------------------------------------------------
# Block limits, call weights, priority
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DbWeights:
    """Benchmarked cost of one storage read / write, seconds of weight."""

    read_s: float
    write_s: float


POLKADOT_DB = DbWeights(read_s=20.499e-6, write_s=83.471e-6)
"""Polkadot ``RocksDbWeight`` (1.1 × measured average; fellows `rocksdb_weights.rs`)."""

SUBSTRATE_DB = DbWeights(read_s=25e-6, write_s=100e-6)
"""Substrate default ``RocksDbWeight`` (psdk `frame/support/src/weights/rocksdb_weights.rs`)."""


def call_weight_s(logic_s: float, reads: int, writes: int, db: DbWeights = POLKADOT_DB) -> float:
    """Dispatch weight of a call: benchmarked logic + reads·read + writes·write, seconds."""
    return logic_s + reads * db.read_s + writes * db.write_s


# (logic µs, reads, writes). transfer = Polkadot `transfer_keep_alive` 40.84 µs + 1R + 1W (substrate.md
# §4.2). The marketplace calls are [estimates]: comparable pallet logic plus the storage items the call
# must touch (DID record, task, escrow, reputation, stake), to be replaced by benchmarks of real pallets.
_CALL_SHAPES: dict[str, tuple[float, int, int]] = {
    "transfer": (40.84, 1, 1),
    "transfer_allow_death": (51.93, 1, 1),
    "register_agent": (35.0, 2, 3),
    "post_task": (45.0, 3, 4),
    "submit_bid": (30.0, 3, 2),
    "settle_task": (55.0, 5, 6),
    "open_dispute": (40.0, 3, 3),
    "stake_reputation": (45.0, 3, 3),
    "unstake_reputation": (40.0, 3, 3),
    "update_did": (45.0, 1, 1),
    "deactivate_did": (30.0, 2, 2),
    "issue_credential": (35.0, 2, 1),
    "revoke_credential": (40.0, 2, 1),
    "deliver_result": (35.0, 2, 2),
    "release_payment": (55.0, 5, 6),
}


def _weights_for(db: DbWeights) -> dict[str, float]:
    return {name: call_weight_s(lg * 1e-6, r, w, db) for name, (lg, r, w) in _CALL_SHAPES.items()}


CALL_WEIGHTS: dict[str, float] = _weights_for(POLKADOT_DB)
"""Dispatch weight per call, seconds, Polkadot DB weights. ``transfer`` = 40.84 + 20.499 + 83.471
= 144.81 µs; with Polkadot's 97.251 µs extrinsic base it occupies 242.06 µs of a block (substrate.md §4.3)."""

SUBSTRATE_CALL_WEIGHTS: dict[str, float] = _weights_for(SUBSTRATE_DB)
"""Same calls with Substrate default DB weights (``transfer`` = 165.84 µs; 281.32 µs with base)."""

CALL_LENGTHS: dict[str, int] = {
    "transfer": 140,
    "transfer_allow_death": 140,
    "register_agent": 400,
    "post_task": 350,
    "submit_bid": 180,
    "settle_task": 200,
    "open_dispute": 300,
    "stake_reputation": 150,
    "unstake_reputation": 150,
    "update_did": 300,
    "deactivate_did": 150,
    "issue_credential": 300,
    "revoke_credential": 150,
    "deliver_result": 250,
    "release_payment": 150,
}
"""Encoded extrinsic length per call, bytes. transfer ≈ 140 B (substrate.md §4.3: signature, address,
era, nonce, tip, call); the marketplace lengths are [estimates] (a DID document or task spec is carried
as a hash plus a short payload)."""


@dataclass(frozen=True)
class BlockLimits:
    """Block weight/length limits and base weights; defaults are Polkadot's (substrate.md §4.1–4.2).

    ``block_base_weight_s`` (BlockExecutionWeight, Mandatory class) and the Normal class budget are
    separate: Normal extrinsics may use the whole ``normal_max_weight_s`` (1.5 s).
    """

    max_weight_s: float = 2.0
    normal_ratio: float = 0.75
    max_length_bytes: int = 5 * 1024 * 1024
    normal_length_ratio: float = 0.75
    block_base_weight_s: float = 5.755207e-3
    extrinsic_base_weight_s: float = 97.251e-6
    call_weights: dict[str, float] = field(default_factory=lambda: dict(CALL_WEIGHTS))
    call_lengths: dict[str, int] = field(default_factory=lambda: dict(CALL_LENGTHS))

    @property
    def normal_max_weight_s(self) -> float:
        return self.normal_ratio * self.max_weight_s

    @property
    def normal_max_length_bytes(self) -> int:
        return int(self.normal_length_ratio * self.max_length_bytes)

    def extrinsic_weight_s(self, call: str) -> float:
        """Block weight one extrinsic of ``call`` occupies: extrinsic base + dispatch weight, seconds."""
        return self.extrinsic_base_weight_s + self.call_weights[call]


SUBSTRATE_DEFAULT_LIMITS = BlockLimits(
    block_base_weight_s=414.528e-6,
    extrinsic_base_weight_s=115.48e-6,
    call_weights=dict(SUBSTRATE_CALL_WEIGHTS),
)
"""Substrate default base weights (2023-12) and DB weights, Polkadot's 2 s / 75 % / 5 MiB limits."""


def transfers_per_block(limits: BlockLimits, call: str = "transfer") -> int:
    """How many ``call`` extrinsics fit in the normal class of one block (weight and length)."""
    per_tx_ps = round(limits.extrinsic_weight_s(call) * WEIGHT_PER_SECOND)
    by_weight = round(limits.normal_max_weight_s * WEIGHT_PER_SECOND) // per_tx_ps
    by_length = limits.normal_max_length_bytes // limits.call_lengths[call]
    return int(min(by_weight, by_length))


def max_transfer_tps(limits: BlockLimits, slot_s: float = 6.0, call: str = "transfer") -> float:
    """Throughput ceiling, tx/s, with every slot producing a full block of ``call`` (≈ 1,030 at 242 µs)."""
    return transfers_per_block(limits, call) / slot_s


def priority(tip, weight_s, length_bytes, operational, final_fee, limits: BlockLimits) -> np.ndarray:
    """Transaction-pool priority, as ``ChargeTransactionPayment::get_priority`` (int64, saturating).

    max_per_block = min(max_block_weight // weight, class_max_length // length) in integer ref_time
    units (weight and length bounded to [1, max]); priority = (tip + 1) · max_per_block, plus
    final_fee · 5 · max_per_block for Operational calls. As in Substrate the weight bound is the whole
    block's ``max_weight_s`` and the length bound the class's (Normal: 75 % of 5 MiB, Operational: all):
    tip per unit of the scarcer resource, so at equal tip smaller transactions rank first.
    Saturates at int64 max (Substrate: u64). Arguments broadcast against each other; one Numba pass over
    the rows (the pool prices every mixed batch of market and background calls with it, once per slot).
    """
    args = (np.asarray(tip, dtype=np.int64), np.asarray(weight_s, dtype=np.float64),
            np.asarray(length_bytes, dtype=np.int64), np.asarray(operational, dtype=bool),
            np.asarray(final_fee, dtype=np.int64))
    shape = args[0].shape
    if any(a.shape != shape for a in args):
        args = np.broadcast_arrays(*args)
        shape = args[0].shape
    return priority_rows(*(np.ascontiguousarray(a).reshape(-1) for a in args), limits).reshape(shape)


def priority_rows(tip: np.ndarray, weight_s: np.ndarray, length_bytes: np.ndarray, operational: np.ndarray,
                  final_fee: np.ndarray, limits: BlockLimits) -> np.ndarray:
    """:func:`priority` of rows given as equal-length 1-D contiguous arrays of its dtypes (int64, float64,
    int64, bool, int64; a pool batch's columns), without converting or broadcasting them."""
    return _priority_rows(tip, weight_s, length_bytes, operational, final_fee,
                          round(limits.max_weight_s * WEIGHT_PER_SECOND), limits.max_length_bytes,
                          limits.normal_max_length_bytes)


@numba.njit(cache=True)
def _sat_mul_1(a: int, b: int) -> int:
    """a · b for non-negative int64, saturating at int64 max (the scalar form of :func:`_sat_mul`)."""
    if float(a) * float(b) >= float(_INT64_MAX):
        return _INT64_MAX
    return a * b


@numba.njit(cache=True)
def _priority_rows(tip: np.ndarray, weight_s: np.ndarray, length: np.ndarray, operational: np.ndarray,
                   fee: np.ndarray, max_block_ps: int, max_length: int, normal_max_length: int) -> np.ndarray:
    """:func:`priority` over equal-length 1-D rows (the same integer and float steps, row by row). A row of
    the previous row's call shape (weight, length, class: runs of transfers) reuses its per-block count,
    which costs two integer divisions."""
    out = np.empty(tip.shape[0], dtype=np.int64)
    last_w, last_len, last_op, per_block = np.nan, np.int64(-1), False, np.int64(0)
    for i in range(tip.shape[0]):
        if not (weight_s[i] == last_w and length[i] == last_len and operational[i] == last_op):
            last_w, last_len, last_op = weight_s[i], length[i], operational[i]
            w = np.rint(last_w * WEIGHT_PER_SECOND)
            w = min(max(w, 1.0), float(max_block_ps))
            max_len = max_length if last_op else normal_max_length
            n = min(max(last_len, 1), max_len)
            per_block = min(max_block_ps // np.int64(w), max_len // n)
        scaled = _sat_mul_1(tip[i] + 1, per_block)
        if operational[i]:
            virtual = _sat_mul_1(_sat_mul_1(fee[i], OPERATIONAL_FEE_MULTIPLIER), per_block)
            out[i] = _INT64_MAX if scaled > _INT64_MAX - virtual else scaled + virtual
        else:
            out[i] = scaled
    return out


def _sat_mul(a, b) -> np.ndarray:
    """a · b for non-negative int64 arrays, saturating at int64 max."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = a.astype(np.float64) * b.astype(np.float64) >= float(_INT64_MAX)
    return np.where(overflow, _INT64_MAX, a * b)

