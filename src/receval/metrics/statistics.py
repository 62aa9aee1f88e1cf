"""The global statistics of an evaluation: what every shard needs and no shard can compute alone.

Metrics of one user read her own train profile and test rows, plus a few dataset-wide quantities:

- ``n_i``, the train interactions of item ``i`` (EPC's popularity complement ``1 − n_i / |U|``, EFD's
  free discovery ``−log2(n_i / Σ_j n_j)``), and ``|U|``, the number of train users;
- the catalogue ``I = train ∪ test`` (the item index, "ties by item id", and the Gini universe);
- the largest test rating (ERR's ``r_max``, the graded model's ``g_max``);
- the item features (intent-aware aspects, feature distances).

:class:`GlobalStatistics` holds exactly these, in O(items) memory, plus a digest of the data that
shards compare before they are merged. It is a pure value: built from full frames
(:meth:`GlobalStatistics.of`), or merged from the statistics of disjoint parts of the data
(:meth:`GlobalStatistics.merge`), and handed over as plain data; its bytes and the store are the
pipeline's (:mod:`receval.pipeline.evaluation`).

Exactness of the merge. Every item-level field adds up over *any* partition of the rows: counts are
sums, the catalogue is a union, the largest rating a max, the digest a sum of row hashes modulo 2^64.
Distinct-user counts add up only over a partition by *user* (user shards: every user's rows are in
one part). A prepare part that reads some part files of a Spark export may see a user whose rows are
also in another part, so the caller that merges such parts passes the exact user counts (computed
from the union of the parts' user lists) instead of letting :meth:`merge` add them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from receval.data.codes import distinct_count, integer_counts, union_sorted

_MASK64 = (1 << 64) - 1


_ROW_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd (the golden ratio's 64 bits): multiplying is a bijection
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's finaliser constants (Steele, Lea, Flood 2014)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_DIGEST_PIECE = 1 << 22  # rows per piece of frame_digest


def _column_words(column: pd.Series, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (uint64) with one word per value that depends on the value, not on its dtype's width.

    Integers (and booleans) as int64, floats as float64 bits with -0.0 → 0.0 and one NaN; other
    values (strings, categories) through pandas' per-value hash.
    """
    values = None if isinstance(column.dtype, pd.CategoricalDtype) else column.to_numpy()
    if values is not None and values.dtype.kind in "biu":
        np.copyto(out, values, casting="unsafe")  # the C cast: sign-extended, as int64 then viewed
    elif values is not None and values.dtype.kind == "f":
        floats = out.view(np.float64)
        np.add(values, 0.0, out=floats, dtype=np.float64)  # + 0.0 turns -0.0 into 0.0
        nan = np.isnan(floats)
        if nan.any():
            floats[nan] = np.nan
    else:
        out[:] = pd.util.hash_array(column.to_numpy(dtype=object) if values is None else values)
    return out


def frame_digest(frame: pd.DataFrame | None) -> tuple[int, int]:
    """``(rows, Σ row hashes mod 2^64)``: an order-independent digest that adds up over any row partition.

    A row's hash chains its columns, in order, as ``h ← (h ⊕ v) · φ`` (``φ`` odd, so each step is a
    bijection of ``h``), then mixes ``h`` with splitmix64's finaliser. Everything runs in place on two
    uint64 row arrays (numpy wraps modulo 2^64), a few passes over the rows.
    """
    if frame is None or len(frame) == 0:
        return 0, 0
    # A piece of rows at a time (the sum modulo 2^64 does not depend on how the rows are cut):
    # two uint64 arrays of every row were 290 MB at 18M train rows, a piece's are 32 MB.
    n = len(frame)
    piece = min(n, _DIGEST_PIECE)
    h = np.empty(piece, dtype=np.uint64)
    work = np.empty(piece, dtype=np.uint64)
    total = 0
    for start in range(0, n, piece):
        rows = frame.iloc[start : start + piece]
        m = len(rows)
        hp, wp = h[:m], work[:m]
        hp[:] = 0
        for name in rows.columns:
            np.bitwise_xor(hp, _column_words(rows[name], wp), out=hp)
            np.multiply(hp, _ROW_MULTIPLIER, out=hp)
        for shift, multiplier in ((30, _MIX_1), (27, _MIX_2), (31, None)):
            np.right_shift(hp, np.uint64(shift), out=wp)
            np.bitwise_xor(hp, wp, out=hp)
            if multiplier is not None:
                np.multiply(hp, multiplier, out=hp)
        total = (total + int(hp.sum(dtype=np.uint64))) & _MASK64
    return n, total


