"""Per-pod start-up: the step commands import only what their step needs.

Every predict and evaluate pod pays its imports once; with 16 or 64 pods that fixed cost is a
visible share of the summed CPU (benchmarks/README.md). The cluster client (kubernetes), the plots
(matplotlib) and the S3 client (boto3) belong to other commands or stores, so a step on a local
store must not load them. Checked in a real ``receval`` process, by the modules it holds at exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from receval.metrics.sharding import Shard
from receval.pipeline import layout, steps
from tests.test_pipeline import prepared

NOT_FOR_A_LOCAL_STEP = ("kubernetes", "matplotlib", "boto3", "botocore")
# a step prints its log lines plainly: the terminal's tables and bars (rich) are other commands'
NOT_FOR_A_STEP_RUN = ("rich",)
PREPARE_ONLY = ("receval.data.loaders", "receval.data.split", "receval.data.synthetic", "receval.pipeline.inputs")
EVALUATE_ONLY = ("receval.metrics.engine", "receval.metrics.batch", "receval.metrics.registry")

# run the CLI as ``python -m receval`` does, then print the modules it imported and the collector's
# state; receval ends its own process (without the interpreter's teardown), so they are printed by an
# atexit handler, which runs
_PROBE = """
import atexit, gc, json, runpy, sys
sys.argv = ["receval", *json.loads(sys.argv[1])]
def state():
    modules = sorted(sys.modules)  # before the probe's own threadpoolctl
    blas = [p["num_threads"] for p in __import__("threadpoolctl").threadpool_info() if p["user_api"] == "blas"]
    return {"modules": modules, "gc_enabled": gc.isenabled(), "frozen": gc.get_freeze_count(),
            "scanned": len(gc.get_objects()), "blas_threads": blas}
atexit.register(lambda: print(json.dumps(state())))
runpy.run_module("receval", run_name="__main__", alter_sys=True)
"""


def imported_by(*argv: str) -> set[str]:
    """The top-level packages a ``receval ARGV`` process imported (see :func:`modules_of`)."""
    return {name.split(".")[0] for name in modules_of(*argv)}


def modules_of(*argv: str) -> set[str]:
    return set(exit_state_of(*argv)["modules"])


def exit_state_of(*argv: str, env: dict[str, str] | None = None) -> dict:
    """What a ``receval ARGV`` process held when it ended: its modules, the collector's state and
    the thread counts of its BLAS libraries."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(list(argv))], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("command", ["evaluate", "predict", "prepare", "train", "aggregate"])
def test_step_help_imports_no_cluster_plot_or_s3_client(command):
    modules = imported_by(command, "--help")
    assert "receval" in modules and "typer" in modules  # the probe did run the CLI
    assert not modules & set(NOT_FOR_A_LOCAL_STEP), sorted(modules & set(NOT_FOR_A_LOCAL_STEP))


def test_predict_and_evaluate_steps_on_a_local_store_import_no_cluster_plot_or_s3_client(tmp_path):
    from receval.storage.local import LocalStore

    store = LocalStore(tmp_path)
    prepared(store, "r", algorithms=["pop"], shards=2)
    steps.train_step(store, "r", "pop")
    common = ["--store", str(tmp_path), "--run-id", "r", "--algorithm", "pop", "--shard", "1/2"]
    predict = modules_of("predict", *common)
    assert store.exists(layout.recs_done_key("r", "pop", Shard(1, 2)))  # the step did its work
    evaluate = modules_of("evaluate", *common)
    assert store.is_complete(layout.metrics_shard_prefix("r", "pop", Shard(1, 2)))
    for modules in (predict, evaluate):
        tops = {name.split(".")[0] for name in modules}
        assert {"numpy", "pandas"} <= tops
        assert not tops & set(NOT_FOR_A_LOCAL_STEP + NOT_FOR_A_STEP_RUN), \
            sorted(tops & set(NOT_FOR_A_LOCAL_STEP + NOT_FOR_A_STEP_RUN))
        # a pod reads a prepared run folder: no dataset loader, splitter or generator
        assert not modules & set(PREPARE_ONLY), sorted(modules & set(PREPARE_ONLY))
    # predict scores with the model: the metrics engine is the evaluate step's
    assert not predict & set(EVALUATE_ONLY), sorted(predict & set(EVALUATE_ONLY))
    assert set(EVALUATE_ONLY) <= evaluate  # the probe does see what the evaluate step imports


