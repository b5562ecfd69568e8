"""Network partitions and latency degradation."""

from __future__ import annotations

import numpy as np
import pytest

from ainur_sim.chain.connectivity import Connectivity, Partition
from ainur_sim.chain.network import place_validators
from ainur_sim.chain.regions import REGIONS

N = 6
HALVES = np.array([0, 0, 0, 1, 1, 1])
LAT = np.array([0.0, 0.125, 0.25, 0.375, 0.5, 0.625])  # from author 0; dyadic, so scaling is exact


def _arrivals(t: float) -> np.ndarray:
    return t + LAT


def test_partition_delays_cross_group_until_heal_plus_latency():
    c = Connectivity(N)
    c.add_partition(100.0, 200.0, HALVES)
    t = 150.0
    out = c.adjust_arrivals(0, t, _arrivals(t), LAT)
    assert np.array_equal(out[:3], _arrivals(t)[:3])  # same group untouched
    assert np.allclose(out[3:], 200.0 + LAT[3:])
    # a block that would arrive after the heal anyway keeps its arrival
    late = _arrivals(t).copy()
    late[4] = 260.0
    assert c.adjust_arrivals(0, t, late, LAT)[4] == 260.0
    # the author's side is the reference: from group 1, group 0 is cut off
    out3 = c.adjust_arrivals(3, t, _arrivals(t), LAT)
    assert np.allclose(out3[:3], 200.0 + LAT[:3]) and np.array_equal(out3[3:], _arrivals(t)[3:])


def test_partition_inactive_outside_window_and_decided_at_send_time():
    c = Connectivity(N)
    c.add_partition(100.0, 200.0, HALVES)
    for t in (50.0, 200.0, 300.0):  # before, exactly at heal, after
        assert np.array_equal(c.adjust_arrivals(0, t, _arrivals(t), LAT), _arrivals(t))
    # sent just before the partition starts, in flight when it starts: delivered (send-time rule)
    arr = np.full(N, 100.5)
    arr[0] = 99.9
    assert np.array_equal(c.adjust_arrivals(0, 99.9, arr, LAT), arr)


def test_overlapping_partitions_wait_for_latest_separating_heal():
    c = Connectivity(N)
    c.add_partition(100.0, 200.0, HALVES)
    c.add_partition(120.0, 400.0, np.array([0, 0, 1, 1, 1, 1]))
    out = c.adjust_arrivals(0, 150.0, _arrivals(150.0), LAT)
    assert out[1] == _arrivals(150.0)[1]
    assert out[2] == pytest.approx(400.0 + LAT[2])  # only the second splits 0 and 2
    assert np.allclose(out[3:], 400.0 + LAT[3:])  # both split: the later heal decides
    inf_arr = _arrivals(150.0)
    inf_arr[5] = np.inf  # a missed delivery stays missed
    assert np.isinf(c.adjust_arrivals(0, 150.0, inf_arr, LAT)[5])


def test_degradation_scaling_exact():
    c = Connectivity(N)
    c.add_degradation(0.0, 100.0, 3.0, validators=[2])
    t = 10.0
    out = c.adjust_arrivals(0, t, _arrivals(t), LAT)
    expect = _arrivals(t)
    expect[2] = t + 3.0 * LAT[2]
    assert np.array_equal(out, expect)  # receiver 2 only
    # sender 2 degraded: every link from it is slow
    lat2 = np.array([0.25, 0.5, 0.0, 0.125, 0.75, 1.0])
    assert np.array_equal(c.adjust_arrivals(2, t, t + lat2, lat2), t + 3.0 * lat2)
    # overlapping windows multiply; all-links window
    c.add_degradation(5.0, 50.0, 2.0)
    expect = t + 2.0 * LAT
    expect[2] = t + 6.0 * LAT[2]
    assert np.allclose(c.adjust_arrivals(0, t, _arrivals(t), LAT), expect, rtol=0, atol=1e-12)
    # window ended: untouched
    assert np.array_equal(c.adjust_arrivals(0, 100.0, _arrivals(100.0), LAT), _arrivals(100.0))


