"""``receval run`` and the pipeline step commands: prepare, train, predict, aggregate, mark-failed.

The step commands are what the Argo templates run in their pods (``receval evaluate --store ...``
is the evaluate step; it lives with ``receval evaluate``). ``receval run`` runs every step on this
machine through the same step functions.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Optional

import typer

from receval.cli._common import console, err_console, split_csv

_STEP = "Step options"

STORE_HELP = "Where run folders live: a local folder or s3://bucket/prefix."
ENDPOINT_HELP = "S3 endpoint for s3:// stores (e.g. http://127.0.0.1:8333; default: AWS_ENDPOINT_URL)."
RUN_ID_HELP = "The run: its folder is STORE/runs/RUN_ID/."

RUN_HELP = """Run the whole pipeline on this machine: prepare → train → predict → evaluate → aggregate.

With no options it evaluates the seven recommenders of the paper's comparison and more (rnd pop avg ub ib cb mf)
on a built-in synthetic dataset, offline, in well under a minute, and prints the table algorithm × metric
at the largest cutoff: accuracy (precision, nDCG), novelty and diversity without and with relevance
(EPC, EPD, EILD under relevance none | binary), ILD, aggregate diversity and Gini.

Everything lands in STORE/runs/RUN_ID/ (docs/run-layout.md), exactly as an Argo run on a cluster. Rerunning
with the same --run-id resumes: finished steps are skipped.

[b]Examples[/b]

  receval run

  receval run --dataset ml-100k --data-dir /data/recsys --cutoffs 10,50 --shards 4

  receval run --config examples/lastfm.yaml --algorithms pop,ub,mf --format json

  receval run --config run.yaml --store s3://bucket/receval --endpoint-url http://127.0.0.1:8333
"""

# The compact table of `receval run`: (metric, relevance, discount, header); None matches any.
COMPACT_COLUMNS: tuple[tuple[str, str | None, str | None, str], ...] = (
    ("precision", None, None, "P"),
    ("ndcg", None, None, "nDCG"),
    ("epc", "none", "none", "EPC"),
    ("epc", "binary", "none", "EPC·rel"),
    ("epd", "none", "none", "EPD"),
    ("epd", "binary", "none", "EPD·rel"),
    ("eild", "none", "none", "EILD"),
    ("eild", "binary", "none", "EILD·rel"),
    ("ild", None, None, "ILD"),
    ("aggregate_diversity", "none", None, "AggDiv"),
    ("gini", None, None, "Gini"),
)


def register(app: typer.Typer) -> None:
    app.command("run", help=RUN_HELP)(run_command)
    app.command(
        "prepare", no_args_is_help=True,
        help=(
            "Pipeline step 1: load and split the dataset into STORE/runs/RUN_ID/dataset/ and write run.json.\n\n"
            "The configuration comes from --config (YAML/JSON, local or s3://), flags on top.\n\n"
            "[b]Examples[/b]\n\n  receval prepare --store s3://b/receval --run-id r1 --config s3://b/configs/ml-100k.yaml\n\n"
            "  receval prepare --store ./runs --run-id r1 --dataset ml-100k --data-dir /data/recsys"
        ),
    )(prepare_command)
    app.command(
        "train", no_args_is_help=True,
        help=("Pipeline step 2: fit one algorithm on the run's train set; saves it under models/ALGORITHM/.\n\n"
              "[b]Example[/b]\n\n  receval train --store ./runs --run-id r1 --algorithm mf"),
    )(train_command)
    app.command(
        "predict", no_args_is_help=True,
        help=("Pipeline step 3: recommend for the test users of shard I of N; writes "
              "recs/ALGORITHM/shard-IIIII-of-NNNNN.parquet (user, item, rank, score) and its .done marker.\n\n"
              "Step 4 is [b]receval evaluate --store ... --run-id ... --algorithm A --shard I/N[/b].\n\n"
              "[b]Example[/b]\n\n  receval predict --store ./runs --run-id r1 --algorithm mf --shard 0/4"),
    )(predict_command)
    app.command(
        "aggregate", no_args_is_help=True,
        help=("Pipeline step 5: merge every algorithm's shards (refusing a missing one, by name), write "
              "metrics/ALGORITHM/summary.json and the run's summary.json, mark the run complete.\n\n"
              "[b]Example[/b]\n\n  receval aggregate --store ./runs --run-id r1"),
    )(aggregate_command)
    app.command(
        "mark-failed", no_args_is_help=True,
        help=("Record in run.json that a run failed (the workflow's exit handler calls it).\n\n"
              "[b]Example[/b]\n\n  receval mark-failed --store ./runs --run-id r1 --reason 'node lost'"),
    )(mark_failed_command)


# ------------------------------------------------------------------------------------------------ helpers


def open_store_option(uri: str, endpoint_url: str | None):
    """Open ``--store`` (with ``--endpoint-url`` for S3)."""
    from receval.errors import ConfigError
    from receval.storage import open_store

    if endpoint_url and not uri.startswith("s3://"):
        raise ConfigError(f"--endpoint-url applies to s3:// stores only, not to {uri}")
    return open_store(uri, **({"endpoint_url": endpoint_url} if endpoint_url else {}))


def _store_options(endpoint_url: str | None) -> dict[str, Any]:
    return {"endpoint_url": endpoint_url} if endpoint_url else {}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (not at creation)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("receval: %(message)s"))

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _log_steps() -> None:
    """Step commands log one line per stage (and per predict batch) on stderr: the pod's log."""
    logger = logging.getLogger("receval.pipeline")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def parse_cutoffs(values: list[str] | None) -> list[int] | None:
    from receval.errors import ConfigError

    texts = split_csv(values)
    if not texts:
        return None
    try:
        return [int(t) for t in texts]
    except ValueError:
        bad = next(t for t in texts if not t.lstrip("-").isdigit())
        raise ConfigError(f"--cutoffs {bad!r}: expected whole numbers, e.g. --cutoffs 10,50") from None


