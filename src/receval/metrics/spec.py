"""Which values a report contains: a metric, a cutoff, a relevance model and a discount.

Every reported value is one :class:`MetricSpec`; its ``key`` (``epc[binary,exp]@10``) names the
per-user column, so that no two differently defined values ever share a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from receval.errors import ConfigError
from receval.metrics import registry
from receval.metrics.keys import MetricKey, format_key, model_token, split_keys
from receval.metrics.models import (
    DEFAULT_EXP_BASE,
    DISCOUNT_KINDS,
    DISCOUNTS,
    RELEVANCE_KINDS,
    Discount,
    ExpDiscount,
    NoDiscount,
    Relevance,
    discount as builtin_discount,
)

# The registered metrics, in report order (registry.names() also lists metrics registered later).
METRICS: tuple[str, ...] = registry.names()
SYSTEM_METRICS = tuple(m for m in METRICS if not registry.get(m).per_user)
PER_USER_METRICS = tuple(m for m in METRICS if registry.get(m).per_user)
NOVELTY_DIVERSITY = ("epc", "efd", "epd", "eild")


@dataclass(frozen=True)
class MetricSpec:
    """One reported value: ``metric`` at ``cutoff`` under ``relevance`` and ``discount``.

    ``relevance`` and ``discount`` are model objects (:class:`~receval.metrics.models.Relevance`,
    any :class:`~receval.metrics.models.Discount`, user-defined ones included, where the metric
    takes a discount); the metric itself is looked up in :mod:`receval.metrics.registry`.

    Examples
    --------
    >>> from receval.metrics.models import ExpDiscount, Relevance
    >>> MetricSpec("epc", 10, Relevance("binary"), ExpDiscount()).key
    'epc[binary,exp]@10'
    >>> MetricSpec("epc", 10, Relevance("binary"), ExpDiscount(0.5)).key
    'epc[binary,exp(0.5)]@10'
    """

    metric: str
    cutoff: int
    relevance: Relevance = field(default_factory=Relevance)
    discount: Discount = field(default_factory=NoDiscount)

    def __post_init__(self) -> None:
        definition = registry.get(self.metric)
        if self.cutoff < 1:
            raise ConfigError(f"cutoff must be >= 1, got {self.cutoff}")
        if not isinstance(self.relevance, Relevance):
            raise ConfigError(f"{self.metric}: relevance must be a Relevance model, not {self.relevance!r}")
        if not isinstance(self.discount, Discount):
            raise ConfigError(f"{self.metric}: discount must be a Discount model, not {self.discount!r}")
        rels, discs = definition.relevances, definition.discounts
        if rels is not None and self.relevance.kind not in rels:
            raise ConfigError(f"{self.metric} takes relevance {', '.join(rels)}, not {self.relevance.kind!r}")
        if discs is not None and not any(type(self.discount) is DISCOUNTS[d] for d in discs):
            raise ConfigError(f"{self.metric} takes discount {', '.join(discs)}, not {self.discount.name!r}")
        weights = np.asarray(self.discount.weights(2))
        if weights.shape != (2,) or not np.issubdtype(weights.dtype, np.number):
            raise ConfigError(
                f"discount {self.discount.name!r}: weights(n) must return n numbers, got shape {weights.shape}"
            )
        if not self.discount.name:
            raise ConfigError(f"{type(self.discount).__name__}: a discount needs a name")

    @property
    def definition(self) -> registry.MetricDefinition:
        return registry.get(self.metric)

    @cached_property
    def key(self) -> str:  # once per spec: every batch of every kernel asks for it
        return format_key(self.metric, self.relevance.key, self.discount.key, self.cutoff)

    @property
    def per_user(self) -> bool:
        return self.definition.per_user


def relevance_model(text: str | Relevance, *, threshold: float = 4.0, background: float = 0.0) -> Relevance:
    """A relevance model from its name (``binary``, ``background(0.2)``); a bare ``background``
    takes ``background``."""
    if isinstance(text, Relevance):
        return text
    kind, args = model_token(text, what="relevance")
    if kind not in RELEVANCE_KINDS:
        raise ConfigError(f"unknown relevance model {kind!r}; choose from {', '.join(RELEVANCE_KINDS)}")
    if args and kind != "background" or len(args) > 1:
        raise ConfigError(f"relevance {text!r}: only background takes a parameter, background(B)")
    return Relevance(kind, threshold=threshold, background=args[0] if args else background)


def discount_model(text: str | Discount, *, exp_base: float = DEFAULT_EXP_BASE) -> Discount:
    """A discount from its name (``log``, ``exp(0.5)``); a bare ``exp`` takes ``exp_base``.

    Discounts added with :func:`receval.metrics.models.register_discount` are found by kind.
    """
    if isinstance(text, Discount):
        return text
    kind, args = model_token(text, what="discount")
    if kind not in DISCOUNTS:
        raise ConfigError(f"unknown discount {kind!r}; choose from {', '.join(DISCOUNTS)}")
    if kind == "exp":
        if len(args) > 1:
            raise ConfigError(f"discount {text!r}: expected exp or exp(BASE)")
        return ExpDiscount(args[0] if args else exp_base)
    factory = DISCOUNTS[kind]
    try:
        model = factory(*args)
    except TypeError:
        raise ConfigError(f"discount {text!r}: {factory.__name__} does not take {len(args)} parameter(s)") from None
    return model


def make_spec(
    metric: str,
    cutoff: int,
    relevance: str | Relevance | None = None,
    discount: str | Discount | None = None,
    *,
    threshold: float = 4.0,
    background: float = 0.0,
    exp_base: float = DEFAULT_EXP_BASE,
) -> MetricSpec:
    """Build a spec, filling the metric's own relevance model and discount where not given.

    ``relevance`` and ``discount`` are model objects or names (``binary``, ``exp(0.5)``); a bare
    ``exp`` is exp(``exp_base``), a bare ``background`` is background(``background``).
    """
    definition = registry.get(metric)
    return MetricSpec(
        metric,
        int(cutoff),
        relevance_model(relevance or definition.default_relevance, threshold=threshold, background=background),
        discount_model(discount or definition.default_discount, exp_base=exp_base),
    )


def default_specs(
    cutoffs: list[int] | tuple[int, ...] = (10,),
    threshold: float = 4.0,
    *,
    exp_base: float = 0.85,
    background: float = 0.0,
) -> list[MetricSpec]:
    """The default report (docs/metrics.md, "Metrics"), at each cutoff."""
    kw = dict(threshold=threshold, background=background, exp_base=exp_base)
    specs: list[MetricSpec] = []
    for n in cutoffs:
        specs += [make_spec(m, n, **kw) for m in ("precision", "recall", "ap", "rr", "ndcg")]
        for m in NOVELTY_DIVERSITY:
            for rel in ("none", "binary"):
                for disc in ("none", "exp"):
                    specs.append(make_spec(m, n, rel, disc, **kw))
        specs += [make_spec(m, n, **kw) for m in ("ild", "alpha_ndcg", "err_ia")]
        specs += [make_spec(m, n, **kw) for m in SYSTEM_METRICS]
    return specs


def all_specs(
    cutoffs: list[int] | tuple[int, ...] = (10,),
    threshold: float = 4.0,
    *,
    exp_base: float = 0.85,
    background: float = 0.0,
) -> list[MetricSpec]:
    """Every metric under every relevance model and discount it accepts."""
    out = []
    for n in cutoffs:
        for m in METRICS:
            definition = registry.get(m)
            for rel in definition.relevances or RELEVANCE_KINDS:
                for disc in definition.discounts or DISCOUNT_KINDS:
                    out.append(MetricSpec(m, n, Relevance(rel, threshold, background), builtin_discount(disc, exp_base)))
    return out


def parse_specs(
    texts: list[str],
    cutoffs: list[int] | tuple[int, ...],
    *,
    relevance: list[str] | None = None,
    discount: list[str] | None = None,
    threshold: float = 4.0,
    background: float = 0.0,
    exp_base: float = 0.85,
) -> list[MetricSpec]:
    """Parse metric texts (``metrics=``, ``evaluation.metrics``, ``--metric``): ``epc``, ``epc[binary,exp]``, ``eild[graded,log]@20``, ``epc[binary,exp(0.5)]``.

    A bare novelty/diversity name expands over ``relevance`` × ``discount`` (default: the metric's
    own model); a name without ``@N`` is computed at every cutoff.
    """
    kw = dict(threshold=threshold, background=background, exp_base=exp_base)
    specs: list[MetricSpec] = []
    seen: set[str] = set()
    for text in texts:
        for part in split_keys(text):
            key = MetricKey.parse(part, what="metrics")
            name, rel, disc, at = key.metric, key.relevance, key.discount, key.cutoff
            if key.no_cutoff:
                raise ConfigError(f"metrics {part!r}: every metric has a cutoff; give @K or leave it out",
                                  option="metrics")
            if name not in registry.names():
                raise ConfigError(
                    f"metrics {part!r}: unknown metric {name!r}; choose from {', '.join(registry.names())}",
                    option="metrics",
                )
            definition = registry.get(name)
            rels_allowed = definition.relevances or RELEVANCE_KINDS
            discs_allowed = definition.discounts or tuple(DISCOUNTS)
            # --relevance/--discount apply where the metric takes that kind (a model with parameters,
            # exp(0.5), by its kind)
            rel_opts = [rel] if rel else [
                r for r in (relevance or [None]) if r is None or model_token(r, what="relevance")[0] in rels_allowed
            ] or [None]
            disc_opts = [disc] if disc else [
                d for d in (discount or [None]) if d is None or model_token(d, what="discount")[0] in discs_allowed
            ] or [None]
            for n in [at] if at is not None else cutoffs:
                for r in rel_opts:
                    for d in disc_opts:
                        spec = make_spec(name, n, r, d, **kw)
                        if spec.key not in seen:
                            seen.add(spec.key)
                            specs.append(spec)
    return specs
