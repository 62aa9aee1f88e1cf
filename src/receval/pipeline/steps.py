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
from receval.data.partitioned import combine_files
from receval.data.frames import frame_of_parquet, parquet_bytes
from receval.data.schema import output_ids
from receval.errors import ConfigError, InputError
from receval.metrics.sharding import Shard, shard_of, shard_of_hashes, user_hashes
from receval.metrics.statistics import GlobalStatistics
from receval.pipeline import layout
from receval.pipeline.ownership import claim_run, now
from receval.storage import MARKER, Store, join, json_bytes, open_store

log = logging.getLogger("receval.pipeline")

Progress = Callable[[int, int], None]
REC_COLUMNS = ("user", "item", "rank", "score")


# ------------------------------------------------------------------------------------------------ helpers


def _open(store: Store | str) -> Store:
    return store if isinstance(store, Store) else open_store(store)


def versions() -> dict[str, str]:
    import pyarrow
    import scipy

    from receval._version import __version__

    return {
        "receval": __version__, "python": platform.python_version(), "numpy": np.__version__,
        "pandas": pd.__version__, "scipy": scipy.__version__, "pyarrow": pyarrow.__version__,
    }


def read_run(store: Store | str, run_id: str) -> dict[str, Any]:
    """The run's ``run.json``; InputError naming it when the run was never prepared."""
    store = _open(store)
    key = layout.run_json_key(run_id)
    meta = store.read_json_if_exists(key)
    if meta is None:
        raise InputError(f"{store.url(key)}: no such run (run `receval prepare --run-id {run_id}` first)")
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise InputError(f"{store.url(key)}: not a receval run description (no 'config')")
    layout.check_layout(meta, store.url(key))
    return meta


def run_config(store: Store | str, run_id: str) -> RunConfig:
    """The resolved configuration recorded by the prepare step."""
    store = _open(store)
    return RunConfig.from_mapping(read_run(store, run_id)["config"], store.url(layout.run_json_key(run_id)))


def _require_dataset(store: Store, run_id: str) -> dict[str, Any]:
    """The dataset's marker (its bucket and part counts); InputError when it is not published."""
    prefix = layout.dataset_prefix(run_id)
    marker = store.marker(prefix)
    if marker is None:
        raise InputError(
            f"{store.url(prefix)}: the dataset of run {run_id} is not prepared (no _SUCCESS marker): "
            f"run `receval prepare --run-id {run_id}` first"
        )
    layout.check_layout(marker, store.url(join(prefix, MARKER)))
    return marker


# ------------------------------------------------------------------------------------------------ dataset


def read_statistics(store: Store | str, run_id: str) -> GlobalStatistics:
    """The run's merged global statistics (``dataset/statistics/``)."""
    store = _open(store)
    return _read_statistics(store, layout.statistics_prefix(run_id))


def _read_statistics(store: Store, prefix: str) -> GlobalStatistics:
    names = [key.rsplit("/", 1)[-1] for key in store.list(prefix)]
    objects = {name: store.read_bytes(join(prefix, name)) for name in names if name != MARKER}
    from receval.pipeline.evaluation import statistics_from_objects  # the engine: not a predict pod's import

    return statistics_from_objects(objects, store.url(prefix))


def _bucket_users(frame: pd.DataFrame, bucket: Shard, shard: Shard, where: str) -> np.ndarray | None:
    """Verify that every user of a bucket object hashes to its bucket, and return the mask of the
    rows of ``shard``'s users (None: all of them), hashing each distinct id once.

    The one check of the shard-local layout: prepare hashed every user into her bucket, so the
    readers downstream (the engine, the model) trust the rows they get. A user in the wrong bucket
    (a corrupted or hand-edited object) is refused by name.
    """
    codes, users = pd.factorize(frame["user"])
    if not len(users):
        return None
    hashes = user_hashes(users)
    home = shard_of_hashes(hashes, bucket.count)
    wrong = np.flatnonzero(home != bucket.index)
    if wrong.size:
        row = int(np.flatnonzero(codes == wrong[0])[0])
        raise InputError(
            f"{where}: column 'user', row {row + 1}: user {users[wrong[0]]!r} belongs to shard "
            f"{home[wrong[0]]}/{bucket.count}, not to this bucket's {bucket} (a corrupted or hand-edited bucket)"
        )
    if bucket.count % shard.count == 0:  # M divides B: a bucket of B holds users of one shard of M
        return None
    mine = shard_of_hashes(hashes, shard.count) == shard.index
    return None if mine.all() else mine[codes]


