"""Loaders that turn public datasets (and any user table) into one :class:`Dataset` value.

Every loader returns the same shapes, so that splits, recommenders and metrics never care where data came from:

- ``ratings``: ``user, item, rating[, timestamp]``; ids ``int64`` when the source stores integers (Parquet, the public
  datasets), else text: a CSV table's ids are labels, read as written (``007`` is not ``7``);
  ``rating`` ``float64``; ``timestamp`` ``int64`` seconds since the epoch when the source has one.
- ``features``: ``item, feature, weight``; ``weight`` is 1.0 for genre or tag membership.
- ``items``: ``item, title``: every item the source describes (a catalogue may list items nobody rated).

Errors (missing folder or file, unreadable table, bad column) are :class:`~receval.errors.InputError` with one
line naming the path and, for a missing dataset, how to get it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from receval.data import datasets as registry
from receval.data.dataset import Dataset, empty_features
from receval.data.schema import (
    _drop_duplicates, _first_duplicate, _ids, _numeric, _Source, harmonise_id_types, output_ids,
)
from receval.errors import ConfigError, InputError

DATASET_NAMES = tuple(registry.ARCHIVES)

_NO_GENRE = "(no genres listed)"


# --------------------------------------------------------------------------------------------------- helpers


def _need(folder: Path, filename: str, dataset: str) -> Path:
    path = Path(folder) / filename
    if not path.is_file():
        raise InputError(
            f"{path}: file not found; get the dataset with `receval datasets download {dataset}` "
            f"or point data_dir (or RECEVAL_DATA) at a folder that holds it", option="data_dir",
        )
    return path


def _read(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: cannot be read: {first}") from None


def _decode(path: Path) -> str:
    """Text of a file that is UTF-8 in some releases and Latin-1 in others (MovieLens 1M vs 10M)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # every byte is valid Latin-1, so this cannot fail


def _ratings_frame(users, items, ratings, timestamps=None) -> pd.DataFrame:
    out = pd.DataFrame({"user": users, "item": items, "rating": np.asarray(ratings, dtype=np.float64)})
    if timestamps is not None:
        out["timestamp"] = np.asarray(timestamps, dtype=np.int64)
    return out


def _genre_features(items: pd.Series, genres: pd.Series) -> pd.DataFrame:
    """``item, feature, 1.0`` from a ``|``-separated genre column, skipping "(no genres listed)"."""
    exploded = pd.DataFrame({"item": items.to_numpy(), "feature": genres.fillna("").astype(str).str.split("|")})
    exploded = exploded.explode("feature")
    exploded["feature"] = exploded["feature"].str.strip()
    exploded = exploded[(exploded["feature"] != "") & (exploded["feature"] != _NO_GENRE)]
    return _features(exploded["item"], exploded["feature"])


def _features(items, names) -> pd.DataFrame:
    out = pd.DataFrame({"item": np.asarray(items), "feature": np.asarray(names, dtype=object)})
    out = out.drop_duplicates(["item", "feature"]).reset_index(drop=True)
    out["weight"] = 1.0
    return out


def _tag_features(items, tags) -> pd.DataFrame:
    # Tags are free text typed by users: "Highly quotable" and "highly quotable " are one tag. The prefix keeps
    # a tag "comedy" apart from the genre "Comedy" so that genre-based diversity keeps its meaning.
    text = pd.Series(tags, dtype=object).astype(str).str.strip().str.lower()
    keep = (text != "").to_numpy()
    return _features(np.asarray(items)[keep], "tag:" + text[keep])


# --------------------------------------------------------------------------------------------------- MovieLens


def load_ml100k(directory: str | Path) -> Dataset:
    """Load MovieLens 100K from its folder (``u.data``, ``u.item``, ``u.genre``).

    ``u.data`` is tab separated ``user item rating timestamp``; ``u.item`` is Latin-1 and ``|`` separated,
    ending in 19 genre flags whose names are listed, in order, in ``u.genre``.

    References
    ----------
    F. M. Harper and J. A. Konstan. The MovieLens Datasets: History and Context. ACM TiiS 5(4), 2015.
    """
    folder = Path(directory)
    data = _read(_need(folder, "u.data", "ml-100k"), sep="\t", header=None,
                 names=["user", "item", "rating", "timestamp"], dtype=np.int64)
    genre_table = _read(_need(folder, "u.genre", "ml-100k"), sep="|", header=None, names=["genre", "index"],
                        encoding="latin-1", dtype={"genre": str, "index": np.int64}).dropna()
    genre_names = genre_table.sort_values("index")["genre"].tolist()
    n_fixed = 5  # id, title, release date, video release date, IMDb URL
    item_table = _read(_need(folder, "u.item", "ml-100k"), sep="|", header=None, encoding="latin-1",
                       names=range(n_fixed + len(genre_names)), quoting=csv.QUOTE_NONE, dtype=str,
                       keep_default_na=False)
    items = pd.DataFrame({"item": item_table[0].astype(np.int64), "title": item_table[1]})
    flags = item_table.iloc[:, n_fixed:].to_numpy() == "1"
    rows, cols = np.nonzero(flags)
    features = _features(items["item"].to_numpy()[rows], np.asarray(genre_names, dtype=object)[cols])
    ratings = _ratings_frame(data["user"], data["item"], data["rating"], data["timestamp"])
    return Dataset("ml-100k", ratings, features, items, implicit=False)