def test_degradation_then_partition_heal_not_degraded():
    c = Connectivity(N)
    c.add_degradation(0.0, 1e9, 10.0)
    c.add_partition(100.0, 101.0, HALVES)
    t = 100.5
    out = c.adjust_arrivals(0, t, _arrivals(t), LAT)
    assert np.allclose(out[:3], t + 10.0 * LAT[:3])
    assert np.allclose(out[3:], np.maximum(t + 10.0 * LAT[3:], 101.0 + LAT[3:]))
    assert out[3] == 104.25 and out[5] == 106.75


def test_connected_labels():
    c = Connectivity(N)
    assert c.connected(0.0).tolist() == [0] * N
    c.add_partition(100.0, 200.0, np.array([1, 1, 0, 0, 1, 0]))
    c.add_partition(150.0, 300.0, np.array([5, 5, 5, 7, 7, 7]))
    assert c.connected(120.0).tolist() == [0, 0, 1, 1, 0, 1]  # numbered by first appearance
    assert c.connected(160.0).tolist() == [0, 0, 1, 2, 3, 2]  # intersection of both splits
    assert c.connected(250.0).tolist() == [0, 0, 0, 1, 1, 1]
    assert c.connected(300.0).tolist() == [0] * N


def test_vote_delay_matrix():
    c = Connectivity(N)
    c.add_partition(100.0, 200.0, HALVES)
    c.add_degradation(0.0, 150.0, 4.0, validators=[1])
    senders, receivers = np.array([0, 1, 4]), np.array([1, 2, 3, 5])
    base = np.arange(1.0, 13.0).reshape(3, 4)
    m = c.vote_delay_matrix(120.0, senders, receivers, base)
    expect = np.array([
        [4 * 1.0, 2.0, np.inf, np.inf],
        [4 * 5.0, 4 * 6.0, np.inf, np.inf],
        [np.inf, np.inf, 11.0, 12.0],
    ])
    assert np.array_equal(m, expect)
    assert np.array_equal(c.vote_delay_matrix(160.0, senders, receivers, base)[0], [1.0, 2.0, np.inf, np.inf])
    assert np.array_equal(c.vote_delay_matrix(250.0, senders, receivers, base), base)


def test_split_regions_americas_vs_rest():
    region = place_validators(40, list(REGIONS), [1.0] * len(REGIONS))
    americas = ["us-east-1", "us-west-1", "us-west-2", "sa-east-1"]
    rest = ["eu-west-1", "eu-central-1", "ap-northeast-1", "ap-southeast-1"]
    g = Connectivity.split_regions(region, [americas, rest])
    names = np.array(REGIONS)[region]
    assert np.array_equal(g == 0, np.isin(names, americas))
    assert np.array_equal(g == 1, np.isin(names, rest))
    with pytest.raises(ValueError, match="not in any group"):
        Connectivity.split_regions(region, [americas])
    with pytest.raises(ValueError, match="more than one group"):
        Connectivity.split_regions(region, [americas, [*rest, "us-east-1"]])
    with pytest.raises(ValueError, match="unknown region"):
        Connectivity.split_regions(region, [americas, [*rest, "mars-1"]])


def test_split_fraction_size_and_determinism():
    g = Connectivity.split_fraction(100, 0.34, np.random.default_rng(3))
    assert g.sum() == 34 and set(np.unique(g)) == {0, 1}
    assert np.array_equal(g, Connectivity.split_fraction(100, 0.34, np.random.default_rng(3)))
    assert not np.array_equal(g, Connectivity.split_fraction(100, 0.34, np.random.default_rng(4)))
    c = Connectivity(100, partitions=[Partition(0.0, 10.0, g)])
    assert np.array_equal(c.connected(5.0) == c.connected(5.0)[0], g == g[0])


def test_invalid_windows_rejected():
    c = Connectivity(N)
    with pytest.raises(ValueError):
        c.add_partition(0.0, 10.0, np.zeros(N - 1))
    with pytest.raises(ValueError):
        c.add_partition(10.0, 10.0, HALVES)
    with pytest.raises(ValueError):
        c.add_degradation(0.0, 10.0, 0.0)
    with pytest.raises(ValueError):
        c.add_degradation(0.0, 10.0, 2.0, validators=[N])
