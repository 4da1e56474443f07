"""Canonical branch-and-bound for static allocation (MiniMalloc's search).

The second search of :func:`cosma_fast.allocate`, next to the skyline search of
:mod:`cosma_fast.kernels.allocate`. It follows MiniMalloc (Moffitt, "MiniMalloc: A
Lightweight Memory Allocator for Hardware-Accelerated Machine Learning", ASPLOS 2023):
depth-first branch-and-bound over *canonical* solutions (buffers placed in
non-decreasing offset order, each at its lowest feasible offset), with inference on the
cross-sections, a dominance rule against useless gaps, and decomposition of the lifetime
axis where no buffer crosses. Where sections have slack (ordinary DNN lifetimes) it
finds packings that the skyline search, which branches on wasting space, can miss for
a long time; on zero-slack instances the skyline search is far stronger. ``allocate``
therefore gives it a short budget first.
"""

from __future__ import annotations

import numpy as np
from numba import njit, objmode

from .allocate import FOUND, NODE_LIMIT, NOT_FOUND, TIMEOUT, _align_up, _perf_counter, _split_part

__all__ = ["canonical_search", "warmup"]


@njit(cache=True)
def _lowest_free(base, sz, fx_ptr, fx_off, fx_end, i, alignment):
    """Lowest aligned offset >= ``base`` that avoids buffer ``i``'s fixed obstacles (sorted by offset)."""
    p = _align_up(base, alignment)
    for q in range(fx_ptr[i], fx_ptr[i + 1]):
        if fx_off[q] < p + sz and fx_end[q] > p:
            p = _align_up(fx_end[q], alignment)
    return p


@njit(cache=True)
def _section_inference_fails(floor, total, offset, capacity):
    """True when some section's unplaced bytes cannot fit above its floor (MiniMalloc's section inference)."""
    for s in range(floor.shape[0]):
        f = floor[s] if floor[s] > offset else offset
        if total[s] > 0 and f + total[s] > capacity:
            return True
    return False


@njit(cache=True)
def _violates_canonical_order(offset, idx, last_offset, last_idx):
    """True when placing ``idx`` at ``offset`` breaks the non-decreasing (offset, preorder) sequence."""
    return offset < last_offset or (offset == last_offset and idx < last_idx)


@njit(cache=True)
def _dominated_by_gap(offset, min_height):
    """True when some unplaced buffer fits entirely below ``offset``, so this placement leaves a useless gap."""
    return offset >= min_height


