"""The regression gate: did tonight's run get worse than its baseline, beyond tolerance and significantly?

A gate is a list of rules. Each rule names a metric key, a tolerance and optionally a significance
level and algorithms (grammar in ``docs/results.md``, parsed by :mod:`receval.metrics.rules`)::

    ndcg@10: drop <= 0.005 at p < 0.05
    eild[binary,exp]@50: drop <= 2%
    precision@10: drop <= 0.01 at p < 0.01 for pop,ib
    gini@10: drop <= 0.02 lower is better

For each algorithm × rule, with ``A`` the baseline run and ``B`` tonight's, over the users present
in both runs (``receval.results.stats.compare_per_user``):

* ``delta = mean_B − mean_A``; ``drop = −delta`` when higher is better, ``+delta`` when lower is;
* the tolerance is absolute (``0.005``) or relative to the baseline value (``2%`` → ``0.02 · |mean_A|``);
* with a level, ``p`` is the two-sided paired t-test's p-value of the per-user differences (or the
  Wilcoxon signed-rank test's, ``test="wilcoxon"``), Holm-corrected across every algorithm × rule
  check that has a level (Holm 1979); the check is significant when the adjusted ``p < level``;
* the verdict is **regression** when ``drop > tolerance`` and, when a level is given, significant;
  ``not significant`` when the drop is beyond tolerance but not significant; else ``pass``.

System metrics (aggregate diversity, Gini, entropy) have no per-user values: their rules compare the
summary values and cannot have a level. ``previous`` is the newest complete run created before
tonight's on the same dataset with the same :func:`config_fingerprint`.

References
----------
S. Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6 (1979).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from receval.errors import ConfigError, InputError, StoreError
from receval.metrics.rules import HIGHER, GateRule

PREVIOUS = "previous"
TESTS = ("t", "wilcoxon")

PASS, REGRESSION, NOT_SIGNIFICANT, NO_BASELINE = "pass", "regression", "not significant", "no baseline"


def config_fingerprint(config: Mapping[str, Any] | None) -> str:
    """What makes two runs comparable: the resolved configuration without what a gate compares.

    SHA-256 of the canonical JSON of the run's ``config`` without ``algorithms`` (tonight's
    recommenders are what is gated), ``shards`` and batch sizes (they never change a value, see
    ``docs/pipeline.md``), the locations of the data (``dataset.data_dir``, ``dataset.table.path``,
    ``dataset.splits.*``: a nightly export lands at a new path every night; the users both runs
    share are what the gate compares), the master ``seed`` (its effect on the split and the data is
    recorded in their own seeds) and the ``gate`` section itself.
    """
    data = json.loads(json.dumps(dict(config or {}), default=str))
    for name in ("algorithms", "shards", "seed", "gate"):
        data.pop(name, None)
    for section, name in (("dataset", "data_dir"), ("recommend", "batch_size"), ("evaluation", "batch_size")):
        if isinstance(data.get(section), dict):
            data[section].pop(name, None)
    dataset = data.get("dataset") if isinstance(data.get("dataset"), dict) else {}
    if isinstance(dataset.get("table"), dict):
        dataset["table"].pop("path", None)
        dataset["table"].pop("features", None)
    if isinstance(dataset.get("splits"), dict):
        dataset["splits"] = {name: "location" for name, value in dataset["splits"].items() if value is not None}
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


# -- evaluation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateCheck:
    """One algorithm × rule: the values, the change and the verdict."""

    rule: str
    algorithm: str
    key: str
    direction: str
    verdict: str
    baseline: float | None = None
    tonight: float | None = None
    delta: float | None = None  # tonight − baseline
    drop: float | None = None  # the change in the bad direction (positive: worse)
    allowed: float | None = None  # the tolerance in the metric's units
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None  # the paired test's raw p-value
    p_holm: float | None = None  # Holm-adjusted across the checks that have a level
    level: float | None = None
    users: int | None = None
    note: str = ""

    @property
    def severity(self) -> float:
        """How far beyond tolerance the drop is (drop / tolerance; ∞ for a zero tolerance)."""
        if self.drop is None or self.allowed is None:
            return -math.inf
        if self.allowed > 0:
            return self.drop / self.allowed
        return math.inf if self.drop > 0 else 0.0

    def describe(self) -> str:
        """One line naming the algorithm, the key, the values and the rule."""
        from receval.results.tables import format_value

        text = (
            f"{self.algorithm} {self.key} dropped {format_value(self.drop)} ({format_value(self.baseline)} -> {format_value(self.tonight)}),"
            f" allowed {format_value(self.allowed)}"
        )
        if self.level is not None:
            text += f", p = {format_value(self.p_holm)} (Holm) < {self.level:g}"
        return text + f" (rule '{self.rule}')"

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_number(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class GateResult:
    """The gate of one run against its baseline."""

    run_id: str
    baseline_run: str | None
    baseline_source: str  # "previous" or "given"
    fingerprint: str
    rules: tuple[str, ...]
    checks: tuple[GateCheck, ...] = ()
    test: str = "t"
    confidence: float = 0.95
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def regressions(self) -> list[GateCheck]:
        return [c for c in self.checks if c.verdict == REGRESSION]

    @property
    def status(self) -> str:
        if self.baseline_run is None:
            return NO_BASELINE
        return REGRESSION if self.regressions else PASS

    def worst(self) -> GateCheck | None:
        """The regression furthest beyond its tolerance."""
        return max(self.regressions, key=lambda c: (c.severity, c.drop or 0.0), default=None)

    def summary_line(self) -> str:
        if self.baseline_run is None:
            return f"gate {self.run_id}: no baseline; nothing compared ({'; '.join(self.notes)})"
        if not self.regressions:
            return f"gate {self.run_id} vs {self.baseline_run}: pass ({_checks(len(self.checks))})"
        worst = self.worst()
        assert worst is not None
        return (
            f"gate {self.run_id} vs {self.baseline_run}: regression in {len(self.regressions)} of"
            f" {_checks(len(self.checks))}; worst: {worst.describe()}"
        )

    def to_dict(self) -> dict[str, Any]:
        worst = self.worst()
        return {
            "kind": "gate",
            "run_id": self.run_id,
            "baseline": self.baseline_run,
            "baseline_source": self.baseline_source,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "rules": list(self.rules),
            "test": self.test,
            "correction": "holm",
            "confidence": self.confidence,
            "delta": "tonight - baseline",
            "worst": worst.to_dict() if worst else None,
            "message": self.summary_line(),
            "notes": list(self.notes),
            "checks": [c.to_dict() for c in self.checks],
        }


def _checks(n: int) -> str:
    return f"{n} check" + ("" if n == 1 else "s")


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def find_previous(store: Any, run_id: str) -> str | None:
    """The newest complete run created before ``run_id`` on the same dataset and fingerprint."""
    from receval.results.read import list_runs, read_run_info

    tonight = read_run_info(store, run_id)
    fingerprint = config_fingerprint(tonight.metadata.get("config"))
    for info in list_runs(store, status="complete"):  # newest first
        if info.run_id == run_id or info.dataset != tonight.dataset:
            continue
        if tonight.created is not None and (info.created is None or info.created >= tonight.created):
            continue
        if config_fingerprint(info.metadata.get("config")) == fingerprint:
            return info.run_id
    return None


def evaluate_gate(
    store: Any,
    run_id: str,
    rules: list[GateRule],
    *,
    baseline: str = PREVIOUS,
    test: str = "t",
    n_boot: int | None = None,
    seed: int | None = None,
    confidence: float = 0.95,
) -> GateResult:
    """Gate ``run_id`` (a complete run) against ``baseline`` (a run id or ``previous``) with ``rules``."""
    from receval.results import stats
    from receval.results.read import load_per_user, load_summary, read_run_info, resolve_run

    if not rules:
        raise ConfigError("rules: none given; give a rule 'KEY: drop <= TOLERANCE' or a gate: section in the configuration", option="rules")
    if test not in TESTS:
        raise ConfigError(f"test {test}: expected one of {', '.join(TESTS)}", option="test")
    n_boot = stats.DEFAULT_BOOTSTRAP if n_boot is None else n_boot
    seed = stats.DEFAULT_SEED if seed is None else seed
    tonight_info = read_run_info(store, run_id)
    if tonight_info.status != "complete":
        raise StoreError(f"run {run_id} in {store.uri} is {tonight_info.status}: only a complete run can be gated")
    fingerprint = config_fingerprint(tonight_info.metadata.get("config"))
    texts = tuple(r.text for r in rules)
    if baseline == PREVIOUS:
        baseline_id, source = find_previous(store, run_id), PREVIOUS
        if baseline_id is None:
            note = (
                f"no complete run before {run_id} on dataset {tonight_info.dataset} with configuration"
                f" fingerprint {fingerprint} in {store.uri}"
            )
            return GateResult(run_id, None, source, fingerprint, texts, test=test, confidence=confidence, notes=(note,))
    else:
        baseline_id, source = resolve_run(store, baseline), "given"
        if read_run_info(store, baseline_id).status != "complete":
            raise StoreError(f"baseline run {baseline_id} in {store.uri} is not complete: it cannot be a baseline")

    summary_b = load_summary(store, run_id)
    summary_a = load_summary(store, baseline_id)
    notes: list[str] = []
    base_info = read_run_info(store, baseline_id)
    if config_fingerprint(base_info.metadata.get("config")) != fingerprint:
        notes.append(f"baseline {baseline_id} has another configuration fingerprint than {run_id}: values may not be comparable")
    algorithms_b = list(dict.fromkeys(summary_b["algorithm"]))
    algorithms_a = set(summary_a["algorithm"])

    # (rule, algorithm) → resolved key; checked before any per-user value is read.
    plan: list[tuple[GateRule, str, str]] = []
    for rule in rules:
        chosen = list(rule.algorithms) if rule.algorithms else algorithms_b
        unknown = [a for a in chosen if a not in algorithms_b]
        if unknown:
            raise ConfigError(f"rule '{rule.text}': run {run_id} has no algorithm {', '.join(unknown)}"
                              f" (algorithms: {', '.join(algorithms_b)})")  # fmt: skip
        for algorithm in chosen:
            rows = summary_b[(summary_b["algorithm"] == algorithm) & rule.key.matches(summary_b)]
            keys = sorted(set(rows["key"]))
            if not keys:
                available = ", ".join(sorted(set(summary_b.loc[summary_b["algorithm"] == algorithm, "key"])))
                raise ConfigError(f"rule '{rule.text}': run {run_id} has no value {rule.key} for {algorithm} (keys: {available})")
            if len(keys) > 1 or len(rows) > 1:
                raise ConfigError(f"rule '{rule.text}': {rule.key} matches several definitions in run {run_id}"
                                  f" ({', '.join(keys)}); give relevance, discount and cutoff")  # fmt: skip
            plan.append((rule, algorithm, keys[0]))

    per_user: dict[tuple[str, str], Any] = {}

    def user_values(run: str, algorithm: str) -> Any:
        if (run, algorithm) not in per_user:
            per_user[(run, algorithm)] = load_per_user(store, run, algorithm)
        return per_user[(run, algorithm)]

    partial: list[dict[str, Any]] = []
    rule_of: list[GateRule] = []  # the rule of each row of `partial`
    for rule, algorithm, key in plan:
        rule_of.append(rule)
        metric = str(summary_b.loc[summary_b["key"] == key, "metric"].iloc[0])
        direction = rule.direction_of(metric)
        row = dict(rule=rule.text, algorithm=algorithm, key=key, direction=direction, level=rule.level)
        base_rows = summary_a[(summary_a["algorithm"] == algorithm) & (summary_a["key"] == key)]
        if algorithm not in algorithms_a or base_rows.empty:
            what = f"algorithm {algorithm}" if algorithm not in algorithms_a else f"{key} of {algorithm}"
            partial.append(dict(row, verdict=NO_BASELINE, tonight=_value(summary_b, algorithm, key),
                                note=f"baseline {baseline_id} has no {what}"))  # fmt: skip
            continue
        tonight_users = user_values(run_id, algorithm)
        if key in tonight_users.columns:
            baseline_users = user_values(baseline_id, algorithm)
            if key not in baseline_users.columns:
                raise InputError(f"baseline {baseline_id}: per-user values of {algorithm} have no column {key}")
            comparison = stats.compare_per_user(
                baseline_users, tonight_users, [key], label_a=f"{algorithm}@{baseline_id}",
                label_b=f"{algorithm}@{run_id}", n_boot=n_boot, seed=seed, confidence=confidence,
            )  # fmt: skip
            (m,) = comparison.metrics
            p = m.t_pvalue if test == "t" else m.wilcoxon_pvalue
            row.update(baseline=m.mean_a, tonight=m.mean_b, delta=m.delta, ci_low=m.ci_low, ci_high=m.ci_high,
                       p=p, users=m.users, note=comparison.note() if comparison.user_sets_differ else "")  # fmt: skip
        else:
            if rule.level is not None:
                raise ConfigError(f"rule '{rule.text}': {key} is a system metric without per-user values;"
                                  " its rule cannot have a significance level")  # fmt: skip
            a, b = _value(summary_a, algorithm, key), _value(summary_b, algorithm, key)
            row.update(baseline=a, tonight=b, delta=b - a, note="system metric: summary values, no test")
        partial.append(row)

    tested = [i for i, r in enumerate(partial) if r.get("level") is not None and r.get("p") is not None]
    adjusted = stats.holm([partial[i]["p"] for i in tested]) if tested else []
    for i, value in zip(tested, adjusted):
        partial[i]["p_holm"] = float(value)
    checks = []
    for rule, row in zip(rule_of, partial):
        if row.get("verdict") == NO_BASELINE:
            checks.append(GateCheck(**row))
            continue
        delta = row["delta"]
        drop = -delta if row["direction"] == HIGHER else delta
        allowed = rule.allowed_drop(row["baseline"])
        if any(isinstance(v, float) and math.isnan(v) for v in (drop, allowed)):
            verdict, note = PASS, (row.get("note") or "") + " undefined value: not compared"
        elif drop <= allowed:
            verdict, note = PASS, row.get("note", "")
        elif rule.level is None:
            verdict, note = REGRESSION, row.get("note", "")
        else:
            p_holm = row.get("p_holm", math.nan)
            significant = not math.isnan(p_holm) and p_holm < rule.level
            verdict, note = (REGRESSION if significant else NOT_SIGNIFICANT), row.get("note", "")
        checks.append(GateCheck(**{**row, "drop": drop, "allowed": allowed, "verdict": verdict, "note": note.strip()}))
    return GateResult(run_id, baseline_id, source, fingerprint, texts, tuple(checks), test=test,
                      confidence=confidence, notes=tuple(notes))  # fmt: skip


def _value(summary: Any, algorithm: str, key: str) -> float:
    rows = summary[(summary["algorithm"] == algorithm) & (summary["key"] == key)]
    return float(rows["value"].iloc[0]) if not rows.empty else math.nan


# -- gate.json ------------------------------------------------------------------------------------


def write_gate(store: Any, result: GateResult) -> str:
    """Publish ``gate.json`` into the run folder (``runs/<id>/gate/``, its ``_SUCCESS`` last); its key."""
    from receval.pipeline import layout
    from receval.storage import json_bytes

    prefix = layout.gate_prefix(result.run_id)
    payload = json_bytes(result.to_dict())
    store.publish(prefix, {layout.GATE_FILE: payload}, {"kind": "gate", "status": result.status, "baseline": result.baseline_run})
    return layout.gate_key(result.run_id)


def load_gate(store: Any, run_id: str) -> dict[str, Any] | None:
    """The run's published ``gate.json``, or None when the run was not gated (or the gate is unfinished)."""
    from receval.pipeline import layout

    prefix = layout.gate_prefix(run_id)
    key = layout.gate_key(run_id)
    if not (store.is_complete(prefix) and store.exists(key)):
        return None
    try:
        payload = store.read_json(key)
    except ValueError as exc:
        raise InputError(f"{store.url(key)}: not valid JSON ({exc})") from None
    if not isinstance(payload, dict) or payload.get("kind") != "gate":
        raise InputError(f"{store.url(key)}: not a gate document (no \"kind\": \"gate\")")
    return payload


__all__ = [
    "GateCheck",
    "GateResult",
    "config_fingerprint",
    "evaluate_gate",
    "find_previous",
    "load_gate",
    "write_gate",
]
