"""Hand-worked examples for the loop-based reference (tests/ranksys_reference.py).

Every expected value below is derived by hand in the comments from metrics.md, never copied from
the code's output. The shared toy data set (``toy()``):

train (deduplicated)            test                       features (weights 1)
  u1: a 5, b 3                    u1: c 5, d 4, e 2           a {x, y}
  u2: a 4, c 2                    u2: b 5, e 4, d 3           b {x}
  u3: a 1, b 5, d 4               u4: a 2, f 1                c {y, z}
                                                              d {z}
recs                                                          e {}      (featureless)
  u1: c e d f                                                 f {x, z}
  u2: b a e
  u5: a b        (u5 has no test row: ignored, decision 9.3)

Test users: u1, u2, u4 (u4 has no list and scores 0) -> every mean divides by 3.

Train popularity n_i: a 3, b 2, c 1, d 1; |U| = 3 train users; 7 train rows.
  PC  = 1 - n_i/3:      a 0, b 1/3, c 2/3, d 2/3, unseen (e, f) 1
  FD  = -log2(n_i/7):   a log2(7/3), b log2(7/2), c = d = log2 7, unseen = log2(7/1) (least popular)
Cosine distances (s = 1/sqrt 2):  a-b 1-s, a-c 1/2, a-d 1, a-f 1/2, b-c 1, b-d 1, b-f 1-s,
  c-d 1-s, c-f 1/2, d-f 1-s, anything with e: NaN.
Test-set constants (tau = 4): r_max = 5; g_max = max(0, r - 4) over the test set = 1.

Gains of u1's list (c 5, e 2, d 4, f unjudged), tau = 4:
  none [1, 1, 1, 1]; binary [1, 0, 1, 0]; background(0.25) [1, 0, 1, 0.25];
  graded (2^g - 1)/2^1: c g=1 -> 1/2, d g=0 -> 0  => [1/2, 0, 0, 0];
  ndcg 2^(r-4+1) - 1: c 3, d 1 => [3, 0, 1, 0]; err (2^r - 1)/2^5: c 31/32, d 15/32 => [31/32, 0, 15/32, 0].
Discounts k = 1..4: none 1,1,1,1; log 1, 1/log2 3, 1/2, 1/log2 5; exp 1, .85, .7225, .614125;
  reciprocal 1, 1/2, 1/3, 1/4.
"""

from __future__ import annotations

import math

import pytest

from tests.ranksys_reference import Disc, Reference, Rel

S = 1 / math.sqrt(2)
L3 = 1 / math.log2(3)  # log discount at k = 2
L5 = 1 / math.log2(5)  # log discount at k = 4
EXP4 = 1 + 0.85 + 0.7225 + 0.614125  # sum of exp(0.85) discounts over 4 positions = 3.186625

BINARY = Rel("binary", 4.0)
NONE = Rel("none")


def approx(x):
    return pytest.approx(x, rel=1e-12, abs=1e-15)


def toy(distance="cosine", catalog=None) -> Reference:
    train = [("u1", "a", 5), ("u1", "b", 3), ("u2", "a", 4), ("u2", "c", 2), ("u3", "a", 1), ("u3", "b", 5), ("u3", "d", 4)]
    test = [("u1", "c", 5), ("u1", "d", 4), ("u1", "e", 2), ("u2", "b", 5), ("u2", "e", 4), ("u2", "d", 3), ("u4", "a", 2), ("u4", "f", 1)]
    recs = {"u1": ["c", "e", "d", "f"], "u2": ["b", "a", "e"], "u5": ["a", "b"]}
    features = {
        "a": {"x": 1.0, "y": 1.0},
        "b": {"x": 1.0},
        "c": {"y": 1.0, "z": 1.0},
        "d": {"z": 1.0},
        "e": {},
        "f": {"x": 1.0, "z": 1.0},
    }
    return Reference(train, test, recs, features, distance=distance, catalog=catalog)


