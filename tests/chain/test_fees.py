"""Tests for ainur_sim.chain.fees: multiplier, fees, split, priority, limits."""

import numpy as np
import pytest

from ainur_sim.chain.fees import (
    CALL_LENGTHS,
    CALL_WEIGHTS,
    FAST_ADJUSTMENT_VARIABLE,
    SUBSTRATE_DEFAULT_LIMITS,
    TOKEN,
    BlockLimits,
    FeeParams,
    inclusion_fee,
    max_transfer_tps,
    multiplier_path,
    next_multiplier,
    priority,
    split_fee,
    total_fee,
    transfers_per_block,
)

P = FeeParams()


def hand_next(m: float, f: float, v: float = 0.000075, target: float = 0.25, lo: float = 0.1) -> float:
    d = abs(f - target)
    x = v * d
    m = m * (1 + x + x * x / 2) if f >= target else m * (1 - (x - x * x / 2))
    return max(m, lo)


def test_path_equals_hand_iteration_exactly():
    rng = np.random.default_rng(1)
    fullness = np.concatenate([rng.random(500), np.ones(50), np.zeros(50), np.full(10, 0.25)])
    path = multiplier_path(1.0, fullness, P)
    m = 1.0
    expected = [m]
    for f in fullness:
        m = hand_next(m, float(f))
        expected.append(m)
    assert path.shape == (fullness.size + 1,)
    assert path.tolist() == expected
    # and iterating next_multiplier on fullness (normal_max = 1) gives the same bits
    m = 1.0
    for i, f in enumerate(fullness):
        assert path[i] == m
        m = next_multiplier(m, float(f), 1.0, P)
    assert path[-1] == m


def test_next_multiplier_in_weight_units():
    # 1.5 s normal limit, 0.375 s used = exactly on target -> unchanged
    assert next_multiplier(1.3, 0.375, 1.5, P) == 1.3
    up = next_multiplier(1.0, 1.5, 1.5, P)
    x = 0.000075 * 0.75
    assert up == pytest.approx(1 + x + x * x / 2, rel=1e-15)
    # s above the normal limit is capped (Substrate: min(normal weight, normal_max))
    assert next_multiplier(1.0, 3.0, 1.5, P) == up


@pytest.mark.parametrize(
    ("blocks", "full", "expected", "tol"),
    [(600, True, 1.034, 0.001), (14_400, True, 2.25, 0.005), (14_400, False, 0.763, 0.001),
     (600, False, 0.989, 0.001)],
)
def test_reaction_speed_table(blocks, full, expected, tol):
    fullness = np.ones(blocks) if full else np.zeros(blocks)
    assert multiplier_path(1.0, fullness, P)[-1] == pytest.approx(expected, abs=tol)


def test_fast_variable_and_floor():
    fast = FeeParams(adjustment_variable=FAST_ADJUSTMENT_VARIABLE)
    assert multiplier_path(1.0, np.ones(600), fast)[-1] == pytest.approx(4.4, abs=0.05)
    empty = multiplier_path(1.0, np.zeros(3600), fast)
    assert empty.min() == 0.1 and empty[-1] == 0.1
    assert np.all(np.diff(empty) <= 0)
    # default v: 30 days of empty blocks reach the floor and stay there
    assert multiplier_path(1.0, np.zeros(432_000), P)[-1] == 0.1
    # a stale value below the floor recovers to it; a ceiling clamps
    assert next_multiplier(0.01, 0.0, 1.0, P) == 0.1
    capped = FeeParams(max_multiplier=1.01)
    assert multiplier_path(1.0, np.ones(10_000), capped)[-1] == 1.01


def test_inclusion_fee_integer_and_formula():
    w = np.array([CALL_WEIGHTS["transfer"], 0.0, 1e-3])
    length = np.array([140, 0, 1000])
    m = np.array([1.0, 1.0, 2.5])
    fee = inclusion_fee(w, length, m, P)
    assert fee.dtype == np.int64
    # transfer: 1e9 base + 140e8 length + floor(144.81 us * 1e13) weight
    assert fee[0] == 10**9 + 140 * 10**8 + 1_448_100_000
    assert fee[1] == 10**9
    assert fee[2] == 10**9 + 1000 * 10**8 + 25 * 10**9
    assert 0.005 * TOKEN < fee[0] < 0.05 * TOKEN  # "order of 0.01 token"
    # multiplier affects only the weight part, floor applied
    assert inclusion_fee(1e-12, 0, 0.5, P) == 10**9 + 5
    assert inclusion_fee(1e-12, 0, 0.39, P) == 10**9 + 3
    tot = total_fee(w, length, m, np.array([0, 7, 10**12]), P)
    np.testing.assert_array_equal(tot - fee, [0, 7, 10**12])


