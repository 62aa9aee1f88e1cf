"""Ids and numbers as dense integer codes, and the sorts and duplicate checks the readers do on them.

Reading validates millions of rows: repeated ``(user, rank)`` or ``(user, item)`` pairs, lists in rank
order. pandas does this on tuples of object values (``DataFrame.duplicated``, multi-column
``sort_values``) and costs seconds at 5M rows. Here every column becomes an integer code once,
whose order is the column's order (numeric for integers and floats, code-point order for text,
as ``sort_values`` orders them), and several columns pack into one ``int64`` key when the product
of their cardinalities fits. One numpy sort of that key, with the row position in its low bits so
that equal keys keep their file order, then gives both the stable order and the first repeated row.
When a key would not fit, the functions fall back to ``np.lexsort`` and pandas: the same results,
only slower.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_INT63 = 1 << 63
# Rows per piece of the checks that walk a column: their temporaries stay a few MB at any size.
CHUNK = 1 << 21


def order_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """``(codes, cardinality)``: int64 codes in ``[0, cardinality)`` that order like ``values``.

    Equal values get equal codes and ``a < b`` gives ``code(a) < code(b)``. Integers (and floats
    holding whole numbers) in a narrow range are their own codes, shifted to start at 0; a column
    already sorted is coded by counting its changes; anything else is factorised. Floats compare
    as numbers (``-0.0`` equals ``0.0``); no NaN is expected (the readers refuse them first).
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    if values.dtype.kind == "f":
        values = values + 0.0  # -0.0 and 0.0: one value, as in pandas
        whole = np.abs(values) < 2.0**53
        if whole.all() and (values == np.floor(values)).all():
            values = values.astype(np.int64)
        else:
            values = _float_order_key(values)
    if values.dtype.kind in "iub":
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < 4 * n + 1024:
            if lo >= 0 and values.dtype.kind in "iu":
                # 0 <= v - lo <= v: no overflow in the column's own (often narrow) dtype, and no copy at 0
                return (values - values.dtype.type(lo) if lo else values), hi - lo + 1
            return values.astype(np.int64) - lo, hi - lo + 1
        if bool(non_decreasing(values)):
            return _sorted_codes(values[1:] != values[:-1], n)
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64, copy=False), len(uniques)


