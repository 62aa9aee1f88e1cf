"""Intent-aware metrics over item features as aspects (RankSys; docs/metrics.md, "Metrics").

* alpha-nDCG@N: a relevant item at rank k gains ``Σ_{f∈F(i_k)} (1−α)^{c_f}``, c_f counting earlier
  *relevant* items with aspect f; DCG = Σ gain_k / log2(k+1). The ideal is a greedy walk over the
  user's relevant items for **N** positions, ties broken by item id ascending (RankSys walks N+1
  positions with hash-order ties; docs/metrics.md, "Where receval differs from RankSys,
  deliberately"). 0 when DCG = 0.
* ERR-IA@N = Σ_{k, i_k relevant} Σ_{f∈F(i_k)} p(f|u) · g(i_k) · Π_{earlier relevant j with f}(1 − g(j)) / k,
  with the ERR gain g and p(f|u) ∝ feature counts over the user's train and test rows (uniform
  over all features when those rows carry none).
* S-recall@N = |∪ features of relevant listed items| / |all features|.

Vectorized as "aspect triples": one row per (user, relevant listed item, feature of that item).
Counts of earlier items with an aspect are group-wise running counts over these rows, so the cost
is the number of relevant (item, aspect) pairs — a few per user — whatever the width of the
feature space (19 genres or 10,000 tags alike), with no loop over users or positions.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from typing import TYPE_CHECKING, Any

from receval.metrics.batch import Batch
from receval.metrics.models import LogDiscount, Relevance

if TYPE_CHECKING:
    from receval.metrics.spec import MetricSpec


def _expand(presence: sp.csr_matrix, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner row, feature) for every feature of every item in ``items``."""
    counts = np.diff(presence.indptr)[items]
    owner = np.repeat(np.arange(len(items)), counts)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    feats = presence.indices[np.repeat(presence.indptr[items], counts) + within]
    return owner, feats


