"""Properties of the metrics engine that must hold on any data (hypothesis).

* the order of input rows and users does not matter;
* evaluating shard by shard and merging equals one pass (1e-12), system metrics included;
* ILD equals EILD with no relevance and no discount; a one-item list has ILD 0;
* relevance only removes novelty: EPC/EFD/EPD with no relevance >= with binary relevance;
* bounded metrics stay in [0, 1]; lists of users outside test change nothing;
* with every list at least N long, aggregate diversity counts the distinct items and entropy is the
  Shannon entropy of the exposure distribution.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from receval.metrics import engine, spec
from receval.metrics.sharding import Shard
from tests.test_metrics_vs_reference import Case, cases, summary_values

EXACT = 1e-12
CUTOFFS = (1, 3)
# Every metric, and each relevance model and discount at least once: the engine's cost is per spec,
# and the full matrix is compared with the reference in test_metrics_vs_reference.py.
VARIANTS = [("none", "none"), ("binary", "exp"), ("graded", "log"), ("background", "reciprocal"),
            ("ndcg", "exp"), ("err", "none")]


def hypo(examples: int):
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def specs_for(case: Case, cutoffs=CUTOFFS):
    kw = dict(threshold=4.0, background=0.3, exp_base=0.85)
    specs = []
    for n in cutoffs:
        for metric in spec.METRICS:
            specs.append(spec.make_spec(metric, n, **kw))
            if metric in spec.NOVELTY_DIVERSITY:
                specs += [spec.make_spec(metric, n, rel, disc, **kw) for rel, disc in VARIANTS[1:]]
            if metric == "aggregate_diversity":
                specs.append(spec.make_spec(metric, n, "binary", **kw))
    if not case.with_features:
        specs = [s for s in specs if s.metric not in ("epd", "eild", "ild", "alpha_ndcg", "err_ia", "s_recall")]
    return specs


def run(case: Case, specs, frames=None, **options):
    train, test, recs, feats = frames or case.frames()
    config = engine.EvaluationConfig(specs=specs, threshold=4.0, background=0.3, **options)
    return engine.evaluate(train, test, recs, feats, config)


def per_user(state) -> pd.DataFrame:
    return state.per_user.set_index("user").sort_index()


def assert_same(a, b, tol=EXACT):
    """Two evaluation states agree on every per-user value and every summary value."""
    pa, pb = per_user(a), per_user(b)
    assert list(pa.index) == list(pb.index)
    assert list(pa.columns) == list(pb.columns)
    np.testing.assert_allclose(pa.to_numpy(float), pb.to_numpy(float), rtol=tol, atol=tol)
    sa, sb = summary_values(a), summary_values(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        x, y = float(sa[key]), float(sb[key])
        assert (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=tol, abs_tol=tol), (key, x, y)


@hypo(15)
@given(case=cases(), seed=st.integers(0, 2**31 - 1))
def test_permuting_rows_and_users_changes_nothing(case, seed):
    specs = specs_for(case)
    train, test, recs, feats = case.frames()
    rng = np.random.default_rng(seed)

    def shuffle(frame):
        return None if frame is None else frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)

    # recs keep their rank column, so each list's order is unchanged; only the row order moves
    shuffled = tuple(shuffle(f) for f in (train, test, recs, feats))
    assert_same(run(case, specs), run(case, specs, frames=shuffled))


@hypo(15)
@given(case=cases(), count=st.integers(2, 4))
def test_shards_merged_equal_one_pass(case, count):
    specs = specs_for(case)
    frames = case.frames()
    config = engine.EvaluationConfig(specs=specs, threshold=4.0, background=0.3)
    whole = engine.evaluate(*frames, config)
    parts = [engine.evaluate(*frames, config, shard=Shard(k, count)) for k in range(count)]
    assert_same(engine.merge(parts), whole)
    # the merge does not depend on the order of the partials
    assert_same(engine.merge(parts[::-1]), whole)


@hypo(25)
@given(case=cases(), distance=st.sampled_from(["cosine", "jaccard"]))
def test_ild_equals_eild_without_relevance_and_discount(case, distance):
    assume(case.with_features)
    specs = [spec.make_spec("ild", n) for n in CUTOFFS] + [spec.make_spec("eild", n, "none", "none") for n in CUTOFFS]
    table = per_user(run(case, specs, distance=distance))
    for n in CUTOFFS:
        np.testing.assert_allclose(table[f"ild[none,none]@{n}"], table[f"eild[none,none]@{n}"], rtol=EXACT, atol=EXACT)
    # a list of one item has no pair: ILD@1 = 0 for everyone
    assert (table["ild[none,none]@1"] == 0.0).all()


@hypo(25)
@given(case=cases())
def test_relevance_only_removes_novelty(case):
    metrics = ("epc", "efd", "epd") if case.with_features else ("epc", "efd")
    specs = [
        spec.make_spec(m, n, rel, disc)
        for m in metrics for n in CUTOFFS for rel in ("none", "binary") for disc in ("none", "log", "exp", "reciprocal")
    ]
    table = per_user(run(case, specs))
    for s in specs:
        if s.relevance.kind == "none":
            binary = s.key.replace("[none,", "[binary,")
            assert (table[s.key] >= table[binary] - 1e-12).all(), s.key


@hypo(20)
@given(case=cases())
def test_bounded_metrics_stay_in_unit_interval(case):
    specs = specs_for(case)
    state = run(case, specs)
    table = per_user(state)
    bounded = ("precision", "recall", "ap", "rr", "ndcg", "s_recall")
    for s in specs:
        if s.metric in bounded or (s.metric == "epc" and s.relevance.kind in ("none", "binary", "background")):
            assert table[s.key].between(-1e-12, 1 + 1e-12).all(), s.key
    for (metric, *_), value in summary_values(state).items():
        if metric == "gini" and not math.isnan(value):
            assert -1e-12 <= value <= 1 + 1e-12


@hypo(15)
@given(case=cases())
def test_lists_of_users_outside_test_change_nothing(case):
    specs = specs_for(case)
    test_users = {u for u, _, _ in case.test}
    only_test = Case(case.train, case.test, {u: v for u, v in case.recs.items() if u in test_users},
                     case.features, case.with_features)
    # one extra list for a user who has no test row
    stranger = "nobody" if isinstance(case.test[0][0], str) else 999_999
    universe = sorted({i for _, i, _ in case.train} | {i for _, i, _ in case.test}, key=str)
    with_stranger = Case(case.train, case.test, {**only_test.recs, stranger: universe},
                         case.features, case.with_features)
    assert_same(run(only_test, specs), run(with_stranger, specs))


@st.composite
def full_list_cases(draw):
    """Cases whose test users all have lists of at least N = 3 items."""
    case = draw(cases(max_items=8))
    universe = sorted({i for _, i, _ in case.train} | {i for _, i, _ in case.test}, key=str)
    if len(universe) < 3:
        universe = universe + [i for i in case.features if i not in universe]
    test_users = sorted({u for u, _, _ in case.test}, key=str)
    recs = {u: draw(st.permutations(universe))[: draw(st.integers(3, max(3, len(universe))))] for u in test_users}
    return Case(case.train, case.test, recs, case.features, case.with_features)


@hypo(25)
@given(case=full_list_cases())
def test_full_lists_give_distinct_count_and_shannon_entropy(case):
    n = 3
    universe = {i for _, i, _ in case.train} | {i for _, i, _ in case.test}
    assume(len(universe) >= n)
    specs = [spec.make_spec(m, n) for m in ("aggregate_diversity", "entropy")]
    values = summary_values(run(case, specs))
    exposure: dict = {}
    for items in case.recs.values():
        for i in items[:n]:
            exposure[i] = exposure.get(i, 0) + 1
    total = sum(exposure.values())
    shannon = -math.fsum(c / total * math.log2(c / total) for c in exposure.values())
    assert math.isclose(values[("aggregate_diversity", n, "none", "none")], len(exposure), rel_tol=EXACT)
    assert math.isclose(values[("entropy", n, "none", "none")], shannon, rel_tol=EXACT, abs_tol=EXACT)