def _add_digests(digests: Sequence[tuple[int, int]]) -> tuple[int, int]:
    return sum(d[0] for d in digests), sum(d[1] for d in digests) & _MASK64


@dataclass(frozen=True)
class GlobalStatistics:
    """Dataset-wide inputs of the metrics (see the module docstring).

    Parameters
    ----------
    items : the catalogue train ∪ test, sorted by id.
    train_interactions : ``n_i``, train rows of each catalogue item (0 for an item seen only in test).
    n_train_users : distinct users with at least one train row.
    n_test_users : distinct users with at least one test row.
    max_test_rating : the largest test rating (NaN when there is no test row).
    features : ``item, feature, weight`` rows, or None.
    digest : ``{"train": (rows, hash), "test": ..., "features": ...}`` (see :func:`frame_digest`).
    """

    items: np.ndarray
    train_interactions: np.ndarray
    n_train_users: int
    n_test_users: int
    max_test_rating: float
    features: pd.DataFrame | None
    digest: dict[str, tuple[int, int]]

    # -- building --------------------------------------------------------------------------------
    @classmethod
    def of(cls, train: pd.DataFrame, test: pd.DataFrame, features: pd.DataFrame | None = None) -> GlobalStatistics:
        """The statistics of full ``train`` (``user, item, rating``), ``test`` and ``features`` frames.

        The digests (a few passes over every row) are taken in two threads while the counts are made:
        numpy releases the GIL, and at 18M train rows they were two thirds of this step's time.
        """
        from concurrent.futures import ThreadPoolExecutor

        if features is not None and len(features) > 0:
            features = features[["item", "feature", "weight"]]
        else:
            features = None
        with ThreadPoolExecutor(2) as pool:
            digests = {
                "train": pool.submit(frame_digest, train[["user", "item", "rating"]]),
                "test": pool.submit(frame_digest, test[["user", "item", "rating"]]),
                "features": pool.submit(frame_digest, features),
            }
            counts = cls._counts(train, test, features)
        return cls(**counts, digest={name: future.result() for name, future in digests.items()})

    @staticmethod
    def _counts(train: pd.DataFrame, test: pd.DataFrame, features: pd.DataFrame | None) -> dict:
        counted = integer_counts(train["item"])  # integer ids in a narrow range: counted, not hashed
        if counted is not None:
            train_items, train_counts = counted
        else:
            train_codes, train_items = pd.factorize(train["item"], sort=False)
            train_counts = np.bincount(train_codes, minlength=len(train_items))
        items = union_sorted([train_items, test["item"]])
        counts = np.zeros(len(items), dtype=np.float64)
        if len(train):
            counts[items.get_indexer(train_items)] = train_counts
        ratings = test["rating"].to_numpy(np.float64)
        return dict(
            items=items.to_numpy(),
            train_interactions=counts,
            n_train_users=distinct_count(train["user"]),
            n_test_users=distinct_count(test["user"]),
            max_test_rating=float(ratings.max()) if len(ratings) else float("nan"),
            features=features.reset_index(drop=True) if features is not None else None,
        )

    @classmethod
    def merge(
        cls, parts: Sequence[GlobalStatistics], *, n_train_users: int | None = None, n_test_users: int | None = None,
    ) -> GlobalStatistics:
        """The statistics of the union of disjoint row sets.

        Item counts and digests are added, catalogues united, the largest rating is the max. User
        counts are added unless given: pass them when a user's rows may sit in several parts (only
        user-disjoint parts, like user shards, may let them add up). The features are the first
        part's that has any.
        """
        if not parts:
            raise ValueError("nothing to merge")
        items = pd.Index(np.concatenate([p.items for p in parts])).unique().sort_values()
        counts = np.zeros(len(items), dtype=np.float64)
        for p in parts:
            np.add.at(counts, items.get_indexer(p.items), p.train_interactions)
        maxima = [p.max_test_rating for p in parts if not np.isnan(p.max_test_rating)]
        features = next((p.features for p in parts if p.features is not None), None)
        keys = sorted({k for p in parts for k in p.digest})
        return cls(
            items=items.to_numpy(),
            train_interactions=counts,
            n_train_users=sum(p.n_train_users for p in parts) if n_train_users is None else int(n_train_users),
            n_test_users=sum(p.n_test_users for p in parts) if n_test_users is None else int(n_test_users),
            max_test_rating=max(maxima) if maxima else float("nan"),
            features=features,
            digest={k: _add_digests([p.digest.get(k, (0, 0)) for p in parts]) for k in keys},
        )

    def with_features(self, features: pd.DataFrame | None) -> GlobalStatistics:
        """The same statistics with these item features (and their digest)."""
        if features is None or len(features) == 0:
            return replace(self, features=None, digest={**self.digest, "features": (0, 0)})
        features = features[["item", "feature", "weight"]].reset_index(drop=True)
        return replace(self, features=features, digest={**self.digest, "features": frame_digest(features)})

    # -- derived ---------------------------------------------------------------------------------
    @property
    def catalog_size(self) -> int:
        return len(self.items)

    @property
    def fingerprint(self) -> str:
        """A short text identifying the data (train, test and features rows)."""
        return ";".join(f"{k}={self.digest[k][0]}:{self.digest[k][1]}" for k in sorted(self.digest))

    def summary(self) -> dict[str, Any]:
        """Counts for run.json and logs."""
        return {
            "items": self.catalog_size, "train_users": self.n_train_users, "test_users": self.n_test_users,
            "train": self.digest["train"][0], "test": self.digest["test"][0],
            "max_test_rating": None if np.isnan(self.max_test_rating) else self.max_test_rating,
        }

    # -- plain data ------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """The scalar fields as JSON-able values; the item table and the features are :meth:`item_table`
        and ``features``. Their bytes are the pipeline's (:func:`receval.pipeline.evaluation.statistics_objects`)."""
        return {
            "n_train_users": self.n_train_users,
            "n_test_users": self.n_test_users,
            "max_test_rating": None if np.isnan(self.max_test_rating) else self.max_test_rating,
            "digest": {k: list(v) for k, v in self.digest.items()},
            "has_features": self.features is not None,
        }

    def item_table(self) -> pd.DataFrame:
        """``item, train_interactions``: the catalogue and its train counts."""
        return pd.DataFrame({"item": self.items, "train_interactions": self.train_interactions})

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], items: pd.DataFrame, features: pd.DataFrame | None) -> GlobalStatistics:
        """The statistics of :meth:`metadata`, :meth:`item_table` and the features (KeyError names a missing entry)."""
        rating = meta["max_test_rating"]
        return cls(
            items=items["item"].to_numpy(),
            train_interactions=items["train_interactions"].to_numpy(np.float64),
            n_train_users=int(meta["n_train_users"]),
            n_test_users=int(meta["n_test_users"]),
            max_test_rating=float("nan") if rating is None else float(rating),
            features=features if features is not None and len(features) else None,
            digest={k: (int(v[0]), int(v[1])) for k, v in meta["digest"].items()},
        )


__all__ = ["GlobalStatistics", "frame_digest"]
