"""Run a metric set over batches of users and produce a mergeable partial state.

``evaluate_shard`` takes the dataset-wide inputs as a
:class:`~receval.metrics.statistics.GlobalStatistics` and only the evaluated users' own rows, builds
the :class:`~receval.metrics.batch.EvaluationContext` once from them, walks the evaluated users in
batches (each metric family reads the same ``B × K`` matrices), and returns a
:class:`PartialState`: per-user values, item-exposure columns and counts. Partial states of disjoint
user shards ``merge`` exactly — per-user means are ``fsum`` over users, system metrics are computed
from summed exposure counts — so evaluating shard by shard gives the same summary as one pass.
``evaluate`` is the same on full frames: it computes the statistics from them, then drops other
shards' rows before indexing.

Averaging follows docs/metrics.md, "Which users count" (= RankSys MetricExample when lists are given for test
users only): the users are the test users (≥ 1 test row); a test user without a list scores 0; a
list for a non-test user is not averaged and is counted in the data-quality report.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, ValidationError

from receval._version import __version__
from receval.errors import ConfigError, InputError
from receval.metrics import system
from receval.data.schema import all_integer_ids, harmonise_id_types, output_ids
from receval.metrics.batch import EvaluationContext, ListIndex, batch_selections, make_batch
from receval.metrics.exact import exact_sum
from receval.metrics.models import ExpDiscount, Relevance
from receval.metrics.options import EvaluationOptions, option_error
from receval.metrics.sharding import Shard
from receval.metrics.statistics import GlobalStatistics
from receval.metrics.spec import MetricSpec, default_specs, discount_model, relevance_model



class EvaluationConfig(EvaluationOptions):
    """What to compute: the :class:`~receval.metrics.options.EvaluationOptions` (declared there once:
    cutoffs, threshold, distance, alpha, exp_base, background, epd_profile, catalog) plus the specs
    and how to run. ``specs=None`` means the default report (docs/metrics.md, "Metrics") at ``cutoffs``.

    Parameters
    ----------
    specs : the metric specs to compute (default: the default report).
    batch_size : users per batch (default: from K, to bound memory).
    threads : batches computed at once (numpy releases the GIL); results do not depend on it.

    A bad value is a :class:`ConfigError` naming the option (``exp_base 1.5: ...``), never a flag.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    specs: tuple[MetricSpec, ...] | None = Field(None, strict=False)
    batch_size: int | None = Field(None, ge=1)
    threads: int = Field(1, ge=1)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise option_error(exc) from None

    def resolve(self, has_features: bool) -> tuple[list[MetricSpec], list[str]]:
        """The specs to compute and notes on what was skipped (feature metrics without features)."""
        explicit = self.specs is not None
        specs = list(self.specs) if explicit else default_specs(
            self.cutoffs, self.threshold, exp_base=self.exp_base, background=self.background
        )
        notes: list[str] = []
        for s in specs:
            if s.relevance.threshold != self.threshold and s.relevance.kind != "none":
                raise ConfigError(
                    f"{s.key}: its relevance threshold {s.relevance.threshold} is not the evaluation's "
                    f"threshold {self.threshold}"
                )
        if not has_features:
            needs = [s for s in specs if s.definition.needs_item_features(self.distance)]
            if needs and explicit:
                raise ConfigError(
                    f"features: {needs[0].key} needs item features"
                    + (" (or the distance 'ratings')" if needs[0].definition.needs_distance else ""),
                    option="features",
                )
            if needs:
                notes.append(
                    "no item features: skipped " + ", ".join(sorted({s.metric for s in needs}))
                    + " (give item features, or the distance 'ratings' for EPD/EILD/ILD)"
                )
                specs = [s for s in specs if not s.definition.needs_item_features(self.distance)]
        if not specs:
            raise ConfigError("no metric left to compute")
        return specs, notes

    def to_dict(self) -> dict[str, Any]:
        """The options and specs as plain data (what a partial state records; how it ran is left out)."""
        d = self.options()
        d["cutoffs"] = list(self.cutoffs)
        d["specs"] = None if self.specs is None else [_spec_dict(s) for s in self.specs]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvaluationConfig:
        d = dict(d)
        specs = d.pop("specs", None)
        d.pop("batch_size", None)
        d.pop("threads", None)
        if "cutoffs" in d:
            d["cutoffs"] = tuple(d["cutoffs"])
        base = cls(**d)
        if specs is None:
            return base
        return base.model_copy(update={"specs": tuple(_spec_from_dict(s, base) for s in specs)})


