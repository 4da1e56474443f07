"""Beam search over down-sets held in words: cheap orders for graphs of any size.

The exact search of :mod:`cosma_fast.kernels.downset` keeps a down-set in one ``int64``, so
62 operators at most. This kernel holds down-sets (and the operator sets per operator and
tensor) as rows of ``uint64`` words, so graphs of hundreds of operators fit. Its states and
moves are that search's address-free ones (``per_segment``): a state is the operators run,
the live tensors off chip now and the live ones written back; running an operator whose step
does not fit spills a minimal set of live tensors, each charged its reload and, the first
time, its write-back. Depth by depth only the ``width`` distinct states of least cost plus
the search's A* estimate are kept (Lowerre 1976); all states of a depth have run as many
operators, so the beam ends in ``n_ops`` depths."""

from __future__ import annotations

import numpy as np
from numba import njit

from .downset import _meets, estimate_to_come, mark_operands, spill_costs_now, step_covers

MAX_COVERS = 32  # the cheapest minimal covers a state's step may take, per operator


@njit(cache=True)
def _is_subset(a, b):
    """Whether the word row ``a`` is a subset of ``b``."""
    for w in range(a.shape[0]):
        if a[w] & ~b[w]:
            return False
    return True


@njit(cache=True)
def _has(row, i):
    """Whether bit ``i`` of the word row ``row`` is set."""
    return (row[i >> 6] >> np.uint64(i & 63)) & np.uint64(1) != np.uint64(0)


@njit(cache=True)
def _state_slot(table, D, S, out_D, out_S):
    """Slot of the kept state equal to ``(D, S)`` in the open-addressing ``table`` of indices
    into ``out_D``/``out_S`` (its own slot or the empty one)."""
    mask = table.shape[0] - 1
    h = np.int64(-7046029254386353131)
    for w in range(D.shape[0]):
        h = (h ^ np.int64(D[w])) * np.int64(1099511628211)
    for w in range(S.shape[0]):
        h = (h ^ np.int64(S[w])) * np.int64(1099511628211)
    h = (h ^ (h >> 29)) & mask
    while table[h] != -1 and not (_same(out_D[table[h]], D) and _same(out_S[table[h]], S)):
        h = (h + 1) & mask
    return h


@njit(cache=True)
def _same(a, b):
    """Whether the word rows ``a`` and ``b`` are equal."""
    for w in range(a.shape[0]):
        if a[w] != b[w]:
            return False
    return True


