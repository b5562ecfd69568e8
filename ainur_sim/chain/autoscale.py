"""Autoscaling of RPC server pools: the policy, its decision rule and a fluid (rate-level) model.

The policy is target tracking on *offered* load, the signal a request-count autoscaler (AWS
``ALBRequestCountPerTarget``, a Kubernetes HPA on request rate) sees: every ``interval_s`` it measures the
service work that arrived in the last interval (seconds of server time) and the queued work not yet
served (backlog), and asks for

    desired = ⌈(work / interval + backlog / backlog_drain_s) / target_utilization⌉   servers,

clamped to [min_servers, max_servers]. Offered load, unlike CPU utilization, does not saturate at 100 %,
so a 10× step is seen as 10× at the first evaluation. Scale-up: at most ×``scale_up_factor`` of the
current pool per action, at most one action per ``scale_up_cooldown_s``; new servers serve after
``provisioning_delay_s``. Scale-down: to ``desired`` once ``scale_down_cooldown_s`` passed since the last
change; pending (not yet provisioned) servers are cancelled first, then servers retire once they have
finished the work already committed to them.

Two users share ``policy_target``: the request-level queue kernel in ``ainur_sim.chain.api`` (realized
work and backlog) and ``fluid_autoscale`` here (expected work, fluid backlog), which the sampled API
simulation uses to know the server count between the windows it simulates request by request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

# Indices of the policy parameter vector handed to numba kernels.
P_TARGET, P_INTERVAL, P_UP_CD, P_DOWN_CD, P_DELAY, P_MIN, P_MAX, P_FACTOR, P_DRAIN = range(9)
# Indices of the controller state a kernel keeps between evaluations.
S_LAST_UP, S_LAST_CHANGE = 0, 1


@dataclass(frozen=True)
class AutoscalePolicy:
    """Target-tracking autoscaler for one RPC node's server pool (times in seconds)."""

    target_utilization: float = 0.6
    interval_s: float = 15.0
    scale_up_cooldown_s: float = 60.0
    scale_down_cooldown_s: float = 300.0
    provisioning_delay_s: float = 60.0
    min_servers: int = 1
    max_servers: int = 256
    scale_up_factor: float = 2.0
    backlog_drain_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 < self.target_utilization <= 1.0:
            raise ValueError(f"target_utilization must be in (0, 1], got {self.target_utilization}")
        if self.interval_s <= 0 or self.backlog_drain_s <= 0:
            raise ValueError("interval_s and backlog_drain_s must be > 0")
        if min(self.scale_up_cooldown_s, self.scale_down_cooldown_s, self.provisioning_delay_s) < 0:
            raise ValueError("cool-downs and provisioning_delay_s must be ≥ 0")
        if not 1 <= self.min_servers <= self.max_servers:
            raise ValueError(
                f"need 1 ≤ min_servers ≤ max_servers, got {self.min_servers}, {self.max_servers}"
            )
        if self.scale_up_factor <= 1.0:
            raise ValueError(f"scale_up_factor must be > 1, got {self.scale_up_factor}")

    def as_array(self) -> np.ndarray:
        """The parameters as the float64 vector the numba kernels read (indices ``P_*``)."""
        return np.array([
            self.target_utilization, self.interval_s, self.scale_up_cooldown_s,
            self.scale_down_cooldown_s, self.provisioning_delay_s, self.min_servers, self.max_servers,
            self.scale_up_factor, self.backlog_drain_s,
        ], dtype=np.float64)


def initial_controller_state() -> np.ndarray:
    """Controller state before any scaling action: last scale-up and last change at −∞."""
    return np.array([-np.inf, -np.inf])


@numba.njit(cache=True)
def desired_servers(work_s: float, backlog_s: float, pol: np.ndarray) -> int:
    """Servers needed to run the offered work (+ drain the backlog) at the target utilization."""
    demand = work_s / pol[P_INTERVAL] + backlog_s / pol[P_DRAIN]
    # the small slack keeps an exact integer demand (e.g. 3 servers' worth) from rounding up to 4
    d = math.ceil(demand / pol[P_TARGET] - 1e-9)
    return int(min(max(d, pol[P_MIN]), pol[P_MAX]))


@numba.njit(cache=True)
def policy_target(t: float, work_s: float, backlog_s: float, pool: int, ctl: np.ndarray,
                  pol: np.ndarray) -> int:
    """New pool size (provisioned + pending servers) decided at evaluation time ``t``; updates ``ctl``."""
    desired = desired_servers(work_s, backlog_s, pol)
    if desired > pool:
        if t - ctl[S_LAST_UP] < pol[P_UP_CD]:
            return pool
        step_cap = max(pool + 1, math.ceil(pool * pol[P_FACTOR] - 1e-9))
        ctl[S_LAST_UP] = t
        ctl[S_LAST_CHANGE] = t
        return int(min(desired, step_cap))
    if desired < pool:
        if t - ctl[S_LAST_CHANGE] < pol[P_DOWN_CD]:
            return pool
        ctl[S_LAST_CHANGE] = t
        return desired
    return pool


