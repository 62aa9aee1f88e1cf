"""Train/test splits of a ratings frame: random per user, temporal per user, global temporal, leave-k-out.

All splits are vectorized (one sort, no Python loop over users), deterministic for a given input and seed,
and partition the input rows: ``train`` and ``test`` are disjoint and together are exactly the input (each
keeps the input's columns and relative row order, with a fresh index).

Per-user splits put ``round(test_fraction * n_u)`` of a user's ``n_u`` ratings in test (halves round up) but
never all of them: a user with two or more ratings keeps at least one in train, and a user with a single
rating keeps it in train, so every test user is known to the recommenders.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from receval.errors import ConfigError, InputError

METHODS = ("random", "temporal", "global_temporal", "leave_k_out")


def _check_fraction(test_fraction: float) -> float:
    try:
        value = float(test_fraction)
    except (TypeError, ValueError):
        raise ConfigError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}") from None
    if not 0.0 < value < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    return value


def _check_frame(ratings: pd.DataFrame, *, need_time: bool = False) -> None:
    missing = [c for c in ("user", "item") if c not in ratings.columns]
    if missing:
        raise InputError(f"ratings: missing column '{missing[0]}' (found: {', '.join(map(str, ratings.columns))})")
    if need_time and "timestamp" not in ratings.columns:
        raise ConfigError("a temporal split needs a 'timestamp' column and these ratings have none; "
                          "use method 'random' or 'leave_k_out'")
    # One int64 key per pair: much faster than a two-column duplicated() on millions of rows.
    users, _ = pd.factorize(ratings["user"])
    items, item_values = pd.factorize(ratings["item"])
    dup = pd.Series(users.astype(np.int64) * max(len(item_values), 1) + items).duplicated().to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        user, item = (v.item() if hasattr(v, "item") else v for v in ratings[["user", "item"]].iloc[pos])
        raise InputError(f"ratings: row {pos + 1}: user {user!r} has item {item!r} more than once; "
                         f"a split of pairs needs unique pairs")


def _codes(values: pd.Series) -> np.ndarray:
    """Dense integer codes that sort like the values (ids are all int or all str, so they are orderable)."""
    codes, _ = pd.factorize(values, sort=True)
    return codes


def _stable_order(*keys: np.ndarray) -> np.ndarray:
    """Row order by ``keys`` (most significant first): repeated stable sorts, least significant first.

    Equivalent to ``np.lexsort`` but several times faster on millions of rows (integer keys radix-sort).
    """
    order = np.arange(len(keys[0]))
    for key in reversed(keys):
        order = order[np.argsort(key[order], kind="stable")]
    return order


def _position_in_user(user_codes: np.ndarray, within: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's 0-based position within its user, rows of a user taken in the order ``within``
    (a permutation of the rows), and the size of its user."""
    order = within[np.argsort(user_codes[within], kind="stable")]
    sorted_users = user_codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order)) - np.repeat(starts, sizes)
    size = np.empty(len(order), dtype=np.int64)
    size[order] = np.repeat(sizes, sizes)
    return position, size


def _test_counts(size: np.ndarray, test_fraction: float) -> np.ndarray:
    wanted = np.floor(test_fraction * size + 0.5).astype(np.int64)
    return np.minimum(wanted, np.maximum(size - 1, 0))


def _partition(ratings: pd.DataFrame, in_test: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = ratings.loc[~in_test].reset_index(drop=True)
    test = ratings.loc[in_test].reset_index(drop=True)
    return train, test


def random_holdout(
    ratings: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out a random ``test_fraction`` of each user's ratings.

    A row goes to test when its position among the user's rows, in a seeded random permutation, is below
    ``min(round(test_fraction * n_u), n_u - 1)``.
    """
    fraction = _check_fraction(test_fraction)
    _check_frame(ratings)
    shuffled = np.random.default_rng(seed).permutation(len(ratings))
    position, size = _position_in_user(pd.factorize(ratings["user"])[0], shuffled)
    return _partition(ratings, position < _test_counts(size, fraction))


def temporal_split(ratings: pd.DataFrame, test_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Put each user's latest ``test_fraction`` of ratings in test.

    Rows are ordered per user by timestamp, ties by item id; the last
    ``min(round(test_fraction * n_u), n_u - 1)`` go to test.
    """
    fraction = _check_fraction(test_fraction)
    _check_frame(ratings, need_time=True)
    by_time = _stable_order(ratings["timestamp"].to_numpy(), _codes(ratings["item"]))
    position, size = _position_in_user(pd.factorize(ratings["user"])[0], by_time)
    return _partition(ratings, position >= size - _test_counts(size, fraction))


def global_temporal_split(ratings: pd.DataFrame, test_fraction: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Put the globally latest ``round(test_fraction * N)`` ratings in test (a single time cut-off).

    Rows are ordered by timestamp, then user id, then item id. Unlike the per-user splits, this one mimics
    deployment: users whose ratings all lie after the cut-off appear only in test (cold start).
    """
    fraction = _check_fraction(test_fraction)
    _check_frame(ratings, need_time=True)
    n = len(ratings)
    order = _stable_order(ratings["timestamp"].to_numpy(), _codes(ratings["user"]), _codes(ratings["item"]))
    n_test = int(np.floor(fraction * n + 0.5))
    in_test = np.zeros(n, dtype=bool)
    in_test[order[n - n_test:]] = True
    return _partition(ratings, in_test)


def leave_k_out(
    ratings: pd.DataFrame, k: int = 1, seed: int = 0, *, latest: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out ``k`` ratings of each user (at most ``n_u - 1``, so every user keeps one in train).

    The held-out rows are chosen at random with ``seed``, or with ``latest=True`` they are the user's last
    ``k`` by timestamp (ties by item id): leave-last-k-out.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}")
    _check_frame(ratings, need_time=latest)
    users = pd.factorize(ratings["user"])[0]
    if latest:
        by_time = _stable_order(ratings["timestamp"].to_numpy(), _codes(ratings["item"]))
        position, size = _position_in_user(users, by_time)
        return _partition(ratings, position >= size - np.minimum(k, size - 1))
    position, size = _position_in_user(users, np.random.default_rng(seed).permutation(len(ratings)))
    return _partition(ratings, position < np.minimum(k, size - 1))


_BY_METHOD: dict[str, Callable[..., tuple[pd.DataFrame, pd.DataFrame]]] = {
    "random": random_holdout,
    "temporal": temporal_split,
    "global_temporal": global_temporal_split,
    "leave_k_out": leave_k_out,
}


def split(ratings: pd.DataFrame, method: str = "random", **params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split by method name: ``random``, ``temporal``, ``global_temporal`` or ``leave_k_out``.

    ``params`` are passed to the method (``test_fraction``, ``seed``, ``k``, ``latest``); a parameter the
    method does not take is a :class:`~receval.errors.ConfigError`.
    """
    key = str(method).replace("-", "_")
    if key not in _BY_METHOD:
        raise ConfigError(f"unknown split method '{method}' (known: {', '.join(METHODS)})")
    function = _BY_METHOD[key]
    accepted = function.__code__.co_varnames[1 : function.__code__.co_argcount + function.__code__.co_kwonlyargcount]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"split method '{key}' has no parameter '{unknown[0]}' (it takes: {', '.join(accepted)})")
    return function(ratings, **params)


__all__ = ["METHODS", "global_temporal_split", "leave_k_out", "random_holdout", "split", "temporal_split"]
