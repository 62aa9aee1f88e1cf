"""Metrics composed from models: user-defined discounts and novelty models, parameters in keys."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import receval
from receval.data.synthetic import synthetic_dataset
from receval.errors import ConfigError
from receval.metrics import registry
from receval.metrics.engine import EvaluationConfig, evaluate
from receval.pipeline.evaluation import partial_from_objects, partial_objects
from receval.metrics.models import Discount, ExpDiscount, ItemNovelty, Relevance
from receval.metrics.spec import MetricSpec, make_spec, parse_specs

CUTOFFS = (3, 10)
DISCOUNTED = ("epc", "efd", "epd", "eild")


class Geometric(Discount):
    """0.85^(k−1), written by hand: a user's discount, unknown to receval."""

    name = "geometric"

    def weights(self, n):
        return 0.85 ** np.arange(n)


@pytest.fixture(scope="module")
def frames():
    """A small synthetic dataset with features; recs by a noisy popularity score (string ids)."""
    data = synthetic_dataset(n_users=120, n_items=80, interactions_per_user=12, seed=5)
    ratings = data.ratings.assign(user="u" + data.ratings["user"].astype(str), item="i" + data.ratings["item"].astype(str))
    rng = np.random.default_rng(1)
    is_test = rng.random(len(ratings)) < 0.3
    train, test = ratings[~is_test][["user", "item", "rating"]], ratings[is_test][["user", "item", "rating"]]
    items = ratings["item"].unique()
    popularity = train["item"].value_counts().reindex(items, fill_value=0).to_numpy()
    tested = test.groupby("user")["item"].agg(set).to_dict()
    rows = []
    for user in sorted(ratings["user"].unique()):
        # a recommender with some signal: the user's test items get a boost, so lists hold hits
        score = popularity / popularity.max() + rng.normal(0, 0.4, len(items)) + np.isin(items, list(tested.get(user, ())))
        for rank, j in enumerate(np.argsort(-score)[:12], start=1):
            rows.append((user, items[j], rank))
    recs = pd.DataFrame(rows, columns=["user", "item", "rank"])
    features = data.features.assign(item="i" + data.features["item"].astype(str))
    return train, test, recs, features


def _run(frames, specs, **options):
    train, test, recs, features = frames
    return evaluate(train, test, recs, features, EvaluationConfig(specs=tuple(specs), **options))


def _summation_order(metric: str) -> float:
    """The built-in exp discount applies EILD's relative discount as a recursion
    (``a_k = b·a_{k+1} + y_{k+1}``), a hand-written one as explicit sums: the same terms in another
    order, a few ulps apart. Every other metric sums identically."""
    return 1e-14 if metric == "eild" else 0.0


def test_custom_discount_gives_the_builtin_exp_values_for_every_discounted_metric(frames):
    builtin = [make_spec(m, n, rel, "exp") for m in DISCOUNTED for n in CUTOFFS for rel in ("none", "binary")]
    custom = [MetricSpec(s.metric, s.cutoff, s.relevance, Geometric()) for s in builtin]
    a, b = _run(frames, builtin), _run(frames, custom)
    for s, c in zip(builtin, custom):
        assert c.key == s.key.replace(",exp]", ",geometric]")
        np.testing.assert_allclose(b.per_user[c.key].to_numpy(), a.per_user[s.key].to_numpy(),
                                   rtol=_summation_order(s.metric), atol=0)
        assert a.per_user[s.key].std() > 0  # a value that moves with the data, not a constant
    values = {r["key"]: r["value"] for r in a.summary() if r["kind"] == "metric"}
    for r in b.summary():
        if r["kind"] == "metric":
            assert r["value"] == pytest.approx(values[r["key"].replace(",geometric]", ",exp]")],
                                               rel=_summation_order(r["metric"]), abs=0)
            assert (r["discount"], r["discount_model"]) == ("geometric", "geometric")


def test_custom_discount_works_in_receval_evaluate(frames):
    train, test, recs, features = frames
    metrics = [MetricSpec("eild", 10, Relevance("binary"), Geometric()), "eild[binary,exp]@10"]
    ev = receval.evaluate(train, test, recs, features, cutoffs=(10,), metrics=metrics)
    value = ev.summary.set_index("key")["value"]
    assert value["eild[binary,geometric]@10"] == pytest.approx(value["eild[binary,exp]@10"], rel=_summation_order("eild"), abs=0)


