"""The small models a metric is composed of: relevance, rank discount, item novelty.

Following Vargas & Castells (RecSys 2011) and RankSys, a metric is
``m(u) = C Σ_k disc(k) · p(rel | i_k, u) · nov(i_k | u)``: each factor is one of the value objects
below, and no metric knows how the data was loaded. Each model has a ``name`` that encodes its
parameters (``exp(0.85)``, ``background(0.2)``) and a ``key``, its token in metric keys, which
leaves default parameters out (``exp``). :class:`Discount` and :class:`ItemNovelty` are open:
a subclass in user code is a new model. All functions are vectorized over a ``users × K`` matrix;
unjudged (user, item) pairs carry a NaN rating.

References
----------
S. Vargas and P. Castells. Rank and Relevance in Novelty and Diversity Metrics. RecSys 2011.
RankSys, ``es.uam.eps.ir.ranksys.metrics.{rel,rank}``; docs/metrics.md, "Models".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from receval.errors import ConfigError

RelevanceKind = Literal["none", "binary", "background", "graded", "ndcg", "err"]
RELEVANCE_KINDS: tuple[str, ...] = ("none", "binary", "background", "graded", "ndcg", "err")
DISCOUNT_KINDS: tuple[str, ...] = ("none", "log", "exp", "reciprocal")


@dataclass(frozen=True)
class RelevanceScale:
    """Test-set-wide constants some relevance models need (computed once over the whole test set,
    never per shard, so that every shard uses the same values).

    ``r_max`` is the largest test rating (ERR gain); ``g_max`` the largest ``max(0, r − τ)`` (graded).
    """

    r_max: float
    g_max: float

    @classmethod
    def of(cls, test_ratings: np.ndarray, threshold: float) -> RelevanceScale:
        r = np.asarray(test_ratings, dtype=np.float64)
        if r.size == 0:
            return cls(0.0, 0.0)
        r_max = float(r.max())
        return cls(r_max=r_max, g_max=max(0.0, r_max - threshold))


@dataclass(frozen=True)
class Relevance:
    """A relevance model ``p(rel | i, u)`` from the test rating ``r`` of (u, i).

    =============  =============================================  ==========================
    kind           gain(u, i)                                     unjudged item
    =============  =============================================  ==========================
    none           1                                              1
    binary         1 if r ≥ τ else 0                              0
    background     1 if r ≥ τ else 0                              b
    graded         (2^g − 1) / 2^g_max, g = max(0, r − τ)         0   (the paper's model)
    ndcg           2^(r − τ + 1) − 1 if r ≥ τ else 0              0   (RankSys NDCG gain)
    err            (2^r − 1) / 2^r_max if r ≥ τ else 0            0   (RankSys ERR gain)
    =============  =============================================  ==========================
    """

    kind: RelevanceKind = "none"
    threshold: float = 4.0
    background: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in RELEVANCE_KINDS:
            raise ConfigError(f"unknown relevance model {self.kind!r}; choose from {', '.join(RELEVANCE_KINDS)}")
        if self.kind == "background" and not 0.0 <= self.background <= 1.0:
            raise ConfigError(f"background relevance must be in [0, 1], got {self.background}")
        if self.kind != "background":  # only the background model has a prior: one value object per model
            object.__setattr__(self, "background", 0.0)

    @property
    def name(self) -> str:
        """The model with its own parameters: ``binary``, ``background(0.2)`` (τ is the evaluation's
        threshold and is reported beside the value, not in the name)."""
        return f"background({format_number(self.background)})" if self.kind == "background" else self.kind

    @property
    def key(self) -> str:
        """The token in metric keys: the kind, with the background only when it is not 0."""
        return self.name if self.kind == "background" and self.background != 0.0 else self.kind

    @property
    def label(self) -> str:
        return self.kind

    def gains(self, ratings: np.ndarray, scale: RelevanceScale) -> np.ndarray:
        """Gains for a matrix of ratings (NaN = unjudged)."""
        r = np.asarray(ratings, dtype=np.float64)
        if self.kind == "none":
            return np.ones_like(r)
        judged = ~np.isnan(r)
        tau = self.threshold
        with np.errstate(invalid="ignore"):
            relevant = judged & (r >= tau)
        if self.kind == "binary":
            return relevant.astype(np.float64)
        if self.kind == "background":
            return np.where(judged, relevant.astype(np.float64), self.background)
        # the powers only where they are kept: a list is mostly unjudged items
        out = np.zeros_like(r)
        if self.kind == "graded":
            out[judged] = (np.exp2(np.maximum(0.0, r[judged] - tau)) - 1.0) / np.exp2(scale.g_max)
        elif self.kind == "ndcg":
            out[relevant] = np.exp2(r[relevant] - tau + 1.0) - 1.0
        else:  # err
            out[relevant] = (np.exp2(r[relevant]) - 1.0) / np.exp2(scale.r_max)
        return out

    def is_relevant(self, ratings: np.ndarray) -> np.ndarray:
        """RankSys ``isRelevant``: r ≥ τ for the test-based models, True for ``none``."""
        r = np.asarray(ratings, dtype=np.float64)
        if self.kind == "none":
            return np.ones(r.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            return ~np.isnan(r) & (r >= self.threshold)


def format_number(value: float) -> str:
    """A model parameter as it appears in a name: ``0.85``, ``0.5``, ``1`` (round-trips through float)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


class _NamedModel:
    """Value semantics of a model from its :attr:`name`, which encodes its parameters: two models
    of one class and one name are interchangeable (they share per-batch caches and summary keys)."""

    name: str = ""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.name == other.name  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.name))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Discount(_NamedModel):
    """A rank discount ``disc(k)`` for 1-based rank k (RankSys ``RankingDiscountModel``).

    A discount is a small value object: subclasses set :attr:`name` (which encodes their
    parameters, e.g. ``exp(0.85)``) and implement :meth:`weights`. Everything else derives from
    these two: the EILD relative discount (:meth:`relative`, the matrix the bilinear EILD applies to
    the positions of every list in one GEMM), the ``kind`` reported in summary records (the name without
    parameters) and the token in metric keys (:attr:`key`).

    Built-ins: :class:`NoDiscount` (1), :class:`LogDiscount` (1/log2(k+1)), :class:`ExpDiscount`
    (b^(k−1), the paper's b = 0.85) and :class:`ReciprocalDiscount` (1/k). A user-defined discount
    works in every metric that takes one (EPC, EFD, EPD, EILD); see ``docs/metrics.md``
    ("A discount of your own").

    Examples
    --------
    >>> import numpy as np
    >>> class Linear(Discount):
    ...     name = "linear(10)"
    ...     def weights(self, n):
    ...         return np.maximum(0.0, 1.0 - np.arange(n) / 10.0)
    >>> Linear().weights(3)
    array([1. , 0.9, 0.8])
    >>> Linear().kind, Linear().key
    ('linear', 'linear(10)')
    """

    name: str = ""

    def weights(self, n: int) -> np.ndarray:
        """``disc(k)`` for k = 1..n, as a float array of length n."""
        raise NotImplementedError(f"{type(self).__name__} must implement weights(n)")

    @property
    def kind(self) -> str:
        """The model without its parameters (``exp`` for ``exp(0.5)``): the summary's ``discount``."""
        return self.name.split("(", 1)[0]

    @property
    def key(self) -> str:
        """The token of this discount in a metric key: the name, without default parameters."""
        return self.name

    def relative(self, n: int) -> np.ndarray:
        """The EILD relative discount matrix ``disc(l | k) = disc(max(1, l − k))`` (row k, column l),
        with a zero diagonal (a pair needs two different positions)."""
        k = np.arange(n)
        gap = np.maximum(1, k[None, :] - k[:, None])  # l − k, clipped at 1 for earlier items
        w = np.asarray(self.weights(max(n, 1)), dtype=np.float64)[gap - 1]
        np.fill_diagonal(w, 0.0)
        return w


