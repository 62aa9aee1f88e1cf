"""The readers' integer-code sorts and duplicate checks (receval.data.codes) give pandas' answers.

The readers used to order lists with ``sort_values(kind="stable")`` and find repeated rows with
``duplicated(keep="first")``; both now run on packed integer codes, with fallbacks for keys that do
not fit in 64 bits. Each property compares the codes' answer with pandas' on the same columns, for
every path: keys that pack with their row positions, keys that pack alone, and keys that do not
pack at all (forced here by claiming large cardinalities). Then the readers themselves: a file read
in a shuffled row order gives the same lists, and the same refusal row, as pandas' rules say.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from receval.data import codes, schema
from receval.errors import InputError

# claimed cardinality factors: 1 packs with row positions, 2**20 packs without them, 2**31 not at all
SCALES = st.sampled_from([1, 2**20, 2**31])


@st.composite
def code_columns(draw):
    n = draw(st.integers(1, 40))
    width = draw(st.integers(1, 3))
    cols = [np.array(draw(st.lists(st.integers(0, draw(st.integers(0, 4))), min_size=n, max_size=n)), dtype=np.int64)
            for _ in range(width)]
    scale = draw(SCALES)
    return [(c, (int(c.max()) + 1) * scale) for c in cols]


@settings(max_examples=300, deadline=None)
@given(code_columns())
def test_stable_order_and_first_repeat_are_those_of_pandas(columns):
    frame = pd.DataFrame({str(j): c for j, (c, _) in enumerate(columns)})
    order, first = codes.stable_order(columns)
    expected_order = frame.sort_values(list(frame.columns), kind="stable").index.to_numpy()
    np.testing.assert_array_equal(np.arange(len(frame)) if order is None else order, expected_order)
    repeated = np.flatnonzero(frame.duplicated(keep="first").to_numpy())
    expected_first = int(repeated[0]) if repeated.size else None
    assert first == expected_first
    assert codes.first_repeat(columns) == expected_first
    for keep in ("first", "last"):
        mask = codes.keep_mask(columns, keep)
        expected = ~frame.duplicated(keep=keep).to_numpy()
        np.testing.assert_array_equal(np.ones(len(frame), dtype=bool) if mask is None else mask, expected)


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=40),
    st.lists(st.integers(-(2**62), 2**62), min_size=1, max_size=40),
    st.lists(st.sampled_from([-0.0, 0.0, 1.0, -1e300, 1e300, 2.0**53, 0.5]), min_size=1, max_size=40),
))
def test_order_codes_order_like_the_values(values):
    array = np.array(values)
    got, cardinality = codes.order_codes(array)
    assert got.min() >= 0 and got.max() < cardinality
    dense = pd.Series(array).rank(method="dense").to_numpy()
    np.testing.assert_array_equal(np.sign(np.subtract.outer(got, got)), np.sign(np.subtract.outer(dense, dense)))


def _pandas_lists(frame: pd.DataFrame, by_rank: bool) -> pd.DataFrame:
    """The old rule, written with pandas: stable sort by (user, rank) or (user, score desc, item asc)."""
    if by_rank:
        ordered = frame.sort_values(["user", "rank"], kind="stable")
    else:
        ordered = frame.sort_values(["user", "score", "item"], ascending=[True, False, True], kind="stable")
    ordered = ordered[["user", "item"]].reset_index(drop=True)
    # ranks 1..len in the narrowest integer dtype: int16 for lists of up to 32,767 items
    ordered["rank"] = (ordered.groupby("user", sort=False).cumcount() + 1).astype(np.int16)
    return ordered


@pytest.mark.parametrize("ids", ["int", "text"])
@pytest.mark.parametrize("by", ["rank", "score"])
def test_shuffled_recs_files_give_the_lists_of_the_pandas_rule(tmp_path: Path, ids: str, by: str):
    rng = np.random.default_rng(7)
    users = np.repeat(np.arange(40), 12)
    items = np.concatenate([rng.permutation(30)[:12] for _ in range(40)])
    frame = pd.DataFrame({"user": users, "item": items})
    frame["rank" if by == "rank" else "score"] = (np.tile(np.arange(12, 0, -1), 40) if by == "rank"
                                                 else rng.integers(0, 4, len(frame)) / 2)
    if ids == "text":
        frame["user"] = "u" + frame["user"].astype(str)
        frame["item"] = frame["item"].map(lambda i: f"{i:0{1 + i % 2}d}")  # '007' and '7' style ids
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    path = tmp_path / ("recs.parquet" if ids == "int" else "recs.csv")
    frame.to_parquet(path) if ids == "int" else frame.to_csv(path, index=False)
    read = schema.read_recs(path)
    source = frame if ids == "int" else pd.read_csv(path, dtype=str).astype({by: float}).astype({"user": object,
                                                                                                 "item": object})
    if ids == "int":  # int64 in the file, int32 once read: every id fits
        assert (frame["user"].dtype, read["user"].dtype, read["item"].dtype) == (np.int64, np.int32, np.int32)
    expected = _pandas_lists(source.astype({"user": read["user"].dtype, "item": read["item"].dtype}), by == "rank")
    pd.testing.assert_frame_equal(read, expected)


def test_the_first_repeated_rank_in_file_order_is_named(tmp_path: Path):
    # rows 2 and 4 (0-based) repeat earlier (user, rank) pairs; sorted by user, row 4's comes first
    frame = pd.DataFrame({"user": [1, 9, 9, 1, 1], "item": [1, 2, 3, 4, 5], "rank": [1, 2, 2, 3, 3]})
    path = tmp_path / "recs.parquet"
    frame.to_parquet(path)
    with pytest.raises(InputError) as info:
        schema.read_recs(path)
    assert str(info.value) == f"{path}: column 'rank', row 3: duplicate rank 2 for user 9"


@pytest.mark.parametrize("values", [
    np.array([7, 3, 3, 9, 7, 7], dtype=np.int32),  # narrow: counted in a table
    np.array([-4, 10, -4, 0], dtype=np.int64),
    np.array([2**40, 5, 2**40], dtype=np.int64),  # sparse 64-bit ids: hashed
    np.array(["b", "a", "b"], dtype=object),  # text: hashed
    np.array([], dtype=np.int32),
], ids=["int32", "negative", "sparse", "text", "empty"])
def test_distinct_ids_counted_or_hashed_equal_pandas(values):
    from receval.data.codes import distinct_count, distinct_sorted, integer_counts

    series = pd.Series(values)
    expected = pd.Index(pd.unique(series)).sort_values().to_numpy()
    np.testing.assert_array_equal(distinct_sorted(series), expected)
    assert distinct_count(series) == series.nunique()
    counted = integer_counts(series)
    if counted is not None:
        ids, counts = counted
        assert ids.dtype == values.dtype
        np.testing.assert_array_equal(ids, expected)
        np.testing.assert_array_equal(counts, series.value_counts().sort_index().to_numpy())


@pytest.mark.parametrize("runs", [True, False], ids=["grouped", "shuffled"])
def test_distinct_ids_of_a_column_grouped_in_runs_across_pieces(runs, monkeypatch):
    """Runs of equal ids (lists, train and test grouped by user) are counted by their first value,
    a piece at a time: runs that cross a piece's edge, ids that come back in a later run, and a
    column with too many runs for the shortcut all give pandas' distinct values."""
    from receval.data import codes

    monkeypatch.setattr(codes, "CHUNK", 5)
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 40, size=60).astype(np.int32)
    values = np.repeat(ids, rng.integers(1, 9, size=60)) if runs else rng.permutation(np.repeat(ids, 3))
    series = pd.Series(values)
    expected = pd.Index(pd.unique(series)).sort_values().to_numpy()
    np.testing.assert_array_equal(codes.distinct_sorted(series), expected)
    assert codes.distinct_count(series) == series.nunique()
    heads = codes._run_heads(series)
    assert (len(heads) < len(values)) == runs
