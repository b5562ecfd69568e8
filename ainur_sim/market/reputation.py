"""Reputation models behind one interface, so experiments can swap them by name (``market.reputation``).

A model keeps per-agent state in numpy arrays indexed by dense agent ids ``0..n−1`` and turns task
outcomes into a quality estimate ``ρ ∈ [0, 1]`` (the input of the auction's ``q(ρ)``, see
``valuation.effective_values``). Every model implements :class:`ReputationModel`:

* ``ensure(n)`` grows the state to at least n agents; new agents start at the prior;
* ``record(agents, outcomes, t, weights=None, raters=None)`` applies feedback events *in the given
  order*, exactly as if one at a time (an agent may appear several times in one call). ``outcomes`` lie
  in [0, 1] (1 = good task outcome; a fraction is partial satisfaction), ``weights ≥ 0`` scale an event
  (e.g. by task value; default 1), ``t`` is the simulation time in seconds, and ``raters`` are the
  requesters giving the feedback (used by EigenTrust only; the other models ignore it);
* ``score(agents, t)`` is the float64 estimate in [0, 1] at time t;
* ``evidence(agents, t=None)`` is the amount of effective evidence (discounted event weight), for
  "minimum evidence before bidding on high-value tasks" rules.

=========== ============================= ===============================================================
name        class                         score
=========== ============================= ===============================================================
beta        :class:`BetaReputation`       Beta posterior mean with per-event forgetting λ (Jøsang–Ismail)
ema         :class:`ExponentialReputation` the same with continuous-time forgetting ``2^(−Δt/h)``
eigentrust  :class:`EigenTrustReputation` global trust from requester→worker feedback, scaled by its max
=========== ============================= ===============================================================

References: research/mechanisms_style.md §A1.1–A1.3.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ReputationModel(Protocol):
    """What the market needs from a reputation model (see the module docstring for the semantics)."""

    @property
    def n_agents(self) -> int:
        """Number of agents with state (ids ``0..n_agents−1``)."""
        ...

    def ensure(self, n: int) -> None: ...

    def record(
        self,
        agents: np.ndarray,
        outcomes: np.ndarray,
        t: float,
        weights: np.ndarray | None = None,
        raters: np.ndarray | None = None,
    ) -> None: ...

    def score(self, agents: np.ndarray, t: float) -> np.ndarray: ...

    def evidence(self, agents: np.ndarray, t: float | None = None) -> np.ndarray: ...

    def reset(self, agents: np.ndarray) -> None:
        """Forget all evidence about ``agents`` (a re-created identity starts from the prior)."""
        ...


# --------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------


def _grow(x: np.ndarray, n: int, fill: float) -> np.ndarray:
    """``x`` extended to length ``n`` with ``fill`` (callers only grow)."""
    out = np.full(n, fill, dtype=x.dtype)
    out[: x.shape[0]] = x
    return out


def _agent_ids(agents: np.ndarray, n: int, name: str = "agents") -> np.ndarray:
    a = np.atleast_1d(np.asarray(agents))
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be integer ids; got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(f"{name} must be in [0, {n}) (call ensure(n) first); got ids in [{a.min()}, {a.max()}]")
    return a


def _events(
    agents: np.ndarray, outcomes: np.ndarray, weights: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (agents int64, outcomes float64, weights float64) of one ``record`` call."""
    a = _agent_ids(agents, n)
    x = np.broadcast_to(np.asarray(outcomes, dtype=np.float64), a.shape)
    if not ((x >= 0.0) & (x <= 1.0)).all():
        raise ValueError("outcomes must lie in [0, 1]")
    if weights is None:
        w = np.ones(a.shape[0])
    else:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), a.shape)
        if not (np.isfinite(w) & (w >= 0.0)).all():
            raise ValueError("weights must be finite and >= 0")
    return a, x, w


def _check_time(t: float) -> float:
    tf = float(t)
    if not math.isfinite(tf):
        raise ValueError(f"t must be finite; got {t}")
    return tf


def _check_prior(prior: tuple[float, float]) -> tuple[float, float]:
    a0, b0 = (float(v) for v in prior)
    if not (math.isfinite(a0) and math.isfinite(b0) and a0 >= 0.0 and b0 >= 0.0 and a0 + b0 > 0.0):
        raise ValueError(f"prior (alpha0, beta0) must be finite, >= 0, with a positive sum; got {prior}")
    return a0, b0