def read_bucket(store: Store, run_id: str, table: str, shard: Shard, marker: dict[str, Any] | None = None
                ) -> pd.DataFrame:
    """The ``train`` or ``test`` rows of the users of ``shard``, from their buckets only.

    Prepare wrote B buckets (``marker["shards"]``). Shard I of M needs the buckets j with
    j ≡ I (mod gcd(B, M)): one bucket when B divides M, B/M of them when M divides B (``--shard 0/1``
    reads them all). Rows of other users are then dropped. Each bucket is P objects, one per prepare
    part; a missing one, a user in the wrong bucket or a pair in two parts is refused by name.
    """
    marker = marker or _require_dataset(store, run_id)
    buckets, parts = int(marker["shards"]), int(marker["parts"])
    frames: list[pd.DataFrame] = []
    for j in shard.overlapping(buckets):
        bucket = Shard(j, buckets)
        pieces, masks = [], []
        for p in range(parts):
            key = layout.bucket_key(run_id, table, bucket, Shard(p, parts))
            data = store.read_if_exists(key)
            if data is None:
                raise InputError(
                    f"{store.url(key)}: missing bucket ({table} rows of shard {bucket} from prepare part {p}/{parts}): "
                    f"prepare the run again (`receval prepare --run-id {run_id} --force`)"
                )
            frame = frame_of_parquet(data)
            del data
            masks.append(_bucket_users(frame, bucket, shard, store.url(key)))
            pieces.append((store.url(key), frame))
        rows = pieces[0][1] if parts == 1 else combine_files(pieces, table)
        if any(mask is not None for mask in masks):  # a bucket holding other shards' users too
            keep = np.concatenate([np.ones(len(f), dtype=bool) if m is None else m
                                   for m, (_, f) in zip(masks, pieces)])
            rows = rows[keep].reset_index(drop=True)
        frames.append(rows)
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def read_dataset(store: Store | str, run_id: str, table: str) -> pd.DataFrame:
    """The whole ``train`` or ``test`` table of a run (every bucket), sorted by user and item.

    Only ``train`` (and ``evaluate --distance ratings``) reads the whole train; the order is
    canonical, so a model does not depend on how prepare bucketed the rows.
    """
    store = _open(store)
    rows = read_bucket(store, run_id, table, Shard(0, 1))
    return rows.sort_values(["user", "item"], kind="stable").reset_index(drop=True)


def read_items(store: Store | str, run_id: str) -> pd.DataFrame:
    """The run's item table (``item`` [, ``title``])."""
    return _open(store).read_parquet(layout.items_key(run_id))


def _features_or_none(store: Store, run_id: str) -> pd.DataFrame | None:
    return read_statistics(store, run_id).features


# ------------------------------------------------------------------------------------------------ prepare


def load_configured_dataset(cfg: DatasetConfig):
    """Load the dataset a :class:`~receval.config.DatasetConfig` names (a :class:`Dataset`)."""
    from receval.data.loaders import load_dataset, load_features_table, load_table

    if cfg.name == "synthetic":
        from receval.data.synthetic import synthetic_dataset

        return synthetic_dataset(**cfg.synthetic.model_dump())
    if cfg.name == "splits":
        raise ConfigError("dataset splits: a split made elsewhere is read part file by part file by `receval prepare` "
                          "(docs/pipeline.md), not loaded as one dataset")
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


def _start_run(store: Store, run_id: str, config: RunConfig, force: bool) -> dict[str, Any]:
    """Write run.json with status ``running`` (the creation time kept from an earlier attempt)."""
    key = layout.run_json_key(run_id)
    owner = claim_run(store, run_id, config)  # another configuration's run: refused, nothing written
    old = store.read_json_if_exists(key) or {}
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
        "owner": owner,
    }
    store.delete(layout.run_marker_key(run_id))  # a re-prepared run is no longer complete
    store.write_json(key, meta)
    return meta


