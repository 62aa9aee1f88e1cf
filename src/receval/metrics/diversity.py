"""Intra-list diversity: EILD and ILD (Vargas & Castells 2011; RankSys EILD, metrics.md §5.6).

For each position k of the truncated list (K_u = min(N, |R_u|)):

    W_k = Σ_{l≠k, d(i_k,i_l) not NaN} disc(l|k) · rel(i_l)
    S_k = Σ_{l≠k, d(i_k,i_l) not NaN} disc(l|k) · rel(i_l) · d(i_k, i_l)
    EILD = Σ_k disc(k) · rel(i_k) · [S_k / W_k if W_k > 0 else 0]  /  Σ_{k≤K_u} disc(k)

with the relative discount ``disc(l|k) = disc(max(1, l − k))``. The outer normaliser counts every
position, including skipped rows. ILD is EILD with no relevance and no discount:
``(1/K) Σ_k mean_{l≠k} d(i_k, i_l)``.

Vectorized: one B × K × K distance block per batch; per (cutoff, discount) the masked weight blocks
are built once and every relevance model costs one batched mat-vec.
"""

from __future__ import annotations

import numpy as np

from receval.metrics.batch import Batch
from receval.metrics.spec import MetricSpec

FAMILY = ("eild", "ild")


def compute(batch: Batch, specs: list[MetricSpec]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if not specs:
        return out
    d_all = batch.distances
    blocks: dict[tuple[int, object], tuple[np.ndarray, np.ndarray]] = {}
    for spec in specs:
        n = min(spec.cutoff, batch.k)
        bkey = (n, spec.discount)
        if bkey not in blocks:
            d = d_all[:, :n, :n]
            pair = ~np.isnan(d)
            rel_disc = spec.discount.relative(n)
            x = np.where(pair, rel_disc[None, :, :], 0.0)
            y = x * np.where(pair, d, 0.0)
            blocks[bkey] = (x, y)
        x, y = blocks[bkey]
        g = batch.gains(spec.relevance)[:, :n]
        w = np.matmul(x, g[:, :, None])[:, :, 0]
        s = np.matmul(y, g[:, :, None])[:, :, 0]
        row = np.divide(s, w, out=np.zeros_like(s), where=w > 0)
        disc = spec.discount.weights(n)
        num = (disc * g * row).sum(axis=1)
        den = (disc * batch.valid[:, :n]).sum(axis=1)
        out[spec.key] = np.divide(num, den, out=np.zeros(batch.size), where=den > 0)
    return out
