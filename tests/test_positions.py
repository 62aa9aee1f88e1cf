"""``Positions`` (the engine's id → row lookup) against ``pandas.Index.get_indexer``, its definition,
for every method it picks: table (dense integer ids), binary search (sparse integer ids), hashing
(text ids, unsorted indexes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from receval.metrics.batch import Positions

rng = np.random.default_rng(7)

CASES = {
    "dense ids from 1": (np.arange(1, 2001), "table"),
    "dense negative ids": (np.arange(-500, 500, 3), "table"),
    "uint ids": (np.arange(10, 90, dtype=np.uint32), "table"),
    "sparse 64-bit ids": (np.sort(rng.choice(2**62, 300, replace=False)), "search"),
    "unsorted ids": (np.array([5, 3, 9, 1]), "hash"),
    "text ids": (np.array(sorted(["u7", "u10", "007", "x"]), dtype=object), "hash"),
    "empty index": (np.array([], dtype=np.int64), "hash"),
}


@pytest.mark.parametrize("name", CASES)
def test_positions_equal_get_indexer(name):
    ids, method = CASES[name]
    index = pd.Index(ids)
    positions = Positions.of(index)
    assert positions.method == method
    if ids.dtype == object:
        values = np.array(list(ids) + ["absent", "u7"], dtype=object)
    elif len(ids):
        # every id, ids just outside the range, absent ids between present ones, in shuffled order
        values = np.concatenate([ids, ids[:5] - 1, ids[-5:] + 1, [ids.min(), ids.max()]]).astype(ids.dtype)
        values = values[rng.permutation(len(values))]
    else:
        values = np.array([0, 1, -1])
    expected = index.get_indexer(values)
    got = positions(pd.Series(values))
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int32
    assert (got >= 0).any() == bool(len(ids))


def test_positions_in_pieces_equal_one_lookup(monkeypatch):
    from receval.metrics import batch

    index = pd.Index(np.arange(0, 3000, 3))
    values = rng.integers(-5, 3005, 10_000)
    whole = Positions.of(index)(values)
    monkeypatch.setattr(batch, "_PIECE", 777)
    np.testing.assert_array_equal(Positions.of(index)(values), whole)
    np.testing.assert_array_equal(whole, index.get_indexer(values))
