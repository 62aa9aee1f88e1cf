"""Dataset loaders on the real shared datasets, tiny hand-made files, and the download path.

Expected counts come from the datasets' own READMEs and from ``/work/shared/datasets/*/SOURCE.md`` (verified
there with independent tools), never from this code's output.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import http.server
import io
import json
import socket
import threading
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from receval.data import datasets as registry
from receval.data.loaders import (
    Dataset,
    load_dataset,
    load_features_table,
    load_lastfm_2k,
    load_ml100k,
    load_movielens_csv,
    load_movielens_dat,
    load_table,
)
from receval.errors import ConfigError, InputError

# The shared datasets sit beside the repository checkout; licences forbid copying them into the repo.
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not (SHARED / "ml-100k" / "u.data").is_file(), reason="shared datasets absent")


# ------------------------------------------------------------------------------------------------ real data


@pytest.fixture(scope="module")
def ml100k() -> Dataset:
    return load_ml100k(SHARED / "ml-100k")


@needs_shared
def test_ml100k_counts_match_the_readme(ml100k):
    # README / u.info: 100000 ratings by 943 users on 1682 items; u.genre lists 19 genres.
    r = ml100k.ratings
    assert (len(r), ml100k.n_users, ml100k.n_items) == (100_000, 943, 1682)
    assert list(r.columns) == ["user", "item", "rating", "timestamp"]
    assert [str(t) for t in r.dtypes] == ["int64", "int64", "float64", "int64"]
    assert set(r["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ml100k.features["feature"].nunique() == 19
    assert not ml100k.implicit and len(ml100k.items) == 1682


@needs_shared
def test_ml100k_first_rating_and_genres_read_from_the_files(ml100k):
    # u.data line 1 is "196\t242\t3\t881250949".
    assert ml100k.ratings.iloc[0].tolist() == [196, 242, 3.0, 881250949]
    # u.item line 1 (Toy Story) has flags 1 at genre indices 3, 4, 5 = Animation, Children's, Comedy (u.genre).
    toy_story = set(ml100k.features.loc[ml100k.features["item"] == 1, "feature"])
    assert toy_story == {"Animation", "Children's", "Comedy"}
    assert (ml100k.features["weight"] == 1.0).all()


@needs_shared
def test_ml100k_latin1_titles_are_decoded(ml100k):
    titles = ml100k.items.set_index("item")["title"]
    # u.item stores byte 0xE9 (Latin-1 "é") in these titles.
    assert titles[543] == "Misérables, Les (1995)"
    assert titles[1633] == "Á köldum klaka (Cold Fever) (1994)"


@needs_shared
def test_ml_latest_small_counts_and_genres():
    ds = load_movielens_csv(SHARED / "ml-latest-small")
    # README.txt: 100836 ratings, 610 users, 9742 movies (9724 of them rated: SOURCE.md).
    assert (len(ds.ratings), ds.n_users, ds.n_items, len(ds.items)) == (100_836, 610, 9724, 9742)
    assert ds.name == "ml-latest-small"
    assert set(ds.ratings["rating"].unique()) == {x / 2 for x in range(1, 11)}
    # movies.csv has 20 labels including "(no genres listed)", which is no genre; 34 movies carry only it.
    assert ds.features["feature"].nunique() == 19
    assert "(no genres listed)" not in set(ds.features["feature"])
    assert ds.features["item"].nunique() == 9742 - 34
    assert set(ds.features.loc[ds.features["item"] == 1, "feature"]) == {
        "Adventure", "Animation", "Children", "Comedy", "Fantasy"}  # movies.csv line 2


@needs_shared
def test_ml_latest_small_tags_as_features():
    ds = load_movielens_csv(SHARED / "ml-latest-small", include_tags=True)
    # Independent count with the csv module: distinct (movie, lower-cased stripped tag) pairs of tags.csv.
    with open(SHARED / "ml-latest-small" / "tags.csv", newline="", encoding="utf-8") as f:
        pairs = {(int(row["movieId"]), row["tag"].strip().lower()) for row in csv.DictReader(f)}
    pairs.discard(next((p for p in pairs if p[1] == ""), None))
    tags = ds.features[ds.features["feature"].str.startswith("tag:")]
    assert len(tags) == len(pairs)
    assert (60756, "tag:funny") in set(zip(tags["item"], tags["feature"]))  # tags.csv line 2


@needs_shared
def test_lastfm_counts_play_counts_and_latin1_tags():
    ds = load_lastfm_2k(SHARED / "hetrec2011-lastfm-2k")
    # readme.txt: 92834 user-artist relations, 1892 users, 17632 artists; SOURCE.md: weights sum to 69,183,975.
    assert (len(ds.ratings), ds.n_users, ds.n_items) == (92_834, 1892, 17_632)
    assert ds.implicit and not ds.has_timestamps
    assert ds.ratings["rating"].sum() == 69_183_975
    assert ds.ratings.iloc[0].tolist() == [2, 51, 13883.0]  # user_artists.dat line 2
    feats = set(zip(ds.features["item"], ds.features["feature"]))
    # tags.dat (Latin-1) tag 5457 "español" was applied to artist 231, tag 11213 "die Ärzte" to 16875.
    assert (231, "español") in feats and (16875, "die Ärzte") in feats
    # user_taggedartists.dat line 2: user 2 tagged artist 52 with tag 13; tags.dat names tag 13.
    names = pd.read_csv(SHARED / "hetrec2011-lastfm-2k" / "tags.dat", sep="\t", encoding="latin-1")
    assert (52, names.set_index("tagID").loc[13, "tagValue"]) in feats
    assert ds.items.set_index("item").loc[18, "title"] == "The Crüxshadows"  # artists.dat is UTF-8


@needs_shared
def test_load_dataset_by_name_accepts_parent_or_dataset_folder(monkeypatch):
    by_parent = load_dataset("ml-100k", SHARED)
    direct = load_dataset("ml-100k", SHARED / "ml-100k")
    assert len(by_parent.ratings) == len(direct.ratings) == 100_000
    monkeypatch.setenv("RECEVAL_DATA", str(SHARED))
    assert load_dataset("lastfm-2k").n_users == 1892


def test_missing_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(InputError) as err:
        load_dataset("ml-1m", tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "ml-1m" / "ratings.dat") in message
    # the loader names its argument; a command shows its flag (`point --data-dir ...`)
    assert "receval datasets download ml-1m" in message and "point data_dir" in message
    assert "point --data-dir" in str(err.value.named("--data-dir"))


def test_unknown_dataset_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown dataset 'ml-3k'.*ml-100k.*synthetic"):
        load_dataset("ml-3k")


def test_synthetic_by_name_is_the_runs_dataset_not_a_loaders():
    from receval.config import DatasetConfig
    from receval.pipeline.steps import load_configured_dataset

    ds = load_configured_dataset(DatasetConfig(name="synthetic"))
    assert ds.name == "synthetic" and ds.n_users == 2000


# ------------------------------------------------------------------------------------------------ .dat files


def _write_dat(folder: Path, encoding: str, title: str) -> None:
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::10::5::978300760\n1::20::3::978302109\n2::10::4.5::978301968\n")
    (folder / "movies.dat").write_bytes(
        f"10::{title} (1995)::Drama|Romance\n20::Star Wars: Episode IV (1977)::Action|Sci-Fi\n".encode(encoding)
    )


@pytest.mark.parametrize(("folder_name", "encoding", "title"), [
    ("ml-1m", "latin-1", "Misérables, Les"),  # ml-1m ships Latin-1
    ("ml-10M100K", "utf-8", "Café au Lait"),  # ml-10m ships UTF-8 and extracts as ml-10M100K
])
def test_movielens_dat_both_encodings(tmp_path, folder_name, encoding, title):
    _write_dat(tmp_path / folder_name, encoding, title)
    ds = load_movielens_dat(tmp_path / folder_name)
    assert ds.name == {"ml-10M100K": "ml-10m"}.get(folder_name, folder_name)
    assert ds.ratings.values.tolist() == [[1, 10, 5.0, 978300760], [1, 20, 3.0, 978302109], [2, 10, 4.5, 978301968]]
    titles = ds.items.set_index("item")["title"]
    assert titles[10] == f"{title} (1995)"
    assert titles[20] == "Star Wars: Episode IV (1977)"  # a ':' inside a title is not a separator
    assert set(zip(ds.features["item"], ds.features["feature"])) == {
        (10, "Drama"), (10, "Romance"), (20, "Action"), (20, "Sci-Fi")}


def test_ml10m_alias_folder_found_by_name_and_its_tags(tmp_path):
    _write_dat(tmp_path / "ml-10M100K", "utf-8", "Heat")
    (tmp_path / "ml-10M100K" / "tags.dat").write_text("1::10::Pacino ::1188263867\n2::10::pacino::1188263868\n")
    ds = load_dataset("ml-10m", tmp_path, include_tags=True)
    assert ds.name == "ml-10m"
    # The two tag rows differ only in case and spacing: one feature.
    assert ds.features[ds.features["feature"].str.startswith("tag:")].values.tolist() == [[10, "tag:pacino", 1.0]]


def test_tags_asked_of_a_release_without_tags(tmp_path):
    _write_dat(tmp_path / "ml-1m", "latin-1", "Heat")
    with pytest.raises(ConfigError, match="no tags.dat"):
        load_movielens_dat(tmp_path / "ml-1m", include_tags=True)


def test_bad_rating_in_dat_names_file_column_row(tmp_path):
    _write_dat(tmp_path / "ml-1m", "latin-1", "Heat")
    (tmp_path / "ml-1m" / "ratings.dat").write_text("1::10::5::978300760\n1::20::x::978302109\n")
    with pytest.raises(InputError, match=r"ratings\.dat: column 'rating', row 2"):
        load_movielens_dat(tmp_path / "ml-1m")


# ------------------------------------------------------------------------------------------------ any table


def test_load_table_csv_with_column_mapping(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("uid;sku;stars;when\nu1;a;4;100\nu1;b;2;200\nu2;a;5;150\n")
    ds = load_table(path, user="uid", item="sku", rating="stars", timestamp="when", sep=";")
    assert ds.ratings.to_dict("list") == {"user": ["u1", "u1", "u2"], "item": ["a", "b", "a"],
                                          "rating": [4.0, 2.0, 5.0], "timestamp": [100, 200, 150]}
    assert not ds.implicit and ds.name == "events"


def test_load_table_parquet_implicit_with_features(tmp_path):
    pd.DataFrame({"u": [1, 1, 2], "i": [7, 8, 7]}).to_parquet(tmp_path / "clicks.parquet")
    pd.DataFrame({"movie": [7, 7, 8], "tag": ["x", "y", "x"], "w": [0.5, 1.0, 2.0]}).to_csv(
        tmp_path / "f.csv", index=False)
    feats = load_features_table(tmp_path / "f.csv", item="movie", feature="tag", weight="w")
    ds = load_table(tmp_path / "clicks.parquet", user="u", item="i", features=feats)
    assert ds.implicit and (ds.ratings["rating"] == 1.0).all()
    assert str(ds.ratings["user"].dtype) == "int64"
    # CSV ids are text, Parquet ids integers: the one item space is compared as canonical text
    assert ds.features.values.tolist() == [["7", "x", 0.5], ["7", "y", 1.0], ["8", "x", 2.0]]
    assert sorted(ds.ratings["item"].unique()) == ["7", "8"]


@pytest.mark.parametrize(("content", "kwargs", "pattern"), [
    ("user,item,rating\n1,2,3\n1,3,oops\n", {"rating": "rating"},
     r"t\.csv: column 'rating', row 2 \(line 3\): non-numeric value 'oops'"),
    ("user,item\n1,2\n", {"rating": "score"}, r"t\.csv: missing column 'score' \(mapped to rating"),
    ("user,item\n1,2\n1,2\n", {}, r"t\.csv: row 2 \(line 3\): user '1' has item '2' more than once"),
    ("user,item,ts\n1,2,1.5\n", {"timestamp": "ts"}, r"column 'ts', row 1 .*whole seconds"),
])
def test_load_table_bad_input_is_one_line(tmp_path, content, kwargs, pattern):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(InputError, match=pattern) as err:
        load_table(tmp_path / "t.csv", **kwargs)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------------ download


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture()
def served(tmp_path):
    """An http.server on 127.0.0.1 serving files written to the returned folder."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


