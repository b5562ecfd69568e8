"""The validator network: placement in regions, topology, and block-propagation delays.

A block authored by validator ``a`` at time ``t`` reaches validator ``j`` at

    t + path_latency[a, j] * jitter + hops[a, j] * (transmission(length) + import_time(weight))

where ``path_latency`` is the shortest path over links whose cost is ``hop_latency_factor`` one-way delays
(a node announces a block, the peer requests it, the node sends it: ~3 one-way delays per hop,
polkadot-sdk#10190), ``hops`` is the hop count of that path, ``transmission`` is the block size over the
link bandwidth and ``import_time`` re-executes the block (its weight). Each link's one-way delay is
RTT/2 with a fixed lognormal factor; each delivery gets an extra lognormal factor. All fan-out is numpy:
one call computes a block's arrival at every validator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from ainur_sim.chain.regions import RTT_MS, region_index

if TYPE_CHECKING:
    import networkx as nx


@njit(cache=True)
def _arrivals(t_sent: float, lat: np.ndarray, jitter: np.ndarray, hops: np.ndarray, per_hop: float,
              author: int) -> np.ndarray:
    """``(t_sent + lat · jitter) + hops · per_hop`` elementwise (numpy's operations in numpy's order, the hop
    count converted to float), with the author's own entry ``t_sent``."""
    out = np.empty(lat.shape[0])
    for j in range(lat.shape[0]):
        out[j] = (t_sent + lat[j] * jitter[j]) + float(hops[j]) * per_hop
    out[author] = t_sent
    return out


def place_validators(n: int, regions: list[str], weights: list[float]) -> np.ndarray:
    """Deterministic spread of ``n`` validators over regions in proportion to ``weights``.

    Counts per region follow the largest-remainder rule; validators are interleaved so that the first
    few already span the heaviest regions. Returns the region index (into ``REGIONS``) of each validator.
    """
    w = np.asarray(weights, dtype=float)
    quota = n * w / w.sum()
    counts = np.floor(quota).astype(int)
    remainder_order = np.argsort(-(quota - counts), kind="stable")
    counts[remainder_order[: n - counts.sum()]] += 1
    keys = [((k + 0.5) / c, r) for r, c in enumerate(counts) for k in range(c)]
    keys.sort(key=lambda kr: (kr[0], -w[kr[1]], kr[1]))
    idx = np.array([region_index(regions[r]) for _, r in keys], dtype=np.int64)
    return idx


def build_topology(n: int, topology: str, degree: int, rng: np.random.Generator) -> np.ndarray:
    """Adjacency (bool, n × n, no self-loops) of the validator graph: a full mesh (authority discovery) or
    a random ``degree``-regular graph. The mesh is built without networkx: at 1,000 validators
    ``nx.complete_graph`` and its conversion back to a matrix took ≈ 5 s for half a million edges."""
    if topology == "mesh" or n <= degree + 1:
        return ~np.eye(n, dtype=bool)
    import networkx as nx  # (only random regular graphs need it: its import costs a process ≈ 0.15 s)

    seed = int(rng.integers(2**31 - 1))
    for _ in range(100):
        g = nx.random_regular_graph(degree, n, seed=seed)
        if nx.is_connected(g):
            return nx.to_numpy_array(g, nodelist=range(n), weight=None) > 0
        seed += 1
    raise RuntimeError("could not draw a connected random regular graph")


def _shortest_paths(cost: np.ndarray, hops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs shortest path by cost (Floyd–Warshall, vectorised), carrying the hop count of each path."""
    d = cost.copy()
    h = hops.copy()
    for k in range(d.shape[0]):
        cand = d[:, k : k + 1] + d[k : k + 1, :]
        better = cand < d
        if better.any():
            d = np.where(better, cand, d)
            h = np.where(better, h[:, k : k + 1] + h[k : k + 1, :], h)
    return d, h


@dataclass(frozen=True)
class Network:
    """Static network facts of a run: validator regions and pairwise propagation terms.

    ``path_latency_s[a, j]``: seconds of link latency on the best path from ``a`` to ``j`` (already
    multiplied by the hop factor); ``gossip_s[a, j]``: one-way delay of a small gossip message (a vote)
    along that path; ``hops[a, j]``: links on that path (0 on the diagonal).
    """

    region: np.ndarray
    adjacency: np.ndarray
    owd_s: np.ndarray
    path_latency_s: np.ndarray
    gossip_s: np.ndarray
    hops: np.ndarray
    bandwidth_bps: float
    message_jitter_sigma: float

    @property
    def n(self) -> int:
        return int(self.region.shape[0])

    @property
    def graph(self) -> nx.Graph:
        """The validator graph as networkx (built on demand from ``adjacency``)."""
        import networkx as nx

        return nx.from_numpy_array(self.adjacency.astype(np.int8))

    def arrival_times(
        self,
        author: int,
        t_sent: float,
        length_bytes: float,
        import_s: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Time at which a block finished by ``author`` at ``t_sent`` is imported by each validator (s)."""
        lat = self.path_latency_s[author]
        per_hop = length_bytes * 8.0 / self.bandwidth_bps + import_s
        if self.message_jitter_sigma > 0:
            s = self.message_jitter_sigma
            # = t_sent + lat · jitter + hops · per_hop, numpy's operations in one pass
            return _arrivals(float(t_sent), lat, rng.lognormal(-0.5 * s * s, s, size=lat.shape[0]),
                             self.hops[author], float(per_hop), int(author))
        arr = t_sent + lat + self.hops[author] * per_hop
        arr[author] = t_sent
        return arr


def build_network(
    n: int,
    regions: list[str],
    region_weights: list[float],
    *,
    topology: str = "mesh",
    degree: int = 8,
    intra_region_rtt_ms: float = 2.0,
    link_jitter_sigma: float = 0.15,
    message_jitter_sigma: float = 0.10,
    hop_latency_factor: float = 3.0,
    bandwidth_mbps: float = 100.0,
    rng: np.random.Generator,
) -> Network:
    """Place ``n`` validators, draw the topology and link delays, and precompute all-pairs paths."""
    region = place_validators(n, regions, region_weights)
    rtt = RTT_MS[np.ix_(region, region)].copy()
    same = region[:, None] == region[None, :]
    rtt[same] = intra_region_rtt_ms
    s = link_jitter_sigma
    factor = rng.lognormal(-0.5 * s * s, s, size=(n, n)) if s > 0 else np.ones((n, n))
    factor = np.triu(factor, 1) + np.triu(factor, 1).T  # a link has one latency in both directions
    owd_s = rtt / 2.0 / 1000.0 * factor
    np.fill_diagonal(owd_s, 0.0)
    adj = build_topology(n, topology, degree, rng)
    cost = np.where(adj, hop_latency_factor * owd_s, np.inf)
    np.fill_diagonal(cost, 0.0)
    hops = np.where(adj, 1, 0).astype(np.int64)
    if topology == "mesh" or adj[~np.eye(n, dtype=bool)].all():
        path, path_hops = cost, hops
    else:
        path, path_hops = _shortest_paths(cost, hops)
    gossip = path / hop_latency_factor if hop_latency_factor > 0 else owd_s.copy()
    for arr in (region, adj, owd_s, path, gossip, path_hops):
        arr.setflags(write=False)
    return Network(
        region=region,
        adjacency=adj,
        owd_s=owd_s,
        path_latency_s=path,
        gossip_s=gossip,
        hops=path_hops,
        bandwidth_bps=bandwidth_mbps * 1e6,
        message_jitter_sigma=message_jitter_sigma,
    )
