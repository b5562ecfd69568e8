"""BABE and Aura leader election against their closed forms, measured from simulated blocks."""

from __future__ import annotations

import numpy as np
import pytest

from ainur_sim.chain.consensus import (
    aura_mean_interval,
    babe_empty_slot_share,
    babe_primary_count_shares,
    babe_primary_probability,
)
from ainur_sim.kpi import canonical_intervals
from tests.conftest import cached_run


def test_closed_forms_match_published_table():
    # research/substrate.md §1.2 table (c = 1/4): n = 10 -> 0.7500 / 0.2189 / 0.0311; n = 3 -> 0.2264 / 0.0236
    p0, p1, p2 = babe_primary_count_shares(10, 0.25)
    assert (round(p0, 4), round(p1, 4), round(p2, 4)) == (0.75, 0.2189, 0.0311)
    assert np.round(babe_primary_count_shares(3, 0.25)[1:], 4).tolist() == [0.2264, 0.0236]
    # §1.5: n=10, k=3 -> 24.5 % empty; n=3,k=1 -> 27.5 %; Aura 3 with 1 offline -> 9 s
    assert babe_empty_slot_share(10, 3, 0.25) == pytest.approx(0.245, abs=5e-4)
    assert babe_empty_slot_share(3, 1, 0.25) == pytest.approx(0.275, abs=5e-4)
    assert aura_mean_interval(6.0, 3, 1) == pytest.approx(9.0)


def test_primary_probability_sums_to_c_whatever_the_stake():
    for stake in (np.ones(7), np.array([1.0, 5.0, 0.5, 3.0])):
        p = babe_primary_probability(stake, 0.25)
        assert 1 - np.prod(1 - p) == pytest.approx(0.25, abs=1e-12)


@pytest.fixture(scope="module")
def babe20():
    # 20,000 slots; leader statistics do not depend on finality, so it is off to keep the test quick
    return cached_run("scenario=baseline", "chain.n_validators=20", "duration_s=120000",
                      "finality.enabled=false", "load.tps=0")  # 20,000 slots


def test_babe_primary_shares_match_binomial(babe20):
    b = babe20.blocks
    n_slots = babe20.stats["slots"]
    assert n_slots == 20_000
    primaries = np.bincount(b.loc[b["primary"], "slot"], minlength=n_slots)
    shares = np.array([(primaries == 0).mean(), (primaries == 1).mean(), (primaries >= 2).mean()])
    expected = np.array(babe_primary_count_shares(20, 0.25))
    assert expected.round(3).tolist() == [0.75, 0.217, 0.033]
    assert np.abs(shares - expected).max() < 0.01, (shares, expected)


def test_babe_all_online_fills_every_slot_at_six_seconds(babe20):
    b = babe20.blocks
    assert b["slot"].nunique() == 20_000  # every slot authored
    canon = b.loc[b["canonical"]]
    assert len(canon) == 20_000 and canon["slot"].is_unique  # and every slot on the canonical chain
    iv = canonical_intervals(b)
    assert abs(iv.mean() - 6.0) < 0.1


def test_babe_with_a_third_offline_empty_slot_share():
    n, k, slots = 9, 3, 20_000
    res = cached_run("scenario=baseline", "finality.enabled=false", "load.tps=0", f"chain.n_validators={n}",
                     f"duration_s={slots * 6}",
                     f"faults.offline_validators={k}", "faults.outage_start_s=0",
                     f"faults.outage_duration_s={slots * 6}")
    authored = res.blocks["slot"].nunique()
    empty = 1 - authored / slots
    assert empty == pytest.approx(babe_empty_slot_share(n, k, 0.25), abs=0.012)
    offline = set(res.stats["offline_validators"])
    assert len(offline) == k and not offline & set(res.blocks["author"])


@pytest.mark.parametrize(("n", "k"), [(3, 1), (10, 3), (7, 2)])
def test_aura_offline_mean_interval_and_no_orphans(n, k):
    slots = 6_000
    res = cached_run("scenario=baseline", "finality.enabled=false", "load.tps=0", "chain.consensus=aura",
                     f"chain.n_validators={n}",
                     f"duration_s={slots * 6}", f"faults.offline_validators={k}", "faults.outage_start_s=0",
                     f"faults.outage_duration_s={slots * 6}")
    b = res.blocks
    assert b["canonical"].all() and not b["primary"].any()
    iv = canonical_intervals(b)
    assert iv.mean() == pytest.approx(aura_mean_interval(6.0, n, k), rel=0.02)
    assert (b["author"] == b["slot"] % n).all()  # strict round robin
