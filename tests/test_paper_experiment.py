"""``receval experiment paper`` on MovieLens 100K: a real pipeline run and its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from receval.experiments.paper import BASELINES, CUTOFF, METRICS, RERANKERS, paper_config


def test_paper_config_is_an_ordinary_run_configuration(datasets_dir: Path):
    config = paper_config("ml-100k", str(datasets_dir))
    assert config.labels == list(BASELINES + RERANKERS)
    assert config.evaluation.cutoffs == (CUTOFF,)
    engine = config.evaluation.to_engine()
    keys = {s.key for s in engine.specs}
    assert {f"{m}[{r},{d}]@50" for m in METRICS for r in ("none", "graded") for d in ("none", "exp")} <= keys


@pytest.mark.slow
def test_experiment_writes_figure_and_table_from_the_runs(tmp_path: Path, datasets_dir: Path):
    out = tmp_path / "report"
    res = subprocess.run(
        [sys.executable, "-m", "receval", "experiment", "paper", "--data-dir", str(datasets_dir), "--datasets",
         "ml-100k", "--store", str(tmp_path / "runs"), "--out", str(out), "--shards", "2", "--workers", "2"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    assert res.returncode == 0, res.stderr
    results = json.loads((out / "results.json").read_text())
    records = [r for r in results[0]["records"] if r.get("kind") == "metric"]
    value = {(r["algorithm"], r["metric"], r["relevance"], r["discount"]): r["value"] for r in records}
    # Table 5 in tables.md shows exactly the run's values (4 decimals)
    table = (out / "tables.md").read_text()
    mmr_row = next(line for line in table.splitlines() if line.startswith("| MF+MMR |"))
    shown = [float(x) for x in mmr_row.strip("|").split("|")[1:]]
    expected = [value[("mmr", m, r, d)] for m in METRICS for r in ("none", "graded") for d in ("none", "exp")]
    assert shown == pytest.approx(expected, abs=5e-5)
    # relevance-unaware random lists are the most novel; relevance-aware they are the least (both
    # follow from the definitions: RND ignores popularity and relevance alike)
    epc_none = {a: value[(a, "epc", "none", "none")] for a in BASELINES}
    epc_graded = {a: value[(a, "epc", "graded", "none")] for a in BASELINES}
    assert max(epc_none, key=epc_none.get) == "rnd" and min(epc_graded, key=epc_graded.get) == "rnd"
    # the figure is a real picture, embedded in the page
    import matplotlib.image as mpimg

    pixels = mpimg.imread(out / "figure2-ml-100k.png")
    assert pixels.shape[0] > 300 and float(np.std(pixels)) > 0.05
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "MF+xQuAD" in page
    # the findings come from these values: finding 3 on explicit ratings counts MF above UB
    # relevance-aware; swapping the two algorithms' records rewrites the verdict in the report
    from receval.experiments.findings import FAILS, HOLDS, PARTLY
    from receval.experiments.paper import DatasetResult, write_report

    ahead = sum(value[("mf", m, "graded", "none")] > value[("ub", m, "graded", "none")] for m in METRICS)
    claim = results[0]["findings"][2]["claims"][0]
    assert claim["passed"] == ahead
    assert claim["status"] == {0: FAILS, len(METRICS): HOLDS}.get(ahead, PARTLY)
    swap = {"mf": "ub", "ub": "mf"}
    swapped = [dict(r, algorithm=swap.get(r.get("algorithm"), r.get("algorithm"))) for r in results[0]["records"]]
    again = DatasetResult("ml-100k", results[0]["run_id"], 1.0, swapped, implicit=False)
    write_report([again], tmp_path / "swapped")
    flipped = again.verdicts()[2].claims[0]
    assert flipped.passed == len(METRICS) - ahead  # strict comparisons: no ties in these values
    row = next(line for line in (tmp_path / "swapped" / "tables.md").read_text().splitlines()
               if line.startswith("| 3 |"))
    assert f"aware, MF above UB (explicit ratings): {flipped.status} ({flipped.passed}/{len(METRICS)};" in row


@pytest.mark.slow
def test_mf_vs_ub_study_tabulates_its_own_run(tmp_path: Path, datasets_dir: Path):
    from receval.experiments.mf_vs_ub import run_study
    from receval.experiments.findings import HOLDS

    grids = {"mf": {"factors": [10], "iterations": [3]},
             "mf-explicit": {"feedback": ["explicit"], "factors": [10], "iterations": [3]},
             "ub": {"neighbours": [20, 50]}}
    [study] = run_study(("ml-100k",), str(datasets_dir), str(tmp_path / "runs"), tmp_path / "out", workers=2,
                        grids=grids)
    # the tuned variants carry the validation choice; the study's run trained exactly those settings
    chosen = {k: v for k, v in study.tuning["mf"]["chosen_params"].items() if k != "seed"}
    assert study.variants["mf-tuned"]["params"] == chosen
    ub_values = {row["neighbours"]: row["value"] for row in study.tuning["ub"]["grid"]}
    assert study.variants["ub-tuned"]["params"]["neighbours"] == max(ub_values, key=ub_values.get)
    # each table row shows the run's own values and the pair's finding-3 verdict
    text = (tmp_path / "out" / "mf-vs-ub.md").read_text()
    row = next(line for line in text.splitlines() if "| both at their defaults |" in line)
    mf, ub = study.value("mf", "epc"), study.value("ub", "epc")
    assert f"{mf:.4f} / {ub:.4f}" in row
    verdict = study.pair("mf", "ub").claims[0]
    assert verdict.passed == sum(study.value("mf", m) > study.value("ub", m) for m in METRICS)
    assert row.rstrip(" |").endswith(verdict.status) and (verdict.status == HOLDS) == (verdict.passed == 3)
