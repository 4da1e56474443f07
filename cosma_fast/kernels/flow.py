"""Least live bytes at each operator's step over the orders extending a partial order.

For an operator ``o`` and a partial order ``before``, the operators that run before ``o``
form a down-set ``S``: it holds every ancestor of ``o``, no descendant and not ``o``. A
tensor ``t`` that ``o`` does not touch is live across ``o`` when an operator touching
``t`` (its producer or a reader) is in ``S`` and a reader of ``t`` is not. The least
bytes live across ``o`` over all such ``S`` is a minimum cut (Picard 1976, "Maximal
closure of a graph and applications to combinatorial problems", Management Science 22:
closed sets with costs are cuts; the "some member in / some member out" cost of a tensor
takes two auxiliary nodes). :func:`op_pressure` adds ``o``'s own operands and computes
one cut per operator with Dinic's algorithm (Dinic 1970) on arrays.

Network, source side = ``S``, for the operators incomparable to ``o`` (the others are
fixed: ancestors in ``S``, descendants and ``o`` out):

* ``q -> p`` infinite when ``p`` must run before ``q`` (a down-set is closed);
* per tensor, ``u -> w`` of capacity ``size``, ``x -> u`` infinite for every free toucher
  ``x`` and ``w -> r`` infinite for every free reader ``r``: cutting it is forced exactly
  when a toucher is in ``S`` and a reader is out. A toucher among the ancestors makes
  ``u`` a source (the edge becomes ``source -> w``), a reader among the descendants makes
  ``w`` a sink (``u -> sink``); both at once make ``t`` live across ``o`` in every order.
"""

from __future__ import annotations

import numpy as np
from numba import njit, objmode

from .allocate import _perf_counter


@njit(cache=True)
def _max_flow(n_nodes, src, dst, cap, s, t):
    """Value of a maximum ``s``-``t`` flow (Dinic) in the graph of edges ``src -> dst``
    with capacities ``cap`` (int64)."""
    m = len(src)
    deg = np.zeros(n_nodes + 1, dtype=np.int64)
    for e in range(m):
        deg[src[e] + 1] += 1
        deg[dst[e] + 1] += 1
    ptr = np.cumsum(deg)
    fill = ptr[:-1].copy()
    to = np.empty(2 * m, dtype=np.int64)
    res = np.empty(2 * m, dtype=np.int64)
    rev = np.empty(2 * m, dtype=np.int64)
    for e in range(m):
        a, b = src[e], dst[e]
        i, j = fill[a], fill[b]
        fill[a] += 1
        fill[b] += 1
        to[i], res[i], rev[i] = b, cap[e], j
        to[j], res[j], rev[j] = a, 0, i
    level = np.empty(n_nodes, dtype=np.int64)
    queue = np.empty(n_nodes, dtype=np.int64)
    it = np.empty(n_nodes, dtype=np.int64)
    stack = np.empty(n_nodes, dtype=np.int64)   # nodes on the current path
    via = np.empty(n_nodes, dtype=np.int64)     # edge into each node of the path
    total = 0
    while True:
        level[:] = -1
        level[s] = 0
        head, tail = 0, 1
        queue[0] = s
        while head < tail:
            v = queue[head]
            head += 1
            for e in range(ptr[v], ptr[v + 1]):
                if res[e] > 0 and level[to[e]] < 0:
                    level[to[e]] = level[v] + 1
                    queue[tail] = to[e]
                    tail += 1
        if level[t] < 0:
            return total
        it[:] = ptr[:-1]
        depth = 0
        stack[0] = s
        while depth >= 0:
            v = stack[depth]
            if v == t:  # augment along the path by its bottleneck, then back up to it
                push = res[via[1]]
                for k in range(2, depth + 1):
                    push = min(push, res[via[k]])
                back = depth
                for k in range(depth, 0, -1):
                    e = via[k]
                    res[e] -= push
                    res[rev[e]] += push
                    if res[e] == 0:
                        back = k - 1
                total += push
                depth = back
                continue
            advanced = False
            while it[v] < ptr[v + 1]:
                e = it[v]
                w = to[e]
                if res[e] > 0 and level[w] == level[v] + 1:
                    depth += 1
                    stack[depth] = w
                    via[depth] = e
                    advanced = True
                    break
                it[v] += 1
            if not advanced:  # dead end: no augmenting path through v in this phase
                level[v] = -1
                depth -= 1
                if depth >= 0:
                    it[stack[depth]] += 1


@njit(cache=True)
def _members(ptr, idx, t, o, before, node, after):
    """``(fixed, free)`` for the operators ``idx[ptr[t]:ptr[t + 1]]`` of tensor ``t``:
    whether one runs before ``o`` in every order (after ``o`` when ``after``), and how many
    are incomparable to ``o`` (``node >= 0``)."""
    fixed = False
    free = 0
    for i in range(ptr[t], ptr[t + 1]):
        x = idx[i]
        if x != o and (before[x, o] if after else before[o, x]):
            fixed = True
        elif node[x] >= 0:
            free += 1
    return fixed, free


@njit(cache=True)
def _room(src, dst, cap, m, need):
    """The edge arrays with room for ``need`` more edges after the first ``m``."""
    size = len(src)
    if m + need <= size:
        return src, dst, cap
    while m + need > size:
        size *= 2
    grow = np.empty(size - m, dtype=np.int64)
    return (np.concatenate((src[:m], grow)), np.concatenate((dst[:m], grow)),
            np.concatenate((cap[:m], grow)))


