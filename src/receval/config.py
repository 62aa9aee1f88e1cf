"""The run configuration: what ``receval run`` and ``receval prepare`` evaluate, as pydantic models.

A configuration is a YAML (or JSON) document, a set of command-line flags, or both (flags win)::

    dataset: {name: ml-100k, data_dir: /data/recsys}
    split: {method: random, test_fraction: 0.2}
    algorithms: [pop, {name: ub, params: {neighbours: 50}}, mf]
    evaluation: {cutoffs: [10, 50], threshold: 4.0}
    shards: 4

Every model forbids unknown keys, so a typo stops the run with one line naming the key
(``config run.yaml: unknown key 'evaluation.cutof' (allowed: cutoffs, threshold, ...)``).
The resolved configuration (defaults filled in, seeds propagated, ``recommend.k`` set) is what the
prepare step records in ``run.json``; every later step reads it from there. See
``docs/pipeline.md`` for the reference of every key.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from receval.errors import ConfigError
from receval.metrics.options import BY_NAME, MAX_CUTOFF, EvaluationOptions, annotation, rule

DatasetName = Literal[
    "ml-100k", "ml-latest-small", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "lastfm-2k", "synthetic", "table",
    "splits",
]
ALL_ALGORITHMS = ("rnd", "pop", "avg", "ub", "ib", "cb", "mf")
DEFAULT_CUTOFFS = BY_NAME["cutoffs"].default_of_a_run  # (10, 50), declared with the option
DEFAULT_SHARDS = 4

PositiveInt = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0)]


class _Section(BaseModel):
    # strict: `shards: true`, `cutoffs: ["10"]` or `seed: 1.5` are refused, not coerced
    model_config = ConfigDict(extra="forbid", validate_assignment=False, strict=True)


class SyntheticConfig(_Section):
    """Parameters of :func:`receval.data.synthetic.synthetic_dataset` (``seed`` defaults to the run's)."""

    n_users: PositiveInt = 2000
    n_items: PositiveInt = 1000
    n_features: PositiveInt = 20
    interactions_per_user: PositiveInt = 40
    seed: Seed | None = None
    preference: float = Field(0.6, ge=0.0, le=1.0)
    zipf_exponent: float = Field(1.3, gt=0.0)


class TableConfig(_Section):
    """Your own interactions (``dataset.name: table``), read by :func:`receval.data.loaders.load_table`.

    Columns are named one by one (``user: user_id``) or as one mapping, the command line's ``--columns``
    (``columns: {user: user_id, item: movieId, rating: rating}``); a ``user``/``item`` left at its default
    that the file lacks is found among the common names (:mod:`receval.data.formats`).
    """

    path: str
    user: str = "user"
    item: str = "item"
    rating: str | None = None
    timestamp: str | None = None
    sep: str | None = None
    columns: dict[str, str] | None = None
    features: str | None = None
    feature_item: str = "item"
    feature: str = "feature"
    feature_weight: str | None = None

    @model_validator(mode="after")
    def _columns_name_the_fields(self) -> TableConfig:
        for ours, theirs in (self.columns or {}).items():
            if ours not in ("user", "item", "rating", "timestamp"):
                raise ValueError(f"dataset.table.columns: unknown column {ours!r} (user, item, rating, timestamp)")
            setattr(self, ours, theirs)
        return self


class SplitsConfig(_Section):
    """A train/test split made elsewhere (``dataset.name: splits``), e.g. a Spark or BigQuery export.

    ``train`` and ``test`` are each a Parquet file, a folder of part files or a glob of them
    (``s3://bucket/exports/train/part-*.parquet``), local or ``s3://``; ``features`` (optional) is
    one Parquet file ``item, feature[, weight]``. Read by :mod:`receval.pipeline.inputs`; with
    ``receval prepare --part I/P`` each of P prepare pods reads every P-th part file.
    """

    train: str
    test: str
    features: str | None = None


class DatasetConfig(_Section):
    """Which data to evaluate on.

    ``implicit_relevance`` says how test interactions of an implicit dataset (Last.fm play counts)
    become graded relevance: ``quintile`` (default) replaces each test play count by the user's
    play-count quintile 1..5 — ``ceil(5 · F_u(c))`` with ``F_u`` the empirical CDF of the user's own
    play counts over all her interactions — so the usual threshold 4 means "among the user's top
    40 % artists"; ``raw`` keeps play counts (then choose ``evaluation.threshold`` yourself).
    Training data always keeps the raw counts: they are the recommenders' input.
    """

    name: DatasetName = "synthetic"
    data_dir: str | None = None
    include_tags: bool = False
    implicit_relevance: Literal["quintile", "raw"] = "quintile"
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    table: TableConfig | None = None
    splits: SplitsConfig | None = None

    @model_validator(mode="after")
    def _table_needs_path(self) -> DatasetConfig:
        if self.name == "table" and self.table is None:
            raise ValueError("dataset 'table' needs dataset.table.path (and the column names)")
        if self.name == "splits" and self.splits is None:
            raise ValueError("dataset 'splits' needs dataset.splits.train and dataset.splits.test (file, folder or glob)")
        return self


class SplitConfig(_Section):
    """Train/test split (:func:`receval.data.split.split`); ``seed`` defaults to the run's."""

    method: Literal["random", "temporal", "global_temporal", "leave_k_out"] = "random"
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    k: PositiveInt = 1
    latest: bool = False
    seed: Seed | None = None

    def params(self) -> dict[str, Any]:
        """Keyword arguments of the chosen method (each method takes only some of the fields)."""
        if self.method == "random":
            return {"test_fraction": self.test_fraction, "seed": self.seed}
        if self.method == "leave_k_out":
            return {"k": self.k, "seed": self.seed, "latest": self.latest}
        return {"test_fraction": self.test_fraction}


class AlgorithmConfig(_Section):
    """One recommender: a registry name, its parameters and the folder label (default: the name).

    Two entries of one algorithm with different parameters need different labels
    (``{name: ub, label: ub-50, params: {neighbours: 50}}``).
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None

    @model_validator(mode="after")
    def _check(self) -> AlgorithmConfig:
        from receval.names import check_label
        from receval.recommenders import make

        self.name = self.name.strip().lower()
        seed = self.params.get("seed")
        if "seed" in self.params and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"params.seed = {seed!r}: seeds are non-negative integers")
        try:
            make(self.name, **self.params)  # unknown names and parameters fail here, not in a pod
            check_label(self.label or self.name, "label")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        if self.label is None:
            self.label = self.name
        return self


class RecommendConfig(_Section):
    """List length ``k`` (default: the largest cutoff) and users scored per batch."""

    k: PositiveInt | None = None
    batch_size: PositiveInt = 1000


_Cutoffs = annotation(BY_NAME["cutoffs"])  # the option's type and rule, with the run's default below


class EvaluationSection(EvaluationOptions):
    """The metrics engine's options: :class:`receval.metrics.options.EvaluationOptions` (declared
    there once, for this section, ``receval evaluate``'s flags and :func:`receval.evaluate` alike),
    plus this section's own keys.

    ``metrics`` selects specs as ``receval evaluate --metric`` does (``epc[binary,exp]``,
    ``eild@10``); without it the default report is computed at every cutoff. A run reports at
    :data:`DEFAULT_CUTOFFS` (10 and 50) by default, where ``receval evaluate`` reports at 10: the
    one default that differs, on purpose, declared with the option (``Option.run_default``).
    """

    model_config = ConfigDict(frozen=False)

    cutoffs: _Cutoffs = Field(DEFAULT_CUTOFFS, description=BY_NAME["cutoffs"].help)
    metrics: list[str] | None = None
    batch_size: PositiveInt | None = None

    @field_validator("metrics")
    @classmethod
    def _metrics_parse(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        # checked when the file is read, not in the evaluate pods, by the rule of evaluate(metrics=) and --metric
        needed = ("cutoffs", "threshold", "exp_base", "background")
        if value and all(name in info.data for name in needed):
            from receval.metrics.spec import parse_specs

            try:
                parse_specs(value, info.data["cutoffs"], threshold=info.data["threshold"],
                            exp_base=info.data["exp_base"], background=info.data["background"])
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("metrics ")) from None
        return value

    def to_engine(self) -> Any:
        """The engine's :class:`~receval.metrics.engine.EvaluationConfig`."""
        from receval.metrics.engine import EvaluationConfig
        from receval.metrics.spec import parse_specs

        options = self.options()
        kw = dict(threshold=self.threshold, exp_base=self.exp_base, background=self.background)
        specs = tuple(parse_specs(self.metrics, self.cutoffs, **kw)) if self.metrics else None
        return EvaluationConfig(**options, specs=specs, batch_size=self.batch_size)


class GateSection(_Section):
    """The regression gate of ``receval results gate`` (``docs/results.md``): its rules and baseline.

    ``rules`` are texts such as ``"ndcg@10: drop <= 0.005 at p < 0.05"`` (a string may hold several,
    separated by ``;`` or newlines); they are checked here, so a typo stops the run before it starts.
    The gate never changes a value: it is left out of the runs' comparability fingerprint.
    """

    rules: list[str] = Field(default_factory=list)
    baseline: str = "previous"
    require_baseline: bool = False

    @field_validator("rules", mode="before")
    @classmethod
    def _parsed(cls, value: Any) -> Any:
        # The rule grammar has one owner, beside the metric keys; imported here only to check the texts.
        from receval.metrics.rules import parse_rules

        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list):
            return value
        try:
            return [rule.text for rule in parse_rules([str(t) for t in texts], source="rule")]
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


