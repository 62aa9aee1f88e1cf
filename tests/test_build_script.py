"""docker/build.sh's wheelhouse is made inside the base image, not with this machine's Python.

The container engine is replaced by a recording stand-in on PATH (an external tool, not our code):
it logs every call, "builds" wheels for `run` into the mounted /out folder, and for `build` lists the
context it was given. The real image build runs in .ci/image-smoke (tests/test_images.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VERSION = re.search(r'__version__ = "(.+?)"', (REPO / "src" / "receval" / "_version.py").read_text()).group(1)
DEFAULT_BASE = re.search(r"^ARG BASE_IMAGE=(.+)$", (REPO / "docker" / "Dockerfile").read_text(), re.M).group(1)

FAKE_ENGINE = r"""#!/usr/bin/env python3
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
entry = {"args": args}
if args[0] == "run":
    for i, a in enumerate(args):
        if a == "-v" and args[i + 1].endswith(":/out"):
            out = Path(args[i + 1].rsplit(":", 1)[0])
            (out / "receval-VERSION-py3-none-any.whl").write_text("made in the base image")
            (out / "numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_text("made in the base image")
elif args[0] == "build":
    context = Path(args[-1])
    entry["context"] = sorted(str(p.relative_to(context)) for p in context.rglob("*.whl"))
    entry["receval_wheel"] = [p.read_text() for p in (context / "receval").glob("*.whl")]
with open(os.environ["FAKE_ENGINE_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\n")
"""


@pytest.fixture()
def engine(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text(FAKE_ENGINE.replace("VERSION", VERSION))
    fake.chmod(0o755)
    log = tmp_path / "engine.log"

    def run(*args: str) -> list[dict]:
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_ENGINE_LOG": str(log)}
        done = subprocess.run(["bash", str(REPO / "docker" / "build.sh"), "--engine", "docker", *args],
                              env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in log.read_text().splitlines()]

    return run


def test_the_wheelhouse_is_built_in_the_base_image(engine):
    calls = engine("--tag", "t1")
    first, *builds = calls
    assert first["args"][0] == "run" and DEFAULT_BASE in first["args"]
    script = first["args"][-1]
    assert "pip wheel" in script and "/out" in script
    assert [b["args"][0] for b in builds] == ["build"] * 3
    for build in builds:
        # the images are built from exactly those wheels, not from wheels of this machine's Python
        assert build["receval_wheel"] == ["made in the base image"]
        assert f"receval/receval-{VERSION}-py3-none-any.whl" in build["context"]
        assert "deps/numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.whl" in build["context"]


def test_a_given_base_image_also_makes_the_wheels(engine):
    (first, *_) = engine("--base-image", "registry.example.com/python:3.11-slim")
    assert first["args"][0] == "run" and "registry.example.com/python:3.11-slim" in first["args"]
    assert DEFAULT_BASE not in first["args"]


def test_a_given_wheelhouse_is_used_as_it_is(engine, tmp_path):
    wheelhouse = tmp_path / "wh"
    wheelhouse.mkdir()
    (wheelhouse / f"receval-{VERSION}-py3-none-any.whl").write_text("given")
    calls = engine("--wheelhouse", str(wheelhouse))
    assert [c["args"][0] for c in calls] == ["build"] * 3 and calls[0]["receval_wheel"] == ["given"]