#: operators between two clock checks of :func:`op_pressure` (a check costs about a small cut)
CLOCK_OPS = 16


@njit(cache=True)
def op_pressure(before, pred_ptr, pred_idx, touch_ptr, touch_idx, read_ptr, read_idx, size, op_bytes, io_ptr,
                io_idx, deadline):
    """Per operator ``o``: the least ``bytes(o) + bytes live across o`` over every order
    extending ``before`` (``before[o, q]``: ``q`` runs before ``o``; transitively closed).
    From ``deadline`` on (a ``time.perf_counter`` reading, checked before every
    ``CLOCK_OPS``-th operator; 0 for none), ``bytes(o)`` alone: still at most the least, so every use as a bound holds
    (one cut per operator is quadratic work in all: 11.5 s on 3000 operators).

    ``pred_idx[pred_ptr[q]:pred_ptr[q + 1]]``: the operators right before ``q`` in
    ``before``'s transitive reduction (closing a down-set under them closes it under
    ``before``; a path between two operators incomparable to ``o`` only passes through
    such operators, so the reduction's edges among them are enough).
    ``touch_idx[touch_ptr[t]:touch_ptr[t + 1]]``: the operators touching tensor ``t``
    (producer and readers), ``read_*`` its readers; ``io_idx[io_ptr[o]:io_ptr[o + 1]]``: the
    tensors ``o`` touches (its operands).
    """
    n = before.shape[0]
    nt = len(size)
    inf = np.int64(1)
    for t in range(nt):
        inf += size[t]
    out = np.empty(n, dtype=np.int64)
    node = np.empty(n, dtype=np.int64)  # network node of a free operator, -1 when fixed
    src = np.empty(4 * n + 64, dtype=np.int64)
    dst = np.empty(4 * n + 64, dtype=np.int64)
    cap = np.empty(4 * n + 64, dtype=np.int64)
    touched_by = np.full(nt, -1, dtype=np.int64)  # touched_by[t] == o: t is an operand of o
    late = False
    for o in range(n):
        if deadline > 0 and not late and o % CLOCK_OPS == 0:
            with objmode(now="float64"):
                now = _perf_counter()
            late = now > deadline
        if late:
            out[o] = op_bytes[o]
            continue
        for i in range(io_ptr[o], io_ptr[o + 1]):
            touched_by[io_idx[i]] = o
        k = 0
        for q in range(n):
            if q != o and not before[o, q] and not before[q, o]:
                node[q] = k
                k += 1
            else:
                node[q] = -1
        s_node, t_node = k, k + 1
        n_nodes = k + 2
        m = 0
        const = op_bytes[o]
        for q in range(n):  # a down-set is closed: q in S needs every p before q in S
            if node[q] < 0:
                continue
            for i in range(pred_ptr[q], pred_ptr[q + 1]):
                p = pred_idx[i]
                if node[p] >= 0:
                    src, dst, cap = _room(src, dst, cap, m, 1)
                    src[m], dst[m], cap[m] = node[q], node[p], inf
                    m += 1
        for t in range(nt):
            if touched_by[t] == o or size[t] == 0:
                continue
            # in_s: a toucher runs before o in every order; out_s: a reader runs after it
            in_s, free_x = _members(touch_ptr, touch_idx, t, o, before, node, False)
            out_s, free_r = _members(read_ptr, read_idx, t, o, before, node, True)
            if (not in_s and free_x == 0) or (not out_s and free_r == 0):
                continue  # never touched before o, or never read after it
            if in_s and out_s:
                const += size[t]
                continue
            src, dst, cap = _room(src, dst, cap, m, free_x + free_r + 1)
            u = s_node if in_s else n_nodes
            w = t_node if out_s else n_nodes + (0 if in_s else 1)
            if not in_s:
                n_nodes += 1
                for i in range(touch_ptr[t], touch_ptr[t + 1]):
                    x = touch_idx[i]
                    if node[x] >= 0:
                        src[m], dst[m], cap[m] = node[x], u, inf
                        m += 1
            if not out_s:
                n_nodes += 1
                for i in range(read_ptr[t], read_ptr[t + 1]):
                    r = read_idx[i]
                    if node[r] >= 0:
                        src[m], dst[m], cap[m] = w, node[r], inf
                        m += 1
            src[m], dst[m], cap[m] = u, w, size[t]
            m += 1
        out[o] = const + _max_flow(n_nodes, src[:m], dst[:m], cap[:m], s_node, t_node)
    return out


def warmup() -> None:
    """Compile :func:`op_pressure` on a three-operator chain (tensors: its input and the
    three operators' outputs)."""
    before = np.array([[False, False, False], [True, False, False], [True, True, False]])
    i64 = np.int64
    pred = (np.array([0, 0, 1, 2], i64), np.array([0, 1], i64))
    touch = (np.array([0, 1, 3, 5, 6], i64), np.array([0, 0, 1, 1, 2, 2], i64))
    read = (np.array([0, 1, 2, 3, 3], i64), np.array([0, 1, 2], i64))
    io = (np.array([0, 2, 4, 6], i64), np.array([0, 1, 1, 2, 2, 3], i64))
    for deadline in (0.0, 1e300):  # the clock check compiles on its first run
        op_pressure(before, *pred, *touch, *read, np.array([4, 4, 4, 4], i64), np.array([8, 8, 8], i64), *io,
                    deadline)
