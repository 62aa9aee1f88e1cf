"""Splits: partition properties, per-user counts derived by hand, determinism, temporal order, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from receval.data.loaders import load_ml100k
from receval.data.split import global_temporal_split, leave_k_out, random_holdout, split, temporal_split
from receval.data.synthetic import synthetic_dataset
from receval.errors import ConfigError, InputError

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not (SHARED / "ml-100k" / "u.data").is_file(), reason="shared datasets absent")


def _hand_frame() -> pd.DataFrame:
    """Users with 1, 2, 3, 5 and 10 ratings; timestamps increase with the item id except for a tie."""
    rows = []
    for user, n in ((1, 1), (2, 2), (3, 3), (4, 5), (5, 10)):
        rows += [(user, 100 + i, float(1 + i % 5), 1000 + 10 * i) for i in range(n)]
    frame = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    frame.loc[(frame.user == 4) & (frame.item.isin([103, 104])), "timestamp"] = 5000  # tie, broken by item id
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)  # input order must not matter


def _assert_partition(ratings: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame) -> None:
    assert list(train.columns) == list(test.columns) == list(ratings.columns)
    key = ["user", "item"]
    assert train.merge(test, on=key).empty  # train ∩ test = ∅
    union = pd.concat([train, test]).sort_values(key).reset_index(drop=True)
    assert union.equals(ratings.sort_values(key).reset_index(drop=True))  # union = input, values unchanged


def _test_counts(test: pd.DataFrame) -> dict[int, int]:
    return test.groupby("user").size().to_dict()


# Expected test sizes with test_fraction 0.2, round half up and "keep one in train":
# n=1 -> 0 (single rating stays in train); n=2 -> round(0.4)=0; n=3 -> round(0.6)=1; n=5 -> 1; n=10 -> 2.
EXPECTED_02 = {3: 1, 4: 1, 5: 2}


def test_random_holdout_counts_and_partition():
    ratings = _hand_frame()
    train, test = random_holdout(ratings, test_fraction=0.2, seed=3)
    _assert_partition(ratings, train, test)
    assert _test_counts(test) == EXPECTED_02


def test_random_holdout_never_empties_a_users_train():
    # 0.9 of n=2 rounds to 2, capped at n-1 = 1; n=10 -> 9.
    ratings = _hand_frame()
    train, test = random_holdout(ratings, test_fraction=0.9, seed=0)
    assert _test_counts(test) == {2: 1, 3: 2, 4: 4, 5: 9}
    assert set(train["user"]) == {1, 2, 3, 4, 5}


def test_random_holdout_is_deterministic_and_seed_dependent():
    ratings = synthetic_dataset(n_users=300, n_items=200, seed=5).ratings
    a = random_holdout(ratings, 0.3, seed=11)
    b = random_holdout(ratings, 0.3, seed=11)
    c = random_holdout(ratings, 0.3, seed=12)
    assert a[1].equals(b[1]) and a[0].equals(b[0])
    assert not a[1].equals(c[1])
    # Per-user sizes do not depend on the seed, only which rows are chosen.
    assert _test_counts(a[1]) == _test_counts(c[1])


def test_random_holdout_picks_items_uniformly():
    # 1000 users with the same 10 items, 1 held out each (0.1 * 10): each item is held out ~100 times.
    # Binomial(1000, 0.1) has sd ~9.5; 5 sd on either side bounds a fair choice.
    ratings = pd.DataFrame({"user": np.repeat(np.arange(1000), 10), "item": np.tile(np.arange(10), 1000)})
    counts = np.bincount(random_holdout(ratings, 0.1, seed=4)[1]["item"], minlength=10)
    assert counts.sum() == 1000
    assert counts.min() > 100 - 47 and counts.max() < 100 + 47


def test_temporal_split_holds_out_each_users_latest():
    ratings = _hand_frame()
    train, test = temporal_split(ratings, test_fraction=0.2)
    _assert_partition(ratings, train, test)
    assert _test_counts(test) == EXPECTED_02
    # By hand: user 3 latest is item 102; user 4's last two share timestamp 5000, the tie goes to the larger
    # item id (104); user 5's two latest are 108 and 109.
    assert sorted(zip(test.user, test.item)) == [(3, 102), (4, 104), (5, 108), (5, 109)]


def test_temporal_split_every_test_row_is_after_every_train_row_of_its_user():
    ratings = synthetic_dataset(n_users=400, n_items=300, seed=2).ratings
    train, test = temporal_split(ratings, 0.25)
    last_train = train.groupby("user")["timestamp"].max()
    first_test = test.groupby("user")["timestamp"].min()
    assert (first_test >= last_train.reindex(first_test.index)).all()


def test_global_temporal_split_is_one_cutoff():
    ratings = _hand_frame()  # 21 rows -> round(0.2 * 21) = round(4.2) = 4 test rows
    train, test = global_temporal_split(ratings, test_fraction=0.2)
    _assert_partition(ratings, train, test)
    assert len(test) == 4
    assert train["timestamp"].max() <= test["timestamp"].min()
    # The four latest timestamps: 5000 (user 4 items 103 and 104), then 1090 and 1080 (user 5 items 109, 108).
    assert sorted(zip(test.user, test.item)) == [(4, 103), (4, 104), (5, 108), (5, 109)]


def test_leave_k_out_random_and_latest():
    ratings = _hand_frame()
    train, test = leave_k_out(ratings, k=2, seed=0)
    _assert_partition(ratings, train, test)
    assert _test_counts(test) == {2: 1, 3: 2, 4: 2, 5: 2}  # min(k, n - 1)
    _, last = leave_k_out(ratings, k=1, latest=True)
    assert sorted(zip(last.user, last.item)) == [(2, 101), (3, 102), (4, 104), (5, 109)]


@needs_shared
def test_ml100k_random_split_sizes():
    ratings = load_ml100k(SHARED / "ml-100k").ratings
    train, test = split(ratings, "random", test_fraction=0.2, seed=0)
    _assert_partition(ratings, train, test)
    # Every ml-100k user has >= 20 ratings, so each holds out exactly floor(0.2 * n + 0.5) rows.
    sizes = ratings.groupby("user").size()
    expected = np.floor(0.2 * sizes + 0.5).astype(int)
    assert test.groupby("user").size().sort_index().tolist() == expected.sort_index().tolist()


def test_split_is_vectorized_enough_for_a_million_rows():
    import time

    rng = np.random.default_rng(0)
    n = 1_000_000
    ratings = pd.DataFrame({"user": rng.integers(0, 50_000, n), "item": rng.integers(0, 1_000_000, n)})
    ratings = ratings.drop_duplicates(["user", "item"]).reset_index(drop=True)
    ratings["timestamp"] = rng.integers(0, 10**9, len(ratings))
    start = time.perf_counter()
    random_holdout(ratings, 0.2)
    temporal_split(ratings, 0.2)
    assert time.perf_counter() - start < 20  # a per-user Python loop over 50k users takes far longer


@pytest.mark.parametrize(("method", "params", "error", "pattern"), [
    ("kfold", {}, ConfigError, "unknown split method 'kfold'"),
    ("random", {"test_fraction": 1.0}, ConfigError, r"test_fraction must be in \(0, 1\)"),
    ("random", {"test_fraction": "a"}, ConfigError, "test_fraction must be a number"),
    ("random", {"k": 2}, ConfigError, "'random' has no parameter 'k'"),
    ("leave_k_out", {"k": 0}, ConfigError, "k must be an integer >= 1"),
])
def test_split_bad_parameters(method, params, error, pattern):
    with pytest.raises(error, match=pattern):
        split(_hand_frame(), method, **params)


def test_temporal_needs_timestamps_and_unique_pairs():
    no_time = _hand_frame().drop(columns="timestamp")
    with pytest.raises(ConfigError, match="needs a 'timestamp' column"):
        split(no_time, "temporal")
    with pytest.raises(ConfigError, match="needs a 'timestamp' column"):
        split(no_time, "global-temporal", test_fraction=0.1)
    doubled = pd.DataFrame({"user": [1, 1, 1], "item": [5, 6, 5], "timestamp": [1, 2, 3]})
    with pytest.raises(InputError, match="row 3: user 1 has item 5 more than once"):
        split(doubled, "random")


def test_string_ids_split_the_same_way():
    ratings = _hand_frame()
    as_text = ratings.assign(user="u" + ratings["user"].astype(str), item="i" + ratings["item"].astype(str))
    train, test = temporal_split(as_text, 0.2)
    _assert_partition(as_text, train, test)
    assert sorted(zip(test.user, test.item)) == [("u3", "i102"), ("u4", "i104"), ("u5", "i108"), ("u5", "i109")]
