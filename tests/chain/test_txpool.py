"""Tests for ainur_sim.chain.txpool: admission, limits, bans, nonces, selection, forks, finality, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ainur_sim.chain.fees import CALL_LENGTHS, CALL_WEIGHTS, WEIGHT_PER_SECOND, BlockLimits, transfers_per_block
from ainur_sim.chain.txpool import (
    _BATCH_DTYPES,
    DEAD,
    IN_BLOCK,
    READY,
    LogHistogram,
    PoolLimits,
    SelectionStats,
    TxBatch,
    TxPool,
    _batch_facts,
    _pairwise_sum,
    _stable_argsort,
    merged_facts,
)

W = CALL_WEIGHTS["transfer"]
L = CALL_LENGTHS["transfer"]
BL = BlockLimits()
BASE_PS = round(BL.extrinsic_base_weight_s * WEIGHT_PER_SECOND)


def transfers(n: int, t: float = 0.0, **kw) -> TxBatch:
    return TxBatch.of(np.full(n, t), W, L, **kw)


def partition_holds(pool: TxPool) -> bool:
    c = pool.counts()
    parts = c["rejected"] + c["evicted"] + c["expired"] + c["finalized"] + c["in_pool"]
    snap = pool.snapshot()
    in_states = snap["ready_count"] + snap["future_count"] + snap["in_block_count"]
    return c["submitted"] == parts and in_states == c["in_pool"]


def reference_select(pool: TxPool, ids: np.ndarray, t: float, nw: int, tw: int, nl: int, tl: int,
                     max_skipped: int | None) -> list[int]:
    """Plain-Python proposer over independent transactions (no sender chains), from the pool's columns."""
    rows = pool._rows_of(ids)
    c = {k: v[rows] for k, v in pool._c.items()}
    keys = [(-int(c["priority"][i]), float(c["valid_till"][i]), int(c["uid"][i])) for i in range(len(rows))]
    out, used_n, used_t, used_l, skipped = [], 0, 0, 0, 0
    for i in sorted(range(len(rows)), key=lambda i: keys[i]):
        if not (c["t_ready"][i] <= t < c["valid_till"][i]):
            continue
        w, ln = int(c["weight_ps"][i]) + BASE_PS, int(c["length"][i])
        if c["operational"][i]:
            fits = used_t + w <= tw and used_l + ln <= tl
        else:
            fits = used_n + w <= nw and used_t + w <= tw and used_l + ln <= nl
        if fits:
            out.append(int(c["uid"][i]))
            used_t += w
            used_l += ln
            used_n += 0 if c["operational"][i] else w
        else:
            if max_skipped is not None and skipped >= max_skipped:
                break
            skipped += 1
    return out


# ---- selection -----------------------------------------------------------------------------------


@pytest.mark.parametrize("max_skipped", [None, 0, 8])
def test_selection_equals_reference_proposer_and_respects_limits(max_skipped):
    rng = np.random.default_rng(3)
    n = 3000
    batch = TxBatch.of(rng.uniform(0, 5, n), rng.uniform(50e-6, 3e-3, n), rng.integers(100, 4000, n),
                       tip=rng.integers(0, 4, n) * 10**9, operational=rng.random(n) < 0.1,
                       fee=rng.integers(10**8, 10**10, n), t_ready=rng.uniform(0, 12, n) + 5.0,
                       longevity_s=rng.uniform(5, 30, n))
    pool = TxPool(PoolLimits(ready_count=10**6, ready_bytes=10**12), max_skipped=max_skipped)
    ids = pool.submit(batch).accepted_ids
    assert ids.size == n
    t = 9.0
    limits = dict(normal_weight_limit_s=0.9, total_weight_limit_s=1.2, normal_length_limit=600_000,
                  total_length_limit=800_000)
    got = pool.select(t, **limits)
    want = reference_select(pool, ids, t, 900 * 10**9, 1200 * 10**9, 600_000, 800_000, max_skipped)
    assert got.tolist() == want

    rows = pool._rows_of(got)
    w = pool._c["weight_ps"][rows] + BASE_PS
    op = pool._c["operational"][rows]
    assert w[~op].sum() <= 900 * 10**9
    assert w.sum() <= 1200 * 10**9
    assert pool._c["length"][rows].sum() <= 800_000
    assert np.unique(got).size == got.size
    assert np.all(pool._c["t_ready"][rows] <= t)
    assert np.all(pool._c["valid_till"][rows] > t)
    s = pool.last_selection
    assert s.n_selected == got.size
    assert s.weight_s == pytest.approx(w.sum() / WEIGHT_PER_SECOND)


def test_highest_priority_first_and_ties_by_age():
    pool = TxPool()
    tips = np.array([5, 0, 9, 3, 9, 1])
    ids = pool.submit(TxBatch.of(np.arange(6.0), W, L, tip=tips)).accepted_ids
    got = pool.select(10.0, normal_weight_limit_s=3.5 * (W + BL.extrinsic_base_weight_s))
    # three fit; tip 9 twice (older first), then tip 5
    assert got.tolist() == [ids[2], ids[4], ids[0]]