# ---------------------------------------------------------------- models
def test_discounts():
    assert [Disc("none")(k) for k in (1, 2, 3)] == [1.0, 1.0, 1.0]
    assert [Disc("log")(k) for k in (1, 2, 3, 4)] == [approx(1), approx(L3), approx(0.5), approx(L5)]
    assert [Disc("exp", 0.85)(k) for k in (1, 2, 3, 4)] == [approx(1), approx(0.85), approx(0.7225), approx(0.614125)]
    assert [Disc("reciprocal")(k) for k in (1, 2, 3, 4)] == [approx(1), approx(1 / 2), approx(1 / 3), approx(1 / 4)]
    # relative discount disc(l|k) = disc(max(1, l-k)): before k full weight, l = k+2 -> disc(2)
    d = Disc("exp", 0.85)
    assert (d.relative(1, 3), d.relative(4, 3), d.relative(5, 3)) == (1.0, 1.0, approx(0.85))


def test_relevance_models_on_u1_list():
    ref = toy()
    items = ["c", "e", "d", "f"]
    expected = {
        Rel("none"): [1, 1, 1, 1],
        Rel("binary", 4.0): [1, 0, 1, 0],
        Rel("background", 4.0, 0.25): [1, 0, 1, 0.25],
        Rel("graded", 4.0): [0.5, 0, 0, 0],
        Rel("ndcg", 4.0): [3, 0, 1, 0],
        Rel("err", 4.0): [31 / 32, 0, 15 / 32, 0],
    }
    for rel, gains in expected.items():
        assert [ref.gain(rel, "u1", i) for i in items] == [approx(g) for g in gains], rel
    # a rating exactly at tau: relevant for every RankSys model, p = 0 for the paper's graded model
    assert ref.is_relevant(Rel("ndcg"), "u1", "d") and ref.is_relevant(Rel("err"), "u1", "d")
    assert not ref.is_relevant(Rel("graded"), "u1", "d")
    # a user with no test rows: binary 0, nDCG 0, background b
    assert ref.gain(Rel("binary"), "u3", "a") == 0 and ref.gain(Rel("background", 4, 0.25), "u3", "a") == 0.25


def test_item_novelty():
    ref = toy()
    assert [ref.nov_pc(i) for i in "abcdef"] == [approx(v) for v in (0, 1 / 3, 2 / 3, 2 / 3, 1, 1)]
    fd = [math.log2(7 / 3), math.log2(7 / 2), math.log2(7), math.log2(7), math.log2(7), math.log2(7)]
    assert [ref.nov_fd(i) for i in "abcdef"] == [approx(v) for v in fd]
    # PD for u1 (profile a, b): c -> mean(1/2, 1) = 3/4; e -> all NaN -> 0; d -> mean(1, 1) = 1;
    # f -> mean(1/2, 1-s) = 3/4 - s/2; a recommended profile item contributes d(a, a) = 0:
    # a -> mean(0, 1-s) = (1-s)/2
    assert [ref.nov_pd("u1", i) for i in "cedfa"] == [approx(v) for v in (3 / 4, 0, 1, 3 / 4 - S / 2, (1 - S) / 2)]
    # u4 has no train profile -> 0
    assert ref.nov_pd("u4", "c") == 0.0


def test_distances():
    cos = toy("cosine")
    assert cos.distance("a", "b") == approx(1 - S)
    assert cos.distance("a", "c") == approx(0.5)
    assert cos.distance("b", "d") == approx(1.0)
    assert cos.distance("c", "c") == approx(0.0)
    assert math.isnan(cos.distance("a", "e")) and math.isnan(cos.distance("e", "e"))
    assert math.isnan(cos.distance("a", "zz"))  # an item absent from the feature data
    jac = toy("jaccard")
    # Tanimoto 1 - prod/(na + nb - prod): a-b 1 - 1/(2+1-1) = 1/2; a-c 1 - 1/3 = 2/3; c-f 2/3; d-f 1/2
    assert [jac.distance(*p) for p in ("ab", "ac", "cf", "df", "bd")] == [approx(v) for v in (1 / 2, 2 / 3, 2 / 3, 1 / 2, 1)]
    # real weights: {x: 2} vs {x: 1, y: 1}: prod 2, na 4, nb 2 -> cosine 1 - 2/sqrt(8), Tanimoto 1 - 2/4
    weighted = {"p": {"x": 2.0}, "q": {"x": 1.0, "y": 1.0}}
    assert Reference([], [], {}, weighted).distance("p", "q") == approx(1 - 2 / math.sqrt(8))
    assert Reference([], [], {}, weighted, distance="jaccard").distance("p", "q") == approx(0.5)
    rat = toy("ratings")
    # train user vectors: a {u1: 5, u2: 4, u3: 1}, b {u1: 3, u3: 5}: prod 15 + 5 = 20,
    # |a|^2 = 42, |b|^2 = 34 -> 1 - 20/sqrt(1428); c {u2: 2}, d {u3: 4} share no user -> 1;
    # e, f have no train rows -> NaN
    assert rat.distance("a", "b") == approx(1 - 20 / math.sqrt(1428))
    assert rat.distance("c", "d") == approx(1.0)
    assert math.isnan(rat.distance("a", "f"))


