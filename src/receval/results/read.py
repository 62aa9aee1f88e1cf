"""Runs, summaries and per-user values of a results store.

A store holds run folders (``runs/<run-id>/``, see ``docs/run-layout.md``). Readers trust only
complete outputs: a run's ``summary.json`` counts once the run folder's ``_SUCCESS`` marker exists,
an algorithm's ``metrics/<algorithm>/`` files once that folder's marker exists. A run is shown as

* ``complete`` — ``run.json`` says complete and the run-level marker exists,
* ``failed`` — ``run.json`` says failed,
* ``partial`` — anything else (still running, crashed before finishing, marker or ``run.json`` missing).

Examples
--------
>>> from receval.storage import open_store
>>> store = open_store("receval-runs")                                     # doctest: +SKIP
>>> [r.run_id for r in list_runs(store, status="complete")]                # doctest: +SKIP
>>> load_summary(store, resolve_run(store, "latest"))                      # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Any

import pandas as pd

from receval import names
from receval.errors import ConfigError, InputError, StoreError
from receval.metrics.keys import MetricKey, format_key, match_columns
from receval.metrics.keys import split_keys as split_selectors  # noqa: F401  (re-exported)
from receval.pipeline import layout
from receval.pipeline.evaluation import PER_USER_FILE as PER_USER_PARQUET
from receval.pipeline.evaluation import SUMMARY_FILE as SUMMARY_JSON
from receval.storage import MARKER, Store, join

# Run-folder keys come from receval.pipeline.layout, the file names of an evaluation folder from
# receval.pipeline.evaluation, which writes them: the reader cannot drift from the writer.

STATUSES = ("complete", "partial", "failed")
LATEST = "latest"

# Fields every summary record carries; everything else is a parameter (threshold, alpha, ...).
SUMMARY_FIELDS = ("algorithm", "metric", "cutoff", "relevance", "discount", "value", "users")
_REQUIRED_FIELDS = ("algorithm", "metric", "value")

# Metric keys (parse, format, match, split) have one owner: receval.metrics.keys; MetricKey and
# split_selectors are re-exported here for the readers' callers.

def run_prefix(run_id: str) -> str:
    """``runs/<run-id>`` (:func:`receval.pipeline.layout.run_prefix`)."""
    return layout.run_prefix(run_id)


def _is_name(value: str) -> bool:
    """Whether ``value`` can be a run id or algorithm label; no step writes any other folder name."""
    try:
        names.check_label(value, "name")
    except ConfigError:
        return False
    return True


def _algorithm_summary_key(run_id: str, algorithm: str) -> str:
    return join(layout.metrics_prefix(run_id, algorithm), SUMMARY_JSON)


def _per_user_key(run_id: str, algorithm: str) -> str:
    return join(layout.metrics_prefix(run_id, algorithm), PER_USER_PARQUET)


def metric_key(metric: str, relevance: Any, discount: Any, cutoff: Any) -> str:
    """The per-user column name of a metric, e.g. ``epc[binary,exp]@10`` (:func:`~receval.metrics.keys.format_key`)."""
    return format_key(metric, relevance, discount, cutoff)


@dataclass(frozen=True)
class RunInfo:
    """What ``receval results list`` shows about one run."""

    run_id: str
    status: str  # complete | partial | failed
    created: datetime | None = None
    finished: datetime | None = None
    dataset: str = "?"
    algorithms: tuple[str, ...] = ()
    cutoffs: tuple[int, ...] = ()
    shards: int | None = None
    reported_status: str | None = None  # the status written in run.json, None if unreadable
    failure: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "created": self.created.isoformat() if self.created else None,
            "finished": self.finished.isoformat() if self.finished else None,
            "dataset": self.dataset,
            "algorithms": list(self.algorithms),
            "cutoffs": list(self.cutoffs),
            "shards": self.shards,
            "reported_status": self.reported_status,
            "failure": self.failure,
        }


def _parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def parse_date_option(text: str | None, *, option: str, end_of_day: bool = False) -> datetime | None:
    """Parse ``--since``/``--until``: ``YYYY-MM-DD`` or an ISO-8601 timestamp (UTC unless given).

    A bare date given to ``--until`` means the end of that day, so ``--until 2024-05-01`` includes it.
    """
    if text is None or text == "":
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            day = date.fromisoformat(text.strip())
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected a date YYYY-MM-DD or an ISO-8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _run_ids(store: Store) -> list[str]:
    # A folder whose name cannot be a run id was not written by receval: it is not a run.
    return [name for name in store.list_dirs(layout.RUNS) if _is_name(name)]


def read_run_info(store: Store, run_id: str) -> RunInfo:
    """The :class:`RunInfo` of one run; a missing or unreadable ``run.json`` makes it ``partial``."""
    key = layout.run_json_key(run_id)
    try:
        meta = store.read_json_if_exists(key)
    except (StoreError, ValueError):
        meta = None  # a torn or foreign run.json: the run is shown, but not trusted
    complete_marker = store.exists(layout.run_marker_key(run_id))
    if not isinstance(meta, dict):
        return RunInfo(run_id=run_id, status="partial", reported_status=None)
    reported = str(meta.get("status") or "")
    if reported == "failed":
        status = "failed"
    elif reported == "complete" and complete_marker:
        status = "complete"
    else:
        status = "partial"
    dataset = meta.get("dataset")
    if isinstance(dataset, dict):
        dataset = dataset.get("name")
    algorithms = meta.get("algorithms") or []
    names = tuple(str(a.get("name", a)) if isinstance(a, dict) else str(a) for a in algorithms)
    cutoffs = []
    for c in meta.get("cutoffs") or []:
        try:
            cutoffs.append(int(c))
        except (TypeError, ValueError):
            continue
    shards = meta.get("shards")
    return RunInfo(
        run_id=run_id,  # the folder name is what commands take, whatever run.json repeats
        status=status,
        created=_parse_time(meta.get("created")),
        finished=_parse_time(meta.get("finished")),
        dataset=str(dataset) if dataset else "?",
        algorithms=names,
        cutoffs=tuple(cutoffs),
        shards=int(shards) if isinstance(shards, int | float) else None,
        reported_status=reported or None,
        failure=str(meta["failure"]) if meta.get("failure") else None,
        metadata=meta,
    )


def list_runs(
    store: Store,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    status: str | Iterable[str] | None = None,
) -> list[RunInfo]:
    """The runs of ``store``, newest first (by ``created``, runs without a time last).

    Parameters
    ----------
    since, until : datetime or date, optional
        Keep runs created in ``[since, until]`` (a date for ``until`` includes that whole day). Runs
        whose creation time is unknown are dropped when either bound is given.
    status : str or iterable of str, optional
        Keep runs whose status is one of ``complete``, ``partial``, ``failed``.
    """
    wanted = _status_filter(status)
    lower = _as_datetime(since, end_of_day=False)
    upper = _as_datetime(until, end_of_day=True)
    runs = []
    for run_id in _run_ids(store):
        info = read_run_info(store, run_id)
        if wanted and info.status not in wanted:
            continue
        if lower or upper:
            if info.created is None:
                continue
            if lower and info.created < lower:
                continue
            if upper and info.created > upper:
                continue
        runs.append(info)
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    runs.sort(key=lambda r: (r.created or epoch, r.run_id), reverse=True)
    return runs


def _status_filter(status: str | Iterable[str] | None) -> set[str]:
    if status is None:
        return set()
    values = [status] if isinstance(status, str) else list(status)
    wanted = {s.strip().lower() for v in values for s in str(v).split(",") if s.strip()}
    unknown = wanted - set(STATUSES)
    if unknown:
        raise ConfigError(f"status {','.join(sorted(unknown))}: expected one of {', '.join(STATUSES)}", option="status")
    return wanted


def _as_datetime(value: datetime | date | None, *, end_of_day: bool) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.combine(value, time.max if end_of_day else time.min, tzinfo=timezone.utc)


def _run_exists(store: Store, run_id: str) -> bool:
    if not run_id or not _is_name(run_id):
        return False
    # run.json is written first; listing is the fallback for a run folder that lost it.
    return store.exists(layout.run_json_key(run_id)) or bool(store.list(layout.run_prefix(run_id)))


def _not_found(store: Store, run_id: str) -> StoreError:
    return StoreError(f"run {run_id} not found in {store.uri}; `receval results list {store.uri}` shows the runs")


def resolve_run(store: Store, run: str) -> str:
    """The run id that ``run`` names: an existing run id, or ``latest`` (the newest complete run)."""
    if run == LATEST:
        complete = list_runs(store, status="complete")
        if not complete:
            raise StoreError(
                f"no complete run in {store.uri}; `receval results list {store.uri}` shows the runs and their status"
            )
        return complete[0].run_id
    if not _run_exists(store, run):
        raise _not_found(store, run)
    return run


def _records_of(payload: Any, key: str) -> tuple[list[dict[str, Any]], Any]:
    """Split a summary document into metric records and the (opaque) data-quality part.

    A summary is a JSON list of records; an algorithm's summary may also be an object with the
    records under ``records`` and a ``data_quality`` entry. Records without ``metric`` (or whose
    ``kind`` is ``data_quality``) are data-quality records, not metrics.
    """
    quality: list[Any] = []
    if isinstance(payload, dict):
        records = payload.get("records", payload.get("summary", []))
        if payload.get("data_quality") is not None:
            quality.append(payload["data_quality"])
    else:
        records = payload
    if not isinstance(records, list):
        raise InputError(f"{key}: expected a JSON list of summary records")
    metrics = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(f"{key}: record {index + 1} is not a JSON object")
        if record.get("kind") == "data_quality" or "metric" not in record:
            quality.append(record)
            continue
        missing = [f for f in _REQUIRED_FIELDS if f not in record]
        if missing:
            raise InputError(f"{key}: record {index + 1} has no {', '.join(missing)}")
        metrics.append(record)
    return metrics, (quality or None)


def _records_frame(records: list[dict[str, Any]], key: str) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records)
    for column in SUMMARY_FIELDS:
        if column not in frame.columns:
            frame[column] = None
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = values.isna() & frame["value"].notna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(f"{key}: record {row + 1} has a non-numeric value {frame['value'].iloc[row]!r}")
    frame["value"] = values.astype(float)
    frame["cutoff"] = pd.to_numeric(frame["cutoff"], errors="coerce").astype("Int64")
    frame["algorithm"] = frame["algorithm"].astype(str)
    frame["metric"] = frame["metric"].astype(str)
    frame["relevance"] = frame["relevance"].fillna("none").astype(str)
    frame["discount"] = frame["discount"].fillna("none").astype(str)
    computed = [
        metric_key(m, r, d, c) for m, r, d, c in zip(frame["metric"], frame["relevance"], frame["discount"], frame["cutoff"])
    ]
    # the engine's own key carries model parameters (exp(0.5)); records without one get it from the kinds
    written = frame["key"] if "key" in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    frame["key"] = [w if isinstance(w, str) and w else c for w, c in zip(written, computed)]
    ordered = [*SUMMARY_FIELDS, "key"]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]


def _algorithm_summaries(store: Store, run_id: str) -> list[tuple[str, str]]:
    """(algorithm, summary key) of each algorithm whose metrics folder is complete."""
    found = []
    for algorithm in store.list_dirs(layout.metrics_root(run_id)):
        if not _is_name(algorithm):
            continue
        key = _algorithm_summary_key(run_id, algorithm)
        if store.is_complete(layout.metrics_prefix(run_id, algorithm)) and store.exists(key):
            found.append((algorithm, key))
    return found


def load_summary(store: Store, run_id: str, *, allow_partial: bool = False) -> pd.DataFrame:
    """The summary records of a run as a frame (one row per algorithm × metric definition).

    Columns: ``algorithm, metric, cutoff, relevance, discount, value, users, key`` and the
    parameters the records carry (``threshold``, ``exp_base``, ``alpha``, ``distance``, ...);
    ``key`` is the per-user column name ``metric[relevance,discount]@cutoff``.

    A run that is not complete raises :class:`~receval.errors.StoreError`, unless ``allow_partial``:
    then the records of the algorithms whose metrics folders are complete are returned (possibly
    none), so that a partial run's finished algorithms can still be inspected.
    """
    if not _run_exists(store, run_id):
        raise _not_found(store, run_id)
    info = read_run_info(store, run_id)
    key = layout.summary_key(run_id)
    if info.status == "complete" and store.exists(key):
        records, _ = _records_of(_read_json(store, key), store.url(key))
        return _records_frame(records, store.url(key))
    if not allow_partial:
        raise StoreError(
            f"run {run_id} in {store.uri} is {info.status} (run.json status: {info.reported_status or 'missing'}):"
            " it has no complete summary"
        )
    frames = []
    for algorithm, akey in _algorithm_summaries(store, run_id):
        records, _ = _records_of(_read_json(store, akey), store.url(akey))
        for record in records:
            record.setdefault("algorithm", algorithm)
        if records:
            frames.append(_records_frame(records, store.url(akey)))
    if not frames:
        return _records_frame([], store.url(key))
    return pd.concat(frames, ignore_index=True)


def _read_json(store: Store, key: str) -> Any:
    try:
        return store.read_json(key)
    except ValueError as exc:
        raise InputError(f"{store.url(key)}: not valid JSON ({exc})") from None


def load_data_quality(store: Store, run_id: str) -> dict[str, Any]:
    """The data-quality records of a run, per algorithm (opaque JSON, empty when there are none).

    Taken from the complete ``metrics/<algorithm>/summary.json`` files and from non-metric records of
    the run-level summary (key ``"run"``).
    """
    quality: dict[str, Any] = {}
    run_key = layout.summary_key(run_id)
    if store.exists(layout.run_marker_key(run_id)) and store.exists(run_key):
        _, found = _records_of(_read_json(store, run_key), store.url(run_key))
        if found:
            quality["run"] = found
    for algorithm, key in _algorithm_summaries(store, run_id):
        _, found = _records_of(_read_json(store, key), store.url(key))
        if found:
            quality[algorithm] = found[0] if len(found) == 1 else found
    return quality


def load_per_user(store: Store, run_id: str, algorithm: str) -> pd.DataFrame:
    """The per-user metric values of one algorithm: column ``user`` and one float column per key."""
    if not _run_exists(store, run_id):
        raise _not_found(store, run_id)
    folder = layout.metrics_prefix(run_id, algorithm)
    key = _per_user_key(run_id, algorithm)
    if not store.exists(key):
        available = sorted(a for a, _ in _algorithm_summaries(store, run_id)) or store.list_dirs(
            layout.metrics_root(run_id)
        )
        raise StoreError(
            f"run {run_id} has no per-user values of algorithm {algorithm!r} ({store.url(key)} missing);"
            f" algorithms: {', '.join(available) or 'none'}"
        )
    if not store.is_complete(folder) and not store.exists(layout.run_marker_key(run_id)):
        raise StoreError(f"{store.url(folder)}: not complete (no {MARKER} marker): its per-user values are not trusted")
    try:
        frame = store.read_parquet(key)
    except (OSError, ValueError) as exc:
        raise InputError(f"{store.url(key)}: not a readable Parquet file ({exc})") from None
    if "user" not in frame.columns:
        raise InputError(f"{store.url(key)}: no column 'user'")
    return frame


def metric_trend(
    store: Store,
    key: MetricKey | str,
    algorithm: str | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
) -> pd.DataFrame:
    """A metric's value over the complete runs, oldest first (the nightly trend).

    Returns columns ``run_id, created, dataset, algorithm, key, value``. ``key`` may leave out the
    relevance, discount or cutoff when the runs have only one matching definition per algorithm;
    an ambiguous key raises :class:`~receval.errors.ConfigError` listing the candidates.
    """
    selector = key if isinstance(key, MetricKey) else MetricKey.parse(key)
    rows = []
    for info in reversed(list_runs(store, since=since, until=until, status="complete")):
        summary = load_summary(store, info.run_id)
        chosen = summary[selector.matches(summary)]
        if algorithm is not None:
            chosen = chosen[chosen["algorithm"] == algorithm]
        duplicated = chosen.duplicated(subset=["algorithm"], keep=False)
        if duplicated.any():
            candidates = sorted(set(chosen.loc[duplicated, "key"]))
            raise ConfigError(
                f"key {selector}: matches several definitions in run {info.run_id} ({', '.join(candidates)});"
                " give relevance, discount and cutoff",
                option="key",
            )
        for record in chosen.itertuples(index=False):
            rows.append(
                {
                    "run_id": info.run_id,
                    "created": info.created,
                    "dataset": info.dataset,
                    "algorithm": record.algorithm,
                    "key": record.key,
                    "value": float(record.value),
                }
            )
    return pd.DataFrame(rows, columns=["run_id", "created", "dataset", "algorithm", "key", "value"])


def match_metric_columns(columns: Iterable[str], selectors: Iterable[str]) -> list[str]:
    """The per-user columns (``metric[relevance,discount]@cutoff``) that any selector matches.

    A selector is a name (``epc``) or a (partial) key (``epc[binary,exp]@10``, ``epc[binary]``,
    ``ndcg@10``); a selector that matches no column is a :class:`~receval.errors.ConfigError`
    listing the columns (:func:`~receval.metrics.keys.match_columns`).
    """
    return match_columns(columns, selectors, what="--metric")
