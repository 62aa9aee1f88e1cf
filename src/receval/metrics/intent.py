"""Intent-aware metrics over item features as aspects (RankSys, metrics.md §5.7–§5.8, §7).

* alpha-nDCG@N: a relevant item at rank k gains ``Σ_{f∈F(i_k)} (1−α)^{c_f}``, c_f counting earlier
  *relevant* items with aspect f; DCG = Σ gain_k / log2(k+1). The ideal is a greedy walk over the
  user's relevant items for **N** positions, ties broken by item id ascending (receval decision 9.6;
  RankSys walks N+1 positions with hash-order ties). 0 when DCG = 0.
* ERR-IA@N = Σ_{k, i_k relevant} Σ_{f∈F(i_k)} p(f|u) · g(i_k) · Π_{earlier relevant j with f}(1 − g(j)) / k,
  with the ERR gain g and p(f|u) ∝ feature counts over the user's train and test rows (uniform
  over all features when those rows carry none).
* S-recall@N = |∪ features of relevant listed items| / |all features|.

Vectorized across the users of a batch: a loop over the K positions with numpy over users ×
local features (the features present in the batch).
"""

from __future__ import annotations

import numpy as np

from receval.metrics.batch import Batch
from receval.metrics.models import Discount, Relevance
from receval.metrics.spec import MetricSpec

FAMILY = ("alpha_ndcg", "err_ia", "s_recall")
_MAX_CELLS = 20_000_000  # dense local-feature cells per sub-batch, to bound memory


def compute(batch: Batch, specs: list[MetricSpec], *, alpha: float = 0.5) -> dict[str, np.ndarray]:
    if not specs:
        return {}
    ctx = batch.ctx
    presence = ctx.presence
    tau = ctx.threshold
    t = batch.test
    t_rows = np.repeat(np.arange(batch.size), np.diff(t.indptr))
    rel_mask = t.data >= tau
    cand_rows, cand_items = t_rows[rel_mask], t.indices[rel_mask]
    listed = batch.idx[batch.valid]
    needed = np.unique(np.concatenate([listed, cand_items]))
    sub = presence[needed]
    feats = np.unique(sub.indices)
    r_max = int(np.bincount(cand_rows, minlength=batch.size).max()) if len(cand_rows) else 0
    cells = max(len(needed), batch.size * max(r_max, 1)) * max(len(feats), 1)
    if cells > _MAX_CELLS and batch.size > 1:
        half = batch.size // 2
        parts = [
            compute(_slice(batch, 0, half), specs, alpha=alpha),
            compute(_slice(batch, half, batch.size), specs, alpha=alpha),
        ]
        return {k: np.concatenate([parts[0][k], parts[1][k]]) for k in parts[0]}

    # local dense presence, with a zero row (index len(needed)) for "no item"
    local = np.zeros((len(needed) + 1, len(feats)))
    local[:-1] = sub[:, feats].toarray() if len(feats) else 0.0
    loc = np.where(batch.valid, np.searchsorted(needed, np.where(batch.valid, batch.idx, 0)), len(needed))

    kmax = batch.k
    n_total = presence.shape[1]
    rel = batch.relevant(tau)
    out: dict[str, np.ndarray] = {}
    metrics = {s.metric for s in specs}
    logd = Discount("log").weights(max(kmax, max(s.cutoff for s in specs)))
    # Only relevant listed items gain or change state: walk the j-th relevant item of every user
    # (a few steps) instead of all K positions.
    hits = _RelevantWalk.of(rel, loc, pad=len(needed))

    if "alpha_ndcg" in metrics:
        n_ideal = max(s.cutoff for s in specs if s.metric == "alpha_ndcg")
        dcg = hits.cumulative(_alpha_gains(local, hits, alpha) * logd[hits.pos_safe])
        idcg = _alpha_ideal_cumulative(local, needed, cand_rows, cand_items, batch.size, alpha, logd, n_ideal)
    if "err_ia" in metrics:
        err = hits.cumulative(_err_ia_gains(batch, local, hits, feats, n_total))
    if "s_recall" in metrics:
        srec = hits.cumulative(_new_aspects(local, hits)) / max(n_total, 1)

    for spec in specs:
        m = min(spec.cutoff, kmax)
        if spec.metric == "alpha_ndcg":
            d = dcg[:, m - 1] if m else np.zeros(batch.size)
            i = idcg[:, spec.cutoff - 1]
            out[spec.key] = np.divide(d, i, out=np.zeros(batch.size), where=(d > 0) & (i > 0))
        elif spec.metric == "err_ia":
            out[spec.key] = err[:, m - 1] if m else np.zeros(batch.size)
        else:
            out[spec.key] = srec[:, m - 1] if m else np.zeros(batch.size)
    return out


def _slice(batch: Batch, lo: int, hi: int) -> Batch:
    return Batch(batch.ctx, batch.rows[lo:hi], batch.idx[lo:hi], batch.lengths[lo:hi])