def _default_algorithms() -> list[AlgorithmConfig]:
    return [AlgorithmConfig(name=name) for name in ALL_ALGORITHMS]


class RunConfig(_Section):
    """A whole run: dataset, split, algorithms, list length, metrics, shards and the master seed.

    ``seed`` is the default of every seed left unset: the split's, the synthetic data's and the
    ``seed`` parameter of seeded algorithms (RND, MF).
    """

    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    algorithms: list[AlgorithmConfig] = Field(default_factory=_default_algorithms, min_length=1)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)
    shards: int = Field(DEFAULT_SHARDS, ge=1, le=99999)
    seed: Seed = 0
    gate: GateSection | None = None

    @field_validator("algorithms", mode="before")
    @classmethod
    def _names_or_objects(cls, value: Any) -> Any:
        if isinstance(value, str):  # "pop,ub" from a flag or an environment variable
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _resolve(self) -> RunConfig:
        from receval.recommenders import algorithm_class
        import inspect

        labels = [a.label for a in self.algorithms]
        duplicate = next((x for x in labels if labels.count(x) > 1), None)
        if duplicate is not None:
            raise ValueError(f"algorithm '{duplicate}' is listed twice: give one of them another label")
        if self.split.seed is None:
            self.split.seed = self.seed
        if self.dataset.synthetic.seed is None:
            self.dataset.synthetic.seed = self.seed
        for algo in self.algorithms:
            accepted = inspect.signature(algorithm_class(algo.name).__init__).parameters
            if "seed" in accepted and "seed" not in algo.params:
                algo.params["seed"] = self.seed
        largest = max(self.evaluation.cutoffs)
        if self.recommend.k is None:
            self.recommend.k = largest
        elif self.recommend.k < largest:
            raise ValueError(
                f"recommend.k = {self.recommend.k} is below the largest cutoff {largest}: lists would be too short"
            )
        return self

    # -- access -----------------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return [str(a.label) for a in self.algorithms]

    def algorithm(self, label: str) -> AlgorithmConfig:
        """The configured algorithm with this label; an unlisted registry name gets its defaults."""
        for algo in self.algorithms:
            if algo.label == label:
                return algo
        try:
            return AlgorithmConfig(name=label)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError(f"--algorithm {label}: {message}") from None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_mapping(cls, data: Any, source: str = "configuration") -> RunConfig:
        """Validate a mapping; any problem is one :class:`ConfigError` line naming the key."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of keys (dataset, split, algorithms, ...), "
                              f"got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {_first_error(exc)}") from None


# ------------------------------------------------------------------------------------------------ errors


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model that holds ``loc[-1]`` (walking RunConfig through ``loc``)."""
    model: Any = RunConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = tuple(p for p in error["loc"] if p not in ("function-after[_check()]",))
    where = _where(loc)
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc)
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"unknown key '{where}'{hint}"
    message = rule(error)
    if error["type"] == "literal_error" or (where and error["type"] != "value_error" and "input" in error
                                            and not isinstance(error["input"], (dict, list))):
        return f"'{where}' = {error.get('input')!r}: {message}"
    return f"'{where}': {message}" if where else message


