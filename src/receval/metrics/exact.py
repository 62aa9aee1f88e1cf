"""Correctly rounded sums of float64 arrays, vectorised: the value of :func:`math.fsum`, bit for bit.

``math.fsum`` returns the exact sum of its inputs rounded once (half-even). It walks the values one
by one in Python, which costs about 40 ns a value: a second per 27 columns of a million users.

:func:`exact_sum` computes the same exact sum with numpy. Every finite double is ``m · 2^(e−53)``
with ``m`` an integer of at most 53 bits (:func:`numpy.frexp`). Split ``m = hi · 2^26 + lo`` with
``|hi|, |lo| < 2^27``; the sums of ``hi`` and of ``lo`` per exponent, over fewer than 2^25 values,
stay below 2^52 and so are exact in float64 whatever the order (``numpy.bincount``). The few
per-exponent integers are then added as Python integers (exact), and the one division by a power
of two is correctly rounded (CPython's ``int / int``). Exact sum, one rounding: the value of fsum.

Non-finite inputs, and values so large that fsum's own partial sums could overflow, go to
``math.fsum`` itself, so its NaN, infinity and OverflowError behaviour is kept as is.
"""

from __future__ import annotations

import math

import numpy as np

_CHUNK = 1 << 24  # values per bincount: 2^24 · 2^27 = 2^51, below 2^53, so every bucket sum is exact
_SAFE = 2.0**1000  # |x| below this and fewer than 2^23 values: no partial of fsum can overflow
_EXP_OFFSET = 1100  # frexp exponents of finite doubles lie in [-1073, 1024]


def exact_sum(values: np.ndarray) -> float:
    """``math.fsum(values)``, bit-identical, vectorised for float64 arrays.

    Parameters
    ----------
    values : 1-d array-like of float64.

    Returns
    -------
    float : the exact sum of the values, rounded once to the nearest double (ties to even).
    """
    x = np.ascontiguousarray(values, dtype=np.float64).ravel()
    n = len(x)
    if n < 64:
        return math.fsum(x.tolist())
    if n >= _CHUNK // 2 or not np.isfinite(x).all() or np.abs(x).max() >= _SAFE:
        return math.fsum(x.tolist())
    mantissa, exponent = np.frexp(x)
    m = (mantissa * 2.0**53).astype(np.int64)  # exact: a 53-bit integer, sign included
    hi = m >> 26  # arithmetic shift: hi · 2^26 + lo == m with 0 <= lo < 2^26
    lo = m - (hi << 26)
    bucket = exponent.astype(np.int64) + _EXP_OFFSET
    hi_sums = np.bincount(bucket, weights=hi.astype(np.float64))
    lo_sums = np.bincount(bucket, weights=lo.astype(np.float64))
    used = np.flatnonzero((hi_sums != 0) | (lo_sums != 0))
    if len(used) == 0:  # all zeros: let fsum pick the sign of zero
        return math.fsum(x.tolist())
    base = int(used[0])
    total = 0
    for b in used.tolist():
        total += ((int(hi_sums[b]) << 26) + int(lo_sums[b])) << (b - base)
    if total == 0:  # exact cancellation: fsum's zero
        return math.fsum(x.tolist())
    # value = total · 2^(base − OFFSET − 53), rounded once
    shift = base - _EXP_OFFSET - 53
    if shift >= 0:
        return float(total << shift)
    return total / (1 << -shift)


__all__ = ["exact_sum"]
