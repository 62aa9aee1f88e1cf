"""receval: rank- and relevance-aware novelty and diversity evaluation of recommender systems.

Implements the metric framework of Vargas & Castells, "Rank and Relevance in Novelty and Diversity
Metrics" (RecSys 2011), with RankSys-compatible semantics, plus accuracy, intent-aware and
aggregate metrics, computed in user shards that merge exactly.
"""

__version__ = "0.1.0"