def test_split_conserves_every_unit():
    rng = np.random.default_rng(2)
    fees = np.concatenate([rng.integers(0, 10**15, 10_000), [0, 1, 2, 3, 9, 10**18, 2**62]])
    for share in (0.8, 0.0, 1.0, 0.333333333):
        treasury, burned = split_fee(fees, FeeParams(treasury_share=share))
        np.testing.assert_array_equal(treasury + burned, fees)
        assert treasury.dtype == np.int64 and np.all(treasury >= 0) and np.all(burned >= 0)
    treasury, burned = split_fee(np.array([10, 1_000_000_000_000, 9]), P)
    np.testing.assert_array_equal(treasury, [8, 800_000_000_000, 7])


def test_scalar_fee_paths_match_the_array_paths():
    """Python numbers take a scalar path in inclusion_fee and split_fee: same values and type as arrays."""
    rng = np.random.default_rng(5)
    w = np.concatenate([rng.uniform(0, 2.0, 300), rng.uniform(0, 1e-3, 300), [0.0, 1e-12, 1.5, 900.0]])
    length = np.concatenate([rng.integers(0, 6 * 2**20, 600), [0, 1, 140, 2**30]])
    m = np.concatenate([rng.uniform(0.1, 5.0, 600), [0.0, 1.0, 1e3, 0.39]])
    for params in (P, FeeParams(base_fee=0, per_byte_fee=1, weight_fee_per_s=10**15)):
        want = inclusion_fee(w, length, m, params)
        got = [inclusion_fee(float(a), int(b), float(c), params) for a, b, c in zip(w, length, m, strict=True)]
        assert all(type(g) is np.int64 for g in got)
        np.testing.assert_array_equal(np.array(got), want)
    assert inclusion_fee(1e-3, 140, 1, P) == inclusion_fee(np.array([1e-3]), np.array([140]), np.array([1.0]), P)[0]
    with pytest.raises(ValueError):
        inclusion_fee(1e-3, -1, 1.0, P)
    fees = np.concatenate([rng.integers(0, 10**15, 1000), [0, 1, 10**9 - 1, 10**18, 2**63 - 1]])
    for share in (0.8, 0.0, 1.0, 0.333333333):
        params = FeeParams(treasury_share=share)
        t_arr, b_arr = split_fee(fees, params)
        for f, t, b in zip(fees.tolist(), t_arr, b_arr, strict=True):
            ts, bs = split_fee(f, params)
            assert type(ts) is np.int64 and type(bs) is np.int64 and (ts, bs) == (t, b)
    with pytest.raises(ValueError):
        split_fee(-1, P)


