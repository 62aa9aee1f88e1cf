"""The vectorized engine (receval.metrics.engine) against the loop-based reference.

Random small data sets (hypothesis) cover: string and integer ids, ratings 0-5 (so ties at the
threshold and zero ratings), featureless items, real feature weights, short lists, test users
without a list, lists of users who are not in test (ignored, decision 9.3), users only in train.
Every metric of ``spec.all_specs`` is compared to the reference to 1e-9, per user and averaged.

An end-to-end check runs both on MovieLens 100K (u1.base / u1.test, genres as features) with a
popularity recommender, for the default report at K = 10 and 50.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ranksys_reference import Disc, Reference, Rel
from receval.metrics import engine, spec

TOL = 1e-9


# ---------------------------------------------------------------------------------------------
# Random cases
@dataclass
class Case:
    """One small data set in plain Python form, convertible to engine frames and a Reference."""

    train: list  # (user, item, rating), deduplicated
    test: list  # (user, item, rating), no duplicate (user, item)
    recs: dict  # user -> [item, ...] in rank order
    features: dict  # item -> {feature: weight}; items missing or {} are featureless
    with_features: bool = True

    def frames(self):
        train = pd.DataFrame(self.train, columns=["user", "item", "rating"])
        test = pd.DataFrame(self.test, columns=["user", "item", "rating"])
        rows = [(u, i, k) for u, items in self.recs.items() for k, i in enumerate(items, 1)]
        recs = pd.DataFrame(rows, columns=["user", "item", "rank"])
        feats = None
        if self.with_features:
            frows = [(i, f, w) for i, fs in self.features.items() for f, w in fs.items()]
            feats = pd.DataFrame(frows, columns=["item", "feature", "weight"])
        id_type = str if isinstance(self.test[0][0], str) else np.int64
        train, test = (f.astype({"user": id_type, "item": id_type, "rating": float}) for f in (train, test))
        recs = recs.astype({"user": id_type, "item": id_type, "rank": np.int64})  # typed even when empty
        if feats is not None:
            feats = feats.astype({"item": id_type, "feature": str, "weight": float})
        return train, test, recs, feats

    def reference(self, distance="cosine", catalog=None) -> Reference:
        return Reference(
            self.train, self.test, self.recs, self.features if self.with_features else {},
            distance=distance, catalog=catalog,
        )


@st.composite
def cases(draw, max_users: int = 7, max_items: int = 9) -> Case:
    string_ids = draw(st.booleans())
    n_users = draw(st.integers(1, max_users))
    n_items = draw(st.integers(2, max_items))
    users = [f"u{k}" for k in range(n_users)] if string_ids else [10 * k + 3 for k in range(n_users)]
    items = [f"i{k:02d}" if k % 2 else f"j{k}" for k in range(n_items)] if string_ids else [7 * k + 1 for k in range(n_items)]
    rating = st.sampled_from([0.0, 1.0, 2.0, 3.0, 3.5, 4.0, 4.5, 5.0])
    pairs = [(u, i) for u in users for i in items]

    train_pairs = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=len(pairs), unique=True))
    train = [(u, i, draw(rating)) for u, i in train_pairs]
    test_pairs = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=len(pairs), unique=True))
    test = [(u, i, draw(rating)) for u, i in test_pairs]

    # recommended items stay inside train and test (the Gini universe); some users get no list,
    # lists have 1..n items (short lists), users outside test may get one too
    universe = sorted({i for _, i, _ in train} | {i for _, i, _ in test}, key=str)
    recs = {}
    for u in users:
        if draw(st.booleans()) or draw(st.booleans()):
            length = draw(st.integers(1, len(universe)))
            recs[u] = draw(st.permutations(universe))[:length]

    features = {}
    n_feats = draw(st.integers(1, 5))
    real_weights = draw(st.booleans())
    weight = st.sampled_from([0.5, 1.0, 2.0, 3.0]) if real_weights else st.just(1.0)
    for i in items:
        chosen = draw(st.lists(st.integers(0, n_feats - 1), max_size=n_feats, unique=True))
        if chosen:  # otherwise featureless
            features[i] = {f"g{f}": draw(weight) for f in chosen}
    with_features = bool(features) and draw(st.integers(0, 9)) > 0
    return Case(train, test, recs, features, with_features)


# ---------------------------------------------------------------------------------------------
# Mapping a MetricSpec to the reference
def _rel(s, background: float) -> Rel:
    # the spec carries its own background; the config's value must agree (checked in compare)
    assert s.relevance.kind != "background" or s.relevance.background == background
    return Rel(s.relevance.kind, s.relevance.threshold, s.relevance.background)


def _disc(s) -> Disc:
    return Disc(s.discount.kind, getattr(s.discount, "base", 0.85))  # only exp has a base


def reference_per_user(ref: Reference, s, *, alpha: float, background: float, profile: str) -> dict:
    n, tau = s.cutoff, s.relevance.threshold
    m = s.metric
    if m in ("precision", "recall", "ap", "rr"):
        return ref.per_user(m, n, rel=Rel("binary", tau))
    if m == "ndcg":
        return ref.per_user(m, n, rel=Rel("ndcg", tau))
    if m in ("epc", "efd", "eild"):
        return ref.per_user(m, n, rel=_rel(s, background), disc=_disc(s))
    if m == "epd":
        return ref.per_user(m, n, rel=_rel(s, background), disc=_disc(s), profile=profile)
    if m == "ild":
        return ref.per_user(m, n)
    if m == "alpha_ndcg":
        return ref.per_user(m, n, alpha=alpha, threshold=tau)
    if m in ("err_ia", "s_recall"):
        return ref.per_user(m, n, threshold=tau)
    raise AssertionError(f"no reference for {m}")


def reference_system(ref: Reference, s, *, background: float) -> float:
    if s.metric == "aggregate_diversity":
        return ref.aggregate_diversity(s.cutoff, _rel(s, background))
    return getattr(ref, s.metric)(s.cutoff)


def summary_values(state) -> dict:
    """{(metric, cutoff, relevance, discount): value} from the engine's summary records."""
    return {
        (r["metric"], r["cutoff"], r["relevance"], r["discount"]): math.nan if r["value"] is None else r["value"]
        for r in state.summary()
        if r["kind"] == "metric"
    }