@njit(cache=True, nogil=True)
def beam_layer_words(before, created, readers, size, cost, io_ptr, io_idx, forced, read_after, operands, op_load,
                     capacity, upper, width, cur_D, cur_S, cur_g):
    """One depth of the beam: the children of the states ``(cur_D, cur_S)`` of costs ``cur_g``,
    and of those below ``upper`` the ``width`` distinct ones of least cost plus the A* estimate
    of :func:`cosma_fast.kernels.downset.estimate_to_come` (then least cost, then first made;
    by cost alone, randwire49 at ``M_R`` ended at 52752 bytes instead of 47434 at width 1024).

    ``before[v]``: the operators that run before ``v`` in every order; ``created[t]``: the ones
    whose run shows ``t`` made, ``readers[t]``: the ones whose not having run shows it still
    needed (``cosma_fast.bounds._through_masks``); all word rows over the operators. A live
    tensor may be spilled unless ``v`` touches it or it is off chip already, as in
    :func:`cosma_fast.kernels.downset._children`. ``cost[t]``: a reload plus, for a tensor
    that owes one, a write-back; a reload is ``size[t]``. ``io_ptr``/``io_idx``: each
    operator's operands (CSR). ``forced``, ``read_after``, ``operands`` (tensor word rows per
    operator) and ``op_load``: :func:`cosma_fast.kernels.downset.step_rows` of those.
    ``cur_S``: off-chip words, then written-back words.
    Returns ``(D, S, g, parent, op)``: ``parent`` indexes ``cur_*``, ``op`` is the operator
    run."""
    n = before.shape[0]
    nt = size.shape[0]
    WO = cur_D.shape[1]
    W = cur_S.shape[1]
    WX = W // 2
    state_cost = cost.copy()
    by_cost_rate = np.argsort(cost / np.maximum(size, 1), kind="mergesort")
    made = np.empty(WX, np.uint64)
    live = np.empty(WX, np.uint64)
    back = np.empty(nt, np.int64)
    todo = np.empty(n, np.int64)
    is_io = np.zeros(nt, np.bool_)
    Dn = np.empty(WO, np.uint64)
    keep = np.empty(W, np.uint64)
    free = np.empty(nt, np.int64)
    cover_sets = np.zeros((4096, nt), np.bool_)
    cover_cost = np.empty(4096, np.int64)
    cap = max(1024, 8 * cur_D.shape[0])
    all_D = np.empty((cap, WO), np.uint64)
    all_S = np.empty((cap, W), np.uint64)
    all_g = np.empty(cap, np.int64)
    all_f = np.empty(cap, np.int64)
    all_par = np.empty(cap, np.int64)
    all_op = np.empty(cap, np.int64)
    na = 0
    for i in range(cur_D.shape[0]):
        D = cur_D[i]
        S = cur_S[i]
        spill_costs_now(S, WX, size, cost, state_cost)
        for v in range(n):
            if _has(D, v) or not _is_subset(before[v], D):
                continue
            for w in range(WO):
                Dn[w] = D[w]
            Dn[v >> 6] |= np.uint64(1) << np.uint64(v & 63)
            load = mark_operands(v, io_ptr, io_idx, size, is_io)
            # the live tensors v may spill (``free``), and the bits a child keeps: tensors live
            # after v, off chip only if not v's operands (they are loaded for it)
            for w in range(W):
                keep[w] = np.uint64(0)
            m = 0
            for t in range(nt):
                if _is_subset(readers[t], Dn) or not _meets(created[t], Dn):
                    continue
                keep[t >> 6] |= np.uint64(1) << np.uint64(t & 63)
                keep[WX + (t >> 6)] |= np.uint64(1) << np.uint64(t & 63)
                if is_io[t] or _has(S, t):
                    continue
                free[m] = t
                m += 1
                load += size[t]
            for q in range(io_ptr[v], io_ptr[v + 1]):
                t = io_idx[q]
                is_io[t] = False
                keep[t >> 6] &= ~(np.uint64(1) << np.uint64(t & 63))
            n_todo = _made_and_todo(Dn, created, made, todo)  # the estimate's inputs from the down-set
            n_covers, cover_sets, cover_cost = step_covers(free, m, size, state_cost, load - capacity, cover_sets,
                                                           cover_cost)
            cheapest = np.argsort(cover_cost[:n_covers], kind="mergesort")[:MAX_COVERS]
            for c in cheapest:
                gc = cur_g[i] + cover_cost[c]
                if gc >= upper:
                    continue
                if na == cap:
                    cap *= 2
                    all_D, all_S = _grown_rows(all_D, cap), _grown_rows(all_S, cap)
                    all_g, all_f = _grown(all_g, cap), _grown(all_f, cap)
                    all_par, all_op = _grown(all_par, cap), _grown(all_op, cap)
                for w in range(WO):
                    all_D[na, w] = Dn[w]
                for w in range(W):
                    all_S[na, w] = S[w]
                for j in range(m):
                    if cover_sets[c, j]:
                        t = free[j]
                        all_S[na, t >> 6] |= np.uint64(1) << np.uint64(t & 63)
                        if cost[t] > size[t]:  # written back now, once
                            all_S[na, WX + (t >> 6)] |= np.uint64(1) << np.uint64(t & 63)
                for w in range(W):
                    all_S[na, w] &= keep[w]
                f = gc + estimate_to_come(todo[:n_todo], made, all_S[na], True, WX, forced, read_after, operands,
                                          op_load, by_cost_rate, size, size, cost, capacity, live, back)
                if f >= upper:
                    continue
                all_g[na] = gc
                all_f[na] = f
                all_par[na] = i
                all_op[na] = v
                na += 1
    rank = np.argsort(all_g[:na], kind="mergesort")
    rank = rank[np.argsort(all_f[:na][rank], kind="mergesort")]
    k_max = min(width, na)
    out_D = np.empty((k_max, WO), np.uint64)
    out_S = np.empty((k_max, W), np.uint64)
    out_g = np.empty(k_max, np.int64)
    out_par = np.empty(k_max, np.int64)
    out_op = np.empty(k_max, np.int64)
    slots = 4
    while slots < 2 * k_max:
        slots *= 2
    table = np.full(slots, -1, np.int64)
    k = 0
    for j in rank:
        if k == k_max:
            break
        e = _state_slot(table, all_D[j], all_S[j], out_D, out_S)
        if table[e] != -1:
            continue  # an equal state ranked before it (equal estimates: at no more cost)
        out_D[k] = all_D[j]
        out_S[k] = all_S[j]
        out_g[k] = all_g[j]
        out_par[k] = all_par[j]
        out_op[k] = all_op[j]
        table[e] = k
        k += 1
    return out_D[:k], out_S[:k], out_g[:k], out_par[:k], out_op[:k]


@njit(cache=True)
def _made_and_todo(D, created, made, todo):
    """Fill ``made`` (tensor words) with the tensors that an operator of the down-set ``D``
    (operator words) created, and ``todo`` with the operators not in ``D``; returns their
    number."""
    nt = created.shape[0]
    for w in range(made.shape[0]):
        made[w] = np.uint64(0)
    for t in range(nt):
        if _meets(created[t], D):
            made[t >> 6] |= np.uint64(1) << np.uint64(t & 63)
    k = 0
    for v in range(todo.shape[0]):
        if not _has(D, v):
            todo[k] = v
            k += 1
    return k


@njit(cache=True)
def _grown(a, cap):
    """``a`` copied into a longer array of ``cap`` entries."""
    b = np.empty(cap, a.dtype)
    b[:a.shape[0]] = a
    return b


@njit(cache=True)
def _grown_rows(a, cap):
    """The rows of ``a`` copied into an array of ``cap`` rows."""
    b = np.empty((cap, a.shape[1]), a.dtype)
    b[:a.shape[0]] = a
    return b


def warmup() -> None:
    """Compile :func:`beam_layer_words` on a two-operator chain."""
    i64, u64 = np.int64, np.uint64
    size = np.array([4, 4, 4], i64)
    none = np.zeros((2, 1), u64)
    beam_layer_words(np.array([[0], [1]], u64), np.array([[1], [1], [2]], u64), np.array([[1], [2], [0]], u64), size,
                     np.array([4, 8, 4], i64), np.array([0, 2, 4], i64), np.array([0, 1, 1, 2], i64), none, none, none,
                     np.array([8, 8], i64), 8, np.iinfo(i64).max, 4, np.zeros((1, 1), u64), np.zeros((1, 2), u64),
                     np.zeros(1, i64))