def test_smaller_transactions_rank_first_at_equal_tip():
    pool = TxPool()
    ids = pool.submit(TxBatch.of([0.0, 1.0], [W, 4 * W], L)).accepted_ids
    assert pool.select(5.0).tolist() == [ids[0], ids[1]]


def test_shorter_validity_first_at_equal_priority():
    pool = TxPool()
    ids = pool.submit(TxBatch.of([0.0, 1.0], W, L, longevity_s=[100.0, 30.0])).accepted_ids
    assert pool.select(5.0).tolist() == [ids[1], ids[0]]


def test_saturation_at_normal_weight_limit():
    pool = TxPool()
    pool.submit(transfers(8000))
    got = pool.select(1.0)
    per_block = transfers_per_block(BL)
    assert per_block == math.floor(1.5 / 242.061e-6) == 6196
    assert got.size == per_block
    assert got.size / 6.0 == pytest.approx(1032.7, abs=0.1)
    assert pool.last_selection.normal_weight_s <= 1.5
    assert pool.last_selection.normal_weight_s + W + BL.extrinsic_base_weight_s > 1.5


def test_operational_uses_the_reserve_beyond_normal_limit():
    per_tx = W + BL.extrinsic_base_weight_s
    pool = TxPool()
    pool.submit(transfers(8000))
    op_ids = pool.submit(transfers(1000, t=1.0, operational=True, fee=10**9)).accepted_ids
    got = pool.select(2.0)
    taken_op = np.isin(got, op_ids)
    assert taken_op[:1000].all()  # the virtual tip 5 × fee puts them first
    assert taken_op.sum() == 1000 and (~taken_op).sum() == transfers_per_block(BL)
    assert pool.last_selection.normal_weight_s <= 1.5 < pool.last_selection.weight_s <= 2.0

    # Operational ranked *after* normal: with an unbounded proposer they fill the reserve up to 2 s
    big = PoolLimits(ready_count=20_000)
    pool = TxPool(big, max_skipped=None)
    pool.submit(transfers(8000, tip=10**12))
    op_ids = pool.submit(transfers(3000, t=1.0, operational=True, fee=10**9)).accepted_ids
    got = pool.select(2.0)
    taken_op = np.isin(got, op_ids)
    assert (~taken_op).sum() == transfers_per_block(BL)
    assert taken_op.sum() == math.floor(2.0 / per_tx) - transfers_per_block(BL)
    # ... while Substrate's MAX_SKIPPED_TRANSACTIONS stops the proposer before it reaches them
    pool_8 = TxPool(big)
    pool_8.submit(transfers(8000, tip=10**12))
    pool_8.submit(transfers(3000, t=1.0, operational=True, fee=10**9))
    assert pool_8.select(2.0).size == transfers_per_block(BL)
    assert pool_8.last_selection.n_skipped == 8


def test_operational_virtual_tip_outranks_normal_tips():
    pool = TxPool()
    normal = pool.submit(transfers(3, tip=10**9)).accepted_ids
    op = pool.submit(transfers(1, t=1.0, operational=True, fee=10**9)).accepted_ids
    assert pool.select(2.0)[0] == op[0]
    assert set(pool.select(2.0)[1:].tolist()) == set(normal.tolist())


def test_never_selects_excluded_blocks_or_unready():
    pool = TxPool()
    ids = pool.submit(TxBatch.of(np.zeros(10), W, L, t_ready=[0.0] * 8 + [50.0, 50.0])).accepted_ids
    first = pool.select(1.0)
    assert set(first.tolist()) == set(ids[:8].tolist())  # t_ready > t excluded
    pool.mark_included(first[:5], block_id=1, t=1.0)
    child = pool.select(7.0, exclude_blocks=[1])
    assert set(child.tolist()) == set(first[5:].tolist())
    sibling = pool.select(7.0, exclude_blocks=[])  # another fork may include them again
    assert set(sibling.tolist()) == set(first.tolist())
    assert set(pool.select(60.0, exclude_blocks=[1]).tolist()) == set(first[5:].tolist()) | set(ids[8:].tolist())


# ---- admission, eviction, bans -------------------------------------------------------------------


def test_full_pool_evicts_lowest_tips_and_bans_them():
    pool = TxPool(PoolLimits(ready_count=10, ban_s=100.0))
    pool.submit(TxBatch.of(np.zeros(10), W, L, tip=np.arange(10) * 10**6, sender=np.arange(10), nonce=0))
    out = pool.submit(TxBatch.of(np.ones(4), W, L, tip=10**9, sender=np.arange(100, 104), nonce=0))
    assert out.evicted == 4 and out.rejected_low_priority == 0
    state = pool.snapshot()
    assert state["ready_count"] == 10
    # senders 0..3 had the lowest tips
    for s in range(10):
        assert pool.is_banned(s, 0, 2.0) == (s < 4)
    again = pool.submit(TxBatch.of([50.0], W, L, tip=10**10, sender=[2], nonce=[0]))
    assert again.rejected_banned == 1 and again.accepted_ids.size == 0
    later = pool.submit(TxBatch.of([101.0], W, L, tip=10**10, sender=[2], nonce=[0]))
    assert later.rejected_banned == 0 and later.accepted_ids.size == 1
    assert partition_holds(pool)