def _events_after(agents: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each event, how many *later* events of the batch concern the same agent.

    Returns ``(after, unique_agents, counts)``. Used to apply a per-event forgetting factor λ to a whole
    batch at once: after the batch, event k of an agent with m events carries ``λ^(m−1−k)``, and the old
    state carries ``λ^m`` — the sequential recurrence unrolled.
    """
    order = np.argsort(agents, kind="stable")
    sorted_agents = agents[order]
    unique, start, counts = np.unique(sorted_agents, return_index=True, return_counts=True)
    end = np.repeat(start + counts, counts)
    after = np.empty(agents.shape[0], dtype=np.int64)
    after[order] = end - np.arange(agents.shape[0]) - 1
    return after, unique, counts


# --------------------------------------------------------------------------------------------------
# Beta reputation (Jøsang & Ismail 2002)
# --------------------------------------------------------------------------------------------------


class BetaReputation:
    """Beta reputation with a forgetting factor λ applied per feedback event.

    Per event ``(i, x, w)``: ``r_i ← λ·r_i + w·x`` and ``s_i ← λ·s_i + w·(1−x)``. Score: the posterior
    mean ``(r + α0)/(r + s + α0 + β0)``, ``(r+1)/(r+s+2)`` with the default prior Beta(1, 1). λ = 1 never
    forgets; λ = 0 keeps only the latest feedback. Evidence: ``r + s``. Time is ignored (``ema`` is the
    time-based variant). Forgetting is per event *of that agent*: an agent without feedback keeps its score.
    """

    def __init__(self, prior: tuple[float, float] = (1.0, 1.0), forgetting: float = 1.0) -> None:
        self.prior = _check_prior(prior)
        lam = float(forgetting)
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"forgetting must be in [0, 1]; got {forgetting}")
        self.forgetting = lam
        self._n = 0
        self._r = np.zeros(0)
        self._s = np.zeros(0)

    @property
    def n_agents(self) -> int:
        return self._n

    @property
    def r(self) -> np.ndarray:
        """Discounted positive evidence per agent (read-only view)."""
        v = self._r[: self._n].view()
        v.flags.writeable = False
        return v

    @property
    def s(self) -> np.ndarray:
        """Discounted negative evidence per agent (read-only view)."""
        v = self._s[: self._n].view()
        v.flags.writeable = False
        return v

    def ensure(self, n: int) -> None:
        if n > self._r.shape[0]:
            cap = max(int(n), 2 * self._r.shape[0])
            self._r, self._s = _grow(self._r, cap, 0.0), _grow(self._s, cap, 0.0)
        self._n = max(self._n, int(n))

    def record(
        self,
        agents: np.ndarray,
        outcomes: np.ndarray,
        t: float,
        weights: np.ndarray | None = None,
        raters: np.ndarray | None = None,
    ) -> None:
        if weights is None and self._record_few(agents, outcomes):
            return
        a, x, w = _events(agents, outcomes, weights, self._n)
        if a.size == 0:
            return
        lam = self.forgetting
        if lam == 1.0:
            np.add.at(self._r, a, w * x)
            np.add.at(self._s, a, w * (1.0 - x))
            return
        after, unique, counts = _events_after(a)
        keep = np.power(lam, counts.astype(np.float64))  # λ^m on the old state (0^0 = 1)
        self._r[unique] *= keep
        self._s[unique] *= keep
        decay = np.power(lam, after.astype(np.float64))
        np.add.at(self._r, a, decay * w * x)
        np.add.at(self._s, a, decay * w * (1.0 - x))

    def _record_few(self, agents: object, outcomes: object) -> bool:
        """``record`` of a few unit-weight events of distinct agents (a block's settlements), in Python
        floats: each agent's ``r·λ + x`` and ``s·λ + (1 − x)`` are the very products and sums the batch path
        forms (``λ^1 = λ``, ``λ^0 = 1``). Returns False (nothing done) where the batch path must decide."""
        if not (type(agents) is np.ndarray and type(outcomes) is np.ndarray and agents.dtype == np.int64
                and outcomes.dtype == np.float64 and agents.ndim == 1 and agents.shape == outcomes.shape
                and 0 < agents.shape[0] <= 16):
            return False
        al = agents.tolist()
        xl = outcomes.tolist()
        n = self._n
        if len(set(al)) != len(al) or not all(0 <= i < n for i in al) or not all(0.0 <= x <= 1.0 for x in xl):
            return False  # repeats, or invalid input (the batch path raises)
        lam, r, s = self.forgetting, self._r, self._s
        for i, x in zip(al, xl, strict=True):
            r[i] = r[i] * lam + x
            s[i] = s[i] * lam + (1.0 - x)
        return True

    def reset(self, agents: np.ndarray) -> None:
        a = _agent_ids(np.asarray(agents), self._n)
        self._r[a] = 0.0
        self._s[a] = 0.0

    def score(self, agents: np.ndarray, t: float = 0.0) -> np.ndarray:
        a = _agent_ids(agents, self._n)
        a0, b0 = self.prior
        r, s = self._r[a], self._s[a]
        return (r + a0) / (r + s + a0 + b0)

    def evidence(self, agents: np.ndarray, t: float | None = None) -> np.ndarray:
        a = _agent_ids(agents, self._n)
        return self._r[a] + self._s[a]


# --------------------------------------------------------------------------------------------------
# Exponential (half-life) reputation
# --------------------------------------------------------------------------------------------------


class ExponentialReputation:
    """Exponentially weighted reputation in continuous time, with half-life ``h`` seconds.

    **Definition.** Every piece of evidence loses half its weight every ``h`` seconds. Per agent the
    state is the discounted sums ``S = Σ_k w_k·x_k·2^(−(t−t_k)/h)`` and ``W = Σ_k w_k·2^(−(t−t_k)/h)``,
    stored as of the agent's last event ``t_last`` and decayed lazily: on an event ``(x, w)`` at ``t``,
    with ``d = 2^(−(t − t_last)/h)``, ``S ← d·S + w·x``, ``W ← d·W + w``, ``t_last ← t``. The score at
    ``t ≥ t_last`` is::

        ρ(t) = (d·S + α0) / (d·W + α0 + β0),   d = 2^(−(t − t_last)/h)

    i.e. the Beta posterior mean with the forgetting factor applied per second instead of per event
    (§A1.2), and with a prior (α0, β0) that does *not* decay. Consequences:

    * with no new events the score decays toward the prior mean ``α0/(α0+β0)``, with half-life h for
      the evidence;
    * events at the same instant (Δt = 0) all count fully (a plain ``R ← w·R + (1−w)·x`` with
      ``w = 2^(−Δt/h)`` would ignore all but the first);
    * with unit-weight events every Δ seconds, once the prior is negligible, ``S/W`` is exactly the EMA
      ``R ← d·R + (1−d)·x`` with ``d = 2^(−Δ/h)`` (the bias-corrected EMA).

    Evidence: ``d·W`` at time t (``W`` as of the last event when t is None). ``half_life_s = inf`` never
    forgets (then this equals ``BetaReputation(forgetting=1)``). Time may not go backwards for an agent.
    """

    def __init__(self, half_life_s: float, prior: tuple[float, float] = (1.0, 1.0)) -> None:
        h = float(half_life_s)
        if not h > 0.0:  # also rejects NaN
            raise ValueError(f"half_life_s must be > 0 (inf = no forgetting); got {half_life_s}")
        self.half_life_s = h
        self.prior = _check_prior(prior)
        self._n = 0
        self._sum = np.zeros(0)  # S
        self._weight = np.zeros(0)  # W
        self._t_last = np.zeros(0)  # −inf until the first event

    @property
    def n_agents(self) -> int:
        return self._n

    def ensure(self, n: int) -> None:
        if n > self._sum.shape[0]:
            cap = max(int(n), 2 * self._sum.shape[0])
            self._sum = _grow(self._sum, cap, 0.0)
            self._weight = _grow(self._weight, cap, 0.0)
            self._t_last = _grow(self._t_last, cap, -np.inf)
        self._n = max(self._n, int(n))

    def _decay(self, a: np.ndarray, t: float) -> np.ndarray:
        """``2^(−(t − t_last)/h)`` for agents ``a`` (0 where there is no evidence yet)."""
        t_last = self._t_last[a]
        if (t < t_last).any():
            raise ValueError(f"t = {t} is before an agent's last event (max {t_last.max()}); time went backwards")
        has = self._weight[a] > 0.0
        dt = np.where(has, t - np.where(has, t_last, t), 0.0)
        return np.where(has, np.exp2(-dt / self.half_life_s), 0.0)

    def record(
        self,
        agents: np.ndarray,
        outcomes: np.ndarray,
        t: float,
        weights: np.ndarray | None = None,
        raters: np.ndarray | None = None,
    ) -> None:
        tf = _check_time(t)
        a, x, w = _events(agents, outcomes, weights, self._n)
        if a.size == 0:
            return
        unique = np.unique(a)
        d = self._decay(unique, tf)  # within the call Δt = 0: later repeats of an agent decay by 1
        self._sum[unique] *= d
        self._weight[unique] *= d
        self._t_last[unique] = tf
        np.add.at(self._sum, a, w * x)
        np.add.at(self._weight, a, w)

    def reset(self, agents: np.ndarray) -> None:
        a = _agent_ids(np.asarray(agents), self._n)
        self._sum[a] = 0.0
        self._weight[a] = 0.0
        self._t_last[a] = -np.inf

    def score(self, agents: np.ndarray, t: float) -> np.ndarray:
        a = _agent_ids(agents, self._n)
        d = self._decay(a, _check_time(t))
        a0, b0 = self.prior
        return (d * self._sum[a] + a0) / (d * self._weight[a] + a0 + b0)

    def evidence(self, agents: np.ndarray, t: float | None = None) -> np.ndarray:
        a = _agent_ids(agents, self._n)
        if t is None:
            return self._weight[a].copy()
        return self._decay(a, _check_time(t)) * self._weight[a]


# --------------------------------------------------------------------------------------------------
# EigenTrust (Kamvar, Schlosser, Garcia-Molina 2003)
# --------------------------------------------------------------------------------------------------


class EigenTrustReputation:
    """Global trust from requester→worker feedback (EigenTrust), scaled to [0, 1] by its maximum.

    Local trust of rater i in worker j: ``s_ij = Σ w·x − Σ w·(1−x)`` over i's feedback on j (satisfied
    minus unsatisfied, weighted), normalized ``c_ij = max(s_ij, 0)/Σ_k max(s_ik, 0)``. A rater with no
    positive local trust (including agents that never rated anyone) trusts the pre-trust distribution,
    ``c_i = p``, as in the paper. ``p`` is uniform over ``pre_trusted`` (all agents when None). Global
    trust is the fixed point of ``t ← (1−α)·Cᵀ·t + α·p`` (a probability vector), found by power iteration
    from ``t = p`` until ``‖Δt‖₁ < tol``; it converges geometrically at rate ``1−α`` for ``α ∈ (0, 1]``.

    ``score = t / max(t)``: 1 for the most trusted agent. ``raters`` are required by :meth:`record`;
    self-ratings (rater == worker) carry no information and are ignored. ``t`` is ignored (no time
    decay). Evidence: total feedback weight an agent received from others. Feedback is stored as a sparse
    edge list, so memory grows with the number of distinct (rater, worker) pairs, not n². Scores are
    cached until the next ``record``/``ensure``. Without feedback, every agent in ``p`` scores 1 and the
    others 0 (a new agent outside the pre-trusted set starts at 0).
    """

    def __init__(
        self,
        alpha: float = 0.2,
        pre_trusted: Sequence[int] | np.ndarray | None = None,
        tol: float = 1e-12,
        max_iter: int = 10_000,
    ) -> None:
        a = float(alpha)
        if not 0.0 < a <= 1.0:
            raise ValueError(f"alpha (pre-trust weight) must be in (0, 1]; got {alpha}")
        if not float(tol) > 0.0:
            raise ValueError(f"tol must be > 0; got {tol}")
        if int(max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1; got {max_iter}")
        self.alpha, self.tol, self.max_iter = a, float(tol), int(max_iter)
        if pre_trusted is None:
            self.pre_trusted: np.ndarray | None = None
        else:
            p = np.unique(np.asarray(pre_trusted, dtype=np.int64))
            if p.size == 0 or p[0] < 0:
                raise ValueError("pre_trusted must be a non-empty set of agent ids >= 0 (or None for all agents)")
            self.pre_trusted = p
        self._n = 0
        self._received = np.zeros(0)
        # Aggregated edges (rater, worker, s_ij), plus batches not yet merged.
        self._edge_i = np.zeros(0, np.int64)
        self._edge_j = np.zeros(0, np.int64)
        self._edge_s = np.zeros(0)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._trust: np.ndarray | None = None
        self.iterations = 0  # power iterations of the last computation

    @property
    def n_agents(self) -> int:
        return self._n

    def ensure(self, n: int) -> None:
        if n > self._received.shape[0]:
            self._received = _grow(self._received, max(int(n), 2 * self._received.shape[0]), 0.0)
        if n > self._n:
            self._n = int(n)
            self._trust = None

    def record(
        self,
        agents: np.ndarray,
        outcomes: np.ndarray,
        t: float,
        weights: np.ndarray | None = None,
        raters: np.ndarray | None = None,
    ) -> None:
        if raters is None:
            raise ValueError("EigenTrustReputation.record needs raters (the requester giving each feedback)")
        j, x, w = _events(agents, outcomes, weights, self._n)
        i = _agent_ids(np.broadcast_to(np.asarray(raters), j.shape), self._n, "raters")
        other = i != j
        i, j, x, w = i[other], j[other], x[other], w[other]
        if j.size == 0:
            return
        np.add.at(self._received, j, w)
        self._pending.append((i, j, w * (2.0 * x - 1.0)))  # w·x − w·(1−x)
        self._trust = None

    def local_trust(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Aggregated ``(rater, worker, s_ij)`` edges, sorted by (rater, worker)."""
        if self._pending:
            i = np.concatenate([self._edge_i, *(e[0] for e in self._pending)])
            j = np.concatenate([self._edge_j, *(e[1] for e in self._pending)])
            s = np.concatenate([self._edge_s, *(e[2] for e in self._pending)])
            key = (i << np.int64(32)) | j  # ids < 2^31
            unique, inverse = np.unique(key, return_inverse=True)
            self._edge_s = np.bincount(inverse, weights=s, minlength=unique.size)
            self._edge_i, self._edge_j = unique >> np.int64(32), unique & np.int64(0xFFFFFFFF)
            self._pending = []
        return self._edge_i, self._edge_j, self._edge_s

    def pre_trust(self) -> np.ndarray:
        """The pre-trust distribution ``p`` over the current agents (sums to 1)."""
        p = np.zeros(self._n)
        if self._n == 0:
            return p
        if self.pre_trusted is None:
            p[:] = 1.0 / self._n
        else:
            ids = self.pre_trusted[self.pre_trusted < self._n]
            if ids.size == 0:
                raise ValueError(f"no pre_trusted agent exists yet (n_agents = {self._n})")
            p[ids] = 1.0 / ids.size
        return p

    def global_trust(self) -> np.ndarray:
        """The EigenTrust vector ``t`` (non-negative, sums to 1) over all agents."""
        if self._trust is not None:
            return self._trust
        n = self._n
        p = self.pre_trust()
        i, j, s = self.local_trust()
        pos = np.maximum(s, 0.0)
        row = np.bincount(i, weights=pos, minlength=n)
        keep = pos > 0.0
        i, j, c = i[keep], j[keep], pos[keep] / row[i[keep]]
        dangling = row[:n] <= 0.0
        t, it, delta = p.copy(), 0, math.inf
        while delta >= self.tol:
            if it == self.max_iter:
                raise RuntimeError(f"EigenTrust did not converge in {it} iterations (last ‖Δt‖₁ = {delta})")
            flow = np.bincount(j, weights=c * t[i], minlength=n) + t[dangling].sum() * p
            new = (1.0 - self.alpha) * flow + self.alpha * p
            delta = float(np.abs(new - t).sum())
            t, it = new, it + 1
        self.iterations = it
        self._trust = t
        return t

    def reset(self, agents: np.ndarray) -> None:
        """Drop every feedback edge about ``agents`` (what they said about others stays)."""
        a = _agent_ids(np.asarray(agents), self._n)
        i, j, w = self.local_trust()
        keep = ~np.isin(j, a)
        self._edge_i, self._edge_j, self._edge_s = i[keep], j[keep], w[keep]
        self._received[a] = 0.0
        self._trust = None

    def score(self, agents: np.ndarray, t: float = 0.0) -> np.ndarray:
        a = _agent_ids(agents, self._n)
        trust = self.global_trust()
        if a.size == 0:
            return np.zeros(0)
        return trust[a] / trust.max()

    def evidence(self, agents: np.ndarray, t: float | None = None) -> np.ndarray:
        a = _agent_ids(agents, self._n)
        return self._received[a].copy()


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------

REPUTATIONS: dict[str, Callable[..., ReputationModel]] = {
    "beta": BetaReputation,
    "ema": ExponentialReputation,
    "eigentrust": EigenTrustReputation,
}


def make_reputation(name: str = "beta", **params: Any) -> ReputationModel:
    """A new reputation model registered as ``name`` (``beta`` by default), built with ``params``.

    Raises:
        ValueError: naming the allowed models, if ``name`` is unknown.
    """
    try:
        cls = REPUTATIONS[name]
    except (KeyError, TypeError):
        allowed = ", ".join(REPUTATIONS)
        raise ValueError(f"unknown reputation model {name!r}; allowed: {allowed}") from None
    return cls(**params)
