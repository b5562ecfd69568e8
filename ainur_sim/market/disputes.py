"""Dispute resolution: an automated verdict, and a Kleros-style juror court with appeals.

Pure functions over arrays; randomness only through an explicit ``np.random.Generator``. Money is in
integer base units (1 token = 10^12 units) and every split is exact: nothing is created or lost, and
what cannot be divided evenly is reported as a remainder (e.g. for the treasury).

* :func:`automated_verdict` — a verifier (test suite, oracle, LLM judge) that rules for the worker with
  error rates ``false_accept`` (bad work accepted) and ``false_reject`` (good work rejected).
* :func:`juror_court` — Kleros (research/mechanisms_style.md §A2.2): votes drawn in proportion to
  stake, majority rulings, appeals to juries of ``2n+1``, loser pays the fees, coherent jurors share the
  fees and the stake lost by incoherent ones.
* :func:`split_pro_rata` — exact integer pro-rata split; :func:`majority_accuracy` — Condorcet's
  probability that a majority of n independent jurors is right.

Baseline hazard (§A2.4): about 0.5–2 % of tasks are disputed, and well under 1 % reach arbitration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ainur_sim.chain.fees import TOKEN

#: Largest amount an int64 column (and the chain's total issuance) can hold.
MAX_AMOUNT = 2**63 - 1
#: Bounds on :class:`CourtParams` (kept small enough that the largest jury stays cheap to simulate).
MAX_INITIAL_JURORS = 1001
MAX_ROUNDS = 12


# --------------------------------------------------------------------------------------------------
# Helpers: exact splits and Condorcet accuracy
# --------------------------------------------------------------------------------------------------


def split_pro_rata(total: int, weights: np.ndarray) -> tuple[np.ndarray, int]:
    """Split ``total`` units pro rata to integer ``weights``: ``share_i = ⌊total·w_i / Σw⌋``.

    Exact for every ``0 ≤ total ≤ 2^63 − 1`` and non-negative int64 weights: no float is involved (an
    int64 fast path when ``Σw < 2^31``, Python integers otherwise). Zero weights get nothing; if all
    weights are zero everything is remainder.

    Returns:
        ``(shares, remainder)``: int64 shares of the weights' shape, and the Python int
        ``total − Σ shares`` (``0 ≤ remainder < number of positive weights``, or ``total`` when none).

    Raises:
        ValueError: on a total outside [0, 2^63 − 1], non-integer or negative weights.
    """
    t = int(total)
    if t != total or not 0 <= t <= MAX_AMOUNT:
        raise ValueError(f"total must be an integer in [0, 2^63 - 1]; got {total}")
    w = np.asarray(weights)
    if w.dtype == np.bool_:
        w = w.astype(np.int64)
    if w.size and not np.issubdtype(w.dtype, np.integer):
        raise ValueError(f"weights must be integers; got dtype {w.dtype}")
    w = w.astype(np.int64, copy=False)
    if w.size and int(w.min()) < 0:
        raise ValueError("weights must be >= 0")
    w_sum = sum(w.ravel().tolist())
    if w_sum == 0:
        return np.zeros(w.shape, np.int64), t
    if w_sum < 2**31:
        q, r = divmod(t, w_sum)  # total·w/W = q·w + r·w/W; q·w ≤ total and r·w < W² < 2^62
        shares = np.int64(q) * w + (np.int64(r) * w) // np.int64(w_sum)
    else:
        shares = np.array([t * wi // w_sum for wi in w.ravel().tolist()], dtype=np.int64).reshape(w.shape)
    return shares, t - sum(shares.ravel().tolist())


def majority_accuracy(n: int, q: float) -> float:
    """Condorcet: ``P(majority right) = Σ_{k > n/2} C(n,k)·q^k·(1−q)^(n−k)`` for n independent jurors.

    Each juror is right with probability q. A tie (even n) counts as not right. Computed in log space,
    so large n does not overflow.
    """
    n = int(n)
    q = float(q)
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1]; got {q}")
    if q in (0.0, 1.0):
        return q
    lq, lp, lg_n = math.log(q), math.log1p(-q), math.lgamma(n + 1)
    terms = (
        math.exp(lg_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lq + (n - k) * lp)
        for k in range(n // 2 + 1, n + 1)
    )
    return min(math.fsum(terms), 1.0)


# --------------------------------------------------------------------------------------------------
# Automated verdict
# --------------------------------------------------------------------------------------------------


def _check_rate(name: str, value: float) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; got {value}")
    return v


def automated_verdict(
    worker_right: np.ndarray, false_accept: float, false_reject: float, rng: np.random.Generator
) -> np.ndarray:
    """Rulings of an imperfect automated verifier; True = ruled for the worker.

    Args:
        worker_right: ground truth per dispute (True = the work was acceptable), bool array.
        false_accept: P(rule for the worker | the worker is wrong), in [0, 1].
        false_reject: P(rule against the worker | the worker is right), in [0, 1].
        rng: the random source (one uniform draw per dispute).
    """
    fa, fr = _check_rate("false_accept", false_accept), _check_rate("false_reject", false_reject)
    right = np.asarray(worker_right, dtype=bool)
    u = rng.random(right.shape)
    return np.where(right, u >= fr, u < fa)


# --------------------------------------------------------------------------------------------------
# Juror court
# --------------------------------------------------------------------------------------------------


def _check_amount(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer amount in base units; got {value!r}")
    v = int(value)
    if not 0 <= v <= MAX_AMOUNT:
        raise ValueError(f"{name} must be in [0, 2^63 - 1] base units; got {v}")
    return v


@dataclass(frozen=True)
class CourtParams:
    """Parameters of :func:`juror_court` (amounts in base units; 1 token = 10^12).

    Attributes:
        initial_jurors: votes in the first round; odd, in [1, 1001]. Round k+1 has ``2·n_k + 1`` votes
            (3, 7, 15, 31 by default), as Kleros' appeal cost ``feeForJuror·(2·nbVotes + 1)``.
        max_rounds: the first round plus at most ``max_rounds − 1`` appeals, in [1, 12].
        fee_per_juror: arbitration fee per drawn vote (Kleros ``feeForJuror``); the illustrative default
            is 0.1 token.
        stake_at_risk_per_vote: stake an incoherent vote loses (Kleros ``minStake·alpha/10^4``); the
            illustrative default is 1 token.
        appeal_threshold: the loser appeals round k's ruling when
            ``P(reverse)·value > appeal_threshold · fee_per_juror · n_{k+1}`` (see :func:`loser_appeals`);
            ≥ 0, ``inf`` disables appeals. Kleros' loser stake multiplier (2×) corresponds to 2.
    """

    initial_jurors: int = 3
    max_rounds: int = 4
    fee_per_juror: int = TOKEN // 10
    stake_at_risk_per_vote: int = TOKEN
    appeal_threshold: float = 1.0

    def __post_init__(self) -> None:
        n0 = self.initial_jurors
        if isinstance(n0, bool) or not isinstance(n0, int | np.integer) or not 1 <= n0 <= MAX_INITIAL_JURORS:
            raise ValueError(f"initial_jurors must be an odd integer in [1, {MAX_INITIAL_JURORS}]; got {n0!r}")
        if n0 % 2 == 0:
            raise ValueError(f"initial_jurors must be odd (no ties); got {n0}")
        r = self.max_rounds
        if isinstance(r, bool) or not isinstance(r, int | np.integer) or not 1 <= r <= MAX_ROUNDS:
            raise ValueError(f"max_rounds must be an integer in [1, {MAX_ROUNDS}]; got {r!r}")
        fee = _check_amount("fee_per_juror", self.fee_per_juror)
        at_risk = _check_amount("stake_at_risk_per_vote", self.stake_at_risk_per_vote)
        # Store Python ints (numpy ints would wrap silently in the money arithmetic).
        object.__setattr__(self, "initial_jurors", int(n0))
        object.__setattr__(self, "max_rounds", int(r))
        object.__setattr__(self, "fee_per_juror", fee)
        object.__setattr__(self, "stake_at_risk_per_vote", at_risk)
        if fee * sum(self.jury_sizes) > MAX_AMOUNT:
            raise ValueError(
                f"fee_per_juror · Σ jury sizes must be <= 2^63 - 1; fee_per_juror must be <= "
                f"{MAX_AMOUNT // sum(self.jury_sizes)} with these jury sizes; got {fee}"
            )
        th = float(self.appeal_threshold)
        if not th >= 0.0:  # also rejects NaN
            raise ValueError(f"appeal_threshold must be in [0, inf]; got {self.appeal_threshold}")
        object.__setattr__(self, "appeal_threshold", th)

    @property
    def jury_sizes(self) -> tuple[int, ...]:
        """Votes per round if every appeal happens: ``n_0 = initial_jurors``, ``n_{k+1} = 2·n_k + 1``."""
        sizes = [int(self.initial_jurors)]
        for _ in range(int(self.max_rounds) - 1):
            sizes.append(2 * sizes[-1] + 1)
        return tuple(sizes)


@dataclass(frozen=True)
class CourtOutcome:
    """Result of one :func:`juror_court` dispute. Amounts in base units (Python ints or int64 arrays).

    Attributes:
        ruling_for_worker: the final ruling (the last round's), True = for the worker.
        rounds: rounds held (1 + appeals).
        jury_sizes: votes per held round, int64 (rounds,).
        round_rulings: each round's majority, True = for the worker, bool (rounds,).
        drawn: juror id of every drawn vote, rounds concatenated (split with ``jury_sizes``), int64.
        votes_for_worker: each drawn vote, True = for the worker, bool (same length as ``drawn``).
        fees_total: ``Σ fee_per_juror · n_k`` over the held rounds, all paid by the loser.
        fees_paid_by_worker, fees_paid_by_requester: ``fees_total`` for the loser, 0 for the winner.
        penalties: (k, 2) int64 rows ``(juror id, amount)``: stake taken from incoherent jurors, ≤ stake.
        rewards: (k, 2) int64 rows ``(juror id, amount)`` paid to coherent jurors.
        remainder: the indivisible rest (plus pools of rounds without a coherent vote), e.g. to the
            treasury: ``Σ rewards + remainder == fees_total + Σ penalties`` exactly.
    """

    ruling_for_worker: bool
    rounds: int
    jury_sizes: np.ndarray
    round_rulings: np.ndarray
    drawn: np.ndarray
    votes_for_worker: np.ndarray
    fees_total: int
    fees_paid_by_worker: int
    fees_paid_by_requester: int
    penalties: np.ndarray
    rewards: np.ndarray
    remainder: int


def draw_votes(stakes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` votes drawn with replacement, each with probability ``stake_i / Σ stake``.

    Kleros draws *tokens*, not jurors: a uniform integer token in ``[0, Σ stake)`` is mapped to its
    owner through the cumulative stakes (exact for integer stakes; zero-stake jurors are never drawn,
    and a juror can be drawn more than once).
    """
    cum = np.cumsum(np.asarray(stakes, dtype=np.int64))
    total = int(cum[-1]) if cum.size else 0
    if total <= 0:
        raise ValueError("the juror pool has no stake to draw from")
    tokens = rng.integers(0, total, size=int(n), dtype=np.int64)
    return np.searchsorted(cum, tokens, side="right").astype(np.int64)


def loser_appeals(
    loser_is_right: bool, value: int, next_jurors: int, pool_accuracy: float, params: CourtParams
) -> bool:
    """Whether the loser of a round appeals: ``P(reverse)·value > appeal_threshold·fee_per_juror·n_next``.

    The loser knows the truth (it is a party to the task) and the pool's stake-weighted mean accuracy q̄,
    but not who will be drawn; it looks one round ahead: the next jury of ``n_next`` votes reverses with
    ``P = majority_accuracy(n_next, q̄)`` if the loser is right, and ``1 − P`` if it is wrong. The appeal
    cost is the next round's fees, which the loser pays if it loses in the end. Hence a wronged party
    appeals whenever the disputed value is large enough, and a wrong loser appeals only when it can hope
    for juror error worth more than the fees.
    """
    p_correct = majority_accuracy(next_jurors, pool_accuracy)
    p_reverse = p_correct if loser_is_right else 1.0 - p_correct
    return p_reverse * value > params.appeal_threshold * params.fee_per_juror * next_jurors


def _pairs(ids: np.ndarray, amounts: list[int]) -> np.ndarray:
    """(k, 2) int64 rows ``(id, amount)`` for the positive amounts."""
    keep = [k for k, a in enumerate(amounts) if a > 0]
    out = np.zeros((len(keep), 2), np.int64)
    if keep:
        out[:, 0] = ids[keep]
        out[:, 1] = [amounts[k] for k in keep]
    return out


def juror_court(
    worker_right: bool,
    value: int,
    juror_ids: np.ndarray,
    juror_stakes: np.ndarray,
    juror_accuracy: np.ndarray | float,
    params: CourtParams,
    rng: np.random.Generator,
) -> CourtOutcome:
    """One dispute through a Kleros-style court with appeals.

    **Rounds.** Round k draws ``n_k`` votes with replacement, in proportion to stake
    (:func:`draw_votes`); a drawn vote is correct (for the worker iff ``worker_right``) with its juror's
    accuracy, independently. The majority rules (n_k is odd). While rounds remain, the loser may appeal
    (:func:`loser_appeals`), and the next round has ``2·n_k + 1`` votes. The last round held decides.

    **Money** (all integers, base units), following KlerosLiquid's per-round redistribution:

    * the loser of the final ruling pays ``fees_total = Σ_k fee_per_juror·n_k`` (the winner pays nothing);
    * a vote is *coherent* if it agrees with the final ruling. A juror with m incoherent votes in round k
      is charged ``min(remaining stake, stake_at_risk_per_vote·m)``: never more than its stake over the
      whole dispute (a juror whose stake is used up can still be drawn, as in Kleros);
    * round k's pool ``fee_per_juror·n_k + Σ round-k penalties`` is split among round k's coherent votes
      pro rata to their count (:func:`split_pro_rata`); the rounding rest, and the whole pool of a round
      with no coherent vote, go to ``remainder``.

    Args:
        worker_right: ground truth (True = the work was acceptable).
        value: the disputed amount in base units (used only for the appeal decision).
        juror_ids: distinct ids of the pool's jurors (e.g. account indices), int (m,).
        juror_stakes: stake per juror in base units, int (m,), ≥ 0, ``Σ stake + fees ≤ 2^63 − 1``.
        juror_accuracy: P(a vote of juror i is correct), in [0, 1], shape (m,) or a scalar.
        params: :class:`CourtParams`.
        rng: the random source.
    """
    value = _check_amount("value", value)
    ids = np.asarray(juror_ids)
    stakes = np.asarray(juror_stakes)
    if ids.ndim != 1 or ids.size == 0 or stakes.shape != ids.shape:
        raise ValueError(
            f"juror_ids and juror_stakes must be non-empty 1-D of one length; got {ids.shape}, {stakes.shape}"
        )
    if not (np.issubdtype(ids.dtype, np.integer) and np.issubdtype(stakes.dtype, np.integer)):
        raise ValueError("juror_ids and juror_stakes must be integer arrays")
    ids, stakes = ids.astype(np.int64), stakes.astype(np.int64)
    if np.unique(ids).size != ids.size:
        raise ValueError("juror_ids must be distinct")
    if int(stakes.min()) < 0:
        raise ValueError("juror_stakes must be >= 0")
    stake_list = stakes.tolist()
    total_stake = sum(stake_list)
    if total_stake == 0:
        raise ValueError("the juror pool has no stake to draw from")
    if total_stake + params.fee_per_juror * sum(params.jury_sizes) > MAX_AMOUNT:
        raise ValueError("Σ juror_stakes + the largest possible fees must be <= 2^63 - 1")
    accuracy = np.broadcast_to(np.asarray(juror_accuracy, dtype=np.float64), ids.shape)
    if not ((accuracy >= 0.0) & (accuracy <= 1.0)).all():
        raise ValueError("juror_accuracy must lie in [0, 1]")
    pool_accuracy = float(np.dot(stakes.astype(np.float64), accuracy) / float(total_stake))

    # Voting rounds.
    sizes = params.jury_sizes
    drawn_rounds: list[np.ndarray] = []
    vote_rounds: list[np.ndarray] = []
    rulings: list[bool] = []
    for k, n in enumerate(sizes):
        drawn = draw_votes(stakes, n, rng)
        correct = rng.random(n) < accuracy[drawn]
        for_worker = correct if worker_right else ~correct
        ruling = 2 * int(for_worker.sum()) > n
        drawn_rounds.append(drawn)
        vote_rounds.append(for_worker)
        rulings.append(ruling)
        last = k == len(sizes) - 1
        loser_is_right = ruling != worker_right
        if last or not loser_appeals(loser_is_right, value, sizes[k + 1], pool_accuracy, params):
            break
    final = rulings[-1]
    held = sizes[: len(rulings)]

    # Money: per round, incoherent votes lose stake, coherent votes share fees + penalties.
    fee = params.fee_per_juror
    at_risk = params.stake_at_risk_per_vote
    m = ids.size
    remaining = list(stake_list)
    penalty = [0] * m
    reward = [0] * m
    remainder = 0
    for n, drawn, for_worker in zip(held, drawn_rounds, vote_rounds, strict=True):
        coherent = for_worker == final
        incoherent_votes = np.bincount(drawn[~coherent], minlength=m)
        round_penalties = 0
        for i in np.flatnonzero(incoherent_votes).tolist():
            charge = min(remaining[i], at_risk * int(incoherent_votes[i]))
            remaining[i] -= charge
            penalty[i] += charge
            round_penalties += charge
        shares, rest = split_pro_rata(fee * n + round_penalties, np.bincount(drawn[coherent], minlength=m))
        for i in np.flatnonzero(shares).tolist():
            reward[i] += int(shares[i])
        remainder += rest

    fees_total = fee * sum(held)
    return CourtOutcome(
        ruling_for_worker=bool(final),
        rounds=len(held),
        jury_sizes=np.array(held, dtype=np.int64),
        round_rulings=np.array(rulings, dtype=bool),
        drawn=ids[np.concatenate(drawn_rounds)],
        votes_for_worker=np.concatenate(vote_rounds),
        fees_total=fees_total,
        fees_paid_by_worker=0 if final else fees_total,
        fees_paid_by_requester=fees_total if final else 0,
        penalties=_pairs(ids, penalty),
        rewards=_pairs(ids, reward),
        remainder=remainder,
    )
