"""The pipeline steps: prepare → train → predict → evaluate → aggregate (and mark-failed).

Each step is a function of (store, run id, its own coordinates) that reads its inputs from the run
folder and publishes its outputs there (keys: :mod:`receval.pipeline.layout`). ``receval run`` calls
them in a process pool, the Argo templates call them through the ``receval`` step commands; the
steps do not know which, nor whether the store is a local folder or S3.

Idempotence. A step whose output is published (its marker exists) does nothing and returns
``False``, unless ``force=True``; so a retried pod, or a second ``receval run --run-id`` over the
same folder, redoes only what is missing. Outputs are written data first and marker last (each
object atomically), so a step killed at any moment leaves no output that looks finished, and its
rerun overwrites what it left. ``force`` recomputes that step only: re-preparing a run with other
data means a new run id (the downstream outputs of the old data would otherwise be kept).
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from receval.config import DatasetConfig, RunConfig
from receval.errors import InputError
from receval.metrics.sharding import Shard
from receval.pipeline import layout
from receval.storage import Store, open_store

log = logging.getLogger("receval.pipeline")

Progress = Callable[[int, int], None]
REC_COLUMNS = ("user", "item", "rank", "score")


# ------------------------------------------------------------------------------------------------ helpers


def now() -> str:
    """UTC time as ISO 8601 (``2024-05-01T12:00:00+00:00``), the format of run.json timestamps."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _open(store: Store | str) -> Store:
    return store if isinstance(store, Store) else open_store(store)


def versions() -> dict[str, str]:
    import pyarrow
    import scipy

    from receval import __version__

    return {
        "receval": __version__, "python": platform.python_version(), "numpy": np.__version__,
        "pandas": pd.__version__, "scipy": scipy.__version__, "pyarrow": pyarrow.__version__,
    }


def read_run(store: Store | str, run_id: str) -> dict[str, Any]:
    """The run's ``run.json``; InputError naming it when the run was never prepared."""
    store = _open(store)
    key = layout.run_json_key(run_id)
    if not store.exists(key):
        raise InputError(f"{store.url(key)}: no such run (run `receval prepare --run-id {run_id}` first)")
    meta = store.read_json(key)
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise InputError(f"{store.url(key)}: not a receval run description (no 'config')")
    return meta


def run_config(store: Store | str, run_id: str) -> RunConfig:
    """The resolved configuration recorded by the prepare step."""
    store = _open(store)
    return RunConfig.from_mapping(read_run(store, run_id)["config"], store.url(layout.run_json_key(run_id)))


def _require_dataset(store: Store, run_id: str) -> None:
    prefix = layout.dataset_prefix(run_id)
    if not store.is_complete(prefix):
        raise InputError(
            f"{store.url(prefix)}: the dataset of run {run_id} is not prepared (no _SUCCESS marker): "
            f"run `receval prepare --run-id {run_id}` first"
        )


def _features_or_none(store: Store, run_id: str) -> pd.DataFrame | None:
    features = store.read_parquet(layout.dataset_key(run_id, "features"))
    return features if len(features) else None


# ------------------------------------------------------------------------------------------------ prepare


def load_configured_dataset(cfg: DatasetConfig):
    """Load the dataset a :class:`~receval.config.DatasetConfig` names (a :class:`Dataset`)."""
    from receval.data.loaders import load_dataset, load_features_table, load_table

    if cfg.name == "synthetic":
        from receval.data.synthetic import synthetic_dataset

        return synthetic_dataset(**cfg.synthetic.model_dump())
    if cfg.name == "table":
        table = cfg.table
        assert table is not None  # the config refuses a table without one
        features = None
        if table.features:
            features = load_features_table(table.features, item=table.feature_item, feature=table.feature,
                                           weight=table.feature_weight, sep=table.sep)
        return load_table(table.path, user=table.user, item=table.item, rating=table.rating,
                          timestamp=table.timestamp, sep=table.sep, features=features)
    return load_dataset(cfg.name, cfg.data_dir, include_tags=cfg.include_tags)


