"""Intra-list diversity: EILD and ILD (Vargas & Castells 2011; RankSys EILD; docs/metrics.md, "Metrics").

For each position k of the truncated list (K_u = min(N, |R_u|)):

    W_k = Σ_{l≠k, d(i_k,i_l) not NaN} disc(l|k) · rel(i_l)
    S_k = Σ_{l≠k, d(i_k,i_l) not NaN} disc(l|k) · rel(i_l) · d(i_k, i_l)
    EILD = Σ_k disc(k) · rel(i_k) · [S_k / W_k if W_k > 0 else 0]  /  Σ_{k≤K_u} disc(k)

with the relative discount ``disc(l|k) = disc(max(1, l − k))``. The outer normaliser counts every
position, including skipped rows. ILD is EILD with no relevance and no discount:
``(1/K) Σ_k mean_{l≠k} d(i_k, i_l)``.

Vectorized without NaNs or per-pair masks: a pair is valid when both items have features
(``h_k h_l``, a rank-one mask), so with ``g`` the relevance gains and ``D`` the relative-discount
matrix (:meth:`~receval.metrics.models.Discount.relative`, zero diagonal)

    W_k = h_k Σ_l D[k,l] g_l h_l
    S_k = W_k − h_k Σ_l D[k,l] g_l cos(i_k, i_l)                     (cosine: d = 1 − cos)
    S_k = h_k Σ_l D[k,l] g_l h_l d(i_k, i_l)                         (Jaccard)

For cosine over a narrow feature space, with ``x̂_k`` the unit feature row of ``i_k`` (0 when it
has none), the cosine sum is the bilinear form

    Σ_l D[k,l] g_l cos(i_k, i_l) = x̂_k · z_k,    z_k = Σ_l D[k,l] g_l x̂_l

so the ``K × K`` pair block is never built: ``z`` (and ``W`` with it) is the relative-discount
matrix applied to the relevance-scaled feature rows, one GEMM per discount and chunk of users,
``O(K · F)`` values per user instead of ``K²``. ILD's uniform weights give ``z_k = Σ_l x̂_l − x̂_k``,
the ``‖Σ_k x̂_k‖²`` form, with no product at all. A relevance model whose gain is 0 off the
relevant items (binary, graded, nDCG, ERR) needs only each user's ordered pairs of hits, since
``g_k = 0`` removes position k from the numerator and ``g_l = 0`` removes l from ``W_k`` and
``S_k``. The ``K_u`` normaliser counts featureless positions as RankSys does.

Jaccard has no such form, and wide sparse feature spaces (tags, ratings vectors) go through one
``B × K × K`` pair block per batch, shared by every cutoff, discount and relevance model.

References
----------
S. Vargas and P. Castells. Rank and Relevance in Novelty and Diversity Metrics. RecSys 2011, §4.
RankSys ``es.uam.eps.ir.ranksys.diversity.intralist.metrics.EILD``.
"""

from __future__ import annotations

import numpy as np

from typing import TYPE_CHECKING, Any

from receval.metrics.batch import Batch
from receval.metrics.models import NoDiscount

if TYPE_CHECKING:
    from receval.metrics.spec import MetricSpec


def compute(batch: Batch, specs: list[MetricSpec], options: Any = None) -> dict[str, np.ndarray]:
    if not specs:
        return {}
    groups: dict[tuple[int, object], list[MetricSpec]] = {}
    for spec in specs:
        groups.setdefault((min(spec.cutoff, batch.k), spec.discount), []).append(spec)
    if batch.ctx.distance.has_unit_rows:
        return _bilinear(batch, groups)
    return _pair_block(batch, groups)


def _normalised(batch: Batch, n: int, discount, num: np.ndarray) -> np.ndarray:
    """EILD's outer normaliser ``Σ_{k≤K_u} disc(k)``: every position present, featureless or not."""
    den = batch.discount_sums(n, discount)
    return np.divide(num, den, out=np.zeros(batch.size), where=den > 0)


def _pair_block(batch: Batch, groups: dict) -> dict[str, np.ndarray]:
    """EILD over one ``B × K × K`` pair block per batch (Jaccard, or wide sparse feature spaces)."""
    out: dict[str, np.ndarray] = {}
    cosine = batch.ctx.distance.kind == "cosine"
    has_all = batch.has_features.astype(np.float64)
    for (n, discount), group in groups.items():
        rels = list(dict.fromkeys(s.relevance for s in group))
        g = np.stack([batch.gains(r)[:, :n] for r in rels], axis=2)  # B × n × R
        has = has_all[:, :n, None]
        gh = g * has
        rel_disc = discount.relative(n)  # zero diagonal: a pair needs two positions
        # W: the shared discount matrix times every user's gains
        w = np.matmul(rel_disc, gh) * has
        m = batch.pair_block[:, :n, :n]
        if _uniform(discount):  # disc(l|k) = 1 off the diagonal: no weighted copy of the block
            diag = np.diagonal(m, axis1=1, axis2=2)[:, :, None]
            prod = _bmv(m, gh) - diag * gh
        else:
            prod = _bmv(m * rel_disc, gh)
        s_ = w - prod * has if cosine else prod * has
        row = np.divide(s_, w, out=np.zeros_like(s_), where=w > 0)
        disc = np.asarray(discount.weights(n), dtype=np.float64)
        num = np.einsum("k,bkr,bkr->br", disc, g, row)
        for spec in group:
            out[spec.key] = _normalised(batch, n, discount, num[:, rels.index(spec.relevance)])
    return out


