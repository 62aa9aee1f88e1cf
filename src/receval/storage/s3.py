"""A store in an S3 bucket (AWS S3 or an S3-compatible server: SeaweedFS, Ceph RGW, MinIO, rclone).

``s3://bucket/prefix`` maps store keys to object keys ``prefix/<key>``. Credentials come from the
standard AWS chain that boto3 resolves by itself (environment, shared profile, web identity token
for IRSA on EKS, instance metadata); this module never reads, logs or prints them.

Transient failures (throttling, HTTP 5xx, connection resets and timeouts) are retried by botocore
with exponential backoff and full jitter; reading a response body, which happens after botocore has
returned, is retried by our own loop with the same policy. Permanent failures (access denied, bad
signature, unknown key id, missing bucket) fail fast with a one-line :class:`StoreError` that names
the bucket and the key. See ``docs/storage.md``.
"""

from __future__ import annotations

import io
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import boto3
import botocore.exceptions as bexc
import urllib3.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from receval.errors import ConfigError, StoreError, TransientStoreError
from receval.storage.base import Store, is_temp_name, join, shown_key, temp_name

MiB = 1024 * 1024

#: Error codes that no retry can fix: wrong or missing credentials, no permission, no bucket.
PERMANENT_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "AccountProblem",
        "403",
        "Forbidden",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
#: The largest object one CopyObject request may copy (S3's limit); larger ones are copied in parts.
SINGLE_COPY_LIMIT = 5 * 1024 * MiB
#: Error codes that mean "try again later" whatever the HTTP status the server sent with them.
TRANSIENT_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
     "InternalError", "ServiceUnavailable", "RequestLimitExceeded"}
)

#: Failures while streaming a response body, after botocore returned (and stopped retrying).
#: Connection failures before a response are botocore's to retry; retrying them here again
#: would multiply the attempts against a server that is simply down.
_STREAMING_ERRORS: tuple[type[BaseException], ...] = (
    bexc.ResponseStreamingError,
    bexc.IncompleteReadError,
    bexc.ReadTimeoutError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
)

