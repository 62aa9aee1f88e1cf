"""Recommenders and re-rankers that produce the lists receval evaluates.

The paper (Vargas & Castells, RecSys 2011) compares MF, CB, UB, AVG and RND; receval offers those
plus POP and IB, and the diversifying re-rankers MMR, xQuAD and IA-Select over any of them::

    from receval.recommenders import make
    model = make("mf", factors=50).fit(train)
    recs = model.recommend(users, k=10)              # user, item, rank, score
    diverse = make("mmr", base="mf", lambda_=0.5).fit(train, features)

See ``docs/recommenders.md`` for every algorithm, its defaults and its reference.
"""

from __future__ import annotations

from receval.recommenders.base import Recommender
from receval.recommenders.registry import ALGORITHMS, RERANKERS, algorithm_class, make

__all__ = ["ALGORITHMS", "RERANKERS", "Recommender", "algorithm_class", "make"]
