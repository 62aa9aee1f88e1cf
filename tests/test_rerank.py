"""Re-rankers: hand-checked greedy choices, λ = 1 reproduces the base, λ < 1 diversifies ml-100k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from receval.errors import ConfigError
from receval.recommenders import RERANKERS, Recommender, make
from receval.storage.local import LocalStore

ML100K = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ml-100k"


@pytest.fixture(scope="module")
def ml100k() -> dict[str, pd.DataFrame]:
    if not (ML100K / "u1.base").exists():
        pytest.skip(f"MovieLens 100K not found at {ML100K}")
    train = pd.read_csv(ML100K / "u1.base", sep="\t", names=["user", "item", "rating", "ts"]).drop(columns="ts")
    items = pd.read_csv(ML100K / "u.item", sep="|", header=None, encoding="latin-1")
    genre_flags = items.iloc[:, 5:].to_numpy()  # 19 genre columns
    item_pos, genre = np.nonzero(genre_flags)
    features = pd.DataFrame({"item": items[0].to_numpy()[item_pos], "feature": genre, "weight": 1.0})
    genres = pd.DataFrame(genre_flags.astype(float), index=items[0].to_numpy())
    return {"train": train, "features": features, "genres": genres}


def mean_intra_list_distance(recs: pd.DataFrame, genres: pd.DataFrame) -> float:
    """Mean over users of the mean pairwise cosine distance between the genre vectors of a list
    (an item without genres is at distance 1 from everything)."""
    values = []
    for _, group in recs.groupby("user"):
        x = genres.loc[group.item.to_numpy()].to_numpy()
        norms = np.linalg.norm(x, axis=1)
        unit = np.divide(x, norms[:, None], out=np.zeros_like(x), where=norms[:, None] > 0)
        distance = 1.0 - unit @ unit.T
        n = len(x)
        values.append(distance[np.triu_indices(n, 1)].mean())
    return float(np.mean(values))


# --------------------------------------------------------------------------------------------
# hand-made: base POP over four items, genres chosen so that the answer is obvious
# --------------------------------------------------------------------------------------------
# popularity (users): A 4, B 3, C 2, D 1 -> base list for a new user: A, B, C, D
HAND_TRAIN = pd.DataFrame(
    {
        "user": [1, 2, 3, 4, 1, 2, 3, 1, 2, 1, 5],
        "item": ["A", "A", "A", "A", "B", "B", "B", "C", "C", "D", "Z"],
        "rating": 1.0,
    }
)
# A and B are both westerns; C is a comedy; D has no features; Z exists only to give user 5 a profile
HAND_FEATURES = pd.DataFrame(
    {"item": ["A", "B", "C", "Z", "Z"], "feature": ["western", "western", "comedy", "western", "comedy"]}
)


def test_mmr_skips_the_item_similar_to_the_first_by_hand():
    recs = make("mmr", base="pop", lambda_=0.5).fit(HAND_TRAIN, HAND_FEATURES).recommend([99], 4)
    # relevance = min-max of popularity over A..D and Z (pop 1): A 1, B 2/3, C 1/3, D 0, Z 0.
    # step 1: A (0.5 * 1). step 2: B = 0.5*2/3 - 0.5*cos(B,A)=1 -> -1/6; C = 0.5*1/3 - 0 = 1/6;
    # D = 0 (no features: similarity 0); Z = 0 - 0.5*cos(Z,A)=1/sqrt(2) -> C.
    # step 3: B -1/6; D 0; Z: max(cos(Z,A), cos(Z,C)) = 1/sqrt(2) -> D (0 > -1/6). step 4: B.
    assert recs.item.tolist() == ["A", "C", "D", "B"]
    np.testing.assert_allclose(recs.score, [0.5, 1 / 6, 0.0, -1 / 6])


def test_xquad_covers_the_users_second_aspect_by_hand():
    # user 5 rated Z only: p(western|5) = p(comedy|5) = 1/2
    recs = make("xquad", base="pop", lambda_=0.5).fit(HAND_TRAIN, HAND_FEATURES).recommend([5], 4)
    # candidates A (rel 1), B (2/3), C (1/3), D (0). step 1: A = 0.5*1 + 0.5*(1/2) = 0.75.
    # step 2: western is covered (1 - p(A|western) = 0): B = 0.5*2/3 = 1/3; C = 0.5*1/3 + 0.5*1/2 = 5/12 -> C
    # step 3: B 1/3 vs D 0 -> B; step 4: D 0.
    assert recs.item.tolist() == ["A", "C", "B", "D"]
    np.testing.assert_allclose(recs.score, [0.75, 5 / 12, 1 / 3, 0.0])


def test_iaselect_discounts_served_aspects_by_the_items_quality_by_hand():
    recs = make("iaselect", base="pop", lambda_=0.5).fit(HAND_TRAIN, HAND_FEATURES).recommend([5], 4)
    # U = (western 1/2, comedy 1/2); V(i|f) = rel(i) if i has f.
    # step 1: A = 0.5*1 + 0.5*(1/2 * 1) = 0.75; B = 0.5*2/3 + 0.5*(1/2*2/3) = 1/2; C = 1/6 + 1/12 = 1/4
    # after A (V = 1): U(western) = 1/2 * (1 - 1) = 0 -> step 2: B 1/3; C 1/6 + 0.5*(1/2*1/3) = 1/4 -> B
    assert recs.item.tolist() == ["A", "B", "C", "D"]
    np.testing.assert_allclose(recs.score, [0.75, 1 / 3, 0.25, 0.0])


@pytest.mark.parametrize("name", RERANKERS)
def test_rerankers_need_features_and_a_valid_lambda(name):
    with pytest.raises(ConfigError, match="needs item features"):
        make(name, base="pop").fit(HAND_TRAIN)
    with pytest.raises(ConfigError, match="lambda_"):
        make(name, lambda_=1.5)
    with pytest.raises(ConfigError, match="unknown algorithm 'nope'"):
        make(name, base="nope")


# --------------------------------------------------------------------------------------------
# ml-100k: diversify versus the base, reproduce it at lambda = 1
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def users(ml100k) -> np.ndarray:
    return np.sort(ml100k["train"].user.unique())[:200]


@pytest.fixture(scope="module")
def base_lists(ml100k, users) -> pd.DataFrame:
    return make("ub").fit(ml100k["train"]).recommend(users, 10)


@pytest.mark.parametrize("name", RERANKERS)
def test_lambda_one_reproduces_the_base(name, ml100k, users, base_lists):
    model = make(name, base="ub", lambda_=1.0).fit(ml100k["train"], ml100k["features"])
    recs = model.recommend(users, 10)
    pd.testing.assert_frame_equal(recs[["user", "item", "rank"]], base_lists[["user", "item", "rank"]])


@pytest.mark.parametrize("name", RERANKERS)
def test_lambda_below_one_increases_intra_list_diversity(name, ml100k, users, base_lists):
    model = make(name, base="ub", lambda_=0.5).fit(ml100k["train"], ml100k["features"])
    recs = model.recommend(users, 10)
    base_ild = mean_intra_list_distance(base_lists, ml100k["genres"])
    reranked_ild = mean_intra_list_distance(recs, ml100k["genres"])
    assert reranked_ild > base_ild + 0.005, (base_ild, reranked_ild)
    # the re-ranked lists are drawn from the base's top-100 candidates and still exclude train items
    train = ml100k["train"]
    seen = set(zip(train.user, train.item))
    assert not any((u, i) in seen for u, i in zip(recs.user, recs.item))
    assert recs.groupby("user").size().eq(10).all()


def test_greedy_is_the_same_user_by_user_as_in_a_batch(ml100k, users):
    model = make("mmr", base="ub", lambda_=0.3).fit(ml100k["train"], ml100k["features"])
    batched = model.recommend(users[:40], 10)
    one_by_one = pd.concat([next(model.recommend_batches([u], 10)) for u in users[:40]], ignore_index=True)
    pd.testing.assert_frame_equal(batched, one_by_one)


def test_default_mf_base_and_round_trip(ml100k, users, tmp_path):
    model = make("xquad", base="mf", base_params={"factors": 10, "iterations": 5}, candidates=50)
    model.fit(ml100k["train"], ml100k["features"])
    store = LocalStore(tmp_path)
    model.save(store, "models/xquad")
    loaded = Recommender.load(store, "models/xquad", train=ml100k["train"])
    assert loaded.params == model.params and loaded.base.params["factors"] == 10
    pd.testing.assert_frame_equal(loaded.recommend(users, 10), model.recommend(users, 10))