# ------------------------------------------------------------------------------------------------ loading


def read_document(uri: str | Path, **store_options: Any) -> Any:
    """Parse a YAML or JSON document from a local path or ``s3://bucket/key``."""
    import yaml

    text_uri = str(uri)
    if text_uri.startswith("s3://"):
        from receval.storage import open_store

        parent, _, name = text_uri.rstrip("/").rpartition("/")
        if not name or parent in ("s3:/", "s3:"):
            raise ConfigError(f"--config {text_uri}: expected s3://bucket/path/to/config.yaml")
        raw = open_store(parent, **store_options).read_bytes(name)
    else:
        path = Path(text_uri).expanduser()
        if not path.is_file():
            raise ConfigError(f"--config {path}: file not found")
        raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        if text_uri.endswith(".json"):
            return json.loads(text, object_pairs_hook=_unique_pairs)
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"config {text_uri}: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        first = " ".join(str(exc).split())
        raise ConfigError(f"config {text_uri}: not valid YAML/JSON: {first}") from None


class _DuplicateKey(ValueError):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (the last one would silently win)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"key {key!r} appears twice (which one counts?)")
        out[key] = value
    return out


@functools.cache
def _yaml_loader() -> type:
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        """safe_load, refusing a mapping key given twice: PyYAML keeps the last one silently."""

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    raise _DuplicateKey(
                        f"line {key_node.start_mark.line + 1}: key {key!r} appears twice "
                        f"(first on line {seen[key]}; which one counts?)"
                    )
                seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader



