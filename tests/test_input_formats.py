"""The formats people already have: the same interactions as TREC run/qrels, RecTools-named CSVs, a
headerless Elliot TSV and explicitly mapped columns give exactly the values of receval's own format
(``receval evaluate`` in a real subprocess), and their errors are one line with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from receval.data import formats, schema
from receval.errors import ConfigError, InputError


def evaluate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "receval", "evaluate", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=300)


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    """30 users, 40 items, integer ratings (qrels hold whole relevance grades), lists of 8 by distinct scores."""
    rng = np.random.default_rng(12)
    users, items = np.arange(1, 31), np.arange(100, 140)
    pairs = [(u, i) for u in users for i in rng.choice(items, 12, replace=False)]
    frame = pd.DataFrame(pairs, columns=["user", "item"])
    frame["rating"] = rng.integers(1, 6, len(frame))
    test_mask = rng.uniform(size=len(frame)) < 0.3
    train, test = frame[~test_mask].reset_index(drop=True), frame[test_mask].reset_index(drop=True)
    recs = []
    for u in users:
        chosen = rng.choice(items, 8, replace=False)
        scores = np.sort(rng.uniform(0, 1, 8))[::-1] + 0.001 * np.arange(8)[::-1]  # distinct, descending
        recs += [(u, i, r + 1, round(float(s), 6)) for r, (i, s) in enumerate(zip(chosen, scores))]
    recs = pd.DataFrame(recs, columns=["user", "item", "rank", "score"])
    features = pd.DataFrame({"item": np.repeat(items, 2), "feature": rng.choice(list("abcdefg"), 2 * len(items))})
    return {"train": train, "test": test, "recs": recs, "features": features.drop_duplicates()}


def values(out: Path) -> dict[tuple, float]:
    records = json.loads((out / "summary.json").read_text())
    return {(r["metric"], r["relevance"], r["discount"], r["cutoff"]): r["value"] for r in records if r["kind"] == "metric"}


@pytest.fixture(scope="module")
def native(data, tmp_path_factory) -> tuple[dict[str, Path], dict[tuple, float]]:
    root = tmp_path_factory.mktemp("native")
    paths = {}
    for name, frame in data.items():
        paths[name] = root / f"{name}.csv"
        (frame.drop(columns=["score"]) if name == "recs" else frame).to_csv(paths[name], index=False)
    done = evaluate("--train", str(paths["train"]), "--test", str(paths["test"]), "--recs", str(paths["recs"]),
                    "--features", str(paths["features"]), "--cutoff", "5,8", "--out", str(root / "out"))
    assert done.returncode == 0, done.stderr
    return paths, values(root / "out")


def test_trec_run_and_qrels_give_the_native_values(data, native, tmp_path):
    paths, expected = native
    run, qrels = tmp_path / "run.trec", tmp_path / "qrels.txt"
    with open(run, "w") as handle:
        for r in data["recs"].itertuples():
            handle.write(f"{r.user} Q0 {r.item} {r.rank} {r.score} myrun\n")
    with open(qrels, "w") as handle:
        for r in data["test"].itertuples():
            handle.write(f"{r.user}\t0\t{r.item}\t{r.rating}\n")
    done = evaluate("--train", str(paths["train"]), "--test", str(qrels), "--recs", str(run),
                    "--features", str(paths["features"]), "--cutoff", "5", "--cutoff", "8", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert values(tmp_path / "o") == expected
    assert f"input: {run}: read as TREC run" in done.stderr and f"input: {qrels}: read as TREC qrels" in done.stderr


def test_rectools_names_are_recognised_and_the_mapping_is_said(data, native, tmp_path):
    paths, expected = native
    names = {"user": "user_id", "item": "item_id", "rating": "weight"}
    files = {}
    for role in ("train", "test", "recs"):
        frame = data[role].drop(columns=["rank"]) if role == "recs" else data[role]  # RecTools recs: by score
        files[role] = tmp_path / f"{role}.csv"
        frame.rename(columns=names).to_csv(files[role], index=False)
    done = evaluate("--train", str(files["train"]), "--test", str(files["test"]), "--recs", str(files["recs"]),
                    "--features", str(paths["features"]), "--cutoff", "5,8", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert values(tmp_path / "o") == expected
    assert f"input: {files['test']}: columns user_id→user, item_id→item, weight→rating (recognised)" in done.stderr


def test_headerless_elliot_tsv_gives_the_native_values(data, native, tmp_path):
    paths, expected = native
    files = {}
    for role, columns in (("train", ["user", "item", "rating"]), ("test", ["user", "item", "rating"]),
                          ("recs", ["user", "item", "score"])):
        files[role] = tmp_path / f"{role}.tsv"
        data[role][columns].to_csv(files[role], sep="\t", header=False, index=False)
    done = evaluate("--train", str(files["train"]), "--test", str(files["test"]), "--recs", str(files["recs"]),
                    "--features", str(paths["features"]), "--cutoff", "5,8", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert values(tmp_path / "o") == expected
    assert f"input: {files['recs']}: no header; columns read as user, item, score" in done.stderr
    # --no-header says the same of every text input (here headerless CSVs)
    csv = {}
    for role, columns in (("test", ["user", "item", "rating"]), ("features", ["item", "feature"])):
        csv[role] = tmp_path / f"{role}.csv"
        data[role][columns].to_csv(csv[role], header=False, index=False)
    done = evaluate("--train", str(files["train"]), "--test", str(csv["test"]), "--recs", str(files["recs"]),
                    "--features", str(csv["features"]), "--cutoff", "5,8", "--no-header", "--out", str(tmp_path / "o2"))
    assert done.returncode == 0, done.stderr
    assert values(tmp_path / "o2") == expected


def test_explicit_column_mapping(data, native, tmp_path):
    paths, expected = native
    recs = tmp_path / "recs.csv"
    data["recs"].drop(columns=["score"]).rename(columns={"user": "who", "item": "what", "rank": "pos_"}).to_csv(recs, index=False)
    common = ["--train", str(paths["train"]), "--test", str(paths["test"]), "--recs", str(recs),
              "--features", str(paths["features"]), "--cutoff", "5,8"]
    done = evaluate(*common, "--columns", "user=who,item=what", "--rank-col", "pos_", "--out", str(tmp_path / "o"))
    assert done.returncode == 0, done.stderr
    assert values(tmp_path / "o") == expected
    assert "columns who→user, what→item, pos_→rank (mapped)" in done.stderr
    done = evaluate(*common, "--columns", "user=who", "--out", str(tmp_path / "o3"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == f"receval: error: {recs}: missing column 'item' (found: user, what, pos_)"


def test_format_errors_are_one_line(data, native, tmp_path):
    paths, _ = native
    bad = tmp_path / "bad.trec"
    bad.write_text("1 Q0 100 1 0.5 run\n1 Q0 101 2 0.4\n")
    done = evaluate("--train", str(paths["train"]), "--test", str(paths["test"]), "--recs", str(bad),
                    "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1] == (
        f"receval: error: {bad}: line 2: 5 fields, a TREC run line has 6 (user q0 item rank score tag)")
    assert not (tmp_path / "o").exists()
    done = evaluate("--train", str(paths["train"]), "--test", str(paths["test"]), "--recs", str(paths["recs"]),
                    "--columns", "usr=x", "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "unknown column 'usr'" in done.stderr and "Traceback" not in done.stderr


def test_recbole_type_suffixes_and_line_numbers_of_headerless_files(tmp_path):
    atomic = tmp_path / "ml.inter.tsv"
    atomic.write_text("user_id:token\titem_id:token\trating:float\n1\t10\t5\n2\t11\t4\n")
    assert schema.read_test(atomic).to_dict("list") == {"user": ["1", "2"], "item": ["10", "11"], "rating": [5.0, 4.0]}
    headerless = tmp_path / "test.tsv"
    headerless.write_text("1\t10\t5\n2\t11\tx\n")
    with pytest.raises(InputError, match=r"column 'rating', row 2 \(line 2\): non-numeric value 'x'"):
        schema.read_test(headerless)
    with pytest.raises(ConfigError, match="^columns 'user'"):  # the CLI shows --columns
        formats.parse_columns("user")


def test_config_table_takes_the_same_mapping(tmp_path):
    from receval.config import TableConfig
    from receval.data.loaders import load_table

    path = tmp_path / "ratings.csv"
    pd.DataFrame({"userId": [1, 1, 2], "movieId": [10, 11, 10], "stars": [5, 3, 4]}).to_csv(path, index=False)
    table = TableConfig(path=str(path), columns={"user": "userId", "item": "movieId", "rating": "stars"})
    assert (table.user, table.item, table.rating) == ("userId", "movieId", "stars")
    mapped = load_table(table.path, user=table.user, item=table.item, rating=table.rating)
    recognised = load_table(path, rating="stars")  # userId and movieId are common names
    assert mapped.ratings.to_dict("list") == recognised.ratings.to_dict("list") == {
        "user": ["1", "1", "2"], "item": ["10", "11", "10"], "rating": [5.0, 3.0, 4.0]}  # CSV ids: text
    with pytest.raises(ValueError, match="unknown column 'usr'"):
        TableConfig(path=str(path), columns={"usr": "userId"})
