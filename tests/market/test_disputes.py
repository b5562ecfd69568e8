"""Dispute resolution (``ainur_sim.market.disputes``): exact splits, Condorcet, verdicts, the juror court."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ainur_sim.market.disputes import (
    MAX_AMOUNT,
    CourtParams,
    automated_verdict,
    draw_votes,
    juror_court,
    loser_appeals,
    majority_accuracy,
    split_pro_rata,
)

TOKEN = 10**12


def _within(successes: int, trials: int, p: float, sigmas: float = 4.0) -> bool:
    """``successes/trials`` is within ``sigmas`` binomial standard deviations of p."""
    sd = math.sqrt(p * (1 - p) / trials)
    return abs(successes / trials - p) <= sigmas * sd + 1e-12


# --------------------------------------------------------------------------------------------------
# split_pro_rata
# --------------------------------------------------------------------------------------------------


def test_split_small_example() -> None:
    shares, rest = split_pro_rata(100, np.array([1, 2, 0, 3]))
    np.testing.assert_array_equal(shares, [16, 33, 0, 50])
    assert rest == 1 and shares.dtype == np.int64


def test_split_huge_totals_is_exact() -> None:
    total = 9 * 10**18 + 7  # near 2^63 − 1: a float64 path would be off by hundreds of units
    w = np.array([3, 5, 7, 0, 11])
    shares, rest = split_pro_rata(total, w)
    assert shares.tolist() == [total * x // 26 for x in w.tolist()]
    assert sum(shares.tolist()) + rest == total
    big = np.array([2**62, 3, 2**40, 1])  # Σw ≥ 2^31: the Python-int path
    shares, rest = split_pro_rata(MAX_AMOUNT, big)
    assert shares.tolist() == [MAX_AMOUNT * x // sum(big.tolist()) for x in big.tolist()]
    assert sum(shares.tolist()) + rest == MAX_AMOUNT and 0 <= rest < 4


def test_split_zero_weights_and_empty() -> None:
    shares, rest = split_pro_rata(12345, np.zeros(3, np.int64))
    np.testing.assert_array_equal(shares, [0, 0, 0])
    assert rest == 12345
    shares, rest = split_pro_rata(7, np.array([], np.int64))
    assert shares.size == 0 and rest == 7
    shares, rest = split_pro_rata(0, np.array([1, 2]))
    np.testing.assert_array_equal(shares, [0, 0])
    assert rest == 0


@pytest.mark.parametrize(
    ("total", "weights", "message"),
    [
        (-1, np.array([1]), "total"),
        (2**63, np.array([1]), "total"),
        (1.5, np.array([1]), "total"),
        (10, np.array([1.0, 2.0]), "integers"),
        (10, np.array([1, -2]), ">= 0"),
    ],
)
def test_split_rejects_bad_inputs(total: int, weights: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_pro_rata(total, weights)


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(0, MAX_AMOUNT),
    weights=st.lists(st.integers(0, 2**20) | st.integers(0, 2**62), max_size=12),
)
def test_split_is_the_exact_floor_share(total: int, weights: list[int]) -> None:
    w = np.array(weights, dtype=np.int64)
    shares, rest = split_pro_rata(total, w)
    w_sum = sum(weights)
    if w_sum == 0:
        assert rest == total and not shares.any()
        return
    assert shares.tolist() == [total * x // w_sum for x in weights]
    assert sum(shares.tolist()) + rest == total
    assert 0 <= rest < sum(1 for x in weights if x > 0)


# --------------------------------------------------------------------------------------------------
# majority_accuracy
# --------------------------------------------------------------------------------------------------


def test_majority_accuracy_closed_forms() -> None:
    for q in (0.0, 0.3, 0.5, 0.7, 0.99, 1.0):
        assert majority_accuracy(1, q) == pytest.approx(q)
        assert majority_accuracy(3, q) == pytest.approx(3 * q**2 - 2 * q**3, abs=1e-15)
    assert majority_accuracy(2, 0.6) == pytest.approx(0.36)  # a 1–1 tie is not a majority


@pytest.mark.parametrize("n", [1, 2, 3, 7, 15, 31, 100, 1001, 20001])
@pytest.mark.parametrize("q", [0.2, 0.5, 0.51, 0.7, 0.9])
def test_majority_accuracy_is_the_binomial_tail(n: int, q: float) -> None:
    assert majority_accuracy(n, q) == pytest.approx(stats.binom.sf(n // 2, n, q), rel=1e-9, abs=1e-300)


def test_majority_accuracy_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="n must be"):
        majority_accuracy(0, 0.5)
    with pytest.raises(ValueError, match="q must be"):
        majority_accuracy(3, 1.2)


# --------------------------------------------------------------------------------------------------
# automated_verdict
# --------------------------------------------------------------------------------------------------


def test_automated_verdict_error_rates() -> None:
    rng = np.random.default_rng(2)
    right = rng.random(200_000) < 0.6
    ruling = automated_verdict(right, false_accept=0.05, false_reject=0.12, rng=rng)
    assert ruling.dtype == bool and ruling.shape == right.shape
    n_wrong, n_right = int((~right).sum()), int(right.sum())
    assert _within(int((ruling & ~right).sum()), n_wrong, 0.05)
    assert _within(int((~ruling & right).sum()), n_right, 0.12)


def test_automated_verdict_extremes_and_validation() -> None:
    rng = np.random.default_rng(0)
    right = np.array([True, False, True, False])
    np.testing.assert_array_equal(automated_verdict(right, 0.0, 0.0, rng), right)
    np.testing.assert_array_equal(automated_verdict(right, 1.0, 1.0, rng), ~right)
    np.testing.assert_array_equal(automated_verdict(right, 1.0, 0.0, rng), [True] * 4)
    with pytest.raises(ValueError, match="false_accept"):
        automated_verdict(right, -0.1, 0.0, rng)
    with pytest.raises(ValueError, match="false_reject"):
        automated_verdict(right, 0.0, 2.0, rng)


# --------------------------------------------------------------------------------------------------
# CourtParams and drawing
# --------------------------------------------------------------------------------------------------


def test_court_params_store_python_numbers() -> None:
    p = CourtParams(np.int64(5), np.int64(2), np.int64(2**40), np.int64(3), np.float32(2.0))
    assert p.jury_sizes == (5, 11)
    assert [type(v) for v in (p.initial_jurors, p.max_rounds, p.fee_per_juror, p.stake_at_risk_per_vote)] == [int] * 4
    assert type(p.appeal_threshold) is float
    with pytest.raises(ValueError, match=r"fee_per_juror · Σ jury sizes"):
        CourtParams(fee_per_juror=np.int64(2**61))  # 2^61 · 56 would wrap in int64


def test_court_params_default_jury_sizes() -> None:
    assert CourtParams().jury_sizes == (3, 7, 15, 31)
    assert CourtParams(initial_jurors=1, max_rounds=3).jury_sizes == (1, 3, 7)
    assert CourtParams(max_rounds=1).jury_sizes == (3,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_jurors": 4}, "initial_jurors must be odd"),
        ({"initial_jurors": 0}, r"initial_jurors .*\[1, 1001\]"),
        ({"initial_jurors": True}, "initial_jurors"),
        ({"max_rounds": 0}, r"max_rounds .*\[1, 12\]"),
        ({"max_rounds": 13}, "max_rounds"),
        ({"fee_per_juror": -1}, "fee_per_juror"),
        ({"fee_per_juror": 1.0}, "fee_per_juror must be an integer"),
        ({"fee_per_juror": 2**62}, r"fee_per_juror · Σ jury sizes"),
        ({"stake_at_risk_per_vote": -5}, "stake_at_risk_per_vote"),
        ({"appeal_threshold": -1.0}, "appeal_threshold"),
        ({"appeal_threshold": float("nan")}, "appeal_threshold"),
    ],
)
def test_court_params_validation_names_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CourtParams(**kwargs)


def test_draws_are_proportional_to_stake() -> None:
    stakes = np.array([1, 0, 2, 3, 4, 10]) * TOKEN
    rng = np.random.default_rng(9)
    n = 200_000
    counts = np.bincount(draw_votes(stakes, n, rng), minlength=stakes.size)
    assert counts[1] == 0  # zero stake is never drawn
    pos = stakes > 0
    expected = n * stakes[pos] / stakes.sum()
    assert stats.chisquare(counts[pos], expected).pvalue > 1e-4
    sd = np.sqrt(expected * (1 - stakes[pos] / stakes.sum()))
    assert (np.abs(counts[pos] - expected) < 4 * sd).all()


def test_draws_tokens_exactly_at_the_boundaries() -> None:
    class Tokens:  # a stand-in generator returning chosen token numbers
        def integers(self, low: int, high: int, size: int, dtype: type) -> np.ndarray:
            assert (low, high) == (0, 6)
            return np.array([0, 1, 2, 5], dtype=dtype)

    # tokens 0 → juror 0; 1, 2 → juror 2 (juror 1 has no tokens); 3..5 → juror 3.
    np.testing.assert_array_equal(draw_votes(np.array([1, 0, 2, 3]), 4, Tokens()), [0, 2, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no stake"):
        draw_votes(np.zeros(3, np.int64), 1, np.random.default_rng(0))


# --------------------------------------------------------------------------------------------------
# juror_court: rulings and appeals
# --------------------------------------------------------------------------------------------------

POOL_IDS = np.arange(100, 110)
POOL_STAKES = np.arange(1, 11) * 1000 * TOKEN


def test_court_without_appeals_matches_condorcet() -> None:
    q, trials = 0.7, 4000
    rng = np.random.default_rng(17)
    params = CourtParams(max_rounds=1)
    truth = rng.random(trials) < 0.5
    correct = 0
    for w in truth:
        out = juror_court(bool(w), 50 * TOKEN, POOL_IDS, POOL_STAKES, q, params, rng)
        assert out.rounds == 1 and out.jury_sizes.tolist() == [3]
        correct += out.ruling_for_worker == w
    assert _within(correct, trials, majority_accuracy(3, q))


def test_court_votes_follow_the_stake_weighted_accuracy() -> None:
    """Two jurors: 10 % of the stake always wrong, 90 % always right → each vote right w.p. 0.9."""
    rng = np.random.default_rng(23)
    params = CourtParams(max_rounds=1)
    trials, correct = 3000, 0
    for _ in range(trials):
        out = juror_court(True, 0, np.array([7, 8]), np.array([1, 9]) * TOKEN, np.array([0.0, 1.0]), params, rng)
        correct += out.ruling_for_worker
        # Votes are exactly "juror 8 for the worker, juror 7 against".
        np.testing.assert_array_equal(out.votes_for_worker, out.drawn == 8)
    assert _within(correct, trials, majority_accuracy(3, 0.9))


def test_court_with_cheap_appeals_runs_every_round_and_the_last_jury_decides() -> None:
    q, trials = 0.6, 3000
    rng = np.random.default_rng(31)
    params = CourtParams(fee_per_juror=TOKEN // 100)
    correct = 0
    for k in range(trials):
        w = k % 2 == 0
        out = juror_court(w, 1000 * TOKEN, POOL_IDS, POOL_STAKES, q, params, rng)
        # The least hopeful appeal (a wrong loser facing 31 votes, P(reverse) = 1 − P_maj(31, 0.6) ≈ 0.13)
        # is worth ≈ 130 tokens, far above the largest appeal cost (31 · 0.01 token): every loser appeals.
        assert out.rounds == 4
        assert out.jury_sizes.tolist() == [3, 7, 15, 31] and out.drawn.size == 56
        assert out.fees_total == 56 * TOKEN // 100
        assert out.ruling_for_worker == out.round_rulings[-1]
        correct += out.ruling_for_worker == w
    assert _within(correct, trials, majority_accuracy(31, q))


def test_round_rulings_are_the_majorities() -> None:
    rng = np.random.default_rng(1)
    out = juror_court(True, 10**6 * TOKEN, POOL_IDS, POOL_STAKES, 0.55, CourtParams(fee_per_juror=1), rng)
    ends = np.cumsum(out.jury_sizes)
    for k, (lo, hi) in enumerate(zip(ends - out.jury_sizes, ends, strict=True)):
        assert out.round_rulings[k] == (2 * out.votes_for_worker[lo:hi].sum() > hi - lo)
    assert set(out.drawn.tolist()) <= set(POOL_IDS.tolist())


def test_loser_appeal_rule() -> None:
    params = CourtParams(fee_per_juror=TOKEN, appeal_threshold=2.0)
    p7 = majority_accuracy(7, 0.8)
    cost = 2.0 * TOKEN * 7
    # A wronged loser: P(reverse) = P_maj(7, 0.8) ≈ 0.967; a wrong loser: 1 − that ≈ 0.033.
    assert loser_appeals(True, math.ceil(cost / p7) + 1, 7, 0.8, params)
    assert not loser_appeals(True, math.floor(cost / p7) - 1, 7, 0.8, params)
    assert loser_appeals(False, math.ceil(cost / (1 - p7)) + 10, 7, 0.8, params)
    assert not loser_appeals(False, math.floor(cost / (1 - p7)) - 10, 7, 0.8, params)
    assert not loser_appeals(True, MAX_AMOUNT, 7, 0.8, CourtParams(appeal_threshold=math.inf))
    assert not loser_appeals(True, MAX_AMOUNT, 7, 0.8, CourtParams(fee_per_juror=0, appeal_threshold=math.inf))


def test_no_appeal_when_disabled_or_when_the_loser_cannot_win() -> None:
    rng = np.random.default_rng(4)
    for _ in range(200):
        params = CourtParams(appeal_threshold=math.inf)
        out = juror_court(True, MAX_AMOUNT // 2, POOL_IDS, POOL_STAKES, 0.6, params, rng)
        assert out.rounds == 1
    # Perfect jurors: the (wrong) requester loses and P(reverse) = 0, so it never appeals.
    out = juror_court(True, MAX_AMOUNT // 2, POOL_IDS, POOL_STAKES, 1.0, CourtParams(fee_per_juror=0), rng)
    assert out.rounds == 1 and out.ruling_for_worker


# --------------------------------------------------------------------------------------------------
# juror_court: money
# --------------------------------------------------------------------------------------------------


def _money_reference(out, ids, stakes, params) -> tuple[dict[int, int], dict[int, int], int]:  # noqa: ANN001
    """Penalties, rewards and remainder recomputed from the drawn votes with plain Python ints."""
    stake = dict(zip(ids.tolist(), stakes.tolist(), strict=True))
    remaining = dict(stake)
    penalties: dict[int, int] = {}
    rewards: dict[int, int] = {}
    remainder = 0
    start = 0
    for n in out.jury_sizes.tolist():
        drawn = out.drawn[start : start + n].tolist()
        coherent = (out.votes_for_worker[start : start + n] == out.ruling_for_worker).tolist()
        start += n
        bad: dict[int, int] = {}
        good: dict[int, int] = {}
        for j, c in zip(drawn, coherent, strict=True):
            (good if c else bad)[j] = (good if c else bad).get(j, 0) + 1
        pool = params.fee_per_juror * n
        for j, m in bad.items():
            charge = min(remaining[j], params.stake_at_risk_per_vote * m)
            remaining[j] -= charge
            penalties[j] = penalties.get(j, 0) + charge
            pool += charge
        votes = sum(good.values())
        paid = 0
        for j, m in good.items():
            share = pool * m // votes
            rewards[j] = rewards.get(j, 0) + share
            paid += share
        remainder += pool - paid
    return {j: a for j, a in penalties.items() if a}, {j: a for j, a in rewards.items() if a}, remainder


@settings(max_examples=250, deadline=None)
@given(
    pool=st.lists(
        st.tuples(st.integers(0, 10**15) | st.integers(0, 5), st.floats(0.0, 1.0)), min_size=1, max_size=8
    ).filter(lambda p: any(s > 0 for s, _ in p)),
    worker_right=st.booleans(),
    value=st.integers(0, 10**16),
    initial_jurors=st.sampled_from([1, 3, 5]),
    max_rounds=st.integers(1, 4),
    fee=st.integers(0, 10**12) | st.integers(0, 3),
    at_risk=st.integers(0, 10**14) | st.integers(0, 3),
    threshold=st.sampled_from([0.0, 1.0, math.inf]),
    seed=st.integers(0, 2**32 - 1),
)
def test_court_money_is_conserved_exactly(
    pool: list[tuple[int, float]],
    worker_right: bool,
    value: int,
    initial_jurors: int,
    max_rounds: int,
    fee: int,
    at_risk: int,
    threshold: float,
    seed: int,
) -> None:
    ids = np.arange(len(pool), dtype=np.int64) * 7 + 3  # ids are not indices
    stakes = np.array([s for s, _ in pool], dtype=np.int64)
    accuracy = np.array([a for _, a in pool])
    params = CourtParams(initial_jurors, max_rounds, fee, at_risk, threshold)
    out = juror_court(worker_right, value, ids, stakes, accuracy, params, np.random.default_rng(seed))

    # Rounds and fees: a prefix of the 2n+1 schedule; the loser pays all of it, the winner nothing.
    assert 1 <= out.rounds <= max_rounds
    assert tuple(out.jury_sizes.tolist()) == params.jury_sizes[: out.rounds]
    assert out.drawn.size == out.votes_for_worker.size == int(out.jury_sizes.sum())
    assert out.fees_total == fee * int(out.jury_sizes.sum())
    assert out.ruling_for_worker == out.round_rulings[-1]
    if out.ruling_for_worker:
        assert (out.fees_paid_by_worker, out.fees_paid_by_requester) == (0, out.fees_total)
    else:
        assert (out.fees_paid_by_worker, out.fees_paid_by_requester) == (out.fees_total, 0)
    assert not np.isin(out.drawn, ids[stakes == 0]).any()

    # Conservation, exactly.
    pen = dict(zip(out.penalties[:, 0].tolist(), out.penalties[:, 1].tolist(), strict=True))
    rew = dict(zip(out.rewards[:, 0].tolist(), out.rewards[:, 1].tolist(), strict=True))
    assert sum(rew.values()) + out.remainder == out.fees_total + sum(pen.values())
    assert out.remainder >= 0 and all(a > 0 for a in (*pen.values(), *rew.values()))

    # Nobody loses more than their stake; only incoherent jurors pay, only coherent ones earn.
    stake = dict(zip(ids.tolist(), stakes.tolist(), strict=True))
    assert all(a <= stake[j] for j, a in pen.items())
    coherent = out.votes_for_worker == out.ruling_for_worker
    assert set(pen) <= set(out.drawn[~coherent].tolist())
    assert set(rew) <= set(out.drawn[coherent].tolist())

    # And the amounts are exactly the per-round redistribution.
    assert (pen, rew, out.remainder) == _money_reference(out, ids, stakes, params)


def test_a_small_stake_is_charged_at_most_once_over_rounds() -> None:
    """Juror 1 (3 units, always wrong) is drawn often; its penalties over all rounds total ≤ 3."""
    rng = np.random.default_rng(12)
    params = CourtParams(fee_per_juror=1, stake_at_risk_per_vote=TOKEN)
    for _ in range(50):
        out = juror_court(
            True, 10**6 * TOKEN, np.array([0, 1]), np.array([3 * TOKEN, 3]), np.array([0.6, 0.0]), params, rng
        )
        pen = dict(zip(out.penalties[:, 0].tolist(), out.penalties[:, 1].tolist(), strict=True))
        assert pen.get(1, 0) <= 3


def test_court_rejects_bad_inputs() -> None:
    rng = np.random.default_rng(0)
    p = CourtParams()
    ids, stakes = np.array([1, 2]), np.array([5, 5])
    with pytest.raises(ValueError, match="one length"):
        juror_court(True, 1, ids, np.array([5]), 0.5, p, rng)
    with pytest.raises(ValueError, match="distinct"):
        juror_court(True, 1, np.array([1, 1]), stakes, 0.5, p, rng)
    with pytest.raises(ValueError, match=">= 0"):
        juror_court(True, 1, ids, np.array([5, -1]), 0.5, p, rng)
    with pytest.raises(ValueError, match="no stake"):
        juror_court(True, 1, ids, np.array([0, 0]), 0.5, p, rng)
    with pytest.raises(ValueError, match="juror_accuracy"):
        juror_court(True, 1, ids, stakes, np.array([0.5, 1.5]), p, rng)
    with pytest.raises(ValueError, match="value"):
        juror_court(True, -1, ids, stakes, 0.5, p, rng)
    with pytest.raises(ValueError, match="integer"):
        juror_court(True, 1, ids, stakes.astype(float), 0.5, p, rng)
    with pytest.raises(ValueError, match="2\\^63"):
        juror_court(True, 1, ids, np.array([MAX_AMOUNT // 2, MAX_AMOUNT // 2]), 0.5, p, rng)
