"""The fast kernels against their definitions: the bilinear EILD (one GEMM of the relative-discount
matrix per chunk) against the pair-block EILD, for built-in and user-defined discounts and
relevance models, and independent of how users are batched or threaded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from receval.data.synthetic import synthetic_dataset
from receval.metrics import diversity
from receval.metrics.batch import EvaluationContext, ListIndex, batch_selections, make_batch
from receval.metrics.engine import EvaluationConfig, evaluate
from receval.metrics.models import Discount, ExpDiscount, LogDiscount, NoDiscount, ReciprocalDiscount, Relevance
from receval.metrics.spec import MetricSpec
from receval.metrics.statistics import GlobalStatistics


class Linear(Discount):
    name = "linear"

    def weights(self, n):
        return np.maximum(0.0, 1.0 - np.arange(n) / 7.0)


class Steeper(ExpDiscount):
    """A subclass of a built-in discount that weighs otherwise: its own weights must be used."""

    name = "steeper"

    def weights(self, n):
        return 0.5 ** np.arange(n)


class Shifted(NoDiscount):
    name = "shifted"

    def weights(self, n):
        return 1.0 / (1.0 + np.arange(n))


DISCOUNTS = [NoDiscount(), ExpDiscount(), ExpDiscount(0.5), LogDiscount(), ReciprocalDiscount(), Linear(),
             Steeper(), Shifted()]


@pytest.fixture(scope="module")
def frames():
    """Synthetic data where some recommended items have no features and some lists are short."""
    data = synthetic_dataset(n_users=90, n_items=60, interactions_per_user=10, seed=11)
    ratings = data.ratings
    rng = np.random.default_rng(2)
    is_test = rng.random(len(ratings)) < 0.3
    train, test = ratings[~is_test][["user", "item", "rating"]], ratings[is_test][["user", "item", "rating"]]
    items = np.sort(ratings["item"].unique())
    rows = []
    for user in sorted(test["user"].unique()):
        length = int(rng.integers(1, 16))  # K_u from 1 to 15, against cutoffs 5 and 12
        for rank, item in enumerate(rng.choice(items, length, replace=False), start=1):
            rows.append((user, item, rank))
    recs = pd.DataFrame(rows, columns=["user", "item", "rank"])
    featured = items[rng.random(len(items)) < 0.8]  # a fifth of the items have no features
    features = data.features[data.features["item"].isin(featured)]
    return train, test, recs, features


def _specs():
    return [MetricSpec(m, n, rel, d) for m in ("eild",) for n in (5, 12)
            for rel in (Relevance("none"), Relevance("binary"), Relevance("graded"), Relevance("background", background=0.3))
            for d in DISCOUNTS] + [MetricSpec("ild", 12, Relevance("none"), NoDiscount())]


def test_bilinear_eild_equals_the_pair_block_eild(frames):
    train, test, recs, features = frames
    statistics = GlobalStatistics.of(train, test, features)
    ctx = EvaluationContext.build(statistics, train, test, recs, threshold=4.0, distance="cosine")
    assert ctx.distance.has_unit_rows
    lists = ListIndex.of(recs, ctx)
    specs = _specs()
    groups: dict = {}
    for selection in batch_selections(np.flatnonzero(lists.rows >= 0), 64):
        batch = make_batch(ctx, lists, selection, 12)
        for spec in specs:
            groups.setdefault((min(spec.cutoff, batch.k), spec.discount), []).append(spec)
        fast = diversity._bilinear(batch, groups)
        block = diversity._pair_block(batch, groups)
        assert fast.keys() == block.keys()
        for key in fast:
            np.testing.assert_allclose(fast[key], block[key], rtol=1e-12, atol=1e-14, err_msg=key)
        assert max(float(np.ptp(v)) for v in fast.values()) > 0


def test_bilinear_eild_does_not_depend_on_batch_size_or_threads(frames):
    train, test, recs, features = frames
    specs = tuple(_specs())
    one = evaluate(train, test, recs, features, EvaluationConfig(specs=specs, batch_size=1000, threads=1))
    many = evaluate(train, test, recs, features, EvaluationConfig(specs=specs, batch_size=7, threads=3))
    pd.testing.assert_frame_equal(one.per_user, many.per_user, check_exact=True)


def test_a_subclass_of_a_builtin_discount_that_weighs_otherwise_keeps_its_own_weights(frames):
    """Steeper is an ExpDiscount weighing 0.5^(k−1), Shifted a NoDiscount weighing 1/k: their EILD
    must be exp(0.5)'s and reciprocal's, not their parents' shortcuts (the uniform ILD form)."""
    train, test, recs, features = frames
    twins = [(Steeper(), ExpDiscount(0.5)), (Shifted(), ReciprocalDiscount())]
    relevances = (Relevance("none"), Relevance("background", background=0.3))
    specs = tuple(MetricSpec("eild", 12, rel, d) for pair in twins for d in pair for rel in relevances)
    per_user = evaluate(train, test, recs, features, EvaluationConfig(specs=specs, threads=1)).per_user
    for mine, builtin in twins:
        for rel in relevances:
            got = per_user[MetricSpec("eild", 12, rel, mine).key].to_numpy()
            want = per_user[MetricSpec("eild", 12, rel, builtin).key].to_numpy()
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
            assert np.ptp(want) > 0


def test_intent_counts_by_product_table_and_sparse_give_the_same_values(frames, monkeypatch):
    """p(f|u) from the product with the dense presence table, from the dense users × features
    count table and from the sparse product agree exactly (integer counts), and so do the
    intent-aware values of every user."""
    from receval.metrics import batch as batch_module
    from receval.metrics import intent

    train, test, recs, features = frames
    specs = tuple(MetricSpec(m, n, Relevance("binary" if m != "err_ia" else "err"), d)
                  for m, d in (("alpha_ndcg", LogDiscount()), ("err_ia", ReciprocalDiscount())) for n in (3, 12))
    config = EvaluationConfig(specs=specs, batch_size=16, threads=1)
    product = evaluate(train, test, recs, features, config)
    monkeypatch.setattr(batch_module, "DENSE_PRESENCE_MAX", 0)  # no dense presence table: the count table
    table = evaluate(train, test, recs, features, config)
    monkeypatch.setattr(intent, "DENSE_COUNTS_MAX", 0)  # nor a count table: every batch through the sparse product
    sparse = evaluate(train, test, recs, features, config)
    pd.testing.assert_frame_equal(product.per_user, table.per_user, check_exact=True)
    pd.testing.assert_frame_equal(product.per_user, sparse.per_user, check_exact=True)
    assert (product.per_user.drop(columns="user").to_numpy() > 0).any()


@pytest.mark.parametrize("n", [0, 1, 9, 2000])
def test_groupwise_cumprod_is_the_sequential_product_of_each_group(n):
    """ERR-IA's running product of (1 − g) per aspect: bit-identical to pandas' group-wise cumprod
    (a sequential product, as RankSys multiplies)."""
    from receval.metrics.intent import _groupwise_cumprod

    rng = np.random.default_rng(n)
    values = rng.random(n)
    starts = rng.random(n) < 0.2
    if n:
        starts[0] = True
    out = np.empty(n)
    _groupwise_cumprod(values, starts, out)
    expected = pd.Series(values).groupby(np.cumsum(starts)).cumprod().to_numpy()
    assert np.array_equal(out, expected)
