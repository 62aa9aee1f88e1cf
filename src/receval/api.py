"""receval as a library: :func:`evaluate` on data frames, returning an :class:`Evaluation`.

The frames go through the same validation as the files of ``receval evaluate``
(:mod:`receval.data.schema`), so a bad frame gets the error the same bad file gets, naming the
argument (``recs``) instead of the file, the column as you named it, and the row (data rows
counted from 1, as in a file). The values are those of ``receval evaluate`` on the same data.

Examples
--------
>>> import pandas as pd
>>> import receval
>>> train = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"]})   # no rating: implicit
>>> test = pd.DataFrame({"user": ["a", "b"], "item": ["z", "y"], "rating": [5.0, 4.0]})
>>> recs = pd.DataFrame({"user": ["a", "a", "b", "b"], "item": ["z", "x", "y", "z"],
...                      "score": [0.9, 0.5, 0.7, 0.7]})                        # no rank: by score
>>> ev = receval.evaluate(train, test, recs, cutoffs=(2,), metrics=["precision", "epc[binary,exp(0.5)]"])
>>> ev.summary[["key", "value"]]
                        key  value
0  precision[binary,none]@2    0.5
1    epc[binary,exp(0.5)]@2    0.5
>>> ev.per_user.round(4)
  user  precision[binary,none]@2  epc[binary,exp(0.5)]@2
0    a                       0.5                  0.6667
1    b                       0.5                  0.3333

User a's list is z (relevant, unseen in train: novelty 1), x (unjudged); b's is y, z (a tie
broken by item id; y relevant, novelty 1 − 1/2). With disc = 1, 0.5: EPC(a) = 1/1.5, EPC(b) =
0.5/1.5.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from receval.errors import ConfigError, InputError
from receval.metrics import options as _options

__all__ = ["Evaluation", "evaluate"]

_FORMAT = "receval-evaluation/1"
# Summary record fields that are columns of Evaluation.summary; the others go to ``parameters``.
_SUMMARY_COLUMNS = ("metric", "key", "cutoff", "relevance", "discount", "value", "users")
# The keyword defaults are the options' own (receval.metrics.options): one declaration for the API,
# the configuration file and the command line.
_DEFAULTS = _options.defaults()


def _to_pandas(frame: Any, argument: str) -> pd.DataFrame:
    """A pandas copy of ``frame``: pandas, anything with ``to_pandas`` (pyarrow tables, polars),
    the Arrow PyCapsule stream interface (``__arrow_c_stream__``) or the dataframe interchange
    protocol (``__dataframe__``)."""
    if isinstance(frame, pd.DataFrame):
        return frame
    if hasattr(frame, "to_pandas"):
        return frame.to_pandas()
    if hasattr(frame, "__arrow_c_stream__"):
        import pyarrow as pa

        return pa.table(frame).to_pandas()
    if hasattr(frame, "__dataframe__"):
        import warnings

        with warnings.catch_warnings():  # deprecated in pandas, still what some libraries offer
            warnings.simplefilter("ignore")
            return pd.api.interchange.from_dataframe(frame)
    raise InputError(f"{argument}: expected a data frame (pandas, polars, pyarrow), got {type(frame).__name__}")


def _validated(frame: Any, argument: str, columns: Mapping[str, str], validate) -> pd.DataFrame:
    """Map the caller's columns onto the contract's, as for files (:mod:`receval.data.formats`: the
    names given, then the recognised ones), and validate as the file readers do; messages name the
    caller's columns."""
    from receval.data import formats
    from receval.data.schema import frame_source

    raw = _to_pandas(frame, argument)
    raw = raw.rename(columns={c: str(c).strip() for c in raw.columns})
    layout = formats.Layout(columns={ours: theirs for ours, theirs in columns.items() if theirs != ours})
    role = argument  # the arguments are named after the roles: train, test, recs, features
    chosen = formats.chosen_columns(raw, role, layout, argument)
    return validate(formats.rename(raw, role, layout, argument), frame_source(argument, {**columns, **chosen}))


