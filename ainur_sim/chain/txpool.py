"""The transaction pool: ready/future/in-block transactions as columnar arrays, admission, eviction,
bans, block selection, orphan return and finality, with aggregated outcome statistics.

Model (shared/research/substrate.md §5, `sc-transaction-pool`):

* Every active transaction is one row of preallocated numpy columns; background transfers and market
  extrinsics share the pool (a market call is a row whose ``payload`` refers to the call stored by the
  market side). Rows are kept in insertion order and compacted when many are dead, so the public id of a
  transaction (``uid``, its insertion id) maps to its row by binary search.
* States: **future** (a nonce gap: the sender's previous nonce has not been seen), **ready**, **in block**
  (included in at least one block that is neither finalized nor orphaned yet). In-block transactions do
  not count against the ready limits (Substrate prunes them on import) but stay here so that an orphaned
  block's transactions can return to ready, and so that a block on another fork may include them again.
* ``sender = -1`` marks an independent background transfer: always ready, never banned (eviction just
  drops it). Other senders have nonces starting at 0 per sender; ``(sender, nonce)`` is Substrate's
  ``provides`` tag and is what a ban applies to.
* Priority is ``ChargeTransactionPayment::get_priority`` from :func:`ainur_sim.chain.fees.priority`.
* Block building follows ``TransactionRef`` ordering (priority desc, shorter validity first, older first),
  the best-iterator rule that a sender's next nonce becomes available only after its predecessor was taken,
  the dispatch-class limits of ``CheckWeight`` and the proposer's ``MAX_SKIPPED_TRANSACTIONS``.

Nothing per transaction is kept after it leaves the pool: outcomes are counters, per-call logs
(:class:`~ainur_sim.record.ColumnStore`) and log-binned latency histograms.

Units: seconds, bytes, integer base units (1 token = 10**12). Weights are held internally as integer
picoseconds (Substrate ``ref_time``) so that block-limit comparisons are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import numba
import numpy as np

from ainur_sim.chain.fees import WEIGHT_PER_SECOND, BlockLimits, _sat_mul, priority, priority_rows
from ainur_sim.record import ColumnStore

MAX_SKIPPED_TRANSACTIONS: int = 8
"""``sc-basic-authorship``: non-fitting transactions skipped before the proposer stops (see :meth:`TxPool.select`)."""

DEAD, FUTURE, READY, IN_BLOCK = 0, 1, 2, 3

_NO_LIMIT = -1


@dataclass(frozen=True)
class PoolLimits:
    """Pool size limits and ban time (``sc-transaction-pool`` ``Options::default()``)."""

    ready_count: int = 8192
    ready_bytes: int = 20 * 2**20
    future_count: int = 512
    future_bytes: int = 2**20
    ban_s: float = 1800.0

    def __post_init__(self) -> None:
        if min(self.ready_count, self.ready_bytes, self.future_count, self.future_bytes) < 0:
            raise ValueError("pool limits must be ≥ 0")
        if not self.ban_s >= 0:
            raise ValueError(f"ban_s must be ≥ 0, got {self.ban_s}")


# --------------------------------------------------------------------------------------------------
# Batches of submitted transactions
# --------------------------------------------------------------------------------------------------

_BATCH_DTYPES: dict[str, type] = {
    "t_submit": np.float64,
    "weight_s": np.float64,
    "length_bytes": np.int64,
    "tip": np.int64,
    "operational": np.bool_,
    "longevity_s": np.float64,
    "sender": np.int64,
    "nonce": np.int64,
    "payload": np.int64,
    "t_ready": np.float64,
    "fee": np.int64,
}


@numba.njit(cache=True)
def _interleave(a, b, p):
    """``out`` with ``out[p] = b`` and ``a``'s values, in order, in the other places (``p`` ascending, within
    ``a.size + b.size``): one column of :meth:`TxBatch.merge_sorted`, as slice copies between ``b``'s rows."""
    out = np.empty(a.shape[0] + b.shape[0], a.dtype)
    start = 0  # next place to fill from a
    ia = 0
    for j in range(p.shape[0]):
        k = p[j] - start
        out[start:p[j]] = a[ia:ia + k]
        ia += k
        out[p[j]] = b[j]
        start = p[j] + 1
    out[start:] = a[ia:]
    return out


@numba.njit(cache=True)
def _merge_two(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10):
    """The 11 columns of two batches merged (:func:`_interleave` of each), in one call; ``a0``/``b0`` are the
    batches' ``t_submit`` (each in order): ``b``'s rows go after ``a``'s rows of equal time."""
    p = np.searchsorted(a0, b0, side="right") + np.arange(b0.shape[0])
    return (_interleave(a0, b0, p), _interleave(a1, b1, p), _interleave(a2, b2, p), _interleave(a3, b3, p),
            _interleave(a4, b4, p), _interleave(a5, b5, p), _interleave(a6, b6, p), _interleave(a7, b7, p),
            _interleave(a8, b8, p), _interleave(a9, b9, p), _interleave(a10, b10, p))


@numba.njit(cache=True)
def _batch_violations(weight_s, length_bytes, tip, longevity_s, t_submit, t_ready, sender, nonce) -> int:
    """The checks of :meth:`TxBatch.__post_init__` in one pass, as bit flags: 1 a negative weight, length
    or tip; 2 a longevity not > 0 (NaN included); 4 ``t_ready < t_submit``; 8 a sender with a negative
    nonce. Comparisons as in the elementwise numpy checks (a NaN compares false)."""
    bad = 0
    for i in range(weight_s.shape[0]):
        if weight_s[i] < 0 or length_bytes[i] < 0 or tip[i] < 0:
            bad |= 1
        if not longevity_s[i] > 0:
            bad |= 2
        if t_ready[i] < t_submit[i]:
            bad |= 4
        if sender[i] >= 0 and nonce[i] < 0:
            bad |= 8
    return bad


@numba.njit(cache=True)
def _batch_facts(t_submit, weight_s, length_bytes, operational, fee, sender) -> tuple[bool, bool, bool, int]:
    """(``t_submit`` non-decreasing, one call shape — weight, length, class and fee equal to the first
    row's —, any sender ≥ 0, total length in bytes) of a non-empty batch, as :meth:`TxPool.submit` would
    find them with numpy (a NaN compares unequal; the int64 sum wraps as numpy's does)."""
    in_order = True
    uniform = True
    has_sender = False
    total_length = 0
    w0, l0, o0, f0 = weight_s[0], length_bytes[0], operational[0], fee[0]
    for i in range(t_submit.shape[0]):
        if i and not t_submit[i] >= t_submit[i - 1]:
            in_order = False
        if not (weight_s[i] == w0 and length_bytes[i] == l0 and operational[i] == o0 and fee[i] == f0):
            uniform = False
        if sender[i] >= 0:
            has_sender = True
        total_length += length_bytes[i]
    return in_order, uniform, has_sender, total_length


def merged_facts(a: TxBatch, facts_a: tuple[bool, bool, bool, int], b: TxBatch) -> tuple[bool, bool, bool, int]:
    """:func:`_batch_facts` of ``TxBatch.merge_sorted([a, b])`` (both in time order, NaN-free), from those
    of ``a`` (known, e.g. a generated batch's) and a scan of ``b`` only (typically a slot's few market calls)."""
    if len(b) == 0:
        return facts_a
    facts_b = _batch_facts(b.t_submit, b.weight_s, b.length_bytes, b.operational, b.fee, b.sender)
    if len(a) == 0:
        return facts_b
    uniform = facts_a[1] and facts_b[1] and bool(
        a.weight_s[0] == b.weight_s[0] and a.length_bytes[0] == b.length_bytes[0]
        and a.operational[0] == b.operational[0] and a.fee[0] == b.fee[0])
    total = (int(facts_a[3]) + int(facts_b[3]) + 2**63) % 2**64 - 2**63  # (int64 wrap, as the scan's sum)
    return bool(facts_a[0] and facts_b[0]), uniform, bool(facts_a[2] or facts_b[2]), total


@dataclass
class TxBatch:
    """Transactions submitted together, as equal-length 1-D arrays.

    * ``t_submit``: submission time at an RPC node, s; ``t_ready``: when it reached block authors
      (``t_submit`` + gossip delay), s.
    * ``weight_s``: *dispatch* weight, s (``fees.CALL_WEIGHTS``); the pool adds the extrinsic base weight
      (``BlockLimits.extrinsic_base_weight_s``) when filling a block, so a transfer occupies ≈ 242 µs.
    * ``length_bytes``: encoded length; ``tip``: base units; ``operational``: Operational dispatch class.
    * ``longevity_s``: validity after submission, s (``inf`` = immortal; users' mortal era ≈ 330 s).
    * ``sender``: account (−1 = independent background transfer); ``nonce``: the sender's nonce.
    * ``payload``: reference to a market call held elsewhere (−1 = plain transfer).
    * ``fee``: final fee in base units; only used for an Operational transaction's priority.
    """

    t_submit: np.ndarray
    weight_s: np.ndarray
    length_bytes: np.ndarray
    tip: np.ndarray
    operational: np.ndarray
    longevity_s: np.ndarray
    sender: np.ndarray
    nonce: np.ndarray
    payload: np.ndarray
    t_ready: np.ndarray
    fee: np.ndarray

    def __post_init__(self) -> None:
        n = None
        for name, dt in _BATCH_DTYPES.items():
            arr = np.ascontiguousarray(getattr(self, name), dtype=dt)
            if arr.ndim != 1:
                raise ValueError(f"TxBatch.{name} must be 1-D")
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise ValueError(f"TxBatch.{name} has length {arr.shape[0]}, expected {n}")
            setattr(self, name, arr)
        if not n:
            return
        bad = _batch_violations(self.weight_s, self.length_bytes, self.tip, self.longevity_s, self.t_submit,
                                self.t_ready, self.sender, self.nonce)
        if bad & 1:
            raise ValueError("weight_s, length_bytes and tip must be ≥ 0")
        if bad & 2:
            raise ValueError("longevity_s must be > 0")
        if bad & 4:
            raise ValueError("t_ready must be ≥ t_submit")
        if bad & 8:
            raise ValueError("a sender's nonce must be ≥ 0")

    @classmethod
    def unchecked(cls, **columns: np.ndarray) -> TxBatch:
        """A batch from all its columns as 1-D arrays of their dtypes and one length that are known to pass
        the checks of ``__post_init__`` (e.g. just generated), without running them."""
        b = cls.__new__(cls)
        b.__dict__.update(columns)
        return b

    @classmethod
    def of(cls, t_submit, weight_s, length_bytes, *, tip=0, operational=False, longevity_s=math.inf,
           sender=-1, nonce=0, payload=-1, t_ready=None, fee=0) -> TxBatch:
        """A batch from arrays or scalars broadcast to ``len(t_submit)``; ``t_ready`` defaults to ``t_submit``."""
        t = np.atleast_1d(np.asarray(t_submit, dtype=np.float64))
        n = t.shape[0]

        def col(v, dt):
            a = np.asarray(v, dtype=dt)
            if a.ndim == 0:  # a scalar: fill (cheaper than broadcast + copy, same values)
                return np.full(n, a, dtype=dt)
            return np.broadcast_to(a, (n,)).copy()

        return cls(t_submit=t, weight_s=col(weight_s, np.float64), length_bytes=col(length_bytes, np.int64),
                   tip=col(tip, np.int64), operational=col(operational, np.bool_),
                   longevity_s=col(longevity_s, np.float64), sender=col(sender, np.int64),
                   nonce=col(nonce, np.int64), payload=col(payload, np.int64),
                   t_ready=t.copy() if t_ready is None else col(t_ready, np.float64), fee=col(fee, np.int64))

    @classmethod
    def empty(cls) -> TxBatch:
        return cls.of(np.empty(0), 0.0, 0)

    @classmethod
    def concat(cls, batches: list[TxBatch]) -> TxBatch:
        """One batch holding all rows of ``batches`` in order (rows of checked batches: not checked again)."""
        if not batches:
            return cls.empty()
        return cls.unchecked(**{name: np.concatenate([getattr(b, name) for b in batches]).astype(dt, copy=False)
                                for name, dt in _BATCH_DTYPES.items()})

    @classmethod
    def merge_sorted(cls, batches: list[TxBatch]) -> TxBatch:
        """``concat(batches).take(np.argsort(t_submit, kind="stable"))`` for batches each in ``t_submit``
        order (not checked here; NaN-free), built in one pass: rows of equal time keep batch order. The
        rows of ``batches[0]`` (typically the large background batch) fill the places the others leave."""
        if len(batches) < 2:
            return cls.concat(batches)
        if len(batches) == 2:  # (the usual case, background + market calls: one kernel, no Python per column)
            a, b = batches
            c = _merge_two(a.t_submit, a.weight_s, a.length_bytes, a.tip, a.operational, a.longevity_s, a.sender,
                           a.nonce, a.payload, a.t_ready, a.fee, b.t_submit, b.weight_s, b.length_bytes, b.tip,
                           b.operational, b.longevity_s, b.sender, b.nonce, b.payload, b.t_ready, b.fee)
            return cls.unchecked(t_submit=c[0], weight_s=c[1], length_bytes=c[2], tip=c[3], operational=c[4],
                                 longevity_s=c[5], sender=c[6], nonce=c[7], payload=c[8], t_ready=c[9], fee=c[10])
        n = sum(len(b) for b in batches)
        ts = [b.t_submit for b in batches]
        pos = []
        for k in range(1, len(batches)):
            p = np.arange(ts[k].shape[0])
            for j, tj in enumerate(ts):
                if j != k:
                    p += np.searchsorted(tj, ts[k], side="right" if j < k else "left")
            pos.append(p)
        first = np.ones(n, dtype=np.bool_)
        for p in pos:
            first[p] = False
        cols = {}
        for name, dt in _BATCH_DTYPES.items():
            out = np.empty(n, dtype=dt)
            out[first] = getattr(batches[0], name)
            for k, p in enumerate(pos, start=1):
                out[p] = getattr(batches[k], name)
            cols[name] = out
        return cls.unchecked(**cols)

    def take(self, idx: np.ndarray) -> TxBatch:
        """The rows ``idx`` (index array or boolean mask) as a new batch (rows of a checked batch: not
        checked again)."""
        return TxBatch.unchecked(**{name: getattr(self, name)[idx] for name in _BATCH_DTYPES})

    def __len__(self) -> int:
        return int(self.t_submit.shape[0])


