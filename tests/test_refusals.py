"""Never a wrong number with exit 0: every rule of docs/refusals.md, as a user meets it.

Each test gives receval an input that used to produce a plausible result (or a traceback, or a
hang) and checks the refusal: exit 2, one line naming the file, the column or the flag. Expected
values of the accepted cases are worked out by hand in the comments.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from receval.cli import main
from receval.config import load_config
from receval.errors import ConfigError
from receval.storage.local import LocalStore


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run a receval command in this process: (exit code, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code if isinstance(info.value.code, int) else (0 if info.value.code is None else 1)
    return code, capsys.readouterr().err


def refused(capsys, *argv: str, naming: tuple[str, ...] = ()) -> str:
    code, err = cli(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("receval: error: ") and "Traceback" not in err, err
    for word in naming:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def write(path: Path, frame: pd.DataFrame) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    """Users 1 and 2; each test item is rated 5 and recommended at rank 1 (precision@1 = 1)."""
    return {
        "train": write(tmp_path / "train.csv", pd.DataFrame({"user": [1, 2], "item": [10, 11], "rating": [4, 4]})),
        "test": write(tmp_path / "test.csv", pd.DataFrame({"user": [1, 2], "item": [12, 13], "rating": [5, 5]})),
        "recs": write(tmp_path / "recs.csv", pd.DataFrame({"user": [1, 2], "item": [12, 13], "rank": [1, 1]})),
    }


def evaluate_args(f: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["evaluate", "--train", str(f["train"]), "--test", str(f["test"]), "--recs", str(f["recs"]),
            "--cutoff", "1", "--metric", "precision", "--threads", "1", "--out", str(out), "--format", "json", *extra]


def precision(out: Path) -> tuple[float, int]:
    record = next(r for r in json.loads((out / "summary.json").read_text()) if r.get("metric") == "precision")
    return record["value"], record["users"]


# ------------------------------------------------------------------------------------------------ ids


def test_csv_ids_are_labels_so_007_07_and_7_are_three_users(tmp_path, capsys):
    # three users, each with her own relevant item at rank 1: precision@1 = 1 over 3 users
    # (read as numbers they collapse into one user 7 with three rank-1 items)
    (tmp_path / "train.csv").write_text("user,item,rating\n007,a,4\n07,b,4\n7,c,4\n")
    (tmp_path / "test.csv").write_text("user,item,rating\n007,x,5\n07,y,5\n7,z,5\n")
    (tmp_path / "recs.csv").write_text("user,item,rank\n007,x,1\n07,y,1\n7,z,1\n")
    f = {name: tmp_path / f"{name}.csv" for name in ("train", "test", "recs")}
    code, err = cli(capsys, *evaluate_args(f, tmp_path / "out"))
    assert code == 0, err
    assert precision(tmp_path / "out") == (1.0, 3)
    assert sorted(pd.read_parquet(tmp_path / "out" / "per_user.parquet")["user"]) == ["007", "07", "7"]


def test_parquet_integers_and_csv_text_meet_as_canonical_text(inputs, tmp_path, capsys):
    # test users 1, 2 as Parquet integers; the CSV lists of "1" and "2" are theirs: precision@1 = 1
    write(tmp_path / "test.parquet", pd.DataFrame({"user": [1, 2], "item": [12, 13], "rating": [5.0, 5.0]}))
    code, err = cli(capsys, *evaluate_args({**inputs, "test": tmp_path / "test.parquet"}, tmp_path / "out"))
    assert code == 0, err
    assert precision(tmp_path / "out") == (1.0, 2)
    # but "01" is not 1: no test user has a list, which is refused rather than averaged to 0
    (tmp_path / "recs01.csv").write_text("user,item,rank\n01,12,1\n02,13,1\n")
    refused(capsys, *evaluate_args({**inputs, "test": tmp_path / "test.parquet", "recs": tmp_path / "recs01.csv"},
                                   tmp_path / "out2"), naming=("test.parquet", "recs01.csv"))


def test_integral_float_id_column_is_the_integer(inputs, tmp_path, capsys):
    # users 1.0 and 2.0 are users 1 and 2 of the CSV lists: precision@1 = 1 (not 0 for every user)
    write(tmp_path / "test.parquet", pd.DataFrame({"user": [1.0, 2.0], "item": [12, 13], "rating": [5.0, 5.0]}))
    code, err = cli(capsys, *evaluate_args({**inputs, "test": tmp_path / "test.parquet"}, tmp_path / "out"))
    assert code == 0, err
    assert precision(tmp_path / "out") == (1.0, 2)


@pytest.mark.parametrize(("column", "what"), [
    ([1.5, 2.0], "float column"),
    ([[1, 2], [3]], "lists"),
    ([{"a": 1}, {"a": 2}], "structs"),
    (pd.to_datetime(["2024-01-01", "2024-01-02"]), "dates or times"),
    ([b"\x01", b"\x02"], "binary values"),
])
def test_id_columns_that_are_not_labels_are_refused(inputs, tmp_path, capsys, column, what):
    write(tmp_path / "test.parquet", pd.DataFrame({"user": column, "item": [12, 13], "rating": [5.0, 5.0]}))
    refused(capsys, *evaluate_args({**inputs, "test": tmp_path / "test.parquet"}, tmp_path / "out"),
            naming=("test.parquet", "'user'", what))
    assert not (tmp_path / "out").exists()


def test_empty_id_cell_is_refused_with_its_row(inputs, tmp_path, capsys):
    (tmp_path / "test.csv").write_text("user,item,rating\n1,12,5\n,13,5\n")
    refused(capsys, *evaluate_args({**inputs, "test": tmp_path / "test.csv"}, tmp_path / "out"),
            naming=("test.csv", "'user'", "row 2 (line 3)", "empty id"))


# ------------------------------------------------------------------------------------------------ degenerate


@pytest.mark.parametrize(("role", "content", "words"), [
    ("recs", "user,item,rank\n", ("no recommendation lists",)),
    ("recs", "", ("cannot be read",)),
    ("train", "user,item,rating\n", ("train set is empty",)),
    ("recs", "user,item,rank\n8,12,1\n9,13,1\n", ("none of its 2 test users has a recommendation list",)),
])
def test_degenerate_inputs_are_refused_naming_the_file(inputs, tmp_path, capsys, role, content, words):
    bad = tmp_path / f"bad-{role}.csv"
    bad.write_text(content)
    refused(capsys, *evaluate_args({**inputs, role: bad}, tmp_path / "out"), naming=(bad.name, *words))
    assert not (tmp_path / "out").exists()


def test_a_fifo_is_refused_not_read_forever(inputs, tmp_path):
    fifo = tmp_path / "train.csv.fifo"
    os.mkfifo(fifo)
    fifo_csv = tmp_path / "pipe.csv"
    os.symlink(fifo, fifo_csv)
    proc = subprocess.run([sys.executable, "-m", "receval", *evaluate_args({**inputs, "train": fifo_csv},
                                                                           tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a regular file" in proc.stderr and "pipe.csv" in proc.stderr


# ------------------------------------------------------------------------------------------------ parameters


@pytest.mark.parametrize(("flags", "words"), [
    (("--threshold", "nan"), ("--threshold", "finite")),
    (("--threshold", "inf"), ("--threshold", "finite")),
    (("--exp-base", "1.5"), ("--exp-base", "1.5")),
    (("--exp-base", "0"), ("--exp-base",)),
    (("--cutoff", "10000000000"), ("--cutoff", "100000")),
    (("--catalog", "1"), ("--catalog 1", "2 distinct items recommended", "recs.csv")),
])
def test_bad_evaluate_parameters_are_one_line(inputs, tmp_path, capsys, flags, words):
    args = evaluate_args(inputs, tmp_path / "out")
    if flags[0] == "--cutoff":
        args[args.index("--cutoff") + 1] = flags[1]
        flags = ()
    refused(capsys, *args, *flags, naming=words)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("document", "words"), [
    ("evaluation: {threshold: .nan}\n", ("'evaluation.threshold'", "finite")),
    ("evaluation: {exp_base: 1.5}\n", ("'evaluation.exp_base' = 1.5",)),
    ("seed: -1\n", ("'seed' = -1",)),
    ("split: {seed: 1.5}\n", ("'split.seed' = 1.5",)),
    ("algorithms: [{name: mf, params: {seed: -2}}]\n", ("seed", "non-negative")),
    ("shards: true\n", ("'shards' = True",)),
    ("evaluation: {cutoffs: [10, true]}\n", ("'evaluation.cutoffs[1]' = True",)),
    ("evaluation: {cutoffs: [10000000000]}\n", ("'evaluation.cutoffs[0]'", "100000")),
    ("shards: 2\nseed: 1\nshards: 3\n", ("line 3", "'shards' appears twice")),
    ("evaluation:\n  cutoffs: [5]\n  cutoffs: [10]\n", ("'cutoffs' appears twice",)),
])
def test_bad_configuration_is_refused_when_it_is_read(tmp_path, document, words):
    path = tmp_path / "run.yaml"
    path.write_text(document)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_duplicate_json_keys_are_refused(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"shards": 2, "shards": 3}')
    with pytest.raises(ConfigError, match="'shards' appears twice"):
        load_config(path)


# ------------------------------------------------------------------------------------------------ outputs


def test_evaluate_over_a_shard_folder_replaces_it_and_merge_refuses_it(inputs, tmp_path, capsys):
    parts = [tmp_path / "part0", tmp_path / "part1"]
    for i, part in enumerate(parts):
        code, err = cli(capsys, *evaluate_args(inputs, part, "--shard", f"{i}/2"))
        assert code == 0, err
    # a full evaluation written over shard 0's folder replaces the partial state completely ...
    code, err = cli(capsys, *evaluate_args(inputs, parts[0]))
    assert code == 0, err
    assert sorted(p.name for p in parts[0].iterdir()) == ["_SUCCESS", "per_user.parquet", "summary.json",
                                                          "summary.parquet"]
    # ... so that merging it is refused by name, not merged into a wrong precision
    refused(capsys, "merge", str(parts[0]), str(parts[1]), "--out", str(tmp_path / "merged"),
            naming=(str(parts[0]), "not a partial state"))
    assert not (tmp_path / "merged" / "summary.json").exists()
    # and a shard written over a full evaluation removes the summary
    code, err = cli(capsys, *evaluate_args(inputs, parts[0], "--shard", "0/2"))
    assert code == 0, err
    assert not (parts[0] / "summary.json").exists() and (parts[0] / "partial.json").exists()


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_failed_overwrite_keeps_the_previous_result(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = cli(capsys, *evaluate_args(inputs, out))
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    # the disk "fills up" during the re-evaluation (every file beyond 600 bytes fails to be written)
    proc = subprocess.run([sys.executable, "-m", "receval", *evaluate_args(inputs, out)], capture_output=True,
                          text=True, preexec_fn=_limit_file_size(600))
    assert proc.returncode == 2 and "cannot be written" in proc.stderr, proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # whole, marked, no leftovers


def test_a_tampered_model_object_is_one_line_naming_it(tmp_path, capsys):
    store = str(tmp_path / "store")
    code, err = cli(capsys, "prepare", "--store", store, "--run-id", "r", "--cutoff", "5")
    assert code == 0, err
    code, err = cli(capsys, "train", "--store", store, "--run-id", "r", "--algorithm", "pop")
    assert code == 0, err
    state = tmp_path / "store" / "runs" / "r" / "models" / "pop" / "state.npz"
    state.write_bytes(b"PK\x03\x04 not really a zip")
    refused(capsys, "predict", "--store", store, "--run-id", "r", "--algorithm", "pop", "--shard", "0/1",
            naming=(str(state), "corrupt or tampered model object"))


# ------------------------------------------------------------------------------------------------ store files


def test_leftover_temp_files_of_a_crashed_writer_are_removed_by_the_next_write(tmp_path):
    store = LocalStore(tmp_path)
    store.write_bytes("runs/r/a.json", b"{}")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    host = socket.gethostname().replace(".", "_").replace("-", "_")
    crashed = tmp_path / "runs" / "r" / f".b.json.{host}-{dead.stdout.strip()}-0badf00d.tmp"
    crashed.write_bytes(b"half")
    live = tmp_path / "runs" / "r" / f".c.json.{host}-{os.getpid()}-0000beef.tmp"  # a writer still at work
    live.write_bytes(b"half")
    old = tmp_path / "runs" / "r" / ".d.json.abc123.tmp"  # an unattributable one, a day and more old
    old.write_bytes(b"half")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    store.write_bytes("runs/r/e.json", b"{}")
    assert not crashed.exists() and not old.exists()
    assert live.exists()
    assert store.list("runs/r") == ["runs/r/a.json", "runs/r/e.json"]


def test_store_files_follow_the_umask(tmp_path):
    code = ("import os, sys; os.umask(0o022); from receval.storage.local import LocalStore; "
            "s = LocalStore(sys.argv[1]); s.write_bytes('a/b.json', b'{}'); s.publish('d', {'e.parquet': b'x'}); "
            "getattr(s, 'create_exclusive', s.write_bytes)('a/c.json', b'{}')")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    modes = {p.relative_to(tmp_path).as_posix(): p.stat().st_mode & 0o777 for p in tmp_path.rglob("*") if p.is_file()}
    assert modes == {"a/b.json": 0o644, "a/c.json": 0o644, "d/e.parquet": 0o644, "d/_SUCCESS": 0o644}
