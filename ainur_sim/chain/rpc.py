"""The API layer of a run: requests users send to RPC nodes, and the latency they see.

Requests follow the run's offered transaction load: every submitted transaction is one submission plus
``reads_per_tx`` state reads, on top of a constant ``base_read_rps`` of reads. Clients are spread over the
regions with the same weights as validators and use the RPC node with the smallest round trip. Each node
is a multi-server queue with an autoscaler (``chain/api.py``).

The API layer is evaluated on the run's offered-load curve, not on the kernel's events: request latency
does not feed back into when transactions reach the pool (a submission's queueing, tens of ms, is small
against the 0.5 s gossip delay and the 6 s slot). So it needs only the config and its own stream, and a
long run evaluates it in a forked child while the chain runs (``perf.api_concurrent``). Long runs are
sampled (``api.sample``; method and measured error in ``chain/api.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ainur_sim.chain.api import ApiResult, SamplePlan, ServiceModel, simulate_api
from ainur_sim.chain.autoscale import AutoscalePolicy
from ainur_sim.chain.load import LoadSchedule
from ainur_sim.chain.regions import RTT_MS, region_index
from ainur_sim.config import Config

FULL_SIMULATION_LIMIT = 2e7  # requests; above this ``api.sample=auto`` samples


def request_rate(schedule: LoadSchedule, reads_per_tx: float, base_read_rps: float, t: np.ndarray) -> np.ndarray:
    """Total API request rate at times ``t`` (req/s)."""
    return schedule.rate(t) * (1.0 + reads_per_tx) + base_read_rps


def simulate_run_api(cfg: Config, schedule: LoadSchedule, duration_s: float, rng: np.random.Generator
                     ) -> tuple[ApiResult, dict[str, Any]]:
    """Simulate the API layer of a run; returns the result and a summary for run statistics."""
    a = cfg.api
    grid = np.arange(0.0, duration_s, 1.0) + 0.5
    rates = request_rate(schedule, a.reads_per_tx, a.base_read_rps, grid)
    tx_rate = schedule.rate(grid)
    expected = float(rates.sum())
    submit_share = float(tx_rate.sum() / expected) if expected > 0 else 0.0
    service = ServiceModel(read_mean_s=a.read_mean_ms / 1000.0, submit_mean_s=a.submit_mean_ms / 1000.0,
                           submit_share=submit_share, distribution=a.service_distribution)
    clients = [region_index(r) for r in cfg.network.regions]
    nodes = [region_index(r) for r in a.node_regions]
    rtt = RTT_MS[np.ix_(clients, nodes)].copy()
    rtt[np.equal.outer(clients, nodes)] = cfg.network.intra_region_rtt_ms
    share = np.asarray(cfg.network.region_weights, dtype=float)
    share = share / share.sum()
    policy = AutoscalePolicy(target_utilization=a.target_utilization, interval_s=a.interval_s,
                             provisioning_delay_s=a.provisioning_delay_s, min_servers=1,
                             max_servers=a.max_servers) if a.autoscale else None
    sampled = a.sample == "sampled" or (a.sample == "auto" and expected > FULL_SIMULATION_LIMIT)
    result = simulate_api(rates, duration_s, rng=rng, servers=a.servers_per_node, service=service, rtt_ms=rtt,
                          client_share=share, policy=policy, sample=SamplePlan() if sampled else None,
                          window_s=a.interval_s, rate_cell_s=1.0)
    summary = {"api_requests": expected, "api_requests_simulated": int(result.n_simulated),
               "api_sampled": bool(result.sampled),
               "api_max_servers": int(np.nanmax(result.series["servers"])) if len(result.series["servers"]) else 0}
    return result, summary
