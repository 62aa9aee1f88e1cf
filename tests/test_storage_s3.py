"""S3Store against real S3 servers on 127.0.0.1 (rclone serve s3 and SeaweedFS), see s3_servers.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from receval.errors import ConfigError, StoreError
from receval.storage import MARKER, open_store
from receval.storage.s3 import MiB, RetryPolicy, S3Location, S3Store

# The fixtures (s3_server, rclone_server, seaweedfs_server, flaky_proxy) come from
# tests/s3_servers.py, registered as a plugin in tests/conftest.py.
from tests.s3_servers import S3Server, free_ports

PREFIX = "runs/r1"


def make_store(server: S3Server, **options) -> S3Store:
    bucket = server.make_bucket()
    return S3Store(f"s3://{bucket}/{PREFIX}", **{**server.store_options(), **options})


def raw_keys(server: S3Server, bucket: str) -> list[str]:
    """Object keys as the server lists them, independently of S3Store."""
    response = server.client().list_objects_v2(Bucket=bucket)
    return sorted(obj["Key"] for obj in response.get("Contents", []))


class CallRecorder:
    """Records the S3 operations a client really sends (botocore's event hooks, no mocking)."""

    def __init__(self, store: S3Store):
        self.calls: list[tuple[str, str]] = []
        store.client.meta.events.register("before-call.s3", self._record)

    def _record(self, model, params, **_kwargs) -> None:
        # params["url_path"] is the signed path; the key is what we want to see.
        key = params.get("url_path", "")
        self.calls.append((model.name, key))

    def names(self, operation: str) -> list[str]:
        return [key for name, key in self.calls if name == operation]


# -- pure parsing (no server) -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://bkt", "bkt", ""),
        ("s3://bkt/", "bkt", ""),
        ("s3://bkt/a/b/", "bkt", "a/b"),
        ("s3://bkt//a//b", "bkt", "a/b"),
    ],
)
def test_location_parse(uri: str, bucket: str, prefix: str) -> None:
    location = S3Location.parse(uri)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert location.object_key("x/y.json") == (f"{prefix}/x/y.json" if prefix else "x/y.json")


@pytest.mark.parametrize("uri", ["s3://", "s3:///prefix", "http://bkt/x"])
def test_location_parse_rejects_bad_uri(uri: str) -> None:
    with pytest.raises(ConfigError, match="s3://bucket/prefix"):
        S3Location.parse(uri)


def test_retry_delay_is_full_jitter_within_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    # attempt 2: cap = min(1.0, 0.1 * 2**2) = 0.4; attempt 10: capped at max_delay = 1.0
    samples2 = [policy.delay(2) for _ in range(2000)]
    samples10 = [policy.delay(10) for _ in range(2000)]
    assert 0.0 <= min(samples2) and max(samples2) <= 0.4
    assert max(samples2) > 0.3 and min(samples2) < 0.1  # spread over the whole interval, not fixed
    assert max(samples10) <= 1.0 and max(samples10) > 0.8


def test_path_style_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RECEVAL_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "RECEVAL_S3_PATH_STYLE"):
        monkeypatch.delenv(name, raising=False)
    assert S3Store("s3://bkt/p", region="eu-west-1").path_style is False  # AWS: its own choice
    assert S3Store("s3://bkt/p", endpoint_url="http://127.0.0.1:1").path_style is True
    monkeypatch.setenv("RECEVAL_S3_PATH_STYLE", "0")
    assert S3Store("s3://bkt/p", endpoint_url="http://127.0.0.1:1").path_style is False
    monkeypatch.setenv("RECEVAL_S3_PATH_STYLE", "1")
    assert S3Store("s3://bkt/p", region="eu-west-1").path_style is True
    monkeypatch.setenv("RECEVAL_S3_MAX_ATTEMPTS", "many")
    with pytest.raises(ConfigError, match="RECEVAL_S3_MAX_ATTEMPTS"):
        S3Store("s3://bkt/p", region="eu-west-1")


