"""``receval experiment paper``: the paper's Figure 2 and Table 5 as receval runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from receval.cli._common import speaks_flags


def register(app: typer.Typer) -> None:
    sub = typer.Typer(help="Experiments built from pipeline runs.", no_args_is_help=True)
    sub.command(
        "paper",
        help=(
            "Reproduce Vargas & Castells (RecSys 2011): MF, CB, UB, AVG, RND and MF re-ranked by MMR, xQuAD and "
            "IA-Select, at top-50, EPC/EPD/EILD relevance-unaware and relevance-aware (the paper's graded model), "
            "with no discount and with 0.85^(k-1). Each dataset is an ordinary sharded pipeline run in STORE; "
            "the report (the five findings judged on the runs' values, Figure 2 charts, Table 5, re-rankers against MF per "
            "user with paired tests) goes to --out.\n\n[b]Example[/b]\n\n"
            "  receval experiment paper --data-dir ../shared/datasets --store ./receval-runs --out paper-report/\n\n"
            "  receval experiment paper --dataset ml-1m --data-dir ~/data   (MovieLens 1M, as in the paper)"
        ),
    )(speaks_flags(paper))
    sub.command(
        "mf-vs-ub",
        help=(
            "Finding 3 of the paper (relevance-aware, MF beats UB on explicit ratings, UB beats MF on implicit data): "
            "tune MF (implicit and explicit ALS) and UB's neighbourhood by validation nDCG@50 on a holdout of each "
            "dataset's train set, then run the defaults, the tuned settings and a few fixed sensitivity settings "
            "through one pipeline run per dataset, and tabulate the relevance-aware comparison.\n\n"
            "[b]Example[/b]\n\n"
            "  receval experiment mf-vs-ub --data-dir ../shared/datasets --store ./receval-runs --out mf-vs-ub/"
        ),
    )(speaks_flags(mf_vs_ub))
    app.add_typer(sub, name="experiment")


def paper(
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the datasets.", show_default="$RECEVAL_DATA or ~/.cache/receval"),
    store: str = typer.Option("./receval-runs", "--store", help="Store for the runs (folder or s3://bucket/prefix)."),
    out: Path = typer.Option(Path("paper-report"), "--out", help="Folder for report.html, figures and tables."),
    datasets: list[str] = typer.Option(["ml-100k,lastfm-2k"], "--dataset", metavar="NAME[,...]", help="Datasets; repeat or comma-separate.", show_default="ml-100k,lastfm-2k"),
    shards: int = typer.Option(4, "--shards", help="User shards per run."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes.", show_default="all cores"),
    endpoint_url: Optional[str] = typer.Option(None, "--endpoint-url", help="S3 endpoint (MinIO, SeaweedFS, Ceph).", show_default="$AWS_ENDPOINT_URL"),
) -> None:
    from receval.cli._common import console, pipeline_log_lines, split_list, step_bars
    from receval.experiments.paper import run_experiment

    # each run's prepare and aggregate lines name its dataset: above and below its bars on a terminal,
    # the only progress on a pipe or in a pod's log (the per-shard lines stay in the worker processes)
    pipeline_log_lines()

    names = tuple(split_list(datasets))
    options = {"endpoint_url": endpoint_url} if endpoint_url else None
    with step_bars() as progress:
        results = run_experiment(data_dir, store, out, names, shards=shards, workers=workers, progress=progress,
                                 store_options=options)
    for r in results:
        console.print(f"{r.dataset}: run {r.run_id} in {r.seconds:.0f} s")
        for verdict in r.verdicts():
            console.print(f"  finding {verdict.finding}: {verdict.status}", highlight=False)
    console.print(f"wrote {out / 'report.html'}, {out / 'tables.md'} and figure2-*.png")


def mf_vs_ub(
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Folder holding the datasets.", show_default="$RECEVAL_DATA or ~/.cache/receval"),
    store: str = typer.Option("./receval-runs", "--store", help="Store for the runs (folder or s3://bucket/prefix)."),
    out: Path = typer.Option(Path("mf-vs-ub"), "--out", help="Folder for mf-vs-ub.md and mf-vs-ub.json."),
    datasets: list[str] = typer.Option(["ml-100k,ml-latest-small,lastfm-2k"], "--dataset", metavar="NAME[,...]", help="Datasets (add ml-1m if you have it); repeat or comma-separate.", show_default="ml-100k,ml-latest-small,lastfm-2k"),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes.", show_default="all cores"),
) -> None:
    from receval.cli._common import console, pipeline_log_lines, split_list
    from receval.experiments.mf_vs_ub import run_study

    pipeline_log_lines()  # each run's stage lines name its dataset
    names = tuple(split_list(datasets))
    studies = run_study(names, data_dir, store, out, workers=workers)
    for s in studies:
        console.print(f"{s.dataset}: run {s.run_id} in {s.seconds:.0f} s")
    console.print(f"wrote {out / 'mf-vs-ub.md'} and {out / 'mf-vs-ub.json'}")
