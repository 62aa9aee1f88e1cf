"""The full report of `receval evaluate` against a plain numpy pass over five metrics, on the same data.

Generates (or reuses) synthetic inputs with benchmarks/synthetic.py, then runs, each in a fresh process:

  1. the `receval evaluate` process itself (start-up, reading, validation, the full default report of
     metrics.md §9.2 at K and writing the results), 2 threads: wall time, users/s, CPU and peak RSS;
  2. receval's report alone, in one process: the engine and the summary on frames already read
     (users/s; the reading is timed beside it);
  3. the yardstick: a plain numpy pass written here from the definitions of metrics.md (§3, §5.1–5.3,
     §5.5, §5.6), one core: load with pyarrow, then EPC, EILD (cosine, exp(0.85) with RankSys's relative
     discount), precision, recall and nDCG at K. Its per-user values are checked against the
     per_user.parquet the process of (1) wrote (to 1e-9), so the yardstick computes the same numbers.

and prints the ratio of (1)'s wall time to (3)'s (load + compute; the issue's target is <= 3x at 100k
users), with the figures as JSON lines.

    python benchmarks/bench_evaluate.py --users 100000 --items 20000 --k 50
    python benchmarks/bench_evaluate.py --users 1000000 --items 50000 --k 50
    python benchmarks/bench_evaluate.py --users 1000000 --items 50000 --k 50 --only process   # (1) alone
    python benchmarks/bench_evaluate.py --users 1000000 --items 50000 --k 50 --profile 25     # where (1)'s time goes
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
THREADS = 2
EXP_BASE = 0.85
THRESHOLD = 4.0
# receval's keys of the five values the yardstick computes
YARDSTICK_KEYS = {
    "epc": "epc[none,none]@{k}",
    "eild": "eild[none,exp]@{k}",
    "precision": "precision[binary,none]@{k}",
    "recall": "recall[binary,none]@{k}",
    "ndcg": "ndcg[ndcg,log]@{k}",
}


def _paths(data: Path) -> dict[str, Path]:
    return {n: data / f"{n}.parquet" for n in ("train", "test", "recs", "features")}


# ------------------------------------------------------------------------------ 1. the process


def process_pass(data: Path, k: int, out: Path) -> dict:
    """`receval evaluate` as a user runs it, timed from outside (wait4 gives CPU and peak RSS)."""
    cmd = _evaluate_command(data, k, out)
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0), stderr.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"receval evaluate exited {proc.returncode}:\n{stderr.read()}")
        records = json.loads(stdout.read())
    users = next(r["users"] for r in records if r["kind"] == "metric")
    return _timed(f"receval evaluate process ({THREADS} threads, start-up included)", users, records, wall,
                  cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2), peak_rss_mib=round(usage.ru_maxrss / 1024))


def _timed(what: str, users: int, records: list[dict], seconds: float, **measures) -> dict:
    """One JSON line of a timed pass of receval: what, users, values reported, seconds, users/s, measures."""
    return {"what": what, "users": users, "values": sum(1 for r in records if r["kind"] == "metric"),
            "seconds": round(seconds, 2), "users_per_second": round(users / seconds), **measures}


# ------------------------------------------------------------------------------ 2. the report alone


def engine_pass(data: Path, k: int) -> dict:
    from receval.data import schema
    from receval.metrics.engine import EvaluationConfig, evaluate

    p = _paths(data)
    t0 = time.perf_counter()
    train, test = schema.read_train(p["train"]), schema.read_test(p["test"])
    recs, features = schema.read_recs(p["recs"]), schema.read_features(p["features"])
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    state = evaluate(train, test, recs, features, EvaluationConfig(cutoffs=(k,), threads=THREADS))
    records = state.summary()
    elapsed = time.perf_counter() - t0
    return _timed(f"receval report alone: engine + summary on frames read ({THREADS} threads)", state.n_users,
                  records, elapsed, read_seconds=round(t_read, 2),
                  peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _evaluate_command(data: Path, k: int, out: Path) -> list[str]:
    p = _paths(data)
    return [sys.executable, "-m", "receval", "evaluate", "--train", str(p["train"]), "--test", str(p["test"]),
            "--recs", str(p["recs"]), "--features", str(p["features"]), "--cutoff", str(k),
            "--threads", str(THREADS), "--format", "json", "--out", str(out)]


def profile_pass(data: Path, k: int, out: Path, top: int) -> None:
    """Where (1)'s time goes: py-spy samples of every thread of the process, summed by the innermost
    receval line (or the innermost frame, outside receval), the heaviest ``top`` printed with their
    share. Samples are not CPU: a thread blocked in a wait py-spy cannot tell from work (the GIL,
    a queue) is counted too, so read the worker threads' receval lines for the kernels."""
    import collections

    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        raw = Path(tmp) / "samples.txt"
        subprocess.run(["py-spy", "record", "--format", "raw", "--threads", "--rate", "100", "--output", str(raw),
                        "--", *_evaluate_command(data, k, out)], check=True, capture_output=True)
        weights: collections.Counter = collections.Counter()
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            ours = [f for f in frames if "receval/" in f]
            thread = "worker" if "ThreadPoolExecutor" in frames[0] else "main"
            where = ours[-1].split("receval/", 1)[-1].rstrip(")") if ours else frames[-1]
            weights[(thread, where)] += int(count)
    total = sum(weights.values())
    print(f"{total / 100:.1f} s of samples over all threads (py-spy, 100 Hz)")
    for (thread, where), n in weights.most_common(top):
        print(f"{100 * n / total:5.1f} %  {n / 100:6.2f} s  {thread:6s}  {where}")


