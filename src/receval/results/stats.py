"""Paired comparison of two sides' per-user metric values.

The two sides are two algorithms of one run or one algorithm in two runs. Users are matched by id
(compared as text, so ``7`` and ``"7"`` are the same user, as in sharding); only the users both
sides evaluated are compared, and :class:`Comparison` says plainly when the user sets differ. For
each metric, with ``d_u = b_u - a_u`` over the ``n`` shared users (a pair with a NaN is dropped):

* mean delta ``d̄ = (1/n) Σ_u d_u`` (B minus A: positive means B is higher);
* paired t-test: ``t = d̄ / (s_d / √n)``, ``n − 1`` degrees of freedom (``scipy.stats.ttest_rel``);
* Wilcoxon signed-rank test (``scipy.stats.wilcoxon``) with Pratt's treatment of zero differences:
  the many users whose values tie (e.g. both lists have precision 0) take part in the ranking and
  are then dropped, which is more conservative than discarding them first (Pratt 1959; Conover 1973);
* Holm–Bonferroni step-down correction of each test's p-values across the compared metrics
  (:func:`holm`; Holm 1979);
* a paired percentile bootstrap confidence interval of ``d̄`` (resampling users with replacement,
  ``B = 2000`` resamples, seeded; Efron & Tibshirani 1993, ch. 13);
* Cohen's ``d_z = d̄ / s_d`` (Cohen 1988; Lakens 2013), ``s_d`` the sample standard deviation
  (``ddof = 1``).

When every difference is 0 both tests report statistic 0 and p = 1 (there is no evidence of a
difference), ``d_z = 0`` and the interval is ``[0, 0]``.

References
----------
S. Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6 (1979).
J. W. Pratt, "Remarks on zeros and ties in the Wilcoxon signed rank procedures", JASA 54 (1959).
B. Efron, R. Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall (1993).
D. Lakens, "Calculating and reporting effect sizes", Frontiers in Psychology 4 (2013).
M. D. Smucker, J. Allan, B. Carterette, "A comparison of statistical significance tests for
information retrieval evaluation", CIKM 2007.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from receval.errors import ConfigError, InputError

DEFAULT_BOOTSTRAP = 2000
DEFAULT_SEED = 20110101
# Resampled values held in memory at once; bounds the B × n index matrix for large user sets.
_BOOTSTRAP_BLOCK = 4_000_000


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down), NaN entries left out of the family.

    With the ``m`` p-values sorted ascending, ``p_(1) ≤ … ≤ p_(m)``, the adjusted values are
    ``p̃_(i) = min(1, max_{j ≤ i} (m − j + 1) · p_(j))``; rejecting where ``p̃ ≤ α`` controls the
    family-wise error rate at ``α`` (Holm 1979).
    """
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def paired_t_test(diff: np.ndarray) -> tuple[float, float]:
    """(t, p) of the two-sided paired t-test on the differences ``diff``."""
    from scipy import stats

    diff = np.asarray(diff, dtype=float)
    if diff.size == 0:
        return math.nan, math.nan
    if np.all(diff == 0):
        return 0.0, 1.0
    if diff.size < 2:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant non-zero differences: t = ±inf, p = 0
        result = stats.ttest_rel(diff, np.zeros_like(diff))
    return float(result.statistic), float(result.pvalue)


def wilcoxon_test(diff: np.ndarray) -> tuple[float, float]:
    """(W, p) of the two-sided Wilcoxon signed-rank test on ``diff`` (Pratt's zero handling)."""
    from scipy import stats

    diff = np.asarray(diff, dtype=float)
    if diff.size == 0:
        return math.nan, math.nan
    if np.all(diff == 0):
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))  # small-n normal approximation notes
        result = stats.wilcoxon(diff, zero_method="pratt")
    return float(result.statistic), float(result.pvalue)


def cohen_dz(diff: np.ndarray) -> float:
    """Cohen's ``d_z = mean(d) / sd(d)`` (``ddof = 1``); 0 when every d is 0, ±inf when d is constant."""
    diff = np.asarray(diff, dtype=float)
    if diff.size == 0:
        return math.nan
    mean = float(diff.mean())
    if diff.size < 2:
        return math.nan if mean != 0 else 0.0
    sd = float(diff.std(ddof=1))
    if sd == 0:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / sd


