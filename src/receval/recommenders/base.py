"""The recommender contract shared by every algorithm: fit, recommend in batches, save, load.

A fitted recommender knows the catalogue (the items of ``train``) and the users of ``train``, each
mapped once to a contiguous index (items sorted by id, so that index order *is* id order and ties
in score are broken by item id without a second key). Training data is kept as a
:class:`scipy.sparse.csr_matrix` users × items. Users are scored in batches as dense
``batch × n_items`` matrices; items the user rated in train are masked with ``-inf``; the top ``k``
are taken with :func:`numpy.argpartition` followed by a stable sort (score descending, item id
ascending). Memory is bounded by the batch, never by the number of users.

Subclasses implement :meth:`Recommender._fit` and :meth:`Recommender._score_known`; the rest
(indexing, masking, top-k, batching, persistence) lives here once.

A saved model holds only what every user's list needs (O(items): the catalogue, item popularity,
item statistics, neighbours, features or factors), not the train matrix: the users' train rows
(seen items, profiles) come back at load time from the caller (``train=``, in the pipeline the
shard's train bucket). Per-user learned state (MF's user factors) is saved in ``user_parts`` objects
by user hash, so that loading one shard reads only its users. A *global model* (``global_model =
True``: UB, whose neighbours are all users) keeps the whole train matrix and every user id.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from receval.data.frames import frame_of_parquet, parquet_bytes
from receval.errors import ConfigError, InputError, ReceValError, StoreError
from receval.metrics.sharding import Shard, shard_of
from receval.storage import Store, join

# 2: no train.npz except for global models; item popularity in state.npz; user state in users/ parts
FORMAT_VERSION = 2
MODEL_FILE = "model.json"
REC_COLUMNS = ("user", "item", "rank", "score")

# Largest dense score matrix (cells) built at once; 2**22 float64 cells = 32 MiB. Batches of users
# larger than this (e.g. 1000 users × 17k items) are scored in row chunks of this size.
MAX_DENSE_CELLS = 2**22


# --------------------------------------------------------------------------------------------
# small numeric helpers shared by the algorithms
# --------------------------------------------------------------------------------------------
def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``k`` best entries of each row, best first.

    Order: score descending, then column ascending (columns are in item-id order, so this is
    "item id ascending"). ``-inf`` marks an excluded entry; rows with fewer than ``k`` finite
    entries are padded with ``-inf`` values at the end. Exactly deterministic: entries tied with
    the k-th value are chosen by lowest column, not by whatever argpartition happened to keep.
    """
    n_rows, n_cols = scores.shape
    k = min(int(k), n_cols)
    if k <= 0 or n_rows == 0:
        return np.empty((n_rows, 0), dtype=np.int64), np.empty((n_rows, 0), dtype=np.float64)
    if k < n_cols:
        cols = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        threshold = np.take_along_axis(scores, cols, axis=1).min(axis=1, keepdims=True)
        # argpartition keeps an arbitrary subset of the entries tied with the k-th value; redo
        # only the rows where such a tie crosses the cut (one extra pass over the batch)
        ambiguous = np.flatnonzero((scores >= threshold).sum(axis=1) > k)
        if ambiguous.size:
            sub, sub_threshold = scores[ambiguous], threshold[ambiguous]
            above = sub > sub_threshold
            tied = sub == sub_threshold
            still_needed = k - above.sum(axis=1, keepdims=True)
            chosen = above | (tied & (np.cumsum(tied, axis=1) <= still_needed))
            cols[ambiguous] = np.nonzero(chosen)[1].reshape(ambiguous.size, k)
        cols = np.sort(cols, axis=1)  # ascending column = item id, the tie-break of the sort below
    else:
        cols = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols)).copy()
    values = np.take_along_axis(scores, cols, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")  # stable: equal scores keep column order
    return np.take_along_axis(cols, order, axis=1), np.take_along_axis(values, order, axis=1)


def normalize_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Scale every row of a sparse matrix to unit L2 norm (all-zero rows stay zero)."""
    m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(scale) @ m)


def prune_rows(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest positive entries of each row (ties: lower column first)."""
    cells = matrix.shape[0] * matrix.shape[1]
    if cells <= MAX_DENSE_CELLS and matrix.nnz * 16 >= cells:
        # on a fairly dense block, argpartition is ~5x faster than sorting the sparse entries;
        # on a sparse one (item-item similarities of a long tail) sorting the few entries wins
        dense = np.asarray(matrix.toarray(), dtype=np.float64)
        dense[dense < 0] = 0.0  # negative similarity is not a neighbour
        cols, vals = top_k(dense, k)
        rows = np.repeat(np.arange(dense.shape[0]), cols.shape[1])
        pruned = sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=matrix.shape)
        pruned.eliminate_zeros()
        return pruned
    m = sp.csr_matrix(matrix)
    m.eliminate_zeros()
    m.data[m.data < 0] = 0.0  # negative similarity is not a neighbour
    m.eliminate_zeros()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -m.data, rows))
    position_in_row = np.arange(order.size) - m.indptr[rows[order]]
    keep = order[position_in_row < k]
    return sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)


