"""``receval tune``: a grid on a validation split of the run's train set, never its test set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from receval.config import RunConfig
from receval.errors import ConfigError
from receval.experiments.tune import grid_points, tune, tuning_split


def _config(datasets_dir: Path) -> RunConfig:
    return RunConfig.from_mapping({"dataset": {"name": "ml-100k", "data_dir": str(datasets_dir)},
                                   "evaluation": {"cutoffs": [10]}})


def _pairs(frame: pd.DataFrame) -> set[tuple]:
    return set(zip(frame["user"], frame["item"]))


def test_chosen_mf_parameters_beat_the_defaults_on_validation_ndcg(datasets_dir: Path):
    # few factors and sweeps: fast, and on 943 users 50 factors overfit what 10 capture
    result = tune(_config(datasets_dir), "mf", {"factors": [10, 50], "iterations": [5]}, cutoff=10)
    assert result.key.startswith("ndcg") and result.key.endswith("@10")
    assert list(result.table["factors"]) == [10, 50]
    assert result.best == result.table.drop(columns=["value", "seconds"]).iloc[int(result.table["value"].argmax())].to_dict()
    assert result.best_value == result.table["value"].max()
    assert result.best_value > result.default_value
    assert result.chosen_params["factors"] == result.best["factors"] and result.chosen_params["seed"] == 0


def test_validation_is_carved_from_the_runs_train_set_only(tmp_path: Path, datasets_dir: Path):
    from receval.pipeline.steps import load_configured_dataset, prepare_step, read_dataset
    from receval.storage import open_store

    config = _config(datasets_dir)
    store = open_store(str(tmp_path))
    prepare_step(store, "r1", config)
    train = read_dataset(store, "r1", "train")  # every train bucket (docs/run-layout.md)
    test = read_dataset(store, "r1", "test")
    fit, validation = tuning_split(config, load_configured_dataset(config.dataset))
    assert _pairs(fit) | _pairs(validation) == _pairs(train)
    assert not _pairs(fit) & _pairs(validation)
    assert not (_pairs(fit) | _pairs(validation)) & _pairs(test)
    # every validation user keeps some ratings to be fitted on
    assert set(validation["user"]) <= set(fit["user"])


def test_grid_points_are_every_combination_in_order():
    assert grid_points({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    with pytest.raises(ConfigError, match="'a' needs a non-empty list"):
        grid_points({"a": []})


def _receval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "receval", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


def test_cli_writes_the_grid_and_the_chosen_point(tmp_path: Path, datasets_dir: Path):
    out = tmp_path / "ub.json"
    res = _receval("tune", "--dataset", "ml-100k", "--data-dir", str(datasets_dir), "--algorithm", "ub",
                   "--grid", "neighbours=20,60", "--cutoff", "10", "--out", str(out))
    assert res.returncode == 0, res.stderr
    written = json.loads(out.read_text())
    values = {row["neighbours"]: row["value"] for row in written["grid"]}
    assert written["best"] == {"neighbours": max(values, key=values.get)}
    assert written["chosen_params"] == {"neighbours": written["best"]["neighbours"]}
    assert f'"params": {{"neighbours": {written["best"]["neighbours"]}}}' in res.stdout
    assert "<- chosen" in res.stdout


@pytest.mark.parametrize("grid, message", [
    ("neighbors=20", "unknown parameter 'neighbors'"),
    ("neighbours", "expected NAME=V1,V2"),
    ("neighbours=0", "neighbours = 0"),
])
def test_cli_bad_grid_is_one_line_exit_2(datasets_dir: Path, grid: str, message: str):
    res = _receval("tune", "--dataset", "ml-100k", "--data-dir", str(datasets_dir), "--algorithm", "ub", "--grid", grid)
    assert res.returncode == 2
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
