"""Pre-split part files, the fanned-out prepare and the shard-local run folder (layout 2).

Real files and real `receval` processes: user counts are exact whatever the part layout, any shard
count reads the right buckets, and bad input — a part file with the wrong schema, a bucket holding
another shard's users, a missing bucket, a pair in two part files, a layout-1 folder — is one line,
exit 2, naming the file and row.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from receval.config import RunConfig
from receval.data.synthetic import synthetic_dataset
from receval.errors import InputError
from receval.metrics.engine import evaluate
from receval.metrics.sharding import Shard, shard_of
from receval.metrics.statistics import GlobalStatistics
from receval.pipeline import layout, steps
from receval.pipeline.local import run_local
from receval.storage.local import LocalStore

SYNTHETIC = {"n_users": 400, "n_items": 150, "interactions_per_user": 15}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RECEVAL_"))}
    env.update(extra or {})
    return env


def receval(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "receval", *args], capture_output=True, text=True,
                          env=env or _env(), timeout=240)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("receval: error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def export(folder: Path, train: pd.DataFrame, test: pd.DataFrame, files: int = 4, seed: int = 1) -> dict[str, str]:
    """train and test as shuffled part files (every user's rows spread over several files)."""
    rng = np.random.default_rng(seed)
    for table, rows in (("train", train), ("test", test)):
        (folder / table).mkdir(parents=True, exist_ok=True)
        rows = rows.iloc[rng.permutation(len(rows))].reset_index(drop=True)
        for i, chunk in enumerate(np.array_split(np.arange(len(rows)), files)):
            rows.iloc[chunk].to_parquet(folder / table / f"part-{i:05d}.parquet", index=False)
        (folder / table / "_SUCCESS").write_bytes(b"")
    return {"train": str(folder / "train"), "test": str(folder / "test")}


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    from receval.data.split import split as do_split

    data = synthetic_dataset(**SYNTHETIC, seed=5)
    train, test = do_split(data.ratings, "random", test_fraction=0.2, seed=5)
    cols = ["user", "item", "rating"]
    return train[cols].reset_index(drop=True), test[cols].reset_index(drop=True), data.features


def splits_config(uris: dict[str, str], shards: int = 4, **extra) -> RunConfig:
    return RunConfig.from_mapping({"dataset": {"name": "splits", "splits": uris}, "algorithms": ["pop"],
                                   "evaluation": {"cutoffs": [10]}, "shards": shards, **extra})


# ------------------------------------------------------------------------------------------------ exactness


def test_user_counts_are_exact_when_users_straddle_prepare_parts(tmp_path: Path, split):
    train, test, _ = split
    uris = export(tmp_path / "export", train, test, files=6)
    config = splits_config(uris)
    store = LocalStore(tmp_path / "store")
    for p in range(3):
        steps.prepare_step(store, "r", config, part=Shard(p, 3))
    meta = steps.prepare_step(store, "r", config, finish=True)
    statistics = steps.read_statistics(store, "r")
    assert statistics.n_train_users == train["user"].nunique() == meta["dataset"]["train_users"]
    assert statistics.n_test_users == test["user"].nunique() == meta["dataset"]["test_users"]
    assert meta["dataset"]["users"] == pd.concat([train["user"], test["user"]]).nunique()
    # the same statistics as from the full frames: counts, catalogue, largest rating, digest
    whole = GlobalStatistics.of(train, test)
    np.testing.assert_array_equal(statistics.items, whole.items)
    np.testing.assert_array_equal(statistics.train_interactions, whole.train_interactions)
    assert statistics.max_test_rating == whole.max_test_rating and statistics.digest == whole.digest
    # adding the parts' own distinct counts would overcount: users do straddle the parts here
    parts = [steps._read_statistics(store, layout.part_statistics_prefix("r", Shard(p, 3))) for p in range(3)]
    assert sum(p.n_train_users for p in parts) > whole.n_train_users


def test_every_shard_count_reads_the_right_buckets(tmp_path: Path, split):
    """Buckets of 4: shards 0..5 of 6 (gcd 2), 0..7 of 8 (one bucket each) and 0/1 (all) give the
    engine's one pass over the full frames."""
    train, test, features = split
    store = LocalStore(tmp_path)
    config = RunConfig.from_mapping({"dataset": {"synthetic": {**SYNTHETIC, "seed": 5}}, "algorithms": ["pop"],
                                     "evaluation": {"cutoffs": [10]}, "shards": 4, "seed": 5})
    steps.prepare_step(store, "r", config)
    steps.train_step(store, "r", "pop")
    full_train, full_test = steps.read_dataset(store, "r", "train"), steps.read_dataset(store, "r", "test")
    for count in (1, 6, 8):
        seen = []
        for i in range(count):
            shard = Shard(i, count)
            test_rows = steps.read_bucket(store, "r", "test", shard)
            assert set(test_rows["user"]) == set(full_test["user"][shard.mask(full_test["user"])])
            seen.append(len(test_rows))
            steps.predict_step(store, "r", "pop", shard)
            steps.evaluate_step(store, "r", "pop", shard)
        assert sum(seen) == len(full_test)
    recs = pd.concat([store.read_parquet(layout.recs_key("r", "pop", Shard(0, 1)))])
    expected = evaluate(full_train, full_test, recs, steps.read_statistics(store, "r").features,
                        config.evaluation.to_engine()).summary()
    for count in (1, 6, 8):
        got = steps.aggregate_step(store, "r", algorithms=["pop"], shards=count, force=True)
        assert len(got) == len(expected)
        for mine, theirs in zip(got, expected):
            assert mine["key" if "key" in mine else "metric"] == theirs["key" if "key" in theirs else "metric"]
            if theirs["value"] is None:
                assert mine["value"] is None
            else:
                assert abs(mine["value"] - theirs["value"]) <= 1e-12, (count, theirs)


def test_a_shard_pod_needs_only_its_buckets_the_statistics_its_recs_and_the_model(tmp_path: Path):
    """A store holding only what shard 1/4 needs — run.json, the dataset marker, the global
    statistics, the shard's train and test buckets, the model and (for evaluate) its recs shard —
    runs that shard's predict and evaluate (real processes) to the same lists and values as the
    full run folder: nothing else of the dataset is read."""
    import shutil

    full = prepared_run(tmp_path)
    shard = Shard(1, 4)
    steps.predict_step(full, "r", "pop", shard)
    steps.evaluate_step(full, "r", "pop", shard)
    needed = [layout.run_json_key("r"), f"{layout.dataset_prefix('r')}/_SUCCESS", layout.statistics_prefix("r"),
              layout.bucket_prefix("r", "train", shard), layout.bucket_prefix("r", "test", shard),
              layout.model_prefix("r", "pop")]
    root = tmp_path / "pod"
    for key in needed:
        source, target = Path(full.root) / key, root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, target)
    pod = LocalStore(root)
    step = ("--store", str(root), "--run-id", "r", "--algorithm", "pop", "--shard", str(shard))
    done = receval("predict", *step)
    assert done.returncode == 0, done.stderr
    recs = layout.recs_key("r", "pop", shard)
    pd.testing.assert_frame_equal(pod.read_parquet(recs), full.read_parquet(recs))
    done = receval("evaluate", *step)
    assert done.returncode == 0, done.stderr
    partial = layout.metrics_shard_prefix("r", "pop", shard)
    for name in ("per_user.parquet", "exposure.parquet"):
        pd.testing.assert_frame_equal(pod.read_parquet(f"{partial}/{name}"), full.read_parquet(f"{partial}/{name}"))


