"""The run folder: the ONE place that knows its keys (``docs/run-layout.md``).

Every key is relative to the store's root::

    runs/<run-id>/run.json
    runs/<run-id>/dataset/{train,test,features,items}.parquet        (+ _SUCCESS)
    runs/<run-id>/models/<algorithm>/...                             (+ _SUCCESS)
    runs/<run-id>/recs/<algorithm>/shard-00003-of-00008.parquet      (+ .done)
    runs/<run-id>/metrics/<algorithm>/shard-00003-of-00008/...       (+ _SUCCESS)
    runs/<run-id>/metrics/<algorithm>/summary.json ...               (+ _SUCCESS)
    runs/<run-id>/summary.json, summary.parquet                      (+ _SUCCESS, last of all)

Steps, the local runner and the results readers build keys only through these functions, so a
change of layout is a change of this file (and of :data:`LAYOUT_VERSION`).
"""

from __future__ import annotations

import re

from receval.errors import ConfigError
from receval.metrics.sharding import Shard
from receval.storage import MARKER, join

LAYOUT_VERSION = 1
RUNS = "runs"
DATASET_DIR = "dataset"
DATASET_TABLES = ("train", "test", "features", "items")
DONE_SUFFIX = ".done"

# Argo parameters, Kubernetes label values and S3 keys all accept these characters.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(value: str, what: str) -> str:
    """Refuse a run id or algorithm label that would not be a safe single path segment."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{what} {value!r}: use 1-128 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )
    return value


def run_prefix(run_id: str) -> str:
    """``runs/<run-id>``."""
    return join(RUNS, check_name(run_id, "run id"))


def run_json_key(run_id: str) -> str:
    return join(run_prefix(run_id), "run.json")


def run_marker_key(run_id: str) -> str:
    """The run-level ``_SUCCESS``: written last by the aggregate step."""
    return join(run_prefix(run_id), MARKER)


def dataset_prefix(run_id: str) -> str:
    return join(run_prefix(run_id), DATASET_DIR)


def dataset_key(run_id: str, name: str) -> str:
    """``runs/<run-id>/dataset/<name>.parquet`` for ``name`` in train, test, features, items."""
    if name not in DATASET_TABLES:
        raise ValueError(f"unknown dataset table {name!r}")
    return join(dataset_prefix(run_id), f"{name}.parquet")


def model_prefix(run_id: str, algorithm: str) -> str:
    return join(run_prefix(run_id), "models", check_name(algorithm, "algorithm"))


def recs_prefix(run_id: str, algorithm: str) -> str:
    return join(run_prefix(run_id), "recs", check_name(algorithm, "algorithm"))


def recs_key(run_id: str, algorithm: str, shard: Shard) -> str:
    """``recs/<algorithm>/shard-IIIII-of-NNNNN.parquet``."""
    return join(recs_prefix(run_id, algorithm), f"{shard.name}.parquet")


def recs_done_key(run_id: str, algorithm: str, shard: Shard) -> str:
    """The marker object of a recs shard, written after the shard's parquet."""
    return recs_key(run_id, algorithm, shard) + DONE_SUFFIX


def metrics_prefix(run_id: str, algorithm: str) -> str:
    """``metrics/<algorithm>``: the algorithm's merged summary lives here."""
    return join(run_prefix(run_id), "metrics", check_name(algorithm, "algorithm"))


def metrics_root(run_id: str) -> str:
    return join(run_prefix(run_id), "metrics")


def metrics_shard_prefix(run_id: str, algorithm: str, shard: Shard) -> str:
    """``metrics/<algorithm>/shard-IIIII-of-NNNNN``: the partial state of one shard."""
    return join(metrics_prefix(run_id, algorithm), shard.name)


def summary_key(run_id: str) -> str:
    return join(run_prefix(run_id), "summary.json")


def summary_parquet_key(run_id: str) -> str:
    return join(run_prefix(run_id), "summary.parquet")


_SHARD_DIR = re.compile(r"^shard-(\d{5})-of-(\d{5})$")


def parse_shard_name(name: str) -> Shard | None:
    """``shard-00003-of-00008`` → ``Shard(3, 8)``; None for any other name."""
    m = _SHARD_DIR.fullmatch(name)
    if not m:
        return None
    index, count = int(m.group(1)), int(m.group(2))
    return Shard(index, count) if 0 <= index < count else None


__all__ = [
    "LAYOUT_VERSION",
    "check_name",
    "dataset_key",
    "dataset_prefix",
    "metrics_prefix",
    "metrics_root",
    "metrics_shard_prefix",
    "model_prefix",
    "parse_shard_name",
    "recs_done_key",
    "recs_key",
    "recs_prefix",
    "run_json_key",
    "run_marker_key",
    "run_prefix",
    "summary_key",
    "summary_parquet_key",
]
