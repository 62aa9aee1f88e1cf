"""The paper's findings are judged from a run's values: change the values, the verdict follows."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from receval.experiments import findings
from receval.experiments.findings import FAILS, HOLDS, PARTLY, RunValues, compare_with_mf, judge
from receval.experiments.paper import DatasetResult, findings_markdown

ALGOS = ("mf", "cb", "ub", "avg", "rnd", "mmr", "xquad", "iaselect")


def _records(value) -> list[dict]:
    """Summary records at @50 whose value is ``value(algorithm, metric, relevance, discount)``."""
    return [
        {"kind": "metric", "algorithm": a, "metric": m, "relevance": r, "discount": d, "cutoff": 50,
         "value": float(value(a, m, r, d)), "users": 10}
        for a, m, r, d in itertools.product(ALGOS, ("epc", "epd", "eild"), ("none", "graded"), ("none", "exp"))
    ]


def _paper_like(a, m, r, d):
    """Values shaped as the paper reports them: MF ahead of UB when relevance-aware."""
    unaware = {"mf": 0.80, "ub": 0.79, "cb": 0.95 if m == "epc" else 0.30, "avg": 0.90, "rnd": 0.97,
               "mmr": 0.82, "xquad": 0.80, "iaselect": 0.80}
    aware = {"mf": 0.050, "ub": 0.040, "cb": 0.010, "avg": 0.020, "rnd": 0.001,
             "mmr": 0.045 if d == "none" else 0.040, "xquad": 0.049, "iaselect": 0.051 if d == "none" else 0.053}
    return unaware[a] if r == "none" else aware[a]


def _status(records, implicit=False, finding=3, significance=None):
    frame = pd.DataFrame.from_records(records)
    verdicts = judge(RunValues.from_frame(frame, 50, implicit, significance), "x")
    return verdicts[finding - 1].status


def test_paper_shaped_values_satisfy_every_finding():
    records = _records(_paper_like)
    assert [_status(records, finding=f) for f in (1, 2, 3, 4, 5)] == [HOLDS] * 5


def test_swapping_mf_and_ub_turns_finding_3_round():
    records = _records(_paper_like)
    assert _status(records) == HOLDS
    swapped = [dict(r, algorithm={"mf": "ub", "ub": "mf"}.get(r["algorithm"], r["algorithm"])) for r in records]
    # UB now leads relevance-aware on all three metrics: the explicit-ratings claim fails entirely, and
    # the closeness claim (symmetric in MF and UB) still holds, so the finding holds only partly
    assert _status(swapped) == PARTLY
    verdict = judge(RunValues.from_frame(pd.DataFrame(swapped), 50, False), "x")[2]
    assert verdict.claims[0].status == FAILS
    # on implicit data the paper expects UB ahead: the same swapped values now satisfy it
    assert _status(swapped, implicit=True) == HOLDS


def test_one_value_moved_moves_finding_1_from_holds_to_partly():
    records = _records(_paper_like)
    moved = [dict(r, value=0.99) if (r["algorithm"], r["metric"], r["relevance"]) == ("cb", "eild", "none") else r
             for r in records]
    assert _status(records, finding=1) == HOLDS and _status(moved, finding=1) == PARTLY


def test_finding_5_reads_gains_over_mf_not_raw_values():
    records = _records(_paper_like)
    # IA-Select's relevance-aware values now fall with the discount relative to MF
    flat = [dict(r, value=0.051) if (r["algorithm"], r["relevance"]) == ("iaselect", "graded") else r for r in records]
    assert _status(records, finding=5) == HOLDS
    verdict = judge(RunValues.from_frame(pd.DataFrame(flat), 50, False), "x")[4]
    assert verdict.claims[0].status == FAILS


def _per_user(offset: float, noise: float, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    users = np.arange(400)
    keys = findings.significance_keys(50)
    mf = pd.DataFrame({"user": users, **{k: rng.uniform(0, 0.1, users.size) for k in keys}})
    ia = mf.copy()
    for k in keys:
        ia[k] = mf[k] + offset + rng.normal(0, noise, users.size)
    return {"mf": mf, "iaselect": ia}


def test_significance_claim_follows_the_per_user_differences():
    records = _records(_paper_like)
    clear = compare_with_mf(_per_user(0.01, 0.01, 1), 50, ("iaselect",))
    noise = compare_with_mf(_per_user(0.0, 0.01, 2), 50, ("iaselect",))
    assert _status(records, finding=4, significance=clear) == HOLDS
    verdict = judge(RunValues.from_frame(pd.DataFrame(records), 50, False, noise), "x")[3]
    assert verdict.claims[2].status == FAILS and verdict.status == PARTLY


def test_report_table_shows_the_computed_verdicts():
    records = _records(_paper_like)
    swapped = [dict(r, algorithm={"mf": "ub", "ub": "mf"}.get(r["algorithm"], r["algorithm"])) for r in records]
    table = findings_markdown([DatasetResult("a", "run-a", 1.0, records), DatasetResult("b", "run-b", 1.0, swapped)])
    row3 = next(line for line in table.splitlines() if line.startswith("| 3 |"))
    cells = [c.strip() for c in row3.strip("|").split(" | ")]
    assert cells[2].startswith(f"**{HOLDS}**") and cells[3].startswith(f"**{PARTLY}**")


@pytest.mark.parametrize("missing", ["cb", "iaselect"])
def test_a_run_without_the_algorithms_says_not_applicable(missing):
    records = [r for r in _records(_paper_like) if r["algorithm"] != missing]
    statuses = [v.status for v in judge(RunValues.from_frame(pd.DataFrame(records), 50, False), "x")]
    assert findings.MISSING in statuses


def test_mf_vs_ub_table_judges_each_pair_with_finding_3():
    from receval.experiments.mf_vs_ub import DatasetStudy, table

    def value(a, m, r, d):
        return {"mf": 0.05, "ub": 0.04, "mf-tuned": 0.03, "ub-tuned": 0.04}.get(a, 0.01) if r == "graded" else 0.8

    labels = ("mf", "ub", "mf-tuned", "ub-tuned")
    records = [dict(r, algorithm=a) for r in _records(value) if r["algorithm"] == "mf"
               for a in labels]
    records = [dict(r, value=value(r["algorithm"], r["metric"], r["relevance"], r["discount"])) for r in records]
    variants = {a: {"name": a.split("-")[0], "params": {}, "why": ""} for a in labels}
    explicit = DatasetStudy("ml-x", False, "r", 1.0, {}, variants, records)
    assert explicit.pair("mf", "ub").claims[0].status == HOLDS
    assert explicit.pair("mf-tuned", "ub-tuned").claims[0].status == FAILS
    rows = {line.split(" | ")[1]: line for line in table([explicit]).splitlines()[2:]}
    assert rows["both at their defaults"].rstrip(" |").endswith(HOLDS)
    assert rows["both chosen by validation nDCG"].rstrip(" |").endswith(FAILS)
    # the same values on implicit data: the paper expects UB ahead, so the verdicts swap
    implicit = DatasetStudy("lastfm-x", True, "r", 1.0, {}, variants, records)
    assert implicit.pair("mf", "ub").claims[0].status == FAILS
    assert implicit.pair("mf-tuned", "ub-tuned").claims[0].status == HOLDS
