"""A deliberately simple, loop-based reference of receval's metrics, written from metrics.md.

This module is the independent check of the vectorized engine in ``receval.metrics``: it imports
nothing from receval, uses only ``math``, dicts and lists, and follows
``/work/shared/reference/metrics.md`` (sections 0-7) and receval's binding decisions (section 9)
literally, one formula at a time, without any attempt at speed.

Inputs are plain Python values:

* ``train``: ``[(user, item, rating), ...]``, already de-duplicated (decision 9.4),
* ``test``: ``[(user, item, rating), ...]``, no duplicate (user, item),
* ``recs``: ``{user: [item, ...]}`` in rank order (rank 1 first), no repeated item,
* ``features``: ``{item: {feature: weight}}`` (an item may be missing or have an empty dict).

Ranks ``k`` are 1-based everywhere, as in metrics.md.

References
----------
S. Vargas and P. Castells. Rank and Relevance in Novelty and Diversity Metrics for Recommender
Systems. RecSys 2011. RankSys (github.com/RankSys/RankSys @ 52ee1fc), as described in metrics.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RELEVANCE_KINDS = ("none", "binary", "background", "graded", "ndcg", "err")
DISCOUNT_KINDS = ("none", "log", "exp", "reciprocal")
# Relevance models that can enumerate the user's relevant set (RankSys "IdealRelevanceModel",
# plus the paper's graded model, whose relevant set is the items with p(rel) > 0).
IDEAL_KINDS = ("binary", "graded", "ndcg", "err")


@dataclass(frozen=True)
class Rel:
    """A relevance model (metrics.md section 1 and decision 9.1)."""

    kind: str = "binary"
    threshold: float = 4.0
    background: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in RELEVANCE_KINDS:
            raise ValueError(f"unknown relevance model {self.kind!r}")


@dataclass(frozen=True)
class Disc:
    """A rank discount model (metrics.md section 2), written for 1-based ranks k."""

    kind: str = "none"
    base: float = 0.85

    def __post_init__(self) -> None:
        if self.kind not in DISCOUNT_KINDS:
            raise ValueError(f"unknown discount model {self.kind!r}")

    def __call__(self, k: int) -> float:
        if k < 1:
            raise ValueError("ranks are 1-based")
        if self.kind == "none":
            return 1.0
        if self.kind == "log":
            return 1.0 / math.log2(k + 1)
        if self.kind == "exp":
            return self.base ** (k - 1)
        return 1.0 / k  # reciprocal

    def relative(self, l: int, k: int) -> float:
        """disc(l | k) = disc(max(1, l - k)): items before k get full weight (section 2)."""
        return self(max(1, l - k))


NONE = Rel("none")
NO_DISCOUNT = Disc("none")


def _sum(values) -> float:
    # Exactly rounded summation, so the reference's own rounding never decides a comparison.
    return math.fsum(values)


class Reference:
    """Every metric of metrics.md sections 5 and 7, one user (or one system) at a time.

    Parameters
    ----------
    train, test, recs, features : see the module docstring.
    distance : ``"cosine"``, ``"jaccard"`` (over ``features``) or ``"ratings"`` (cosine over the
        train user vectors item -> {user: rating}, the section 4 recipe).
    catalog : optional item universe of the Gini index; default: the distinct items of train and test.
    """

    def __init__(self, train, test, recs, features=None, *, distance="cosine", catalog=None):
        self.train = list(train)
        self.test = list(test)
        self.recs = {u: list(items) for u, items in recs.items()}
        self.features = {i: dict(f) for i, f in (features or {}).items()}
        if distance not in ("cosine", "jaccard", "ratings"):
            raise ValueError(f"unknown distance {distance!r}")
        self.distance_kind = distance
        self.catalog = None if catalog is None else list(catalog)

        self.train_profile: dict = {}  # user -> {item: rating}
        self.train_count: dict = {}  # item -> number of train rows (= distinct users, rows are deduplicated)
        for u, i, r in self.train:
            self.train_profile.setdefault(u, {})[i] = float(r)
            self.train_count[i] = self.train_count.get(i, 0) + 1
        self.train_users = set(self.train_profile)

        self.test_ratings: dict = {}  # user -> {item: rating}
        self.test_users: list = []  # first-appearance order; every user with >= 1 test row
        for u, i, r in self.test:
            if u not in self.test_ratings:
                self.test_ratings[u] = {}
                self.test_users.append(u)
            self.test_ratings[u][i] = float(r)
        # ERR gain's r_max: the largest rating of the whole test set (section 1).
        self.r_max = max(float(r) for _, _, r in self.test) if self.test else 0.0

        self.all_features = set()
        for f in self.features.values():
            self.all_features.update(f)

        # Item vectors for the distance: features, or train users' ratings for "ratings".
        if distance == "ratings":
            self.vectors: dict = {}
            for u, i, r in self.train:
                self.vectors.setdefault(i, {})[u] = float(r)
        else:
            self.vectors = self.features
        self._distances: dict = {}

    # ------------------------------------------------------------------ relevance (section 1)
    def g_max(self, threshold: float) -> float:
        """Largest g = max(0, r - tau) over the whole test set (the paper's graded model, 9.1)."""
        return max((max(0.0, float(r) - threshold) for _, _, r in self.test), default=0.0)

    def _gain_of_rating(self, rel: Rel, rating: float | None) -> float:
        """Gain of a judged item with ``rating`` (None = unjudged)."""
        tau = rel.threshold
        if rel.kind == "none":
            return 1.0
        if rating is None:
            return rel.background if rel.kind == "background" else 0.0
        if rel.kind in ("binary", "background"):
            return 1.0 if rating >= tau else 0.0
        if rel.kind == "ndcg":
            return 2.0 ** (rating - tau + 1.0) - 1.0 if rating >= tau else 0.0
        if rel.kind == "err":
            return (2.0**rating - 1.0) / 2.0**self.r_max if rating >= tau else 0.0
        # graded (paper): (2^g - 1) / 2^g_max, g = max(0, r - tau); a rating equal to tau gives 0.
        g = max(0.0, rating - tau)
        return (2.0**g - 1.0) / 2.0 ** self.g_max(tau)

    def gain(self, rel: Rel, user, item) -> float:
        """rel(u, i): the model's gain of ``item`` for ``user`` from the user's TEST ratings."""
        return self._gain_of_rating(rel, self.test_ratings.get(user, {}).get(item))

    def is_relevant(self, rel: Rel, user, item) -> bool:
        """RankSys ``isRelevant``: binary gain 1; background gain > 0; nDCG/ERR r >= tau.

        For the paper's graded model (not in RankSys) we take p(rel) > 0, i.e. r > tau.
        """
        if rel.kind == "none":
            return True
        if rel.kind in ("ndcg", "err"):
            r = self.test_ratings.get(user, {}).get(item)
            return r is not None and r >= rel.threshold
        return self.gain(rel, user, item) > 0.0

    def relevant_items(self, rel: Rel, user) -> list:
        """The user's full (untruncated) relevant set, for the ideal-based metrics."""
        if rel.kind not in IDEAL_KINDS:
            raise ValueError(f"relevance model {rel.kind!r} cannot enumerate relevant items")
        return [i for i in self.test_ratings.get(user, {}) if self.is_relevant(rel, user, i)]

    # ------------------------------------------------------------------ distances (section 4)
    def distance(self, i, j) -> float:
        """Cosine or Jaccard (Tanimoto) distance of two sparse vectors; NaN if either is empty."""
        # memoised only because the MovieLens check asks for the same pairs many times
        key = (i, j)
        if key not in self._distances:
            self._distances[key] = self._distance(i, j)
        return self._distances[key]

    def _distance(self, i, j) -> float:
        a = self.vectors.get(i, {})
        b = self.vectors.get(j, {})
        na = _sum(w * w for w in a.values())
        nb = _sum(w * w for w in b.values())
        if na == 0.0 or nb == 0.0:
            return math.nan
        prod = _sum(w * b[f] for f, w in a.items() if f in b)
        if self.distance_kind == "jaccard":
            return 1.0 - prod / (na + nb - prod)
        return 1.0 - prod / math.sqrt(na * nb)

    # ------------------------------------------------------------------ item novelty (section 3)
    def nov_pc(self, item) -> float:
        """Popularity complement 1 - n_i/|U| over train; unseen items 1.0."""
        if item not in self.train_count:
            return 1.0
        return 1.0 - self.train_count[item] / len(self.train_users)

    def nov_fd(self, item) -> float:
        """Free discovery -log2(n_i / sum_j n_j); unseen items get the least popular item's value."""
        total = sum(self.train_count.values())
        n = self.train_count.get(item, min(self.train_count.values()))
        return -math.log2(n / total)

    def nov_pd(self, user, item) -> float:
        """Profile distance: unweighted mean of d(i, j) over the user's train rows, NaN skipped; else 0."""
        ds = [self.distance(item, j) for j in self.train_profile.get(user, {})]
        ds = [d for d in ds if not math.isnan(d)]
        return _sum(ds) / len(ds) if ds else 0.0

    def nov_pd_weighted(self, user, item, rel: Rel) -> float:
        """The paper's relevance-weighted profile distance (decision 9.1, "relevance" profile).

        OUR READING of section 8/9.1: C' = C / sum_{j in u} p(rel|j,u), with NaN pairs skipped in
        both sums, i.e. per recommended item a weighted mean
        ``sum_j p(rel|j,u) d(i,j) / sum_j p(rel|j,u)`` over the user's profile j with d not NaN
        (0 when the weight sum is 0). ASSUMPTION: the profile items j are TRAIN items, so
        p(rel|j,u) is the same relevance model (same tau, background, r_max / g_max of the test
        set) applied to the user's TRAIN rating of j, not to a test rating (which train items
        usually do not have).
        """
        num, den = [], []
        for j, r in self.train_profile.get(user, {}).items():
            d = self.distance(item, j)
            if math.isnan(d):
                continue
            w = self._gain_of_rating(rel, r)
            num.append(w * d)
            den.append(w)
        weight = _sum(den)
        return _sum(num) / weight if weight > 0.0 else 0.0

    # ------------------------------------------------------------------ per-user metrics (section 5)
    def _list(self, user, cutoff: int) -> list:
        if cutoff < 1:
            raise ValueError("cutoff must be >= 1")
        return self.recs.get(user, [])[:cutoff]

    def precision(self, user, cutoff: int, rel: Rel = Rel("binary")) -> float:
        """P@N = #relevant in the first K / N (always N, even for shorter lists)."""
        items = self._list(user, cutoff)
        return sum(1 for i in items if self.is_relevant(rel, user, i)) / cutoff

    def recall(self, user, cutoff: int, rel: Rel = Rel("binary")) -> float:
        """R@N = #relevant in the first K / |Rel_u|; 0 when Rel_u is empty."""
        relevant = self.relevant_items(rel, user)
        if not relevant:
            return 0.0
        items = self._list(user, cutoff)
        return sum(1 for i in items if self.is_relevant(rel, user, i)) / len(relevant)

    def ndcg(self, user, cutoff: int, rel: Rel = Rel("ndcg")) -> float:
        """DCG / IDCG with log2(k+1) discount and the model's gain; 0 when DCG = 0."""
        items = self._list(user, cutoff)
        dcg = _sum(self.gain(rel, user, i) / math.log2(k + 1) for k, i in enumerate(items, 1))
        if dcg == 0.0:
            return 0.0
        ideal = sorted((self.gain(rel, user, i) for i in self.relevant_items(rel, user)), reverse=True)
        idcg = _sum(g / math.log2(k + 1) for k, g in enumerate(ideal[:cutoff], 1))
        return dcg / idcg

    def ap(self, user, cutoff: int, rel: Rel = Rel("binary")) -> float:
        """AP = sum over relevant hits of precision@k / min(N, |Rel_u|); 0 when Rel_u is empty."""
        relevant = self.relevant_items(rel, user)
        if not relevant:
            return 0.0
        hits, total = 0, []
        for k, i in enumerate(self._list(user, cutoff), 1):
            if self.is_relevant(rel, user, i):
                hits += 1
                total.append(hits / k)
        return _sum(total) / min(cutoff, len(relevant))

    def rr(self, user, cutoff: int, rel: Rel = Rel("binary")) -> float:
        """1/k of the first relevant item within K, else 0."""
        for k, i in enumerate(self._list(user, cutoff), 1):
            if self.is_relevant(rel, user, i):
                return 1.0 / k
        return 0.0

    def _expected_novelty(self, user, cutoff, rel, disc, novelty) -> float:
        # m(u) = sum_k disc(k) rel(i_k) nov(i_k) / sum_k disc(k), over the K positions present.
        items = self._list(user, cutoff)
        if not items:
            return 0.0
        num = _sum(disc(k) * self.gain(rel, user, i) * novelty(i) for k, i in enumerate(items, 1))
        return num / _sum(disc(k) for k in range(1, len(items) + 1))

    def epc(self, user, cutoff: int, rel: Rel = NONE, disc: Disc = NO_DISCOUNT) -> float:
        """Expected popularity complement (section 5.5 with PC)."""
        return self._expected_novelty(user, cutoff, rel, disc, self.nov_pc)

    def efd(self, user, cutoff: int, rel: Rel = NONE, disc: Disc = NO_DISCOUNT) -> float:
        """Expected free discovery (section 5.5 with FD)."""
        return self._expected_novelty(user, cutoff, rel, disc, self.nov_fd)

    def epd(self, user, cutoff: int, rel: Rel = NONE, disc: Disc = NO_DISCOUNT, profile: str = "unweighted") -> float:
        """Expected profile distance: PD (RankSys) or the relevance-weighted profile ("relevance")."""
        if profile == "unweighted":
            return self._expected_novelty(user, cutoff, rel, disc, lambda i: self.nov_pd(user, i))
        if profile == "relevance":
            return self._expected_novelty(user, cutoff, rel, disc, lambda i: self.nov_pd_weighted(user, i, rel))
        raise ValueError(f"unknown EPD profile {profile!r}")

    def eild(self, user, cutoff: int, rel: Rel = NONE, disc: Disc = NO_DISCOUNT, disc2: Disc | None = None) -> float:
        """Expected intra-list distance (section 5.6), all K(K-1) ordered pairs, NaN pairs dropped."""
        disc2 = disc if disc2 is None else disc2
        items = self._list(user, cutoff)
        if not items:
            return 0.0
        rows = []
        for k, ik in enumerate(items, 1):
            weights, sums = [], []
            for l, il in enumerate(items, 1):
                if l == k:
                    continue
                d = self.distance(ik, il)
                if math.isnan(d):
                    continue
                w = disc2.relative(l, k) * self.gain(rel, user, il)
                weights.append(w)
                sums.append(w * d)
            w_k = _sum(weights)
            row = _sum(sums) / w_k if w_k > 0.0 else 0.0  # a skipped row still counts below
            rows.append(disc(k) * self.gain(rel, user, ik) * row)
        return _sum(rows) / _sum(disc(k) for k in range(1, len(items) + 1))

    def ild(self, user, cutoff: int) -> float:
        """ILD = EILD with no relevance and no discount."""
        return self.eild(user, cutoff, NONE, NO_DISCOUNT)

    def _aspects(self, item) -> list:
        # Sorted, so that the summation order (and hence greedy ties) is reproducible.
        return sorted(self.features.get(item, {}))

    def _alpha_gain(self, item, counts: dict, alpha: float) -> float:
        return _sum((1.0 - alpha) ** counts.get(f, 0) for f in self._aspects(item))

    def alpha_ndcg(self, user, cutoff: int, alpha: float = 0.5, threshold: float = 4.0) -> float:
        """alpha-nDCG with binary relevance; ideal = greedy over N positions, ties by item id (9.6)."""
        rel = Rel("binary", threshold)
        items = self._list(user, cutoff)
        counts: dict = {}
        dcg = []
        for k, i in enumerate(items, 1):
            if not self.is_relevant(rel, user, i):
                continue  # non-relevant: gain 0 and no feature counted
            dcg.append(self._alpha_gain(i, counts, alpha) / math.log2(k + 1))
            for f in self._aspects(i):
                counts[f] = counts.get(f, 0) + 1
        dcg_value = _sum(dcg)
        if dcg_value <= 0.0:
            return 0.0
        candidates = sorted(self.relevant_items(rel, user))
        counts, ideal = {}, []
        for k in range(1, cutoff + 1):
            if not candidates:
                break
            # max gain; on equal gain the smallest item id wins (candidates are sorted ascending)
            best = max(candidates, key=lambda i: (self._alpha_gain(i, counts, alpha), _Desc(i)))
            ideal.append(self._alpha_gain(best, counts, alpha) / math.log2(k + 1))
            for f in self._aspects(best):
                counts[f] = counts.get(f, 0) + 1
            candidates.remove(best)
        return dcg_value / _sum(ideal)

    def intent_model(self, user) -> dict:
        """p(f|u) over train + test rows of the user (duplicates across the two count twice)."""
        counts: dict = {}
        rows = list(self.train_profile.get(user, {})) + list(self.test_ratings.get(user, {}))
        for i in rows:
            for f in self.features.get(i, {}):
                counts[f] = counts.get(f, 0) + 1
        total = sum(counts.values())
        if total == 0:
            # no features on any of the user's rows: uniform over every feature of the data
            return {f: 1.0 / len(self.all_features) for f in self.all_features}
        return {f: c / total for f, c in counts.items()}

    def err_ia(self, user, cutoff: int, threshold: float = 4.0) -> float:
        """ERR-IA with the feature intent model and the ERR gain (2^r - 1)/2^r_max (section 5.8)."""
        rel = Rel("err", threshold)
        p = self.intent_model(user)
        not_yet = {f: 1.0 for f in p}  # probability that no earlier item satisfied intent f
        terms = []
        for k, i in enumerate(self._list(user, cutoff), 1):
            if not self.is_relevant(rel, user, i):
                continue
            g = self.gain(rel, user, i)
            for f in self._aspects(i):
                if p.get(f, 0.0) > 0.0:
                    terms.append(p[f] * g * not_yet[f] / k)
                    not_yet[f] *= 1.0 - g
        return _sum(terms)

    def s_recall(self, user, cutoff: int, threshold: float = 4.0) -> float:
        """Distinct features of the relevant retrieved items / number of features in the data."""
        if not self.all_features:
            return 0.0
        rel = Rel("binary", threshold)
        seen = set()
        for i in self._list(user, cutoff):
            if self.is_relevant(rel, user, i):
                seen.update(self.features.get(i, {}))
        return len(seen) / len(self.all_features)

    # ------------------------------------------------------------------ averaging (decision 9.3)
    def mean(self, metric: str, cutoff: int, **options) -> float:
        """Sum over test users (a user without a list scores 0) / number of test users."""
        per_user = getattr(self, metric)
        return _sum(per_user(u, cutoff, **options) for u in self.test_users) / len(self.test_users)

    def per_user(self, metric: str, cutoff: int, **options) -> dict:
        """{test user: value} of a per-user metric."""
        per_user = getattr(self, metric)
        return {u: per_user(u, cutoff, **options) for u in self.test_users}

    # ------------------------------------------------------------------ system metrics (section 7)
    def _counted_lists(self, cutoff: int) -> list:
        """Truncated lists of TEST users only (decision 9.3); lists of other users are ignored."""
        return [self._list(u, cutoff) for u in self.test_users if self.recs.get(u)]

    def aggregate_diversity(self, cutoff: int, rel: Rel = NONE) -> float:
        """N * sum_i W_i / C_i, W_i = sum of rel(u, i)/K_u over i's occurrences, C_i = its occurrences.

        With no relevance this is the number of distinct recommended items when every list has
        >= N items; shorter lists inflate it. No lists at all: RankSys gives 0/0 = NaN, as here.
        """
        counted = [u for u in self.test_users if self.recs.get(u)]
        if not counted:
            return math.nan
        count, weight = {}, {}
        for u in counted:
            items = self._list(u, cutoff)
            for i in items:
                count[i] = count.get(i, 0) + 1
                weight.setdefault(i, []).append(self.gain(rel, u, i) / len(items))
        return cutoff * _sum(_sum(weight[i]) / count[i] for i in count)

    def gini(self, cutoff: int) -> float:
        """RankSys's 1 - G over the catalog (default: distinct items of train and test).

        G = sum_{j=1..n} (2j - n - 1) c_(j) / T / (n - 1), counts ascending with zeros in front.
        """
        lists = self._counted_lists(cutoff)
        universe = set(self.catalog) if self.catalog is not None else (
            {i for _, i, _ in self.train} | {i for _, i, _ in self.test}
        )
        n = len(universe)
        count: dict = {}
        for items in lists:
            for i in items:
                if i not in universe:
                    raise ValueError(f"recommended item {i!r} is outside the Gini universe")
                count[i] = count.get(i, 0) + 1
        total = sum(count.values())
        if total == 0 or n <= 1:
            return math.nan
        ordered = [0] * (n - len(count)) + sorted(count.values())
        g = _sum((2 * j - n - 1) * c / total for j, c in enumerate(ordered, 1)) / (n - 1)
        return 1.0 - g

    def entropy(self, cutoff: int) -> float:
        """RankSys Entropy: sum_i W_i * (-log2(C_i / T)) / #lists, T = sum_u K_u, W_i as above.

        With every list N long this is the Shannon entropy of the exposure distribution C_i / T.
        """
        lists = self._counted_lists(cutoff)
        if not lists:
            return math.nan
        count, weight = {}, {}
        for items in lists:
            for i in items:
                count[i] = count.get(i, 0) + 1
                weight.setdefault(i, []).append(1.0 / len(items))
        total = sum(count.values())
        return _sum(_sum(weight[i]) * -math.log2(count[i] / total) for i in count) / len(lists)


class _Desc:
    """Wraps an id so that ``max`` prefers the SMALLEST id among equal gains."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return other.value < self.value

    def __gt__(self, other: _Desc) -> bool:
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value