class _RelevantWalk:
    """The relevant listed items of each user in rank order: ``loc`` (B × J local item rows, the
    zero row where a user has fewer than J), their positions ``pos`` (−1 = none)."""

    def __init__(self, b: int, k: int, loc: np.ndarray, pos: np.ndarray):
        self.b, self.k, self.loc, self.pos = b, k, loc, pos
        self.pos_safe = np.where(pos >= 0, pos, 0)

    @classmethod
    def of(cls, rel: np.ndarray, loc_all: np.ndarray, pad: int) -> _RelevantWalk:
        b, k = rel.shape
        rows, cols = np.nonzero(rel)  # sorted by row, then position
        counts = np.bincount(rows, minlength=b)
        j_max = int(counts.max()) if len(rows) else 0
        within = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
        loc = np.full((b, j_max), pad)
        pos = np.full((b, j_max), -1)
        loc[rows, within] = loc_all[rows, cols]
        pos[rows, within] = cols
        return cls(b, k, loc, pos)

    def cumulative(self, values: np.ndarray) -> np.ndarray:
        """Scatter per-(user, j) contributions to their positions and accumulate along the list."""
        out = np.zeros((self.b, self.k))
        ok = self.pos >= 0
        np.add.at(out, (np.nonzero(ok)[0], self.pos[ok]), values[ok])
        return np.cumsum(out, axis=1)


def _alpha_gains(local, hits: _RelevantWalk, alpha: float) -> np.ndarray:
    counts = np.zeros((hits.b, local.shape[1]))
    gains = np.zeros(hits.loc.shape)
    for j in range(hits.loc.shape[1]):
        f = local[hits.loc[:, j]]
        gains[:, j] = (f * np.power(1.0 - alpha, counts)).sum(axis=1)
        counts += f
    return gains


def _new_aspects(local, hits: _RelevantWalk) -> np.ndarray:
    covered = np.zeros((hits.b, local.shape[1]), dtype=bool)
    new = np.zeros(hits.loc.shape)
    for j in range(hits.loc.shape[1]):
        f = local[hits.loc[:, j]] > 0
        new[:, j] = (f & ~covered).sum(axis=1)
        covered |= f
    return new


def _alpha_ideal_cumulative(local, needed, cand_rows, cand_items, b, alpha, logd, n) -> np.ndarray:
    """Greedy ideal ranking of each user's relevant items over n positions; ties by item id."""
    cum = np.zeros((b, n))
    if len(cand_rows) == 0:
        return cum
    starts = np.searchsorted(cand_rows, np.arange(b))
    within = np.arange(len(cand_rows)) - starts[cand_rows]
    r_max = int(within.max()) + 1
    cand = np.full((b, r_max), len(needed))  # padding row: zero features
    cand[cand_rows, within] = np.searchsorted(needed, cand_items)
    available = np.zeros((b, r_max), dtype=bool)
    available[cand_rows, within] = True
    fc = local[cand]  # b × r_max × F
    counts = np.zeros((b, local.shape[1]))
    total = np.zeros(b)
    rows = np.arange(b)
    for k in range(min(n, r_max)):
        w = np.power(1.0 - alpha, counts)
        gains = np.einsum("brf,bf->br", fc, w)
        gains[~available] = -np.inf
        best = gains.argmax(axis=1)  # first maximum: candidates are in item-id order
        ok = available[rows, best]
        gain = np.where(ok, gains[rows, best], 0.0)
        total = total + gain * logd[k]
        cum[:, k] = total
        counts += fc[rows, best] * ok[:, None]
        available[rows, best] = False
    cum[:, min(n, r_max):] = total[:, None]  # no candidate left: the ideal stops growing
    return cum


def _err_ia_gains(batch: Batch, local, hits: _RelevantWalk, feats, n_total) -> np.ndarray:
    ctx = batch.ctx
    presence = ctx.presence
    # p(f|u): each train and test row of the user adds 1 to every feature of its item
    rows_items = batch.profile.copy()
    rows_items.data = np.ones_like(rows_items.data)
    test_items = batch.test.copy()
    test_items.data = np.ones_like(test_items.data)
    counts_all = (rows_items + test_items) @ presence  # B × F_total (sparse)
    totals = np.asarray(counts_all.sum(axis=1)).ravel()
    p = counts_all[:, feats].toarray() if len(feats) else np.zeros((batch.size, 0))
    p = np.divide(p, totals[:, None], out=np.full_like(p, 1.0 / max(n_total, 1)), where=totals[:, None] > 0)
    g_all = batch.gains(Relevance("err", threshold=ctx.threshold))
    g = np.where(hits.pos >= 0, g_all[np.arange(batch.size)[:, None], hits.pos_safe], 0.0)
    remaining = np.ones((batch.size, len(feats)))
    out = np.zeros(hits.loc.shape)
    for j in range(hits.loc.shape[1]):
        f = local[hits.loc[:, j]]
        out[:, j] = (f * p * remaining).sum(axis=1) * g[:, j] / (hits.pos_safe[:, j] + 1.0)
        remaining *= 1.0 - f * g[:, j][:, None]
    return out
