"""The paper's findings, each judged against one run's values: holds, partly, or does not hold.

Vargas & Castells (RecSys 2011) read five findings off Figure 2 and Table 5. Each is stated here as
a set of *checks* — strict comparisons between two values of the run (``a > b``) — grouped into the
finding's claims. A claim holds when all its checks pass, does not hold when none does, and holds
partly otherwise; a finding holds when every claim holds, does not hold when no check passes at
all. Nothing here knows the expected answer for a dataset except through the run: the datasets'
kind (explicit ratings or implicit feedback) comes from the run's own ``run.json``.

Values are the run's summary values at the experiment's cutoff. "Relevance-aware" is the paper's
graded model, "unaware" is p(rel) = 1. The findings, as operational checks:

1. Relevance-unaware, no discount: on EPC, CB above UB and MF; on EPD and EILD, CB below both.
2. Relevance-unaware, AVG and RND above MF and UB on EPC, EPD and EILD; relevance-aware, MF and UB
   above AVG and RND on the three.
3. Relevance-aware, the collaborative algorithm the paper found ahead leads on EPC, EPD and EILD:
   MF on explicit ratings, UB on implicit feedback; and relevance-unaware the two are closer
   (smaller relative gap ``|MF − UB| / max(MF, UB)``) than relevance-aware.
4. Table 5, relevance-aware, both discounts (3 metrics × 2 = 6 cells): fewer than half of the
   (re-ranker, cell) pairs beat MF; IA-Select is above MF in most cells (4 or more of 6); and
   IA-Select is above MF *beyond noise* in most cells: positive mean per-user difference, paired
   t-test and Wilcoxon signed-rank both below 0.05 after Holm's correction over the 6 cells, and
   the bootstrap interval above 0 (:mod:`receval.results.stats`).
5. From no discount to disc(k) = 0.85^(k−1), relevance-aware: a re-ranker's relative gain over MF,
   ``(R − MF) / MF``, rises for IA-Select on all three metrics; it falls for MMR on at least one.
   (Raw values are not compared across discounts: the rank discount reweights every list, MF's
   too, so the comparison that isolates the re-ranker is against MF under the same discount.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from receval.results.read import metric_key
from receval.results.stats import Comparison, compare_per_user

METRICS = ("epc", "epd", "eild")
AWARE = "graded"
UNAWARE = "none"
DISCOUNTS = ("none", "exp")
ALPHA = 0.05
HOLDS, PARTLY, FAILS, MISSING = "holds", "partly", "does not hold", "n/a"
LABELS = {"mf": "MF", "cb": "CB", "ub": "UB", "avg": "AVG", "rnd": "RND",
          "mmr": "MF+MMR", "xquad": "MF+xQuAD", "iaselect": "MF+IA-Select"}
TITLES = {
    1: "Relevance-unaware: CB above UB and MF on EPC, below them on EPD and EILD",
    2: "Relevance-unaware, AVG and RND show high novelty and diversity; relevance-aware, MF and UB overtake them",
    3: "Relevance-aware, MF beats UB on explicit ratings and UB beats MF on implicit data; unaware, the two are close",
    4: "Table 5, relevance-aware: few re-rankers beat MF; IA-Select is above it overall",
    5: "From no discount to 0.85^(k-1): IA-Select gains on MF; MMR sometimes loses",
}


@dataclass(frozen=True)
class Check:
    """One strict comparison between two values of the run."""

    text: str
    passed: bool


@dataclass(frozen=True)
class Claim:
    text: str
    checks: tuple[Check, ...]

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.checks)

    @property
    def status(self) -> str:
        return _status(self.passed, len(self.checks))

    def describe(self) -> str:
        failed = [c.text for c in self.checks if not c.passed]
        kept = [c.text for c in self.checks if c.passed]
        shown = failed if self.status != HOLDS else kept
        detail = "; ".join(shown[:4]) + ("; …" if len(shown) > 4 else "")
        lead = "" if self.status == HOLDS else ("fails: " if failed else "")
        return f"{self.text}: {self.status} ({self.passed}/{len(self.checks)}; {lead}{detail})"


@dataclass(frozen=True)
class Verdict:
    """A finding on one dataset: its claims and the status they add up to."""

    finding: int
    dataset: str
    claims: tuple[Claim, ...]
    note: str = ""

    @property
    def title(self) -> str:
        return TITLES[self.finding]

    @property
    def status(self) -> str:
        if not self.claims:
            return MISSING
        if all(c.status == HOLDS for c in self.claims):
            return HOLDS
        if all(c.passed == 0 for c in self.claims):
            return FAILS
        return PARTLY

    def evidence(self) -> str:
        text = " — ".join(c.describe() for c in self.claims)
        return f"{text} — {self.note}" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        return {"finding": self.finding, "dataset": self.dataset, "title": self.title, "status": self.status,
                "claims": [{"text": c.text, "status": c.status, "passed": c.passed, "checks": len(c.checks),
                            "detail": [{"text": k.text, "passed": k.passed} for k in c.checks]}
                           for c in self.claims],
                "note": self.note}


def _status(passed: int, total: int) -> str:
    if total == 0:
        return MISSING
    return HOLDS if passed == total else FAILS if passed == 0 else PARTLY


# ------------------------------------------------------------------------------------------------ values


@dataclass
class RunValues:
    """Summary values of one run, looked up by (algorithm, metric, relevance, discount)."""

    values: dict[tuple[str, str, str, str], float]
    cutoff: int
    implicit: bool
    significance: Mapping[str, Comparison] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, cutoff: int, implicit: bool,
                   significance: Mapping[str, Comparison] | None = None) -> RunValues:
        part = frame[pd.to_numeric(frame["cutoff"], errors="coerce") == cutoff]
        values = {(str(r.algorithm), str(r.metric), str(r.relevance), str(r.discount)): float(r.value)
                  for r in part.itertuples(index=False)}
        return cls(values, cutoff, implicit, dict(significance or {}))

    def get(self, algorithm: str, metric: str, relevance: str, discount: str = "none") -> float:
        return self.values.get((algorithm, metric, relevance, discount), math.nan)

    def has(self, *algorithms: str) -> bool:
        return all(any(k[0] == a for k in self.values) for a in algorithms)


def _above(v: RunValues, a: str, b: str, metric: str, relevance: str, discount: str = "none") -> Check:
    x, y = v.get(a, metric, relevance, discount), v.get(b, metric, relevance, discount)
    rel = "unaware" if relevance == UNAWARE else "aware"
    disc = "" if discount == "none" else f", {discount}"
    sign = ">" if x > y else "≤"
    return Check(f"{metric.upper()} {rel}{disc} {LABELS.get(a, a)} {x:.4f} {sign} {LABELS.get(b, b)} {y:.4f}",
                 bool(x > y))


# ------------------------------------------------------------------------------------------------ findings


def finding1(v: RunValues, dataset: str) -> Verdict:
    if not v.has("cb", "ub", "mf"):
        return Verdict(1, dataset, ())
    novelty = tuple(_above(v, "cb", other, "epc", UNAWARE) for other in ("ub", "mf"))
    distance = tuple(_above(v, other, "cb", m, UNAWARE) for m in ("epd", "eild") for other in ("ub", "mf"))
    return Verdict(1, dataset, (Claim("EPC: CB above UB and MF", novelty),
                                Claim("EPD, EILD: CB below UB and MF", distance)))


def finding2(v: RunValues, dataset: str) -> Verdict:
    if not v.has("avg", "rnd", "ub", "mf"):
        return Verdict(2, dataset, ())
    plain = tuple(_above(v, x, y, m, UNAWARE) for m in METRICS for x in ("avg", "rnd") for y in ("mf", "ub"))
    aware = tuple(_above(v, y, x, m, AWARE) for m in METRICS for y in ("mf", "ub") for x in ("avg", "rnd"))
    return Verdict(2, dataset, (Claim("unaware, AVG and RND above MF and UB", plain),
                                Claim("aware, MF and UB above AVG and RND", aware)))


def _gap(a: float, b: float) -> float:
    top = max(abs(a), abs(b))
    return abs(a - b) / top if top > 0 else 0.0


def finding3(v: RunValues, dataset: str) -> Verdict:
    if not v.has("mf", "ub"):
        return Verdict(3, dataset, ())
    leader, other = ("ub", "mf") if v.implicit else ("mf", "ub")
    kind = "implicit feedback" if v.implicit else "explicit ratings"
    direction = tuple(_above(v, leader, other, m, AWARE) for m in METRICS)
    close = []
    for m in METRICS:
        plain = _gap(v.get("mf", m, UNAWARE), v.get("ub", m, UNAWARE))
        aware = _gap(v.get("mf", m, AWARE), v.get("ub", m, AWARE))
        sign = "<" if plain < aware else "≥"
        close.append(Check(f"{m.upper()} relative gap unaware {plain:.1%} {sign} aware {aware:.1%}", plain < aware))
    return Verdict(3, dataset, (Claim(f"aware, {LABELS[leader]} above {LABELS[other]} ({kind})", direction),
                                Claim("MF and UB closer unaware than aware", tuple(close))))


def _cells() -> list[tuple[str, str]]:
    return [(m, d) for d in DISCOUNTS for m in METRICS]


def significance_keys(cutoff: int) -> list[str]:
    """Per-user columns compared for findings 4 and 5: the relevance-aware metrics, both discounts."""
    return [metric_key(m, AWARE, d, cutoff) for m, d in _cells()]


def _beyond_noise(comparison: Comparison | None, key: str) -> bool | None:
    if comparison is None:
        return None
    row = next((m for m in comparison.metrics if m.metric == key), None)
    if row is None:
        return None
    return bool(row.delta > 0 and row.ci_low > 0 and row.t_pvalue_holm < ALPHA and row.wilcoxon_pvalue_holm < ALPHA)


def finding4(v: RunValues, dataset: str, rerankers: tuple[str, ...]) -> Verdict:
    present = tuple(r for r in rerankers if v.has(r))
    if not v.has("mf") or "iaselect" not in present:
        return Verdict(4, dataset, ())
    pairs = [(r, m, d) for r in present for m, d in _cells()]
    beating = [p for p in pairs if v.get(p[0], p[1], AWARE, p[2]) > v.get("mf", p[1], AWARE, p[2])]
    few = Check(f"{len(beating)} of {len(pairs)} (re-ranker, cell) pairs above MF, fewer than half",
                len(beating) * 2 < len(pairs))
    ia = tuple(_above(v, "iaselect", "mf", m, AWARE, d) for m, d in _cells())
    ia_overall = Check(f"IA-Select above MF in {sum(c.passed for c in ia)} of {len(ia)} cells (4 or more)",
                       sum(c.passed for c in ia) * 3 >= 2 * len(ia))
    claims = [Claim("few re-rankers beat MF", (few,)), Claim("IA-Select above MF overall", (ia_overall,))]
    comparison = v.significance.get("iaselect")
    if comparison is not None:
        checks = []
        for m, d in _cells():
            key = metric_key(m, AWARE, d, v.cutoff)
            row = next(r for r in comparison.metrics if r.metric == key)
            checks.append(Check(f"{key} Δ {row.delta:+.4f} [{row.ci_low:+.4f}, {row.ci_high:+.4f}], "
                                f"Holm p t {row.t_pvalue_holm:.2g} / W {row.wilcoxon_pvalue_holm:.2g}",
                                bool(_beyond_noise(comparison, key))))
        n = sum(c.passed for c in checks)
        claims.append(Claim("IA-Select above MF beyond noise in most cells",
                            (Check(f"{n} of {len(checks)} cells significant: " + "; ".join(
                                c.text for c in checks if c.passed) if n else f"0 of {len(checks)} cells significant",
                                   n * 3 >= 2 * len(checks)),)))
    return Verdict(4, dataset, tuple(claims))


def _relative_gain(v: RunValues, reranker: str, metric: str, discount: str) -> float:
    base = v.get("mf", metric, AWARE, discount)
    return (v.get(reranker, metric, AWARE, discount) - base) / base if base else math.nan


def finding5(v: RunValues, dataset: str) -> Verdict:
    if not v.has("mf", "iaselect", "mmr"):
        return Verdict(5, dataset, ())
    claims = []
    for reranker, rises in (("iaselect", True), ("mmr", False)):
        checks = []
        for m in METRICS:
            plain, disc = _relative_gain(v, reranker, m, "none"), _relative_gain(v, reranker, m, "exp")
            ok = disc > plain if rises else disc < plain
            checks.append(Check(f"{m.upper()} gain over MF {plain:+.2%} → {disc:+.2%}", bool(ok)))
        if rises:
            claims.append(Claim("IA-Select's gain over MF rises with the discount", tuple(checks)))
        else:
            n = sum(c.passed for c in checks)
            detail = "; ".join(c.text for c in checks)
            claims.append(Claim("MMR's gain over MF falls with the discount on some metric",
                                (Check(f"falls on {n} of 3 ({detail})", n >= 1),)))
    note = ""
    comparison = v.significance.get("iaselect")
    if comparison is not None:
        counts = {d: sum(bool(_beyond_noise(comparison, metric_key(m, AWARE, d, v.cutoff))) for m in METRICS)
                  for d in DISCOUNTS}
        note = (f"IA-Select above MF beyond noise on {counts['none']}/3 metrics without discount, "
                f"{counts['exp']}/3 with it")
    return Verdict(5, dataset, tuple(claims), note)


def judge(v: RunValues, dataset: str, rerankers: tuple[str, ...] = ("mmr", "xquad", "iaselect")) -> list[Verdict]:
    """The five findings on one run."""
    return [finding1(v, dataset), finding2(v, dataset), finding3(v, dataset),
            finding4(v, dataset, rerankers), finding5(v, dataset)]


def compare_with_mf(per_user: Mapping[str, pd.DataFrame], cutoff: int,
                    rerankers: tuple[str, ...]) -> dict[str, Comparison]:
    """Paired per-user comparison of each re-ranker against MF on the relevance-aware keys
    (:func:`receval.results.stats.compare_per_user`: paired t, Wilcoxon, Holm, bootstrap CI)."""
    keys = significance_keys(cutoff)
    out = {}
    for reranker in rerankers:
        if reranker in per_user and "mf" in per_user:
            out[reranker] = compare_per_user(per_user["mf"], per_user[reranker], keys,
                                             label_a="mf", label_b=reranker)
    return out