def test_a_discount_that_weighs_differently_gives_different_values(frames):
    class Flat(Discount):
        name = "flat"

        def weights(self, n):
            return np.ones(n)

    state = _run(frames, [MetricSpec("epc", 10, Relevance("binary"), Flat()), make_spec("epc", 10, "binary", "none")])
    np.testing.assert_array_equal(state.per_user["epc[binary,flat]@10"], state.per_user["epc[binary,none]@10"])
    other = _run(frames, [make_spec("epc", 10, "binary", "exp")])
    assert not np.array_equal(other.per_user["epc[binary,exp]@10"], state.per_user["epc[binary,flat]@10"])


def test_exp_bases_coexist_in_one_run_and_default_keys_stay(frames):
    specs = parse_specs(["epc[binary,exp]", "epc[binary,exp(0.5)]", "eild[binary,exp(0.5)]@10"], CUTOFFS)
    assert [s.key for s in specs] == [
        "epc[binary,exp]@3", "epc[binary,exp]@10", "epc[binary,exp(0.5)]@3", "epc[binary,exp(0.5)]@10",
        "eild[binary,exp(0.5)]@10",
    ]
    state = _run(frames, specs)
    records = {r["key"]: r for r in state.summary() if r["kind"] == "metric"}
    assert records["epc[binary,exp]@10"]["exp_base"] == 0.85
    assert records["epc[binary,exp(0.5)]@10"]["exp_base"] == 0.5
    assert records["epc[binary,exp(0.5)]@10"]["discount"] == "exp"  # the kind, as before
    assert records["epc[binary,exp(0.5)]@10"]["discount_model"] == "exp(0.5)"
    assert records["epc[binary,exp]@10"]["value"] != records["epc[binary,exp(0.5)]@10"]["value"]
    # exp(0.5) is the same value as a run whose default base is 0.5
    half = _run(frames, [make_spec("epc", 10, "binary", "exp", exp_base=0.5)], exp_base=0.5)
    assert half.specs[0].key == "epc[binary,exp(0.5)]@10"
    np.testing.assert_array_equal(half.per_user["epc[binary,exp(0.5)]@10"], state.per_user["epc[binary,exp(0.5)]@10"])


def test_model_parameters_survive_the_partial_state(frames):
    specs = parse_specs(["epc[background(0.25),exp(0.5)]@3", "efd[binary,exp]@10"], CUTOFFS)
    state = _run(frames, specs, background=0.1)
    back = partial_from_objects(partial_objects(state))
    assert [s.key for s in back.specs] == ["epc[background(0.25),exp(0.5)]@3", "efd[binary,exp]@10"]
    assert back.specs == state.specs
    assert back.summary() == state.summary()


def test_unregistered_custom_discount_in_a_partial_state_is_refused_by_name(frames):
    state = _run(frames, [MetricSpec("epc", 3, Relevance("binary"), Geometric())])
    with pytest.raises(ConfigError, match="unknown discount 'geometric'"):
        partial_from_objects(partial_objects(state))


def test_a_new_item_novelty_model_is_a_metric(frames):
    class Complement(ItemNovelty):
        name = "complement"

        def item_values(self, counts, n_users):
            return 1.0 - counts / n_users

    registry.novelty_metric("epc_mine", Complement())
    try:
        state = _run(frames, [make_spec("epc_mine", 10, "binary", "exp"), make_spec("epc", 10, "binary", "exp")])
    finally:
        registry.unregister("epc_mine")
    np.testing.assert_array_equal(state.per_user["epc_mine[binary,exp]@10"], state.per_user["epc[binary,exp]@10"])


