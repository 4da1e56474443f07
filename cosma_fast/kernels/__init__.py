"""Numba-compiled array kernels.

Every kernel takes and returns flat numpy arrays (CSR for graphs), holds no
Python objects and is compiled with ``cache=True``. One module per family:
``simulate`` (replay a plan), ``schedule`` (operator orders), ``replace``
(eviction/spill/reload), ``allocate`` (address search), ``partition``
(divide-and-conquer cuts), ``cover`` (rows of the order search's segment covers),
``flow`` (least live bytes per operator, by minimum cuts), ``downset`` (least spill
cover over every order), ``beam`` (cheap orders by a beam search over the same states).

:func:`warmup` compiles (or loads from cache) every kernel on tiny inputs, so
that tests and benchmarks pay the JIT cost once.
"""

from __future__ import annotations

import importlib

import numpy as np

#: kernel modules that define a ``warmup()`` function
KERNEL_MODULES = ("simulate", "peak", "schedule", "replace", "allocate", "canonical", "partition", "cover", "flow",
                  "downset", "beam")


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


def tiny_chain() -> dict[str, np.ndarray]:
    """Arrays of the two-operator chain ``input -> op0 -> t1 -> op1 -> t2 (output)`` that
    the kernel warm-ups compile on (graph CSR layout, sizes of 4 bytes). The graph's arrays
    are read-only, as a :class:`cosma_fast.Graph` holds them: numba compiles read-only
    arrays apart, so writable ones would warm up a variant the solvers never call (a fresh
    clone then compiled ``plan_pass`` again in its first solve, 13 s); ``order`` is writable."""
    arrays = {
        "in_ptr": np.array([0, 1, 2], np.int64), "in_idx": np.array([0, 1], np.int64),
        "out_ptr": np.array([0, 1, 2], np.int64), "out_idx": np.array([1, 2], np.int64),
        "size": np.array([4, 4, 4], np.int64), "kind": np.array([0, 2, 2], np.int8),
        "is_out": np.array([False, False, True]), "producer": np.array([-1, 0, 1], np.int64),
        "cons_ptr": np.array([0, 1, 2, 2], np.int64), "cons_idx": np.array([0, 1], np.int64),
    }
    for a in arrays.values():
        a.flags.writeable = False
    return dict(arrays, order=np.array([0, 1], np.int64))
