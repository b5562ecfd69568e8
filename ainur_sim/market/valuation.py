"""What a requester gains from an agent's work: reputation-weighted task values capped by a reserve.

A requester posts a task value ``V_j`` and escrows a budget ``R_j`` (the reserve: the most it will
pay). The requester expects agent i's work to be worth ``V_j · q(ρ_i)``, where ``ρ_i ∈ [0, 1]`` is i's
reputation and ``q`` maps reputation to expected quality. The value used for clearing is
``min(V_j · q(ρ_i), R_j)``. Capping at the reserve inside the value keeps VCG strategy-proof, because
no agent reports it, and bounds every payment by ``R_j`` so that escrow always covers it
(research/vcg.md §1a). Units: values and reserves are in the same currency as the bids.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

QualityFn = Callable[[np.ndarray], np.ndarray]

#: Quality of an agent with reputation 0 under :func:`linear_quality`: an unknown agent's work is
#: still worth half the task value.
DEFAULT_Q_MIN = 0.5


def linear_quality(reputation: np.ndarray, q_min: float = DEFAULT_Q_MIN) -> np.ndarray:
    """``q(ρ) = q_min + (1 − q_min)·ρ``: expected quality, from ``q_min`` at ρ = 0 up to 1 at ρ = 1.

    Use ``functools.partial(linear_quality, q_min=...)`` for another floor.
    """
    if not 0.0 <= q_min <= 1.0:
        raise ValueError(f"q_min must be in [0, 1]; got {q_min}")
    rho = np.asarray(reputation, dtype=np.float64)
    return q_min + (1.0 - q_min) * rho


def effective_values(
    task_value: np.ndarray,
    reputation: np.ndarray,
    reserve: np.ndarray | float | None = None,
    q: QualityFn = linear_quality,
) -> np.ndarray:
    """``min(V_j · q(ρ_i), R_j)`` as a float64 (n_agents, n_tasks) array, ready for ``vcg.clear``.

    Args:
        task_value: ``V_j``, shape (n_tasks,) (a scalar is one task), finite.
        reputation: ``ρ_i ∈ [0, 1]``, shape (n_agents,).
        reserve: ``R_j``, broadcastable to (n_tasks,); None means no cap.
        q: reputation → quality multiplier, applied elementwise; default :func:`linear_quality`.

    Raises:
        ValueError: on NaN or infinite task values, reputations outside [0, 1], a NaN reserve, or
            shapes that do not fit.
    """
    value = np.atleast_1d(np.asarray(task_value, dtype=np.float64))
    rho = np.atleast_1d(np.asarray(reputation, dtype=np.float64))
    if value.ndim != 1 or rho.ndim != 1:
        raise ValueError(f"task_value and reputation must be 1-D; got shapes {value.shape} and {rho.shape}")
    if not np.isfinite(value).all():
        raise ValueError("task_value must be finite")
    if not ((rho >= 0.0) & (rho <= 1.0)).all():
        raise ValueError(f"reputation must lie in [0, 1]; got values in [{rho.min()}, {rho.max()}]")
    quality = np.asarray(q(rho), dtype=np.float64)
    if quality.shape != rho.shape or not np.isfinite(quality).all():
        raise ValueError(f"q must map reputation of shape {rho.shape} to finite qualities of the same shape")
    values = quality[:, None] * value[None, :]
    if reserve is None:
        return values
    cap = np.asarray(reserve, dtype=np.float64)
    if np.isnan(cap).any():
        raise ValueError("reserve must not be NaN (use None or np.inf for no cap)")
    try:
        cap = np.broadcast_to(cap, value.shape)
    except ValueError:
        raise ValueError(f"reserve with shape {cap.shape} does not match n_tasks = {value.shape[0]}") from None
    return np.minimum(values, cap[None, :])