class NoDiscount(Discount):
    """``disc(k) = 1``."""

    name = "none"

    def weights(self, n: int) -> np.ndarray:
        return np.ones(n)


class LogDiscount(Discount):
    """``disc(k) = 1 / log2(k + 1)`` (RankSys ``LogarithmicDiscountModel``)."""

    name = "log"

    def weights(self, n: int) -> np.ndarray:
        k = np.arange(1, n + 1, dtype=np.float64)
        return np.log(2.0) / np.log(k + 1.0)  # RankSys: ln 2 / ln(r + 2), r 0-based


class ReciprocalDiscount(Discount):
    """``disc(k) = 1 / k`` (RankSys ``ReciprocalDiscountModel``)."""

    name = "reciprocal"

    def weights(self, n: int) -> np.ndarray:
        return 1.0 / np.arange(1, n + 1, dtype=np.float64)


DEFAULT_EXP_BASE = 0.85


class ExpDiscount(Discount):
    """``disc(k) = b^(k−1)`` (RankSys ``ExponentialDiscountModel``; the paper's b = 0.85).

    Its key is ``exp`` for the default base and ``exp(b)`` otherwise, so that
    ``epc[binary,exp]@10`` keeps meaning exp(0.85) and exp(0.5) can sit beside it.
    """

    def __init__(self, base: float = DEFAULT_EXP_BASE):
        base = float(base)
        if not 0.0 < base <= 1.0:
            raise ConfigError(f"the exp discount base must be in (0, 1], got {format_number(base)}")
        self.base = base
        self._name = f"exp({format_number(base)})"  # once: batches hash the model for their caches

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._name

    @property
    def key(self) -> str:
        return "exp" if self.base == DEFAULT_EXP_BASE else self.name

    def weights(self, n: int) -> np.ndarray:
        k = np.arange(1, n + 1, dtype=np.float64)
        return np.power(self.base, k - 1.0)


