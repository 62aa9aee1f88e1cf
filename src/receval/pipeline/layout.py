"""The run folder: the ONE place that knows its keys (``docs/run-layout.md``).

Every key is relative to the store's root::

    runs/<run-id>/run.json
    runs/<run-id>/dataset/train/shard-00003-of-00008/part-00000-of-00002.parquet  (one bucket per shard)
    runs/<run-id>/dataset/test/shard-00003-of-00008/part-00000-of-00002.parquet
    runs/<run-id>/dataset/statistics/{statistics.json,item_statistics.parquet,features.parquet}
    runs/<run-id>/dataset/items.parquet                              (+ dataset/_SUCCESS, by prepare --finish)
    runs/<run-id>/dataset/parts/part-00000-of-00002/...              (+ _SUCCESS, by prepare --part 0/2)
    runs/<run-id>/models/<algorithm>/...                             (+ _SUCCESS)
    runs/<run-id>/recs/<algorithm>/shard-00003-of-00008.parquet      (+ .done)
    runs/<run-id>/metrics/<algorithm>/shard-00003-of-00008/...       (+ _SUCCESS)
    runs/<run-id>/metrics/<algorithm>/summary.json ...               (+ _SUCCESS)
    runs/<run-id>/summary.json, summary.parquet                      (+ _SUCCESS, last of all)
    runs/<run-id>/gate/gate.json                                     (+ _SUCCESS; after the run, by `results gate`)

Steps, the local runner and the results readers build keys only through these functions, so a
change of layout is a change of this file (and of :data:`LAYOUT_VERSION`).
"""

from __future__ import annotations

import re

from receval import names
from receval.errors import InputError
from receval.metrics.sharding import Shard
from receval.storage import MARKER, join

LAYOUT_VERSION = 2
RUNS = "runs"
DATASET_DIR = "dataset"
BUCKETED_TABLES = ("train", "test")
DONE_SUFFIX = ".done"
GATE_FILE = "gate.json"


def name_in(prefix: str, key: str) -> str:
    """``key``'s name inside the folder ``prefix``: what :meth:`~receval.storage.Store.publish` takes."""
    head = prefix.rstrip("/") + "/"
    if not key.startswith(head):
        raise ValueError(f"{key} is not inside {prefix}")
    return key[len(head):]


def run_prefix(run_id: str) -> str:
    """``runs/<run-id>``."""
    return join(RUNS, names.check_label(run_id, "run id"))


def run_json_key(run_id: str) -> str:
    return join(run_prefix(run_id), "run.json")


def run_marker_key(run_id: str) -> str:
    """The run-level ``_SUCCESS``: written last by the aggregate step."""
    return join(run_prefix(run_id), MARKER)


def dataset_prefix(run_id: str) -> str:
    return join(run_prefix(run_id), DATASET_DIR)


def part_name(part: Shard) -> str:
    """``part-00000-of-00002``: prepare part ``0/2``."""
    return f"part-{part.index:05d}-of-{part.count:05d}"


def bucket_prefix(run_id: str, table: str, shard: Shard) -> str:
    """``dataset/<table>/shard-IIIII-of-NNNNN``: the rows of one shard's users (train or test)."""
    if table not in BUCKETED_TABLES:
        raise ValueError(f"unknown bucketed table {table!r}")
    return join(dataset_prefix(run_id), table, shard.name)


def bucket_key(run_id: str, table: str, shard: Shard, part: Shard) -> str:
    """``dataset/<table>/shard-…/part-PPPPP-of-QQQQQ.parquet``: what prepare part ``part`` wrote of
    the bucket (a bucket is complete with all its parts, once ``dataset/_SUCCESS`` exists)."""
    return join(bucket_prefix(run_id, table, shard), f"{part_name(part)}.parquet")


def statistics_prefix(run_id: str) -> str:
    """``dataset/statistics``: the merged global statistics every predict/evaluate pod reads."""
    return join(dataset_prefix(run_id), "statistics")


def items_key(run_id: str) -> str:
    """``dataset/items.parquet``: item ids [and titles]."""
    return join(dataset_prefix(run_id), "items.parquet")


def prepare_part_prefix(run_id: str, part: Shard) -> str:
    """``dataset/parts/part-PPPPP-of-QQQQQ``: a prepare part's partial statistics (+ its _SUCCESS)."""
    return join(prepare_parts_root(run_id), part_name(part))


