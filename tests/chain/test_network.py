from __future__ import annotations

import numpy as np
import pytest

from ainur_sim.chain.network import build_network, place_validators
from ainur_sim.chain.regions import REGIONS, RTT_MS
from ainur_sim.config import NetworkConfig


def _net(n: int, **kw):
    d = NetworkConfig()
    return build_network(n, kw.pop("regions", d.regions), kw.pop("weights", d.region_weights),
                         rng=np.random.default_rng(0), **kw)


def test_rtt_matrix_symmetric_and_sourced():
    assert np.allclose(RTT_MS, RTT_MS.T) and (np.diag(RTT_MS) == 0).all()
    i, j = REGIONS.index("eu-west-1"), REGIONS.index("eu-central-1")
    assert RTT_MS[i, j] == pytest.approx(19.6)


def test_default_placement_spreads_over_six_or_more_regions():
    d = NetworkConfig()
    assert len(np.unique(place_validators(10, d.regions, d.region_weights))) >= 6
    counts = np.bincount(place_validators(160, d.regions, d.region_weights), minlength=len(REGIONS))
    w = np.array(d.region_weights)
    expected = np.zeros(len(REGIONS))
    expected[[REGIONS.index(r) for r in d.regions]] = 160 * w / w.sum()
    assert np.abs(counts - expected).max() <= 1


def test_latency_is_half_rtt_times_jitter_and_single_region_is_fast():
    net = _net(40, link_jitter_sigma=0.0, message_jitter_sigma=0.0, hop_latency_factor=1.0)
    r = net.region
    expected = RTT_MS[np.ix_(r, r)] / 2000.0
    same = r[:, None] == r[None, :]
    expected[same] = 0.001
    np.fill_diagonal(expected, 0.0)
    assert np.allclose(net.owd_s, expected)
    local = _net(10, regions=["us-east-1"], weights=[1.0], link_jitter_sigma=0.0, message_jitter_sigma=0.0)
    assert local.path_latency_s.max() == pytest.approx(3 * 0.001)


def test_arrival_includes_bandwidth_and_import_terms():
    net = _net(5, link_jitter_sigma=0.0, message_jitter_sigma=0.0, bandwidth_mbps=8.0)
    rng = np.random.default_rng(1)
    small = net.arrival_times(0, 10.0, 0, 0.0, rng)
    big = net.arrival_times(0, 10.0, 1_000_000, 0.5, rng)  # 1 MB at 8 Mbit/s = 1 s, plus 0.5 s import
    assert small[0] == big[0] == 10.0
    assert np.allclose((big - small)[1:], 1.5)


def test_random_regular_paths_are_shortest_and_count_hops():
    net = _net(60, topology="random_regular", degree=4)
    assert (net.hops[~np.eye(60, dtype=bool)] >= 1).all() and net.hops.max() >= 2
    direct = 3.0 * net.owd_s
    adj = net.hops == 1
    assert (net.path_latency_s[adj] <= direct[adj] + 1e-12).all()
    # triangle inequality holds on shortest paths
    k = 7
    assert (net.path_latency_s <= net.path_latency_s[:, [k]] + net.path_latency_s[[k], :] + 1e-12).all()