T = TypeVar("T")


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _redact_url(url: str) -> str:
    """Drop any ``user:password@`` part of an endpoint URL before it goes into a message."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class S3Location:
    """A parsed ``s3://bucket/prefix`` URI; ``prefix`` has no leading or trailing slash."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        if not uri.startswith("s3://"):
            raise ConfigError(f"{uri}: not an S3 URI (expected s3://bucket/prefix)")
        bucket, _, prefix = uri[len("s3://"):].partition("/")
        if not bucket:
            raise ConfigError(f"{uri}: no bucket name (expected s3://bucket/prefix)")
        if "?" in bucket or "#" in bucket or ":" in bucket:
            raise ConfigError(f"{uri}: invalid bucket name {bucket!r}")
        segments = [s for s in prefix.split("/") if s]
        return cls(bucket=bucket, prefix="/".join(segments))

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def object_key(self, key: str) -> str:
        return join(self.prefix, key)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried.

    ``max_attempts`` counts the first try. Between attempts we sleep a uniformly random time in
    ``[0, min(max_delay, base_delay * 2**attempt)]`` ("full jitter", Brooker 2015, AWS
    Architecture Blog "Exponential Backoff And Jitter"), which spreads out the retries of many
    shard workers hitting the same throttled prefix. botocore applies the same shape of backoff
    inside each API call (``mode="standard"``; ``"adaptive"`` also rate-limits the client).
    """

    max_attempts: int = 8
    mode: str = "standard"
    base_delay: float = 0.1
    max_delay: float = 10.0

    @classmethod
    def from_env(cls, max_attempts: int | None = None, mode: str | None = None) -> RetryPolicy:
        attempts = max_attempts
        if attempts is None:
            raw = os.environ.get("RECEVAL_S3_MAX_ATTEMPTS", "").strip()
            if raw:
                try:
                    attempts = int(raw)
                except ValueError:
                    raise ConfigError(f"RECEVAL_S3_MAX_ATTEMPTS={raw!r}: not an integer") from None
        attempts = cls.max_attempts if attempts is None else attempts
        if attempts < 1:
            raise ConfigError(f"S3 max_attempts={attempts}: must be at least 1")
        mode = mode or os.environ.get("RECEVAL_S3_RETRY_MODE", "").strip() or cls.mode
        if mode not in {"standard", "adaptive"}:
            raise ConfigError(f"S3 retry mode {mode!r}: expected 'standard' or 'adaptive'")
        return cls(max_attempts=attempts, mode=mode)

    def delay(self, attempt: int) -> float:
        """Sleep before retry number ``attempt`` (1 = first retry)."""
        return random.uniform(0.0, min(self.max_delay, self.base_delay * 2**attempt))


class S3Store(Store):
    """A :class:`~receval.storage.Store` over ``s3://bucket/prefix``.

    Parameters
    ----------
    uri : str
        ``s3://bucket`` or ``s3://bucket/prefix``; store keys are relative to the prefix.
    endpoint_url : str, optional
        An S3-compatible server (``http://seaweedfs:8333``). Defaults to the environment:
        ``RECEVAL_S3_ENDPOINT_URL``, then ``AWS_ENDPOINT_URL_S3``, then ``AWS_ENDPOINT_URL``;
        none means AWS itself.
    path_style : bool, optional
        Address buckets as ``endpoint/bucket/key`` instead of ``bucket.endpoint/key``. Defaults to
        ``RECEVAL_S3_PATH_STYLE`` if set, else True whenever an endpoint URL is in use (MinIO,
        SeaweedFS and Ceph RGW need it) and AWS's own choice otherwise.
    region : str, optional
        Signing region. Defaults to boto3's resolution (``AWS_REGION``, ``AWS_DEFAULT_REGION``,
        profile), and to ``us-east-1`` for a custom endpoint that left it unset.
    session : boto3.session.Session, optional
        Where credentials come from; by default a fresh session on the standard AWS chain.
    max_attempts, retry_mode :
        Retry policy (see :class:`RetryPolicy`); also ``RECEVAL_S3_MAX_ATTEMPTS`` /
        ``RECEVAL_S3_RETRY_MODE``.
    multipart_threshold, multipart_chunksize : int
        Objects of at least ``multipart_threshold`` bytes are uploaded in parts of
        ``multipart_chunksize`` bytes (S3 requires parts of at least 5 MiB).
    connect_timeout, read_timeout : float
        Socket timeouts in seconds; a timeout counts as a transient failure.
    """

    #: Keys per ListObjectsV2 request (S3's maximum is 1000).
    list_page_size: int = 1000

    def __init__(
        self,
        uri: str,
        endpoint_url: str | None = None,
        path_style: bool | None = None,
        region: str | None = None,
        session: boto3.session.Session | None = None,
        *,
        max_attempts: int | None = None,
        retry_mode: str | None = None,
        multipart_threshold: int = 8 * MiB,
        multipart_chunksize: int = 8 * MiB,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_pool_connections: int = 16,
    ):
        self.location = S3Location.parse(uri)
        self.uri = self.location.uri
        self.bucket = self.location.bucket
        self.endpoint_url = (
            endpoint_url
            or os.environ.get("RECEVAL_S3_ENDPOINT_URL")
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )
        if path_style is None:
            path_style = _env_flag("RECEVAL_S3_PATH_STYLE")
        if path_style is None:
            path_style = self.endpoint_url is not None
        self.path_style = path_style
        self.retry = RetryPolicy.from_env(max_attempts, retry_mode)
        if multipart_chunksize < 5 * MiB:
            raise ConfigError(f"S3 multipart_chunksize={multipart_chunksize}: S3 parts must be at least 5 MiB")
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=4,
            use_threads=True,
        )
        self._session = session or boto3.session.Session()
        region = region or self._session.region_name or ("us-east-1" if self.endpoint_url else None)
        self.region = region

        config_args: dict[str, Any] = {
            "retries": {"mode": self.retry.mode, "total_max_attempts": self.retry.max_attempts},
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_pool_connections": max_pool_connections,
        }
        if path_style:
            config_args["s3"] = {"addressing_style": "path"}
        if self.endpoint_url:
            # botocore >= 1.36 sends and checks CRC checksums by default; several S3-compatible
            # servers reject the trailer or return the whole-object checksum on a ranged GET
            # (rclone does), which botocore then rejects. Only when required, unless the user
            # chose otherwise through botocore's own environment variables.
            if "AWS_REQUEST_CHECKSUM_CALCULATION" not in os.environ:
                config_args["request_checksum_calculation"] = "when_required"
            if "AWS_RESPONSE_CHECKSUM_VALIDATION" not in os.environ:
                config_args["response_checksum_validation"] = "when_required"
        self.client = self._session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=region,
            config=Config(**config_args),
        )
        self._bucket_checked = False
        self._atomic_create: bool | None = None

    def __repr__(self) -> str:
        where = f", endpoint_url={_redact_url(self.endpoint_url)!r}" if self.endpoint_url else ""
        return f"S3Store({self.uri!r}{where})"

    # -- error handling -------------------------------------------------------------------
    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.location.object_key(shown_key(key))}"

    def _error(self, exc: BaseException, key: str, action: str) -> StoreError:
        """Translate a boto error into one line naming bucket and key, never credentials."""
        where = self._url(key)
        if isinstance(exc, bexc.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "")) or "unknown"
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in NOT_FOUND_CODES:
                return StoreError(f"{where}: not found")
            if code == "NoSuchBucket":
                return StoreError(f"{where}: bucket {self.bucket!r} does not exist")
            if code in PERMANENT_AUTH_CODES or status == 403:
                return StoreError(
                    f"{where}: access denied while trying to {action} ({code}, HTTP {status}); "
                    "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or "
                    "the service account's IAM role) and the bucket policy"
                )
            # What is left is the server's trouble (5xx, 429 throttling, SlowDown, RequestTimeout):
            # a later attempt may succeed, so the exit code tells the cluster to retry (75).
            transient = (status or 0) >= 500 or status == 429 or code in TRANSIENT_CODES
            error_class = TransientStoreError if transient else StoreError
            return error_class(f"{where}: cannot {action}: {code} (HTTP {status}) after up to {self.retry.max_attempts} attempts")
        if isinstance(exc, bexc.NoCredentialsError | bexc.PartialCredentialsError | bexc.CredentialRetrievalError):
            return StoreError(
                f"{where}: cannot {action}: no usable AWS credentials (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a web identity for IRSA)"
            )
        if isinstance(exc, bexc.ParamValidationError):
            return StoreError(f"{where}: cannot {action}: invalid bucket or key name")
        endpoint = _redact_url(self.endpoint_url) if self.endpoint_url else "AWS S3"
        reason = type(exc).__name__
        # Connection refused/reset/timed out, or a body cut off mid-stream: botocore (and
        # _with_retries) already tried; the cluster retries the step later (exit 75).
        return TransientStoreError(
            f"{where}: cannot {action}: {reason} talking to {endpoint} after {self.retry.max_attempts} attempts"
        )

    def _with_retries(self, key: str, action: str, operation: Callable[[], T]) -> T:
        """Run ``operation``, retrying failures that happen while a body streams in.

        botocore has already retried each API call; what reaches us here as a connection or
        streaming error broke after the call returned (mid-body), so a new attempt is safe.
        """
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                return operation()
            except _STREAMING_ERRORS as exc:
                if attempt == self.retry.max_attempts:
                    raise self._error(exc, key, action) from None
                time.sleep(self.retry.delay(attempt))
            except bexc.ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
                if status >= 500:
                    # Some servers (SeaweedFS) answer a write to a missing bucket with HTTP 500:
                    # name the real cause rather than "InternalError".
                    self._check_bucket(key)
                raise self._error(exc, key, action) from None
            except bexc.BotoCoreError as exc:
                raise self._error(exc, key, action) from None
        raise AssertionError("unreachable")

    def _check_bucket(self, key: str) -> None:
        """HEAD answers 404 without a body for a missing key and a missing bucket alike; tell them apart once."""
        if self._bucket_checked:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except bexc.ClientError as exc:
            error = exc.response.get("Error", {})
            if str(error.get("Code")) in {"404", "NoSuchBucket", "NotFound"}:
                raise StoreError(f"{self._url(key)}: bucket {self.bucket!r} does not exist") from None
            raise self._error(exc, key, "check the bucket") from None
        except bexc.BotoCoreError as exc:
            raise self._error(exc, key, "check the bucket") from None
        self._bucket_checked = True

    # -- primitives -----------------------------------------------------------------------
    def read_if_exists(self, key: str) -> bytes | None:
        object_key = self.location.object_key(key)

        def get() -> bytes | None:
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=object_key)["Body"]
            except bexc.ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND_CODES:
                    return None
                raise
            # Not "with body": StreamingBody.__enter__ hands out the raw urllib3 stream, whose
            # errors bypass botocore's translation (and its content-length check).
            try:
                return body.read()
            finally:
                body.close()

        data = self._with_retries(key, "read", get)
        if data is None:
            self._check_bucket(key)  # a missing bucket is named, not taken for a missing object
        return data

    def write_bytes(self, key: str, data: bytes) -> None:
        object_key = self.location.object_key(key)
        if len(data) >= self.transfer_config.multipart_threshold:
            # A multipart upload becomes visible only when it is completed: still atomic.
            self._with_retries(
                key,
                "write",
                lambda: self.client.upload_fileobj(
                    io.BytesIO(data), self.bucket, object_key, Config=self.transfer_config
                ),
            )
            return
        self._with_retries(
            key, "write", lambda: self.client.put_object(Bucket=self.bucket, Key=object_key, Body=data)
        )

    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if absent, by a conditional PUT (``If-None-Match: *``).

        Where the server honours the condition (:attr:`atomic_create`; AWS S3 since 2024, SeaweedFS
        and MinIO) of two concurrent callers exactly one gets True. Where it ignores it (rclone) the
        PUT is preceded by a HEAD, which narrows but cannot close the race: the caller then needs a
        lease (see :mod:`receval.pipeline.ownership`).
        """
        if self.exists(key):  # also names this key, not the capability probe, when the bucket is unusable
            return False
        if not self.atomic_create:
            self.write_bytes(key, data)
            return True
        return self._put_if_absent(key, data)

    def _put_if_absent(self, key: str, data: bytes) -> bool:
        object_key = self.location.object_key(key)
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                self.client.put_object(Bucket=self.bucket, Key=object_key, Body=data, IfNoneMatch="*")
                return True
            except bexc.ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code == "PreconditionFailed" or status == 412:
                    return False
                if code == "ConditionalRequestConflict" or status == 409:
                    # AWS: a concurrent conditional write is in flight; whoever it is, look again
                    time.sleep(self.retry.delay(attempt))
                    if self.exists(key):
                        return False
                    continue
                raise self._error(exc, key, "create") from None
            except bexc.BotoCoreError as exc:
                raise self._error(exc, key, "create") from None
        raise StoreError(f"{self._url(key)}: cannot create: concurrent writers kept conflicting")

    @property  # type: ignore[override]
    def atomic_create(self) -> bool:
        """Whether the server honours ``If-None-Match: *`` on PUT; probed once per store.

        The probe creates a hidden object twice: a server that honours the condition refuses the
        second PUT with 412, one that ignores it (or answers 501) does not.
        """
        if self._atomic_create is None:
            probe = temp_name(".receval-conditional-put-probe")
            object_key = self.location.object_key(probe)
            supported = False
            try:
                first = self._put_if_absent(probe, b"1")
                second = self._put_if_absent(probe, b"2") if first else True
                supported = first and not second
            except StoreError as exc:
                if "NotImplemented" not in str(exc) and "HTTP 501" not in str(exc):
                    raise
            finally:
                try:
                    self.client.delete_object(Bucket=self.bucket, Key=object_key)
                except (bexc.ClientError, bexc.BotoCoreError):
                    pass  # a hidden leftover, skipped by listings
            self._atomic_create = supported
        return self._atomic_create

    def rename(self, source: str, target: str, size: int | None = None) -> None:
        """Server-side copy then delete: the target appears whole.

        An object of known ``size`` up to 5 GiB is one CopyObject; otherwise the managed copy, which
        first asks the source's size (HEAD) and copies larger objects in parts.
        """
        src = {"Bucket": self.bucket, "Key": self.location.object_key(source)}
        dst = self.location.object_key(target)
        if size is not None and size <= SINGLE_COPY_LIMIT:
            copy = lambda: self.client.copy_object(CopySource=src, Bucket=self.bucket, Key=dst)  # noqa: E731
        else:
            copy = lambda: self.client.copy(src, self.bucket, dst, Config=self.transfer_config)  # noqa: E731
        self._with_retries(target, "write", copy)
        self.delete(source)

    def exists(self, key: str) -> bool:
        object_key = self.location.object_key(key)
        try:
            self.client.head_object(Bucket=self.bucket, Key=object_key)
        except bexc.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in NOT_FOUND_CODES:
                self._check_bucket(key)
                return False
            raise self._error(exc, key, "check for") from None
        except bexc.BotoCoreError as exc:
            raise self._error(exc, key, "check for") from None
        return True

    def list(self, prefix: str = "") -> list[str]:
        wanted = prefix.strip("/")
        # The store's root ends with "/" so that s3://b/runs/r1 never lists s3://b/runs/r1x/...;
        # likewise prefix "a" must not match "ab/...": keep "a" itself and "a/..." only.
        root = f"{self.location.prefix}/" if self.location.prefix else ""
        query = root + wanted
        keys: list[str] = []

        def run() -> None:
            keys.clear()
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=query, PaginationConfig={"PageSize": self.list_page_size}
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    object_key = obj["Key"]
                    if object_key.endswith("/") or not object_key.startswith(root):
                        continue  # a "folder" placeholder some tools create, not an object
                    key = object_key[len(root):]
                    if is_temp_name(key.rpartition("/")[2]):
                        continue  # an unfinished write (see Store.publish)
                    if not wanted or key == wanted or key.startswith(wanted + "/"):
                        keys.append(key)

        self._with_retries(wanted, "list", run)
        return sorted(keys)

    def delete(self, key: str) -> None:
        object_key = self.location.object_key(key)
        self._with_retries(key, "delete", lambda: self.client.delete_object(Bucket=self.bucket, Key=object_key))

    # -- large objects --------------------------------------------------------------------
    def upload_file(self, local_path: str | os.PathLike[str], key: str) -> None:
        """Upload a local file with a managed (multipart above the threshold) transfer."""
        path = Path(local_path)
        object_key = self.location.object_key(key)
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise StoreError(f"{path}: cannot be read: {exc.strerror}") from None

        def upload() -> None:
            handle.seek(0)
            self.client.upload_fileobj(handle, self.bucket, object_key, Config=self.transfer_config)

        with handle:
            self._with_retries(key, "write", upload)

    def download_file(self, key: str, local_path: str | os.PathLike[str]) -> None:
        """Download an object to a local file; the file appears complete or not at all."""
        path = Path(local_path)
        object_key = self.location.object_key(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path.parent}: cannot be created: {exc.strerror}") from None
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")

        def download() -> None:
            with tmp.open("wb") as handle:
                self.client.download_fileobj(self.bucket, object_key, handle, Config=self.transfer_config)

        try:
            self._with_retries(key, "read", download)
            os.replace(tmp, path)
        except OSError as exc:
            raise StoreError(f"{path}: cannot be written: {exc.strerror}") from None
        finally:
            tmp.unlink(missing_ok=True)

    def size(self, key: str) -> int:
        """Size in bytes of the object at ``key``."""
        object_key = self.location.object_key(key)
        head = self._with_retries(key, "read", lambda: self.client.head_object(Bucket=self.bucket, Key=object_key))
        return int(head["ContentLength"])

    def open_input(self, key: str, buffer_size: int = 1 * MiB) -> io.BufferedReader:
        """A seekable, read-only file object over ``key`` that fetches byte ranges on demand.

        ``pyarrow.parquet.ParquetFile(store.open_input(key))`` then reads the footer and only the
        column chunks it needs instead of the whole object.
        """
        raw = RangedObjectReader(self, key, self.size(key))
        return io.BufferedReader(raw, buffer_size=buffer_size)

    def read_parquet(self, key: str, columns: list[str] | None = None):  # type: ignore[override]
        from receval.data.frames import frame_of_parquet

        if columns is None:
            return super().read_parquet(key)
        with self.open_input(key) as handle:
            return frame_of_parquet(handle, columns)


class RangedObjectReader(io.RawIOBase):
    """Raw, seekable reads of one S3 object by HTTP range requests (each one retried)."""

    def __init__(self, store: S3Store, key: str, size: int):
        self._store = store
        self._key = key
        self._object_key = store.location.object_key(key)
        self._size = size
        self._position = 0
        self.requests = 0
        self.bytes_fetched = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def size(self) -> int:
        return self._size

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._position >= self._size or len(view) == 0:
            return 0
        end = min(self._position + len(view), self._size) - 1
        start = self._position

        def fetch() -> bytes:
            body = self._store.client.get_object(
                Bucket=self._store.bucket, Key=self._object_key, Range=f"bytes={start}-{end}"
            )["Body"]
            try:
                return body.read()
            finally:
                body.close()

        data = self._store._with_retries(self._key, "read", fetch)
        self.requests += 1
        self.bytes_fetched += len(data)
        view[: len(data)] = data
        self._position += len(data)
        return len(data)
