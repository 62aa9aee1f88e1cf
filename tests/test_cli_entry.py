"""The ``receval`` entry point: a process that ends itself, and a command line that sees every command.

``receval.cli.main()`` owns its process and ends it without the interpreter's teardown; what it
printed must still reach a pipe, and its exit status must be the command's. ``main(argv)`` runs one
command and must leave the app whole for the next call.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from receval._version import __version__
from receval.cli import app, main

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_a_process_that_ends_itself_flushes_what_it_printed_and_exits_with_the_commands_status(tmp_path):
    # stdout is a pipe, block-buffered: the line printed before the command is still in the buffer
    # when the command fails (its error goes to stderr)
    code = ("import sys; from receval.cli import main; print('printed before'); "
            f"sys.argv[1:] = ['evaluate', '--store', {str(tmp_path)!r}, '--run-id', 'nope', '--algorithm', 'pop', "
            "'--shard', '0/1']; main()")
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}, "PYTHONPATH": SRC}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert done.stdout == "printed before\n"
    assert done.stderr.startswith("receval: error: ") and "no such run" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_receval_version():
    done = subprocess.run([sys.executable, "-m", "receval", "--version"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": SRC})
    assert (done.returncode, done.stdout) == (0, f"receval {__version__}\n")


def _names() -> list[str]:
    return sorted([c.name or "" for c in app.registered_commands] + [g.name or "" for g in app.registered_groups])


def test_running_one_command_leaves_every_command_registered(capsys):
    before = _names()
    assert {"evaluate", "run", "results"} <= set(before)
    with pytest.raises(SystemExit) as stop:
        main(["evaluate", "--help"])
    assert stop.value.code == 0
    assert "--shard" in capsys.readouterr().out
    assert _names() == before
    with pytest.raises(SystemExit) as stop:  # a group runs with its own subcommands
        main(["results", "--help"])
    assert stop.value.code == 0 and "compare" in capsys.readouterr().out
    assert _names() == before


def test_an_unknown_command_is_refused_among_every_command(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["evaluat"])
    assert stop.value.code == 2
    assert "No such command" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # the listing shows them all
        main(["--help"])
    listing = capsys.readouterr().out
    assert stop.value.code == 0 and all(name in listing for name in ("evaluate", "run", "results", "predict"))
