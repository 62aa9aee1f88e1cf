"""``receval run`` and the pipeline step commands: prepare, train, predict, aggregate, mark-failed.

The step commands are what the Argo templates run in their pods (``receval evaluate --store ...``
is the evaluate step; it lives with ``receval evaluate``). ``receval run`` runs every step on this
machine through the same step functions.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from receval.cli._common import (
    algorithm_option, cutoff_option, err_console, fit_tables, flag, int_list, log_line, out_console, output_width,
    pipeline_log_lines, print_tables, speaks_flags, split_list, stderr_is_terminal, step_bars,
)
from receval.metrics.options import BY_NAME

_STEP = "Step options"
RUN_CUTOFFS = BY_NAME["cutoffs"].default_of_a_run  # what the configuration defaults to (receval.config)

STORE_HELP = "Where run folders live: a local folder or s3://bucket/prefix."
ENDPOINT_HELP = "S3 endpoint for s3:// stores, e.g. http://127.0.0.1:8333."
ENDPOINT_DEFAULT = "$AWS_ENDPOINT_URL"
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

  receval run --dataset ml-100k --data-dir /data/recsys --cutoff 10,50 --shards 4

  receval run --config examples/lastfm.yaml --algorithm pop,ub,mf --format json

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
    ("gini", None, None, "Gini(1−G)"),
)


def register(app: typer.Typer) -> None:
    app.command("run", help=RUN_HELP)(speaks_flags(run_command))
    app.command(
        "prepare", no_args_is_help=True,
        help=(
            "Pipeline step 1: load and split the dataset into STORE/runs/RUN_ID/dataset/ and write run.json: "
            "train and test bucketed by user shard, and the small global statistics every shard shares.\n\n"
            "The configuration comes from --config (YAML/JSON, local or s3://), flags on top.\n\n"
            "A dataset of pre-split part files (dataset.name: splits) can be prepared by P pods: "
            "[b]--part I/P[/b] reads every P-th part file, then [b]--finish[/b] merges the parts and publishes "
            "the dataset.\n\n"
            "[b]Examples[/b]\n\n  receval prepare --store s3://b/receval --run-id r1 --config s3://b/configs/ml-100k.yaml\n\n"
            "  receval prepare --store ./runs --run-id r1 --dataset ml-100k --data-dir /data/recsys\n\n"
            "  receval prepare --store s3://b/receval --run-id r2 --config s3://b/configs/export.yaml --part 3/8   "
            "(8 pods, then: ... --finish)"
        ),
    )(speaks_flags(prepare_command, flags={"shard": "--part"}))
    app.command(
        "train", no_args_is_help=True,
        help=("Pipeline step 2: fit one algorithm on the run's train set; saves it under models/ALGORITHM/.\n\n"
              "[b]Example[/b]\n\n  receval train --store ./runs --run-id r1 --algorithm mf"),
    )(speaks_flags(train_command))
    app.command(
        "predict", no_args_is_help=True,
        help=("Pipeline step 3: recommend for the test users of shard I of N; writes "
              "recs/ALGORITHM/shard-IIIII-of-NNNNN.parquet (user, item, rank, score) and its .done marker.\n\n"
              "Step 4 is [b]receval evaluate --store ... --run-id ... --algorithm A --shard I/N[/b].\n\n"
              "[b]Example[/b]\n\n  receval predict --store ./runs --run-id r1 --algorithm mf --shard 0/4"),
    )(speaks_flags(predict_command))
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


def _log_steps() -> None:
    """Step commands log one line per stage (and per predict batch) on stderr: the pod's log."""
    pipeline_log_lines()


def parse_cutoffs(values: list[str] | None) -> list[int] | None:
    """``--cutoff`` values, checked by the cutoffs' one rule (:mod:`receval.metrics.options`)."""
    from receval.metrics.options import check_cutoffs

    cutoffs = int_list(values, "--cutoff")
    return list(check_cutoffs(cutoffs)) if cutoffs else None


# ------------------------------------------------------------------------------------------------ steps


