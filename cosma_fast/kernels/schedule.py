"""Memory-aware operator orders: list-scheduling rules and a local search.

List scheduling keeps the set of ready operators (all producers already run)
and repeatedly picks one by a rule:

``MODEL``      the graph's own (topological) order;
``MIN_PEAK``   the ready operator whose run changes the live bytes least (frees
               the most), the greedy of memory-aware schedulers (e.g. Ahn et al.,
               "Ordering chaos", MLSys 2020; COSMA's min-peak-first baseline);
``DEPTH_FIRST`` the most recently enabled operator (finish a branch before
               starting another, which keeps few branch tensors alive);
``LOOKAHEAD``  ``MIN_PEAK`` plus the best change of an operator it enables.

:func:`~cosma_fast.kernels.replace.local_search` (kept in ``replace`` with the pass it
calls, see the import below) then moves single operators inside their dependency window
(after their last producer, before their first consumer) and keeps a move when
the simulated cost of :func:`cosma_fast.kernels.replace.plan_pass` does not grow.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MODEL, MIN_PEAK, DEPTH_FIRST, LOOKAHEAD = 0, 1, 2, 3
RULE_NAMES = ("model", "min-peak", "depth-first", "lookahead")
_INTERMEDIATE = 2


@njit(cache=True)
def _delta(o, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, kind, cons_ptr, rem, loaded):
    d = 0
    for e in range(op_out_ptr[o], op_out_ptr[o + 1]):
        t = op_out_idx[e]
        if cons_ptr[t + 1] > cons_ptr[t]:
            d += size[t]
    for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
        t = op_in_idx[e]
        live = kind[t] == _INTERMEDIATE or loaded[t]
        if rem[t] == 1:
            if live:
                d -= size[t]
        elif not live:
            d += size[t]
    return d


@njit(cache=True)
def list_schedule(rule, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, kind,
                  producer, cons_ptr, cons_idx):
    """A topological order of the operators chosen by ``rule`` (ties: lowest index)."""
    n = op_in_ptr.shape[0] - 1
    nt = size.shape[0]
    if rule == MODEL:
        return np.arange(n).astype(np.int64)
    indeg = np.zeros(n, np.int64)
    stamp = np.full(n, -1, np.int64)
    for c in range(n):
        for e in range(op_in_ptr[c], op_in_ptr[c + 1]):
            p = producer[op_in_idx[e]]
            if p >= 0 and stamp[p] != c:
                stamp[p] = c
                indeg[c] += 1
    rem = np.empty(nt, np.int64)
    for t in range(nt):
        rem[t] = cons_ptr[t + 1] - cons_ptr[t]
    loaded = np.zeros(nt, np.bool_)
    ready = np.empty(n, np.int64)
    ready_time = np.zeros(n, np.int64)
    nready = 0
    for c in range(n):
        if indeg[c] == 0:
            ready[nready] = c
            nready += 1
    order = np.empty(n, np.int64)
    stamp[:] = -1
    for i in range(n):
        best = 0
        best_key = np.inf
        best_idx = n
        for r in range(nready):
            c = ready[r]
            if rule == DEPTH_FIRST:
                key = -float(ready_time[c])
            else:
                key = float(_delta(c, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, kind,
                                   cons_ptr, rem, loaded))
                if rule == LOOKAHEAD:
                    extra = 0
                    for e in range(op_out_ptr[c], op_out_ptr[c + 1]):
                        t = op_out_idx[e]
                        for f in range(cons_ptr[t], cons_ptr[t + 1]):
                            s = cons_idx[f]
                            if indeg[s] == 1:
                                ds = _delta(s, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size,
                                            kind, cons_ptr, rem, loaded)
                                if ds < extra:
                                    extra = ds
                    key += float(extra)
            if key < best_key or (key == best_key and c < best_idx):
                best_key = key
                best_idx = c
                best = r
        o = ready[best]
        ready[best] = ready[nready - 1]
        nready -= 1
        order[i] = o
        for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
            t = op_in_idx[e]
            rem[t] -= 1
            loaded[t] = True
        for e in range(op_out_ptr[o], op_out_ptr[o + 1]):
            t = op_out_idx[e]
            for f in range(cons_ptr[t], cons_ptr[t + 1]):
                s = cons_idx[f]
                if stamp[s] != o:
                    stamp[s] = o
                    indeg[s] -= 1
                    if indeg[s] == 0:
                        ready[nready] = s
                        ready_time[s] = i + 1
                        nready += 1
    return order


def warmup() -> None:
    """Compile the list-scheduling rules on a two-operator chain (``replace.warmup``
    compiles the local search)."""
    from . import tiny_chain

    c = tiny_chain()
    for rule in range(4):
        list_schedule(rule, c["in_ptr"], c["in_idx"], c["out_ptr"], c["out_idx"], c["size"], c["kind"],
                      c["producer"], c["cons_ptr"], c["cons_idx"])