# --------------------------------------------------------------------------------------------------
# Outcomes and statistics
# --------------------------------------------------------------------------------------------------


@dataclass
class PoolCounters:
    """Cumulative transaction counts. Partition (holds after every call)::

        submitted = rejected_banned + rejected_stale + rejected_low_priority + rejected_future_full
                    + evicted + expired + finalized + in_pool

    ``included`` (first inclusion in any block) and ``returned_from_orphans`` are flows, not part of it.
    """

    submitted: int = 0
    rejected_banned: int = 0
    rejected_stale: int = 0
    rejected_low_priority: int = 0
    rejected_future_full: int = 0
    evicted: int = 0
    expired: int = 0
    included: int = 0
    finalized: int = 0
    returned_from_orphans: int = 0

    @property
    def rejected(self) -> int:
        return self.rejected_banned + self.rejected_stale + self.rejected_low_priority + self.rejected_future_full


class SubmitOutcome(NamedTuple):
    """What one :meth:`TxPool.submit` did. ``accepted_ids`` are the uids still in the pool after the
    limits were enforced; ``dropped_payloads`` the payload refs rejected or evicted by this call."""

    accepted_ids: np.ndarray
    n_ready: int
    n_future: int
    rejected_banned: int
    rejected_stale: int
    rejected_low_priority: int
    rejected_future_full: int
    evicted: int
    dropped_payloads: np.ndarray


class FinalizeOutcome(NamedTuple):
    """What one :meth:`TxPool.on_finalized` did. ``finalized_payloads`` are market payload refs in the
    order of the finalized blocks given and, within a block, block order; ``finalized_payload_blocks``
    their block ids. ``dropped_payloads``: payload refs that expired or were evicted on return."""

    n_finalized: int
    n_returned: int
    n_expired: int
    n_evicted: int
    finalized_payloads: np.ndarray
    finalized_payload_blocks: np.ndarray
    dropped_payloads: np.ndarray


class ExpireOutcome(NamedTuple):
    n_expired: int
    dropped_payloads: np.ndarray


class SelectionStats(NamedTuple):
    """Totals of the last :meth:`TxPool.select`: block-occupancy weight (incl. extrinsic base), s."""

    n_candidates: int
    n_selected: int
    n_operational: int
    weight_s: float
    normal_weight_s: float
    length_bytes: int
    n_skipped: int


class LogHistogram:
    """Counts of non-negative samples in log-spaced bins, for percentiles without keeping samples.

    Bins: ``bins_per_decade`` per power of ten from ``lo`` to ``hi`` (defaults: 100 per decade, 1 ms to
    10^6 s), plus an underflow bin [0, lo) and an overflow bin [hi, ∞). A quantile is found by cumulative
    count and interpolated geometrically inside its bin, so its relative error is below one bin's width
    (10^(1/100) − 1 ≈ 2.3 %); under-/overflow quantiles return the exact min/max seen.
    """

    def __init__(self, lo: float = 1e-3, hi: float = 1e6, bins_per_decade: int = 100) -> None:
        if not 0 < lo < hi:
            raise ValueError("need 0 < lo < hi")
        self.lo, self.hi, self.per_decade = float(lo), float(hi), int(bins_per_decade)
        self._log_lo = math.log10(self.lo)
        self.n_bins = int(math.ceil((math.log10(self.hi) - self._log_lo) * self.per_decade))
        self.counts = np.zeros(self.n_bins + 2, dtype=np.int64)  # [underflow, bins..., overflow]
        self._build_lookup()
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def _build_lookup(self) -> None:
        """Edges and the sub-octave lookup table of :func:`_bin_latencies`.

        Count index ``i`` (0 = underflow, ``j + 1`` = bin ``j``, ``n_bins + 1`` = overflow) covers
        ``[lower[i], upper[i])``; bin ``j``'s lower edge is ``10**(log10(lo) + j / bins_per_decade)``.
        Sub-octave intervals are ``2**-sub`` of an octave with ``2**-sub`` below the ratio of two edges.
        """
        edges = np.array([10.0 ** (self._log_lo + j / self.per_decade) for j in range(self.n_bins + 1)])
        self._lower = np.concatenate([[-np.inf], edges])
        self._upper = np.concatenate([edges, [np.inf]])
        sub = int(math.ceil(-math.log2(10.0 ** (1.0 / self.per_decade) - 1.0))) + 1
        self._shift = 52 - sub
        key_lo = int(np.array([edges[0]]).view(np.int64)[0] >> self._shift)
        key_hi = int(np.array([edges[-1]]).view(np.int64)[0] >> self._shift)
        keys = np.arange(key_lo, key_hi + 1, dtype=np.int64)
        start = (keys << self._shift).view(np.float64)  # lower end of each interval
        self._table = np.searchsorted(edges, start, side="right").astype(np.int64)  # count index of start
        self._key_lo = key_lo

    def add(self, x: np.ndarray, total: float | None = None) -> None:
        """Add samples ``x``; ``total`` may pass ``float(x.sum())`` when the caller already has it.

        Bins come from comparisons with the bin edges (:func:`_bin_latencies`); a sample within a
        relative 1e-9 of an edge takes the formula ``floor((log10(x) - log10(lo)) · bins_per_decade)``,
        which is what every bin is defined by (log10 is accurate to a few ulp, i.e. ~1e-16 relative, so
        away from an edge both give the same bin)."""
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size == 0:
            return
        lo_x, hi_x = float(x.min()), float(x.max())
        if lo_x != lo_x:  # NaN: the formula's path (and its error)
            self._add_by_formula(x)
        else:
            near = _bin_latencies(x, self._kernel_args())[0]
            if near.size:
                self._add_by_formula(x[near])
        self.count += int(x.size)
        self.total += float(x.sum()) if total is None else total
        self.min = min(self.min, lo_x)
        self.max = max(self.max, hi_x)

    def _kernel_args(self) -> tuple:
        """(table, key_lo, shift, lower, upper, counts) for the binning kernels (counts updated in place)."""
        return self._table, self._key_lo, self._shift, self._lower, self._upper, self.counts

    def add_binned(self, x: np.ndarray, near: np.ndarray, lo_x: float, hi_x: float,
                   total: float | None = None) -> None:
        """Finish adding ``x`` whose samples were counted by a kernel (:func:`_bin_latencies`) except at
        positions ``near``; ``lo_x``/``hi_x``: its min and max. Same result as :meth:`add`."""
        if x.size == 0:
            return
        if near.size:  # (a NaN is among them: the formula fails on it, as in add())
            self._add_by_formula(x[near])
        self.count += int(x.size)
        self.total += float(x.sum()) if total is None else total
        self.min = min(self.min, lo_x)
        self.max = max(self.max, hi_x)

    def _add_by_formula(self, x: np.ndarray) -> None:
        """Bin counts of ``x`` by the defining formula (counts only)."""
        with np.errstate(divide="ignore"):
            pos = np.floor((np.log10(np.maximum(x, 0.0)) - self._log_lo) * self.per_decade)
        idx = np.clip(pos, -1, self.n_bins).astype(np.int64) + 1
        self.counts += np.bincount(idx, minlength=self.n_bins + 2)

    def quantile(self, q: float) -> float:
        """The q-quantile (0 ≤ q ≤ 1) of the samples added; NaN if none."""
        if self.count == 0:
            return math.nan
        rank = q * self.count
        cum = np.cumsum(self.counts)
        b = int(np.searchsorted(cum, rank, side="left")) if rank > 0 else int(np.argmax(self.counts > 0))
        b = min(b, self.counts.shape[0] - 1)
        if b == 0:
            return float(self.min)
        if b == self.counts.shape[0] - 1:
            return float(self.max)
        before = cum[b - 1]
        frac = (rank - before) / self.counts[b] if self.counts[b] else 0.0
        lo_edge = 10.0 ** (self._log_lo + (b - 1) / self.per_decade)
        value = lo_edge * 10.0 ** (min(max(float(frac), 0.0), 1.0) / self.per_decade)
        return float(min(max(value, self.min), self.max))

    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def summary(self) -> dict[str, float]:
        """count, mean, p50, p95, p99, max."""
        return {"count": self.count, "mean": self.mean(), "p50": self.quantile(0.5),
                "p95": self.quantile(0.95), "p99": self.quantile(0.99),
                "max": self.max if self.count else math.nan}


_EDGE_MARGIN = 1e-9  # relative distance to a bin edge under which the exact bin formula decides


