"""Completion markers are written last and are the only proof of a finished step: predict's
``.done`` and the run's ``_SUCCESS``.

The kill test (test_pipeline_e2e.py) stops predict before either write, so neither the order of
the two writes nor the no-op check was exercised: a predict that wrote ``.done`` first, or that
skipped a shard because its parquet existed, passed the suite; so did an aggregate that wrote the
run's ``_SUCCESS`` before its summary (only the final order of a successful run was checked). Here
the writes fail for real (a folder stands where the parquet goes; a store whose volume refuses an
object), and a rerun after losing the marker must recompute.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from receval.cli import main
from receval.config import RunConfig
from receval.errors import InputError, StoreError
from receval.metrics.sharding import Shard
from receval.pipeline import layout, steps
from receval.storage import shown_key
from receval.storage.local import LocalStore

RUN = "markers"
SHARD = Shard(0, 2)
CONFIG = {
    "dataset": {"name": "synthetic",
                "synthetic": {"n_users": 60, "n_items": 40, "n_features": 4, "interactions_per_user": 10}},
    "algorithms": ["pop"],
    "shards": 2,
}


def trained(store: LocalStore) -> None:
    steps.prepare_step(store, RUN, RunConfig.from_mapping(CONFIG))
    steps.train_step(store, RUN, "pop")


class FullVolume(LocalStore):
    """A local store whose volume has no room left for the objects ``refused`` picks (everything
    else, markers included, still fits): the disk-full failure of a real pod."""

    def __init__(self, root, refused):
        super().__init__(root)
        self.refused = refused

    def write_bytes(self, key: str, data: bytes) -> None:
        if self.refused(key):
            raise StoreError(f"{self._path(key)}: cannot be written: No space left on device")
        super().write_bytes(key, data)


def recs_parquet(key: str) -> bool:
    return key.startswith(layout.recs_prefix(RUN, "pop")) and key.endswith(".parquet")


def test_predict_whose_recs_write_fails_leaves_no_done_marker(tmp_path: Path, capsys):
    store = LocalStore(tmp_path / "store")
    trained(store)
    recs_path = Path(store.uri) / layout.recs_key(RUN, "pop", SHARD)
    recs_path.mkdir(parents=True)  # a folder where the parquet goes: the rename onto it fails
    with pytest.raises(SystemExit) as info:
        main(["predict", "--store", store.uri, "--run-id", RUN, "--algorithm", "pop", "--shard", str(SHARD)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("receval: error: ")]
    assert len(errors) == 1 and str(recs_path) in errors[0] and "Traceback" not in err
    assert not store.exists(layout.recs_done_key(RUN, "pop", SHARD))
    with pytest.raises(InputError, match="no .done marker"):
        steps.evaluate_step(store, RUN, "pop", SHARD)
    # with the obstacle gone the same step publishes the shard, marker last
    recs_path.rmdir()
    assert steps.predict_step(store, RUN, "pop", SHARD) is True
    marker = store.read_json(layout.recs_done_key(RUN, "pop", SHARD))
    assert marker["rows"] == len(store.read_parquet(layout.recs_key(RUN, "pop", SHARD))) > 0


def test_forced_predict_whose_recs_write_fails_keeps_no_stale_done_marker(tmp_path: Path):
    # A finished shard recomputed with force on a full volume: the old marker must not survive to
    # vouch for lists the new attempt did not write.
    store = LocalStore(tmp_path / "store")
    trained(store)
    assert steps.predict_step(store, RUN, "pop", SHARD) is True
    full = FullVolume(store.root, recs_parquet)
    with pytest.raises(StoreError, match="No space left on device"):
        steps.predict_step(full, RUN, "pop", SHARD, force=True)
    assert not store.exists(layout.recs_done_key(RUN, "pop", SHARD))


def test_predict_rerun_after_its_done_marker_is_removed_recomputes(tmp_path: Path):
    store = LocalStore(tmp_path / "store")
    trained(store)
    assert steps.predict_step(store, RUN, "pop", SHARD) is True
    recs_key = layout.recs_key(RUN, "pop", SHARD)
    done_key = layout.recs_done_key(RUN, "pop", SHARD)
    full = store.read_parquet(recs_key)
    assert len(full) > 2
    # As if an earlier attempt died after the parquet but before its marker: a truncated parquet
    # and no marker. Only the marker says "finished", so the rerun must redo the shard.
    store.write_parquet(recs_key, full.head(2))
    store.delete(done_key)
    # evaluate trusts the marker, not the parquet's presence
    with pytest.raises(InputError, match="no .done marker"):
        steps.evaluate_step(store, RUN, "pop", SHARD)
    assert steps.predict_step(store, RUN, "pop", SHARD) is True
    again = store.read_parquet(recs_key)
    pd.testing.assert_frame_equal(again, full)
    assert store.read_json(done_key)["rows"] == len(full)
    # and with the marker back, the step is a no-op again
    assert steps.predict_step(store, RUN, "pop", SHARD) is False


def test_aggregate_whose_summary_write_fails_leaves_the_run_incomplete(tmp_path: Path):
    store = LocalStore(tmp_path / "store")
    trained(store)
    for index in range(SHARD.count):
        shard = Shard(index, SHARD.count)
        steps.predict_step(store, RUN, "pop", shard)
        steps.evaluate_step(store, RUN, "pop", shard)
    # the run-level summary.json, written aside (Store.publish) before run.json and _SUCCESS
    full = FullVolume(store.root, lambda key: shown_key(key) == layout.summary_key(RUN))
    with pytest.raises(StoreError, match="No space left on device"):
        steps.aggregate_step(full, RUN)
    assert not store.exists(layout.run_marker_key(RUN))
    assert store.read_json(layout.run_json_key(RUN))["status"] != "complete"
    records = steps.aggregate_step(store, RUN)  # the rerun on a volume with room completes the run
    assert store.exists(layout.run_marker_key(RUN)) and store.read_json(layout.summary_key(RUN)) == records


class CrashDuringSwap(LocalStore):
    """A local store whose process dies while it moves a published folder's objects into place
    (the pod is killed between two renames): the crash ``Store.publish`` must survive unmarked."""

    def __init__(self, root, dies_at):
        super().__init__(root)
        self.dies_at = dies_at

    def rename(self, source: str, target: str, size: int | None = None) -> None:
        if target.endswith(self.dies_at):
            raise StoreError(f"{self._path(target)}: killed while renaming")
        super().rename(source, target, size)


def test_a_publish_that_dies_mid_swap_leaves_the_folder_unmarked(tmp_path: Path):
    store = LocalStore(tmp_path / "store")
    store.publish("out", {"a.json": b"1", "b.json": b"1"}, {"version": 1})
    crashing = CrashDuringSwap(store.root, dies_at="b.json")
    with pytest.raises(StoreError, match="killed while renaming"):
        crashing.publish("out", {"a.json": b"2", "b.json": b"2"}, {"version": 2})
    # a.json is new and b.json old: a reader must not trust that mix, so no marker may stand
    assert store.marker("out") is None
    store.publish("out", {"a.json": b"2", "b.json": b"2"}, {"version": 2})
    assert store.marker("out") == {"version": 2} and store.read_bytes("out/b.json") == b"2"
