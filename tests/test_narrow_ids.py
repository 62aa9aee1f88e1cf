"""Integer ids are read as int32 when they fit (ranks as int16), and nothing downstream depends on it.

The readers keep ids in the narrowest integer dtype that holds them, to bound the memory of the
``receval evaluate`` process (50M list rows: 1144 -> 477 MiB). A user's shard, the data digest
(fingerprints of partial states), the per-user values and the summary must be those of the same ids
read as int64: the dtype is a storage choice, never part of an id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from receval.data import codes, schema
from receval.metrics.engine import EvaluationConfig, evaluate
from receval.metrics.sharding import Shard, shard_of, user_hashes
from receval.metrics.statistics import GlobalStatistics, frame_digest


def _frames(seed: int = 5, users: int = 120, items: int = 60, k: int = 8) -> dict[str, pd.DataFrame]:
    """Small inputs with int64 ids: train, test, rank-ordered lists, features."""
    rng = np.random.default_rng(seed)

    def interactions(per_user: int) -> pd.DataFrame:
        key = np.unique(np.repeat(np.arange(users), per_user) * items + rng.integers(0, items, users * per_user))
        return pd.DataFrame({"user": key // items, "item": key % items,
                             "rating": rng.integers(1, 6, len(key)).astype(np.float64)})

    lists = np.stack([rng.permutation(items)[:k] for _ in range(users - 10)])  # 10 test users without a list
    recs = pd.DataFrame({"user": np.repeat(np.arange(users - 10), k), "item": lists.ravel(),
                         "rank": np.tile(np.arange(1, k + 1), users - 10)})
    feature_rows = np.unique(rng.integers(0, items, 150) * 7 + rng.integers(0, 7, 150))
    features = pd.DataFrame({"item": feature_rows // 7, "feature": feature_rows % 7, "weight": 1.0})
    return {"train": interactions(6), "test": interactions(4), "recs": recs, "features": features}


def _read(frames: dict[str, pd.DataFrame], folder: Path) -> dict[str, pd.DataFrame]:
    folder.mkdir()
    read = {}
    for role, frame in frames.items():
        frame.to_parquet(folder / f"{role}.parquet")
        read[role] = getattr(schema, f"read_{role}")(folder / f"{role}.parquet")
    return read


def _shifted(frames: dict[str, pd.DataFrame], by: int) -> dict[str, pd.DataFrame]:
    out = {}
    for role, frame in frames.items():
        out[role] = frame.assign(**{c: frame[c] + by for c in ("user", "item") if c in frame.columns})
    return out


def test_ids_that_fit_are_read_as_int32_and_ranks_as_int16(tmp_path: Path):
    read = _read(_frames(), tmp_path / "in")
    for role in ("train", "test", "recs"):
        assert (read[role]["user"].dtype, read[role]["item"].dtype) == (np.int32, np.int32), role
    assert read["recs"]["rank"].dtype == np.int16 and read["features"]["item"].dtype == np.int32
    # ids past int32 keep int64, with their values
    big = _read(_shifted(_frames(), 2**40), tmp_path / "big")
    assert big["train"]["user"].dtype == np.int64 and big["train"]["user"].min() == 2**40
    # an integral float column is ids too, narrowed by the same rule
    floats = pd.DataFrame({"user": [3.0, 2**31 - 1.0], "item": [1.0, 2.0]})
    floats.to_parquet(tmp_path / "floats.parquet")
    assert schema.read_train(tmp_path / "floats.parquet")["user"].tolist() == [3, 2**31 - 1]
    assert schema.read_train(tmp_path / "floats.parquet")["user"].dtype == np.int32


def test_a_users_shard_and_hash_do_not_depend_on_the_integer_dtype():
    ids = np.concatenate([np.arange(-300, 3000, 7), [2**31 - 1, -(2**31)]])
    hashes = user_hashes(ids.astype(np.int64))
    for dtype in (np.int32, np.int64):
        assert (user_hashes(pd.Series(ids.astype(dtype))) == hashes).all()
        assert shard_of(ids.astype(dtype), 16).tolist() == shard_of(ids.astype(np.int64), 16).tolist()
        assert Shard(3, 16).mask(ids.astype(dtype)).tolist() == Shard(3, 16).mask(ids).tolist()
    small = np.arange(-100, 100)
    assert shard_of(small.astype(np.int16), 5).tolist() == shard_of(small.astype(str), 5).tolist()
    assert len(set(shard_of(ids, 16).tolist())) == 16  # a real partition: the equalities are not trivial


def test_int32_and_int64_reads_of_the_same_ids_give_the_same_values_shards_and_fingerprint(tmp_path: Path):
    frames = _frames()
    narrow = _read(frames, tmp_path / "narrow")
    wide = {role: f.astype({c: np.int64 for c in ("user", "item", "rank") if c in f.columns})
            for role, f in narrow.items()}
    assert wide["recs"]["user"].dtype == np.int64  # the comparison is between two dtypes
    config = EvaluationConfig(cutoffs=(5, 8))
    a = evaluate(narrow["train"], narrow["test"], narrow["recs"], narrow["features"], config)
    b = evaluate(wide["train"], wide["test"], wide["recs"], wide["features"], config)
    assert a.fingerprint == b.fingerprint
    pd.testing.assert_frame_equal(a.per_user, b.per_user, check_dtype=False, check_exact=True)
    assert a.summary() == b.summary()
    assert GlobalStatistics.of(narrow["train"], narrow["test"]).digest == GlobalStatistics.of(wide["train"], wide["test"]).digest
    # one shard holds the same users whatever the dtype, and mixed widths (int32 lists, int64 test) meet by value
    shard = Shard(1, 3)
    sa = evaluate(narrow["train"], narrow["test"], narrow["recs"], narrow["features"], config, shard=shard)
    sb = evaluate(wide["train"], wide["test"], narrow["recs"], wide["features"], config, shard=shard)
    assert 0 < len(sa.per_user) < len(a.per_user)
    pd.testing.assert_frame_equal(sa.per_user, sb.per_user, check_dtype=False, check_exact=True)
    assert sa.fingerprint == sb.fingerprint


def test_ids_past_int32_and_text_ids_give_the_values_of_small_integer_ids(tmp_path: Path):
    frames = _frames(seed=9)
    config = EvaluationConfig(cutoffs=(8,))
    small = evaluate(*_read(frames, tmp_path / "small").values(), config)
    # + 2^40 keeps the order of ids (ties by item id) and needs int64
    big = evaluate(*_read(_shifted(frames, 2**40), tmp_path / "big").values(), config)
    pd.testing.assert_frame_equal(small.per_user.drop(columns="user"), big.per_user.drop(columns="user"),
                                  check_exact=True)
    assert (big.per_user["user"].to_numpy() - 2**40 == small.per_user["user"].to_numpy()).all()
    # text ids (CSV) of the same width keep the same order ("u" + zero-padded), and so the same values
    text_folder = tmp_path / "text"
    text_folder.mkdir()
    text = {}
    for role, frame in frames.items():
        frame = frame.assign(**{c: frame[c].map(lambda v, c=c: f"{c[0]}{v:05d}") for c in ("user", "item")
                                if c in frame.columns})
        frame.to_csv(text_folder / f"{role}.csv", index=False)
        text[role] = getattr(schema, f"read_{role}")(text_folder / f"{role}.csv")
    assert not pd.api.types.is_integer_dtype(text["recs"]["user"].dtype)
    as_text = evaluate(text["train"], text["test"], text["recs"], text["features"], config)
    pd.testing.assert_frame_equal(small.per_user.drop(columns="user"), as_text.per_user.drop(columns="user"),
                                  check_exact=True)


@pytest.mark.parametrize("longest", [1, 32_767, 32_768])
def test_ranks_take_the_narrowest_dtype_of_the_longest_list(longest: int):
    run_lengths = np.array([3, longest, 1, 2])
    user_codes = np.repeat(np.arange(len(run_lengths)), run_lengths)
    positions = codes.group_positions(user_codes)
    assert positions.dtype == (np.int16 if longest <= 32_767 else np.int32)
    expected = pd.Series(user_codes).groupby(user_codes).cumcount().to_numpy() + 1
    assert (positions.astype(np.int64) == expected).all()


def test_a_digest_of_many_pieces_is_the_sum_of_its_parts():
    # more rows than one piece of frame_digest (2^22), so its piecewise walk is what is compared
    n = (1 << 22) + 1001
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"user": rng.integers(0, 10**6, n).astype(np.int32),
                          "item": rng.integers(0, 5000, n).astype(np.int32), "rating": rng.random(n)})
    rows, total = frame_digest(frame)
    cuts = [0, 1000, 2_000_000, n]
    parts = [frame_digest(frame.iloc[a:b]) for a, b in zip(cuts, cuts[1:])]
    assert rows == n and sum(p[1] for p in parts) % 2**64 == total
    assert frame_digest(frame.astype({"user": np.int64, "item": np.int64})) == (rows, total)


def _whole_table(path: Path, columns: list[str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read(columns=columns, use_pandas_metadata=True).to_pandas(split_blocks=True,
                                                                                           self_destruct=True)


@pytest.mark.parametrize("case", ["int32", "int64 uint16 float32", "spark (no pandas metadata)", "nullable Int64",
                                  "a missing id", "an index", "text"])
def test_parquet_read_by_row_group_is_the_frame_of_the_whole_table(tmp_path: Path, case: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from receval.data.schema import _plain_numbers_by_row_group

    n = 5000
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"user": rng.integers(0, 900, n).astype(np.int32), "item": rng.integers(0, 70, n),
                          "rating": rng.random(n)})
    plain = True
    if case == "int64 uint16 float32":
        frame = frame.astype({"user": np.int64, "item": np.uint16, "rating": np.float32})
    elif case == "nullable Int64":
        frame["user"], plain = frame["user"].astype("Int64"), False
    elif case == "a missing id":
        frame["item"], plain = frame["item"].astype(float).where(frame.index != 4321), False
    elif case == "an index":
        frame, plain = frame.set_axis(pd.RangeIndex(10, 10 + n)), False
    elif case == "text":
        frame["user"], plain = "u" + frame["user"].astype(str), False
    path = tmp_path / "part.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=None)
    if case.startswith("spark"):
        table = table.replace_schema_metadata(None)
    pq.write_table(table, path, row_group_size=777)  # several row groups, the last one short
    columns = ["user", "item", "rating"]
    got = _plain_numbers_by_row_group(pq.ParquetFile(path), columns)
    assert (got is not None) == plain
    if got is not None:
        pd.testing.assert_frame_equal(got, _whole_table(path, columns), check_exact=True)
    # and the readers give the same frame either way (a missing id is refused, naming the row)
    if case == "a missing id":
        with pytest.raises(schema.InputError, match="row 4322: empty id"):
            schema.read_train(path)
    else:
        read = schema.read_train(path)
        assert len(read) == len(frame.drop_duplicates(["user", "item"]))
