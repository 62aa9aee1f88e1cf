"""Column contracts of receval's four inputs and their validation at the edge.

Every reader here turns a file into a clean :class:`pandas.DataFrame` or raises
:class:`~receval.errors.InputError` with one line that names the file, the column and the first
offending row (1-based data row; for CSV also the line number) or user. Nothing below this layer
validates again: the metrics assume clean frames.

Contracts (by column name). Other names (``user_id``, ``movieId``...), TREC run/qrels files and
headerless TSV are mapped onto these by :mod:`receval.data.formats`. Ids are labels: text ids (CSV,
TSV, TREC) are kept as written (``007`` is not ``7``); Parquet ids are integers (or integral floats)
or text; files that disagree on the type meet as canonical text (:func:`harmonise_id_types`).
Integer ids are returned as int32 when every id fits, else int64, and list ranks 1..len in the
narrowest integer dtype (int16 up to 32,767 items): the dtype is storage, never part of an id
(shards, digests and values are those of the same ids in any width).
Refused, in one line naming the file (``docs/refusals.md``): other id types, empty ids, empty train,
test or recs, a test set none of whose users has a list (:func:`require_overlap`), non-regular files.

========  ===============================  =====================================================
role      columns                          rules
========  ===============================  =====================================================
train     user, item [, rating]            duplicate (user, item) rows are merged (last rating);
                                           must not be empty
test      user, item, rating               rating numeric; duplicate (user, item) is an error;
                                           must not be empty
recs      user, item, rank | score         rank numeric >= 0, unique per user; item unique per
                                           user; with only a score: rank by score desc, item asc;
                                           must not be empty
features  item, feature [, weight]         weight numeric (default 1.0); duplicates merged
========  ===============================  =====================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from receval.data import codes, formats
from receval.errors import InputError

ROLES = ("train", "test", "recs", "features")


@dataclass(frozen=True)
class _Source:
    """Where a frame came from, so that errors can point at a row of the file (or frame).

    ``name`` is the file, or the argument a frame was passed as (``recs``); ``columns`` maps the
    contract's column names to the names the caller used (``user`` -> ``user_id``), for messages.
    """

    name: str
    csv: bool
    header_lines: int = 1
    columns: Mapping[str, str] = field(default_factory=dict)

    def col(self, column: str) -> str:
        """A contract column as the caller named it."""
        return self.columns.get(column, column)

    def row(self, position: int) -> str:
        """Describe the 0-based data row ``position`` as the user sees it in the file."""
        if self.csv:
            return f"row {position + 1} (line {position + 1 + self.header_lines})"
        return f"row {position + 1}"


def _show(value: object) -> str:
    """An id as the user wrote it: 7 for integers, 'abc' for strings."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(str(value))


def _read_raw(path: str | Path, role: str, layout: formats.Layout | None = None) -> tuple[pd.DataFrame, _Source]:
    """The file as strings with receval's column names (mapping, TREC, headerless TSV: :mod:`.formats`)."""
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise InputError(f"{name}: file not found")
    if p.is_dir():
        raise InputError(f"{name}: is a directory, expected a .parquet or .csv file")
    if not p.is_file():
        # a FIFO, socket or device would be read forever, or not at all
        raise InputError(f"{name}: not a regular file (a pipe or device?), expected a .parquet or .csv file")
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix.lower() == ".gz" else p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return formats.rename(_read_parquet(p, role, layout, name), role, layout, name), _Source(name, csv=False)
        if suffix in (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt") or formats.is_trec(p, layout or formats.Layout()):
            frame, header_lines = formats.read(p, role, layout)
            return frame, _Source(name, csv=True, header_lines=header_lines)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{name}: cannot be read: {first}") from None
    raise InputError(f"{name}: unknown file type '{p.suffix}', expected .parquet, .csv, .tsv or .trec "
                     "(or input_format trec)", option="input_format")


# The column sets a role's validation requires (recs: either one), to know when a Parquet read may
# skip the file's other columns without changing any message.
_REQUIRED = {
    "train": (("user", "item"),),
    "test": (("user", "item", "rating"),),
    "recs": (("user", "item", "rank"), ("user", "item", "score")),
    "features": (("item", "feature"),),
}


def _read_parquet(p: Path, role: str, layout: formats.Layout | None, name: str) -> pd.DataFrame:
    """The Parquet file as :func:`pandas.read_parquet` gives it, but only the columns ``role`` takes.

    Columns are chosen from the schema (``formats.chosen_columns``) before any data is read, so
    timestamps, titles or a second score column are never decoded. When a required column is
    missing the whole file is read, so that the refusal lists every column, as it always did.
    ``ParquetFile`` reads a single file without importing ``pyarrow.dataset`` (start-up time).
    """
    import pyarrow.parquet as pq

    file = pq.ParquetFile(p)
    schema = file.schema_arrow
    index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
    raw = {str(n).strip(): n for n in schema.names if n not in index}
    columns = None
    if len(raw) == len(schema.names) - len(index):  # no two names alike once stripped
        probe = pd.DataFrame(columns=list(raw))
        quiet = (layout or formats.Layout()).with_report(None)
        kept = set(formats.rename(probe, role, quiet, name).columns)  # what validation will see
        if any(all(c in kept for c in required) for required in _REQUIRED[role]):
            columns = [raw[c] for c in formats.chosen_columns(probe, role, quiet, name).values()]
    if columns is not None:
        frame = _plain_numbers_by_row_group(file, columns)
        if frame is not None:
            return frame
    table = file.read(columns=columns, use_pandas_metadata=True)
    # one block per column, the table freed as it converts: never two copies of the file
    return table.to_pandas(split_blocks=True, self_destruct=True)


_PLAIN_NUMBERS = frozenset(np.dtype(t).name for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                                        np.uint32, np.uint64, np.float32, np.float64))