# -- round trips on both servers --------------------------------------------------------------
def test_round_trip_bytes_json_parquet(s3_server: S3Server) -> None:
    store = make_store(s3_server)
    payload = bytes(range(256)) * 10
    store.write_bytes("a/blob.bin", payload)
    store.write_json("run.json", {"status": "running", "k": [1, 2]})
    frame = pd.DataFrame({"user": ["u1", "u2", "u3"], "item": [10, 20, 30], "score": [0.5, 0.25, 0.125]})
    store.write_parquet("recs/x.parquet", frame)

    assert store.read_bytes("a/blob.bin") == payload
    assert store.read_json("run.json") == {"status": "running", "k": [1, 2]}
    pd.testing.assert_frame_equal(store.read_parquet("recs/x.parquet"), frame)
    pd.testing.assert_frame_equal(store.read_parquet("recs/x.parquet", columns=["score"]), frame[["score"]])
    # Keys live under the URI's prefix, as the server itself reports them.
    assert raw_keys(s3_server, store.bucket) == [f"{PREFIX}/a/blob.bin", f"{PREFIX}/recs/x.parquet", f"{PREFIX}/run.json"]
    assert store.exists("run.json") and not store.exists("run.jso")
    store.delete("run.json")
    assert not store.exists("run.json")
    store.delete("run.json")  # deleting what is gone is fine


def test_list_with_prefixes(s3_server: S3Server) -> None:
    store = make_store(s3_server)
    for key in ("a/x", "a/y/z", "ab/w", "b"):
        store.write_bytes(key, key.encode())
    # An object beside the store's prefix must never appear in its listings.
    s3_server.client().put_object(Bucket=store.bucket, Key="runs/r1x/outside", Body=b"no")

    assert store.list() == ["a/x", "a/y/z", "ab/w", "b"]
    assert store.list("a") == ["a/x", "a/y/z"]  # a folder: not "ab/w"
    assert store.list("a/") == ["a/x", "a/y/z"]
    assert store.list("ab") == ["ab/w"]
    assert store.list("b") == ["b"]
    assert store.list("nothing") == []
    assert store.list_dirs() == ["a", "ab"]
    assert store.list_dirs("a") == ["y"]


def test_list_pages_beyond_one_response(rclone_server: S3Server) -> None:
    store = make_store(rclone_server)
    store.list_page_size = 4
    recorder = CallRecorder(store)
    # 10 keys in pages of 4 need 3 requests, each continuing where the last one stopped.
    keys = [f"shard/{i:05d}" for i in range(10)]
    client = rclone_server.client()
    for key in keys:
        client.put_object(Bucket=store.bucket, Key=f"{PREFIX}/{key}", Body=b"")
    assert store.list("shard") == keys
    assert len(recorder.names("ListObjectsV2")) == 3


def test_missing_key(s3_server: S3Server) -> None:
    store = make_store(s3_server)
    with pytest.raises(StoreError) as info:
        store.read_bytes("metrics/summary.json")
    assert str(info.value) == f"s3://{store.bucket}/{PREFIX}/metrics/summary.json: not found"
    assert store.marker("metrics") is None
    with pytest.raises(StoreError, match="not found"):
        store.open_input("metrics/summary.json")


def test_read_if_exists_is_one_get_and_still_names_a_missing_bucket(s3_server: S3Server) -> None:
    store = make_store(s3_server)
    store.write_json("run.json", {"status": "running"})
    recorder = CallRecorder(store)
    assert store.read_json_if_exists("run.json") == {"status": "running"}
    assert store.read_if_exists("dataset/_SUCCESS") is None
    assert store.marker("dataset") is None
    assert [name for name, _ in recorder.calls if name != "HeadBucket"] == ["GetObject"] * 3
    gone = S3Store("s3://receval-no-such-bucket/runs", **s3_server.store_options())
    with pytest.raises(StoreError, match="bucket 'receval-no-such-bucket' does not exist"):
        gone.read_if_exists("run.json")


