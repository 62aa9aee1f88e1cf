"""Image smoke test: really build the three step images with buildah and run one real step in each.

Slow, so it runs only with ``RECEVAL_IMAGE_SMOKE=1`` (``.ci/image-smoke`` installs the Debian packages
and runs it): as root, with ``buildah podman fuse-overlayfs uidmap debootstrap runc``. With the
variable set, a missing tool or a failing debootstrap/buildah/podman FAILS the test, naming the
command and its last output lines; nothing is skipped silently.

No container registry is reachable here, so the base image is a debootstrapped Debian (the same
python3 3.11 as ``python:3.11-slim``), imported with ``podman import``; the build installs from a
wheelhouse made on the host with ``pip --no-index`` — the hermetic production path. Everything slow
is cached under ``$RECEVAL_IMAGE_CACHE`` (default ``/var/tmp/receval-image-cache``):

- ``rootfs-<suite>.tar``: the debootstrapped base, keyed by the Debian suite;
- ``wheels-<hash>/``: the dependency wheels, keyed by pyproject.toml and the host's Python;
- ``containers-<driver>/``: a private containers-storage (overlay, or vfs where the kernel refuses
  overlay mounts) holding the base and the build's layer cache, so a warm run rebuilds only what
  changed (usually the receval wheel's layers).

The containers run like the Kubernetes manifests run them: read-only root filesystem, no network,
all capabilities dropped, the image's own user.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.environ.get("RECEVAL_IMAGE_SMOKE") != "1", reason="set RECEVAL_IMAGE_SMOKE=1")

SUITE = os.environ.get("RECEVAL_IMAGE_SUITE", "bookworm")
CACHE = Path(os.environ.get("RECEVAL_IMAGE_CACHE", "/var/tmp/receval-image-cache"))
BASE = f"localhost/receval-smoke-base:{SUITE}"
REGISTRY = "localhost/receval-smoke"
TAG = "smoke"
STEPS = ("train", "predict", "evaluate")
UID = "10001"  # the manifests' runAsUser
TOOLS = ("buildah", "podman", "debootstrap", "runc")
VERSION = re.search(r'__version__ = "(.+?)"', (REPO / "src" / "receval" / "_version.py").read_text()).group(1)


def image(step: str) -> str:
    return f"{REGISTRY}/receval-{step}:{TAG}"


def _overlay_works() -> bool:
    """Whether the kernel mounts overlayfs here (on the cache's filesystem); vfs is the slow fallback."""
    probe = Path(tempfile.mkdtemp(prefix="overlay-probe-", dir=CACHE))
    try:
        for sub in ("lower", "upper", "work", "merged"):
            (probe / sub).mkdir()
        options = f"lowerdir={probe / 'lower'},upperdir={probe / 'upper'},workdir={probe / 'work'}"
        if subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(probe / "merged")],
                          capture_output=True).returncode != 0:  # fmt: skip
            return False
        subprocess.run(["umount", str(probe / "merged")], check=False)
        return True
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _storage_env() -> dict[str, str]:
    """A private containers-storage for podman and buildah alike.

    overlay when the kernel allows it: vfs copies the whole root filesystem for every layer and every
    container (a 1 GB image: ~20 min of builds and ~30 s per ``podman run`` here, against seconds).
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    driver = os.environ.get("RECEVAL_IMAGE_STORAGE_DRIVER") or ("overlay" if _overlay_works() else "vfs")
    conf = CACHE / f"containers-{driver}" / "storage.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "[storage]\n"
        f'driver = "{driver}"\n'
        f'graphroot = "{conf.parent / "storage"}"\n'
        f'runroot = "/run/receval-image-smoke-{driver}"\n'
    )
    if not conf.exists() or conf.read_text() != text:
        conf.write_text(text)
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf), "BUILDAH_ISOLATION": "chroot"}


ENV = _storage_env() if os.environ.get("RECEVAL_IMAGE_SMOKE") == "1" else dict(os.environ)


def run(*argv: str | Path, timeout: float = 900, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test with the command and the tail of its output."""
    argv_str = [str(a) for a in argv]
    try:
        done = subprocess.run(argv_str, text=True, capture_output=True, env=env or ENV, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"timed out after {timeout:.0f} s: {' '.join(argv_str)}", pytrace=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        pytest.fail(f"exit {done.returncode}: {' '.join(argv_str)}\n{tail}", pytrace=False)
    return done


# Like the manifests' securityContext: readOnlyRootFilesystem (podman then mounts a tmpfs on /tmp,
# the manifests' emptyDir), no capabilities, no network. crun fails here on rlimits and cgroups: runc.
PODMAN_RUN = ("podman", "--runtime", "runc", "run", "--rm", "--read-only", "--network", "none", "--cap-drop", "ALL",
              "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096")  # fmt: skip


def in_image(step: str, *args: str, entrypoint: str | None = None, volume: Path | None = None) -> str:
    """Run IMAGE(step) with its own entrypoint (or ``entrypoint``) and ``args``; return stdout."""
    argv = [*PODMAN_RUN]
    if entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    if volume is not None:
        argv += ["--volume", f"{volume}:/data"]
    return run(*argv, image(step), *args, timeout=300).stdout


# ------------------------------------------------------------------------------------------------
# The slow, cached parts
# ------------------------------------------------------------------------------------------------


def _base_rootfs_tar() -> Path:
    """The debootstrapped rootfs as a tarball, made once per suite (~45 s) and cached."""
    tar = CACHE / f"rootfs-{SUITE}.tar"
    if tar.exists():
        return tar
    rootfs = Path(tempfile.mkdtemp(prefix=f"rootfs-{SUITE}-", dir=CACHE))
    try:
        run("debootstrap", "--variant=minbase", "--include=python3,python3-venv", SUITE, rootfs, timeout=1200)
        partial = tar.with_suffix(".tar.partial")
        run("tar", "--numeric-owner", "-C", rootfs, "-cf", partial, ".")
        partial.rename(tar)  # atomic: a killed run never leaves a half tarball under the final name
    finally:
        # debootstrap mounts /proc and /sys inside; a failed run can leave them mounted
        for mount in ("proc", "sys", "dev/pts", "dev"):
            if os.path.ismount(rootfs / mount):
                subprocess.run(["umount", "-l", str(rootfs / mount)], check=False)
        shutil.rmtree(rootfs, ignore_errors=True)
    return tar


def _dependency_wheels() -> Path:
    """Wheels of receval's dependencies, keyed by pyproject.toml and the host's Python, made once."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + f"{sys.version_info[:2]}".encode()).hexdigest()[:16]
    wheels = CACHE / f"wheels-py{sys.version_info[0]}{sys.version_info[1]}-{key}"
    if wheels.exists():
        return wheels
    partial = Path(tempfile.mkdtemp(prefix="wheels-", dir=CACHE))
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", partial, REPO, timeout=1800)
    for own in partial.glob("receval-*.whl"):
        own.unlink()  # rebuilt from the working tree on every run
    partial.rename(wheels)
    return wheels


def _wheelhouse(tmp: Path) -> Path:
    """The build context's wheelhouse: cached dependency wheels plus a fresh receval wheel."""
    wheelhouse = tmp / "wheelhouse"
    wheelhouse.mkdir()
    for wheel in _dependency_wheels().iterdir():
        shutil.copy2(wheel, wheelhouse / wheel.name)  # copy2: kept mtimes let the layer cache hit
    # Build from a clean copy: an in-tree build/ keeps deleted modules, and a fixed SOURCE_DATE_EPOCH
    # makes an unchanged tree give a byte-identical wheel, hence a layer-cache hit on warm runs.
    source = tmp / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", wheelhouse,
        source, env={**ENV, "SOURCE_DATE_EPOCH": "315532800"})  # fmt: skip
    own = sorted(wheelhouse.glob(f"receval-{VERSION}-*.whl"))
    assert own, f"pip wheel made no receval-{VERSION} wheel in {wheelhouse}"
    for wheel in own:
        os.utime(wheel, (315532800, 315532800))
    return wheelhouse


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, str]:
    """Build (or rebuild from cache) the three step images; return step -> image name."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"RECEVAL_IMAGE_SMOKE=1 but {', '.join(missing)} missing: run .ci/image-smoke", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("RECEVAL_IMAGE_SMOKE=1 needs root (debootstrap, buildah with vfs storage)", pytrace=False)
    if sys.version_info[:2] != (3, 11):
        pytest.fail(f"the host wheelhouse must match the images' Python 3.11, not {sys.version.split()[0]}", pytrace=False)
    CACHE.mkdir(parents=True, exist_ok=True)

    if subprocess.run(["buildah", "inspect", "--type", "image", BASE], capture_output=True, env=ENV).returncode != 0:
        run("podman", "import", _base_rootfs_tar(), BASE)

    tmp = tmp_path_factory.mktemp("image-build")
    wheelhouse = _wheelhouse(tmp)
    run(REPO / "docker" / "build.sh", "--engine", "buildah", "--registry", REGISTRY, "--tag", TAG, "--base-image", BASE,
        "--wheelhouse", wheelhouse, "--", "--pull=never", timeout=1800)  # fmt: skip
    # Untagged images are both the layer cache and the garbage of older builds: a plain prune would
    # empty the cache, so drop only those unused for a week (a weekly rebuild bounds the disk).
    subprocess.run(["podman", "image", "prune", "--force", "--filter", "until=168h"], capture_output=True, env=ENV)
    return {step: image(step) for step in STEPS}


# ------------------------------------------------------------------------------------------------
# The tests
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step", STEPS)
def test_entrypoint_is_the_step_and_answers_help_and_version(images, step):
    usage = in_image(step, "--help")
    assert f"Usage: receval {step}" in usage, usage
    assert "--store" in usage and "--run-id" in usage  # every step is a pipeline step
    assert in_image(step, "--version", entrypoint="receval").strip().endswith(VERSION)


@pytest.mark.parametrize("step", STEPS)
def test_runtime_is_non_root_without_compiler_pip_or_wheelhouse(images, step):
    assert in_image(step, "-u", entrypoint="id").strip() == UID  # runAsNonRoot verifies a numeric uid
    leftovers = in_image(step, "-c", "for f in gcc cc c++ pip pip3; do command -v $f; done; ls -d /wheelhouse 2>/dev/null; true",
                         entrypoint="sh")  # fmt: skip
    assert leftovers.strip() == "", f"the {step} image still holds: {leftovers.split()}"


@pytest.mark.parametrize("step", STEPS)
def test_oci_config_labels_entrypoint_and_user(images, step):
    config = json.loads(run("buildah", "inspect", "--type", "image", images[step]).stdout)["OCIv1"]["config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == f"receval-{step}"
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.base.name"] == BASE  # the ARG reaches the stage's label
    datetime.strptime(labels["org.opencontainers.image.created"], "%Y-%m-%dT%H:%M:%SZ")
    assert labels["org.opencontainers.image.revision"] not in ("", None)
    assert config["Entrypoint"] == ["receval", step]
    assert config["User"] == f"{UID}:{UID}"


def _host_receval(*args: str) -> None:
    run(sys.executable, "-m", "receval", *args, env={**ENV, "PYTHONPATH": str(REPO / "src")}, timeout=300)


def test_pipeline_steps_run_in_their_own_images(images, tmp_path):
    """prepare (host) → train → predict → evaluate, each in its image, on one shared store → aggregate (host)."""
    store = tmp_path / "store"
    config = tmp_path / "run.yaml"
    config.write_text(
        "dataset: {name: synthetic, synthetic: {n_users: 30, n_items: 40, n_features: 5, interactions_per_user: 8}}\n"
        "algorithms: [pop]\nevaluation: {cutoffs: [5]}\nshards: 1\nseed: 7\n"
    )
    _host_receval("prepare", "--store", str(store), "--run-id", "r1", "--config", str(config))
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(store)], check=True)  # the images' user writes there

    common = ("--store", "/data", "--run-id", "r1", "--algorithm", "pop")
    in_image("train", *common, volume=store)
    run_dir = store / "runs" / "r1"
    assert (run_dir / "models" / "pop" / "_SUCCESS").exists()
    in_image("predict", *common, "--shard", "0/1", volume=store)
    assert (run_dir / "recs" / "pop" / "shard-00000-of-00001.parquet.done").exists()
    in_image("evaluate", *common, "--shard", "0/1", volume=store)
    assert (run_dir / "metrics" / "pop" / "shard-00000-of-00001" / "_SUCCESS").exists()

    _host_receval("aggregate", "--store", str(store), "--run-id", "r1")  # the images' outputs are the contract
    summary = json.loads((run_dir / "metrics" / "pop" / "summary.json").read_text())
    assert summary, "aggregate wrote an empty summary"


def test_evaluate_image_on_csv_files(images, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("user,item,rating\nu1,a,5\nu1,b,3\nu2,a,4\nu2,c,2\n")
    (data / "test.csv").write_text("user,item,rating\nu1,c,5\nu1,d,2\nu2,b,4\nu2,d,5\n")
    (data / "recs.csv").write_text("user,item,rank\nu1,c,1\nu1,d,2\nu2,c,1\nu2,d,2\n")
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(data)], check=True)

    in_image("evaluate", "--train", "/data/train.csv", "--test", "/data/test.csv", "--recs", "/data/recs.csv",
             "--cutoff", "2", "--metric", "precision", "--out", "/data/out", "--format", "json", volume=data)  # fmt: skip
    summary = (data / "out" / "summary.json").read_text()
    # Relevant = rating >= 4: u1 {c}, u2 {b, d}. Top 2: u1 (c, d) hits c -> 1/2; u2 (c, d) hits d -> 1/2.
    # Mean precision@2 = (1/2 + 1/2) / 2 = 0.5.
    precision = [r for r in json.loads(summary) if r["metric"] == "precision" and r["cutoff"] == 2]
    assert len(precision) == 1 and precision[0]["value"] == pytest.approx(0.5), summary
