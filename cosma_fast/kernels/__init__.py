"""Numba-compiled array kernels.

Every kernel takes and returns flat numpy arrays (CSR for graphs), holds no
Python objects and is compiled with ``cache=True``. One module per family:
``simulate`` (replay a plan), ``schedule`` (operator orders), ``replace``
(eviction/spill/reload), ``allocate`` (address search), ``partition``
(divide-and-conquer cuts).

:func:`warmup` compiles (or loads from cache) every kernel on tiny inputs, so
that tests and benchmarks pay the JIT cost once.
"""

from __future__ import annotations

import importlib

#: kernel modules that define a ``warmup()`` function
KERNEL_MODULES = ("simulate", "peak", "schedule", "replace", "allocate", "partition")


def warmup() -> None:
    """Compile every kernel once (about 1 s per kernel cold, 0.2 s from the cache)."""
    for name in KERNEL_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue
            raise
        fn = getattr(module, "warmup", None)
        if fn is not None:
            fn()