@numba.njit(cache=True)
def _fluid(work: np.ndarray, win_s: float, duration: float, c0: int, pol: np.ndarray):
    n = work.shape[0]
    delay = pol[P_DELAY]
    ordered = np.zeros(n, dtype=np.int64)  # servers ordered at the end of window k, ready at end + delay
    removed = np.zeros(n, dtype=np.int64)  # provisioned servers retired at the end of window k
    online_end = np.zeros(n, dtype=np.int64)
    pool_end = np.zeros(n, dtype=np.int64)
    cap = np.zeros(n)
    backlog_end = np.zeros(n)
    ctl = np.array([-np.inf, -np.inf])
    online = c0
    pending = 0
    nxt = 0  # first order window whose servers are not yet online
    backlog = 0.0
    for k in range(n):
        w0 = k * win_s
        w1 = min((k + 1) * win_s, duration)
        c = online * (w1 - w0)
        while nxt < k and (nxt + 1) * win_s + delay <= w1:
            ready = (nxt + 1) * win_s + delay
            c += ordered[nxt] * (w1 - max(ready, w0))
            online += ordered[nxt]
            pending -= ordered[nxt]
            nxt += 1
        cap[k] = c
        backlog = max(0.0, backlog + work[k] - c)
        pool = online + pending
        new = policy_target(w1, work[k], backlog, pool, ctl, pol)
        if new > pool:
            ordered[k] = new - pool
            pending += new - pool
            if delay == 0.0:  # online at once (all earlier orders are online already)
                online += ordered[k]
                pending -= ordered[k]
                nxt = k + 1
        elif new < pool:
            drop = pool - new
            j = k - 1
            while drop > 0 and j >= nxt:  # cancel the newest orders first
                take = min(drop, ordered[j])
                ordered[j] -= take
                pending -= take
                drop -= take
                j -= 1
            removed[k] = drop
            online -= drop
        online_end[k] = online
        pool_end[k] = online + pending
        backlog_end[k] = backlog
    return ordered, removed, online_end, pool_end, cap, backlog_end


@dataclass(frozen=True)
class FluidRun:
    """Result of ``fluid_autoscale``; per-window arrays are indexed by window k = [k·Δ, (k+1)·Δ)."""

    window_s: float
    online_end: np.ndarray
    pool_end: np.ndarray
    capacity_s: np.ndarray
    backlog_end_s: np.ndarray
    change_t: np.ndarray
    change_online: np.ndarray

    def online_at(self, t) -> np.ndarray:
        """Provisioned servers at time(s) ``t`` (right-continuous step function)."""
        i = np.searchsorted(self.change_t, np.asarray(t, dtype=np.float64), side="right") - 1
        return self.change_online[np.maximum(i, 0)]

    def backlog_at_boundary(self, k: int) -> float:
        """Fluid backlog (seconds of work) at the start of window k."""
        return 0.0 if k <= 0 else float(self.backlog_end_s[k - 1])


def fluid_autoscale(work_s: np.ndarray, window_s: float, duration_s: float, c0: int,
                    policy: AutoscalePolicy | None) -> FluidRun:
    """Run the autoscaler on expected load: ``work_s[k]`` = expected service work arriving in window k.

    Backlog follows the fluid recursion B ← max(0, B + work − capacity); it is zero whenever capacity
    exceeds demand, so stochastic queueing below saturation is left to the request-level simulation.
    Without a policy the pool stays at ``c0``.
    """
    work = np.ascontiguousarray(work_s, dtype=np.float64)
    n = work.shape[0]
    if policy is None:
        pol = np.array([1.0, window_s, np.inf, np.inf, 0.0, c0, c0, 2.0, np.inf])
    else:
        if abs(policy.interval_s - window_s) > 1e-9:
            raise ValueError("window_s must equal policy.interval_s")
        pol = policy.as_array()
        c0 = int(min(max(c0, policy.min_servers), policy.max_servers))
    ordered, removed, online_end, pool_end, cap, backlog = _fluid(work, float(window_s),
                                                                 float(duration_s), int(c0), pol)
    ends = (np.arange(n) + 1) * window_s
    ev_t = np.concatenate([[0.0], ends + pol[P_DELAY], ends])
    ev_d = np.concatenate([[c0], ordered, -removed])
    keep = (ev_d != 0) | (ev_t == 0.0)
    ev_t, ev_d = ev_t[keep], ev_d[keep]
    order = np.argsort(ev_t, kind="stable")
    ev_t, ev_d = ev_t[order], ev_d[order]
    uniq, start = np.unique(ev_t, return_index=True)
    online = np.cumsum(ev_d)
    last = np.append(start[1:], ev_t.size) - 1
    return FluidRun(window_s, online_end, pool_end, cap, backlog, uniq, online[last])
