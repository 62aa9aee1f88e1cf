"""LocalStore: atomic writes, listing, publish with the marker last, one-line errors."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pandas as pd
import pytest

from receval.errors import StoreError
from receval.storage import MARKER, join, open_store
from receval.storage.local import LocalStore


def test_open_store_picks_local_for_paths_and_file_uris(tmp_path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    store = open_store(f"file://{tmp_path}")
    store.write_bytes("a/b.txt", b"x")
    assert (tmp_path / "a" / "b.txt").read_bytes() == b"x"


def test_join_ignores_empty_parts_and_stray_slashes() -> None:
    assert join("runs/", "/r1/", "", "metrics") == "runs/r1/metrics"


def test_round_trips(tmp_path) -> None:
    store = LocalStore(tmp_path)
    store.write_json("run.json", {"status": "running"})
    frame = pd.DataFrame({"user": ["u1", "u2"], "item": [1, 2], "rating": [4.0, 5.0]})
    store.write_parquet("dataset/train.parquet", frame)
    assert store.read_json("run.json") == {"status": "running"}
    pd.testing.assert_frame_equal(store.read_parquet("dataset/train.parquet"), frame)
    pd.testing.assert_frame_equal(store.read_parquet("dataset/train.parquet", columns=["item"]), frame[["item"]])


def test_missing_key_is_one_line_error_naming_the_path(tmp_path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(StoreError) as info:
        store.read_bytes("metrics/summary.json")
    assert str(info.value) == f"{tmp_path / 'metrics' / 'summary.json'}: not found"
    assert not store.exists("metrics/summary.json")
    store.delete("metrics/summary.json")  # deleting what is not there is fine


def test_read_if_exists_is_none_exactly_where_exists_is_false(tmp_path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("recs", b"a file, not a folder")
    store.write_bytes("metrics/pop/partial.json", b"{}")
    assert store.read_if_exists("recs") == b"a file, not a folder"
    for key in ("metrics/summary.json", "recs/x.parquet"):  # absent; under a file, not a folder
        assert not store.exists(key)
        assert store.read_if_exists(key) is None
    assert store.read_json_if_exists("metrics/pop/partial.json") == {}
    with pytest.raises(StoreError, match=r"metrics/pop: is a folder, not a file"):
        store.read_if_exists("metrics/pop")


def test_write_where_a_file_blocks_the_folder_is_a_store_error(tmp_path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("recs", b"a file, not a folder")
    with pytest.raises(StoreError, match=r"recs/x\.parquet: cannot be written"):
        store.write_bytes("recs/x.parquet", b"data")
    assert store.read_bytes("recs") == b"a file, not a folder"


def test_writes_are_atomic_for_a_concurrent_reader(tmp_path) -> None:
    """A reader polling while a writer replaces a 4 MiB object sees only whole versions.

    An in-place write (truncate, then write) would let the reader see an empty or partial file
    at some point during 40 rewrites; rename-based writes never can.
    """
    store = LocalStore(tmp_path)
    versions = [bytes([v]) * (4 * 1024 * 1024) for v in (1, 2)]
    store.write_bytes("model.bin", versions[0])
    seen_bad: list[int] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            data = store.read_bytes("model.bin")
            if data not in versions:
                seen_bad.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(40):
            store.write_bytes("model.bin", versions[i % 2])
    finally:
        done.set()
        thread.join()
    assert seen_bad == []
    assert os.listdir(tmp_path) == ["model.bin"]  # no temporary file left behind


def test_list_is_recursive_sorted_and_skips_unfinished_writes(tmp_path) -> None:
    store = LocalStore(tmp_path)
    for key in ("b", "a/y/z", "ab/w", "a/x"):
        store.write_bytes(key, b"")
    # What another process's unfinished write looks like (see LocalStore.write_bytes).
    (tmp_path / "a" / ".x.123.tmp").write_bytes(b"half")

    assert store.list() == ["a/x", "a/y/z", "ab/w", "b"]
    assert store.list("a") == ["a/x", "a/y/z"]
    assert store.list("b") == ["b"]
    assert store.list("missing") == []
    assert store.list_dirs() == ["a", "ab"]
    store.delete_prefix("a")
    assert store.list() == ["ab/w", "b"]


def test_publish_writes_the_marker_last(tmp_path) -> None:
    store = LocalStore(tmp_path)
    store.publish("dataset", {"train.parquet": b"t", "test.parquet": b"s"}, marker={"rows": 2})
    assert store.is_complete("dataset")
    assert store.marker("dataset") == {"rows": 2}
    marker_time = (tmp_path / "dataset" / MARKER).stat().st_mtime_ns
    for name in ("train.parquet", "test.parquet"):
        assert (tmp_path / "dataset" / name).stat().st_mtime_ns <= marker_time


def test_publish_interrupted_midway_keeps_the_previous_result(tmp_path) -> None:
    store = LocalStore(tmp_path)
    store.publish("dataset", {"train.parquet": b"old"}, marker={"v": 1})

    def objects() -> Iterator[tuple[str, bytes]]:
        yield "train.parquet", b"new"
        raise RuntimeError("worker killed")

    class Interrupted(dict):
        def items(self):  # type: ignore[override]
            return objects()

    with pytest.raises(RuntimeError, match="worker killed"):
        store.publish("dataset", Interrupted(), marker={"v": 2})
    # written aside, never swapped in: the previous result is whole and still marked
    assert store.marker("dataset") == {"v": 1}
    assert store.read_bytes("dataset/train.parquet") == b"old"
    assert sorted(p.name for p in (tmp_path / "dataset").iterdir()) == [MARKER, "train.parquet"]