def prepare_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP, show_default=False),
    run_id: str = typer.Option(..., "--run-id", help=RUN_ID_HELP, show_default=False),
    config: Optional[str] = typer.Option(None, "--config", help="Run configuration, YAML or JSON: a path or s3:// URI.", show_default=False),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (overrides the configuration).", show_default=False),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the datasets.", show_default="$RECEVAL_DATA or ~/.cache/receval"),
    cutoffs: Optional[list[str]] = cutoff_option(help="Cutoffs (override the configuration)", envvar="RECEVAL_CUTOFFS"),
    shards: Optional[int] = typer.Option(None, "--shards", envvar="RECEVAL_SHARDS", help="User shards to bucket train and test into (overrides the configuration; predict/evaluate --shard I/N read one bucket when N is a multiple of it).", show_default=False),
    part: Optional[str] = typer.Option(None, "--part", help="Prepare only part I of P (I/P, 0-based): every P-th part file of a dataset.name: splits dataset; then run --finish once.", show_default=False),
    finish: bool = flag("Merge the finished parts' statistics and publish the dataset (after every --part I/P).", "--finish"),
    force: bool = flag("Prepare again even if the dataset is published.", "--force"),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=ENDPOINT_DEFAULT),
) -> None:
    from receval.config import flag_overrides, load_config
    from receval.metrics.sharding import Shard
    from receval.pipeline import steps

    _log_steps()
    # the I/N rule is the shard's; speaks_flags names it --part here
    piece = Shard.parse(part) if part is not None else None
    overrides = flag_overrides(dataset=dataset, data_dir=data_dir, cutoffs=parse_cutoffs(cutoffs), shards=shards)
    cfg = load_config(config or None, overrides, **_store_options(endpoint_url))
    steps.prepare_step(open_store_option(store, endpoint_url), run_id, cfg, force=force, part=piece, finish=finish)


def train_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP, show_default=False),
    run_id: str = typer.Option(..., "--run-id", help=RUN_ID_HELP, show_default=False),
    algorithm: str = typer.Option(..., "--algorithm", "-a", help="Algorithm label of the run's configuration (rnd, pop, avg, ub, ib, cb, mf...).", show_default=False),
    force: bool = flag("Train again even if the model is saved.", "--force"),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=ENDPOINT_DEFAULT),
) -> None:
    from receval.pipeline import steps

    _log_steps()
    steps.train_step(open_store_option(store, endpoint_url), run_id, algorithm, force=force)


def predict_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP, show_default=False),
    run_id: str = typer.Option(..., "--run-id", help=RUN_ID_HELP, show_default=False),
    algorithm: str = typer.Option(..., "--algorithm", "-a", help="Algorithm label.", show_default=False),
    shard: str = typer.Option(..., "--shard", help="Shard I/N (0-based), e.g. 3/8.", show_default=False),
    force: bool = flag("Predict again even if the shard is done.", "--force"),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=ENDPOINT_DEFAULT),
) -> None:
    from receval.cli._startup import heavy_imports

    with heavy_imports():  # the step's own lazy imports too (the model classes)
        from receval.metrics.sharding import Shard
        from receval.pipeline import steps
        from receval.recommenders import base  # noqa: F401

    _log_steps()
    part = Shard.parse(shard)
    steps.predict_step(open_store_option(store, endpoint_url), run_id, algorithm, part, force=force)


def aggregate_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP, show_default=False),
    run_id: str = typer.Option(..., "--run-id", help=RUN_ID_HELP, show_default=False),
    force: bool = flag("Aggregate again even if the run is complete.", "--force"),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=ENDPOINT_DEFAULT),
) -> None:
    from receval.pipeline import steps

    _log_steps()
    steps.aggregate_step(open_store_option(store, endpoint_url), run_id, force=force)


def mark_failed_command(
    store: str = typer.Option(..., "--store", help=STORE_HELP, show_default=False),
    run_id: str = typer.Option(..., "--run-id", help=RUN_ID_HELP, show_default=False),
    reason: str = typer.Option("", "--reason", help="Why the run failed (recorded in run.json).", show_default=False),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=ENDPOINT_DEFAULT),
) -> None:
    from receval.pipeline import steps

    _log_steps()
    steps.mark_failed_step(open_store_option(store, endpoint_url), run_id, reason)


# ------------------------------------------------------------------------------------------------ run


