"""One store interface for run folders: a local directory or ``s3://bucket/prefix`` (the backends
:mod:`receval.storage.local` and :mod:`receval.storage.s3` implement it; :func:`receval.storage.open_store`
picks one).

Keys are ``/``-separated paths relative to the store's root. Writers publish a folder of outputs
atomically from a reader's view: data objects first, then the completion marker ``_SUCCESS``
last; readers trust only marked folders (:meth:`Store.is_complete`). A single object is written
under a temporary name and renamed (local) or uploaded in one PUT / completed multipart upload
(S3), so no reader ever sees half an object. :meth:`Store.publish` writes the new objects aside
(hidden temporary names) and swaps them in only once every one of them is written, so a failed
overwrite (disk full, lost server) leaves the previous result whole and marked.
:meth:`Store.create_exclusive` creates an object only if it does not exist: what run ownership
is built on (``docs/storage.md`` says which servers guarantee it).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import pandas as pd

from receval.errors import StoreError

MARKER = "_SUCCESS"
TMP_SUFFIX = ".tmp"


def temp_name(key: str) -> str:
    """A hidden sibling of ``key`` for an unfinished write: ``dir/.name.<host>-<pid>-<random>.tmp``.

    Listings skip such names; the host and process id let a later write on the same host tell a
    crashed writer's leftovers from a live writer's file.
    """
    head, _, name = key.rpartition("/")
    host = socket.gethostname().replace(".", "_").replace("-", "_") or "host"
    tmp = f".{name}.{host}-{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}"
    return f"{head}/{tmp}" if head else tmp


def shown_key(key: str) -> str:
    """The key a temporary sibling stands for (:func:`temp_name`), for messages: the user's file name."""
    head, _, name = key.rpartition("/")
    if not is_temp_name(name):
        return key
    final = name[1:-len(TMP_SUFFIX)].rsplit(".", 1)[0]
    return f"{head}/{final}" if head else final


def is_temp_name(name: str) -> bool:
    """Whether a file or object base name is an unfinished write (:func:`temp_name`)."""
    return name.startswith(".") and name.endswith(TMP_SUFFIX)


def json_bytes(value: Any) -> bytes:
    """The JSON documents of a store (run.json, markers, summaries): indented, one newline at the end."""
    return (json.dumps(value, indent=2, sort_keys=False, default=str) + "\n").encode()


def join(*parts: str) -> str:
    """Join key parts with ``/``, ignoring empty parts and stray slashes."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class Store(ABC):
    """A place where run folders live. Subclasses implement the six primitive operations (the abstract methods below)."""

    uri: str

    # -- primitives -------------------------------------------------------------------------
    @abstractmethod
    def read_if_exists(self, key: str) -> bytes | None:
        """The object at ``key``, or None when there is none: one request, where :meth:`exists`
        then a read would be two (and could see the object vanish between them)."""

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

    @abstractmethod
    def create_exclusive(self, key: str, data: bytes) -> bool:
        """Create ``key`` with ``data`` only if no object is there; False when one already is.

        Atomic where :attr:`atomic_create` is True: of two concurrent callers exactly one gets True.
        """

    #: Whether :meth:`create_exclusive` is atomic against concurrent writers on this store.
    atomic_create: bool = True

    def rename(self, source: str, target: str, size: int | None = None) -> None:
        """Move the object ``source`` to ``target`` (replacing it); readers see the old or the new one.

        ``size``, when the caller knows it (it wrote ``source``), spares a store the lookup of it.
        """
        self.write_bytes(target, self.read_bytes(source))
        self.delete(source)

    # -- derived ----------------------------------------------------------------------------
    def url(self, key: str) -> str:
        """A human-readable address of ``key`` for messages."""
        return f"{self.uri.rstrip('/')}/{key}"

    def read_bytes(self, key: str) -> bytes:
        """Return the object at ``key``; :class:`~receval.errors.StoreError` naming it if it is missing."""
        data = self.read_if_exists(key)
        if data is None:
            raise StoreError(f"{self.url(key)}: not found")
        return data

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_bytes(key))

    def read_json_if_exists(self, key: str) -> Any | None:
        """The JSON document at ``key``, or None when there is none (:meth:`read_if_exists`)."""
        data = self.read_if_exists(key)
        return None if data is None else json.loads(data)

    def write_json(self, key: str, value: Any) -> None:
        self.write_bytes(key, json_bytes(value))

    def open_input(self, key: str) -> io.BufferedIOBase:
        """A seekable binary file for ``key`` (S3 overrides this with ranged reads)."""
        return io.BytesIO(self.read_bytes(key))

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pd.DataFrame:
        from receval.data.frames import frame_of_parquet

        return frame_of_parquet(self.read_bytes(key), columns)

    def write_parquet(self, key: str, frame: pd.DataFrame) -> None:
        from receval.data.frames import parquet_bytes

        self.write_bytes(key, parquet_bytes(frame))

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
        return self.read_json_if_exists(join(prefix, MARKER))

    def publish(
        self, prefix: str, objects: Mapping[str, bytes], marker: Mapping[str, Any] | None = None, *,
        remove: tuple[str, ...] = (), if_absent: bool = False,
    ) -> bool:
        """Publish a folder: write every object aside, then swap them in and write the marker last.

        Until every new object is written (under a hidden temporary name) the folder is untouched:
        a failure there leaves the previous result whole and still marked. Then the old marker is
        removed, the objects are renamed into place, the names in ``remove`` (files of another kind
        of output) are deleted and the marker is written. A crash during the swap leaves no marker,
        so readers skip the folder and a rerun overwrites it.

        With ``if_absent`` a folder that is already published (by a concurrent, identical writer) is
        left as it is, marker included, and False is returned: a reader never sees its marker vanish.
        """
        marker_key = join(prefix, MARKER)
        staged: dict[str, str] = {}
        try:
            for name, data in objects.items():
                staged[name] = temp_name(join(prefix, name))
                self.write_bytes(staged[name], data)
        except BaseException:
            self._discard(staged.values())
            raise
        if if_absent and self.exists(marker_key):
            self._discard(staged.values())
            return False
        # The old marker goes first, unless it is this very marker: an identical writer (a second
        # run of the same configuration, a retried pod) republishes what readers already trust.
        if not if_absent and self.marker(prefix) != dict(marker or {}):
            self.delete(marker_key)
        for name, tmp in staged.items():
            self.rename(tmp, join(prefix, name), size=len(objects[name]))
        for name in remove:
            if name not in objects:
                self.delete(join(prefix, name))
        self.write_json(marker_key, dict(marker or {}))
        return True

    def _discard(self, keys: Any) -> None:
        for key in keys:
            try:
                self.delete(key)
            except Exception:  # noqa: BLE001 - cleaning up after the error being raised; a leftover is hidden
                pass


__all__ = ["MARKER", "TMP_SUFFIX", "Store", "is_temp_name", "join", "json_bytes", "shown_key", "temp_name"]
