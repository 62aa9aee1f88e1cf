"""The BLAS thread pool: the metrics engine's own threads use the cores, so BLAS runs one thread while
it computes (:func:`receval.metrics.engine._in_threads`); so does ALS, whose products are tiny."""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any

#: The environment variables that size the BLAS and OpenMP thread pools: read once, when numpy and
#: SciPy load their BLAS. A process that sets these before numpy is imported starts no pool at all.
BLAS_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_started_with_one_thread = False


def start_with_one_thread() -> bool:
    """Have numpy's and SciPy's BLAS start with one thread; False (nothing changed) when numpy is
    already loaded, since the libraries read the variables only then.

    For a process whose numeric work is the engine's: a pool started at import only spins
    (OpenBLAS's idle threads, 0.07-0.1 s of CPU of every process on two cores or more). Set in
    spite of values given in the environment, which the engine would override anyway.
    """
    global _started_with_one_thread
    if "numpy" in sys.modules:  # too late to matter; and a caller's environment is not ours to change
        return False
    for name in BLAS_THREAD_VARIABLES:
        os.environ[name] = "1"
    _started_with_one_thread = True
    return True


def one_thread() -> AbstractContextManager[Any]:
    """A context in which BLAS runs one thread.

    threadpoolctl's limit, which finds the BLAS libraries by inspecting every shared library the
    process loaded (about 20 ms, paid again by every shard pod), unless the process started its
    BLAS with one thread (:func:`start_with_one_thread`), when there is nothing to limit.
    """
    if _started_with_one_thread:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
