"""Frames as bytes: the one Parquet encoding of every object receval writes (run folders, partial
states, models). Pure: no storage, no paths, so the metrics' serialisable states can use it too."""

from __future__ import annotations

import io

import pandas as pd


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as a Parquet file (no index column)."""
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()