def close(a: float, b: float, tol: float = TOL) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def compare(case: Case, specs, *, distance="cosine", alpha=0.5, background=0.0, profile="unweighted",
            threshold=4.0, catalog=None, exp_base=0.85) -> list[str]:
    """Run engine and reference on ``case``; return a list of mismatch descriptions."""
    train, test, recs, feats = case.frames()
    config = engine.EvaluationConfig(
        specs=specs, threshold=threshold, distance=distance, alpha=alpha, background=background, exp_base=exp_base,
        epd_profile=profile, catalog=None if catalog is None else len(catalog),
    )
    state = engine.evaluate(train, test, recs, feats, config)
    ref = case.reference(distance, catalog)
    per_user = state.per_user.set_index("user")
    summary = summary_values(state)
    problems = []
    for s in specs:
        skey = (s.metric, s.cutoff, s.relevance.kind, s.discount.kind)
        if s.per_user:
            expected = reference_per_user(ref, s, alpha=alpha, background=background, profile=profile)
            for user, value in expected.items():
                got = float(per_user.at[user, s.key])
                if not close(got, value):
                    problems.append(f"{s.key} user {user!r}: engine {got!r} reference {value!r}")
            mean = math.fsum(expected.values()) / len(expected)
        else:
            mean = reference_system(ref, s, background=background)
        if not close(float(summary[skey]), mean):
            problems.append(f"{s.key} summary: engine {summary[skey]!r} reference {mean!r}")
    return problems


# The engine's cost is mostly per spec (a few ms each), so the full matrix of ~230 specs runs at
# two cutoffs and the distance-only variants run on the distance metrics alone.
CUTOFFS = (1, 4)
ALL = spec.all_specs(CUTOFFS, 4.0, exp_base=0.85, background=0.3)
DISTANCE_SPECS = [s for s in ALL if s.metric in ("epd", "eild", "ild")]
NO_FEATURE_METRICS = ("epd", "eild", "ild", "alpha_ndcg", "err_ia", "s_recall")


def hypo(examples: int):
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _specs_for(case: Case, specs, distance="cosine"):
    # Without features the aspect-based metrics (and, unless the distance is rating-based, the
    # distance-based ones) cannot be computed: the engine refuses them (ConfigError).
    if case.with_features:
        return specs
    needs = ("alpha_ndcg", "err_ia", "s_recall") if distance == "ratings" else NO_FEATURE_METRICS
    return [s for s in specs if s.metric not in needs]


