"""receval: rank- and relevance-aware novelty and diversity evaluation of recommender systems.

Implements the metric framework of Vargas & Castells, "Rank and Relevance in Novelty and Diversity
Metrics" (RecSys 2011), with RankSys-compatible semantics, plus accuracy, intent-aware and
aggregate metrics, computed in user shards that merge exactly.

The library entry point is :func:`receval.evaluate` (see ``docs/python-api.md``); it is imported on
first use, so that ``import receval`` stays fast.
"""

from receval._version import __version__

__all__ = ["Evaluation", "__version__", "evaluate"]


def __getattr__(name: str):
    if name in ("evaluate", "Evaluation"):
        from receval import api

        return getattr(api, name)
    raise AttributeError(f"module 'receval' has no attribute {name!r}")
