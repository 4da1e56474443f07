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

:func:`local_search` then moves single operators inside their dependency window
(after their last producer, before their first consumer) and keeps a move when
the simulated cost of :func:`cosma_fast.kernels.replace.plan_pass` does not grow.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .replace import SIZE_AWARE, plan_pass

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


@njit(cache=True)
def local_search(order, cost, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, kind, is_out,
                 producer, cons_ptr, cons_idx, capacity, alignment, mode, beta, n_iters, seed):
    """Hill-climb over orders by moving one operator within its dependency window.

    Returns ``(order, cost, n_accepted)``: the best order found and its traffic.
    A move is kept when the traffic does not grow (sideways moves let the search
    cross plateaus). Deterministic for a given ``seed``.
    """
    np.random.seed(seed)
    n = order.shape[0]
    cur = order.copy()
    pos = np.empty(n, np.int64)
    for i in range(n):
        pos[cur[i]] = i
    cand = np.empty(n, np.int64)
    accepted = 0
    if n < 2:
        return cur, cost, accepted
    for _ in range(n_iters):
        p = np.random.randint(n)
        o = cur[p]
        lo = 0
        hi = n - 1
        for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
            pr = producer[op_in_idx[e]]
            if pr >= 0 and pos[pr] + 1 > lo:
                lo = pos[pr] + 1
        for e in range(op_out_ptr[o], op_out_ptr[o + 1]):
            t = op_out_idx[e]
            for f in range(cons_ptr[t], cons_ptr[t + 1]):
                c = pos[cons_idx[f]]
                if c - 1 < hi:
                    hi = c - 1
        if hi <= lo:
            continue
        q = lo + np.random.randint(hi - lo + 1)
        if q == p:
            continue
        if q < p:
            cand[:q] = cur[:q]
            cand[q] = o
            cand[q + 1:p + 1] = cur[q:p]
            cand[p + 1:] = cur[p + 1:]
        else:
            cand[:p] = cur[:p]
            cand[p:q] = cur[p + 1:q + 1]
            cand[q] = o
            cand[q + 1:] = cur[q + 1:]
        st, c_cost, _, _, _, _, _ = plan_pass(cand, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size,
                                              kind, is_out, cons_ptr, cons_idx, capacity, alignment,
                                              mode, beta, False)
        if st == 0 and c_cost <= cost:
            if c_cost < cost:
                accepted += 1
            cost = c_cost
            cur[:] = cand
            lo2 = min(p, q)
            hi2 = max(p, q)
            for i in range(lo2, hi2 + 1):
                pos[cur[i]] = i
    return cur, cost, accepted


def warmup() -> None:
    """Compile the rules and the local search on a two-operator chain."""
    in_ptr = np.array([0, 1, 2], np.int64)
    in_idx = np.array([0, 1], np.int64)
    out_ptr = np.array([0, 1, 2], np.int64)
    out_idx = np.array([1, 2], np.int64)
    size = np.array([4, 4, 4], np.int64)
    kind = np.array([0, 2, 2], np.int8)
    is_out = np.array([False, False, True])
    producer = np.array([-1, 0, 1], np.int64)
    cons_ptr = np.array([0, 1, 2, 2], np.int64)
    cons_idx = np.array([0, 1], np.int64)
    order = None
    for rule in range(4):
        order = list_schedule(rule, in_ptr, in_idx, out_ptr, out_idx, size, kind, producer,
                              cons_ptr, cons_idx)
    local_search(order, np.int64(0), in_ptr, in_idx, out_ptr, out_idx, size, kind, is_out, producer,
                 cons_ptr, cons_idx, np.int64(8), np.int64(1), np.int64(SIZE_AWARE), 1.0,
                 np.int64(2), np.int64(0))
