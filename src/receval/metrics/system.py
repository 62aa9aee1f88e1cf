"""System-level (sales-diversity) metrics from item-exposure counts (RankSys; docs/metrics.md, "Metrics").

For each evaluated list truncated at N (K_u = min(N, |R_u|)), every listed item i gets
``C_i += 1`` and ``W_i += rel(u, i)/K_u``. Over L lists with T = Σ_u K_u:

* aggregate diversity = N · Σ_{i: C_i>0} W_i / C_i  (= the number of distinct recommended items when
  every list has N items and there is no relevance; shorter lists inflate it, as in RankSys)
* Gini (RankSys's 1 − G, a *diversity* score: 1 = perfectly even exposure):
  ``G = Σ_{j=1..n} (2j − n − 1) c_(j) / T / (n − 1)`` over the n catalogue items' counts sorted
  ascending (unrecommended items count 0); reported as ``1 − G``.
* entropy = Σ_i W_i · (−log2(C_i / T)) / L   (RankSys Entropy = EIUFD without discount/relevance)

The exposure is kept per (item, cutoff, list length K_u) with additive columns: occurrence counts
and relevance sums. These are integers for the ``none`` and ``binary`` relevance models, so shard
states add up exactly and the final values do not depend on how users were sharded.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from receval.metrics.models import Relevance

if TYPE_CHECKING:
    from receval.metrics.spec import MetricSpec

KEYS = ["item", "cutoff", "length"]
FLAGS = ["in_train", "in_catalog", "has_features"]


def rel_column(key: str) -> str:
    return f"rel[{key}]"


class ExposureAccumulator:
    """Accumulates, batch by batch, occurrences and relevance sums per (item, cutoff, K_u).

    Each cutoff's cells are laid out length-major, ``K_u · items + item``, in one zeroed array of
    ``(N + 1) · items`` cells, and only the lengths that occur are read back. Nearly every list is
    full (K_u = N), so its cells share one block of ``items``: the memory never touched by a write
    is never given to the process either. Item-major cells were spread over every page of the
    array, which a shard pod of a few thousand users paid for in page faults (O(items × N) per pod).
    """

    def __init__(self, n_items: int, cutoffs: list[int], relevances: list[Relevance]):
        self.n_items = n_items
        self.cutoffs = cutoffs
        self.relevances = relevances
        self.counts = {n: np.zeros(n_items * (n + 1)) for n in cutoffs}
        self.sums = {(n, r.key): np.zeros(n_items * (n + 1)) for n in cutoffs for r in relevances}
        self.lengths: dict[int, set[int]] = {n: set() for n in cutoffs}

    def prepare(self, batch) -> list[tuple[int, np.ndarray, list[np.ndarray], np.ndarray]]:
        """A batch's (cutoff, slots, gains per relevance model, list lengths): the part of :meth:`add`
        that needs no order, so that the engine's worker threads take it off the consuming thread."""
        out = []
        for n in self.cutoffs:
            k_u = batch.lengths_at(n)
            valid = batch.valid[:, :n]
            items = batch.idx[:, :n][valid]
            slot = np.broadcast_to(k_u[:, None] * self.n_items, valid.shape)[valid] + items
            out.append((n, slot, [batch.gains(r)[:, :n][valid] for r in self.relevances], np.unique(k_u)))
        return out

    def add(self, prepared: list[tuple[int, np.ndarray, list[np.ndarray], np.ndarray]]) -> None:
        """Accumulate a batch's :meth:`prepare` (in batch order: float sums depend on the order)."""
        for n, slot, gains, lengths in prepared:
            # np.add.at touches only this batch's slots (a full-size bincount would sweep
            # n_items × (n + 1) cells per batch: most of the time at 50k items)
            np.add.at(self.counts[n], slot, 1.0)
            for r, g in zip(self.relevances, gains):
                np.add.at(self.sums[(n, r.key)], slot, g)
            self.lengths[n].update(lengths.tolist())

    def frame(self, items: pd.Index, flags: dict[str, np.ndarray]) -> pd.DataFrame:
        """One row per (item, cutoff, K_u) that occurred, ordered by cutoff, item and K_u."""
        parts = []
        m = self.n_items
        for n in self.cutoffs:
            # the blocks of the lengths that occurred, then the item-major order
            nz = np.concatenate([length * m + np.flatnonzero(self.counts[n][length * m:(length + 1) * m])
                                 for length in sorted(self.lengths[n])] or [np.zeros(0, dtype=np.int64)])
            item_idx, length = nz % m, nz // m
            order = np.lexsort((length, item_idx))
            nz, item_idx, length = nz[order], item_idx[order], length[order]
            part = pd.DataFrame(
                {
                    "item": items[item_idx],
                    "cutoff": np.full(len(nz), n, dtype=np.int64),
                    "length": length.astype(np.int64),
                    **{name: flags[name][item_idx] for name in FLAGS},
                    "count": self.counts[n][nz],
                }
            )
            for r in self.relevances:
                part[rel_column(r.key)] = self.sums[(n, r.key)][nz]
            parts.append(part)
        return pd.concat(parts, ignore_index=True)