@hypo(25)
@given(case=cases())
def test_every_metric_matches_reference(case):
    assert compare(case, _specs_for(case, ALL), background=0.3) == []


@hypo(20)
@given(case=cases(), distance=st.sampled_from(["jaccard", "cosine"]), profile=st.sampled_from(["unweighted", "relevance"]))
def test_distance_metrics_match_reference_jaccard_and_weighted_profile(case, distance, profile):
    specs = _specs_for(case, DISTANCE_SPECS)
    if specs:
        assert compare(case, specs, distance=distance, background=0.3, profile=profile) == []


@hypo(20)
@given(case=cases(), profile=st.sampled_from(["unweighted", "relevance"]))
def test_distance_metrics_match_reference_ratings_distance(case, profile):
    specs = _specs_for(case, DISTANCE_SPECS, "ratings")
    assert compare(case, specs, distance="ratings", background=0.3, profile=profile) == []


@hypo(20)
@given(case=cases(), tau=st.sampled_from([3.0, 3.5, 4.5]), alpha=st.sampled_from([0.25, 0.5, 0.75]))
def test_other_threshold_alpha_and_exp_base(case, tau, alpha):
    specs = _specs_for(case, spec.all_specs((3,), tau, exp_base=0.7, background=0.6))
    assert compare(case, specs, threshold=tau, alpha=alpha, background=0.6, exp_base=0.7) == []


@hypo(20)
@given(case=cases())
def test_gini_with_a_catalog(case):
    extra = ["zz-extra-1", "zz-extra-2"] if isinstance(case.test[0][1], str) else [10_001, 10_002]
    catalog = sorted({i for _, i, _ in case.train} | {i for _, i, _ in case.test}, key=str) + extra
    specs = [s for s in ALL if s.metric == "gini"]
    assert compare(case, specs, catalog=catalog) == []


# ---------------------------------------------------------------------------------------------
# MovieLens 100K end to end
N_USERS = 100


def _ml100k(datasets: Path):
    ml100k = datasets / "ml-100k"
    cols = ["user", "item", "rating", "ts"]
    train = pd.read_csv(ml100k / "u1.base", sep="\t", names=cols).drop(columns="ts")
    test = pd.read_csv(ml100k / "u1.test", sep="\t", names=cols).drop(columns="ts")
    genre_cols = [f"genre{k}" for k in range(19)]
    items = pd.read_csv(
        ml100k / "u.item", sep="|", encoding="latin-1", header=None,
        names=["item", "title", "release", "video", "url", *genre_cols],
    )
    feats = items.melt(id_vars="item", value_vars=genre_cols, var_name="feature", value_name="flag")
    feats = feats[feats.flag == 1][["item", "feature"]].assign(weight=1.0).sort_values(["item", "feature"])
    return train, test, feats.reset_index(drop=True)


def _popularity_lists(train: pd.DataFrame, users, k: int) -> dict:
    """Top-k most popular train items the user has not seen in train; ties by item id ascending."""
    pop = train.groupby("item").size()
    ranked = sorted(pop.index, key=lambda i: (-pop[i], i))
    seen = train.groupby("user")["item"].apply(set).to_dict()
    out = {}
    for u in users:
        mine = seen.get(u, set())
        out[u] = [i for i in ranked if i not in mine][:k]
    return out


@pytest.mark.slow
def test_movielens_100k_popularity_default_report(datasets_dir):
    train, test, feats = _ml100k(datasets_dir)
    users = sorted(test.user.unique())[:N_USERS]
    test = test[test.user.isin(users)].reset_index(drop=True)
    recs = _popularity_lists(train, users, 50)
    case = Case(
        list(train.itertuples(index=False, name=None)),
        list(test.itertuples(index=False, name=None)),
        recs,
        {i: dict(zip(g.feature, g.weight)) for i, g in feats.groupby("item")},
    )
    # sanity of the inputs the reference sees
    assert len(case.test) == len(test) and all(len(v) == 50 for v in recs.values())
    specs = spec.default_specs((10, 50), 4.0)
    assert compare(case, specs) == []