# Users per chunk of the bilinear form. Every chunk is padded to exactly this many users, so that
# the GEMM of a discount always has the same shape: BLAS then takes the same path for every column
# (a user's value never depends on the batch size, the thread count or the user's place in the
# chunk, which a GEMM over a ragged tail would not guarantee). 512 users keep a chunk's arrays
# (K × 512 × (F+1) doubles) within a few MiB. (numpy's wheels bring OpenBLAS; a numpy built on
# MKL may pick kernels by memory alignment, which MKL_CBWR=COMPATIBLE turns off.)
BILINEAR_CHUNK = 512


def _bilinear(batch: Batch, groups: dict) -> dict[str, np.ndarray]:
    """EILD for cosine over dense unit rows, through ``x̂_k · Σ_l D[k,l] g_l x̂_l`` (no pair block).

    For each ``(n, discount)`` group the relative-discount matrix ``D`` (:meth:`~receval.metrics.
    models.Discount.relative`) is applied in one GEMM to the stacked rows ``y_l = [g_l x̂_l, g_l h_l]``
    of every relevance model and user of a chunk, giving ``z_k = Σ_l D[k,l] y_l``: ``x̂_k · z_k`` and
    ``W_k / h_k`` together. A chunk is gathered positions-first (``n × users × (F+1)``) in one
    ``take`` of :attr:`~receval.metrics.distance.ItemDistance.unit_rows`, so that ``Y`` is the matrix
    ``n × (R · users · (F+1))`` without a copy. The ``none`` relevance model (gain 1 on every listed
    item) multiplies the gathered rows themselves; no discount needs no product at all
    (``z_k = Σ_l y_l − y_k``).
    """
    rows = batch.ctx.distance.unit_rows  # (items+1) × (F+1), the last row zero
    f = rows.shape[1] - 1
    b = batch.size
    kmax = max(n for n, _ in groups)
    all_rels = {key: list(dict.fromkeys(s.relevance for s in group)) for key, group in groups.items()}
    # A relevance model with zero gain off the relevant items only needs the pairs of hits
    rels_of = {key: [r for r in rels if not _zero_off_hits(r)] for key, rels in all_rels.items()}
    padded = -(-b // BILINEAR_CHUNK) * BILINEAR_CHUNK

    def positions_first(values: np.ndarray, fill) -> np.ndarray:  # K × users, padded users hold `fill`
        out = np.full((kmax, padded), fill, dtype=values.dtype)
        out[:, :b] = values[:, :kmax].T
        return out

    idx = positions_first(batch.idx, -1)  # −1 = no item: the zero row
    scaled = dict.fromkeys(r for rels in rels_of.values() for r in rels)  # each model once
    gains = {r: positions_first(batch.gains(r), 0.0) for r in scaled}
    num = {key: np.empty((len(rels), padded)) for key, rels in rels_of.items()}
    relative = {}
    for s in range(0, padded, BILINEAR_CHUNK) if any(rels_of.values()) else ():
        e = s + BILINEAR_CHUNK
        xh = rows.take(idx[:, s:e], axis=0)  # K × c × (F+1): [x̂, h], 0 where no item
        stacked: dict = {}
        for (n, discount), rels in rels_of.items():
            if not rels:
                continue
            x, h = xh[:n, :, :f], xh[:n, :, f]
            shared = stacked.get((n, tuple(rels)))
            if shared is None:
                g = np.stack([gains[r][:n, s:e] for r in rels], axis=1)  # n × R × c
                # the none model's gain is 1 on every listed item and 0 elsewhere: y is [x̂, h] itself
                y = xh[:n, None] if [r.kind for r in rels] == ["none"] else g[..., None] * xh[:n, None]
                shared = stacked[(n, tuple(rels))] = {"g": g, "y": y}  # y: n × R × c × (F+1)
            g, y = shared["g"], shared["y"]
            if _uniform(discount):
                # z_k = Σ_l y_l − y_k and x̂_k · g_k x̂_k = g_k h_k: no z array (the ‖Σ_k x̂_k‖² form)
                total = y.sum(axis=0)  # R × c × (F+1)
                gh = y[..., f]  # n × R × c
                w = (total[None, :, :, f] - gh) * h[:, None]
                cos_sum = np.einsum("kcf,rcf->krc", x, total[..., :f]) - gh
            else:
                d = relative.get((n, discount))
                if d is None:
                    d = relative[(n, discount)] = np.ascontiguousarray(discount.relative(n))
                z = np.matmul(d, y.reshape(n, -1)).reshape(y.shape)  # Z = D Y: one GEMM, fixed shape
                w = z[..., f] * h[:, None]  # W_k
                cos_sum = np.einsum("kcf,krcf->krc", x, z[..., :f])
            s_ = w - cos_sum * h[:, None]  # S_k
            row = np.divide(s_, w, out=np.zeros_like(s_), where=w > 0)
            disc = np.asarray(discount.weights(n), dtype=np.float64)
            num[(n, discount)][:, s:e] = np.einsum("k,krc,krc->rc", disc, g, row)
    out: dict[str, np.ndarray] = {}
    for (n, discount), group in groups.items():
        rels = rels_of[(n, discount)]
        hits = {r: _hit_pairs(batch, n, discount, r) for r in all_rels[(n, discount)] if r not in rels}
        for spec in group:
            value = hits[spec.relevance] if spec.relevance in hits else num[(n, discount)][rels.index(spec.relevance), :b]
            out[spec.key] = _normalised(batch, n, discount, value)
    return out


def _uniform(discount) -> bool:
    """Whether ``disc(l | k) = 1`` for every pair: the built-in ``none`` discount, not a subclass
    that weighs otherwise."""
    return isinstance(discount, NoDiscount) and type(discount).weights is NoDiscount.weights


def _zero_off_hits(relevance) -> bool:
    """Whether the model's gain is 0 for every item that is not relevant (binary, graded, nDCG,
    ERR and background(0)); only ``none`` and a background prior weigh the other items."""
    return relevance.kind != "none" and not (relevance.kind == "background" and relevance.background > 0)


# Hit pairs per step of :func:`_hit_pairs`: bounds its memory when lists are full of hits.
HIT_PAIRS_CHUNK = 1 << 20


def _hit_pairs(batch: Batch, n: int, discount, relevance) -> np.ndarray:
    """EILD's numerator ``Σ_k disc(k) g_k S_k / W_k`` for a relevance model with no gain off the hits.

    Only positions with ``g_k > 0`` enter the numerator, and only such ``l`` enter ``W_k`` and
    ``S_k``, so the sums run over each user's ordered pairs of hits (``k ≠ l``): a few per user
    instead of ``K²``. Each pair's ``cos(i_k, i_l) = x̂_k · x̂_l``; the sums are taken per user in
    position order, so a user's value depends on that user's list only.
    """
    g = batch.gains(relevance)[:, :n]
    hu, hk = np.nonzero(g)  # by user, then position
    b = batch.size
    total = np.zeros(b)
    if len(hu) == 0:
        return total
    unit = batch.ctx.distance.unit_dense
    has = batch.has_features[:, :n]
    rel_disc = discount.relative(n)
    disc = np.asarray(discount.weights(n), dtype=np.float64)
    items = batch.idx[hu, hk]
    gk = g[hu, hk]
    hh = has[hu, hk].astype(np.float64)
    count = np.bincount(hu, minlength=b)
    first = np.cumsum(count) - count  # each user's first hit
    pairs = count * count
    ends = np.cumsum(pairs)
    w = np.zeros(len(hu))
    c = np.zeros(len(hu))
    lo = 0
    while lo < b:  # blocks of whole users, about HIT_PAIRS_CHUNK pairs each
        base = ends[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, base + HIT_PAIRS_CHUNK, side="right")))
        per = pairs[lo:hi]
        within = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
        cnt = np.repeat(count[lo:hi], per)
        start = np.repeat(first[lo:hi], per)
        a = start + within // cnt  # per > 0 only where cnt > 0
        o = start + within % cnt
        keep = a != o
        a, o = a[keep], o[keep]
        weight = rel_disc[hk[a], hk[o]] * gk[o]
        cos = np.einsum("pf,pf->p", unit[items[a]], unit[items[o]])
        w += np.bincount(a, weights=weight * hh[o], minlength=len(hu))
        c += np.bincount(a, weights=weight * cos, minlength=len(hu))
        lo = hi
    w *= hh
    s_ = w - c * hh
    row = np.divide(s_, w, out=np.zeros_like(s_), where=w > 0)
    return np.bincount(hu, weights=disc[hk] * gk * row, minlength=b)


def _bmv(blocks: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Per-user block × vectors (B × n × n by B × n × R). einsum's optimized path runs this as
    BLAS calls and measured ~4x faster than ``np.matmul`` on these small stacked shapes."""
    return np.einsum("bkl,blr->bkr", blocks, vectors, optimize=True)