def _running_count(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows in walk order: how many earlier rows share the key; plus the stable sort order
    and the group starts in sorted order (for other group-wise scans)."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    start = np.ones(len(keys), dtype=bool)
    start[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group_start = np.maximum.accumulate(np.where(start, np.arange(len(keys)), 0))
    earlier = np.empty(len(keys), dtype=np.int64)
    earlier[order] = np.arange(len(keys)) - group_start
    return earlier, order, start


def compute(batch: Batch, specs: list[MetricSpec], options: Any = None) -> dict[str, np.ndarray]:
    if not specs:
        return {}
    alpha = getattr(options, "alpha", 0.5)
    ctx = batch.ctx
    presence = ctx.presence
    n_features = presence.shape[1]
    rel = batch.relevant(ctx.threshold)
    hit_user, hit_pos = np.nonzero(rel)  # relevant listed items, in (user, rank) order
    hit_item = batch.idx[hit_user, hit_pos]
    owner, feat = _expand(presence, hit_item)
    key = hit_user[owner].astype(np.int64) * n_features + feat
    earlier, order, starts = _running_count(key)

    kmax = batch.k
    metrics = {s.metric for s in specs}
    logd = LogDiscount().weights(max(kmax, max(s.cutoff for s in specs)))

    def cumulative(per_hit: np.ndarray) -> np.ndarray:
        out = np.zeros((batch.size, kmax))
        out[hit_user, hit_pos] = per_hit
        return np.cumsum(out, axis=1)

    def per_hit(weights: np.ndarray) -> np.ndarray:
        return np.bincount(owner, weights=weights, minlength=len(hit_item))

    if "alpha_ndcg" in metrics:
        dcg = cumulative(per_hit(np.power(1.0 - alpha, earlier)) * logd[hit_pos])
        n_ideal = max(s.cutoff for s in specs if s.metric == "alpha_ndcg")
        idcg = _alpha_ideal_cumulative(batch, presence, alpha, logd, n_ideal)
    if "err_ia" in metrics:
        g = batch.gains(Relevance("err", threshold=ctx.threshold))[hit_user, hit_pos]
        # Π over earlier relevant items with the aspect of (1 − g): an exclusive group-wise product
        not_satisfied = 1.0 - g[owner][order]
        inclusive = np.empty_like(not_satisfied)
        _groupwise_cumprod(not_satisfied, starts, inclusive)
        exclusive_sorted = np.where(starts, 1.0, np.roll(inclusive, 1))
        remaining = np.empty_like(exclusive_sorted)
        remaining[order] = exclusive_sorted
        p = _intent_probabilities(batch, hit_user[owner], feat, n_features)
        err = cumulative(per_hit(p * remaining) * g / (hit_pos + 1.0))
    if "s_recall" in metrics:
        srec = cumulative(per_hit((earlier == 0).astype(np.float64))) / max(n_features, 1)

    out: dict[str, np.ndarray] = {}
    for spec in specs:
        m = min(spec.cutoff, kmax)
        if spec.metric == "alpha_ndcg":
            d = dcg[:, m - 1]
            i = idcg[:, spec.cutoff - 1]
            out[spec.key] = np.divide(d, i, out=np.zeros(batch.size), where=(d > 0) & (i > 0))
        elif spec.metric == "err_ia":
            out[spec.key] = err[:, m - 1]
        else:
            out[spec.key] = srec[:, m - 1]
    return out


def _groupwise_cumprod(values: np.ndarray, starts: np.ndarray, out: np.ndarray) -> None:
    """Cumulative product restarting at each ``starts``, multiplied in order as RankSys does.

    One vector step per position within a group (groups are a user's relevant items sharing an
    aspect: a few), each ``out[r] = out[r − 1] · values[r]`` for every row at that position: the
    sequential product of each group, in plain numpy passes (no pandas group-by holding the GIL).
    """
    n = len(values)
    out[:] = values
    if n == 0:
        return
    rows = np.arange(n)
    level = rows - np.maximum.accumulate(np.where(starts, rows, 0))  # position within the group
    by_level = np.argsort(level, kind="stable")
    ends = np.searchsorted(level[by_level], np.arange(1, int(level.max()) + 2))
    for lo, hi in zip(ends[:-1], ends[1:]):
        at = by_level[lo:hi]
        out[at] = out[at - 1] * values[at]


# Largest users × features table of :func:`_intent_probabilities`' dense counts (32 MB of float64).
DENSE_COUNTS_MAX = 1 << 22


def _intent_probabilities(batch: Batch, users: np.ndarray, feats: np.ndarray, n_features: int) -> np.ndarray:
    """p(f|u) for (user row, feature) pairs: each train and test row of the user adds 1 to every
    feature of its item; uniform over all features when the user's rows carry none.

    The counts are integers, so the product with a dense presence table (narrow feature spaces),
    counting the (row, feature) pairs in a dense ``B × F`` table (wider ones) and the sparse product
    (the widest) give the same values.
    """
    b = batch.size
    dense = batch.ctx.presence_dense
    if dense is not None:
        # each row's counts: its train and test items' presence rows summed, one sparse × dense
        # product each (integers, so exact in any order)
        profile, test = _unweighted(batch.profile), _unweighted(batch.test)
        cells = (profile @ dense + test @ dense).ravel()
        totals = cells.reshape(b, n_features).sum(axis=1)
        values = cells[users.astype(np.int64) * n_features + feats] if len(users) else np.zeros(0)
    elif b * n_features <= DENSE_COUNTS_MAX:
        profile, test = batch.profile, batch.test
        rows = np.concatenate([np.repeat(np.arange(b), np.diff(profile.indptr)),
                               np.repeat(np.arange(b), np.diff(test.indptr))])
        owner, feat = _expand(batch.ctx.presence, np.concatenate([profile.indices, test.indices]))
        cells = np.bincount(rows[owner] * n_features + feat, minlength=b * n_features).astype(np.float64)
        totals = cells.reshape(b, n_features).sum(axis=1)
        values = cells[users.astype(np.int64) * n_features + feats] if len(users) else np.zeros(0)
    else:
        counts = ((_unweighted(batch.profile) + _unweighted(batch.test)) @ batch.ctx.presence).tocsr()
        totals = np.asarray(counts.sum(axis=1)).ravel()
        values = np.asarray(counts[users, feats]).ravel() if len(users) else np.zeros(0)
    t = totals[users]
    return np.divide(values, t, out=np.full(len(users), 1.0 / max(n_features, 1)), where=t > 0)


def _unweighted(rows: sp.csr_matrix) -> sp.csr_matrix:
    """``rows`` with every stored value 1: each train or test row counts once, whatever its rating."""
    return sp.csr_matrix((np.ones_like(rows.data), rows.indices, rows.indptr), shape=rows.shape)


def _alpha_ideal_cumulative(batch: Batch, presence: sp.csr_matrix, alpha: float, logd: np.ndarray, n: int) -> np.ndarray:
    """Greedy ideal ranking of each user's relevant test items over n positions; ties by item id.

    Each step scores every still-available candidate by ``Σ_{f∈F(c)} (1−α)^{C_f}`` (one bincount over
    the candidates' aspect triples), takes each user's best (the first maximum: candidates are in
    item-id order), and bumps C on the chosen candidates' aspects. Users are walked in decreasing
    order of their number of candidates, so that step k works on a prefix (the users with more than
    k candidates, their candidates and their triples) and the walk costs the candidates, not the
    users times the longest candidate list.
    """
    b = batch.size
    cum = np.zeros((b, n))
    t = batch.test
    rows = np.repeat(np.arange(b), np.diff(t.indptr))
    relevant = t.data >= batch.ctx.threshold
    c_user, c_item = rows[relevant], t.indices[relevant]  # sorted by user, then item index (= id order)
    if len(c_user) == 0:
        return cum
    per_user = np.bincount(c_user, minlength=b)
    by_count = np.argsort(-per_user, kind="stable")  # walk order: most candidates first
    rank = np.empty(b, dtype=np.int64)
    rank[by_count] = np.arange(b)
    reorder = np.argsort(rank[c_user], kind="stable")  # candidates by walk order, then item id
    c_user, c_item = rank[c_user[reorder]], c_item[reorder]
    counts = per_user[by_count]  # non-increasing
    c_start = np.cumsum(counts) - counts
    c_within = np.arange(len(c_user)) - c_start[c_user]
    r_max = int(counts[0])
    slot = np.full((b, r_max), len(c_user))  # len(c_user): no candidate (a −inf score below)
    slot[c_user, c_within] = np.arange(len(c_user))
    owner, feat = _expand(presence, c_item)  # triples in candidate order
    triples_before = np.searchsorted(owner, np.arange(len(c_user) + 1))  # triples of the first c candidates
    _, pair = np.unique(c_user[owner].astype(np.int64) * presence.shape[1] + feat, return_inverse=True)
    aspect_count = np.zeros(int(pair.max()) + 1 if len(pair) else 0)
    available = np.ones(len(c_user), dtype=bool)
    score = np.full(len(c_user) + 1, -np.inf)
    total = np.zeros(b)
    steps = min(n, r_max)
    for k in range(steps):
        active = int(np.searchsorted(-counts, -k, side="left"))  # users with more than k candidates
        nc = int(c_start[active - 1] + counts[active - 1])  # their candidates
        nt = int(triples_before[nc])
        gains = np.bincount(owner[:nt], weights=np.power(1.0 - alpha, aspect_count[pair[:nt]]), minlength=nc)
        score[:nc] = np.where(available[:nc], gains, -np.inf)
        grid = score[slot[:active]]
        best = grid.argmax(axis=1)
        picked = grid[np.arange(active), best]  # finite: an active user has a candidate left
        total[:active] = total[:active] + picked * logd[k]
        cum[:, k] = total
        chosen = slot[np.arange(active), best]
        available[chosen] = False
        chosen_mask = np.zeros(nc, dtype=bool)
        chosen_mask[chosen] = True
        aspect_count[pair[:nt][chosen_mask[owner[:nt]]]] += 1.0
    cum[:, steps:] = total[:, None]  # no candidate left: the ideal stops growing
    return cum[rank]