def test_new_tx_below_everything_in_a_full_pool_is_rejected_not_banned():
    pool = TxPool(PoolLimits(ready_count=5))
    pool.submit(TxBatch.of(np.zeros(5), W, L, tip=10**9, sender=np.arange(5), nonce=0))
    out = pool.submit(TxBatch.of([1.0], W, L, tip=0, sender=[9], nonce=[0]))
    assert out.rejected_low_priority == 1 and out.evicted == 0 and out.accepted_ids.size == 0
    assert not pool.is_banned(9, 0, 1.0)
    assert pool.counters.rejected_low_priority == 1


def test_equal_priority_evicts_oldest():
    pool = TxPool(PoolLimits(ready_count=4))
    old = pool.submit(transfers(4, t=0.0)).accepted_ids
    new = pool.submit(transfers(2, t=1.0)).accepted_ids
    assert new.size == 2
    assert pool.state_of(old).tolist() == [DEAD, DEAD, READY, READY]
    assert pool.counters.evicted == 2


def test_byte_limit_evicts():
    pool = TxPool(PoolLimits(ready_bytes=1000))
    pool.submit(TxBatch.of(np.zeros(5), W, 300, tip=[5, 1, 4, 2, 3]))
    snap = pool.snapshot()
    assert snap["ready_count"] == 3 and snap["ready_bytes"] == 900
    ids = pool.select(1.0)
    assert pool.state_of(ids).tolist() == [READY] * 3


def test_background_transfers_are_never_banned():
    pool = TxPool(PoolLimits(ready_count=2))
    pool.submit(transfers(2, t=0.0))
    pool.submit(transfers(2, t=1.0))
    assert pool.counters.evicted == 2 and pool._banned == {}


# ---- nonces ----------------------------------------------------------------------------------------


def test_future_promoted_when_gap_fills_and_block_keeps_nonce_order():
    pool = TxPool()
    fut = pool.submit(TxBatch.of([0.0, 0.0], W, L, tip=[10**9, 10**10], sender=7, nonce=[1, 2]))
    assert fut.n_future == 2 and fut.n_ready == 0
    assert pool.select(1.0).size == 0
    bg = pool.submit(transfers(3, t=0.5, tip=10**8)).accepted_ids
    first = pool.submit(TxBatch.of([1.0], W, L, tip=0, sender=[7], nonce=[0]))
    assert first.n_ready == 1
    assert pool.state_of(fut.accepted_ids).tolist() == [READY, READY]
    got = pool.select(2.0).tolist()
    # nonce 0 (tip 0) ranks below the background transfers; once taken, nonces 1 and 2 follow at once
    assert got == [*bg.tolist(), first.accepted_ids[0], *fut.accepted_ids.tolist()]


def test_dependent_waits_for_predecessor_not_yet_gossiped():
    pool = TxPool()
    a = pool.submit(TxBatch.of([0.0], W, L, sender=[1], nonce=[0], t_ready=[10.0])).accepted_ids
    b = pool.submit(TxBatch.of([0.0], W, L, sender=[1], nonce=[1], tip=10**9)).accepted_ids
    assert pool.select(5.0).size == 0
    assert pool.select(11.0).tolist() == [a[0], b[0]]
    pool.mark_included(a, 1, 11.0)
    assert pool.select(12.0, exclude_blocks=[1]).tolist() == [b[0]]  # predecessor on the parent chain


def test_duplicate_and_finalized_nonces_are_stale():
    pool = TxPool()
    ids = pool.submit(TxBatch.of([0.0, 0.0], W, L, sender=3, nonce=[0, 1])).accepted_ids
    assert pool.submit(TxBatch.of([1.0], W, L, sender=[3], nonce=[1])).rejected_stale == 1
    pool.mark_included(ids, 1, 1.0)
    pool.on_finalized([1], [], 20.0)
    assert pool.submit(TxBatch.of([21.0], W, L, sender=[3], nonce=[0])).rejected_stale == 1
    assert pool.submit(TxBatch.of([21.0], W, L, sender=[3], nonce=[2])).n_ready == 1
    assert partition_holds(pool)


def test_evicting_a_sender_tx_removes_its_ready_dependents():
    pool = TxPool(PoolLimits(ready_count=3))
    pool.submit(TxBatch.of([0.0, 0.0], W, L, sender=5, nonce=[0, 1], tip=[0, 10**12]))
    pool.submit(TxBatch.of([1.0, 1.0], W, L, tip=10**9))
    # nonce 0 (tip 0) is the worst; its dependent nonce 1 goes with it although its tip is high
    assert pool.counters.evicted == 2 and pool.snapshot()["ready_count"] == 2
    assert pool.is_banned(5, 0, 2.0) and pool.is_banned(5, 1, 2.0)
    assert partition_holds(pool)


