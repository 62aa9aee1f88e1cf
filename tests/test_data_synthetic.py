"""Synthetic data: determinism, shapes, power-law popularity, taste structure, bounded chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from receval.data.synthetic import CHUNK_USERS, synthetic_dataset, synthetic_rating_chunks
from receval.errors import ConfigError


@pytest.fixture(scope="module")
def default():
    return synthetic_dataset()


def test_same_seed_same_data_other_seed_other_data(default):
    again = synthetic_dataset()
    assert default.ratings.equals(again.ratings)
    assert default.features.equals(again.features) and default.items.equals(again.items)
    other = synthetic_dataset(seed=1)
    assert not default.ratings.equals(other.ratings)


def test_shapes_types_and_value_ranges(default):
    r = default.ratings
    assert list(r.columns) == ["user", "item", "rating", "timestamp"]
    assert [str(t) for t in r.dtypes] == ["int64", "int64", "float64", "int64"]
    assert default.n_users == 2000 and r["item"].between(1, 1000).all()
    assert not r.duplicated(["user", "item"]).any()
    assert set(r["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # Mean interactions per user is requested as 40; dropping repeated draws of the same item may only lower it.
    assert 30 <= len(r) / 2000 <= 40
    per_item = default.features.groupby("item").size()
    assert len(per_item) == 1000 and per_item.between(1, 4).all()
    assert default.features["feature"].nunique() <= 20 and (default.features["weight"] == 1.0).all()
    assert len(default.items) == 1000 and not default.implicit


def test_item_popularity_is_a_power_law(default):
    counts = default.ratings["item"].value_counts().to_numpy()  # sorted descending
    top_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_share > 0.5  # the 10% most popular items hold a clear majority of interactions
    # Log-log slope of count vs rank over the head is clearly negative (power law, not a uniform catalogue).
    ranks = np.arange(1, 201)
    slope = np.polyfit(np.log(ranks), np.log(counts[:200]), 1)[0]
    assert slope < -0.5


def _taste_lift(ds) -> pd.Series:
    """Per user: max over features f of (share of the user's items carrying f) - (share of all interactions
    whose item carries f). Near 0 when users choose like everyone else; large when they have favourites."""
    joined = ds.ratings[["user", "item"]].merge(ds.features[["item", "feature"]], on="item")
    per_user = joined.groupby(["user", "feature"]).size() / ds.ratings.groupby("user").size()
    overall = joined.groupby("feature").size() / len(ds.ratings)
    lift = per_user - overall.reindex(per_user.index.get_level_values("feature")).to_numpy()
    return lift.groupby("user").max()


def test_users_have_tastes_that_drive_choices_and_ratings():
    with_taste = synthetic_dataset(n_users=600, seed=3, preference=0.6)
    without = synthetic_dataset(n_users=600, seed=3, preference=0.0)
    # Choices: with preference 0.6 a user with one favourite draws >= 60% of items from it, against a
    # population share of a few tens of percent; without preference only sampling noise remains.
    assert _taste_lift(with_taste).mean() > _taste_lift(without).mean() + 0.15
    # Ratings: a user rates items carrying their most frequent feature higher than their other items.
    joined = with_taste.ratings.merge(with_taste.features[["item", "feature"]], on="item")
    top_feature = (joined.groupby(["user", "feature"]).size().reset_index(name="n")
                   .sort_values(["user", "n"], ascending=[True, False]).drop_duplicates("user"))
    tagged = joined.merge(top_feature[["user", "feature"]], on=["user", "feature"])[["user", "item"]].drop_duplicates()
    flag = with_taste.ratings.merge(tagged.assign(liked=True), on=["user", "item"], how="left")
    flag["liked"] = flag["liked"].fillna(False).astype(bool)
    means = flag.groupby("liked")["rating"].mean()
    assert means[True] > means[False] + 0.3


def test_timestamps_increase_in_each_users_history(default):
    r = default.ratings
    assert (r.groupby("user")["timestamp"].diff().dropna() > 0).all()
    assert r["timestamp"].min() >= 1_577_836_800  # 2020-01-01


def test_chunks_are_bounded_and_concatenate_to_the_dataset():
    n_users = CHUNK_USERS + 7
    chunks = list(synthetic_rating_chunks(n_users=n_users, n_items=300, interactions_per_user=5, seed=9))
    assert [c["user"].nunique() for c in chunks] == [CHUNK_USERS, 7]
    assert chunks[1]["user"].min() == CHUNK_USERS + 1  # ids continue across chunks
    whole = synthetic_dataset(n_users=n_users, n_items=300, interactions_per_user=5, seed=9).ratings
    assert pd.concat(chunks, ignore_index=True).equals(whole)


def test_small_catalogues_and_limits():
    ds = synthetic_dataset(n_users=50, n_items=3, n_features=2, interactions_per_user=10, seed=0)
    assert ds.ratings.groupby("user").size().max() <= 3  # never more distinct items than exist
    assert ds.features.groupby("item").size().max() <= 2


@pytest.mark.parametrize("kwargs", [{"n_users": 0}, {"n_items": -1}, {"interactions_per_user": 1.5},
                                    {"preference": 1.5}])
def test_bad_parameters_are_config_errors(kwargs):
    with pytest.raises(ConfigError, match="synthetic data"):
        synthetic_dataset(**kwargs)
