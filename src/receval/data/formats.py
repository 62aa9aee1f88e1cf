"""The file layouts people already have, mapped onto receval's column contract (:mod:`receval.data.schema`).

Three things are recognised here, and only here:

* **column names** — an explicit mapping (``Layout(user="user_id")``, ``--user-col user_id`` or
  ``--columns user=user_id,item=movieId``) wins; otherwise common names are recognised
  case-insensitively, with RecBole's ``:token``/``:float`` type suffixes dropped:

  =========  ==========================================================================
  role       recognised names
  =========  ==========================================================================
  user       user, user_id, userid, uid, user_name, qid, query_id
  item       item, item_id, itemid, iid, movieid, movie_id, artistid, artist_id, docno, doc_id
  rating     rating, ratings, rating_value, relevance, weight (train/test only), label
  score      score, prediction, predicted, pred
  rank       rank, position, pos
  timestamp  timestamp, ts, time, datetime
  feature    feature, genre, tag, tagid
  weight     weight (features only)
  =========  ==========================================================================

* **TREC** — a run file ``qid Q0 docno rank score tag`` as recommendations (qid = user, docno =
  item, the file's rank kept) and qrels ``qid iter docno relevance`` as train/test (relevance =
  rating). Recognised by the extension ``.trec`` / ``.qrels``, a file name containing ``qrels``,
  or ``Layout(format="trec")`` (``--input-format trec``). Fields are separated by any whitespace.

* **headerless TSV** as Elliot and RecBole write them: ``.tsv`` whose first row holds no
  recognised column name, or any delimited file with ``Layout(header=False)`` (``--no-header``).
  The column order is that of :data:`HEADERLESS_ORDER`: train/test ``user, item, rating[, timestamp]``,
  recs ``user, item, score`` (Elliot's recommendation files), features ``item, feature[, weight]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from receval.errors import ConfigError, InputError

ROLES = ("train", "test", "recs", "features")
COLUMNS = ("user", "item", "rating", "score", "rank", "timestamp", "feature", "weight")

# The columns each role may have, in the order of a headerless file.
HEADERLESS_ORDER: dict[str, tuple[str, ...]] = {
    "train": ("user", "item", "rating", "timestamp"),
    "test": ("user", "item", "rating", "timestamp"),
    "recs": ("user", "item", "score"),
    "features": ("item", "feature", "weight"),
}

_COMMON = {
    "user": ("user", "user_id", "userid", "uid", "user_name", "qid", "query_id"),
    "item": ("item", "item_id", "itemid", "iid", "movieid", "movie_id", "artistid", "artist_id", "docno", "doc_id"),
    "rating": ("rating", "ratings", "rating_value", "relevance", "label"),
    "score": ("score", "prediction", "predicted", "pred"),
    "rank": ("rank", "position", "pos"),
    "timestamp": ("timestamp", "ts", "time", "datetime"),
    "feature": ("feature", "genre", "tag", "tagid"),
    "weight": ("weight",),
}
_ROLE_COLUMNS = {
    "train": ("user", "item", "rating", "timestamp"),
    "test": ("user", "item", "rating", "timestamp"),
    "recs": ("user", "item", "rank", "score"),
    "features": ("item", "feature", "weight"),
}
# Last.fm-style play counts are a "weight" in interactions; in features it is the feature weight.
_EXTRA = {"train": {"rating": ("weight", "playcount", "plays")}, "test": {"rating": ("weight", "playcount", "plays")}}

TREC_RUN = ("user", "q0", "item", "rank", "score", "tag")
TREC_QRELS = ("user", "iteration", "item", "rating")


def _normal(name: object) -> str:
    """``userId`` and ``user_id:token`` compare as ``userid`` and ``user_id``."""
    return str(name).strip().split(":", 1)[0].lower()


@dataclass(frozen=True)
class Layout:
    """How to read an input file: its format and which of its columns are receval's.

    Parameters
    ----------
    columns : mapping receval column -> the file's column, e.g. ``{"user": "user_id"}``; the rest are
        recognised by name.
    format : ``"auto"`` (by extension and content) or ``"trec"``.
    header : None to decide by content (``.tsv`` only; other text files have a header), False for a
        headerless file read in :data:`HEADERLESS_ORDER`.
    report : called with one line saying which mapping was used, whenever it is not the identity.
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    format: str = "auto"
    header: bool | None = None
    report: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        unknown = [c for c in self.columns if c not in COLUMNS]
        if unknown:
            raise ConfigError(f"column mapping: unknown column {unknown[0]!r} (receval's columns: {', '.join(COLUMNS)})")
        if self.format not in ("auto", "trec"):
            raise ConfigError(f"input format {self.format!r}: choose auto or trec")

    def with_report(self, report: Callable[[str], None] | None) -> Layout:
        return replace(self, report=report)


