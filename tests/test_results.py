"""``receval results``: runs, summaries, paired statistics, tables, report and trend on real run folders.

The run folders are written by :func:`write_run` below through the real LocalStore, following
``docs/run-layout.md`` and the summary contract; expected statistics are computed here directly with
numpy/scipy on the same arrays, or by hand.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from receval.cli import main
from receval.errors import ConfigError, InputError, StoreError
from receval.results import read, report, stats as rstats, tables
from receval.storage import join, open_store

KEY = re.compile(r"^(\w+)\[(\w+),(\w+)\]@(\d+)$")


# -- test helper: a run folder that follows the contract ----------------------------------------


def write_run(
    root: Path,
    run_id: str,
    *,
    created: str,
    per_user: dict[str, pd.DataFrame],
    status: str = "complete",
    marker: bool = True,
    complete_algorithms: set[str] | None = None,
    system: dict[str, dict[str, float]] | None = None,
    extra_records: list[dict] | None = None,
    data_quality: dict | None = None,
    failure: str | None = None,
    dataset: str = "ml-100k",
) -> None:
    """Write ``runs/<run_id>/`` with run.json, per-algorithm metrics folders and the run summary.

    Summary values are the means of the per-user columns (how the pipeline reports them); ``system``
    adds system-level records (not per user). ``complete_algorithms`` limits which algorithms'
    metrics folders get their marker; ``marker`` controls the run-level marker.
    """
    store = open_store(str(root))
    prefix = join("runs", run_id)
    cutoffs = sorted({int(KEY.match(c).group(4)) for f in per_user.values() for c in f.columns if c != "user"})
    store.write_json(
        join(prefix, "run.json"),
        {
            "run_id": run_id,
            "created": created,
            "finished": created if status == "complete" else None,
            "status": status,
            "dataset": {"name": dataset},
            "algorithms": list(per_user),
            "cutoffs": cutoffs,
            "shards": 2,
            "versions": {"receval": "0.1.0"},
            "config": {},
            "failure": failure,
        },
    )
    everything = []
    for algorithm, frame in per_user.items():
        records = []
        for column in frame.columns:
            if column == "user":
                continue
            metric, relevance, discount, cutoff = KEY.match(column).groups()
            records.append(
                {
                    "algorithm": algorithm,
                    "metric": metric,
                    "cutoff": int(cutoff),
                    "relevance": relevance,
                    "discount": discount,
                    "value": float(frame[column].mean()),
                    "users": len(frame),
                    "threshold": 4,
                    "exp_base": 0.85,
                }
            )
        for metric, value in (system or {}).get(algorithm, {}).items():
            records.append(
                {"algorithm": algorithm, "metric": metric, "cutoff": cutoffs[-1], "relevance": "none",
                 "discount": "none", "value": value, "users": len(frame)}
            )  # fmt: skip
        records += [dict(r, algorithm=algorithm) for r in (extra_records or [])]
        everything += records
        folder = join(prefix, "metrics", algorithm)
        buf_records = {"records": records, "data_quality": data_quality} if data_quality else records
        store.write_parquet(join(folder, "per_user.parquet"), frame)
        store.write_json(join(folder, "summary.json"), buf_records)
        if complete_algorithms is None or algorithm in complete_algorithms:
            store.write_json(join(folder, "_SUCCESS"), {})
    store.write_json(join(prefix, "summary.json"), everything)
    if marker:
        store.write_json(join(prefix, "_SUCCESS"), {})


def per_user_frame(users, **columns) -> pd.DataFrame:
    return pd.DataFrame({"user": users, **columns})


def random_side(rng: np.random.Generator, users, shift: float = 0.0) -> pd.DataFrame:
    n = len(users)
    base = rng.uniform(0, 1, n)
    return per_user_frame(
        users,
        **{
            "precision[binary,none]@10": np.round(rng.uniform(0, 1, n), 1),
            "epc[none,none]@10": base,
            "epc[binary,exp]@10": np.clip(base * 0.5 + shift + rng.normal(0, 0.05, n), 0, 1),
            "eild[binary,exp]@5": rng.uniform(0, 1, n),
        },
    )


@pytest.fixture(scope="module")
def store_root(tmp_path_factory) -> Path:
    """Four runs: two complete nightly runs, one still running (newest), one failed."""
    root = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(7)
    users = list(range(1, 41))
    write_run(
        root, "2024-05-01-nightly", created="2024-05-01T02:00:00Z",
        per_user={"pop": random_side(rng, users), "ibknn": random_side(rng, users, shift=0.1)},
        system={"pop": {"gini": 0.1, "aggregate_diversity": 25.0}, "ibknn": {"gini": 0.4, "aggregate_diversity": 180.0}},
        extra_records=[
            {"metric": "alpha_ndcg", "cutoff": 10, "relevance": "binary", "discount": "log", "alpha": 0.5, "value": 0.3, "users": 40},
            {"metric": "alpha_ndcg", "cutoff": 10, "relevance": "binary", "discount": "log", "alpha": 0.25, "value": 0.2, "users": 40},
        ],
        data_quality={"users_without_list": 3, "items_without_features": 12},
    )  # fmt: skip
    write_run(
        root, "2024-05-02-nightly", created="2024-05-02T02:00:00Z",
        per_user={"pop": random_side(rng, users), "ibknn": random_side(rng, users, shift=0.1)},
    )  # fmt: skip
    write_run(
        root, "2024-05-03-nightly", created="2024-05-03T02:00:00+00:00", status="running", marker=False,
        per_user={"pop": random_side(rng, users), "ibknn": random_side(rng, users)}, complete_algorithms={"pop"},
    )  # fmt: skip
    write_run(
        root, "2024-04-30-broken", created="2024-04-30T02:00:00Z", status="failed", marker=False,
        per_user={"pop": random_side(rng, users)}, complete_algorithms=set(), failure="shard 3/8 OOMKilled",
    )  # fmt: skip
    return root


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the real console entry point; return (exit code, stdout, stderr)."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def per_user_of(root: Path, run_id: str, algorithm: str) -> pd.DataFrame:
    return pd.read_parquet(root / "runs" / run_id / "metrics" / algorithm / "per_user.parquet")


# -- read ----------------------------------------------------------------------------------------


def test_list_runs_newest_first_with_statuses(store_root):
    runs = read.list_runs(open_store(str(store_root)))
    assert [r.run_id for r in runs] == ["2024-05-03-nightly", "2024-05-02-nightly", "2024-05-01-nightly", "2024-04-30-broken"]
    assert [r.status for r in runs] == ["partial", "complete", "complete", "failed"]
    assert runs[1].dataset == "ml-100k" and runs[1].algorithms == ("pop", "ibknn") and runs[1].cutoffs == (5, 10)
    assert runs[3].failure == "shard 3/8 OOMKilled"


def test_list_runs_filters(store_root):
    store = open_store(str(store_root))
    since = read.parse_date_option("2024-05-01", option="--since")
    until = read.parse_date_option("2024-05-02", option="--until", end_of_day=True)
    assert [r.run_id for r in read.list_runs(store, since=since, until=until)] == ["2024-05-02-nightly", "2024-05-01-nightly"]
    assert [r.run_id for r in read.list_runs(store, status="failed,partial")] == ["2024-05-03-nightly", "2024-04-30-broken"]
    with pytest.raises(ConfigError, match="status done"):
        read.list_runs(store, status="done")
    with pytest.raises(ConfigError, match="--since"):
        read.parse_date_option("yesterday", option="--since")


def test_complete_status_without_marker_is_partial(tmp_path):
    # run.json claims complete but the marker was never written (crash between the two writes).
    write_run(tmp_path, "r1", created="2024-01-01T00:00:00Z", per_user={"a": random_side(np.random.default_rng(0), [1, 2])}, marker=False)
    store = open_store(str(tmp_path))
    assert read.read_run_info(store, "r1").status == "partial"
    with pytest.raises(StoreError, match="r1 .* is partial"):
        read.load_summary(store, "r1")


def test_latest_is_newest_complete_and_missing_run_error(store_root):
    store = open_store(str(store_root))
    assert read.resolve_run(store, "latest") == "2024-05-02-nightly"
    with pytest.raises(StoreError) as info:
        read.resolve_run(store, "nope")
    assert str(info.value) == f"run nope not found in {store_root}; `receval results list {store_root}` shows the runs"


def test_load_summary_and_per_user(store_root):
    store = open_store(str(store_root))
    summary = read.load_summary(store, "2024-05-01-nightly")
    frame = per_user_of(store_root, "2024-05-01-nightly", "ibknn")
    row = summary[(summary.algorithm == "ibknn") & (summary.key == "epc[binary,exp]@10")]
    assert row["value"].item() == pytest.approx(frame["epc[binary,exp]@10"].mean())
    assert {"threshold", "exp_base", "alpha"} <= set(summary.columns)
    pd.testing.assert_frame_equal(read.load_per_user(store, "2024-05-01-nightly", "ibknn"), frame)
    with pytest.raises(StoreError, match="no per-user values of algorithm 'svd'.*algorithms: ibknn, pop"):
        read.load_per_user(store, "2024-05-01-nightly", "svd")


def test_partial_run_shows_only_completed_algorithms(store_root):
    store = open_store(str(store_root))
    summary = read.load_summary(store, "2024-05-03-nightly", allow_partial=True)
    assert set(summary["algorithm"]) == {"pop"}
    with pytest.raises(StoreError, match="not complete"):
        read.load_per_user(store, "2024-05-03-nightly", "ibknn")


def test_bad_summary_is_one_line_input_error(tmp_path):
    write_run(tmp_path, "r1", created="2024-01-01T00:00:00Z", per_user={"a": random_side(np.random.default_rng(0), [1, 2])})
    (tmp_path / "runs/r1/summary.json").write_text(json.dumps([{"algorithm": "a", "metric": "epc", "value": "high"}]))
    with pytest.raises(InputError, match=r"runs/r1/summary.json: record 1 has a non-numeric value 'high'"):
        read.load_summary(open_store(str(tmp_path)), "r1")


def test_metric_key_selectors():
    assert read.MetricKey.parse("epc[binary,exp]@10") == read.MetricKey("epc", "binary", "exp", 10)
    assert read.MetricKey.parse("ndcg@10") == read.MetricKey("ndcg", None, None, 10)
    columns = ["user", "epc[none,none]@10", "epc[binary,exp]@10", "eild[binary,exp]@5"]
    assert read.match_metric_columns(columns, ["epc"]) == ["epc[none,none]@10", "epc[binary,exp]@10"]
    assert read.match_metric_columns(columns, ["eild@5", "epc[binary,exp]@10"]) == ["eild[binary,exp]@5", "epc[binary,exp]@10"]
    with pytest.raises(ConfigError, match="ndcg matches no per-user column"):
        read.match_metric_columns(columns, ["ndcg"])


# -- stats ---------------------------------------------------------------------------------------


def test_holm_hand_example():
    # p = (0.01, 0.04, 0.03, 0.005), m = 4. Ascending: 0.005, 0.01, 0.03, 0.04
    # scaled by (m - j + 1): 0.02, 0.03, 0.06, 0.04; running max: 0.02, 0.03, 0.06, 0.06.
    np.testing.assert_allclose(rstats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # NaN is outside the family (m = 2): 0.2 * 2 = 0.4, max(0.4, 0.6 * 1) = 0.6.
    np.testing.assert_allclose(rstats.holm([np.nan, 0.2, 0.6]), [np.nan, 0.4, 0.6])
    # capped at 1: 0.5 * 2 = 1.0; then max(1.0, 0.9) = 1.0.
    np.testing.assert_allclose(rstats.holm([0.9, 0.5]), [1.0, 1.0])


def test_paired_comparison_matches_scipy():
    rng = np.random.default_rng(3)
    n = 60
    users = np.arange(n)
    a = per_user_frame(users, m1=rng.normal(0.5, 0.1, n), m2=rng.uniform(0, 1, n))
    b = per_user_frame(users[::-1], m1=np.zeros(n), m2=np.zeros(n))  # users in another order: matched by id
    b["m1"] = a["m1"].to_numpy()[::-1] + rng.normal(0.03, 0.05, n)
    b["m2"] = a["m2"].to_numpy()[::-1] + rng.normal(0.0, 0.2, n)
    result = rstats.compare_per_user(a, b, label_a="a", label_b="b")
    assert not result.user_sets_differ and result.users_shared == n
    p_t, p_w = [], []
    for metric, row in zip(["m1", "m2"], result.metrics):
        va = a.set_index("user")[metric].sort_index().to_numpy()
        vb = b.set_index("user")[metric].sort_index().to_numpy()
        t = stats.ttest_rel(vb, va)
        w = stats.wilcoxon(vb, va, zero_method="pratt")
        d = vb - va
        assert row.delta == pytest.approx(d.mean())
        assert row.mean_a == pytest.approx(va.mean()) and row.mean_b == pytest.approx(vb.mean())
        assert (row.t_statistic, row.t_pvalue) == pytest.approx((t.statistic, t.pvalue))
        assert (row.wilcoxon_statistic, row.wilcoxon_pvalue) == pytest.approx((w.statistic, w.pvalue))
        assert row.cohen_dz == pytest.approx(d.mean() / d.std(ddof=1))
        p_t.append(t.pvalue)
        p_w.append(w.pvalue)
    # Holm with two tests: the smaller p doubles, the larger is max(its own, the doubled smaller).
    lo, hi = sorted(p_t)
    expected = {lo: min(1, 2 * lo), hi: min(1, max(2 * lo, hi))}
    assert [r.t_pvalue_holm for r in result.metrics] == pytest.approx([expected[p] for p in p_t])
    lo, hi = sorted(p_w)
    expected = {lo: min(1, 2 * lo), hi: min(1, max(2 * lo, hi))}
    assert [r.wilcoxon_pvalue_holm for r in result.metrics] == pytest.approx([expected[p] for p in p_w])


def test_bootstrap_ci_agrees_with_normal_theory_and_is_seeded():
    rng = np.random.default_rng(11)
    d = rng.normal(0.2, 1.0, 400)
    low, high = rstats.bootstrap_ci(d, n_boot=4000, seed=5)
    # The mean of 400 draws is close to normal: d̄ ± 1.96 s/√n. Percentile bootstrap error is a few %.
    half = 1.959964 * d.std(ddof=1) / np.sqrt(d.size)
    assert low == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(d.mean() + half, abs=0.1 * half)
    assert rstats.bootstrap_ci(d, n_boot=4000, seed=5) == (low, high)
    assert rstats.bootstrap_ci(d, n_boot=4000, seed=6) != (low, high)


def test_bootstrap_in_blocks_equals_one_matrix(monkeypatch):
    # The block size only bounds memory: drawing the B × n matrix in row blocks from one generator
    # consumes the same random stream as drawing it at once.
    d = np.random.default_rng(1).normal(size=50)
    whole = rstats.bootstrap_ci(d, n_boot=300, seed=2)
    monkeypatch.setattr(rstats, "_BOOTSTRAP_BLOCK", 50 * 7)
    assert rstats.bootstrap_ci(d, n_boot=300, seed=2) == pytest.approx(whole)


def test_all_zero_and_constant_differences():
    a = per_user_frame([1, 2, 3, 4], m=[0.1, 0.2, 0.3, 0.4])
    row = rstats.compare_per_user(a, a.copy()).metrics[0]
    assert (row.delta, row.t_pvalue, row.wilcoxon_pvalue, row.cohen_dz, row.ci_low, row.ci_high) == (0, 1, 1, 0, 0, 0)
    a = per_user_frame([1, 2, 3, 4], m=[0.25, 0.5, 0.75, 1.0])  # binary fractions: +0.5 is exact
    shifted = a.assign(m=a["m"] + 0.5)
    row = rstats.compare_per_user(a, shifted).metrics[0]
    assert row.delta == pytest.approx(0.5) and row.cohen_dz == np.inf and row.t_pvalue == 0.0


def test_users_matched_by_id_and_differences_reported():
    a = per_user_frame([1, 2, 3, 4, 5], m=[0.1, 0.2, 0.3, 0.4, 0.5])
    b = per_user_frame(["3", "4", "5", "6"], m=[0.5, 0.3, 0.9, 0.0])  # "3" is user 3
    result = rstats.compare_per_user(a, b, label_a="pop", label_b="knn")
    assert (result.users_a, result.users_b, result.users_shared) == (5, 4, 3)
    assert result.user_sets_differ
    assert result.note() == "the user sets differ: pop has 5 users, knn has 4, 3 are shared; only the shared users are compared"
    # shared users 3, 4, 5: deltas 0.2, -0.1, 0.4
    assert result.metrics[0].delta == pytest.approx((0.2 - 0.1 + 0.4) / 3)
    with pytest.raises(InputError, match="no user in common"):
        rstats.compare_per_user(a, per_user_frame([9], m=[1.0]))


# -- tables --------------------------------------------------------------------------------------


def test_wide_tables_disambiguate_parameters(store_root):
    summary = read.load_summary(open_store(str(store_root)), "2024-05-01-nightly")
    wide = tables.wide_tables(summary)
    assert set(wide) == {5, 10}
    columns = list(wide[10].columns)
    assert "alpha_ndcg[binary,log] alpha=0.5" in columns and "alpha_ndcg[binary,log] alpha=0.25" in columns
    assert columns.index("precision[binary,none]") < columns.index("epc[none,none]") < columns.index("gini[none,none]")
    assert wide[10].loc["ibknn", "gini[none,none]"] == 0.4
    assert list(wide[10].index) == ["pop", "ibknn"]


# -- CLI -----------------------------------------------------------------------------------------


def test_cli_list(store_root, capsys):
    code, out, err = cli(capsys, "results", "list", str(store_root), "--format", "json")
    assert code == 0, err
    runs = json.loads(out)
    assert [(r["run_id"], r["status"]) for r in runs][:2] == [("2024-05-03-nightly", "partial"), ("2024-05-02-nightly", "complete")]
    code, out, _ = cli(capsys, "results", "list", str(store_root), "--status", "complete", "--since", "2024-05-02")
    assert code == 0 and "2024-05-02-nightly" in out and "2024-05-01-nightly" not in out and "ml-100k" in out


def test_cli_show_formats(store_root, capsys):
    frame = per_user_of(store_root, "2024-05-02-nightly", "pop")
    code, out, err = cli(capsys, "results", "show", str(store_root), "latest", "--format", "json", "--metric", "epc", "--cutoff", "10")
    assert code == 0, err
    records = json.loads(out)
    assert {r["key"] for r in records} == {"epc[none,none]@10", "epc[binary,exp]@10"}
    pop = {r["key"]: r["value"] for r in records if r["algorithm"] == "pop"}
    assert pop["epc[binary,exp]@10"] == pytest.approx(frame["epc[binary,exp]@10"].mean())

    code, out, _ = cli(capsys, "results", "show", str(store_root), "2024-05-02-nightly", "--format", "csv", "--algorithm", "pop")
    csv = pd.read_csv(__import__("io").StringIO(out))
    assert code == 0 and set(csv["algorithm"]) == {"pop"} and len(csv) == 4

    code, out, _ = cli(capsys, "results", "show", str(store_root), "2024-05-02-nightly", "--format", "markdown", "--digits", "3")
    assert code == 0 and "### @10" in out and f"| pop | {frame['precision[binary,none]@10'].mean():.3f} |" in out

    code, out, _ = cli(capsys, "results", "show", str(store_root), "2024-05-02-nightly", "--cutoff", "5")
    assert code == 0 and "eild[binary,exp]" in out and f"{frame['eild[binary,exp]@5'].mean():.4f}" in out


def test_cli_show_partial_run_notes_it(store_root, capsys):
    code, out, err = cli(capsys, "results", "show", str(store_root), "2024-05-03-nightly", "--format", "json")
    assert code == 0
    assert {r["algorithm"] for r in json.loads(out)} == {"pop"}
    assert "run 2024-05-03-nightly is partial; showing the completed algorithms only: pop" in err
    code, _, err = cli(capsys, "results", "show", str(store_root), "2024-04-30-broken")
    assert code == 2 and err.count("\n") == 1 and "is failed and no algorithm's metrics are complete" in err


def test_cli_errors_are_one_line_exit_2(store_root, capsys):
    cases = [
        (["results", "show", str(store_root), "nope"], f"run nope not found in {store_root}"),
        (["results", "show", str(store_root), "latest", "--format", "xml"], "--format xml: expected one of"),
        (["results", "show", str(store_root), "latest", "--cutoff", "7"], "--cutoff 7: no record at this cutoff"),
        (["results", "show", str(store_root), "latest", "--algorithm", "svd"], "--algorithm: svd not in this run"),
        (["results", "list", str(store_root / "missing")], "no such folder"),
        (["results", "list", str(store_root), "--endpoint-url", "http://x"], "--endpoint-url applies to s3:// stores only"),
        (["results", "compare", str(store_root), "latest"], None),  # two algorithms: fine, see below
        (["results", "trend", str(store_root), "--metric", "epc"], "matches several definitions"),
        (["results", "trend", str(store_root), "--metric", "ndcg@10"], "no complete run"),
    ]
    for argv, message in cases:
        code, out, err = cli(capsys, *argv)
        if message is None:
            assert code == 0, err
            continue
        assert code == 2, (argv, out, err)
        assert err.startswith("receval: error: ") and err.count("\n") == 1 and message in err, err


def test_cli_compare_two_algorithms_matches_scipy(store_root, capsys):
    code, out, err = cli(
        capsys, "results", "compare", str(store_root), "2024-05-01-nightly",
        "--algorithm", "pop,ibknn", "--metric", "epc[binary,exp]@10,eild", "--format", "json", "--bootstrap", "500",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["users_shared"] == 40 and result["user_sets_differ"] is False
    a = per_user_of(store_root, "2024-05-01-nightly", "pop")
    b = per_user_of(store_root, "2024-05-01-nightly", "ibknn")
    got = {m["metric"]: m for m in result["metrics"]}
    assert list(got) == ["epc[binary,exp]@10", "eild[binary,exp]@5"]
    pvalues = []
    for key, m in got.items():
        t = stats.ttest_rel(b[key], a[key])
        assert m["delta"] == pytest.approx((b[key] - a[key]).mean())
        assert m["t_pvalue"] == pytest.approx(t.pvalue)
        assert m["ci_low"] <= m["delta"] <= m["ci_high"]
        pvalues.append(t.pvalue)
    assert [m["t_pvalue_holm"] for m in got.values()] == pytest.approx(list(rstats.holm(pvalues)))
    code, out, _ = cli(capsys, "results", "compare", str(store_root), "2024-05-01-nightly", "--algorithm", "pop,ibknn", "--bootstrap", "200")
    assert code == 0 and "ibknn vs pop" in out and "Holm" in out


def test_cli_compare_one_algorithm_in_two_runs(store_root, tmp_path, capsys):
    code, out, err = cli(
        capsys, "results", "compare", str(store_root), "2024-05-01-nightly", "2024-05-02-nightly",
        "--format", "json", "--metric", "precision", "--bootstrap", "200",
    )  # fmt: skip
    assert code == 0, err
    both = json.loads(out)
    assert [c["a"] for c in both] == ["pop@2024-05-01-nightly", "ibknn@2024-05-01-nightly"]
    old = per_user_of(store_root, "2024-05-01-nightly", "pop")["precision[binary,none]@10"]
    new = per_user_of(store_root, "2024-05-02-nightly", "pop")["precision[binary,none]@10"]
    assert both[0]["metrics"][0]["delta"] == pytest.approx((new - old).mean())

    # Different user sets are said plainly, on stderr for the table.
    rng = np.random.default_rng(2)
    write_run(tmp_path, "x", created="2024-01-01T00:00:00Z", per_user={"a": random_side(rng, range(10))})
    write_run(tmp_path, "y", created="2024-01-02T00:00:00Z", per_user={"a": random_side(rng, range(5, 20))})
    code, out, err = cli(capsys, "results", "compare", str(tmp_path), "x", "y", "--bootstrap", "100")
    assert code == 0
    assert "the user sets differ: a@x has 10 users, a@y has 15, 5 are shared" in err


def test_cli_report_html_and_png(store_root, tmp_path, capsys):
    out_html = tmp_path / "r" / "report.html"
    code, out, err = cli(capsys, "results", "report", str(store_root), "2024-05-01-nightly", "--out", str(out_html), "--png", str(tmp_path / "png"))
    assert code == 0, err
    page = out_html.read_text()
    # a row per metric definition and cutoff: @10 precision, epc×2, alpha_ndcg×2, aggregate diversity, gini; @5 eild
    assert page.count('class="metric-row"') == 8
    assert page.count('<th class="algorithm">') == 4  # pop and ibknn in both tables
    assert page.count("data:image/png;base64,") == 2  # novelty/diversity bars + discount curves
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "Data quality" in page and "items_without_features" in page
    import matplotlib.image as mpimg

    for name in ("novelty_diversity.png", "discounts.png"):
        image = mpimg.imread(tmp_path / "png" / name)
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0


def test_charts_leave_a_notebooks_pyplot_backend_and_figures_alone(store_root, tmp_path):
    """A notebook user with their own backend and an open figure renders the report's charts."""
    probe = f"""
import json, matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
mine = plt.figure()
from receval.results import report
from receval.results.read import load_summary, read_run_info
from receval.storage import open_store
store = open_store({str(store_root)!r})
run = read_run_info(store, "2024-05-01-nightly")
charts = report.render_charts(load_summary(store, run.run_id), run=run)
trend = report.trend_figure(__import__("pandas").DataFrame({{"run_id": ["a", "b"], "created": [None, None],
                                                            "algorithm": ["pop", "pop"], "value": [0.1, 0.2]}}), "t")
print(json.dumps({{"backend": matplotlib.get_backend(), "figures": plt.get_fignums(),
                  "charts": sorted(charts), "png": all(c[:4] == b"\\x89PNG" for c in charts.values())}}))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["backend"] == "svg" and seen["figures"] == [1]  # the user's backend, only the user's figure
    assert seen["charts"] == ["discounts.png", "novelty_diversity.png"] and seen["png"]


def test_discount_curves_by_hand():
    k = np.array([1, 2, 3])
    np.testing.assert_allclose(report.discount_curve("log", k), [1, 1 / np.log2(3), 0.5])
    np.testing.assert_allclose(report.discount_curve("exp", k), [1, 0.85, 0.7225])
    np.testing.assert_allclose(report.discount_curve("reciprocal", k), [1, 0.5, 1 / 3])
    np.testing.assert_allclose(report.discount_curve("none", k), [1, 1, 1])


def test_cli_trend(store_root, tmp_path, capsys):
    png = tmp_path / "trend.png"
    code, out, err = cli(
        capsys, "results", "trend", str(store_root), "--metric", "epc[binary,exp]@10", "--algorithm", "ibknn",
        "--format", "json", "--png", str(png),
    )  # fmt: skip
    assert code == 0, err
    points = json.loads(out)
    # Complete runs only, oldest first; the running and failed runs are left out.
    assert [p["run_id"] for p in points] == ["2024-05-01-nightly", "2024-05-02-nightly"]
    expected = [per_user_of(store_root, r, "ibknn")["epc[binary,exp]@10"].mean() for r in ("2024-05-01-nightly", "2024-05-02-nightly")]
    assert [p["value"] for p in points] == pytest.approx(expected)
    assert png.stat().st_size > 1000
    code, out, _ = cli(capsys, "results", "trend", str(store_root), "--metric", "eild@5")
    assert code == 0 and "2024-05-01 02:00" in out and "pop" in out and "ibknn" in out


def test_every_command_help_has_an_example(capsys):
    for command in ("list", "show", "compare", "report", "trend"):
        code, out, _ = cli(capsys, "results", command, "--help")
        assert code == 0 and "Example:" in out and "receval results " + command in out


def test_cli_on_an_s3_store(store_root, rclone_server, monkeypatch, capsys):
    """The same commands on s3://bucket/prefix through a real S3 server (rclone serve s3 on 127.0.0.1)."""
    bucket = rclone_server.make_bucket()
    s3 = open_store(f"s3://{bucket}/nightly", **rclone_server.store_options())
    local = open_store(str(store_root))
    for key in local.list("runs"):
        s3.write_bytes(key, local.read_bytes(key))
    for name, value in rclone_server.env().items():
        if name != "AWS_ENDPOINT_URL":  # the endpoint comes from --endpoint-url
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    uri, endpoint = f"s3://{bucket}/nightly", rclone_server.endpoint_url
    code, out, err = cli(capsys, "results", "list", uri, "--endpoint-url", endpoint, "--format", "json")
    assert code == 0, err
    assert [(r["run_id"], r["status"]) for r in json.loads(out)] == [
        ("2024-05-03-nightly", "partial"), ("2024-05-02-nightly", "complete"),
        ("2024-05-01-nightly", "complete"), ("2024-04-30-broken", "failed"),
    ]  # fmt: skip
    code, out, err = cli(capsys, "results", "show", uri, "latest", "--endpoint-url", endpoint, "--format", "json", "--metric", "eild")
    assert code == 0, err
    frame = per_user_of(store_root, "2024-05-02-nightly", "ibknn")
    assert {r["algorithm"]: r["value"] for r in json.loads(out)}["ibknn"] == pytest.approx(frame["eild[binary,exp]@5"].mean())
    code, _, err = cli(capsys, "results", "show", uri, "nope", "--endpoint-url", endpoint)
    assert code == 2 and f"run nope not found in s3://{bucket}/nightly" in err