def _plain_numbers_by_row_group(file, columns: list) -> pd.DataFrame | None:
    """The frame ``to_pandas`` would give for ``columns``, filled one row group at a time into
    arrays of the final size, when every column is plain numbers (numpy's integer or float dtype,
    also in the pandas metadata) without a missing value and the index is the default one; None
    otherwise (the caller then reads the table whole).

    Reading a whole table keeps its decoded pages and pyarrow's freed pages beside the frame: 50M
    list rows peaked at 995 MiB for a 477 MiB frame; a row group at a time, 625 MiB.
    """
    import pyarrow as pa

    schema = file.schema_arrow
    meta = schema.pandas_metadata or {}
    rows = file.metadata.num_rows
    default_index = {"kind": "range", "start": 0, "step": 1, "stop": rows}
    if any(not (isinstance(c, dict) and {k: c.get(k) for k in default_index} == default_index)
           for c in meta.get("index_columns", [])):
        return None
    described = {c.get("name"): c for c in meta.get("columns", []) if isinstance(c, dict)}
    dtypes = []
    for name in columns:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_float32(kind) or pa.types.is_float64(kind)):
            return None
        dtype = np.dtype(kind.to_pandas_dtype())
        entry = described.get(name)
        if dtype.name not in _PLAIN_NUMBERS or (entry is not None and entry.get("numpy_type") != dtype.name):
            return None  # e.g. pandas' nullable Int64, which to_pandas restores
        dtypes.append(dtype)
    out = [np.empty(rows, dtype=dtype) for dtype in dtypes]
    start = 0
    for group in range(file.metadata.num_row_groups):
        table = file.read_row_group(group, columns=columns)
        for values, column in zip(out, table.columns):
            if column.null_count:
                return None  # to_pandas would make floats of integers with NaN: its rules, not ours
            for chunk in column.chunks:
                values[start : start + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
                start += len(chunk)
            start -= len(column)
        start += table.num_rows
        del table
        _release_arrow()
    if start != rows:
        return None
    return pd.DataFrame(dict(zip(columns, out)), copy=False)


def _consume(frame: pd.DataFrame, *columns: str) -> None:
    """Drop raw columns once converted (``frame`` is the reader's own: a file read, or the shallow
    copy :func:`formats.rename` made): at 50M rows raw ids that had to be converted are 400 MiB beside their converted form."""
    for column in columns:
        del frame[column]
    _release_arrow()


def _release_arrow() -> None:
    """Give back the pages pyarrow's allocator keeps after the raw columns are freed (mimalloc
    holds them: 600 MiB after 50M list rows, which the process's peak RSS would carry on)."""
    import sys

    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()


def _require_columns(frame: pd.DataFrame, src: _Source, required: tuple[str, ...]) -> None:
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = ", ".join(src.col(c) for c in frame.columns) or "none"
        raise InputError(f"{src.name}: missing column '{src.col(missing[0])}' (found: {found})")


def _kind_refused(col: pd.Series) -> str | None:
    """Why an id column's type cannot hold labels (None when it can)."""
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "booleans"
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return "dates or times"
    if pd.api.types.is_complex_dtype(dtype):
        return "complex numbers"
    if dtype == object:
        for kinds, what in (((bytes, bytearray, memoryview), "binary values"), ((list, tuple, np.ndarray), "lists"),
                            ((dict,), "structs"), ((pd.Timestamp, np.datetime64), "dates or times")):
            if col.map(lambda v, k=kinds: isinstance(v, k)).any():
                return what
        import datetime as _dt

        if col.map(lambda v: isinstance(v, (_dt.date, _dt.time, _dt.timedelta))).any():
            return "dates or times"
    return None


def _ids(frame: pd.DataFrame, column: str, src: _Source) -> pd.Series:
    """An id column as labels: integers for an integer (or integral float) column, else stripped text.

    Integer ids are int32 when every id fits, else int64 (:func:`_integer_ids`): the same ids get
    the same dtype whatever width the file stored them in. Ids are labels, not numbers: CSV ids stay text, so ``007``, ``07`` and ``7`` are three users.
    Where files disagree on type (integers in Parquet, text in CSV) :func:`harmonise_id_types`
    compares them as canonical text, so ``7`` and ``"7"`` are one id. A float column is taken only
    when every value is integral (``7.0`` is 7); list, struct, date/time, binary and boolean columns
    are refused, as is an empty id, naming the row.
    """
    col = frame[column]
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object).where(col.notna(), None)
    refused = _kind_refused(col)
    if refused is not None:
        raise InputError(f"{src.name}: column '{src.col(column)}' holds {refused}; ids must be integers or text")
    null = col.isna().to_numpy().copy()
    if src.csv or col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
        null |= (col.astype(str).str.strip() == "").to_numpy()
    if null.any():
        pos = int(np.flatnonzero(null)[0])
        raise InputError(f"{src.name}: column '{src.col(column)}', {src.row(pos)}: empty id")
    if pd.api.types.is_integer_dtype(col.dtype):
        return _integer_ids(col)
    if pd.api.types.is_float_dtype(col.dtype):
        values = col.to_numpy(np.float64)
        whole = np.isfinite(values) & (values == np.floor(values)) & (np.abs(values) < 2.0**63)
        if not whole.all():
            pos = int(np.flatnonzero(~whole)[0])
            raise InputError(
                f"{src.name}: column '{src.col(column)}' is a float column and {src.row(pos)} holds {values[pos]!r}, "
                f"not a whole number; ids must be integers or text"
            )
        return _integer_ids(pd.Series(values, index=col.index, name=col.name))
    # text: as written (stripped), never parsed as a number; python ints of an object column
    # become their canonical text, the form harmonise_id_types compares
    return col.map(lambda v: v.strip() if isinstance(v, str) else str(v)).astype(object)


