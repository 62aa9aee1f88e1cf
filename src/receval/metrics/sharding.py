"""Stable assignment of users to shards.

A user's shard is ``siphash24(str(user_id)) mod N`` with pandas' fixed hash key, so any process, pod
or retry — on any machine, whatever the id's type (``7`` and ``"7"`` are the same user) — computes
the same partition without coordination.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from receval.errors import ConfigError


@dataclass(frozen=True, order=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based index)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"shard {self.index}/{self.count}: the index must be in 0..{self.count - 1}", option="shard")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse ``I/N`` (e.g. ``3/8``)."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not m:
            raise ConfigError(f"shard {text!r}: expected I/N with 0 <= I < N, e.g. 3/8", option="shard")
        index, count = int(m.group(1)), int(m.group(2))
        if count < 1 or index >= count:
            raise ConfigError(f"shard {text}: the index must be in 0..{count - 1} (shards are numbered from 0)",
                              option="shard")
        return cls(index, count)

    @property
    def name(self) -> str:
        """File-system name, e.g. ``shard-00003-of-00008``."""
        return f"shard-{self.index:05d}-of-{self.count:05d}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def mask(self, users: pd.Series | np.ndarray) -> np.ndarray:
        """Boolean mask of the users that belong to this shard."""
        return shard_of(users, self.count) == self.index

    def overlapping(self, count: int) -> range:
        """Indices of the ``count``-way partition whose parts can hold users of this shard.

        A user of part j of B and of shard I of M has hash h with h ≡ j (mod B) and h ≡ I (mod M),
        so j ≡ I (mod gcd(B, M)): one part when B divides M, B/M parts when M divides B.
        """
        step = math.gcd(int(count), self.count)
        return range(self.index % step, int(count), step)


def user_hashes(users: pd.Series | np.ndarray) -> np.ndarray:
    """The stable uint64 hash of each user id, whose remainder modulo N is its shard of N."""
    values = np.asarray(pd.Series(users).astype(str).to_numpy(dtype=object))
    return pd.util.hash_array(values, categorize=True)


def shard_of(users: pd.Series | np.ndarray, count: int) -> np.ndarray:
    """The shard index (0..count-1) of each user id."""
    return shard_of_hashes(user_hashes(users), count)


def shard_of_hashes(hashes: np.ndarray, count: int) -> np.ndarray:
    """The shard index (0..count-1) of each :func:`user_hashes` value."""
    return (hashes % np.uint64(count)).astype(np.int64)
