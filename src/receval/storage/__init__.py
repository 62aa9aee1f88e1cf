"""One store interface for run folders, a local directory or ``s3://bucket/prefix``: :func:`open_store`.

The interface and its publishing rules (objects aside, marker last) are in :mod:`receval.storage.base`;
the backends in :mod:`receval.storage.local` and :mod:`receval.storage.s3`.
"""

from __future__ import annotations

from typing import Any

from receval.storage.base import MARKER, TMP_SUFFIX, Store, is_temp_name, join, json_bytes, shown_key, temp_name


def open_store(uri: str, **options: Any) -> Store:
    """Open ``uri``: ``s3://bucket/prefix`` for object storage, anything else as a local folder.

    ``options`` go to the S3 backend (``endpoint_url``, ``path_style``, ...).
    """
    if uri.startswith("s3://"):
        from receval.storage.s3 import S3Store

        return S3Store(uri, **options)
    from receval.storage.local import LocalStore

    return LocalStore(uri)


__all__ = ["MARKER", "TMP_SUFFIX", "Store", "is_temp_name", "join", "json_bytes", "open_store", "shown_key", "temp_name"]