# ------------------------------------------------------------------------------------------------ steps


def prepare_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    run_id: str = typer.Option(..., "--run-id", help=RUN_ID_HELP),
    config: Optional[str] = typer.Option(None, "--config", help="Run configuration, YAML or JSON: a path or s3:// URI.", show_default=False),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (overrides the configuration).", show_default=False),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the datasets (default: $RECEVAL_DATA or ~/.cache/receval).", show_default=False),
    cutoffs: Optional[list[str]] = typer.Option(None, "--cutoffs", envvar="RECEVAL_CUTOFFS", help="Cutoffs, e.g. 10,50 (overrides the configuration).", show_default=False),
    force: bool = typer.Option(False, "--force", help="Prepare again even if the dataset is published."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=False),
) -> None:
    from receval.config import flag_overrides, load_config
    from receval.pipeline import steps

    _log_steps()
    overrides = flag_overrides(dataset=dataset, data_dir=data_dir, cutoffs=parse_cutoffs(cutoffs))
    cfg = load_config(config or None, overrides, **_store_options(endpoint_url))
    steps.prepare_step(open_store_option(store, endpoint_url), run_id, cfg, force=force)


def train_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    run_id: str = typer.Option(..., "--run-id", help=RUN_ID_HELP),
    algorithm: str = typer.Option(..., "--algorithm", help="Algorithm label of the run's configuration (rnd, pop, avg, ub, ib, cb, mf...)."),
    force: bool = typer.Option(False, "--force", help="Train again even if the model is saved."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=False),
) -> None:
    from receval.pipeline import steps

    _log_steps()
    steps.train_step(open_store_option(store, endpoint_url), run_id, algorithm, force=force)


def predict_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    run_id: str = typer.Option(..., "--run-id", help=RUN_ID_HELP),
    algorithm: str = typer.Option(..., "--algorithm", help="Algorithm label."),
    shard: str = typer.Option(..., "--shard", help="Shard I/N (0-based), e.g. 3/8."),
    force: bool = typer.Option(False, "--force", help="Predict again even if the shard is done."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=False),
) -> None:
    from receval.metrics.sharding import Shard
    from receval.pipeline import steps

    _log_steps()
    part = Shard.parse(shard)
    steps.predict_step(open_store_option(store, endpoint_url), run_id, algorithm, part, force=force)


def aggregate_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    run_id: str = typer.Option(..., "--run-id", help=RUN_ID_HELP),
    force: bool = typer.Option(False, "--force", help="Aggregate again even if the run is complete."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=False),
) -> None:
    from receval.pipeline import steps

    _log_steps()
    steps.aggregate_step(open_store_option(store, endpoint_url), run_id, force=force)


def mark_failed_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    run_id: str = typer.Option(..., "--run-id", help=RUN_ID_HELP),
    reason: str = typer.Option("", "--reason", help="Why the run failed (recorded in run.json)."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=False),
) -> None:
    from receval.pipeline import steps

    _log_steps()
    steps.mark_failed_step(open_store_option(store, endpoint_url), run_id, reason)