@numba.njit(cache=True)
def _bin_latencies(x, h):
    """Count samples ``x`` into histogram ``h`` (:meth:`LogHistogram._kernel_args`: table, key_lo, shift,
    lower, upper, counts — counts updated in place) except those within a relative ``_EDGE_MARGIN`` of
    their bin's edges, and NaN; returns (those positions, min, max), min/max by comparison (NaN if any).

    Count index: 0 underflow (zero or negative: ``log10(max(x, 0)) = −inf``), ``j + 1`` bin ``j``, last
    overflow. A positive double's top bits ``bits >> shift`` name a sub-octave interval narrower than a
    bin; ``table[key − key_lo]`` is the count index of its lower end, and one comparison with the next
    edge (``upper``) finishes it (no interval holds two edges). A block's latencies come in runs within one
    bin, so a sample inside the last bin found, away from its edges, is counted to it without the lookup
    (the same bin: bins are ``[lower, upper)``), and a run's count is added once. "Away" is decided
    conservatively, by two comparisons with a precomputed interior; a sample between it and the exact
    margin takes the lookup, which finds the same bin.
    """
    table, key_lo, shift, lower, upper, counts = h
    n_idx = table.shape[0]
    last = counts.shape[0] - 1
    bits = x.view(np.int64)
    near = np.empty(x.shape[0], np.int64)
    k = 0
    lo = np.inf
    hi = -np.inf
    has_nan = False
    cur = -1  # count index of the current run (-1: none), its length and its safe interior
    run = 0
    s_lo = 0.0
    s_hi = 0.0
    for i in range(x.shape[0]):
        v = x[i]
        if v != v:
            has_nan = True
            near[k] = i
            k += 1
            continue
        lo = min(lo, v)
        hi = max(hi, v)
        if s_lo < v < s_hi:  # (only while a run is open: the interval is empty before the first)
            run += 1
            continue
        if not v > 0.0:
            counts[0] += 1
            continue
        key = (bits[i] >> shift) - key_lo
        if key < 0:
            idx = 0
        elif key >= n_idx:
            idx = last
        else:
            idx = table[key]
            if v >= upper[idx]:
                idx += 1
        if v - lower[idx] <= _EDGE_MARGIN * v or upper[idx] - v <= _EDGE_MARGIN * v:
            near[k] = i
            k += 1
            continue
        if cur >= 0:
            counts[cur] += run
        cur = idx
        run = 1
        # within (s_lo, s_hi) a sample is in this bin and farther than _EDGE_MARGIN · v from both edges
        # (v < upper, and the band is 4× that margin of the upper edge); an infinite edge gives an empty
        # interval (inf − inf is NaN), so the overflow bin always takes the lookup
        band = 4.0 * _EDGE_MARGIN * upper[idx]
        s_lo = lower[idx] + band
        s_hi = upper[idx] - band
    if cur >= 0:
        counts[cur] += run
    if has_nan:
        lo = np.nan
    return near[:k], lo, hi


@numba.njit(cache=True)
def _fill_block(w, ln, op, waiting, succ, normal_w, total_w, normal_len, total_len, max_skipped):
    """Greedy block fill over candidates in rank order (rank 0 = best).

    ``waiting[r]``: rank r needs a predecessor taken first; ``succ[r]``: the rank that becomes available
    when r is taken (−1 none). Unlocked ranks join a min-heap merged with the sorted scan, which is the
    best iterator of ``graph/ready.rs``. Limits follow ``CheckWeight``: Normal weight ≤ its class limit
    and total weight ≤ total; Normal length uses the total length against the Normal class maximum.
    Returns (taken ranks in block order, skipped, normal weight, total weight, total length).
    """
    n = w.shape[0]
    out = np.empty(n, np.int64)
    heap = np.empty(n, np.int64)
    hn = 0
    k = 0
    pos = 0
    skipped = 0
    nw = 0
    tw = 0
    tl = 0
    while True:
        while pos < n and waiting[pos]:
            pos += 1
        if hn > 0 and (pos >= n or heap[0] < pos):
            r = heap[0]
            hn -= 1
            last = heap[hn]
            i = 0
            while True:  # sift down
                c = 2 * i + 1
                if c >= hn:
                    break
                if c + 1 < hn and heap[c + 1] < heap[c]:
                    c += 1
                if heap[c] >= last:
                    break
                heap[i] = heap[c]
                i = c
            if hn > 0:
                heap[i] = last
        elif pos < n:
            r = pos
            pos += 1
        else:
            break
        wr = w[r]
        lr = ln[r]
        if op[r]:
            fits = tw + wr <= total_w and tl + lr <= total_len
        else:
            fits = nw + wr <= normal_w and tw + wr <= total_w and tl + lr <= normal_len
        if fits:
            out[k] = r
            k += 1
            tw += wr
            tl += lr
            if not op[r]:
                nw += wr
            s = succ[r]
            if s >= 0:
                i = hn  # sift up
                hn += 1
                while i > 0:
                    p = (i - 1) // 2
                    if heap[p] <= s:
                        break
                    heap[i] = heap[p]
                    i = p
                heap[i] = s
        else:
            if max_skipped >= 0 and skipped >= max_skipped:
                break
            skipped += 1
    return out[:k], skipped, nw, tw, tl


@numba.njit(cache=True)
def _stable_argsort(key):
    """``np.argsort(key, kind="stable")`` for int64 keys: an LSD radix sort, one byte per pass (passes
    where every key has the same byte are skipped). Branch-free, where a comparison sort of random keys
    keeps mispredicting."""
    n = key.shape[0]
    order = np.arange(n)
    keys = key ^ np.int64(-9223372036854775808)  # sign bit flipped: unsigned byte order = signed order
    order2 = np.empty(n, np.int64)
    keys2 = np.empty(n, np.int64)
    count = np.empty(257, np.int64)
    for shift in range(0, 64, 8):
        count[:] = 0
        for i in range(n):
            count[((keys[i] >> shift) & 255) + 1] += 1
        if count.max() == n:
            continue
        for b in range(256):
            count[b + 1] += count[b]
        for i in range(n):
            d = (keys[i] >> shift) & 255
            j = count[d]
            count[d] = j + 1
            order2[j] = order[i]
            keys2[j] = keys[i]
        order, order2 = order2, order
        keys, keys2 = keys2, keys
    return order


@numba.njit(cache=True)
def _select_independent(state, t_ready, valid_till, prio, weight_ps, length, operational, uid, tip, lo, n,
                        excluded, in_block_ok, t, base_ps, normal_w, total_w, normal_len, total_len, max_skipped,
                        include, n_blocks, t_included, gather):
    """:meth:`TxPool.select` for a pool without sender transactions (no nonce order to respect).

    Candidates are rows ``lo ≤ r < n`` that are ready or in a block, with ``t_ready ≤ t < valid_till``,
    not in ``excluded`` (``in_block_ok`` False: every in-block row is excluded; then ``lo`` may be any
    row with no ready row before it, see :attr:`TxPool._ready_lb`); order: priority desc,
    then valid_till asc, then row. When valid_till does not decrease along the candidates (transactions
    of one longevity, as the load generator makes), the valid_till key never reorders equal priorities,
    so a stable sort by priority gives that order: the lowest priority (most transfers: no tip) keeps
    row order at the end, the others are sorted.
    Otherwise returns ``ok = False`` (having changed nothing) and the caller sorts. The fill is
    :func:`_fill_block` with no waiting ranks. With ``include``, the taken rows are then marked included
    at ``t`` as :func:`_include` does for distinct rows (``n_blocks``, ``t_included`` and ``state``
    updated in place). Returns (rows taken in block order, their ``uid`` and ``tip`` — empty unless
    ``gather`` —, candidates, skipped, normal weight ps, total weight ps, total length, operational taken,
    ok, and with ``include`` the first inclusions, the rows that were ready and their bytes — else zeros —,
    then the taken rows' tip total (int64 sum) and the first ready row from ``lo`` on, before any marking
    (``n``: none)).
    """
    ex = np.zeros(n - lo if in_block_ok else 0, np.bool_)
    for r in excluded:
        if r >= lo and r < n:
            ex[r - lo] = True
    cand = np.empty(n - lo, np.int64)
    m = 0
    pmin = np.iinfo(np.int64).max
    last_vt = -np.inf
    none = np.empty(0, np.int64)
    first_ready = n
    for r in range(lo, n):
        st = state[r]
        if st < READY:
            continue
        if st == IN_BLOCK:
            if not in_block_ok or ex[r - lo]:
                continue
        elif first_ready == n:
            first_ready = r
        if t_ready[r] <= t and valid_till[r] > t:
            if valid_till[r] < last_vt:
                return none, none, none, m, 0, 0, 0, 0, 0, False, 0, 0, 0, 0, first_ready
            last_vt = valid_till[r]
            if prio[r] < pmin:
                pmin = prio[r]
            cand[m] = r
            m += 1
    if m == 0:
        return none, none, none, 0, 0, 0, 0, 0, 0, True, 0, 0, 0, 0, first_ready
    # stable sort by priority desc: the lowest priority keeps row order at the end; the rest (few) sorted
    head = np.empty(m, np.int64)
    key = np.empty(m, np.int64)
    tail = np.empty(m, np.int64)
    nh = 0
    nt = 0
    for i in range(m):
        r = cand[i]
        if prio[r] != pmin:
            head[nh] = r
            key[nh] = -prio[r]
            nh += 1
        else:
            tail[nt] = r
            nt += 1
    srt = _stable_argsort(key[:nh])
    out = np.empty(m, np.int64)
    uids = np.empty(m if gather else 0, np.int64)
    tips = np.empty(m if gather else 0, np.int64)
    k = 0
    skipped = 0
    nw = 0
    tw = 0
    tl = 0
    n_op = 0
    tip_sum = 0
    for i in range(m):
        r = head[srt[i]] if i < nh else tail[i - nh]
        wr = weight_ps[r] + base_ps
        lr = length[r]
        if operational[r]:
            fits = tw + wr <= total_w and tl + lr <= total_len
        else:
            fits = nw + wr <= normal_w and tw + wr <= total_w and tl + lr <= normal_len
        if fits:
            out[k] = r
            tip_sum += tip[r]
            if gather:
                uids[k] = uid[r]
                tips[k] = tip[r]
            k += 1
            tw += wr
            tl += lr
            if operational[r]:
                n_op += 1
            else:
                nw += wr
        else:
            if max_skipped >= 0 and skipped >= max_skipped:
                break
            skipped += 1
    first = 0
    was_ready = 0
    ready_bytes = 0
    if include:  # (every taken row is ready or in a block: it was a candidate)
        for i in range(k):
            r = out[i]
            if state[r] == READY:
                was_ready += 1
                ready_bytes += length[r]
                state[r] = IN_BLOCK
            n_blocks[r] += 1
            if np.isnan(t_included[r]):
                first += 1
                t_included[r] = t
    return (out[:k], uids[:k], tips[:k], m, skipped, nw, tw, tl, n_op, True, first, was_ready, ready_bytes, tip_sum,
            first_ready)


@numba.njit(cache=True)
def _gather_uid_tip(rows, uid, tip):
    """``(uid[rows], tip[rows])`` in one pass over the selected rows."""
    uids = np.empty(rows.shape[0], np.int64)
    tips = np.empty(rows.shape[0], np.int64)
    for i in range(rows.shape[0]):
        uids[i] = uid[rows[i]]
        tips[i] = tip[rows[i]]
    return uids, tips