def _specs(metrics: Sequence[Any], cutoffs: tuple[int, ...], threshold: float, background: float,
           exp_base: float) -> tuple:
    from receval.metrics.spec import MetricSpec, parse_specs

    specs: dict[str, MetricSpec] = {}
    for m in [metrics] if isinstance(metrics, (str, MetricSpec)) else metrics:
        if isinstance(m, MetricSpec):
            found = [m]
        elif isinstance(m, str):
            found = parse_specs([m], cutoffs, threshold=threshold, background=background, exp_base=exp_base)
        else:
            raise ConfigError(f"metrics: expected spec texts or MetricSpec objects, got {m!r}")
        for s in found:
            specs.setdefault(s.key, s)
    return tuple(specs.values())


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (a cutoff from ``np.array([10, 50])``, a threshold
    from a frame); anything else as given, for the options' rule to judge."""
    return value.item() if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0 else value


def evaluate(
    train: Any,
    test: Any,
    recs: Any,
    features: Any = None,
    *,
    cutoffs: Iterable[int] = _DEFAULTS["cutoffs"],
    metrics: Sequence[Any] | None = None,
    threshold: float = _DEFAULTS["threshold"],
    distance: str = _DEFAULTS["distance"],
    alpha: float = _DEFAULTS["alpha"],
    exp_base: float = _DEFAULTS["exp_base"],
    background: float = _DEFAULTS["background"],
    epd_profile: str = _DEFAULTS["epd_profile"],
    catalog: int | None = _DEFAULTS["catalog"],
    shard: Any = None,
    threads: int = 1,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
    score_col: str = "score",
    rank_col: str = "rank",
    feature_col: str = "feature",
    weight_col: str = "weight",
) -> Evaluation:
    """Evaluate recommendation lists against test data: the values of ``receval evaluate``.

    Parameters
    ----------
    train : frame with ``user_col``, ``item_col`` [, ``rating_col``]
        Train interactions: item popularity (EPC, EFD) and user profiles (EPD, p(f|u)). Without a
        rating column every interaction has rating 1 (implicit feedback). Duplicate (user, item)
        rows are merged, the last rating kept.
    test : frame with ``user_col``, ``item_col``, ``rating_col``
        Test ratings; relevant means rating >= ``threshold``. A duplicate (user, item) is refused.
    recs : frame with ``user_col``, ``item_col`` and ``rank_col`` or ``score_col``
        Recommendation lists. With only scores, each list is ranked by score descending, ties by
        item id ascending. An item repeated in a user's list is refused.
    features : frame with ``item_col``, ``feature_col`` [, ``weight_col``], optional
        Item features for EPD/EILD/ILD distances and intent-aware aspects; weight 1 when absent.
    cutoffs : list lengths N, computed in one pass.
    metrics : spec texts (``"eild[binary,exp]@10"``, ``"epc"``, ``"epc[binary,exp(0.5)]"``) or
        :class:`~receval.metrics.spec.MetricSpec` objects (with any
        :class:`~receval.metrics.models.Discount`, user-defined ones included). Default: the
        default report (docs/metrics.md), without the feature metrics when there are no features.
    threshold, distance, alpha, exp_base, background, epd_profile, catalog :
        The evaluation options (:class:`~receval.metrics.options.EvaluationOptions`: the same
        defaults and rules as the configuration's ``evaluation`` section and the flags of
        ``receval evaluate``; docs/metrics.md). A bare ``exp`` in a spec text is exp(``exp_base``).
        A bad value raises :class:`~receval.errors.ConfigError` naming the argument.
    shard : ``"I/N"`` or a :class:`~receval.metrics.sharding.Shard`: evaluate only those users; merge
        the shards with :meth:`Evaluation.merge`.
    threads : user batches computed at once; values do not depend on it.
    user_col, item_col, rating_col, score_col, rank_col, feature_col, weight_col : column names.
        Where not given, common names are recognised as in files (``user_id``, ``movieId``,
        ``prediction``, ``genre``...; :mod:`receval.data.formats`).

    Frames are pandas DataFrames, or anything pandas can take: pyarrow tables, polars frames, or
    any object with ``__dataframe__``. Bad input raises :class:`~receval.errors.InputError`
    naming the argument, the column and the row.

    Returns
    -------
    Evaluation
    """
    from receval.data import schema
    from receval.metrics.engine import EvaluationConfig, evaluate as run_engine
    from receval.metrics.sharding import Shard

    cutoffs = _plain(cutoffs)
    if isinstance(cutoffs, int):
        cutoffs = (cutoffs,)
    given = dict(cutoffs=tuple(_plain(c) for c in cutoffs), threshold=threshold, distance=distance, alpha=alpha,
                 exp_base=exp_base, background=background, epd_profile=epd_profile, catalog=catalog)
    options = _options.check(**{name: _plain(value) for name, value in given.items()})
    specs = None if metrics is None else _specs(metrics, options.cutoffs, options.threshold, options.background,
                                                options.exp_base)
    config = EvaluationConfig(**options.options(), specs=specs, threads=threads)
    ids = {"user": user_col, "item": item_col}
    train_df = _validated(train, "train", {**ids, "rating": rating_col}, schema.validate_train)
    test_df = _validated(test, "test", {**ids, "rating": rating_col}, schema.validate_test)
    recs_df = _validated(recs, "recs", {**ids, "rank": rank_col, "score": score_col}, schema.validate_recs)
    features_df = None
    if features is not None:
        features_df = _validated(features, "features", {"item": item_col, "feature": feature_col, "weight": weight_col},
                                 schema.validate_features)
    # the file readers' cross-file rules, naming the arguments
    schema.require_overlap(test_df, recs_df, "test", "recs")
    schema.check_catalog(options.catalog, recs_df, "recs")
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    return Evaluation(run_engine(train_df, test_df, recs_df, features_df, config, shard=shard))


