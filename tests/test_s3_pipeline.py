"""The whole pipeline against a real S3 server on 127.0.0.1, through the CLI as a user runs it.

``receval run --store s3://bucket/prefix`` (a subprocess with only the server's AWS_* variables),
then ``receval results list/show/compare/report`` read the run back from S3. Expected values are
computed independently from the objects in the bucket (read with boto3, not with receval):
precision@10 from the recommendation lists and the test split, p-values with scipy from the
per-user values. Failures as a user meets them: wrong credentials, a missing bucket, a server that
resets connections, and a ``receval run`` killed with SIGKILL halfway, which must show as partial
and resume to the same values.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from tests.s3_servers import S3Server

# Small but real: 300 users, 200 items, three algorithms (popularity, user- and item-based kNN),
# two user shards, one cutoff. One `receval run` of it takes a few seconds.
CONFIG = {
    "dataset": {"name": "synthetic", "synthetic": {"n_users": 300, "n_items": 200, "interactions_per_user": 20}},
    "algorithms": ["pop", "ub", "ib"],
    "evaluation": {"cutoffs": [10]},
    "shards": 2,
    "seed": 7,
}
ALGORITHMS = CONFIG["algorithms"]
CUTOFF = 10
THRESHOLD = 4.0  # the configuration's default relevance threshold τ (docs/pipeline.md)
PREFIX = "team/receval"
RUN_TIMEOUT = 240


# -- helpers --------------------------------------------------------------------------------------


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any AWS_* / RECEVAL_* setting, plus ``extra``: the child
    sees only the credentials and endpoint the test gives it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RECEVAL_"))}
    env.update(extra or {})
    return env


def receval(*args: str, env: dict[str, str], timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "receval", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The CLI's contract for a user error: exit 2 and exactly one line ``receval: error: ...``."""
    assert result.returncode == 2, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("receval: error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


@dataclass
class Bucket:
    """A bucket on a server, read with plain boto3 (independently of receval's store)."""

    server: S3Server
    name: str

    @property
    def store(self) -> str:
        return f"s3://{self.name}/{PREFIX}"

    def keys(self, prefix: str = "") -> list[str]:
        client, found, token = self.server.client(), [], None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = client.list_objects_v2(Bucket=self.name, Prefix=prefix, **extra)
            found += [o["Key"] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return found
            token = page["NextContinuationToken"]

    def read(self, key: str) -> bytes:
        return self.server.client().get_object(Bucket=self.name, Key=f"{PREFIX}/{key}")["Body"].read()

    def json(self, key: str):
        return json.loads(self.read(key))

    def parquet(self, key: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.read(key)))

    def exists(self, key: str) -> bool:
        return f"{PREFIX}/{key}" in self.keys(f"{PREFIX}/{key}")


def run_receval(bucket: Bucket, run_id: str, config_path: Path, *, endpoint_url: str | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``receval run`` in one process (``--workers 1``: the machine's cores are shared)."""
    return receval(
        "run", "--config", str(config_path), "--store", bucket.store, "--run-id", run_id,
        "--endpoint-url", endpoint_url or bucket.server.endpoint_url, "--workers", "1", "--format", "json",
        env=env if env is not None else clean_env(bucket.server.env()),
    )  # fmt: skip


def results(bucket: Bucket, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command, *rest = args
    return receval(
        "results", command, bucket.store, *rest, "--endpoint-url", bucket.server.endpoint_url,
        env=env if env is not None else clean_env(bucket.server.env()),
    )


def listed(bucket: Bucket) -> dict[str, dict]:
    """``receval results list --format json`` by run id."""
    return {r["run_id"]: r for r in json.loads(ok(results(bucket, "list", "--format", "json")).stdout)}


def keyed(records: list[dict]) -> dict[tuple, float | None]:
    return {(r["algorithm"], r["kind"], r["metric"], r.get("key"), r.get("cutoff")): r["value"] for r in records}


def assert_same_records(a: list[dict], b: list[dict]) -> None:
    left, right = keyed(a), keyed(b)
    assert left.keys() == right.keys() and len(left) == len(a) == len(b)
    for key, value in left.items():
        if value is None:
            assert right[key] is None, key
        else:
            assert right[key] is not None and abs(value - right[key]) <= 1e-12, (key, value, right[key])


# -- the finished run shared by the read-back tests ---------------------------------------------------


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "small.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def finished(rclone_server: S3Server, config_path: Path) -> tuple[Bucket, str, list[dict]]:
    bucket = Bucket(rclone_server, rclone_server.make_bucket())
    run_id = "nightly-20240501"
    result = ok(run_receval(bucket, run_id, config_path))
    return bucket, run_id, json.loads(result.stdout)


def test_run_into_s3_is_complete_and_stays_under_its_prefix(finished):
    bucket, run_id, records = finished
    runs = listed(bucket)
    assert list(runs) == [run_id]
    run = runs[run_id]
    assert run["status"] == "complete" and run["reported_status"] == "complete" and run["failure"] is None
    assert run["algorithms"] == ALGORITHMS and run["cutoffs"] == [CUTOFF] and run["shards"] == 2
    assert run["dataset"] == "synthetic"
    keys = bucket.keys()
    # Every object under the store's prefix, the run-level marker and each shard's recs marker present.
    assert keys and all(k.startswith(f"{PREFIX}/runs/{run_id}/") for k in keys)
    assert bucket.exists(f"runs/{run_id}/_SUCCESS")
    for algorithm in ALGORITHMS:
        for shard in ("shard-00000-of-00002", "shard-00001-of-00002"):
            assert bucket.exists(f"runs/{run_id}/recs/{algorithm}/{shard}.parquet.done")
    # What `receval run --format json` printed is what the bucket's summary.json holds.
    assert_same_records(records, bucket.json(f"runs/{run_id}/summary.json"))


def test_an_evaluate_pod_asks_for_no_object_twice_and_writes_the_same_values(finished):
    """A pod on S3 pays a request per object it needs: nothing is checked (HEAD) and then read,
    nothing staged is asked its size before the copy that publishes it."""
    from receval.metrics.sharding import Shard
    from receval.pipeline import layout
    from receval.pipeline.steps import evaluate_step
    from receval.storage.s3 import S3Store

    bucket, run_id, _ = finished
    shard = Shard(0, CONFIG["shards"])
    prefix = layout.metrics_shard_prefix(run_id, "pop", shard)
    before = {name: bucket.read(f"{prefix}/{name}") for name in ("per_user.parquet", "exposure.parquet")}
    store = S3Store(bucket.store, **bucket.server.store_options())
    calls: list[tuple[str, str]] = []
    store.client.meta.events.register(
        "before-call.s3", lambda model, params, **_: calls.append((model.name, params["url_path"].split("?")[0])))

    assert evaluate_step(store, run_id, "pop", shard, force=True)

    asked = {op: [key for name, key in calls if name == op] for op in ("HeadObject", "GetObject", "CopyObject")}
    heads = {key.rsplit(f"{PREFIX}/", 1)[1] for key in asked["HeadObject"]}
    # the two markers whose absence is the answer; everything else is read, once
    assert heads == {f"{prefix}/_SUCCESS", layout.recs_done_key(run_id, "pop", shard)}
    assert len(asked["GetObject"]) == len(set(asked["GetObject"]))
    assert len(asked["CopyObject"]) == 3
    assert {name: bucket.read(f"{prefix}/{name}") for name in before} == before


def test_results_show_reads_values_that_match_an_independent_precision(finished):
    bucket, run_id, _ = finished
    shown = json.loads(ok(results(bucket, "show", run_id, "--format", "json")).stdout)
    by_algorithm = {
        r["algorithm"]: r["value"] for r in shown if r["metric"] == "precision" and r["cutoff"] == CUTOFF
    }
    assert sorted(by_algorithm) == sorted(ALGORITHMS)
    # precision@10 = mean over ALL test users of |top-10 ∩ {i : test rating ≥ τ}| / 10 (docs/metrics:
    # always divided by N; a test user without a list counts 0), from the raw objects in the bucket.
    # (the test set is bucketed by user shard: every object under dataset/test/, docs/run-layout.md)
    objects = bucket.keys(f"{PREFIX}/runs/{run_id}/dataset/test/")
    assert len(objects) == 2 and all(k.endswith(".parquet") for k in objects)
    test = pd.concat([bucket.parquet(k[len(PREFIX) + 1:]) for k in objects], ignore_index=True)
    relevant = set(map(tuple, test.loc[test["rating"] >= THRESHOLD, ["user", "item"]].itertuples(index=False)))
    test_users = test["user"].nunique()
    expected_by_algorithm = {}
    for algorithm in ALGORITHMS:
        recs = pd.concat(
            bucket.parquet(f"runs/{run_id}/recs/{algorithm}/shard-0000{i}-of-00002.parquet") for i in range(2)
        )
        top = recs[recs["rank"] <= CUTOFF]
        hits = sum((u, i) in relevant for u, i in zip(top["user"], top["item"]))
        expected = hits / CUTOFF / test_users
        assert abs(by_algorithm[algorithm] - expected) <= 1e-12, (algorithm, by_algorithm[algorithm], expected)
        expected_by_algorithm[algorithm] = expected
    # The table a user reads: the metric's row, a column per algorithm, the value to 4 decimals.
    table = ok(results(bucket, "show", run_id, "--cutoff", str(CUTOFF), "--metric", "precision")).stdout
    lines = table.splitlines()
    header = next(line.split() for line in lines if line.split()[:1] == ["metric"])
    row = next(line.split() for line in lines if line.split()[:1] == ["precision[binary,none]"])
    shown_values = dict(zip(header[1:], row[1:]))
    assert sorted(shown_values) == sorted(ALGORITHMS), table
    for algorithm, expected in expected_by_algorithm.items():
        assert shown_values[algorithm] == f"{expected:.4f}", (algorithm, expected, table)


def test_results_compare_gives_the_paired_p_values_of_the_per_user_values(finished):
    bucket, run_id, _ = finished
    metric = f"precision[binary,none]@{CUTOFF}"
    out = ok(results(bucket, "compare", run_id, "--algorithm", "pop,ib", "--metric", metric,
                     "--bootstrap", "200", "--format", "json"))  # fmt: skip
    comparison = json.loads(out.stdout)
    assert (comparison["a"], comparison["b"]) == ("pop", "ib")
    (row,) = comparison["metrics"]
    # Independent: the per-user parquet files read with boto3, paired by user, tested with scipy.
    # With a single metric the Holm correction leaves the p-values as they are.
    a = bucket.parquet(f"runs/{run_id}/metrics/pop/per_user.parquet").set_index("user")[metric]
    b = bucket.parquet(f"runs/{run_id}/metrics/ib/per_user.parquet").set_index("user")[metric]
    a, b = a.align(b, join="inner")
    assert row["users"] == len(a) == 300
    assert abs(row["delta"] - float(np.mean(b - a))) <= 1e-12
    t = stats.ttest_rel(b, a)
    w = stats.wilcoxon(b - a, zero_method="pratt")
    assert row["t_pvalue"] == pytest.approx(t.pvalue, rel=1e-9, abs=1e-300)
    assert row["wilcoxon_pvalue"] == pytest.approx(w.pvalue, rel=1e-9, abs=1e-300)
    assert row["t_pvalue_holm"] == pytest.approx(row["t_pvalue"], rel=1e-12)
    assert 0.0 <= row["t_pvalue"] <= 1.0 and 0.0 <= row["wilcoxon_pvalue"] <= 1.0


def test_results_report_writes_an_html_page_with_the_summary_table(finished, tmp_path: Path):
    bucket, run_id, _ = finished
    page = tmp_path / "out" / "report.html"
    ok(results(bucket, "report", run_id, "--out", str(page)))
    html = page.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "<table class=summary>" in html
    for algorithm in ALGORITHMS:
        assert f'<th class="algorithm">{algorithm}</th>' in html
    assert run_id in html


def test_seaweedfs_run_completes_with_the_values_of_the_rclone_run(seaweedfs_server: S3Server, config_path: Path,
                                                                  finished):
    """A production object store (SeaweedFS, authentication enforced): the same configuration gives
    the same values to 1e-12, so nothing depends on which server holds the run folder."""
    bucket = Bucket(seaweedfs_server, seaweedfs_server.make_bucket())
    records = json.loads(ok(run_receval(bucket, "on-seaweedfs", config_path)).stdout)
    assert listed(bucket)["on-seaweedfs"]["status"] == "complete"
    assert_same_records(records, finished[2])


# -- failures as a user meets them -----------------------------------------------------------------


def test_wrong_credentials_fail_in_one_line_without_the_secret(rclone_server: S3Server, config_path: Path):
    bucket = Bucket(rclone_server, rclone_server.make_bucket())
    wrong_secret = "not-the-secret-" + uuid.uuid4().hex
    env = clean_env({**rclone_server.env(), "AWS_SECRET_ACCESS_KEY": wrong_secret})
    result = run_receval(bucket, "with-wrong-key", config_path, env=env)
    line = one_error_line(result)
    assert bucket.name in line and "access denied" in line.lower()
    for text in (result.stdout, result.stderr):
        assert wrong_secret not in text and rclone_server.secret_key not in text
    # With the right credentials: nothing was written, so no run at all, let alone a complete one.
    assert bucket.keys() == []
    assert ok(results(bucket, "list", "--format", "json")).stdout.strip() == "[]"


def test_missing_bucket_is_named_in_one_line(rclone_server: S3Server, config_path: Path):
    bucket = Bucket(rclone_server, f"no-such-bucket-{uuid.uuid4().hex[:12]}")
    line = one_error_line(run_receval(bucket, "nowhere", config_path))
    assert f"bucket '{bucket.name}' does not exist" in line
    line = one_error_line(results(bucket, "list"))
    assert bucket.name in line


def test_connection_resets_are_retried_and_the_run_completes(rclone_server: S3Server, config_path: Path,
                                                             flaky_proxy: Callable, finished):
    bucket = Bucket(rclone_server, rclone_server.make_bucket())
    proxy = flaky_proxy(rclone_server, reset_first=3)
    records = json.loads(ok(run_receval(bucket, "through-resets", config_path, endpoint_url=proxy.endpoint_url)).stdout)
    assert proxy.resets == 3 and proxy.connections > 3  # the resets really happened, then it went on
    # Complete by the run folder's contract (docs/run-layout.md), read straight from the bucket.
    assert bucket.json("runs/through-resets/run.json")["status"] == "complete"
    assert bucket.exists("runs/through-resets/_SUCCESS")
    assert_same_records(records, finished[2])


def test_run_killed_halfway_is_partial_and_resumes_to_the_same_values(rclone_server: S3Server, config_path: Path,
                                                                     finished):
    bucket = Bucket(rclone_server, rclone_server.make_bucket())
    run_id = "killed"
    run_folder = f"{PREFIX}/runs/{run_id}/"
    command = [sys.executable, "-m", "receval", "run", "--config", str(config_path), "--store", bucket.store,
               "--run-id", run_id, "--endpoint-url", rclone_server.endpoint_url, "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen(command, env=clean_env(rclone_server.env()), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        # Kill once prepare has finished (run.json and the dataset marker exist) and the first
        # recommendation shard is written: the middle of the run.
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            keys = set(bucket.keys(run_folder))
            if f"{run_folder}run.json" in keys and f"{run_folder}dataset/_SUCCESS" in keys and any(
                k.endswith(".parquet.done") for k in keys
            ):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "receval run finished before the test could kill it"
        os.killpg(proc.pid, signal.SIGKILL)  # our own process group (start_new_session)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not bucket.exists(f"runs/{run_id}/_SUCCESS"), "the run finished before SIGKILL: nothing was tested"

    run = listed(bucket)[run_id]
    assert run["status"] == "partial" and run["reported_status"] == "running"
    # `latest` means the newest complete run: there is none, the killed run is never taken for one.
    line = one_error_line(results(bucket, "show", "latest"))
    assert "no complete run" in line

    # Rerunning the same run id resumes it; the result equals the uninterrupted run's.
    records = json.loads(ok(run_receval(bucket, run_id, config_path)).stdout)
    assert listed(bucket)[run_id]["status"] == "complete"
    assert_same_records(records, finished[2])
