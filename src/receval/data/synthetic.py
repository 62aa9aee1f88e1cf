"""A synthetic recommendation dataset with the structure that novelty and diversity metrics need.

Generative model (all draws from ``numpy.random.default_rng`` streams derived from ``seed``):

1. Item popularity follows a Zipf-like power law: item with popularity rank ``r`` (a random permutation of ids)
   has weight ``p_i ∝ r^(-zipf_exponent)``.
2. Each item has 1–4 distinct genre-like features, drawn without replacement with feature weights that are
   themselves Zipf-like (some genres are common, some rare).
3. Each user has 1–3 favourite features. Each of a user's interactions is, with probability ``preference``,
   drawn from the items carrying one of the favourites (popularity-weighted), otherwise from all items by
   popularity. Duplicates are dropped, so a user has at most the requested number of distinct items.
   Users' interaction counts vary (log-normal, mean ``interactions_per_user``) as in real logs.
4. Ratings 1..5: ``round(2.7 + 1.6 * a + b_u + q_i + ε)`` clipped to [1, 5], where ``a`` is the share of the
   item's features the user favours, ``b_u ~ N(0, 0.4)`` a user bias, ``q_i ~ N(0, 0.4)`` an item quality and
   ``ε ~ N(0, 0.6)``; so ratings correlate with taste and content/CF recommenders have signal.
5. Timestamps: each user starts at a random second of 2020 and rates items in drawn order with exponential
   gaps (mean one day).

Users are generated in chunks of ``CHUNK_USERS`` with a random stream per chunk, so memory stays bounded for
millions of users (:func:`synthetic_rating_chunks` yields them one by one), and the result for a given seed
does not depend on how the chunks are consumed.

References
----------
Power-law popularity and its effect on novelty: S. Vargas and P. Castells, "Rank and Relevance in Novelty and
Diversity Metrics for Recommender Systems", RecSys 2011.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from receval.data.dataset import Dataset
from receval.errors import ConfigError

CHUNK_USERS = 20_000
_EPOCH_2020 = 1_577_836_800  # 2020-01-01T00:00:00Z
_YEAR = 366 * 24 * 3600
_DAY = 24 * 3600


@dataclass(frozen=True, eq=False)
class _Catalogue:
    """Item side of the model, shared by every chunk of users."""

    popularity: np.ndarray  # (n_items,) probabilities
    membership: np.ndarray  # (n_items, n_features) bool
    feature_cdf: np.ndarray  # concatenated per-feature CDFs, block f spans (f, f + 1]
    feature_items: np.ndarray  # item index for each entry of feature_cdf
    usable_features: np.ndarray  # features that at least one item carries
    quality: np.ndarray  # (n_items,) item quality term of the rating


def _check(n_users: int, n_items: int, n_features: int, interactions_per_user: int) -> None:
    for label, value, low in (("n_users", n_users, 1), ("n_items", n_items, 1), ("n_features", n_features, 1),
                              ("interactions_per_user", interactions_per_user, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"synthetic data: {label} must be an integer >= {low}, got {value!r}")


def _top_k_per_row(rng: np.random.Generator, log_weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Boolean matrix: row ``r`` has ``counts[r]`` columns drawn without replacement ∝ ``exp(log_weights)``.

    Gumbel-top-k: the ``k`` largest of ``log w + Gumbel noise`` are a weighted sample without replacement.
    """
    keys = log_weights[None, :] + rng.gumbel(size=(len(counts), len(log_weights)))
    ranks = np.argsort(np.argsort(-keys, axis=1), axis=1)
    return ranks < counts[:, None]


