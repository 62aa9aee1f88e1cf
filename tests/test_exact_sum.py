"""exact_sum must be math.fsum bit for bit: the per-user means of shards and of one pass depend on it."""

import math

import numpy as np
import pytest

from receval.metrics.exact import exact_sum


def _cases():
    rng = np.random.default_rng(14)
    for t in range(120):
        n = int(rng.integers(1, 4000))
        kind = t % 6
        if kind == 0:
            x = rng.random(n)
        elif kind == 1:  # magnitudes across the whole exponent range
            x = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 290, n)
        elif kind == 2:  # large terms that cancel exactly, small ones left over
            a = rng.standard_normal(n // 2) * 1e16
            x = np.concatenate([a, -a, rng.random(n - 2 * (n // 2)) * 1e-3])
        elif kind == 3:  # subnormals
            x = rng.standard_normal(n) * 5e-324 * rng.integers(0, 1000, n)
        elif kind == 4:  # halfway cases of the last rounding
            x = np.concatenate([[2.0**53], np.ones(n)])
        else:
            x = rng.choice([0.0, -0.0, 1.0, 0.5, 1 / 3, -1 / 7], n)
        rng.shuffle(x)
        yield x
    yield from (np.zeros(100), -np.zeros(100), np.full(100, 1e-320), np.array([1.0, 1e100, 1.0, -1e100] * 20))
    yield from (np.array([np.nan] * 70), np.array([1.0] * 70 + [np.inf]), np.array([1e308] * 70))


@pytest.mark.parametrize("x", list(_cases()), ids=lambda x: f"n{len(x)}")
def test_exact_sum_is_fsum_bit_for_bit(x):
    try:
        expected = math.fsum(x.tolist())
    except OverflowError:
        with pytest.raises(OverflowError):
            exact_sum(x)
        return
    got = exact_sum(x)
    assert np.float64(got).tobytes() == np.float64(expected).tobytes() or (math.isnan(got) and math.isnan(expected))


def test_exact_sum_does_not_depend_on_order():
    x = np.random.default_rng(3).standard_normal(100_000) * 10.0 ** np.random.default_rng(4).integers(-20, 20, 100_000)
    assert exact_sum(x) == exact_sum(x[::-1]) == math.fsum(x.tolist())
