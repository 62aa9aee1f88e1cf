"""Accuracy metrics (RankSys semantics; docs/metrics.md, "Metrics"), all from one B × K relevance matrix.

With ``K_u = min(N, |R_u|)``, ``rel_k`` = [r(u, i_k) ≥ τ] and ``Rel_u`` the user's relevant test items:

* precision@N = Σ_{k≤K_u} rel_k / N                          (always divided by N)
* recall@N    = Σ_{k≤K_u} rel_k / |Rel_u|                    (0 when Rel_u = ∅)
* AP@N        = Σ_{k≤K_u} rel_k · hits(k)/k / min(N, |Rel_u|)
* RR@N        = 1/k of the first relevant item within K_u, else 0
* nDCG@N      = DCG/IDCG, DCG = Σ_k g(i_k)/log2(k+1), g = 2^(r−τ+1) − 1 for r ≥ τ; IDCG over the
  user's gains sorted decreasingly, the first min(N, |Rel_u|); 0 when DCG = 0.
"""

from __future__ import annotations

import numpy as np

from typing import TYPE_CHECKING, Any

from receval.metrics.batch import Batch
from receval.metrics.models import LogDiscount, Relevance

if TYPE_CHECKING:
    from receval.metrics.spec import MetricSpec


def _ideal_gains(batch: Batch, relevance: Relevance, k: int) -> np.ndarray:
    """The user's test gains sorted decreasingly, first ``k`` of them (B × k)."""
    t = batch.test
    gains = relevance.gains(t.data, batch.ctx.scale)
    rows = np.repeat(np.arange(batch.size), np.diff(t.indptr))
    order = np.lexsort((-gains, rows))
    rank = np.arange(len(order)) - t.indptr[rows[order]]
    keep = rank < k
    out = np.zeros((batch.size, k))
    out[rows[order][keep], rank[keep]] = gains[order][keep]
    return out


def compute(batch: Batch, specs: list[MetricSpec], options: Any = None) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if not specs:
        return out
    tau = batch.ctx.threshold
    rel = batch.relevant(tau).astype(np.float64)
    t = batch.test
    test_rows = np.repeat(np.arange(batch.size), np.diff(t.indptr))
    n_rel = np.bincount(test_rows, weights=(t.data >= tau).astype(np.float64), minlength=batch.size)
    kmax = batch.k
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, kmax + 1, dtype=np.float64)
    ideal = None
    for spec in specs:
        n = spec.cutoff
        m = min(n, kmax)
        h = hits[:, m - 1] if m > 0 else np.zeros(batch.size)
        if spec.metric == "precision":
            out[spec.key] = h / n
        elif spec.metric == "recall":
            out[spec.key] = np.divide(h, n_rel, out=np.zeros(batch.size), where=n_rel > 0)
        elif spec.metric == "ap":
            s = (rel[:, :m] * hits[:, :m] / ranks[:m]).sum(axis=1)
            den = np.minimum(n, n_rel)
            out[spec.key] = np.divide(s, den, out=np.zeros(batch.size), where=den > 0)
        elif spec.metric == "rr":
            r = rel[:, :m] > 0
            first = r.argmax(axis=1)
            out[spec.key] = np.where(r.any(axis=1), 1.0 / (first + 1.0), 0.0)
        elif spec.metric == "ndcg":
            disc = LogDiscount().weights(max(n, 1))
            g = batch.gains(spec.relevance)[:, :m]
            dcg = (g * disc[:m]).sum(axis=1)
            if ideal is None or ideal.shape[1] < n:
                ideal = _ideal_gains(batch, spec.relevance, max(n, kmax))
            idcg = (ideal[:, :n] * disc[:n]).sum(axis=1)
            out[spec.key] = np.divide(dcg, idcg, out=np.zeros(batch.size), where=(dcg > 0) & (idcg > 0))
    return out