# ------------------------------------------------------------------------------ 3. the yardstick


def numpy_pass(data: Path, k: int, check: Path | None = None) -> dict:
    """Five metrics from their definitions, with numpy only (one core: the parent sets the BLAS threads).

    Written for the synthetic data's shape (integer ids from 0, unique (user, item) rows, every
    item weight 1), but not for its values: lists are ordered by rank here, users and items indexed
    by id, the averaging is that of metrics.md §6 (test users; a test user without a list scores 0).
    """
    import numpy as np
    import pyarrow.dataset  # noqa: F401  (read_table's first call imports it: start-up, not loading)
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    p = _paths(data)

    def columns(name: str, *cols: str) -> list:
        table = pq.read_table(p[name], columns=list(cols))
        return [table.column(c).to_numpy() for c in cols]

    tr_user, tr_item = columns("train", "user", "item")
    te_user, te_item, te_rating = columns("test", "user", "item", "rating")
    rc_user, rc_item, rc_rank = columns("recs", "user", "item", "rank")
    ft_item, ft_feature = columns("features", "item", "feature")
    n_items = int(max(tr_item.max(), te_item.max(), rc_item.max(), ft_item.max())) + 1
    n_users = int(max(tr_user.max(), te_user.max(), rc_user.max())) + 1

    # dense users x K lists, in rank order
    order = np.lexsort((rc_rank, rc_user))
    lists_users, lengths = np.unique(rc_user[order], return_counts=True)
    if not (lengths == k).all():
        raise SystemExit("the yardstick takes lists of exactly K items (the synthetic data's)")
    lists = rc_item[order].astype(np.int64).reshape(-1, k)
    # unit feature rows (all weights are 1)
    n_features = int(ft_feature.max()) + 1
    x = np.zeros((n_items, n_features))
    x[ft_item, ft_feature] = 1.0
    norm = np.linalg.norm(x, axis=1)
    has = norm > 0
    x[has] /= norm[has, None]
    t_load = time.perf_counter() - t0

    # EPC: nov(i) = 1 - n_i / |U|, n_i train rows of i, |U| distinct train users (§3)
    n_i = np.bincount(tr_item, minlength=n_items)
    train_users = np.unique(tr_user).size
    novelty = 1.0 - n_i / train_users
    epc = novelty[lists].mean(axis=1)

    # relevance from test rows: binary r >= τ, nDCG gain 2^(r-τ+1) - 1 (§1)
    test_key = te_user.astype(np.int64) * n_items + te_item
    by_key = np.argsort(test_key)
    sorted_key = test_key[by_key]
    list_key = lists_users.astype(np.int64)[:, None] * n_items + lists
    at = np.minimum(np.searchsorted(sorted_key, list_key), len(sorted_key) - 1)
    rating = np.where(sorted_key[at] == list_key, te_rating[by_key][at], 0.0)
    relevant = rating >= THRESHOLD
    hits = relevant.sum(axis=1)
    is_rel = te_rating >= THRESHOLD
    n_rel = np.bincount(te_user[is_rel], minlength=n_users)[lists_users]
    precision = hits / k
    recall = np.divide(hits, n_rel, out=np.zeros(len(hits)), where=n_rel > 0)
    log_disc = 1.0 / np.log2(np.arange(2, k + 2))
    gain = np.where(relevant, 2.0 ** (rating - THRESHOLD + 1) - 1, 0.0)
    dcg = gain @ log_disc
    # IDCG: each user's relevant gains, largest first, over min(K, |Rel_u|) positions
    rel_users, rel_gains = te_user[is_rel], 2.0 ** (te_rating[is_rel] - THRESHOLD + 1) - 1
    by_gain = np.lexsort((-rel_gains, rel_users))
    rel_users, rel_gains = rel_users[by_gain], rel_gains[by_gain]
    starts = np.searchsorted(rel_users, rel_users, side="left")
    position = np.arange(len(rel_users)) - starts
    keep = position < k
    idcg = np.bincount(rel_users[keep], weights=rel_gains[keep] * log_disc[position[keep]], minlength=n_users)
    idcg = idcg[lists_users]
    ndcg = np.divide(dcg, idcg, out=np.zeros(len(dcg)), where=dcg > 0)

    # EILD, cosine over unit feature rows, exp discount with the relative discount (§5.6):
    # disc(k) = b^(k-1), disc(l|k) = disc(max(1, l - k)); pairs with a featureless item are dropped
    disc = EXP_BASE ** np.arange(k)
    kk = np.arange(k)
    relative = EXP_BASE ** (np.maximum(1, kk[None, :] - kk[:, None]) - 1)
    np.fill_diagonal(relative, 0.0)
    eild = np.empty(len(lists))
    for s in range(0, len(lists), 2048):
        block = lists[s : s + 2048]
        v = has[block].astype(np.float64)  # B x K: 1 where the item has features
        xb = x[block]
        gram = np.matmul(xb, np.swapaxes(xb, 1, 2))  # B x K x K cosine similarities
        gram *= relative
        # over valid pairs: W_k = Σ_l disc(l|k), S_k = Σ_l disc(l|k) (1 − cos(k, l)) = W_k − Σ_l disc(l|k) cos(k, l)
        w = (v @ relative.T) * v
        sums = w - np.matmul(gram, v[:, :, None])[:, :, 0] * v
        row = np.divide(sums, w, out=np.zeros_like(w), where=w > 0)
        eild[s : s + 2048] = row @ disc / disc.sum()
    elapsed = time.perf_counter() - t0

    # averages over test users; users without a list add 0
    test_users = np.unique(te_user)
    values = {"epc": epc, "eild": eild, "precision": precision, "recall": recall, "ndcg": ndcg}
    result = {
        "what": "plain numpy pass: load (pyarrow) + EPC, EILD[exp, relative discount], P, R, nDCG (one core)",
        "users": int(test_users.size),
        "seconds": round(elapsed, 2),
        "load_seconds": round(t_load, 2),  # reading and building the inputs: dense lists, features
        "users_per_second": round(test_users.size / elapsed),
        "means": {n: float(v[np.isin(lists_users, test_users)].sum() / test_users.size) for n, v in values.items()},
    }
    if check is not None:
        result["agreement"] = _agreement(check, k, lists_users, values)
    return result