def merge_exposure(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Add up exposure frames of disjoint user shards."""
    both = pd.concat(frames, ignore_index=True)
    numeric = [c for c in both.columns if c not in KEYS + FLAGS]
    agg = {c: "sum" for c in numeric} | {f: "first" for f in FLAGS}
    return both.groupby(KEYS, sort=True).agg(agg).reset_index()


def items_at(exposure: pd.DataFrame, cutoff: int) -> pd.DataFrame:
    """Per recommended item at ``cutoff``: ``count`` (C_i), flags and, per relevance, W_i."""
    part = exposure[exposure["cutoff"] == cutoff].sort_values(["item", "length"], kind="stable")
    rels = [c for c in part.columns if c.startswith("rel[")]
    weighted = part[rels].to_numpy(np.float64) / part["length"].to_numpy(np.float64)[:, None]
    frame = pd.DataFrame({"item": part["item"].to_numpy(), "count": part["count"].to_numpy(np.float64)})
    for j, c in enumerate(rels):
        frame["w" + c[3:]] = weighted[:, j]
    frame[FLAGS] = part[FLAGS].to_numpy()
    agg = {"count": "sum"} | {"w" + c[3:]: "sum" for c in rels} | {f: "first" for f in FLAGS}
    out = frame.groupby("item", sort=True).agg(agg).reset_index()
    out[FLAGS] = out[FLAGS].astype(bool)
    return out


def finalize(spec: MetricSpec, per_item: pd.DataFrame, lists: int, positions: int, universe: int) -> float:
    """The value of a system metric from the merged per-item exposure at its cutoff (see
    :func:`items_at`), the list count L and T = Σ K_u."""
    n = spec.cutoff
    c = per_item["count"].to_numpy(np.float64)
    if spec.metric == "aggregate_diversity":
        if lists == 0:
            return float("nan")
        w = per_item[f"w[{spec.relevance.key}]"].to_numpy(np.float64)
        return n * math.fsum(w / c)
    if spec.metric == "gini":
        # Recommended items outside the catalogue would make the index meaningless: widen it.
        size = max(universe, len(c))
        if size <= 1 or positions == 0:
            return float("nan")
        c_sorted = np.sort(c)
        j = np.arange(size - len(c) + 1, size + 1, dtype=np.float64)
        g = math.fsum((2.0 * j - size - 1.0) * c_sorted / positions) / (size - 1.0)
        return 1.0 - g
    if lists == 0 or positions == 0:
        return float("nan")
    w = per_item["w[none]"].to_numpy(np.float64)
    return math.fsum(w * -np.log2(c / positions)) / lists
