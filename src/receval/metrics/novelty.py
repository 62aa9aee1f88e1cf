"""Expected item novelty: EPC, EFD, EPD (Vargas & Castells 2011; RankSys ItemNoveltyMetric).

    m(u) = Σ_{k≤K_u} disc(k) · p(rel | i_k, u) · nov(i_k | u)  /  Σ_{k≤K_u} disc(k)

with ``K_u = min(N, |R_u|)`` — the normaliser sums the discount over the positions present, and
relevance only multiplies the numerator (metrics.md §5.5). The item novelty is

* EPC: popularity complement ``1 − n_i/|U|``;
* EFD: free discovery ``−log2(n_i / Σ_j n_j)``;
* EPD: profile distance ``mean_{j ∈ train(u)} d(i, j)`` (RankSys's unweighted mean), or, with
  ``profile="relevance"``, the paper's relevance-weighted profile
  ``Σ_j p(rel|j,u) d(i, j) / Σ_j p(rel|j,u)``, where p(rel|j,u) applies the same relevance model to the
  user's *train* rating of j (the paper's ``C' = C / Σ_{j∈u} p(rel|j,u)``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from receval.metrics.batch import Batch
from receval.metrics.spec import MetricSpec

FAMILY = ("epc", "efd", "epd")


def _profile_weights(batch: Batch, spec: MetricSpec, profile: str) -> sp.csr_matrix:
    prof = batch.profile.copy()
    if profile == "relevance" and spec.relevance.kind != "none":
        prof.data = spec.relevance.gains(prof.data, batch.ctx.scale)
    else:
        prof.data = np.ones_like(prof.data)
    return prof


def compute(batch: Batch, specs: list[MetricSpec], *, profile: str = "unweighted") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    safe = np.where(batch.valid, batch.idx, 0)
    nov_cache: dict[object, np.ndarray] = {}
    for spec in specs:
        if spec.metric == "epc":
            key: object = "epc"
            if key not in nov_cache:
                nov_cache[key] = batch.ctx.pc[safe]
        elif spec.metric == "efd":
            key = "efd"
            if key not in nov_cache:
                nov_cache[key] = batch.ctx.fd[safe]
        else:
            weighted = profile == "relevance" and spec.relevance.kind != "none"
            key = ("epd", spec.relevance if weighted else None)
            if key not in nov_cache:
                nov_cache[key] = batch.ctx.distance.profile_mean(batch.idx, _profile_weights(batch, spec, profile))
        nov = nov_cache[key]
        n = min(spec.cutoff, batch.k)
        disc = spec.discount.weights(n)
        g = batch.gains(spec.relevance)[:, :n]
        num = (disc * g * nov[:, :n]).sum(axis=1)
        den = (disc * batch.valid[:, :n]).sum(axis=1)
        out[spec.key] = np.divide(num, den, out=np.zeros(batch.size), where=den > 0)
    return out