def implicit_grades(ratings: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    r"""Replace test play counts by the user's play-count quintile 1..5.

    .. math::  g(u, i) = \lceil 5\, F_u(c_{ui}) \rceil, \qquad F_u(c) = |\{j : c_{uj} \le c\}| / |I_u|

    over all of the user's interactions (train and test), so a pair's grade does not depend on the
    split: the user's most played artist is 5, and ``g >= 4`` means "within her top 40 %". This
    turns play counts, whose scale differs by orders of magnitude between users, into a per-user
    graded relevance that the threshold-based relevance models can use with the usual τ = 4.
    """
    share = ratings.groupby("user", sort=False)["rating"].rank(method="max", pct=True)
    # round first: 5 * 0.6 may be 3.0000000000000004, whose ceiling would be 4
    grade = np.ceil(np.round(5.0 * share.to_numpy(np.float64), 9)).clip(1, 5)
    graded = pd.DataFrame({"user": ratings["user"].to_numpy(), "item": ratings["item"].to_numpy(), "grade": grade})
    out = test[["user", "item"]].merge(graded, on=["user", "item"], how="left", validate="one_to_one")
    return pd.DataFrame({"user": out["user"], "item": out["item"], "rating": out["grade"].astype(np.float64)})


def prepare_step(
    store: Store | str, run_id: str, config: RunConfig | None = None, *, force: bool = False
) -> dict[str, Any]:
    """Load and split the dataset, write ``dataset/`` and ``run.json``; return run.json.

    ``run.json`` is written first (status ``running``, the resolved configuration, versions, the
    creation time — kept from an earlier attempt), then ``dataset/{train,test,features,items}.parquet``
    and the dataset's ``_SUCCESS``. With the dataset already published this is a no-op.
    """
    store = _open(store)
    config = config or RunConfig()
    prefix = layout.dataset_prefix(run_id)
    key = layout.run_json_key(run_id)
    if store.is_complete(prefix) and not force:
        log.info("prepare %s: dataset already published, nothing to do", run_id)
        return read_run(store, run_id)

    started = time.perf_counter()
    old = store.read_json(key) if store.exists(key) else {}
    meta: dict[str, Any] = {
        "layout": layout.LAYOUT_VERSION,
        "run_id": run_id,
        "status": "running",
        "created": (old.get("created") if isinstance(old, dict) and not force else None) or now(),
        "finished": None,
        "failure": None,
        "dataset": {"name": config.dataset.name},
        "algorithms": config.labels,
        "cutoffs": list(config.evaluation.cutoffs),
        "shards": config.shards,
        "config": config.to_dict(),
        "versions": versions(),
    }
    store.delete(layout.run_marker_key(run_id))  # a re-prepared run is no longer complete
    store.write_json(key, meta)

    dataset = load_configured_dataset(config.dataset)
    columns = ["user", "item", "rating"]
    train, test = _split(dataset.ratings, config)
    relevance = "rating"
    if dataset.implicit and config.dataset.implicit_relevance == "quintile":
        test = implicit_grades(dataset.ratings, test)
        relevance = "implicit: test rating = the user's play-count quintile 1..5 (see docs/pipeline.md)"
    if len(test) == 0:
        raise InputError(f"dataset {dataset.name}: the split left no test interactions (too few ratings per user?)")
    features = dataset.features[["item", "feature", "weight"]].reset_index(drop=True)
    items = dataset.items.reset_index(drop=True)
    objects = {}
    for name, frame in (("train", train[columns]), ("test", test[columns]), ("features", features),
                        ("items", items)):
        objects[f"{name}.parquet"] = _parquet(frame.reset_index(drop=True))
    stats = {
        "name": dataset.name, "implicit": bool(dataset.implicit), "relevance": relevance,
        "users": int(dataset.ratings["user"].nunique()), "items": int(dataset.ratings["item"].nunique()),
        "train": len(train), "test": len(test), "test_users": int(test["user"].nunique()),
        "features": int(features["feature"].nunique()),
    }
    store.publish(prefix, objects, {"kind": "dataset", **stats})
    meta["dataset"] = stats
    store.write_json(key, meta)
    log.info("prepare %s: %s, %d train / %d test interactions, %d test users (%.1fs)", run_id, dataset.name,
             len(train), len(test), stats["test_users"], time.perf_counter() - started)
    return meta


def _split(ratings: pd.DataFrame, config: RunConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    from receval.data.split import split

    return split(ratings, config.split.method, **config.split.params())


def _parquet(frame: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ train


def train_step(store: Store | str, run_id: str, algorithm: str, *, force: bool = False) -> bool:
    """Fit ``algorithm`` (a label of the run's configuration, or a registry name) on the run's train
    set and save it under ``models/<algorithm>/``. Returns False when it was already saved."""
    from receval.recommenders import make

    store = _open(store)
    prefix = layout.model_prefix(run_id, algorithm)
    if store.is_complete(prefix) and not force:
        log.info("train %s: already trained, nothing to do", algorithm)
        return False
    config = run_config(store, run_id)
    algo = config.algorithm(algorithm)
    _require_dataset(store, run_id)
    started = time.perf_counter()
    train = store.read_parquet(layout.dataset_key(run_id, "train"))
    model = make(algo.name, **algo.params).fit(train, _features_or_none(store, run_id))
    model.save(store, prefix)
    log.info("train %s: fitted on %d interactions (%.1fs)", algorithm, len(train), time.perf_counter() - started)
    return True


# ------------------------------------------------------------------------------------------------ predict


def shard_users(store: Store, run_id: str, shard: Shard) -> np.ndarray:
    """The test users of ``shard``, sorted (the users whose lists the shard holds)."""
    users = pd.unique(store.read_parquet(layout.dataset_key(run_id, "test"), columns=["user"])["user"])
    users = np.sort(np.asarray(users))
    return users[shard.mask(users)]


def predict_step(
    store: Store | str, run_id: str, algorithm: str, shard: Shard, *, force: bool = False,
    progress: Progress | None = None,
) -> bool:
    """Recommend ``recommend.k`` items to every test user of ``shard`` with the saved model.

    Writes ``recs/<algorithm>/shard-….parquet`` (``user, item, rank, score``), then its ``.done``
    marker object. Returns False when the shard was already done.
    """
    from receval.recommenders.base import Recommender

    store = _open(store)
    key = layout.recs_key(run_id, algorithm, shard)
    done_key = layout.recs_done_key(run_id, algorithm, shard)
    if store.exists(done_key) and not force:
        log.info("predict %s shard %s: already done, nothing to do", algorithm, shard)
        return False
    store.delete(done_key)
    config = run_config(store, run_id)
    _require_dataset(store, run_id)
    started = time.perf_counter()
    model = Recommender.load(store, layout.model_prefix(run_id, algorithm))
    users = shard_users(store, run_id, shard)
    frames: list[pd.DataFrame] = []
    scored = 0
    batch_size = config.recommend.batch_size
    for frame in model.recommend_batches(users, int(config.recommend.k), batch_size):
        frames.append(frame)
        scored += frame["user"].nunique()
        log.info("predict %s shard %s: %d/%d users", algorithm, shard, scored, len(users))
        if progress is not None:
            progress(scored, len(users))
    if frames:
        recs = pd.concat(frames, ignore_index=True)[list(REC_COLUMNS)]
    else:  # no test user hashes to this shard
        test_user = store.read_parquet(layout.dataset_key(run_id, "test"), columns=["user"])["user"]
        recs = pd.DataFrame({"user": pd.Series(dtype=test_user.dtype), "item": pd.Series(dtype=np.int64),
                             "rank": pd.Series(dtype=np.int64), "score": pd.Series(dtype=np.float64)})
    store.write_parquet(key, recs)
    store.write_json(done_key, {"kind": "recs", "algorithm": algorithm, "shard": str(shard), "users": len(users),
                                "rows": len(recs), "k": int(config.recommend.k), "finished": now()})
    log.info("predict %s shard %s: %d lists (%.1fs)", algorithm, shard, len(users), time.perf_counter() - started)
    return True


# ------------------------------------------------------------------------------------------------ evaluate


def evaluate_step(
    store: Store | str, run_id: str, algorithm: str, shard: Shard, force: bool = False,
    progress: Progress | None = None,
) -> bool:
    """Evaluate the lists of ``shard`` and publish the engine's partial state under
    ``metrics/<algorithm>/shard-…/``. Returns False when it was already published."""
    from receval.metrics.engine import evaluate
    from receval.pipeline.evaluation import write_partial

    store = _open(store)
    prefix = layout.metrics_shard_prefix(run_id, algorithm, shard)
    if store.is_complete(prefix) and not force:
        log.info("evaluate %s shard %s: already done, nothing to do", algorithm, shard)
        return False
    config = run_config(store, run_id)
    _require_dataset(store, run_id)
    recs_key = layout.recs_key(run_id, algorithm, shard)
    if not store.exists(layout.recs_done_key(run_id, algorithm, shard)):
        raise InputError(
            f"{store.url(recs_key)}: the recommendations of shard {shard} are not finished (no .done marker): "
            f"run `receval predict --run-id {run_id} --algorithm {algorithm} --shard {shard}` first"
        )
    started = time.perf_counter()
    train = store.read_parquet(layout.dataset_key(run_id, "train"))
    test = store.read_parquet(layout.dataset_key(run_id, "test"))
    recs = store.read_parquet(recs_key)
    state = evaluate(train, test, recs, _features_or_none(store, run_id), config.evaluation.to_engine(),
                     shard=shard, progress=progress)
    write_partial(store, prefix, state, extra={"algorithm": algorithm, "shard": str(shard), "finished": now()})
    log.info("evaluate %s shard %s: %d users (%.1fs)", algorithm, shard, state.n_users,
             time.perf_counter() - started)
    return True


# ------------------------------------------------------------------------------------------------ aggregate


def _started_algorithms(store: Store, run_id: str, config: RunConfig) -> list[str]:
    """Labels to aggregate: the configured ones that left any output, then any other evaluated one.

    A workflow may run a subset of the configured algorithms (its own parameter), or one that the
    configuration does not list; an algorithm that was trained but not evaluated is kept, so that
    the merge refuses it by naming its first missing shard.
    """
    evaluated = store.list_dirs(layout.metrics_root(run_id))
    labels = [
        label for label in config.labels
        if label in evaluated or store.list(layout.model_prefix(run_id, label))
        or store.list(layout.recs_prefix(run_id, label))
    ]
    labels += [name for name in evaluated if name not in labels]
    if not labels:
        raise InputError(
            f"{store.url(layout.metrics_root(run_id))}: no algorithm of run {run_id} was trained or evaluated"
        )
    return labels


def _shard_count(store: Store, run_id: str, label: str, configured: int) -> int:
    """The shard count of an algorithm's partial states, read from their folder names."""
    counts = {s.count for name in store.list_dirs(layout.metrics_prefix(run_id, label))
              if (s := layout.parse_shard_name(name)) is not None}
    if not counts:
        return configured
    if len(counts) == 1:
        return counts.pop()
    if configured in counts:
        return configured
    raise InputError(
        f"{store.url(layout.metrics_prefix(run_id, label))}: shards of different counts "
        f"({', '.join(map(str, sorted(counts)))}) and none is the configured {configured}: pass --shards"
    )


def aggregate_step(
    store: Store | str, run_id: str, *, algorithms: list[str] | None = None, shards: int | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Merge every algorithm's shards and publish the run's summary; return its records.

    For each algorithm: ``merge_partials`` over shards 0..N-1 (refusing, by name, a missing or
    unfinished shard), ``summary.json``/``summary.parquet``/``per_user.parquet`` under
    ``metrics/<algorithm>/``. Then the run-level ``summary.json``/``summary.parquet`` (every record
    with its ``algorithm``), ``run.json`` status ``complete`` with the finish time, and the run
    folder's ``_SUCCESS`` last. ``algorithms`` and ``shards`` default to what the run folder holds.
    """
    from receval.pipeline.evaluation import merge_partials, summary_frame, write_results

    store = _open(store)
    marker_key = layout.run_marker_key(run_id)
    if store.exists(marker_key) and not force:
        log.info("aggregate %s: run already complete, nothing to do", run_id)
        return store.read_json(layout.summary_key(run_id))
    meta = read_run(store, run_id)
    config = RunConfig.from_mapping(meta["config"], store.url(layout.run_json_key(run_id)))
    store.delete(marker_key)
    labels = list(algorithms) if algorithms else _started_algorithms(store, run_id, config)
    records: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for label in labels:
        count = shards or _shard_count(store, run_id, label, config.shards)
        parts = [(store, layout.metrics_shard_prefix(run_id, label, Shard(i, count))) for i in range(count)]
        state = merge_partials(parts)
        algo_records = [{"algorithm": label, **record} for record in state.summary()]
        write_results(store, layout.metrics_prefix(run_id, label), state, algo_records,
                      extra={"algorithm": label, "shards": count})
        records += algo_records
        counts[label] = count
    store.write_parquet(layout.summary_parquet_key(run_id), summary_frame(records))
    store.write_json(layout.summary_key(run_id), records)
    meta.update(status="complete", finished=now(), failure=None, algorithms=labels,
                shards=counts[labels[0]] if len(set(counts.values())) == 1 else counts)
    store.write_json(layout.run_json_key(run_id), meta)
    store.write_json(marker_key, {"kind": "run", "algorithms": labels, "records": len(records), "finished": meta["finished"]})
    log.info("aggregate %s: %d algorithms, %d records", run_id, len(labels), len(records))
    return records


def mark_failed_step(store: Store | str, run_id: str, reason: str = "") -> dict[str, Any]:
    """Record in ``run.json`` that the run failed (status ``failed``, reason, finish time).

    A complete run (its ``_SUCCESS`` exists) is left as it is; a run that never got a run.json
    gets a minimal one, so that ``receval results list`` shows it as failed.
    """
    store = _open(store)
    key = layout.run_json_key(run_id)
    meta = store.read_json(key) if store.exists(key) else None
    if store.exists(layout.run_marker_key(run_id)) and isinstance(meta, dict):
        log.info("mark-failed %s: the run is complete, left as it is", run_id)
        return meta
    if not isinstance(meta, dict):
        meta = {"layout": layout.LAYOUT_VERSION, "run_id": run_id, "created": None}
    meta.update(status="failed", failure=" ".join((reason or "failed (no reason given)").split()), finished=now())
    store.write_json(key, meta)
    log.info("mark-failed %s: %s", run_id, meta["failure"])
    return meta


def default_run_id(dataset: str, when: datetime | None = None) -> str:
    """``YYYYMMDD-HHMMSS-<dataset>`` in UTC."""
    when = when or datetime.now(timezone.utc)
    return f"{when.strftime('%Y%m%d-%H%M%S')}-{dataset}"


__all__ = [
    "aggregate_step",
    "default_run_id",
    "evaluate_step",
    "implicit_grades",
    "load_configured_dataset",
    "mark_failed_step",
    "predict_step",
    "prepare_step",
    "read_run",
    "run_config",
    "shard_users",
    "train_step",
]
