"""The algorithm registry: names to classes, and :func:`make`.

A table of module and class names, imported on first use: the models and the re-rankers look their
bases up here (by name, as a saved model records it) without importing each other or the package.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from receval.errors import ConfigError

if TYPE_CHECKING:
    from receval.recommenders.base import Recommender

# name -> (module, class); imported on first use so that the registry has no import cycles.
_REGISTRY: dict[str, tuple[str, str]] = {
    "rnd": ("receval.recommenders.baselines", "RND"),
    "pop": ("receval.recommenders.baselines", "POP"),
    "avg": ("receval.recommenders.baselines", "AVG"),
    "ub": ("receval.recommenders.knn", "UB"),
    "ib": ("receval.recommenders.knn", "IB"),
    "cb": ("receval.recommenders.content", "CB"),
    "mf": ("receval.recommenders.mf", "MF"),
    "mmr": ("receval.recommenders.rerank", "MMR"),
    "xquad": ("receval.recommenders.rerank", "XQuAD"),
    "iaselect": ("receval.recommenders.rerank", "IASelect"),
}

ALGORITHMS: tuple[str, ...] = tuple(_REGISTRY)
RERANKERS: tuple[str, ...] = ("mmr", "xquad", "iaselect")


def algorithm_class(name: str) -> type[Recommender]:
    """The class registered under ``name`` (case-insensitive); ConfigError for an unknown name."""
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise ConfigError(f"unknown algorithm '{name}' (known: {', '.join(ALGORITHMS)})")
    module, cls = _REGISTRY[key]
    return getattr(importlib.import_module(module), cls)


def make(name: str, **params: Any) -> Recommender:
    """Build the recommender ``name`` with ``params`` (e.g. ``make("ub", neighbours=50)``).

    Re-rankers take their base by name: ``make("mmr", base="mf", lambda_=0.5, base_params={...})``.
    An unknown name or parameter is a :class:`~receval.errors.ConfigError` naming the known ones.
    """
    cls = algorithm_class(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = [p for p in params if p not in accepted]
    if unknown:
        raise ConfigError(
            f"algorithm '{cls.name}': unknown parameter '{unknown[0]}' (known: {', '.join(accepted) or 'none'})"
        )
    return cls(**params)


__all__ = ["ALGORITHMS", "RERANKERS", "algorithm_class", "make"]