# ---- expiry, forks, finality ----------------------------------------------------------------------


def test_expiry():
    pool = TxPool()
    ids = pool.submit(TxBatch.of([0.0, 0.0, 0.0], W, L, longevity_s=[10.0, 20.0, 30.0])).accepted_ids
    assert pool.select(10.0).tolist() == [ids[1], ids[2]]  # not selected once expired, even before expire()
    out = pool.expire(10.0)
    assert out.n_expired == 1 and pool.state_of(ids).tolist() == [DEAD, READY, READY]
    pool.mark_included(ids[1:2], 1, 15.0)
    assert pool.expire(1e6).n_expired == 1  # ids[2]; the in-block ids[1] does not expire
    assert pool.state_of(ids).tolist() == [DEAD, IN_BLOCK, DEAD]
    assert pool.counters.expired == 2 and partition_holds(pool)


def test_orphan_return_and_fork_double_inclusion():
    pool = TxPool()
    ids = pool.submit(transfers(6, longevity_s=[100.0] * 5 + [10.0])).accepted_ids
    pool.mark_included(ids[:4], 1, 6.0)           # block 1 on fork A
    pool.mark_included(ids[2:], 2, 6.5)           # block 2 on fork B
    assert pool.counters.included == 6
    assert pool.snapshot()["in_block_count"] == 6
    out = pool.on_finalized([1], [2], 20.0)
    assert out.n_finalized == 4
    assert out.n_returned == 1 and out.n_expired == 1  # ids[4] returns, ids[5] expired meanwhile
    assert pool.state_of(ids).tolist() == [DEAD] * 4 + [READY, DEAD]
    c = pool.counters
    assert (c.finalized, c.returned_from_orphans, c.expired) == (4, 1, 1)
    assert partition_holds(pool)
    # returned transaction is selectable again and finalizes once
    assert pool.select(21.0).tolist() == [ids[4]]


def test_orphaning_one_fork_keeps_tx_in_the_other():
    pool = TxPool()
    ids = pool.submit(transfers(2)).accepted_ids
    pool.mark_included(ids, 1, 1.0)
    pool.mark_included(ids, 2, 1.0)
    pool.on_finalized([], [2], 5.0)
    assert pool.state_of(ids).tolist() == [IN_BLOCK, IN_BLOCK]
    assert pool.on_finalized([1], [], 9.0).n_finalized == 2
    assert pool.counters.included == 2 and pool.counters.finalized == 2


def test_finality_statistics_and_payloads():
    pool = TxPool()
    ids = pool.submit(TxBatch.of([1.0, 2.0, 3.0], W, L, payload=[-1, 17, 42])).accepted_ids
    pool.mark_included(ids, 1, 4.0)
    out = pool.on_finalized([1], [], 13.0)
    assert out.finalized_payloads.tolist() == [17, 42] and out.finalized_payload_blocks.tolist() == [1, 1]
    assert pool.inclusion_latency.count == 3 and pool.finality_latency.count == 3
    assert pool.inclusion_latency.mean() == pytest.approx(2.0)
    assert pool.finality_latency.mean() == pytest.approx(11.0)
    assert pool.finality_latency.quantile(1.0) == pytest.approx(12.0)
    assert pool.finality_latency.quantile(0.0) == pytest.approx(10.0)
    assert pool.finalize_log["n_finalized"].tolist() == [3]
    assert pool.tx_success_rate() == 1.0
    with pytest.raises(KeyError):
        pool.tips_of(ids)  # finalized transactions have left the pool


def test_tips_and_payloads_of_selected():
    pool = TxPool()
    ids = pool.submit(TxBatch.of([0.0, 1.0], W, L, tip=[7, 0], payload=[-1, 3])).accepted_ids
    got = pool.select(2.0)
    assert got.tolist() == ids.tolist()
    assert pool.tips_of(got).tolist() == [7, 0] and pool.payloads_of(got).tolist() == [-1, 3]


def test_success_rate_modes():
    pool = TxPool(PoolLimits(ready_count=6))
    ids = pool.submit(transfers(8)).accepted_ids  # 2 evicted... rejected (same call)
    pool.mark_included(ids[:3], 1, 1.0)
    pool.on_finalized([1], [], 10.0)
    c = pool.counts()
    assert (c["submitted"], c["rejected_low_priority"], c["finalized"], c["in_pool"]) == (8, 2, 3, 3)
    assert pool.tx_success_rate("exclude") == pytest.approx(3 / 5)
    assert pool.tx_success_rate("fail") == pytest.approx(3 / 8)
    assert pool.tx_success_rate("succeed") == pytest.approx(6 / 8)
    with pytest.raises(ValueError):
        pool.tx_success_rate("maybe")


