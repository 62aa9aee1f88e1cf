"""Reproduce Vargas & Castells (RecSys 2011): Figure 2 and Table 5 as receval runs.

The paper evaluates MF, CB, UB, AVG and RND at top-50 with EPC, EPD and EILD, relevance-unaware
(p(rel) = 1) and relevance-aware, and (Table 5) re-ranks the MF lists with diversification methods,
reporting the metrics with no rank discount and with disc(k) = 0.85^(k−1). Here each dataset is one
ordinary pipeline run (prepare → train → predict → evaluate → aggregate, sharded) with:

* algorithms ``mf, cb, ub, avg, rnd`` and the re-rankers ``mmr, xquad, iaselect`` over MF, all with
  their ordinary defaults (docs/recommenders.md);
* cutoff 50; relevance ``none`` and the paper's graded model ``graded``; discounts ``none`` and
  ``exp`` (b = 0.85); threshold τ = 3, so that under the graded model (p = 0 at r = τ) 4- and
  5-star ratings are relevant, p = 1/4 and 3/4 — the same items the usual binary τ = 4 calls relevant.

The report holds, per dataset, Figure 2 (one panel per metric; relevance-unaware row above the
relevance-aware row) and Table 5 (MF and its re-rankings × metric × discount). It opens with the
paper's five findings judged on the runs' values (:mod:`receval.experiments.findings`), and it compares
each re-ranker with MF per user (paired t-test, Wilcoxon, Holm, bootstrap interval:
:mod:`receval.results.stats`). NGD, the fourth re-ranker of the paper's Table 5, is absent: no
reachable source defines it (docs/paper-reproduction.md).
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from receval._version import __version__
from receval.config import RunConfig
from receval.experiments.findings import RunValues, Verdict, compare_with_mf, judge
from receval.results.stats import Comparison

BASELINES = ("mf", "cb", "ub", "avg", "rnd")
RERANKERS = ("mmr", "xquad", "iaselect")
METRICS = ("epc", "epd", "eild")
RELEVANCE = ("none", "graded")
DISCOUNTS = ("none", "exp")
CUTOFF = 50
THRESHOLD = 3.0
DATASETS = ("ml-100k", "lastfm-2k")
LABELS = {"mf": "MF", "cb": "CB", "ub": "UB", "avg": "AVG", "rnd": "RND",
          "mmr": "MF+MMR", "xquad": "MF+xQuAD", "iaselect": "MF+IA-Select"}


def paper_config(dataset: str, data_dir: str | None, shards: int = 4, seed: int = 0) -> RunConfig:
    """The run configuration of one dataset of the experiment."""
    specs = [f"{m}[{r},{d}]" for m in METRICS for r in RELEVANCE for d in DISCOUNTS]
    specs += ["precision", "ndcg"]
    algorithms: list[Any] = list(BASELINES) + [{"name": r, "params": {"base": "mf"}} for r in RERANKERS]
    return RunConfig.from_mapping(
        {
            "dataset": {"name": dataset, "data_dir": data_dir},
            "algorithms": algorithms,
            "evaluation": {"cutoffs": [CUTOFF], "threshold": THRESHOLD, "metrics": specs},
            "shards": shards,
            "seed": seed,
        },
        source=f"paper experiment ({dataset})",
    )


@dataclass
class DatasetResult:
    """One dataset's run: its summary records, whether its data is implicit feedback (from the run's
    ``run.json``), and the paired per-user comparisons of each re-ranker against MF."""

    dataset: str
    run_id: str
    seconds: float
    records: list[dict[str, Any]]
    implicit: bool = False
    significance: dict[str, Comparison] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        rows = [r for r in self.records if r.get("kind", "metric") == "metric"]
        return pd.DataFrame.from_records(rows)

    def verdicts(self) -> list[Verdict]:
        """The paper's findings judged on this run's values (:mod:`receval.experiments.findings`)."""
        values = RunValues.from_frame(self.frame(), CUTOFF, self.implicit, self.significance)
        return judge(values, self.dataset, RERANKERS)


def run_experiment(
    data_dir: str | None,
    store: str,
    out: Path,
    datasets: tuple[str, ...] = DATASETS,
    shards: int = 4,
    workers: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    store_options: dict[str, Any] | None = None,
) -> list[DatasetResult]:
    """Run every dataset through the pipeline and write the report into ``out``.

    ``progress`` is handed to each run (:data:`receval.pipeline.local.ProgressCallback`).
    """
    from receval.pipeline.local import run_local
    from receval.pipeline.steps import read_run
    from receval.results.read import load_per_user
    from receval.storage import open_store

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    opened = open_store(store, **(store_options or {}))
    results = []
    for dataset in datasets:
        config = paper_config(dataset, data_dir, shards=shards)
        run = run_local(config, store, run_id=f"paper-{dataset}-{stamp}", workers=workers, progress=progress,
                        store_options=store_options)
        implicit = bool(read_run(opened, run.run_id)["dataset"].get("implicit", False))
        per_user = {a: load_per_user(opened, run.run_id, a) for a in ("mf",) + RERANKERS}
        significance = compare_with_mf(per_user, CUTOFF, RERANKERS)
        results.append(DatasetResult(dataset, run.run_id, run.seconds, run.records, implicit, significance))
    write_report(results, out)
    return results


# -------------------------------------------------------------------------------------------- tables


def figure2_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Baselines × (metric, relevance) at no discount: the numbers behind Figure 2."""
    part = frame[frame["algorithm"].isin(BASELINES) & frame["metric"].isin(METRICS) & (frame["discount"] == "none")]
    table = part.pivot_table(index="algorithm", columns=["metric", "relevance"], values="value", aggfunc="first")
    table = table.reindex(index=[a for a in BASELINES if a in set(part["algorithm"])])
    return table.reindex(columns=[(m, r) for m in METRICS for r in RELEVANCE if (m, r) in table.columns])