@njit(cache=True)
def canonical_search(size, sec_lo, sec_hi, n_sections, sec_ptr, sec_idx, ov_ptr, ov_idx,
                   fx_ptr, fx_off, fx_end, capacity, alignment, node_limit, deadline):
    """Depth-first branch-and-bound for a packing of all buffers within ``capacity``.

    Buffers are numbered in preorder (the static branching priority). ``sec_ptr/sec_idx``
    list the buffers live in each section, ``ov_ptr/ov_idx`` the lifetime-overlapping
    pairs, ``fx_*`` per buffer the pinned obstacles (sorted by offset). ``deadline`` is a
    ``time.perf_counter()`` value (<= 0: none). Returns ``(status, offsets, nodes)`` with
    status FOUND, NOT_FOUND (proof of infeasibility), NODE_LIMIT or TIMEOUT.
    """
    n = size.shape[0]
    off = np.full(n, -1, np.int64)
    minoff = np.empty(n, np.int64)
    for i in range(n):
        minoff[i] = _lowest_free(0, size[i], fx_ptr, fx_off, fx_end, i, alignment)
        if minoff[i] + size[i] > capacity:
            return NOT_FOUND, off, np.int64(0)
    total = np.zeros(n_sections, np.int64)
    floor = np.zeros(n_sections, np.int64)
    for s in range(n_sections):
        m = np.int64(-1)
        for q in range(sec_ptr[s], sec_ptr[s + 1]):
            j = sec_idx[q]
            total[s] += size[j]
            if m < 0 or minoff[j] < m:
                m = minoff[j]
        floor[s] = m if m > 0 else 0
    if _section_inference_fails(floor, total, 0, capacity):
        return NOT_FOUND, off, np.int64(0)
    if n == 0:
        return FOUND, off, np.int64(0)
    # per-depth state; candidate lists are stacked, depth d holds n - d entries
    cand = np.empty(n * (n + 1) // 2 + 1, np.int64)
    cbase = np.zeros(n + 1, np.int64)
    cur = np.zeros(n + 1, np.int64)
    cnt = np.zeros(n + 1, np.int64)
    chosen = np.full(n + 1, -1, np.int64)
    last_off = np.zeros(n + 1, np.int64)
    last_idx = np.full(n + 1, -1, np.int64)
    min_h = np.zeros(n + 1, np.int64)
    tstart = np.zeros(n + 1, np.int64)
    rng_lo = np.zeros(n + 1, np.int64)  # section range of the part being searched at each depth
    rng_hi = np.zeros(n + 1, np.int64)
    # decomposition frames (MiniMalloc's dynamic decomposition): parts solved one after another
    f_depth = np.zeros(n + 2, np.int64)
    f_pptr = np.zeros(n + 2, np.int64)
    f_np = np.zeros(n + 2, np.int64)
    f_cur = np.zeros(n + 2, np.int64)
    f_start = np.zeros(n + 2, np.int64)
    f_off = np.zeros(n + 2, np.int64)
    f_idx = np.zeros(n + 2, np.int64)
    part_lo = np.zeros(2 * n_sections + 2, np.int64)
    part_hi = np.zeros(2 * n_sections + 2, np.int64)
    cross = np.zeros(n_sections + 1, np.int64)
    live = np.zeros(n_sections + 1, np.int64)
    by_lo = np.argsort(sec_lo, kind="mergesort")  # buffers by first section, for the part split
    lo_ptr = np.searchsorted(sec_lo[by_lo], np.arange(n_sections + 1))
    # undo trail: kind 0 = minoff[idx], kind 1 = floor[idx]
    cap_trail = 16 * n + 64
    tr_kind = np.empty(cap_trail, np.int8)
    tr_idx = np.empty(cap_trail, np.int64)
    tr_val = np.empty(cap_trail, np.int64)
    tp = 0
    keys = np.empty(n, np.int64)
    work = np.empty(n, np.int64)
    nodes = np.int64(0)
    seen = np.zeros(n_sections, np.int64)
    stamp = np.int64(0)

    # root frame: one part covering every section
    nf = 1
    f_depth[0] = -1
    f_pptr[0] = 0
    f_np[0] = 1
    part_lo[0] = 0
    part_hi[0] = n_sections
    pp = 1
    f_cur[0] = 0
    f_start[0] = 0
    d = 0
    rng_lo[0] = 0
    rng_hi[0] = n_sections
    last_off[0] = 0
    last_idx[0] = -1
    cnt[0] = _order_candidates(off, minoff, size, sec_lo, 0, n_sections, keys, work, cand, 0, n, min_h, 0)
    cur[0] = 0
    while True:
        if cur[d] >= cnt[d]:
            fi = nf - 1
            if d == f_start[fi]:
                # the current part of the innermost decomposition failed: give up the whole decomposition
                if fi == 0:
                    return NOT_FOUND, off, nodes
                target = f_depth[fi]
                nf -= 1
                pp = f_pptr[fi]
            else:
                target = d - 1
            while d > target:
                d -= 1
                b = chosen[d]
                for s in range(sec_lo[b], sec_hi[b]):
                    total[s] += size[b]
                off[b] = -1
            tp = _undo(tr_kind, tr_idx, tr_val, tp, tstart[d], minoff, floor)
            cur[d] += 1
            continue
        b = cand[cbase[d] + cur[d]]
        ob = minoff[b]
        if _violates_canonical_order(ob, b, last_off[d], last_idx[d]):
            cur[d] += 1
            continue
        if _dominated_by_gap(ob, min_h[d]):
            cur[d] = cnt[d]  # candidates are sorted by offset: all later ones are dominated too
            continue
        nodes += 1
        if nodes > node_limit:
            return NODE_LIMIT, off, nodes
        if deadline > 0 and (nodes & 1023) == 0:
            with objmode(now="float64"):
                now = _perf_counter()
            if now > deadline:
                return TIMEOUT, off, nodes
        # place b at ob and propagate
        tstart[d] = tp
        chosen[d] = b
        off[b] = ob
        top = ob + size[b]
        ok = top <= capacity
        for s in range(sec_lo[b], sec_hi[b]):
            total[s] -= size[b]
            tr_kind, tr_idx, tr_val, cap_trail, tp = _push_undo(tr_kind, tr_idx, tr_val, cap_trail, tp,
                                                                1, s, floor[s])
            floor[s] = top
        for q in range(ov_ptr[b], ov_ptr[b + 1]):
            j = ov_idx[q]
            if off[j] >= 0 or minoff[j] >= top:
                continue
            nm = _lowest_free(top, size[j], fx_ptr, fx_off, fx_end, j, alignment)
            tr_kind, tr_idx, tr_val, cap_trail, tp = _push_undo(tr_kind, tr_idx, tr_val, cap_trail, tp,
                                                                0, j, minoff[j])
            minoff[j] = nm
            if nm + size[j] > capacity:
                ok = False
        if ok:
            # a section's floor is at least the lowest minimum offset of its unplaced buffers
            stamp += 1
            t_end = tp
            for q in range(tstart[d] - 1, t_end):
                # b's own sections (q < tstart) and those of buffers whose minimum offset rose
                if q < tstart[d]:
                    j = b
                elif tr_kind[q] != 0:
                    continue
                else:
                    j = tr_idx[q]
                for s in range(sec_lo[j], sec_hi[j]):
                    if seen[s] == stamp:
                        continue
                    seen[s] = stamp
                    m = np.int64(-1)
                    for r in range(sec_ptr[s], sec_ptr[s + 1]):
                        k = sec_idx[r]
                        if off[k] < 0 and (m < 0 or minoff[k] < m):
                            m = minoff[k]
                    if m > floor[s]:
                        tr_kind, tr_idx, tr_val, cap_trail, tp = _push_undo(tr_kind, tr_idx, tr_val, cap_trail, tp,
                                                                            1, s, floor[s])
                        floor[s] = m
            ok = not _section_inference_fails(floor[rng_lo[d]:rng_hi[d]], total[rng_lo[d]:rng_hi[d]],
                                              ob, capacity)
        if not ok:
            for s in range(sec_lo[b], sec_hi[b]):
                total[s] += size[b]
            tp = _undo(tr_kind, tr_idx, tr_val, tp, tstart[d], minoff, floor)
            off[b] = -1
            cur[d] += 1
            continue
        if d + 1 == n:
            return FOUND, off, nodes
        nd = d + 1
        lo_r = rng_lo[d]
        hi_r = rng_hi[d]
        new_lo = lo_r
        new_hi = hi_r
        n_left = _split_part(off, sec_lo, sec_hi, by_lo, lo_ptr, lo_r, hi_r, cross, live, part_lo, part_hi, pp)
        if n_left == 0:
            # this part is complete: move on to the next part of the innermost decomposition
            while True:
                fi = nf - 1
                f_cur[fi] += 1
                if f_cur[fi] < f_np[fi]:
                    f_start[fi] = nd
                    new_lo = part_lo[f_pptr[fi] + f_cur[fi]]
                    new_hi = part_hi[f_pptr[fi] + f_cur[fi]]
                    last_off[nd] = f_off[fi]
                    last_idx[nd] = f_idx[fi]
                    break
                nf -= 1  # decomposition complete: its enclosing part is complete too
                pp = f_pptr[fi]
        elif n_left >= 2:
            f_depth[nf] = d
            f_pptr[nf] = pp
            f_np[nf] = n_left
            f_cur[nf] = 0
            f_start[nf] = nd
            f_off[nf] = ob
            f_idx[nf] = b
            pp += n_left
            nf += 1
            new_lo = part_lo[f_pptr[nf - 1]]
            new_hi = part_hi[f_pptr[nf - 1]]
            last_off[nd] = ob
            last_idx[nd] = b
        else:
            last_off[nd] = ob
            last_idx[nd] = b
        rng_lo[nd] = new_lo
        rng_hi[nd] = new_hi
        cbase[nd] = cbase[d] + cnt[d]
        cnt[nd] = _order_candidates(off, minoff, size, sec_lo, new_lo, new_hi, keys, work, cand, cbase[nd],
                                    n, min_h, nd)
        cur[nd] = 0
        d = nd


@njit(cache=True)
def _order_candidates(off, minoff, size, sec_lo, lo_r, hi_r, keys, work, cand, base, n, min_h, depth):
    """Write the unplaced buffers starting in sections [lo_r, hi_r) to ``cand[base:]``, sorted by
    (minimum offset, preorder index); set ``min_h[depth]``; return their number."""
    k = 0
    for i in range(n):
        if off[i] < 0 and lo_r <= sec_lo[i] < hi_r:
            keys[k] = minoff[i] * n + i
            work[k] = i
            k += 1
    o = np.argsort(keys[:k])
    mh = np.int64(-1)
    for a in range(k):
        i = work[o[a]]
        cand[base + a] = i
        h = minoff[i] + size[i]
        if mh < 0 or h < mh:
            mh = h
    min_h[depth] = mh
    return k


@njit(cache=True)
def _undo(tr_kind, tr_idx, tr_val, tp, stop, minoff, floor):
    """Restore the offset bounds (kind 0) and section floors (kind 1) recorded on the trail
    after position ``stop``; returns ``stop``."""
    while tp > stop:
        tp -= 1
        if tr_kind[tp] == 0:
            minoff[tr_idx[tp]] = tr_val[tp]
        else:
            floor[tr_idx[tp]] = tr_val[tp]
    return tp


@njit(cache=True)
def _push_undo(tr_kind, tr_idx, tr_val, cap, tp, kind, idx, val):
    """Record ``(kind, idx, old value)`` at ``tp`` on the undo trail, growing it when full;
    returns the (possibly new) trail arrays, their capacity and ``tp + 1``."""
    if tp + 2 >= cap:
        tr_kind, tr_idx, tr_val, cap = _grow(tr_kind, tr_idx, tr_val, cap)
    tr_kind[tp] = kind
    tr_idx[tp] = idx
    tr_val[tp] = val
    return tr_kind, tr_idx, tr_val, cap, tp + 1


@njit(cache=True)
def _grow(tr_kind, tr_idx, tr_val, cap):
    """Double the undo trail."""
    nk = np.empty(2 * cap, np.int8)
    ni = np.empty(2 * cap, np.int64)
    nv = np.empty(2 * cap, np.int64)
    nk[:cap] = tr_kind
    ni[:cap] = tr_idx
    nv[:cap] = tr_val
    return nk, ni, nv, 2 * cap


def warmup() -> None:
    """Compile :func:`canonical_search` on a three-buffer instance (with and without a deadline)."""
    from .allocate import overlap_csr

    lo = np.array([0, 1, 2], np.int64)
    hi = np.array([2, 3, 3], np.int64)
    size = np.array([2, 1, 1], np.int64)
    ptr, idx = overlap_csr(lo, hi)
    sec_ptr = np.array([0, 1, 3, 5], np.int64)
    sec_idx = np.array([0, 0, 1, 1, 2], np.int64)
    fx_ptr = np.zeros(4, np.int64)
    fx = np.zeros(0, np.int64)
    canonical_search(size, lo, hi, 3, sec_ptr, sec_idx, ptr, idx, fx_ptr, fx, fx, 3, 1, 1000, 0.0)
    canonical_search(size, lo, hi, 3, sec_ptr, sec_idx, ptr, idx, fx_ptr, fx, fx, 3, 1, 1000, 1e300)