def load_movielens_csv(directory: str | Path, include_tags: bool = False, name: str | None = None) -> Dataset:
    """Load a CSV MovieLens release (ml-latest-small, ml-20m, ml-25m, ml-32m).

    ``ratings.csv`` (``userId,movieId,rating,timestamp``), genres from ``movies.csv`` split on ``|`` (without
    "(no genres listed)") and, with ``include_tags``, the distinct lower-cased tags of ``tags.csv`` as extra
    features named ``tag:<tag>``.
    """
    folder = Path(directory)
    name = name or folder.name
    data = _read(_need(folder, "ratings.csv", name), dtype={"userId": np.int64, "movieId": np.int64,
                                                          "rating": np.float64, "timestamp": np.int64})
    movies = _read(_need(folder, "movies.csv", name), dtype={"movieId": np.int64, "title": str, "genres": str},
                   keep_default_na=False, encoding="utf-8")
    items = pd.DataFrame({"item": movies["movieId"], "title": movies["title"]})
    features = _genre_features(movies["movieId"], movies["genres"])
    if include_tags:
        tags = _read(_need(folder, "tags.csv", name), dtype={"movieId": np.int64, "tag": str},
                     usecols=["movieId", "tag"], keep_default_na=False)
        features = pd.concat([features, _tag_features(tags["movieId"], tags["tag"])], ignore_index=True)
    ratings = _ratings_frame(data["userId"], data["movieId"], data["rating"], data["timestamp"])
    return Dataset(name, ratings, features, items, implicit=False)


def _read_dat_numeric(path: Path, names: list[str]) -> pd.DataFrame:
    # ``::`` needs pandas' slow Python engine; every field here is a number, so splitting on ``:`` with the C
    # engine and keeping every other column is the same thing, ~20x faster on ml-10m.
    raw = _read(path, sep=":", header=None, usecols=[2 * i for i in range(len(names))], dtype=str)
    raw.columns = names
    src = _Source(str(path), csv=True)
    return pd.DataFrame({column: _numeric(raw, column, src) for column in names})


def _split_dat(text: str, n_fields: int) -> list[list[str]]:
    return [line.split("::", n_fields - 1) for line in text.splitlines() if line.strip()]


def load_movielens_dat(directory: str | Path, include_tags: bool = False, name: str | None = None) -> Dataset:
    """Load a ``::``-separated MovieLens release (ml-1m, ml-10m).

    ``ratings.dat`` is ``UserID::MovieID::Rating::Timestamp``, ``movies.dat`` is ``MovieID::Title::Genres``.
    ml-1m files are Latin-1 and ml-10m files UTF-8: each file is decoded as UTF-8 when valid, else Latin-1.
    With ``include_tags`` and a ``tags.dat`` (ml-10m), tags become features ``tag:<tag>``.
    """
    folder = Path(directory)
    name = name or {"ml-10M100K": "ml-10m"}.get(folder.name, folder.name)
    data = _read_dat_numeric(_need(folder, "ratings.dat", name), ["user", "item", "rating", "timestamp"])
    movies_path = _need(folder, "movies.dat", name)
    rows = _split_dat(_decode(movies_path), 3)
    bad = next((i for i, r in enumerate(rows) if len(r) != 3 or not r[0].strip().isdigit()), None)
    if bad is not None:
        raise InputError(f"{movies_path}: line {bad + 1}: expected MovieID::Title::Genres")
    movies = pd.DataFrame(rows, columns=["item", "title", "genres"])
    movies["item"] = movies["item"].astype(np.int64)
    items = movies[["item", "title"]].reset_index(drop=True)
    features = _genre_features(movies["item"], movies["genres"])
    if include_tags:
        if not (folder / "tags.dat").is_file():
            raise ConfigError(f"{folder}: no tags.dat, so {name} has no tags (ml-10m and the CSV releases do)")
        tags_path = folder / "tags.dat"
        tag_rows = _split_dat(_decode(tags_path), 4)
        tag_rows = [r for r in tag_rows if len(r) == 4]
        features = pd.concat(
            [features, _tag_features(np.array([int(r[1]) for r in tag_rows], dtype=np.int64),
                                     [r[2] for r in tag_rows])],
            ignore_index=True,
        )
    ratings = _ratings_frame(data["user"].astype(np.int64), data["item"].astype(np.int64), data["rating"],
                             data["timestamp"].astype(np.int64))
    return Dataset(name, ratings, features, items, implicit=False)


