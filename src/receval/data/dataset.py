"""The value every loader and the synthetic generator return: a :class:`Dataset` (ratings, item
features, titles). Below both, so that neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def empty_features() -> pd.DataFrame:
    return pd.DataFrame({"item": pd.Series(dtype=np.int64), "feature": pd.Series(dtype=str),
                         "weight": pd.Series(dtype=np.float64)})


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded dataset: interactions, item features and item titles.

    Parameters
    ----------
    name : str
        Dataset name (``ml-100k``, a file name for :func:`load_table`).
    ratings : DataFrame
        ``user, item, rating[, timestamp]``, one row per (user, item).
    features : DataFrame
        ``item, feature, weight``; empty when the source has none.
    items : DataFrame
        ``item, title``.
    implicit : bool
        True when ``rating`` is an interaction strength (play count) rather than a graded judgement.
    """

    name: str
    ratings: pd.DataFrame
    features: pd.DataFrame = field(default_factory=empty_features)
    items: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"item": [], "title": []}))
    implicit: bool = False

    @property
    def n_users(self) -> int:
        return int(self.ratings["user"].nunique())

    @property
    def n_items(self) -> int:
        """Distinct items that have at least one rating."""
        return int(self.ratings["item"].nunique())

    @property
    def has_timestamps(self) -> bool:
        return "timestamp" in self.ratings.columns

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, ratings={len(self.ratings)}, users={self.n_users}, "
                f"items={self.n_items}, features={self.features['feature'].nunique()}, implicit={self.implicit})")


__all__ = ["Dataset", "empty_features"]