def test_log_histogram_percentiles_within_bin_width():
    rng = np.random.default_rng(0)
    x = rng.lognormal(2.0, 1.0, 200_000)
    h = LogHistogram()
    h.add(x[:100_000])
    h.add(x[100_000:])
    for q in (0.5, 0.95, 0.99):
        assert h.quantile(q) == pytest.approx(np.quantile(x, q), rel=0.024)
    assert h.count == x.size and h.mean() == pytest.approx(x.mean())


def test_log_histogram_counts_are_the_bin_formulas():
    """The binning kernel (table lookup, runs of samples in one bin counted at once) gives every bin the
    count of the defining formula floor((log10 x − log10 lo) · bins_per_decade): on runs within a bin,
    descending and shuffled values, values on and next to edges, zeros, negatives, under- and overflow."""
    rng = np.random.default_rng(7)
    h0 = LogHistogram()
    edges = 10.0 ** (h0._log_lo + np.arange(0, h0.n_bins + 1, 37) / h0.per_decade)
    samples = [
        np.sort(rng.lognormal(2.0, 0.05, 5_000))[::-1],            # a block's latencies: long runs, descending
        rng.lognormal(1.0, 2.0, 5_000),                            # spread out
        np.repeat(rng.uniform(0.5, 50.0, 50), 40),                 # runs of equal values
        np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf), edges * (1 + 5e-10)]),
        np.array([0.0, -1.0, 1e-5, 1e-4, 2e6, np.inf, 3.0, 3.0, 0.0]),
    ]
    for x in samples:
        h, ref = LogHistogram(), LogHistogram()
        h.add(x)
        ref._add_by_formula(x)
        np.testing.assert_array_equal(h.counts, ref.counts)


def test_rows_survive_compaction():
    pool = TxPool(capacity=64)
    keep = pool.submit(TxBatch.of([0.0], W, L, payload=[5], longevity_s=[1e9])).accepted_ids
    for k in range(20):  # many short-lived rows force growth and compaction
        ids = pool.submit(transfers(500, t=float(k), longevity_s=0.5)).accepted_ids
        pool.mark_included(ids[:100], 100 + k, float(k))
        pool.on_finalized([100 + k], [], float(k) + 0.1)
        pool.expire(float(k) + 1.0)
    assert pool._n < 2000
    assert pool.state_of(keep).tolist() == [READY]
    pool.mark_included(keep, 1, 30.0)
    assert pool.on_finalized([1], [], 40.0).finalized_payloads.tolist() == [5]
    assert partition_holds(pool)


# ---- conservation on random sequences -------------------------------------------------------------


def _random_run(seed: int, steps: int) -> None:
    rng = np.random.default_rng(seed)
    pool = TxPool(PoolLimits(ready_count=int(rng.integers(20, 200)), ready_bytes=int(rng.integers(5_000, 40_000)),
                             future_count=int(rng.integers(2, 20)), future_bytes=4_000, ban_s=30.0),
                  max_skipped=[None, 0, 8][int(rng.integers(3))])
    parent_of: dict[int, int] = {0: -1}
    contents: dict[int, set[int]] = {0: set()}
    finalized_tip = 0
    live: set[int] = set()
    next_block = 1
    next_nonce = np.zeros(6, np.int64)
    t = 0.0
    for _ in range(steps):
        t += float(rng.exponential(2.0))
        kind = rng.integers(5)
        if kind == 0:
            n = int(rng.integers(0, 60))
            sender = np.where(rng.random(n) < 0.3, rng.integers(0, 6, n), -1)
            nonce = np.where(sender >= 0, next_nonce[np.maximum(sender, 0)] + rng.integers(-2, 3, n), 0)
            nonce = np.maximum(nonce, 0)
            for s in sender[sender >= 0]:
                next_nonce[s] += 1
            pool.submit(TxBatch.of(t - rng.uniform(0, 2, n), rng.uniform(1e-5, 0.05, n), rng.integers(50, 800, n),
                                   tip=rng.integers(0, 3, n), operational=rng.random(n) < 0.1, sender=sender,
                                   nonce=nonce, longevity_s=rng.uniform(5, 60, n), fee=rng.integers(0, 1000, n)))
        elif kind == 1:
            parent = int(rng.choice([finalized_tip, *sorted(live)]))
            ancestry, b = [], parent
            while b != finalized_tip:
                ancestry.append(b)
                b = parent_of[b]
            ids = pool.select(t, exclude_blocks=np.array(ancestry, dtype=np.int64),
                              normal_weight_limit_s=0.3, total_weight_limit_s=0.4)
            assert np.unique(ids).size == ids.size
            on_chain = set().union(*(contents[a] for a in ancestry)) if ancestry else set()
            assert not on_chain & set(ids.tolist())
            pool.mark_included(ids, next_block, t)
            parent_of[next_block], contents[next_block] = parent, set(ids.tolist())
            live.add(next_block)
            next_block += 1
        elif kind == 2 and live:
            target = int(rng.choice(sorted(live)))
            path, b = [], target
            while b != finalized_tip:
                path.append(b)
                b = parent_of[b]
            path.reverse()

            def descends(x: int, target: int = target, root: int = finalized_tip) -> bool:
                while x != root and x != target:
                    x = parent_of[x]
                return x == target

            orphans = [b for b in live if b not in path and not descends(b)]
            on_path = np.array(sorted(set().union(*(contents[b] for b in path))), dtype=np.int64)
            assert np.all(pool.state_of(on_path) == IN_BLOCK)
            before = pool.counters.finalized
            pool.on_finalized(np.array(path), np.array(orphans), t)
            assert pool.counters.finalized - before == on_path.size
            assert np.all(pool.state_of(on_path) == DEAD)
            live -= set(path) | set(orphans)
            finalized_tip = target
        elif kind == 3:
            pool.expire(t)
        assert partition_holds(pool)
        assert pool.counters.finalized <= pool.counters.included
    if pool.counters.submitted:
        assert 0.0 <= pool.tx_success_rate("fail") <= pool.tx_success_rate("succeed") <= 1.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), steps=st.integers(1, 60))
