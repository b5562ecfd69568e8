"""The shared insertion sort against numpy's sort."""

from __future__ import annotations

import numpy as np

from ainur_sim.chain.sorting import insertion_sort_prefix


def test_sorts_the_prefix_only_and_matches_numpy():
    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 17, 200):
        for m in {0, n // 2, n}:
            a = rng.normal(size=n)
            a[::5] = a[0] if n else 0.0  # ties
            before = a.copy()
            insertion_sort_prefix(a, m)
            assert np.array_equal(a[:m], np.sort(before[:m]))
            assert np.array_equal(a[m:], before[m:])
