"""What a pod pays before its first row: the interpreter and the imports, layer by layer.

Every evaluate pod pays a fixed cost f whatever its shard, so N pods cost one pass plus (N − 1) f, and
the summed CPU of N pods is ``1 + (N − 1) f / pass`` times one pass (issue 9). This script measures
f's parts, each as a fresh ``python -c`` process with the collector off (as ``receval evaluate``
imports: ``cli/_startup.heavy_imports``) that ends with ``os._exit`` (as the CLI does: no teardown),
adding one layer at a time in the order a pod imports them:

    python benchmarks/bench_pod_startup.py                       # CPU, min of 7 runs per layer
    python benchmarks/bench_pod_startup.py --instructions        # and instruction counts (valgrind)
    python benchmarks/bench_pod_startup.py --pod STORE RUN I/N   # and a real evaluate pod of that run

``--pod`` takes a local folder or an ``s3://`` store (with the usual AWS_* variables), e.g. a run
folder ``bench_shards.py`` prepared with many shards, so that shard 0 is near-empty.

CPU is user + system from ``wait4``; on a shared machine take the minimum of several runs, or the
instruction counts (callgrind: deterministic, blind to the kernel's page faults), which need
``valgrind`` on PATH and take about a minute.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYDANTIC_DISABLE_PLUGINS": "__all__"}
FLOOR = "numpy, pyarrow.parquet, pydantic, typer"
RECEVAL = "receval.cli, receval.metrics.engine, receval.pipeline.steps, receval.pipeline.evaluation"

# An S3 pod also imports boto3 and makes a client (no request: the endpoint is never contacted).
S3_CLIENT = ("import boto3; boto3.session.Session().client('s3', endpoint_url='http://127.0.0.1:9', "
             "region_name='us-east-1', aws_access_key_id='k', aws_secret_access_key='s')")

# (label, code, the layer it adds to): cumulative, in a pod's order
LAYERS = [
    ("interpreter", "", None),
    (f"+ {FLOOR}", f"import {FLOOR}", "interpreter"),
    ("+ scipy.sparse", f"import {FLOOR}, scipy.sparse", f"+ {FLOOR}"),
    ("+ pandas", f"import {FLOOR}, scipy.sparse, pandas", "+ scipy.sparse"),
    ("+ receval's evaluate modules", f"import {RECEVAL}", "+ pandas"),
    ("+ boto3 and an S3 client (an S3 pod)", f"import {RECEVAL}; {S3_CLIENT}", "+ receval's evaluate modules"),
    (f"{FLOOR} + pandas (no SciPy)", f"import {FLOOR}, pandas", f"+ {FLOOR}"),
]


def _code(code: str) -> str:
    # os._exit, as the CLI ends: a pod skips the interpreter's teardown of its heap
    return "import gc, os; gc.disable()" + (f"; {code}" if code else "") + "; os._exit(0)"


def cpu(argv: list[str], runs: int) -> float:
    """The least CPU seconds (user + system) of ``runs`` fresh processes of ``argv``."""
    best = float("inf")
    for _ in range(runs):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(argv)}: failed\n{proc.stderr.read().decode() if proc.stderr else ''}")
        best = min(best, usage.ru_utime + usage.ru_stime)
    return best


def instructions(argv: list[str]) -> float:
    """Instructions executed by ``argv`` (callgrind's total), in millions."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, text=True, check=True).stderr
    line = next(line for line in out.splitlines() if "Collected" in line)
    return int(line.split()[-1]) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per layer (the minimum is kept)")
    parser.add_argument("--instructions", action="store_true", help="also count instructions with valgrind")
    parser.add_argument("--pod", nargs=3, metavar=("STORE", "RUN", "SHARD"),
                        help="also time `receval evaluate --algorithm pop` of this run's shard I/N")
    args = parser.parse_args()
    if args.instructions and not shutil.which("valgrind"):
        raise SystemExit("--instructions needs valgrind on PATH")

    commands = {label: [sys.executable, "-c", _code(code)] for label, code, _ in LAYERS}
    if args.pod:
        store, run, shard = args.pod
        commands[f"evaluate pod {shard}"] = [sys.executable, "-m", "receval", "evaluate", "--store", store,
                                             "--run-id", run, "--algorithm", "pop", "--shard", shard, "--force"]
    measured = {label: {"cpu": cpu(argv, args.runs)} for label, argv in commands.items()}
    if args.instructions:
        for label, argv in commands.items():
            measured[label]["instructions"] = instructions(argv)

    added = {label: base for label, _, base in LAYERS}
    header = "| layer | CPU (min of %d) | adds | " % args.runs + ("instructions | adds |" if args.instructions else "")
    print(header)
    print("|---|---|---|" + ("---|---|" if args.instructions else ""))
    for label, m in measured.items():
        base = measured.get(added.get(label) or "")
        row = f"| {label} | {m['cpu']:.3f} s | " + (f"{m['cpu'] - base['cpu']:+.3f} s |" if base else "|")
        if args.instructions:
            row += f" {m['instructions']:,.0f} M | " + (
                f"{m['instructions'] - base['instructions']:+,.0f} M |" if base else "|")
        print(row)


if __name__ == "__main__":
    main()