# ---------------------------------------------------------------- accuracy
def test_precision_divides_by_n_even_for_short_lists():
    ref = toy()
    # u1 [c e d f]: hits c, d -> 2/4; u2 [b a e]: hits b, e -> 2/4; u4 no list -> 0
    assert ref.precision("u1", 4) == approx(0.5)
    assert ref.precision("u2", 4) == approx(0.5)
    assert ref.mean("precision", 4) == approx((0.5 + 0.5 + 0) / 3)
    # @10: lists are 4 and 3 long, still divided by 10
    assert ref.precision("u1", 10) == approx(2 / 10) and ref.precision("u2", 10) == approx(2 / 10)
    # @2: u1 [c e] 1 hit, u2 [b a] 1 hit
    assert ref.mean("precision", 2) == approx((1 / 2 + 1 / 2) / 3)
    # background(0.25): isRelevant = gain > 0 -> c, d and the unjudged f: 3/4
    assert ref.precision("u1", 4, Rel("background", 4, 0.25)) == approx(3 / 4)


def test_recall_ap_rr():
    ref = toy()
    # Rel_u1 = {c, d}, Rel_u2 = {b, e}
    assert ref.recall("u1", 4) == approx(1.0) and ref.recall("u1", 2) == approx(1 / 2)
    assert ref.recall("u4", 4) == 0.0  # no relevant items (a 2, f 1) -> 0, and no list
    # AP@4 u1: hits at k=1 (1/1) and k=3 (2/3) -> (1 + 2/3) / min(4, 2) = 5/6; u2 the same positions
    assert ref.ap("u1", 4) == approx(5 / 6) and ref.ap("u2", 4) == approx(5 / 6)
    # AP@2 u1: hit at k=1 only -> 1 / min(2, 2) = 1/2
    assert ref.ap("u1", 2) == approx(1 / 2)
    assert ref.mean("ap", 4) == approx((5 / 6 + 5 / 6 + 0) / 3)
    assert ref.rr("u1", 4) == 1.0
    # a list whose first relevant item is at rank 3: [e, f, d] for u1 -> 1/3; none relevant -> 0
    other = Reference([], [("u1", "d", 4), ("u1", "e", 2)], {"u1": ["e", "f", "d"]})
    assert other.rr("u1", 3) == approx(1 / 3) and other.rr("u1", 2) == 0.0


def test_ndcg():
    ref = toy()
    # u1: DCG@4 = 3/log2 2 + 0 + 1/log2 4 + 0 = 3.5; ideal gains (c 3, d 1) -> IDCG = 3 + 1/log2 3
    assert ref.ndcg("u1", 4) == approx(3.5 / (3 + L3))
    # u2 [b a e]: DCG = 3 + 0 + 1/log2 4 = 3.5; ideal (b 3, e 1) -> the same value
    assert ref.ndcg("u2", 4) == approx(3.5 / (3 + L3))
    # @1: DCG 3, IDCG 3 (ideal truncated to min(N, |Rel|) = 1)
    assert ref.ndcg("u1", 1) == approx(1.0)
    assert ref.mean("ndcg", 4) == approx(2 * 3.5 / (3 + L3) / 3)


