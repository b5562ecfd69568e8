"""RPC/API layer: request latency at RPC nodes modelled as multi-server FCFS queues with autoscaling.

Model
-----
Users in client regions send requests (reads and transaction submissions) as a Poisson process of
time-varying rate. Each client region is served by the RPC node with the smallest round trip
(geo-DNS). A node is ``c`` servers (workers or instances) fed in FCFS order; ``c`` may change over
time through an exogenous schedule or an ``AutoscalePolicy``. A request's latency is

    latency = client↔node round trip (ms, from the RTT matrix) + queue wait + service time.

Service times are exponential or lognormal with separate means for reads and submissions
(``ServiceModel``; the defaults are modelling choices, not measurements).

Kernel
------
``simulate_queue`` runs the Kiefer–Wolfowitz recursion in a Numba loop: servers are slots with a
"free at" time kept in a binary min-heap; a request arriving at ``t`` goes to the ready server that is
free first and starts at ``max(t, free_at)``. With a fixed server count this *is* the M/G/c FCFS queue
(tested against Erlang C). Read as routing, it is a balancer sending each request on arrival to the
instance with the least outstanding work, and that is the semantics kept when the count changes: a
server joins the heap when it is ready (provisioning delay) and takes new requests only — requests
queued earlier stay where they are, as behind a real load balancer. Removed servers leave the heap at
once and finish the work already given to them ("retire when idle"); pending orders are cancelled first.
Control events (series-window ends, where the autoscaler evaluates; schedule changes; servers becoming
ready) interleave with arrivals in time order. The kernel state is resumable, so ``simulate_api``
generates and simulates arrivals in chunks of ``chunk_s`` with O(chunk) memory.

Full simulation or sampling
---------------------------
``simulate_api(sample=None)`` simulates every request. Measured on the 2-core reference machine
(benchmarks/RESULTS.md, shared with other jobs): kernel 14–42 M requests/s; end to end 8–11 M req/s
(arrival time change, service draws, RTT draw and histogramming included), i.e. 8–11 s per simulated
day at 1,000 req/s and about 1–1.5 min per week. That is affordable, so full simulation is the default.

``simulate_api(sample=SamplePlan(...))`` simulates request streams only in sampled windows, for
higher rates, sweeps and long horizons:

1. A fluid model (``autoscale.fluid_autoscale``) runs the same autoscaling rule per window on the
   expected work plus compound-Poisson noise of the realized work's variance (λΔ·E[S²]), so it scales
   like the request-level autoscaler, giving the server count everywhere and a fluid backlog that is
   non-zero only in overload.
2. Time is cut into periods (``period_s``, default 600 s). A period is *stressed* if, in it or in the
   warm-up before it, any node's expected utilization reaches ``stress_utilization`` (0.8) or the fluid
   backlog is positive. Stressed periods are simulated in full (consecutive ones as one stretch): the
   tail latencies live there.
3. In each calm period one window of ``window_s`` (default 60 s) at a uniformly random offset (aligned
   to the series windows) is simulated after a ``warmup_s`` warm-up (default 60 s) that starts from the
   fluid state (servers online, backlog spread over them), with the fluid server schedule. Its requests
   carry the weight (expected arrivals in the period) / (expected arrivals in the window): a stratified,
   randomized-systematic sample, so the weighted latency distribution is a ratio estimate of the full one.

Below saturation an M/M/c queue forgets its start within ~1/(cμ(1 − √ρ)²), well under a second here,
so the warm-up removes the start-up bias; what remains is the sampling variance of calm periods and the
difference between the fluid and the request-level autoscaler. Measured against full simulation:

* a day at mean 1,000 req/s (diurnal ±60 %, 2 nodes, 3 client regions, autoscaling): 10 % of requests
  simulated, 5–6× faster, P50/P95/P99 within 0.01 %; with a 3× spike for 10 min: 13 % simulated,
  4–5× faster, P50/P95 within 0.1 %, P99 within 2.5 % (CDF error |F_full(q̂) − q| ≤ 0.0012);
* the test's moderate case (2 h, 1.6× bump), 8 seed pairs: worst 0.8 % / 0.4 % / 1.1 %.
  ``tests/chain/test_api.py`` asserts 3 % / 5 % / 10 % for P50 / P95 / P99.

A quantile that falls in a gap of the latency distribution (e.g. the P50 between two client regions'
RTT modes with 50/50 shares) is ill-conditioned for *any* estimator — judge such cases in CDF terms.

Percentiles are computed from a log-spaced histogram (0.5 % bins, log-linear interpolation inside a
bin, error ≤ one bin, 0.5 %) so that week-long runs need O(1) memory; ``keep_latencies=True``
also returns every simulated latency (and its weight) for exact percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numba
import numpy as np

from ainur_sim.chain.autoscale import (
    P_DELAY,
    AutoscalePolicy,
    FluidRun,
    fluid_autoscale,
    initial_controller_state,
    policy_target,
)

# --------------------------------------------------------------------------------------------------
# Closed forms (M/M/c)
# --------------------------------------------------------------------------------------------------


def erlang_b(c: int, a: float) -> float:
    """Erlang B blocking probability for ``c`` servers and offered load ``a`` = λ/μ erlangs.

    Uses the recursion B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)), stable for any c (no factorials).
    """
    if c < 0 or a < 0:
        raise ValueError("need c ≥ 0 and a ≥ 0")
    b = 1.0
    for k in range(1, int(c) + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, lam: float, mu: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (Erlang C); 1.0 when ρ = λ/(cμ) ≥ 1."""
    if c < 1 or lam < 0 or mu <= 0:
        raise ValueError("need c ≥ 1, λ ≥ 0, μ > 0")
    a = lam / mu
    rho = a / c
    if rho >= 1.0:
        return 1.0
    b = erlang_b(c, a)
    return b / (1.0 - rho * (1.0 - b))


