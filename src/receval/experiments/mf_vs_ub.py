"""Finding 3 under the microscope: what moves the relevance-aware comparison of MF and UB.

The paper finds MF ahead of UB relevance-aware on explicit MovieLens and UB ahead on implicit
Last.fm. This experiment looks at the candidates for why a reproduction may differ, without
choosing anything by the finding itself:

* **parameters chosen on validation data** — MF's factors, regularisation, confidence slope and
  feedback model, and UB's neighbourhood size, each picked by :func:`receval.experiments.tune.tune`
  (validation nDCG@50 on a holdout of the train set, the paper's threshold; the test set is not read);
* **dataset size** — the same protocol on every dataset given (ml-100k, ml-latest-small, ml-1m when
  present, Last.fm);
* **sensitivity** — a few fixed settings around the chosen ones (fewer or more factors, explicit
  ALS, small and large neighbourhoods), reported as they come out, never selected from.

Each dataset is one ordinary pipeline run with all these variants as labelled algorithms, so every
variant sees the same split and metrics as the paper experiment (cutoff 50, τ = 3, graded
relevance). Every (MF variant, UB variant) pair is judged by the same code as finding 3 of the
paper experiment (:func:`receval.experiments.findings.finding3`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from receval.config import RunConfig
from receval.experiments.findings import RunValues, Verdict, finding3
from receval.experiments.paper import CUTOFF, METRICS, THRESHOLD

DATASETS = ("ml-100k", "ml-latest-small", "lastfm-2k")
# implicit ALS; alpha below 1 matters for raw play counts (Last.fm), whose confidence 1 + α·c is huge
MF_GRID = {"factors": [5, 10, 20, 50, 100], "reg": [0.01, 1.0, 10.0, 50.0], "alpha": [0.1, 1.0]}
MF_EXPLICIT_GRID = {"feedback": ["explicit"], "factors": [10, 50], "reg": [0.05, 0.1, 0.5]}
UB_GRID = {"neighbours": [10, 25, 50, 100, 200, 400]}
GRIDS = {"mf": MF_GRID, "mf-explicit": MF_EXPLICIT_GRID, "ub": UB_GRID}


def _config(dataset: str, data_dir: str | None, algorithms: list[Any], shards: int = 2) -> RunConfig:
    specs = [f"{m}[{r},none]" for m in METRICS for r in ("none", "graded")] + ["ndcg", "precision"]
    return RunConfig.from_mapping({
        "dataset": {"name": dataset, "data_dir": data_dir},
        "algorithms": algorithms,
        "evaluation": {"cutoffs": [CUTOFF], "threshold": THRESHOLD, "metrics": specs},
        "shards": shards,
        "seed": 0,
    }, source=f"mf-vs-ub experiment ({dataset})")


@dataclass
class DatasetStudy:
    dataset: str
    implicit: bool
    run_id: str
    seconds: float
    tuning: dict[str, Any]
    variants: dict[str, dict[str, Any]]  # label -> {"name", "params", "why"}
    records: list[dict[str, Any]] = field(repr=False)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records([r for r in self.records if r.get("kind", "metric") == "metric"])

    def pair(self, mf: str, ub: str) -> Verdict:
        """Finding 3 judged on one MF variant against one UB variant of this run."""
        frame = self.frame()
        frame = frame[frame["algorithm"].isin((mf, ub))].replace({"algorithm": {mf: "mf", ub: "ub"}})
        return finding3(RunValues.from_frame(frame, CUTOFF, self.implicit), self.dataset)

    def value(self, label: str, metric: str, relevance: str = "graded") -> float:
        frame = self.frame()
        part = frame[(frame["algorithm"] == label) & (frame["metric"] == metric)]
        if metric in METRICS:
            part = part[(part["relevance"] == relevance) & (part["discount"] == "none")]
        return float(part["value"].iloc[0]) if len(part) else float("nan")


def _variants(tuned_mf: dict[str, Any], tuned_explicit: dict[str, Any], tuned_ub: dict[str, Any]
              ) -> dict[str, dict[str, Any]]:
    out = {
        "mf": {"name": "mf", "params": {}, "why": "defaults"},
        "ub": {"name": "ub", "params": {}, "why": "defaults"},
        "mf-tuned": {"name": "mf", "params": tuned_mf, "why": "implicit ALS chosen by validation nDCG"},
        "mf-explicit": {"name": "mf", "params": tuned_explicit, "why": "explicit ALS chosen by validation nDCG"},
        "ub-tuned": {"name": "ub", "params": tuned_ub, "why": "neighbours chosen by validation nDCG"},
    }
    for factors in (10, 100):
        if tuned_mf.get("factors") != factors:
            out[f"mf-f{factors}"] = {"name": "mf", "params": {**tuned_mf, "factors": factors},
                                     "why": f"chosen MF with {factors} factors (sensitivity)"}
    for k in (10, 400):
        if tuned_ub.get("neighbours") != k:
            out[f"ub-k{k}"] = {"name": "ub", "params": {"neighbours": k}, "why": f"UB with {k} neighbours (sensitivity)"}
    return out


def study(dataset: str, data_dir: str | None, store: str, workers: int | None = None,
          progress: Callable[[str, int, int], None] | None = None, grids: dict[str, dict[str, list[Any]]] | None = None) -> DatasetStudy:
    """Tune on validation, then run every variant through the pipeline on the test split.

    ``grids`` replaces the grids by variant (``mf``, ``mf-explicit``, ``ub``); default :data:`GRIDS`.
    """
    from receval.experiments.tune import tune
    from receval.pipeline.local import run_local
    from receval.pipeline.steps import read_run
    from receval.storage import open_store

    base = _config(dataset, data_dir, ["mf", "ub"])
    tuning: dict[str, Any] = {}
    grids = {**GRIDS, **(grids or {})}
    for name, label in (("mf", "mf"), ("mf", "mf-explicit"), ("ub", "ub")):
        result = tune(base, name, grids[label], cutoff=CUTOFF)
        tuning[label] = result.to_dict()
    drop_seed = lambda params: {k: v for k, v in params.items() if k != "seed"}  # noqa: E731 - the run sets it
    variants = _variants(drop_seed(tuning["mf"]["chosen_params"]), drop_seed(tuning["mf-explicit"]["chosen_params"]),
                         drop_seed(tuning["ub"]["chosen_params"]))
    algorithms = [{"name": v["name"], "label": label, "params": v["params"]} for label, v in variants.items()]
    config = _config(dataset, data_dir, algorithms)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run = run_local(config, store, run_id=f"mf-vs-ub-{dataset}-{stamp}", workers=workers, progress=progress)
    implicit = bool(read_run(open_store(store), run.run_id)["dataset"].get("implicit", False))
    return DatasetStudy(dataset, implicit, run.run_id, run.seconds, tuning, variants, run.records)


PAIRS = (
    ("mf", "ub", "both at their defaults"),
    ("mf-tuned", "ub-tuned", "both chosen by validation nDCG"),
    ("mf-tuned", "ub", "tuned MF against default UB"),
    ("mf-explicit", "ub-tuned", "explicit ALS (tuned) against tuned UB"),
    ("mf-f10", "ub-tuned", "10 factors"),
    ("mf-f100", "ub-tuned", "100 factors"),
    ("mf-tuned", "ub-k10", "UB with 10 neighbours"),
    ("mf-tuned", "ub-k400", "UB with 400 neighbours"),
)


def _params(variant: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in variant["params"].items()) or "defaults"


def table(studies: list[DatasetStudy]) -> str:
    """One row per (dataset, MF variant, UB variant): relevance-aware values, nDCG, finding-3 claim."""
    head = ("| dataset | setting | MF | UB | EPC aware MF / UB | EPD aware MF / UB | EILD aware MF / UB "
            "| nDCG@50 MF / UB | leader (aware, 3 metrics) | paper's direction |")
    lines = [head, "|---" * 10 + "|"]
    for s in studies:
        for mf, ub, what in PAIRS:
            if mf not in s.variants or ub not in s.variants:
                continue
            cells = [f"{s.value(mf, m):.4f} / {s.value(ub, m):.4f}" for m in METRICS]
            ndcg = f"{s.value(mf, 'ndcg'):.4f} / {s.value(ub, 'ndcg'):.4f}"
            mf_ahead = sum(s.value(mf, m) > s.value(ub, m) for m in METRICS)
            leader = "MF" if mf_ahead == 3 else "UB" if mf_ahead == 0 else f"split (MF on {mf_ahead}/3)"
            lines.append(f"| {s.dataset} | {what} | {_params(s.variants[mf])} | {_params(s.variants[ub])} | "
                         + " | ".join(cells) + f" | {ndcg} | {leader} | {s.pair(mf, ub).claims[0].status} |")
    return "\n".join(lines)


def tuning_table(studies: list[DatasetStudy]) -> str:
    lines = ["| dataset | grid | points | chosen | validation nDCG@50 chosen / defaults |", "|---" * 5 + "|"]
    for s in studies:
        for label, t in s.tuning.items():
            chosen = ", ".join(f"{k}={v}" for k, v in t["best"].items())
            lines.append(f"| {s.dataset} | {label} | {len(t['grid'])} | {chosen} | "
                         f"{t['best_value']:.4f} / {t['default_value']:.4f} |")
    return "\n".join(lines)


def run_study(datasets: tuple[str, ...], data_dir: str | None, store: str, out: Path,
              workers: int | None = None, grids: dict[str, dict[str, list[Any]]] | None = None) -> list[DatasetStudy]:
    out.mkdir(parents=True, exist_ok=True)
    studies = []
    for dataset in datasets:
        studies.append(study(dataset, data_dir, store, workers=workers, grids=grids))
    text = ["# MF against UB (finding 3)\n", "## Validation tuning\n", tuning_table(studies), "",
            "## Relevance-aware comparison on the test split\n", table(studies), ""]
    (out / "mf-vs-ub.md").write_text("\n".join(text))
    (out / "mf-vs-ub.json").write_text(json.dumps(
        [{"dataset": s.dataset, "implicit": s.implicit, "run_id": s.run_id, "seconds": s.seconds,
          "tuning": s.tuning, "variants": s.variants, "records": s.records} for s in studies],
        indent=1, default=str))
    return studies
