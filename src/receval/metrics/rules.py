"""The regression gate's rule grammar: a metric key, a tolerance, optionally a level and algorithms.

::

    ndcg@10: drop <= 0.005 at p < 0.05
    eild[binary,exp]@50: drop <= 2%
    gini@10: drop <= 0.02 lower is better

Text only, no values and no I/O: it sits beside :class:`~receval.metrics.keys.MetricKey`, whose key
grammar it extends, so that the configuration, the manifests and the CLI check a rule where it is
given, and the gate (:mod:`receval.results.gate`) evaluates it. The full grammar is in
``docs/results.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from receval.errors import ConfigError
from receval.metrics.keys import MetricKey

HIGHER, LOWER = "higher", "lower"

# Every metric receval reports is better when higher (Gini is RankSys's 1 − G, a diversity score);
# a rule overrides the direction with "lower is better".
LOWER_IS_BETTER: frozenset[str] = frozenset()

RULE_GRAMMAR = "KEY: drop <= TOLERANCE[%] [at p < LEVEL] [for ALGORITHM,...] [higher|lower is better]"
_HEAD = re.compile(r"^(?P<key>[^:]+):\s*drop\s*(?:<=|≤)\s*(?P<tol>[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*(?P<pct>%)?", re.I)
_CLAUSES = {
    "level": re.compile(r"^at\s+p\s*(?:<=|<|≤)\s*(?P<v>[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)", re.I),
    "algorithms": re.compile(r"^for\s+(?P<v>[A-Za-z0-9][A-Za-z0-9._-]*(?:\s*,\s*[A-Za-z0-9][A-Za-z0-9._-]*)*)", re.I),
    "direction": re.compile(r"^(?P<v>higher|lower)\s+is\s+better", re.I),
}


@dataclass(frozen=True)
class GateRule:
    """One parsed rule; ``direction`` None means the metric's own (:func:`better_direction`)."""

    text: str
    key: MetricKey
    tolerance: float
    relative: bool = False
    level: float | None = None
    algorithms: tuple[str, ...] | None = None
    direction: str | None = None

    def direction_of(self, metric: str) -> str:
        return self.direction or better_direction(metric)

    def allowed_drop(self, baseline: float) -> float:
        """The tolerance in the metric's units: absolute, or a share of ``|baseline|``."""
        return self.tolerance / 100.0 * abs(baseline) if self.relative else self.tolerance

    def tolerance_text(self) -> str:
        return f"{self.tolerance:g}%" if self.relative else f"{self.tolerance:g}"


def better_direction(metric: str) -> str:
    """``higher`` or ``lower``: which way a metric improves."""
    return LOWER if metric.lower() in LOWER_IS_BETTER else HIGHER


def parse_rule(text: str, *, source: str = "--rule") -> GateRule:
    """Parse one rule; any problem is a one-line :class:`ConfigError` naming ``source`` and the rule."""
    raw = " ".join(str(text).split())
    head = _HEAD.match(raw)
    if not head:
        raise ConfigError(f"{source} {raw!r}: expected {RULE_GRAMMAR}, e.g. 'ndcg@10: drop <= 0.005 at p < 0.05'")
    key = MetricKey.parse(head.group("key").strip(), what=f"{source} {raw!r}: metric key")
    values: dict[str, Any] = {}
    rest = raw[head.end():].strip()
    while rest:
        rest = rest.lstrip(",; ").strip()
        for name, pattern in _CLAUSES.items():
            m = pattern.match(rest)
            if m:
                if name in values:
                    raise ConfigError(f"{source} {raw!r}: the '{m.group(0)}' part is given twice")
                values[name] = m.group("v")
                rest = rest[m.end():].strip()
                break
        else:
            if rest:
                raise ConfigError(
                    f"{source} {raw!r}: cannot read {rest!r}; after the tolerance come 'at p < LEVEL',"
                    " 'for ALGORITHM,...' and 'higher|lower is better'"
                )
    tolerance = float(head.group("tol"))
    level = float(values["level"]) if "level" in values else None
    if level is not None and not 0 < level < 1:
        raise ConfigError(f"{source} {raw!r}: the significance level must be between 0 and 1, got {level:g}")
    algorithms = None
    if "algorithms" in values:
        algorithms = tuple(dict.fromkeys(a.strip() for a in values["algorithms"].split(",") if a.strip()))
    direction = values["direction"].lower() if "direction" in values else None
    return GateRule(raw, key, tolerance, head.group("pct") is not None, level, algorithms, direction)


def split_rules(texts: str | Iterable[str] | None) -> list[str]:
    """Rules from repeated options or one text: ``;`` and newlines separate rules (the Argo parameter)."""
    if texts is None:
        return []
    items = [texts] if isinstance(texts, str) else list(texts)
    return [r.strip() for item in items for r in re.split(r"[;\n]", str(item)) if r.strip()]


def parse_rules(texts: str | Iterable[str] | None, *, source: str = "--rule") -> list[GateRule]:
    return [parse_rule(t, source=source) for t in split_rules(texts)]


__all__ = ["HIGHER", "LOWER", "RULE_GRAMMAR", "GateRule", "better_direction", "parse_rule", "parse_rules", "split_rules"]