def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` on top; nested mappings merge, anything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def flag_overrides(
    *,
    dataset: str | None = None,
    data_dir: str | None = None,
    algorithms: list[str] | None = None,
    cutoffs: list[int] | None = None,
    shards: int | None = None,
    seed: int | None = None,
) -> dict[str, Any]:
    """The nested mapping that command-line flags put on top of a configuration file."""
    out: dict[str, Any] = {}
    if dataset is not None:
        out.setdefault("dataset", {})["name"] = dataset
    if data_dir is not None:
        out.setdefault("dataset", {})["data_dir"] = str(data_dir)
    if algorithms:
        out["algorithms"] = list(algorithms)
    if cutoffs:
        out.setdefault("evaluation", {})["cutoffs"] = list(cutoffs)
    if shards is not None:
        out["shards"] = shards
    if seed is not None:
        out["seed"] = seed
    return out


def load_config(
    source: str | Path | None = None, overrides: dict[str, Any] | None = None, **store_options: Any
) -> RunConfig:
    """Read a configuration from ``source`` (path or ``s3://`` URI; None: all defaults) with ``overrides``.

    A file may set ``recommend.k`` for its own cutoffs; when a flag changes the cutoffs and the
    file's ``k`` would now be too short, ``k`` follows the new largest cutoff.
    """
    data: Any = {} if source is None else read_document(source, **store_options)
    where = "configuration" if source is None else f"config {source}"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys (dataset, split, algorithms, ...)")
    if overrides:
        data = deep_merge(data, overrides)
        cut = overrides.get("evaluation", {}).get("cutoffs")
        k = (data.get("recommend") or {}).get("k")
        if cut and isinstance(k, int) and k < max(cut):
            data = deep_merge(data, {"recommend": {"k": max(cut)}})
    return RunConfig.from_mapping(data, where)


__all__ = [
    "ALL_ALGORITHMS",
    "AlgorithmConfig",
    "DatasetConfig",
    "EvaluationSection",
    "GateSection",
    "RecommendConfig",
    "RunConfig",
    "SplitConfig",
    "SyntheticConfig",
    "TableConfig",
    "deep_merge",
    "flag_overrides",
    "load_config",
    "read_document",
]
