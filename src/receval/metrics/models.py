"""The small models a metric is composed of: relevance, rank discount, item novelty.

Following Vargas & Castells (RecSys 2011) and RankSys, a metric is
``m(u) = C Σ_k disc(k) · p(rel | i_k, u) · nov(i_k | u)``: each factor is one of the value objects
below, and no metric knows how the data was loaded. All functions are vectorized over a
``users × K`` matrix; unjudged (user, item) pairs carry a NaN rating.

References
----------
S. Vargas and P. Castells. Rank and Relevance in Novelty and Diversity Metrics. RecSys 2011.
RankSys, ``es.uam.eps.ir.ranksys.metrics.{rel,rank}`` (see reference/metrics.md §1–§3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from receval.errors import ConfigError

RelevanceKind = Literal["none", "binary", "background", "graded", "ndcg", "err"]
DiscountKind = Literal["none", "log", "exp", "reciprocal"]
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

    @property
    def label(self) -> str:
        return self.kind

    def gains(self, ratings: np.ndarray, scale: RelevanceScale) -> np.ndarray:
        """Gains for a matrix of ratings (NaN = unjudged)."""
        r = np.asarray(ratings, dtype=np.float64)
        judged = ~np.isnan(r)
        tau = self.threshold
        with np.errstate(invalid="ignore"):
            relevant = judged & (r >= tau)
        if self.kind == "none":
            return np.ones_like(r)
        if self.kind == "binary":
            return relevant.astype(np.float64)
        if self.kind == "background":
            return np.where(judged, relevant.astype(np.float64), self.background)
        rr = np.where(judged, r, 0.0)
        if self.kind == "graded":
            g = np.maximum(0.0, rr - tau)
            return np.where(judged, (np.exp2(g) - 1.0) / np.exp2(scale.g_max), 0.0)
        if self.kind == "ndcg":
            return np.where(relevant, np.exp2(rr - tau + 1.0) - 1.0, 0.0)
        # err
        return np.where(relevant, (np.exp2(rr) - 1.0) / np.exp2(scale.r_max), 0.0)

    def is_relevant(self, ratings: np.ndarray) -> np.ndarray:
        """RankSys ``isRelevant``: r ≥ τ for the test-based models, True for ``none``."""
        r = np.asarray(ratings, dtype=np.float64)
        if self.kind == "none":
            return np.ones(r.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            return ~np.isnan(r) & (r >= self.threshold)


@dataclass(frozen=True)
class Discount:
    """A rank discount ``disc(k)`` for 1-based rank k.

    none: 1;  log: 1/log2(k+1);  exp(b): b^(k−1) (the paper's b = 0.85);  reciprocal: 1/k.
    """

    kind: DiscountKind = "none"
    base: float = 0.85

    def __post_init__(self) -> None:
        if self.kind not in DISCOUNT_KINDS:
            raise ConfigError(f"unknown discount {self.kind!r}; choose from {', '.join(DISCOUNT_KINDS)}")
        if self.kind == "exp" and not 0.0 < self.base <= 1.0:
            raise ConfigError(f"the exp discount base must be in (0, 1], got {self.base}")

    @property
    def label(self) -> str:
        return self.kind

    def weights(self, n: int) -> np.ndarray:
        """``disc(k)`` for k = 1..n."""
        k = np.arange(1, n + 1, dtype=np.float64)
        if self.kind == "none":
            return np.ones(n)
        if self.kind == "log":
            return np.log(2.0) / np.log(k + 1.0)  # RankSys: ln 2 / ln(r + 2), r 0-based
        if self.kind == "exp":
            return np.power(self.base, k - 1.0)
        return 1.0 / k

    def relative(self, n: int) -> np.ndarray:
        """The EILD relative discount matrix ``disc(l | k) = disc(max(1, l − k))`` (row k, column l),
        with a zero diagonal (a pair needs two different positions)."""
        k = np.arange(n)
        gap = np.maximum(1, k[None, :] - k[:, None])  # l − k, clipped at 1 for earlier items
        w = self.weights(max(n, 1))[gap - 1]
        np.fill_diagonal(w, 0.0)
        return w


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
