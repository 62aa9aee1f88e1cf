"""Tables a person reads: at 80 and at 200 columns (``COLUMNS`` of a real subprocess), ``receval run``,
``results list``, ``results show`` and ``results compare`` print every value and id whole (no ``…``,
no line wider than the page), splitting wide tables into groups that repeat their key column."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN_ID = "20240501-020000-synthetic-first-hour"


def receval(*args: str, width: int, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "receval", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": str(width)}, timeout=600)
    assert done.returncode == 0, done.stderr
    return done


def assert_fits(text: str, width: int) -> None:
    assert "…" not in text
    wide = [line for line in text.splitlines() if len(line) > width]
    assert not wide, f"{len(wide)} lines wider than {width}: {wide[0]!r}"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tables")
    receval("run", "--run-id", RUN_ID, "--algorithm", "rnd,pop,avg,ub,ib,cb,mf", "--workers", "2", width=200, cwd=root)
    return root


def records(store: Path) -> list[dict]:
    return json.loads((store / "receval-runs" / "runs" / RUN_ID / "summary.json").read_text())


@pytest.mark.parametrize("width", [80, 200])
def test_run_table_shows_every_value(store, width):
    # rerunning the same run id resumes it (nothing recomputed) and prints its table again
    done = receval("run", "--run-id", RUN_ID, "--algorithm", "rnd,pop,avg,ub,ib,cb,mf", "--workers", "2",
                   width=width, cwd=store)
    assert_fits(done.stdout, width)
    values = {(r["algorithm"], r["metric"]): r["value"] for r in records(store)
              if r.get("kind") == "metric" and r["cutoff"] == 50 and r["relevance"] in ("binary", "ndcg")
              and r["discount"] in ("none", "log")}
    for algorithm in ("rnd", "pop", "avg", "ub", "ib", "cb", "mf"):
        for metric in ("precision", "ndcg", "epc", "epd", "eild"):
            assert f"{values[(algorithm, metric)]:.4f}" in done.stdout, (algorithm, metric)
    groups = done.stdout.count(" algorithm ")
    assert groups == (1 if width == 200 else 2)
    assert RUN_ID in done.stderr.replace("\n", "")  and f"run {RUN_ID}:" in done.stderr


@pytest.mark.parametrize("width", [80, 200])
def test_results_list_show_compare_show_whole_values(store, width):
    listed = receval("results", "list", "receval-runs", width=width, cwd=store).stdout
    assert_fits(listed, width)
    assert RUN_ID in listed and "rnd, pop, avg, ub, ib, cb, mf" in listed

    shown = receval("results", "show", "receval-runs", "latest", "--cutoff", "10", width=width, cwd=store).stdout
    assert_fits(shown, width)
    at10 = [r for r in records(store) if r.get("kind") == "metric" and r["cutoff"] == 10]
    for r in at10:
        assert f"{r['metric']}[{r['relevance']},{r['discount']}]" in shown
        assert f"{r['value']:.4f}" in shown, r

    compared = receval("results", "compare", "receval-runs", "latest", "--algorithm", "pop,ub", "--metric",
                       "epc,ndcg", "--bootstrap", "200", width=width, cwd=store).stdout
    assert_fits("\n".join(line for line in compared.splitlines() if not line.startswith("delta = B - A")), width)
    for cutoff in (10, 50):
        for key in ("epc[none,none]", "epc[binary,exp]", "ndcg[ndcg,log]"):
            assert f"{key}@{cutoff}" in compared
    assert ("p W (Holm)" in compared) and compared.count(" metric ") == (1 if width == 200 else 2)


def test_old_spellings_still_work(store):
    old = receval("results", "show", "receval-runs", "latest", "--cutoffs", "10", "--metrics", "gini",
                  "--algorithms", "pop", "--format", "json", width=200, cwd=store)
    new = receval("results", "show", "receval-runs", "latest", "--cutoff", "10", "--metric", "gini",
                  "--algorithm", "pop", "--format", "json", width=200, cwd=store)
    assert json.loads(old.stdout) == json.loads(new.stdout) and len(json.loads(new.stdout)) == 1
    both = receval("results", "show", "receval-runs", "latest", "--cutoff", "10", "--cutoff", "50", "--metric",
                   "gini", "--format", "json", width=200, cwd=store)
    assert sorted({r["cutoff"] for r in json.loads(both.stdout)}) == [10, 50]


def test_help_marks_flags_required_options_and_hides_old_spellings(tmp_path):
    evaluate = receval("evaluate", "--help", width=200, cwd=tmp_path).stdout
    assert "<bool>" not in evaluate and "Required (unless pipeline mode)" in evaluate
    assert "--no-header" in evaluate and "--cutoff" in evaluate
    run = receval("run", "--help", width=200, cwd=tmp_path).stdout
    assert "--cutoffs" not in run and "--algorithms" not in run and "<bool>" not in run
    # one way: typer's [default: ...], in parentheses where the default is decided at run time
    assert "(default:" not in run and "[default: (rnd,pop,avg,ub,ib,cb,mf)]" in run and "[default: ./receval-runs]" in run


def test_run_json_has_the_run_id_and_pipes_get_stage_lines(tmp_path):
    done = receval("run", "--algorithm", "pop", "--run-id", "json-run", "--format", "json", "--workers", "1",
                   width=200, cwd=tmp_path)
    result = json.loads(done.stdout)
    assert result and {r["run_id"] for r in result} == {"json-run"}
    stages = [line for line in done.stderr.splitlines() if line.startswith("receval: synthetic: ")]
    assert [line.split(": ")[2].split(" ")[0] for line in stages] == ["prepare", "train,", "aggregate"]


def test_help_shows_metric_keys_with_their_brackets(tmp_path):
    # rich markup would take "[binary,exp]" for a style tag and drop it
    trend = receval("results", "trend", "--help", width=200, cwd=tmp_path).stdout
    assert 'epc[binary,exp]@10' in trend and "--dataset" in trend
    assert "eild[graded,log]" in receval("evaluate", "--help", width=200, cwd=tmp_path).stdout


def test_evaluate_table_with_many_cutoffs_fits_80_columns(tmp_path):
    (tmp_path / "train.csv").write_text("user,item,rating\n1,10,5\n1,11,3\n2,10,4\n3,12,2\n3,13,5\n")
    (tmp_path / "test.csv").write_text("user,item,rating\n1,12,5\n1,13,2\n2,11,4\n3,10,4\n")
    (tmp_path / "recs.csv").write_text("user,item,rank\n1,12,1\n1,13,2\n2,11,1\n2,12,2\n3,10,1\n3,11,2\n")
    done = receval("evaluate", "--train", "train.csv", "--test", "test.csv", "--recs", "recs.csv",
                   "--cutoff", "1,2,3,5,10,20", "--out", "out", width=80, cwd=tmp_path)
    assert_fits(done.stdout, 80)
    records = json.loads((tmp_path / "out" / "summary.json").read_text())
    for r in records:
        if r["kind"] == "metric":
            assert f"{r['value']:.4f}" in done.stdout, r
    assert done.stdout.count(" metric ") == 2  # cutoffs split into two groups, each with the metric columns
