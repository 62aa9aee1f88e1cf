"""``receval.evaluate`` on frames: the values of ``receval evaluate`` on the same data in files,
and the errors of the file readers, naming the argument instead of the file."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import receval
from receval.data.loaders import load_ml100k
from receval.errors import InputError
from receval.metrics.spec import default_specs

CUTOFFS = (5, 10)


@pytest.fixture(scope="module")
def ml100k_frames(datasets_dir):
    """150 ml-100k users, a 70/30 random split, string ids, lists of 12 by a noisy popularity score
    (ties rounded in, so that ranking by score and item id matters), genres as features."""
    data = load_ml100k(datasets_dir / "ml-100k")
    ratings = data.ratings[data.ratings["user"] <= 150]
    ratings = ratings.assign(user="u" + ratings["user"].astype(str), item="m" + ratings["item"].astype(str))
    rng = np.random.default_rng(7)
    is_test = rng.random(len(ratings)) < 0.3
    train = ratings[~is_test][["user", "item", "rating"]].reset_index(drop=True)
    test = ratings[is_test][["user", "item", "rating"]].reset_index(drop=True)
    popularity = train["item"].value_counts()
    candidates = popularity.index[:200].to_numpy()
    base = popularity.iloc[:200].to_numpy(np.float64) / popularity.iloc[0]
    rows = []
    for user in sorted(ratings["user"].unique()):
        score = np.round(base + rng.normal(0, 0.3, len(candidates)), 1)
        for j in np.argsort(-score, kind="stable")[:12]:
            rows.append((user, candidates[j], float(score[j])))
    recs = pd.DataFrame(rows, columns=["user", "item", "score"])
    features = data.features.assign(item="m" + data.features["item"].astype(str))[["item", "feature"]]
    return train, test, recs, features


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "receval", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


def test_api_summary_equals_the_cli_summary_json_value_for_value(ml100k_frames, tmp_path):
    train, test, recs, features = ml100k_frames
    paths = {}
    for name, frame in zip(("train", "test", "recs", "features"), ml100k_frames):
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    out = tmp_path / "out"
    res = _cli("evaluate", "--train", str(paths["train"]), "--test", str(paths["test"]), "--recs", str(paths["recs"]),
               "--features", str(paths["features"]), "--cutoff", "5", "--cutoff", "10", "--out", str(out))
    assert res.returncode == 0, res.stderr
    records = json.loads((out / "summary.json").read_text())

    ev = receval.evaluate(train, test, recs, features, cutoffs=CUTOFFS)
    summary = ev.summary
    metric_records = [r for r in records if r["kind"] == "metric"]
    assert list(summary["key"]) == [r["key"] for r in metric_records]
    assert [s.key for s in default_specs(CUTOFFS)] == [r["key"] for r in metric_records]  # the default report
    for row, record in zip(summary.to_dict("records"), metric_records):
        as_record = {"kind": "metric", **{k: v for k, v in row.items() if k != "parameters"}, **row["parameters"]}
        if record["value"] is None:
            assert math.isnan(as_record.pop("value")) and record.pop("value") is None
        assert as_record == record
    quality = [r for r in records if r["kind"] == "data_quality"]
    assert ev.data_quality["value"].tolist() == [r["value"] for r in quality]
    assert ev.data_quality["check"].tolist() == [r["metric"] for r in quality]
    pd.testing.assert_frame_equal(ev.per_user, pd.read_parquet(out / "per_user.parquet"))


def test_frames_of_other_libraries_give_the_same_values(ml100k_frames):
    train, test, recs, features = ml100k_frames
    metrics = ["precision@10", "epc[binary,exp]@10", "eild[binary,exp]@10"]
    expected = receval.evaluate(train, test, recs, features, metrics=metrics).summary["value"].tolist()

    class InterchangeOnly:
        """An object offering nothing but the dataframe interchange protocol (as many libraries do)."""

        def __init__(self, table):
            self._table = table

        def __dataframe__(self, *args, **kwargs):
            return self._table.__dataframe__(*args, **kwargs)

    tables = [pa.Table.from_pandas(f, preserve_index=False) for f in ml100k_frames]
    got = receval.evaluate(*tables, metrics=metrics).summary["value"].tolist()
    assert got == expected
    got = receval.evaluate(*[InterchangeOnly(t) for t in tables], metrics=metrics).summary["value"].tolist()
    assert got == expected

    class ArrowStreamOnly:
        """An object offering nothing but the Arrow PyCapsule stream interface."""

        def __init__(self, table):
            self._table = table

        def __arrow_c_stream__(self, requested_schema=None):
            return self._table.__arrow_c_stream__(requested_schema)

    got = receval.evaluate(*[ArrowStreamOnly(t) for t in tables], metrics=metrics).summary["value"].tolist()
    assert got == expected


def test_column_names_are_configurable(ml100k_frames):
    train, test, recs, features = ml100k_frames
    metrics = ["ndcg@10", "epd[binary,exp]@10"]
    expected = receval.evaluate(train, test, recs, features, metrics=metrics).summary["value"].tolist()
    rename = {"user": "uid", "item": "movie", "rating": "stars", "score": "s", "feature": "genre"}
    # a column already called 'user' is not the user column when user_col names another one
    renamed = [f.rename(columns=rename).assign(user="decoy") if "user" in f.columns else f.rename(columns=rename)
               for f in ml100k_frames]
    got = receval.evaluate(
        *renamed, metrics=metrics,
        user_col="uid", item_col="movie", rating_col="stars", score_col="s", feature_col="genre",
    ).summary["value"].tolist()
    assert got == expected


def test_common_column_names_are_recognised_as_in_files(ml100k_frames):
    train, test, recs, features = ml100k_frames
    metrics = ["ndcg@10", "epd[binary,exp]@10"]
    expected = receval.evaluate(train, test, recs, features, metrics=metrics).summary["value"].tolist()
    rename = {"user": "user_id", "item": "movieId", "score": "prediction", "feature": "genre"}
    got = receval.evaluate(*[f.rename(columns=rename) for f in ml100k_frames], metrics=metrics).summary["value"].tolist()
    assert got == expected


# -- the conventions of the file readers ----------------------------------------------------------
TRAIN = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"]})
TEST = pd.DataFrame({"user": ["a", "a", "b"], "item": ["z", "w", "y"], "rating": [5.0, 4.0, 4.0]})


def test_scores_are_ranked_descending_with_ties_by_item_id():
    # a's list by score: z (0.9), then w and x tie at 0.5 -> w before x (item id)
    scored = pd.DataFrame({"user": ["a", "a", "a"], "item": ["x", "z", "w"], "score": [0.5, 0.9, 0.5]})
    ranked = pd.DataFrame({"user": ["a", "a", "a"], "item": ["z", "w", "x"], "rank": [1, 2, 3]})
    by_score = receval.evaluate(TRAIN, TEST, scored, cutoffs=(2,), metrics=["precision", "ap", "epc[none,exp]"])
    by_rank = receval.evaluate(TRAIN, TEST, ranked, cutoffs=(2,), metrics=["precision", "ap", "epc[none,exp]"])
    pd.testing.assert_frame_equal(by_score.per_user, by_rank.per_user)
    assert by_score.per_user.loc[0, "precision[binary,none]@2"] == 1.0  # z and w are both relevant


def test_train_without_ratings_is_implicit_and_features_without_weights_weigh_one():
    recs = pd.DataFrame({"user": ["a", "a", "b"], "item": ["z", "x", "y"], "rank": [1, 2, 1]})
    features = pd.DataFrame({"item": ["x", "y", "z", "z"], "feature": ["f", "g", "f", "g"]})
    implicit = receval.evaluate(TRAIN, TEST, recs, features, cutoffs=(2,), metrics=["epd", "eild"], distance="cosine")
    explicit = receval.evaluate(
        TRAIN.assign(rating=1.0), TEST, recs, features.assign(weight=1.0), cutoffs=(2,), metrics=["epd", "eild"]
    )
    pd.testing.assert_frame_equal(implicit.per_user, explicit.per_user)
    assert implicit.per_user["eild[none,none]@2"].iloc[0] == pytest.approx(1 - 1 / math.sqrt(2))


def _parquet_error(tmp_path: Path, name: str, frame: pd.DataFrame, reader) -> str:
    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(InputError) as info:
        reader(path)
    return str(info.value).replace(str(path), name)


@pytest.mark.parametrize(
    "role, frame",
    [
        ("recs", pd.DataFrame({"user": ["a", "a", "a"], "item": ["z", "x", "z"], "rank": [1, 2, 3]})),
        ("recs", pd.DataFrame({"user": ["a", "a"], "item": ["z", "x"], "rank": [1, -2]})),
        ("recs", pd.DataFrame({"user": ["a", "a"], "item": ["z", "x"]})),
        ("test", pd.DataFrame({"user": ["a", "a"], "item": ["z", "z"], "rating": [5.0, 4.0]})),
        ("test", pd.DataFrame({"user": ["a", None], "item": ["z", "x"], "rating": [5.0, 4.0]})),
        ("train", pd.DataFrame({"user": ["a", "b"], "item": ["z", "x"], "rating": ["5", "much"]})),
    ],
)
def test_a_bad_frame_gets_the_error_of_the_same_bad_file(tmp_path, role, frame):
    from receval.data import schema

    readers = {"train": schema.read_train, "test": schema.read_test, "recs": schema.read_recs}
    expected = _parquet_error(tmp_path, role, frame, readers[role])
    args = {"train": TRAIN, "test": TEST, "recs": pd.DataFrame({"user": ["a"], "item": ["z"], "rank": [1]})}
    args[role] = frame
    with pytest.raises(InputError) as info:
        receval.evaluate(args["train"], args["test"], args["recs"], cutoffs=(2,))
    assert str(info.value) == expected
    assert str(info.value).startswith(f"{role}: ") and "--" not in str(info.value)


def test_the_file_readers_cross_input_rules_apply_naming_the_arguments():
    recs = pd.DataFrame({"user": ["c"], "item": ["z"], "rank": [1]})
    with pytest.raises(InputError, match=r"^test: none of its 2 test users has a recommendation list in recs"):
        receval.evaluate(TRAIN, TEST, recs)
    recs = pd.DataFrame({"user": ["a", "a", "b"], "item": ["z", "w", "y"], "rank": [1, 2, 1]})
    with pytest.raises(InputError, match=r"^catalog 2: smaller than the 3 distinct items recommended in recs"):
        receval.evaluate(TRAIN, TEST, recs, catalog=2)


def test_errors_name_the_callers_column():
    recs = pd.DataFrame({"uid": ["a", "a"], "iid": ["z", "z"], "pos": [1, 2]})
    with pytest.raises(InputError, match=r"^recs: column 'iid', row 2: item 'z' repeated in the list of user 'a'$"):
        receval.evaluate(TRAIN, TEST, recs, user_col="uid", item_col="iid", rank_col="pos")
    test = TEST.rename(columns={"rating": "stars"})
    with pytest.raises(InputError, match=r"^test: missing column 'rating' \(found: user, item, stars\)$"):
        receval.evaluate(TRAIN, test, recs.rename(columns={"uid": "user", "iid": "item", "pos": "rank"}))
    with pytest.raises(InputError, match=r"^train: expected a data frame"):
        receval.evaluate([("a", "x")], TEST, recs)


def test_shards_merge_exactly_through_json(ml100k_frames):
    train, test, recs, features = ml100k_frames
    whole = receval.evaluate(train, test, recs, features, cutoffs=CUTOFFS)
    texts = [receval.evaluate(train, test, recs, features, cutoffs=CUTOFFS, shard=f"{i}/3").to_json() for i in range(3)]
    merged = receval.Evaluation.merge(texts)
    assert merged.records == whole.records
    pd.testing.assert_frame_equal(merged.per_user, whole.per_user)
    with pytest.raises(InputError, match="missing"):
        receval.Evaluation.merge(texts[:2])


def test_import_receval_does_not_load_the_engine():
    code = "import sys, receval; print('pandas' in sys.modules, 'receval.metrics.engine' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]
