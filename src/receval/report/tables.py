"""Turn summary records into a metric × cutoff table (rich) for people."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from receval.results.tables import format_value


def summary_rows(records: list[dict[str, Any]]) -> tuple[list[int], list[list[str]]]:
    """(cutoffs, rows): a row per metric (relevance, discount) with its value at each cutoff."""
    metrics = [r for r in records if r.get("kind", "metric") == "metric"]
    cutoffs = sorted({r["cutoff"] for r in metrics})
    rows: dict[tuple[str, str, str], dict[int, Any]] = {}
    for r in metrics:
        rows.setdefault((r["metric"], r["relevance"], r["discount"]), {})[r["cutoff"]] = r["value"]
    return cutoffs, [[m, rel, disc, *(format_value(vals.get(n)) for n in cutoffs)] for (m, rel, disc), vals in rows.items()]


def summary_table(records: list[dict[str, Any]], title: str | None = None) -> Table:
    """Rows: metric (relevance, discount); columns: one per cutoff."""
    cutoffs, rows = summary_rows(records)
    table = Table(title=title, show_lines=False, header_style="bold")
    table.add_column("metric")
    table.add_column("relevance")
    table.add_column("discount")
    for n in cutoffs:
        table.add_column(f"@{n}", justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def quality_lines(records: list[dict[str, Any]]) -> list[str]:
    """One line per non-zero data-quality check."""
    lines = []
    for r in records:
        if r.get("kind") != "data_quality" or r["metric"] == "test_users":
            continue
        if r["value"]:
            at = f" (@{r['cutoff']})" if r.get("cutoff") else ""
            lines.append(f"{r['metric'].replace('_', ' ')}{at}: {format_value(r['value'])}")
    return lines