DISCOUNTS: dict[str, type[Discount]] = {
    "none": NoDiscount, "log": LogDiscount, "exp": ExpDiscount, "reciprocal": ReciprocalDiscount,
}


def register_discount(kind: str, factory: type[Discount]) -> None:
    """Make a discount class parseable by name, e.g. ``linear(10)`` in ``--metric`` texts, config
    files and partial states; objects work in :func:`receval.evaluate` without this."""
    known = DISCOUNTS.get(kind)
    if known is not None and known is not factory:
        raise ConfigError(f"discount {kind!r} is already registered ({known.__name__})")
    DISCOUNTS[kind] = factory


def discount(kind: str, base: float = DEFAULT_EXP_BASE) -> Discount:
    """The built-in discount ``kind`` (``exp`` with base ``base``)."""
    if kind not in DISCOUNT_KINDS:
        raise ConfigError(f"unknown discount {kind!r}; choose from {', '.join(DISCOUNT_KINDS)}")
    return ExpDiscount(base) if kind == "exp" else DISCOUNTS[kind]()


class ItemNovelty(_NamedModel):
    """An item novelty model ``nov(i | u)`` (RankSys ``ItemNovelty``), the factor EPC, EFD and EPD
    differ in.

    Subclasses set :attr:`name` and implement either :meth:`item_values` (a novelty that depends
    on the item only, from train popularity) or, for a user-dependent novelty, :meth:`of_lists`.
    A new one becomes a metric with :func:`receval.metrics.registry.novelty_metric`.
    """

    name: str = ""

    def item_values(self, counts: np.ndarray, n_users: int) -> np.ndarray:
        """``nov(i)`` for every item, from ``counts`` (n_i: distinct train users of item i) and
        ``n_users`` (|U|: train users)."""
        raise NotImplementedError(f"{type(self).__name__} must implement item_values or of_lists")

    def of_lists(self, batch, relevance: Relevance, options) -> np.ndarray:
        """``nov(i_k | u)`` for a batch's lists (B × K; any value where there is no item).

        The default looks :meth:`item_values` up (computed once per evaluation).
        """
        ctx = batch.ctx
        per_item = ctx.__dict__.setdefault("_item_novelty", {})  # once per evaluation
        if self not in per_item:
            per_item[self] = np.asarray(self.item_values(ctx.item_train_users, ctx.n_train_users), dtype=np.float64)
        per_batch = batch.__dict__.setdefault("_cache", {})
        key = ("item_novelty", self)
        if key not in per_batch:
            per_batch[key] = per_item[self][np.where(batch.valid, batch.idx, 0)]
        return per_batch[key]


class PopularityComplement(ItemNovelty):
    """EPC's ``nov(i) = 1 − n_i / |U|`` (RankSys ``PCItemNovelty``)."""

    name = "popularity_complement"

    def item_values(self, counts: np.ndarray, n_users: int) -> np.ndarray:
        return popularity_complement(counts, n_users)


class FreeDiscovery(ItemNovelty):
    """EFD's ``nov(i) = −log2(n_i / Σ_j n_j)`` (RankSys ``FDItemNovelty``)."""

    name = "free_discovery"

    def item_values(self, counts: np.ndarray, n_users: int) -> np.ndarray:
        return free_discovery(counts)


class ProfileDistance(ItemNovelty):
    """EPD's ``nov(i | u)``: the mean item distance from i to the user's train profile (RankSys
    ``PDItemNovelty``), unweighted, or weighted by the relevance model with the evaluation option
    ``epd_profile="relevance"`` (the paper's profile); see :mod:`receval.metrics.novelty`."""

    name = "profile_distance"

    def of_lists(self, batch, relevance: Relevance, options) -> np.ndarray:
        weighted = getattr(options, "epd_profile", "unweighted") == "relevance" and relevance.kind != "none"
        cache = batch.__dict__.setdefault("_cache", {})
        key = ("profile_distance", relevance if weighted else None)
        if key not in cache:
            prof = batch.profile.copy()
            prof.data = relevance.gains(prof.data, batch.ctx.scale) if weighted else np.ones_like(prof.data)
            cache[key] = batch.ctx.distance.profile_mean(batch.idx, prof)
        return cache[key]


def popularity_complement(counts: np.ndarray, n_users: int) -> np.ndarray:
    """EPC item novelty ``nov(i) = 1 − n_i / |U|`` (n_i train users of i, |U| train users); unseen: 1."""
    if n_users == 0:
        return np.ones(len(counts))
    return 1.0 - np.asarray(counts, dtype=np.float64) / n_users


def free_discovery(counts: np.ndarray) -> np.ndarray:
    """EFD item novelty ``nov(i) = −log2(n_i / Σ_j n_j)``; unseen items get the novelty of the least
    popular train item (RankSys FDItemNovelty)."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    seen = c > 0
    if total == 0:
        return np.zeros(len(c))
    out = np.empty(len(c))
    out[seen] = -np.log2(c[seen] / total)
    out[~seen] = -np.log2(c[seen].min() / total)
    return out
