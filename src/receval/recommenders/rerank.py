r"""Diversifying re-rankers over any recommender: MMR, xQuAD and IA-Select.

Each takes the top ``candidates`` items of its base recommender for a user and greedily builds a
list of ``k``: at every position it picks the candidate that maximises

.. math::  f(i \mid S) = \lambda\, \mathrm{rel}(u, i) + (1 - \lambda)\, \mathrm{div}(i \mid S)

where :math:`S` is what was already picked and :math:`\mathrm{rel}` is the base score min-max
normalised over the user's candidates (1 for the best, 0 for the worst; all 1 if they tie). The
greedy loop runs over the ``k`` positions only; every step is numpy over *all users of a batch ×
their candidates*. Ties go to the lower item id, so at :math:`\lambda = 1` every re-ranker returns
exactly its base's list. The emitted ``score`` is :math:`f` at the time of selection, which never
increases down a list (the marginal diversity of a candidate only shrinks as :math:`S` grows), so
"score descending, item id ascending" is the list order.

We write :math:`\lambda` as the weight of *relevance* for all three (MMR's convention). Santos et
al. write xQuAD with :math:`\lambda` on diversity: their :math:`\lambda` is our :math:`1 - \lambda`
(the default 0.5 is the same in both).

Aspects and similarities come from the item features: items without features have similarity 0
to everything and cover no aspect. The user's aspect distribution :math:`p(f \mid u)` is the share
of feature ``f`` among the features of her train items (every (item, feature) pair counts 1);
a user unknown to train gets the distribution of all train interactions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from receval.errors import ConfigError
from receval.metrics.sharding import Shard
from receval.recommenders.base import Recommender, chunk_rows, normalize_rows


class Reranker(Recommender):
    """Common machinery of the greedy re-rankers (see the module docstring).

    Parameters
    ----------
    base : str or Recommender, default "mf"
        The recommender whose candidates are re-ranked: a registry name (built with
        ``base_params``) or an instance. ``fit`` fits it.
    lambda_ : float, default 0.5
        Weight of relevance in [0, 1]; 1 reproduces the base.
    candidates : int, default 100
        How many of the base's top items are re-ranked (at least ``k`` are always taken).
    base_params : dict, optional
        Parameters of the base when ``base`` is a name.
    """

    def __init__(
        self,
        base: str | Recommender = "mf",
        lambda_: float = 0.5,
        candidates: int = 100,
        base_params: Mapping[str, Any] | None = None,
    ):
        from receval.recommenders.registry import make

        if not (np.isfinite(lambda_) and 0.0 <= lambda_ <= 1.0):
            raise ConfigError(f"{self.name}: lambda_ = {lambda_}: must be within 0..1")
        if int(candidates) < 1:
            raise ConfigError(f"{self.name}: candidates = {candidates}: must be at least 1")
        if isinstance(base, Recommender):
            self.base = base
        else:
            self.base = make(base, **dict(base_params or {}))
        super().__init__(
            base=self.base.name,
            lambda_=float(lambda_),
            candidates=int(candidates),
            base_params=dict(self.base.params),
        )

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, features: pd.DataFrame | None = None) -> Reranker:
        self.base.fit(train, features)
        # share the base's indexing: candidates come back as the base's item indices
        self.user_ids, self.item_ids, self.ratings = self.base.user_ids, self.base.item_ids, self.base.ratings
        self.item_popularity = self.base.item_popularity
        self._fit(self.ratings, self._feature_matrix(features))
        return self

    def _fit(self, ratings: sp.csr_matrix, features: sp.csr_matrix | None) -> None:
        if features is None or features.nnz == 0:
            raise ConfigError(f"{self.name}: needs item features (item, feature[, weight]) that cover some train items")
        self._features = sp.csr_matrix(features)
        self._prepare()
        seen = ratings.copy()
        seen.data[:] = 1.0
        everyone = np.asarray((seen @ self._aspects).sum(axis=0)).ravel()
        self._global_aspects = everyone / everyone.sum() if everyone.sum() > 0 else everyone

    def _prepare(self) -> None:
        self._unit = normalize_rows(self._features)
        self._aspects = self._features.copy()
        self._aspects.data[:] = 1.0

    def _score_known(self, users: np.ndarray) -> np.ndarray:  # pragma: no cover - not used
        raise NotImplementedError("re-rankers rank greedily; they have no per-item score")

    # -- greedy selection ---------------------------------------------------------------------
    def _user_aspects(self, users: np.ndarray) -> np.ndarray:
        """p(f|u): dense ``len(users) × n_features``, rows sum to 1 (or 0 without features)."""
        assert self.ratings is not None
        out = np.broadcast_to(self._global_aspects, (len(users), self._aspects.shape[1])).copy()
        known = users >= 0
        if known.any():
            seen = self.ratings[users[known]]
            seen.data[:] = 1.0
            counts = (seen @ self._aspects).toarray()
            totals = counts.sum(axis=1, keepdims=True)
            out[known] = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        return out

    def _rank(self, users: np.ndarray, user_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        pool = max(self.params["candidates"], k)
        steps = min(k, pool, self.n_items)
        items_out = np.full((len(users), steps), -1, dtype=np.int64)
        values_out = np.full((len(users), steps), -np.inf)
        # per user: p(f|u) over all features, and a few features for each of the pool's candidates
        for rows in chunk_rows(len(users), max(8 * pool, self._features.shape[1])):
            candidates, scores = self.base._rank(users[rows], user_ids[rows], pool)
            items_out[rows], values_out[rows] = self._greedy(users[rows], candidates, scores, steps)
        return items_out, values_out

    def _greedy(self, users: np.ndarray, candidates: np.ndarray, scores: np.ndarray,
                steps: int) -> tuple[np.ndarray, np.ndarray]:
        n_rows, pool = candidates.shape
        valid = candidates >= 0
        # columns in item-id order, so that argmax's "first maximum" is the lower item id
        order = np.argsort(np.where(valid, candidates, np.iinfo(np.int64).max), axis=1, kind="stable")
        candidates = np.take_along_axis(candidates, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        valid = np.take_along_axis(valid, order, axis=1)
        relevance = self._min_max(scores, valid)
        state = self._start(users, np.where(valid, candidates, 0), relevance)
        available = valid.copy()
        lam = self.params["lambda_"]
        picked = np.full((n_rows, steps), -1, dtype=np.int64)
        values = np.full((n_rows, steps), -np.inf)
        all_rows = np.arange(n_rows)
        for position in range(steps):
            objective = lam * relevance
            if lam < 1.0:
                objective = objective + (1.0 - lam) * self._diversity(state, relevance)
            objective[~available] = -np.inf
            column = objective.argmax(axis=1)
            best = objective[all_rows, column]
            ok = np.isfinite(best)
            if not ok.any():
                break
            rows, column = all_rows[ok], column[ok]
            picked[rows, position] = candidates[rows, column]
            values[rows, position] = best[ok]
            available[rows, column] = False
            if lam < 1.0:
                self._update(state, rows, column, candidates, relevance)
        return picked, values

    @staticmethod
    def _min_max(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
        low = np.where(valid, scores, np.inf).min(axis=1, keepdims=True)
        high = np.where(valid, scores, -np.inf).max(axis=1, keepdims=True)
        span = high - low
        with np.errstate(invalid="ignore"):
            scaled = np.divide(scores - low, span, out=np.ones_like(scores), where=span > 0)
        return np.where(valid, scaled, 0.0)

    def _start(self, users: np.ndarray, candidates: np.ndarray, relevance: np.ndarray) -> dict[str, Any]:
        raise NotImplementedError

    def _diversity(self, state: dict[str, Any], relevance: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _update(self, state: dict[str, Any], rows: np.ndarray, columns: np.ndarray,
                candidates: np.ndarray, relevance: np.ndarray) -> None:
        raise NotImplementedError

    # -- persistence --------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray | sp.spmatrix]:
        # p(f) over all train users is global: saved, as a pod sees only its shard's users
        return {"features": self._features, "global_aspects": self._global_aspects}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._features = state["features"]
        self._global_aspects = np.asarray(state["global_aspects"])
        self._prepare()

    @property
    def needs_train_rows(self) -> bool:
        return self.base.needs_train_rows

    def with_train(self, train: pd.DataFrame) -> Reranker:
        self.base.with_train(train)
        self.user_ids, self.ratings = self.base.user_ids, self.base.ratings
        return self

    def _objects(self, user_parts: int = 1) -> dict[str, bytes]:
        objects = super()._objects(user_parts)  # the re-ranker's own state is O(items)
        objects.update({f"base/{name}": data for name, data in self.base._objects(user_parts).items()})
        return objects

    def _restore(self, read: Any, where: str, meta: Mapping[str, Any], shard: Shard | None) -> None:
        self.base = Recommender._from_objects(lambda name: read(f"base/{name}"), f"{where}/base", shard)
        super()._restore(read, where, meta, shard)
        self.user_ids, self.ratings = self.base.user_ids, self.base.ratings


class _AspectReranker(Reranker):
    """xQuAD and IA-Select: coverage of the user's aspects, which decays as they are served."""

    graded = False  # p(i|f): 1 for an item with the aspect (xQuAD) or its relevance (IA-Select)

    def _start(self, users: np.ndarray, candidates: np.ndarray, relevance: np.ndarray) -> dict[str, Any]:
        n_rows, pool = candidates.shape
        covered = self._aspects[candidates.ravel()]  # (users × pool) × features
        entry_row = np.repeat(np.arange(covered.shape[0]), np.diff(covered.indptr))
        return {
            "remaining": self._user_aspects(users),  # U(f|u,S) = p(f|u) Π_{j∈S} (1 − p(j|f))
            "entry_row": entry_row,
            "entry_user": entry_row // pool,
            "entry_feature": covered.indices,
            "shape": (n_rows, pool),
        }

    def _diversity(self, state: dict[str, Any], relevance: np.ndarray) -> np.ndarray:
        weight = state["remaining"][state["entry_user"], state["entry_feature"]]
        if self.graded:
            weight = weight * relevance.ravel()[state["entry_row"]]
        n_rows, pool = state["shape"]
        return np.bincount(state["entry_row"], weights=weight, minlength=n_rows * pool).reshape(n_rows, pool)

    def _update(self, state: dict[str, Any], rows: np.ndarray, columns: np.ndarray,
                candidates: np.ndarray, relevance: np.ndarray) -> None:
        served = self._aspects[candidates[rows, columns]]
        counts = np.diff(served.indptr)
        user_rows = np.repeat(rows, counts)
        if self.graded:
            keep = np.repeat(1.0 - relevance[rows, columns], counts)
        else:
            keep = 0.0
        # (user, feature) pairs are distinct: the selected item lists each feature once
        state["remaining"][user_rows, served.indices] *= keep