def part_users_key(run_id: str, part: Shard, table: str, shard: Shard) -> str:
    """``dataset/parts/part-…/<table>-users/shard-….parquet``: the distinct users of one bucket that
    this prepare part saw; the finish unites them per bucket to count users exactly."""
    if table not in BUCKETED_TABLES:
        raise ValueError(f"unknown bucketed table {table!r}")
    return join(prepare_part_prefix(run_id, part), f"{table}-users", f"{shard.name}.parquet")


def part_items_key(run_id: str, part: Shard) -> str:
    """``dataset/parts/part-…/items.parquet``: the item table part 0 found (the finish publishes it)."""
    return join(prepare_part_prefix(run_id, part), "items.parquet")


def part_statistics_prefix(run_id: str, part: Shard) -> str:
    """``dataset/parts/part-…/statistics``: the statistics of the rows this prepare part read."""
    return join(prepare_part_prefix(run_id, part), "statistics")


_PART_DIR = re.compile(r"^part-(\d{5})-of-(\d{5})$")


def parse_part_name(name: str) -> Shard | None:
    """``part-00001-of-00004`` → ``Shard(1, 4)`` (prepare part 1/4); None for any other name."""
    m = _PART_DIR.fullmatch(name)
    if not m:
        return None
    index, count = int(m.group(1)), int(m.group(2))
    return Shard(index, count) if 0 <= index < count else None


def prepare_parts_root(run_id: str) -> str:
    """``dataset/parts``: the folders of the prepare parts."""
    return join(dataset_prefix(run_id), "parts")


def model_prefix(run_id: str, algorithm: str) -> str:
    return join(run_prefix(run_id), "models", names.check_label(algorithm, "algorithm"))


def recs_prefix(run_id: str, algorithm: str) -> str:
    return join(run_prefix(run_id), "recs", names.check_label(algorithm, "algorithm"))


def recs_key(run_id: str, algorithm: str, shard: Shard) -> str:
    """``recs/<algorithm>/shard-IIIII-of-NNNNN.parquet``."""
    return join(recs_prefix(run_id, algorithm), f"{shard.name}.parquet")


def recs_done_key(run_id: str, algorithm: str, shard: Shard) -> str:
    """The marker object of a recs shard, written after the shard's parquet."""
    return recs_key(run_id, algorithm, shard) + DONE_SUFFIX


def metrics_prefix(run_id: str, algorithm: str) -> str:
    """``metrics/<algorithm>``: the algorithm's merged summary lives here."""
    return join(run_prefix(run_id), "metrics", names.check_label(algorithm, "algorithm"))


def metrics_root(run_id: str) -> str:
    return join(run_prefix(run_id), "metrics")


def metrics_shard_prefix(run_id: str, algorithm: str, shard: Shard) -> str:
    """``metrics/<algorithm>/shard-IIIII-of-NNNNN``: the partial state of one shard."""
    return join(metrics_prefix(run_id, algorithm), shard.name)


def summary_key(run_id: str) -> str:
    return join(run_prefix(run_id), "summary.json")


def summary_parquet_key(run_id: str) -> str:
    return join(run_prefix(run_id), "summary.parquet")


def check_layout(meta: dict, where: str) -> None:
    """Refuse a run folder written by another layout version, in one line naming it."""
    version = meta.get("layout")
    if version != LAYOUT_VERSION:
        raise InputError(
            f"{where}: run folder of layout {version}, this receval reads layout {LAYOUT_VERSION} "
            f"(docs/run-layout.md): prepare the data again under a new run id"
        )


def gate_prefix(run_id: str) -> str:
    """``runs/<run-id>/gate``: the regression gate's verdict, published after the run is complete."""
    return join(run_prefix(run_id), "gate")


def gate_key(run_id: str) -> str:
    """``runs/<run-id>/gate/gate.json``."""
    return join(gate_prefix(run_id), GATE_FILE)


_SHARD_DIR = re.compile(r"^shard-(\d{5})-of-(\d{5})$")


def parse_shard_name(name: str) -> Shard | None:
    """``shard-00003-of-00008`` → ``Shard(3, 8)``; None for any other name."""
    m = _SHARD_DIR.fullmatch(name)
    if not m:
        return None
    index, count = int(m.group(1)), int(m.group(2))
    return Shard(index, count) if 0 <= index < count else None


__all__ = [
    "BUCKETED_TABLES",
    "LAYOUT_VERSION",
    "bucket_key",
    "bucket_prefix",
    "check_layout",
    "dataset_prefix",
    "items_key",
    "part_name",
    "parse_part_name",
    "part_items_key",
    "part_statistics_prefix",
    "prepare_parts_root",
    "part_users_key",
    "prepare_part_prefix",
    "statistics_prefix",
    "gate_key",
    "gate_prefix",
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