def test_ndcg_is_zero_when_dcg_is_zero():
    # list of non-relevant items only (and a user with no relevant item at all): 0, not NaN
    ref = Reference([], [("u", "a", 5), ("u", "b", 1), ("v", "b", 2)], {"u": ["b"], "v": ["b"]})
    assert ref.ndcg("u", 5) == 0.0 and ref.ndcg("v", 5) == 0.0


def test_empty_list_scores_zero_everywhere():
    ref = toy()
    for metric in ("precision", "recall", "ndcg", "ap", "rr", "epc", "efd", "epd", "eild", "ild",
                   "alpha_ndcg", "err_ia", "s_recall"):
        assert getattr(ref, metric)("u4", 5) == 0.0, metric


# ---------------------------------------------------------------- expected novelty
def test_epc_every_relevance_model():
    ref = toy()
    # u1 nov PC = [2/3, 1, 2/3, 1], no discount, normaliser 4
    assert ref.epc("u1", 4, Rel("none")) == approx((2 / 3 + 1 + 2 / 3 + 1) / 4)  # 5/6
    assert ref.epc("u1", 4, BINARY) == approx((2 / 3 + 2 / 3) / 4)  # 1/3
    assert ref.epc("u1", 4, Rel("background", 4, 0.25)) == approx((2 / 3 + 2 / 3 + 0.25 * 1) / 4)  # 19/48
    assert ref.epc("u1", 4, Rel("graded")) == approx((0.5 * 2 / 3) / 4)  # 1/12
    assert ref.epc("u1", 4, Rel("ndcg")) == approx((3 * 2 / 3 + 1 * 2 / 3) / 4)  # 2/3
    assert ref.epc("u1", 4, Rel("err")) == approx((31 / 32 * 2 / 3 + 15 / 32 * 2 / 3) / 4)  # 23/96


def test_epc_every_discount_and_short_list_normalisation():
    ref = toy()
    # binary gains [1, 0, 1, 0], nov [2/3, 1, 2/3, 1]: numerator (2/3)(disc1 + disc3)
    assert ref.epc("u1", 4, BINARY, Disc("none")) == approx(1 / 3)
    assert ref.epc("u1", 4, BINARY, Disc("log")) == approx((2 / 3) * (1 + 0.5) / (1 + L3 + 0.5 + L5))
    assert ref.epc("u1", 4, BINARY, Disc("exp", 0.85)) == approx((2 / 3) * (1 + 0.7225) / EXP4)
    assert ref.epc("u1", 4, BINARY, Disc("reciprocal")) == approx((2 / 3) * (1 + 1 / 3) / (1 + 1 / 2 + 1 / 3 + 1 / 4))  # 32/75
    # N = 10 > |list| = 4: normalised by the 4 positions present, so the value does not change
    assert ref.epc("u1", 10, BINARY, Disc("exp", 0.85)) == approx((2 / 3) * 1.7225 / EXP4)
    # the mean over test users: u1 5/6, u2 (1/3 + 0 + 1)/3 = 4/9, u4 0 (u5's list is ignored)
    assert ref.mean("epc", 4) == approx((5 / 6 + 4 / 9 + 0) / 3)  # 23/54


def test_efd():
    ref = toy()
    # u2 [b a e]: FD b log2(7/2), a log2(7/3), e (unseen) log2 7; gains binary [1, 0, 1]
    b, a, e = math.log2(7 / 2), math.log2(7 / 3), math.log2(7)
    assert ref.efd("u2", 4) == approx((b + a + e) / 3)
    assert ref.efd("u2", 4, BINARY) == approx((b + e) / 3)
    assert ref.efd("u2", 4, BINARY, Disc("exp", 0.85)) == approx((b + 0.7225 * e) / (1 + 0.85 + 0.7225))
    # background 0.25 on the unjudged a, reciprocal discount
    assert ref.efd("u2", 4, Rel("background", 4, 0.25), Disc("reciprocal")) == approx(
        (b + 0.5 * 0.25 * a + e / 3) / (1 + 1 / 2 + 1 / 3)
    )


