"""Adversarial probe: bad inputs receval must refuse cleanly, faults it must survive with nothing lost.

    PYTHONPATH=src python benchmarks/probe_refusals.py            # everything (a few minutes)
    PYTHONPATH=src python benchmarks/probe_refusals.py --quick    # fewer fault repetitions

Bad inputs (``receval evaluate`` and configuration files): *refused cleanly* means exit 2, exactly one
line ``receval: error: …`` on stderr naming what the case expects (file, column, flag or key), no
traceback, and no output folder written.

Faults: *survived with nothing lost* means, per kind,

- SIGKILL / SIGTERM of ``receval run`` at a random moment: exit 143 and ``run.json`` failed
  ``terminated`` (SIGTERM), then a rerun completes with values identical to an undisturbed run and no
  temporary file is left over;
- disk full (RLIMIT_FSIZE) while re-evaluating into a folder: the previous result is byte-identical,
  marked, and nothing else is left in the folder — or the new result is complete;
- two processes with different configurations on one run id: exactly one wins and the run folder is
  the winner's; two identical ones: both succeed.

Prints one line per case and the totals; ``--json FILE`` writes them too. The machine may be loaded:
no timing is measured.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402


def cli(*argv: str) -> tuple[int, str]:
    """A receval command in this process: (exit status, stderr)."""
    from receval.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(list(argv))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, err.getvalue()


def clean_refusal(code: int, err: str, words: tuple[str, ...], out: Path | None) -> tuple[bool, str]:
    lines = err.strip().splitlines()
    ok = (code == 2 and len(lines) == 1 and lines[0].startswith("receval: error: ") and "Traceback" not in err
          and all(w in lines[0] for w in words) and (out is None or not out.exists()))
    return ok, (lines[-1] if lines else f"exit {code}, no message")[:160]


# ------------------------------------------------------------------------------------------------ inputs


def input_cases(base: Path) -> list[tuple[str, dict[str, str], tuple[str, ...], tuple[str, ...]]]:
    """(name, files to write {role: content or parquet spec}, extra flags, words the error must contain)."""
    return [
        ("header-only recs", {"recs": "user,item,rank\n"}, (), ("recs", "no recommendation lists")),
        ("empty recs file", {"recs": ""}, (), ("recs",)),
        ("header-only train", {"train": "user,item,rating\n"}, (), ("train", "empty")),
        ("header-only test", {"test": "user,item,rating\n"}, (), ("test", "empty")),
        ("overlap 0", {"recs": "user,item,rank\n8,12,1\n9,13,1\n"}, (), ("test", "recs")),
        ("overlap 0 through leading zeros", {"recs": "user,item,rank\n01,12,1\n02,13,1\n"}, (), ("test",)),
        ("empty user id", {"test": "user,item,rating\n1,12,5\n,13,5\n"}, (), ("'user'", "row 2")),
        ("empty item id", {"recs": "user,item,rank\n1,,1\n"}, (), ("'item'", "row 1")),
        ("non-numeric rating", {"test": "user,item,rating\n1,12,x\n"}, (), ("'rating'", "'x'")),
        ("missing rating", {"test": "user,item,rating\n1,12,\n"}, (), ("'rating'",)),
        ("infinite rating", {"test": "user,item,rating\n1,12,inf\n"}, (), ("'rating'",)),
        ("missing column", {"test": "user,item\n1,12\n"}, (), ("'rating'",)),
        ("duplicate test row", {"test": "user,item,rating\n1,12,5\n1,12,4\n"}, (), ("duplicate",)),
        ("item repeated in a list", {"recs": "user,item,rank\n1,12,1\n1,12,2\n"}, (), ("repeated",)),
        ("duplicate rank", {"recs": "user,item,rank\n1,12,1\n1,13,1\n"}, (), ("duplicate rank",)),
        ("negative rank", {"recs": "user,item,rank\n1,12,-1\n"}, (), ("negative",)),
        ("float user column", {"test": "parquet:float"}, (), ("'user'", "float")),
        ("list user column", {"test": "parquet:list"}, (), ("'user'", "lists")),
        ("struct user column", {"test": "parquet:struct"}, (), ("'user'", "structs")),
        ("datetime user column", {"test": "parquet:datetime"}, (), ("'user'", "dates")),
        ("binary user column", {"test": "parquet:binary"}, (), ("'user'", "binary")),
        ("boolean user column", {"test": "parquet:bool"}, (), ("'user'", "booleans")),
        ("unknown file type", {"test": "xlsx:"}, (), ("unknown file type",)),
        ("missing file", {"test": "missing:"}, (), ("not found",)),
        ("a directory", {"test": "dir:"}, (), ("directory",)),
        ("a FIFO", {"train": "fifo:"}, (), ("not a regular file",)),
        ("threshold nan", {}, ("--threshold", "nan"), ("--threshold",)),
        ("threshold inf", {}, ("--threshold", "inf"), ("--threshold",)),
        ("exp-base 1.5", {}, ("--exp-base", "1.5"), ("--exp-base",)),
        ("exp-base 0", {}, ("--exp-base", "0"), ("--exp-base",)),
        ("exp-base nan", {}, ("--exp-base", "nan"), ("--exp-base",)),
        ("alpha 2", {}, ("--alpha", "2"), ("--alpha",)),
        ("background nan", {}, ("--background", "nan"), ("--background",)),
        ("cutoff 0", {}, ("--cutoff", "0"), ("--cutoff",)),
        ("cutoff 1e10", {}, ("--cutoff", "10000000000"), ("--cutoff",)),
        ("catalog 0", {}, ("--catalog", "0"), ("--catalog",)),
        ("catalog below the recommended items", {}, ("--catalog", "1"), ("--catalog",)),
        ("unknown distance", {}, ("--distance", "manhattan"), ("--distance",)),
        ("unknown metric", {}, ("--metric", "accuracy"), ("accuracy",)),
        ("bad shard", {}, ("--shard", "3/2"), ("3/2",)),
        ("bad format", {}, ("--format", "xml"), ("--format",)),
    ]


def write_input(path: Path, spec: str) -> Path:
    kind, _, content = spec.partition(":") if spec.split(":")[0] in (
        "parquet", "xlsx", "missing", "dir", "fifo") else ("csv", "", spec)
    if kind == "csv":
        path = path.with_suffix(".csv")
        path.write_text(content)
    elif kind == "parquet":
        path = path.with_suffix(".parquet")
        users = {"float": [1.5, 2.0], "list": [[1], [2, 3]], "struct": [{"a": 1}, {"a": 2}],
                 "datetime": pd.to_datetime(["2024-01-01", "2024-01-02"]), "binary": [b"\x01", b"\x02"],
                 "bool": [True, False]}[content]
        pd.DataFrame({"user": users, "item": [12, 13], "rating": [5.0, 5.0]}).to_parquet(path, index=False)
    elif kind == "xlsx":
        path = path.with_suffix(".xlsx")
        path.write_text("x")
    elif kind == "missing":
        path = path.with_suffix(".csv")
    elif kind == "dir":
        path = path.with_suffix(".csv")
        path.mkdir()
    elif kind == "fifo":
        fifo = path.with_suffix(".fifo")
        os.mkfifo(fifo)
        path = path.with_suffix(".csv")
        os.symlink(fifo, path)
    return path


GOOD = {"train": "user,item,rating\n1,10,4\n2,11,4\n", "test": "user,item,rating\n1,12,5\n2,13,5\n",
        "recs": "user,item,rank\n1,12,1\n2,13,1\n"}


def probe_inputs(work: Path) -> list[dict]:
    results = []
    for n, (name, files, flags, words) in enumerate(input_cases(work)):
        case = work / f"in{n:02d}"
        case.mkdir()
        paths = {}
        for role in ("train", "test", "recs"):
            paths[role] = write_input(case / role, files.get(role, GOOD[role]))
        out = case / "out"
        args = ["evaluate", "--train", str(paths["train"]), "--test", str(paths["test"]), "--recs",
                str(paths["recs"]), "--out", str(out), "--threads", "1", *flags]
        if "--cutoff" not in flags:
            args += ["--cutoff", "1"]
        if "fifo:" in files.values():  # in a subprocess: the old code blocked on it forever
            try:
                proc = subprocess.run([sys.executable, "-m", "receval", *args], capture_output=True, text=True,
                                      timeout=30)
                code, err = proc.returncode, proc.stderr
            except subprocess.TimeoutExpired:
                code, err = -1, "hung reading the FIFO"
        else:
            code, err = cli(*args)
        ok, line = clean_refusal(code, err, words, out)
        results.append({"area": "bad input to evaluate", "case": name, "ok": ok, "message": line})
    return results


def config_cases() -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        ("unknown key", "shard: 4\n", ("'shard'",)),
        ("unknown nested key", "evaluation: {cutof: [5]}\n", ("evaluation.cutof",)),
        ("duplicate key", "shards: 2\nshards: 3\n", ("twice",)),
        ("duplicate nested key", "evaluation:\n  cutoffs: [5]\n  cutoffs: [10]\n", ("twice",)),
        ("shards: true", "shards: true\n", ("'shards'",)),
        ("shards: '4'", "shards: '4'\n", ("'shards'",)),
        ("shards: 2.0", "shards: 2.0\n", ("'shards'",)),
        ("shards: 0", "shards: 0\n", ("'shards'",)),
        ("cutoffs with a bool", "evaluation: {cutoffs: [10, true]}\n", ("cutoffs",)),
        ("cutoffs as text", "evaluation: {cutoffs: ['10']}\n", ("cutoffs",)),
        ("cutoff 0", "evaluation: {cutoffs: [0]}\n", ("cutoffs",)),
        ("cutoff 1e10", "evaluation: {cutoffs: [10000000000]}\n", ("cutoffs",)),
        ("no cutoff", "evaluation: {cutoffs: []}\n", ("cutoffs",)),
        ("threshold nan", "evaluation: {threshold: .nan}\n", ("threshold",)),
        ("threshold inf", "evaluation: {threshold: .inf}\n", ("threshold",)),
        ("threshold as text", "evaluation: {threshold: high}\n", ("threshold",)),
        ("exp_base 1.5", "evaluation: {exp_base: 1.5}\n", ("exp_base",)),
        ("exp_base 0", "evaluation: {exp_base: 0}\n", ("exp_base",)),
        ("alpha 2", "evaluation: {alpha: 2}\n", ("alpha",)),
        ("background nan", "evaluation: {background: .nan}\n", ("background",)),
        ("catalog 0", "evaluation: {catalog: 0}\n", ("catalog",)),
        ("catalog true", "evaluation: {catalog: true}\n", ("catalog",)),
        ("unknown distance", "evaluation: {distance: manhattan}\n", ("distance",)),
        ("seed -1", "seed: -1\n", ("'seed'",)),
        ("seed 1.5", "seed: 1.5\n", ("'seed'",)),
        ("seed true", "seed: true\n", ("'seed'",)),
        ("split seed -1", "split: {seed: -1}\n", ("split.seed",)),
        ("synthetic seed -1", "dataset: {synthetic: {seed: -1}}\n", ("seed",)),
        ("algorithm seed -2", "algorithms: [{name: mf, params: {seed: -2}}]\n", ("seed",)),
        ("test_fraction 1", "split: {test_fraction: 1}\n", ("test_fraction",)),
        ("unknown split", "split: {method: magic}\n", ("split.method",)),
        ("unknown dataset", "dataset: {name: imdb}\n", ("dataset.name",)),
        ("table without a path", "dataset: {name: table}\n", ("table",)),
        ("unknown algorithm", "algorithms: [magic]\n", ("magic",)),
        ("algorithm twice", "algorithms: [pop, pop]\n", ("twice",)),
        ("k below the cutoff", "evaluation: {cutoffs: [10]}\nrecommend: {k: 5}\n", ("recommend.k",)),
        ("include_tags: 1", "dataset: {include_tags: 1}\n", ("include_tags",)),
        ("not a mapping", "- a\n- b\n", ("mapping",)),
        ("not YAML", "a: [1\n", ("not valid",)),
        ("not UTF-8", "\udcff", ("not valid",)),
    ]


def probe_configs(work: Path) -> list[dict]:
    results = []
    for n, (name, document, words) in enumerate(config_cases()):
        path = work / f"config{n:02d}.yaml"
        path.write_bytes(document.encode("utf-8", "surrogateescape"))
        store = work / f"store{n:02d}"
        code, err = cli("prepare", "--store", str(store), "--run-id", "r", "--config", str(path))
        ok, line = clean_refusal(code, err, words, store)
        results.append({"area": "config files", "case": name, "ok": ok, "message": line})
    return results


# ------------------------------------------------------------------------------------------------ faults

TINY = {"dataset": {"name": "synthetic",
                    "synthetic": {"n_users": 400, "n_items": 200, "n_features": 8, "interactions_per_user": 20}},
        "algorithms": ["pop", "ub", "mf"], "evaluation": {"cutoffs": [10]}, "shards": 3}


def run_cmd(config: Path, store: Path, run_id: str) -> list[str]:
    return [sys.executable, "-m", "receval", "run", "--config", str(config), "--store", str(store),
            "--run-id", run_id, "--workers", "2", "--format", "json"]


def metric_values(stdout: str) -> dict:
    return {(r.get("algorithm"), r.get("key") or r["metric"], r.get("relevance"), r.get("discount"), r.get("cutoff")):
            r["value"] for r in json.loads(stdout) if r.get("kind", "metric") == "metric"}


def probe_kills(work: Path, repeats: int, rng: random.Random) -> list[dict]:
    config = work / "tiny.json"
    config.write_text(json.dumps(TINY))
    started = time.perf_counter()
    reference = subprocess.run(run_cmd(config, work / "ref", "ref"), capture_output=True, text=True)
    duration = time.perf_counter() - started
    expected = metric_values(reference.stdout)
    results = []
    for kind in ("SIGKILL", "SIGTERM"):
        for i in range(repeats):
            store = work / f"{kind}-{i}"
            proc = subprocess.Popen(run_cmd(config, store, "k"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, start_new_session=True)
            run_json = store / "runs" / "k" / "run.json"
            while not run_json.exists() and proc.poll() is None:
                time.sleep(0.01)
            # somewhere in prepare, train, predict, evaluate or aggregate (a run lasts about `duration`)
            time.sleep(rng.uniform(0.0, 0.8 * duration))
            if kind == "SIGKILL":  # a lost node or an OOM kill: every process of the pod at once
                os.killpg(proc.pid, signal.SIGKILL)
            else:  # eviction, kubectl delete: SIGTERM to the main process (PID 1 of the pod)
                proc.send_signal(signal.SIGTERM)
            problems = []
            try:
                _, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:  # its workers outlived it, holding its pipes
                problems.append("did not end within 120 s of the signal")
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            if problems:
                _, err = proc.communicate()
            late = ""
            if kind == "SIGTERM" and proc.returncode == -signal.SIGTERM and not problems:
                # after the run was complete, while the interpreter exits: Python has put back the
                # default action by then; nothing is lost, the run says "complete"
                if json.loads(run_json.read_text()).get("status") == "complete":
                    late = " (signal came after completion, during interpreter exit)"
                else:
                    problems.append(f"exit {proc.returncode} before the run was complete")
            elif kind == "SIGTERM" and proc.returncode not in (0, 143):
                problems.append(f"exit {proc.returncode}")
            if kind == "SIGTERM" and proc.returncode == 143:
                meta = json.loads(run_json.read_text())
                if (meta["status"], meta["failure"]) != ("failed", "terminated"):
                    problems.append(f"run.json {meta['status']} {meta['failure']!r}")
            if "Traceback" in err:
                problems.append("traceback")
            rerun = subprocess.run(run_cmd(config, store, "k"), capture_output=True, text=True)
            if rerun.returncode != 0:
                problems.append(f"rerun exit {rerun.returncode}: {rerun.stderr.strip()[-120:]}")
            elif metric_values(rerun.stdout) != expected:
                problems.append("values differ from an undisturbed run")
            leftovers = [p.name for p in store.rglob("*.tmp")]
            if leftovers:
                problems.append(f"{len(leftovers)} temporary files left")
            results.append({"area": "injected faults", "case": f"{kind} of receval run #{i} (exit {proc.returncode})",
                            "ok": not problems, "message": "; ".join(problems) or "resumed, identical values" + late})
    return results


def probe_disk_full(work: Path) -> list[dict]:
    files = {}
    for role, content in GOOD.items():
        files[role] = work / f"df-{role}.csv"
        files[role].write_text(content)
    results = []
    for limit in (100, 300, 600, 1000, 2000, 4000, 8000):
        out = work / f"df-out-{limit}"
        args = ["evaluate", "--train", str(files["train"]), "--test", str(files["test"]), "--recs",
                str(files["recs"]), "--cutoff", "1", "--threads", "1", "--out", str(out)]
        cli(*args)
        before = {p.name: p.read_bytes() for p in out.iterdir()}

        def limited(limit: int = limit) -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        proc = subprocess.run([sys.executable, "-m", "receval", *args], capture_output=True, text=True,
                              preexec_fn=limited)
        after = {p.name: p.read_bytes() for p in out.iterdir()}
        if proc.returncode == 0:
            ok = (out / "_SUCCESS").exists() and set(after) == set(before)
        else:
            ok = after == before and proc.returncode == 2
        results.append({"area": "injected faults", "case": f"disk full at {limit} bytes per file during an overwrite",
                        "ok": ok, "message": f"exit {proc.returncode}: " + (proc.stderr.strip().splitlines() or [""])[-1][:120]})
    return results


def probe_races(work: Path, repeats: int) -> list[dict]:
    from receval.config import RunConfig

    small = {**TINY, "dataset": {"name": "synthetic", "synthetic": {"n_users": 50, "n_items": 40, "n_features": 5,
                                                                    "interactions_per_user": 8}},
             "algorithms": ["pop"]}
    configs = [RunConfig.from_mapping({**small, "seed": s}).to_dict() for s in (1, 2)]
    results = []
    for label, pair, mode in (("different configurations", configs, "prepare"),
                              ("identical configurations", [configs[0], configs[0]], "prepare-train")):
        store = work / f"race-{mode}"
        start = time.time() + 4.0
        procs = [subprocess.Popen([sys.executable, "-m", "tests.race_worker", str(store), json.dumps(cfg), "r",
                                   str(repeats), str(start), "0.3", mode], cwd=REPO, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for cfg in pair]
        outs = [[json.loads(line) for line in p.communicate(timeout=600)[0].splitlines()] for p in procs]
        for a, b in zip(*outs):
            if mode == "prepare":
                winners = [x for x in (a, b) if x["ok"]]
                meta = json.loads((store / "runs" / a["run"] / "run.json").read_text())
                ok = len(winners) == 1 and meta["config"] == pair[(a, b).index(winners[0])]
                message = "one winner, its folder" if ok else f"{len(winners)} succeeded"
            else:
                ok = a["ok"] and b["ok"]
                message = "both succeeded" if ok else (a["error"] or b["error"])[:120]
            results.append({"area": "injected faults", "case": f"race of {label} on {a['run']}", "ok": ok,
                            "message": message})
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer fault repetitions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every case here too")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="receval-probe-") as tmp:
        work = Path(tmp)
        results = probe_inputs(work) + probe_configs(work)
        results += probe_disk_full(work)
        results += probe_races(work, 5 if args.quick else 15)
        results += probe_kills(work, 2 if args.quick else 6, rng)
    for r in results:
        print(f"{'ok  ' if r['ok'] else 'MISS'} {r['area']:<22} {r['case']:<55} {r['message']}")
    print()
    for area in dict.fromkeys(r["area"] for r in results):
        cases = [r for r in results if r["area"] == area]
        verb = "refused cleanly" if area != "injected faults" else "survived with nothing lost"
        print(f"{area}: {sum(r['ok'] for r in cases)}/{len(cases)} {verb}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
