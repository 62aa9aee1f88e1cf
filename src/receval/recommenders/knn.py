"""Neighbourhood collaborative filtering: user-based (UB) and item-based (IB) kNN, cosine similarity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from receval.errors import ConfigError
from receval.recommenders.base import Recommender, chunk_rows, normalize_rows, prune_rows


def _check_neighbours(name: str, neighbours: int) -> int:
    if int(neighbours) < 1:
        raise ConfigError(f"{name}: neighbours = {neighbours}: must be at least 1")
    return int(neighbours)


class UB(Recommender):
    r"""User-based kNN (Resnick et al. 1994; top-N form as in Cremonesi et al. 2010).

    .. math::  s(u, i) = \sum_{v \in N_k(u),\ r_{vi} \ne 0} \mathrm{sim}(u, v)\, r_{vi},
               \qquad \mathrm{sim}(u, v) = \frac{r_u \cdot r_v}{\lVert r_u \rVert\,\lVert r_v \rVert}

    :math:`N_k(u)` are the ``neighbours`` users most similar to ``u`` (cosine over the train rating
    vectors; ties by lower user id; only positive similarities). The similarity rows of a batch of
    users are one sparse product, pruned to the top ``k`` per row, then multiplied by the rating
    matrix: no loop over users. Unknown users get the popularity list.

    Reference: Resnick, Iacovou, Suchak, Bergstrom & Riedl, "GroupLens: an open architecture for
    collaborative filtering of netnews", CSCW 1994; Vargas & Castells, RecSys 2011 (UB).

    Parameters
    ----------
    neighbours : int, default 100
    """

    name = "ub"
    # a user's neighbours are all train users: the saved model keeps the whole train matrix
    global_model = True

    def __init__(self, neighbours: int = 100):
        super().__init__(neighbours=_check_neighbours("ub", neighbours))

    def _fit(self, ratings: sp.csr_matrix, features: sp.csr_matrix | None) -> None:
        self._prepare()

    def _prepare(self) -> None:
        assert self.ratings is not None
        self._unit = normalize_rows(self.ratings)
        self._unit_t = sp.csr_matrix(self._unit.T)

    def _score_known(self, users: np.ndarray) -> np.ndarray:
        out = np.empty((len(users), self.n_items))
        n_users = self._unit.shape[0]
        for rows in chunk_rows(len(users), n_users):
            batch = users[rows]
            sim = sp.csr_matrix(self._unit[batch] @ self._unit_t)
            # a user is not her own neighbour
            row_of = np.repeat(np.arange(len(batch)), np.diff(sim.indptr))
            sim.data[sim.indices == batch[row_of]] = 0.0
            out[rows] = (prune_rows(sim, self.params["neighbours"]) @ self.ratings).toarray()
        return out

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._prepare()


class IB(Recommender):
    r"""Item-based kNN (Sarwar et al. 2001; Deshpande & Karypis 2004).

    .. math::  s(u, i) = \sum_{j \in I_u \cap N_k(i)} \mathrm{sim}(i, j)\, r_{uj},
               \qquad \mathrm{sim}(i, j) = \frac{r_{\cdot i} \cdot r_{\cdot j}}
               {\lVert r_{\cdot i} \rVert\,\lVert r_{\cdot j} \rVert}

    :math:`N_k(i)` are the ``neighbours`` items most similar to ``i`` (cosine over the item rating
    columns, ties by lower item id, positive only). The pruned item × item matrix is computed at
    fit time in blocks of items and saved with the model; scoring a batch is one sparse product.
    Unknown users get the popularity list.

    References: Sarwar, Karypis, Konstan & Riedl, "Item-based collaborative filtering
    recommendation algorithms", WWW 2001; Deshpande & Karypis, "Item-based top-N recommendation
    algorithms", ACM TOIS 22(1), 2004.

    Parameters
    ----------
    neighbours : int, default 100
    """

    name = "ib"

    def __init__(self, neighbours: int = 100):
        super().__init__(neighbours=_check_neighbours("ib", neighbours))

    def _fit(self, ratings: sp.csr_matrix, features: sp.csr_matrix | None) -> None:
        columns_unit = normalize_rows(ratings.T)  # items × users, unit rows
        columns_unit_t = sp.csr_matrix(columns_unit.T)
        blocks = []
        n_items = ratings.shape[1]
        for rows in chunk_rows(n_items, n_items):
            sim = sp.csr_matrix(columns_unit[rows] @ columns_unit_t)
            row_of = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr)) + rows.start
            sim.data[sim.indices == row_of] = 0.0  # an item is not its own neighbour
            blocks.append(prune_rows(sim, self.params["neighbours"]))
        # neighbours[i, j] = sim(i, j) if j is among i's k neighbours; scoring needs its transpose
        self._neighbours_t = sp.csr_matrix(sp.vstack(blocks).T)

    def _score_known(self, users: np.ndarray) -> np.ndarray:
        assert self.ratings is not None
        return (self.ratings[users] @ self._neighbours_t).toarray()

    def _state(self) -> dict[str, sp.spmatrix]:
        return {"neighbours_t": self._neighbours_t}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._neighbours_t = state["neighbours_t"]
