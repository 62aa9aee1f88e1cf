"""The item-exposure state behind aggregate diversity, Gini and entropy, against a plain count.

The accumulator lays its cells out by list length and reads back only the lengths that occur, so
lists shorter than the cutoff (and users with none within it) are what can go wrong.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from receval.metrics import engine
from receval.metrics.spec import parse_specs

CUTOFFS = [3, 5]


def frames(seed: int):
    rng = np.random.default_rng(seed)
    users, items = 40, 30
    train = pd.DataFrame({"user": rng.integers(0, users, 300), "item": rng.integers(0, items, 300),
                          "rating": rng.integers(1, 6, 300).astype(float)}).drop_duplicates(["user", "item"])
    test = pd.DataFrame({"user": rng.integers(0, users, 200), "item": rng.integers(0, items, 200),
                         "rating": rng.integers(1, 6, 200).astype(float)}).drop_duplicates(["user", "item"])
    rows = []
    for u in range(users):  # lists of 0..7 items: shorter and longer than each cutoff
        listed = rng.choice(items + 5, size=rng.integers(0, 8), replace=False)  # some items unknown to train
        rows += [(u, int(i), r + 1) for r, i in enumerate(listed)]
    recs = pd.DataFrame(rows, columns=["user", "item", "rank"])
    return train, test, recs


def reference(test: pd.DataFrame, recs: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """(item, cutoff, K_u) → count and binary-relevance sum, by a group-by over the listed rows."""
    evaluated = recs[recs["user"].isin(set(test["user"]))]
    relevant = set(map(tuple, test.loc[test["rating"] >= threshold, ["user", "item"]].to_numpy()))
    parts = []
    for n in CUTOFFS:
        top = evaluated[evaluated["rank"] <= n].copy()
        top["cutoff"] = n
        top["length"] = top.groupby("user")["item"].transform("size")
        top["rel"] = [float((u, i) in relevant) for u, i in zip(top["user"], top["item"])]
        parts.append(top)
    rows = pd.concat(parts)
    return (rows.groupby(["cutoff", "item", "length"]).agg(count=("rel", "size"), rel=("rel", "sum"))
            .reset_index())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_exposure_counts_every_listed_item_by_cutoff_and_list_length(seed, batch_size):
    train, test, recs = frames(seed)
    specs = parse_specs(["aggregate_diversity[binary,none]", "gini"], CUTOFFS)
    config = engine.EvaluationConfig(cutoffs=CUTOFFS, specs=specs, batch_size=batch_size)
    exposure = engine.evaluate(train, test, recs, config=config).exposure
    # ordered by cutoff, item and K_u, one row per triple that occurred
    keys = exposure[["cutoff", "item", "length"]]
    assert keys.equals(keys.sort_values(["cutoff", "item", "length"]).reset_index(drop=True))
    assert not keys.duplicated().any()
    want = reference(test, recs, config.threshold)
    got = exposure[["cutoff", "item", "length", "count", "rel[binary]"]].rename(columns={"rel[binary]": "rel"})
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.astype(got.dtypes.to_dict()), check_exact=True)
    assert (exposure["length"] < CUTOFFS[-1]).any() and (exposure["length"] == CUTOFFS[-1]).any()