def test_epd_unweighted_profile():
    ref = toy()
    # PD for u1: c 3/4, e 0, d 1, f 3/4 - s/2 (see test_item_novelty)
    assert ref.epd("u1", 4) == approx((3 / 4 + 0 + 1 + 3 / 4 - S / 2) / 4)  # 5/8 - s/8
    assert ref.epd("u1", 4, BINARY) == approx((3 / 4 + 1) / 4)  # 7/16
    assert ref.epd("u1", 4, BINARY, Disc("log")) == approx((3 / 4 + 0.5 * 1) / (1 + L3 + 0.5 + L5))


def test_epd_relevance_weighted_profile():
    ref = toy()
    # weights p(rel|j,u1) from u1's TRAIN ratings a 5, b 3 with tau = 4: binary a 1, b 0, so
    # PDw(c) = d(c,a) = 1/2, PDw(e) = 0 (no valid pair), PDw(d) = d(d,a) = 1, PDw(f) = d(f,a) = 1/2
    assert ref.epd("u1", 4, BINARY, profile="relevance") == approx((1 * 1 / 2 + 1 * 1) / 4)  # 3/8
    # ndcg weights a 3, b 0 -> same PDw; list gains [3, 0, 1, 0]
    assert ref.epd("u1", 4, Rel("ndcg"), profile="relevance") == approx((3 * 1 / 2 + 1 * 1) / 4)
    # graded weights a (2^1-1)/2^1 = 1/2, b 0 -> same PDw; gains [1/2, 0, 0, 0]
    assert ref.epd("u1", 4, Rel("graded"), profile="relevance") == approx((0.5 * 0.5) / 4)
    # err weights a 31/32, b 0; gains [31/32, 0, 15/32, 0]
    assert ref.epd("u1", 4, Rel("err"), profile="relevance") == approx((31 / 32 * 1 / 2 + 15 / 32 * 1) / 4)
    # no relevance: weights 1 -> the unweighted mean
    assert ref.epd("u1", 4, NONE, profile="relevance") == approx(ref.epd("u1", 4, NONE))
    # non-trivial weights: ndcg with tau = 3 -> a 2^(5-3+1)-1 = 7, b 2^(3-3+1)-1 = 1;
    # PDw(c) = (7 * 1/2 + 1 * 1)/8 = 9/16, PDw(d) = (7 + 1)/8 = 1; test gains c 5 -> 7, d 4 -> 3
    assert ref.epd("u1", 4, Rel("ndcg", 3.0), profile="relevance") == approx((7 * 9 / 16 + 3 * 1) / 4)  # 111/64


# ---------------------------------------------------------------- intra-list distance
def test_ild_and_skipped_rows_in_outer_normaliser():
    ref = toy()
    # u1 [c e d f]: row c: (d(c,d) + d(c,f))/2 = (1-s + 1/2)/2; row e: all NaN -> skipped (0);
    # row d: (1-s + 1-s)/2 = 1-s; row f: (1/2 + 1-s)/2; outer normaliser 4 counts row e too
    expected = ((1.5 - S) / 2 + 0 + (1 - S) + (1.5 - S) / 2) / 4  # 5/8 - s/2
    assert ref.ild("u1", 4) == approx(expected)
    assert ref.eild("u1", 4, NONE, Disc("none")) == approx(expected)
    # Jaccard: c-d 1/2, c-f 2/3, d-f 1/2 -> rows 7/12, 0, 1/2, 7/12 -> (20/12)/4 = 5/12
    assert toy("jaccard").ild("u1", 4) == approx(5 / 12)
    # ratings distance on u2 [b a e]: only the pair (b, a) is valid -> rows d, d, skipped -> 2d/3
    assert toy("ratings").ild("u2", 3) == approx(2 * (1 - 20 / math.sqrt(1428)) / 3)


def test_ild_of_one_item_is_zero():
    ref = toy()
    assert ref.ild("u1", 1) == 0.0  # row c has no other item: W = 0, skipped, normaliser 1


