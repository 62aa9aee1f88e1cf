"""A self-contained HTML report of one run, and the same charts as PNG files.

The page needs no network: the CSS is inline and every chart is a PNG embedded as a base64
``data:`` URI. It shows the run's metadata, the summary tables (algorithms × metrics, one per
cutoff, the best value of each column in bold), the paper's grouped bar chart of EPC, EFD, EPD and
EILD per algorithm — a relevance-unaware row and a relevance-aware row, one bar per rank discount,
as in Vargas & Castells (RecSys 2011, Fig. 2) — the rank-discount curves ``disc(k)`` and the
data-quality report when the run has one.

Charts are drawn with matplotlib on their own Agg canvas (no display needed, and a notebook's pyplot
backend is left alone); matplotlib is a core dependency, so the report works right after
``pip install receval``.

The page is laid out for 1280 px without horizontal scrolling: summary tables have a row per metric
definition and a column per algorithm (at most :data:`ALGORITHMS_PER_TABLE` per table), and the data
quality of every algorithm is one table, check × algorithm, with the non-zero problem counts marked.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from receval._version import __version__
from receval.errors import ConfigError, StoreError
from receval.results.read import RunInfo
from receval.results.tables import format_p, format_value, wide_tables

NOVELTY_DIVERSITY = ("epc", "efd", "epd", "eild")
DISCOUNT_ORDER = ("none", "log", "exp", "reciprocal")
DEFAULT_EXP_BASE = 0.85
_DPI = 100
ALGORITHMS_PER_TABLE = 9
# What a metric name means where the name alone misleads.
METRIC_NOTES = {
    "gini": "Gini diversity: RankSys's 1 − G over item exposure (1 = every item recommended equally often, "
            "0 = all exposure on one item); the reverse of the usual Gini coefficient",
}
# Data-quality records that count rather than flag a problem.
_QUALITY_COUNTS = {"test_users", "users"}


def discount_curve(discount: str, k: np.ndarray, exp_base: float = DEFAULT_EXP_BASE) -> np.ndarray:
    """Rank discount ``disc(k)`` for 1-based ranks ``k`` (Vargas & Castells 2011, §3.2).

    ``none``: 1; ``log``: ``1 / log2(k + 1)``; ``exp``: ``b^(k − 1)``; ``reciprocal``: ``1 / k``.
    """
    k = np.asarray(k, dtype=float)
    if discount == "none":
        return np.ones_like(k)
    if discount == "log":
        return 1.0 / np.log2(k + 1.0)
    if discount == "exp":
        return exp_base ** (k - 1.0)
    if discount == "reciprocal":
        return 1.0 / k
    raise ConfigError(f"unknown discount {discount!r}: expected one of {', '.join(DISCOUNT_ORDER)}")


def agg_figure(**options: Any) -> Any:
    """A :class:`matplotlib.figure.Figure` drawn by its own Agg canvas: no display, in pods and CI, and
    no pyplot, so a notebook's backend and its open figures are left as they are."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(**options)
    FigureCanvasAgg(figure)
    return figure


def _png_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    return buf.getvalue()


def _exp_base(summary: pd.DataFrame) -> float:
    if "exp_base" in summary.columns:
        bases = pd.to_numeric(summary["exp_base"], errors="coerce").dropna().unique()
        if len(bases) == 1:
            return float(bases[0])
    return DEFAULT_EXP_BASE


def _sorted_discounts(values: Any) -> list[str]:
    return sorted(set(values), key=lambda d: (DISCOUNT_ORDER.index(d) if d in DISCOUNT_ORDER else 99, d))


def novelty_diversity_cutoff(summary: pd.DataFrame) -> int | None:
    """The cutoff the bar chart shows by default: the one with the most EPC/EFD/EPD/EILD records
    (the largest such cutoff on a tie)."""
    rows = summary[summary["metric"].isin(NOVELTY_DIVERSITY)]
    cutoffs = pd.to_numeric(rows["cutoff"], errors="coerce").dropna().astype(int)
    if cutoffs.empty:
        return None
    counts = cutoffs.value_counts()
    return int(max(counts.index, key=lambda c: (counts[c], c)))