def test_conservation_on_random_sequences(seed, steps):
    _random_run(seed, steps)


def test_background_prefilter_matches_storing_then_evicting():
    """Rejecting doomed background rows before storing them gives the same pool as storing and evicting."""

    def run(prefilter: bool, seed: int):
        rng = np.random.default_rng(seed)
        pool = TxPool(PoolLimits(ready_count=300, ready_bytes=int(rng.integers(20_000, 80_000))))
        if not prefilter:
            pool._prefilter_background = lambda *a: 0
        for step in range(15):
            t = 6.0 * step
            n = int(rng.integers(0, 500))
            pool.submit(TxBatch.of(t + rng.uniform(0, 6, n), 1e-4, rng.integers(100, 400, n),
                                   tip=rng.integers(0, 3, n)))
            ids = pool.select(t + 6.0)
            pool.mark_included(ids, step + 1, t + 6.0)
            if step:
                pool.on_finalized([step], [], t + 6.0)
        alive = pool._c["state"][: pool._n] != DEAD
        rows = sorted(zip(pool._c["t_submit"][: pool._n][alive].tolist(),
                          pool._c["priority"][: pool._n][alive].tolist(), strict=True))
        return pool.counts(), rows

    for seed in range(3):
        assert run(True, seed) == run(False, seed)


def test_stable_argsort_is_numpys_stable_argsort():
    """The radix sort that orders tipped candidates equals np.argsort(kind="stable") (ties, signs, extremes)."""
    rng = np.random.default_rng(4)
    for n in (0, 1, 2, 7, 300, 5000):
        for keys in (rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64), rng.integers(-3, 3, n),
                     -rng.integers(0, 2**50, n), np.full(n, 5)):
            np.testing.assert_array_equal(_stable_argsort(keys), np.argsort(keys, kind="stable"))


def test_tips_of_a_selection_is_a_fresh_array():
    """tips_of on the ids select just returned gives the selected rows' tips, in a new array each time."""
    pool = TxPool(block_limits=BL)
    pool.submit(TxBatch.of(np.arange(10.0), W, L, tip=np.arange(10) * 7, longevity_s=100.0))
    ids = pool.select(20.0)
    want = pool._c["tip"][pool._rows_of(ids)]
    a = pool.tips_of(ids)
    a[:] = -1
    np.testing.assert_array_equal(pool.tips_of(ids), want)


def test_merge_sorted_is_the_stable_sort_of_the_concatenation():
    """TxBatch.merge_sorted of batches each in time order equals concat + take(stable argsort), ties keeping
    batch order, on random batches with many equal times."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        batches = []
        for k in range(int(rng.integers(2, 5))):
            n = int(rng.integers(0, 30))
            t = np.sort(rng.integers(0, 10, n).astype(float))
            batches.append(TxBatch.of(t, rng.random(n), rng.integers(1, 300, n), tip=rng.integers(0, 5, n),
                                      payload=np.full(n, k), operational=rng.random(n) < 0.5,
                                      longevity_s=rng.random(n) + 1, sender=rng.integers(-1, 3, n),
                                      nonce=rng.integers(0, 9, n), t_ready=t + rng.random(n),
                                      fee=rng.integers(0, 99, n)))
        cat = TxBatch.concat(batches)
        want = cat.take(np.argsort(cat.t_submit, kind="stable"))
        got = TxBatch.merge_sorted(batches)
        for name, dt in _BATCH_DTYPES.items():  # (two batches: one kernel for all columns; more: per column)
            assert getattr(got, name).dtype == dt, name
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))


def test_pairwise_sum_is_numpys_sum_bit_for_bit():
    """The finalize kernel's latency sums (_pairwise_sum, numpy's summation order) equal ndarray.sum() exactly,
    for every length up to 300 and longer ones (several levels of halving), on values of very different
    magnitudes, descending runs as a block's latencies come, -0.0, and with inf and NaN among them."""
    rng = np.random.default_rng(4)
    sizes = [*range(300), 1000, 1023, 4097, 6196, 20_000]
    for n in sizes:
        for x in (rng.lognormal(2.0, 3.0, n), np.sort(rng.uniform(5, 30, n))[::-1].copy(), rng.normal(0, 1e6, n)):
            assert (0.0 + _pairwise_sum(x, 0, n)).hex() == float(x.sum()).hex(), n
    assert (0.0 + _pairwise_sum(np.array([-0.0]), 0, 1)).hex() == float(np.array([-0.0]).sum()).hex()
    special = rng.normal(0, 1, 500)
    special[[3, 200]] = np.inf
    assert 0.0 + _pairwise_sum(special, 0, 500) == special.sum() == np.inf
    special[100] = np.nan
    assert np.isnan(0.0 + _pairwise_sum(special, 0, 500)) and np.isnan(special.sum())


