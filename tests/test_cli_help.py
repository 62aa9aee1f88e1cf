"""--help reads as prose at any terminal width: paragraphs are reflowed, examples keep their lines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from receval.cli import reflow

COMMANDS = [["evaluate"], ["run"], ["results", "gate"], ["prepare"], ["schedule"], ["tune"]]


def _description(args: list[str], columns: int) -> list[str]:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-c", "from receval.cli import main; main()", *args, "--help"], capture_output=True, text=True,
                         env=env, check=True).stdout
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next(i for i, line in enumerate(lines) if line.lstrip().startswith("╭"))
    return [line.rstrip() for line in lines[start:end]]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_no_sentence_is_broken_in_half_at_80_columns(args):
    lines = _description(args, 80)
    for line, following in zip(lines, lines[1:]):
        text, nxt = line.strip(), following.strip()
        # The next line's first word would have fitted: a hard newline in the help text, not the terminal's wrap.
        fits = len(line) + 1 + len(nxt.split()[0]) <= 79 if nxt else False
        if text and fits and nxt[0].islower() and not line.startswith("   "):
            pytest.fail(f"receval {' '.join(args)} --help breaks a sentence: {text!r} / {nxt!r}")


def test_reflow_joins_paragraph_lines_and_keeps_examples_and_bullets():
    text = "Summary line.\n\nFirst half of a\nsentence, and the rest.\n\nExamples\n\n  receval run\n  receval run -k 5\n\n- one\n- two"
    assert reflow(text) == (
        "Summary line.\n\nFirst half of a sentence, and the rest.\n\nExamples\n\n  receval run\n  receval run -k 5"
        "\n\n- one\n- two"
    )
