"""``receval run``: the whole pipeline on one machine, with the very steps the cluster runs.

prepare → train (algorithms in parallel) → predict (algorithm × shard) → evaluate (algorithm ×
shard) → aggregate. Tasks run in a :class:`concurrent.futures.ProcessPoolExecutor`; a task is
submitted as soon as the one it depends on finishes (the predict shards of an algorithm start when
that algorithm is trained, not when every algorithm is), so the cores stay busy. Each task is one
call of a :mod:`receval.pipeline.steps` function on the run folder — nothing is passed between
tasks but the store — so a local run and an Argo workflow produce the same folder, and a second
``receval run --run-id ID`` resumes an interrupted run, redoing only unfinished steps.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from receval.config import RunConfig
from receval.errors import ConfigError
from receval.metrics.blas import BLAS_THREAD_VARIABLES
from receval.metrics.sharding import Shard
from receval.pipeline.ownership import RunOwnedError


@dataclass(frozen=True)
class RunResult:
    """What ``run_local`` returns: where the run is and its summary records."""

    run_id: str
    store_uri: str
    records: list[dict[str, Any]] = field(repr=False)
    seconds: float


# ------------------------------------------------------------------------------------------------ tasks

ProgressCallback = Callable[[str, int, int], None]
"""``progress(step, done, total)``: called with ``done = 0`` for each of "train", "predict" and
"evaluate" when the steps start, then after each finished task of that step."""


def _task(kind: str, uri: str, options: dict[str, Any], run_id: str, algorithm: str, shard: tuple[int, int] | None):
    """Run one step in a worker; module-level so that it pickles by reference.

    Each task opens its store: a step on a shard takes far longer than opening a store (an S3
    client), and nothing opened outlives its task in a process-wide cache.
    """
    from receval.pipeline import steps
    from receval.storage import open_store

    store = open_store(uri, **options)
    if kind == "train":
        return steps.train_step(store, run_id, algorithm)
    part = Shard(*shard)  # type: ignore[misc]
    if kind == "predict":
        return steps.predict_step(store, run_id, algorithm, part)
    return steps.evaluate_step(store, run_id, algorithm, part)


def _init_worker() -> None:
    # Several workers on few cores: one BLAS thread each, or they oversubscribe the CPU. Set before
    # numpy is imported in the worker (the forkserver starts clean).
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


class _InlineExecutor(Executor):
    """Runs each task at submit time: ``workers=1`` needs no process pool (nor its start-up)."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future


# ------------------------------------------------------------------------------------------------ runner


