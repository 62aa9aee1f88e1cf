"""An empty id cell is refused with its file, column and row (data/schema.py).

Without this check pandas reads an empty CSV cell as NaN and the id rule turns it into the string
"nan": an empty user cell silently became a user called "nan", with its own metric values, and no
test fed one. Each id column of each role is tried here, in CSV (empty and blank cells) and in
Parquet (a null), and once through ``receval evaluate`` as a user runs it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from receval.data import schema
from receval.errors import InputError

# One valid file per role as CSV text; the third data row (line 4) is the one blanked below.
GOOD = {
    "train": ["user,item,rating", "1,10,5", "1,11,3", "2,10,4", "3,12,2"],
    "test": ["user,item,rating", "1,12,5", "1,13,2", "2,11,4", "3,10,4"],
    "recs": ["user,item,rank", "1,12,1", "1,13,2", "2,11,1", "3,10,1"],
    "features": ["item,feature,weight", "10,a,1", "11,b,1", "12,a,1", "13,c,1"],
}
READERS = {"train": schema.read_train, "test": schema.read_test, "recs": schema.read_recs,
           "features": schema.read_features}
ID_COLUMNS = [(role, column) for role in GOOD for column in GOOD[role][0].split(",")[:2]]
BLANKED_ROW = 3  # 1-based data row; line 4 of the file


def with_blank(role: str, column: str, blank: str) -> str:
    lines = list(GOOD[role])
    cells = lines[BLANKED_ROW].split(",")
    cells[lines[0].split(",").index(column)] = blank
    lines[BLANKED_ROW] = ",".join(cells)
    return "\n".join(lines) + "\n"


def test_the_good_files_are_read(tmp_path: Path):
    # so that the refusals below are due to the blanked cell alone
    for role, lines in GOOD.items():
        assert len(READERS[role](_write(tmp_path, role, "\n".join(lines) + "\n"))) == 4


def _write(folder: Path, role: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{role}.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("blank", ["", "   "], ids=["empty", "blank"])
@pytest.mark.parametrize(("role", "column"), ID_COLUMNS)
def test_empty_id_cell_in_csv_is_refused_with_its_row(tmp_path: Path, role: str, column: str, blank: str):
    path = _write(tmp_path, role, with_blank(role, column, blank))
    with pytest.raises(InputError) as info:
        READERS[role](path)
    assert str(info.value) == f"{path}: column '{column}', row {BLANKED_ROW} (line {BLANKED_ROW + 1}): empty id"


@pytest.mark.parametrize(("role", "column"), ID_COLUMNS)
def test_null_id_in_parquet_is_refused_with_its_row(tmp_path: Path, role: str, column: str):
    header, *rows = GOOD[role]
    frame = pd.DataFrame([r.split(",") for r in rows], columns=header.split(","))
    frame[column] = frame[column].astype(object)
    frame.loc[BLANKED_ROW - 1, column] = None
    path = tmp_path / f"{role}.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(InputError) as info:
        READERS[role](path)
    assert str(info.value) == f"{path}: column '{column}', row {BLANKED_ROW}: empty id"


def test_receval_evaluate_refuses_an_empty_user_cell_with_exit_2(tmp_path: Path):
    paths = {role: _write(tmp_path, role, "\n".join(lines) + "\n") for role, lines in GOOD.items()}
    paths["test"] = _write(tmp_path / "bad", "test", with_blank("test", "user", ""))
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "receval", "evaluate", "--train", str(paths["train"]), "--test", str(paths["test"]),
         "--recs", str(paths["recs"]), "--features", str(paths["features"]), "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"receval: error: {paths['test']}: column 'user', row {BLANKED_ROW} (line {BLANKED_ROW + 1}): empty id"
    ]
    assert not (out / "summary.json").exists()