def run_command(
    config: Optional[str] = typer.Option(None, "--config", help="Run configuration, YAML or JSON (path or s3:// URI).", show_default=False),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset: synthetic, ml-100k, ml-latest-small, ml-1m, ..., lastfm-2k.", show_default="synthetic"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the datasets.", show_default="$RECEVAL_DATA or ~/.cache/receval"),
    algorithms: Optional[list[str]] = algorithm_option(help="Algorithms", show_default="rnd,pop,avg,ub,ib,cb,mf"),
    cutoffs: Optional[list[str]] = cutoff_option(show_default=",".join(map(str, RUN_CUTOFFS))),
    shards: Optional[int] = typer.Option(None, "--shards", help="User shards of predict and evaluate.", show_default="4"),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (1 = no process pool).", show_default="the number of CPUs"),
    store: str = typer.Option("./receval-runs", "--store", help=STORE_HELP),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Run id; an existing one resumes.", show_default="YYYYMMDD-HHMMSS-DATASET, UTC"),
    output_format: str = typer.Option("table", "--format", help="What to print: table (compact) or json (every record, each with its run_id)."),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help=ENDPOINT_HELP, show_default=ENDPOINT_DEFAULT),
) -> None:
    from receval.config import flag_overrides, load_config
    from receval.errors import ConfigError
    from receval.pipeline.local import run_local

    if output_format not in ("table", "json"):
        raise ConfigError(f"--format {output_format!r}: choose table or json")
    if endpoint_url and not store.startswith("s3://"):
        raise ConfigError(f"--endpoint-url applies to s3:// stores only, not to {store}")
    overrides = flag_overrides(dataset=dataset, data_dir=data_dir, algorithms=split_list(algorithms) or None,
                               cutoffs=parse_cutoffs(cutoffs), shards=shards)
    cfg = load_config(config, overrides, **_store_options(endpoint_url))
    with step_bars() as progress:
        result = run_local(cfg, store, run_id=run_id, workers=workers, progress=progress,
                           store_options=_store_options(endpoint_url), on_stage=_stage_reporter(cfg))
    from receval.pipeline import layout

    where = f"{result.store_uri.rstrip('/')}/{layout.summary_key(result.run_id)}"
    if output_format == "json":
        # every record, each naming its run (a list, as before: scripts index it by record)
        typer.echo(json.dumps([{"run_id": result.run_id, **r} for r in result.records], indent=2))
        return
    cutoff = max(cfg.evaluation.cutoffs)
    print_tables(compact_tables(result.records, cutoff, cfg.labels, output_width(), title=_title(cfg, cutoff)),
                 out_console())
    err_console.print(f"run {result.run_id}: {result.seconds:.1f}s; every value in {where}", soft_wrap=True,
                      markup=False)


def _stage_reporter(cfg: Any):
    """``on_stage`` of :func:`run_local`: a log line per stage on a pipe; on a terminal, a line naming what the
    bars below it belong to."""
    steps_line = (f"{cfg.dataset.name}: train, predict, evaluate {len(cfg.labels)} algorithms "
                  f"({', '.join(cfg.labels)}) × {cfg.shards} shards")
    lines = {"prepare": f"{cfg.dataset.name}: prepare (load and split)", "steps": steps_line,
             "aggregate": f"{cfg.dataset.name}: aggregate"}

    def on_stage(stage: str) -> None:
        if not stderr_is_terminal():
            log_line(lines.get(stage, f"{cfg.dataset.name}: {stage}"))
        elif stage == "steps":
            err_console.print(f"[bold]{steps_line}[/bold]", soft_wrap=True)

    return on_stage


def _title(cfg: Any, cutoff: int) -> str:
    return (f"receval run — {cfg.dataset.name}, @{cutoff}, {cfg.shards} shards; "
            f"·rel = binary relevance (rating ≥ {cfg.evaluation.threshold:g}); Gini(1−G) = RankSys's 1 − G, "
            "1 = even exposure")


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
    from receval.results.tables import format_value

    counted = value is not None and float(value).is_integer() and abs(value) >= 1  # aggregate diversity
    return format_value(value, 0 if counted else 4)


def compact_tables(records: list[dict[str, Any]], cutoff: int, algorithms: list[str], width: int,
                   title: str | None = None) -> list:
    """Rich tables, one row per algorithm, the :data:`COMPACT_COLUMNS` at ``cutoff``, in groups that fit ``width``."""
    columns = [c for c in COMPACT_COLUMNS
               if any(pick(records, a, c[0], cutoff, c[1], c[2]) is not None for a in algorithms)]
    rows = [[algo, *(_number(pick(records, algo, m, cutoff, rel, disc)) for m, rel, disc, _ in columns)]
            for algo in algorithms]
    return fit_tables(title, [("algorithm", "left")], [(header, "right") for *_, header in columns], rows, width)