def test_publish_swaps_each_object_in_with_one_copy_and_reads_the_old_marker_once(s3_server: S3Server) -> None:
    store = make_store(s3_server)
    store.publish("metrics", {"per_user.parquet": b"old"}, marker={"v": 1})
    recorder = CallRecorder(store)
    store.publish("metrics", {"per_user.parquet": b"new", "partial.json": b"{}"}, marker={"v": 2})
    # no HEAD: the managed copy would ask each staged object's size, which publish knows
    assert [name for name, _ in recorder.calls] == (
        ["PutObject"] * 2 + ["GetObject", "DeleteObject"] + ["CopyObject", "DeleteObject"] * 2 + ["PutObject"]
    )
    assert store.read_bytes("metrics/per_user.parquet") == b"new"
    assert store.marker("metrics") == {"v": 2}
    assert store.list("metrics") == ["metrics/_SUCCESS", "metrics/partial.json", "metrics/per_user.parquet"]


def test_publish_writes_marker_last(s3_server: S3Server) -> None:
    store = make_store(s3_server)
    recorder = CallRecorder(store)
    store.publish("dataset", {"train.parquet": b"t", "test.parquet": b"s"}, marker={"rows": 2})

    puts = recorder.names("PutObject")
    assert len(puts) == 3 and puts[-1].endswith(f"dataset/{MARKER}")
    assert store.marker("dataset") == {"rows": 2}
    assert store.is_complete("dataset")


def test_publish_interrupted_midway_keeps_the_previous_result(s3_server: S3Server) -> None:
    store = make_store(s3_server)
    store.publish("dataset", {"train.parquet": b"old"}, marker={"v": 1})
    assert store.is_complete("dataset")

    def objects() -> Iterator[tuple[str, bytes]]:
        yield "train.parquet", b"new"
        raise RuntimeError("worker killed")

    class Interrupted(dict):
        def items(self):  # type: ignore[override]
            return objects()

    with pytest.raises(RuntimeError, match="worker killed"):
        store.publish("dataset", Interrupted(), marker={"v": 2})
    # Written aside, never swapped in: the previous result is whole and still marked, nothing left over.
    assert store.marker("dataset") == {"v": 1}
    assert store.read_bytes("dataset/train.parquet") == b"old"
    raw = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.location.object_key("dataset"))
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in raw.get("Contents", [])) == [MARKER, "train.parquet"]


