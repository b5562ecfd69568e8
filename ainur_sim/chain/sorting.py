"""Small Numba sorting kernels shared by the chain's bucket sorts and order statistics."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def insertion_sort_prefix(a: np.ndarray, m: int) -> None:
    """Sort ``a[:m]`` in place, ascending, by insertion: O(m + inversions), so the last step of a bucket
    sort (values already in order across buckets, out of order only within one) and tiny arrays."""
    for i in range(1, m):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v