def _integer_ids(col: pd.Series) -> pd.Series:
    """Integer ids (no missing value) as int32 when every id fits, else int64 (uint64 ids above
    2^63 wrap, as they always did). An int32 column is kept as it is, without a copy: at 50M rows
    the int64 form of the two id columns was 800 MB where the file's int32 is 400 MB."""
    if len(col) == 0:
        return col.astype(np.int32)
    lo, hi = col.min(), col.max()
    if lo >= np.iinfo(np.int32).min and hi <= np.iinfo(np.int32).max:
        return col.astype(np.int32)  # the same dtype: no copy (copy-on-write)
    return col.astype(np.int64)


def _numeric(
    frame: pd.DataFrame, column: str, src: _Source, *, allow_negative: bool = True, keep_integers: bool = False,
) -> pd.Series:
    """``column`` as float64 (with ``keep_integers``, an integer column keeps its own dtype: ranks
    need no float copy), or a refusal naming the first missing, non-numeric, non-finite or, unless
    ``allow_negative``, negative value."""
    raw = frame[column]
    if keep_integers and isinstance(raw.dtype, np.dtype) and raw.dtype.kind in "iu":
        values = raw  # a numpy integer column holds no missing or non-finite value
    else:
        values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
    bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy()) if values.dtype.kind == "f" else None
    if bad is not None and bad.any():
        pos = int(np.flatnonzero(bad)[0])
        shown = raw.iloc[pos]
        if pd.isna(shown) or str(shown).strip() == "":
            what = "missing value"
        else:
            what = f"non-numeric value {str(shown)!r}"
        raise InputError(f"{src.name}: column '{src.col(column)}', {src.row(pos)}: {what}")
    if not allow_negative:
        neg = (values < 0).to_numpy()
        if neg.any():
            pos = int(np.flatnonzero(neg)[0])
            raise InputError(
                f"{src.name}: column '{src.col(column)}', {src.row(pos)}: negative value {raw.iloc[pos]!r}"
            )
    return values


