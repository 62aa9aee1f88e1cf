"""Grid search of an algorithm's parameters on a validation split carved out of the run's train set.

The run's own split is made exactly as ``receval run`` makes it (same method, fraction and seed); its
test part is set aside and never read again. The train part is split once more, by a seeded random
per-user holdout, into *fit* and *validation*; every grid point is fitted on *fit*, recommends to the
validation users, and is scored by the validation nDCG@k (or another per-user accuracy metric) with
the run's relevance threshold. Implicit datasets get the same graded relevance the pipeline gives
their test set (play-count quintiles, :func:`receval.pipeline.steps.implicit_grades`), computed
over the train interactions only.

The chosen point is the best grid point (ties: the first in grid order); the algorithm's configured
parameters (its defaults, unless the configuration sets some) are scored the same way, so that the
gain of tuning is reported against them, not assumed. This is model selection on held-out data in
the usual sense (e.g. Hastie, Tibshirani & Friedman, *The Elements of Statistical Learning*, 2nd ed.
2009, §7.2: a validation set for model selection, the test set for the final assessment only).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from receval.config import RunConfig
from receval.errors import ConfigError

DEFAULT_VALIDATION_FRACTION = 0.2
DEFAULT_METRIC = "ndcg"
# salt so that the validation holdout is not the test holdout's permutation again
_VALIDATION_SEED_OFFSET = 7919


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the order given (last parameter varies fastest)."""
    if not grid:
        raise ConfigError("grid: give at least one parameter with values, e.g. factors=20,50")
    for name, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ConfigError(f"grid: parameter '{name}' needs a non-empty list of values")
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def tuning_split(config: RunConfig, dataset: Any, fraction: float = DEFAULT_VALIDATION_FRACTION
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit, validation): the run's train part, split again; the run's test part is dropped here."""
    from receval.data.split import random_holdout, split
    from receval.pipeline.steps import implicit_grades

    train, _test = split(dataset.ratings, config.split.method, **config.split.params())
    seed = int(config.split.seed if config.split.seed is not None else config.seed) + _VALIDATION_SEED_OFFSET
    fit, validation = random_holdout(train, fraction, seed=seed)
    if dataset.implicit and config.dataset.implicit_relevance == "quintile":
        validation = implicit_grades(train, validation)
    if len(validation) == 0:
        raise ConfigError(f"dataset {dataset.name}: the validation split is empty (too few train ratings per user?)")
    return fit.reset_index(drop=True), validation.reset_index(drop=True)


@dataclass(frozen=True)
class TuneResult:
    """Every grid point's validation score, the chosen point and the configured parameters' score."""

    algorithm: str
    key: str
    table: pd.DataFrame  # one row per grid point: its parameters, value, seconds
    best: dict[str, Any]
    best_value: float
    default_params: dict[str, Any]
    default_value: float
    fit_interactions: int
    validation_interactions: int
    validation_users: int

    @property
    def chosen_params(self) -> dict[str, Any]:
        """The configured parameters with the chosen grid point on top."""
        return {**self.default_params, **self.best}

    def to_dict(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm, "key": self.key, "best": self.best, "best_value": self.best_value,
            "chosen_params": self.chosen_params, "default_params": self.default_params,
            "default_value": self.default_value, "fit_interactions": self.fit_interactions,
            "validation_interactions": self.validation_interactions, "validation_users": self.validation_users,
            "grid": self.table.to_dict(orient="records"),
        }


def _score(name: str, params: dict[str, Any], fit: pd.DataFrame, validation: pd.DataFrame,
           features: pd.DataFrame | None, engine_config: Any, cutoff: int) -> float:
    from receval.metrics.engine import evaluate
    from receval.recommenders import make

    model = make(name, **params).fit(fit, features)
    users = pd.unique(validation["user"])
    recs = model.recommend(users, cutoff)
    state = evaluate(fit, validation, recs, features, engine_config)
    record = next(r for r in state.summary() if r.get("kind", "metric") == "metric")
    return float(record["value"])


def tune(
    config: RunConfig,
    algorithm: str,
    grid: Mapping[str, Sequence[Any]],
    *,
    cutoff: int | None = None,
    metric: str = DEFAULT_METRIC,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    progress: Any = None,
) -> TuneResult:
    """Score every point of ``grid`` for ``algorithm`` on the validation split and pick the best.

    Parameters
    ----------
    config : the run configuration (dataset, split, threshold, seed; ``algorithm``'s parameters).
    algorithm : a label of the configuration, or a registry name (then its defaults).
    grid : parameter name -> values, e.g. ``{"factors": [20, 50], "reg": [0.01, 0.1]}``.
    cutoff : list length and metric cutoff (default: the configuration's smallest cutoff).
    metric : a per-user accuracy metric of the engine (``ndcg``, ``precision``, ``recall``, ``ap``...).
    validation_fraction : share of each user's train ratings held out for validation.
    progress : called with (points done, points total).
    """
    from receval.metrics.engine import EvaluationConfig
    from receval.metrics.spec import parse_specs
    from receval.pipeline.steps import load_configured_dataset
    from receval.recommenders import make

    algo = config.algorithm(algorithm)
    k = int(cutoff if cutoff is not None else min(config.evaluation.cutoffs))
    if k < 1:
        raise ConfigError(f"--cutoff {k}: must be at least 1")
    if not 0 < validation_fraction < 1:
        raise ConfigError(f"--validation-fraction {validation_fraction}: expected a number between 0 and 1")
    ev = config.evaluation
    specs = parse_specs([metric], (k,), threshold=ev.threshold, exp_base=ev.exp_base, background=ev.background)
    if len(specs) != 1 or not specs[0].per_user:
        raise ConfigError(f"--metric {metric}: give one per-user metric, e.g. ndcg or precision")
    engine_config = EvaluationConfig(specs=tuple(specs), cutoffs=(k,), threshold=ev.threshold,
                                     exp_base=ev.exp_base, background=ev.background)
    points = grid_points(grid)
    for point in points:  # an unknown parameter or a bad value stops here, before any fitting
        make(algo.name, **{**algo.params, **point})

    dataset = load_configured_dataset(config.dataset)
    fit, validation = tuning_split(config, dataset, validation_fraction)
    features = dataset.features[["item", "feature", "weight"]] if len(dataset.features) else None

    rows = []
    for done, point in enumerate(points, 1):
        started = time.perf_counter()
        value = _score(algo.name, {**algo.params, **point}, fit, validation, features, engine_config, k)
        rows.append({**point, "value": value, "seconds": time.perf_counter() - started})
        if progress is not None:
            progress(done, len(points))
    table = pd.DataFrame(rows)
    best_row = int(table["value"].to_numpy().argmax())  # first maximum: ties go to the earlier point
    default_value = _score(algo.name, dict(algo.params), fit, validation, features, engine_config, k)
    return TuneResult(
        algorithm=str(algo.label), key=specs[0].key, table=table, best=points[best_row],
        best_value=float(table["value"].iloc[best_row]), default_params=dict(algo.params),
        default_value=default_value, fit_interactions=len(fit), validation_interactions=len(validation),
        validation_users=int(validation["user"].nunique()),
    )
