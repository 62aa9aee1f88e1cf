"""``receval results``: list, show, compare, report, trend, gate and export the runs of a results store."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from receval.cli._common import (
    algorithm_option, cutoff_option, fit_tables, int_list, metric_option, out_console, output_width, print_tables,
    speaks_flags, split_list,
)
from receval.errors import ConfigError, StoreError

results_app = typer.Typer(
    name="results",
    help=(
        "Inspect the runs of a results store (a local folder or s3://bucket/prefix): list them, show a "
        "summary, compare algorithms or runs with paired significance tests, write an HTML report, follow a "
        "metric over nightly runs, gate a run against its baseline, export a summary as OpenMetrics.\n\n"
        "Example:  receval results show receval-runs latest --cutoff 10"
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
)

_STORE = typer.Argument(..., help="Results store: a local folder or s3://bucket/prefix.", show_default=False)
_ENDPOINT = typer.Option(
    None, "--endpoint-url", help="S3 endpoint for s3:// stores, e.g. http://127.0.0.1:8333.", show_default="$AWS_ENDPOINT_URL"
)


def register(app: typer.Typer) -> None:
    """Add the ``results`` command family to the root app."""
    app.add_typer(results_app, name="results")


# -- helpers --------------------------------------------------------------------------------------


def _open(uri: str, endpoint_url: str | None):
    from receval.storage import open_store

    if uri.startswith("s3://"):
        options = {"endpoint_url": endpoint_url} if endpoint_url else {}
        try:
            return open_store(uri, **options)
        except ModuleNotFoundError as exc:
            raise StoreError(f"{uri}: S3 stores are not available in this installation ({exc.name} missing)") from None
    if endpoint_url:
        raise ConfigError(f"--endpoint-url applies to s3:// stores only, not to {uri}")
    if not Path(uri).expanduser().is_dir():
        raise StoreError(f"{uri}: no such folder (a store is a local folder or s3://bucket/prefix)")
    return open_store(uri)


def _choice(value: str, option: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{option} {value}: expected one of {', '.join(choices)}")
    return value


def _console():
    return out_console()


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(_clean(value), indent=2, default=_json_default))


# -- list -----------------------------------------------------------------------------------------


@results_app.command("list")
@speaks_flags
def list_command(
    store: str = _STORE,
    since: str = typer.Option(None, "--since", help="Only runs created on or after this date (YYYY-MM-DD or ISO time)."),
    until: str = typer.Option(None, "--until", help="Only runs created on or before this date."),
    status: str = typer.Option(None, "--status", help="complete, partial or failed (comma-separated for several)."),
    output: str = typer.Option("table", "--format", help="table or json."),
    endpoint_url: str = _ENDPOINT,
) -> None:
    """List the runs of a store, newest first, with date, dataset, algorithms and status.

    Example:  receval results list s3://nightly/receval --since 2024-05-01 --status complete
    """
    from receval.results.read import list_runs, parse_date_option

    _choice(output, "--format", ("table", "json"))
    runs = list_runs(
        _open(store, endpoint_url),
        since=parse_date_option(since, option="--since"),
        until=parse_date_option(until, option="--until", end_of_day=True),
        status=status,
    )
    if output == "json":
        _echo_json([r.to_dict() for r in runs])
        return
    if not runs:
        typer.echo(f"no runs in {store}" + (" matching the filters" if since or until or status else ""))
        return
    from rich.markup import escape

    style = {"complete": "green", "partial": "yellow", "failed": "red"}
    rows = []
    for run in runs:
        created = run.created.strftime("%Y-%m-%d %H:%M") if run.created else "?"
        status_text = run.status + (f" ({run.failure})" if run.failure else "")
        rows.append([
            escape(run.run_id),
            created,
            f"[{style[run.status]}]{escape(status_text)}[/]",
            escape(run.dataset),
            escape(", ".join(run.algorithms)),
            ", ".join(map(str, run.cutoffs)),
        ])
    # the run id is what one copies: it leads every group, whole
    print_tables(fit_tables(
        escape(f"runs in {store}"), [("run", "left")],
        [(c, "left") for c in ("created (UTC)", "status", "dataset", "algorithms", "cutoffs")], rows, output_width(),
    ))


# -- show -----------------------------------------------------------------------------------------


def _load_for_display(store_obj, run: str):
    """(run id, RunInfo, summary) — a partial run shows the algorithms whose metrics are complete."""
    from receval.results.read import load_summary, read_run_info, resolve_run

    run_id = resolve_run(store_obj, run)
    info = read_run_info(store_obj, run_id)
    summary = load_summary(store_obj, run_id, allow_partial=True)
    if info.status != "complete":
        if summary.empty:
            raise StoreError(
                f"run {run_id} in {store_obj.uri} is {info.status} and no algorithm's metrics are complete: nothing to show"
                + (f" (failure: {info.failure})" if info.failure else "")
            )
        typer.echo(
            f"receval: note: run {run_id} is {info.status}; showing the completed algorithms only: "
            f"{', '.join(sorted(set(summary['algorithm'])))}",
            err=True,
        )
    return run_id, info, summary


@results_app.command("show")
@speaks_flags
def show_command(
    store: str = _STORE,
    run: str = typer.Argument(..., help="Run id, or 'latest' for the newest complete run.", show_default=False),
    output: str = typer.Option("table", "--format", help="table, json, csv or markdown."),
    metrics: list[str] = metric_option(help="Only these metric names or keys, e.g. epc,ndcg or epc\\[binary,exp]@10"),
    cutoff: list[str] = cutoff_option(help="Only these cutoffs"),
    algorithms: list[str] = algorithm_option(help="Only these algorithms"),
    digits: int = typer.Option(4, "--digits", help="Decimals in table and markdown output."),
    endpoint_url: str = _ENDPOINT,
) -> None:
    """Show a run's summary: one table per cutoff, metric definitions as rows, algorithms as columns.

    The best value of each row is bold; algorithms that do not fit the width go into a further table.

    Example:  receval results show receval-runs latest --metric epc,efd,eild --cutoff 10
    """
    from receval.results.tables import format_value, long_frame, select, to_markdown, wide_tables

    _choice(output, "--format", ("table", "json", "csv", "markdown"))
    run_id, _info, summary = _load_for_display(_open(store, endpoint_url), run)
    cutoffs = int_list(cutoff, "--cutoff")
    chosen = select(summary, metrics=split_list(metrics), cutoff=cutoffs or None, algorithms=split_list(algorithms))
    if output == "json":
        _echo_json(long_frame(chosen).astype(object).where(long_frame(chosen).notna(), None).to_dict(orient="records"))
        return
    if output == "csv":
        typer.echo(long_frame(chosen).to_csv(index=False), nl=False)
        return
    tables = wide_tables(chosen)
    if output == "markdown":
        typer.echo(to_markdown(tables, digits), nl=False)
        return
    from rich.markup import escape

    width = output_width()
    for k, wide in tables.items():
        title = f"{run_id} @{k}" if k is not None else f"{run_id} (no cutoff)"
        # transposed: a row per metric definition (long labels), a column per algorithm (short names)
        best = wide.max(axis=0, skipna=True)
        rows = []
        for column in wide.columns:
            values = wide[column]
            cells = []
            for value in values:
                text = format_value(value, digits)
                is_best = values.notna().sum() > 1 and value == best[column]
                cells.append(f"[bold]{text}[/]" if is_best else text)
            rows.append([escape(str(column)), *cells])
        print_tables(fit_tables(escape(title), [("metric", "left")],
                                [(escape(str(a)), "right") for a in wide.index], rows, width))
    if any(str(c).startswith("gini[") for wide in tables.values() for c in wide.columns):
        typer.echo("gini = RankSys's 1 − G: 1 = even exposure, the reverse of the usual Gini")


# -- compare --------------------------------------------------------------------------------------


def _comparison_table(comparison, console) -> None:
    from rich.markup import escape

    from receval.results.tables import format_p, format_value

    level = comparison.confidence
    headers = ("users", "mean A", "mean B", "delta", f"{level:.0%} CI", "p t (Holm)", "p W (Holm)", "d_z")
    rows = []
    for m in comparison.metrics:
        significant = m.wilcoxon_pvalue_holm < 1 - level and m.t_pvalue_holm < 1 - level
        rows.append([
            escape(m.metric),
            str(m.users),
            format_value(m.mean_a),
            format_value(m.mean_b),
            f"[bold]{format_value(m.delta)}[/]" if significant else format_value(m.delta),
            f"[{format_value(m.ci_low)}, {format_value(m.ci_high)}]",
            format_p(m.t_pvalue_holm),
            format_p(m.wilcoxon_pvalue_holm),
            format_value(m.cohen_dz, 2),
        ])
    title = escape(f"{comparison.label_b} vs {comparison.label_a} (delta = B - A; {comparison.note()})")
    print_tables(fit_tables(title, [("metric", "left")], [(h, "right") for h in headers], rows, output_width()),
                 console)


@results_app.command("compare")
@speaks_flags
def compare_command(
    store: str = _STORE,
    run_a: str = typer.Argument(..., help="Run id (or 'latest') of side A.", show_default=False),
    run_b: str = typer.Argument(None, help="Run id of side B; omit to compare two algorithms of RUN_A.", show_default=False),
    algorithms: list[str] = algorithm_option(
        help="A,B: two algorithms of one run; A: one algorithm in both runs; omitted with two runs: every shared algorithm",
    ),
    metrics: list[str] = metric_option(help="Per-user metric names or keys", show_default="all shared"),
    output: str = typer.Option("table", "--format", help="table or json."),
    bootstrap: int = typer.Option(2000, "--bootstrap", help="Bootstrap resamples of the mean delta."),
    seed: int = typer.Option(20110101, "--seed", help="Seed of the bootstrap (same seed, same interval)."),
    confidence: float = typer.Option(0.95, "--confidence", help="Confidence level of the interval."),
    endpoint_url: str = _ENDPOINT,
) -> None:
    """Paired comparison of per-user values: mean delta (B − A), CI, t-test, Wilcoxon, Holm, Cohen's d_z.

    Users are matched by id; only users both sides evaluated are compared (a note says when the sets differ).

    Sides: two algorithms of one run (--algorithm A,B), or one algorithm in two runs (RUN_A RUN_B).

    Example:  receval results compare receval-runs 2024-05-01-nightly --algorithm pop,ib --metric epc,ndcg@10
    """
    from receval.results.read import load_per_user, match_metric_columns, read_run_info, resolve_run
    from receval.results.stats import compare_per_user

    _choice(output, "--format", ("table", "json"))
    store_obj = _open(store, endpoint_url)
    id_a = resolve_run(store_obj, run_a)
    id_b = resolve_run(store_obj, run_b) if run_b else None
    names = split_list(algorithms)
    algorithms = ",".join(names)
    pairs: list[tuple[str, str, str, str]] = []  # (run A, algorithm A, run B, algorithm B)
    if id_b is None:
        if not names:
            known = read_run_info(store_obj, id_a).algorithms
            if len(known) != 2:
                raise ConfigError(
                    f"give two algorithms to compare within run {id_a}: --algorithm A,B (algorithms: {', '.join(known)})"
                )
            names = list(known)
        if len(names) != 2:
            raise ConfigError(f"--algorithm {algorithms}: with one run, name exactly two algorithms A,B")
        pairs.append((id_a, names[0], id_a, names[1]))
    elif len(names) == 2:
        pairs.append((id_a, names[0], id_b, names[1]))
    elif len(names) == 1:
        pairs.append((id_a, names[0], id_b, names[0]))
    elif not names:
        shared = [a for a in read_run_info(store_obj, id_a).algorithms if a in read_run_info(store_obj, id_b).algorithms]
        if not shared:
            raise ConfigError(f"runs {id_a} and {id_b} share no algorithm; name them with --algorithm A,B")
        pairs += [(id_a, a, id_b, a) for a in shared]
    else:
        raise ConfigError(f"--algorithm {algorithms}: name one algorithm (in both runs) or two (A in RUN_A, B in RUN_B)")

    comparisons = []
    for ra, aa, rb, ab in pairs:
        frame_a = load_per_user(store_obj, ra, aa)
        frame_b = load_per_user(store_obj, rb, ab)
        shared_columns = [c for c in frame_a.columns if c in set(frame_b.columns) and c != "user"]
        columns = match_metric_columns(shared_columns, split_list(metrics)) if metrics else None
        same_run = ra == rb
        comparisons.append(
            compare_per_user(
                frame_a,
                frame_b,
                columns,
                label_a=aa if same_run else f"{aa}@{ra}",
                label_b=ab if same_run else f"{ab}@{rb}",
                n_boot=bootstrap,
                seed=seed,
                confidence=confidence,
            )
        )
    if output == "json":
        _echo_json([c.to_dict() for c in comparisons] if len(comparisons) > 1 else comparisons[0].to_dict())
        return
    console = _console()
    for comparison in comparisons:
        if comparison.user_sets_differ:
            typer.echo(f"receval: note: {comparison.note()}", err=True)
        _comparison_table(comparison, console)
    typer.echo(
        f"delta = B - A per user; CI: paired percentile bootstrap ({bootstrap} resamples, seed {seed}); "
        "p: paired t-test and Wilcoxon signed-rank (Pratt), Holm-corrected across the metrics; "
        "bold: both tests significant."
    )


# -- report ---------------------------------------------------------------------------------------


@results_app.command("report")
@speaks_flags
def report_command(
    store: str = _STORE,
    run: str = typer.Argument(..., help="Run id, or 'latest' for the newest complete run.", show_default=False),
    out: Path = typer.Option(Path("report.html"), "--out", help="Where to write the HTML page."),
    png: Path = typer.Option(None, "--png", help="Also write the charts as PNG files into this folder."),
    cutoff: int = typer.Option(None, "--cutoff", "-k", metavar="N", help="Cutoff of the novelty/diversity chart.", show_default="the largest"),
    endpoint_url: str = _ENDPOINT,
) -> None:
    """Write one self-contained HTML page (tables, charts embedded, no network) about a run.

    Example:  receval results report receval-runs latest --out report.html --png charts/
    """
    from receval.results.gate import load_gate
    from receval.results.read import load_data_quality
    from receval.results.report import render_charts, render_html, write_png_charts

    store_obj = _open(store, endpoint_url)
    run_id, info, summary = _load_for_display(store_obj, run)
    charts = render_charts(summary, cutoff=cutoff, run=info)
    page = render_html(info, summary, load_data_quality(store_obj, run_id), cutoff=cutoff, charts=charts,
                       gate=load_gate(store_obj, run_id))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"{out}: cannot be written: {exc.strerror}") from None
    typer.echo(f"wrote {out}")
    if png is not None:
        for path in write_png_charts(png, summary, cutoff=cutoff, run=info, charts=charts):
            typer.echo(f"wrote {path}")


# -- trend ----------------------------------------------------------------------------------------


@results_app.command("trend")
@speaks_flags(flags={"key": "--metric"})
def trend_command(
    store: str = _STORE,
    metric: str = typer.Option(..., "--metric", "-m", help="Metric key, e.g. epc\\[binary,exp]@10 (or ndcg@10 when unique).", show_default=False),
    algorithms: list[str] = algorithm_option(help="Only these algorithms"),
    dataset: str = typer.Option(None, "--dataset", help="Only runs on this dataset (required when the runs are on several).", show_default=False),
    since: str = typer.Option(None, "--since", help="Only runs created on or after this date.", show_default=False),
    until: str = typer.Option(None, "--until", help="Only runs created on or before this date.", show_default=False),
    output: str = typer.Option("table", "--format", help="table or json."),
    png: Path = typer.Option(None, "--png", help="Also write the trend chart to this PNG file.", show_default=False),
    endpoint_url: str = _ENDPOINT,
) -> None:
    """A metric over the complete (e.g. nightly) runs of one dataset, oldest first, as a table and a chart.

    Values of different datasets are not comparable: when the runs are on several, --dataset says which.

    Example:  receval results trend s3://nightly/receval --metric "epc\\[binary,exp]@10" --algorithm ib --png epc.png
    """
    from receval.results.read import MetricKey, metric_trend, parse_date_option
    from receval.results.tables import format_value
    from receval.results.report import write_trend_png

    _choice(output, "--format", ("table", "json"))
    key = MetricKey.parse(metric)
    names = split_list(algorithms)
    trend = metric_trend(
        _open(store, endpoint_url),
        key,
        since=parse_date_option(since, option="--since"),
        until=parse_date_option(until, option="--until", end_of_day=True),
    )
    if names:
        trend = trend[trend["algorithm"].isin(names)]
    datasets = list(dict.fromkeys(trend["dataset"]))
    if dataset is not None:
        if dataset not in datasets:
            raise ConfigError(f"--dataset {dataset}: no complete run in {store} with {key} is on it"
                              + (f" (datasets: {', '.join(datasets)})" if datasets else ""))
        trend = trend[trend["dataset"] == dataset]
    elif len(datasets) > 1:
        raise ConfigError(f"the runs with {key} are on {len(datasets)} datasets ({', '.join(datasets)}), whose values "
                          f"do not compare: choose one with --dataset")
    trend = trend.reset_index(drop=True)
    if trend.empty:
        raise StoreError(
            f"no complete run in {store} has {key}" + (f" for algorithm {', '.join(names)}" if names else "")
            + f"; `receval results show {store} latest` lists the metrics"
        )
    label = trend["dataset"].iloc[0]
    if png is not None:
        write_trend_png(trend, png, f"{key} on {label}" + (f" — {', '.join(names)}" if names else ""))
    if output == "json":
        _echo_json(trend.to_dict(orient="records"))
    else:
        from rich.markup import escape

        stamps = [c.strftime("%Y-%m-%d %H:%M") if c is not None and not _isnat(c) else "?" for c in trend["created"]]
        wide = trend.assign(stamp=stamps).pivot_table(
            index=["run_id", "stamp", "dataset"], columns="algorithm", values="value", aggfunc="first", sort=False
        )
        rows = [[escape(str(run_id)), stamp, escape(str(name)), *(format_value(v) for v in row)]
                for (run_id, stamp, name), row in wide.iterrows()]
        print_tables(fit_tables(
            escape(f"{key} over runs on {label}"), [("run", "left"), ("created (UTC)", "left"), ("dataset", "left")],
            [(escape(str(c)), "right") for c in wide.columns], rows, output_width(),
        ))
    if png is not None:
        typer.echo(f"wrote {png}", err=True)


def _isnat(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# -- gate -----------------------------------------------------------------------------------------

def _gate_rules(rule_texts: list[str] | None, config: str | None, store_obj, run_id: str, endpoint_url: str | None):
    """(rules, gate section or None): --rule wins over --config's gate section, which wins over the run's own."""
    from receval.config import RunConfig, read_document
    from receval.metrics.rules import parse_rules
    from receval.results.read import read_run_info

    section = None
    if config:
        options = {"endpoint_url": endpoint_url} if endpoint_url and config.startswith("s3://") else {}
        section = RunConfig.from_mapping(read_document(config, **options), f"config {config}").gate
    else:
        recorded = (read_run_info(store_obj, run_id).metadata.get("config") or {}).get("gate")
        if recorded:
            section = RunConfig.from_mapping({"gate": recorded}, f"run {run_id} run.json").gate
    if rule_texts:
        return parse_rules(rule_texts, source="--rule"), section
    if section is not None and section.rules:
        return parse_rules(section.rules, source="rule"), section
    where = f"config {config}" if config else f"run {run_id}'s configuration"
    raise ConfigError(
        f"no gate rules: give --rule 'KEY: drop <= TOLERANCE [at p < LEVEL]' (repeatable) or a gate: section"
        f" with rules (none in {where})"
    )


def _gate_table(result, console) -> None:
    from rich.markup import escape

    from receval.results.tables import format_p, format_value

    style = {"pass": "green", "regression": "bold red", "not significant": "yellow", "no baseline": "dim"}
    headers = ("baseline", "tonight", "delta", f"{result.confidence:.0%} CI", "p (Holm)", "verdict")
    for algorithm in dict.fromkeys(c.algorithm for c in result.checks):
        rows = []
        for c in (c for c in result.checks if c.algorithm == algorithm):
            ci = f"[{format_value(c.ci_low)}, {format_value(c.ci_high)}]" if c.ci_low is not None else "–"
            p = c.p_holm if c.p_holm is not None else c.p
            p_text = format_p(p) if p is not None else "–"
            if c.p_holm is None and c.p is not None:
                p_text += " (raw)"  # a rule without a level is outside the Holm family
            verdict = c.verdict + (f" ({c.note})" if c.note else "")
            rows.append([escape(c.rule), escape(c.key), format_value(c.baseline), format_value(c.tonight), format_value(c.delta), escape(ci),
                         p_text, f"[{style.get(c.verdict, '')}]{escape(verdict)}[/]"])  # fmt: skip
        title = escape(f"{algorithm}: {result.run_id} vs baseline {result.baseline_run} (delta = tonight - baseline)")
        print_tables(fit_tables(title, [("rule", "left"), ("key", "left")],
                                [(h, "left" if h == "verdict" else "right") for h in headers], rows, output_width()),
                     console)  # fmt: skip


@results_app.command("gate")
@speaks_flags
def gate_command(
    store: str = _STORE,
    run: str = typer.Argument("latest", help="Run id to gate, or 'latest' (the newest complete run)."),
    baseline: str = typer.Option(
        None, "--baseline", help="'previous' (newest complete run before RUN, same dataset and configuration fingerprint) or a run id. [default: previous]",
        show_default=False,
    ),
    rules: list[str] = typer.Option(
        None, "--rule", help="A rule, e.g. 'ndcg@10: drop <= 0.005 at p < 0.05' (repeatable; ';' separates rules).", show_default=False
    ),
    config: str = typer.Option(None, "--config", help="Take the rules from this configuration's gate: section (default: the run's own).", show_default=False),
    require_baseline: bool = typer.Option(False, "--require-baseline", help="Exit 2 when there is no baseline (default: exit 0 with a note)."),
    test: str = typer.Option("t", "--test", help="Paired test of a rule with a level: t or wilcoxon."),
    output: str = typer.Option("table", "--format", help="table or json."),
    bootstrap: int = typer.Option(2000, "--bootstrap", help="Bootstrap resamples of the CI of the mean delta."),
    seed: int = typer.Option(20110101, "--seed", help="Seed of the bootstrap."),
    confidence: float = typer.Option(0.95, "--confidence", help="Confidence level of the interval."),
    message_file: Path = typer.Option(
        None, "--message-file", help="Also write the one-line verdict here (e.g. /dev/termination-log in a pod).", show_default=False
    ),
    endpoint_url: str = _ENDPOINT,
) -> None:
    """Did RUN get worse than its baseline? Exit 0: every rule passes; 3: a regression; 2: bad input.

    A regression is a drop (a change in the bad direction) beyond the rule's tolerance and, when the rule
    has a level, significant (paired test over the users of both runs, Holm-corrected across the checks).
    Writes RUN's gate/gate.json (marker last). Grammar of rules: docs/results.md.

    Example:  receval results gate s3://nightly/receval latest --rule 'ndcg@10: drop <= 0.005 at p < 0.05' --rule 'eild\\[binary,exp]@50: drop <= 2%'
    """
    from receval.errors import EXIT_REGRESSION
    from receval.results.gate import PREVIOUS, evaluate_gate, write_gate
    from receval.results.read import resolve_run

    _choice(output, "--format", ("table", "json"))
    _choice(test, "--test", ("t", "wilcoxon"))
    store_obj = _open(store, endpoint_url)
    run_id = resolve_run(store_obj, run)
    parsed, section = _gate_rules(rules, config, store_obj, run_id, endpoint_url)
    chosen_baseline = baseline or (section.baseline if section is not None else PREVIOUS)
    require = require_baseline or bool(section is not None and section.require_baseline)
    result = evaluate_gate(store_obj, run_id, parsed, baseline=chosen_baseline, test=test, n_boot=bootstrap,
                           seed=seed, confidence=confidence)  # fmt: skip
    line = result.summary_line()
    if result.baseline_run is None and require:
        raise StoreError(f"{line}; --require-baseline")
    key = write_gate(store_obj, result)
    if output == "json":
        _echo_json(result.to_dict())
    elif result.checks:
        _gate_table(result, _console())
    if result.baseline_run is not None:  # without one, the verdict line below holds the note
        for note in result.notes:
            typer.echo(f"receval: note: {note}", err=True)
    if message_file is not None:
        try:
            message_file.write_text(line + "\n", encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"--message-file {message_file}: cannot be written: {exc.strerror}") from None
    typer.echo(f"wrote {store_obj.url(key)}", err=True)
    typer.echo(f"receval: {line}", err=True)
    if result.regressions:
        raise typer.Exit(EXIT_REGRESSION)


# -- export ---------------------------------------------------------------------------------------


@results_app.command("export")
@speaks_flags
def export_command(
    store: str = _STORE,
    run: str = typer.Argument(..., help="Run id, or 'latest' for the newest complete run.", show_default=False),
    output: str = typer.Option(..., "--format", help="openmetrics (also read by Prometheus' text parsers).", show_default=False),
    out: Path = typer.Option(None, "--out", help="Write to this file (written aside, then renamed) instead of stdout.", show_default=False),
    endpoint_url: str = _ENDPOINT,
) -> None:
    """Write a run's summary as OpenMetrics text: one gauge per metric key and algorithm.

    Ready for a Prometheus Pushgateway or node_exporter's textfile collector.

    Example:  receval results export s3://nightly/receval latest --format openmetrics | curl --data-binary @- http://pushgateway:9091/metrics/job/receval
    """
    from receval.results.export import to_openmetrics
    from receval.results.read import load_summary, read_run_info, resolve_run

    _choice(output, "--format", ("openmetrics",))
    store_obj = _open(store, endpoint_url)
    run_id = resolve_run(store_obj, run)
    text = to_openmetrics(load_summary(store_obj, run_id), read_run_info(store_obj, run_id))
    if out is None:
        typer.echo(text, nl=False)
        return
    aside = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        aside.write_text(text, encoding="utf-8")
        aside.replace(out)  # a textfile collector never reads a half-written file
    except OSError as exc:
        raise StoreError(f"{out}: cannot be written: {exc.strerror}") from None
    typer.echo(f"wrote {out}", err=True)
