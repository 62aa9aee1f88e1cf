"""Pipeline steps, run configuration and step commands on a small synthetic dataset in a LocalStore.

Expected values come from independent computations: the metrics engine run once over all users
(no shards, no merge) for the sharded pipeline's results, the recommender called directly for the
predict step's lists, and hand-worked examples for the layout and implicit relevance grades.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from receval.cli import main
from receval.config import RunConfig, flag_overrides, load_config
from receval.errors import ConfigError, InputError, StoreError
from receval.metrics.engine import evaluate
from receval.metrics.sharding import Shard
from receval.pipeline import layout, steps
from receval.pipeline.local import run_local
from receval.recommenders import make
from receval.storage.local import LocalStore

SMALL = {
    "dataset": {"name": "synthetic",
                "synthetic": {"n_users": 120, "n_items": 90, "n_features": 8, "interactions_per_user": 15}},
    "algorithms": ["pop", "ub", "rnd"],
    "evaluation": {"cutoffs": [5, 10]},
    "shards": 3,
}


def small_config(**changes) -> RunConfig:
    return RunConfig.from_mapping({**SMALL, **changes})


@pytest.fixture()
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[LocalStore, str, RunConfig, list[dict]]:
    """One complete small run (every step called in this process), shared by read-only tests."""
    store = LocalStore(tmp_path_factory.mktemp("finished"))
    config = small_config()
    result = run_local(config, store.uri, run_id="small", workers=1)
    return store, "small", config, result.records


def cli(*argv: str) -> None:
    """Run a receval command in this process; it must succeed (typer exits 0 at the end)."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code in (0, None)


def metric_values(records: list[dict]) -> dict[tuple, float | None]:
    return {(r["algorithm"], r["key"]): r["value"] for r in records if r.get("kind") == "metric"}


# ------------------------------------------------------------------------------------------------ layout


def test_layout_keys_follow_the_documented_run_folder():
    # docs/run-layout.md, written out by hand
    shard = Shard(3, 8)
    assert layout.run_json_key("r1") == "runs/r1/run.json"
    assert layout.bucket_key("r1", "train", shard, Shard(0, 2)) == \
        "runs/r1/dataset/train/shard-00003-of-00008/part-00000-of-00002.parquet"
    assert layout.statistics_prefix("r1") == "runs/r1/dataset/statistics"
    assert layout.prepare_part_prefix("r1", Shard(1, 2)) == "runs/r1/dataset/parts/part-00001-of-00002"
    assert layout.model_prefix("r1", "mf") == "runs/r1/models/mf"
    assert layout.recs_key("r1", "mf", shard) == "runs/r1/recs/mf/shard-00003-of-00008.parquet"
    assert layout.recs_done_key("r1", "mf", shard) == "runs/r1/recs/mf/shard-00003-of-00008.parquet.done"
    assert layout.metrics_shard_prefix("r1", "mf", shard) == "runs/r1/metrics/mf/shard-00003-of-00008"
    assert layout.metrics_prefix("r1", "mf") == "runs/r1/metrics/mf"
    assert layout.summary_key("r1") == "runs/r1/summary.json"
    assert layout.parse_shard_name("shard-00003-of-00008") == shard
    assert layout.parse_shard_name("summary.json") is None


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "-lead", "a b", "x" * 129])
def test_layout_refuses_run_ids_that_are_not_one_safe_segment(bad):
    with pytest.raises(ConfigError, match="run id"):
        layout.run_prefix(bad)


# ------------------------------------------------------------------------------------------------ config


def test_default_config_is_seven_algorithms_on_synthetic_data_at_10_and_50():
    config = RunConfig()
    assert config.dataset.name == "synthetic"
    assert config.labels == ["rnd", "pop", "avg", "ub", "ib", "cb", "mf"]
    assert config.evaluation.cutoffs == (10, 50)
    assert config.recommend.k == 50  # follows the largest cutoff
    assert config.shards == 4
    # the master seed reaches every unset seed
    seeded = RunConfig.from_mapping({"seed": 7})
    assert seeded.split.seed == 7 and seeded.dataset.synthetic.seed == 7
    assert seeded.algorithm("mf").params["seed"] == 7 and seeded.algorithm("rnd").params["seed"] == 7


