"""``receval evaluate`` and ``receval merge``: the metrics engine on files (the stable contract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from receval.cli._common import (
    console, err_console, evaluation_option, flag, int_list, metric_option, progress_bar, speaks_flags, split_list,
)
from receval.cli._startup import heavy_imports

_REQUIRED = "Required (unless pipeline mode)"
_FORMATS = "Input formats"

EVALUATE_HELP = """Compute novelty, diversity, accuracy, intent-aware and aggregate metrics of recommendation lists.

Inputs are Parquet, CSV or TSV (by extension). Columns: train [b]user,item[,rating][/b];
test [b]user,item,rating[/b]; recs [b]user,item,rank[/b] or [b]user,item,score[/b] (ranked by score desc, item asc);
features [b]item,feature[,weight][/b]. Common other names (user_id, item_id, userId, movieId, RecBole's
user_id:token...) are recognised, others mapped with --columns or --user-col...; a line on stderr says which
mapping was used. TREC run files ([b]qid Q0 docno rank score tag[/b]) are read as recs and qrels as test
(.trec, .qrels or a name with "qrels", or --input-format trec). A .tsv whose first row names no column is
headerless, as Elliot and RecBole write them: user,item,rating[,timestamp]; recs user,item,score.

With no metric options it reports the default set at each cutoff: precision, recall, AP, RR, nDCG;
EPC, EFD, EPD, EILD under relevance {none, binary} x discount {none, exp(0.85)}; ILD; alpha-nDCG;
ERR-IA; aggregate diversity, Gini (RankSys 1-G), entropy.

Writes DIR/summary.json (one record per value), DIR/per_user.parquet and prints a table.
With --shard I/N it evaluates only that shard's users and writes its partial state to DIR;
[b]receval merge[/b] turns the N partial states into the same outputs.

[b]Examples[/b]

  receval evaluate --train train.parquet --test test.parquet --recs recs.parquet --features genres.csv --cutoff 10,50 --out results/

  receval evaluate ... --metric 'eild\\[graded,log]' --metric epc --relevance none,binary --discount exp --out r/

  receval evaluate --train train.tsv --test qrels.txt --recs run.trec --out r/

  receval evaluate --train ratings.csv --test test.csv --recs recs.csv --columns user=uid,item=sku --out r/

  receval evaluate ... --shard 3/8 --out partial-3/   (then: receval merge partial-*/ --out results/)
