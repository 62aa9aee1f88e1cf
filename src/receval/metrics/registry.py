"""The metrics receval knows, each registered once: a kernel plus its models.

A metric is a *kernel* (how per-user values are computed from a batch of lists) composed with
*models* (:class:`~receval.metrics.models.Relevance`, :class:`~receval.metrics.models.Discount`,
:class:`~receval.metrics.models.ItemNovelty`) at a cutoff, as in RankSys, where EPC, EFD and EPD
are one ``ItemNoveltyMetric`` over three item novelty models. The engine knows no metric by name:
it groups the requested specs by kernel and calls each kernel once per batch, so a kernel shares
its work (hits, a pair block, aspect triples) between every cutoff and model variant it is given.

Kernels have the signature ``kernel(batch, specs, options) -> {spec.key: values}`` (``options`` is
the :class:`~receval.metrics.engine.EvaluationConfig`, for kernel options such as ``alpha``).

A new item novelty model becomes a metric with one call::

    >>> import numpy as np
    >>> from receval.metrics.models import ItemNovelty
    >>> class LongTail(ItemNovelty):
    ...     '''1 for items with at most 2 train users, else 0.'''
    ...     name = "long_tail"
    ...     def item_values(self, counts, n_users):
    ...         return (counts <= 2).astype(float)
    >>> definition = novelty_metric("elt", LongTail())
    >>> definition.name, get("elt").novelty
    ('elt', LongTail('long_tail'))
    >>> unregister("elt")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from receval.errors import ConfigError
from receval.metrics import accuracy, diversity, intent, novelty
from receval.metrics.models import (
    DISCOUNTS,
    RELEVANCE_KINDS,
    FreeDiscovery,
    ItemNovelty,
    PopularityComplement,
    ProfileDistance,
)

Kernel = Callable[..., dict]


@dataclass(frozen=True)
class MetricDefinition:
    """One metric: its kernel, the models it accepts and takes by default, what it needs.

    Parameters
    ----------
    name : the metric's name in keys (``epc``).
    kernel : per-user kernel ``(batch, specs, options) -> {key: values}``; None for a system
        metric, whose value comes from the item exposure (:mod:`receval.metrics.system`).
    relevances : relevance kinds accepted; None: any.
    discounts : discount kinds accepted; None: any discount, user-defined ones included.
    default_relevance, default_discount : the models of a spec that names none.
    novelty : the item novelty model of an expected-novelty metric.
    needs_features : needs item features whatever the distance (the aspects of intent-aware metrics).
    needs_distance : needs the item distance (features, or ``distance="ratings"``).
    parameters : ``(record field, option)`` pairs: evaluation options reported beside the value.
    """

    name: str
    kernel: Kernel | None
    relevances: tuple[str, ...] | None = None
    discounts: tuple[str, ...] | None = None
    default_relevance: str = "none"
    default_discount: str = "none"
    novelty: ItemNovelty | None = None
    needs_features: bool = False
    needs_distance: bool = False
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def per_user(self) -> bool:
        return self.kernel is not None

    def needs_item_features(self, distance: str) -> bool:
        return self.needs_features or (self.needs_distance and distance != "ratings")


_REGISTRY: dict[str, MetricDefinition] = {}


def register(definition: MetricDefinition) -> MetricDefinition:
    """Add a metric; its name must be new (or carry the same definition)."""
    if not definition.name.replace("_", "").isalnum() or not definition.name[0].isalpha():
        raise ConfigError(f"metric name {definition.name!r}: use letters, digits and _")
    known = _REGISTRY.get(definition.name)
    if known is not None and known != definition:
        raise ConfigError(f"metric {definition.name!r} is already registered")
    _REGISTRY[definition.name] = definition
    return definition


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get(name: str) -> MetricDefinition:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown metric {name!r}; choose from {', '.join(_REGISTRY)}") from None


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def novelty_metric(name: str, model: ItemNovelty, *, default_relevance: str = "none",
                   default_discount: str = "none") -> MetricDefinition:
    """Register the expected-novelty metric ``name`` over the item novelty ``model``:
    ``Σ_k disc(k) p(rel|i_k,u) nov(i_k|u) / Σ_k disc(k)`` (the kernel of EPC, EFD and EPD)."""
    return register(MetricDefinition(
        name, novelty.compute, default_relevance=default_relevance, default_discount=default_discount,
        novelty=model,
    ))


_BINARY = ("binary",)
_NONE = ("none",)
_DISTANCE = (("distance", "distance"),)
for _d in (
    MetricDefinition("precision", accuracy.compute, _BINARY, _NONE, "binary"),
    MetricDefinition("recall", accuracy.compute, _BINARY, _NONE, "binary"),
    MetricDefinition("ndcg", accuracy.compute, ("ndcg",), ("log",), "ndcg", "log"),
    MetricDefinition("ap", accuracy.compute, _BINARY, _NONE, "binary"),
    MetricDefinition("rr", accuracy.compute, _BINARY, ("reciprocal",), "binary", "reciprocal"),
    MetricDefinition("epc", novelty.compute, novelty=PopularityComplement()),
    MetricDefinition("efd", novelty.compute, novelty=FreeDiscovery()),
    MetricDefinition("epd", novelty.compute, novelty=ProfileDistance(), needs_distance=True,
                     parameters=(*_DISTANCE, ("profile", "epd_profile"))),
    MetricDefinition("eild", diversity.compute, needs_distance=True, parameters=_DISTANCE),
    MetricDefinition("ild", diversity.compute, _NONE, _NONE, needs_distance=True, parameters=_DISTANCE),
    MetricDefinition("alpha_ndcg", intent.compute, _BINARY, ("log",), "binary", "log", needs_features=True,
                     parameters=(("alpha", "alpha"),)),
    MetricDefinition("err_ia", intent.compute, ("err",), ("reciprocal",), "err", "reciprocal", needs_features=True),
    MetricDefinition("s_recall", intent.compute, _BINARY, _NONE, "binary", needs_features=True),
    MetricDefinition("aggregate_diversity", None, RELEVANCE_KINDS, _NONE),
    MetricDefinition("gini", None, _NONE, _NONE),
    MetricDefinition("entropy", None, _NONE, _NONE),
):
    register(_d)
BUILTIN_DISCOUNTS = tuple(DISCOUNTS)