def _catalogue(rng: np.random.Generator, n_items: int, n_features: int, zipf_exponent: float) -> _Catalogue:
    popularity_rank = rng.permutation(n_items) + 1
    popularity = popularity_rank.astype(np.float64) ** -zipf_exponent
    popularity /= popularity.sum()
    feature_log_w = -0.5 * np.log(rng.permutation(n_features) + 1.0)
    per_item = rng.integers(1, 5, size=n_items).clip(max=n_features)
    membership = _top_k_per_row(rng, feature_log_w, per_item)
    cdfs, members, usable = [], [], []
    for f in range(n_features):  # a loop over features (tens), not users
        items_f = np.flatnonzero(membership[:, f])
        if len(items_f) == 0:
            continue
        cdf = np.cumsum(popularity[items_f])
        cdfs.append(f + cdf / cdf[-1])
        members.append(items_f)
        usable.append(f)
    quality = rng.normal(0.0, 0.4, size=n_items)
    return _Catalogue(popularity, membership, np.concatenate(cdfs), np.concatenate(members),
                      np.asarray(usable), quality)


def _chunk(
    rng: np.random.Generator, cat: _Catalogue, first_user: int, n_users: int, mean_interactions: int,
    preference: float,
) -> pd.DataFrame:
    n_items, n_features = cat.membership.shape
    # Favourite features: 1–3 of the usable ones, uniformly (the catalogue already skews feature frequency).
    n_fav = rng.integers(1, 4, size=n_users).clip(max=len(cat.usable_features))
    fav_usable = _top_k_per_row(rng, np.zeros(len(cat.usable_features)), n_fav)
    favourites = np.zeros((n_users, n_features), dtype=bool)
    favourites[:, cat.usable_features] = fav_usable

    sigma = 0.5
    wanted = np.rint(rng.lognormal(np.log(mean_interactions) - sigma**2 / 2, sigma, size=n_users))
    wanted = wanted.clip(min=min(2, mean_interactions, n_items), max=n_items).astype(np.int64)
    # Oversample draws with replacement, then keep each user's first `wanted` distinct items.
    draws = np.minimum(3 * wanted + 10, 4 * n_items)
    user_local = np.repeat(np.arange(n_users), draws)
    n_draws = len(user_local)

    from_taste = rng.random(n_draws) < preference
    chosen_per_draw = np.empty(n_draws, dtype=np.int64)
    taste_rows = np.flatnonzero(from_taste)
    if len(taste_rows):
        # Each taste draw follows one of its user's favourites, chosen uniformly; the favourites of a user are
        # the first n_fav columns of a stable argsort that puts True first (O(draws) memory, no draws x features).
        fav_slots = np.argsort(~fav_usable, axis=1, kind="stable")[:, :3]
        owner = user_local[taste_rows]
        pick = (rng.random(len(taste_rows)) * n_fav[owner]).astype(np.int64)
        feature = cat.usable_features[fav_slots[owner, pick]]
        where = np.searchsorted(cat.feature_cdf, feature + rng.random(len(taste_rows)), side="left")
        chosen_per_draw[taste_rows] = cat.feature_items[np.minimum(where, len(cat.feature_items) - 1)]
    pop_rows = np.flatnonzero(~from_taste)
    if len(pop_rows):
        pop_cdf = np.cumsum(cat.popularity)
        chosen_per_draw[pop_rows] = np.minimum(
            np.searchsorted(pop_cdf, rng.random(len(pop_rows)) * pop_cdf[-1], side="left"), n_items - 1
        )

    first_time = ~pd.Series(user_local * n_items + chosen_per_draw).duplicated().to_numpy()
    u_idx, i_idx = user_local[first_time], chosen_per_draw[first_time]
    # Rows are grouped by user in order, so the rank of a row within its user is its offset from the start.
    starts = np.searchsorted(u_idx, np.arange(n_users))
    keep = np.arange(len(u_idx)) - starts[u_idx] < wanted[u_idx]
    u_idx, i_idx = u_idx[keep], i_idx[keep]

    item_feats = cat.membership[i_idx]
    shared = (item_feats & favourites[u_idx]).sum(axis=1) / item_feats.sum(axis=1)
    user_bias = rng.normal(0.0, 0.4, size=n_users)
    mean = 2.7 + 1.6 * shared + user_bias[u_idx] + cat.quality[i_idx]
    rating = np.clip(np.rint(mean + rng.normal(0.0, 0.6, size=len(u_idx))), 1, 5)

    start = _EPOCH_2020 + rng.integers(0, _YEAR, size=n_users)
    gaps = np.maximum(1, rng.exponential(_DAY, size=len(u_idx)).astype(np.int64))
    elapsed = pd.Series(gaps).groupby(u_idx, sort=False).cumsum().to_numpy()
    return pd.DataFrame({
        "user": (first_user + u_idx + 1).astype(np.int64),
        "item": (i_idx + 1).astype(np.int64),
        "rating": rating.astype(np.float64),
        "timestamp": (start[u_idx] + elapsed).astype(np.int64),
    })