def test_config_file_with_flag_overrides(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "dataset: {name: ml-100k, data_dir: /nowhere}\n"
        "algorithms: [pop, {name: ub, label: ub-20, params: {neighbours: 20}}]\n"
        "recommend: {k: 20}\n"
        "evaluation: {cutoffs: [20], threshold: 3.5}\n"
    )
    config = load_config(path, flag_overrides(data_dir="/data", cutoffs=[10, 50], shards=2))
    assert config.dataset.name == "ml-100k" and config.dataset.data_dir == "/data"
    assert config.labels == ["pop", "ub-20"] and config.algorithm("ub-20").params == {"neighbours": 20}
    assert config.evaluation.cutoffs == (10, 50) and config.evaluation.threshold == 3.5
    assert config.recommend.k == 50  # the file's k=20 would be too short for the new cutoff 50
    assert config.shards == 2


@pytest.mark.parametrize(
    "document, expected",
    [
        ("evaluation: {cutof: [10]}", "unknown key 'evaluation.cutof' (allowed: cutoffs"),
        ("dataset: {name: ml-99}", "'dataset.name' = 'ml-99'"),
        ("algorithms: [pop, nope]", "'algorithms[1]': unknown algorithm 'nope'"),
        ("algorithms: [{name: ub, params: {k: 3}}]", "unknown parameter 'k' (known: neighbours)"),
        ("recommend: {k: 5}", "recommend.k = 5 is below the largest cutoff 50"),
        ("shards: 0", "'shards'"),
        ("[1, 2]", "expected a mapping"),
        ("dataset: {name: [", "not valid YAML"),
    ],
)
def test_bad_config_is_one_config_error_naming_the_key(tmp_path: Path, document, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(document + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message and "\n" not in message and str(path) in message


def test_cli_bad_config_key_prints_one_line_and_exits_2(tmp_path: Path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("shard: 4\n")
    with pytest.raises(SystemExit) as info:
        main(["run", "--config", str(path), "--store", str(tmp_path / "s")])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"receval: error: config {path}: unknown key 'shard' (allowed: dataset, split, algorithms, "
                   f"recommend, evaluation, shards, seed, gate)"]
    assert not (tmp_path / "s").exists()  # nothing written before the configuration is valid


# ------------------------------------------------------------------------------------------------ implicit


def test_implicit_grades_are_the_users_play_count_quintiles():
    # user 1 plays five artists 10..50 times: F = 0.2, 0.4, ..., 1.0, so grades 1..5.
    # user 2 plays four artists 5, 5, 1, 1 times: F(1) = 2/4 → ceil(2.5) = 3, F(5) = 4/4 → 5.
    ratings = pd.DataFrame({"user": [1] * 5 + [2] * 4, "item": [1, 2, 3, 4, 5, 1, 2, 3, 4],
                            "rating": [10.0, 20, 30, 40, 50, 5, 5, 1, 1]})
    test = ratings.iloc[[0, 2, 4, 5, 7]]  # grades come from all of a user's plays, not from the test alone
    graded = steps.implicit_grades(ratings, test)
    assert graded["rating"].tolist() == [1.0, 3.0, 5.0, 5.0, 3.0]
    assert graded[["user", "item"]].values.tolist() == test[["user", "item"]].values.tolist()


# ------------------------------------------------------------------------------------------------ steps


def test_sharded_pipeline_equals_one_pass_of_the_engine_over_all_users(finished):
    store, run_id, config, records = finished
    train = steps.read_dataset(store, run_id, "train")
    test = steps.read_dataset(store, run_id, "test")
    features = steps.read_statistics(store, run_id).features
    users = np.sort(test["user"].unique())
    for label in config.labels:
        algo = config.algorithm(label)
        # the lists, computed directly by the recommender for every test user at once
        direct = make(algo.name, **algo.params).fit(train, features).recommend(users, 10)
        shards = [store.read_parquet(layout.recs_key(run_id, label, Shard(i, 3))) for i in range(3)]
        sharded = pd.concat(shards).sort_values(["user", "rank"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(sharded, direct.sort_values(["user", "rank"]).reset_index(drop=True))
        # the metrics, one engine pass over all users (no shard, no merge)
        expected = evaluate(train, test, direct, features, config.evaluation.to_engine()).summary()
        got = [r for r in records if r["algorithm"] == label]
        assert len(got) == len(expected)
        for mine, theirs in zip(got, expected):
            assert (mine["metric"], mine.get("key"), mine["cutoff"]) == (theirs["metric"], theirs.get("key"), theirs["cutoff"])
            if theirs["value"] is None:
                assert mine["value"] is None
            else:
                assert math.isclose(mine["value"], theirs["value"], rel_tol=0, abs_tol=1e-12), (label, theirs)


def test_finished_run_is_complete_with_its_summary_and_markers(finished):
    from receval.results.read import read_run_info

    store, run_id, config, records = finished
    meta = store.read_json(layout.run_json_key(run_id))
    assert meta["status"] == "complete" and meta["finished"] >= meta["created"]
    assert set(meta["versions"]) >= {"receval", "python", "numpy", "pandas"}
    assert meta["config"] == config.to_dict() and meta["algorithms"] == ["pop", "ub", "rnd"]
    assert meta["dataset"]["test_users"] == steps.read_dataset(store, run_id, "test")["user"].nunique()
    assert store.read_json(layout.summary_key(run_id)) == records
    assert {r["algorithm"] for r in records} == {"pop", "ub", "rnd"}
    summary = store.read_parquet(layout.summary_parquet_key(run_id))
    assert len(summary) == len(records)
    for label in config.labels:
        assert store.is_complete(layout.metrics_prefix(run_id, label))
        algo_summary = store.read_json(layout.metrics_prefix(run_id, label) + "/summary.json")
        assert algo_summary == [r for r in records if r["algorithm"] == label]
    # the run-level marker is the last object written
    root = Path(store.uri)
    marker_time = (root / layout.run_marker_key(run_id)).stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= marker_time for p in (root / layout.run_prefix(run_id)).rglob("*") if p.is_file())
    assert read_run_info(store, run_id).status == "complete"


def prepared(store: LocalStore, run_id: str = "r", **changes) -> RunConfig:
    config = small_config(**changes)
    steps.prepare_step(store, run_id, config)
    return config


def test_prepare_writes_the_split_and_keeps_its_creation_time_on_retry(store):
    config = prepared(store)
    meta = store.read_json(layout.run_json_key("r"))
    train = steps.read_dataset(store, "r", "train")
    test = steps.read_dataset(store, "r", "test")
    assert list(train.columns) == ["user", "item", "rating"] and list(test.columns) == ["user", "item", "rating"]
    assert meta["status"] == "running" and meta["dataset"]["train"] == len(train)
    # the split partitions the generated ratings
    from receval.data.synthetic import synthetic_dataset

    ratings = synthetic_dataset(**config.dataset.synthetic.model_dump())
    assert len(train) + len(test) == len(ratings.ratings)
    steps.prepare_step(store, "r", config)  # published: a no-op
    assert store.read_json(layout.run_json_key("r"))["created"] == meta["created"]


def test_steps_are_idempotent_and_force_recomputes(store):
    prepared(store)
    model_file = Path(store.uri) / layout.model_prefix("r", "ub") / "model.json"
    assert steps.train_step(store, "r", "ub") is True
    first = model_file.stat().st_mtime_ns
    time.sleep(0.01)
    assert steps.train_step(store, "r", "ub") is False
    assert model_file.stat().st_mtime_ns == first
    assert steps.train_step(store, "r", "ub", force=True) is True
    assert model_file.stat().st_mtime_ns > first

    shard = Shard(1, 3)
    assert steps.predict_step(store, "r", "ub", shard) is True
    recs = store.read_parquet(layout.recs_key("r", "ub", shard))
    assert steps.predict_step(store, "r", "ub", shard) is False
    assert steps.evaluate_step(store, "r", "ub", shard) is True
    partial = Path(store.uri) / layout.metrics_shard_prefix("r", "ub", shard) / "partial.json"
    stamp = partial.stat().st_mtime_ns
    assert steps.evaluate_step(store, "r", "ub", shard) is False and partial.stat().st_mtime_ns == stamp
    assert steps.evaluate_step(store, "r", "ub", shard, force=True) is True and partial.stat().st_mtime_ns > stamp
    # the shard holds exactly the test users that hash to it, each with a full list
    test_users = steps.read_dataset(store, "r", "test")["user"].unique()
    assert set(recs["user"]) == set(test_users[shard.mask(test_users)])
    assert (recs.groupby("user")["rank"].max() == 10).all()


def test_steps_refuse_missing_inputs_by_name(store):
    with pytest.raises(InputError, match="no such run"):
        steps.train_step(store, "r", "pop")
    prepared(store)
    with pytest.raises(StoreError, match="models/pop"):
        steps.predict_step(store, "r", "pop", Shard(0, 3))
    steps.train_step(store, "r", "pop")
    with pytest.raises(InputError, match=r"shard-00002-of-00003\.parquet.*no \.done marker"):
        steps.evaluate_step(store, "r", "pop", Shard(2, 3))
    with pytest.raises(ConfigError, match="unknown algorithm 'nope'"):
        steps.train_step(store, "r", "nope")


def test_aggregate_refuses_a_missing_or_unfinished_shard_by_name(store):
    prepared(store)
    steps.train_step(store, "r", "pop")
    for i in (0, 2):  # shard 1 never ran
        steps.predict_step(store, "r", "pop", Shard(i, 3))
        steps.evaluate_step(store, "r", "pop", Shard(i, 3))
    with pytest.raises(InputError, match=r"metrics/pop/shard-00001-of-00003: no partial state"):
        steps.aggregate_step(store, "r")
    assert not store.exists(layout.run_marker_key("r"))
    steps.predict_step(store, "r", "pop", Shard(1, 3))
    steps.evaluate_step(store, "r", "pop", Shard(1, 3))
    store.delete(layout.metrics_shard_prefix("r", "pop", Shard(1, 3)) + "/_SUCCESS")  # as if killed before it
    with pytest.raises(InputError, match=r"shard-00001-of-00003: unfinished shard output"):
        steps.aggregate_step(store, "r")
    steps.evaluate_step(store, "r", "pop", Shard(1, 3))
    records = steps.aggregate_step(store, "r")  # algorithms and shard count read from the folder
    assert {r["algorithm"] for r in records} == {"pop"}
    assert store.read_json(layout.run_json_key("r"))["status"] == "complete"
    assert steps.aggregate_step(store, "r") == records  # a complete run: no-op


def test_mark_failed_records_the_reason_but_leaves_a_complete_run(store, finished):
    prepared(store)
    meta = steps.mark_failed_step(store, "r", "workflow w ended Failed")
    assert meta["status"] == "failed" and meta["failure"] == "workflow w ended Failed" and meta["finished"]
    assert store.read_json(layout.run_json_key("r"))["status"] == "failed"
    steps.mark_failed_step(store, "never-prepared", "")
    assert store.read_json(layout.run_json_key("never-prepared"))["status"] == "failed"
    done_store, run_id, *_ = finished
    assert steps.mark_failed_step(done_store, run_id, "late")["status"] == "complete"


def test_run_local_records_a_failure_in_run_json(store):
    config = small_config(algorithms=["cb"], dataset={"name": "table", "table": {"path": "missing.csv"}})
    with pytest.raises(InputError, match="missing.csv"):
        run_local(config, store.uri, run_id="broken", workers=1)
    meta = store.read_json(layout.run_json_key("broken"))
    assert meta["status"] == "failed" and "missing.csv" in meta["failure"]


def test_run_local_refuses_to_resume_a_run_with_another_configuration(finished):
    store, run_id, config, records = finished
    again = run_local(config, store.uri, run_id=run_id, workers=1)
    assert again.records == records  # same configuration: resumed, nothing recomputed
    with pytest.raises(ConfigError, match="another configuration"):
        run_local(small_config(shards=2), store.uri, run_id=run_id, workers=1)


def test_run_local_reports_progress_through_the_callback_it_is_given(finished):
    store, run_id, config, _ = finished
    calls: list[tuple[str, int, int]] = []
    run_local(config, store.uri, run_id=run_id, workers=1, progress=lambda *call: calls.append(call))
    tasks = {"train": len(config.labels), "predict": len(config.labels) * config.shards,
             "evaluate": len(config.labels) * config.shards}
    for step, total in tasks.items():
        mine = [c for c in calls if c[0] == step]
        assert mine == [(step, done, total) for done in range(total + 1)]
    assert {c[0] for c in calls} == set(tasks)


# ------------------------------------------------------------------------------------------------ commands


def test_step_commands_with_the_flags_of_the_argo_templates(tmp_path: Path, capsys):
    store = str(tmp_path / "s")
    config = tmp_path / "small.yaml"
    config.write_text(json.dumps(SMALL))  # JSON is YAML
    common = ["--store", store, "--run-id", "c1"]
    cli("prepare", *common, "--config", str(config))
    cli("train", *common, "--algorithm", "pop")
    for i in range(3):
        cli("predict", *common, "--algorithm", "pop", "--shard", f"{i}/3")
        cli("evaluate", *common, "--algorithm", "pop", "--shard", f"{i}/3")
    cli("aggregate", *common)
    err = capsys.readouterr().err
    assert "receval: predict pop shard 2/3:" in err and "receval: aggregate c1: 1 algorithms" in err
    summary = json.loads((tmp_path / "s" / "runs" / "c1" / "summary.json").read_text())
    assert {r["algorithm"] for r in summary} == {"pop"}
    cli("mark-failed", *common, "--reason", "late")  # complete: left alone
    assert "mark-failed c1: the run is complete, left as it is" in capsys.readouterr().err
    assert json.loads((tmp_path / "s" / "runs" / "c1" / "run.json").read_text())["status"] == "complete"
    with pytest.raises(SystemExit) as info:
        main(["predict", *common, "--algorithm", "pop", "--shard", "3/3"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "receval: error: --shard 3/3: the index must be in 0..2 (shards are numbered from 0)"]


def test_prepare_command_takes_cutoffs_from_the_environment_like_the_argo_template(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RECEVAL_CUTOFFS", "5,20")
    cli("prepare", "--store", str(tmp_path), "--run-id", "e1", "--dataset", "synthetic")
    meta = json.loads((tmp_path / "runs" / "e1" / "run.json").read_text())
    assert meta["cutoffs"] == [5, 20] and meta["config"]["recommend"]["k"] == 20


def test_a_catalog_smaller_than_the_recommended_items_is_refused_at_aggregate(tmp_path: Path, capsys):
    """Gini over a catalogue of 5 items when the lists recommend dozens is no Gini: `receval evaluate`
    refuses it from the recs file, the pipeline once the shards are merged (no shard sees them all)."""
    config = tmp_path / "small.yaml"
    config.write_text(json.dumps({**SMALL, "algorithms": ["rnd"], "evaluation": {"cutoffs": [5], "catalog": 5}}))
    with pytest.raises(SystemExit) as info:
        main(["run", "--store", str(tmp_path / "s"), "--run-id", "cat", "--config", str(config), "--workers", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2
    assert "evaluation.catalog 5 is smaller than the" in err[-1] and "rnd" in err[-1], err
    assert not (tmp_path / "s" / "runs" / "cat" / "summary.json").exists()
