"""Evaluation inputs and outputs as bytes and in a store: the run's global statistics, the partial
state of a shard, or the final summary and per-user values. Shared by ``receval evaluate``/``merge``
(files) and the pipeline's prepare/evaluate/aggregate steps.

The global statistics are three objects: ``statistics.json`` (format ``receval-statistics/1``),
``item_statistics.parquet`` and ``features.parquet``. A partial state is three objects: ``partial.json`` (its metadata, format ``receval-partial/1``),
``per_user.parquet`` and ``exposure.parquet``. The encoding lives here, not in the metrics, which
hand over plain data (:meth:`~receval.metrics.engine.PartialState.metadata`,
:meth:`~receval.metrics.statistics.GlobalStatistics.metadata`) and do no I/O.

Outputs are published so that a crash never leaves a folder that looks complete and a failed
overwrite never loses the previous result: every object is written aside first, then swapped in,
the files of the other kind of output (a partial state under a summary, or the reverse) are
removed, and the ``_SUCCESS`` marker, which says which kind the folder holds, comes last.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from receval._version import __version__
from receval.data.frames import frame_of_parquet, parquet_bytes
from receval.errors import InputError
from receval.metrics.engine import PartialState, merge
from receval.metrics.statistics import GlobalStatistics
from receval.storage import MARKER, Store, join, json_bytes

STATISTICS_FORMAT = "receval-statistics/1"
PARTIAL_FORMAT = "receval-partial/1"
PARTIAL_FILES = ("partial.json", "per_user.parquet", "exposure.parquet")
# The result files of an evaluation folder (``receval evaluate --out``, ``metrics/<algorithm>/``)
SUMMARY_FILE = "summary.json"
SUMMARY_TABLE_FILE = "summary.parquet"
PER_USER_FILE = "per_user.parquet"
RESULT_FILES = (SUMMARY_FILE, SUMMARY_TABLE_FILE, PER_USER_FILE)


def statistics_objects(statistics: GlobalStatistics) -> dict[str, bytes]:
    """``statistics.json``, ``item_statistics.parquet`` and ``features.parquet``."""
    items = statistics.item_table()
    features = statistics.features if statistics.features is not None else pd.DataFrame(
        {"item": pd.Series(dtype=items["item"].dtype), "feature": pd.Series(dtype=object),
         "weight": pd.Series(dtype=np.float64)})
    return {
        "statistics.json": json_bytes({"format": STATISTICS_FORMAT, **statistics.metadata()}),
        "item_statistics.parquet": parquet_bytes(items),
        "features.parquet": parquet_bytes(features),
    }


@contextmanager
def _decoding(source: str, what: str) -> Iterator[None]:
    """Decoding errors of a stored ``what`` become one InputError naming ``source``: a missing
    object (incomplete) or bytes that do not parse (unreadable)."""
    try:
        yield
    except KeyError as exc:
        raise InputError(f"{source}: incomplete {what} (missing {exc.args[0]})") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{source}: unreadable {what}: {str(exc).splitlines()[0]}") from None


def statistics_from_objects(objects: dict[str, bytes], source: str = "statistics") -> GlobalStatistics:
    """The statistics of :func:`statistics_objects`; an unreadable one is an InputError naming ``source``."""
    with _decoding(source, "global statistics"):
        meta = json.loads(objects["statistics.json"])
        if meta.get("format") != STATISTICS_FORMAT:
            raise InputError(f"{source}: not receval global statistics (format {meta.get('format')!r})")
        items = frame_of_parquet(objects["item_statistics.parquet"])
        features = frame_of_parquet(objects["features.parquet"]) if meta["has_features"] else None
        return GlobalStatistics.from_metadata(meta, items, features)


def partial_objects(state: PartialState) -> dict[str, bytes]:
    """The files of a partial state: ``partial.json``, ``per_user.parquet``, ``exposure.parquet``."""
    meta = {"format": PARTIAL_FORMAT, "receval": __version__, **state.metadata()}
    return {
        "per_user.parquet": parquet_bytes(state.per_user),
        "exposure.parquet": parquet_bytes(state.exposure),
        "partial.json": json_bytes(meta),
    }


def partial_from_objects(objects: dict[str, bytes], source: str = "partial") -> PartialState:
    """The state of :func:`partial_objects`; an unreadable or incomplete one is an InputError naming ``source``."""
    with _decoding(source, "partial state"):
        meta = json.loads(objects["partial.json"])
        if meta.get("format") != PARTIAL_FORMAT:
            raise InputError(f"{source}: not a receval partial state (format {meta.get('format')!r})")
        return PartialState.from_metadata(meta, frame_of_parquet(objects["per_user.parquet"]),
                                          frame_of_parquet(objects["exposure.parquet"]))


def write_partial(store: Store, prefix: str, state: PartialState, extra: dict[str, Any] | None = None) -> None:
    """Publish a shard's partial state under ``prefix``, replacing any evaluation written there before."""
    store.publish(prefix, partial_objects(state), {"kind": "partial", "shards": state.shards, **(extra or {})},
                  remove=RESULT_FILES)


def read_partial(store: Store, prefix: str) -> PartialState:
    """Read a published partial state; refuse an unfinished one, or another kind of output, naming it."""
    where = store.url(prefix)
    marker = store.marker(prefix)
    if marker is None:
        if store.exists(join(prefix, "partial.json")):
            raise InputError(f"{where}: unfinished shard output (no {MARKER} marker): rerun that shard")
        raise InputError(f"{where}: no partial state here (expected {', '.join(PARTIAL_FILES)} and {MARKER})")
    kind = marker.get("kind") if isinstance(marker, dict) else None
    if kind != "partial":
        what = "a finished evaluation (summary.json)" if kind == "summary" else f"output of kind {kind!r}"
        raise InputError(
            f"{where}: not a partial state but {what}: merge the folders of `receval evaluate --shard I/N`"
        )
    return partial_from_objects({name: store.read_bytes(join(prefix, name)) for name in PARTIAL_FILES}, where)


def write_results(
    store: Store, prefix: str, state: PartialState, records: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Publish ``summary.json`` and ``per_user.parquet`` (and ``summary.parquet``) under ``prefix``.

    Written aside and swapped in (:meth:`~receval.storage.Store.publish`): a failure leaves the
    previous result whole; a shard's partial state written there before is removed.
    """
    from concurrent.futures import ThreadPoolExecutor

    # the per-user table is encoded while the summary is summed: both are a second at a million
    # users, and Parquet's encoder runs without the GIL
    with ThreadPoolExecutor(1) as pool:
        per_user = pool.submit(parquet_bytes, state.per_user)
        records = state.summary() if records is None else records
        objects = {
            PER_USER_FILE: per_user.result(),
            SUMMARY_TABLE_FILE: parquet_bytes(summary_frame(records)),
            SUMMARY_FILE: json_bytes(records),
        }
    store.publish(prefix, objects, {"kind": "summary", "users": state.n_users, **(extra or {})},
                  remove=PARTIAL_FILES)
    return records


def summary_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Summary records as a flat table (missing parameters as nulls)."""
    frame = pd.DataFrame.from_records(records)
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return frame


def merge_partials(store_prefixes: list[tuple[Store, str]]) -> PartialState:
    """Read and merge the partial states of every shard (refusing a missing or foreign shard)."""
    states = [read_partial(store, prefix) for store, prefix in store_prefixes]
    names = [store.url(prefix) for store, prefix in store_prefixes]
    return merge(states, names=names)
