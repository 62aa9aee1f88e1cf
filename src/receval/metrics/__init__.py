"""Metrics: pure functions of clean frames (no I/O). See :mod:`receval.metrics.engine`.

The models a metric is composed of and the spec of a reported value are re-exported here
(imported on first use): ``from receval.metrics import ExpDiscount, MetricSpec, Relevance``.
"""

_EXPORTS = {
    **{name: "receval.metrics.models" for name in (
        "Discount", "NoDiscount", "LogDiscount", "ExpDiscount", "ReciprocalDiscount", "register_discount",
        "Relevance", "ItemNovelty", "PopularityComplement", "FreeDiscovery", "ProfileDistance",
    )},
    "ItemDistance": "receval.metrics.distance",
    "MetricSpec": "receval.metrics.spec",
    "MetricDefinition": "receval.metrics.registry",
    "novelty_metric": "receval.metrics.registry",
}

__all__ = sorted(_EXPORTS)

def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'receval.metrics' has no attribute {name!r}")
