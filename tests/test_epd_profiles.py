"""EPD's profile (unweighted or relevance-weighted) on a hand-worked case, one spec at a time.

The property tests compare EPD to the reference, but always in one run with ``epd[none]``, whose
unit weights then sit in the engine's per-batch profile cache: a bug that weighted the profile in
``unweighted`` mode, or that shared one weighted profile between relevance models, went unseen.
Here each spec is evaluated alone, and then all relevance models together in both orders, on a
user whose train ratings mix 4 and 5 (so the binary, graded, nDCG and ERR weights all differ).

Expected values are worked out by hand below (distances from the feature vectors, weights and gains
from the models' formulas in docs/metrics.md, "Models") and cross-checked with tests/ranksys_reference.py.
"""

from __future__ import annotations

from fractions import Fraction as Fr

import pandas as pd
import pytest

from receval.metrics import engine
from receval.metrics.spec import make_spec
from tests.ranksys_reference import Disc, Reference, Rel

TAU = 4.0
BACKGROUND = 0.3
CUTOFF = 3

# Orthogonal unit features plus two 3-4-5 vectors, so that every cosine distance is rational.
FEATURES = {"a": {"f1": 1}, "b": {"f2": 1}, "c": {"f3": 1}, "d": {"f1": 3, "f2": 4},
            "x": {"f1": 4, "f3": 3}, "y": {"f2": 1}, "z": {"f3": 1}}
# u's train ratings mix 5 and 4 (and a 2 below the threshold); v is a second user of the batch.
TRAIN = [("u", "a", 5.0), ("u", "b", 4.0), ("u", "c", 2.0), ("u", "d", 4.0),
         ("v", "a", 4.0), ("v", "b", 5.0), ("v", "x", 3.0)]
TEST = [("u", "x", 5.0), ("u", "y", 4.0), ("v", "y", 5.0), ("v", "z", 3.0)]  # r_max 5, g_max 1
RECS = {"u": ["x", "y", "z"], "v": ["y", "z", "c"]}  # u's z is unjudged

# d(i, j) = 1 - cos for u's list (rows x, y, z) against u's profile (columns a, b, c, d):
# x = (4, 0, 3)/5: cos a 4/5, b 0, c 3/5, d (3*4)/(5*5) = 12/25; y = f2: cos d 4/5; z = f3.
DIST = {
    "x": (Fr(1, 5), Fr(1), Fr(2, 5), Fr(13, 25)),
    "y": (Fr(1), Fr(0), Fr(1), Fr(1, 5)),
    "z": (Fr(1), Fr(1), Fr(0), Fr(1)),
}
# p(rel | j, u) of u's train ratings a 5, b 4, c 2, d 4 with tau 4 (graded: (2^g - 1)/2^g_max with
# g = max(0, r - tau), so a 4 weighs 0; ndcg 2^(r-tau+1) - 1; err (2^r - 1)/2^r_max, r_max = 5).
PROFILE_WEIGHTS = {
    "none": (1, 1, 1, 1),
    "binary": (1, 1, 0, 1),
    "background": (1, 1, 0, 1),  # every train item is judged: the background prior never applies
    "graded": (Fr(1, 2), 0, 0, 0),
    "ndcg": (3, 1, 0, 1),
    "err": (Fr(31, 32), Fr(15, 32), 0, Fr(15, 32)),
}
# Gains of u's list x (test 5), y (test 4), z (unjudged).
LIST_GAINS = {
    "none": (1, 1, 1),
    "binary": (1, 1, 0),
    "background": (1, 1, Fr(3, 10)),
    "graded": (Fr(1, 2), 0, 0),
    "ndcg": (3, 1, 0),
    "err": (Fr(31, 32), Fr(15, 32), 0),
}
DISCOUNTS = {"none": (1, 1, 1), "reciprocal": (1, Fr(1, 2), Fr(1, 3))}
RELEVANCES = tuple(PROFILE_WEIGHTS)


def hand_epd_of_u(relevance: str, discount: str, profile: str) -> Fr:
    """EPD of u: sum_k disc(k) rel(i_k) PD(i_k) / sum_k disc(k), PD the (weighted) profile mean."""
    weights = PROFILE_WEIGHTS[relevance] if profile == "relevance" else (1, 1, 1, 1)
    pd_of = [sum(w * dist for w, dist in zip(weights, DIST[i])) / sum(weights) for i in RECS["u"]]
    disc = DISCOUNTS[discount]
    num = sum(dk * g * p for dk, g, p in zip(disc, LIST_GAINS[relevance], pd_of))
    return num / sum(disc)


