"""Content-based recommendation (CB): cosine between a user's feature profile and each item."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from receval.errors import ConfigError
from receval.recommenders.base import Recommender, normalize_rows

WEIGHTINGS = ("rating", "binary")


class CB(Recommender):
    r"""Content-based filtering over item features (vector-space model).

    .. math::  p_u = \sum_{j \in I_u} w_{uj}\, x_j, \qquad
               s(u, i) = \cos(p_u, x_i) = \frac{p_u \cdot x_i}{\lVert p_u \rVert\,\lVert x_i \rVert}

    :math:`x_i` is item ``i``'s feature vector (the ``weight`` column, optionally times
    :math:`\mathrm{idf}(f) = \log(|I| / |\{i : x_{if} \ne 0\}|)`), and :math:`w_{uj}` is the
    user's train rating (``weighting="rating"``) or 1 (``"binary"``, the choice for implicit data).
    Items without features score 0; a user whose items have no features scores 0 everywhere,
    so her list falls back to item id order. Unknown users get the popularity list.

    Reference: Lops, de Gemmis & Semeraro, "Content-based recommender systems: state of the art
    and trends", Recommender Systems Handbook, 2011; Vargas & Castells, RecSys 2011 (CB).

    Parameters
    ----------
    weighting : {"rating", "binary"}, default "rating"
    tfidf : bool, default False
        Multiply feature weights by their inverse document frequency over the catalogue.
    """

    name = "cb"

    def __init__(self, weighting: str = "rating", tfidf: bool = False):
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"cb: weighting = {weighting!r}: expected one of {', '.join(WEIGHTINGS)}")
        super().__init__(weighting=weighting, tfidf=bool(tfidf))

    def _fit(self, ratings: sp.csr_matrix, features: sp.csr_matrix | None) -> None:
        if features is None or features.nnz == 0:
            raise ConfigError("cb: needs item features (item, feature[, weight]) that cover some train items")
        if self.params["tfidf"]:
            document_frequency = np.diff(features.tocsc().indptr).astype(np.float64)
            idf = np.log(features.shape[0] / np.maximum(document_frequency, 1.0))
            features = sp.csr_matrix(features @ sp.diags(idf))
        self._features = sp.csr_matrix(features)
        self._prepare()

    def _prepare(self) -> None:
        self._unit_t = sp.csr_matrix(normalize_rows(self._features).T)  # features × items

    def _score_known(self, users: np.ndarray) -> np.ndarray:
        assert self.ratings is not None
        weights = self.ratings[users]
        if self.params["weighting"] == "binary":
            weights = weights.copy()
            weights.data[:] = 1.0
        profiles = normalize_rows(weights @ self._features)
        return (profiles @ self._unit_t).toarray()

    def _state(self) -> dict[str, sp.spmatrix]:
        return {"features": self._features}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._features = state["features"]
        self._prepare()