def prepare_step(
    store: Store | str, run_id: str, config: RunConfig | None = None, *, force: bool = False,
    part: Shard | None = None, finish: bool = False,
) -> dict[str, Any]:
    """Load and split the dataset into per-shard buckets and global statistics; return run.json.

    Three forms (``docs/pipeline.md``):

    - ``prepare`` (neither ``part`` nor ``finish``): everything in this process — part 0/1, then
      the finish;
    - ``part=Shard(I, P)``: read every P-th part file of a ``splits`` dataset (all of any other
      dataset when P = 1), write its users' rows into the ``config.shards`` buckets and the partial
      statistics of the rows it read (``dataset/parts/part-I-of-P/``); returns the part's marker;
    - ``finish=True``: merge the parts' statistics (user counts exactly, from the union of the
      parts' per-bucket user lists), publish ``dataset/statistics/``, ``items.parquet`` and the
      dataset's ``_SUCCESS``, and write run.json.

    With the dataset already published this is a no-op (unless ``force``).
    """
    store = _open(store)
    config = config or RunConfig()
    if part is not None and finish:
        raise ConfigError("prepare: give --part I/P or --finish, not both")
    prefix = layout.dataset_prefix(run_id)
    claim_run(store, run_id, config)  # another configuration's run: refused, nothing written
    if store.is_complete(prefix) and not force:
        log.info("prepare %s: dataset already published, nothing to do", run_id)
        return read_run(store, run_id)
    if part is not None:
        return prepare_part(store, run_id, config, part, force=force)
    if finish:
        return finish_prepare(store, run_id, config, force=force)
    meta = _start_run(store, run_id, config, force)
    prepare_part(store, run_id, config, Shard(0, 1), force=True)
    return finish_prepare(store, run_id, config, force=force, meta=meta)


def _config_digest(config: RunConfig) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _bucket_rows(frame: pd.DataFrame, count: int) -> list[pd.DataFrame]:
    """``frame`` split into the ``count`` buckets of its users (each distinct id hashed once)."""
    codes, users = pd.factorize(frame["user"])
    bucket = shard_of(pd.Series(users), count)[codes] if len(users) else np.zeros(0, dtype=np.int64)
    order = np.argsort(bucket, kind="stable")
    bounds = np.searchsorted(bucket[order], np.arange(count + 1))
    return [frame.iloc[order[bounds[j]:bounds[j + 1]]].reset_index(drop=True) for j in range(count)]


def _load_part(config: RunConfig, part: Shard) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None,
                                                         pd.DataFrame | None, dict[str, Any]]:
    """train, test, features (part 0 only), items (or None) and dataset facts of one prepare part."""
    columns = ["user", "item", "rating"]
    if config.dataset.name == "splits":
        from receval.pipeline.inputs import read_features_file, read_part

        splits = config.dataset.splits
        assert splits is not None  # the configuration refuses splits without them
        train, train_files = read_part(splits.train, "train", part.index, part.count)
        test, test_files = read_part(splits.test, "test", part.index, part.count)
        features = read_features_file(splits.features) if splits.features and part.index == 0 else None
        facts = {"name": "splits", "implicit": False, "relevance": "rating", "train_files": len(train_files),
                 "test_files": len(test_files)}
        return train[columns], test[columns], features, None, facts
    if part.count != 1:
        raise ConfigError(
            f"--part {part}: only a dataset of pre-split part files (dataset.name: splits) can be prepared in "
            f"parts; {config.dataset.name} is loaded and split by one prepare"
        )
    dataset = load_configured_dataset(config.dataset)
    train, test = _split(dataset.ratings, config)
    relevance = "rating"
    if dataset.implicit and config.dataset.implicit_relevance == "quintile":
        test = implicit_grades(dataset.ratings, test)
        relevance = "implicit: test rating = the user's play-count quintile 1..5 (see docs/pipeline.md)"
    if len(test) == 0:
        raise InputError(f"dataset {dataset.name}: the split left no test interactions (too few ratings per user?)")
    features = dataset.features[["item", "feature", "weight"]].reset_index(drop=True)
    facts = {"name": dataset.name, "implicit": bool(dataset.implicit), "relevance": relevance}
    return (train[columns].reset_index(drop=True), test[columns].reset_index(drop=True), features,
            dataset.items.reset_index(drop=True), facts)