class XQuAD(_AspectReranker):
    r"""xQuAD, explicit query aspect diversification (Santos, Macdonald & Ounis, WWW 2010).

    .. math::  f(i \mid S) = \lambda\, \mathrm{rel}(u,i) + (1-\lambda) \sum_f p(f \mid u)\,
               p(i \mid f) \prod_{j \in S} \big(1 - p(j \mid f)\big)

    with aspects = item features, :math:`p(f \mid u)` from the user's train profile and
    :math:`p(i \mid f) = 1` when item ``i`` has feature ``f`` (else 0): an aspect counts as covered
    once an item with it is in the list, as in the recommender adaptation of Vargas, Castells &
    Vallet ("Intent-oriented diversity in recommender systems", SIGIR 2011). Default
    :math:`\lambda = 0.5`. (Santos et al.'s :math:`\lambda` is our :math:`1-\lambda`.)
    """

    name = "xquad"
    graded = False


class IASelect(_AspectReranker):
    r"""IA-Select, intent-aware diversification (Agrawal, Gollapudi, Halverson & Ieong, WSDM 2009).

    Greedily maximises :math:`\sum_f U(f \mid u, S)\, V(i \mid u, f)` with
    :math:`U(f \mid u, \emptyset) = p(f \mid u)` (the user's train profile) and, after selecting
    ``i``, :math:`U(f \mid u, S \cup \{i\}) = U(f \mid u, S)\,(1 - V(i \mid u, f))`, where the quality
    :math:`V(i \mid u, f) = \mathrm{rel}(u, i)` if ``i`` has feature ``f`` (else 0) and
    :math:`\mathrm{rel}` is the normalised base score. receval adds the relevance interpolation
    :math:`\lambda\,\mathrm{rel} + (1-\lambda)\cdot` of the other re-rankers so that
    :math:`\lambda = 1` reproduces the base; ``lambda_=0`` is Agrawal et al.'s algorithm. Default
    :math:`\lambda = 0.5`, because with 0 the candidates that cover no remaining aspect all tie at 0
    and would then be ordered by item id rather than by relevance.
    """

    name = "iaselect"
    graded = True