"""


def register(app: typer.Typer) -> None:
    app.command("evaluate", help=EVALUATE_HELP, no_args_is_help=True)(speaks_flags(evaluate))
    app.command(
        "merge",
        help=(
            "Merge the partial states of N shards (from [b]receval evaluate --shard I/N[/b]) into summary.json and "
            "per_user.parquet, exactly as one pass over all users would.\n\n[b]Example[/b]\n\n"
            "  receval merge part-0 part-1 part-2 part-3 --out results/"
        ),
        no_args_is_help=True,
    )(merge_command)


def evaluate(
    train: Optional[Path] = typer.Option(None, "--train", help="Train interactions (user,item[,rating]).", show_default=False, rich_help_panel=_REQUIRED),
    test: Optional[Path] = typer.Option(None, "--test", help="Test interactions (user,item,rating) or TREC qrels.", show_default=False, rich_help_panel=_REQUIRED),
    recs: Optional[Path] = typer.Option(None, "--recs", help="Recommendations (user,item,rank|score) or a TREC run.", show_default=False, rich_help_panel=_REQUIRED),
    out: Optional[str] = typer.Option(None, "--out", help="Output folder (or s3:// URI).", show_default=False, rich_help_panel=_REQUIRED),
    features: Optional[Path] = typer.Option(None, "--features", help="Item features (item,feature[,weight]).", show_default=False),
    cutoff: Optional[list[str]] = evaluation_option("cutoffs"),
    threshold: float = evaluation_option("threshold"),
    shard: Optional[str] = typer.Option(None, "--shard", help="Evaluate only shard I of N (I/N, 0-based), write its partial state.", show_default=False),
    metric: Optional[list[str]] = metric_option(help="Metrics to report: NAME, NAME[RELEVANCE,DISCOUNT] or NAME@K"),
    relevance: Optional[list[str]] = typer.Option(None, "--relevance", metavar="MODEL[,...]", help="Relevance models for bare novelty/diversity metrics: none, binary, background, graded, ndcg, err.", show_default=False),
    discount: Optional[list[str]] = typer.Option(None, "--discount", metavar="DISCOUNT[,...]", help="Rank discounts for bare novelty/diversity metrics: none, log, exp, reciprocal.", show_default=False),
    distance: str = evaluation_option("distance"),
    alpha: float = evaluation_option("alpha"),
    exp_base: float = evaluation_option("exp_base"),
    background: float = evaluation_option("background"),
    epd_profile: str = evaluation_option("epd_profile"),
    catalog: Optional[int] = evaluation_option("catalog", show_default=False),
    output_format: str = typer.Option("table", "--format", help="What to print: table or json."),
    threads: int = typer.Option(0, "--threads", help="User batches computed at once (0: one per core); results do not depend on it."),
    columns: Optional[str] = typer.Option(None, "--columns", metavar="COL=NAME[,...]", help="The files' column names, e.g. user=user_id,item=movieId (common names are recognised without it).", show_default=False, rich_help_panel=_FORMATS),
    user_col: Optional[str] = typer.Option(None, "--user-col", help="Column holding the user id.", show_default=False, rich_help_panel=_FORMATS),
    item_col: Optional[str] = typer.Option(None, "--item-col", help="Column holding the item id.", show_default=False, rich_help_panel=_FORMATS),
    rating_col: Optional[str] = typer.Option(None, "--rating-col", help="Column holding the rating (train, test).", show_default=False, rich_help_panel=_FORMATS),
    score_col: Optional[str] = typer.Option(None, "--score-col", help="Column holding the score (recs).", show_default=False, rich_help_panel=_FORMATS),
    rank_col: Optional[str] = typer.Option(None, "--rank-col", help="Column holding the rank (recs).", show_default=False, rich_help_panel=_FORMATS),
    input_format: str = typer.Option("auto", "--input-format", help="auto (by extension: .parquet, .csv, .tsv, .trec/qrels) or trec (recs as a TREC run, test and train as qrels).", rich_help_panel=_FORMATS),
    no_header: bool = flag("Text inputs have no header row: columns in the documented order (user,item,rating[,timestamp]; recs user,item,score).", "--no-header", rich_help_panel=_FORMATS),
    store: Optional[str] = typer.Option(None, "--store", help="Pipeline mode: the store holding the run folder.", show_default=False, rich_help_panel="Pipeline step"),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Pipeline mode: the run.", show_default=False, rich_help_panel="Pipeline step"),
    algorithm: Optional[str] = typer.Option(None, "--algorithm", "-a", help="Pipeline mode: the algorithm whose shard to evaluate.", show_default=False, rich_help_panel="Pipeline step"),
    force: bool = flag("Pipeline mode: recompute a finished shard.", "--force", rich_help_panel="Pipeline step"),
) -> None:
    from receval.errors import ConfigError

    from receval.metrics.blas import start_with_one_thread

    start_with_one_thread()  # the engine holds BLAS to one thread anyway: start no pool
    with heavy_imports():
        from receval.metrics.sharding import Shard

        if store is not None:  # the step's own lazy imports too (the engine, the partial-state encoding)
            from receval.metrics import engine  # noqa: F401
            from receval.pipeline import evaluation  # noqa: F401
            from receval.pipeline import steps
        else:
            from receval.data import schema
            from receval.data.formats import layout_from_options
            from receval.metrics import options as evaluation_options
            from receval.metrics.engine import EvaluationConfig, evaluate as run_engine
            from receval.metrics.spec import parse_specs
            from receval.pipeline.evaluation import write_partial, write_results
            from receval.storage import open_store

    shard_obj = Shard.parse(shard) if shard is not None else None
    if store is not None:
        if run_id is None or algorithm is None or shard_obj is None:
            raise ConfigError("pipeline mode needs --store, --run-id, --algorithm and --shard I/N")
        steps.evaluate_step(store, run_id, algorithm, shard_obj, force=force)
        return
    for flag, value in (("--train", train), ("--test", test), ("--recs", recs), ("--out", out)):
        if value is None:
            raise ConfigError(f"{flag} is required (or use pipeline mode: --store, --run-id, --algorithm, --shard)")
    if output_format not in ("table", "json"):
        raise ConfigError(f"--format {output_format!r}: choose table or json")

    # the rules of the API and the configuration file; speaks_flags names the flag of a bad value
    options = evaluation_options.check(
        cutoffs=tuple(int_list(cutoff, "--cutoff")) or evaluation_options.default("cutoffs"), threshold=threshold,
        distance=distance, alpha=alpha, exp_base=exp_base, background=background, epd_profile=epd_profile,
        catalog=catalog,
    )
    specs = None
    if metric:
        specs = tuple(
            parse_specs(split_list(metric), options.cutoffs, relevance=split_list(relevance) or None,
                        discount=split_list(discount) or None, threshold=threshold, exp_base=exp_base,
                        background=background)
        )
    elif relevance or discount:
        raise ConfigError("--relevance/--discount select variants of --metric; give --metric too (e.g. --metric epc,eild)")
    import os

    config = EvaluationConfig(**options.options(), specs=specs, threads=threads or os.cpu_count() or 1)
    # Read and validate everything before touching the output folder.
    layout = layout_from_options(
        columns, user_col=user_col, item_col=item_col, rating_col=rating_col, score_col=score_col, rank_col=rank_col,
        input_format=input_format, no_header=no_header, report=lambda line: err_console.print(f"input: {line}", soft_wrap=True, markup=False),
    )
    frames = dict(zip(("train", "test", "recs", "features", "statistics"), _read_inputs(train, test, recs, features, layout)))
    schema.require_overlap(frames["test"], frames["recs"], str(test), str(recs))
    schema.check_catalog(options.catalog, frames["recs"], str(recs))
    with progress_bar("evaluating users") as update:
        # handed over, not kept: the engine frees the frames once it has indexed them
        state = run_engine(frames.pop("train"), frames.pop("test"), frames.pop("recs"), frames.pop("features"),
                           config, shard=shard_obj, progress=update, statistics=frames.pop("statistics"))
    for note in state.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}")
    out_store = open_store(out)
    if shard_obj is not None:
        write_partial(out_store, "", state)
        err_console.print(f"shard {shard_obj}: {state.n_users} users -> partial state in {out}")
        return
    records = write_results(out_store, "", state)
    _print(records, output_format, out)


def _read_inputs(train: str, test: str, recs: str, features: str | None, layout):
    """The four input files, the recommendation lists (the largest) read in a second thread, and
    the dataset's :class:`~receval.metrics.statistics.GlobalStatistics` taken meanwhile.

    Parquet decoding and the readers' numpy passes release the GIL, so the reads overlap; train,
    test and features take less time than the lists, and the statistics (which need no list) fill
    the wait. The outcome is the sequential one: the first bad file in the order train, test, recs,
    features is the one reported, and the format notes are printed in that order.
    """
    from concurrent.futures import ThreadPoolExecutor

    from receval.data import schema
    from receval.metrics.statistics import GlobalStatistics

    recs_notes: list[str] = []
    features_notes: list[str] = []
    features_error: BaseException | None = None
    statistics = None
    with ThreadPoolExecutor(1) as pool:
        recs_read = pool.submit(schema.read_recs, recs, layout.with_report(recs_notes.append if layout.report else None))
        try:
            train_df = schema.read_train(train, layout)
            test_df = schema.read_test(test, layout)
        except BaseException:
            recs_read.cancel()
            raise
        features_df = None
        try:
            if features is not None:
                features_df = schema.read_features(
                    features, layout.with_report(features_notes.append if layout.report else None))
        except Exception as error:  # reported after the lists', as if read after them
            features_error = error
        if features_error is None and len(test_df) and schema.all_integer_ids(train_df, test_df, features_df):
            statistics = GlobalStatistics.of(train_df, test_df, features_df)
        recs_df = recs_read.result()
    for line in recs_notes + features_notes:
        layout.report(line)
    if features_error is not None:
        raise features_error
    return train_df, test_df, recs_df, features_df, statistics


def merge_command(
    parts: list[str] = typer.Argument(..., help="Folders (or s3:// URIs) holding the shards' partial states."),
    out: str = typer.Option(..., "--out", help="Output folder (or s3:// URI).", show_default=False),
    output_format: str = typer.Option("table", "--format", help="What to print: table or json."),
) -> None:
    from receval.pipeline.evaluation import merge_partials, write_results
    from receval.storage import open_store

    state = merge_partials([(open_store(p), "") for p in parts])
    records = write_results(open_store(out), "", state)
    _print(records, output_format, out)


def _print(records: list[dict], output_format: str, out: str) -> None:
    if output_format == "json":
        typer.echo(json.dumps(records, indent=2))
        return
    from receval.cli._common import fit_tables, out_console, output_width, print_tables
    from receval.report.tables import quality_lines, summary_rows

    users = next((r["users"] for r in records if r.get("kind") == "metric"), 0)
    cutoffs, rows = summary_rows(records)
    print_tables(fit_tables(f"receval — {users} test users", [("metric", "left"), ("relevance", "left"),
                                                              ("discount", "left")],
                            [(f"@{n}", "right") for n in cutoffs], rows, output_width()), out_console())
    for line in quality_lines(records):
        console.print(f"[yellow]data quality:[/yellow] {line}")
    console.print(f"wrote {out.rstrip('/')}/summary.json and per_user.parquet")