def prepare_part(store: Store, run_id: str, config: RunConfig, part: Shard, *, force: bool = False
                 ) -> dict[str, Any]:
    """Prepare part ``part``: its rows into the buckets, its partial statistics (see :func:`prepare_step`)."""
    prefix = layout.prepare_part_prefix(run_id, part)
    if store.is_complete(prefix) and not force:
        log.info("prepare %s part %s: already done, nothing to do", run_id, part)
        return store.marker(prefix) or {}
    started = time.perf_counter()
    store.delete(join(prefix, MARKER))
    train, test, features, items, facts = _load_part(config, part)
    buckets = config.shards
    for table, frame in (("train", train), ("test", test)):
        for j, rows in enumerate(_bucket_rows(frame, buckets)):
            bucket = Shard(j, buckets)
            store.write_parquet(layout.bucket_key(run_id, table, bucket, part), rows)
            users = pd.DataFrame({"user": pd.unique(rows["user"])})
            store.write_parquet(layout.part_users_key(run_id, part, table, bucket), users)
    statistics = GlobalStatistics.of(train, test).with_features(features)
    from receval.pipeline.evaluation import statistics_objects

    objects = {join("statistics", name): data for name, data in statistics_objects(statistics).items()}
    if items is not None:
        objects["items.parquet"] = parquet_bytes(items)
    marker = {"kind": "prepare-part", "layout": layout.LAYOUT_VERSION, "part": str(part), "shards": buckets,
              "config": _config_digest(config), "dataset": facts, "train": len(train), "test": len(test)}
    store.publish(prefix, objects, marker)
    log.info("prepare %s part %s: %d train / %d test rows into %d buckets (%.1fs)", run_id, part, len(train),
             len(test), buckets, time.perf_counter() - started)
    return marker


def _finished_parts(store: Store, run_id: str) -> list[Shard]:
    """Every prepare part of the run, all finished; InputError naming the first that is not."""
    root = layout.prepare_parts_root(run_id)
    found = [p for name in store.list_dirs(root) if (p := layout.parse_part_name(name)) is not None]
    counts = sorted({p.count for p in found})
    if not counts:
        raise InputError(f"{store.url(root)}: no prepare part has run: run `receval prepare --part I/P` first")
    if len(counts) > 1:
        raise InputError(f"{store.url(root)}: prepare parts of different counts ({', '.join(map(str, counts))}): "
                         f"prepare again under a new run id")
    parts = [Shard(i, counts[0]) for i in range(counts[0])]
    for p in parts:
        if not store.is_complete(layout.prepare_part_prefix(run_id, p)):
            raise InputError(
                f"{store.url(layout.prepare_part_prefix(run_id, p))}: prepare part {p} has not finished "
                f"(no _SUCCESS marker): run `receval prepare --run-id {run_id} --part {p}`"
            )
    return parts


def _distinct_users(store: Store, run_id: str, parts: list[Shard], table: str, bucket: Shard) -> pd.Index:
    lists = [store.read_parquet(layout.part_users_key(run_id, p, table, bucket))["user"] for p in parts]
    return pd.Index(pd.unique(pd.concat(lists, ignore_index=True)))