TINY_ML100K = {
    "ml-100k/u.data": b"1\t10\t4\t881250949\n2\t10\t5\t881250950\n2\t20\t1\t881250951\n",
    "ml-100k/u.item": "10|Misérables, Les (1995)|01-Jan-1995||http://x|0|1".encode("latin-1") + b"\n"
                      + b"20|Heat (1995)|01-Jan-1995||http://y|1|1\n",
    "ml-100k/u.genre": b"unknown|0\nAction|1\n\n",
}


def test_fetch_verifies_extracts_and_loads(served, tmp_path):
    root, base_url = served
    data = _zip_bytes(TINY_ML100K)
    (root / "ml-100k.zip").write_bytes(data)
    entry = registry.Archive("ml-100k", f"{base_url}/ml-100k.zip", "ml-100k", "u.data",
                             sha256=hashlib.sha256(data).hexdigest(), md5=hashlib.md5(data).hexdigest(),
                             size=len(data))
    folder = registry.fetch_archive(entry, tmp_path / "data", progress=False)
    assert folder == tmp_path / "data" / "ml-100k"
    record = json.loads((folder / ".receval-download.json").read_text())
    assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["bytes"] == len(data)
    ds = load_dataset("ml-100k", tmp_path / "data")
    assert ds.ratings.values.tolist() == [[1, 10, 4.0, 881250949], [2, 10, 5.0, 881250950], [2, 20, 1.0, 881250951]]
    assert ds.items.set_index("item").loc[10, "title"] == "Misérables, Les (1995)"
    assert set(zip(ds.features["item"], ds.features["feature"])) == {(10, "Action"), (20, "unknown"), (20, "Action")}
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["ml-100k"]  # no temp leftovers