def run_local(
    config: RunConfig | None,
    store_uri: str,
    run_id: str | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    *,
    store_options: dict[str, Any] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the whole pipeline for ``config`` into ``store_uri`` and return the run's summary.

    Parameters
    ----------
    config : the run configuration (None: every default — synthetic data, seven algorithms).
    store_uri : a local folder or ``s3://bucket/prefix``; the run lives under ``runs/<run-id>/``.
    run_id : default ``YYYYMMDD-HHMMSS-<dataset>`` (UTC). An existing run id resumes that run; its
        configuration must be the same.
    workers : processes (default ``os.cpu_count()``); 1 runs every step in this process.
    progress : called as tasks finish (:data:`ProgressCallback`); the CLI passes its progress bars.
        Steps never print; what progress looks like is the caller's.
    store_options : passed to :func:`receval.storage.open_store` (``endpoint_url``...).
    on_stage : called with "prepare", "steps", "aggregate" as the run enters each stage.
    """
    from receval.pipeline import steps
    from receval.storage import open_store

    started = time.perf_counter()
    config = config or RunConfig()
    options = dict(store_options or {})
    store = open_store(store_uri, **options)
    run_id = run_id or steps.default_run_id(config.dataset.name)
    workers = int(workers or os.cpu_count() or 1)
    if workers < 1:
        raise ConfigError(f"--workers {workers}: must be >= 1")

    from receval.pipeline import layout

    # reach the store once before anything starts: wrong credentials or a missing bucket are one
    # line of their own, not a failed run (there may be no run to mark failed)
    store.exists(layout.run_json_key(run_id))
    stage = on_stage or (lambda name: None)
    labels = config.labels
    shards = [Shard(i, config.shards) for i in range(config.shards)]
    try:
        with _terminate_on_sigterm():
            stage("prepare")
            steps.prepare_step(store, run_id, config)  # refuses a run id owned by another configuration
            stage("steps")
            totals = {"train": len(labels), "predict": len(labels) * len(shards),
                      "evaluate": len(labels) * len(shards)}
            report = progress or (lambda step, done, total: None)
            for step, total in totals.items():
                report(step, 0, total)
            with _executor(workers, sum(totals.values())) as pool:
                _schedule(pool, _Counter(report, totals), store_uri, options, run_id, labels, shards)
            stage("aggregate")
            records = steps.aggregate_step(store, run_id, algorithms=labels, shards=config.shards)
    except RunOwnedError:
        raise  # the run is someone else's: not ours to mark failed
    except Terminated:
        _mark_failed(store, run_id, "terminated")
        raise
    except KeyboardInterrupt:
        _mark_failed(store, run_id, "interrupted")
        raise
    except Exception as exc:
        _mark_failed(store, run_id, f"{type(exc).__name__}: {exc}")
        raise
    return RunResult(run_id, store.uri, records, time.perf_counter() - started)


class Terminated(SystemExit):
    """SIGTERM reached ``receval run`` (pod eviction, preemption, ``kubectl delete``): exit 143.

    A :class:`SystemExit`, so that no ``except Exception`` on the way swallows it, and the exit
    status is 128 + SIGTERM as a shell reports it.
    """

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


_SIGTERM_STATE = {"deferring": False, "pending": False}


@contextlib.contextmanager
def _terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` in this (main) thread, as Python does SIGINT."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if _SIGTERM_STATE["deferring"]:
            _SIGTERM_STATE["pending"] = True
            return
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        # after the run (printing its table), SIGTERM still ends the process cleanly with 143 rather
        # than by the signal's default action; a handler someone else installed is given back
        signal.signal(signal.SIGTERM, _terminate if previous in (signal.SIG_DFL, None) else previous)
        _SIGTERM_STATE.update(deferring=False, pending=False)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_deferred() -> Iterator[None]:
    """Hold a SIGTERM that arrives while the block runs; it ends the run right after the block.

    Starting a pool worker is not interruptible: a worker left half-started by the forkserver
    would die with a traceback about the parent's vanished queues.
    """
    _SIGTERM_STATE["deferring"] = True
    try:
        yield
    finally:
        _SIGTERM_STATE["deferring"] = False
    if _SIGTERM_STATE["pending"]:
        _SIGTERM_STATE["pending"] = False
        raise Terminated()


def _mark_failed(store: Any, run_id: str, reason: str) -> None:
    """Record the failure; if the store fails that too, the error being raised stays the one reported."""
    from receval.pipeline import steps

    try:
        steps.mark_failed_step(store, run_id, reason)
    except Exception as exc:  # noqa: BLE001 - secondary: the original error is re-raised by the caller
        # the consequence of the first error, mostly (the store is gone): not a second error line
        logging.getLogger("receval.pipeline").debug(
            "run %s: could not record the failure in run.json either: %s", run_id, exc)


def _executor(workers: int, tasks: int) -> Executor:
    if workers == 1:
        return _InlineExecutor()
    import multiprocessing

    # forkserver, not fork: forking a process that runs threads (progress bars, BLAS pools) can
    # deadlock the child; workers also start without the parent's BLAS threads.
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(max_workers=min(workers, tasks), mp_context=context, initializer=_init_worker)


class _Counter:
    """Counts finished tasks per step for the progress callback."""

    def __init__(self, report: ProgressCallback, totals: dict[str, int]):
        self._report, self._totals = report, totals
        self._done = dict.fromkeys(totals, 0)

    def advance(self, step: str) -> None:
        self._done[step] += 1
        self._report(step, self._done[step], self._totals[step])


def _schedule(pool: Executor, finished_tasks: _Counter, uri: str, options: dict[str, Any], run_id: str, labels: list[str],
              shards: list[Shard]) -> None:
    """Submit train tasks, then each algorithm's predict shards when it is trained, then each
    shard's evaluation when its predictions exist; the first failure cancels what is queued."""
    pending: dict[Future, tuple[str, str, Shard | None]] = {}

    def submit(kind: str, label: str, shard: Shard | None) -> None:
        coords = None if shard is None else (shard.index, shard.count)
        with _sigterm_deferred():
            future = pool.submit(_task, kind, uri, options, run_id, label, coords)
        pending[future] = (kind, label, shard)

    try:
        for label in labels:
            submit("train", label, None)
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in finished:
                kind, label, shard = pending.pop(future)
                future.result()  # re-raises the step's error here
                finished_tasks.advance(kind)
                if kind == "train":
                    for part in shards:
                        submit("predict", label, part)
                elif kind == "predict":
                    submit("evaluate", label, shard)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)) and isinstance(pool, ProcessPoolExecutor):
            # a signal ends the run now: do not let the pool's exit wait for the running steps
            # (their outputs are written aside and published last, so nothing half-done is kept).
            # The pool then fails every pending future itself; cancelling them first would make its
            # manager thread trip over the cancelled ones (InvalidStateError, CPython 3.11).
            processes = list((getattr(pool, "_processes", None) or {}).values())
            for process in processes:
                process.terminate()
            for process in processes:  # a worker still starting must not outlive the queues it unpickles
                process.join(timeout=10)
        else:
            for future in pending:
                future.cancel()
        raise


__all__ = ["ProgressCallback", "RunResult", "Terminated", "run_local"]
