"""GRANDPA: thresholds, voting rules, GHOST, stalls and catch-up, latency, safety, equivocation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

from ainur_sim import compose, run
from ainur_sim.chain.blocktree import BlockTree, finality_is_safe
from ainur_sim.chain.finality import (
    _BUCKETS,
    _kth_and_max,
    _kth_and_max_of,
    _round_timing,
    equivocation_slash_fraction,
    ghost,
    jitter_factors,
    selection_network,
    supermajority,
    vote_target_heights,
)
from ainur_sim.kpi import finality_lags
from tests.conftest import cached_run


def test_supermajority_matches_grandpa_voter_set_table():
    # research/substrate.md §3.1
    assert [supermajority(n) for n in (3, 4, 5, 7, 10, 100, 300)] == [3, 3, 4, 5, 7, 67, 201]


def test_voting_rules():
    # base 10: best 20 -> min(18, 10 + (30 + 2) // 4 = 18) = 18; best 11 -> base (within 2); best 14 -> 12;
    # best 100 -> min(98, 10 + 272 // 4 = 78) = 78
    assert vote_target_heights(np.array([20, 11, 14, 100]), 10, 2).tolist() == [18, 10, 12, 78]


def test_ghost_counts_votes_for_ancestors():
    t = BlockTree()
    a = t.add(0, 1, 0, True, 1.0, 0, 0.0, 1)
    b = t.add(a, 2, 0, True, 2.0, 0, 0.0, 1)
    c1 = t.add(b, 3, 0, True, 3.0, 0, 0.0, 1)
    c2 = t.add(b, 3, 1, False, 3.0, 0, 0.0, 1)
    votes = np.array([c1, c1, c1, c2, c2, a, b]).repeat(2).reshape(-1, 2)
    assert ghost(t, votes, 5, 0) == b          # b has 6 supporters, c1 only 3
    assert ghost(t, votes, 7, 0) == a          # a: all 7 supporters
    assert ghost(t, votes, 3, 0) == c1
    # an equivocator supporting both forks counts once per block
    eq = np.array([[c1, c2], [c1, c1], [c2, c2]])
    assert ghost(t, eq, 3, 0) == b and ghost(t, eq, 2, 0) in (c1, c2)


def test_slash_fraction_formula():
    assert equivocation_slash_fraction(1, 100) == pytest.approx(0.0009)
    assert equivocation_slash_fraction(1, 10) == pytest.approx(0.09)
    assert equivocation_slash_fraction(1, 4) == pytest.approx(0.5625)
    assert equivocation_slash_fraction(1, 3) == 1.0


def _outage(n: int, k: int, start: float = 600.0, dur: float = 1200.0, total: float = 3000.0):
    return cached_run("scenario=baseline", f"chain.n_validators={n}", f"duration_s={total}",
                      f"faults.offline_validators={k}", f"faults.outage_start_s={start}",
                      f"faults.outage_duration_s={dur}")


def _finalized_during(res, t0: float, t1: float) -> int:
    f = res.blocks["t_finalized"]
    return int(((f >= t0) & (f < t1)).sum())


def test_ten_validators_three_offline_keep_finalizing():
    res = _outage(10, 3)
    assert _finalized_during(res, 700, 1800) > 100
    assert res.stats["finality_safe"]


def test_ten_validators_four_offline_stall_then_catch_up_within_a_minute():
    start, dur = 600.0, 1200.0
    res = _outage(10, 4, start, dur)
    b = res.blocks
    assert _finalized_during(res, start + 30, start + dur) == 0           # finality stalls ...
    in_window = b[(b["t_authored"] >= start) & (b["t_authored"] < start + dur)]
    assert len(in_window) > 100                                             # ... while blocks continue
    before_end = b[b["canonical"] & (b["t_authored"] < start + dur)]
    assert before_end["t_finalized"].notna().all()
    assert before_end["t_finalized"].max() <= start + dur + 60              # all caught up within a minute
    assert res.kpis["finality_p95_s"]["pass"] is False


def test_three_validators_stall_with_one_offline():
    res = _outage(3, 1, 600, 600, 1800)
    assert _finalized_during(res, 630, 1200) == 0
    assert _finalized_during(res, 1200, 1800) > 50


def test_healthy_global_network_median_lag_12_to_18_s(baseline_run):
    lags = finality_lags(baseline_run.blocks)
    assert 12.0 <= np.median(lags) <= 18.0
    assert baseline_run.kpis["finality_p95_s"]["value"] is not None
    assert baseline_run.stats["finality_safe"]


def test_finality_is_safe_detects_conflicts():
    import pandas as pd

    ok = pd.DataFrame({"block_id": [1, 2, 3], "parent_id": [0, 1, 2], "number": [1, 2, 3],
                       "t_finalized": [5.0, 6.0, np.nan]})
    assert finality_is_safe(ok)
    bad = ok.assign(parent_id=[0, 1, 9], t_finalized=[5.0, 6.0, 7.0])  # block 3 does not extend block 2
    assert not finality_is_safe(bad)
    twin = ok.assign(number=[1, 2, 2], t_finalized=[5.0, 6.0, 7.0])   # two finalized at height 2
    assert not finality_is_safe(twin)


def test_equivocations_are_reported_and_slashed_by_formula():
    res = cached_run("scenario=baseline", "duration_s=1200", "chain.n_validators=10",
                     "finality.byzantine_fraction=0.2", "finality.equivocation_prob=1.0")
    off = res.extra_tables["offences"]
    assert len(off) > 50 and set(off["validator"]) <= set(range(10)) and off["validator"].nunique() == 2
    assert np.allclose(off["slash_fraction"], [equivocation_slash_fraction(k, 10) for k in off["offenders"]])
    assert res.stats["finality_safe"] and res.stats["finalized_height"] > 150


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 12),
    consensus=st.sampled_from(["babe", "aura"]),
    offline_share=st.floats(0.0, 0.6),
    byz_share=st.floats(0.0, 0.32),
    equivocation=st.floats(0.0, 1.0),
    slot=st.sampled_from([0.5, 2.0, 6.0]),
    seed=st.integers(0, 10_000),
)
def test_property_finality_safety(n, consensus, offline_share, byz_share, equivocation, slot, seed):
    k = int(offline_share * n)
    dur = slot * 150
    res = run(compose([
        "scenario=baseline", f"seed={seed}", f"chain.consensus={consensus}", f"chain.n_validators={n}",
        f"chain.slot_s={slot}", f"duration_s={dur}", f"faults.offline_validators={k}",
        f"faults.outage_start_s={dur / 3}", f"faults.outage_duration_s={dur / 3 if k else 0}",
        f"finality.byzantine_fraction={byz_share}", f"finality.equivocation_prob={equivocation}",
    ]))
    b = res.blocks
    assert finality_is_safe(b)
    fin = b[b["t_finalized"].notna()]
    assert fin["canonical"].all()                       # finalized blocks are on the canonical chain
    assert (fin["t_finalized"] >= fin["t_authored"]).all()
    assert fin["block_id"].is_unique


def test_selection_network_gives_the_order_statistics():
    """The comparator network of the round timing leaves the k-th smallest and the largest of every column
    where a full sort puts them (ties and infinities included); a NaN takes the quickselect path."""
    rng = np.random.default_rng(0)
    for n in range(1, 101):
        for k in sorted({1, max(1, n // 2), supermajority(n), n}):
            net = selection_network(n, k)
            assert net.ndim == 2 and (net[:, 0] < net[:, 1]).all() and (net < n).all()
            for case in range(3):
                a = rng.uniform(0.0, 1.0, (n, 7))
                if case == 1:
                    a = np.round(a * 3)
                elif case == 2:
                    a[rng.random((n, 7)) < 0.2] = np.inf
                want = np.sort(a, axis=0)
                kth, largest = np.empty(7), np.empty(7)
                _kth_and_max(a, k, net, np.empty(n), kth, largest)
                np.testing.assert_array_equal(kth, want[k - 1])
                np.testing.assert_array_equal(largest, want[-1])
    a = rng.uniform(0.0, 1.0, (9, 3))
    a[4, 1] = np.nan
    kth, largest = np.empty(3), np.empty(3)
    _kth_and_max(a.copy(), 6, selection_network(9, 6), np.empty(9), kth, largest)
    np.testing.assert_array_equal(kth[[0, 2]], np.sort(a[:, [0, 2]], axis=0)[5])


def test_bucketed_column_selection_gives_the_order_statistics():
    """The column-by-column selection of large voter sets returns a full sort's k-th smallest and largest:
    spread values, heavy ties, a cluster filling one bucket, all equal, infinities; and with a NaN the
    numbers the matrix path gives (quickselect and a scan)."""
    rng = np.random.default_rng(3)
    cnt = np.empty(_BUCKETS, np.int64)
    for n in (1, 2, 3, 100, 257, 1000):
        for k in sorted({1, max(1, n // 2), supermajority(n), n}):
            cases = [rng.uniform(0.0, 1.0, n), np.round(rng.uniform(0.0, 3.0, n)), np.full(n, 2.5),
                     np.concatenate([rng.uniform(0.0, 1e-9, n - n // 10), rng.uniform(5.0, 6.0, n // 10)]),
                     10.0 + rng.lognormal(0.0, 1.0, n)]
            with_inf = rng.uniform(0.0, 1.0, n)
            with_inf[rng.random(n) < 0.2] = np.inf
            cases.append(with_inf)
            for col in cases:
                want = np.sort(col)
                assert _kth_and_max_of(col.copy(), k, cnt, np.empty(n)) == (want[k - 1], want[-1]), (n, k)
    col = rng.uniform(0.0, 1.0, 9)
    col[4] = np.nan
    kth, largest = np.empty(1), np.empty(1)
    _kth_and_max(col.reshape(9, 1).copy(), 6, selection_network(9, 6), np.empty(9), kth, largest)
    got = _kth_and_max_of(col.copy(), 6, cnt, np.empty(9))
    np.testing.assert_array_equal(np.array(got), np.array([kth[0], largest[0]]))


@pytest.mark.parametrize("nv", [100, 301])
def test_round_timing_by_columns_equals_the_comparator_network(nv):
    """Both ways of taking the round's order statistics give the same completion times, to the bit."""
    rng = np.random.default_rng(nv)
    no = min(nv, 100)
    lat = rng.uniform(0.05, 0.3, (nv, no))
    lat[rng.random((nv, no)) < 0.01] = np.inf  # (cut links)
    prev = rng.uniform(0.0, 1.0, nv)
    noise = rng.standard_normal((2, nv, no))
    pick = rng.integers(0, no, nv)
    obs = np.sort(rng.choice(nv, no, replace=False))
    thr = supermajority(nv)
    for unanimous in (False, True):
        args = (0.5, prev, lat, noise, -0.02, 0.2, pick, obs, unanimous, thr, 1.0, 0.01, (2 * no) // 3)
        done_net, t_net = _round_timing(*args, selection_network(nv, thr), False)
        done_col, t_col = _round_timing(*args, np.zeros((0, 2), np.int64), True)
        np.testing.assert_array_equal(done_col, done_net)
        assert t_col == t_net
        # the jitter factors computed beforehand (as a child drawing ahead does) give the same bits
        factors = jitter_factors(noise, -0.02, 0.2).reshape(noise.shape)
        given = (0.5, prev, lat, factors, 0.0, 0.0, *args[6:])
        for net, by_columns in ((selection_network(nv, thr), False), (np.zeros((0, 2), np.int64), True)):
            done, t_done = _round_timing(*given, net, by_columns, True)
            np.testing.assert_array_equal(done, done_net)
            assert t_done == t_net


def test_vote_jitter_from_normal_draws_is_generators_lognormal():
    """The round timing computes the vote jitter as exp(mu + sigma · z) from standard normal draws; that is
    Generator.lognormal(mu, sigma) bit for bit (same draws, same C library exp), and leaves the stream at
    the same position."""

    @njit
    def jitter(z, mu, sigma):
        out = np.empty_like(z)
        for i in range(z.shape[0]):
            out[i] = math.exp(mu + sigma * z[i])
        return out

    for seed in range(4):
        for s in (0.1, 0.3, 1.0):
            a, b = np.random.default_rng(seed), np.random.default_rng(seed)
            want = a.lognormal(-0.5 * s * s, s, 20_000)
            np.testing.assert_array_equal(jitter(b.standard_normal(20_000), -0.5 * s * s, s), want)
            assert a.random() == b.random()