def parse_columns(text: str | None, **single: str | None) -> dict[str, str]:
    """``user=user_id,item=movieId`` plus ``--user-col``-style single options into one mapping."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        ours, eq, theirs = part.partition("=")
        if not eq or not ours.strip() or not theirs.strip():
            raise ConfigError(f"columns {part.strip()!r}: expected RECEVAL=FILE pairs, e.g. user=user_id,item=movieId",
                              option="columns")
        mapping[ours.strip()] = theirs.strip()
    mapping.update({k: v for k, v in single.items() if v})
    Layout(columns=mapping)  # validates the names
    return mapping


def is_trec(path: Path, layout: Layout) -> bool:
    name = path.name.lower()
    return layout.format == "trec" or path.suffix.lower() in (".trec", ".qrels") or "qrels" in name


def read(path: Path, role: str, layout: Layout | None = None) -> tuple[pd.DataFrame, int]:
    """Read a delimited text file of ``role`` with receval's column names; return it and its header lines.

    The frame holds strings (validation is :mod:`receval.data.schema`'s). Parquet never reaches here
    (its columns go through :func:`rename` only).
    """
    layout = layout or Layout()
    if is_trec(path, layout):
        frame = _read_trec(path, role)
        _say(layout, f"{path}: read as TREC {'run' if role == 'recs' else 'qrels'} "
                     f"({' '.join(TREC_RUN if role == 'recs' else TREC_QRELS)})")
        return frame, 0
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    sep = "\t" if suffix.startswith(".tsv") or suffix in (".tab", ".dat") else ","
    raw = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""], header=None)
    header = layout.header
    if header is None:
        header = not (sep == "\t" and len(raw) and not any(_recognise(c, role) for c in raw.iloc[0]))
    if header:
        frame = raw.iloc[1:].reset_index(drop=True)
        frame.columns = [str(c).strip() for c in raw.iloc[0]] if len(raw) else []
        return rename(frame, role, layout, str(path)), 1
    order = HEADERLESS_ORDER[role]
    if raw.shape[1] > len(order):
        raise InputError(f"{path}: headerless file with {raw.shape[1]} columns; {role} takes at most "
                         f"{len(order)} ({', '.join(order)})")
    raw.columns = list(order[: raw.shape[1]])
    _say(layout, f"{path}: no header; columns read as {', '.join(raw.columns)}")
    return raw, 0


def _recognise(name: object, role: str) -> str | None:
    normal = _normal(name)
    for column in _ROLE_COLUMNS[role]:
        if normal in _COMMON[column] or normal in _EXTRA.get(role, {}).get(column, ()):
            return column
    return None


def rename(frame: pd.DataFrame, role: str, layout: Layout | None = None, name: str = "") -> pd.DataFrame:
    """``frame`` with receval's column names: the explicit mapping first, then recognised names.

    A column the mapping names but the file lacks is an :class:`~receval.errors.InputError`; a
    column already called by a receval name that the mapping gives to another column is dropped.
    """
    layout = layout or Layout()
    frame = frame.copy(deep=False)  # only the column labels change; the data is shared
    frame.columns = [str(c).strip() for c in frame.columns]
    chosen = chosen_columns(frame, role, layout, name)
    renamed = {theirs: ours for ours, theirs in chosen.items()}
    shadowed = [ours for ours, theirs in chosen.items() if theirs != ours and ours in frame.columns]
    out = frame.drop(columns=shadowed).rename(columns=renamed)
    changed = [f"{theirs}→{ours}" for ours, theirs in chosen.items() if theirs != ours]
    if changed:
        how = "mapped" if any(layout.columns.get(o) == t for o, t in chosen.items()) else "recognised"
        _say(layout, f"{name}: columns {', '.join(changed)} ({how})")
    return out


def chosen_columns(frame: pd.DataFrame, role: str, layout: Layout | None = None, name: str = "") -> dict[str, str]:
    """Which of ``frame``'s columns :func:`rename` takes for each receval column (receval -> frame)."""
    layout = layout or Layout()
    chosen: dict[str, str] = {}  # receval column -> file column
    for ours, theirs in layout.columns.items():
        if ours not in _ROLE_COLUMNS[role]:
            continue
        if theirs in frame.columns:
            chosen[ours] = theirs
        elif ours not in frame.columns:
            found = ", ".join(frame.columns) or "none"
            raise InputError(f"{name}: missing column '{theirs}' (mapped to {ours}; found: {found})")
    for column in frame.columns:
        ours = _recognise(column, role)
        if ours is not None and ours not in chosen and column not in chosen.values():
            # an exact name beats a recognised one (a file with both 'rating' and 'weight')
            if ours in frame.columns and column != ours:
                continue
            chosen[ours] = column
    return chosen


def _read_trec(path: Path, role: str) -> pd.DataFrame:
    names = TREC_RUN if role == "recs" else TREC_QRELS
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != len(names):
                what = "run" if role == "recs" else "qrels"
                raise InputError(f"{path}: line {line_number}: {len(fields)} fields, a TREC {what} line has "
                                 f"{len(names)} ({' '.join(names)})")
            rows.append(fields)
    frame = pd.DataFrame(rows, columns=list(names), dtype=str)
    keep = [c for c in names if c in _ROLE_COLUMNS[role]]
    return frame[keep]


def _say(layout: Layout, line: str) -> None:
    if layout.report is not None:
        layout.report(line)


def layout_from_options(
    columns: str | None = None,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    rating_col: str | None = None,
    score_col: str | None = None,
    rank_col: str | None = None,
    input_format: str = "auto",
    no_header: bool = False,
    report: Callable[[str], None] | None = None,
) -> Layout:
    """The :class:`Layout` of the command-line options (one place for the evaluate command and the API)."""
    mapping = parse_columns(columns, user=user_col, item=item_col, rating=rating_col, score=score_col, rank=rank_col)
    return Layout(columns=mapping, format=input_format, header=False if no_header else None, report=report)

