"""Non-personalised baselines: random (RND), most popular (POP) and damped item average (AVG)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from receval.errors import ConfigError
from receval.recommenders.base import Recommender, stable_hash

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective, well-mixing uint64 hash."""
    x = np.asarray(x, dtype=np.uint64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class RND(Recommender):
    """Random recommendation: every (user, item) gets a uniform score in [0, 1).

    The score is a counter-based hash of ``(seed, user id, item id)``, so a user's list depends
    only on the seed, the user and the catalogue: not on the batch, the shard, the order of the
    users or the process. Users unknown to train get their own random list too.

    Parameters
    ----------
    seed : int, default 0
    """

    name = "rnd"

    def __init__(self, seed: int = 0):
        super().__init__(seed=int(seed))

    def _fit(self, ratings: sp.csr_matrix, features: sp.csr_matrix | None) -> None:
        self._prepare()

    def _prepare(self) -> None:
        assert self.item_ids is not None
        self._item_hash = stable_hash(self.item_ids)
        # arrays, not numpy scalars: uint64 arithmetic on arrays wraps silently, as a hash needs
        seed = np.array([self.params["seed"] & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
        self._seed_hash = _splitmix64(seed + _GOLDEN)[0:1]

    def _scores_for(self, user_ids: np.ndarray) -> np.ndarray:
        user_key = _splitmix64(stable_hash(np.asarray(user_ids)) ^ self._seed_hash)
        mixed = _splitmix64(user_key[:, None] ^ (self._item_hash[None, :] * _GOLDEN))
        return (mixed >> np.uint64(11)).astype(np.float64) / float(2**53)

    def _score_known(self, users: np.ndarray) -> np.ndarray:
        assert self.user_ids is not None
        return self._scores_for(self.user_ids.to_numpy()[users])

    def _score_unknown(self, user_ids: np.ndarray) -> np.ndarray:
        return self._scores_for(user_ids)

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._prepare()


class POP(Recommender):
    """Most popular: score(u, i) = |{v : v rated i in train}|, the same list for every user.

    Reference: Cremonesi, Koren & Turrin, "Performance of recommender algorithms on top-N
    recommendation tasks", RecSys 2010 (MostPopular).
    """

    name = "pop"

    def __init__(self) -> None:
        super().__init__()

    def _fit(self, ratings: sp.csr_matrix, features: sp.csr_matrix | None) -> None:
        pass  # the base class keeps the item popularity, which is this model

    def _score_known(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._fallback_scores(), (len(users), self.n_items)).copy()

    def _shared_scores(self) -> np.ndarray:
        return self._fallback_scores()


class AVG(Recommender):
    r"""Item average rating, damped towards the global mean.

    .. math::  s(i) = \frac{\sum_{u \in U_i} r_{ui} + \beta\,\mu}{|U_i| + \beta}
               = \mu + \frac{\sum_{u \in U_i} (r_{ui} - \mu)}{|U_i| + \beta}

    where :math:`\mu` is the mean of all train ratings. Without damping an item rated once with 5
    stars would top every list; :math:`\beta = 25` is the item-bias shrinkage of Koren's baseline
    predictor (Koren, "Factor in the neighbors: scalable and accurate collaborative filtering",
    ACM TKDD 4(1), 2010, :math:`\lambda_2 = 25`), the common choice for star ratings. ``damping=0``
    gives the plain mean. For implicit data the "ratings" are averaged all the same (all 1.0
    gives 1.0 for every item, i.e. ties broken by item id). The same list for every user.

    Parameters
    ----------
    damping : float, default 25.0
        :math:`\beta \ge 0`, in "pseudo-ratings at the global mean".
    """

    name = "avg"

    def __init__(self, damping: float = 25.0):
        if not np.isfinite(damping) or damping < 0:
            raise ConfigError(f"avg: damping = {damping}: must be a finite number >= 0")
        super().__init__(damping=float(damping))

    def _fit(self, ratings: sp.csr_matrix, features: sp.csr_matrix | None) -> None:
        columns = ratings.tocsc()
        sums = np.asarray(columns.sum(axis=0)).ravel()
        counts = np.diff(columns.indptr).astype(np.float64)
        mean = ratings.data.mean()
        beta = self.params["damping"]
        self._average = (sums + beta * mean) / (counts + beta)

    def _score_known(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._average, (len(users), self.n_items)).copy()

    def _fallback_scores(self) -> np.ndarray:
        # an unknown user is no different from a known one for a non-personalised list
        if hasattr(self, "_average"):
            return self._average
        return super()._fallback_scores()

    def _shared_scores(self) -> np.ndarray:
        return self._fallback_scores()

    def _state(self) -> dict[str, np.ndarray]:
        return {"average": self._average}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        self._average = np.asarray(state["average"])