def _codes(frame: pd.DataFrame, column: str, *, ordered: bool = False) -> tuple[np.ndarray, int]:
    """``column`` as integer codes (:mod:`receval.data.codes`); ``ordered`` keeps the column's order."""
    values = frame[column].to_numpy()
    return codes.order_codes(values) if ordered else codes.id_codes(values)


def _first_duplicate(frame: pd.DataFrame, keys: list[str]) -> int | None:
    """The first row repeating an earlier row's ``keys`` (``duplicated(keep="first")``), or None."""
    return codes.first_repeat([_codes(frame, k) for k in keys])


def _drop_duplicates(frame: pd.DataFrame, keys: list[str], keep: str) -> pd.DataFrame:
    """``frame.drop_duplicates(subset=keys, keep=keep)`` with a fresh index, over integer codes."""
    mask = codes.keep_mask([_codes(frame, k) for k in keys], keep)
    return frame.reset_index(drop=True) if mask is None else frame[mask].reset_index(drop=True)


def read_train(path: str | Path, layout: formats.Layout | None = None) -> pd.DataFrame:
    """Read train interactions: ``user, item[, rating]``; duplicates merged, last rating kept."""
    frame = validate_train(*_read_raw(path, "train", layout))
    _release_arrow()  # the raw columns are gone now
    return frame