def test_an_evaluate_step_scans_none_of_its_libraries_but_still_collects_and_starts_one_blas_thread(tmp_path):
    # the start-up's objects (numpy, pandas, SciPy, pyarrow, the configuration models) are frozen, so
    # no collection scans them again; the collector is on for what the step allocates
    from receval.storage.local import LocalStore

    store = LocalStore(tmp_path)
    prepared(store, "r", algorithms=["pop"], shards=2)
    steps.train_step(store, "r", "pop")
    steps.predict_step(store, "r", "pop", Shard(0, 2))
    # two BLAS threads asked for: the engine would hold them to one anyway, so none is started
    state = exit_state_of("evaluate", "--store", str(tmp_path), "--run-id", "r", "--algorithm", "pop", "--shard", "0/2",
                          env={"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"})
    assert store.is_complete(layout.metrics_shard_prefix("r", "pop", Shard(0, 2)))  # the step did its work
    assert state["blas_threads"] and set(state["blas_threads"]) == {1}, state["blas_threads"]
    # a pool started with one thread has nothing to limit: the engine does not scan the libraries for it
    assert "threadpoolctl" not in state["modules"]
    assert state["gc_enabled"]
    assert state["frozen"] > state["scanned"], (state["frozen"], state["scanned"])
    # numpy's Fortran wrapper generator and test helpers, which SciPy's import touches, were not run
    assert not set(state["modules"]) & {"numpy.f2py.crackfortran", "numpy.testing._private.utils"}


def test_a_predict_step_scans_none_of_its_libraries_but_still_collects(tmp_path):
    from receval.storage.local import LocalStore

    store = LocalStore(tmp_path)
    prepared(store, "r", algorithms=["pop"], shards=2)
    steps.train_step(store, "r", "pop")
    state = exit_state_of("predict", "--store", str(tmp_path), "--run-id", "r", "--algorithm", "pop", "--shard", "1/2")
    assert store.exists(layout.recs_done_key("r", "pop", Shard(1, 2)))  # the step did its work
    assert state["gc_enabled"]
    assert state["frozen"] > state["scanned"], (state["frozen"], state["scanned"])


# a fresh interpreter: whether numpy.testing was imported before is the point
_FIRST_USE = """
import gc, sys
from receval.cli._startup import NUMPY_ON_FIRST_USE, heavy_imports
gc.disable()
with heavy_imports():
    import scipy.sparse
assert not gc.isenabled()  # the collector is left as it was found
gc.enable()
with heavy_imports():
    pass
assert gc.isenabled()
print(sorted(NUMPY_ON_FIRST_USE), "numpy.f2py.crackfortran" in sys.modules, "numpy.testing._private.utils" in sys.modules)
from numpy.testing import assert_array_equal
import numpy as np
assert_array_equal(scipy.sparse.csr_matrix(np.eye(2)).toarray(), np.eye(2))
import numpy.f2py
print(numpy.f2py.get_include() == np.f2py.get_include(), "numpy.f2py.crackfortran" in sys.modules)
"""


def test_the_numpy_modules_left_for_first_use_load_when_used():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-c", _FIRST_USE], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['numpy.f2py', 'numpy.testing'] False False", "True True"]


def test_start_with_one_thread_leaves_a_process_whose_numpy_is_loaded_as_it_is(monkeypatch):
    from receval.metrics import blas

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert not blas.start_with_one_thread()  # numpy is loaded here: the setting could not matter, so it is not changed
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
    assert not blas._started_with_one_thread


def test_the_engine_holds_a_pool_it_did_not_start_to_one_thread_and_gives_it_back():
    # a library caller's process (numpy loaded first, its BLAS pool sized as it was): limited inside only
    from threadpoolctl import threadpool_info, threadpool_limits

    from receval.metrics import blas

    def threads() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):
        with blas.one_thread():
            assert threads() == {1}
        assert threads() == {2}
