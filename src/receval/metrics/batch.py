"""The shared evaluation context and the users × K matrices every metric reads.

:class:`EvaluationContext` indexes the evaluated users' rows once (items sorted by id, so that "ties
by item id" is "ties by index"; test users sorted by id) over the
:class:`~receval.metrics.statistics.GlobalStatistics` that every shard shares: item popularity, the
catalogue, the test-set relevance scale, feature matrices and the distance model.
:class:`Batch` is a block of users with their truncated lists as a ``B × K`` item-index matrix
(−1 = no item), their test ratings (NaN = unjudged), train profiles and test rows. Metrics are
computed batch by batch, so memory is bounded by the batch size, not by the number of users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from receval.data.codes import dense_range, distinct_sorted, non_decreasing, union_sorted
from receval.metrics.distance import ItemDistance
from receval.metrics.models import Relevance, RelevanceScale
from receval.metrics.statistics import GlobalStatistics


def _csr(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """The canonical CSR matrix (indices sorted within rows, repeats summed) of COO triplets.

    When the rows come grouped in order (readers leave train and test so), it is built from the
    triplets themselves: ``cols`` (a temporary of the caller's: it may be reordered in place)
    becomes its indices and, if already sorted within rows, ``data`` (the frame's rating column) is
    shared, not copied. A COO conversion allocates both anew, 210 MB at 18M train rows.
    """
    data = np.asarray(data, dtype=np.float64)
    if len(rows) and rows[0] >= 0 and non_decreasing(rows) and max(len(rows), *shape) < 2**31 - 1:
        indptr = np.zeros(shape[0] + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
        m = sp.csr_matrix((data, cols.astype(np.int32, copy=False), indptr), shape=shape, copy=False)
        if m.has_canonical_format:
            return m
        # sorting and summing repeats write in place: into our own copy, never the caller's frame
        m = sp.csr_matrix((data.copy(), m.indices, indptr), shape=shape, copy=False)
        m.sum_duplicates()
        return m
    m = sp.csr_matrix((data, (rows, cols)), shape=shape)
    m.sort_indices()
    return m


_PIECE = 1 << 21  # values per lookup step of Positions
DENSE_PRESENCE_MAX = 1 << 22  # cells of EvaluationContext.presence_dense (32 MB of float64)


@dataclass(frozen=True)
class Positions:
    """Where values sit in a sorted, unique id index: ``index.get_indexer`` without hashing for
    integer ids. Ids in a range at most a few times the index's size (ids numbered from 0 or 1,
    as most exports are) are looked up in a table, one gather per value; other integer ids by
    binary search. Both are plain numpy passes that release the GIL, so the batch threads and
    the batch producer do not queue on pandas' hash tables. Text ids keep ``get_indexer``."""

    index: pd.Index
    method: str = "hash"  # "table" | "search" | "hash"
    table: np.ndarray | None = None  # table[id − low] = position (−1: absent)
    low: int = 0

    @classmethod
    def of(cls, index: pd.Index) -> Positions:
        ids = index.to_numpy()
        if ids.dtype.kind not in "iu" or len(ids) == 0 or not bool(np.all(ids[1:] > ids[:-1])):
            return cls(index)  # text ids, or not strictly increasing: get_indexer
        low, high = int(ids[0]), int(ids[-1])
        if dense_range(low, high, len(ids)):
            table = np.full(high - low + 1, -1, dtype=cls._dtype(len(ids)))
            table[ids - low] = np.arange(len(ids), dtype=table.dtype)
            return cls(index, "table", table, low)
        return cls(index, "search")

    @staticmethod
    def _dtype(n: int) -> type:
        return np.int32 if n < 2**31 - 1 else np.int64

    def __call__(self, values) -> np.ndarray:
        """The rows of ``values`` (−1: absent), a piece at a time: temporaries stay a piece's (the
        18M train rows of a million users would need 146 MB of int64 offsets at once)."""
        v = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
        dtype = self._dtype(len(self.index))
        if len(v) <= _PIECE:
            return self._lookup(v, dtype)
        out = np.empty(len(v), dtype=dtype)
        for start in range(0, len(v), _PIECE):
            out[start : start + _PIECE] = self._lookup(v[start : start + _PIECE], dtype)
        return out

    def _lookup(self, v: np.ndarray, dtype: type) -> np.ndarray:
        if self.method == "hash" or v.dtype.kind not in "iu":
            return self.index.get_indexer(v).astype(dtype, copy=False)
        if len(v) == 0:
            return np.zeros(0, dtype=dtype)
        if self.method == "table":
            offset = v.astype(np.int64) - self.low
            inside = (offset >= 0) & (offset < len(self.table))
            if inside.all():
                return self.table[offset]
            return np.where(inside, self.table[np.where(inside, offset, 0)], -1).astype(dtype, copy=False)
        ids = self.index.to_numpy()
        at = np.minimum(np.searchsorted(ids, v), len(ids) - 1)
        return np.where(ids[at] == v, at, -1).astype(dtype, copy=False)


@dataclass
class EvaluationContext:
    """An evaluation's index and matrices: the global statistics over the evaluated users' rows.

    :meth:`build` expects id columns of one type across the frames and the statistics' items
    (:func:`receval.data.schema.harmonise_id_types`, which :func:`receval.metrics.engine.evaluate` applies).
    """

    items: pd.Index
    test_users: pd.Index
    item_train_users: np.ndarray  # n_i: distinct train users of item i
    n_train_users: int
    test: sp.csr_matrix  # test users × items, ratings
    train: sp.csr_matrix  # test users × items, train ratings (the profiles of evaluated users)
    threshold: float
    scale: RelevanceScale
    universe_size: int
    features: sp.csr_matrix | None  # items × features, weights
    distance: ItemDistance | None
    feature_names: pd.Index | None = None
    in_train: np.ndarray = field(default=None)  # type: ignore[assignment]
    in_catalog: np.ndarray = field(default=None)  # type: ignore[assignment]  # train ∪ test

    @classmethod
    def build(
        cls,
        statistics: GlobalStatistics,
        train: pd.DataFrame,
        test: pd.DataFrame,
        recs: pd.DataFrame,
        *,
        threshold: float,
        distance: str | None,
        catalog_size: int | None = None,
        ratings_train: pd.DataFrame | None = None,
    ) -> EvaluationContext:
        """Index the evaluated users' ``train`` and ``test`` rows and their ``recs`` over the global
        ``statistics``.

        ``train``/``test`` need hold only the rows of the users evaluated (a shard): per-user
        structures are built from them, everything global comes from ``statistics``. The item index
        is the catalogue ∪ feature items ∪ recommended items, sorted by id — for a shard a subset of
        the one-pass index in the same order, so ties by index are ties by id everywhere.
        ``ratings_train`` is the *full* train, needed only by ``distance="ratings"`` (item vectors
        over every train user).
        """
        features = statistics.features
        item_parts = [pd.Series(statistics.items), train["item"], test["item"], recs["item"]]
        if features is not None:
            item_parts.append(features["item"])
        items = union_sorted(item_parts)
        test_users = pd.Index(distinct_sorted(test["user"]))
        n_items, n_users = len(items), len(test_users)

        catalog_rows = items.get_indexer(statistics.items)
        counts = np.zeros(n_items, dtype=np.float64)
        counts[catalog_rows] = statistics.train_interactions
        in_train = counts > 0
        in_catalog = np.zeros(n_items, dtype=bool)
        in_catalog[catalog_rows] = True

        # int32 positions (both indexes are far below 2^31): the COO triplets of a million users' train
        # rows are the build's largest arrays, and scipy would narrow int64 ones with a copy anyway
        at_user, at_item = Positions.of(test_users), Positions.of(items)
        te_rows = at_user(test["user"])
        te_items = at_item(test["item"])
        test_m = _csr(te_rows, te_items, test["rating"].to_numpy(np.float64), (n_users, n_items))
        del te_rows, te_items

        tr_rows = at_user(train["user"])
        tr_items = at_item(train["item"])
        tr_ratings = train["rating"].to_numpy(np.float64)
        keep = tr_rows >= 0
        if not keep.all():  # a shard's train holds only its users: copy only when some rows are not evaluated
            tr_rows, tr_items, tr_ratings = tr_rows[keep], tr_items[keep], tr_ratings[keep]
        del keep
        train_m = _csr(tr_rows, tr_items, tr_ratings, (n_users, n_items))
        del tr_rows, tr_items, tr_ratings

        feat_m = None
        feature_names = None
        if features is not None and len(features):
            # one pass over the names, in order of first appearance (= pd.unique's order): looking
            # each of them up again in the distinct names cost 8 ms of every shard pod (75k text rows)
            feature_codes, distinct_names = pd.factorize(features["feature"], use_na_sentinel=False)
            feature_names = pd.Index(distinct_names)
            feat_m = _csr(
                items.get_indexer(features["item"]),
                feature_codes,
                features["weight"].to_numpy(np.float64),
                (n_items, len(feature_names)),
            )

        dist = None
        if distance in ("cosine", "jaccard") and feat_m is not None:
            dist = ItemDistance(distance, feat_m)
        elif distance == "ratings":
            if ratings_train is None:
                raise ValueError("distance 'ratings' needs the full train (ratings_train)")
            # users sorted: the sums over users do not depend on how the rows were bucketed
            all_train_users = pd.Index(pd.unique(ratings_train["user"])).sort_values()
            by_user = _csr(
                items.get_indexer(ratings_train["item"]),
                all_train_users.get_indexer(ratings_train["user"]),
                ratings_train["rating"].to_numpy(np.float64),
                (n_items, len(all_train_users)),
            )
            dist = ItemDistance("cosine", by_user)

        max_rating = statistics.max_test_rating
        ctx = cls(
            items=items,
            test_users=test_users,
            item_train_users=counts,
            n_train_users=statistics.n_train_users,
            test=test_m,
            train=train_m,
            threshold=threshold,
            scale=RelevanceScale.of(np.array([] if np.isnan(max_rating) else [max_rating]), threshold),
            universe_size=catalog_size or statistics.catalog_size,
            features=feat_m,
            distance=dist,
            feature_names=feature_names,
            in_train=in_train,
            in_catalog=in_catalog,
        )
        ctx.__dict__.update(item_positions=at_item, user_positions=at_user)  # the lookups built above
        return ctx

    @cached_property
    def item_positions(self) -> Positions:
        """Item ids → rows of :attr:`items` (−1: not an item of the evaluation)."""
        return Positions.of(self.items)

    @cached_property
    def user_positions(self) -> Positions:
        """User ids → rows of :attr:`test_users` (−1: not a test user)."""
        return Positions.of(self.test_users)

    @cached_property
    def presence(self) -> sp.csr_matrix | None:
        """Binary items × features matrix: the aspects of intent-aware metrics (weights ignored)."""
        if self.features is None:
            return None
        p = self.features.copy()
        p.data = (p.data != 0).astype(np.float64)
        p.eliminate_zeros()
        return p

    @cached_property
    def presence_dense(self) -> np.ndarray | None:
        """:attr:`presence` as a dense float array when it is narrow (at most
        :data:`DENSE_PRESENCE_MAX` cells), for per-user aspect counts by one sparse × dense product;
        None for wide feature spaces (tags), which keep the sparse matrix."""
        p = self.presence
        if p is None or p.shape[0] * p.shape[1] > DENSE_PRESENCE_MAX:
            return None
        return p.toarray()

    @cached_property
    def has_features(self) -> np.ndarray:
        if self.features is None:
            return np.zeros(len(self.items), dtype=bool)
        return np.diff(self.presence.indptr) > 0


@dataclass
class Batch:
    """A block of users: ``idx`` (B × K item indices, −1 = none), ``ratings`` (B × K, NaN unjudged)."""

    ctx: EvaluationContext
    rows: np.ndarray  # test-user rows of the batch
    idx: np.ndarray
    lengths: np.ndarray

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def k(self) -> int:
        return self.idx.shape[1]

    @cached_property
    def valid(self) -> np.ndarray:
        return self.idx >= 0

    @cached_property
    def ratings(self) -> np.ndarray:
        """Test rating of each listed (user, item); NaN where unjudged.

        The test rows are looked up in the lists rather than the lists in the test rows: a user has
        a few test rows against K listed items, and each list sorted once (by item, int32 where the
        catalogue allows) turns the lookup into a binary search of ``B · |T_u|`` keys instead of
        ``B · K`` (about 3× cheaper at K = 50). A list holds an item once, so each test row matches
        at most one position.
        """
        t = self.test
        out = np.full(self.idx.shape, np.nan)
        if t.nnz == 0:
            return out
        n_items = len(self.ctx.items)
        k = self.idx.shape[1]
        listed = np.where(self.valid, self.idx, n_items)  # n_items: no item, matches no test row
        if n_items < 2**31 - 1:
            listed = listed.astype(np.int32)
        order = np.argsort(listed, axis=1)
        width = n_items + 1
        keys = (np.arange(self.size, dtype=np.int64)[:, None] * width + np.take_along_axis(listed, order, axis=1)).ravel()
        wanted = np.repeat(np.arange(self.size, dtype=np.int64), np.diff(t.indptr)) * width + t.indices
        at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        hit = keys[at] == wanted
        flat = at[hit]
        out[flat // k, order.ravel()[flat]] = t.data[hit]
        return out

    @cached_property
    def test(self) -> sp.csr_matrix:
        return self.ctx.test[self.rows]

    @cached_property
    def profile(self) -> sp.csr_matrix:
        return self.ctx.train[self.rows]

    def gains(self, relevance: Relevance) -> np.ndarray:
        """Relevance gains of the listed items, 0 where there is no item."""
        key = ("gains", relevance)
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = np.where(self.valid, relevance.gains(self.ratings, self.ctx.scale), 0.0)
        return cache[key]

    def relevant(self, threshold: float) -> np.ndarray:
        """Whether each listed item is relevant (test rating ≥ threshold); shared by the families."""
        cache = self.__dict__.setdefault("_cache", {})
        key = ("relevant", threshold)
        if key not in cache:
            with np.errstate(invalid="ignore"):
                cache[key] = self.valid & (self.ratings >= threshold)
        return cache[key]

    @cached_property
    def pair_block(self) -> np.ndarray:
        """The B × K × K pair block of the distance model (cosine similarities or Jaccard
        distances, see :meth:`ItemDistance.pair_block`), computed once and shared by EILD, ILD and
        all their variants."""
        return self.ctx.distance.pair_block(self.idx)

    @cached_property
    def has_features(self) -> np.ndarray:
        """Whether each listed item has features (B × K; False where there is no item)."""
        return self.ctx.distance.has_features[np.where(self.valid, self.idx, 0)] & self.valid

    def lengths_at(self, cutoff: int) -> np.ndarray:
        return np.minimum(self.lengths, cutoff)

    def discount_sums(self, n: int, discount) -> np.ndarray:
        """``Σ_{k≤K_u} disc(k)`` of each list at cutoff ``n``: the normaliser of the expected
        novelty and diversity metrics (every listed position counts); once per cutoff and discount."""
        cache = self.__dict__.setdefault("_cache", {})
        key = ("discount_sums", n, discount)
        if key not in cache:
            disc = np.asarray(discount.weights(n), dtype=np.float64)
            cache[key] = (disc * self.valid[:, :n]).sum(axis=1)
        return cache[key]


@dataclass
class ListIndex:
    """Where each user's list sits in the recommendation frame (one contiguous, rank-ordered block
    per user), without copying the frame: 50M rows cost only per-list offsets."""

    items: np.ndarray  # the frame's item column (ids)
    starts: np.ndarray  # first frame row of each list
    lengths: np.ndarray
    users: np.ndarray  # user id of each list
    rows: np.ndarray  # test-user row of each list, −1 for a user not in test

    @classmethod
    def of(cls, recs: pd.DataFrame, ctx: EvaluationContext) -> ListIndex:
        user = recs["user"].to_numpy()
        rank = recs["rank"].to_numpy()
        change = np.empty(len(user), dtype=bool)
        if len(user):
            change[0] = True
            np.not_equal(user[1:], user[:-1], out=change[1:])
            ordered = bool(np.all((rank[1:] > rank[:-1]) | change[1:]))
            starts = np.flatnonzero(change)
            if not ordered or pd.Index(user[starts]).has_duplicates:
                recs = recs.sort_values(["user", "rank"], kind="stable")
                return cls.of(recs, ctx)
        else:
            starts = np.zeros(0, dtype=np.int64)
        users = user[starts]
        return cls(
            items=recs["item"].to_numpy(),
            starts=starts,
            lengths=np.diff(np.append(starts, len(user))),
            users=users,
            rows=ctx.user_positions(users),
        )


def make_batch(ctx: EvaluationContext, lists: ListIndex, sel: np.ndarray, k: int) -> Batch:
    """The :class:`Batch` of the lists ``sel`` (indices into ``lists``), truncated at k."""
    take = np.minimum(lists.lengths[sel], k)
    b = len(sel)
    owner = np.repeat(np.arange(b), take)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(take) - take, take)
    frame_rows = np.repeat(lists.starts[sel], take) + within
    idx = np.full((b, k), -1, dtype=np.int64)
    idx[owner, within] = ctx.item_positions(lists.items[frame_rows])
    return Batch(ctx, lists.rows[sel], idx, take)


def batch_selections(which: np.ndarray, batch_size: int):
    """The lists ``which`` in blocks of ``batch_size``: what :func:`make_batch` takes."""
    for s in range(0, len(which), batch_size):
        yield which[s : s + batch_size]