class Evaluation:
    """The result of :func:`evaluate`: summary, per-user values and data quality as frames.

    An evaluation of a shard is a partial state: :meth:`to_json` serialises it exactly and
    :meth:`merge` combines the shards into the evaluation of all users, value for value the one
    a single pass gives.
    """

    def __init__(self, state):
        self.state = state

    @property
    def records(self) -> list[dict[str, Any]]:
        """The summary records, as ``receval evaluate`` writes them to ``summary.json``."""
        return self.state.summary()

    @property
    def summary(self) -> pd.DataFrame:
        """One row per value: metric, key, cutoff, relevance, discount, value, users, and
        ``parameters`` (the record's other fields: model names, threshold, exp_base, ...)."""
        rows = []
        for record in self.records:
            if record["kind"] != "metric":
                continue
            row = {c: record[c] for c in _SUMMARY_COLUMNS}
            row["value"] = float("nan") if row["value"] is None else row["value"]
            row["parameters"] = {k: v for k, v in record.items() if k not in _SUMMARY_COLUMNS and k != "kind"}
            rows.append(row)
        return pd.DataFrame(rows, columns=[*_SUMMARY_COLUMNS, "parameters"])

    @property
    def per_user(self) -> pd.DataFrame:
        """One row per evaluated test user (column ``user``), one column per per-user metric key."""
        return self.state.per_user.copy()

    @property
    def data_quality(self) -> pd.DataFrame:
        """The data-quality checks: check, cutoff, value, users, note."""
        rows = [
            {"check": r["metric"], "cutoff": r["cutoff"], "value": r["value"], "users": r["users"], "note": r.get("note", "")}
            for r in self.state.data_quality()
        ]
        return pd.DataFrame(rows, columns=["check", "cutoff", "value", "users", "note"])

    @property
    def notes(self) -> list[str]:
        """What was skipped (feature metrics without features)."""
        return list(self.state.notes)

    def to_json(self) -> str:
        """The partial state as one JSON text (its Parquet parts base64-encoded: exact)."""
        from receval.pipeline.evaluation import partial_objects

        objects = partial_objects(self.state)
        return json.dumps({"format": _FORMAT, "objects": {k: base64.b64encode(v).decode() for k, v in objects.items()}})

    @classmethod
    def from_json(cls, text: str) -> Evaluation:
        from receval.pipeline.evaluation import partial_from_objects

        try:
            payload = json.loads(text)
        except (TypeError, ValueError):
            raise InputError("not a receval evaluation (expected the text of Evaluation.to_json())") from None
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise InputError("not a receval evaluation (expected the text of Evaluation.to_json())")
        objects = {k: base64.b64decode(v) for k, v in payload["objects"].items()}
        return cls(partial_from_objects(objects, "evaluation"))

    @classmethod
    def merge(cls, parts: Iterable[Evaluation | str]) -> Evaluation:
        """Merge the evaluations of all N shards (objects or :meth:`to_json` texts); refuses a
        missing, repeated or foreign shard."""
        from receval.metrics.engine import merge

        states = [(p if isinstance(p, Evaluation) else cls.from_json(p)).state for p in parts]
        return cls(merge(states))

    def __repr__(self) -> str:
        shards = "" if self.state.shard_count is None else f", shards {self.state.shards} of {self.state.shard_count}"
        return f"<Evaluation: {self.state.n_users} test users, {len(self.state.specs)} values{shards}>"
