import numpy as np

from ainur_sim.rng import Streams


def test_same_name_same_stream_and_order_independent():
    a = Streams(7)
    x = a.generator("consensus").random(5)
    a.generator("network").random(100)  # creating/using another stream must not perturb the first
    y = Streams(7).generator("consensus").random(5)
    assert np.array_equal(x, y)
    assert np.array_equal(a.generator("consensus").random(5), x)


def test_different_names_and_seeds_differ():
    s = Streams(1)
    assert not np.array_equal(s.generator("a").random(4), s.generator("b").random(4))
    assert not np.array_equal(Streams(1).generator("a").random(4), Streams(2).generator("a").random(4))


def test_negative_seed_rejected():
    import pytest

    with pytest.raises(ValueError, match="seed"):
        Streams(-1)
