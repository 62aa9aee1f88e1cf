"""What one predict or evaluate pod costs at N shards, as a user runs the pipeline.

For each user count and each N it prepares a run folder bucketed N ways (``receval prepare`` from a
``dataset.name: splits`` export of one synthetic split, so every N sees the same data), trains
``pop`` once, then runs ``receval predict`` and ``receval evaluate`` for shard 0/N as separate
processes — start-up, imports and reading included — and takes each one's CPU time (user + system)
and peak RSS from ``wait4``. With ``--sum-shards N`` it also runs every shard of that N and reports
the summed predict and evaluate CPU against the one-shard pass (the price of splitting the work) and the
largest pod's peak RSS (the memory limit every pod needs).

    python benchmarks/bench_shards.py --users 400000 1000000 --shards 1 4 16 64 --sum-shards 16
    python benchmarks/bench_shards.py --users 20000 --items 2000 --shards 1 4 --sum-shards 4   # a quick check
    python benchmarks/bench_shards.py --users 400000 --shards 1 16 --sum-shards 16 --repeat 3  # a steadier ratio
    python benchmarks/bench_shards.py --users 400000 --shards 1 16 --store-root s3://bench/shards  # pods on S3

Prints a Markdown table (and ``--json`` writes every measure). Run it on a quiet machine: the
figures are per process, but a loaded machine inflates wall time and, through the page cache, CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def export_split(folder: Path, users: int, items: int, per_user: int, files: int, seed: int) -> dict[str, str]:
    """One synthetic split (receval's generator and random 80/20 split) written as part files."""
    from receval.data.split import split
    from receval.data.synthetic import synthetic_dataset

    done = folder / "DONE"
    uris = {"train": str(folder / "train"), "test": str(folder / "test"), "features": str(folder / "features.parquet")}
    if done.exists():
        return uris
    started = time.perf_counter()
    data = synthetic_dataset(n_users=users, n_items=items, interactions_per_user=per_user, seed=seed)
    train, test = split(data.ratings, "random", test_fraction=0.2, seed=seed)
    for name, rows in (("train", train), ("test", test)):
        (folder / name).mkdir(parents=True, exist_ok=True)
        rows = rows[["user", "item", "rating"]].reset_index(drop=True)
        for i, chunk in enumerate(np.array_split(np.arange(len(rows)), files)):
            rows.iloc[chunk].to_parquet(folder / name / f"part-{i:05d}.parquet", index=False)
    data.features[["item", "feature", "weight"]].to_parquet(folder / "features.parquet", index=False)
    done.write_text(f"{len(train)} train, {len(test)} test rows\n")
    print(f"# data: {users} users, {items} items: {len(train)} train / {len(test)} test rows "
          f"({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    return uris


def measured(argv: list[str]) -> dict[str, float]:
    """Run ``receval ARGV`` in a fresh process; its wall time, CPU seconds and peak RSS (MiB)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "receval", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"receval {' '.join(argv)}: exit {proc.returncode}\n{stderr}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024}


def receval(*argv: str) -> None:
    subprocess.run([sys.executable, "-m", "receval", *argv], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def exported(folder: Path, users: int, args: argparse.Namespace) -> dict[str, str]:
    """:func:`export_split` in a child process: this one stays small, because a child's peak RSS
    (``ru_maxrss``) counts the pages it shares with its parent between fork and exec."""
    subprocess.run([sys.executable, __file__, "--export", str(folder), "--users", str(users), "--items",
                    str(args.items), "--per-user", str(args.per_user), "--files", str(args.files), "--seed",
                    str(args.seed)], check=True)
    return {"train": str(folder / "train"), "test": str(folder / "test"), "features": str(folder / "features.parquet")}


def store_of(users: int, args: argparse.Namespace, work: Path) -> str:
    """The store of one user count's run folders: under ``--store-root`` (a folder or ``s3://``), or the work folder."""
    root = args.store_root or str(work)
    return f"{root.rstrip('/')}/store-{users}"


def bench(users: int, args: argparse.Namespace, work: Path) -> list[dict]:
    uris = exported(work / f"data-{users}", users, args)
    rows = []
    for n in args.shards:
        store, run = store_of(users, args, work), f"n{n}"
        config = work / f"config-{users}-{n}.json"
        config.write_text(json.dumps({
            "dataset": {"name": "splits", "splits": uris}, "algorithms": ["pop"], "shards": n, "seed": args.seed,
            "evaluation": {"cutoffs": args.cutoffs},
        }))
        receval("prepare", "--store", store, "--run-id", run, "--config", str(config))
        receval("train", "--store", store, "--run-id", run, "--algorithm", "pop")
        shards = range(n) if n in args.sum_shards else range(1)
        summed = {"predict": [], "evaluate": []}
        for i in shards:
            common = ["--store", store, "--run-id", run, "--algorithm", "pop", "--shard", f"{i}/{n}", "--force"]
            predict = measured(["predict", *common])
            evaluate = measured(["evaluate", *common])
            summed["predict"].append(predict)
            summed["evaluate"].append(evaluate)
            if i == 0:
                rows += [{"users": users, "shards": n, "step": step, **m}
                         for step, m in (("predict", predict), ("evaluate", evaluate))]
        if n in args.sum_shards:
            # the price of splitting (summed CPU) and the largest pod (the memory limit every pod needs)
            rows += [{"users": users, "shards": n, "step": f"{step}, all shards",
                      "cpu_s": sum(m["cpu_s"] for m in runs), "rss_mib": max(m["rss_mib"] for m in runs)}
                     for step, runs in summed.items()]
    # the one-shard pass again, after the shards: on a shared machine a single pass can be 20 % off, and
    # every ratio divides by it; the table takes the median of all its runs
    one = ["--store", store_of(users, args, work), "--run-id", "n1", "--algorithm", "pop", "--shard", "0/1", "--force"]
    for _ in range(args.repeat - 1):
        for step in ("predict", "evaluate"):
            rows.append({"users": users, "shards": 1, "step": step, "repeat": True, **measured([step, *one])})
    return rows


def table(rows: list[dict]) -> str:
    passes: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["shards"] == 1:
            passes.setdefault((r["users"], r["step"]), []).append(r)
    base = {key: {name: float(np.median([r[name] for r in runs])) for name in ("wall_s", "cpu_s", "rss_mib")}
            for key, runs in passes.items()}
    rows = [r for r in rows if not r.get("repeat")]
    lines = ["| users | N | step (shard 0/N) | wall | CPU | CPU / 1 shard | peak RSS | RSS / 1 shard |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["step"].endswith(", all shards"):
            step = r["step"].split(",")[0]
            one = base.get((r["users"], step))
            ratio = f"{r['cpu_s'] / one['cpu_s']:.2f}× one pass" if one else ""
            runs = passes.get((r["users"], step), [])
            if len(runs) > 1:  # the ratio's spread over the pass's runs, and what one more pod costs
                cpus = [m["cpu_s"] for m in runs]
                fixed = (r["cpu_s"] - one["cpu_s"]) / (r["shards"] - 1)
                ratio += (f" ({r['cpu_s'] / max(cpus):.2f}–{r['cpu_s'] / min(cpus):.2f}× over {len(runs)} passes;"
                          f" {fixed:.2f} s per extra pod)")
            lines.append(f"| {r['users']:,} | {r['shards']} | {step}, summed over all {r['shards']} shards | | "
                         f"{r['cpu_s']:.1f} s | {ratio} | largest pod {r['rss_mib']:,.0f} MiB | |")
            continue
        b = base.get((r["users"], r["step"]))
        if r["shards"] == 1:
            r = {**r, **b}  # the median pass
        cpu = f"{r['cpu_s'] / b['cpu_s']:.2f}×" if b else ""
        rss = f"{r['rss_mib'] / b['rss_mib']:.2f}×" if b else ""
        lines.append(f"| {r['users']:,} | {r['shards']} | {r['step']} | {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s | "
                     f"{cpu} | {r['rss_mib']:,.0f} MiB | {rss} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[400_000, 1_000_000])
    parser.add_argument("--items", type=int, default=30_000)
    parser.add_argument("--per-user", type=int, default=40, help="interactions per user before the 80/20 split")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--sum-shards", type=int, nargs="*", default=[16],
                        help="shard counts whose every shard is run, to sum the CPU and find the largest pod")
    parser.add_argument("--cutoffs", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--files", type=int, default=8, help="part files of the export")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of the one-shard steps (the base of every ratio): the table takes their median")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("/tmp/receval-bench-shards"))
    parser.add_argument("--store-root", default=None,
                        help="where the run folders go, e.g. s3://bucket/bench with the usual AWS_* variables "
                             "(an S3 pod also pays boto3 and its requests); default: the work folder")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--export", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export:
        export_split(args.export, args.users[0], args.items, args.per_user, args.files, args.seed)
        return
    if 1 not in args.shards:
        args.shards = [1, *args.shards]  # the ratios need the one-shard step
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [row for users in args.users for row in bench(users, args, args.work)]
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
