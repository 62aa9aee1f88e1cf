"""Expected item novelty: EPC, EFD, EPD (Vargas & Castells 2011; RankSys ItemNoveltyMetric).

    m(u) = Σ_{k≤K_u} disc(k) · p(rel | i_k, u) · nov(i_k | u)  /  Σ_{k≤K_u} disc(k)

with ``K_u = min(N, |R_u|)`` — the normaliser sums the discount over the positions present, and
relevance only multiplies the numerator (docs/metrics.md, "Models"). The item novelty is

* EPC: popularity complement ``1 − n_i/|U|``;
* EFD: free discovery ``−log2(n_i / Σ_j n_j)``;
* EPD: profile distance ``mean_{j ∈ train(u)} d(i, j)`` (RankSys's unweighted mean), or, with
  ``profile="relevance"``, the paper's relevance-weighted profile
  ``Σ_j p(rel|j,u) d(i, j) / Σ_j p(rel|j,u)``, where p(rel|j,u) applies the same relevance model to the
  user's *train* rating of j (the paper's ``C' = C / Σ_{j∈u} p(rel|j,u)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from receval.metrics.batch import Batch

if TYPE_CHECKING:
    from receval.metrics.spec import MetricSpec


def compute(batch: Batch, specs: list[MetricSpec], options: Any = None) -> dict[str, np.ndarray]:
    """The expected-novelty kernel: each spec's item novelty model (its registry definition's
    ``novelty``) composed with its relevance model and discount."""
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        nov = spec.definition.novelty.of_lists(batch, spec.relevance, options)
        n = min(spec.cutoff, batch.k)
        disc = np.asarray(spec.discount.weights(n), dtype=np.float64)
        den = batch.discount_sums(n, spec.discount)
        num = np.einsum("k,bk,bk->b", disc, batch.gains(spec.relevance)[:, :n], nov[:, :n])
        out[spec.key] = np.divide(num, den, out=np.zeros(batch.size), where=den > 0)
    return out
