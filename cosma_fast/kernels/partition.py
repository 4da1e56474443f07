"""Divide-and-conquer cuts: split a schedule into consecutive segments.

A cut at position ``i`` of a schedule separates steps ``[0, i)`` from ``[i, n)``.
Because segments are contiguous ranges of a valid topological order, no cut can
break a dependency. The price of a cut is the bytes of the tensors that live
across it (produced or first read before it, read again after it): under the
divide-and-conquer boundary model (see :mod:`cosma_fast.dnc`) each of them is
written back and/or reloaded once more. :func:`best_cuts` chooses cut positions by
dynamic programming so that every segment has at most ``max_ops`` operators and the
total crossing bytes are minimal (ties: fewer cuts), following COSMA's
divide-and-conquer for NAS graphs (Li, Gupta, Malik, arXiv 2311.18246, sec. 5).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["crossing_bytes", "best_cuts", "warmup"]


@njit(cache=True)
def crossing_bytes(order, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, tensor_size):
    """Bytes live across each cut position of the schedule ``order``.

    Returns ``cross`` of length ``n + 1``: ``cross[i]`` = total size of tensors whose
    first event (production, or first read for inputs/weights) is at a position
    ``< i`` and whose last read is at a position ``>= i``. ``cross[0] = cross[n] = 0``.
    """
    n = order.shape[0]
    nt = tensor_size.shape[0]
    first = np.full(nt, -1, np.int64)
    last = np.full(nt, -1, np.int64)
    for p in range(n):
        o = order[p]
        for k in range(op_out_ptr[o], op_out_ptr[o + 1]):
            t = op_out_idx[k]
            if first[t] < 0:
                first[t] = p
        for k in range(op_in_ptr[o], op_in_ptr[o + 1]):
            t = op_in_idx[k]
            if first[t] < 0:
                first[t] = p
            if p > last[t]:
                last[t] = p
    diff = np.zeros(n + 2, np.int64)
    for t in range(nt):
        if first[t] >= 0 and last[t] > first[t]:
            # the tensor is live across cuts first+1 .. last
            diff[first[t] + 1] += tensor_size[t]
            diff[last[t] + 1] -= tensor_size[t]
    cross = np.zeros(n + 1, np.int64)
    acc = 0
    for i in range(n + 1):
        acc += diff[i]
        cross[i] = acc
    cross[0] = 0
    cross[n] = 0
    return cross


@njit(cache=True)
def best_cuts(cross, max_ops):
    """Cut positions minimising the crossing bytes, each segment ``<= max_ops`` operators.

    ``cross`` comes from :func:`crossing_bytes` (length ``n + 1``). Returns the
    boundaries ``[0, c1, ..., n]`` (int64, ascending): segment ``j`` is schedule
    positions ``[b[j], b[j+1])``. Among cut sets of equal crossing bytes, the one with
    the fewest cuts wins, then the one whose cuts come last (deterministic).
    """
    n = cross.shape[0] - 1
    if n <= 0:
        out = np.zeros(1, np.int64)
        return out
    L = max(1, max_ops)
    INF = np.int64(1) << np.int64(62)
    # cost[i]: best (bytes, cuts) for the prefix [0, i) ending with a cut at i
    cost_b = np.full(n + 1, INF, np.int64)
    cost_c = np.full(n + 1, INF, np.int64)
    prev = np.full(n + 1, -1, np.int64)
    cost_b[0] = 0
    cost_c[0] = 0
    for i in range(1, n + 1):
        add = cross[i]
        for j in range(max(0, i - L), i):
            if cost_b[j] == INF:
                continue
            b = cost_b[j] + add
            c = cost_c[j] + 1
            if b < cost_b[i] or (b == cost_b[i] and c < cost_c[i]) or \
                    (b == cost_b[i] and c == cost_c[i] and j > prev[i]):
                cost_b[i] = b
                cost_c[i] = c
                prev[i] = j
    k = 0
    i = n
    while i > 0:
        k += 1
        i = prev[i]
    out = np.zeros(k + 1, np.int64)
    i = n
    for m in range(k, -1, -1):
        out[m] = i
        if i > 0:
            i = prev[i]
    return out


def warmup() -> None:
    """Compile the kernels on a two-operator chain (the graph's arrays read-only, as a
    ``Graph`` holds them)."""
    from . import tiny_chain

    c = tiny_chain()
    cross = crossing_bytes(c["order"], c["in_ptr"], c["in_idx"], c["out_ptr"], c["out_idx"], c["size"])
    best_cuts(cross, 1)