def test_eild_binary_exp():
    ref = toy()
    # gains [1, 0, 1, 0]; row c (k=1): l=3 d weight disc(max(1, 2)) = .85, l=4 f weight 0 -> row 1-s;
    # row d (k=3): l=1 c weight disc(1) = 1 -> row 1-s; rows e, f have gain 0
    # EILD = (1 * (1-s) + .7225 * (1-s)) / 3.186625
    assert ref.eild("u1", 4, BINARY, Disc("exp", 0.85)) == approx(1.7225 * (1 - S) / EXP4)


def test_eild_relative_log_discount():
    ref = toy()
    # relevance none, log discount. row c (k=1): l=3 d weight disc(2) = L3, l=4 f weight disc(3) = 1/2
    #   -> (L3 (1-s) + 1/2 * 1/2) / (L3 + 1/2); row e skipped;
    # row d (k=3): l=1 c weight disc(1) = 1, l=4 f disc(max(1, 1)) = 1 -> 1-s;
    # row f (k=4): c, d both before -> weight 1 each -> (1/2 + 1-s)/2
    row_c = (L3 * (1 - S) + 0.25) / (L3 + 0.5)
    num = 1 * row_c + L3 * 0 + 0.5 * (1 - S) + L5 * (1.5 - S) / 2
    assert ref.eild("u1", 4, NONE, Disc("log")) == approx(num / (1 + L3 + 0.5 + L5))
    # a second model for disc(l|k): outer reciprocal, inner none -> rows are the ILD rows
    num2 = 1 * (1.5 - S) / 2 + 0 + (1 / 3) * (1 - S) + (1 / 4) * (1.5 - S) / 2
    assert ref.eild("u1", 4, NONE, Disc("reciprocal"), Disc("none")) == approx(num2 / (1 + 1 / 2 + 1 / 3 + 1 / 4))


def test_eild_rows_without_other_relevant_items_are_skipped():
    ref = toy()
    # u2 [b a e], binary [1, 0, 1]: row b: a has weight 0, e is NaN -> W = 0, skipped; row e: NaN
    # -> skipped; row a: gain 0. All rows contribute 0 but the normaliser is 3 -> EILD 0.
    assert ref.eild("u2", 3, BINARY) == 0.0
    # with no relevance row b and row a are valid: d(b, a) = 1-s each; row e skipped -> 2(1-s)/3
    assert ref.eild("u2", 3, NONE) == approx(2 * (1 - S) / 3)


# ---------------------------------------------------------------- intent-aware
def test_alpha_ndcg():
    ref = toy()
    # u1 [c e d f], relevant c {y, z}, d {z}; alpha = 0.5
    # k=1 c: 0.5^0 + 0.5^0 = 2 -> 2/1; k=3 d: 0.5^1 = 0.5 -> 0.5/log2 4 = 0.25; DCG = 2.25
    # ideal over {c, d}: c (gain 2) then d (gain 0.5) -> 2 + 0.5/log2 3
    assert ref.alpha_ndcg("u1", 4, 0.5) == approx(2.25 / (2 + 0.5 * L3))
    # u2 [b a e]: relevant b {x}, e {} (gain 0): DCG = 1; ideal b then e -> 1
    assert ref.alpha_ndcg("u2", 3, 0.5) == approx(1.0)
    # alpha = 0.2: d's gain 0.8 -> DCG 2 + 0.8/2; ideal 2 + 0.8/log2 3
    assert ref.alpha_ndcg("u1", 4, 0.2) == approx(2.4 / (2 + 0.8 * L3))


def test_alpha_ndcg_ideal_uses_n_positions_not_n_plus_one():
    # two relevant single-feature items, cutoff 1, list [p]: receval's ideal over N = 1 position is
    # 1 -> alpha-nDCG 1 (RankSys' N+1 ideal would give 1/(1 + 1/log2 3)).
    ref = Reference([], [("u", "p", 5), ("u", "q", 5)], {"u": ["p"]}, {"p": {"x": 1}, "q": {"y": 1}})
    assert ref.alpha_ndcg("u", 1, 0.5) == approx(1.0)


