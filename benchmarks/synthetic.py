"""Deterministic synthetic evaluation inputs for benchmarks: train, test, K-item lists, features.

Power-law item popularity (Zipf, exponent 1), ~20 genre-like features (1–3 per item, 1% of items
without features), ~20 train and ~10 test interactions per user with ratings 1–5, and top-K lists
drawn without replacement by popularity (Gumbel top-k) from the 4·K·10 most popular items. Generated
in user chunks, stored with compact dtypes, so 1M users fit in a few hundred MB.

    python benchmarks/synthetic.py --users 100000 --items 20000 --k 50 --out /tmp/bench-100k
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

CHUNK = 20_000


def popularity(n_items: int) -> np.ndarray:
    p = 1.0 / np.arange(1, n_items + 1)
    return p / p.sum()


def interactions(rng: np.random.Generator, users: np.ndarray, p: np.ndarray, per_user: int) -> pd.DataFrame:
    """~per_user distinct popularity-drawn items per user, ratings 1..5."""
    u = np.repeat(users, per_user)
    i = rng.choice(len(p), size=len(u), p=p)
    key = np.unique(u.astype(np.int64) * len(p) + i)
    return pd.DataFrame(
        {
            "user": (key // len(p)).astype(np.int32),
            "item": (key % len(p)).astype(np.int32),
            "rating": rng.integers(1, 6, size=len(key)).astype(np.float32),
        }
    )


def top_k_lists(rng: np.random.Generator, users: np.ndarray, p: np.ndarray, k: int) -> pd.DataFrame:
    pool = min(len(p), 40 * k)
    logp = np.log(p[:pool])
    keys = logp[None, :] + rng.gumbel(size=(len(users), pool))
    top = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
    items = np.take_along_axis(top, order, axis=1)
    return pd.DataFrame(
        {
            "user": np.repeat(users, k).astype(np.int32),
            "item": items.ravel().astype(np.int32),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int16), len(users)),
        }
    )


def features(rng: np.random.Generator, n_items: int, n_features: int = 20) -> pd.DataFrame:
    per_item = rng.integers(1, 4, size=n_items)
    per_item[rng.random(n_items) < 0.01] = 0
    item = np.repeat(np.arange(n_items, dtype=np.int32), per_item)
    feat = rng.integers(0, n_features, size=len(item)).astype(np.int16)
    return pd.DataFrame({"item": item, "feature": feat, "weight": 1.0}).drop_duplicates(["item", "feature"])


def generate(n_users: int, n_items: int, k: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    p = popularity(n_items)
    train, test, recs = [], [], []
    for start in range(0, n_users, CHUNK):
        users = np.arange(start, min(n_users, start + CHUNK), dtype=np.int32)
        train.append(interactions(rng, users, p, 20))
        t = interactions(rng, users, p, 10)
        test.append(t)
        recs.append(top_k_lists(rng, users, p, k))
    test_df = pd.concat(test, ignore_index=True)
    train_df = pd.concat(train, ignore_index=True)
    # a test (user, item) must not repeat a train one
    clash = pd.MultiIndex.from_frame(test_df[["user", "item"]]).isin(pd.MultiIndex.from_frame(train_df[["user", "item"]]))
    return {
        "train": train_df,
        "test": test_df[~clash].reset_index(drop=True),
        "recs": pd.concat(recs, ignore_index=True),
        "features": features(rng, n_items),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    t0 = time.perf_counter()
    frames = generate(args.users, args.items, args.k, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(args.out / f"{name}.parquet", index=False)
    sizes = ", ".join(f"{n}={len(f):,}" for n, f in frames.items())
    print(f"generated {sizes} in {time.perf_counter() - t0:.1f}s -> {args.out}")


if __name__ == "__main__":
    main()
