"""Summary records as wide tables: algorithms (rows) × metric definitions (columns), one per cutoff.

A column is labelled ``metric[relevance,discount]``; when two records of the same algorithm share
that label and cutoff but differ in a parameter (``alpha``, ``threshold``, ``distance``, ...), the
differing parameters are appended (``alpha_ndcg[binary,log] alpha=0.25``) so that no two differently
defined values share a name.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from receval.errors import ConfigError
from receval.results.read import SUMMARY_FIELDS, MetricKey, split_selectors

# The order the metrics framework reports them in: accuracy, novelty, diversity, intent-aware, system.
METRIC_ORDER = (
    "precision", "recall", "ndcg", "ap", "rr",
    "epc", "efd", "epd", "eild", "ild",
    "alpha_ndcg", "err_ia", "s_recall",
    "aggregate_diversity", "gini", "entropy",
)  # fmt: skip
_NOT_PARAMETERS = {*SUMMARY_FIELDS, "key", "label"}


_split_list = split_selectors


def select(
    summary: pd.DataFrame,
    metrics: str | Sequence[str] | None = None,
    cutoff: int | Sequence[int] | None = None,
    algorithms: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """The summary rows for the given metric selectors, cutoffs and algorithms (all when None).

    A metric selector is a name (``epc``) or a key (``epc[binary,exp]@10``); see
    :class:`~receval.results.read.MetricKey`. An unknown algorithm or a selector that matches
    nothing is a :class:`~receval.errors.ConfigError` naming what exists.
    """
    chosen = summary
    wanted_algorithms = _split_list(algorithms)
    if wanted_algorithms:
        unknown = [a for a in wanted_algorithms if a not in set(summary["algorithm"])]
        if unknown:
            raise ConfigError(
                f"algorithms: {', '.join(unknown)} not in this run (algorithms: "
                f"{', '.join(sorted(set(summary['algorithm'])))})",
                option="algorithms",
            )
        chosen = chosen[chosen["algorithm"].isin(wanted_algorithms)]
    selectors = [MetricKey.parse(m) for m in _split_list(metrics)]
    if selectors:
        mask = pd.Series(False, index=chosen.index)
        for selector in selectors:
            hit = selector.matches(chosen)
            if not hit.any():
                raise ConfigError(
                    f"metrics: {selector} matches no record (metrics: {', '.join(_ordered(set(summary['metric'])))})",
                    option="metrics",
                )
            mask |= hit
        chosen = chosen[mask]
    wanted_cutoffs = [cutoff] if isinstance(cutoff, int) else list(cutoff or [])
    if wanted_cutoffs:
        present = pd.to_numeric(chosen["cutoff"], errors="coerce")
        for k in wanted_cutoffs:
            if not (present == k).any():
                cutoffs = sorted({int(c) for c in summary["cutoff"].dropna()})
                raise ConfigError(f"cutoff {k}: no record at this cutoff (cutoffs: {', '.join(map(str, cutoffs))})", option="cutoff")
        chosen = chosen[present.isin(wanted_cutoffs)]
    return chosen


def _ordered(names: Iterable[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(METRIC_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def _format_parameter(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def labelled(summary: pd.DataFrame) -> pd.DataFrame:
    """A copy with a ``label`` column: ``metric[relevance,discount]`` plus disambiguating parameters."""
    frame = summary.copy()
    frame["label"] = [f"{m}[{r},{d}]" for m, r, d in zip(frame["metric"], frame["relevance"], frame["discount"])]
    parameters = [c for c in frame.columns if c not in _NOT_PARAMETERS]
    if not parameters:
        return frame
    groups = frame.groupby(["algorithm", "label", frame["cutoff"].astype("string")], dropna=False).ngroup()
    for _, members in frame.groupby(groups):
        if len(members) < 2:
            continue
        varying = [p for p in parameters if members[p].astype(str).nunique(dropna=False) > 1]
        for index, row in members.iterrows():
            suffix = " ".join(f"{p}={_format_parameter(row[p])}" for p in varying if pd.notna(row[p]))
            if suffix:
                frame.at[index, "label"] = f"{row['label']} {suffix}"
    return frame


def wide_tables(summary: pd.DataFrame) -> dict[int | None, pd.DataFrame]:
    """One frame per cutoff (``None`` for records without one): index algorithm, columns labels."""
    frame = labelled(summary)
    tables: dict[int | None, pd.DataFrame] = {}
    algorithms = list(dict.fromkeys(frame["algorithm"]))
    for cutoff, part in frame.groupby(frame["cutoff"].astype("Float64"), dropna=False, sort=True):
        key = None if pd.isna(cutoff) else int(cutoff)
        metric_of = dict(zip(part["label"], part["metric"]))
        columns = sorted(
            dict.fromkeys(part["label"]),
            key=lambda label: (
                METRIC_ORDER.index(metric_of[label]) if metric_of[label] in METRIC_ORDER else len(METRIC_ORDER),
                label,
            ),
        )
        wide = part.pivot_table(index="algorithm", columns="label", values="value", aggfunc="first", dropna=False)
        wide = wide.reindex(index=[a for a in algorithms if a in set(part["algorithm"])], columns=columns)
        wide.columns.name = None
        tables[key] = wide
    return tables


def format_value(value: float | int | None, digits: int = 4) -> str:
    """A number as people read it, in every table, report and message (the one formatter).

    ``digits`` decimals; ``–`` for a missing value or NaN; ``∞``/``-∞``; an integer as it is (a count);
    a value that would show as zero but is not (``|v| < 0.5·10^-digits``) in ``digits`` significant
    digits, so that a tiny change never reads as none.
    """
    if value is None:
        return "–"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value != 0 and abs(value) < 0.5 * 10.0 ** -digits:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def format_p(p: float | None) -> str:
    """A p-value: four decimals, ``<1e-4`` below that, ``–`` when there is none."""
    if p is None or math.isnan(p):
        return "–"
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"


def long_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The records for CSV/JSON output: standard fields, ``key``, ``label``, then parameters."""
    frame = labelled(summary)
    first = [*SUMMARY_FIELDS, "key", "label"]
    return frame[first + [c for c in frame.columns if c not in first]]


def markdown_cell(text: object) -> str:
    """A table cell that stays one cell and shows as written: ``|`` escaped, ``<``/``>``/``&`` as entities
    (an algorithm named ``<b>`` or ``a|b`` must not become markup or a new column)."""
    value = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(tables: dict[int | None, pd.DataFrame], digits: int = 4) -> str:
    """GitHub-flavoured Markdown: one table per cutoff under a ``### @K`` heading."""
    blocks = []
    for cutoff, wide in tables.items():
        header = ["algorithm", *map(str, wide.columns)]
        lines = [
            f"### {'@' + str(cutoff) if cutoff is not None else 'no cutoff'}",
            "",
            "| " + " | ".join(markdown_cell(h) for h in header) + " |",
            "|" + "|".join(["---"] + ["---:"] * len(wide.columns)) + "|",
        ]
        for algorithm, row in wide.iterrows():
            lines.append("| " + " | ".join([markdown_cell(algorithm), *(format_value(v, digits) for v in row)]) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"