# -- large objects --------------------------------------------------------------------------
def test_multipart_upload_and_download(s3_server: S3Server, tmp_path) -> None:
    store = make_store(s3_server, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    recorder = CallRecorder(store)
    payload = os.urandom(20 * MiB)
    digest = hashlib.sha256(payload).hexdigest()

    store.write_bytes("models/big.bin", payload)
    # 20 MiB in 5 MiB parts = 4 parts, one completed multipart upload.
    assert len(recorder.names("UploadPart")) == 4
    assert len(recorder.names("CompleteMultipartUpload")) == 1
    assert hashlib.sha256(store.read_bytes("models/big.bin")).hexdigest() == digest

    local = tmp_path / "big.bin"
    local.write_bytes(payload[: 12 * MiB])  # 12 MiB = parts of 5 + 5 + 2 MiB
    store.upload_file(local, "models/upload.bin")
    assert len(recorder.names("UploadPart")) == 4 + 3
    target = tmp_path / "out" / "copy.bin"
    store.download_file("models/upload.bin", target)
    assert target.read_bytes() == payload[: 12 * MiB]
    assert store.size("models/upload.bin") == 12 * MiB
    assert [p.name for p in target.parent.iterdir()] == ["copy.bin"]  # no temporary left behind


def test_small_chunks_are_refused() -> None:
    with pytest.raises(ConfigError, match="5 MiB"):
        S3Store("s3://bkt/p", endpoint_url="http://127.0.0.1:1", multipart_chunksize=1 * MiB)


def test_parquet_column_subset_streams_through_open_input(rclone_server: S3Server, flaky_proxy) -> None:
    rng = np.random.default_rng(7)
    rows = 200_000
    frame = pd.DataFrame({name: rng.random(rows) for name in ("a", "b", "c")})
    store = make_store(rclone_server)
    store.write_parquet("recs/wide.parquet", frame)
    total = store.size("recs/wide.parquet")

    proxy = flaky_proxy(rclone_server)  # a faithful pipe that counts the bytes it relays
    reader_store = S3Store(store.uri, endpoint_url=proxy.endpoint_url, session=rclone_server.session())
    with reader_store.open_input("recs/wide.parquet") as handle:
        parquet = pq.ParquetFile(handle)
        assert parquet.metadata.num_rows == rows
        column = parquet.read(columns=["b"]).to_pandas()
    pd.testing.assert_frame_equal(column, frame[["b"]])
    # Random doubles do not compress: each column is ~1/3 of the file (1.6 MB of ~4.8 MB).
    # Reading one column plus the footer (and at most one 1 MiB read-ahead) stays well below 2/3.
    assert proxy.bytes_to_client < 0.67 * total, (proxy.bytes_to_client, total)


# -- failures ---------------------------------------------------------------------------------
def test_wrong_secret_fails_fast_in_one_line_without_secrets(s3_server: S3Server) -> None:
    bucket = s3_server.make_bucket()
    wrong_secret = "definitely-not-the-secret-4242"
    store = S3Store(
        f"s3://{bucket}/{PREFIX}", endpoint_url=s3_server.endpoint_url, session=s3_server.session(secret_key=wrong_secret)
    )
    for operation in (lambda: store.read_bytes("run.json"), lambda: store.write_bytes("run.json", b"{}"),
                      lambda: store.exists("run.json"), lambda: store.list()):  # fmt: skip
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            operation()
        message = str(info.value)
        assert time.monotonic() - started < 5  # permanent: not retried with backoff
        assert "\n" not in message and bucket in message and "access denied" in message
        assert wrong_secret not in message and s3_server.secret_key not in message
        assert s3_server.access_key not in message


def test_unknown_access_key_fails_with_store_error(s3_server: S3Server) -> None:
    bucket = s3_server.make_bucket()
    store = S3Store(
        f"s3://{bucket}", endpoint_url=s3_server.endpoint_url, session=s3_server.session(access_key="NOSUCHKEYID0000")
    )
    with pytest.raises(StoreError, match=rf"s3://{bucket}/run.json: access denied .*InvalidAccessKeyId") as info:
        store.read_bytes("run.json")
    assert "NOSUCHKEYID0000" not in str(info.value)


def test_missing_bucket_is_named(s3_server: S3Server) -> None:
    store = S3Store("s3://receval-no-such-bucket/runs", **s3_server.store_options())
    expected = "s3://receval-no-such-bucket/runs/run.json: bucket 'receval-no-such-bucket' does not exist"
    with pytest.raises(StoreError) as info:
        store.read_bytes("run.json")
    assert str(info.value) == expected
    # HEAD has no error body: a missing bucket must still not look like a missing key.
    with pytest.raises(StoreError, match="bucket 'receval-no-such-bucket' does not exist"):
        store.exists("run.json")
    with pytest.raises(StoreError, match="bucket 'receval-no-such-bucket' does not exist"):
        store.list("dataset")


def test_connection_resets_are_retried(s3_server: S3Server, flaky_proxy) -> None:
    store = make_store(s3_server)
    proxy = flaky_proxy(s3_server, reset_first=2)
    flaky = S3Store(store.uri, endpoint_url=proxy.endpoint_url, session=s3_server.session(), max_attempts=4)
    flaky.write_bytes("run.json", b'{"status": "running"}')
    assert proxy.resets == 2
    assert store.read_bytes("run.json") == b'{"status": "running"}'


def test_body_cut_midway_is_retried(s3_server: S3Server, flaky_proxy) -> None:
    store = make_store(s3_server)
    payload = os.urandom(256 * 1024)
    store.write_bytes("recs/part.bin", payload)
    # The first connection relays headers and the first 4 KiB of the body, then resets.
    proxy = flaky_proxy(s3_server, truncate_first=1, truncate_after=4096)
    flaky = S3Store(store.uri, endpoint_url=proxy.endpoint_url, session=s3_server.session(), max_attempts=4)
    assert flaky.read_bytes("recs/part.bin") == payload
    assert proxy.truncations == 1


def test_retries_give_up_with_one_line(rclone_server: S3Server, flaky_proxy) -> None:
    store = make_store(rclone_server)
    proxy = flaky_proxy(rclone_server, reset_first=100)
    flaky = S3Store(store.uri, endpoint_url=proxy.endpoint_url, session=rclone_server.session(), max_attempts=3)
    with pytest.raises(StoreError) as info:
        flaky.read_bytes("run.json")
    message = str(info.value)
    assert proxy.resets == 3  # exactly max_attempts tries
    assert "\n" not in message and f"s3://{store.bucket}/{PREFIX}/run.json" in message
    assert proxy.endpoint_url in message and "3 attempts" in message


# -- configuration through the environment -------------------------------------------------------
def test_environment_configures_endpoint_and_credentials(rclone_server: S3Server, monkeypatch) -> None:
    bucket = rclone_server.make_bucket()
    for name, value in rclone_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RECEVAL_S3_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("RECEVAL_S3_PATH_STYLE", raising=False)
    store = open_store(f"s3://{bucket}/env")
    assert isinstance(store, S3Store) and store.path_style
    store.write_json("a.json", {"x": 1})
    assert json.loads(rclone_server.client().get_object(Bucket=bucket, Key="env/a.json")["Body"].read()) == {"x": 1}

    # RECEVAL_S3_ENDPOINT_URL wins over AWS_ENDPOINT_URL (here pointing at a closed port).
    (dead_port,) = free_ports(1)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{dead_port}")
    monkeypatch.setenv("RECEVAL_S3_ENDPOINT_URL", rclone_server.endpoint_url)
    assert open_store(f"s3://{bucket}/env").read_json("a.json") == {"x": 1}


def test_env_reaches_a_subprocess(rclone_server: S3Server) -> None:
    bucket = rclone_server.make_bucket()
    rclone_server.client().put_object(Bucket=bucket, Key="p/hello.txt", Body=b"hello")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RECEVAL_S3_"))}
    env.update(rclone_server.env())
    code = (
        "import sys; from receval.storage import open_store;"
        f"sys.stdout.write(open_store('s3://{bucket}/p').read_bytes('hello.txt').decode())"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello"


def test_store_repr_hides_credentials_in_endpoint() -> None:
    store = S3Store("s3://bkt/p", endpoint_url="http://user:pa55word@127.0.0.1:9/", region="us-east-1")
    assert "pa55word" not in repr(store) and "127.0.0.1:9" in repr(store)


def test_open_input_is_seekable(rclone_server: S3Server) -> None:
    store = make_store(rclone_server)
    payload = bytes(range(256)) * 64  # 16 KiB
    store.write_bytes("x.bin", payload)
    with store.open_input("x.bin", buffer_size=1024) as handle:
        assert handle.seekable()
        handle.seek(-10, io.SEEK_END)
        assert handle.read() == payload[-10:]
        handle.seek(1000)
        assert handle.read(5) == payload[1000:1005]
        assert handle.tell() == 1005


# -- exclusive create (run ownership) -------------------------------------------------------
def test_create_exclusive_creates_once_and_never_overwrites(s3_server: S3Server) -> None:
    store = make_store(s3_server)
    print(s3_server.name, "atomic_create =", store.atomic_create)
    assert store.create_exclusive("runs/r/run.json", b"first") is True
    assert store.create_exclusive("runs/r/run.json", b"second") is False
    assert store.read_bytes("runs/r/run.json") == b"first"
    assert store.list() == ["runs/r/run.json"]  # the capability probe left nothing visible
