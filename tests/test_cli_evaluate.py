"""``receval evaluate``/``merge`` as a user runs them: real files, a real subprocess, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "receval", *args], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    """A tiny but complete input set: 3 test users, features with a featureless item."""
    train = pd.DataFrame({"user": [1, 1, 2, 3, 3], "item": [10, 11, 10, 12, 13], "rating": [5, 3, 4, 2, 5]})
    test = pd.DataFrame({"user": [1, 1, 2, 3], "item": [12, 13, 11, 10], "rating": [5, 2, 4, 4]})
    recs = pd.DataFrame(
        {"user": [1, 1, 1, 2, 2, 3, 3, 4], "item": [12, 13, 14, 11, 12, 10, 11, 10], "rank": [1, 2, 3, 1, 2, 1, 2, 1]}
    )
    feats = pd.DataFrame({"item": [10, 11, 12, 12, 13], "feature": ["a", "b", "a", "b", "c"]})
    paths = {}
    for name, frame in (("train", train), ("test", test), ("recs", recs), ("features", feats)):
        p = tmp_path / f"{name}.csv"
        frame.to_csv(p, index=False)
        paths[name] = p
    return paths


def base_args(f: dict[str, Path]) -> list[str]:
    return ["evaluate", "--train", str(f["train"]), "--test", str(f["test"]), "--recs", str(f["recs"]),
            "--features", str(f["features"])]


def test_evaluate_writes_summary_per_user_and_table(files, tmp_path):
    out = tmp_path / "out"
    res = run(*base_args(files), "--cutoff", "2", "--cutoff", "3", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "precision" in res.stdout and "@3" in res.stdout
    records = json.loads((out / "summary.json").read_text())
    metrics = {(r["metric"], r["relevance"], r["discount"], r["cutoff"]) for r in records if r["kind"] == "metric"}
    assert ("epc", "binary", "exp", 3) in metrics and ("gini", "none", "none", 2) in metrics
    assert all({"metric", "cutoff", "relevance", "discount", "value", "users"} <= r.keys() for r in records if r["kind"] == "metric")
    per_user = pd.read_parquet(out / "per_user.parquet")
    assert sorted(per_user["user"]) == ["1", "2", "3"]  # CSV ids are labels (text); test users only; user 4's list is reported, not averaged
    # precision@2 by hand: user 1 list (12,13): 12 rated 5 -> hit, 13 rated 2 -> miss => 1/2;
    # user 2 (11,12): 11 rated 4 -> 1/2; user 3 (10,11): 10 rated 4 -> 1/2  => mean 0.5
    prec = next(r for r in records if r["metric"] == "precision" and r["cutoff"] == 2)
    assert prec["value"] == pytest.approx(0.5, abs=1e-15)
    dq = {r["metric"]: r["value"] for r in records if r["kind"] == "data_quality"}
    assert dq["lists_for_non_test_users"] == 1
    assert dq["recommended_items_without_features"] == 1  # item 14
    assert dq["recommended_items_unseen_in_train"] == 1  # item 14
    assert dq["recommended_items_outside_catalog"] == 1  # item 14 is in neither train nor test


def test_shards_then_merge_equal_one_pass(files, tmp_path):
    one = tmp_path / "one"
    assert run(*base_args(files), "-k", "3", "--out", str(one)).returncode == 0
    parts = []
    for i in range(3):
        p = tmp_path / f"part{i}"
        res = run(*base_args(files), "-k", "3", "--shard", f"{i}/3", "--out", str(p))
        assert res.returncode == 0, res.stderr
        assert not (p / "summary.json").exists()
        parts.append(str(p))
    merged = tmp_path / "merged"
    res = run("merge", *parts, "--out", str(merged), "--format", "json")
    assert res.returncode == 0, res.stderr
    a = json.loads((one / "summary.json").read_text())
    b = json.loads((merged / "summary.json").read_text())
    assert [(r["metric"], r.get("relevance"), r.get("discount"), r["cutoff"]) for r in a] == \
        [(r["metric"], r.get("relevance"), r.get("discount"), r["cutoff"]) for r in b]
    for x, y in zip(a, b):
        assert (x["value"] is None and y["value"] is None) or x["value"] == pytest.approx(y["value"], rel=1e-12, abs=1e-12)
    # a missing shard is named
    res = run("merge", parts[0], parts[2], "--out", str(tmp_path / "m2"))
    assert res.returncode == 2 and "shard 1/3" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "m2" / "summary.json").exists()


def _bad(tmp_path: Path, files: dict[str, Path], role: str, frame: pd.DataFrame, *extra: str) -> subprocess.CompletedProcess:
    p = tmp_path / f"bad_{role}.csv"
    frame.to_csv(p, index=False)
    args = base_args({**files, role: p})
    out = tmp_path / "bad_out"
    res = run(*args, *extra, "--out", str(out))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (out / "summary.json").exists()
    return res


def test_bad_inputs_give_one_line_and_exit_2(files, tmp_path):
    test = pd.read_csv(files["test"])
    recs = pd.read_csv(files["recs"])
    r = _bad(tmp_path, files, "test", test.rename(columns={"rating": "score"}))
    assert "bad_test.csv" in r.stderr and "'rating'" in r.stderr
    r = _bad(tmp_path, files, "test", test.assign(rating=["5", "x", "4", "4"]))
    assert "'rating'" in r.stderr and "row 2" in r.stderr and "'x'" in r.stderr
    r = _bad(tmp_path, files, "test", pd.concat([test, test.iloc[[0]]]))
    assert "duplicate" in r.stderr and "user '1'" in r.stderr
    r = _bad(tmp_path, files, "test", test.iloc[:0])
    assert "empty" in r.stderr
    r = _bad(tmp_path, files, "recs", recs.assign(rank=[1, 2, np.nan, 1, 2, 1, 2, 1]))
    assert "'rank'" in r.stderr and "row 3" in r.stderr
    r = _bad(tmp_path, files, "recs", recs.assign(rank=[1, 2, -3, 1, 2, 1, 2, 1]))
    assert "negative" in r.stderr
    r = _bad(tmp_path, files, "recs", recs.assign(item=[12, 12, 14, 11, 12, 10, 11, 10]))
    assert "repeated" in r.stderr and "user '1'" in r.stderr
    r = _bad(tmp_path, files, "recs", recs.assign(rank=[1, 1, 2, 1, 2, 1, 2, 1]))
    assert "duplicate rank" in r.stderr and "row 2" in r.stderr
    r = _bad(tmp_path, files, "recs", recs, "--cutoff", "0")
    assert "cutoff" in r.stderr
    r = _bad(tmp_path, files, "recs", recs, "--shard", "3/2")
    assert "--shard 3/2" in r.stderr


def test_missing_file_and_unknown_metric(files, tmp_path):
    res = run("evaluate", "--train", str(tmp_path / "nope.csv"), "--test", str(files["test"]),
              "--recs", str(files["recs"]), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "nope.csv: file not found" in res.stderr
    res = run(*base_args(files), "--metric", "novelty", "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "unknown metric 'novelty'" in res.stderr


def test_metric_selection_and_json(files, tmp_path):
    res = run(*base_args(files), "-k", "3", "--metric", "eild[graded,log]", "--metric", "epc",
              "--relevance", "none,binary", "--discount", "reciprocal", "--format", "json", "--out", str(tmp_path / "o"))
    assert res.returncode == 0, res.stderr
    keys = [r["key"] for r in json.loads(res.stdout) if r["kind"] == "metric"]
    assert keys == ["eild[graded,log]@3", "epc[none,reciprocal]@3", "epc[binary,reciprocal]@3"]


def test_help_and_version():
    res = run("evaluate", "--help")
    assert res.returncode == 0 and "Examples" in res.stdout and "--shard" in res.stdout
    res = run("--version")
    assert res.returncode == 0 and res.stdout.startswith("receval ")


@pytest.mark.parametrize("bad", [("train",), ("recs",), ("train", "recs"), ("test", "recs"), ("features",),
                                 ("recs", "features"), ("test", "features")])
def test_the_first_bad_file_is_reported_although_recs_are_read_beside_the_others(files, tmp_path, bad):
    """The lists are read in a second thread (the features meanwhile, before them); the refusal is
    still the sequential one: the first bad file in the order train, test, recs, features, with its
    row, exit 2 and no output."""
    for name in bad:
        frame = pd.read_csv(files[name], dtype=str)
        frame.loc[1, "item"] = ""
        frame.to_csv(files[name], index=False)
    out = tmp_path / "out"
    res = run(*base_args(files), "--out", str(out))
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    first = bad[0]
    assert f"{first}.csv" in res.stderr and "row 2 (line 3)" in res.stderr and "empty id" in res.stderr
    assert not out.exists()


def test_the_statistics_taken_while_the_lists_are_read_are_those_of_the_frames(files, tmp_path):
    """Integer ids: the CLI takes the dataset statistics before the lists are in, and they must be
    the engine's own (catalogue, counts, digests with the features); text ids leave them to the engine."""
    from receval.cli.evaluate import _read_inputs
    from receval.data.formats import layout_from_options
    from receval.metrics.statistics import GlobalStatistics

    parquet = {}
    for name, path in files.items():  # Parquet keeps integer ids integer (CSV ids are read as text)
        parquet[name] = str(tmp_path / f"{name}.parquet")
        pd.read_csv(path).to_parquet(parquet[name])
    layout = layout_from_options(None)
    train, test, recs, features, statistics = _read_inputs(parquet["train"], parquet["test"], parquet["recs"],
                                                           parquet["features"], layout)
    assert pd.api.types.is_integer_dtype(recs["item"])
    expected = GlobalStatistics.of(train, test, features)
    assert statistics.digest == expected.digest and statistics.digest["features"][0] == len(features) > 0
    np.testing.assert_array_equal(statistics.items, expected.items)
    np.testing.assert_array_equal(statistics.train_interactions, expected.train_interactions)
    assert (statistics.n_train_users, statistics.n_test_users) == (expected.n_train_users, expected.n_test_users)

    # text item ids in the lists turn every id into text in the engine: the statistics taken
    # before the lists were in (over integer ids) are not used, the engine's own are
    from receval.metrics.engine import EvaluationConfig, evaluate

    text = recs.assign(item="i" + recs["item"].astype(str))
    config = EvaluationConfig(cutoffs=(2,), threads=1)
    given = evaluate(train, test, text, features, config, statistics=statistics)
    own = evaluate(train, test, text, features, config)
    assert given.fingerprint == own.fingerprint
    pd.testing.assert_frame_equal(given.per_user, own.per_user)