class MMR(Reranker):
    r"""Maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998).

    .. math::  f(i \mid S) = \lambda\, \mathrm{rel}(u, i) - (1 - \lambda) \max_{j \in S} \cos(x_i, x_j)

    with :math:`x_i` the item's feature vector (``weight`` column) and the max over an empty list
    taken as 0. Default :math:`\lambda = 0.5`.
    """

    name = "mmr"

    def _start(self, users: np.ndarray, candidates: np.ndarray, relevance: np.ndarray) -> dict[str, Any]:
        return {
            "vectors": self._unit[candidates.ravel()],  # (users × pool) × features, unit rows
            "closest": np.zeros(candidates.shape),  # max similarity to the selected items
        }

    def _diversity(self, state: dict[str, Any], relevance: np.ndarray) -> np.ndarray:
        return -state["closest"]

    def _update(self, state: dict[str, Any], rows: np.ndarray, columns: np.ndarray,
                candidates: np.ndarray, relevance: np.ndarray) -> None:
        pool = candidates.shape[1]
        entries = (rows[:, None] * pool + np.arange(pool)[None, :]).ravel()
        chosen = self._unit[np.repeat(candidates[rows, columns], pool)]
        similarity = np.asarray(state["vectors"][entries].multiply(chosen).sum(axis=1)).reshape(len(rows), pool)
        state["closest"][rows] = np.maximum(state["closest"][rows], similarity)
