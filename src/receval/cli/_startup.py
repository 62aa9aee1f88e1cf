"""The start-up of a command that computes (a shard pod): its libraries imported at the least CPU.

Every evaluate pod of an N-shard run pays its start-up again, so what is spent there is multiplied
by N in the run's summed CPU (benchmarks/README.md). Nothing here changes what a command computes.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import sys
from collections.abc import Iterator

# numpy loads these on first use, but SciPy's array-API shim (scipy._lib.array_api_compat.numpy)
# reads every attribute of numpy when SciPy is imported, which imports them all. These two are the
# costly ones and no receval command uses them: the Fortran wrapper generator (it compiles hundreds
# of regular expressions and loads charset_normalizer) and the test helpers (unittest).
NUMPY_ON_FIRST_USE = ("numpy.f2py", "numpy.testing")


@contextlib.contextmanager
def heavy_imports() -> Iterator[None]:
    """Import a computing command's libraries without the cyclic garbage collector, then freeze them.

    numpy, pandas, SciPy and pyarrow allocate hundreds of thousands of objects while they are
    imported, all of them alive until the process ends. The collector scanned them some 240 times
    meanwhile and once more in full after the engine ran: 0.13 s of CPU of an evaluate pod, paid
    again by each of N pods. Frozen (:func:`gc.freeze` moves them out of the generations the
    collector scans), they are never scanned again; what the command allocates afterwards is
    collected as usual. The modules of :data:`NUMPY_ON_FIRST_USE` are left to load on first use.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        for name in NUMPY_ON_FIRST_USE:
            on_first_use(name)
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def on_first_use(name: str) -> None:
    """Make ``import name`` cheap: the module is executed when one of its attributes is first read.

    A module already imported is left as it is. The lazy module stands in ``sys.modules`` and as its
    parent's attribute (where numpy's own ``__getattr__`` would import it), so reading the
    attribute, ``import name`` and ``from name import x`` all see it (:class:`importlib.util.LazyLoader`).
    """
    if name in sys.modules:
        return
    parent, _, child = name.rpartition(".")
    spec = importlib.util.find_spec(name)  # imports the parent package
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if parent:
        setattr(sys.modules[parent], child, module)
