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

#: The environment variables that size the BLAS and OpenMP thread pools: read once, when numpy and
#: SciPy load their BLAS. The engine holds BLAS to one thread while it computes
#: (:func:`receval.metrics.engine._in_threads`); a process that sets these before numpy is imported
#: starts no pool at all.
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'receval.metrics' has no attribute {name!r}")
