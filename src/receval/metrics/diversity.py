"""Intra-list diversity: EILD and ILD (Vargas & Castells 2011; RankSys EILD; docs/metrics.md, "Metrics").

For each position k of the truncated list (K_u = min(N, |R_u|)):

    W_k = Σ_{l≠k, d(i_k,i_l) not NaN} disc(l|k) · rel(i_l)
    S_k = Σ_{l≠k, d(i_k,i_l) not NaN} disc(l|k) · rel(i_l) · d(i_k, i_l)
    EILD = Σ_k disc(k) · rel(i_k) · [S_k / W_k if W_k > 0 else 0]  /  Σ_{k≤K_u} disc(k)

with the relative discount ``disc(l|k) = disc(max(1, l − k))``. The outer normaliser counts every
position, including skipped rows. ILD is EILD with no relevance and no discount:
``(1/K) Σ_k mean_{l≠k} d(i_k, i_l)``.

Vectorized without NaNs or per-pair masks: a pair is valid when both items have features
(``h_k h_l``, a rank-one mask), so with ``g`` the relevance gains

    W_k = h_k Σ_l disc(l|k) g_l h_l                                   (one GEMM for all users)
    S_k = W_k − h_k Σ_l disc(l|k) g_l cos(i_k, i_l)                  (cosine: d = 1 − cos)
    S_k = h_k Σ_l disc(l|k) g_l h_l d(i_k, i_l)                      (Jaccard)

over one B × K × K pair block per batch, shared by every cutoff, discount and relevance model.
"""

from __future__ import annotations

import numpy as np

from typing import TYPE_CHECKING, Any

from receval.metrics.batch import Batch
from receval.metrics.models import NoDiscount

if TYPE_CHECKING:
    from receval.metrics.spec import MetricSpec


def compute(batch: Batch, specs: list[MetricSpec], options: Any = None) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if not specs:
        return out
    groups: dict[tuple[int, object], list[MetricSpec]] = {}
    for spec in specs:
        groups.setdefault((min(spec.cutoff, batch.k), spec.discount), []).append(spec)
    cosine = batch.ctx.distance.kind == "cosine"
    block = batch.pair_block
    has_all = batch.has_features.astype(np.float64)
    for (n, discount), group in groups.items():
        rels = list(dict.fromkeys(s.relevance for s in group))
        g = np.stack([batch.gains(r)[:, :n] for r in rels], axis=2)  # B × n × R
        has = has_all[:, :n, None]
        gh = g * has
        rel_disc = discount.relative(n)  # zero diagonal: a pair needs two positions
        # W: the shared discount matrix times every user's gains, as one GEMM
        w = np.matmul(rel_disc, gh) * has
        m = block[:, :n, :n]
        if isinstance(discount, NoDiscount):  # disc(l|k) = 1 off the diagonal: no weighted copy of the block
            diag = np.diagonal(m, axis1=1, axis2=2)[:, :, None]
            prod = _bmv(m, gh) - diag * gh
        else:
            prod = _bmv(m * rel_disc, gh)
        s_ = w - prod * has if cosine else prod * has
        row = np.divide(s_, w, out=np.zeros_like(s_), where=w > 0)
        disc = np.asarray(discount.weights(n), dtype=np.float64)
        den = (disc * batch.valid[:, :n]).sum(axis=1)
        num = np.einsum("k,bkr,bkr->br", disc, g, row)
        for spec in group:
            r = rels.index(spec.relevance)
            out[spec.key] = np.divide(num[:, r], den, out=np.zeros(batch.size), where=den > 0)
    return out


def _bmv(blocks: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Per-user block × vectors (B × n × n by B × n × R). einsum's optimized path runs this as
    BLAS calls and measured ~4x faster than ``np.matmul`` on these small stacked shapes."""
    return np.einsum("bkl,blr->bkr", blocks, vectors, optimize=True)