def test_alpha_ndcg_ideal_ties_by_item_id():
    # relevant c {x, z}, b {z, w}, a {x, y} (test rows given in the order c, b, a), alpha = 0.5.
    # Step 1: all gains 2 -> tie -> smallest id a (counts x, y). Step 2: b {z, w} gain 2 beats
    # c {x, z} gain 0.5 + 1 = 1.5 -> b. Step 3: c 0.5 + 0.5 = 1.
    # IDCG@3 = 2 + 2/log2 3 + 1/2. (Picking c first would give 2 + 1.5/log2 3 + 1.5/2.)
    # List [c, a, b]: c 2; a {x: 1 seen, y} 0.5 + 1 = 1.5; b {z seen, w} 1.5 ->
    # DCG = 2 + 1.5/log2 3 + 1.5/2.
    feats = {"a": {"x": 1, "y": 1}, "b": {"z": 1, "w": 1}, "c": {"x": 1, "z": 1}}
    test = [("u", "c", 5), ("u", "b", 5), ("u", "a", 5)]
    ref = Reference([], test, {"u": ["c", "a", "b"]}, feats)
    assert ref.alpha_ndcg("u", 3, 0.5) == approx((2 + 1.5 * L3 + 0.75) / (2 + 2 * L3 + 0.5))
    # over N = 2 positions only: DCG 2 + 1.5/log2 3, IDCG 2 + 2/log2 3
    assert ref.alpha_ndcg("u", 2, 0.5) == approx((2 + 1.5 * L3) / (2 + 2 * L3))


def test_err_ia():
    ref = toy()
    # u1 rows train a {x,y}, b {x}; test c {y,z}, d {z}, e {} -> counts x 2, y 2, z 2 -> p = 1/3 each
    assert ref.intent_model("u1") == {"x": approx(1 / 3), "y": approx(1 / 3), "z": approx(1 / 3)}
    # list [c e d f]: k=1 c (5, g = 31/32) intents y, z: 2 * (1/3)(31/32)/1; not-yet y, z = 1/32
    # k=3 d (4, g = 15/32) intent z: (1/3)(15/32)(1/32)/3; e not relevant (2), f unjudged
    assert ref.err_ia("u1", 4) == approx(2 * (1 / 3) * (31 / 32) + (1 / 3) * (15 / 32) * (1 / 32) / 3)
    # u2 rows a {x,y}, c {y,z}, b {x}, e {}, d {z} -> x 2, y 2, z 2; list [b a e]: b (5) intent x:
    # (1/3)(31/32); e relevant (4) but featureless -> 0
    assert ref.err_ia("u2", 3) == approx((1 / 3) * (31 / 32))


def test_err_ia_uniform_intents_when_rows_carry_no_features():
    # v's rows (train e, test g) have no features -> p(f|v) uniform over all features {x, y}.
    # Every relevant item is one of v's test rows, hence featureless, so ERR-IA is 0 anyway.
    ref = Reference([("v", "e", 5)], [("v", "g", 5)], {"v": ["g", "a"]}, {"a": {"x": 1}, "b": {"y": 1}, "g": {}})
    assert ref.intent_model("v") == {"x": 0.5, "y": 0.5}
    assert ref.err_ia("v", 2) == 0.0


def test_s_recall():
    ref = toy()
    # 3 features in the data; u1 relevant retrieved c {y,z}, d {z} -> 2/3; u2 b {x}, e {} -> 1/3
    assert ref.s_recall("u1", 4) == approx(2 / 3) and ref.s_recall("u2", 3) == approx(1 / 3)
    assert ref.mean("s_recall", 4) == approx((2 / 3 + 1 / 3 + 0) / 3)


# ---------------------------------------------------------------- system metrics
def test_aggregate_diversity():
    ref = toy()
    # counted lists: u1 [c e d f] (K 4), u2 [b a e] (K 3); u5 ignored.
    # c, d, f: C 1, W 1/4; b, a: C 1, W 1/3; e: C 2, W 1/4 + 1/3 = 7/12 -> 7/24
    # 4 * (3/4 + 2/3 + 7/24) = 4 * 41/24 = 41/6 > 6 distinct items (short list inflation)
    assert ref.aggregate_diversity(4) == approx(41 / 6)
    # @3 every list is full -> the number of distinct items {c, e, d, b, a} = 5
    assert ref.aggregate_diversity(3) == approx(5.0)
    # binary relevance @3: W_i = sum rel/K: c 1/3, d 1/3, b 1/3, e (u1: 0, u2: 1/3) -> (1/3)/2, a 0
    assert ref.aggregate_diversity(3, BINARY) == approx(3 * (1 / 3 + 1 / 3 + 1 / 3 + 1 / 6))


