"""Item distances over item feature vectors, and the distance-based item novelty (profile distance).

``cosine``:  d(i, j) = 1 − (a·b) / sqrt(|a|² |b|²)
``jaccard``: d(i, j) = 1 − (a·b) / (|a|² + |b|² − a·b)      (Tanimoto; Jaccard for 0/1 vectors)

An item without features has NaN distance to everything (RankSys
``VectorFeatureItemDistanceModel``); callers drop NaN pairs. The rating-based distance of
receval is cosine over the item's train user vector (item → {user: rating}), i.e. the same model
with the train matrix as features (docs/metrics.md, "Models").

Pairs are produced in blocks — one ``K × K`` block per user of a batch — so that EILD, ILD and
all their relevance/discount variants share one computation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

# Feature spaces up to this width are kept dense: a (users × K × K) block is then one batched
# matmul. Wider spaces (tags, user vectors) go through a per-batch Gram matrix of the distinct items.
DENSE_MAX_FEATURES = 512


@dataclass
class ItemDistance:
    """Cosine or Jaccard distance between items of an ``items × features`` weight matrix."""

    kind: str  # "cosine" | "jaccard"
    matrix: sp.csr_matrix

    @property
    def name(self) -> str:
        """The distance model's name, as the evaluation option ``distance`` gives it."""
        return self.kind

    def __post_init__(self) -> None:
        self.matrix = sp.csr_matrix(self.matrix, dtype=np.float64)
        self.matrix.sum_duplicates()
        self.norms2 = np.asarray(self.matrix.multiply(self.matrix).sum(axis=1)).ravel()
        self.has_features = self.norms2 > 0
        self.n_features = self.matrix.shape[1]
        if self.kind == "cosine":
            # Scale-safe unit rows: divide each row by its largest |weight| before squaring, so
            # weights of 1e308 (whose squares overflow) or 1e-200 (whose squares underflow) give
            # the distances of the same vectors at weight 1. Cosine is invariant to that scaling.
            peak = np.zeros(self.matrix.shape[0])
            if self.matrix.nnz:
                peak = np.asarray(abs(self.matrix).max(axis=1).todense()).ravel()
            self.has_features = peak > 0
            inv_peak = np.zeros_like(peak)
            inv_peak[self.has_features] = 1.0 / peak[self.has_features]
            scaled = sp.diags(inv_peak) @ self.matrix
            scaled_norms2 = np.asarray(scaled.multiply(scaled).sum(axis=1)).ravel()
            inv = np.zeros_like(scaled_norms2)
            inv[self.has_features] = 1.0 / np.sqrt(scaled_norms2[self.has_features])
            self.unit = sp.csr_matrix(sp.diags(inv) @ scaled)
            self.unit_dense = self.unit.toarray() if self.narrow else None

    @property
    def narrow(self) -> bool:
        """Whether the feature space is narrow enough to be kept dense (:data:`DENSE_MAX_FEATURES`)."""
        return self.n_features <= DENSE_MAX_FEATURES

    @cached_property
    def dense(self) -> np.ndarray | None:
        """The weights as a dense ``items × features`` array when the space is narrow, else None:
        Jaccard's products (cosine works on :attr:`unit_dense`), made on first use."""
        return self.matrix.toarray() if self.narrow else None

    @property
    def has_unit_rows(self) -> bool:
        """Whether dense unit rows (``unit_dense``) exist: cosine over a narrow feature space."""
        return self.kind == "cosine" and self.unit_dense is not None

    @cached_property
    def unit_rows(self) -> np.ndarray:
        """``(items + 1) × (F + 1)``: each item's unit row and its ``has_features`` flag, then a zero
        row. ``unit_rows.take(idx, axis=0)`` gathers ``[x̂, h]`` of a whole ``K × users`` block in one
        step, index −1 (no item) landing on the zero row, in the positions-first layout the bilinear
        EILD multiplies by the relative-discount matrix (:func:`receval.metrics.diversity._bilinear`)."""
        n_items, f = self.unit_dense.shape
        rows = np.zeros((n_items + 1, f + 1))
        rows[:n_items, :f] = self.unit_dense
        rows[:n_items, f] = self.has_features
        return rows

    # -- pairwise products ---------------------------------------------------------------
    def _gram_block(self, idx: np.ndarray, unit: bool) -> np.ndarray:
        """Products ``x_{i_k} · x_{i_l}`` for every user row of ``idx`` (B × K → B × K × K)."""
        safe = np.where(idx >= 0, idx, 0)
        dense = (self.unit_dense if unit else self.dense)
        if dense is not None:
            x = dense[safe]  # B × K × F
            return np.matmul(x, np.swapaxes(x, 1, 2))
        mat = self.unit if unit else self.matrix
        uniq, local = np.unique(safe, return_inverse=True)
        local = local.reshape(safe.shape)
        sub = mat[uniq]
        gram = (sub @ sub.T).toarray()
        return gram[local[:, :, None], local[:, None, :]]

    def pair_block(self, idx: np.ndarray) -> np.ndarray:
        """The NaN-free block EILD works on: cosine *similarities* for ``cosine`` (0 where an item
        has no features, so that ``d = 1 − cos`` on valid pairs), Jaccard *distances* with 0 on
        invalid pairs for ``jaccard``."""
        if self.kind == "cosine":
            return self._gram_block(idx, unit=True)
        safe = np.where(idx >= 0, idx, 0)
        prod = self._gram_block(idx, unit=False)
        n = self.norms2[safe]
        with np.errstate(invalid="ignore", divide="ignore"):
            d = 1.0 - prod / (n[:, :, None] + n[:, None, :] - prod)
        has = self.has_features[safe] & (idx >= 0)
        d[~(has[:, :, None] & has[:, None, :])] = 0.0
        return d

    # -- profile distance -------------------------------------------------------------------
    def profile_mean(self, idx: np.ndarray, profile: sp.csr_matrix) -> np.ndarray:
        """Weighted mean distance from each listed item to the user's profile, NaN pairs skipped.

        ``nov(i | u) = Σ_j w_j d(i, j) / Σ_j w_j`` over profile items j with features (RankSys
        PDItemNovelty with w = 1); 0 where no valid pair remains. ``profile`` is ``B × items``
        with the weights w_j.

        For cosine this is the bilinear form ``1 − x̂_i · (Σ_j w_j x̂_j) / Σ_j w_j`` — one product per
        listed item instead of one per (listed item, profile item) pair.
        """
        safe = np.where(idx >= 0, idx, 0)
        has_i = self.has_features[safe] & (idx >= 0)
        prof = sp.csr_matrix(profile)
        if self.has_unit_rows:
            # featureless j have zero unit rows: they drop out of the centroid by themselves
            wsum = prof @ self.has_features.astype(np.float64)  # B
            centroid = prof @ self.unit_dense  # B × F, dense
            dot = np.einsum("bkf,bf->bk", self.unit_dense.take(safe, axis=0), centroid)
            with np.errstate(invalid="ignore", divide="ignore"):
                nov = (wsum[:, None] - dot) / wsum[:, None]
            return np.where(has_i & (wsum[:, None] > 0), nov, 0.0)
        prof = prof @ sp.diags(self.has_features.astype(np.float64))  # drop featureless j
        wsum = np.asarray(prof.sum(axis=1)).ravel()  # B
        if self.kind == "cosine":
            centroid = prof @ self.unit  # B × F (sparse)
            if self.unit_dense is not None:
                c = np.asarray(centroid.todense()) if sp.issparse(centroid) else centroid
                dot = np.einsum("bkf,bf->bk", self.unit_dense[safe], c)
            else:
                uniq, local = np.unique(safe, return_inverse=True)
                local = local.reshape(safe.shape)
                g = (self.unit[uniq] @ centroid.T).toarray()  # U × B
                dot = g[local, np.arange(safe.shape[0])[:, None]]
            with np.errstate(invalid="ignore", divide="ignore"):
                nov = (wsum[:, None] - dot) / wsum[:, None]
        else:
            nov = self._pairwise_profile_mean(safe, prof, wsum)
        ok = has_i & (wsum[:, None] > 0)
        return np.where(ok, nov, 0.0)

    def _pairwise_profile_mean(self, safe: np.ndarray, prof: sp.csr_matrix, wsum: np.ndarray) -> np.ndarray:
        """Jaccard has no bilinear form: sum over explicit (listed item, profile item) pairs."""
        b, k = safe.shape
        counts = np.diff(prof.indptr)
        # pair p = (user row, position, profile item) for every user's K × |profile| pairs
        per_user = counts * k
        rows = np.repeat(np.arange(b), per_user)
        within = np.arange(len(rows)) - np.repeat(np.cumsum(per_user) - per_user, per_user)
        c_rep = np.maximum(np.repeat(counts, per_user), 1)
        pos = within // c_rep
        jpos = np.repeat(prof.indptr[:-1], per_user) + within % c_rep
        items_i = safe[rows, pos]
        items_j = prof.indices[jpos]
        weights = prof.data[jpos]
        prod = self._pair_products(items_i, items_j)
        n = self.norms2
        with np.errstate(invalid="ignore", divide="ignore"):
            d = 1.0 - prod / (n[items_i] + n[items_j] - prod)
        d = np.where(self.has_features[items_i] & self.has_features[items_j], d, 0.0)
        total = np.zeros(b * k)
        np.add.at(total, rows * k + pos, weights * d)
        with np.errstate(invalid="ignore", divide="ignore"):
            return total.reshape(b, k) / wsum[:, None]

    def _pair_products(self, a: np.ndarray, b: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
        out = np.empty(len(a))
        for s in range(0, len(a), chunk):
            ia, ib = a[s : s + chunk], b[s : s + chunk]
            if self.dense is not None:
                out[s : s + chunk] = np.einsum("pf,pf->p", self.dense[ia], self.dense[ib])
            else:
                out[s : s + chunk] = np.asarray(self.matrix[ia].multiply(self.matrix[ib]).sum(axis=1)).ravel()
        return out