def id_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """``(codes, cardinality)`` of ids for equality only (cheaper than :func:`order_codes` for text)."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    if values.dtype.kind in "iub":
        return order_codes(values)
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64, copy=False), len(uniques)


def non_decreasing(values: np.ndarray) -> bool:
    """Whether ``values`` never decrease, checked a piece at a time (no temporary of the column's size)."""
    n = len(values)
    return all(bool((values[s + 1 : s + CHUNK + 1] >= values[s : min(s + CHUNK, n - 1)]).all())
               for s in range(0, n - 1, CHUNK))


def _sorted_codes(change: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    codes = np.empty(n, dtype=np.int64)
    codes[0] = 0
    np.cumsum(change, out=codes[1:])
    return codes, int(codes[-1]) + 1


def _float_order_key(values: np.ndarray) -> np.ndarray:
    """int64 keys ordered as the float64 ``values`` (IEEE bits, negative numbers' magnitude bits flipped)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
    return bits ^ ((bits >> 63) & np.int64(0x7FFFFFFFFFFFFFFF))


def _in_order(columns: list[tuple[np.ndarray, int]]) -> tuple[bool, int | None]:
    """Whether the rows are already in lexicographic order of ``columns``, and then the first row
    equal to its predecessor (in sorted rows, the first repeat in file order). Walks the columns
    in pieces, so that a file already in order (the usual case) costs no key and no sort."""
    n = len(columns[0][0])
    first = None
    for s in range(0, n - 1, CHUNK):
        e = min(n, s + CHUNK + 1)
        ahead = np.zeros(e - s - 1, dtype=bool)  # rows already greater than their predecessor
        equal = np.ones(e - s - 1, dtype=bool)
        for codes, _ in columns:
            prev, cur = codes[s : e - 1], codes[s + 1 : e]
            ahead |= equal & (cur > prev)
            equal &= cur == prev
        if not (ahead | equal).all():
            return False, None
        if first is None and equal.any():
            first = s + 1 + int(np.flatnonzero(equal)[0])
    return True, first


def _repeats_within_runs(major: np.ndarray, minor: tuple[np.ndarray, int]) -> bool | None:
    """Whether some ``minor`` code repeats within a run of equal ``major`` codes, when ``major`` is
    non-decreasing (each value one run: lists written user by user); None when it is not.
    Keys are packed per piece of whole runs, so memory stays a piece's, not the column's."""
    n = len(major)
    if not non_decreasing(major):
        return None
    minor_codes, card = minor
    card = max(int(card), 1)
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(major[1:], major[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    bounds = np.append(starts, n)
    s = 0
    while s < len(starts):
        # whole runs, about CHUNK rows (at least one run)
        e = max(s + 1, int(np.searchsorted(bounds, bounds[s] + CHUNK, side="right")) - 1)
        e = min(e, len(starts))
        r0, r1 = int(bounds[s]), int(bounds[e])
        if (e - s) * card >= _INT63:
            return bool(stable_order([(major[r0:r1], int(major[r1 - 1]) + 1), (minor_codes[r0:r1], card)])[1] is not None)
        # int32 keys when the piece's (run, code) pairs fit: numpy sorts them about twice as fast
        key_type = np.int32 if (e - s) * card < 2**31 else np.int64
        run = np.repeat(np.arange(e - s, dtype=key_type), np.diff(bounds[s : e + 1]))
        run *= key_type(card)
        run += minor_codes[r0:r1].astype(key_type, copy=False)
        run.sort()
        if (run[1:] == run[:-1]).any():
            return True
        s = e
    return False


def pack(columns: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, int] | None:
    """One int64 key ordering rows as the codes ``columns`` do lexicographically (first most
    significant), with its cardinality; None when the product of cardinalities exceeds 2^63."""
    key: np.ndarray | None = None
    card = 1
    for codes, c in columns:
        c = max(int(c), 1)
        if card * c >= _INT63:
            return None
        if key is None:
            key = codes.astype(np.int64, copy=True)
        else:
            key *= c
            key += codes
        card *= c
    return key, card


def stable_order(
    columns: list[tuple[np.ndarray, int]], *, distinct: bool = False,
) -> tuple[np.ndarray | None, int | None]:
    """The stable lexicographic order of rows by code ``columns`` (None when already in order),
    and the first row in file order whose key repeats an earlier row's (None when all differ).

    "First repeated row" is what ``DataFrame.duplicated(keep="first")`` flags first: rows with
    equal keys stay in file order in a stable sort, so every row after the first of its group is
    a repeat, and the smallest such position is the answer. ``distinct``: the caller knows no key
    repeats, so any sort is stable.
    """
    n = len(columns[0][0])
    if n == 0:
        return None, None
    in_order, first = _in_order(columns)
    if in_order:
        return None, first
    packed = pack(columns)
    if packed is not None:
        key, card = packed
        bits = (n - 1).bit_length()
        if card < (_INT63 >> bits):
            # position in the low bits: equal keys keep file order, and numpy's sort of int64 is
            # a fast SIMD sort where a stable argsort is several times slower
            ordered = np.sort((key << bits) | np.arange(n, dtype=np.int64))
            order = ordered & np.int64((1 << bits) - 1)
            high = ordered >> bits
            repeated = high[1:] == high[:-1]
            return order, (int(order[1:][repeated].min()) if repeated.any() else None)
        order = np.argsort(key, kind="quicksort" if distinct else "stable")
        sorted_key = key[order]
    else:
        order = np.lexsort([codes for codes, _ in reversed(columns)])
        sorted_key = None
    if sorted_key is not None:
        repeated = sorted_key[1:] == sorted_key[:-1]
    else:
        repeated = np.ones(n - 1, dtype=bool)
        for codes, _ in columns:
            s = codes[order]
            repeated &= s[1:] == s[:-1]
    first = int(order[1:][repeated].min()) if repeated.any() else None
    if bool((order[1:] > order[:-1]).all()):
        order = None
    return order, first


def _repeating_key(columns: list[tuple[np.ndarray, int]]) -> tuple[bool, np.ndarray | None]:
    """Whether some row's codes may repeat an earlier row's, and the packed key (None when the
    columns do not pack into 63 bits: the caller then falls back to pandas).

    Sorting the key alone (no positions) is the cheapest way to learn that nothing repeats, the
    case of every valid file; positions are looked up only for a file that is refused.
    """
    if len(columns[0][0]) < 2:
        return False, None
    if len(columns) == 2 and _repeats_within_runs(columns[0][0], columns[1]) is False:
        return False, None
    packed = pack(columns)
    if packed is None:
        return True, None
    key, _ = packed
    ordered = np.sort(key)
    return bool((ordered[1:] == ordered[:-1]).any()), key


def first_repeat(columns: list[tuple[np.ndarray, int]]) -> int | None:
    """The first row (file order) whose codes repeat an earlier row's, or None: as
    ``DataFrame.duplicated(keep="first")``, without ordering the rows."""
    repeats, key = _repeating_key(columns)
    if not repeats:
        return None
    if key is None:
        return stable_order(columns)[1]
    dup = pd.Series(key).duplicated(keep="first").to_numpy()
    return int(np.flatnonzero(dup)[0])


def keep_mask(columns: list[tuple[np.ndarray, int]], keep: str) -> np.ndarray | None:
    """A mask keeping the ``keep="first"`` or ``"last"`` row of each repeated key (as
    ``drop_duplicates``), or None when no key repeats."""
    repeats, key = _repeating_key(columns)
    if not repeats:
        return None
    if key is None:
        frame = pd.DataFrame({str(i): codes for i, (codes, _) in enumerate(columns)})
        mask = ~frame.duplicated(keep=keep).to_numpy()
        return None if mask.all() else mask
    return ~pd.Series(key).duplicated(keep=keep).to_numpy()


def narrowest_int(lo: int, hi: int) -> np.dtype:
    """The narrowest of int16, int32 and int64 that holds every integer in ``[lo, hi]``.

    Ids and ranks are kept in it from reading to the build: at 50M list rows an int64 column is
    400 MB, an int32 one 200 MB (and ranks 1..K fit int16: 100 MB).
    """
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def group_positions(sorted_codes: np.ndarray) -> np.ndarray:
    """1-based position of each row within its run of equal codes (``groupby.cumcount() + 1`` of
    rows already grouped), in the narrowest integer dtype that holds the longest run
    (:func:`narrowest_int`: int16 for lists of up to 32,767 items)."""
    n = len(sorted_codes)
    if n == 0:
        return np.zeros(0, dtype=np.int16)
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=change[1:])
    bounds = np.append(np.flatnonzero(change), n)
    positions = np.empty(n, dtype=narrowest_int(1, int(np.diff(bounds).max())))
    # a piece of whole runs at a time: the int64 temporaries stay a piece's (np.repeat of all run
    # starts would be a second int64 array of every row)
    s = 0
    while s < len(bounds) - 1:
        e = max(s + 1, min(len(bounds) - 1, int(np.searchsorted(bounds, bounds[s] + CHUNK, side="right")) - 1))
        r0, r1 = int(bounds[s]), int(bounds[e])
        piece = np.arange(r0 + 1, r1 + 1, dtype=np.int64)
        piece -= np.repeat(bounds[s:e], np.diff(bounds[s : e + 1]))
        positions[r0:r1] = piece
        s = e
    return positions


def dense_range(low: int, high: int, n: int) -> bool:
    """Whether integer ids in ``[low, high]``, ``n`` of them, are dense enough to be looked up or
    counted in a table of ``high − low + 1`` cells (ids numbered from 0 or 1, as most exports are)."""
    return high - low < 4 * n + (1 << 20)


def integer_counts(values) -> tuple[np.ndarray, np.ndarray] | None:
    """``(distinct values, occurrences)``, values ascending, of an integer id column whose values
    span a range at most a few times its length (ids numbered from 0 or 1, as most exports are):
    counted into a table a piece at a time, with no hash table and no sort. None for other
    columns (text, floats, sparse 64-bit ids), which keep pandas' hashing.

    The distinct values keep the column's dtype (an int32 id column gives int32 ids).
    """
    v = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if v.dtype.kind not in "iu" or len(v) == 0:
        return None
    low, high = int(v.min()), int(v.max())
    if not dense_range(low, high, len(v)):
        return None
    counts = np.zeros(high - low + 1, dtype=np.int64)
    for start in range(0, len(v), CHUNK):
        piece = v[start : start + CHUNK].astype(np.int64) - low
        counts += np.bincount(piece, minlength=len(counts))
    present = np.flatnonzero(counts)
    return (present + low).astype(v.dtype), counts[present]


def distinct_sorted(values) -> np.ndarray:
    """The distinct values of an id column, ascending: :func:`integer_counts` where it applies,
    else ``pd.unique`` and a sort (the order of ``pd.Index.sort_values``). Only the first value of
    each run of equal neighbours is counted, so a column grouped by id (lists, and train and test
    as most exports write them) costs one comparison pass and the counting of its runs."""
    return _distinct(values, ordered=True)


def distinct_count(values) -> int:
    """How many distinct values an id column holds (``nunique``), counted like :func:`distinct_sorted`."""
    return len(_distinct(values, ordered=False))


def _distinct(values, ordered: bool) -> np.ndarray:
    values = _run_heads(values)
    counted = integer_counts(values)
    if counted is not None:
        return counted[0]
    unique = pd.unique(values)
    return pd.Index(unique).sort_values().to_numpy() if ordered else unique


def union_sorted(parts: list) -> pd.Index:
    """The distinct values of several id columns, sorted: each part's distinct values first
    (:func:`distinct_sorted`), so that no column of millions of ids is copied into one
    concatenated column."""
    distinct = [pd.Series(distinct_sorted(part)) for part in parts]
    return pd.Index(pd.unique(pd.concat(distinct, ignore_index=True))).sort_values()


def _run_heads(values):
    """The first value of each run of equal neighbours (the same distinct values), when no piece of
    the column has more runs than half its length; else the column itself. A piece at a time: no
    column-long mask, and an ungrouped column is given up after its first piece."""
    v = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if v.dtype.kind not in "iu" or len(v) < 2:
        return values
    heads = [v[:1]]
    for start in range(0, len(v) - 1, CHUNK):
        later = v[start + 1 : start + 1 + CHUNK]
        heads.append(later[later != v[start : start + len(later)]])
        if len(heads[-1]) > len(later) // 2:  # not grouped: known after one piece
            return values
    return np.concatenate(heads)