def table5(frame: pd.DataFrame) -> pd.DataFrame:
    """MF and its re-rankings × (metric, relevance, discount): the paper's Table 5."""
    algos = ("mf",) + RERANKERS
    part = frame[frame["algorithm"].isin(algos) & frame["metric"].isin(METRICS)]
    table = part.pivot_table(index="algorithm", columns=["metric", "relevance", "discount"], values="value", aggfunc="first")
    table = table.reindex(index=[a for a in algos if a in set(part["algorithm"])])
    cols = [(m, r, d) for m in METRICS for r in RELEVANCE for d in DISCOUNTS if (m, r, d) in table.columns]
    return table.reindex(columns=cols)


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    part = frame[frame["metric"].isin(("precision", "ndcg"))]
    return part.pivot_table(index="algorithm", columns="metric", values="value", aggfunc="first")


def markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A pipe table: one header row naming the column tuple with '/' ."""
    cols = [" / ".join(str(x) for x in (c if isinstance(c, tuple) else (c,))) for c in table.columns]
    lines = ["| algorithm | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for algo, row in table.iterrows():
        cells = ["n/a" if pd.isna(v) else f"{v:.{digits}f}" for v in row.to_numpy()]
        lines.append(f"| {LABELS.get(algo, algo)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def findings_rows(results: list[DatasetResult]) -> list[list[str]]:
    """One row per finding: number, statement, then per dataset "status: evidence"."""
    verdicts = [r.verdicts() for r in results]
    rows = []
    for i, first in enumerate(verdicts[0] if verdicts else []):
        cells = [f"**{v[i].status}**: {v[i].evidence()}" for v in verdicts]
        rows.append([str(first.finding), first.title, *cells])
    return rows


def findings_markdown(results: list[DatasetResult]) -> str:
    head = ["#", "finding (as the paper reports it)"] + [r.dataset for r in results]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in findings_rows(results)]
    return "\n".join(lines)


def significance_table(result: DatasetResult) -> pd.DataFrame:
    """Re-ranker minus MF per relevance-aware key: mean Δ, bootstrap CI, Holm-corrected p-values."""
    rows = []
    for reranker, comparison in result.significance.items():
        for m in comparison.metrics:
            rows.append({"algorithm": reranker, "key": m.metric, "delta": m.delta, "ci_low": m.ci_low,
                         "ci_high": m.ci_high, "t_p_holm": m.t_pvalue_holm, "wilcoxon_p_holm": m.wilcoxon_pvalue_holm})
    return pd.DataFrame(rows)


def significance_markdown(table: pd.DataFrame) -> str:
    lines = ["| re-ranker − MF | key | Δ | 95% CI | paired t p (Holm) | Wilcoxon p (Holm) |", "|---" * 6 + "|"]
    for r in table.itertuples(index=False):
        lines.append(f"| {LABELS.get(r.algorithm, r.algorithm)} | {r.key} | {r.delta:+.4f} | "
                     f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}] | {r.t_p_holm:.2g} | {r.wilcoxon_p_holm:.2g} |")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- figures


def figure2(frame: pd.DataFrame, dataset: str):
    """One panel per metric; relevance-unaware row above relevance-aware row; bars per algorithm,
    one shade per discount."""
    import numpy as np

    from receval.results.report import agg_figure

    algos = [a for a in BASELINES if a in set(frame["algorithm"])]
    fig = agg_figure(figsize=(12, 6))
    axes = fig.subplots(2, len(METRICS), squeeze=False)
    colors = {"none": "#4c72b0", "exp": "#dd8452"}
    x = np.arange(len(algos))
    for r, rel in enumerate(RELEVANCE):
        for c, metric in enumerate(METRICS):
            ax = axes[r][c]
            for j, disc in enumerate(DISCOUNTS):
                part = frame[(frame["metric"] == metric) & (frame["relevance"] == rel) & (frame["discount"] == disc)]
                values = part.set_index("algorithm")["value"].reindex(algos).to_numpy(dtype=float)
                ax.bar(x + (j - 0.5) * 0.38, values, 0.38, color=colors[disc],
                       label="no discount" if disc == "none" else "disc(k) = 0.85^(k-1)")
            ax.set_xticks(x, [LABELS[a] for a in algos])
            ax.set_title(f"{metric.upper()}@{CUTOFF}" + ("" if rel == "none" else " (relevance-aware)"), fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
            if c == 0:
                ax.set_ylabel("p(rel) = 1" if rel == "none" else "graded p(rel|i,u)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(f"{dataset}: novelty and diversity of the recommenders (cf. Vargas & Castells 2011, Fig. 2)",
                 y=0.99, fontsize=11)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.945), ncol=2, frameon=False)
    fig.subplots_adjust(left=0.07, right=0.99, top=0.85, bottom=0.07, wspace=0.28, hspace=0.35)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def write_report(results: list[DatasetResult], out: Path) -> Path:
    """``out/report.html`` (self-contained), ``figure2-<dataset>.png``, ``tables.md``, ``results.json``."""
    out.mkdir(parents=True, exist_ok=True)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>receval: Vargas &amp; Castells 2011 reproduced</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th{background:#f3f3f3}td:first-child{text-align:left}table.findings td{text-align:left;vertical-align:top}img{max-width:100%}</style></head><body>",
        "<h1>Rank and Relevance in Novelty and Diversity Metrics — reproduced with receval</h1>",
        f"<p>receval {html.escape(__version__)}; cutoff {CUTOFF}; threshold τ = {THRESHOLD:g}; "
        "relevance-aware = the paper's graded model; discount exp = 0.85^(k−1).</p>",
    ]
    md = [f"# Paper reproduction tables (receval {__version__})\n",
          "## Findings, judged on these runs\n", findings_markdown(results), ""]
    head = "".join(f"<th>{html.escape(r.dataset)}</th>" for r in results)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c).replace('**', '')}</td>" for c in row) + "</tr>"
                   for row in findings_rows(results))
    parts += ["<h2>Findings, judged on these runs</h2>",
              f"<table class='findings'><tr><th>#</th><th>finding</th>{head}</tr>{body}</table>"]
    for res in results:
        frame = res.frame()
        png = _png(figure2(frame, res.dataset))
        (out / f"figure2-{res.dataset}.png").write_bytes(png)
        fig_t, t5, acc = figure2_table(frame), table5(frame), accuracy_table(frame)
        parts += [
            f"<h2>{html.escape(res.dataset)} <small>(run {html.escape(res.run_id)}, {res.seconds:.0f} s)</small></h2>",
            f"<img alt='Figure 2 for {html.escape(res.dataset)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>",
            "<h3>Figure 2 values (no discount)</h3>", _html_table(fig_t),
            "<h3>Table 5: MF re-ranked</h3>", _html_table(t5),
            "<h3>Accuracy (for context)</h3>", _html_table(acc),
        ]
        sig = significance_table(res)
        if not sig.empty:
            parts += ["<h3>Re-rankers against MF, per user (relevance-aware)</h3>",
                      "<pre>" + html.escape(significance_markdown(sig)) + "</pre>"]
        md += [f"## {res.dataset} (run `{res.run_id}`, {res.seconds:.0f} s)\n",
               "### Figure 2 values (no discount)\n", markdown(fig_t), "",
               "### Table 5: MF re-ranked\n", markdown(t5), "",
               "### Accuracy\n", markdown(acc), ""]
        sig = significance_table(res)
        if not sig.empty:
            md += ["### Re-rankers against MF, per user (relevance-aware, paired)\n", significance_markdown(sig), ""]
    parts.append("</body></html>")
    (out / "report.html").write_text("\n".join(parts))
    (out / "tables.md").write_text("\n".join(md) + "\n")
    (out / "results.json").write_text(json.dumps(
        [{"dataset": r.dataset, "run_id": r.run_id, "seconds": r.seconds, "implicit": r.implicit,
          "records": r.records, "significance": {k: c.to_dict() for k, c in r.significance.items()},
          "findings": [v.to_dict() for v in r.verdicts()]} for r in results],
        indent=1, default=str))
    return out / "report.html"


def _html_table(table: pd.DataFrame) -> str:
    cols = [" / ".join(str(x) for x in (c if isinstance(c, tuple) else (c,))) for c in table.columns]
    head = "<tr><th>algorithm</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
    body = "".join(
        f"<tr><td>{html.escape(LABELS.get(a, a))}</td>" + "".join(
            "<td>n/a</td>" if pd.isna(v) else f"<td>{v:.4f}</td>" for v in row.to_numpy()) + "</tr>"
        for a, row in table.iterrows()
    )
    return f"<table>{head}{body}</table>"