def chunk_rows(n_rows: int, width: int, max_cells: int = MAX_DENSE_CELLS) -> Iterator[slice]:
    """Row slices such that ``rows × width`` stays under ``max_cells`` (at least one row)."""
    step = max(1, max_cells // max(1, width))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def stable_hash(values: np.ndarray | pd.Index) -> np.ndarray:
    """A uint64 hash of each id that is the same in every process (``7`` and ``"7"`` agree)."""
    text = pd.Series(np.asarray(values)).astype(str).to_numpy(dtype=object)
    return pd.util.hash_array(text, categorize=False)


# --------------------------------------------------------------------------------------------
# persistence helpers
# --------------------------------------------------------------------------------------------
def _npz_bytes(arrays: Mapping[str, np.ndarray | sp.spmatrix]) -> bytes:
    flat: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if sp.issparse(value):
            csr = sp.csr_matrix(value)
            flat[f"{name}.data"] = csr.data
            flat[f"{name}.indices"] = csr.indices
            flat[f"{name}.indptr"] = csr.indptr
            flat[f"{name}.shape"] = np.asarray(csr.shape, dtype=np.int64)
        else:
            flat[name] = np.asarray(value)
    buf = io.BytesIO()
    np.savez(buf, **flat)
    return buf.getvalue()


def _npz_load(data: bytes) -> dict[str, np.ndarray | sp.csr_matrix]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        flat = {name: npz[name] for name in npz.files}
    out: dict[str, np.ndarray | sp.csr_matrix] = {}
    for name in list(flat):
        if name.endswith(".shape"):
            base = name[: -len(".shape")]
            out[base] = sp.csr_matrix(
                (flat[f"{base}.data"], flat[f"{base}.indices"], flat[f"{base}.indptr"]),
                shape=tuple(int(x) for x in flat[name]),
            )
    for name, value in flat.items():
        if name.rsplit(".", 1)[0] not in out:
            out[name] = value
    return out


def _ids_bytes(ids: pd.Index) -> bytes:
    return parquet_bytes(pd.DataFrame({"id": ids.to_numpy()}))


def _ids_load(data: bytes) -> pd.Index:
    return pd.Index(frame_of_parquet(data)["id"].to_numpy())


def _user_part_name(part: Shard) -> str:
    return f"users/part-{part.index}-of-{part.count}"


def _versions() -> dict[str, str]:
    import scipy

    from receval._version import __version__

    return {"receval": __version__, "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__}


def _coerce_ids(ids: pd.Index | pd.Series | np.ndarray, like: pd.Index) -> np.ndarray:
    """Bring requested ids to the dtype of the fitted ids (``"7"`` finds user ``7`` and back)."""
    values = pd.Series(np.asarray(ids))
    if pd.api.types.is_integer_dtype(like.dtype) and not pd.api.types.is_integer_dtype(values.dtype):
        as_int = pd.to_numeric(values, errors="coerce")
        if as_int.notna().all() and (as_int == np.floor(as_int)).all():
            return as_int.astype(np.int64).to_numpy()
        return values.to_numpy()
    if not pd.api.types.is_integer_dtype(like.dtype) and pd.api.types.is_integer_dtype(values.dtype):
        return values.astype(str).to_numpy(dtype=object)
    return values.to_numpy()


# --------------------------------------------------------------------------------------------
# the contract
# --------------------------------------------------------------------------------------------
class Recommender(ABC):
    """Base class of receval's recommenders.

    Subclasses set ``name`` (the registry name), call ``super().__init__(**params)`` with every
    constructor parameter (so that ``params`` can rebuild them) and implement :meth:`_fit` and
    :meth:`_score_known`.

    The catalogue is the set of items in ``train``; only those are recommended. Items a user rated
    in train are never recommended to that user. A user unknown to train gets the **most popular
    items** (number of train users, ties by item id) unless a subclass says otherwise (RND gives
    its seeded random list; explicit MF its item-bias list).
    """

    name: ClassVar[str] = "base"
    # True when scoring one user needs every user's train vector (UB): the saved model then keeps
    # the whole train matrix, and ``with_train`` leaves it alone
    global_model: ClassVar[bool] = False

    def __init__(self, **params: Any):
        self.params: dict[str, Any] = dict(params)
        self.user_ids: pd.Index | None = None
        self.item_ids: pd.Index | None = None
        self.ratings: sp.csr_matrix | None = None  # users × items, train ratings (1.0 if implicit)
        self.feature_ids: pd.Index = pd.Index([])
        self.item_popularity: np.ndarray | None = None  # number of train users per item
        self._saved_users: tuple[pd.Index, dict[str, np.ndarray]] | None = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    # -- fitting ------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return self.item_ids is not None

    @property
    def needs_train_rows(self) -> bool:
        """Whether lists need the users' train rows from the caller (every model but a global one)."""
        return not self.global_model

    def fit(self, train: pd.DataFrame, features: pd.DataFrame | None = None) -> Recommender:
        """Learn from ``train[user, item, rating]`` (``rating`` optional: 1.0) and optional
        ``features[item, feature, weight]``; returns ``self``."""
        self._index(train)
        self._fit(self.ratings, self._feature_matrix(features))
        return self

    def _index(self, train: pd.DataFrame) -> None:
        if not isinstance(train, pd.DataFrame):
            raise InputError(f"{self.name}: train must be a DataFrame with columns user, item[, rating]")
        missing = [c for c in ("user", "item") if c not in train.columns]
        if missing:
            raise InputError(f"train: missing column '{missing[0]}' (found: {', '.join(map(str, train.columns))})")
        if len(train) == 0:
            raise InputError("train: no interactions, nothing to learn from")
        frame, ratings = self._train_rows(train)
        item_codes, items = pd.factorize(frame["item"], sort=True)
        self.item_ids = pd.Index(items)
        self._set_ratings(frame, ratings, item_codes)
        assert self.ratings is not None
        self.item_popularity = np.diff(self.ratings.tocsc().indptr).astype(np.float64)

    @staticmethod
    def _train_rows(train: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        frame = train
        ratings = (frame["rating"].to_numpy(dtype=np.float64) if "rating" in frame.columns
                   else np.ones(len(frame)))
        if not np.isfinite(ratings).all():
            pos = int(np.flatnonzero(~np.isfinite(ratings))[0])
            raise InputError(f"train: column 'rating', row {pos + 1}: not a finite number")
        return frame, ratings

    def _set_ratings(self, frame: pd.DataFrame, ratings: np.ndarray, item_codes: np.ndarray) -> None:
        user_codes, users = pd.factorize(frame["user"], sort=True)
        self.user_ids = pd.Index(users)
        shape = (len(users), self.n_items)
        self.ratings = sp.csr_matrix((ratings, (user_codes, item_codes)), shape=shape, dtype=np.float64)
        if self.ratings.nnz != len(frame):
            # a repeated (user, item) pair, which the conversion summed: the last rating counts
            # (the readers' rule). Checked on the matrix, because a pairwise drop_duplicates of
            # every train row cost a fifth of a predict step whose rows are unique anyway.
            last = ~pd.Series(user_codes.astype(np.int64) * max(self.n_items, 1) + item_codes).duplicated(
                keep="last").to_numpy()
            self.ratings = sp.csr_matrix((ratings[last], (user_codes[last], item_codes[last])), shape=shape,
                                         dtype=np.float64)
        self.ratings.sort_indices()

    def with_train(self, train: pd.DataFrame) -> Recommender:
        """Give a loaded model the train rows of the users it will recommend to; returns ``self``.

        ``train[user, item, rating]`` needs to hold every train row of those users (in the pipeline:
        the shard's train bucket), and may hold only them: the learned global state is not touched,
        so a user's list is the same as from the model fitted on the whole train. A global model
        (UB) already holds every user's rows and ignores it.
        """
        self._check_fitted()
        if self.global_model:
            return self
        missing = [c for c in ("user", "item") if c not in train.columns]
        if missing:
            raise InputError(f"train: missing column '{missing[0]}' (found: {', '.join(map(str, train.columns))})")
        frame, ratings = self._train_rows(train)
        assert self.item_ids is not None
        item_codes = self.item_ids.get_indexer(_coerce_ids(frame["item"].to_numpy(), self.item_ids))
        if (item_codes < 0).any():
            pos = int(np.flatnonzero(item_codes < 0)[0])
            raise InputError(f"train: column 'item', row {pos + 1}: item {frame['item'].iloc[pos]!r} is not in the "
                             f"model's catalogue (a train set other than the model's?)")
        if self._saved_users is None and self.user_ids is not None and (fitted := self._user_state()):
            self._saved_users = (self.user_ids, fitted)  # a fitted model given other users' rows
        self._set_ratings(frame, ratings, item_codes)
        if self._saved_users is not None:
            saved_ids, arrays = self._saved_users
            assert self.user_ids is not None
            rows = saved_ids.get_indexer(self.user_ids)
            if (rows < 0).any():
                user = self.user_ids[int(np.flatnonzero(rows < 0)[0])]
                raise InputError(f"train: user {user!r} has no learned state in the model (a train set other than "
                                 f"the model's, or a model loaded for another shard?)")
            self._set_user_state({name: values[rows] for name, values in arrays.items()})
        return self

    def _feature_matrix(self, features: pd.DataFrame | None) -> sp.csr_matrix | None:
        """Items × features weights aligned to the catalogue; items absent from it are dropped."""
        if features is None:
            self.feature_ids = pd.Index([])
            return None
        missing = [c for c in ("item", "feature") if c not in features.columns]
        if missing:
            raise InputError(f"features: missing column '{missing[0]}'")
        assert self.item_ids is not None
        items = _coerce_ids(features["item"].to_numpy(), self.item_ids)
        rows = self.item_ids.get_indexer(items)
        weights = (features["weight"].to_numpy(dtype=np.float64) if "weight" in features.columns
                   else np.ones(len(features)))
        keep = (rows >= 0) & (weights != 0)
        codes, feature_ids = pd.factorize(features["feature"].to_numpy()[keep], sort=True)
        self.feature_ids = pd.Index(feature_ids)
        matrix = sp.coo_matrix((weights[keep], (rows[keep], codes)), shape=(len(self.item_ids), len(feature_ids)))
        matrix.sum_duplicates()  # a repeated (item, feature) counts once: last weight would need order
        return sp.csr_matrix(matrix)

    @abstractmethod
    def _fit(self, ratings: sp.csr_matrix, features: sp.csr_matrix | None) -> None:
        """Learn the model from the indexed ratings (users × items) and features (items × features)."""

    # -- scoring ------------------------------------------------------------------------------
    @abstractmethod
    def _score_known(self, users: np.ndarray) -> np.ndarray:
        """Dense ``len(users) × n_items`` scores for user indices known to train (finite values)."""

    def _fallback_scores(self) -> np.ndarray:
        """Scores of a user unknown to train: item popularity (number of train users)."""
        assert self.item_popularity is not None
        return self.item_popularity

    def _score_unknown(self, user_ids: np.ndarray) -> np.ndarray:
        """Dense scores of users unknown to train; by default everybody gets the fallback list."""
        return np.broadcast_to(self._fallback_scores(), (len(user_ids), self.n_items)).copy()

    @property
    def n_items(self) -> int:
        assert self.item_ids is not None
        return len(self.item_ids)

    def _shared_scores(self) -> np.ndarray | None:
        """The one score vector of every user, known to train or not, of a non-personalised model
        (POP, AVG); None for a personalised one. Such a model is ranked once, not once per user."""
        return None

    def _rank(self, users: np.ndarray, user_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores (padded with -1 / -inf) of a batch of users.

        ``users`` are indices into ``user_ids`` of the model, ``-1`` for users unknown to train.
        """
        shared = self._shared_scores()
        if shared is not None:
            return self._rank_shared(shared, users, k)
        cols_out = np.full((len(users), min(k, self.n_items)), -1, dtype=np.int64)
        vals_out = np.full(cols_out.shape, -np.inf)
        for rows in chunk_rows(len(users), self.n_items):
            idx = users[rows]
            known = idx >= 0
            scores = np.empty((len(idx), self.n_items))
            if known.any():
                scores[known] = self._score_known(idx[known])
                self._mask_seen(scores, np.flatnonzero(known), idx[known])
            if (~known).any():
                scores[~known] = self._score_unknown(user_ids[rows][~known])
            cols, vals = top_k(scores, k)
            cols_out[rows, : cols.shape[1]] = cols
            vals_out[rows, : vals.shape[1]] = vals
        cols_out[~np.isfinite(vals_out)] = -1
        return cols_out, vals_out

    def _shared_order(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The catalogue in list order (score descending, item id ascending; items with a
        non-finite score left out) and each item's position in it (``n_items`` if left out)."""
        cached = getattr(self, "_shared_order_cache", None)
        if cached is not None and cached[0] is scores:
            return cached[1], cached[2]
        order = np.argsort(-scores, kind="stable")  # stable: ties keep column (= item id) order
        order = order[np.isfinite(scores[order])]
        position = np.full(self.n_items, self.n_items, dtype=np.int64)
        position[order] = np.arange(order.size)
        self._shared_order_cache = (scores, order, position)
        return order, position

    def _rank_shared(self, scores: np.ndarray, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_rank` of a non-personalised model: a user's list is the first ``k`` items of
        the one global order that she did not see in train.

        The same lists as scoring every user densely, in ``O(batch × (k + seen))`` instead of
        ``O(batch × n_items)``: only the first ``k + max seen`` items of the order can be chosen.
        """
        assert self.ratings is not None
        order, position = self._shared_order(scores)
        n_out = min(int(k), self.n_items)
        cols_out = np.full((len(users), n_out), -1, dtype=np.int64)
        vals_out = np.full(cols_out.shape, -np.inf)
        known = np.flatnonzero(users >= 0)
        seen = self.ratings[users[known]]
        seen_per_user = np.diff(seen.indptr)
        width = min(order.size, n_out + int(seen_per_user.max(initial=0)))
        if width == 0 or len(users) == 0:
            return cols_out, vals_out
        # a row per user, a column per candidate (the head of the order); seen candidates blocked
        free = np.ones((len(users), width), dtype=bool)
        seen_row = np.repeat(known, seen_per_user)
        seen_at = position[seen.indices]
        inside = seen_at < width
        free[seen_row[inside], seen_at[inside]] = False
        rank = np.cumsum(free, axis=1)
        row, column = np.nonzero(free & (rank <= n_out))
        cols_out[row, rank[row, column] - 1] = order[column]
        vals_out[row, rank[row, column] - 1] = scores[order[column]]
        return cols_out, vals_out

    def _mask_seen(self, scores: np.ndarray, rows: np.ndarray, users: np.ndarray) -> None:
        assert self.ratings is not None
        seen = self.ratings[users]
        scores[np.repeat(rows, np.diff(seen.indptr)), seen.indices] = -np.inf

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ConfigError(f"recommender '{self.name}' is not fitted: call fit(train) or load a saved model")

    def _check_train_rows(self) -> None:
        if self.ratings is None:
            raise ConfigError(f"recommender '{self.name}' was loaded without the users' train rows: "
                              f"Recommender.load(..., train=...) or model.with_train(train)")

    def recommend_batches(
        self, users: Iterable[Any], k: int, batch_size: int = 1000
    ) -> Iterator[pd.DataFrame]:
        """Yield ``DataFrame[user, item, rank, score]`` for ``batch_size`` users at a time.

        Users keep their given order (duplicates dropped); each user gets exactly
        ``min(k, #candidates)`` rows, ranks 1..n, ordered by score descending then item id ascending.
        Memory is bounded by ``batch_size × n_items`` (scored in chunks of at most
        ``MAX_DENSE_CELLS`` cells), whatever the number of users.
        """
        self._check_fitted()
        self._check_train_rows()
        if int(k) < 1:
            raise ConfigError(f"k = {k}: the number of recommendations per user must be at least 1")
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size = {batch_size}: must be at least 1")
        assert self.user_ids is not None and self.item_ids is not None
        requested = pd.unique(pd.Series(list(users) if not isinstance(users, (pd.Series, np.ndarray, pd.Index))
                                        else users))
        for start in range(0, len(requested), int(batch_size)):
            batch = np.asarray(requested[start : start + int(batch_size)])
            lookup = _coerce_ids(batch, self.user_ids)
            indices = self.user_ids.get_indexer(lookup).astype(np.int64)
            cols, vals = self._rank(indices, batch, int(k))
            yield self._to_frame(batch, cols, vals)

    def recommend(self, users: Iterable[Any], k: int) -> pd.DataFrame:
        """All lists at once: ``DataFrame[user, item, rank, score]`` (see :meth:`recommend_batches`)."""
        frames = list(self.recommend_batches(users, k))
        if not frames:
            return self._to_frame(np.asarray([]), np.empty((0, 0), dtype=np.int64), np.empty((0, 0)))
        return pd.concat(frames, ignore_index=True)

    def _to_frame(self, batch: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> pd.DataFrame:
        assert self.item_ids is not None
        valid = cols >= 0
        counts = valid.sum(axis=1)
        ranks = np.cumsum(valid, axis=1)[valid]  # valid entries form a prefix of each row
        return pd.DataFrame(
            {
                "user": np.repeat(batch, counts),
                "item": self.item_ids.to_numpy()[cols[valid]],
                "rank": ranks.astype(np.int64),
                "score": vals[valid].astype(np.float64),
            }
        )

    # -- persistence --------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        """Learned arrays to save (override; scipy sparse matrices are fine)."""
        return {}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_state` returned (override)."""

    def _user_state(self) -> dict[str, np.ndarray]:
        """Learned arrays with one row per train user, in ``user_ids`` order (override: MF)."""
        return {}

    def _set_user_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore :meth:`_user_state`'s arrays, realigned to the current ``user_ids`` (override)."""

    def _objects(self, user_parts: int = 1) -> dict[str, bytes]:
        """The files of a saved model, by name relative to its folder."""
        self._check_fitted()
        self._check_train_rows()
        assert self.user_ids is not None and self.item_ids is not None and self.item_popularity is not None
        user_state = self._user_state()
        meta = {
            "name": self.name,
            "params": self.params,
            "format": FORMAT_VERSION,
            "versions": _versions(),
            "n_users": len(self.user_ids),
            "n_items": len(self.item_ids),
            "user_parts": int(user_parts) if user_state else 0,
        }
        objects = {
            "items.parquet": _ids_bytes(self.item_ids),
            "features.parquet": _ids_bytes(self.feature_ids),
            "state.npz": _npz_bytes({**self._state(), "item_popularity": self.item_popularity}),
        }
        if self.global_model:
            objects["users.parquet"] = _ids_bytes(self.user_ids)
            objects["train.npz"] = _npz_bytes({"ratings": self.ratings})
        if user_state:
            home = shard_of(self.user_ids.to_numpy(), int(user_parts))
            for part in range(int(user_parts)):
                rows = np.flatnonzero(home == part)
                name = _user_part_name(Shard(part, int(user_parts)))
                objects[f"{name}.parquet"] = _ids_bytes(self.user_ids[rows])
                objects[f"{name}.npz"] = _npz_bytes({key: values[rows] for key, values in user_state.items()})
        objects[MODEL_FILE] = (json.dumps(meta, indent=2, default=str) + "\n").encode()
        return objects

    def save(self, store: Store, prefix: str, *, user_parts: int = 1) -> None:
        """Write the fitted model under ``prefix`` and publish it (``_SUCCESS`` written last).

        Per-user state (MF's user factors) goes into ``user_parts`` objects by user hash; loading
        with ``shard=`` then reads only the parts that can hold the shard's users (the pipeline
        uses the run's bucket count, so a pod reads one part).
        """
        if int(user_parts) < 1:
            raise ConfigError(f"user_parts = {user_parts}: must be at least 1")
        store.publish(prefix, self._objects(int(user_parts)), marker={"name": self.name, "format": FORMAT_VERSION})

    @classmethod
    def _from_objects(cls, read: Any, where: str, shard: Shard | None = None) -> Recommender:
        from receval.recommenders.registry import make

        try:
            meta = json.loads(read(MODEL_FILE))
        except (ValueError, UnicodeDecodeError):
            raise StoreError(f"{where}/{MODEL_FILE}: not a receval model description") from None
        if meta.get("format") != FORMAT_VERSION:
            raise StoreError(f"{where}/{MODEL_FILE}: model format {meta.get('format')!r}, expected {FORMAT_VERSION}")
        model = make(meta["name"], **meta["params"])
        if cls is not Recommender and not isinstance(model, cls):
            raise StoreError(f"{where}: holds a '{meta['name']}' model, not a {cls.__name__}")
        model._restore(read, where, meta, shard)
        return model

    def _restore(self, read: Any, where: str, meta: Mapping[str, Any], shard: Shard | None) -> None:
        self.item_ids = _ids_load(read("items.parquet"))
        self.feature_ids = _ids_load(read("features.parquet"))
        if self.global_model:
            self.user_ids = _ids_load(read("users.parquet"))
            self.ratings = _npz_load(read("train.npz"))["ratings"]  # type: ignore[assignment]
        parts = int(meta.get("user_parts", 0))
        if parts:
            ids, arrays = [], []
            for part in (shard or Shard(0, 1)).overlapping(parts):
                name = _user_part_name(Shard(part, parts))
                ids.append(_ids_load(read(f"{name}.parquet")))
                arrays.append(_npz_load(read(f"{name}.npz")))
            self._saved_users = (pd.Index(np.concatenate([i.to_numpy() for i in ids])),
                                 {key: np.concatenate([a[key] for a in arrays]) for key in arrays[0]})
        state = _npz_load(read("state.npz"))
        self.item_popularity = np.asarray(state.pop("item_popularity"))
        self._set_state(state)

    @classmethod
    def load(cls, store: Store, prefix: str, *, train: pd.DataFrame | None = None,
             shard: Shard | None = None) -> Recommender:
        """Load a model saved by :meth:`save`; the folder must be published (``_SUCCESS``).

        ``train``: the train rows of the users to recommend to (see :meth:`with_train`); without it
        only a global model (UB) can recommend. ``shard``: read only the per-user state of that
        shard's users (then ``train`` may hold only them).
        """
        if not store.is_complete(prefix):
            raise StoreError(
                f"{store.url(prefix)}: no saved model here (no _SUCCESS marker: never saved, or the save did not finish)"
            )
        where = store.url(prefix)
        opened: list[str] = []

        def read(name: str) -> bytes:
            opened.append(name)
            return store.read_bytes(join(prefix, name))

        try:
            model = cls._from_objects(read, where, shard)
        except ReceValError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoding failure of a tampered or truncated object
            name = opened[-1] if opened else MODEL_FILE
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise StoreError(
                f"{where}/{name}: corrupt or tampered model object ({type(exc).__name__}: {first}); "
                f"train the algorithm again with --force"
            ) from None
        return model if train is None else model.with_train(train)
