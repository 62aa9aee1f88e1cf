"""Batches computed in threads give exactly the values of one thread (MovieLens 100K)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from receval.metrics.engine import EvaluationConfig, evaluate


def test_threads_and_batch_sizes_do_not_change_any_value(datasets_dir: Path):
    d = datasets_dir / "ml-100k"
    cols = ["user", "item", "rating", "ts"]
    train = pd.read_csv(d / "u1.base", sep="\t", names=cols)[cols[:3]]
    test = pd.read_csv(d / "u1.test", sep="\t", names=cols)[cols[:3]]
    items = pd.read_csv(d / "u.item", sep="|", header=None, encoding="latin-1")
    rows, genres = np.nonzero(items.iloc[:, 5:].to_numpy())
    features = pd.DataFrame({"item": items.iloc[rows, 0].to_numpy(), "feature": genres, "weight": 1.0})
    # a seeded random top-30 list per test user, so that lists differ between users
    rng = np.random.default_rng(3)
    users = np.sort(test["user"].unique())
    recs = pd.DataFrame({
        "user": np.repeat(users, 30),
        "item": np.concatenate([rng.choice(items[0].to_numpy(), 30, replace=False) for _ in users]),
        "rank": np.tile(np.arange(1, 31), len(users)),
    })
    one = evaluate(train, test, recs, features, EvaluationConfig(cutoffs=(5, 30), batch_size=500, threads=1))
    many = evaluate(train, test, recs, features, EvaluationConfig(cutoffs=(5, 30), batch_size=37, threads=3))
    pd.testing.assert_frame_equal(one.per_user, many.per_user, check_exact=True)
    assert [r["value"] for r in one.summary()] == [r["value"] for r in many.summary()]