def frames():
    train = pd.DataFrame(TRAIN, columns=["user", "item", "rating"])
    test = pd.DataFrame(TEST, columns=["user", "item", "rating"])
    recs = pd.DataFrame([(u, i, k) for u, items in RECS.items() for k, i in enumerate(items, 1)],
                        columns=["user", "item", "rank"])
    feats = pd.DataFrame([(i, f, float(w)) for i, fs in FEATURES.items() for f, w in fs.items()],
                         columns=["item", "feature", "weight"])
    return train, test, recs, feats


def engine_epd(specs, profile: str) -> pd.DataFrame:
    config = engine.EvaluationConfig(specs=specs, threshold=TAU, background=BACKGROUND, epd_profile=profile)
    return engine.evaluate(*frames(), config).per_user.set_index("user")


def epd_spec(relevance: str, discount: str):
    return make_spec("epd", CUTOFF, relevance, discount, threshold=TAU, background=BACKGROUND)


REFERENCE = Reference(TRAIN, TEST, RECS, FEATURES)


def reference_epd(user: str, relevance: str, discount: str, profile: str) -> float:
    return REFERENCE.epd(user, CUTOFF, Rel(relevance, TAU, BACKGROUND), Disc(discount), profile=profile)


def test_hand_worked_values_agree_with_the_reference():
    # the two independent derivations of the expected values must agree before either is used
    for profile in ("unweighted", "relevance"):
        for relevance in RELEVANCES:
            for discount in DISCOUNTS:
                hand = float(hand_epd_of_u(relevance, discount, profile))
                assert reference_epd("u", relevance, discount, profile) == pytest.approx(hand, abs=1e-15)
    # the case separates what it must: weighted profiles differ from the unweighted one and from
    # each other (so a shared or wrongly chosen profile changes a value)
    weighted = {r: hand_epd_of_u(r, "none", "relevance") for r in RELEVANCES}
    unweighted = {r: hand_epd_of_u(r, "none", "unweighted") for r in RELEVANCES}
    assert all(weighted[r] != unweighted[r] for r in RELEVANCES if r != "none")
    assert len({PROFILE_WEIGHTS[r] for r in RELEVANCES}) == len(RELEVANCES) - 1  # binary = background


@pytest.mark.parametrize("profile", ["unweighted", "relevance"])
@pytest.mark.parametrize("relevance", RELEVANCES)
@pytest.mark.parametrize("discount", list(DISCOUNTS))
def test_epd_alone_uses_the_profile_its_mode_asks_for(profile, relevance, discount):
    # Evaluated alone: no epd[none] computed first whose unit weights could hide wrong ones.
    spec = epd_spec(relevance, discount)
    values = engine_epd([spec], profile)[spec.key]
    assert values["u"] == pytest.approx(float(hand_epd_of_u(relevance, discount, profile)), rel=1e-12, abs=1e-15)
    assert values["v"] == pytest.approx(reference_epd("v", relevance, discount, profile), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("order", ["forward", "reversed"])
def test_epd_profile_cache_keeps_each_relevance_models_weights(order):
    # All relevance models in one run with the relevance-weighted profile: the per-batch profile
    # cache must be keyed by the relevance model, or the first model's weights serve every one.
    relevances = list(RELEVANCES) if order == "forward" else list(reversed(RELEVANCES))
    specs = [epd_spec(r, d) for r in relevances for d in DISCOUNTS]
    per_user = engine_epd(specs, "relevance")
    for spec in specs:
        r, d = spec.relevance.kind, spec.discount.kind
        assert per_user.at["u", spec.key] == pytest.approx(float(hand_epd_of_u(r, d, "relevance")), rel=1e-12, abs=1e-15), spec.key
        assert per_user.at["v", spec.key] == pytest.approx(reference_epd("v", r, d, "relevance"), rel=1e-12, abs=1e-15), spec.key


def test_epd_unweighted_run_with_every_relevance_model_shares_one_unweighted_profile():
    # The unweighted mode in one run, weighted models first: their weights must not leak into it.
    specs = [epd_spec(r, "none") for r in reversed(RELEVANCES)]
    per_user = engine_epd(specs, "unweighted")
    for spec in specs:
        expected = float(hand_epd_of_u(spec.relevance.kind, "none", "unweighted"))
        assert per_user.at["u", spec.key] == pytest.approx(expected, rel=1e-12, abs=1e-15), spec.key