def finish_prepare(store: Store, run_id: str, config: RunConfig, *, force: bool = False,
                   meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge the prepare parts and publish the dataset (see :func:`prepare_step`)."""
    started = time.perf_counter()
    prefix = layout.dataset_prefix(run_id)
    meta = meta or _start_run(store, run_id, config, force)
    if force:  # else it is absent, or an identical concurrent run's whose next steps are reading it
        store.delete(join(prefix, MARKER))
    parts = _finished_parts(store, run_id)
    markers = [store.marker(layout.prepare_part_prefix(run_id, p)) or {} for p in parts]
    digest = _config_digest(config)
    for p, marker in zip(parts, markers):
        if marker.get("config") != digest or marker.get("shards") != config.shards:
            raise InputError(
                f"{store.url(layout.prepare_part_prefix(run_id, p))}: prepared with another configuration than "
                f"this finish's: run every part and the finish with the same --config"
            )
    partial = [_read_statistics(store, layout.part_statistics_prefix(run_id, p)) for p in parts]
    # Users are disjoint across buckets, so per-bucket distinct counts add up; within a bucket a
    # user may come from several parts (part files of an export), hence the union of their lists.
    train_users = test_users = all_users = 0
    for j in range(config.shards):
        bucket = Shard(j, config.shards)
        in_train = _distinct_users(store, run_id, parts, "train", bucket)
        in_test = _distinct_users(store, run_id, parts, "test", bucket)
        train_users += len(in_train)
        test_users += len(in_test)
        all_users += len(in_train.union(in_test))
    statistics = GlobalStatistics.merge(partial, n_train_users=train_users, n_test_users=test_users)
    if statistics.digest["test"][0] == 0:
        raise InputError(f"dataset {config.dataset.name}: no test interactions")
    items_key = layout.part_items_key(run_id, parts[0])
    items = (store.read_parquet(items_key) if store.exists(items_key)
             else pd.DataFrame({"item": statistics.items}))
    from receval.pipeline.evaluation import statistics_objects

    objects = {layout.name_in(prefix, join(layout.statistics_prefix(run_id), name)): data
               for name, data in statistics_objects(statistics).items()}
    objects[layout.name_in(prefix, layout.items_key(run_id))] = parquet_bytes(items)
    facts = markers[0].get("dataset", {})
    stats = {
        "name": facts.get("name", config.dataset.name), "implicit": bool(facts.get("implicit", False)),
        "relevance": facts.get("relevance", "rating"), "users": all_users, "items": statistics.catalog_size,
        "train": statistics.digest["train"][0], "test": statistics.digest["test"][0], "test_users": test_users,
        "train_users": train_users,
        "features": 0 if statistics.features is None else int(statistics.features["feature"].nunique()),
    }
    store.publish(prefix, objects, {"kind": "dataset", "layout": layout.LAYOUT_VERSION, "shards": config.shards,
                                    "parts": len(parts), **stats})
    meta["dataset"] = stats
    store.write_json(layout.run_json_key(run_id), meta)
    log.info("prepare %s: %s, %d train / %d test interactions, %d test users, %d buckets from %d parts (%.1fs)",
             run_id, stats["name"], stats["train"], stats["test"], test_users, config.shards, len(parts),
             time.perf_counter() - started)
    return meta


def _split(ratings: pd.DataFrame, config: RunConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    from receval.data.split import split

    return split(ratings, config.split.method, **config.split.params())


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
    marker = _require_dataset(store, run_id)
    started = time.perf_counter()
    train = read_dataset(store, run_id, "train")  # the one step that reads every train bucket
    model = make(algo.name, **algo.params).fit(train, _features_or_none(store, run_id))
    # per-user state (MF's user factors) in as many parts as train buckets: a predict pod reads its own
    model.save(store, prefix, user_parts=int(marker["shards"]))
    log.info("train %s: fitted on %d interactions (%.1fs)", algorithm, len(train), time.perf_counter() - started)
    return True


# ------------------------------------------------------------------------------------------------ predict


def shard_users(store: Store, run_id: str, shard: Shard) -> np.ndarray:
    """The test users of ``shard``, sorted (the users whose lists the shard holds), from its test bucket."""
    return _sorted_users(read_bucket(store, run_id, "test", shard))


def _sorted_users(test: pd.DataFrame) -> np.ndarray:
    return np.sort(np.asarray(pd.unique(test["user"])))


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
    marker = _require_dataset(store, run_id)
    started = time.perf_counter()
    # the model's global state, the shard's part of its per-user state, and the shard's train rows
    # for the seen items and profiles: O(items + shard), except a global model (UB) holding all users
    model = Recommender.load(store, layout.model_prefix(run_id, algorithm), shard=shard)
    if model.needs_train_rows:
        model.with_train(read_bucket(store, run_id, "train", shard, marker))
    test = read_bucket(store, run_id, "test", shard, marker)
    users = _sorted_users(test)
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
        recs["user"], recs["item"] = output_ids(recs["user"]), output_ids(recs["item"])
    else:  # no test user hashes to this shard
        recs = pd.DataFrame({"user": pd.Series(dtype=output_ids(test["user"]).dtype), "item": pd.Series(dtype=np.int64),
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
    from receval.metrics.engine import evaluate_shard
    from receval.pipeline.evaluation import write_partial

    store = _open(store)
    prefix = layout.metrics_shard_prefix(run_id, algorithm, shard)
    if store.is_complete(prefix) and not force:
        log.info("evaluate %s shard %s: already done, nothing to do", algorithm, shard)
        return False
    config = run_config(store, run_id)
    marker = _require_dataset(store, run_id)
    recs_key = layout.recs_key(run_id, algorithm, shard)
    if not store.exists(layout.recs_done_key(run_id, algorithm, shard)):
        raise InputError(
            f"{store.url(recs_key)}: the recommendations of shard {shard} are not finished (no .done marker): "
            f"run `receval predict --run-id {run_id} --algorithm {algorithm} --shard {shard}` first"
        )
    started = time.perf_counter()
    engine_config = config.evaluation.to_engine()
    # the shard's own rows, the global statistics and its lists: nothing O(users) of other shards
    statistics = read_statistics(store, run_id)
    train = read_bucket(store, run_id, "train", shard, marker)
    test = read_bucket(store, run_id, "test", shard, marker)
    recs = store.read_parquet(recs_key)
    # item vectors over every train user: the one evaluation that reads the whole train
    ratings_train = read_dataset(store, run_id, "train") if engine_config.distance == "ratings" else None
    state = evaluate_shard(statistics, train, test, recs, engine_config, shard=shard, progress=progress,
                           ratings_train=ratings_train)
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


def _check_catalog(store: Store, run_id: str, label: str, catalog: int | None, state) -> None:
    """Refuse a configured Gini catalogue smaller than the items the merged lists recommend (the
    pipeline's form of :func:`receval.data.schema.check_catalog`: only the union of all shards
    knows the distinct items, so the check runs after the merge)."""
    if catalog is None:
        return
    recommended = int(state.exposure["item"].nunique())
    if catalog < recommended:
        raise InputError(
            f"{store.url(layout.run_json_key(run_id))}: evaluation.catalog {catalog} is smaller than the "
            f"{recommended} distinct items that the lists of {label} recommend; the catalogue must hold every "
            f"recommended item"
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
        _check_catalog(store, run_id, label, config.evaluation.catalog, state)
        algo_records = [{"algorithm": label, **record} for record in state.summary()]
        write_results(store, layout.metrics_prefix(run_id, label), state, algo_records,
                      extra={"algorithm": label, "shards": count})
        records += algo_records
        counts[label] = count
    meta.update(status="complete", finished=now(), failure=None, algorithms=labels,
                shards=counts[labels[0]] if len(set(counts.values())) == 1 else counts)
    run = layout.run_prefix(run_id)
    store.publish(run, {
        layout.name_in(run, layout.summary_parquet_key(run_id)): parquet_bytes(summary_frame(records)),
        layout.name_in(run, layout.summary_key(run_id)): json_bytes(records),
        layout.name_in(run, layout.run_json_key(run_id)): json_bytes(meta),
    }, {"kind": "run", "algorithms": labels, "records": len(records), "finished": meta["finished"]})
    log.info("aggregate %s: %d algorithms, %d records", run_id, len(labels), len(records))
    return records


def mark_failed_step(store: Store | str, run_id: str, reason: str = "") -> dict[str, Any]:
    """Record in ``run.json`` that the run failed (status ``failed``, reason, finish time).

    A complete run (its ``_SUCCESS`` exists) is left as it is; a run that never got a run.json
    gets a minimal one, so that ``receval results list`` shows it as failed.
    """
    store = _open(store)
    key = layout.run_json_key(run_id)
    try:
        meta = store.read_json_if_exists(key)
    except (ValueError, UnicodeDecodeError):
        meta = None  # a torn or foreign run.json must not hide the failure being recorded
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
    "read_bucket",
    "read_dataset",
    "read_items",
    "read_run",
    "read_statistics",
    "run_config",
    "shard_users",
    "train_step",
]
