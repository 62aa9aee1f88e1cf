"""Hand-planted mutants: does the test suite catch plausible one-line bugs? Run by hand, never in CI.

Each mutant is one (file, original snippet, mutated snippet, test files) entry below: a bug someone
could really write in ``metrics/``, ``pipeline/steps.py`` or ``data/schema.py`` (an off-by-one
discount, a wrong normaliser, a cache key missing a part, a marker written too early, a no-op check
on the wrong object, a validation removed, a salted hash, ``>`` for ``>=``). The script copies the
repository once to a temporary folder (never touching the working tree), then for each mutant
plants it in the copy, runs the mutant's own small list of test files against the copy
(``PYTHONPATH=<copy>/src``, ``pytest -x``, a fixed hypothesis seed, no shrinking, no example
database), and restores the file.

A mutant is *killed* when its tests fail (or error, or time out), *survives* when they pass.
Mutants that cannot change any result are marked ``equivalent`` with the reason; they run too (a
killed "equivalent" mutant means the reason is wrong) but do not count in the score:

    score = killed / (mutants not marked equivalent), per area (metrics, pipeline, data)

Usage::

    python3 benchmarks/mutation.py                      # every mutant, then the score table
    python3 benchmarks/mutation.py --list               # the mutants and their test files
    python3 benchmarks/mutation.py --only epd-profile-mode-ignored,shard-salted-hash
    python3 benchmarks/mutation.py --area metrics --json /tmp/mutation.json

The full run takes a while (each mutant reruns its test files, ~10-60 s each on a quiet 2-core
machine). Exit status: 0 when the metrics score reaches ``--min-score`` (default 0.9), else 1.
Why a list and not mutmut: mutmut mutates every operator it finds (hundreds of mutants here, most of
them trivially killed or meaningless for vectorized numpy code) and reruns the suite's hypothesis
tests for each; a curated list of bugs that people make keeps the run to tens of minutes and every
survivor worth a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".git", "__pycache__", ".hypothesis", ".pytest_cache", "*.egg-info",
                                "receval-runs", ".mypy_cache", ".ruff_cache")

# Test files, grouped by what they exercise; each mutant lists the fewest that should kill it,
# the fastest first (pytest -x stops at the first failure).
EPD = "tests/test_epd_profiles.py"
VS_REF = "tests/test_metrics_vs_reference.py"
PROPS = "tests/test_metrics_properties.py"
PIPELINE = "tests/test_pipeline.py"
MARKERS = "tests/test_step_markers.py"
EMPTY_IDS = "tests/test_empty_ids.py"
INPUT_RULES = "tests/test_input_rules.py"
SHARDS = "tests/test_shard_stability.py"
CLI = "tests/test_cli_evaluate.py"
METRICS = (EPD, VS_REF)


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # under src/receval
    original: str  # must occur exactly once in the file
    mutated: str
    tests: tuple[str, ...]
    equivalent: str | None = None  # why no result can change (then it does not count)

    @property
    def area(self) -> str:
        return self.file.split("/", 1)[0] if "/" in self.file else self.file


MUTANTS: list[Mutant] = [
    # ---------------------------------------------------------------- metrics/models.py
    Mutant("log-discount-off-by-one", "metrics/models.py",
           "return np.log(2.0) / np.log(k + 1.0)", "return np.log(2.0) / np.log(k + 2.0)", METRICS),
    Mutant("exp-discount-exponent-k", "metrics/models.py",
           "return np.power(self.base, k - 1.0)", "return np.power(self.base, k)", METRICS,
           equivalent="b^k = b * b^(k-1): the constant factor b cancels in every normaliser "
                      "(sum of disc(k) for EPC/EFD/EPD/EILD, W_k in EILD's rows); nDCG/RR use their own discounts"),
    Mutant("reciprocal-discount-off-by-one", "metrics/models.py",
           "return 1.0 / np.arange(1, n + 1, dtype=np.float64)", "return 1.0 / np.arange(2, n + 2, dtype=np.float64)",
           METRICS),
    Mutant("relative-discount-not-clipped", "metrics/models.py",
           "gap = np.maximum(1, k[None, :] - k[:, None])", "gap = np.maximum(0, k[None, :] - k[:, None])", METRICS),
    Mutant("relative-discount-keeps-self-pairs", "metrics/models.py",
           "        np.fill_diagonal(w, 0.0)\n", "", METRICS),
    Mutant("relevance-threshold-strict", "metrics/models.py",
           "relevant = judged & (r >= tau)", "relevant = judged & (r > tau)", METRICS),
    Mutant("graded-gain-wrong-normaliser", "metrics/models.py",
           "(np.exp2(g) - 1.0) / np.exp2(scale.g_max)", "(np.exp2(g) - 1.0) / np.exp2(scale.g_max - 1.0)", METRICS),
    Mutant("ndcg-gain-exponent-off-by-one", "metrics/models.py",
           "np.exp2(rr - tau + 1.0) - 1.0", "np.exp2(rr - tau) - 1.0", METRICS),
    Mutant("err-gain-wrong-normaliser", "metrics/models.py",
           "(np.exp2(rr) - 1.0) / np.exp2(scale.r_max)", "(np.exp2(rr) - 1.0) / np.exp2(scale.r_max + 1.0)", METRICS),
    Mutant("background-prior-ignored", "metrics/models.py",
           "np.where(judged, relevant.astype(np.float64), self.background)",
           "np.where(judged, relevant.astype(np.float64), 0.0)", METRICS),
    Mutant("popularity-complement-wrong-normaliser", "metrics/models.py",
           "1.0 - np.asarray(counts, dtype=np.float64) / n_users",
           "1.0 - np.asarray(counts, dtype=np.float64) / (n_users + 1)", METRICS),
    Mutant("free-discovery-unseen-as-most-popular", "metrics/models.py",
           "out[~seen] = -np.log2(c[seen].min() / total)", "out[~seen] = -np.log2(c[seen].max() / total)", METRICS),
    # ---------------------------------------------------------------- metrics/novelty.py
    Mutant("epd-profile-mode-ignored", "metrics/models.py",
           'weighted = getattr(options, "epd_profile", "unweighted") == "relevance" and relevance.kind != "none"',
           'weighted = relevance.kind != "none"', METRICS),
    Mutant("epd-cache-key-without-relevance", "metrics/models.py",
           'key = ("profile_distance", relevance if weighted else None)', 'key = ("profile_distance", weighted)', METRICS),
    Mutant("expected-novelty-divides-by-n", "metrics/novelty.py",
           "den = (disc * batch.valid[:, :n]).sum(axis=1)", "den = np.full(batch.size, disc.sum())", METRICS),
    Mutant("efd-uses-popularity-complement", "metrics/registry.py",
           'MetricDefinition("efd", novelty.compute, novelty=FreeDiscovery())',
           'MetricDefinition("efd", novelty.compute, novelty=PopularityComplement())', METRICS),
    # ---------------------------------------------------------------- metrics/distance.py, batch.py
    Mutant("profile-mean-counts-featureless-items", "metrics/distance.py",
           "prof = prof @ sp.diags(self.has_features.astype(np.float64))  # drop featureless j",
           "prof = prof  # drop featureless j", METRICS),
    Mutant("jaccard-without-intersection-term", "metrics/distance.py",
           "d = 1.0 - prod / (n[items_i] + n[items_j] - prod)", "d = 1.0 - prod / (n[items_i] + n[items_j])",
           (EPD, VS_REF)),
    Mutant("pc-over-test-users", "metrics/batch.py",
           "n_train_users=statistics.n_train_users,", "n_train_users=len(test_users),", METRICS),
    Mutant("relevant-mask-strict-threshold", "metrics/batch.py",
           "cache[key] = self.valid & (self.ratings >= threshold)",
           "cache[key] = self.valid & (self.ratings > threshold)", METRICS),
    # ---------------------------------------------------------------- metrics/diversity.py
    Mutant("eild-outer-relevance-dropped", "metrics/diversity.py",
           'num = np.einsum("k,bkr,bkr->br", disc, g, row)', 'num = np.einsum("k,bkr->br", disc, row)', METRICS),
    # ---------------------------------------------------------------- metrics/accuracy.py
    Mutant("precision-divides-by-list-length", "metrics/accuracy.py",
           "out[spec.key] = h / n", "out[spec.key] = h / np.maximum(batch.lengths_at(n), 1)", METRICS),
    Mutant("ap-normaliser-not-truncated", "metrics/accuracy.py",
           "den = np.minimum(n, n_rel)", "den = n_rel", METRICS),
    Mutant("ndcg-ideal-ascending", "metrics/accuracy.py",
           "order = np.lexsort((-gains, rows))", "order = np.lexsort((gains, rows))", METRICS),
    Mutant("rr-rank-off-by-one", "metrics/accuracy.py",
           "1.0 / (first + 1.0)", "1.0 / (first + 2.0)", METRICS),
    # ---------------------------------------------------------------- metrics/intent.py
    Mutant("alpha-ndcg-penalty-inverted", "metrics/intent.py",
           "per_hit(np.power(1.0 - alpha, earlier))", "per_hit(np.power(alpha, earlier))", (VS_REF,)),
    Mutant("err-ia-rank-off-by-one", "metrics/intent.py",
           "* g / (hit_pos + 1.0))", "* g / (hit_pos + 2.0))", (VS_REF,)),
    # ---------------------------------------------------------------- metrics/system.py
    Mutant("gini-coefficient-off-by-one", "metrics/system.py",
           "(2.0 * j - size - 1.0)", "(2.0 * j - size)", (VS_REF,)),
    Mutant("entropy-share-over-lists", "metrics/system.py",
           "math.fsum(w * -np.log2(c / positions)) / lists", "math.fsum(w * -np.log2(c / lists)) / lists", (VS_REF,)),
    Mutant("aggregate-diversity-without-count", "metrics/system.py",
           "return n * math.fsum(w / c)", "return n * math.fsum(w)", (VS_REF,)),
    # ---------------------------------------------------------------- metrics/sharding.py
    Mutant("shard-salted-hash", "metrics/sharding.py",
           "hashes = pd.util.hash_array(values, categorize=True)",
           "hashes = np.array([hash(v) & 0xFFFFFFFFFFFFFFFF for v in values], dtype=np.uint64)", (SHARDS,)),
    Mutant("shard-ids-not-as-text", "metrics/sharding.py",
           "values = np.asarray(pd.Series(users).astype(str).to_numpy(dtype=object))",
           "values = np.asarray(pd.Series(users).to_numpy(dtype=object))", (SHARDS,),
           equivalent="pandas' hash_array hashes an object array that is not all strings as its str() values "
                      "(hashing.py falls back to vals.astype(str)), so 7 and '7' hash alike either way"),
    # ---------------------------------------------------------------- pipeline/steps.py
    Mutant("predict-done-before-recs", "pipeline/steps.py",
           "    store.write_parquet(key, recs)\n"
           '    store.write_json(done_key, {"kind": "recs", "algorithm": algorithm, "shard": str(shard), "users": len(users),\n'
           '                                "rows": len(recs), "k": int(config.recommend.k), "finished": now()})\n',
           '    store.write_json(done_key, {"kind": "recs", "algorithm": algorithm, "shard": str(shard), "users": len(users),\n'
           '                                "rows": len(recs), "k": int(config.recommend.k), "finished": now()})\n'
           "    store.write_parquet(key, recs)\n", (MARKERS, PIPELINE)),
    Mutant("predict-noop-checks-parquet", "pipeline/steps.py",
           "    if store.exists(done_key) and not force:", "    if store.exists(key) and not force:", (MARKERS, PIPELINE)),
    Mutant("predict-force-keeps-old-marker", "pipeline/steps.py",
           "    store.delete(done_key)\n    config = run_config(store, run_id)", "    config = run_config(store, run_id)",
           (MARKERS, PIPELINE)),
    Mutant("evaluate-trusts-parquet-presence", "pipeline/steps.py",
           "    if not store.exists(layout.recs_done_key(run_id, algorithm, shard)):", "    if not store.exists(recs_key):",
           (MARKERS, PIPELINE)),
    # Every published folder (run, dataset, metrics) goes through Store.publish: its marker must come last.
    Mutant("publish-marker-before-objects", "storage/base.py",
           "        for name, tmp in staged.items():\n            self.rename(tmp, join(prefix, name))\n",
           "        self.write_json(marker_key, dict(marker or {}))\n"
           "        for name, tmp in staged.items():\n            self.rename(tmp, join(prefix, name))\n",
           (MARKERS, PIPELINE, "tests/test_storage_local.py")),
    Mutant("implicit-grade-not-rounded", "pipeline/steps.py",
           "grade = np.ceil(np.round(5.0 * share.to_numpy(np.float64), 9)).clip(1, 5)",
           "grade = np.ceil(5.0 * share.to_numpy(np.float64)).clip(1, 5)", (PIPELINE,),
           equivalent="share is k/n from rank(pct=True); whenever 5k/n is an integer m, 5.0 * fl(k/n) rounds to "
                      "exactly m (checked for every k <= n < 3000), so the ceiling never moves: the rounding is a guard"),
    # ---------------------------------------------------------------- data/schema.py
    Mutant("empty-id-check-removed", "data/schema.py",
           "    if null.any():\n        pos = int(np.flatnonzero(null)[0])",
           "    if False:\n        pos = int(np.flatnonzero(null)[0])", (EMPTY_IDS, INPUT_RULES, CLI)),
    Mutant("blank-csv-id-accepted", "data/schema.py",
           '        null |= (col.astype(str).str.strip() == "").to_numpy()\n', "", (EMPTY_IDS, INPUT_RULES, CLI)),
    Mutant("test-duplicates-only-if-same-rating", "data/schema.py",
           'pos = _first_duplicate(out, ["user", "item"])\n    if pos is not None:\n        raise InputError(\n'
           '            f"{src.name}: columns',
           'pos = _first_duplicate(out, ["user", "item", "rating"])\n    if pos is not None:\n        raise InputError(\n'
           '            f"{src.name}: columns', (EMPTY_IDS, INPUT_RULES, CLI)),
    Mutant("negative-rank-accepted", "data/schema.py",
           'out["rank"] = _numeric(frame, "rank", src, allow_negative=False, keep_integers=True)',
           'out["rank"] = _numeric(frame, "rank", src, allow_negative=True, keep_integers=True)', (EMPTY_IDS, INPUT_RULES, CLI)),
    Mutant("train-duplicates-keep-first", "data/schema.py",
           'return _drop_duplicates(out, ["user", "item"], keep="last")\n\n\ndef read_test',
           'return _drop_duplicates(out, ["user", "item"], keep="first")\n\n\ndef read_test',
           (INPUT_RULES, CLI)),
    Mutant("score-ties-by-item-descending", "data/schema.py",
           '        by_item = _codes(out, "item", ordered=True)\n',
           '        by_item = (lambda c: (c[1] - 1 - c[0], c[1]))(_codes(out, "item", ordered=True))\n',
           (EMPTY_IDS, INPUT_RULES, CLI)),
]


@dataclass
class Outcome:
    name: str
    area: str
    status: str  # killed | survived | timeout | error
    seconds: float
    equivalent: str | None
    detail: str = ""


# A pytest plugin loaded in the copy: hypothesis without its shrink phase (a killed mutant needs one
# failing example, not the smallest; shrinking a 230-spec case took minutes per mutant) and without
# its example database (no failing example of one mutant is replayed against the next).
HYPOTHESIS_PLUGIN = "_mutation_hypothesis"
HYPOTHESIS_PROFILE = """\
from hypothesis import Phase, settings

