"""frame_digest: what shards and prepare parts compare before merging (GlobalStatistics.digest)."""

import numpy as np
import pandas as pd

from receval.metrics.statistics import frame_digest


def _frame(n=5000, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "user": rng.integers(-50, 1000, n).astype(np.int32),
        "item": rng.integers(0, 300, n).astype(np.int32),
        "rating": rng.choice([0.5, 1.0, 3.5, 5.0, -0.0, np.nan], n).astype(np.float32),
    })


def test_digest_adds_up_over_any_row_partition_and_ignores_row_order():
    frame = _frame()
    rows, total = frame_digest(frame)
    shuffled = frame.sample(frac=1.0, random_state=3)
    cuts = [0, 1, 40, 41, 900, 3000, len(frame)]
    parts = [shuffled.iloc[a:b] for a, b in zip(cuts, cuts[1:])]
    digests = [frame_digest(p) for p in parts]
    assert sum(d[0] for d in digests) == rows == len(frame)
    assert sum(d[1] for d in digests) % 2**64 == total
    assert frame_digest(frame.iloc[::-1]) == (rows, total)


def test_digest_is_the_same_for_the_same_values_in_wider_dtypes():
    frame = _frame()
    wide = frame.astype({"user": np.int64, "item": np.int64, "rating": np.float64})
    assert frame_digest(wide) == frame_digest(frame)
    text = pd.DataFrame({"user": frame["user"].astype(str), "item": frame["item"].astype(str), "rating": frame["rating"]})
    assert frame_digest(text.astype({"item": "category"})) == frame_digest(text)


def test_digest_changes_with_one_value_or_with_columns_swapped():
    frame = _frame()
    base = frame_digest(frame)
    for column, row in (("user", 0), ("item", 17), ("rating", 4999)):
        changed = frame.copy()
        changed.loc[row, column] = changed.loc[row, column] + 1 if column != "rating" else 2.0
        assert frame_digest(changed) != base, (column, row)
    swapped = frame.rename(columns={"user": "item", "item": "user"})[["user", "item", "rating"]]
    assert frame_digest(swapped) != base
    assert frame_digest(frame.iloc[:0]) == (0, 0) and frame_digest(None) == (0, 0)