def _agreement(per_user_file: Path, k: int, lists_users, values: dict) -> dict:
    """Largest |receval − yardstick| per metric, over the users both have."""
    import numpy as np
    import pandas as pd

    theirs = pd.read_parquet(per_user_file)
    rows = pd.Index(theirs["user"].to_numpy()).get_indexer(lists_users)
    ok = rows >= 0
    out = {}
    for name, mine in values.items():
        key = YARDSTICK_KEYS[name].format(k=k)
        out[name] = float(np.max(np.abs(theirs[key].to_numpy()[rows[ok]] - mine[ok])))
    out["users_compared"] = int(ok.sum())
    return out


# ------------------------------------------------------------------------------ driver


def _child(args: argparse.Namespace, child: str, data: Path, extra: list[str] = (), env: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, "--users", str(args.users), "--items", str(args.items), "--k", str(args.k),
           "--data", str(data), "--child", child, *extra]
    run = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--data", type=Path, default=None, help="cache folder (default /tmp/receval-bench-U-I-K)")
    ap.add_argument("--child", choices=["engine", "numpy"], help=argparse.SUPPRESS)
    ap.add_argument("--check", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--only", choices=["process"], default=None,
                    help="run only the receval evaluate process (its wall time, CPU and peak RSS)")
    ap.add_argument("--profile", type=int, metavar="TOP", default=None,
                    help="profile the receval evaluate process with py-spy (the test extras install it) and print "
                         "its TOP heaviest lines instead of timing")
    args = ap.parse_args()
    data = args.data or Path(f"/tmp/receval-bench-{args.users}-{args.items}-{args.k}")
    if args.child == "engine":
        print(json.dumps(engine_pass(data, args.k)))
        return
    if args.child == "numpy":
        print(json.dumps(numpy_pass(data, args.k, args.check)))
        return
    if not (data / "recs.parquet").exists():
        subprocess.run([sys.executable, str(HERE / "synthetic.py"), "--users", str(args.users), "--items",
                        str(args.items), "--k", str(args.k), "--out", str(data)], check=True)
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
        out = Path(tmp) / "results"
        if args.profile is not None:
            profile_pass(data, args.k, out, args.profile)
            return
        process = process_pass(data, args.k, out)
        if args.only == "process":
            print(json.dumps(process))
            return
        engine = _child(args, "engine", data)
        one_core = {**os.environ, **{v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
        plain = _child(args, "numpy", data, ["--check", str(out / "per_user.parquet")], env=one_core)
    for r in (process, engine, plain):
        print(json.dumps(r))
    worst = max(v for n, v in plain["agreement"].items() if n != "users_compared")
    print(f"yardstick agrees with receval on {', '.join(YARDSTICK_KEYS)} for {plain['agreement']['users_compared']} "
          f"users: largest difference {worst:.1e} ({'ok' if worst <= 1e-9 else 'MISMATCH'})")
    print(f"receval evaluate process {process['seconds']} s ({process['users_per_second']:,} users/s, "
          f"{process['peak_rss_mib']:,} MiB peak) = {process['seconds'] / plain['seconds']:.2f}x the plain numpy pass "
          f"({plain['seconds']} s, one core; target <= 3x at 100k users); report alone "
          f"{engine['users_per_second']:,} users/s (target >= 50,000)")
    if worst > 1e-9:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