def test_evaluate_on_files_filters_to_the_shard_before_indexing(split):
    """`receval evaluate --shard` on full frames: the context holds only the shard's users."""
    from receval.metrics.batch import EvaluationContext
    from receval.metrics.engine import _in_shard

    train, test, features = split
    shard = Shard(1, 4)
    local = _in_shard(test, shard)
    assert 0 < len(local) < len(test) and (shard_of(local["user"], 4) == 1).all()
    statistics = GlobalStatistics.of(train, test, features)
    ctx = EvaluationContext.build(statistics, _in_shard(train, shard), local, test.iloc[:0], threshold=4.0,
                                  distance="cosine")
    assert len(ctx.test_users) == local["user"].nunique() and ctx.train.shape[0] == len(ctx.test_users)
    assert ctx.n_train_users == train["user"].nunique() and ctx.scale.r_max == test["rating"].max()


# ------------------------------------------------------------------------------------------------ bad input


def test_a_part_file_with_the_wrong_schema_is_named(tmp_path: Path, split):
    train, test, _ = split
    uris = export(tmp_path / "export", train, test)
    bad = tmp_path / "export" / "train" / "part-00002.parquet"
    pd.read_parquet(bad).rename(columns={"item": "movie"}).to_parquet(bad, index=False)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"dataset": {"name": "splits", "splits": uris}, "algorithms": ["pop"]}))
    args = ("prepare", "--store", str(tmp_path / "store"), "--run-id", "r", "--config", str(config))
    line = one_error_line(receval(*args, "--part", "0/2"))
    assert "part-00002.parquet: missing column 'item' (found: user, movie, rating)" in line
    frame = pd.read_parquet(bad).rename(columns={"movie": "item"})
    frame["rating"] = frame["rating"].astype(str)  # a text column, as some exports write numbers
    frame.loc[4, "rating"] = "five"
    frame.to_parquet(bad, index=False)
    line = one_error_line(receval(*args, "--part", "0/2"))
    assert "part-00002.parquet: column 'rating', row 5: non-numeric value 'five'" in line
    assert receval(*args, "--part", "1/2").returncode == 0  # the other part does not read that file