def test_trend_never_mixes_datasets_silently(tmp_path, capsys):
    rng = np.random.default_rng(3)
    users = list(range(1, 21))
    for run_id, created, dataset in (("a-ml", "2024-05-01T02:00:00Z", "ml-100k"), ("b-lastfm", "2024-05-02T02:00:00Z", "lastfm-2k"),
                                     ("c-ml", "2024-05-03T02:00:00Z", "ml-100k")):
        write_run(tmp_path, run_id, created=created, per_user={"pop": random_side(rng, users)}, dataset=dataset)
    code, _, err = cli(capsys, "results", "trend", str(tmp_path), "--metric", "eild@5")
    assert code == 2 and "on 2 datasets (ml-100k, lastfm-2k)" in err and "--dataset" in err
    code, out, err = cli(capsys, "results", "trend", str(tmp_path), "--metric", "eild@5", "--dataset", "ml-100k", "--format", "json")
    assert code == 0, err
    points = json.loads(out)
    assert [(p["run_id"], p["dataset"]) for p in points] == [("a-ml", "ml-100k"), ("c-ml", "ml-100k")]
    assert [p["value"] for p in points] == pytest.approx([per_user_of(tmp_path, r, "pop")["eild[binary,exp]@5"].mean() for r in ("a-ml", "c-ml")])
    code, out, _ = cli(capsys, "results", "trend", str(tmp_path), "--metric", "eild@5", "--dataset", "lastfm-2k")
    assert code == 0 and "dataset" in out and "lastfm-2k" in out and "b-lastfm" in out and "a-ml" not in out
    code, _, err = cli(capsys, "results", "trend", str(tmp_path), "--metric", "eild@5", "--dataset", "ml-1m")
    assert code == 2 and "--dataset ml-1m" in err


