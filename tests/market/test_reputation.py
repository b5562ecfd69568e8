"""Reputation models (``ainur_sim.market.reputation``): formulas, sequential semantics, EigenTrust."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ainur_sim.market.reputation import (
    REPUTATIONS,
    BetaReputation,
    EigenTrustReputation,
    ExponentialReputation,
    ReputationModel,
    make_reputation,
)


def _ids(*a: int) -> np.ndarray:
    return np.array(a, dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# Interface and registry
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "cls"),
    [
        ("beta", {}, BetaReputation),
        ("ema", {"half_life_s": 3600.0}, ExponentialReputation),
        ("eigentrust", {}, EigenTrustReputation),
    ],
)
def test_factory_builds_each_model_behind_the_protocol(name: str, params: dict, cls: type) -> None:
    model = make_reputation(name, **params)
    assert type(model) is cls and isinstance(model, ReputationModel)
    model.ensure(4)
    assert model.n_agents == 4
    score = model.score(_ids(0, 3), 0.0)
    assert score.dtype == np.float64 and score.shape == (2,)
    assert ((score >= 0.0) & (score <= 1.0)).all()
    np.testing.assert_array_equal(model.evidence(_ids(0, 1, 2, 3)), np.zeros(4))


def test_factory_default_and_unknown_names() -> None:
    assert set(REPUTATIONS) == {"beta", "ema", "eigentrust"}
    assert isinstance(make_reputation(), BetaReputation)
    assert make_reputation("beta", forgetting=0.9).forgetting == 0.9
    for bad in ("Beta", "elo", "", None):
        with pytest.raises(ValueError, match="allowed: beta, ema, eigentrust"):
            make_reputation(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: BetaReputation(forgetting=1.5), "forgetting"),
        (lambda: BetaReputation(forgetting=-0.1), "forgetting"),
        (lambda: BetaReputation(prior=(0.0, 0.0)), "prior"),
        (lambda: BetaReputation(prior=(-1.0, 2.0)), "prior"),
        (lambda: ExponentialReputation(0.0), "half_life_s"),
        (lambda: ExponentialReputation(float("nan")), "half_life_s"),
        (lambda: EigenTrustReputation(alpha=0.0), "alpha"),
        (lambda: EigenTrustReputation(alpha=1.5), "alpha"),
        (lambda: EigenTrustReputation(pre_trusted=[]), "pre_trusted"),
    ],
)
def test_bad_parameters(factory: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        factory()  # type: ignore[operator]


def test_bad_events_are_rejected_and_change_nothing() -> None:
    model = BetaReputation()
    model.ensure(3)
    with pytest.raises(ValueError, match="ensure"):
        model.record(_ids(3), np.array([1.0]), 0.0)
    with pytest.raises(ValueError, match="outcomes"):
        model.record(_ids(0, 1), np.array([1.0, 1.5]), 0.0)
    with pytest.raises(ValueError, match="weights"):
        model.record(_ids(0), np.array([1.0]), 0.0, weights=np.array([-1.0]))
    with pytest.raises(ValueError, match="integer"):
        model.record(np.array([0.0]), np.array([1.0]), 0.0)
    np.testing.assert_array_equal(model.evidence(_ids(0, 1, 2)), np.zeros(3))


def test_growth_keeps_state_and_new_agents_start_at_the_prior() -> None:
    model = BetaReputation(prior=(2.0, 6.0))
    model.ensure(2)
    model.record(_ids(1, 1, 1), np.array([1.0, 1.0, 0.0]), 0.0)
    for n in (3, 5, 100, 1000):
        model.ensure(n)
    model.ensure(10)  # never shrinks
    assert model.n_agents == 1000
    np.testing.assert_allclose(model.score(_ids(0, 1, 999), 0.0), [2 / 8, (2 + 2) / (3 + 8), 2 / 8])
    np.testing.assert_allclose(model.evidence(_ids(1)), [3.0])


# --------------------------------------------------------------------------------------------------
# Beta
# --------------------------------------------------------------------------------------------------


def test_beta_without_forgetting_is_the_posterior_mean_of_the_counts() -> None:
    rng = np.random.default_rng(11)
    n = 20
    model = BetaReputation()
    model.ensure(n)
    good, bad = np.zeros(n), np.zeros(n)
    for _ in range(30):
        agents = rng.integers(0, n, size=rng.integers(0, 15))
        outcomes = (rng.random(agents.size) < 0.7).astype(float)
        model.record(agents, outcomes, 0.0)
        np.add.at(good, agents, outcomes)
        np.add.at(bad, agents, 1.0 - outcomes)
    np.testing.assert_allclose(model.score(np.arange(n), 0.0), (good + 1) / (good + bad + 2), rtol=1e-12)
    np.testing.assert_allclose(model.r, good)
    np.testing.assert_allclose(model.s, bad)


def _beta_reference(n: int, batches: list[tuple[list[int], list[float], list[float]]], lam: float) -> np.ndarray:
    """The Jøsang–Ismail recurrence, one event at a time, in plain Python."""
    r, s = [0.0] * n, [0.0] * n
    for agents, outcomes, weights in batches:
        for i, x, w in zip(agents, outcomes, weights, strict=True):
            r[i] = lam * r[i] + w * x
            s[i] = lam * s[i] + w * (1.0 - x)
    return np.array([(r[i] + 1.0) / (r[i] + s[i] + 2.0) for i in range(n)])


@settings(max_examples=100, deadline=None)
@given(
    lam=st.sampled_from([0.0, 0.3, 0.9, 1.0]) | st.floats(0.0, 1.0),
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 4), st.floats(0.0, 1.0), st.floats(0.0, 5.0)), max_size=12),
        max_size=6,
    ),
)
def test_beta_with_forgetting_matches_the_unrolled_recurrence(lam: float, batches: list) -> None:
    """Batches with repeated agents, fractional outcomes and weights: identical to one event at a time."""
    model = BetaReputation(forgetting=lam)
    model.ensure(5)
    ref = []
    for batch in batches:
        agents, outcomes, weights = ([e[k] for e in batch] for k in range(3))
        model.record(np.array(agents, np.int64), np.array(outcomes), 0.0, weights=np.array(weights))
        ref.append((agents, outcomes, weights))
    np.testing.assert_allclose(model.score(np.arange(5), 0.0), _beta_reference(5, ref, lam), rtol=1e-9, atol=1e-12)


def test_beta_forgetting_by_hand() -> None:
    # λ = 0.5; agent 0 gets 1, 1, 0 (one call): r = 0.5·(0.5·1 + 1) + 0 = 0.75, s = 1.
    model = BetaReputation(forgetting=0.5)
    model.ensure(1)
    model.record(_ids(0, 0, 0), np.array([1.0, 1.0, 0.0]), 0.0)
    assert model.r[0] == pytest.approx(0.75) and model.s[0] == pytest.approx(1.0)
    assert model.score(_ids(0), 0.0)[0] == pytest.approx(1.75 / 3.75)


def test_beta_zero_forgetting_keeps_only_the_last_feedback() -> None:
    model = BetaReputation(forgetting=0.0)
    model.ensure(3)
    model.record(_ids(0, 1, 0, 0, 1, 2), np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]), 0.0)
    model.record(_ids(2, 2), np.array([1.0, 0.0]), 1.0)
    # last feedback: agent 0 → 1, agent 1 → 0, agent 2 → 0.
    np.testing.assert_allclose(model.score(_ids(0, 1, 2), 0.0), [2 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(model.evidence(_ids(0, 1, 2)), [1.0, 1.0, 1.0])


@pytest.mark.parametrize(
    "make", [lambda: BetaReputation(forgetting=0.7), lambda: ExponentialReputation(100.0, prior=(0.5, 2.0))]
)
def test_one_call_with_repeats_equals_one_event_per_call(make: object) -> None:
    rng = np.random.default_rng(5)
    agents = rng.integers(0, 4, size=40)
    outcomes = rng.random(40)
    weights = rng.random(40) * 3
    batch, single = make(), make()  # type: ignore[operator]
    for m in (batch, single):
        m.ensure(4)
        m.record(_ids(0, 1, 2, 3), np.zeros(4), 0.0)  # some history, decayed later by the EMA
    batch.record(agents, outcomes, 50.0, weights=weights)
    for a, x, w in zip(agents, outcomes, weights, strict=True):
        single.record(np.array([a]), np.array([x]), 50.0, weights=np.array([w]))
    np.testing.assert_allclose(batch.score(np.arange(4), 60.0), single.score(np.arange(4), 60.0), rtol=1e-12)
    np.testing.assert_allclose(batch.evidence(np.arange(4)), single.evidence(np.arange(4)), rtol=1e-12)


# --------------------------------------------------------------------------------------------------
# Exponential (half-life)
# --------------------------------------------------------------------------------------------------


def test_ema_old_evidence_weighs_half_after_one_half_life() -> None:
    h = 3600.0
    model = ExponentialReputation(h)
    model.ensure(2)
    model.record(_ids(0), np.array([1.0]), 1000.0, weights=np.array([4.0]))
    assert model.evidence(_ids(0), 1000.0)[0] == 4.0
    assert model.evidence(_ids(0), 1000.0 + h)[0] == pytest.approx(2.0, rel=1e-15)
    assert model.evidence(_ids(0), 1000.0 + 3 * h)[0] == pytest.approx(0.5, rel=1e-15)
    # A bad outcome exactly h later: S = 4·½ = 2, W = 2 + 1 = 3 → (2 + 1)/(3 + 2).
    model.record(_ids(0), np.array([0.0]), 1000.0 + h)
    assert model.score(_ids(0), 1000.0 + h)[0] == pytest.approx(3.0 / 5.0, rel=1e-14)
    assert model.evidence(_ids(0))[0] == pytest.approx(3.0)
    assert model.score(_ids(1), 1e9)[0] == 0.5  # untouched agent: the prior


def test_ema_decays_toward_the_prior_without_events() -> None:
    model = ExponentialReputation(10.0, prior=(1.0, 3.0))
    model.ensure(1)
    model.record(_ids(0), np.array([1.0]), 0.0, weights=np.array([100.0]))
    got = model.score(_ids(0, 0, 0, 0), 0.0)  # score takes one t for all agents
    assert got[0] == pytest.approx(101.0 / 104.0)
    for k in (1, 5, 20):
        d = 2.0**-k
        assert model.score(_ids(0), 10.0 * k)[0] == pytest.approx((100 * d + 1) / (100 * d + 4), rel=1e-12)
    assert model.score(_ids(0), 1e6)[0] == pytest.approx(0.25)


def test_ema_with_regular_events_is_the_classic_ema_once_warm() -> None:
    """Events every Δ seconds: S/W follows R ← d·R + (1−d)·x with d = 2^(−Δ/h) (bias-corrected EMA)."""
    h, delta = 50.0, 10.0
    d = 2.0 ** (-delta / h)
    rng = np.random.default_rng(3)
    xs = rng.random(400)
    model = ExponentialReputation(h, prior=(1e-300, 1e-300))  # prior negligible: score = S/W
    model.ensure(1)
    num, den = 0.0, 0.0
    for k, x in enumerate(xs):
        model.record(_ids(0), np.array([x]), k * delta)
        num, den = d * num + x, d * den + 1.0
    assert model.score(_ids(0), (len(xs) - 1) * delta)[0] == pytest.approx(num / den, rel=1e-12)
    ema = num / den  # after warm-up, one more step is exactly the classic EMA step
    model.record(_ids(0), np.array([0.25]), len(xs) * delta)
    assert model.score(_ids(0), len(xs) * delta)[0] == pytest.approx(d * ema + (1 - d) * 0.25, rel=1e-9)


def test_ema_events_at_the_same_instant_all_count() -> None:
    model = ExponentialReputation(1.0)
    model.ensure(1)
    model.record(_ids(0, 0, 0), np.array([1.0, 1.0, 1.0]), 5.0)
    assert model.evidence(_ids(0), 5.0)[0] == 3.0
    assert model.score(_ids(0), 5.0)[0] == pytest.approx(4.0 / 5.0)


def test_ema_time_cannot_go_backwards() -> None:
    model = ExponentialReputation(10.0)
    model.ensure(2)
    model.record(_ids(0), np.array([1.0]), 100.0)
    with pytest.raises(ValueError, match="backwards"):
        model.record(_ids(0), np.array([1.0]), 99.0)
    with pytest.raises(ValueError, match="backwards"):
        model.score(_ids(0), 50.0)
    model.record(_ids(1), np.array([1.0]), 0.0)  # another agent has its own clock
    with pytest.raises(ValueError, match="finite"):
        model.score(_ids(1), math.inf)


def test_ema_with_infinite_half_life_is_beta_without_forgetting() -> None:
    rng = np.random.default_rng(8)
    ema, beta = ExponentialReputation(math.inf), BetaReputation()
    for m in (ema, beta):
        m.ensure(6)
    for step in range(10):
        agents = rng.integers(0, 6, size=8)
        outcomes = rng.random(8)
        ema.record(agents, outcomes, 7.0 * step)
        beta.record(agents, outcomes, 7.0 * step)
    np.testing.assert_allclose(ema.score(np.arange(6), 1e6), beta.score(np.arange(6), 0.0), rtol=1e-12)


# --------------------------------------------------------------------------------------------------
# EigenTrust
# --------------------------------------------------------------------------------------------------


def _eigentrust_reference(n: int, s: np.ndarray, p: np.ndarray, alpha: float) -> np.ndarray:
    """Principal eigenvector of M = (1−α)·Cᵀ + α·p·1ᵀ via numpy.linalg.eig (dense, no iteration)."""
    pos = np.maximum(s, 0.0)
    np.fill_diagonal(pos, 0.0)
    rows = pos.sum(axis=1)
    c = np.where(rows[:, None] > 0, pos / np.where(rows > 0, rows, 1.0)[:, None], p[None, :])
    m = (1 - alpha) * c.T + alpha * np.outer(p, np.ones(n))
    values, vectors = np.linalg.eig(m)
    k = int(np.argmin(np.abs(values - 1.0)))
    assert abs(values[k] - 1.0) < 1e-9
    v = np.real(vectors[:, k])
    return v / v.sum()


@pytest.mark.parametrize(
    ("alpha", "pre_trusted", "n_raters"),
    [(0.2, None, 7), (0.1, [0, 3], 7), (0.5, [5], 7), (0.2, None, 3), (0.3, [4, 6], 4)],
)
def test_eigentrust_equals_the_principal_eigenvector(
    alpha: float, pre_trusted: list[int] | None, n_raters: int
) -> None:
    """With n_raters < n, agents n_raters.. never rate anyone: their trust flows back through p."""
    n = 7
    rng = np.random.default_rng(21)
    raters = rng.integers(0, n_raters, size=120)
    workers = rng.integers(0, n, size=120)
    outcomes = (rng.random(120) < np.linspace(0.2, 0.95, n)[workers]).astype(float)
    weights = rng.integers(1, 4, size=120).astype(float)
    model = EigenTrustReputation(alpha=alpha, pre_trusted=pre_trusted)
    model.ensure(n)
    model.record(workers[:60], outcomes[:60], 0.0, weights=weights[:60], raters=raters[:60])
    model.record(workers[60:], outcomes[60:], 1.0, weights=weights[60:], raters=raters[60:])
    s = np.zeros((n, n))
    np.add.at(s, (raters, workers), weights * (2 * outcomes - 1))
    p = np.full(n, 1.0 / n) if pre_trusted is None else np.isin(np.arange(n), pre_trusted) / len(pre_trusted)
    expected = _eigentrust_reference(n, s, p, alpha)
    np.testing.assert_allclose(model.global_trust(), expected, atol=1e-10)
    np.testing.assert_allclose(model.score(np.arange(n), 0.0), expected / expected.max(), atol=1e-9)
    assert model.score(np.arange(n), 0.0).max() == 1.0


def test_eigentrust_colluding_ring_without_pre_trust_links_gets_no_trust() -> None:
    honest, ring = np.arange(10), np.arange(10, 15)
    rng = np.random.default_rng(4)

    def build(pre_trusted: list[int] | None) -> EigenTrustReputation:
        model = EigenTrustReputation(alpha=0.15, pre_trusted=pre_trusted)
        model.ensure(15)
        # Honest requesters hire honest workers (mostly good) and the ring (always bad).
        r, w = rng.choice(honest, 200), rng.choice(honest, 200)
        model.record(w, (rng.random(200) < 0.9).astype(float), 0.0, raters=r)
        model.record(rng.choice(ring, 30), np.zeros(30), 0.0, raters=rng.choice(honest, 30))
        # The ring praises itself with heavy weights, in a cycle.
        model.record(np.roll(ring, 1), np.ones(5), 0.0, weights=np.full(5, 1000.0), raters=ring)
        return model

    seeded = build([0, 1, 2])
    ring_score, honest_score = seeded.score(ring, 0.0), seeded.score(honest, 0.0)
    assert ring_score.max() < 1e-9
    assert honest_score.min() > 0.1
    # Without a seed (uniform pre-trust over everyone) the ring is a trust sink and gains a lot.
    unseeded = build(None)
    assert unseeded.score(ring, 0.0).min() > 0.5
    assert unseeded.global_trust()[ring].sum() > 0.3


def test_eigentrust_needs_raters_ignores_self_ratings_and_counts_evidence() -> None:
    model = EigenTrustReputation()
    model.ensure(3)
    with pytest.raises(ValueError, match="raters"):
        model.record(_ids(1), np.array([1.0]), 0.0)
    np.testing.assert_allclose(model.score(_ids(0, 1, 2), 0.0), [1.0, 1.0, 1.0])  # no feedback: p
    model.record(_ids(1, 2), np.array([1.0, 1.0]), 0.0, weights=np.array([2.0, 9.0]), raters=_ids(0, 2))
    np.testing.assert_allclose(model.evidence(_ids(0, 1, 2)), [0.0, 2.0, 0.0])
    i, j, s = model.local_trust()
    np.testing.assert_array_equal(i, [0])
    np.testing.assert_array_equal(j, [1])
    np.testing.assert_allclose(s, [2.0])
    score = model.score(_ids(0, 1, 2), 0.0)
    assert score[1] == 1.0 and score[0] == pytest.approx(score[2]) and score[0] < 1.0


def test_eigentrust_new_agents_outside_the_seed_start_at_zero_and_cache_is_invalidated() -> None:
    model = EigenTrustReputation(pre_trusted=[0])
    model.ensure(2)
    model.record(_ids(1), np.array([1.0]), 0.0, raters=_ids(0))
    before = model.score(_ids(0, 1), 0.0)
    model.ensure(3)
    assert model.score(_ids(2), 0.0)[0] == 0.0
    np.testing.assert_allclose(model.score(_ids(0, 1), 0.0), before)
    model.record(_ids(2), np.array([1.0]), 0.0, weights=np.array([5.0]), raters=_ids(1))
    assert model.score(_ids(2), 0.0)[0] > 0.0