@numba.njit(cache=True)
def _include(rows, state, n_blocks, t_included, length, t, distinct):
    """:meth:`TxPool.mark_included` on ``rows``, with numpy's fancy-assignment semantics for repeated rows.

    Returns (ok = all ready or in block, first inclusions, rows that were ready, their bytes); changes
    nothing unless ok. ``distinct`` (no row repeats, e.g. a selection's rows): one pass after the check,
    as no row is then read after it was written.
    """
    n = rows.shape[0]
    for i in range(n):
        if state[rows[i]] < READY:
            return False, 0, 0, 0
    first = 0
    was_ready = 0
    ready_bytes = 0
    if distinct:
        for i in range(n):
            r = rows[i]
            if state[r] == READY:
                was_ready += 1
                ready_bytes += length[r]
                state[r] = IN_BLOCK
            n_blocks[r] += 1
            if np.isnan(t_included[r]):
                first += 1
                t_included[r] = t
        return True, first, was_ready, ready_bytes
    for i in range(n):
        if np.isnan(t_included[rows[i]]):
            first += 1
    blocks = np.empty(n, n_blocks.dtype)
    for i in range(n):
        blocks[i] = n_blocks[rows[i]] + 1
    for i in range(n):
        r = rows[i]
        if state[r] == READY:
            was_ready += 1
            ready_bytes += length[r]
            state[r] = IN_BLOCK
        n_blocks[r] = blocks[i]
        if np.isnan(t_included[r]):
            t_included[r] = t
    return True, first, was_ready, ready_bytes


@numba.njit(cache=True)
def _pairwise_leaf(a, lo, n):
    """``_pairwise_sum`` of at most 128 values: below 8 in turn; else eight interleaved partial sums, combined
    as ``((r0+r1)+(r2+r3)) + ((r4+r5)+(r6+r7))``, then the rest in turn."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(cache=True)
def _pairwise_sum(a, lo, n):
    """Sum of ``a[lo:lo + n]`` (float64) in numpy's own order (``pairwise_sum`` of its add reduction: up to
    128 values :func:`_pairwise_leaf`, above that the sum of the two halves, the first a multiple of 8), so
    that ``0.0 + _pairwise_sum(a, 0, a.size)`` is ``a.sum()`` bit for bit. Iterative, with its own stack:
    Numba's cache does not load a recursive function reliably (a cached recursive kernel crashed the run)."""
    if n <= 128:
        return _pairwise_leaf(a, lo, n)
    s_lo = np.empty(128, np.int64)  # the ranges still open, with how far each is done (0, 1: first half, 2)
    s_n = np.empty(128, np.int64)
    s_stage = np.empty(128, np.int64)
    vals = np.empty(128)  # finished sums, in order
    sp = 1
    nv = 0
    s_lo[0], s_n[0], s_stage[0] = lo, n, 0
    while sp:
        top = sp - 1
        m = s_n[top]
        if m <= 128:
            vals[nv] = _pairwise_leaf(a, s_lo[top], m)
            nv += 1
            sp -= 1
            continue
        half = m // 2
        half -= half % 8
        stage = s_stage[top]
        s_stage[top] = stage + 1
        if stage == 0:
            s_lo[sp], s_n[sp], s_stage[sp] = s_lo[top], half, 0
            sp += 1
        elif stage == 1:
            s_lo[sp], s_n[sp], s_stage[sp] = s_lo[top] + half, m - half, 0
            sp += 1
        else:
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
            sp -= 1
    return vals[0]


@numba.njit(cache=True)
def _finalize_rows(rows, t_incl, t, state, t_submit, payload, length, h_incl, h_fin):
    """A finalized block's rows leave the pool: the rows still alive, in block order, get DEAD.

    Returns (live rows, inclusion latencies ``t_incl − t_submit``, finality latencies ``t − t_submit``,
    their payload refs ≥ 0, then the live rows' count and bytes per state: in block, ready, ready bytes,
    future, future bytes, then per latency its positions near a bin edge, min and max). States are read
    before any is written (numpy's semantics for repeated rows). The latencies are binned into the
    histograms' counts (``h_*``: :meth:`LogHistogram._kernel_args`) except those near a bin edge; a NaN
    latency counts as near an edge. Last, the two latencies' sums as numpy's ``sum`` gives them.
    """
    n = rows.shape[0]
    live = np.empty(n, np.int64)
    incl = np.empty(n)
    fin = np.empty(n)
    paid = np.empty(n, np.int64)
    k = 0
    kp = 0
    n_in = 0
    n_ready = 0
    b_ready = 0
    n_future = 0
    b_future = 0
    for i in range(n):
        r = rows[i]
        st = state[r]
        if st == DEAD:
            continue
        if st == IN_BLOCK:
            n_in += 1
        elif st == READY:
            n_ready += 1
            b_ready += length[r]
        else:
            n_future += 1
            b_future += length[r]
        live[k] = r
        ts = t_submit[r]
        incl[k] = t_incl - ts
        fin[k] = t - ts
        p = payload[r]
        if p >= 0:
            paid[kp] = p
            kp += 1
        k += 1
    for i in range(k):
        state[live[i]] = DEAD
    incl = incl[:k]
    fin = fin[:k]
    near_incl, lo_incl, hi_incl = _bin_latencies(incl, h_incl)
    near_fin, lo_fin, hi_fin = _bin_latencies(fin, h_fin)
    return (live[:k], incl, fin, paid[:kp], n_in, n_ready, b_ready, n_future, b_future,
            near_incl, lo_incl, hi_incl, near_fin, lo_fin, hi_fin, 0.0 + _pairwise_sum(incl, 0, k),
            0.0 + _pairwise_sum(fin, 0, k))


@numba.njit(cache=True)
def _move_to_front(col, keep):
    """``col[:keep.size] = col[keep]`` in place, for ascending ``keep`` (``keep[j] ≥ j``: every row is read
    before anything overwrites it), without numpy's gathered temporary."""
    for j in range(keep.shape[0]):
        col[j] = col[keep[j]]


@numba.njit(cache=True)
def _first_alive(state, lo, n) -> int:
    """The first row ``r ≥ lo`` (below ``n``) that is not DEAD, or ``n``."""
    for r in range(lo, n):
        if state[r] != DEAD:
            return r
    return n


@numba.njit(cache=True)
def _store_rows(c_uid, c_state, c_n_blocks, c_t_submit, c_t_ready, c_valid_till, c_weight_ps, c_length, c_tip,
                c_operational, c_priority, c_sender, c_nonce, c_payload, c_t_included, lo, first_uid, state,
                t_submit, t_ready, longevity_s, weight_s, length_bytes, tip, operational, prio, tip_base, sender,
                nonce, payload, uniform):
    """Write the batch rows into the pool columns ``c_*`` from row ``lo`` on, in order (:meth:`TxPool.submit`'s
    storing step, without one numpy call per column).

    Columns get: uid ``first_uid + j``, the row's ``state``, no block, ``valid_till = t_submit + longevity_s``
    (s), ``weight_ps = rint(weight_s · 10^12)`` (the float product and rounding numpy does), no inclusion
    time (NaN), priority ``prio`` or, when ``tip_base ≥ 0``, the scaled tip (:func:`_scaled_tip`); the rest
    as given. One contiguous copy or loop per column: a loop writing many columns at one row index is
    several times slower (the columns' rows share cache sets). ``uniform``: every row has the first row's
    weight, length and class (one call shape), which are then written without reading those arrays.
    Returns (the rows' total length in bytes, the NaN-ignoring minimum of their valid_till: NaN when all
    are NaN or there are no rows).
    """
    k = state.shape[0]
    hi = lo + k
    per_s = float(WEIGHT_PER_SECOND)
    for j in range(k):
        c_uid[lo + j] = first_uid + j
    c_state[lo:hi] = state
    c_n_blocks[lo:hi] = 0
    c_t_submit[lo:hi] = t_submit
    c_t_ready[lo:hi] = t_ready
    vt_min = np.nan
    for j in range(k):
        vt = t_submit[j] + longevity_s[j]
        c_valid_till[lo + j] = vt
        if vt < vt_min or vt_min != vt_min:
            vt_min = vt
    total_len = 0
    if uniform and k:  # (the same values, computed once; k equal lengths sum to k · length in int64)
        c_weight_ps[lo:hi] = np.int64(np.rint(weight_s[0] * per_s))
        c_length[lo:hi] = length_bytes[0]
        total_len = k * length_bytes[0]
        c_operational[lo:hi] = operational[0]
    else:
        for j in range(k):
            c_weight_ps[lo + j] = np.int64(np.rint(weight_s[j] * per_s))
        c_length[lo:hi] = length_bytes
        for j in range(k):
            total_len += length_bytes[j]
        c_operational[lo:hi] = operational
    c_tip[lo:hi] = tip
    if tip_base >= 0:
        for j in range(k):
            c_priority[lo + j] = _scaled_tip(tip[j], tip_base)
    else:
        c_priority[lo:hi] = prio
    c_sender[lo:hi] = sender
    c_nonce[lo:hi] = nonce
    c_payload[lo:hi] = payload
    c_t_included[lo:hi] = np.nan
    return total_len, vt_min


@numba.njit(cache=True)
def _scaled_tip(tip, base):
    """``fees._sat_mul(tip + 1, base)`` of one tip: ``(tip + 1) · base`` in int64, or int64 max where the
    product in float64 reaches int64 max (the same operations)."""
    big = np.iinfo(np.int64).max
    a = tip + 1
    return big if float(a) * float(base) >= float(big) else a * base


@numba.njit(cache=True)
def _scaled_tips(tip, base):
    """:func:`_scaled_tip` of every tip."""
    out = np.empty(tip.shape[0], np.int64)
    for i in range(tip.shape[0]):
        out[i] = _scaled_tip(tip[i], base)
    return out


@numba.njit(cache=True)
def _stable_smallest(p, k):
    """``np.argsort(p, kind="stable")[:k]`` without sorting everything: the k-th smallest value ``v`` by
    selection, then the positions below ``v`` (stably sorted) and the first positions equal to ``v``."""
    n = p.shape[0]
    if k <= 0:
        return np.empty(0, np.int64)
    if k >= n:
        return np.argsort(p, kind="mergesort")
    v = np.partition(p, k - 1)[k - 1]
    below = np.empty(k, np.int64)
    c = 0
    for i in range(n):
        if p[i] < v:
            below[c] = i
            c += 1
    out = np.empty(k, np.int64)
    if c:
        keys = np.empty(c, p.dtype)
        for i in range(c):
            keys[i] = p[below[i]]
        order = np.argsort(keys, kind="mergesort")
        for i in range(c):
            out[i] = below[order[i]]
    j = c
    for i in range(n):
        if j >= k:
            break
        if p[i] == v:
            out[j] = i
            j += 1
    return out


def _n_to_evict(length_worst_first: np.ndarray, count: int, total_bytes: int, count_lim: int, bytes_lim: int) -> int:
    """How many transactions to drop, worst first, to get within both the count and the byte limit."""
    k = max(count - count_lim, 0)
    if total_bytes > bytes_lim:
        cum = np.cumsum(length_worst_first)
        k = max(k, int(np.searchsorted(cum, total_bytes - bytes_lim, side="left")) + 1)
    return k


# --------------------------------------------------------------------------------------------------
# The pool
# --------------------------------------------------------------------------------------------------

_COLUMNS: dict[str, type] = {
    "uid": np.int64,
    "state": np.int8,
    "n_blocks": np.int32,
    "t_submit": np.float64,
    "t_ready": np.float64,
    "valid_till": np.float64,
    "weight_ps": np.int64,
    "length": np.int64,
    "tip": np.int64,
    "operational": np.bool_,
    "priority": np.int64,
    "sender": np.int64,
    "nonce": np.int64,
    "payload": np.int64,
    "t_included": np.float64,
}

_NO_ROWS = np.empty(0, np.int64)
_COLUMN_STAGGER_BYTES = 256  # start offset between consecutive pool columns (4 cache lines)


