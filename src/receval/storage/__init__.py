"""One store interface for run folders: a local directory or ``s3://bucket/prefix``.

Keys are ``/``-separated paths relative to the store's root. Writers publish a folder of outputs
atomically from a reader's view: data objects first, then the completion marker ``_SUCCESS``
last; readers trust only marked folders (:meth:`Store.is_complete`). A single object is written
under a temporary name and renamed (local) or uploaded in one PUT / completed multipart upload
(S3), so no reader ever sees half an object.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import pandas as pd

MARKER = "_SUCCESS"


def join(*parts: str) -> str:
    """Join key parts with ``/``, ignoring empty parts and stray slashes."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class Store(ABC):
    """A place where run folders live. Subclasses implement the five primitive operations."""

    uri: str

    # -- primitives -------------------------------------------------------------------------
    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """Return the object at ``key``; :class:`~receval.errors.StoreError` if it is missing."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically (readers see the old object or the new one)."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object exists at ``key``."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """All object keys under ``prefix`` (recursive), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete the object at ``key`` if it exists."""

    # -- derived ----------------------------------------------------------------------------
    def url(self, key: str) -> str:
        """A human-readable address of ``key`` for messages."""
        return f"{self.uri.rstrip('/')}/{key}"

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def write_json(self, key: str, value: Any) -> None:
        self.write_bytes(key, (json.dumps(value, indent=2, sort_keys=False, default=str) + "\n").encode())

    def open_input(self, key: str) -> io.BufferedIOBase:
        """A seekable binary file for ``key`` (S3 overrides this with ranged reads)."""
        return io.BytesIO(self.read_bytes(key))

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.read_bytes(key)), columns=columns)

    def write_parquet(self, key: str, frame: pd.DataFrame) -> None:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        self.write_bytes(key, buf.getvalue())

    def delete_prefix(self, prefix: str) -> None:
        for key in self.list(prefix):
            self.delete(key)

    def list_dirs(self, prefix: str = "") -> list[str]:
        """Immediate sub-folder names under ``prefix``."""
        base = prefix.rstrip("/") + "/" if prefix else ""
        names = {k[len(base):].split("/", 1)[0] for k in self.list(prefix) if "/" in k[len(base):]}
        return sorted(names)

    def is_complete(self, prefix: str) -> bool:
        """Whether the folder ``prefix`` was published (its marker exists)."""
        return self.exists(join(prefix, MARKER))

    def marker(self, prefix: str) -> dict[str, Any] | None:
        """The marker payload of a published folder, or None when it is not complete."""
        key = join(prefix, MARKER)
        return self.read_json(key) if self.exists(key) else None

    def publish(self, prefix: str, objects: Mapping[str, bytes], marker: Mapping[str, Any] | None = None) -> None:
        """Publish a folder: remove an old marker, write every object, then write the marker last.

        A crash at any point leaves the folder without a marker, so readers skip it and a rerun
        overwrites it.
        """
        self.delete(join(prefix, MARKER))
        for name, data in objects.items():
            self.write_bytes(join(prefix, name), data)
        self.write_json(join(prefix, MARKER), dict(marker or {}))


def open_store(uri: str, **options: Any) -> Store:
    """Open ``uri``: ``s3://bucket/prefix`` for object storage, anything else as a local folder.

    ``options`` go to the S3 backend (``endpoint_url``, ``path_style``, ...).
    """
    if uri.startswith("s3://"):
        from receval.storage.s3 import S3Store

        return S3Store(uri, **options)
    from receval.storage.local import LocalStore

    return LocalStore(uri)