def test_a_pair_in_two_part_files_is_refused_by_name(tmp_path: Path, split):
    train, test, _ = split
    uris = export(tmp_path / "export", train, test, files=2)
    first = pd.read_parquet(tmp_path / "export" / "test" / "part-00000.parquet")
    second = pd.read_parquet(tmp_path / "export" / "test" / "part-00001.parquet")
    pd.concat([second, first.iloc[[3]]]).to_parquet(tmp_path / "export" / "test" / "part-00001.parquet", index=False)
    store = LocalStore(tmp_path / "store")
    # one prepare reads both files: it refuses
    with pytest.raises(InputError, match=r"part-00001.parquet: row \d+: user .* is also in .*part-00000.parquet"):
        steps.prepare_step(store, "one", splits_config(uris))
    # two parts read one file each: the bucket that holds both copies refuses, naming both objects
    config = splits_config(uris)
    for p in range(2):
        steps.prepare_step(store, "two", config, part=Shard(p, 2))
    steps.prepare_step(store, "two", config, finish=True)
    with pytest.raises(InputError, match=r"part-00001-of-00002.parquet: row \d+: .* is also in .*part-00000-of-00002"):
        steps.read_dataset(store, "two", "test")


def prepared_run(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    config = RunConfig.from_mapping({"dataset": {"synthetic": SYNTHETIC}, "algorithms": ["pop"],
                                     "evaluation": {"cutoffs": [10]}, "shards": 4})
    steps.prepare_step(store, "r", config)
    steps.train_step(store, "r", "pop")
    return store


def test_a_bucket_holding_another_shards_users_is_refused(tmp_path: Path):
    """The buckets are verified once, as they are read; the engine and the model trust them. So
    every step refuses a foreign user by name: predict in the test bucket, evaluate in the train
    bucket, also for a shard count that reads a bucket and keeps part of it (1/8 of 4 buckets)."""
    store = prepared_run(tmp_path)
    step = ("--store", store.uri, "--run-id", "r", "--algorithm", "pop")
    for shard in ("1/4", "1/8"):
        assert receval("predict", *step, "--shard", shard).returncode == 0
    for table, command in (("train", "evaluate"), ("test", "predict")):
        one, zero = (layout.bucket_key("r", table, Shard(i, 4), Shard(0, 1)) for i in (1, 0))
        original, foreign = store.read_parquet(one), store.read_parquet(zero)
        store.write_parquet(one, pd.concat([original, foreign.iloc[:2]], ignore_index=True))
        for shard in ("1/4", "1/8"):
            line = one_error_line(receval(command, *step, "--shard", shard, "--force"))
            assert (f"{one}: column 'user', row {len(original) + 1}: user {foreign['user'].iloc[0]!r} belongs to "
                    f"shard 0/4, not to this bucket's 1/4") in line, (command, shard)
        store.write_parquet(one, original)


def test_a_missing_bucket_is_named(tmp_path: Path):
    store = prepared_run(tmp_path)
    assert receval("predict", "--store", store.uri, "--run-id", "r", "--algorithm", "pop",
                   "--shard", "2/4").returncode == 0
    missing = layout.bucket_key("r", "train", Shard(2, 4), Shard(0, 1))
    store.delete(missing)
    line = one_error_line(receval("evaluate", "--store", store.uri, "--run-id", "r", "--algorithm", "pop",
                                  "--shard", "2/4"))
    assert f"{missing}: missing bucket (train rows of shard 2/4 from prepare part 0/1)" in line


def test_a_layout_1_run_folder_names_its_version(tmp_path: Path):
    store = prepared_run(tmp_path)
    meta = store.read_json(layout.run_json_key("r"))
    store.write_json(layout.run_json_key("r"), {**meta, "layout": 1})
    line = one_error_line(receval("predict", "--store", store.uri, "--run-id", "r", "--algorithm", "pop",
                                  "--shard", "0/4"))
    assert "run.json: run folder of layout 1, this receval reads layout 2" in line


def test_prepare_in_parts_needs_a_splits_dataset(tmp_path: Path):
    line = one_error_line(receval("prepare", "--store", str(tmp_path), "--run-id", "r", "--part", "0/2"))
    assert "--part 0/2: only a dataset of pre-split part files (dataset.name: splits)" in line
    line = one_error_line(receval("prepare", "--store", str(tmp_path), "--run-id", "r", "--finish"))
    assert "no prepare part has run" in line


# ------------------------------------------------------------------------------------------------ s3


def test_part_files_are_read_from_s3_by_glob(rclone_server, tmp_path: Path, split):
    train, test, features = split
    local = export(tmp_path / "export", train, test, files=3)
    bucket = rclone_server.make_bucket()
    client = rclone_server.client()
    for table in ("train", "test"):
        for path in sorted(Path(local[table]).iterdir()):
            # (a non-empty _SUCCESS: after an empty PUT this rclone stalls the next request for 60 s)
            client.put_object(Bucket=bucket, Key=f"exports/{table}/{path.name}", Body=path.read_bytes() or b"ok")
    buf = io.BytesIO()
    features.to_parquet(buf, index=False)
    client.put_object(Bucket=bucket, Key="exports/features.parquet", Body=buf.getvalue())
    uris = {"train": f"s3://{bucket}/exports/train/", "test": f"s3://{bucket}/exports/test/part-*.parquet",
            "features": f"s3://{bucket}/exports/features.parquet"}
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"dataset": {"name": "splits", "splits": uris}, "algorithms": ["pop"],
                                  "evaluation": {"cutoffs": [10]}, "shards": 2}))
    env = _env(rclone_server.env())
    store = f"s3://{bucket}/runs-here"
    for p in range(2):
        result = receval("prepare", "--store", store, "--run-id", "s3", "--config", str(config), "--part", f"{p}/2",
                         env=env)
        assert result.returncode == 0, result.stderr
    result = receval("prepare", "--store", store, "--run-id", "s3", "--config", str(config), "--finish", env=env)
    assert result.returncode == 0, result.stderr
    meta = json.loads(client.get_object(Bucket=bucket, Key="runs-here/runs/s3/run.json")["Body"].read())
    assert meta["dataset"]["train"] == len(train) and meta["dataset"]["test_users"] == test["user"].nunique()
    assert meta["dataset"]["features"] == features["feature"].nunique()