def _new_column(name: str, size: int) -> np.ndarray:
    """A zeroed pool column of ``size`` rows, starting ``_COLUMN_STAGGER_BYTES`` × its position in
    ``_COLUMNS`` bytes into its buffer.

    Large arrays are allocated page-aligned, so equal-itemsize columns allocated alone have row ``j`` at
    the same offset modulo 4 KiB: a kernel touching one row of many columns then keeps hitting the same
    L1 cache sets. The stagger spreads them over different sets.
    """
    dt = np.dtype(_COLUMNS[name])
    shift = list(_COLUMNS).index(name) * _COLUMN_STAGGER_BYTES // dt.itemsize
    return np.zeros(size + shift, dt)[shift:]


def _joined(parts: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    """``np.concatenate(parts)``; a single part (a fresh array) is returned as is."""
    if not parts:
        return empty
    return parts[0] if len(parts) == 1 else np.concatenate(parts)

_SELECT_SCHEMA = {"t": "float64", "n_candidates": "int64", "n_selected": "int64", "n_operational": "int64",
                  "weight_s": "float64", "length_bytes": "int64", "n_skipped": "int64"}
_FINALIZE_SCHEMA = {"t": "float64", "n_finalized": "int64", "n_returned": "int64", "n_expired": "int64",
                    "n_evicted": "int64", "finality_latency_mean_s": "float64"}


@dataclass
class _Op:
    """Per-call scratch: counts and payloads removed by the current call."""

    counts: dict[str, int] = field(default_factory=dict)
    dropped: list[np.ndarray] = field(default_factory=list)

    def dropped_payloads(self) -> np.ndarray:
        return np.concatenate(self.dropped) if self.dropped else np.empty(0, np.int64)


class TxPool:
    """Active transactions of one node's pool (the simulator shares one pool among authors).

    Caller contract: every block passed to :meth:`mark_included` is eventually reported to
    :meth:`on_finalized` as finalized or orphaned; :meth:`expire` is called about once per slot.
    """

    def __init__(self, limits: PoolLimits | None = None, block_limits: BlockLimits | None = None, *,
                 max_skipped: int | None = MAX_SKIPPED_TRANSACTIONS, capacity: int | None = None) -> None:
        self.limits = limits or PoolLimits()
        self.block_limits = block_limits or BlockLimits()
        self.max_skipped = max_skipped
        self._base_ps = round(self.block_limits.extrinsic_base_weight_s * WEIGHT_PER_SECOND)
        # default: room for many slots of arrivals, so that dead rows (compacted away only when the
        # storage is full, see _reserve) are rarely copied; 16 × the default limits ≈ 139k rows, 13 MB
        # (32 ×, compacting half as often, measured 4.5 % slower a run: paired runs, 1,000 TPS)
        cap = capacity or 16 * (self.limits.ready_count + self.limits.future_count)
        self._cap = max(int(cap), 16)
        self._c: dict[str, np.ndarray] = {k: _new_column(k, self._cap) for k in _COLUMNS}
        self._n = 0  # rows in use (alive or dead, not yet compacted)
        self._n_alive = 0
        self._next_uid = 0
        self._blocks: dict[int, tuple[np.ndarray, float]] = {}  # block id -> (rows, inclusion time)
        self._nonces: dict[int, dict[int, int]] = {}  # sender -> {nonce: uid} of its transactions in the pool
        self._next_nonce: dict[int, int] = {}  # sender -> first nonce not yet seen contiguously
        self._banned: dict[tuple[int, int], float] = {}  # (sender, nonce) -> ban end, s
        self.counters = PoolCounters()
        self.inclusion_latency = LogHistogram()
        self.finality_latency = LogHistogram()
        self.select_log = ColumnStore(_SELECT_SCHEMA, 4096)
        self.finalize_log = ColumnStore(_FINALIZE_SCHEMA, 4096)
        self.last_selection = SelectionStats(0, 0, 0, 0.0, 0.0, 0, 0)
        self._lo = 0  # every row below is dead: scans start here
        #: no row below is ready (each is in a block or dead): where a selection that may take no in-block
        #: row starts its scan. Set by the selecting kernel (its scan's first ready row), lowered when
        #: orphaned rows return to ready, reset by compaction; new rows are appended above it.
        self._ready_lb = 0
        # per state code: rows and (future, ready) bytes, kept exact at every state change
        self._count = [0, 0, 0, 0]
        self._bytes = [0, 0, 0, 0]
        self._expire_lb = math.inf  # a lower bound of valid_till over ready and future rows
        #: (uids, rows, tips, tip total) of the last selection; uids and tips None when not gathered, the total
        #: None when not known
        self._sel: tuple[np.ndarray | None, np.ndarray, np.ndarray | None, int | None] | None = None
        self._tip_base_of_shape: dict[tuple, int] = {}  # call shape -> priority(tip=0), or -1: see _tip_base
        self._default_limits: tuple | None = None  # (block_limits, select's default limits in ps and bytes)
        self._sel_included: int | None = None  # block the last selection was marked included in by its kernel
        #: the last selection marked included by its kernel, while nothing else changed the pool since:
        #: (key = (t, excluded blocks, limits, max_skipped), (rows, uids, tips, candidates, skipped, normal
        #: weight, total weight, total length, operational, uids and tips gathered, tip total)) — a sibling
        #: block with the same key selects exactly these rows (:meth:`_select_again`); every public mutator
        #: clears it
        self._memo: tuple | None = None

    # ---- row storage -------------------------------------------------------------------------------

    def _col(self, name: str) -> np.ndarray:
        return self._c[name][: self._n]

    def _reserve(self, k: int) -> None:
        """Room for ``k`` more rows. Dead rows are compacted away only here, when the storage is full;
        then it grows until at most half is in use, so compaction (a copy of the live rows) stays rare."""
        if self._n + k <= self._cap:
            return
        if self._n - self._n_alive > 0:
            self._compact()
        if self._n + k <= self._cap // 2:
            return
        cap = self._cap
        while cap < 2 * (self._n + k):
            cap *= 2
        for name, old in self._c.items():
            new = _new_column(name, cap)
            new[: self._n] = old[: self._n]
            self._c[name] = new
        self._cap = cap

    def _compact(self) -> None:
        """Drop dead rows, keeping insertion order; remap the rows recorded per block."""
        n, lo = self._n, self._lo
        keep = np.flatnonzero(self._c["state"][lo:n] != DEAD) + lo  # (rows below lo are all dead)
        m = int(keep.size)
        new_index = np.full(n, -1, np.int64)
        new_index[keep] = np.arange(m)
        for col in self._c.values():
            _move_to_front(col, keep)
        for b, (rows, t_incl) in self._blocks.items():
            r = new_index[rows]
            self._blocks[b] = (r[r >= 0], t_incl)
        self._n = m
        self._lo = 0
        self._ready_lb = 0
        self._sel = None

    def _maybe_compact(self) -> None:
        """Move the scan start past the dead rows at the front (the oldest rows die first)."""
        lo, n = self._lo, self._n
        state = self._c["state"]
        if lo < n and state[lo] == DEAD:
            self._lo = n if self._n_alive == 0 else _first_alive(state, lo, n)

    def _uncount(self, rows: np.ndarray, st: np.ndarray, sign: int = -1) -> None:
        """Take ``rows`` (distinct, alive, in states ``st``) out of the per-state occupancy (``sign=+1``:
        put them in)."""
        if st.size == 0:
            return
        if int(st.min()) == IN_BLOCK:  # (the usual case: a finalized block's rows, all in block)
            self._count[IN_BLOCK] += sign * int(st.size)
            return
        k = np.bincount(st, minlength=4)
        for code in (FUTURE, READY):
            if k[code]:
                self._count[code] += sign * int(k[code])
                self._bytes[code] += sign * int(self._c["length"][rows[st == code]].sum())
        self._count[IN_BLOCK] += sign * int(k[IN_BLOCK])

    def occupancy_recount(self) -> dict[str, int]:
        """:meth:`snapshot`'s counts and bytes recomputed by a scan of all rows (for checks)."""
        state = self._col("state")
        length = self._col("length")
        ready, future, inblk = state == READY, state == FUTURE, state == IN_BLOCK
        return {"ready_count": int(ready.sum()), "ready_bytes": int(length[ready].sum()),
                "future_count": int(future.sum()), "future_bytes": int(length[future].sum()),
                "in_block_count": int(inblk.sum()), "unfinalized_blocks": len(self._blocks)}

    def _rows_of(self, ids: np.ndarray, *, alive: bool = False) -> np.ndarray:
        """Rows of uids (binary search: rows are in uid order); KeyError if unknown (or dead, if ``alive``)."""
        ids = np.asarray(ids, dtype=np.int64)
        uid = self._col("uid")
        rows = np.searchsorted(uid, ids)
        ok = rows < self._n
        ok[ok] = uid[rows[ok]] == ids[ok]
        if alive:
            ok[ok] = self._c["state"][rows[ok]] != DEAD
        if not ok.all():
            raise KeyError(f"transaction ids not in the pool: {ids[~ok][:5]}")
        return rows

    # ---- removal and sender bookkeeping --------------------------------------------------------------

    def _remove(self, rows: np.ndarray, reason: str, t: float, op: _Op, *, ban: bool = False) -> None:
        """Remove alive ``rows`` counted under ``reason``; a removed ready/in-block sender transaction takes
        its ready dependents (the sender's later nonces) with it, as ``remove_subtree`` does."""
        state = self._c["state"]
        rows = rows[state[rows] != DEAD]
        if rows.size == 0:
            return
        self._sel = None
        was = state[rows].copy()
        self._uncount(rows, was)
        state[rows] = DEAD
        self._n_alive -= int(rows.size)
        setattr(self.counters, reason, getattr(self.counters, reason) + int(rows.size))
        op.counts[reason] = op.counts.get(reason, 0) + int(rows.size)
        payload = self._c["payload"][rows]
        if (payload >= 0).any():
            op.dropped.append(payload[payload >= 0])
        sender = self._c["sender"][rows]
        if not (sender >= 0).any():
            return
        dependents: list[int] = []
        for i in np.flatnonzero(sender >= 0):
            s, nn = int(sender[i]), int(self._c["nonce"][rows[i]])
            nonces = self._nonces[s]
            del nonces[nn]
            if ban:
                self._banned[(s, nn)] = t + self.limits.ban_s
            if was[i] != FUTURE:
                self._next_nonce[s] = min(self._next_nonce.get(s, 0), nn)
                dependents.extend(u for m, u in nonces.items() if m > nn)
            if not nonces:
                del self._nonces[s]
        if dependents:
            dep_rows = self._rows_of(np.array(sorted(set(dependents)), dtype=np.int64))
            self._remove(dep_rows[state[dep_rows] == READY], reason, t, op, ban=ban)

    def _forget_finalized_senders(self, rows: np.ndarray) -> None:
        sender = self._c["sender"][rows]
        for i in np.flatnonzero(sender >= 0):
            s = int(sender[i])
            nonces = self._nonces[s]
            del nonces[int(self._c["nonce"][rows[i]])]
            if not nonces:
                del self._nonces[s]

    def _enforce_limits(self, t: float, first_new_uid: int, op: _Op) -> None:
        """Evict until the future and ready sets are within their limits.

        Future: oldest first. Ready: lowest priority first, ties by oldest insertion (``enforce_limits``).
        Rows inserted by the current call (uid ≥ ``first_new_uid``) are rejected rather than evicted and
        are not banned; older rows are evicted and, for senders, banned for ``ban_s``.
        """
        lim = self.limits
        state = self._col("state")
        length = self._col("length")
        lo = self._lo
        for which, count_lim, bytes_lim in ((FUTURE, lim.future_count, lim.future_bytes),
                                            (READY, lim.ready_count, lim.ready_bytes)):
            if self._count[which] <= count_lim and self._bytes[which] <= bytes_lim:
                continue  # (the occupancy counters are what the scan below would count)
            rows = np.flatnonzero(state[lo:] == which) + lo
            total_bytes = int(length[rows].sum())
            # ready: worst first; a stable sort keeps equal priorities in row (= age) order
            if which == READY and total_bytes <= bytes_lim:  # only the count binds: no full sort needed
                victims = rows[_stable_smallest(self._col("priority")[rows], rows.size - count_lim)]
            else:
                if which == READY:
                    rows = rows[np.argsort(self._col("priority")[rows], kind="stable")]
                victims = rows[:_n_to_evict(length[rows], rows.size, total_bytes, count_lim, bytes_lim)]
            new = self._col("uid")[victims] >= first_new_uid
            rejected = "rejected_future_full" if which == FUTURE else "rejected_low_priority"
            self._remove(victims[new], rejected, t, op)
            self._remove(victims[~new], "evicted", t, op, ban=True)

    # ---- public API ----------------------------------------------------------------------------------

    def submit(self, batch: TxBatch, facts: tuple[bool, bool, bool, int] | None = None) -> SubmitOutcome:
        """Admit a batch (in ``t_submit`` order): ban and staleness checks, nonce-gap (future) handling,
        then the pool limits. Background rows (``sender = -1``) take a vectorised path; those the ready
        limit would drop at once are rejected before they are stored (same outcome, less copying).
        ``facts``: what :func:`_batch_facts` gives for the batch, when the caller knows it (a generated batch)."""
        self._memo = None
        op = _Op()
        n = len(batch)
        first_uid = self._next_uid
        if n == 0:
            return self._submit_outcome(np.empty(0, np.int64), 0, 0, op)
        if facts is None:
            facts = _batch_facts(batch.t_submit, batch.weight_s, batch.length_bytes, batch.operational, batch.fee,
                                 batch.sender)
        sorted_in, uniform, has_sender, batch_bytes = facts
        b = batch if sorted_in else batch.take(np.argsort(batch.t_submit, kind="stable"))
        self.counters.submitted += n
        state = np.empty(n, np.int8)
        state.fill(READY)
        new_nonces: list[tuple[int, int, int]] = []
        if has_sender:
            new_nonces = self._admit_senders(b, state, op)
        tip_base = self._tip_base(b, uniform)  # ≥ 0: priorities are computed while storing
        prio = _NO_ROWS if tip_base >= 0 else self._priorities(b, tip_base)
        rejected = self._prefilter_background(b, state, prio, tip_base, op, not has_sender, batch_bytes)

        # (without senders only the prefilter drops rows; READY is the largest code a new row can have)
        all_ready = rejected == 0 if not has_sender else int(state.min()) == READY
        keep = None if all_ready else state != DEAD
        k = n if keep is None else int(keep.sum())
        self._reserve(k)
        self._sel = None
        lo, hi = self._n, self._n + k
        c = self._c
        rows = b if keep is None else b.take(keep)  # the rows to store (without the rejected ones)
        new_bytes, vt_min = _store_rows(
            c["uid"], c["state"], c["n_blocks"], c["t_submit"], c["t_ready"], c["valid_till"], c["weight_ps"],
            c["length"], c["tip"], c["operational"], c["priority"], c["sender"], c["nonce"], c["payload"],
            c["t_included"], lo, first_uid, state if keep is None else state[keep], rows.t_submit, rows.t_ready,
            rows.longevity_s, rows.weight_s, rows.length_bytes, rows.tip, rows.operational,
            prio if keep is None or tip_base >= 0 else prio[keep], tip_base, rows.sender, rows.nonce, rows.payload,
            bool(uniform))
        uids = np.arange(first_uid, first_uid + k, dtype=np.int64)
        self._n = hi
        self._n_alive += k
        self._next_uid += k
        if all_ready:
            self._count[READY] += k
            self._bytes[READY] += int(new_bytes)
        elif k:
            self._uncount(np.arange(lo, hi), c["state"][lo:hi], +1)
        if vt_min < self._expire_lb:  # (NaN never expires: ignored)
            self._expire_lb = float(vt_min)
        if new_nonces:
            uid_of = uids if keep is None else np.cumsum(keep) - 1 + first_uid
            for i, s, nn in new_nonces:
                self._nonces[s][nn] = int(uid_of[i])
        if keep is not None:  # (all ready: no new row was dropped)
            dropped_new = ~keep & (b.payload >= 0)
            if dropped_new.any():
                op.dropped.append(b.payload[dropped_new])
        alive_before = self._n_alive
        self._enforce_limits(float(b.t_submit[-1]), first_uid, op)
        if all_ready and self._n_alive == alive_before:  # nothing removed: every stored row is ready
            return self._submit_outcome(uids, k, 0, op)
        new_state = self._c["state"][lo:hi]
        return self._submit_outcome(uids[new_state != DEAD], int((new_state == READY).sum()),
                                    int((new_state == FUTURE).sum()), op)

    def _priorities(self, b: TxBatch, tip_base: int) -> np.ndarray:
        """``fees.priority`` per row; ``tip_base``: :meth:`_tip_base` of the batch."""
        if tip_base >= 0:
            return _scaled_tips(b.tip, tip_base)
        return priority_rows(b.tip, b.weight_s, b.length_bytes, b.operational, b.fee, self.block_limits)

    def _tip_base(self, b: TxBatch, uniform: bool) -> int:
        """For a batch of one call shape (``uniform``: weight, length, class and fee the same on every row,
        e.g. generated transfers), ``priority(tip=0)`` of that shape if ``fees.priority`` is the scaled tip
        ``fees._sat_mul(tip + 1, priority(0))`` for it, else -1.

        That identity holds for Normal-class calls (``(tip + 1) · per_block`` saturated at int64 max); it
        is checked once per call shape on probe tips from 0 to 2**63 − 2 against ``priority`` itself. The
        scaled tip is far cheaper than ``priority`` (mostly fixed overhead per call), and can be computed
        while the rows are stored.
        """
        if not uniform:
            return -1
        key = (b.weight_s[0].item(), b.length_bytes[0].item(), b.operational[0].item(), b.fee[0].item())
        base = self._tip_base_of_shape.get(key)
        if base is None:
            base = self._tip_base_of_shape[key] = self._probe_tip_identity(key)
        return base

    def _probe_tip_identity(self, shape: tuple) -> int:
        """``priority(0)`` for the call shape when ``priority(tip) == _sat_mul(tip + 1, priority(0))`` holds
        on probe tips (Normal class only), else -1."""
        if bool(shape[2]):
            return -1
        probes = np.array([0, 1, 2, 3, 7, 10**3, 10**6, 10**9, 10**12, 10**15, 10**18, 2**31, 2**40,
                           2**53 - 1, 2**53, 2**53 + 1, 2**62, 2**63 - 2], dtype=np.int64)
        want = priority(probes, *shape, self.block_limits)
        base = int(want[0])
        same = np.array_equal(_scaled_tips(probes, base), want) and np.array_equal(_sat_mul(probes + 1, base), want)
        return base if same else -1

    def _admit_senders(self, b: TxBatch, state: np.ndarray, op: _Op) -> list[tuple[int, int, int]]:
        """Ban, staleness and nonce-gap checks for the batch's sender rows, in (sender, nonce) order.

        Sets ``state`` to DEAD (rejected), READY or FUTURE per row, advances each sender's contiguous
        nonce frontier and promotes pool rows a filled gap makes ready. Returns (batch index, sender,
        nonce) of the admitted rows, whose uids are recorded once they are stored.
        """
        idx = np.flatnonzero(b.sender >= 0)
        idx = idx[np.lexsort((b.nonce[idx], b.sender[idx]))]
        self._prune_bans(float(b.t_submit[0]))
        admitted: list[tuple[int, int, int]] = []
        promote: list[int] = []
        for i in idx:
            s, nn, ts = int(b.sender[i]), int(b.nonce[i]), float(b.t_submit[i])
            if self._banned.get((s, nn), -math.inf) > ts:
                state[i] = DEAD
                op.counts["rejected_banned"] = op.counts.get("rejected_banned", 0) + 1
                continue
            nonces = self._nonces.setdefault(s, {})
            frontier = self._next_nonce.get(s, 0)
            if nn < frontier or nn in nonces:
                state[i] = DEAD
                op.counts["rejected_stale"] = op.counts.get("rejected_stale", 0) + 1
                if not nonces:
                    del self._nonces[s]
                continue
            nonces[nn] = -1  # placeholder until the uid is known
            admitted.append((int(i), s, nn))
            if nn == frontier:
                frontier += 1
                while frontier in nonces:  # the gap is filled: later nonces already pooled become ready
                    if nonces[frontier] >= 0:
                        promote.append(nonces[frontier])
                    frontier += 1
                self._next_nonce[s] = frontier
            else:
                state[i] = FUTURE
        if promote:
            rows = self._rows_of(np.array(sorted(promote), dtype=np.int64))
            self._uncount(rows, self._c["state"][rows])
            self._c["state"][rows] = READY
            self._uncount(rows, self._c["state"][rows], +1)
        self.counters.rejected_banned += op.counts.get("rejected_banned", 0)
        self.counters.rejected_stale += op.counts.get("rejected_stale", 0)
        return admitted

    def _prefilter_background(self, b: TxBatch, state: np.ndarray, prio: np.ndarray, tip_base: int, op: _Op,
                              all_ready: bool = False, batch_bytes: int = 0) -> int:
        """Reject the new background rows that :meth:`_enforce_limits` would drop right after storing them:
        the ready victims of the pooled + new ready rows (pooled ones count as older). ``prio``: the rows'
        priorities, unless ``tip_base ≥ 0`` (:meth:`_tip_base`: they are then computed here if needed).
        ``all_ready``: every new row is ready (a batch without sender transactions); ``batch_bytes`` is then
        the batch's total length. Returns the number of rows rejected."""
        lim = self.limits
        # pooled ready rows: the occupancy counters, so the rows are only scanned when over a limit
        if all_ready:
            n_new, new_bytes = len(b), int(batch_bytes)
        else:
            new_ready = np.flatnonzero(state == READY)
            n_new, new_bytes = int(new_ready.size), int(b.length_bytes[new_ready].sum())
        if n_new == 0 or (self._count[READY] + n_new <= lim.ready_count
                          and self._bytes[READY] + new_bytes <= lim.ready_bytes):
            return 0
        if all_ready:
            new_ready = np.arange(n_new)
        pooled = np.flatnonzero(self._col("state")[self._lo:] == READY) + self._lo
        count = pooled.size + new_ready.size
        length = np.concatenate([self._col("length")[pooled], b.length_bytes[new_ready]])
        total_bytes = int(length.sum())
        if count <= lim.ready_count and total_bytes <= lim.ready_bytes:
            return 0
        if tip_base >= 0:
            prio = self._priorities(b, tip_base)
        p = np.concatenate([self._col("priority")[pooled], prio[new_ready]])
        if total_bytes <= lim.ready_bytes:  # only the count binds: the count − limit worst, no full sort
            victims = _stable_smallest(p, count - lim.ready_count)
        else:
            worst_first = np.argsort(p, kind="stable")
            victims = worst_first[:_n_to_evict(length[worst_first], count, total_bytes, lim.ready_count,
                                               lim.ready_bytes)]
        victims = new_ready[victims[victims >= pooled.size] - pooled.size]
        victims = victims[b.sender[victims] < 0]
        state[victims] = DEAD
        op.counts["rejected_low_priority"] = op.counts.get("rejected_low_priority", 0) + int(victims.size)
        self.counters.rejected_low_priority += int(victims.size)
        return int(victims.size)

    @staticmethod
    def _submit_outcome(ids: np.ndarray, n_ready: int, n_future: int, op: _Op) -> SubmitOutcome:
        g = op.counts.get
        return SubmitOutcome(ids, n_ready, n_future, g("rejected_banned", 0), g("rejected_stale", 0),
                             g("rejected_low_priority", 0), g("rejected_future_full", 0), g("evicted", 0),
                             op.dropped_payloads())

    def _prune_bans(self, t: float) -> None:
        if len(self._banned) > 4096:
            self._banned = {k: v for k, v in self._banned.items() if v > t}

    def is_banned(self, sender: int, nonce: int, t: float) -> bool:
        """Whether ``(sender, nonce)`` would be rejected as banned at time ``t``."""
        return self._banned.get((int(sender), int(nonce)), -math.inf) > t

    def select_into(self, t: float, exclude_blocks: np.ndarray | list[int] | None, block_id: int) -> np.ndarray:
        """:meth:`select` (default limits), then, if it selected anything, :meth:`mark_included` of those ids
        in block ``block_id`` at ``t``; returns the ids. Without sender transactions in the pool, the
        selecting kernel marks the rows it takes (one pass less); the outcome is the same."""
        return self._select_into(t, exclude_blocks, block_id, True)

    def fill_block(self, t: float, exclude_blocks: np.ndarray | list[int] | None, block_id: int) -> tuple[int, int]:
        """:meth:`select_into` for an author that needs only (how many transactions, their tip total in base
        units): the selecting kernel then does not gather the rows' ids and tips (a fifth of its time)."""
        ids = self._select_into(t, exclude_blocks, block_id, False)
        if ids is None:  # the kernel selected and marked the rows without gathering their ids
            sel = self._sel
            return int(sel[1].size), int(sel[3])
        return int(ids.size), self.tip_total(ids)

    def _select_into(self, t: float, exclude_blocks: np.ndarray | list[int] | None, block_id: int,
                     gather: bool) -> np.ndarray | None:
        """:meth:`select_into`; ``gather`` False: None when the selecting kernel took the rows without
        gathering their ids (see :meth:`_select`)."""
        if int(block_id) in self._blocks:  # (mark_included's error, after the selection as before)
            ids = self.select(t, exclude_blocks)
            if ids.size:
                self.mark_included(ids, block_id, t)
            return ids
        ids = self._select(t, exclude_blocks, None, None, None, None, int(block_id), gather)
        if ids is not None and ids.size and self._sel_included != int(block_id):
            self.mark_included(ids, block_id, t)
        return ids

    def select(self, t: float, exclude_blocks: np.ndarray | list[int] | None = None,
               normal_weight_limit_s: float | None = None, total_weight_limit_s: float | None = None,
               normal_length_limit: int | None = None, total_length_limit: int | None = None) -> np.ndarray:
        """Transaction ids an author puts in a block built at time ``t``, in block order.

        Candidates: ready or in-block transactions with ``t_ready ≤ t < valid_till`` that are not in any
        of ``exclude_blocks`` (the parent's unfinalized ancestry, parent included). Order: priority desc,
        then earlier ``valid_till``, then older insertion. A sender's transaction is available only once
        its predecessor is on the parent's chain, finalized, or taken earlier in this block. Normal
        transactions fill up to the Normal weight limit and the Normal length limit (on total length);
        Operational ones up to the total limits, i.e. into the reserve. Each transaction occupies its
        dispatch weight plus the extrinsic base weight. After ``max_skipped`` transactions that do not fit,
        the proposer stops (Substrate keeps trying until its soft deadline; ``max_skipped=None`` scans all).
        Defaults for the limits come from ``block_limits``: Normal 1.5 s / 3.75 MiB, total 2 s / 5 MiB
        (the block's base execution weight is Mandatory and not counted here).
        """
        return self._select(t, exclude_blocks, normal_weight_limit_s, total_weight_limit_s, normal_length_limit,
                            total_length_limit, None)

    def _select(self, t: float, exclude_blocks: np.ndarray | list[int] | None,
                normal_weight_limit_s: float | None, total_weight_limit_s: float | None,
                normal_length_limit: int | None, total_length_limit: int | None,
                include_block: int | None, gather: bool = True) -> np.ndarray | None:
        """:meth:`select`; with ``include_block``, the independent-rows kernel also marks the rows it takes
        as included in that block (then ``_sel_included`` is that block, else None). ``gather`` False: when
        that kernel selects, it gathers no ids or tips (``_sel`` has the rows and the tip total) and None is
        returned."""
        self._sel_included = None
        bl = self.block_limits
        given = (normal_weight_limit_s, total_weight_limit_s, normal_length_limit, total_length_limit)
        cached = self._default_limits
        if cached is not None and cached[0] is bl and given == (None, None, None, None):
            nw_lim, tw_lim, nl_lim, tl_lim = cached[1]  # (the block limits' defaults, computed once)
        else:
            nw_lim = round((bl.normal_max_weight_s if normal_weight_limit_s is None else normal_weight_limit_s)
                           * WEIGHT_PER_SECOND)
            tw_lim = round((bl.max_weight_s if total_weight_limit_s is None else total_weight_limit_s)
                           * WEIGHT_PER_SECOND)
            nl_lim = int(bl.normal_max_length_bytes if normal_length_limit is None else normal_length_limit)
            tl_lim = int(bl.max_length_bytes if total_length_limit is None else total_length_limit)
            if given == (None, None, None, None):
                self._default_limits = (bl, (nw_lim, tw_lim, nl_lim, tl_lim))

        max_skipped = _NO_LIMIT if self.max_skipped is None else int(self.max_skipped)
        ex_blocks = []
        if exclude_blocks is not None and len(exclude_blocks) and self._blocks:
            blocks = self._blocks
            listed = exclude_blocks.tolist() if isinstance(exclude_blocks, np.ndarray) else exclude_blocks
            ex_blocks = [int(b) for b in listed if int(b) in blocks]
        if not self._nonces:  # no sender transactions: one kernel (falls back below if it cannot order)
            c = self._c
            include = include_block is not None
            key = (float(t), ex_blocks, (nw_lim, tw_lim, nl_lim, tl_lim), max_skipped)
            memo = self._memo
            if include and memo is not None and memo[0] == key:
                return self._select_again(memo[1], include_block, float(t), gather)
            # every block still holding rows is excluded (no fork pending): no in-block row is a candidate,
            # and the scan starts at the first row that may be ready
            in_block_ok = len(set(ex_blocks)) < len(self._blocks)
            excl = np.concatenate([self._blocks[b][0] for b in ex_blocks]) if in_block_ok and ex_blocks \
                else _NO_ROWS
            start = self._lo if in_block_ok else max(self._lo, self._ready_lb)
            gather = gather or not include
            (rows, uids, tips, m, skipped, nw, tw, tl, n_op, ok, first, was_ready, ready_bytes, tip_sum,
             first_ready) = _select_independent(
                c["state"], c["t_ready"], c["valid_till"], c["priority"], c["weight_ps"], c["length"],
                c["operational"], c["uid"], c["tip"], start, self._n, excl, in_block_ok, float(t),
                self._base_ps, nw_lim, tw_lim, nl_lim, tl_lim, max_skipped, include, c["n_blocks"],
                c["t_included"], gather)
            if ok:
                self._ready_lb = int(first_ready)
                ids = self._selected(t, rows, m, n_op, nw, tw, tl, skipped, uids, tips, int(tip_sum), gather)
                if include and rows.size:  # mark_included's bookkeeping for the rows the kernel marked
                    self._count[READY] -= was_ready
                    self._bytes[READY] -= ready_bytes
                    self._count[IN_BLOCK] += was_ready
                    self.counters.included += int(first)
                    self._blocks[include_block] = (rows, float(t))
                    self._sel_included = include_block
                    self._memo = (key, (rows, uids, tips, m, skipped, nw, tw, tl, n_op, gather, int(tip_sum)))
                return ids
        excluded = np.concatenate([self._blocks[b][0] for b in ex_blocks]) if ex_blocks else None
        state = self._col("state")
        cand_mask = (state >= READY) & (self._col("t_ready") <= t) & (self._col("valid_till") > t)
        if excluded is not None:
            cand_mask[excluded] = False
        cand = np.flatnonzero(cand_mask)
        valid_till = self._col("valid_till")[cand]
        prio = self._col("priority")[cand]
        order = cand[np.lexsort((valid_till, -prio))]
        m = order.shape[0]
        waiting = np.zeros(m, np.bool_)
        succ = np.full(m, -1, np.int64)
        if self._nonces:
            self._link_senders(order, cand_mask, excluded, waiting, succ)
        w = self._col("weight_ps")[order] + self._base_ps
        ln = self._col("length")[order]
        opc = self._col("operational")[order]
        ranks, skipped, nw, tw, tl = _fill_block(w, ln, opc, waiting, succ, nw_lim, tw_lim, nl_lim, tl_lim,
                                                 max_skipped)
        return self._selected(t, order[ranks], m, int(opc[ranks].sum()), nw, tw, tl, skipped)

    def _select_again(self, sel: tuple, block_id: int, t: float, gather: bool = True) -> np.ndarray | None:
        """The last kernel selection, for a sibling block ``block_id``: built at the same time on the same
        excluded blocks, with nothing but that selection's own marking changing the pool since.

        Its candidates are then the same rows: those the first block took were ready (or in-block rows of a
        non-excluded block) and are now in-block rows of a non-excluded block, the rest are unchanged. So the
        same order and fill give the same rows, counts and weights; they are marked included in
        ``block_id`` as :meth:`mark_included` does (for a selection's distinct rows), and recorded as a
        selection. Saves the scan of a fork's second block (BABE: several primary leaders in a slot).
        ``gather``: as for :meth:`_select` (the ids are gathered now if the first selection did not)."""
        rows, uids, tips, m, skipped, nw, tw, tl, n_op, gathered, tip_sum = sel
        rows = rows.copy()  # (each block's arrays its own)
        if gathered:
            uids, tips = uids.copy(), tips.copy()
        elif gather:
            uids, tips = _gather_uid_tip(rows, self._c["uid"], self._c["tip"])
        c = self._c
        ok, first, was_ready, ready_bytes = _include(rows, c["state"], c["n_blocks"], c["t_included"],
                                                     c["length"], t, True)
        if not ok:  # pragma: no cover - the rows are in the first block, so in-block
            raise RuntimeError("a repeated selection found rows that are neither ready nor in a block")
        self._count[READY] -= was_ready
        self._bytes[READY] -= ready_bytes
        self._count[IN_BLOCK] += was_ready
        self.counters.included += int(first)
        self._blocks[block_id] = (rows, t)
        self._sel_included = block_id
        return self._selected(t, rows, m, n_op, nw, tw, tl, skipped, uids, tips, tip_sum, gather)

    def _selected(self, t: float, rows: np.ndarray, m: int, n_op: int, nw: int, tw: int, tl: int,
                  skipped: int, uids: np.ndarray | None = None, tips: np.ndarray | None = None,
                  tip_sum: int | None = None, gather: bool = True) -> np.ndarray | None:
        """Record a selection (``last_selection``, ``select_log``) and return its uids in block order
        (``uids``/``tips``: the rows' uids and tips, when the selecting kernel gathered them; ``tip_sum``
        their total, when known). ``gather`` False: none are gathered, None is returned."""
        self.last_selection = SelectionStats(int(m), int(rows.size), int(n_op), tw / WEIGHT_PER_SECOND,
                                             nw / WEIGHT_PER_SECOND, int(tl), int(skipped))
        self.select_log.append(t=t, n_candidates=m, n_selected=rows.size, n_operational=n_op,
                               weight_s=tw / WEIGHT_PER_SECOND, length_bytes=tl, n_skipped=skipped)
        if not gather:
            self._sel = (None, rows, None, tip_sum)
            return None
        if uids is None or tips is None:
            uids, tips = _gather_uid_tip(rows, self._c["uid"], self._c["tip"])
        self._sel = (uids, rows, tips, tip_sum)
        return uids

    def _link_senders(self, order: np.ndarray, cand_mask: np.ndarray, excluded: np.ndarray | None,
                      waiting: np.ndarray, succ: np.ndarray) -> None:
        """Mark candidates whose predecessor nonce must be taken first, and link predecessor → successor."""
        sender = self._col("sender")[order]
        pos = np.flatnonzero(sender >= 0)
        if pos.size == 0:
            return
        rank_of = np.full(self._n, -1, np.int64)
        rank_of[order] = np.arange(order.shape[0])
        is_excluded = np.zeros(self._n, np.bool_)
        if excluded is not None:
            is_excluded[excluded] = True
        nonce = self._col("nonce")
        uid = self._col("uid")
        for p in pos:
            s, nn = int(sender[p]), int(nonce[order[p]])
            pred_uid = self._nonces[s].get(nn - 1)
            if pred_uid is None:
                continue  # predecessor finalized (or nonce 0)
            pred = int(np.searchsorted(uid, pred_uid))
            if is_excluded[pred]:
                continue  # on the parent's chain
            waiting[p] = True
            if cand_mask[pred]:
                succ[rank_of[pred]] = p

    def mark_included(self, ids: np.ndarray, block_id: int, t: float) -> None:
        """Record that block ``block_id`` (authored at ``t``) includes ``ids``; they leave the ready set.
        A transaction may be in several blocks on different forks at once."""
        self._memo = None
        block_id = int(block_id)
        if block_id in self._blocks:
            raise ValueError(f"block {block_id} already recorded")
        sel = self._sel
        selected = sel is not None and ids is sel[0]  # the last selection's rows: distinct
        rows = sel[1] if selected else self._rows_of(ids)
        c = self._c
        ok, first, was_ready, ready_bytes = _include(rows, c["state"], c["n_blocks"], c["t_included"],
                                                     c["length"], float(t), selected)
        if not ok:
            raise ValueError("only ready or in-block transactions can be included")
        self._count[READY] -= was_ready
        self._bytes[READY] -= ready_bytes
        self._count[IN_BLOCK] += was_ready
        self.counters.included += int(first)
        self._blocks[block_id] = (rows, float(t))  # (rows: a fresh array, never written to)

    def _rows_for(self, ids: np.ndarray, *, alive: bool = False) -> np.ndarray:
        """:meth:`_rows_of`, without the search when ``ids`` is the array the last :meth:`select` returned
        (the row layout has not changed since: anything that moves rows or removes them clears it)."""
        sel = self._sel
        if sel is not None and ids is sel[0]:
            return sel[1]
        return self._rows_of(ids, alive=alive)

    def on_finalized(self, finalized_blocks: np.ndarray | list[int], orphaned_blocks: np.ndarray | list[int],
                     t: float) -> FinalizeOutcome:
        """Finalized blocks' transactions leave the pool (latencies recorded); orphaned blocks' transactions
        that are in no other live block return to ready, unless expired (then counted as expired), and the
        ready limits are enforced again (evicting, with bans, as a resubmission would)."""
        self._memo = None
        op = _Op()
        self._sel = None
        state = self._c["state"]
        t_submit = self._c["t_submit"]
        payload = self._c["payload"]
        n_fin = 0
        fin_lat_sum = 0.0
        pay, pay_blocks = [], []
        h_incl = self.inclusion_latency._kernel_args()
        h_fin = self.finality_latency._kernel_args()
        for b in finalized_blocks:
            entry = self._blocks.pop(int(b), None)
            if entry is None:
                continue
            (rows, incl_lat, lat, paid, n_in, n_ready, b_ready, n_future, b_future, near_incl, lo_incl, hi_incl,
             near_fin, lo_fin, hi_fin, incl_sum, lat_sum) = _finalize_rows(
                entry[0], float(entry[1]), float(t), state, t_submit, payload, self._c["length"], h_incl, h_fin)
            if rows.size == 0:
                continue
            self.inclusion_latency.add_binned(incl_lat, near_incl, lo_incl, hi_incl, total=float(incl_sum))
            lat_sum = float(lat_sum)
            self.finality_latency.add_binned(lat, near_fin, lo_fin, hi_fin, total=lat_sum)
            fin_lat_sum += lat_sum
            if paid.size:
                pay.append(paid)
                blocks = np.empty(paid.size, np.int64)
                blocks.fill(int(b))  # (np.full's Python-level overhead is most of its cost here)
                pay_blocks.append(blocks)
            self._count[IN_BLOCK] -= n_in
            self._count[READY] -= n_ready
            self._bytes[READY] -= b_ready
            self._count[FUTURE] -= n_future
            self._bytes[FUTURE] -= b_future
            self._n_alive -= int(rows.size)
            n_fin += int(rows.size)
            if self._nonces:
                self._forget_finalized_senders(rows)
        self.counters.finalized += n_fin

        touched = []
        n_blocks = self._c["n_blocks"]
        for b in orphaned_blocks:
            entry = self._blocks.pop(int(b), None)
            if entry is None:
                continue
            rows = entry[0][state[entry[0]] == IN_BLOCK]
            n_blocks[rows] -= 1
            touched.append(rows)
        n_returned = 0
        if touched:
            rows = np.unique(np.concatenate(touched))
            rows = rows[(n_blocks[rows] == 0) & (state[rows] == IN_BLOCK)]
            valid_till = self._c["valid_till"][rows]
            expired = valid_till <= t
            self._count[IN_BLOCK] -= int(rows.size)
            self._count[READY] += int(rows.size)
            self._bytes[READY] += int(self._c["length"][rows].sum())
            if rows.size:
                self._expire_lb = min(self._expire_lb, float(np.fmin.reduce(valid_till)))
                self._ready_lb = min(self._ready_lb, int(rows[0]))  # (np.unique: ascending)
            state[rows] = READY  # back to ready first, so that expiry below takes sender dependents along
            self._remove(rows[expired], "expired", t, op)
            back = rows[state[rows] == READY]
            n_returned = int(back.size)
            self.counters.returned_from_orphans += n_returned
            if n_returned:
                self._enforce_limits(t, self._next_uid, op)
        self._maybe_compact()
        g = op.counts.get
        self.finalize_log.append(t=t, n_finalized=n_fin, n_returned=n_returned, n_expired=g("expired", 0),
                                 n_evicted=g("evicted", 0),
                                 finality_latency_mean_s=fin_lat_sum / n_fin if n_fin else np.nan)
        empty = np.empty(0, np.int64)
        return FinalizeOutcome(n_fin, n_returned, g("expired", 0), g("evicted", 0), _joined(pay, empty),
                               _joined(pay_blocks, empty), op.dropped_payloads())

    def expire(self, t: float) -> ExpireOutcome:
        """Drop ready and future transactions whose validity ended (``t ≥ t_submit + longevity_s``)."""
        self._memo = None
        if t < self._expire_lb:  # no ready or future row has valid_till <= t: nothing to scan for
            self._maybe_compact()
            return ExpireOutcome(0, np.empty(0, np.int64))
        op = _Op()
        lo = self._lo
        state = self._col("state")[lo:]
        valid_till = self._col("valid_till")[lo:]
        live = (state == READY) | (state == FUTURE)
        due = live & (valid_till <= t)
        self._remove(np.flatnonzero(due) + lo, "expired", t, op)
        rest = valid_till[live & ~due]  # a superset of the ready and future rows left
        lb = float(np.fmin.reduce(rest)) if rest.size else math.inf
        self._expire_lb = lb if lb == lb else math.inf  # (NaN valid_till never expires)
        self._maybe_compact()
        return ExpireOutcome(op.counts.get("expired", 0), op.dropped_payloads())

    # ---- observation ---------------------------------------------------------------------------------

    def size(self) -> int:
        """Transactions in the pool in any state (ready, future, in block)."""
        return self._n_alive

    def ready_count(self) -> int:
        return int(np.count_nonzero(self._col("state") == READY))

    def ready_bytes(self) -> int:
        return int(self._col("length")[self._col("state") == READY].sum())

    def snapshot(self) -> dict[str, int]:
        """Pool occupancy for time series: counts and bytes per state (kept up to date at every state
        change; :meth:`occupancy_recount` recomputes them by a scan)."""
        cnt, byt = self._count, self._bytes
        return {"ready_count": cnt[READY], "ready_bytes": byt[READY], "future_count": cnt[FUTURE],
                "future_bytes": byt[FUTURE], "in_block_count": cnt[IN_BLOCK],
                "unfinalized_blocks": len(self._blocks)}

    def state_of(self, ids: np.ndarray) -> np.ndarray:
        """State codes (FUTURE, READY, IN_BLOCK; DEAD for ids no longer in the pool) of ``ids``."""
        ids = np.asarray(ids, dtype=np.int64)
        uid = self._col("uid")
        rows = np.searchsorted(uid, ids)
        out = np.full(ids.shape, DEAD, np.int8)
        ok = rows < self._n
        ok[ok] = uid[rows[ok]] == ids[ok]
        out[ok] = self._col("state")[rows[ok]]
        return out

    def tips_of(self, ids: np.ndarray) -> np.ndarray:
        """Tips (base units) of transactions still in the pool, e.g. those just selected for a block."""
        sel = self._sel
        if sel is not None and ids is sel[0]:  # gathered by the selection (a copy: the caller may write)
            return sel[2].copy()
        return self._c["tip"][self._rows_for(ids, alive=True)]  # (fancy indexing: a fresh array)

    def tip_total(self, ids: np.ndarray) -> int:
        """``int(tips_of(ids).sum())`` without the copy (or the sum, when the selection summed them)."""
        sel = self._sel
        if sel is not None and ids is sel[0]:
            return int(sel[2].sum()) if sel[3] is None else int(sel[3])
        return int(self.tips_of(ids).sum())

    def payloads_of(self, ids: np.ndarray) -> np.ndarray:
        """Payload references (−1 = plain transfer) of transactions still in the pool."""
        return self._c["payload"][self._rows_for(ids, alive=True)]  # (fancy indexing: a fresh array)

    def counts(self) -> dict[str, int]:
        """All cumulative counters plus ``in_pool`` (the partition in :class:`PoolCounters` holds)."""
        d = {f.name: getattr(self.counters, f.name) for f in fields(self.counters)}
        d["rejected"] = self.counters.rejected
        d["in_pool"] = self._n_alive
        return d

    def tx_success_rate(self, pending: str = "exclude") -> float:
        """Share of submitted transactions that were finalized.

        ``pending`` decides what transactions still in the pool (ready, future, in block) count as:
        ``"exclude"`` (default): left out of the denominator — finalized / (submitted − in_pool), the rate
        among transactions whose fate is known; ``"fail"``: finalized / submitted (a lower bound);
        ``"succeed"``: (finalized + in_pool) / submitted (an upper bound). NaN with an empty denominator.
        """
        c = self.counters
        if pending == "exclude":
            num, den = c.finalized, c.submitted - self._n_alive
        elif pending == "fail":
            num, den = c.finalized, c.submitted
        elif pending == "succeed":
            num, den = c.finalized + self._n_alive, c.submitted
        else:
            raise ValueError(f"pending must be 'exclude', 'fail' or 'succeed', got {pending!r}")
        return num / den if den else math.nan
