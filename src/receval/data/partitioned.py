"""Pre-split inputs in part files, as data platforms export them (``dataset.name: splits``).

A Spark or BigQuery export of a train (or test) set is a Parquet file, a folder of part files
(``part-00000-….parquet``, with ``_SUCCESS`` and ``.crc`` files beside them) or a glob of them. This
module holds the pure rules over such a listing and its frames; reading the files through a store
is the pipeline's (:mod:`receval.pipeline.inputs`):

- which part files a prepare part reads (:func:`files_of_part`: a disjoint, deterministic subset);
- what a part file must hold (:func:`clean_part`: the rules of :mod:`receval.data.schema`, errors
  naming the file, column and row);
- how the files of one prepare part combine (:func:`combine_files`: one id type across the files, a
  (user, item) pair in at most one file).

A user's rows may sit in several part files (exports are rarely partitioned by user); nothing here
assumes otherwise.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import numpy as np
import pandas as pd

from receval.data import schema
from receval.errors import ConfigError, InputError

ROLES = ("train", "test")
GLOB_CHARACTERS = "*?["


def is_part_file(name: str) -> bool:
    """Whether a file name in an export folder is a data file (not ``_SUCCESS``, ``.crc``, ``.tmp``)."""
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith((".parquet", ".pq")) and not base.startswith(("_", "."))


def split_pattern(uri: str) -> tuple[str, str | None]:
    """``(folder, pattern)`` of a URI: the folder to list and the glob its files must match, if any.

    ``s3://b/x/part-*.parquet`` → ``("s3://b/x", "part-*.parquet")``; ``/data/train/`` →
    ``("/data/train", None)``. A pattern may hold ``/`` (``day=*/part-*.parquet``).
    """
    first = min((uri.find(c) for c in GLOB_CHARACTERS if c in uri), default=-1)
    if first < 0:
        return uri.rstrip("/"), None
    folder = uri[:first].rsplit("/", 1)[0]
    return folder, uri[len(folder) + 1:]


def select_files(keys: Sequence[str], pattern: str | None) -> list[str]:
    """The data files among ``keys`` (relative to the listed folder), sorted, matching ``pattern``."""
    chosen = [k for k in keys if is_part_file(k) and (pattern is None or fnmatch.fnmatchcase(k, pattern))]
    return sorted(chosen)


def files_of_part(files: Sequence[str], part: int, parts: int) -> list[str]:
    """The files prepare part ``part`` of ``parts`` reads: every ``parts``-th of the sorted listing.

    Round robin rather than contiguous ranges, so that parts get similar sizes when the export's
    file sizes drift along the listing.
    """
    if parts < 1 or not 0 <= part < parts:
        raise ConfigError(f"part {part}/{parts}: the index must be in 0..{parts - 1}", option="part")
    return list(sorted(files)[part::parts])


def clean_part(frame: pd.DataFrame, name: str, role: str) -> pd.DataFrame:
    """A part file's rows under the contract of ``role`` (train: ``user, item[, rating]``; test:
    ``user, item, rating``); InputError naming ``name``, the column and the row otherwise."""
    if role == "train":
        return schema.clean_train(frame, name)
    if role == "test":
        return schema.clean_test(frame, name)
    raise ValueError(f"unknown role {role!r}")


def combine_files(frames: Sequence[tuple[str, pd.DataFrame]], role: str) -> pd.DataFrame:
    """Concatenate the cleaned frames of several part files.

    Refuses ids of different types in different files (integers in one, text in another: the same
    user would be two) and a (user, item) pair present in two files (which rating would count?).
    """
    frames = [(name, frame) for name, frame in frames]
    if not frames:
        return pd.DataFrame({"user": pd.Series(dtype=np.int64), "item": pd.Series(dtype=np.int64),
                             "rating": pd.Series(dtype=np.float64)})
    nonempty = [(n, f) for n, f in frames if len(f)] or frames[:1]
    for column in ("user", "item"):
        kinds = {n: pd.api.types.is_integer_dtype(f[column].dtype) for n, f in nonempty}
        if len(set(kinds.values())) > 1:
            ints = next(n for n, k in kinds.items() if k)
            text = next(n for n, k in kinds.items() if not k)
            raise InputError(f"{text}: column '{column}' holds text ids, {ints} integer ids: use one type in every "
                             f"{role} part file")
    combined = pd.concat([f for _, f in nonempty], ignore_index=True)
    source = np.repeat(np.arange(len(nonempty)), [len(f) for _, f in nonempty])
    duplicated = combined.duplicated(subset=["user", "item"], keep=False).to_numpy()
    if duplicated.any():
        pos = np.flatnonzero(duplicated)
        first, second = pos[0], pos[1:][
            (combined["user"].to_numpy()[pos[1:]] == combined["user"].iloc[pos[0]])
            & (combined["item"].to_numpy()[pos[1:]] == combined["item"].iloc[pos[0]])][0]
        offsets = np.cumsum([0] + [len(f) for _, f in nonempty])
        row = int(second - offsets[source[second]])
        raise InputError(
            f"{nonempty[source[second]][0]}: row {row + 1}: user {combined['user'].iloc[first]!r}, item "
            f"{combined['item'].iloc[first]!r} is also in {nonempty[source[first]][0]} (a pair may be in one "
            f"{role} part file only)"
        )
    return combined


__all__ = ["clean_part", "combine_files", "files_of_part", "is_part_file", "select_files", "split_pattern"]