def test_fetch_with_files_at_zip_root_like_hetrec(served, tmp_path):
    root, base_url = served
    (root / "h.zip").write_bytes(_zip_bytes({"user_artists.dat": b"userID\tartistID\tweight\n", "readme.txt": b""}))
    entry = registry.Archive("lastfm-2k", f"{base_url}/h.zip", "hetrec2011-lastfm-2k", "user_artists.dat")
    folder = registry.fetch_archive(entry, tmp_path / "data", progress=False)
    assert (folder / "user_artists.dat").is_file() and folder.name == "hetrec2011-lastfm-2k"


@pytest.mark.parametrize("field", ["sha256", "md5", "size"])
def test_fetch_rejects_a_checksum_mismatch_and_keeps_nothing(served, tmp_path, field):
    root, base_url = served
    data = _zip_bytes(TINY_ML100K)
    (root / "ml-100k.zip").write_bytes(data)
    wrong = {"sha256": "0" * 64, "md5": "0" * 32, "size": len(data) + 1}[field]
    entry = registry.Archive("ml-100k", f"{base_url}/ml-100k.zip", "ml-100k", "u.data", **{field: wrong})
    with pytest.raises(InputError, match="mismatch .*discarded"):
        registry.fetch_archive(entry, tmp_path / "data", progress=False)
    assert list((tmp_path / "data").iterdir()) == []


