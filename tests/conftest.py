"""Shared fixtures. Real parts only: datasets from ../shared, S3 servers started on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RECEVAL_SHARED", REPO.parent / "shared"))
DATASETS = SHARED / "datasets"

sys.path.insert(0, str(REPO))  # so that tests can import tests.* helper modules

pytest_plugins = ["tests.s3_servers"]


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not (DATASETS / "ml-100k" / "u.data").exists():
        pytest.fail(f"the shared datasets are missing at {DATASETS}: they must sit beside the repository")
    return DATASETS
