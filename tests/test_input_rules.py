"""The input rules of data/schema.py that no test pinned down (found by benchmarks/mutation.py).

* a duplicate (user, item) in test is an error even when the two ratings differ (the CLI test
  repeated an identical row, so a check over (user, item, rating) passed);
* duplicate train rows are merged keeping the last rating (decision 9.4);
* lists given only by score are ranked by score descending, then item id ascending (decision 9.5);
* numeric ids too long for int64 stay distinct (they used to collapse into one integer): CSV ids are text.

Expected frames and messages are written out by hand from those rules.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from receval.data import schema
from receval.errors import InputError


def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_duplicate_test_pair_with_another_rating_is_refused_with_its_row(tmp_path: Path):
    path = write(tmp_path, "test.csv", "user,item,rating", "1,10,5", "2,10,4", "1,10,2")
    with pytest.raises(InputError) as info:
        schema.read_test(path)
    assert str(info.value) == (
        f"{path}: columns 'user, item', row 3 (line 4): duplicate test row for user '1', item '10' "
        "(which rating would count?)"
    )


def test_duplicate_train_pairs_are_merged_keeping_the_last_rating(tmp_path: Path):
    path = write(tmp_path, "train.csv", "user,item,rating", "1,10,5", "2,10,4", "1,10,2", "1,11,3")
    train = schema.read_train(path)
    # CSV ids are labels, read as text (docs/refusals.md)
    expected = pd.DataFrame({"user": ["2", "1", "1"], "item": ["10", "10", "11"], "rating": [4.0, 2.0, 3.0]},
                            dtype=object).astype({"rating": float})
    pd.testing.assert_frame_equal(train.sort_values(["user", "item"]).reset_index(drop=True),
                                  expected.sort_values(["user", "item"]).reset_index(drop=True))


def test_lists_by_score_break_ties_by_item_id_ascending(tmp_path: Path):
    # user 1: scores 0.5 (items 30, 12, 7 tied), 0.9 (item 40) -> 40, then "12", "30", "7": CSV ids are
    # text, so the ascending order of tied ids is the order of their text
    # user "b" has string ids: 0.2 tie between "y" and "x" -> "x" first, after "z" at 0.3.
    ints = write(tmp_path, "recs.csv", "user,item,score", "1,30,0.5", "1,12,0.5", "1,40,0.9", "1,7,0.5")
    recs = schema.read_recs(ints)
    assert recs.values.tolist() == [["1", "40", 1], ["1", "12", 2], ["1", "30", 3], ["1", "7", 4]]
    ranked = schema.rank_lists(pd.DataFrame({"user": [1] * 4, "item": [30, 12, 40, 7], "score": [0.5, 0.5, 0.9, 0.5]}),
                               by_rank=False)  # integer ids (Parquet): numeric order
    assert ranked.values.tolist() == [[1, 40, 1], [1, 7, 2], [1, 12, 3], [1, 30, 4]]
    strings = write(tmp_path, "recs-str.csv", "user,item,score", "b,y,0.2", "b,z,0.3", "b,x,0.2")
    assert schema.read_recs(strings).values.tolist() == [["b", "z", 1], ["b", "x", 2], ["b", "y", 3]]


def test_numeric_ids_beyond_int64_stay_distinct(tmp_path: Path):
    # 20-digit ids (hashed or snowflake-style ids) do not fit int64: they were all cast to
    # -9223372036854775808, silently merging three users into one. They stay text instead.
    users = ["123456789012345678901", "123456789012345678902", "99999999999999999999"]
    path = write(tmp_path, "test.csv", "user,item,rating", *(f"{u},{k},5" for k, u in enumerate(users, 10)))
    test = schema.read_test(path)
    assert test["user"].tolist() == users
    assert test["item"].tolist() == ["10", "11", "12"]  # CSV ids are text, long or short
