"""Slot-leader election for BABE and Aura as pure functions, plus their closed forms.

BABE (research/substrate.md §1.2–1.5): validator ``i`` with stake share ``theta_i`` wins a primary slot
with probability ``1 - (1 - c)**theta_i`` (a VRF lottery, independent across validators and slots); a
secondary author is chosen per slot uniformly at random (``blake2(randomness || slot) mod n`` on chain)
and authors a secondary block unless it won the primary itself. Aura: strict round robin ``slot mod n``.
"""

from __future__ import annotations

import numpy as np


def babe_primary_probability(stake: np.ndarray, c: float) -> np.ndarray:
    """Per-validator probability of winning a primary slot: ``1 - (1 - c)**theta`` with theta = stake share."""
    theta = np.asarray(stake, dtype=float) / float(np.sum(stake))
    return 1.0 - (1.0 - c) ** theta


def draw_primary_winners(p: np.ndarray, n_slots: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean ``(n_slots, n_validators)`` matrix of primary-lottery wins (before online checks)."""
    return rng.random((n_slots, p.shape[0])) < p


def draw_secondary_authors(n_validators: int, n_slots: int, rng: np.random.Generator) -> np.ndarray:
    """The secondary-slot author of each slot, uniform over all validators (online or not)."""
    return rng.integers(0, n_validators, size=n_slots)


def aura_author(slot: int, n_validators: int) -> int:
    """Aura's author of ``slot``: round robin over the authority list."""
    return slot % n_validators


def babe_primary_count_shares(n: int, c: float) -> tuple[float, float, float]:
    """Closed form for equal stakes: P(0 primaries), P(exactly 1), P(>= 2) in a slot, all ``n`` online."""
    p = 1.0 - (1.0 - c) ** (1.0 / n)
    p0 = (1.0 - p) ** n
    p1 = n * p * (1.0 - p) ** (n - 1)
    return p0, p1, 1.0 - p0 - p1


def babe_empty_slot_share(n: int, k_offline: int, c: float) -> float:
    """Closed form for equal stakes: share of slots with no block when ``k_offline`` of ``n`` are offline.

    A slot is empty when no online validator wins a primary and the secondary author is offline:
    ``(1 - c)**((n - k)/n) * k/n``.
    """
    return (1.0 - c) ** ((n - k_offline) / n) * k_offline / n


def aura_mean_interval(slot_s: float, n: int, k_offline: int) -> float:
    """Closed form: mean Aura block interval with ``k_offline`` of ``n`` authorities offline."""
    return slot_s / (1.0 - k_offline / n)
