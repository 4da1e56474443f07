"""Rows of the segment-cover problem (:mod:`cosma_fast.ilp.orders`) that need loops.

:func:`segment_chains`: for every tensor, the pairs of its off-chip variables that a reader
separates under a partial order, transitively reduced. The order search builds these rows
for every bound it computes; in numpy they were a per-tensor loop of small matrix products.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def segment_chains(before, rd_ptr, rd_idx, pair_t, pair_o, starts, ends):
    """``(first, second)``: global indices of pairs ``(t, o_i)``, ``(t, o_j)`` of one tensor
    ``t`` (the pairs ``starts[k]:ends[k]`` of the ``k``-th tensor) such that a reader ``c``
    of ``t`` runs after ``o_i`` and before ``o_j`` under ``before`` (``before[o, q]``: ``q``
    runs before ``o``; readers of ``t`` in ``rd_idx[rd_ptr[t]:rd_ptr[t + 1]]``), keeping
    only the pairs not implied by two others (``o_i < o_m < o_j`` both separated), in
    row-major ``(i, j)`` order within each tensor."""
    cap = 64
    first = np.empty(cap, dtype=np.int64)
    second = np.empty(cap, dtype=np.int64)
    cnt = 0
    for blk in range(len(starts)):
        a = starts[blk]
        k = ends[blk] - a
        if k < 2:
            continue
        t = pair_t[a]
        sep = np.zeros((k, k), dtype=np.bool_)
        found = False
        for i in range(k):
            oi = pair_o[a + i]
            for j in range(k):
                if i == j:
                    continue
                oj = pair_o[a + j]
                for r in range(rd_ptr[t], rd_ptr[t + 1]):
                    c = rd_idx[r]
                    if before[c, oi] and before[oj, c]:
                        sep[i, j] = True
                        found = True
                        break
        if not found:
            continue
        for i in range(k):
            for j in range(k):
                if not sep[i, j]:
                    continue
                implied = False
                for m in range(k):
                    if sep[i, m] and sep[m, j]:
                        implied = True
                        break
                if implied:
                    continue
                if cnt == cap:
                    cap *= 2
                    first = np.concatenate((first, np.empty(cap - cnt, dtype=np.int64)))
                    second = np.concatenate((second, np.empty(cap - cnt, dtype=np.int64)))
                first[cnt] = a + i
                second[cnt] = a + j
                cnt += 1
    return first[:cnt], second[:cnt]


def warmup() -> None:
    """Compile :func:`segment_chains` on two operators around one reader."""
    before = np.array([[False, False, False], [True, False, False], [True, True, False]])
    segment_chains(before, np.array([0, 1], dtype=np.int64), np.array([1], dtype=np.int64),
                   np.array([0, 0], dtype=np.int64), np.array([0, 2], dtype=np.int64),
                   np.array([0], dtype=np.int64), np.array([2], dtype=np.int64))