def mmc_mean_wait(c: int, lam: float, mu: float) -> float:
    """Mean time in queue (excluding service) of an M/M/c queue, seconds if λ, μ are per second."""
    if lam / (c * mu) >= 1.0:
        return math.inf
    return erlang_c(c, lam, mu) / (c * mu - lam)


# --------------------------------------------------------------------------------------------------
# Service times and arrivals
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceModel:
    """Service time of one request at a server, seconds.

    Defaults [modelling choice]: a state read ≈ 2 ms, a submission ≈ 8 ms (decode + signature check +
    ``validate_transaction`` in the runtime + pool import), 20 % of requests are submissions.
    ``distribution``: ``"exponential"`` or ``"lognormal"`` with coefficient of variation ``cv``.
    """

    read_mean_s: float = 0.002
    submit_mean_s: float = 0.008
    submit_share: float = 0.2
    distribution: str = "exponential"
    cv: float = 1.0

    def __post_init__(self) -> None:
        if self.read_mean_s <= 0 or self.submit_mean_s <= 0:
            raise ValueError("service means must be > 0")
        if not 0.0 <= self.submit_share <= 1.0:
            raise ValueError(f"submit_share must be in [0, 1], got {self.submit_share}")
        if self.distribution not in ("exponential", "lognormal"):
            raise ValueError(f"distribution must be 'exponential' or 'lognormal', got {self.distribution!r}")
        if self.cv <= 0:
            raise ValueError("cv must be > 0")

    @property
    def mean_s(self) -> float:
        """Mean service time over the request mix."""
        return self.submit_share * self.submit_mean_s + (1.0 - self.submit_share) * self.read_mean_s

    @property
    def second_moment_s2(self) -> float:
        """E[S²] over the request mix, s² (exponential: 2m²; lognormal: m²(1 + cv²))."""
        k = 2.0 if self.distribution == "exponential" else 1.0 + self.cv**2
        share = self.submit_share
        return k * (share * self.submit_mean_s**2 + (1.0 - share) * self.read_mean_s**2)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(service_s, is_submit) for ``n`` requests."""
        u = rng.random(n)
        is_submit = u < self.submit_share
        # (the same operations in place: no fresh array per step for millions of requests)
        if self.distribution == "exponential":
            scale = np.where(is_submit, self.submit_mean_s, self.read_mean_s)
            return np.multiply(rng.standard_exponential(n, out=u), scale, out=u), is_submit
        sigma = math.sqrt(math.log1p(self.cv**2))
        mu = np.where(is_submit, math.log(self.submit_mean_s), math.log(self.read_mean_s))
        mu -= sigma**2 / 2
        z = rng.standard_normal(n, out=u)
        z *= sigma
        z += mu
        return np.exp(z, out=z), is_submit


def rate_cells(rate: float | Callable[[np.ndarray], np.ndarray] | np.ndarray, duration_s: float,
               cell_s: float) -> np.ndarray:
    """Piecewise-constant request rate (req/s) on cells of ``cell_s`` covering [0, duration_s).

    ``rate`` is a constant, a vectorized function of time (evaluated at cell midpoints) or an array of
    per-cell rates (cell i = [i·cell_s, (i+1)·cell_s)).
    """
    n = math.ceil(duration_s / cell_s - 1e-9)
    if callable(rate):
        cells = np.asarray(rate((np.arange(n) + 0.5) * cell_s), dtype=np.float64)
    elif np.ndim(rate) == 0:
        cells = np.full(n, float(rate))
    else:
        cells = np.asarray(rate, dtype=np.float64)
        if cells.size < n:
            raise ValueError(f"rate array covers {cells.size} cells of {cell_s} s, need {n}")
        cells = cells[:n].copy()
    if cells.shape != (n,) or np.any(~np.isfinite(cells)) or np.any(cells < 0):
        raise ValueError("rates must be finite and ≥ 0")
    return cells


def expected_arrivals(cells: np.ndarray, cell_s: float, edges: np.ndarray) -> np.ndarray:
    """Expected arrivals between consecutive ``edges`` (s) of the piecewise-constant rate ``cells``."""
    grid = np.arange(cells.size + 1) * cell_s
    cum = np.concatenate([[0.0], np.cumsum(cells * cell_s)])
    return np.diff(np.interp(edges, grid, cum))


def poisson_arrivals(cells: np.ndarray, cell_s: float, t0: float, t1: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times in [t0, t1) of a Poisson process with piecewise-constant rate ``cells``.

    Time change of a unit-rate process: cumulative sums of standard exponentials mapped through the
    inverse of Λ(t) = ∫ rate. Cost ≈ 15 ns per arrival, no sort.
    """
    i0 = int(t0 // cell_s)
    i1 = min(math.ceil(t1 / cell_s - 1e-12), cells.size)
    edges = np.clip(np.arange(i0, i1 + 1) * cell_s, t0, t1)
    lam = np.concatenate([[0.0], np.cumsum(cells[i0:i1] * np.diff(edges))])
    total = lam[-1]
    if total <= 0.0:
        return np.empty(0)
    n = int(total + 8.0 * math.sqrt(total) + 16)
    e = rng.standard_exponential(n)
    np.cumsum(e, out=e)  # (sequential in place: the same sums)
    while e[-1] < total:
        e = np.concatenate([e, e[-1] + np.cumsum(rng.standard_exponential(n))])
    e = e[: np.searchsorted(e, total)]
    return np.interp(e, lam, edges)


# --------------------------------------------------------------------------------------------------
# Queue kernel
# --------------------------------------------------------------------------------------------------

# kernel state vector
_NEXT_WIN, _WIN, _WORK, _CAP_RM, _SCHED, _END, _N_WIN, _SER_OFF = range(8)
# per-window series columns written by the kernel
_S_ONLINE, _S_POOL, _S_CAP, _S_WORK, _S_BACKLOG = range(5)


@numba.njit(cache=True)
def _sift_down(heap, n, key, i):
    item = heap[i]
    kv = key[item]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        right = child + 1
        if right < n and key[heap[right]] < key[heap[child]]:
            child = right
        if key[heap[child]] < kv:
            heap[i] = heap[child]
            i = child
        else:
            break
    heap[i] = item


@numba.njit(cache=True)
def _rebuild_heap(heap, free_at, ready_at, in_pool, t):
    """Heap of the servers that take requests at ``t``: in the pool and provisioned (ready ≤ t)."""
    n = 0
    for s in range(free_at.shape[0]):
        if in_pool[s] and ready_at[s] <= t:
            heap[n] = s
            n += 1
    for i in range(n // 2 - 1, -1, -1):
        _sift_down(heap, n, free_at, i)
    return n


@numba.njit(cache=True)
def _add_servers(k, ready, free_at, ready_at, in_pool):
    added = 0
    for s in range(free_at.shape[0]):
        if added == k:
            break
        if not in_pool[s] and free_at[s] <= ready:
            in_pool[s] = True
            ready_at[s] = ready
            free_at[s] = ready
            added += 1
    return added


@numba.njit(cache=True)
def _remove_servers(t, k, w0, free_at, ready_at, in_pool):
    """Take ``k`` servers out of the pool at ``t``; returns their capacity already used since ``w0``."""
    used = 0.0
    for _ in range(k):
        best = -1
        best_cls = 2
        best_key = np.inf
        for s in range(free_at.shape[0]):
            if not in_pool[s]:
                continue
            if ready_at[s] > t:
                cls, key = 0, -ready_at[s]  # pending: cancel the newest order first
            else:
                cls, key = 1, free_at[s]  # then the server that is (or soonest becomes) idle
            if cls < best_cls or (cls == best_cls and key < best_key):
                best, best_cls, best_key = s, cls, key
        if best < 0:
            break
        in_pool[best] = False
        used += max(0.0, t - max(ready_at[best], w0))
    return used


@numba.njit(cache=True)
def _next_control(st, sched_t, ready_at, in_pool, t):
    """Time of the next control event after ``t``: window end, schedule change or a server getting ready."""
    nxt = st[_NEXT_WIN] if st[_WIN] < st[_N_WIN] else np.inf
    j = int(st[_SCHED])
    if j < sched_t.shape[0]:
        nxt = min(nxt, sched_t[j])
    for s in range(ready_at.shape[0]):
        if in_pool[s] and t < ready_at[s] < nxt:
            nxt = ready_at[s]
    return nxt


@numba.njit(cache=True)
def _pool_count(in_pool):
    n = 0
    for s in range(in_pool.shape[0]):
        n += in_pool[s]
    return n


@numba.njit(cache=True)
def _control(t_limit, st, ctl, win_s, free_at, ready_at, in_pool, sched_t, sched_c, pol, ser):
    """Apply every window close (+ policy evaluation) and schedule change at time ≤ t_limit.

    Servers becoming ready need no action here: the caller rebuilds the heap of ready servers.
    """
    while True:
        tw = st[_NEXT_WIN] if st[_WIN] < st[_N_WIN] else np.inf
        j = int(st[_SCHED])
        ts = sched_t[j] if j < sched_t.shape[0] else np.inf
        if min(tw, ts) > t_limit or min(tw, ts) == np.inf:
            return
        w0 = st[_NEXT_WIN] - win_s
        if tw <= ts:
            w1 = min(tw, st[_END])
            cap = st[_CAP_RM]
            backlog = 0.0
            for s in range(free_at.shape[0]):
                if in_pool[s]:
                    cap += max(0.0, w1 - max(ready_at[s], w0))
                    if ready_at[s] <= w1:
                        backlog += max(0.0, free_at[s] - w1)
            pool = _pool_count(in_pool)
            if pol.shape[0] > 0:
                new = policy_target(w1, st[_WORK], backlog, pool, ctl, pol)
                if new > pool:
                    _add_servers(new - pool, w1 + pol[P_DELAY], free_at, ready_at, in_pool)
                elif new < pool:
                    _remove_servers(w1, pool - new, tw, free_at, ready_at, in_pool)
            i = int(st[_WIN] - st[_SER_OFF])
            if 0 <= i < ser.shape[0]:
                online = 0
                for s in range(free_at.shape[0]):
                    online += in_pool[s] and ready_at[s] <= w1
                ser[i, _S_ONLINE] = online
                ser[i, _S_POOL] = _pool_count(in_pool)
                ser[i, _S_CAP] = cap
                ser[i, _S_WORK] = st[_WORK]
                ser[i, _S_BACKLOG] = backlog
            st[_WORK] = 0.0
            st[_CAP_RM] = 0.0
            st[_WIN] += 1.0
            st[_NEXT_WIN] += win_s
        else:
            pool = _pool_count(in_pool)
            target = sched_c[j]
            if target > pool:
                _add_servers(target - pool, ts, free_at, ready_at, in_pool)
            elif target < pool:
                st[_CAP_RM] += _remove_servers(ts, pool - target, w0, free_at, ready_at, in_pool)
            st[_SCHED] += 1.0


@numba.njit(cache=True)
def _run_queue(arr, svc, wait, st, ctl, win_s, free_at, ready_at, in_pool, heap, sched_t, sched_c, pol,
               ser, finish):
    t = arr[0] if arr.shape[0] > 0 else st[_NEXT_WIN] - win_s
    n_heap = _rebuild_heap(heap, free_at, ready_at, in_pool, t)
    next_ctl = _next_control(st, sched_t, ready_at, in_pool, t)
    for i in range(arr.shape[0]):
        t = arr[i]
        if t >= next_ctl:
            _control(t, st, ctl, win_s, free_at, ready_at, in_pool, sched_t, sched_c, pol, ser)
            n_heap = _rebuild_heap(heap, free_at, ready_at, in_pool, t)
            next_ctl = _next_control(st, sched_t, ready_at, in_pool, t)
        s = heap[0]
        f = free_at[s]
        start = t if f < t else f
        wait[i] = start - t
        free_at[s] = start + svc[i]
        _sift_down(heap, n_heap, free_at, 0)
        st[_WORK] += svc[i]
    if finish:
        _control(np.inf, st, ctl, win_s, free_at, ready_at, in_pool, sched_t, sched_c, pol, ser)


class _NodeQueue:
    """Resumable state of one node's queue over series windows [k0, k1)."""

    def __init__(self, servers: int, *, window_s: float, k0: int, k1: int, end_s: float,
                 policy: AutoscalePolicy | None = None, schedule: tuple[np.ndarray, np.ndarray] | None = None,
                 initial_backlog_s: float = 0.0) -> None:
        if policy is not None and schedule is not None:
            raise ValueError("give either an autoscaling policy or a server schedule, not both")
        if policy is not None:
            if abs(policy.interval_s - window_s) > 1e-9:
                raise ValueError("the series window must equal policy.interval_s")
            servers = min(max(servers, policy.min_servers), policy.max_servers)
        sched_t = np.empty(0) if schedule is None else np.ascontiguousarray(schedule[0], dtype=np.float64)
        sched_c = np.empty(0, np.int64) if schedule is None else np.asarray(schedule[1], dtype=np.int64)
        if servers < 1 or (sched_c.size and sched_c.min() < 1):
            raise ValueError("a node needs at least one server at all times")
        if sched_t.size != sched_c.size or np.any(np.diff(sched_t) < 0):
            raise ValueError("schedule: times must be sorted and match the server counts")
        cap_max = max(servers, policy.max_servers if policy else 0, int(sched_c.max()) if sched_c.size else 0)
        n_slots = 2 * cap_max + 2
        t0 = k0 * window_s
        self.free_at = np.full(n_slots, -np.inf)
        self.ready_at = np.full(n_slots, -np.inf)
        self.in_pool = np.zeros(n_slots, dtype=np.bool_)
        self.in_pool[:servers] = True
        self.free_at[:servers] = t0 + initial_backlog_s / servers
        self.heap = np.empty(n_slots, dtype=np.int64)
        self.st = np.array([(k0 + 1) * window_s, k0, 0.0, 0.0, 0.0, end_s, k1, k0], dtype=np.float64)
        self.ctl = initial_controller_state()
        self.pol = policy.as_array() if policy is not None else np.empty(0)
        self.sched_t, self.sched_c = sched_t, sched_c
        self.window_s = window_s
        self.series = np.zeros((k1 - k0, 5))

    def run(self, arrivals: np.ndarray, services: np.ndarray, finish: bool = False) -> np.ndarray:
        wait = np.empty(arrivals.shape[0])
        _run_queue(arrivals, services, wait, self.st, self.ctl, self.window_s, self.free_at, self.ready_at,
                   self.in_pool, self.heap, self.sched_t, self.sched_c, self.pol, self.series, finish)
        return wait


@dataclass
class QueueRun:
    """Output of ``simulate_queue``: per-request waits and per-window series (window ends ``t``)."""

    wait_s: np.ndarray
    series: dict[str, np.ndarray]


def _series_dict(raw: np.ndarray, window_s: float, k0: int, end_s: float) -> dict[str, np.ndarray]:
    t = np.minimum((np.arange(raw.shape[0]) + k0 + 1) * window_s, end_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        util = np.where(raw[:, _S_CAP] > 0, raw[:, _S_WORK] / raw[:, _S_CAP], np.nan)
    return {
        "t": t,
        "servers": raw[:, _S_ONLINE].astype(np.int64),
        "pool": raw[:, _S_POOL].astype(np.int64),
        "capacity_s": raw[:, _S_CAP].copy(),
        "work_s": raw[:, _S_WORK].copy(),
        "backlog_s": raw[:, _S_BACKLOG].copy(),
        "utilization": util,
    }


def simulate_queue(arrivals: np.ndarray, services: np.ndarray, servers: int, *,
                   policy: AutoscalePolicy | None = None,
                   schedule: tuple[np.ndarray, np.ndarray] | None = None,
                   window_s: float | None = None, duration_s: float | None = None) -> QueueRun:
    """FCFS multi-server queue: waits (s) of requests with sorted ``arrivals`` (s) and ``services`` (s).

    ``servers``: initial server count. ``policy``: autoscaler evaluated at every window end (window =
    ``policy.interval_s``). ``schedule``: (times, counts) — the pool is set to ``counts[i]`` at ``times[i]``,
    added servers serving at once. Series windows default to the policy interval or 60 s;
    ``duration_s`` defaults to the last arrival. The series' ``utilization`` is offered work / capacity.
    """
    arr = np.ascontiguousarray(arrivals, dtype=np.float64)
    svc = np.ascontiguousarray(services, dtype=np.float64)
    if arr.shape != svc.shape or arr.ndim != 1:
        raise ValueError("arrivals and services must be 1-D arrays of equal length")
    if arr.size and (np.any(np.diff(arr) < 0) or arr[0] < 0):
        raise ValueError("arrivals must be sorted and ≥ 0")
    if np.any(svc < 0):
        raise ValueError("service times must be ≥ 0")
    win = window_s if window_s is not None else (policy.interval_s if policy else 60.0)
    end = duration_s if duration_s is not None else (float(arr[-1]) if arr.size else win)
    n_win = max(1, math.ceil(end / win - 1e-9))
    q = _NodeQueue(int(servers), window_s=win, k0=0, k1=n_win, end_s=end, policy=policy, schedule=schedule)
    wait = q.run(arr, svc, finish=True)
    return QueueRun(wait, _series_dict(q.series, win, 0, end))


# --------------------------------------------------------------------------------------------------
# Latency histograms and percentiles
# --------------------------------------------------------------------------------------------------

HIST_LO_MS = 0.01
HIST_RATIO = 1.005
HIST_BINS = math.ceil(math.log(1e8) / math.log(HIST_RATIO))  # 0.01 ms … 1e6 ms
HIST_EDGES_MS = HIST_LO_MS * HIST_RATIO ** np.arange(HIST_BINS + 1)
_QS = (0.5, 0.95, 0.99)


@numba.njit(cache=True)
def _record(arr, wait, svc, u, cum_p, rtt, t_rec, t_lo, win_s, hist, lat_out):
    """Latency (ms) of each request arriving at or after ``t_rec`` into ``hist[window − t_lo/win_s, bin]``.

    The client region (hence RTT) is drawn from the uniforms ``u`` over ``cum_p``. Kept latencies are
    written to ``lat_out`` when it is non-empty; returns how many requests were recorded.
    """
    nw = hist.shape[0]
    nb = hist.shape[1]
    flat = hist.reshape(nw * nb)
    inv_log_r = 1.0 / np.log(HIST_RATIO)
    log_lo = np.log(HIST_LO_MS)
    inv_win = 1.0 / win_s
    n_net = rtt.shape[0]
    n_rec = 0
    for i in range(arr.shape[0]):
        if arr[i] < t_rec:
            continue
        k = 0
        while k < n_net - 1 and u[i] >= cum_p[k]:
            k += 1
        lat = (rtt[k] if n_net > 0 else 0.0) + 1e3 * (wait[i] + svc[i])
        w = min(int((arr[i] - t_lo) * inv_win), nw - 1)
        b = int((np.log(max(lat, 1e-300)) - log_lo) * inv_log_r) if lat > HIST_LO_MS else 0
        flat[w * nb + min(b, nb - 1)] += 1.0
        if lat_out.shape[0] > 0:
            lat_out[n_rec] = lat
        n_rec += 1
    return n_rec


def _hist_quantiles(hist: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Quantiles (ms) of histograms ``hist[..., HIST_BINS]``: inverted CDF, log-linear inside a bin."""
    h = np.atleast_2d(hist)
    cum = np.cumsum(h, axis=1)
    tot = cum[:, -1]
    out = np.full((h.shape[0], len(qs)), np.nan)
    for j, q in enumerate(qs):
        target = q * tot
        b = np.argmax(cum >= target[:, None] * (1 - 1e-12), axis=1)
        below = np.where(b > 0, cum[np.arange(h.shape[0]), b - 1], 0.0)
        inbin = h[np.arange(h.shape[0]), b]
        frac = np.clip(np.where(inbin > 0, (target - below) / np.where(inbin > 0, inbin, 1), 0.5), 0, 1)
        out[:, j] = np.where(tot > 0, HIST_EDGES_MS[b] * HIST_RATIO**frac, np.nan)
    return out


def _weighted_quantiles(x: np.ndarray, w: np.ndarray | None, qs: Sequence[float]) -> np.ndarray:
    if x.size == 0:
        return np.full(len(qs), np.nan)
    if w is None:
        return np.quantile(x, qs, method="inverted_cdf")
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    idx = np.searchsorted(cw, np.asarray(qs) * cw[-1] * (1 - 1e-12), side="left")
    return x[order][np.minimum(idx, x.size - 1)]


# --------------------------------------------------------------------------------------------------
# The API simulation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplePlan:
    """Sampled simulation: full streams in stressed periods, one random window per calm period."""

    period_s: float = 600.0
    window_s: float = 60.0
    warmup_s: float = 60.0
    stress_utilization: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.window_s <= self.period_s or self.warmup_s < 0:
            raise ValueError("need 0 < window_s ≤ period_s and warmup_s ≥ 0")


@dataclass
class ApiResult:
    """Output of ``simulate_api``.

    ``series``: per series window (ends ``t``): ``rate`` (expected req/s), ``servers`` (online at the window
    end, all nodes), ``pool`` (incl. pending), ``utilization`` (offered work / capacity), ``backlog_s``,
    ``p50_ms``/``p95_ms``/``p99_ms`` (NaN where not simulated) and ``simulated`` (bool).
    ``hist``: weighted latency histogram over ``HIST_EDGES_MS``. ``n_simulated``: requests simulated;
    ``n_represented``: weighted count they stand for.
    """

    series: dict[str, np.ndarray]
    hist: np.ndarray
    n_simulated: int
    n_represented: float
    sampled: bool
    per_node: list[dict[str, np.ndarray]] = field(default_factory=list)
    latencies_ms: np.ndarray | None = None
    weights: np.ndarray | None = None

    def percentiles_ms(self) -> dict[str, float]:
        return latency_percentiles_ms(self)


def latency_percentiles_ms(latencies: ApiResult | np.ndarray, weights: np.ndarray | None = None
                           ) -> dict[str, float]:
    """``{"api_p50_ms", "api_p95_ms", "api_p99_ms"}`` from an ``ApiResult`` (its weighted histogram)
    or from an array of latencies in ms (exact inverted-CDF percentiles, optionally weighted)."""
    if isinstance(latencies, ApiResult):
        q = _hist_quantiles(latencies.hist, _QS)[0]
    else:
        x = np.asarray(latencies, dtype=np.float64).ravel()
        q = _weighted_quantiles(x, None if weights is None else np.asarray(weights, np.float64).ravel(), _QS)
    return {"api_p50_ms": float(q[0]), "api_p95_ms": float(q[1]), "api_p99_ms": float(q[2])}


@dataclass
class _Topology:
    share: np.ndarray  # (nodes,) share of all requests each node gets
    client_p: list[np.ndarray]  # per node: probabilities of its client regions
    client_rtt: list[np.ndarray]  # per node: RTT (ms) of those regions
    servers: list[int]


def _topology(rtt_ms, client_share, servers) -> _Topology:
    rtt = np.asarray(rtt_ms, dtype=np.float64)
    if rtt.ndim == 0:
        rtt = rtt.reshape(1, 1)
    elif rtt.ndim == 1:
        rtt = rtt[:, None]
    n_cli, n_nodes = rtt.shape
    cs = np.full(n_cli, 1.0 / n_cli) if client_share is None else np.asarray(client_share, np.float64)
    if cs.shape != (n_cli,) or np.any(cs < 0) or cs.sum() <= 0:
        raise ValueError("client_share must be non-negative with one entry per client region (row of rtt_ms)")
    if np.any(rtt < 0):
        raise ValueError("rtt_ms must be ≥ 0")
    cs = cs / cs.sum()
    srv = [int(servers)] * n_nodes if np.ndim(servers) == 0 else [int(s) for s in servers]
    if len(srv) != n_nodes:
        raise ValueError(f"servers: expected {n_nodes} values (columns of rtt_ms), got {len(srv)}")
    nearest = np.argmin(rtt, axis=1)
    share = np.array([cs[nearest == j].sum() for j in range(n_nodes)])
    p = [cs[nearest == j] / share[j] if share[j] > 0 else np.empty(0) for j in range(n_nodes)]
    r = [rtt[nearest == j, j] for j in range(n_nodes)]
    return _Topology(share, p, r, srv)


class _Accumulator:
    """Weighted latency histograms: overall and per series window."""

    def __init__(self, n_win: int, keep: bool) -> None:
        self.hist = np.zeros(HIST_BINS)
        self.pct = np.full((n_win, 3), np.nan)
        self.simulated = np.zeros(n_win, dtype=bool)
        self.n_sim = 0
        self.n_rep = 0.0
        self.keep = keep
        self.lat: list[np.ndarray] = []
        self.w: list[np.ndarray] = []

    def add(self, h: np.ndarray, k0: int, n_rec: int, weight: float, lat: list[np.ndarray]) -> None:
        """Record per-window histograms ``h`` of windows k0, k0 + 1, … holding ``n_rec`` requests."""
        self.hist += weight * h.sum(axis=0)
        self.pct[k0:k0 + h.shape[0]] = _hist_quantiles(h, _QS)
        self.simulated[k0:k0 + h.shape[0]] = True
        self.n_sim += n_rec
        self.n_rep += weight * n_rec
        if self.keep:
            self.lat.extend(lat)
            self.w.extend(np.full(x.size, weight) for x in lat)


def _simulate_span(queues: list[_NodeQueue], topo: _Topology, node_cells: list[np.ndarray], cell_s: float,
                   service: ServiceModel, win_s: float, duration_s: float, k_start: int, k_rec: int,
                   k_end: int, chunk_w: int, weight: float, acc: _Accumulator, rng: np.random.Generator
                   ) -> None:
    """Simulate windows [k_start, k_end) on every node; record windows [k_rec, k_end) with ``weight``.
    ``node_cells[j]``: the rate cells times node ``j``'s share (``cells * topo.share[j]``, computed once per
    run rather than per stretch and chunk)."""
    cum_p = [np.cumsum(p) for p in topo.client_p]
    for kc in range(k_start, k_end, chunk_w):
        kc1 = min(kc + chunk_w, k_end)
        t0, t1 = kc * win_s, min(kc1 * win_s, duration_s)
        k_lo = max(kc, k_rec)
        hist = np.zeros((max(kc1 - k_lo, 1), HIST_BINS))
        n_rec = 0
        kept: list[np.ndarray] = []
        for j, q in enumerate(queues):
            arr = poisson_arrivals(node_cells[j], cell_s, t0, t1, rng) if topo.share[j] > 0 \
                else np.empty(0)
            svc, _ = service.sample(arr.size, rng)
            wait = q.run(arr, svc, finish=kc1 == k_end)
            r = topo.client_rtt[j]
            u = rng.random(arr.size) if r.size > 1 else np.empty(0)
            if kc1 > k_rec:
                out = np.empty(arr.size if acc.keep else 0)
                m = _record(arr, wait, svc, u, cum_p[j], r, k_rec * win_s, k_lo * win_s, win_s, hist, out)
                n_rec += m
                kept.append(out[:m])
        if kc1 > k_rec:
            acc.add(hist, k_lo, n_rec, weight, kept)


def _sample_runs(plans: list[FluidRun], works: list[np.ndarray], expected: np.ndarray, n_win: int,
                 win_s: float, sample: SamplePlan, rng: np.random.Generator
                 ) -> list[tuple[int, int, int, float]]:
    """(k_start, k_rec, k_end, weight) per stretch: simulate from k_start, record windows [k_rec, k_end)."""
    pw = max(1, round(sample.period_s / win_s))
    ww = max(1, min(pw, round(sample.window_s / win_s)))
    wu = math.ceil(sample.warmup_s / win_s - 1e-9)
    stress = np.zeros(n_win, dtype=bool)
    for f, work in zip(plans, works, strict=True):
        stress |= work >= sample.stress_utilization * f.capacity_s
        stress |= f.backlog_end_s > 0
    n_seg = math.ceil(n_win / pw)
    seg_stress = [bool(stress[max(0, s * pw - wu):min(n_win, (s + 1) * pw)].any()) for s in range(n_seg)]
    runs: list[tuple[int, int, int, float]] = []
    s = 0
    while s < n_seg:
        k0 = s * pw
        if seg_stress[s]:
            while s + 1 < n_seg and seg_stress[s + 1]:
                s += 1
            runs.append((max(0, k0 - wu), k0, min(n_win, (s + 1) * pw), 1.0))
        else:
            k1 = min(n_win, (s + 1) * pw)
            w = min(ww, k1 - k0)
            r0 = k0 + int(rng.integers(0, k1 - k0 - w + 1))
            a_win = expected[r0:r0 + w].sum()
            if a_win > 0:
                runs.append((max(0, r0 - wu), r0, r0 + w, expected[k0:k1].sum() / a_win))
        s += 1
    return runs


def simulate_api(rate: float | Callable[[np.ndarray], np.ndarray] | np.ndarray, duration_s: float, *,
                 rng: np.random.Generator, servers: int | Sequence[int] = 8,
                 service: ServiceModel | None = None, rtt_ms: float | np.ndarray = 0.0,
                 client_share: np.ndarray | None = None, policy: AutoscalePolicy | None = None,
                 sample: SamplePlan | None = None, window_s: float | None = None, rate_cell_s: float = 1.0,
                 chunk_s: float = 600.0, keep_latencies: bool = False) -> ApiResult:
    """Simulate API requests at RPC nodes for ``duration_s`` seconds.

    ``rate``: total request rate (req/s): constant, function of time, or per-cell array (cells of
    ``rate_cell_s``). ``rtt_ms``: round trip client region × node (scalar: one region, one node; 1-D: one
    node). Each client region uses its nearest node; ``client_share`` splits the rate over client regions
    (default equal). ``servers``: initial servers per node. ``policy``: autoscaler per node (series window =
    its interval; default window 15 s). ``sample``: ``None`` simulates every request, a ``SamplePlan``
    samples (module docstring). Deterministic for a given ``rng`` state and arguments.
    """
    if duration_s <= 0:
        raise ValueError("duration_s must be > 0")
    service = service or ServiceModel()
    win = window_s if window_s is not None else (policy.interval_s if policy else 15.0)
    if policy is not None and abs(policy.interval_s - win) > 1e-9:
        raise ValueError("window_s must equal policy.interval_s")
    topo = _topology(rtt_ms, client_share, servers)
    cells = rate_cells(rate, duration_s, rate_cell_s)
    n_win = math.ceil(duration_s / win - 1e-9)
    edges = np.minimum(np.arange(n_win + 1) * win, duration_s)
    expected = expected_arrivals(cells, rate_cell_s, edges)
    chunk_w = max(1, round(chunk_s / win))
    acc = _Accumulator(n_win, keep_latencies)
    node_cells = [cells * topo.share[j] for j in range(len(topo.servers))]
    per_node: list[dict[str, np.ndarray]] = []
    if sample is None:
        queues = [_NodeQueue(c, window_s=win, k0=0, k1=n_win, end_s=duration_s, policy=policy)
                  for c in topo.servers]
        _simulate_span(queues, topo, node_cells, rate_cell_s, service, win, duration_s, 0, 0, n_win, chunk_w,
                       1.0, acc, rng)
        per_node = [_series_dict(q.series, win, 0, duration_s) for q in queues]
    else:
        works = [expected * topo.share[j] * service.mean_s for j in range(len(topo.servers))]
        # The autoscaler sees realized work, a compound-Poisson sum: give the fluid plan the same noise
        # (variance λΔ·E[S²]) so that it scales as often as the request-level one would.
        seen = [np.maximum(0.0, w + np.sqrt(expected * topo.share[j] * service.second_moment_s2)
                           * rng.standard_normal(n_win)) for j, w in enumerate(works)]
        plans = [fluid_autoscale(w, win, duration_s, c, policy)
                 for w, c in zip(seen, topo.servers, strict=True)]
        for k_start, k_rec, k_end, weight in _sample_runs(plans, works, expected, n_win, win, sample, rng):
            t_s, t_e = k_start * win, min(k_end * win, duration_s)
            queues = []
            for f in plans:
                inside = (f.change_t > t_s) & (f.change_t < t_e)
                queues.append(_NodeQueue(int(f.online_at(t_s)), window_s=win, k0=k_start, k1=k_end, end_s=t_e,
                                         schedule=(f.change_t[inside], f.change_online[inside]),
                                         initial_backlog_s=f.backlog_at_boundary(k_start)))
            _simulate_span(queues, topo, node_cells, rate_cell_s, service, win, duration_s, k_start, k_rec, k_end,
                           chunk_w, weight, acc, rng)
        for f, w in zip(plans, seen, strict=True):
            raw = np.column_stack([f.online_end, f.pool_end, f.capacity_s, w, f.backlog_end_s])
            per_node.append(_series_dict(raw, win, 0, duration_s))
    work = sum(d["work_s"] for d in per_node)
    cap = sum(d["capacity_s"] for d in per_node)
    with np.errstate(invalid="ignore", divide="ignore"):
        util = np.where(cap > 0, work / cap, np.nan)
    series = {
        "t": edges[1:],
        "rate": expected / np.diff(edges),
        "servers": sum(d["servers"] for d in per_node),
        "pool": sum(d["pool"] for d in per_node),
        "utilization": util,
        "backlog_s": sum(d["backlog_s"] for d in per_node),
        "p50_ms": acc.pct[:, 0],
        "p95_ms": acc.pct[:, 1],
        "p99_ms": acc.pct[:, 2],
        "simulated": acc.simulated,
    }
    lat = np.concatenate(acc.lat) if keep_latencies and acc.lat else (np.empty(0) if keep_latencies else None)
    w = np.concatenate(acc.w) if keep_latencies and acc.w else (np.empty(0) if keep_latencies else None)
    return ApiResult(series, acc.hist, acc.n_sim, acc.n_rep, sample is not None, per_node, lat, w)
