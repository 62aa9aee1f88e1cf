"""Recommenders: the list contract, hand-checked baselines and kNN/CB, MF quality, persistence.

MovieLens 100K is read from the ``shared`` folder beside the repository checkout (its license
forbids copying it into the repo); the genres are parsed here from ``u.item`` with pandas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from receval.errors import ConfigError, StoreError
from receval.metrics.sharding import Shard
from receval.recommenders import ALGORITHMS, RERANKERS, Recommender, make
from receval.recommenders.base import top_k
from receval.recommenders.mf import looks_like_stars
from receval.storage.local import LocalStore

ML100K = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ml-100k"
BASE_ALGORITHMS = [a for a in ALGORITHMS if a not in RERANKERS]


def _ratings(name: str) -> pd.DataFrame:
    return pd.read_csv(ML100K / name, sep="\t", names=["user", "item", "rating", "ts"]).drop(columns="ts")


@pytest.fixture(scope="module")
def ml100k() -> dict[str, pd.DataFrame]:
    if not (ML100K / "u1.base").exists():
        pytest.skip(f"MovieLens 100K not found at {ML100K}")
    items = pd.read_csv(ML100K / "u.item", sep="|", header=None, encoding="latin-1")
    genre_flags = items.iloc[:, 5:].to_numpy()  # the 19 genre columns of u.item
    item_pos, genre = np.nonzero(genre_flags)
    features = pd.DataFrame({"item": items[0].to_numpy()[item_pos], "feature": genre, "weight": 1.0})
    return {"train": _ratings("u1.base"), "test": _ratings("u1.test"), "features": features}


_FITTED: dict[str, Recommender] = {}


@pytest.fixture(scope="module")
def fitted(ml100k):
    """Each base algorithm fitted once on u1.base (with genres), shared by the tests below."""

    def get(name: str) -> Recommender:
        if name not in _FITTED:
            _FITTED[name] = make(name).fit(ml100k["train"], ml100k["features"])
        return _FITTED[name]

    return get


def precision_at_10(recs: pd.DataFrame, test: pd.DataFrame, users: np.ndarray) -> float:
    relevant = test[test.rating >= 4]
    hits = recs[recs["rank"] <= 10].merge(relevant, on=["user", "item"])
    return len(hits) / (10 * len(users))


# --------------------------------------------------------------------------------------------
# the list contract, for every base algorithm on ml-100k
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BASE_ALGORITHMS)
def test_lists_follow_the_contract(name, fitted, ml100k):
    train = ml100k["train"]
    model = fitted(name)
    users = np.array([1, 13, 405, 2, 999_999])  # 405 rated 700+ items; 999999 is not in train
    recs = model.recommend(users, 20)
    assert list(recs.columns) == ["user", "item", "rank", "score"]
    assert list(pd.unique(recs.user)) == list(users)  # given order, each user once
    n_items = train.item.nunique()
    for user, group in recs.groupby("user", sort=False):
        seen = set(train.item[train.user == user])
        assert not seen & set(group.item), "an item rated in train was recommended"
        assert len(group) == min(20, n_items - len(seen))
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert group.item.is_unique
        ordered = group.sort_values(["score", "item"], ascending=[False, True], kind="stable")
        assert ordered.item.tolist() == group.item.tolist(), "not score desc, item id asc"
        assert np.isfinite(group.score).all()


def test_lists_are_cut_at_the_number_of_candidates():
    # user u rated 3 of the 5 items: only 2 candidates remain whatever k asks
    train = pd.DataFrame({"user": ["u", "u", "u", "v", "v"], "item": [1, 2, 3, 4, 5], "rating": 1.0})
    for name in BASE_ALGORITHMS:
        features = pd.DataFrame({"item": [1, 2, 3, 4, 5], "feature": "f", "weight": 1.0})
        recs = make(name).fit(train, features).recommend(["u"], 10)
        assert sorted(recs.item) == [4, 5], name


def test_batches_bound_the_work_and_agree_with_one_call(fitted, ml100k):
    model = fitted("ub")
    users = ml100k["test"].user.unique()[:250]
    batches = list(model.recommend_batches(users, 10, batch_size=100))
    assert [b.user.nunique() for b in batches] == [100, 100, 50]
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), model.recommend(users, 10))


def test_top_k_breaks_ties_by_item_id_and_pads_excluded():
    scores = np.array([[1.0, 3.0, 3.0, 0.5, 3.0], [2.0, -np.inf, 2.0, -np.inf, -np.inf]])
    cols, vals = top_k(scores, 2)
    # row 0: three items tie at 3.0 -> the two lowest columns; row 1: tie at 2.0 -> 0 then 2
    assert cols.tolist() == [[1, 2], [0, 2]]
    cols, vals = top_k(scores, 4)
    assert cols[0].tolist() == [1, 2, 4, 0]
    assert cols[1, :2].tolist() == [0, 2] and np.isneginf(vals[1, 2:]).all()


# --------------------------------------------------------------------------------------------
# baselines
# --------------------------------------------------------------------------------------------
def test_pop_counts_users_by_hand():
    train = pd.DataFrame(
        {"user": [1, 1, 2, 2, 3, 3, 3], "item": [10, 20, 10, 30, 10, 20, 40], "rating": [5, 1, 2, 2, 1, 1, 1]}
    )
    recs = make("pop").fit(train).recommend([1, 4], 10)
    # users per item: 10 -> 3, 20 -> 2, 30 -> 1, 40 -> 1 (ratings do not matter)
    assert recs[recs.user == 1].item.tolist() == [30, 40]  # user 1 rated 10 and 20
    assert recs[recs.user == 1].score.tolist() == [1.0, 1.0]
    assert recs[recs.user == 4].item.tolist() == [10, 20, 30, 40]  # unknown user: whole ranking
    assert recs[recs.user == 4].score.tolist() == [3.0, 2.0, 1.0, 1.0]


def test_pop_matches_a_pandas_count_on_ml100k(fitted, ml100k):
    train = ml100k["train"]
    counts = train.groupby("item").user.nunique().rename("count").reset_index()
    seen = set(train.item[train.user == 1])
    expected = counts[~counts.item.isin(seen)].sort_values(["count", "item"], ascending=[False, True]).head(10)
    recs = fitted("pop").recommend([1], 10)
    assert recs.item.tolist() == expected.item.tolist()
    assert recs.score.tolist() == expected["count"].astype(float).tolist()


def _non_personalised_reference(train: pd.DataFrame, score: pd.Series, users, k: int) -> pd.DataFrame:
    """Every user's list by brute force: all (user, item) pairs, seen ones dropped, sorted by score
    descending then item ascending, the first k kept."""
    pairs = pd.DataFrame({"user": users}).merge(score.rename("score").reset_index(), how="cross")
    seen = train[["user", "item"]].drop_duplicates().assign(seen=True)
    pairs = pairs.merge(seen, on=["user", "item"], how="left")
    pairs = pairs[pairs["seen"].isna()].sort_values(["user", "score", "item"], ascending=[True, False, True])
    top = pairs.groupby("user", sort=False).head(k)
    return top.assign(rank=top.groupby("user").cumcount() + 1)[["user", "item", "rank", "score"]]


@pytest.mark.parametrize("name", ["pop", "avg"])
def test_non_personalised_lists_of_every_user_match_brute_force(name, fitted, ml100k):
    """POP and AVG rank the catalogue once and skip each user's seen items: every user's list, in
    mixed batches of known and unknown users (and users who saw most of the catalogue), is the
    brute-force ranking of all (user, item) pairs."""
    train = ml100k["train"]
    heavy = pd.DataFrame({"user": 10_000, "item": np.sort(train["item"].unique())[5:], "rating": 3.0})
    train = pd.concat([train, heavy], ignore_index=True)
    model = make(name).fit(train)
    if name == "pop":
        score = train.groupby("item")["user"].nunique().astype(float)
    else:
        mu = train["rating"].mean()
        stats = train.groupby("item")["rating"].agg(["sum", "count"])
        score = (stats["sum"] + 25 * mu) / (stats["count"] + 25)
    users = [*train["user"].unique()[::3], 10_000, -1, -2]  # -1, -2: unknown to train
    expected = _non_personalised_reference(train, score.rename_axis("item"), users, 50)
    got = pd.concat(list(model.recommend_batches(users, 50, batch_size=97)), ignore_index=True)
    key = ["user", "rank"]
    got, expected = (f.sort_values(key).reset_index(drop=True) for f in (got, expected))
    assert len(got[got.user == 10_000]) == 5  # only five items left for the heavy user
    pd.testing.assert_frame_equal(got[key + ["item"]], expected[key + ["item"]], check_dtype=False)
    np.testing.assert_allclose(got["score"], expected["score"], rtol=0, atol=1e-12)


def test_avg_is_the_damped_mean_by_hand():
    train = pd.DataFrame({"user": [1, 2, 3, 1], "item": ["x", "x", "y", "z"], "rating": [5.0, 3.0, 4.0, 0.0]})
    # global mean mu = (5 + 3 + 4 + 0) / 4 = 3; damping 2 adds two pseudo-ratings at 3:
    # x: (5 + 3 + 2*3) / (2 + 2) = 3.5 ; y: (4 + 6) / 3 = 3.333.. ; z: (0 + 6) / 3 = 2
    recs = make("avg", damping=2).fit(train).recommend([99], 3)
    assert recs.item.tolist() == ["x", "y", "z"]
    np.testing.assert_allclose(recs.score, [3.5, 10 / 3, 2.0])
    plain = make("avg", damping=0).fit(train).recommend([99], 3)
    assert plain.item.tolist() == ["x", "y", "z"]  # 4, 4, 0: the tie x/y goes to the lower id
    np.testing.assert_allclose(plain.score, [4.0, 4.0, 0.0])


def test_avg_matches_a_pandas_mean_on_ml100k(fitted, ml100k):
    train = ml100k["train"]
    mu = train.rating.mean()
    stats = train.groupby("item").rating.agg(["sum", "count"])
    damped = ((stats["sum"] + 25 * mu) / (stats["count"] + 25)).rename("avg").reset_index()
    seen = set(train.item[train.user == 7])
    expected = damped[~damped.item.isin(seen)].sort_values(["avg", "item"], ascending=[False, True]).head(10)
    recs = fitted("avg").recommend([7], 10)
    assert recs.item.tolist() == expected.item.tolist()
    np.testing.assert_allclose(recs.score, expected.avg)


def test_rnd_is_deterministic_per_seed_and_user_not_per_batch(ml100k):
    train = ml100k["train"]
    users = train.user.unique()[:300]
    first = make("rnd", seed=3).fit(train).recommend(users, 10)
    again = make("rnd", seed=3).fit(train).recommend(users[::-1], 10)
    again = again.set_index("user").loc[users].reset_index()
    pd.testing.assert_frame_equal(first, again)
    other = make("rnd", seed=4).fit(train).recommend(users, 10)
    assert (first.item != other.item).mean() > 0.9
    # scores look uniform: mean of 1682 scores of one user close to 1/2
    scores = make("rnd", seed=3).fit(train)._score_known(np.array([0]))
    assert abs(scores.mean() - 0.5) < 0.05 and scores.min() >= 0 and scores.max() < 1


# --------------------------------------------------------------------------------------------
# neighbourhoods and content on examples with an obvious answer
# --------------------------------------------------------------------------------------------
TINY = pd.DataFrame(
    {
        "user": ["ann", "ann", "bob", "bob", "bob", "cat", "cat"],
        "item": ["A", "B", "A", "B", "C", "D", "E"],
        "rating": 1.0,
    }
)


def test_ub_recommends_what_the_similar_user_liked():
    recs = make("ub", neighbours=1).fit(TINY).recommend(["ann"], 3)
    # ann = (A, B), bob = (A, B, C): cos = 2 / sqrt(2 * 3); cat shares nothing (cos 0)
    assert recs.item.tolist() == ["C", "D", "E"]
    np.testing.assert_allclose(recs.score, [2 / np.sqrt(6), 0.0, 0.0])


def test_ib_recommends_the_item_that_co_occurs():
    recs = make("ib").fit(TINY).recommend(["ann"], 3)
    # columns: A = {ann, bob}, B = {ann, bob}, C = {bob}: cos(C, A) = cos(C, B) = 1 / sqrt(2);
    # score(ann, C) = cos(C, A) + cos(C, B) = sqrt(2); D and E never co-occur with A or B
    assert recs.item.tolist() == ["C", "D", "E"]
    np.testing.assert_allclose(recs.score, [np.sqrt(2), 0.0, 0.0])


def test_cb_recommends_the_item_with_the_same_features():
    features = pd.DataFrame(
        {"item": ["A", "B", "C", "D", "E"], "feature": ["rock", "rock", "rock", "jazz", "pop"], "weight": 1.0}
    )
    recs = make("cb").fit(TINY, features).recommend(["cat", "ann"], 3)
    # ann's profile is pure rock: C has cosine 1, D and E 0; cat (jazz + pop) gets D, E at 1/sqrt(2)
    assert recs[recs.user == "ann"].item.tolist() == ["C", "D", "E"]
    np.testing.assert_allclose(recs[recs.user == "ann"].score, [1.0, 0.0, 0.0])
    assert recs[recs.user == "cat"].item.tolist() == ["A", "B", "C"]  # all score 0 -> item id order
    with pytest.raises(ConfigError, match="needs item features"):
        make("cb").fit(TINY)


# --------------------------------------------------------------------------------------------
# matrix factorisation
# --------------------------------------------------------------------------------------------
def test_feedback_auto_detection():
    assert looks_like_stars(np.array([1.0, 2, 3, 4, 5]))
    assert looks_like_stars(np.array([0.5, 1.0, 4.5]))
    assert not looks_like_stars(np.ones(10))  # unary: implicit
    assert not looks_like_stars(np.arange(1.0, 300.0))  # play counts: implicit


def test_mf_beats_the_baselines_on_u1_test(fitted, ml100k):
    test = ml100k["test"]
    users = np.sort(test.user.unique())
    explicit = make("mf", feedback="auto").fit(ml100k["train"])
    assert explicit.feedback == "explicit"  # stars 1..5 are detected as explicit ratings
    implicit = fitted("mf")
    assert implicit.feedback == "implicit"  # the default: top-N lists
    p_rnd = precision_at_10(fitted("rnd").recommend(users, 10), test, users)
    p_pop = precision_at_10(fitted("pop").recommend(users, 10), test, users)
    p_explicit = precision_at_10(explicit.recommend(users, 10), test, users)
    p_implicit = precision_at_10(implicit.recommend(users, 10), test, users)
    # rating prediction is a weak top-N ranker (Cremonesi et al. 2010) but far better than chance;
    # the implicit model is trained for ranking and must beat popularity
    assert p_explicit > 2 * p_rnd
    assert p_implicit > p_pop


def test_mf_is_deterministic_given_its_seed(ml100k):
    train = ml100k["train"][ml100k["train"].user <= 200]
    users = train.user.unique()
    a = make("mf", factors=8, iterations=3, seed=5).fit(train).recommend(users, 10)
    b = make("mf", factors=8, iterations=3, seed=5).fit(train).recommend(users, 10)
    c = make("mf", factors=8, iterations=3, seed=6).fit(train).recommend(users, 10)
    pd.testing.assert_frame_equal(a, b)
    assert not a.score.equals(c.score)


# --------------------------------------------------------------------------------------------
# registry and persistence
# --------------------------------------------------------------------------------------------
def test_make_rejects_unknown_names_and_parameters():
    with pytest.raises(ConfigError, match=r"unknown algorithm 'svd' \(known: rnd, pop, avg, ub, ib, cb, mf, mmr"):
        make("svd")
    with pytest.raises(ConfigError, match="unknown parameter 'k'.*neighbours"):
        make("ub", k=5)
    with pytest.raises(ConfigError, match="feedback"):
        make("mf", feedback="stars")
    with pytest.raises(ConfigError, match="not fitted"):
        make("pop").recommend([1], 5)


@pytest.mark.parametrize("name", BASE_ALGORITHMS)
def test_save_load_round_trip_gives_identical_lists(name, fitted, ml100k, tmp_path):
    store = LocalStore(tmp_path)
    model = fitted(name)
    model.save(store, f"models/{name}")
    assert store.is_complete(f"models/{name}")
    loaded = Recommender.load(store, f"models/{name}", train=ml100k["train"])
    assert type(loaded) is type(model) and loaded.params == model.params
    users = list(ml100k["test"].user.unique()[:60]) + [123_456]
    pd.testing.assert_frame_equal(loaded.recommend(users, 15), model.recommend(users, 15))


@pytest.mark.parametrize("name", BASE_ALGORITHMS)
def test_a_shard_loaded_with_its_own_train_rows_gives_the_full_models_lists(name, fitted, ml100k, tmp_path):
    """What a predict pod does: the model's global state, one shard's part of the per-user state,
    and only that shard's train rows."""
    store = LocalStore(tmp_path)
    model = fitted(name)
    model.save(store, f"models/{name}", user_parts=4)
    saved = {key.split(f"models/{name}/", 1)[1] for key in store.list(f"models/{name}")}
    # only the global model keeps the train matrix and every user id
    assert ("train.npz" in saved) == ("users.parquet" in saved) == (name == "ub")
    assert any(key.startswith("users/part-") for key in saved) == (name == "mf")
    shard = Shard(1, 8)  # 8 pods over 4 parts: each pod reads one part
    train = ml100k["train"]
    own_train = train[shard.mask(train["user"])]
    loaded = Recommender.load(store, f"models/{name}", shard=shard, train=own_train)
    test_users = pd.Series(ml100k["test"].user.unique())
    users = list(test_users[shard.mask(test_users)][:60]) + [123_456]
    pd.testing.assert_frame_equal(loaded.recommend(users, 15), model.recommend(users, 15))


def test_a_model_loaded_without_train_rows_refuses_to_recommend(fitted, tmp_path):
    store = LocalStore(tmp_path)
    fitted("ib").save(store, "models/ib")
    with pytest.raises(ConfigError, match="without the users' train rows"):
        Recommender.load(store, "models/ib").recommend([1], 5)


def test_load_refuses_an_unpublished_folder(tmp_path):
    store = LocalStore(tmp_path)
    make("pop").fit(TINY).save(store, "models/pop")
    store.delete("models/pop/_SUCCESS")  # as if the writer died before the marker
    with pytest.raises(StoreError, match="no _SUCCESS marker"):
        Recommender.load(store, "models/pop")


def test_string_and_integer_request_ids_find_the_same_user():
    train = pd.DataFrame({"user": [1, 1, 2], "item": [7, 8, 9], "rating": 1.0})
    model = make("pop").fit(train)
    assert model.recommend(["1"], 5).item.tolist() == model.recommend([1], 5).item.tolist() == [9]