def test_merged_facts_are_the_scan_of_the_merged_batch():
    """merged_facts (a's facts known, b scanned) equals _batch_facts of merge_sorted([a, b]) on random
    batches: one call shape or several, equal shapes across the two, senders, empty sides."""
    rng = np.random.default_rng(11)
    shapes = [(W, L, False, 0), (W, L, True, 0), (2 * W, L, False, 0), (W, L + 1, False, 0), (W, L, False, 7)]
    for _ in range(400):
        parts = []
        for _side in range(2):
            n = int(rng.integers(0, 6))
            pick = rng.integers(0, len(shapes), n) if rng.random() < 0.5 else np.full(n, int(rng.integers(0, 3)))
            w, ln, op, fee = (np.array([shapes[k][j] for k in pick]) for j in range(4))
            t = np.sort(rng.integers(0, 5, n).astype(float))
            parts.append(TxBatch.of(t, w.astype(float), ln.astype(np.int64), operational=op.astype(bool),
                                    fee=fee.astype(np.int64), sender=np.where(rng.random(n) < 0.1, 3, -1)))
        a, b = parts
        if len(a) + len(b) == 0:
            continue
        fa = _batch_facts(a.t_submit, a.weight_s, a.length_bytes, a.operational, a.fee, a.sender) if len(a) \
            else (True, True, False, 0)
        m = TxBatch.merge_sorted([a, b])
        want = _batch_facts(m.t_submit, m.weight_s, m.length_bytes, m.operational, m.fee, m.sender)
        assert merged_facts(a, fa, b) == tuple(want)


def _ready_lb_holds(pool: TxPool) -> bool:
    """No ready row below ``TxPool._ready_lb`` (where a selection that takes no in-block row starts)."""
    lb = max(pool._lo, min(pool._ready_lb, pool._n))
    return not (pool._c["state"][pool._lo:lb] == READY).any()


def _fork_history(pool: TxPool, rng: np.random.Generator, fill: bool = False) -> list:
    """Slots with one to three sibling blocks (same time, same parent), children of either sibling, more
    load than a block holds, tips (so the head is sorted), late submissions between siblings, finality and
    orphans; returns what each call gave (``fill``: blocks built with ``fill_block``, which gives the count
    and the tip total; else ``select_into``, whose ids are recorded with their count and tip total).
    Checks after every call that no ready row lies below the scan start ``_ready_lb``."""
    got = []
    next_block, heads = 1, [0]  # block 0: the finalized base (holds no rows)
    chain = {0: []}  # block -> its unfinalized ancestry, itself included (what an author excludes)
    for slot in range(1, 9):
        t = 6.0 * slot
        n = int(rng.integers(3000, 9000))
        pool.submit(TxBatch.of(np.sort(rng.uniform(t - 6, t - 1, n)), W, L,
                               tip=np.where(rng.random(n) < 0.2, rng.integers(1, 50, n), 0), longevity_s=40.0))
        new_heads = []
        parents = [heads[int(rng.integers(0, len(heads)))]] * int(rng.integers(1, 4))
        if rng.random() < 0.3:  # a sibling on another head: other excluded blocks, not repeated
            parents.append(heads[-1])
        for k, parent in enumerate(parents):
            b = next_block
            next_block += 1
            if k and rng.random() < 0.3:  # a late submission between siblings: the pool changed, no repeat
                pool.submit(TxBatch.of(np.full(5, t - 3.0), W, L, tip=100, longevity_s=40.0))
            if fill:
                got.append((b, *pool.fill_block(t, chain[parent], b), pool.last_selection))
            else:
                ids = pool.select_into(t, chain[parent], b)
                got.append((b, ids.copy(), int(ids.size), int(pool.tips_of(ids).sum()), pool.last_selection))
            assert _ready_lb_holds(pool)
            chain[b] = [*chain[parent], b]
            new_heads.append(b)
        heads = new_heads
        if slot % 3 == 0:  # finalize the first head's ancestry, orphan the other heads' own blocks
            keep = chain[heads[0]]
            orphaned = sorted({x for h in heads[1:] for x in chain[h]} - set(keep))
            out = pool.on_finalized(keep, orphaned, t + 1.0)
            got.append((out.n_finalized, out.n_returned, out.n_expired, out.n_evicted))
            assert _ready_lb_holds(pool)
            chain = {h: [h] for h in heads[:1]}
            heads = heads[:1]
    return got


