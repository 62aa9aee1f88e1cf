"""Which values a report contains: a metric, a cutoff, a relevance model and a discount.

Every reported value is one :class:`MetricSpec`; its ``key`` (``epc[binary,exp]@10``) names the
per-user column, so that no two differently defined values ever share a name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from receval.errors import ConfigError
from receval.metrics.keys import MetricKey, format_key, split_keys
from receval.metrics.models import DISCOUNT_KINDS, RELEVANCE_KINDS, Discount, Relevance

# metric -> (allowed relevance kinds, allowed discount kinds, default relevance, default discount)
_ANY_REL = RELEVANCE_KINDS
_ANY_DISC = DISCOUNT_KINDS
METRICS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str, str]] = {
    "precision": (("binary",), ("none",), "binary", "none"),
    "recall": (("binary",), ("none",), "binary", "none"),
    "ndcg": (("ndcg",), ("log",), "ndcg", "log"),
    "ap": (("binary",), ("none",), "binary", "none"),
    "rr": (("binary",), ("reciprocal",), "binary", "reciprocal"),
    "epc": (_ANY_REL, _ANY_DISC, "none", "none"),
    "efd": (_ANY_REL, _ANY_DISC, "none", "none"),
    "epd": (_ANY_REL, _ANY_DISC, "none", "none"),
    "eild": (_ANY_REL, _ANY_DISC, "none", "none"),
    "ild": (("none",), ("none",), "none", "none"),
    "alpha_ndcg": (("binary",), ("log",), "binary", "log"),
    "err_ia": (("err",), ("reciprocal",), "err", "reciprocal"),
    "s_recall": (("binary",), ("none",), "binary", "none"),
    "aggregate_diversity": (_ANY_REL, ("none",), "none", "none"),
    "gini": (("none",), ("none",), "none", "none"),
    "entropy": (("none",), ("none",), "none", "none"),
}
PER_USER_METRICS = tuple(m for m in METRICS if m not in ("aggregate_diversity", "gini", "entropy"))
SYSTEM_METRICS = ("aggregate_diversity", "gini", "entropy")
NOVELTY_DIVERSITY = ("epc", "efd", "epd", "eild")


@dataclass(frozen=True)
class MetricSpec:
    """One reported value: ``metric`` at ``cutoff`` under ``relevance`` and ``discount``."""

    metric: str
    cutoff: int
    relevance: Relevance = field(default_factory=Relevance)
    discount: Discount = field(default_factory=Discount)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"unknown metric {self.metric!r}; choose from {', '.join(METRICS)}")
        if self.cutoff < 1:
            raise ConfigError(f"cutoff must be >= 1, got {self.cutoff}")
        rels, discs, _, _ = METRICS[self.metric]
        if self.relevance.kind not in rels:
            raise ConfigError(f"{self.metric} takes relevance {', '.join(rels)}, not {self.relevance.kind!r}")
        if self.discount.kind not in discs:
            raise ConfigError(f"{self.metric} takes discount {', '.join(discs)}, not {self.discount.kind!r}")

    @property
    def key(self) -> str:
        return format_key(self.metric, self.relevance.kind, self.discount.kind, self.cutoff)

    @property
    def per_user(self) -> bool:
        return self.metric in PER_USER_METRICS


def make_spec(
    metric: str,
    cutoff: int,
    relevance: str | None = None,
    discount: str | None = None,
    *,
    threshold: float = 4.0,
    background: float = 0.0,
    exp_base: float = 0.85,
) -> MetricSpec:
    """Build a spec, filling the metric's own relevance model and discount where not given."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
    _, _, rel_default, disc_default = METRICS[metric]
    return MetricSpec(
        metric,
        int(cutoff),
        Relevance(relevance or rel_default, threshold=threshold, background=background),
        Discount(discount or disc_default, base=exp_base),
    )


def default_specs(
    cutoffs: list[int] | tuple[int, ...] = (10,),
    threshold: float = 4.0,
    *,
    exp_base: float = 0.85,
    background: float = 0.0,
) -> list[MetricSpec]:
    """The default report (metrics.md §9.2), at each cutoff."""
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
        for m, (rels, discs, _, _) in METRICS.items():
            for rel in rels:
                for disc in discs:
                    out.append(
                        MetricSpec(m, n, Relevance(rel, threshold, background), Discount(disc, exp_base))
                    )
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
    """Parse ``--metric`` texts: ``epc``, ``epc[binary,exp]``, ``eild[graded,log]@20``.

    A bare novelty/diversity name expands over ``relevance`` × ``discount`` (default: the metric's
    own model); a name without ``@N`` is computed at every cutoff.
    """
    kw = dict(threshold=threshold, background=background, exp_base=exp_base)
    specs: list[MetricSpec] = []
    seen: set[str] = set()
    for text in texts:
        for part in split_keys(text):
            key = MetricKey.parse(part, what="--metric")
            name, rel, disc, at = key.metric, key.relevance, key.discount, key.cutoff
            if key.no_cutoff:
                raise ConfigError(f"--metric {part!r}: every metric has a cutoff; give @K or leave it out")
            if name not in METRICS:
                raise ConfigError(f"--metric {part!r}: unknown metric {name!r}; choose from {', '.join(METRICS)}")
            rels_allowed, discs_allowed, _, _ = METRICS[name]
            rel_opts = [rel] if rel else [r for r in (relevance or [None]) if r is None or r in rels_allowed] or [None]
            disc_opts = [disc] if disc else [d for d in (discount or [None]) if d is None or d in discs_allowed] or [None]
            for n in [at] if at is not None else cutoffs:
                for r in rel_opts:
                    for d in disc_opts:
                        spec = make_spec(name, n, r, d, **kw)
                        if spec.key not in seen:
                            seen.add(spec.key)
                            specs.append(spec)
    return specs
