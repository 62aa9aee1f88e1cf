"""docs/python-api.md is a notebook: its python blocks run in order, their outputs checked (doctest)."""

from __future__ import annotations

import doctest
import re

from tests.conftest import REPO


def test_python_api_page_runs(datasets_dir, monkeypatch):
    page = (REPO / "docs" / "python-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(blocks) >= 6
    monkeypatch.chdir(REPO)  # the page loads ../shared/datasets, as tests/conftest.py finds them
    assert (REPO.parent / "shared" / "datasets").resolve() == datasets_dir.resolve()
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), {}, "python-api.md", str(REPO / "docs"), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 20 and result.failed == 0, f"{result.failed} example(s) of docs/python-api.md failed"


def _run_python_blocks(page: str, name: str) -> doctest.TestResults:
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    test = doctest.DocTestParser().get_doctest("\n".join(blocks), {}, name, name, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    return runner.summarize(verbose=False)


def test_metrics_page_user_defined_discount_runs():
    result = _run_python_blocks((REPO / "docs" / "metrics.md").read_text(), "metrics.md")
    assert result.attempted >= 8 and result.failed == 0