def synthetic_rating_chunks(
    n_users: int = 2000,
    n_items: int = 1000,
    n_features: int = 20,
    interactions_per_user: int = 40,
    seed: int = 0,
    *,
    preference: float = 0.6,
    zipf_exponent: float = 1.3,
) -> Iterator[pd.DataFrame]:
    """Yield the ratings of :func:`synthetic_dataset` in chunks of at most ``CHUNK_USERS`` users.

    Lets callers write millions of users to Parquet shards without holding them all in memory.
    """
    cat, user_seq = _setup(n_users, n_items, n_features, interactions_per_user, seed, preference, zipf_exponent)
    yield from _user_chunks(cat, user_seq, n_users, interactions_per_user, preference)


def _setup(n_users, n_items, n_features, interactions_per_user, seed, preference, zipf_exponent):
    """Validate, then derive the item catalogue and the users' seed sequence from ``seed``."""
    _check(n_users, n_items, n_features, interactions_per_user)
    if not 0.0 <= preference <= 1.0:
        raise ConfigError(f"synthetic data: preference must be in [0, 1], got {preference!r}")
    item_seq, user_seq = np.random.SeedSequence(seed).spawn(2)
    return _catalogue(np.random.default_rng(item_seq), n_items, n_features, zipf_exponent), user_seq


def _user_chunks(cat, user_seq, n_users, interactions_per_user, preference) -> Iterator[pd.DataFrame]:
    n_chunks = -(-n_users // CHUNK_USERS)
    for index, chunk_seq in enumerate(user_seq.spawn(n_chunks)):
        first = index * CHUNK_USERS
        size = min(CHUNK_USERS, n_users - first)
        yield _chunk(np.random.default_rng(chunk_seq), cat, first, size, interactions_per_user, preference)


def synthetic_dataset(
    n_users: int = 2000,
    n_items: int = 1000,
    n_features: int = 20,
    interactions_per_user: int = 40,
    seed: int = 0,
    *,
    preference: float = 0.6,
    zipf_exponent: float = 1.3,
) -> Dataset:
    """Generate a deterministic synthetic dataset (see the module docstring for the model).

    Parameters
    ----------
    n_users, n_items, n_features : int
        Sizes; user ids are ``1..n_users``, item ids ``1..n_items``, features ``g00``, ``g01``...
    interactions_per_user : int
        Mean number of distinct items per user (at most ``n_items``).
    seed : int
        Same seed, same dataset.
    preference : float
        Probability that an interaction follows the user's favourite features rather than popularity alone.
    zipf_exponent : float
        Exponent of the item popularity power law.
    """
    cat, user_seq = _setup(n_users, n_items, n_features, interactions_per_user, seed, preference, zipf_exponent)
    ratings = pd.concat(list(_user_chunks(cat, user_seq, n_users, interactions_per_user, preference)),
                        ignore_index=True)
    width = max(2, len(str(n_features - 1)))
    rows, cols = np.nonzero(cat.membership)
    features = pd.DataFrame({
        "item": (rows + 1).astype(np.int64),
        "feature": np.array([f"g{c:0{width}d}" for c in range(n_features)], dtype=object)[cols],
        "weight": 1.0,
    })
    items = pd.DataFrame({"item": np.arange(1, n_items + 1, dtype=np.int64)})
    items["title"] = "item " + items["item"].astype(str)
    return Dataset("synthetic", ratings, features, items, implicit=False)


__all__ = ["CHUNK_USERS", "synthetic_dataset", "synthetic_rating_chunks"]