def test_priority_orders_like_substrate():
    limits = BlockLimits()
    w = CALL_WEIGHTS["transfer"]
    fee = int(inclusion_fee(w, 140, 1.0, P))
    pr = priority(
        tip=[0, 10**6, 0, 0, 0],
        weight_s=[w, w, w, 2 * w, w],
        length_bytes=[140, 140, 140, 140, 140],
        operational=[False, False, False, False, True],
        final_fee=[fee, fee + 10**6, fee, fee, fee],
        limits=limits,
    )
    # (tip + 1) * min(2 s // w, 3.75 MiB // 140 B)
    per_block = min(2 * 10**12 // round(w * 1e12), (5 * 1024 * 1024 * 3 // 4) // 140)
    assert pr[0] == per_block
    assert pr[1] == (10**6 + 1) * per_block
    assert pr[1] > pr[0]  # higher tip first
    assert pr[0] > pr[3]  # zero tip: the lighter transaction first
    assert pr[4] == per_block + 5 * fee * per_block  # operational gets a 5x fee virtual tip
    assert pr[4] > pr[1]
    # length-bound: a huge extrinsic ranks below a small one at equal weight
    big = priority(0, w, 1_000_000, False, fee, limits)
    assert big == (5 * 1024 * 1024 * 3 // 4) // 1_000_000
    # saturation instead of overflow
    assert priority(2**62, 1e-9, 1, True, 2**62, limits) == np.iinfo(np.int64).max


def _priority_numpy(tip, weight_s, length_bytes, operational, final_fee, limits):
    """The array-at-a-time reference of ``fees.priority`` (its implementation before the Numba kernel)."""
    big = np.iinfo(np.int64).max

    def sat_mul(a, b):
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        return np.where(a.astype(np.float64) * b.astype(np.float64) >= float(big), big, a * b)

    tip_a, fee_a = np.asarray(tip, dtype=np.int64), np.asarray(final_fee, dtype=np.int64)
    op = np.asarray(operational, dtype=bool)
    max_block_ps = round(limits.max_weight_s * 10**12)
    w_ps = np.clip(np.rint(np.asarray(weight_s, dtype=np.float64) * 10**12), 1, max_block_ps)
    max_len = np.where(op, limits.max_length_bytes, limits.normal_max_length_bytes).astype(np.int64)
    length = np.clip(np.asarray(length_bytes, dtype=np.int64), 1, max_len)
    per_block = np.minimum(np.int64(max_block_ps) // w_ps.astype(np.int64), max_len // length)
    with np.errstate(over="ignore"):
        scaled = sat_mul(tip_a + 1, per_block)
        virtual = sat_mul(sat_mul(fee_a, 5), per_block)
        summed = np.where(scaled > big - virtual, big, scaled + virtual)
    return np.where(op, summed, scaled).astype(np.int64)


@pytest.mark.parametrize("limits", [BlockLimits(), SUBSTRATE_DEFAULT_LIMITS])
def test_priority_kernel_equals_the_array_formula(limits):
    """Random rows over the whole range (tiny and block-sized weights, zero to saturating tips and fees,
    lengths beyond the class limit, both classes) and broadcast scalars: bit for bit the same."""
    rng = np.random.default_rng(7)
    n = 20_000
    tip = np.where(rng.random(n) < 0.5, 0, rng.integers(0, 2**63 - 2, n, dtype=np.int64) >> rng.integers(0, 63, n))
    weight = np.concatenate([rng.uniform(0, 2.5, n // 2), 10.0 ** rng.uniform(-13, 0.5, n - n // 2)])
    length = rng.integers(0, 6 * 1024 * 1024, n) >> rng.integers(0, 20, n)
    op = rng.random(n) < 0.3
    fee = rng.integers(0, 2**63 - 2, n, dtype=np.int64) >> rng.integers(0, 63, n)
    got = priority(tip, weight, length, op, fee, limits)
    assert got.dtype == np.int64 and np.array_equal(got, _priority_numpy(tip, weight, length, op, fee, limits))
    assert (got == np.iinfo(np.int64).max).any()                 # saturation is exercised
    for args in ((5, weight[:7], 140, False, fee[:7]), (tip[:3], 2.4e-4, length[:3], op[:3], 10**9)):
        assert np.array_equal(priority(*args, limits), _priority_numpy(*args, limits))
    assert priority(0, 2.4e-4, 140, False, 0, limits).shape == ()
    # runs of a few call shapes (the kernel reuses a run's per-block count), shapes differing in one field only
    # (a 1 MB call: the class's length bound binds, so Normal and Operational differ in the per-block count)
    shapes = np.array([(2.4e-4, 140, 0), (2.4e-4, 140, 1), (2.4e-4, 141, 0), (3.1e-4, 140, 0), (2.4e-4, 0, 0),
                       (2.4e-4, 10**6, 0), (2.4e-4, 10**6, 1), (2.4e-4, 2 * 10**6, 1)])
    pick = np.repeat(rng.integers(0, len(shapes), 400), rng.integers(1, 40, 400))
    w, ln, o = shapes[pick, 0], shapes[pick, 1].astype(np.int64), shapes[pick, 2].astype(bool)
    t, f = tip[:pick.size], fee[:pick.size]
    assert np.array_equal(priority(t, w, ln, o, f, limits), _priority_numpy(t, w, ln, o, f, limits))


def test_block_limits_and_tps_ceiling():
    limits = BlockLimits()
    assert limits.normal_max_weight_s == 1.5
    assert limits.normal_max_length_bytes == 3_932_160
    assert limits.extrinsic_weight_s("transfer") == pytest.approx(242.061e-6, abs=1e-9)
    assert transfers_per_block(limits) == 6196
    assert max_transfer_tps(limits, 6.0) == pytest.approx(1030, abs=5)
    assert SUBSTRATE_DEFAULT_LIMITS.extrinsic_weight_s("transfer") == pytest.approx(281.32e-6, abs=1e-9)
    assert max_transfer_tps(SUBSTRATE_DEFAULT_LIMITS, 6.0) == pytest.approx(890, abs=5)
    # every call has a length and a weight heavier than a transfer's is not negative
    assert set(CALL_LENGTHS) == set(CALL_WEIGHTS)
    assert min(CALL_WEIGHTS.values()) == CALL_WEIGHTS["transfer"]


def test_bad_params_rejected():
    with pytest.raises(ValueError, match="min_multiplier"):
        FeeParams(min_multiplier=0)
    with pytest.raises(ValueError, match="target_fullness"):
        FeeParams(target_fullness=1.5)
    with pytest.raises(ValueError):
        inclusion_fee(-1.0, 0, 1.0, P)