def _spec_dict(s: MetricSpec) -> dict[str, Any]:
    """A spec as plain data: the kinds (as in summary records) and the model names with their
    parameters (``exp(0.5)``), from which :func:`_spec_from_dict` rebuilds it."""
    return {
        "metric": s.metric, "cutoff": s.cutoff, "relevance": s.relevance.kind, "discount": s.discount.kind,
        "relevance_model": s.relevance.name, "discount_model": s.discount.name,
    }


def _spec_from_dict(d: dict[str, Any], config: EvaluationConfig) -> MetricSpec:
    kw = dict(threshold=config.threshold, background=config.background)
    relevance = relevance_model(d.get("relevance_model") or d["relevance"], **kw)
    discount = discount_model(d.get("discount_model") or d["discount"], exp_base=config.exp_base)
    return MetricSpec(d["metric"], int(d["cutoff"]), relevance, discount)


@dataclass
class PartialState:
    """The serializable state of an evaluation of one shard (or of all users).

    ``per_user`` has a ``user`` column and one column per per-user spec key; ``exposure`` has an
    ``item`` column and additive count/weight columns; ``counts`` holds additive totals (users,
    lists and positions per cutoff, data-quality counts).
    """

    config: dict[str, Any]
    specs: list[MetricSpec]
    fingerprint: str
    shard_count: int | None
    shards: list[int]
    per_user: pd.DataFrame
    exposure: pd.DataFrame
    counts: dict[str, float]
    universe: int
    notes: list[str] = field(default_factory=list)

    # -- results ------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return int(self.counts["users"])

    def summary(self) -> list[dict[str, Any]]:
        """One record per reported value, then the data-quality records."""
        records: list[dict[str, Any]] = []
        n_users = self.n_users
        per_item: dict[int, pd.DataFrame] = {}
        for spec in self.specs:
            if spec.per_user:
                col = self.per_user[spec.key].to_numpy(np.float64)
                value = exact_sum(col) / n_users if n_users else float("nan")
            else:
                if spec.cutoff not in per_item:
                    per_item[spec.cutoff] = system.items_at(self.exposure, spec.cutoff)
                value = system.finalize(
                    spec,
                    per_item[spec.cutoff],
                    int(self.counts[f"lists@{spec.cutoff}"]),
                    int(self.counts[f"positions@{spec.cutoff}"]),
                    self.universe,
                )
            records.append(self._record(spec, value, n_users))
        records += self.data_quality()
        return records

    def _record(self, spec: MetricSpec, value: float, n_users: int) -> dict[str, Any]:
        cfg = self.config
        rec: dict[str, Any] = {
            "kind": "metric",
            "metric": spec.metric,
            "key": spec.key,
            "cutoff": spec.cutoff,
            "relevance": spec.relevance.kind,
            "discount": spec.discount.kind,
            "value": None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value),
            "users": n_users,
            "relevance_model": spec.relevance.name,
            "discount_model": spec.discount.name,
        }
        if spec.relevance.kind != "none":
            rec["threshold"] = cfg["threshold"]
        if spec.relevance.kind == "background":
            rec["background"] = spec.relevance.background
        if isinstance(spec.discount, ExpDiscount):
            rec["exp_base"] = spec.discount.base
        for name, option in spec.definition.parameters:
            rec[name] = cfg[option]
        if spec.metric == "gini":
            rec["catalog"] = self.universe
            rec["convention"] = "ranksys 1-G: 1 = even exposure"
        if spec.per_user:
            rec["averaging"] = "test users; no list = 0"
        return rec

    def data_quality(self) -> list[dict[str, Any]]:
        c = self.counts
        exp = self.exposure
        kmax = max(s.cutoff for s in self.specs)
        recd = system.items_at(exp, kmax)

        def dq(check: str, value: float, cutoff: int | None = None, note: str = "") -> dict[str, Any]:
            return {"kind": "data_quality", "metric": check, "cutoff": cutoff, "value": value,
                    "users": self.n_users, **({"note": note} if note else {})}

        out = [
            dq("test_users", int(c["users"])),
            dq("test_users_without_list", int(c["dq_no_list"]), note="score 0 on every per-user metric"),
            dq("test_users_without_relevant_items", int(c["dq_no_relevant"])),
            dq("lists_for_non_test_users", int(c["dq_non_test_lists"]), note="not averaged"),
        ]
        for n in sorted({s.cutoff for s in self.specs}):
            out.append(dq("lists_shorter_than_cutoff", int(c[f"dq_short@{n}"]), n))
        out += [
            dq("recommended_items_without_features", int((~recd["has_features"]).sum()), kmax),
            dq("recommendations_of_items_without_features", int(recd.loc[~recd["has_features"], "count"].sum()), kmax),
            dq("recommended_items_unseen_in_train", int((~recd["in_train"]).sum()), kmax),
            dq("recommendations_of_items_unseen_in_train", int(recd.loc[~recd["in_train"], "count"].sum()), kmax),
            dq("recommended_items_outside_catalog", int((~recd["in_catalog"]).sum()), kmax,
               note="not in train or test: the Gini catalogue is widened to include them"),
        ]
        return out

    # -- plain data ------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """Everything but the two frames, as JSON-able values; :meth:`from_metadata` rebuilds the state.

        Which bytes a state becomes (JSON, Parquet) is the pipeline's choice
        (:func:`receval.pipeline.evaluation.partial_objects`): the metrics do no I/O.
        """
        return {
            "config": self.config,
            "specs": [_spec_dict(s) for s in self.specs],
            "fingerprint": self.fingerprint,
            "shard_count": self.shard_count,
            "shards": self.shards,
            "counts": self.counts,
            "universe": self.universe,
            "notes": self.notes,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], per_user: pd.DataFrame, exposure: pd.DataFrame) -> PartialState:
        """The state of :meth:`metadata` and the two frames (KeyError names a missing entry)."""
        cfg = EvaluationConfig.from_dict(meta["config"])
        return cls(
            config=meta["config"],
            specs=[_spec_from_dict(s, cfg) for s in meta["specs"]],
            fingerprint=meta["fingerprint"],
            shard_count=meta["shard_count"],
            shards=list(meta["shards"]),
            per_user=per_user,
            exposure=exposure,
            counts=meta["counts"],
            universe=int(meta["universe"]),
            notes=list(meta.get("notes", [])),
        )


def _in_threads(fn: Callable, items: Iterable, threads: int):
    """Yield ``(item, fn(item))`` in order, computing up to ``threads`` items at once.

    numpy releases the GIL in its kernels, so batches overlap on several cores; results are consumed
    in input order, so every accumulation downstream happens in the same order as with one thread.
    At most ``2 × threads`` batches are alive at a time. The BLAS library is held to one thread
    meanwhile, with one worker too: the engine's own threads are what use the cores, and a BLAS pool
    under them only spins (OpenBLAS's idle threads busy-wait between the bilinear EILD's GEMMs: a
    one-thread evaluation burnt 1.5× its CPU time on 2 cores, and 2 workers ran slower than one).
    """
    from receval.metrics import blas

    with blas.one_thread():
        yield from _in_order(fn, items, threads)


def _in_order(fn: Callable, items: Iterable, threads: int):
    if threads <= 1:
        for item in items:
            yield item, fn(item)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        window: deque = deque()
        for item in items:
            window.append((item, pool.submit(fn, item)))
            if len(window) >= 2 * threads:
                head, future = window.popleft()
                yield head, future.result()
        while window:
            head, future = window.popleft()
            yield head, future.result()


def _auto_batch_size(k: int) -> int:
    return int(min(2048, max(32, 16_000_000 // max(k * k, 1))))


def evaluate(
    train: pd.DataFrame,
    test: pd.DataFrame,
    recs: pd.DataFrame,
    features: pd.DataFrame | None = None,
    config: EvaluationConfig | None = None,
    shard: Shard | None = None,
    progress: Callable[[int, int], None] | None = None,
    statistics: GlobalStatistics | None = None,
) -> PartialState:
    """Evaluate recommendation lists against test data.

    Parameters
    ----------
    train, test, recs, features : frames as returned by :mod:`receval.data.schema` readers
        (train ``user,item,rating``; test ``user,item,rating``; recs ``user,item,rank`` with ranks
        1..len per user; features ``item,feature,weight`` or None).
    config : what to compute.
    shard : evaluate only the test users of this shard (stable hash of the user id).
    progress : called with (users done, users total) after each batch.
    statistics : ``GlobalStatistics.of(train, test, features)`` when the caller has them already
        (the CLI takes them while the lists are still being read). Used only when every id column
        is integer, so that no id is converted here; else they are taken again from the frames.
    """
    config = config or EvaluationConfig()
    if len(test) == 0:
        raise InputError("test set is empty")
    has_features = features is not None and len(features) > 0
    if statistics is not None and not all_integer_ids(train, test, recs, features):
        statistics = None
    train, test, recs, features = harmonise_id_types(train, test, recs, features, column="item")
    train, test, recs = harmonise_id_types(train, test, recs, column="user")
    if statistics is None:
        statistics = GlobalStatistics.of(train, test, features if has_features else None)
    ratings_train = train if config.distance == "ratings" else None
    frames = {"train": train, "test": test, "recs": recs}
    del train, test, recs
    if shard is not None:
        frames = {role: _in_shard(frame, shard) for role, frame in frames.items()}
    # Handed over as arguments popped from the dict, so that no name here keeps them: evaluate_shard
    # drops its own once they are indexed, and a caller that kept none frees them then (50M list
    # rows are 477 MB beside the ListIndex, which needs only their item column).
    return evaluate_shard(statistics, frames.pop("train"), frames.pop("test"), frames.pop("recs"), config,
                          shard=shard, progress=progress, ratings_train=ratings_train)


def _in_shard(frame: pd.DataFrame, shard: Shard) -> pd.DataFrame:
    """The rows of ``frame`` whose user belongs to ``shard`` (each distinct id hashed once)."""
    codes, users = pd.factorize(frame["user"])
    keep = shard.mask(pd.Series(users))[codes] if len(users) else np.zeros(len(frame), dtype=bool)
    return frame if keep.all() else frame[keep]


def evaluate_shard(
    statistics: GlobalStatistics,
    train: pd.DataFrame,
    test: pd.DataFrame,
    recs: pd.DataFrame,
    config: EvaluationConfig | None = None,
    shard: Shard | None = None,
    progress: Callable[[int, int], None] | None = None,
    ratings_train: pd.DataFrame | None = None,
) -> PartialState:
    """Evaluate the lists of one shard's users from their own rows and the global statistics.

    Parameters
    ----------
    statistics : the dataset-wide inputs (:class:`~receval.metrics.statistics.GlobalStatistics`
        of the full train, test and features), the same for every shard.
    train, test, recs : the rows of the shard's users only. They are trusted, not filtered again
        (every test user passed is evaluated): :func:`evaluate` filters full frames, the pipeline
        reads the shard's buckets, whose users prepare hashed and the reader verified.
    config, progress : as in :func:`evaluate`.
    shard : the shard these rows are (recorded in the partial state, for the merge).
    ratings_train : the full train, needed (and read) only by ``distance="ratings"``.

    Per-user structures are built from the shard's rows only, so memory and time follow the
    shard's size, not the dataset's (except for ``distance="ratings"``).
    """
    config = config or EvaluationConfig()
    features = statistics.features
    has_features = features is not None and len(features) > 0
    specs, notes = config.resolve(has_features)
    catalog = pd.DataFrame({"item": statistics.items})
    train, test, recs, catalog, features, ratings_train = harmonise_id_types(
        train, test, recs, catalog, features, ratings_train, column="item")
    train, test, recs, ratings_train = harmonise_id_types(train, test, recs, ratings_train, column="user")
    statistics = replace(statistics, items=catalog["item"].to_numpy(), features=features)
    ctx = EvaluationContext.build(
        statistics, train, test, recs,
        threshold=config.threshold, distance=config.distance, catalog_size=config.catalog,
        ratings_train=ratings_train,
    )
    kmax = max(s.cutoff for s in specs)
    cutoffs = sorted({s.cutoff for s in specs})

    n_test = len(ctx.test_users)
    eval_rows = np.arange(n_test)

    lists = ListIndex.of(recs, ctx)
    # indexed: the context holds the rows as matrices and the list index the item column, so the
    # frames go (freed now unless the caller keeps them: see evaluate)
    del train, test, recs, ratings_train
    non_test = lists.rows < 0
    non_test_lists = int(non_test.sum())
    eligible = np.flatnonzero(~non_test)

    # One call per kernel and batch, with every spec of that kernel: a kernel shares its work
    # (hits, pair blocks, aspect triples) between cutoffs and model variants.
    by_kernel: dict[Callable, list[MetricSpec]] = {}
    for s in specs:
        if s.per_user:
            by_kernel.setdefault(s.definition.kernel, []).append(s)
    per_user_specs = [s for s in specs if s.per_user]
    values = {s.key: np.zeros(len(eval_rows)) for s in per_user_specs}

    n_items = len(ctx.items)
    weight_rels = {s.relevance.key: s.relevance for s in specs if s.metric == "aggregate_diversity"}
    weight_rels.setdefault("none", Relevance("none"))
    # Exposure is kept per (item, list length K_u): its counts are integers (and, for the none and
    # binary relevance models, so are its relevance sums), so shards add up exactly.
    exposure_acc = system.ExposureAccumulator(n_items, cutoffs, list(weight_rels.values()))
    counts: dict[str, float] = {"users": float(len(eval_rows))}
    for n in cutoffs:
        counts[f"lists@{n}"] = 0.0
        counts[f"positions@{n}"] = 0.0
        counts[f"dq_short@{n}"] = 0.0

    batch_size = config.batch_size or _auto_batch_size(kmax)
    done = 0
    def per_user_values(sel: np.ndarray):
        # the batch is built, and its values placed, in the worker too: the consuming thread only
        # hands out selections and accumulates in order, so it does not hold a core (nor the GIL)
        # the kernels need. Batches hold disjoint users, so their writes into `values` never meet.
        batch = make_batch(ctx, lists, sel, kmax)
        results: dict[str, np.ndarray] = {}
        for kernel, kernel_specs in by_kernel.items():
            results.update(kernel(batch, kernel_specs, config))
        where = np.searchsorted(eval_rows, batch.rows)
        for key, arr in results.items():
            values[key][where] = arr
        tallies = {}
        for n in cutoffs:
            k_u = batch.lengths_at(n)
            tallies[f"lists@{n}"] = float((k_u > 0).sum())
            tallies[f"positions@{n}"] = float(k_u.sum())
            tallies[f"dq_short@{n}"] = float(((batch.lengths > 0) & (batch.lengths < n)).sum())
        return batch.size, exposure_acc.prepare(batch), tallies

    selections = batch_selections(eligible, batch_size)
    for _, (size, exposure_part, tallies) in _in_threads(per_user_values, selections, config.threads):
        exposure_acc.add(exposure_part)
        for key, tally in tallies.items():
            counts[key] += tally
        done += size
        if progress is not None:
            progress(done, len(eligible))

    # Users without a list score 0 on every per-user metric (their values stay 0).
    no_list = len(eval_rows) - len(eligible)
    # relevant test rows per user as differences of a running count at the CSR row bounds: no
    # per-row user index or float weights (at 8M test rows those were 130 MB at the process's peak)
    running = np.zeros(ctx.test.nnz + 1, dtype=np.int32 if ctx.test.nnz < 2**31 - 1 else np.int64)
    np.cumsum(ctx.test.data >= config.threshold, out=running[1:])
    relevant_per_user = running[ctx.test.indptr[1:]] - running[ctx.test.indptr[:-1]]
    del running
    no_relevant = int((relevant_per_user[eval_rows] == 0).sum())
    counts["dq_no_list"] = float(no_list)
    counts["dq_no_relevant"] = float(no_relevant)
    counts["dq_non_test_lists"] = float(non_test_lists)

    # copy=False: the frame takes the value arrays as they are (27 columns of a million users are 216 MB)
    per_user = pd.DataFrame(
        {"user": output_ids(ctx.test_users[eval_rows]), **{s.key: values[s.key] for s in per_user_specs}}, copy=False
    )
    del values

    exposure = exposure_acc.frame(
        ctx.items, {"in_train": ctx.in_train, "in_catalog": ctx.in_catalog, "has_features": ctx.has_features}
    )

    cfg_dict = config.to_dict()
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "receval": __version__,  # shards of two versions must not be merged
                "config": cfg_dict,
                "specs": [s.key for s in specs],
                "data": statistics.fingerprint,  # the full data's digest, the same in every shard
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    return PartialState(
        config=cfg_dict,
        specs=specs,
        fingerprint=fingerprint,
        shard_count=None if shard is None else shard.count,
        shards=[] if shard is None else [shard.index],
        per_user=per_user,
        exposure=exposure,
        counts=counts,
        universe=ctx.universe_size,
        notes=notes,
    )


def merge(states: Iterable[PartialState], names: list[str] | None = None, require_complete: bool = True) -> PartialState:
    """Merge partial states of disjoint shards into the state of their union.

    Refuses (InputError naming the shard) when states come from different configurations or
    data, overlap, or — with ``require_complete`` — do not cover every shard 0..N-1.
    """
    states = list(states)
    if not states:
        raise InputError("nothing to merge")
    names = names or [f"partial {i}" for i in range(len(states))]
    first = states[0]
    for state, name in zip(states, names):
        if state.fingerprint != first.fingerprint:
            raise InputError(
                f"{name}: computed with another configuration, other data or another receval version than {names[0]} "
                f"(fingerprint {state.fingerprint} != {first.fingerprint})"
            )
        if state.shard_count != first.shard_count:
            raise InputError(f"{name}: is one of {state.shard_count} shards, {names[0]} one of {first.shard_count}")
    seen: dict[int, str] = {}
    for state, name in zip(states, names):
        for i in state.shards:
            if i in seen:
                raise InputError(f"{name}: shard {i}/{first.shard_count} is also in {seen[i]}")
            seen[i] = name
    if require_complete and first.shard_count is not None:
        missing = [i for i in range(first.shard_count) if i not in seen]
        if missing:
            shard = Shard(missing[0], first.shard_count)
            raise InputError(f"shard {shard} ({shard.name}) is missing: {len(missing)} of {first.shard_count} not given")
    if len(states) == 1:
        return states[0]
    per_user = pd.concat([s.per_user for s in states], ignore_index=True)
    per_user = per_user.sort_values("user", kind="stable").reset_index(drop=True)
    exposure = system.merge_exposure([s.exposure for s in states])
    counts = {k: math.fsum(s.counts[k] for s in states) for k in first.counts}
    return replace(
        first,
        shards=sorted(seen),
        per_user=per_user,
        exposure=exposure,
        counts=counts,
        notes=list(dict.fromkeys(n for s in states for n in s.notes)),
    )