def test_shards_of_different_data_still_refuse_to_merge(tmp_path: Path):
    """The fingerprint comes from the global statistics' digest, not from frames a shard no longer
    holds: shard 1/2 of a run on other data (one rating changed) does not merge with shard 0/2."""
    from receval.pipeline.evaluation import merge_partials

    store = LocalStore(tmp_path)
    base = {"algorithms": ["pop"], "evaluation": {"cutoffs": [10]}, "shards": 2}
    train, test = None, None
    for run, bump in (("a", 0.0), ("b", 1.0)):
        data = synthetic_dataset(**SYNTHETIC, seed=2)
        folder = tmp_path / f"export-{run}"
        from receval.data.split import split as do_split

        train, test = do_split(data.ratings, "random", test_fraction=0.2, seed=2)
        test = test.reset_index(drop=True)
        test.loc[0, "rating"] += bump  # one test rating differs, in one shard only
        uris = export(folder, train[["user", "item", "rating"]], test[["user", "item", "rating"]], files=2)
        config = RunConfig.from_mapping({"dataset": {"name": "splits", "splits": uris}, **base})
        run_local(config, store.uri, run_id=run, workers=1)
    changed = Shard(int(shard_of(test["user"].iloc[[0]], 2)[0]), 2)
    other = Shard(1 - changed.index, 2)
    parts = [(store, layout.metrics_shard_prefix("a", "pop", changed)),
             (store, layout.metrics_shard_prefix("b", "pop", other))]
    with pytest.raises(InputError, match="other data"):
        merge_partials(parts)