# --------------------------------------------------------------------------------------------------- Last.fm


def load_lastfm_2k(directory: str | Path) -> Dataset:
    """Load HetRec 2011 Last.fm 2K as implicit feedback.

    ``rating`` is the user's play count of the artist (``user_artists.dat`` weight); item features are the
    distinct tags users applied to the artist (``user_taggedartists.dat`` with names from ``tags.dat``,
    Latin-1); titles are the artist names of ``artists.dat``. There are no rating timestamps.

    References
    ----------
    I. Cantador, P. Brusilovsky, T. Kuflik. 2nd Workshop on Information Heterogeneity and Fusion in
    Recommender Systems (HetRec 2011). RecSys 2011. Data: Last.fm, http://www.lastfm.com.
    """
    folder = Path(directory)
    name = "lastfm-2k"
    plays = _read(_need(folder, "user_artists.dat", name), sep="\t",
                  dtype={"userID": np.int64, "artistID": np.int64, "weight": np.float64})
    tag_names = _read(_need(folder, "tags.dat", name), sep="\t", encoding="latin-1", quoting=csv.QUOTE_NONE,
                      dtype={"tagID": np.int64, "tagValue": str}, keep_default_na=False)
    tagged = _read(_need(folder, "user_taggedartists.dat", name), sep="\t", usecols=["artistID", "tagID"],
                   dtype=np.int64)
    artists = _read(_need(folder, "artists.dat", name), sep="\t", encoding="utf-8", quoting=csv.QUOTE_NONE,
                    usecols=["id", "name"], dtype={"id": np.int64, "name": str}, keep_default_na=False)
    named = tagged.drop_duplicates().merge(tag_names, on="tagID", how="inner")
    features = _features(named["artistID"].to_numpy(), named["tagValue"].str.strip().to_numpy())
    features = features[features["feature"] != ""].reset_index(drop=True)
    items = pd.DataFrame({"item": artists["id"], "title": artists["name"]})
    ratings = _ratings_frame(plays["userID"], plays["artistID"], plays["weight"])
    return Dataset(name, ratings, features, items, implicit=True)


# --------------------------------------------------------------------------------------------------- any table


def _read_any(path: Path, sep: str | None) -> tuple[pd.DataFrame, _Source]:
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        # a FIFO, socket or device would be read forever, or not at all
        raise InputError(f"{path}: not a regular file (a directory, pipe or device?), expected a .parquet or .csv file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq") and sep is None:
        try:
            return pd.read_parquet(path), _Source(str(path), csv=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot be read: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    if sep is None:
        sep = "\t" if suffix in (".tsv", ".tab", ".dat") or path.name.lower().endswith(".tsv.gz") else ","
    return _read(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""]), _Source(str(path), csv=True)


def _plain(value):
    """A numpy scalar as the plain Python value, so that messages read ``1`` rather than ``np.int64(1)``."""
    return value.item() if hasattr(value, "item") else value


def _dataset_ids(frame: pd.DataFrame, column: str, src: _Source) -> pd.Series:
    """An id column by the readers' rules, integers as int64: a dataset's documented id dtype (the
    evaluation readers keep int32 where the ids fit, to bound the evaluate process's memory)."""
    ids = _ids(frame, column, src)
    return pd.Series(output_ids(ids), index=ids.index, name=ids.name, copy=False)


def _column(frame: pd.DataFrame, src: _Source, column: str, role: str) -> None:
    if column not in frame.columns:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise InputError(f"{src.name}: missing column '{column}' (mapped to {role}; found: {found})")