@pytest.mark.parametrize(
    "text, message",
    [
        ("epc[binary,exp(2)]", "base must be in"),
        ("epc[binary,exp(x)]", "parameters must be numbers"),
        ("epc[binary,cubic]", "unknown discount 'cubic'"),
        ("precision[binary,exp]", "precision takes discount none"),
        ("epc[graded(1),none]", "only background takes a parameter"),
    ],
)
def test_bad_model_texts_are_one_line_errors(text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_specs([text], (10,))


def test_a_discount_without_weights_is_refused_when_the_metric_is_defined():
    class Broken(Discount):
        name = "broken"

        def weights(self, n):
            return 1.0

    with pytest.raises(ConfigError, match="weights\\(n\\) must return n numbers"):
        MetricSpec("epc", 10, Relevance("binary"), Broken())


def test_names_encode_parameters():
    assert ExpDiscount().name == "exp(0.85)" and ExpDiscount().key == "exp"
    assert ExpDiscount(0.5).key == "exp(0.5)" and ExpDiscount(1).name == "exp(1)"
    assert Relevance("background", background=0.2).name == "background(0.2)"
    assert Relevance("background").key == "background" and Relevance("binary").name == "binary"


def test_cli_reports_two_exp_bases_side_by_side(frames, tmp_path):
    import json
    import os
    import subprocess
    import sys

    paths = {}
    for name, frame in zip(("train", "test", "recs", "features"), frames):
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "receval", "evaluate", *[a for n, p in paths.items() for a in (f"--{n}", str(p))],
         "--cutoff", "10", "--metric", "epc,eild", "--relevance", "binary", "--discount", "exp,exp(0.5)",
         "--out", str(out)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    assert res.returncode == 0, res.stderr
    records = [r for r in json.loads((out / "summary.json").read_text()) if r["kind"] == "metric"]
    assert [(r["key"], r["discount"], r["discount_model"], r["exp_base"]) for r in records] == [
        ("epc[binary,exp]@10", "exp", "exp(0.85)", 0.85), ("epc[binary,exp(0.5)]@10", "exp", "exp(0.5)", 0.5),
        ("eild[binary,exp]@10", "exp", "exp(0.85)", 0.85), ("eild[binary,exp(0.5)]@10", "exp", "exp(0.5)", 0.5),
    ]
    per_user = pd.read_parquet(out / "per_user.parquet")
    assert list(per_user.columns) == ["user", *[r["key"] for r in records]]
    expected = _run(frames, [make_spec("eild", 10, "binary", ExpDiscount(0.5))])
    np.testing.assert_array_equal(per_user["eild[binary,exp(0.5)]@10"], expected.per_user["eild[binary,exp(0.5)]@10"])


def test_the_one_metric_key_parses_and_matches_model_parameters(frames):
    from receval.metrics.keys import MetricKey, match_columns
    from receval.results.tables import select

    key = MetricKey.parse("EPC[binary, exp( 0.5 )]@10")
    assert key == MetricKey("epc", "binary", "exp(0.5)", 10) and key.format() == "epc[binary,exp(0.5)]@10"
    assert MetricKey.parse("epc[background(0.2),none]").relevance == "background(0.2)"
    specs = parse_specs(["epc[binary,exp]", "epc[binary,exp(0.5)]"], (10,))
    state = _run(frames, specs)
    columns = list(state.per_user.columns)
    assert match_columns(columns, ["epc[binary,exp]@10"]) == ["epc[binary,exp]@10"]  # exp is exp(0.85) only
    assert match_columns(columns, ["epc[binary,exp(0.5)]"]) == ["epc[binary,exp(0.5)]@10"]
    assert match_columns(columns, ["epc[binary]"]) == ["epc[binary,exp]@10", "epc[binary,exp(0.5)]@10"]
    summary = pd.DataFrame([{**r, "algorithm": "a"} for r in state.summary() if r["kind"] == "metric"])
    assert select(summary, "epc[binary,exp(0.5)]@10")["value"].tolist() == [
        r["value"] for r in state.summary() if r.get("key") == "epc[binary,exp(0.5)]@10"
    ]
    assert len(select(summary, "epc[binary,exp]@10")) == 1 and len(select(summary, "epc")) == 2


def test_results_readers_keep_the_engines_keys(frames):
    from receval.results import read

    state = _run(frames, parse_specs(["epc[binary,exp]", "epc[binary,exp(0.5)]"], (10,)))
    records = [{**r, "algorithm": "a"} for r in state.summary() if r["kind"] == "metric"]
    frame = read._records_frame(records, "summary.json")
    assert frame["key"].tolist() == ["epc[binary,exp]@10", "epc[binary,exp(0.5)]@10"]
    assert set(frame["key"]) <= set(state.per_user.columns)