settings.register_profile("mutation", database=None,
                          phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target])
settings.load_profile("mutation")
"""


def make_copy(shared: Path) -> tuple[Path, Path]:
    """A copy of the repository beside a link to shared/ (tests find the datasets as ../shared)."""
    base = Path(tempfile.mkdtemp(prefix="receval-mutation-"))
    copy = base / "repo"
    shutil.copytree(REPO, copy, ignore=IGNORE, symlinks=True)
    (copy / f"{HYPOTHESIS_PLUGIN}.py").write_text(HYPOTHESIS_PROFILE)
    (base / "shared").symlink_to(shared)
    return base, copy


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(copy / "src"), str(copy)]),
           "PYTHONDONTWRITEBYTECODE": "1", "RECEVAL_SHARED": str(copy.parent / "shared")}
    env.pop("RECEVAL_DEBUG", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", HYPOTHESIS_PLUGIN,
           "--hypothesis-seed=0", *tests]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the pytest process group this script started
        proc.communicate()
        return "timeout", time.perf_counter() - started, ""
    except BaseException:  # interrupted or terminated: take our pytest down with us
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    seconds = time.perf_counter() - started
    last = next((line for line in reversed(out.strip().splitlines()) if line.strip()), "")
    if proc.returncode == 0:
        return "survived", seconds, last
    if proc.returncode == 1:
        failed = next((line for line in out.splitlines() if line.startswith(("FAILED", "ERROR"))), last)
        return "killed", seconds, failed
    return "error", seconds, last  # collection error, interrupted, usage: the mutant broke an import


def check_snippets(copy: Path, mutants: list[Mutant]) -> list[str]:
    problems = []
    for m in mutants:
        text = (copy / "src" / "receval" / m.file).read_text()
        count = text.count(m.original)
        if count != 1:
            problems.append(f"{m.name}: the original snippet occurs {count} times in {m.file} (update the mutant)")
        for t in m.tests:
            if not (copy / t).is_file():
                problems.append(f"{m.name}: no test file {t}")
    return problems


def score(outcomes: list[Outcome], area: str | None = None) -> tuple[int, int]:
    counted = [o for o in outcomes if o.equivalent is None and (area is None or o.area == area)]
    return sum(o.status != "survived" for o in counted), len(counted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--only", default="", help="comma-separated mutant names")
    parser.add_argument("--area", choices=["metrics", "pipeline", "data"], help="only the mutants of one area")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per mutant (default 1200)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the test files")
    parser.add_argument("--min-score", type=float, default=0.9, help="metrics score for exit status 0")
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the copy is removed and pytest stopped

    mutants = MUTANTS
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - {m.name for m in MUTANTS})
        if unknown:
            parser.error(f"unknown mutant {unknown[0]!r} (see --list)")
        mutants = [m for m in MUTANTS if m.name in wanted]
    if args.area:
        mutants = [m for m in mutants if m.area == args.area]
    if args.list:
        for m in mutants:
            flag = "  [equivalent]" if m.equivalent else ""
            print(f"{m.name:42s} {m.file:22s} {' '.join(Path(t).name for t in m.tests)}{flag}")
        print(f"{len(mutants)} mutants ({sum(m.area == 'metrics' for m in mutants)} in metrics/)")
        return 0

    shared = Path(os.environ.get("RECEVAL_SHARED", REPO.parent / "shared")).resolve()
    base, copy = make_copy(shared)
    print(f"copy: {copy}  (shared: {shared})", flush=True)
    try:
        problems = check_snippets(copy, mutants)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 2
        if not args.no_baseline:
            files = tuple(dict.fromkeys(t for m in mutants for t in m.tests))
            status, seconds, detail = run_tests(copy, files, args.timeout * 2)
            print(f"baseline ({len(files)} test files): {'passed' if status == 'survived' else status} "
                  f"in {seconds:.0f}s", flush=True)
            if status != "survived":
                print(f"the unmutated copy fails its tests: {detail}", file=sys.stderr)
                return 2
        outcomes: list[Outcome] = []
        for n, m in enumerate(mutants, 1):
            path = copy / "src" / "receval" / m.file
            original = path.read_text()
            path.write_text(original.replace(m.original, m.mutated, 1))
            try:
                status, seconds, detail = run_tests(copy, m.tests, args.timeout)
            finally:
                path.write_text(original)
            outcomes.append(Outcome(m.name, m.area, status, round(seconds, 1), m.equivalent, detail))
            note = ""
            if m.equivalent:
                note = "  (equivalent)" if status == "survived" else "  (marked equivalent but KILLED: check the reason)"
            print(f"[{n:2d}/{len(mutants)}] {status:8s} {seconds:6.0f}s  {m.name}{note}", flush=True)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    print()
    survivors = [o for o in outcomes if o.status == "survived" and o.equivalent is None]
    for o in survivors:
        print(f"SURVIVED  {o.name}")
    for o in outcomes:
        if o.equivalent:
            print(f"equivalent  {o.name}: {o.equivalent}")
    print()
    for area in ("metrics", "pipeline", "data"):
        killed, total = score(outcomes, area)
        if total:
            print(f"{area:9s} {killed}/{total} = {killed / total:.0%} of the mutants that can change a result")
    killed, total = score(outcomes)
    print(f"{'all':9s} {killed}/{total} = {killed / total:.0%}" if total else "no countable mutant")
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2) + "\n")
    m_killed, m_total = score(outcomes, "metrics")
    return 0 if m_total == 0 or m_killed / m_total >= args.min_score else 1


if __name__ == "__main__":
    raise SystemExit(main())