def test_a_sibling_blocks_selection_is_the_first_ones_repeated():
    """Sibling blocks built at the same time on the same excluded blocks get the last selection again
    (TxPool._select_again); everything the pool returns, records and holds is what selecting from scratch
    gives (the reference clears the remembered selection before every call)."""
    for seed in range(6):
        # (even seeds: the default ready limit, which evicts; odd: room for everything)
        limits = PoolLimits() if seed % 2 == 0 else PoolLimits(ready_count=60_000, ready_bytes=50 * 2**20)
        a, b = TxPool(limits), _Scratch(limits)
        repeated = []
        orig = a._select_again
        a._select_again = lambda *args, _o=orig, _r=repeated: _r.append(1) or _o(*args)
        ga, gb = _fork_history(a, np.random.default_rng(seed)), _fork_history(b, np.random.default_rng(seed))
        _assert_same_history(ga, gb)
        _assert_same_pool(a, b)
        assert repeated  # (the shortcut was taken)


class _Scratch(TxPool):
    """A pool that selects from scratch every time: no remembered selection, the scan from the first row."""

    def select_into(self, t, exclude_blocks, block_id):
        self._memo = None
        self._ready_lb = 0
        return super().select_into(t, exclude_blocks, block_id)


def _assert_same_history(ga: list, gb: list) -> None:
    assert len(ga) == len(gb)
    for x, y in zip(ga, gb, strict=True):
        assert len(x) == len(y)
        for u, v in zip(x, y, strict=True):
            assert np.array_equal(u, v) if isinstance(u, np.ndarray) else u == v


def _assert_same_pool(a: TxPool, b: TxPool) -> None:
    assert a.select_log.to_frame().equals(b.select_log.to_frame())
    assert a.finalize_log.to_frame().equals(b.finalize_log.to_frame())
    for col in ("state", "n_blocks", "t_included", "uid"):
        assert np.array_equal(a._c[col][:a._n], b._c[col][:b._n], equal_nan=True), col
    assert a.counts() == b.counts() and a.snapshot() == b.snapshot()
    assert {k: v[0].tolist() for k, v in a._blocks.items()} == {k: v[0].tolist() for k, v in b._blocks.items()}
    assert partition_holds(a)


def test_fill_block_is_select_into_without_the_ids():
    """An author that needs only the count and the tip total (TxPool.fill_block: no ids gathered, the
    remembered selection, the scan from _ready_lb) builds the same blocks as selecting from scratch with
    ids, and leaves the pool the same; the ready-row bound holds after every call (_fork_history)."""
    for seed in range(6):
        limits = PoolLimits() if seed % 2 == 0 else PoolLimits(ready_count=60_000, ready_bytes=50 * 2**20)
        a, b = TxPool(limits), _Scratch(limits)
        ga = _fork_history(a, np.random.default_rng(seed), fill=True)
        gb = [x if len(x) != 5 else (x[0], *x[2:]) for x in _fork_history(b, np.random.default_rng(seed))]
        _assert_same_history(ga, gb)
        _assert_same_pool(a, b)
        assert any(x[1] and x[2] for x in ga if len(x) == 4 and isinstance(x[3], SelectionStats))  # tips taken


def test_rows_an_orphaned_fork_returns_below_the_scan_start_are_selected_again():
    """A chain of two blocks (1, then 3 on it) and a third (4 on 3, its scan starting past both blocks'
    rows) is orphaned but for block 1: the rows of 3 and 4 return to ready below where the last scan
    started, so the scan start must come down (TxPool._ready_lb), and the next block takes them as a pool
    selecting from scratch does."""
    roomy = PoolLimits(ready_count=60_000, ready_bytes=50 * 2**20)
    a, b = TxPool(roomy), _Scratch(roomy)
    got = {id(a): [], id(b): []}
    n = 3 * transfers_per_block(BL) + 500
    for pool in (a, b):
        pool.submit(TxBatch.of(np.linspace(0.0, 5.0, n), W, L, longevity_s=600.0))
        for blk, t, excl in ((1, 6.0, []), (3, 12.0, [1]), (4, 18.0, [1, 3])):
            ids = pool.select_into(t, excl, blk)
            got[id(pool)].append(ids.copy())
            assert _ready_lb_holds(pool)
        out = pool.on_finalized([1], [3, 4], 20.0)
        assert out.n_returned == got[id(pool)][1].size + got[id(pool)][2].size
        assert _ready_lb_holds(pool)
        got[id(pool)].append(pool.fill_block(24.0, [], 5))
        got[id(pool)].append(pool.select_into(30.0, [5], 6).copy())
    ga, gb = got[id(a)], got[id(b)]
    assert ga[3] == (transfers_per_block(BL), 0) and np.array_equal(ga[4], gb[4])
    assert all(np.array_equal(x, y) for x, y in zip(ga[:3], gb[:3], strict=True))
    assert a._c["state"][:a._n].tolist() == b._c["state"][:b._n].tolist()