def clean_train(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """:func:`read_train`'s rules on a frame already read (e.g. a Parquet part file called ``name``)."""
    return validate_train(frame.copy(deep=False), _Source(name, csv=False))


def validate_train(frame: pd.DataFrame, src: _Source) -> pd.DataFrame:
    """Validate train interactions read from ``src`` (a file, a part file, or a frame passed as an
    argument). ``frame`` is the reader's own (its raw columns are dropped once converted)."""
    _require_columns(frame, src, ("user", "item"))
    if len(frame) == 0:
        raise InputError(f"{src.name}: train set is empty (no popularity, no profile: every metric would be 0)")
    out = pd.DataFrame({"user": _ids(frame, "user", src), "item": _ids(frame, "item", src)}, copy=False)
    out["rating"] = _numeric(frame, "rating", src) if "rating" in frame.columns else 1.0
    _consume(frame, *frame.columns)
    # duplicate (user, item) rows are merged, the last rating kept (docs/metrics.md, "Where receval differs
    # from RankSys, deliberately")
    return _drop_duplicates(out, ["user", "item"], keep="last")


def read_test(path: str | Path, layout: formats.Layout | None = None) -> pd.DataFrame:
    """Read test interactions: ``user, item, rating``; duplicates and an empty set are errors."""
    frame = validate_test(*_read_raw(path, "test", layout))
    _release_arrow()  # the raw columns are gone now
    return frame


def validate_test(frame: pd.DataFrame, src: _Source) -> pd.DataFrame:
    """Validate test interactions read from ``src`` (a file or a frame passed as an argument): the
    rules of :func:`clean_test`, and the set must not be empty."""
    _require_columns(frame, src, ("user", "item", "rating"))
    if len(frame) == 0:
        raise InputError(f"{src.name}: test set is empty")
    return _clean_test(frame, src)


def clean_test(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """:func:`read_test`'s rules on a frame already read (a part file may hold no rows)."""
    return _clean_test(frame.copy(deep=False), _Source(name, csv=False))


def _clean_test(frame: pd.DataFrame, src: _Source) -> pd.DataFrame:
    _require_columns(frame, src, ("user", "item", "rating"))
    out = pd.DataFrame(
        {
            "user": _ids(frame, "user", src),
            "item": _ids(frame, "item", src),
            "rating": _numeric(frame, "rating", src),
        },
        copy=False,
    )
    pos = _first_duplicate(out, ["user", "item"])
    if pos is not None:
        raise InputError(
            f"{src.name}: columns '{src.col('user')}, {src.col('item')}', {src.row(pos)}: duplicate test row for user "
            f"{_show(out.user.iloc[pos])}, item {_show(out.item.iloc[pos])} (which rating would count?)"
        )
    return out


def read_recs(path: str | Path, layout: formats.Layout | None = None) -> pd.DataFrame:
    """Read recommendation lists and return them sorted by (user, rank) with a 1-based ``rank``.

    Lists given by ``rank`` keep their order; lists given only by ``score`` are ranked by score
    descending, then item id ascending (docs/python-api.md, "Data and two recommenders").
    """
    frame = validate_recs(*_read_raw(path, "recs", layout))
    _release_arrow()  # the raw columns are gone now
    return frame


def validate_recs(frame: pd.DataFrame, src: _Source) -> pd.DataFrame:
    """Validate recommendation lists read from ``src``; see :func:`read_recs`. ``frame`` is the
    reader's own (its raw id columns are dropped once converted)."""
    if "rank" not in frame.columns and "score" in frame.columns:
        _require_columns(frame, src, ("user", "item", "score"))
    else:
        _require_columns(frame, src, ("user", "item", "rank"))
    if len(frame) == 0:
        raise InputError(f"{src.name}: no recommendation lists (header only or empty file)")
    out = pd.DataFrame({"user": _ids(frame, "user", src), "item": _ids(frame, "item", src)}, copy=False)
    _consume(frame, "user", "item")
    by_user = _codes(out, "user", ordered=True)
    if "rank" in frame.columns:
        out["rank"] = _numeric(frame, "rank", src, allow_negative=False, keep_integers=True)
        order, pos = codes.stable_order([by_user, _codes(out, "rank", ordered=True)])
        if pos is not None:
            raise InputError(
                f"{src.name}: column '{src.col('rank')}', {src.row(pos)}: duplicate rank {frame['rank'].iloc[pos]} "
                f"for user {_show(out.user.iloc[pos])}"
            )
        by_item = None
    else:
        out["score"] = _numeric(frame, "score", src)
        by_item = _codes(out, "item", ordered=True)
    pos = codes.first_repeat([by_user, by_item or _codes(out, "item")])
    if pos is not None:
        raise InputError(
            f"{src.name}: column '{src.col('item')}', {src.row(pos)}: item {_show(out.item.iloc[pos])} repeated in the "
            f"list of user {_show(out.user.iloc[pos])}"
        )
    if by_item is not None:
        # items are unique per user now, so (user, score, item) keys are distinct
        by_score = codes.order_codes(-out["score"].to_numpy(np.float64))
        order, _ = codes.stable_order([by_user, by_score, by_item], distinct=True)
    return _in_order(out, order, by_user[0])


def rank_lists(frame: pd.DataFrame, *, by_rank: bool) -> pd.DataFrame:
    """Order lists by rank (or score desc, item asc) and renumber ranks 1..len per user.

    ``frame`` holds clean ids (no null) and, per user, distinct ranks or distinct items.
    """
    by_user = _codes(frame, "user", ordered=True)
    if by_rank:
        order, _ = codes.stable_order([by_user, _codes(frame, "rank", ordered=True)])
    else:
        by_score = codes.order_codes(-frame["score"].to_numpy(np.float64))
        order, _ = codes.stable_order([by_user, by_score, _codes(frame, "item", ordered=True)])
    return _in_order(frame, order, by_user[0])


def _in_order(frame: pd.DataFrame, order: np.ndarray | None, user_codes: np.ndarray) -> pd.DataFrame:
    """``user, item`` rows taken in ``order`` (None: as they are), ranked 1..len within each user."""
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    if order is not None:
        users, items, user_codes = users[order], items[order], user_codes[order]
    # dtype given: pandas would infer its string dtype from an object column of text ids
    return pd.DataFrame({"user": pd.Series(users, dtype=users.dtype, copy=False),
                         "item": pd.Series(items, dtype=items.dtype, copy=False),
                         "rank": codes.group_positions(user_codes)}, copy=False)


def read_features(path: str | Path, layout: formats.Layout | None = None) -> pd.DataFrame:
    """Read item features: ``item, feature[, weight]``; duplicate pairs merged (last weight)."""
    frame = validate_features(*_read_raw(path, "features", layout))
    _release_arrow()  # the raw columns are gone now
    return frame


def validate_features(frame: pd.DataFrame, src: _Source) -> pd.DataFrame:
    """Validate item features read from ``src``."""
    _require_columns(frame, src, ("item", "feature"))
    out = pd.DataFrame({"item": _ids(frame, "item", src), "feature": _ids(frame, "feature", src)}, copy=False)
    out["weight"] = _numeric(frame, "weight", src, allow_negative=False) if "weight" in frame.columns else 1.0
    return _drop_duplicates(out, ["item", "feature"], keep="last")


def require_overlap(test: pd.DataFrame, recs: pd.DataFrame, test_name: str, recs_name: str) -> None:
    """Refuse a test set none of whose users has a list: every user-averaged value would be 0.

    Ids are compared as canonical text (``7`` and ``"7"`` are one user). Partial overlap is not an
    error: the engine reports it in its data-quality records.
    """
    # integer ids in a narrow range are counted, not hashed (50M list rows: 0.4 s of pd.unique)
    test_users, listed_users = codes.distinct_sorted(test["user"]), codes.distinct_sorted(recs["user"])
    if not (pd.api.types.is_integer_dtype(test_users.dtype) and pd.api.types.is_integer_dtype(listed_users.dtype)):
        # Unique first, text after: casting every row to str costs seconds at millions of rows.
        test_users, listed_users = test_users.astype(str), listed_users.astype(str)
    # A hash join: np.isin on object arrays compares all pairs (minutes at 100k users).
    if not pd.Index(test_users).isin(listed_users).any():
        raise InputError(
            f"{test_name}: none of its {len(test_users)} test users has a recommendation list in {recs_name} "
            f"(first test user {_show(test['user'].iloc[0])}, first listed user {_show(recs['user'].iloc[0])}): "
            f"different id spaces?"
        )


def check_catalog(catalog: int | None, recs: pd.DataFrame, recs_name: str, option: str = "catalog") -> None:
    """Refuse a catalogue size (for Gini) smaller than the distinct items the lists recommend.

    Gini over fewer catalogue items than are recommended is not defined; the engine would have to
    widen the catalogue silently, so the value would not be the one asked for. ``option`` names the
    setting in the message (the option ``catalog``; the CLI shows its flag, a run its key).
    """
    if catalog is None:
        return
    items = pd.unique(recs["item"])
    recommended = int(items.size if pd.api.types.is_integer_dtype(items.dtype) else pd.unique(items.astype(str)).size)
    if catalog < recommended:
        raise InputError(
            f"{option} {catalog}: smaller than the {recommended} distinct items recommended in {recs_name}; "
            f"the catalogue must hold every recommended item", option=option,
        )


def frame_source(name: str, columns: Mapping[str, str] | None = None) -> _Source:
    """The source of a frame passed as argument ``name`` (errors then name it, not a file), with
    ``columns`` mapping contract columns to the caller's column names."""
    return _Source(name, csv=False, columns=dict(columns or {}))


def output_ids(values) -> np.ndarray:
    """Id values as results files carry them: int64 for integer ids, however narrowly they were
    read (int32 when they fit), so that a one-pass run, its shards and their merge write the same
    column; text ids as they are."""
    ids = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    return ids.astype(np.int64) if ids.dtype.kind in "iu" else ids


def all_integer_ids(*frames: pd.DataFrame | None) -> bool:
    """Whether every ``user`` and ``item`` column of ``frames`` is integer: :func:`harmonise_id_types`
    then leaves them as they are."""
    return _integer_kind(frames, "user") and _integer_kind(frames, "item")


def _integer_kind(frames, column: str) -> bool:
    return all(pd.api.types.is_integer_dtype(f[column].dtype) for f in frames if f is not None and column in f.columns)


def harmonise_id_types(*frames: pd.DataFrame | None, column: str) -> list[pd.DataFrame | None]:
    """Make ``column`` the same kind in every frame: integers where all are (each frame keeps its
    width, int32 or int64: integer indexes compare by value), else str.

    Files written by different tools may disagree (integer ids in Parquet, string ids in CSV);
    joining them as they are would silently match nothing.
    """
    if _integer_kind(frames, column):
        return list(frames)
    out: list[pd.DataFrame | None] = []
    for f in frames:
        if f is not None and column in f.columns and not pd.api.types.is_string_dtype(f[column].dtype):
            f = f.assign(**{column: f[column].astype(str)})
        out.append(f)
    return out