def test_fetch_refuses_members_outside_the_folder(served, tmp_path):
    root, base_url = served
    (root / "evil.zip").write_bytes(_zip_bytes({"../escape.txt": b"x", "u.data": b""}))
    entry = registry.Archive("ml-100k", f"{base_url}/evil.zip", "ml-100k", "u.data")
    with pytest.raises(InputError, match="points outside"):
        registry.fetch_archive(entry, tmp_path / "data", progress=False)
    assert not (tmp_path / "escape.txt").exists()


def test_http_error_is_one_line(served, tmp_path):
    _, base_url = served
    entry = registry.Archive("ml-100k", f"{base_url}/missing.zip", "ml-100k", "u.data")
    with pytest.raises(InputError, match="HTTP 404"):
        registry.fetch_archive(entry, tmp_path, progress=False)


def test_refused_connection_says_no_network_and_how_to_point_at_a_copy(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = registry.Archive("ml-100k", f"http://127.0.0.1:{port}/ml-100k.zip", "ml-100k", "u.data")
    with pytest.raises(InputError) as err:
        registry.fetch_archive(entry, tmp_path, progress=False, timeout=2)
    message = str(err.value)
    assert "no network" in message and "as data_dir" in message and "RECEVAL_DATA" in message
    assert "as --data-dir" in str(err.value.named("--data-dir"))
    assert "\n" not in message


def _grouplens_resolves() -> bool:
    try:
        socket.getaddrinfo("files.grouplens.org", 443)
        return True
    except OSError:
        return False


@pytest.mark.skipif(_grouplens_resolves(), reason="this machine can reach GroupLens; tests never download data")
def test_download_without_network_is_one_line_and_fast(tmp_path):
    start = time.monotonic()
    with pytest.raises(InputError) as err:
        registry.download("ml-100k", tmp_path, progress=False, timeout=3)
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert message.startswith("cannot download ml-100k from https://files.grouplens.org/")
    assert "no network" in message and "as data_dir" in message and "RECEVAL_DATA" in message
    assert "as --data-dir" in str(err.value.named("--data-dir"))
    assert list(tmp_path.iterdir()) == []


@needs_shared
def test_download_does_nothing_when_the_dataset_is_present():
    # No network here: returning at all proves no download was attempted.
    assert registry.download("ml-100k", SHARED, progress=False, timeout=0.1) == SHARED / "ml-100k"


def test_registry_urls_and_checksum_shapes():
    assert set(registry.ARCHIVES) == {"ml-100k", "ml-latest-small", "ml-1m", "ml-10m", "ml-20m", "ml-25m",
                                      "ml-32m", "lastfm-2k"}
    for entry in registry.ARCHIVES.values():
        assert entry.url.startswith("https://files.grouplens.org/datasets/")
        assert entry.sha256 is None or (len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0)
        assert entry.md5 is None or (len(entry.md5) == 32 and int(entry.md5, 16) >= 0)
    assert registry.ARCHIVES["ml-10m"].aliases == ("ml-10M100K",)
    with pytest.raises(ConfigError):
        registry.download("netflix", progress=False)


