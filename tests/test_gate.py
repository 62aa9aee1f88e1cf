"""The regression gate (`receval results gate`), OpenMetrics export and the gate in the report.

Real runs on ml-100k (one or two algorithms, one cutoff, one shard), real subprocesses. Expected
values are derived here independently: means of the per-user Parquet files, scipy's paired t-test,
Holm's step-down by hand.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sstats

from receval.config import RunConfig
from receval.errors import ConfigError
from receval.metrics.rules import parse_rule, split_rules
from receval.results.gate import config_fingerprint

METRICS = ["precision", "ndcg", "epc[none,none]", "eild[binary,exp]", "gini"]
NDCG = "ndcg[ndcg,log]@10"
PRECISION = "precision[binary,none]@10"
# The nightly rules of the "worse" run's own configuration (its gate: section).
NIGHTLY_RULES = ["ndcg@10: drop <= 0.005 at p < 0.05", "precision@10: drop <= 2% at p < 0.05",
                 "epc[none,none]@10: drop <= 0.01"]  # fmt: skip


def config(datasets: Path, algorithms: list, **extra) -> dict:
    return {
        "dataset": {"name": "ml-100k", "data_dir": str(datasets)},
        "algorithms": algorithms,
        "evaluation": {"cutoffs": [10], "metrics": METRICS},
        "shards": 1,
        **extra,
    }


HOME = Path(tempfile.mkdtemp(prefix="receval-gate-home-"))  # caches (matplotlib) stay out of the checkout


def receval(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(HOME), "MPLCONFIGDIR": str(HOME / "matplotlib")}
    return subprocess.run([sys.executable, "-m", "receval", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=cwd or HOME)  # fmt: skip


@pytest.fixture(scope="module")
def nightly(tmp_path_factory, datasets_dir: Path) -> Path:
    """Four complete runs, created in this order: base (POP), worse (RND labelled pop, same
    configuration otherwise), noise-a and noise-b (RND with two seeds, labelled rnd)."""
    root = tmp_path_factory.mktemp("gate")
    store = root / "store"
    runs = {
        "base": config(datasets_dir, ["pop"]),
        "worse": config(datasets_dir, [{"name": "rnd", "label": "pop"}], gate={"rules": NIGHTLY_RULES}),
        "noise-a": config(datasets_dir, [{"name": "rnd", "params": {"seed": 11}}]),
        "noise-b": config(datasets_dir, [{"name": "rnd", "params": {"seed": 12}}]),
    }
    for run_id, cfg in runs.items():
        path = root / f"{run_id}.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        done = receval("run", "--config", str(path), "--store", str(store), "--run-id", run_id, "--workers", "1",
                       "--format", "json", cwd=root)  # fmt: skip
        assert done.returncode == 0, done.stderr
    return store


def gate_json(store: Path, run_id: str) -> dict:
    folder = store / "runs" / run_id / "gate"
    assert (folder / "_SUCCESS").exists(), "gate.json is published with its marker"
    return json.loads((folder / "gate.json").read_text())


def per_user(store: Path, run_id: str, algorithm: str) -> pd.DataFrame:
    return pd.read_parquet(store / "runs" / run_id / "metrics" / algorithm / "per_user.parquet")


# -- grammar --------------------------------------------------------------------------------------


def test_the_issue_rule_forms_parse():
    rule = parse_rule("ndcg@10: drop <= 0.005 at p < 0.05")
    assert (rule.key.metric, rule.key.cutoff, rule.tolerance, rule.relative, rule.level) == ("ndcg", 10, 0.005, False, 0.05)
    rule = parse_rule("eild[binary,exp]@50: drop <= 2%")
    assert (rule.key.relevance, rule.key.discount, rule.key.cutoff) == ("binary", "exp", 50)
    assert rule.relative and rule.tolerance == 2 and rule.level is None
    assert rule.allowed_drop(0.5) == pytest.approx(0.01) and rule.direction_of("eild") == "higher"


def test_the_extended_grammar():
    rule = parse_rule("EPC[binary]@10: drop <= 1e-3 at p <= 0.01 for pop, ib lower is better")
    assert rule.key.metric == "epc" and rule.key.relevance == "binary" and rule.key.discount is None
    assert (rule.tolerance, rule.level, rule.algorithms, rule.direction) == (0.001, 0.01, ("pop", "ib"), "lower")
    assert split_rules(["a: drop <= 1; b: drop <= 2", "c: drop <= 3\nd: drop <= 4"]) == [
        "a: drop <= 1", "b: drop <= 2", "c: drop <= 3", "d: drop <= 4"]  # fmt: skip


@pytest.mark.parametrize(
    "text, message",
    [
        ("ndcg@10 drop <= 0.005", "expected KEY: drop <= TOLERANCE"),
        ("ndcg@10: rise <= 0.005", "expected KEY: drop <= TOLERANCE"),
        ("ndcg@: drop <= 0.005", "metric key 'ndcg@': expected NAME[RELEVANCE,DISCOUNT]@CUTOFF"),
        ("ndcg@10: drop <= 0.005 at p < 1.5", "the significance level must be between 0 and 1"),
        ("ndcg@10: drop <= 0.005 at p < 0.05 at p < 0.01", "is given twice"),
        ("ndcg@10: drop <= 0.005 soon", "cannot read 'soon'"),
    ],
)
def test_bad_rules_are_one_line_errors(text, message):
    with pytest.raises(ConfigError) as err:
        parse_rule(text)
    assert message in str(err.value) and str(err.value).startswith(f"--rule {text!r}") and "\n" not in str(err.value)


def test_a_config_gate_section_is_checked_when_loaded():
    with pytest.raises(ConfigError, match=r"'gate.rules': rule 'ndcg@10 drop 1': expected KEY: drop <="):
        RunConfig.from_mapping({"gate": {"rules": ["ndcg@10 drop 1"]}})
    cfg = RunConfig.from_mapping({"gate": {"rules": "ndcg@10: drop <= 0.005 at p < 0.05; eild[binary,exp]@50: drop <= 2%"}})
    assert cfg.gate is not None and len(cfg.gate.rules) == 2


def test_fingerprint_ignores_what_the_gate_compares_and_nothing_else():
    base = RunConfig.from_mapping({"algorithms": ["pop"], "shards": 2}).to_dict()
    same = RunConfig.from_mapping(
        {"algorithms": [{"name": "rnd", "label": "pop"}], "shards": 5, "gate": {"rules": ["ndcg@10: drop <= 1"]},
         "dataset": {"data_dir": "/elsewhere"}}
    ).to_dict()  # fmt: skip
    assert config_fingerprint(base) == config_fingerprint(same)
    night = {"dataset": {"name": "splits", "splits": {"train": "s3://x/2024-05-01/train", "test": "s3://x/2024-05-01/test"}}}
    next_night = {"dataset": {"name": "splits", "splits": {"train": "s3://x/2024-05-02/train", "test": "s3://x/2024-05-02/test"}}}
    assert config_fingerprint(night) == config_fingerprint(next_night) != config_fingerprint(base)
    for other in ({"evaluation": {"cutoffs": [5]}}, {"split": {"seed": 9}}, {"evaluation": {"threshold": 3.0}}):
        assert config_fingerprint(RunConfig.from_mapping({"algorithms": ["pop"], **other}).to_dict()) != config_fingerprint(base)


# -- the gate on real runs ------------------------------------------------------------------------


def test_a_worse_recommender_under_the_same_label_fails_the_gate_naming_pop(nightly: Path):
    # No --rule: the rules of the run's own configuration; --baseline previous (the default).
    done = receval("results", "gate", str(nightly), "worse")
    assert done.returncode == 3, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("receval: gate worse vs base: regression in 2 of 3 checks; worst: pop ")
    gate = gate_json(nightly, "worse")
    assert gate["status"] == "regression" and gate["baseline"] == "base" and gate["baseline_source"] == "previous"
    verdicts = {c["key"]: c["verdict"] for c in gate["checks"]}
    # RND is far less accurate than POP and far more novel: EPC improves, so its rule passes.
    assert verdicts == {NDCG: "regression", PRECISION: "regression", "epc[none,none]@10": "pass"}
    assert gate["worst"]["rule"] in last and gate["worst"]["algorithm"] == "pop"

    # Independently: per-user means, the paired t-test, Holm over the two checks with a level.
    a, b = per_user(nightly, "base", "pop").set_index("user"), per_user(nightly, "worse", "pop").set_index("user")
    shared = a.index.intersection(b.index)
    raw = {}
    for check in gate["checks"]:
        key = check["key"]
        assert check["users"] == len(shared)
        assert check["baseline"] == pytest.approx(a.loc[shared, key].mean(), abs=1e-12)
        assert check["tonight"] == pytest.approx(b.loc[shared, key].mean(), abs=1e-12)
        assert check["delta"] == pytest.approx(check["tonight"] - check["baseline"], abs=1e-12)
        assert check["ci_low"] <= check["delta"] <= check["ci_high"]
        raw[key] = sstats.ttest_rel(b.loc[shared, key], a.loc[shared, key]).pvalue
        assert check["p"] == pytest.approx(raw[key], rel=1e-9, abs=1e-300)
    by_key = {c["key"]: c for c in gate["checks"]}
    first, second = sorted((NDCG, PRECISION), key=lambda k: raw[k])  # Holm's step-down, m = 2
    assert by_key[first]["p_holm"] == pytest.approx(min(1, 2 * raw[first]), rel=1e-9, abs=1e-300)
    assert by_key[second]["p_holm"] == pytest.approx(max(min(1, 2 * raw[first]), raw[second]), rel=1e-9, abs=1e-300)
    assert by_key["epc[none,none]@10"]["p_holm"] is None  # no level: outside the Holm family
    # 2% of POP's precision is the allowed drop.
    assert by_key[PRECISION]["allowed"] == pytest.approx(0.02 * by_key[PRECISION]["baseline"], abs=1e-15)


def test_the_same_run_gated_against_itself_passes(nightly: Path):
    done = receval("results", "gate", str(nightly), "worse", "--baseline", "worse",
                   "--rule", "ndcg@10: drop <= 0.005 at p < 0.05", "--rule", "eild[binary,exp]@10: drop <= 2%",
                   "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    gate = json.loads(done.stdout)
    assert gate["status"] == "pass" and {c["verdict"] for c in gate["checks"]} == {"pass"}
    assert all(c["delta"] == 0 for c in gate["checks"])
    assert gate == gate_json(nightly, "worse")


def test_noise_passes_a_rule_with_a_level_and_fails_without_one(nightly: Path):
    """Two seeds of RND: some metric drops a little by chance. With zero tolerance and no level the
    gate would page; with a level the drop is not significant and the gate passes."""
    keys = [NDCG, PRECISION, "epc[none,none]@10", "eild[binary,exp]@10"]
    a, b = per_user(nightly, "noise-a", "rnd"), per_user(nightly, "noise-b", "rnd")
    drops = [k for k in keys if b[k].mean() < a[k].mean()]
    assert drops, "the seeds must give at least one chance drop for this test to mean something"
    strict = ["--rule", "; ".join(f"{k}: drop <= 0" for k in keys)]
    done = receval("results", "gate", str(nightly), "noise-b", *strict)
    assert done.returncode == 3, done.stderr
    assert gate_json(nightly, "noise-b")["baseline"] == "noise-a"  # previous: the newest comparable run before
    with_level = ["--rule", "; ".join(f"{k}: drop <= 0 at p < 0.05" for k in keys)]
    done = receval("results", "gate", str(nightly), "noise-b", *with_level, "--format", "json")
    assert done.returncode == 0, done.stderr
    verdicts = {c["key"]: c["verdict"] for c in json.loads(done.stdout)["checks"]}
    assert {verdicts[k] for k in drops} == {"not significant"}


def test_no_baseline_is_a_note_or_an_error(nightly: Path):
    done = receval("results", "gate", str(nightly), "base", "--rule", "ndcg@10: drop <= 0.005")
    assert done.returncode == 0 and "no baseline" in done.stderr.splitlines()[-1]
    assert gate_json(nightly, "base")["status"] == "no baseline"
    done = receval("results", "gate", str(nightly), "base", "--rule", "ndcg@10: drop <= 0.005", "--require-baseline")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("receval: error: gate base: no baseline") and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--rule", "ndcg@10 drop <= 1"], "--rule 'ndcg@10 drop <= 1': expected KEY: drop <="),
        (["--rule", "novelty@10: drop <= 1"], "run worse has no value novelty@10 for pop"),
        (["--rule", "ndcg@10: drop <= 1 for ib"], "run worse has no algorithm ib"),
        (["--rule", "epc@10: drop <= 1", "--baseline", "base"], None),  # unique: epc[none,none]@10 only
        (["--rule", "gini@10: drop <= 0.01 at p < 0.05"], "system metric without per-user values"),
        (["--rule", "ndcg@10: drop <= 1", "--baseline", "nope"], "run nope not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(nightly: Path, args, message):
    done = receval("results", "gate", str(nightly), "worse", *args)
    if message is None:
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("receval: error: ") and message in line


def test_system_metric_rules_compare_summary_values(nightly: Path):
    done = receval("results", "gate", str(nightly), "worse", "--baseline", "base", "--rule",
                   "gini@10: drop <= 0.01", "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr  # RND spreads exposure: Gini (1 − G) rises
    (check,) = json.loads(done.stdout)["checks"]
    summary = {(r["algorithm"], r["key"], r["run"]): r["value"] for run in ("base", "worse")
               for r in ({**x, "run": run} for x in json.loads((nightly / "runs" / run / "summary.json").read_text()))
               if r.get("kind") == "metric"}  # fmt: skip
    key = check["key"]
    assert check["baseline"] == summary[("pop", key, "base")] and check["tonight"] == summary[("pop", key, "worse")]
    assert check["verdict"] == "pass" and check["p"] is None and check["delta"] > 0


# -- export and report ----------------------------------------------------------------------------


def test_openmetrics_export_parses_with_prometheus_client(nightly: Path, tmp_path: Path):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    out = tmp_path / "textfile" / "receval.prom"
    done = receval("results", "export", str(nightly), "worse", "--format", "openmetrics", "--out", str(out))
    assert done.returncode == 0, done.stderr
    families = list(text_string_to_metric_families(out.read_text()))
    assert [(f.name, f.type) for f in families] == [("receval_metric", "gauge")]
    samples = families[0].samples
    records = [r for r in json.loads((nightly / "runs/worse/summary.json").read_text()) if r.get("kind") == "metric"]
    assert len(samples) == len(records)
    by_labels = {tuple(sorted(s.labels.items())): s.value for s in samples}
    for r in records:
        labels = {"dataset": "ml-100k", "algorithm": r["algorithm"], "metric": r["metric"], "cutoff": str(r["cutoff"]),
                  "relevance": r["relevance"], "discount": r["discount"]}  # fmt: skip
        value = by_labels[tuple(sorted(labels.items()))]
        assert value == r["value"] or (r["value"] is None and math.isnan(value))
    stdout = receval("results", "export", str(nightly), "worse", "--format", "openmetrics")
    assert stdout.returncode == 0 and stdout.stdout == out.read_text()
    bad = receval("results", "export", str(nightly), "worse", "--format", "csv")
    assert bad.returncode == 2 and "--format csv: expected one of openmetrics" in bad.stderr


def test_report_of_a_gated_run_shows_the_verdicts(nightly: Path, tmp_path: Path):
    done = receval("results", "gate", str(nightly), "worse")
    assert done.returncode == 3
    page = tmp_path / "report.html"
    done = receval("results", "report", str(nightly), "worse", "--out", str(page))
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert "<h2>Regression gate</h2>" in html and "vs baseline <code>base</code>" in html
    rows = html.split("class=gate-check")[1:]
    assert len(rows) == 3
    assert sum(">regression<" in r for r in rows) == 2 and sum(">pass<" in r for r in rows) == 1
    ungated = tmp_path / "ungated.html"
    assert receval("results", "report", str(nightly), "noise-a", "--out", str(ungated)).returncode == 0
    assert "Regression gate" not in ungated.read_text()


def test_severity_orders_the_worst_regression():
    from receval.results.gate import GateCheck, GateResult

    mild = GateCheck("r1", "pop", "a", "higher", "regression", drop=0.02, allowed=0.01)
    bad = GateCheck("r2", "ib", "b", "higher", "regression", drop=0.03, allowed=0.001)
    result = GateResult("t", "b", "given", "f", ("r1", "r2"), (mild, bad))
    assert result.worst() is bad and np.isinf(GateCheck("r", "a", "k", "higher", "regression", drop=0.1, allowed=0).severity)


# -- the nightly CronJob path ----------------------------------------------------------------------


def test_the_nightly_submission_carries_the_gate_rules(tmp_path: Path):
    """CronJob → `receval submit` (options from the receval-config ConfigMap) → Workflow parameter gate-rules."""
    from receval.cluster import manifests
    from tests import argo_dag

    configmap = manifests.load_document("k8s/base/configmap.yaml")["data"]
    defaults = {p["name"]: p.get("value") for p in manifests.workflow_template()["spec"]["arguments"]["parameters"]}
    assert configmap["RECEVAL_GATE_RULES"] == defaults["gate-rules"] == ""  # off unless set
    rules = "ndcg@10: drop <= 0.005 at p < 0.05; eild[binary,exp]@50: drop <= 2%"
    env = {**os.environ, "HOME": str(HOME), "RECEVAL_GATE_RULES": rules}
    done = subprocess.run([sys.executable, "-m", "receval", "submit", "--store", "s3://evals/x", "--run-id", "r1",
                           "--dry-run"], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (workflow,) = [d for d in yaml.safe_load_all(done.stdout) if d]
    parameters = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    assert parameters["gate-rules"] == rules
    steps = argo_dag.pipeline_steps(manifests.workflow_template(), parameters)
    assert steps[-1].argv[1:3] == ("results", "gate") and steps[-2].argv[1] == "aggregate"
    params = manifests.PipelineParameters(gate_rules=rules)
    assert manifests.configmap(params)["data"]["RECEVAL_GATE_RULES"] == rules
    (container,) = manifests.cronjob(manifests.NightlySchedule(), params)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert f"--gate-rules={rules}" in container["args"]
    # A bad rule fails at submission, not after a night of computing.
    bad = subprocess.run([sys.executable, "-m", "receval", "submit", "--store", "s3://evals/x", "--run-id", "r1",
                          "--dry-run", "--gate-rules", "ndcg@10 drop 1"], capture_output=True, text=True,
                         env={**env, "RECEVAL_GATE_RULES": ""}, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("receval: error: --gate-rules 'ndcg@10 drop 1': expected KEY")