def test_trend_figure_labels_runs_and_keeps_the_legend_off_the_lines():
    from receval.results.report import trend_figure

    trend = pd.DataFrame({
        "run_id": ["n1", "n1", "n2", "n2", "n3", "n3"],
        "created": pd.to_datetime(["2024-05-01T02:00Z"] * 2 + ["2024-05-02T02:00Z"] * 2 + ["2024-05-03T02:00Z"] * 2),
        "dataset": ["ml-100k"] * 6, "algorithm": ["pop", "ib"] * 3, "key": ["epc"] * 6,
        "value": [0.1, 0.2, 0.15, 0.25, 0.12, 0.3],
    })  # fmt: skip
    fig = trend_figure(trend, "epc")
    fig.canvas.draw()
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["n1\n2024-05-01", "n2\n2024-05-02", "n3\n2024-05-03"]
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    plot_area = ax.get_window_extent(renderer)
    assert legend.x0 >= plot_area.x1  # right of the axes: it covers no line
    assert legend.x1 <= fig.bbox.x1  # and is inside the picture
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ib", "pop"]


def test_markdown_escapes_pipes_and_markup_in_names(tmp_path, capsys):
    rng = np.random.default_rng(5)
    write_run(tmp_path, "odd", created="2024-05-01T02:00:00Z",
              per_user={"a|b": random_side(rng, range(5)), "<b>x</b>": random_side(rng, range(5))})
    code, out, err = cli(capsys, "results", "show", str(tmp_path), "odd", "--format", "markdown", "--cutoff", "5")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| a\\|b | ") and rows[2].startswith("| &lt;b&gt;x&lt;/b&gt; | ")
    # every row has as many cells as the header (an unescaped | would add one)
    import re

    cells = [len(re.split(r"(?<!\\)\|", line)) for line in rows]
    assert len(set(cells)) == 1 and "<b>" not in out
