"""Tests for ainur_sim.chain.runtime: splitting a block's call records into market and background calls."""

from __future__ import annotations

import numpy as np

from ainur_sim.chain.calls import FIRST_DYNAMIC_RECORD, FULL_NAMES
from ainur_sim.chain.runtime import _split_records


def test_split_records_is_the_masks_and_bincount():
    """The one-pass split gives what the masks and bincount give: market records (minus the offset) in
    block order, background counts per call code, and their number; a record that is no call code is
    reported (the caller then uses bincount, with its own error for a negative one)."""
    rng = np.random.default_rng(5)
    n_codes = len(FULL_NAMES)
    for _ in range(200):
        n = int(rng.integers(0, 60))
        recs = np.where(rng.random(n) < 0.3, FIRST_DYNAMIC_RECORD + rng.integers(0, 10**6, n),
                        rng.integers(0, n_codes, n)).astype(np.int64)
        dyn, counts, n_static, ok = _split_records(recs, FIRST_DYNAMIC_RECORD, n_codes)
        is_dyn = recs >= FIRST_DYNAMIC_RECORD
        assert ok
        np.testing.assert_array_equal(dyn, recs[is_dyn] - FIRST_DYNAMIC_RECORD)
        np.testing.assert_array_equal(counts, np.bincount(recs[~is_dyn], minlength=n_codes))
        assert n_static == int((~is_dyn).sum())
    for bad in (n_codes, -1):
        assert not _split_records(np.array([0, bad, 1], np.int64), FIRST_DYNAMIC_RECORD, n_codes)[3]