def test_aggregate_diversity_short_list_inflation_10_over_3():
    # metrics.md section 7: three distinct items, one short list. N = 3, lists [a b c], [a c b], [a b]:
    # a: C 3, W 1/3 + 1/3 + 1/2 = 7/6 -> 7/18; b: the same 7/18; c: C 2, W 2/3 -> 1/3
    # 3 * (7/18 + 7/18 + 6/18) = 3 * 10/9 = 10/3
    test = [("u", "a", 1), ("v", "a", 1), ("w", "a", 1)]
    ref = Reference([], test, {"u": ["a", "b", "c"], "v": ["a", "c", "b"], "w": ["a", "b"]})
    assert ref.aggregate_diversity(3) == approx(10 / 3)


def test_gini():
    ref = toy()
    # universe = items of train and test = {a..f}, n = 6. @4 counts c 1, e 2, d 1, f 1, b 1, a 1,
    # T = 7; ascending [1,1,1,1,1,2], coefficients 2j - 7 = -5,-3,-1,1,3,5:
    # sum = -5 -3 -1 +1 +3 + 5*2 = 5 -> G = 5/7/5 = 1/7 -> 1 - G = 6/7
    assert ref.gini(4) == approx(6 / 7)
    # @2: [c e], [b a] -> four items once, T = 4, two zeros: [0,0,1,1,1,1] -> (-1+1+3+5)/4/5 = 2/5
    assert ref.gini(2) == approx(3 / 5)
    # with a catalog of 8 items: [0,0,0,0,1,1,1,1], coefficients 2j - 9: (1+3+5+7)/4/7 = 4/7
    assert toy(catalog=list("abcdefgh")).gini(2) == approx(3 / 7)


def test_entropy():
    ref = toy()
    # @2: [c e], [b a]: four items once, T = 4, W = 1/2 each:
    # (4 * 1/2 * -log2(1/4)) / 2 lists = 2 = log2 4 (Shannon entropy of a uniform exposure)
    assert ref.entropy(2) == approx(2.0)
    # @4: T = 7; c, d, f W 1/4, C 1; b, a W 1/3, C 1; e W 7/12, C 2
    expected = (3 * 0.25 * math.log2(7) + 2 * (1 / 3) * math.log2(7) + (7 / 12) * math.log2(7 / 2)) / 2
    assert ref.entropy(4) == approx(expected)


def test_eild_other_relevance_models():
    ref = toy()
    # u1 [c e d f], no discount. ndcg gains [3, 0, 1, 0]: row c: only d has weight (1) -> 1-s;
    # row d: only c has weight (3) -> 1-s; EILD = (3 (1-s) + 1 (1-s)) / 4 = 1-s
    assert ref.eild("u1", 4, Rel("ndcg")) == approx(1 - S)
    # err gains [31/32, 0, 15/32, 0]: rows c and d as above -> (31/32 + 15/32)(1-s)/4
    assert ref.eild("u1", 4, Rel("err")) == approx((46 / 32) * (1 - S) / 4)
    # graded gains [1/2, 0, 0, 0]: row c has no other item with weight -> skipped -> 0
    assert ref.eild("u1", 4, Rel("graded")) == 0.0
    # background(0.25) gains [1, 0, 1, 0.25]:
    #   row c: d (w 1, d 1-s), f (w .25, d 1/2) -> (1-s + .125)/1.25
    #   row d: c (w 1, 1-s), f (w .25, 1-s) -> 1-s
    #   row f (gain .25): c (w 1, 1/2), d (w 1, 1-s) -> (1.5-s)/2
    expected = (1 * (1.125 - S) / 1.25 + 1 * (1 - S) + 0.25 * (1.5 - S) / 2) / 4
    assert ref.eild("u1", 4, Rel("background", 4, 0.25)) == approx(expected)
