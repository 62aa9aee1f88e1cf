"""Metric keys: the one grammar of ``name[relevance,discount]@k``, parsed, formatted and matched here.

A key names one reported value and is also its per-user column name, e.g. ``epc[binary,exp]@10``.
Every part but the name may be left out, which makes the key a *selector* that matches any value of
the missing part::

    key      := name [ "[" [relevance] [ "," [discount] ] "]" ] [ "@" cutoff ]
    name     := letter or "_", then letters, digits, "_" or "-"     (case-insensitive: EPC@10 = epc@10)
    relevance, discount := model, or "*" (any)
    model    := letters, digits, "_", "." or "-" [ "(" number { "," number } ")" ]
    cutoff   := digits, or "all" (a value that has no cutoff)

``epc`` (any relevance, discount and cutoff), ``epc[binary]`` (binary relevance, any discount),
``epc[,exp]@10``, ``ndcg@10`` and ``epc[binary,exp]@10`` are all keys. A model carries its
parameters where they differ from the defaults: ``epc[binary,exp]@10`` is exp(0.85), and
``epc[binary,exp(0.5)]@10`` and ``epc[background(0.2),none]@10`` name other models; a model
token matches exactly (``exp`` does not select ``exp(0.5)``; ``epc[binary]`` selects both). Metric specs
(:mod:`receval.metrics.spec`), the results readers and the regression gate's rules all parse keys
with :meth:`MetricKey.parse` and write them with :func:`format_key`, so that a key written by the
engine is read back identically everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from receval.errors import ConfigError

ANY = "*"
NO_CUTOFF = "all"

_MODEL = r"[A-Za-z0-9_.-]+(?:\s*\([^()\[\],]*(?:,[^()\[\],]*)*\))?"
_PART = rf"{_MODEL}|\*"
_KEY = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_-]*)\s*"
    rf"(?:\[\s*(?P<relevance>{_PART})?\s*(?:,\s*(?P<discount>{_PART})?\s*)?\])?\s*"
    r"(?:@\s*(?P<cutoff>\d+|all)\s*)?$",
    re.IGNORECASE,
)


_MODEL_TOKEN = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(?:\(\s*([^()]*?)\s*\))?\s*$")


def model_token(text: str, *, what: str = "model") -> tuple[str, list[float]]:
    """Split a model part of a key into its kind and parameters: ``exp(0.5)`` -> (``exp``, [0.5]),
    ``binary`` -> (``binary``, []); a malformed one is a :class:`ConfigError` naming ``what``."""
    m = _MODEL_TOKEN.match(str(text))
    if not m:
        raise ConfigError(f"{what} {text!r}: expected NAME or NAME(NUMBER, ...)")
    kind, args = m.groups()
    try:
        values = [float(a) for a in args.split(",")] if args else []
    except ValueError:
        raise ConfigError(f"{what} {text!r}: parameters must be numbers") from None
    return kind, values


def _normalise_model(text: str) -> str:
    """A model part as keys write it: lower case, no blanks (``EXP( 0.5 )`` -> ``exp(0.5)``)."""
    return re.sub(r"\s+", "", text).lower()


def cutoff_text(cutoff: Any) -> str:
    """The cutoff part of a key: the integer, or ``all`` for a value without cutoff (None, NaN, NA)."""
    if cutoff is None:
        return NO_CUTOFF
    try:
        if isinstance(cutoff, float) and math.isnan(cutoff):
            return NO_CUTOFF
        if cutoff != cutoff:  # pandas.NA and other missing markers
            return NO_CUTOFF
    except TypeError:  # pandas.NA refuses a truth value
        return NO_CUTOFF
    try:
        return str(int(cutoff))
    except (TypeError, ValueError):
        return str(cutoff)


def format_key(metric: str, relevance: Any, discount: Any, cutoff: Any) -> str:
    """The full key of a value, e.g. ``epc[binary,exp]@10`` (also its per-user column name)."""
    return f"{metric}[{relevance},{discount}]@{cutoff_text(cutoff)}"


@dataclass(frozen=True)
class MetricKey:
    """A parsed key; a ``None`` part matches anything. ``no_cutoff`` is the key's ``@all``: a value
    that has no cutoff (it matches only such values)."""

    metric: str
    relevance: str | None = None
    discount: str | None = None
    cutoff: int | None = None
    no_cutoff: bool = False  # the key says @all: only values without a cutoff match

    @classmethod
    def parse(cls, text: str, *, what: str = "metric") -> MetricKey:
        """Parse ``text``; a text outside the grammar is a one-line :class:`ConfigError` naming ``what``
        (the option or the place the text came from; the CLI shows its flag)."""
        m = _KEY.match(text or "")
        if not m:
            raise ConfigError(
                f"{what} {text!r}: expected NAME[RELEVANCE,DISCOUNT]@CUTOFF with optional parts,"
                " e.g. epc[binary,exp]@10, epc[binary] or ndcg@10", option=what,
            )
        relevance, discount, cutoff = m.group("relevance"), m.group("discount"), m.group("cutoff")
        return cls(
            metric=m.group("name").lower(),
            relevance=None if relevance in (None, ANY) else _normalise_model(relevance),
            discount=None if discount in (None, ANY) else _normalise_model(discount),
            cutoff=int(cutoff) if cutoff and cutoff.isdigit() else None,
            no_cutoff=bool(cutoff) and cutoff.lower() == NO_CUTOFF,
        )

    @classmethod
    def of(cls, metric: str, relevance: Any, discount: Any, cutoff: Any) -> MetricKey:
        """The complete key of one value (what a summary record or a per-user column names)."""
        text = cutoff_text(cutoff)
        return cls(str(metric).lower(), str(relevance).lower(), str(discount).lower(),
                   int(text) if text.isdigit() else None, no_cutoff=text == NO_CUTOFF)  # fmt: skip

    @property
    def complete(self) -> bool:
        """Whether every part is given, so that the key names exactly one definition."""
        return self.relevance is not None and self.discount is not None and (self.cutoff is not None or self.no_cutoff)

    def format(self) -> str:
        """The key as text: :func:`format_key` when complete, else the selector with ``*`` and no ``@``."""
        if self.complete:
            return format_key(self.metric, self.relevance, self.discount, None if self.no_cutoff else self.cutoff)
        text = self.metric
        if self.relevance is not None or self.discount is not None:
            text += f"[{self.relevance or ANY},{self.discount or ANY}]"
        if self.cutoff is not None:
            text += f"@{self.cutoff}"
        elif self.no_cutoff:
            text += f"@{NO_CUTOFF}"
        return text

    def __str__(self) -> str:
        return self.format()

    def matches_key(self, other: MetricKey | str) -> bool:
        """Whether this selector matches the (complete) key ``other``."""
        if isinstance(other, str):
            other = MetricKey.parse(other, what="key")
        if self.metric != other.metric:
            return False
        if self.relevance is not None and self.relevance != other.relevance:
            return False
        if self.discount is not None and self.discount != other.discount:
            return False
        if self.cutoff is not None and self.cutoff != other.cutoff:
            return False
        return not (self.no_cutoff and not other.no_cutoff)

    def matches(self, frame: Any) -> Any:
        """Boolean mask of the rows of a summary frame (columns metric, relevance, discount, cutoff;
        with a ``key`` column its models are compared, parameters included)."""
        import pandas as pd

        mask = frame["metric"].astype(str).str.lower() == self.metric
        relevance, discount = frame["relevance"].astype(str).str.lower(), frame["discount"].astype(str).str.lower()
        if "key" in frame.columns and (self.relevance is not None or self.discount is not None):
            parsed = [_parse_or_none(k) for k in frame["key"]]
            relevance = pd.Series([p.relevance if p else r for p, r in zip(parsed, relevance)], index=frame.index)
            discount = pd.Series([p.discount if p else d for p, d in zip(parsed, discount)], index=frame.index)
        if self.relevance is not None:
            mask &= relevance == self.relevance
        if self.discount is not None:
            mask &= discount == self.discount
        cutoffs = pd.to_numeric(frame["cutoff"], errors="coerce")
        if self.cutoff is not None:
            mask &= cutoffs == self.cutoff
        elif self.no_cutoff:
            mask &= cutoffs.isna()
        return mask.fillna(False).astype(bool)


def _parse_or_none(text: Any) -> MetricKey | None:
    try:
        return MetricKey.parse(text, what="key") if isinstance(text, str) else None
    except ConfigError:
        return None


def split_keys(text: str | Iterable[str] | None) -> list[str]:
    """Split comma-separated keys, keeping the comma inside ``[relevance,discount]``: ``a,b[x,y],c``."""
    if text is None:
        return []
    items = [text] if isinstance(text, str) else list(text)
    parts: list[str] = []
    for item in items:
        depth, current = 0, ""
        for ch in str(item):
            if ch == "[":
                depth += 1
            elif ch == "]":
                depth = max(0, depth - 1)
            if ch == "," and depth == 0:
                parts.append(current)
                current = ""
            else:
                current += ch
        parts.append(current)
    return [p for p in (x.strip() for x in parts) if p]


def match_columns(columns: Iterable[str], selectors: Iterable[str | MetricKey], *, what: str = "metric") -> list[str]:
    """The columns named by complete keys that any selector matches, in selector order.

    A selector that matches no column is a :class:`ConfigError` listing the columns.
    """
    names = [str(c) for c in columns]
    parsed: dict[str, MetricKey] = {}
    for name in names:
        try:
            parsed[name] = MetricKey.parse(name, what="column")
        except ConfigError:
            continue  # `user` and any other non-metric column
    chosen: list[str] = []
    for selector in selectors:
        key = selector if isinstance(selector, MetricKey) else MetricKey.parse(selector, what=what)
        hits = [c for c, k in parsed.items() if key.matches_key(k)]
        if not hits:
            raise ConfigError(f"{what}: {key} matches no per-user column (columns: {', '.join(parsed)})", option=what)
        chosen += [c for c in hits if c not in chosen]
    return chosen


__all__ = ["ANY", "NO_CUTOFF", "MetricKey", "cutoff_text", "format_key", "match_columns", "model_token", "split_keys"]