def bootstrap_ci(
    diff: np.ndarray,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(diff)``, resampling the paired users.

    Draws a ``n_boot × n`` matrix of user indices with replacement (in row blocks, so memory stays
    bounded for large ``n``), takes each row's mean difference and returns the ``(1 − c)/2`` and
    ``(1 + c)/2`` quantiles. Resampling the *differences* keeps each user's pair together.
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence {confidence}: expected a number between 0 and 1", option="confidence")
    if n_boot < 1:
        raise ConfigError(f"n_boot {n_boot}: expected at least 1 resample", option="n_boot")
    diff = np.asarray(diff, dtype=float)
    n = diff.size
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    rows_per_block = max(1, _BOOTSTRAP_BLOCK // n)
    means = np.empty(n_boot)
    for start in range(0, n_boot, rows_per_block):
        stop = min(n_boot, start + rows_per_block)
        indices = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[indices].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class MetricComparison:
    """The paired comparison of one metric (delta = B − A)."""

    metric: str
    users: int
    mean_a: float
    mean_b: float
    delta: float
    ci_low: float
    ci_high: float
    t_statistic: float
    t_pvalue: float
    t_pvalue_holm: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float
    wilcoxon_pvalue_holm: float
    cohen_dz: float
    dropped_nan: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_number(v) for k, v in asdict(self).items()}


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of side A and side B over the users both evaluated."""

    label_a: str
    label_b: str
    users_a: int
    users_b: int
    users_shared: int
    metrics: tuple[MetricComparison, ...]
    n_boot: int
    seed: int
    confidence: float

    @property
    def user_sets_differ(self) -> bool:
        return not (self.users_a == self.users_b == self.users_shared)

    def note(self) -> str:
        """One sentence about the matched users, plain about any difference."""
        if not self.user_sets_differ:
            return f"{self.users_shared} users, the same on both sides"
        return (
            f"the user sets differ: {self.label_a} has {self.users_a} users, {self.label_b} has {self.users_b},"
            f" {self.users_shared} are shared; only the shared users are compared"
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(m) for m in self.metrics])

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.label_a,
            "b": self.label_b,
            "delta": "b - a",
            "users_a": self.users_a,
            "users_b": self.users_b,
            "users_shared": self.users_shared,
            "user_sets_differ": self.user_sets_differ,
            "note": self.note(),
            "bootstrap": {"resamples": self.n_boot, "seed": self.seed, "confidence": self.confidence},
            "wilcoxon_zero_method": "pratt",
            "correction": "holm",
            "metrics": [m.to_dict() for m in self.metrics],
        }


def _user_index(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    if "user" not in frame.columns:
        raise InputError(f"{label}: per-user values have no column 'user'")
    keyed = frame.copy()
    keyed.index = keyed.pop("user").astype(str)
    duplicated = keyed.index.duplicated()
    if duplicated.any():
        raise InputError(f"{label}: user {keyed.index[duplicated][0]} appears twice in the per-user values")
    return keyed


def compare_per_user(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    label_a: str = "A",
    label_b: str = "B",
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = DEFAULT_SEED,
    confidence: float = 0.95,
) -> Comparison:
    """Compare per-user values ``a`` and ``b`` (column ``user`` + one column per metric key).

    Parameters
    ----------
    a, b : DataFrame
        Per-user values of side A and side B.
    metrics : sequence of str, optional
        Metric keys (columns) to compare; default: every numeric column the two sides share.
    n_boot, seed, confidence :
        Bootstrap resamples, the random seed (the same seed gives the same interval) and the level.

    Returns
    -------
    Comparison
        One :class:`MetricComparison` per metric, Holm-corrected across them.
    """
    ka, kb = _user_index(a, label_a), _user_index(b, label_b)
    shared_users = ka.index.intersection(kb.index, sort=False)
    if metrics is None:
        metrics = [
            c for c in ka.columns if c in kb.columns and pd.api.types.is_numeric_dtype(ka[c]) and pd.api.types.is_numeric_dtype(kb[c])
        ]
    else:
        for side, frame in ((label_a, ka), (label_b, kb)):
            missing = [m for m in metrics if m not in frame.columns]
            if missing:
                raise ConfigError(
                    f"metrics: {', '.join(missing)} not among the per-user values of {side}"
                    f" (available: {', '.join(map(str, frame.columns))})",
                    option="metrics",
                )
    if not metrics:
        raise ConfigError(f"{label_a} and {label_b} share no per-user metric to compare")
    if shared_users.empty:
        raise InputError(f"{label_a} and {label_b} have no user in common: nothing to compare")
    pa, pb = ka.loc[shared_users], kb.loc[shared_users]

    partial: list[dict[str, Any]] = []
    for name in metrics:
        va = pd.to_numeric(pa[name], errors="coerce").to_numpy(dtype=float)
        vb = pd.to_numeric(pb[name], errors="coerce").to_numpy(dtype=float)
        keep = ~(np.isnan(va) | np.isnan(vb))
        va, vb = va[keep], vb[keep]
        diff = vb - va
        t_stat, t_p = paired_t_test(diff)
        w_stat, w_p = wilcoxon_test(diff)
        if diff.size and np.all(diff == 0):
            low = high = 0.0
        else:
            low, high = bootstrap_ci(diff, n_boot=n_boot, seed=seed, confidence=confidence)
        partial.append(
            dict(
                metric=str(name),
                users=int(diff.size),
                mean_a=float(va.mean()) if va.size else math.nan,
                mean_b=float(vb.mean()) if vb.size else math.nan,
                delta=float(diff.mean()) if diff.size else math.nan,
                ci_low=low,
                ci_high=high,
                t_statistic=t_stat,
                t_pvalue=t_p,
                wilcoxon_statistic=w_stat,
                wilcoxon_pvalue=w_p,
                cohen_dz=cohen_dz(diff),
                dropped_nan=int((~keep).sum()),
            )
        )
    t_holm = holm([r["t_pvalue"] for r in partial])
    w_holm = holm([r["wilcoxon_pvalue"] for r in partial])
    rows = tuple(
        MetricComparison(**r, t_pvalue_holm=float(th), wilcoxon_pvalue_holm=float(wh))
        for r, th, wh in zip(partial, t_holm, w_holm)
    )
    return Comparison(
        label_a=label_a,
        label_b=label_b,
        users_a=len(ka),
        users_b=len(kb),
        users_shared=len(shared_users),
        metrics=rows,
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
    )
