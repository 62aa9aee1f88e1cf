"""The engine's memory: no input frame kept through the batch loop, no copy of rows already in order.

At 1M users the lists are 50M rows (477 MB as int32/int32/int16) and the train and test frames
another 400 MB; the evaluation context and the list index hold what the metrics read. A caller that
hands the frames over (keeps no name of its own) gets their memory back before the first batch.
Rows grouped by user (as the readers leave them) become the context's matrices without a COO copy.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pandas as pd

from receval.metrics.batch import EvaluationContext
from receval.metrics.engine import EvaluationConfig, evaluate
from receval.metrics.statistics import GlobalStatistics


def _inputs(users: int = 300, items: int = 80, k: int = 6) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    key = np.unique(np.repeat(np.arange(users), 5) * items + rng.integers(0, items, users * 5))
    test = pd.DataFrame({"user": key // items, "item": key % items, "rating": rng.integers(1, 6, len(key)) * 1.0})
    train = test.assign(item=(test["item"] + 1) % items)
    lists = np.stack([rng.permutation(items)[:k] for _ in range(users)])
    recs = pd.DataFrame({"user": np.repeat(np.arange(users), k), "item": lists.ravel(),
                         "rank": np.tile(np.arange(1, k + 1), users)})
    return {"train": train, "test": test, "recs": recs}


def test_frames_handed_over_are_freed_before_the_batches_and_values_do_not_change():
    config = EvaluationConfig(cutoffs=(6,), batch_size=64)
    kept = _inputs()
    expected = evaluate(kept["train"], kept["test"], kept["recs"], None, config)

    handed = _inputs()
    alive = {role: weakref.ref(frame) for role, frame in handed.items()}
    seen: list[dict[str, bool]] = []

    def progress(done: int, total: int) -> None:
        gc.collect()
        seen.append({role: ref() is not None for role, ref in alive.items()})

    state = evaluate(handed.pop("train"), handed.pop("test"), handed.pop("recs"), None, config, progress=progress)
    assert len(seen) > 1  # several batches, each checked
    assert all(not any(s.values()) for s in seen), seen
    pd.testing.assert_frame_equal(state.per_user, expected.per_user, check_exact=True)
    assert state.summary() == expected.summary()
    # a caller that keeps its frames keeps them (the engine never mutates or empties them)
    assert len(kept["recs"]) == 300 * 6 and list(kept["recs"].columns) == ["user", "item", "rank"]


def test_the_context_matrices_do_not_depend_on_the_row_order_and_leave_the_frames_alone():
    frames = _inputs()
    stats = GlobalStatistics.of(frames["train"], frames["test"])
    rng = np.random.default_rng(4)
    # grouped by user with items in order (the matrix shares the ratings), grouped with items out
    # of order (sorted in a copy), and shuffled (the COO route)
    orders = {
        "grouped": lambda f: f.sort_values(["user", "item"]),
        "items out of order": lambda f: f.sort_values(["user", "rating"], kind="stable"),
        "shuffled": lambda f: f.iloc[rng.permutation(len(f))],
    }
    built = {}
    for name, order in orders.items():
        train, test = (order(frames[r]).reset_index(drop=True) for r in ("train", "test"))
        before = (train.copy(), test.copy())
        ctx = EvaluationContext.build(stats, train, test, frames["recs"], threshold=4.0, distance=None)
        pd.testing.assert_frame_equal(train, before[0])
        pd.testing.assert_frame_equal(test, before[1])
        built[name] = ctx
    first = built["shuffled"]
    for name, ctx in built.items():
        for matrix in ("train", "test"):
            a, b = getattr(first, matrix), getattr(ctx, matrix)
            assert b.has_canonical_format, (name, matrix)
            for part in ("indptr", "indices", "data"):
                np.testing.assert_array_equal(getattr(a, part), getattr(b, part), err_msg=f"{name} {matrix} {part}")