def load_table(
    path: str | Path,
    user: str = "user",
    item: str = "item",
    rating: str | None = None,
    timestamp: str | None = None,
    sep: str | None = None,
    *,
    features: pd.DataFrame | None = None,
    name: str | None = None,
) -> Dataset:
    """Load interactions from any Parquet or CSV file, mapping its columns to receval's.

    Parameters
    ----------
    path : path
        ``.parquet`` or a delimited text file (``sep`` defaults to tab for ``.tsv``/``.dat``, else comma).
    user, item : str
        Columns holding the ids.
    rating : str, optional
        Column with the rating; without one the data is implicit and every rating is 1.0.
    timestamp : str, optional
        Column with integer seconds since the epoch.
    features : DataFrame, optional
        Item features, e.g. from :func:`load_features_table`.
    """
    p = Path(path)
    frame, src = _read_any(p, sep)
    frame.columns = [str(c).strip() for c in frame.columns]
    if (user == "user" and user not in frame.columns) or (item == "item" and item not in frame.columns):
        from receval.data.formats import rename  # user_id, userId, movieId...: the common names

        frame = rename(frame, "train", name=str(path))
    for column, role in ((user, "user"), (item, "item"), (rating, "rating"), (timestamp, "timestamp")):
        if column is not None:
            _column(frame, src, column, role)
    out = pd.DataFrame({"user": _dataset_ids(frame, user, src), "item": _dataset_ids(frame, item, src)})
    out["rating"] = _numeric(frame, rating, src) if rating is not None else 1.0
    if timestamp is not None:
        values = _numeric(frame, timestamp, src)
        fractional = (values != np.floor(values)).to_numpy()
        if fractional.any():
            pos = int(np.flatnonzero(fractional)[0])
            raise InputError(f"{src.name}: column '{timestamp}', {src.row(pos)}: timestamp must be whole seconds")
        out["timestamp"] = values.astype(np.int64)
    pos = _first_duplicate(out, ["user", "item"])
    if pos is not None:
        raise InputError(f"{src.name}: {src.row(pos)}: user {_plain(out['user'].iloc[pos])!r} has item "
                         f"{_plain(out['item'].iloc[pos])!r} more than once")
    feats = features if features is not None else empty_features()
    # a CSV of features (text ids) beside Parquet interactions (integer ids): one id space, as text
    out, feats = harmonise_id_types(out, feats, column="item")
    items = pd.DataFrame({"item": pd.unique(out["item"])})
    items["title"] = items["item"].astype(str)
    return Dataset(name or p.stem, out, feats.reset_index(drop=True), items, implicit=rating is None)


def load_features_table(
    path: str | Path, item: str = "item", feature: str = "feature", weight: str | None = None, sep: str | None = None
) -> pd.DataFrame:
    """Read ``item, feature[, weight]`` from any Parquet or CSV file with mapped column names.

    Duplicate (item, feature) pairs are merged (the last weight wins); ``weight`` defaults to 1.0.
    """
    p = Path(path)
    frame, src = _read_any(p, sep)
    frame.columns = [str(c).strip() for c in frame.columns]
    for column, role in ((item, "item"), (feature, "feature"), (weight, "weight")):
        if column is not None:
            _column(frame, src, column, role)
    out = pd.DataFrame({"item": _dataset_ids(frame, item, src), "feature": frame[feature].astype(str).str.strip()})
    out["weight"] = _numeric(frame, weight, src, allow_negative=False) if weight is not None else 1.0
    return _drop_duplicates(out, ["item", "feature"], keep="last")


# --------------------------------------------------------------------------------------------------- by name


def load_dataset(name: str, data_dir: str | Path | None = None, *, include_tags: bool = False) -> Dataset:
    """Load a public dataset by name: ``ml-100k``, ``ml-latest-small``, ``ml-1m``, ``ml-10m``, ``ml-20m``,
    ``ml-25m``, ``ml-32m`` or ``lastfm-2k``. Synthetic data comes from
    :func:`receval.data.synthetic.synthetic_dataset` (a run's ``dataset: synthetic`` is resolved by
    :func:`receval.pipeline.steps.load_configured_dataset`).

    ``data_dir`` (default ``$RECEVAL_DATA`` or ``~/.cache/receval``) holds one folder per dataset
    (``ml-100k/``, ``hetrec2011-lastfm-2k/``...) or is itself the dataset's folder.
    """
    if name not in registry.ARCHIVES:
        raise ConfigError(f"unknown dataset '{name}' (known: {', '.join(DATASET_NAMES)}; synthetic data: "
                          "receval.data.synthetic.synthetic_dataset)")
    entry = registry.ARCHIVES[name]
    folder = registry.dataset_folder(name, data_dir)
    if folder is None:
        base = Path(data_dir).expanduser() if data_dir is not None else registry.default_data_dir()
        raise InputError(
            f"{base / entry.folder / entry.marker}: file not found; get the dataset with "
            f"`receval datasets download {name}` or point data_dir (or RECEVAL_DATA) at a folder that holds it",
            option="data_dir",
        )
    if name == "ml-100k":
        return load_ml100k(folder)
    if name == "lastfm-2k":
        return load_lastfm_2k(folder)
    if entry.marker == "ratings.dat":
        return load_movielens_dat(folder, include_tags=include_tags, name=name)
    return load_movielens_csv(folder, include_tags=include_tags, name=name)


__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "load_dataset",
    "load_features_table",
    "load_lastfm_2k",
    "load_ml100k",
    "load_movielens_csv",
    "load_movielens_dat",
    "load_table",
]
