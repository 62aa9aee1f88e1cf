"""A run's summary as OpenMetrics text, for a Prometheus Pushgateway or a textfile collector.

One gauge family, ``receval_metric``, with one sample per metric key and algorithm::

    # TYPE receval_metric gauge
    receval_metric{dataset="ml-100k",algorithm="pop",metric="epc",cutoff="10",relevance="binary",discount="exp"} 0.0123
    # EOF

``cutoff`` is ``all`` for a value without cutoff; an undefined value is ``NaN``. When two records of an
algorithm share a key but differ in a parameter (``alpha``, ``threshold``, ...), their samples also get a
``params`` label (``alpha=0.25``) so that no two samples share a label set. The text is valid
OpenMetrics 1.0 and, since ``# EOF`` is a comment to it, Prometheus text format 0.0.4 too.
No run id label: it would make a new series every night; the run is named in the HELP text.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from receval.metrics.keys import cutoff_text

FAMILY = "receval_metric"
LABELS = ("dataset", "algorithm", "metric", "cutoff", "relevance", "discount")
_PARAMETERS = ("threshold", "exp_base", "background", "distance", "profile", "alpha", "catalog")


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def to_openmetrics(summary: pd.DataFrame, run: Any) -> str:
    """The OpenMetrics exposition of ``summary`` (``load_summary``) of ``run`` (a ``RunInfo``)."""
    dataset = getattr(run, "dataset", "?")
    lines = [
        f"# TYPE {FAMILY} gauge",
        f"# HELP {FAMILY} receval summary value of run {_escape(getattr(run, 'run_id', '?'))}:"
        " metric[relevance,discount]@cutoff per algorithm",
    ]
    params = [p for p in _PARAMETERS if p in summary.columns]
    duplicated = summary.duplicated(subset=["algorithm", "key"], keep=False)
    for (_, record), dup in zip(summary.iterrows(), duplicated):
        labels = {
            "dataset": dataset,
            "algorithm": record["algorithm"],
            "metric": record["metric"],
            "cutoff": cutoff_text(record["cutoff"]),
            "relevance": record["relevance"],
            "discount": record["discount"],
        }
        if dup:
            labels["params"] = ",".join(f"{p}={record[p]}" for p in params if pd.notna(record[p]))
        text = ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items())
        lines.append(f"{FAMILY}{{{text}}} {_number(record['value'])}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


__all__ = ["FAMILY", "LABELS", "to_openmetrics"]