# ------------------------------------------------------------------------------------------------ run


def run_command(
    config: Optional[str] = typer.Option(None, "--config", help="Run configuration, YAML or JSON (path or s3:// URI).", show_default=False),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset: synthetic (default), ml-100k, ml-latest-small, ml-1m, ..., lastfm-2k.", show_default=False),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the datasets (default: $RECEVAL_DATA or ~/.cache/receval).", show_default=False),
    algorithms: Optional[list[str]] = typer.Option(None, "--algorithms", help="Algorithms, comma-separated (default: rnd,pop,avg,ub,ib,cb,mf).", show_default=False),
    cutoffs: Optional[list[str]] = typer.Option(None, "--cutoffs", help="Cutoffs, comma-separated (default: 10,50).", show_default=False),
    shards: Optional[int] = typer.Option(None, "--shards", help="User shards of predict and evaluate (default: 4).", show_default=False),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: the number of CPUs; 1 = no process pool).", show_default=False),
    store: str = typer.Option("./receval-runs", "--store", help=STORE_HELP),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Run id (default: YYYYMMDD-HHMMSS-DATASET, UTC); an existing one resumes.", show_default=False),
    output_format: str = typer.Option("table", "--format", help="What to print: table (compact) or json (every record)."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=False),
) -> None:
    from receval.config import flag_overrides, load_config
    from receval.errors import ConfigError
    from receval.pipeline.local import run_local

    if output_format not in ("table", "json"):
        raise ConfigError(f"--format {output_format!r}: choose table or json")
    if endpoint_url and not store.startswith("s3://"):
        raise ConfigError(f"--endpoint-url applies to s3:// stores only, not to {store}")
    overrides = flag_overrides(dataset=dataset, data_dir=data_dir, algorithms=split_csv(algorithms) or None,
                               cutoffs=parse_cutoffs(cutoffs), shards=shards)
    cfg = load_config(config, overrides, **_store_options(endpoint_url))
    result = run_local(cfg, store, run_id=run_id, workers=workers, progress=True,
                       store_options=_store_options(endpoint_url))
    if output_format == "json":
        typer.echo(json.dumps(result.records, indent=2))
        return
    cutoff = max(cfg.evaluation.cutoffs)
    table = compact_table(result.records, cutoff, cfg.labels, title=_title(cfg, cutoff))
    # piped into a file or a CI log: no terminal width to respect, never elide a number
    out = console
    if not console.is_terminal:
        from rich.console import Console

        out = Console(highlight=False, width=240)
    out.print(table)
    from receval.pipeline import layout

    where = f"{result.store_uri.rstrip('/')}/{layout.summary_key(result.run_id)}"
    err_console.print(f"run {result.run_id}: {result.seconds:.1f}s; every value in {where}")


def _title(cfg: Any, cutoff: int) -> str:
    return (f"receval run — {cfg.dataset.name}, @{cutoff}, {cfg.shards} shards; "
            f"·rel = binary relevance (rating ≥ {cfg.evaluation.threshold:g})")


def pick(records: list[dict[str, Any]], algorithm: str, metric: str, cutoff: int,
         relevance: str | None = None, discount: str | None = None) -> float | None:
    """The value of one metric record of ``algorithm`` (None when it was not computed)."""
    for r in records:
        if (r.get("kind", "metric") == "metric" and r.get("algorithm") == algorithm and r["metric"] == metric
                and r.get("cutoff") == cutoff and relevance in (None, r.get("relevance"))
                and discount in (None, r.get("discount"))):
            return r["value"]
    return None


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    if float(value).is_integer() and abs(value) >= 1:  # counts (aggregate diversity)
        return f"{value:.0f}"
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"


def compact_table(records: list[dict[str, Any]], cutoff: int, algorithms: list[str], title: str | None = None):
    """A rich table: one row per algorithm, the :data:`COMPACT_COLUMNS` at ``cutoff``."""
    from rich.table import Table

    from rich import box

    table = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("algorithm")
    columns = [c for c in COMPACT_COLUMNS
               if any(pick(records, a, c[0], cutoff, c[1], c[2]) is not None for a in algorithms)]
    for *_, header in columns:
        table.add_column(header, justify="right")
    for algo in algorithms:
        values = [pick(records, algo, m, cutoff, rel, disc) for m, rel, disc, _ in columns]
        table.add_row(algo, *(_number(v) for v in values))
    return table