def novelty_diversity_figure(summary: pd.DataFrame, cutoff: int | None = None) -> Any | None:
    """The grouped bar chart (2 rows × EPC/EFD/EPD/EILD); None when the run has none of them.

    Row 1 is relevance-unaware (``relevance = none``), row 2 relevance-aware (``binary`` if present,
    else the first other relevance model). Groups are algorithms, bars are rank discounts.
    """
    rows = summary[summary["metric"].isin(NOVELTY_DIVERSITY)]
    if rows.empty:
        return None
    cutoff = novelty_diversity_cutoff(summary) if cutoff is None else cutoff
    rows = rows[pd.to_numeric(rows["cutoff"], errors="coerce") == cutoff]
    if rows.empty:
        return None
    aware = sorted(r for r in set(rows["relevance"]) if r != "none")
    aware_model = "binary" if "binary" in aware else (aware[0] if aware else None)
    algorithms = list(dict.fromkeys(summary["algorithm"]))
    discounts = _sorted_discounts(rows["discount"])
    from matplotlib import colormaps

    fig = agg_figure(figsize=(13, 6.2))
    axes = fig.subplots(2, 4, squeeze=False)
    colors = colormaps["tab10"].colors
    width = 0.8 / max(1, len(discounts))
    x = np.arange(len(algorithms))
    for r, relevance in enumerate(("none", aware_model)):
        for c, metric in enumerate(NOVELTY_DIVERSITY):
            ax = axes[r][c]
            part = rows[(rows["metric"] == metric) & (rows["relevance"] == relevance)] if relevance else rows.iloc[0:0]
            if part.empty:
                ax.text(0.5, 0.5, "no records", ha="center", va="center", transform=ax.transAxes, color="#888")
            for j, discount in enumerate(discounts):
                values = (
                    part[part["discount"] == discount]
                    .drop_duplicates("algorithm")
                    .set_index("algorithm")["value"]
                    .reindex(algorithms)
                    .to_numpy(dtype=float)
                )
                if np.all(np.isnan(values)):
                    continue
                ax.bar(x + (j - (len(discounts) - 1) / 2) * width, values, width, label=discount, color=colors[j % 10])
            ax.set_xticks(x, algorithms, rotation=30 if len(algorithms) > 3 else 0, ha="right" if len(algorithms) > 3 else "center")
            ax.set_title(f"{metric.upper()}@{cutoff}" + ("" if relevance == "none" else f"  [{relevance}]"), fontsize=10)
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
            if c == 0:
                ax.set_ylabel("relevance-unaware" if r == 0 else f"relevance-aware ({relevance or '—'})")
    handles, labels = [], []
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    if handles:
        fig.legend(handles, [f"discount: {lab}" for lab in labels], loc="upper center", ncol=len(labels), frameon=False)
    # Fixed margins instead of tight_layout: the same look, a fraction of the drawing time.
    fig.subplots_adjust(left=0.07, right=0.99, top=0.88, bottom=0.1, wspace=0.3, hspace=0.45)
    return fig


def discount_figure(max_rank: int = 20, exp_base: float = DEFAULT_EXP_BASE) -> Any:
    """Rank-discount curves ``disc(k)``, k = 1..max_rank, for none, log, exp(b) and reciprocal."""
    k = np.arange(1, max(2, max_rank) + 1)
    fig = agg_figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    for discount, marker in zip(DISCOUNT_ORDER, "os^d"):
        label = f"exp({exp_base:g})" if discount == "exp" else discount
        ax.plot(k, discount_curve(discount, k, exp_base), marker=marker, markersize=3.5, label=label)
    ax.set_xlabel("rank k")
    ax.set_ylabel("disc(k)")
    ax.set_ylim(0, 1.05)
    ax.set_title("Rank discount models")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def trend_figure(trend: pd.DataFrame, title: str) -> Any:
    """A metric over runs: one line per algorithm (per dataset when there are several), one x position per
    run, labelled with its id and creation date; the legend sits right of the axes, never over a line."""
    if trend.empty:
        raise StoreError("no complete run has this metric: nothing to plot")
    runs = trend.drop_duplicates("run_id")[["run_id", "created"]]
    if runs["created"].notna().all():
        runs = runs.assign(_t=pd.to_datetime(runs["created"], utc=True)).sort_values("_t", kind="stable")
    position = {run_id: i for i, run_id in enumerate(runs["run_id"])}
    fig = agg_figure(figsize=(max(8.0, 0.9 * len(position) + 3.5), 4.2))
    ax = fig.subplots()
    several = "dataset" in trend.columns and trend["dataset"].nunique() > 1
    keys = ["dataset", "algorithm"] if several else ["algorithm"]
    for key, part in trend.groupby(keys, sort=True):
        label = " / ".join(map(str, key)) if several else str(key[0] if isinstance(key, tuple) else key)
        part = part.assign(_x=part["run_id"].map(position)).sort_values("_x")
        ax.plot(part["_x"], part["value"], marker="o", label=label)
    labels = []
    for run_id, created in zip(runs["run_id"], runs["created"]):
        stamp = pd.Timestamp(created).strftime("%Y-%m-%d") if created is not None and not pd.isna(created) else ""
        labels.append(f"{run_id}\n{stamp}" if stamp else str(run_id))
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("run (created, UTC)")
    ax.set_title(title)
    ax.set_ylabel("value")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return fig


