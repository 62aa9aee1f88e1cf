"""Time the full default report of the metrics engine and compare it with a plain numpy ILD pass.

Generates (or reuses) synthetic inputs with benchmarks/synthetic.py, then, in a fresh process each:
  1. receval's engine, the full default report of metrics.md §9.2 at K (users/s, peak RSS);
  2. a plain vectorized numpy ILD pass over the same lists (users/s) — ILD alone, as a yardstick.

    python benchmarks/bench_evaluate.py --users 100000 --items 20000 --k 50
    python benchmarks/bench_evaluate.py --users 1000000 --items 50000 --k 50
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def engine_pass(data: Path, k: int) -> dict:
    import pandas as pd

    from receval.metrics.engine import EvaluationConfig, evaluate

    t0 = time.perf_counter()
    frames = {n: pd.read_parquet(data / f"{n}.parquet") for n in ("train", "test", "recs", "features")}
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    import os

    threads = os.cpu_count() or 1
    state = evaluate(frames["train"], frames["test"], frames["recs"], frames["features"],
                     EvaluationConfig(cutoffs=(k,), threads=threads))
    records = state.summary()
    elapsed = time.perf_counter() - t0
    users = state.n_users
    return {
        "what": f"receval full default report ({threads} threads)",
        "users": users,
        "values": sum(1 for r in records if r["kind"] == "metric"),
        "seconds": round(elapsed, 2),
        "read_seconds": round(t_read, 2),
        "users_per_second": round(users / elapsed),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def numpy_ild_pass(data: Path, k: int) -> dict:
    """The plainest vectorized ILD: dense unit feature rows, one batched matmul per 4096 users."""
    import numpy as np
    import pandas as pd

    recs = pd.read_parquet(data / "recs.parquet")
    feats = pd.read_parquet(data / "features.parquet")
    n_items = int(max(recs["item"].max(), feats["item"].max())) + 1
    f = np.zeros((n_items, int(feats["feature"].max()) + 1))
    f[feats["item"].to_numpy(), feats["feature"].to_numpy()] = 1.0
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    unit = np.divide(f, norm, out=np.zeros_like(f), where=norm > 0)
    idx = recs["item"].to_numpy().reshape(-1, k)  # every user has exactly k items here
    t0 = time.perf_counter()
    out = np.empty(len(idx))
    for s in range(0, len(idx), 4096):
        x = unit[idx[s : s + 4096]]
        d = 1.0 - np.matmul(x, np.swapaxes(x, 1, 2))
        out[s : s + 4096] = (d.sum(axis=(1, 2)) - np.trace(d, axis1=1, axis2=2)) / (k * (k - 1))
    elapsed = time.perf_counter() - t0
    return {"what": "plain numpy ILD only", "users": len(idx), "seconds": round(elapsed, 2),
            "users_per_second": round(len(idx) / elapsed)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--data", type=Path, default=None, help="cache folder (default /tmp/receval-bench-U-I-K)")
    ap.add_argument("--child", choices=["engine", "numpy"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    data = args.data or Path(f"/tmp/receval-bench-{args.users}-{args.items}-{args.k}")
    if args.child:
        fn = engine_pass if args.child == "engine" else numpy_ild_pass
        print(json.dumps(fn(data, args.k)))
        return
    if not (data / "recs.parquet").exists():
        subprocess.run([sys.executable, str(HERE / "synthetic.py"), "--users", str(args.users), "--items",
                        str(args.items), "--k", str(args.k), "--out", str(data)], check=True)
    results = []
    for child in ("engine", "numpy"):
        out = subprocess.run([sys.executable, __file__, "--users", str(args.users), "--items", str(args.items),
                              "--k", str(args.k), "--data", str(data), "--child", child],
                             check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    for r in results:
        print(json.dumps(r))
    ratio = results[0]["users_per_second"] / results[1]["users_per_second"]
    print(f"full default report ({results[0]['values']} values) vs plain numpy ILD alone: {ratio:.2f}x the throughput")


if __name__ == "__main__":
    main()
