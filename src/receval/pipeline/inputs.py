"""Reading pre-split part files (``dataset.name: splits``) through the storage layer.

The rules (which files, which columns, one part file per (user, item)) are
:mod:`receval.data.partitioned`'s; this module only lists and reads, locally or from ``s3://``
(endpoint and credentials from the environment, as for the run folder).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from receval.data import partitioned
from receval.errors import InputError, StoreError
from receval.storage import Store, open_store


def list_part_files(uri: str, **store_options: Any) -> tuple[Store, list[str]]:
    """The store rooted at ``uri``'s folder and the keys of its data files (sorted).

    ``uri`` is a Parquet file, a folder of part files (recursively; ``_SUCCESS``, ``.crc`` and other
    non-Parquet files ignored) or a glob (``…/part-*.parquet``, ``…/day=*/*.parquet``).
    """
    folder, pattern = partitioned.split_pattern(uri)
    if pattern is None and partitioned.is_part_file(folder):
        folder, _, pattern = folder.rpartition("/")
    store = open_store(folder or ".", **store_options)
    try:
        keys = partitioned.select_files(store.list(""), pattern)
    except StoreError as exc:
        raise InputError(f"{uri}: cannot be listed: {exc}") from None
    if not keys:
        raise InputError(f"{uri}: no Parquet part files here (expected a .parquet file, a folder or a glob of them)")
    return store, keys


def read_part_file(store: Store, key: str, role: str) -> pd.DataFrame:
    """One part file under the ``role`` contract; errors name the file, column and row."""
    name = store.url(key)
    try:
        frame = store.read_parquet(key)
    except StoreError as exc:
        raise InputError(f"{name}: cannot be read: {exc}") from None
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{name}: not a readable Parquet file: {first}") from None
    return partitioned.clean_part(frame, name, role)


def read_part(uri: str, role: str, part: int, parts: int, **store_options: Any) -> tuple[pd.DataFrame, list[str]]:
    """The rows of the part files that prepare part ``part`` of ``parts`` reads, and their names."""
    store, keys = list_part_files(uri, **store_options)
    mine = partitioned.files_of_part(keys, part, parts)
    frames = [(store.url(k), read_part_file(store, k, role)) for k in mine]
    return partitioned.combine_files(frames, role), [name for name, _ in frames]


def read_features_file(uri: str, **store_options: Any) -> pd.DataFrame:
    """Item features ``item, feature[, weight]`` from one Parquet or CSV file, local or s3://."""
    from receval.data import schema

    if not uri.startswith("s3://"):
        return schema.read_features(uri)
    parent, _, name = uri.rpartition("/")
    store = open_store(parent, **store_options)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / name
        try:
            local.write_bytes(store.read_bytes(name))
        except StoreError as exc:
            raise InputError(f"{uri}: cannot be read: {exc}") from None
        try:
            return schema.read_features(local)
        except InputError as exc:
            raise InputError(str(exc).replace(str(local), uri)) from None


__all__ = ["list_part_files", "read_features_file", "read_part", "read_part_file"]