def _max_rank(summary: pd.DataFrame, run: RunInfo | None) -> int:
    cutoffs = [int(c) for c in pd.to_numeric(summary.get("cutoff"), errors="coerce").dropna()] if len(summary) else []
    cutoffs += list(run.cutoffs) if run else []
    return max(cutoffs, default=20)


def render_charts(summary: pd.DataFrame, *, cutoff: int | None = None, run: RunInfo | None = None) -> dict[str, bytes]:
    """The report's charts as PNG bytes by file name: ``novelty_diversity.png`` (when the run has
    EPC/EFD/EPD/EILD records) and ``discounts.png``. Drawn once, shared by the HTML page and the files.
    """
    charts = {}
    figure = novelty_diversity_figure(summary, cutoff) if not summary.empty else None
    if figure is not None:
        charts["novelty_diversity.png"] = _png_bytes(figure)
    exp_base = _exp_base(summary) if not summary.empty else DEFAULT_EXP_BASE
    charts["discounts.png"] = _png_bytes(discount_figure(_max_rank(summary, run), exp_base))
    return charts


def write_png_charts(
    out_dir: str | Path,
    summary: pd.DataFrame,
    *,
    cutoff: int | None = None,
    run: RunInfo | None = None,
    charts: Mapping[str, bytes] | None = None,
) -> list[Path]:
    """Write the charts of :func:`render_charts` (or the given ``charts``) into ``out_dir``.

    Returns the paths written.
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{out}: cannot create the chart folder: {exc.strerror}") from None
    charts = render_charts(summary, cutoff=cutoff, run=run) if charts is None else charts
    written = []
    for name, data in charts.items():
        path = out / name
        _write(path, data)
        written.append(path)
    return written


def write_trend_png(trend: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Write the trend chart of :func:`receval.results.read.metric_trend` as a PNG."""
    path = Path(path)
    _write(path, _png_bytes(trend_figure(trend, title)))
    return path


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise StoreError(f"{path}: cannot be written: {exc.strerror}") from None


# -- HTML ---------------------------------------------------------------------------------------

_CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --head:#f0f4f8; --accent:#2f6fb0; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0; background: #fafbfc; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 60px; background: #fff; min-height: 100vh; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 20px 0 8px; color: var(--muted); }
p.lead { color: var(--muted); margin: 0 0 18px; }
.status { display:inline-block; padding: 1px 10px; border-radius: 10px; font-size: 13px; font-weight: 600; }
.status.complete { background:#e3f9e5; color:#207227; } .status.partial { background:#fff3c4; color:#8d6708; }
.status.failed { background:#ffe3e3; color:#a61b1b; }
dl.meta { display:grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; }
table { border-collapse: collapse; font-size: 13px; margin: 4px 0 12px; max-width: 100%; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
td:first-child { white-space: normal; }
th { background: var(--head); font-weight: 600; position: sticky; top: 0; }
th:first-child, td:first-child { text-align: left; }
tbody tr:nth-child(even) td { background: #fbfcfd; } tbody tr:hover td { background: #eef4fb; }
td.best { font-weight: 700; color: var(--accent); }
td.warn { background: #fff3c4 !important; color: #8d4a08; font-weight: 600; }
.warn-mark { color: #8d4a08; } small.note { color: var(--muted); font-weight: 400; }
ul.notes { color: var(--muted); font-size: 13px; padding-left: 18px; }
th.algorithm { min-width: 64px; }
figure { margin: 8px 0 20px; } figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; }
code { background: var(--head); padding: 1px 4px; border-radius: 3px; font-size: 13px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _img(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img class="chart" alt="{_e(alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _meta_html(run: RunInfo) -> str:
    meta = run.metadata or {}
    items = [
        ("run", f"<code>{_e(run.run_id)}</code>"),
        ("status", f'<span class="status {_e(run.status)}">{_e(run.status)}</span>'
         + (f" (run.json: {_e(run.reported_status)})" if run.reported_status and run.reported_status != run.status else "")),
        ("dataset", _e(run.dataset)),
        ("created", _e(run.created.isoformat() if run.created else "unknown")),
        ("finished", _e(run.finished.isoformat() if run.finished else "—")),
        ("algorithms", _e(", ".join(run.algorithms) or "—")),
        ("cutoffs", _e(", ".join(map(str, run.cutoffs)) or "—")),
        ("shards", _e(run.shards if run.shards is not None else "—")),
    ]  # fmt: skip
    if run.failure:
        items.append(("failure", _e(run.failure)))
    versions = meta.get("versions")
    if isinstance(versions, Mapping) and versions:
        items.append(("versions", _e(", ".join(f"{k} {v}" for k, v in versions.items()))))
    return '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _metric_label(label: str) -> str:
    """A metric column label as HTML, with its note (hover and footnote mark) when it has one."""
    name = label.split("[", 1)[0]
    if name in METRIC_NOTES:
        return f'<span title="{_e(METRIC_NOTES[name])}">{_e(label)} <small>(1−G)</small></span>'
    return _e(label)


def _summary_html(summary: pd.DataFrame, digits: int) -> str:
    if summary.empty:
        return "<p>No complete summary records.</p>"
    blocks = []
    for cutoff, wide in wide_tables(summary).items():
        title = f"@{cutoff}" if cutoff is not None else "without cutoff"
        blocks.append(f"<h3>{_e(title)}</h3>")
        best = wide.max(axis=0, skipna=True)
        algorithms = list(wide.index)
        for start in range(0, len(algorithms), ALGORITHMS_PER_TABLE):
            group = algorithms[start:start + ALGORITHMS_PER_TABLE]
            head = "<tr><th>metric</th>" + "".join(f'<th class="algorithm">{_e(a)}</th>' for a in group) + "</tr>"
            body = []
            for column in wide.columns:
                cells = []
                for algorithm in group:
                    value = wide.at[algorithm, column]
                    is_best = wide[column].notna().sum() > 1 and pd.notna(value) and value == best[column]
                    cells.append(f'<td{" class=best" if is_best else ""}>{_e(format_value(value, digits))}</td>')
                body.append(f'<tr class="metric-row"><td>{_metric_label(str(column))}</td>{"".join(cells)}</tr>')
            blocks.append(f"<table class=summary><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>")
    names = {str(c).split("[", 1)[0] for c in summary["metric"]} if "metric" in summary else set()
    notes = [f"<li><b>{_e(n)}</b>: {_e(METRIC_NOTES[n])}.</li>" for n in sorted(names & set(METRIC_NOTES))]
    if notes:
        blocks.append(f"<ul class=notes>{''.join(notes)}</ul>")
    return "".join(blocks)


def _json_cell(value: Any) -> str:
    if isinstance(value, float):
        return format_value(value, 4) if math.isfinite(value) else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _quality_rows(quality: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, str], list[Any]]:
    """(check -> algorithm -> value, check -> note, what is neither) from the per-source records.

    Records (``{"algorithm", "metric", "cutoff", "value"}``) and flat ``{check: value}`` mappings are
    both read; the run-level copies of the algorithms' records collapse into one cell each.
    """
    table: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    other: list[Any] = []
    for source, content in quality.items():
        for item in content if isinstance(content, list) else [content]:
            if isinstance(item, Mapping) and "metric" in item and "value" in item:
                check = str(item["metric"]) + (f" @{item['cutoff']}" if item.get("cutoff") not in (None, "") else "")
                table.setdefault(check, {})[str(item.get("algorithm") or source)] = item["value"]
                if item.get("note"):
                    notes[check] = str(item["note"])
            elif isinstance(item, Mapping) and all(not isinstance(v, dict | list) for v in item.values()):
                for check, value in item.items():
                    table.setdefault(str(check), {})[str(source)] = value
            else:
                other.append(item)
    return table, notes, other


def _is_warning(check: str, value: Any) -> bool:
    if check.split(" @", 1)[0] in _QUALITY_COUNTS or isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value != 0


def _quality_html(quality: Mapping[str, Any]) -> str:
    table, notes, other = _quality_rows(quality)
    blocks = []
    if table:
        algorithms = list(dict.fromkeys(a for cells in table.values() for a in cells))
        warnings = sum(_is_warning(c, v) for c, cells in table.items() for v in cells.values())
        blocks.append(
            f"<p class=lead>{warnings} warning{'s' if warnings != 1 else ''}: non-zero problem counts are marked "
            "<span class=warn-mark>⚠</span>; rows with no problem for any algorithm are left out.</p>"
            if warnings else "<p class=lead>No warnings: every problem count is zero.</p>"
        )
        for start in range(0, len(algorithms), ALGORITHMS_PER_TABLE):
            group = algorithms[start:start + ALGORITHMS_PER_TABLE]
            head = "<tr><th>check</th>" + "".join(f"<th>{_e(a)}</th>" for a in group) + "</tr>"
            rows = []
            for check, cells in table.items():
                flagged = [_is_warning(check, cells.get(a)) for a in group]
                if check.split(" @", 1)[0] not in _QUALITY_COUNTS and not any(flagged) and warnings:
                    continue
                note = f' <small class=note>({_e(notes[check])})</small>' if check in notes else ""
                tds = "".join(
                    f'<td class=warn title="warning">⚠ {_e(_json_cell(cells[a]))}</td>' if flag
                    else f"<td>{_e(_json_cell(cells[a])) if a in cells else '–'}</td>"
                    for a, flag in zip(group, flagged)
                )
                rows.append(f'<tr class="quality-row{" warn-row" if any(flagged) else ""}"><td>{_e(check)}{note}</td>{tds}</tr>')
            blocks.append(f"<table class=quality><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")
    for item in other:
        blocks.append(f"<p><code>{_e(_json_cell(item))}</code></p>")
    return "".join(blocks)


def gate_section_html(gate: Mapping[str, Any] | None, digits: int = 4) -> str:
    """The regression gate of a gated run (its ``gate.json``): one table per algorithm × rule with verdicts.

    Empty when the run was not gated. Self-contained (its own inline styles), so it can sit anywhere on a page.
    """
    if not gate:
        return ""

    def num(value: Any) -> str:
        if value is None or isinstance(value, str):
            return _e(value if value is not None else "–")
        return _e(format_value(float(value), digits))

    colour = {"pass": "#1a7f37", "regression": "#cf222e", "not significant": "#9a6700", "no baseline": "#57606a"}
    status = str(gate.get("status", ""))
    parts = [
        "<section class=gate><h2>Regression gate</h2>",
        f'<p><b style="color:{colour.get(status, "inherit")}">{_e(status)}</b> — {_e(gate.get("message", ""))}</p>',
    ]
    checks = list(gate.get("checks") or [])
    for algorithm in dict.fromkeys(str(c.get("algorithm")) for c in checks):
        head = "".join(
            f"<th>{_e(h)}</th>"
            for h in ("rule", "key", "baseline", "tonight", "delta", "CI", "p (Holm)", "verdict")
        )
        rows = []
        for c in (c for c in checks if str(c.get("algorithm")) == algorithm):
            ci = f"[{num(c.get('ci_low'))}, {num(c.get('ci_high'))}]" if c.get("ci_low") is not None else "–"
            p = c.get("p_holm") if c.get("p_holm") is not None else c.get("p")
            p_text = _e(format_p(None if p is None else float(p)))
            if c.get("p_holm") is None and p is not None:
                p_text += " (raw)"  # a rule without a level is outside the Holm family
            verdict = str(c.get("verdict", ""))
            note = f" ({_e(c['note'])})" if c.get("note") else ""
            rows.append(
                f"<tr class=gate-check><td><code>{_e(c.get('rule'))}</code></td><td><code>{_e(c.get('key'))}</code></td>"
                f"<td>{num(c.get('baseline'))}</td><td>{num(c.get('tonight'))}</td><td>{num(c.get('delta'))}</td>"
                f"<td>{ci}</td><td>{p_text}</td>"
                f'<td style="color:{colour.get(verdict, "inherit")};font-weight:bold">{_e(verdict)}{note}</td></tr>'
            )
        parts.append(
            f"<h3>{_e(algorithm)} vs baseline <code>{_e(gate.get('baseline'))}</code></h3>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    parts.append(
        "<p class=lead>delta = tonight − baseline over the users of both runs; a regression is a drop beyond the "
        "rule's tolerance that is, when the rule has a level, significant (paired test, Holm-corrected across the "
        "checks).</p></section>"
    )
    return "".join(parts)


def render_html(
    run: RunInfo,
    summary: pd.DataFrame,
    data_quality: Mapping[str, Any] | None = None,
    *,
    cutoff: int | None = None,
    digits: int = 4,
    title: str | None = None,
    charts: Mapping[str, bytes] | None = None,
    gate: Mapping[str, Any] | None = None,
) -> str:
    """The report page of ``run`` as one self-contained HTML document (no external resources).

    Parameters
    ----------
    run : RunInfo
        The run's metadata (``receval.results.read.read_run_info``).
    summary : DataFrame
        Its summary records (``receval.results.read.load_summary``).
    data_quality : mapping, optional
        Data-quality records per source (``receval.results.read.load_data_quality``).
    cutoff : int, optional
        Cutoff of the EPC/EFD/EPD/EILD bar chart; default the largest one with such records.
    charts : mapping, optional
        PNG bytes from :func:`render_charts`, when the caller also writes them as files.
    gate : mapping, optional
        The run's ``gate.json`` (``receval.results.gate.load_gate``): shown as its own section.
    """
    title = title or f"receval report — {run.run_id}"
    sections = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="lead">Rank- and relevance-aware novelty, diversity and accuracy of the run '
        f"<code>{_e(run.run_id)}</code> on <b>{_e(run.dataset)}</b>.</p>",
        "<h2>Run</h2>",
        _meta_html(run),
        "<h2>Summary</h2>",
        "<p class=lead>One row per metric definition <code>metric[relevance,discount]</code>, one column per "
        "algorithm. The best value of each row is in bold (higher is better for every metric shown).</p>",
        _summary_html(summary, digits),
        gate_section_html(gate, digits),
    ]
    charts = render_charts(summary, cutoff=cutoff, run=run) if charts is None else charts
    if "novelty_diversity.png" in charts:
        shown = novelty_diversity_cutoff(summary) if cutoff is None else cutoff
        sections += [
            "<h2>Novelty and diversity</h2>",
            _img(
                charts["novelty_diversity.png"],
                "EPC, EFD, EPD and EILD per algorithm",
                f"EPC, EFD, EPD and EILD @{shown} per algorithm; top row relevance-unaware, bottom row "
                "relevance-aware; one bar per rank discount (Vargas & Castells, RecSys 2011).",
            ),
        ]
    exp_base = _exp_base(summary) if not summary.empty else DEFAULT_EXP_BASE
    max_rank = _max_rank(summary, run)
    if "discounts.png" in charts:
        sections += [
            "<h2>Rank discounts</h2>",
            _img(
                charts["discounts.png"],
                "rank discount curves",
                f"disc(k) for k = 1..{max(2, max_rank)}: none = 1, log = 1/log2(k+1), exp = {exp_base:g}^(k-1), "
                "reciprocal = 1/k.",
            ),
        ]
    if data_quality:
        sections += ["<h2>Data quality</h2>", _quality_html(data_quality)]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections.append(f"<footer>Generated by receval {_e(__version__)} on {_e(generated)}.</footer>")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(sections)}</main></body></html>\n"
    )
