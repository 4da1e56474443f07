"""Static allocation kernels: greedy placement and a MiniMalloc-style search.

Buffers have half-open lifetimes over *sections* (elementary time intervals
between consecutive distinct lifetime endpoints) and a byte size; two buffers
whose section ranges intersect must get disjoint address ranges.

The exact search follows MiniMalloc (Moffitt, "MiniMalloc: A Lightweight Memory
Allocator for Hardware-Accelerated Machine Learning", ASPLOS 2023): depth-first
branch-and-bound over *canonical* solutions (buffers placed in non-decreasing
offset order, each at its lowest feasible offset), with inference on the
cross-sections, a dominance rule against useless gaps, and decomposition of the
lifetime axis where no buffer crosses (done by the caller with
:func:`lifetime_partitions`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, objmode

__all__ = ["overlap_csr", "greedy_place", "lifetime_partitions", "search_packing", "warmup"]

FOUND = 0
NOT_FOUND = 1  # the search space was exhausted: no packing within capacity
NODE_LIMIT = 2
TIMEOUT = 3
FLOOR = 0  # undo-trail kinds
CLOSED = 1
# columns of the per-depth node table: branching point (section, level), the run of sections open at that
# level around it, option cursor (into the section's buffer list), pinned buffer that must go there (or -1),
# decision taken (buffer, or -1 for closing the point), trail position before it, range of the part searched
PT, LEVEL, RUN_LO, RUN_HI, CUR, FORCED, CHOSEN, TSTART, RLO, RHI = range(10)
N_COLS = 10


@njit(cache=True)
def _align_up(x, alignment):
    """Smallest multiple of ``alignment`` that is >= ``x``."""
    r = x % alignment
    return x if r == 0 else x + alignment - r


@njit(cache=True)
def overlap_csr(lo, hi):
    """Pairs of buffers whose half-open ranges ``[lo, hi)`` intersect, as CSR ``(ptr, idx)``."""
    n = lo.shape[0]
    order = np.argsort(lo, kind="mergesort")
    deg = np.zeros(n, np.int64)
    for a in range(n):
        i = order[a]
        for b in range(a + 1, n):
            j = order[b]
            if lo[j] >= hi[i]:
                break
            deg[i] += 1
            deg[j] += 1
    ptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        ptr[i + 1] = ptr[i] + deg[i]
    idx = np.empty(ptr[n], np.int64)
    fill = ptr[:-1].copy()
    for a in range(n):
        i = order[a]
        for b in range(a + 1, n):
            j = order[b]
            if lo[j] >= hi[i]:
                break
            idx[fill[i]] = j
            fill[i] += 1
            idx[fill[j]] = i
            fill[j] += 1
    return ptr, idx


@njit(cache=True)
def _first_gap(offs, ends, size, alignment, best_fit):
    """Lowest (or, with ``best_fit``, tightest) aligned offset where ``size`` bytes fit between intervals."""
    k = offs.shape[0]
    if k == 0:
        return 0
    o = np.argsort(offs)
    p = 0
    best = -1
    best_gap = np.int64(-1)
    for a in range(k):
        s = offs[o[a]]
        if s >= p + size:
            if not best_fit:
                return p
            gap = s - p
            if best < 0 or gap < best_gap:
                best = p
                best_gap = gap
        e = _align_up(ends[o[a]], alignment)
        if e > p:
            p = e
    return best if best >= 0 else p


@njit(cache=True)
def greedy_place(order, size, ov_ptr, ov_idx, fixed_offset, alignment, best_fit):
    """Place buffers one by one in ``order`` at the lowest (or best-fitting) free offset.

    ``fixed_offset[i] >= 0`` pins buffer ``i``. Returns ``(offsets, height)``.
    """
    n = size.shape[0]
    off = fixed_offset.copy()
    height = np.int64(0)
    for i in range(n):
        if off[i] >= 0 and off[i] + size[i] > height:
            height = off[i] + size[i]
    buf_o = np.empty(n, np.int64)
    buf_e = np.empty(n, np.int64)
    for a in range(order.shape[0]):
        i = order[a]
        if off[i] >= 0:
            continue
        k = 0
        for q in range(ov_ptr[i], ov_ptr[i + 1]):
            j = ov_idx[q]
            if off[j] >= 0:
                buf_o[k] = off[j]
                buf_e[k] = off[j] + size[j]
                k += 1
        p = _first_gap(buf_o[:k], buf_e[:k], size[i], alignment, best_fit)
        off[i] = p
        if p + size[i] > height:
            height = p + size[i]
    return off, height


@njit(cache=True)
def lifetime_partitions(lo, hi, n_sections):
    """Label each section with a partition id; partitions are split where no buffer crosses.

    Returns ``part`` (length ``n_sections``) with consecutive ids starting at 0.
    """
    cross = np.zeros(n_sections + 1, np.int64)
    for i in range(lo.shape[0]):
        cross[lo[i] + 1] += 1
        cross[hi[i]] -= 1
    part = np.zeros(n_sections, np.int64)
    c = 0
    pid = 0
    for s in range(n_sections):
        c += cross[s]
        if s > 0 and c == 0:
            pid += 1
        part[s] = pid
    return part


@njit(cache=True)
def _waste_exceeds_slack(remaining, level, capacity):
    """True when a section's unplaced bytes no longer fit between ``level`` and the capacity
    (MiniMalloc's section inference; with zero slack it forbids every gap)."""
    return remaining > 0 and level + remaining > capacity


@njit(cache=True)
def _lowest_open_point(floor, closed, remaining, lo_r, hi_r):
    """The lowest floor ``m`` among sections of ``[lo_r, hi_r)`` with unplaced bytes and the leftmost
    section at ``m`` that is not closed; returns ``(section, m)``, section -1 when all at ``m`` are closed."""
    m = np.int64(-1)
    best = -1
    for s in range(lo_r, hi_r):
        if remaining[s] == 0:
            continue
        if m < 0 or floor[s] < m:
            m = floor[s]
            best = -1 if closed[s] else s
        elif floor[s] == m and best < 0 and not closed[s]:
            best = s
    return best, m


@njit(cache=True)
def _next_level(floor, remaining, lo_r, hi_r, m, fixed_list, fixed_off, off, sec_lo):
    """Lowest offset above ``m`` where a buffer of the part can still start: a section floor or the
    offset of an unplaced pinned buffer (-1 if none)."""
    nxt = np.int64(-1)
    for s in range(lo_r, hi_r):
        if remaining[s] > 0 and floor[s] > m and (nxt < 0 or floor[s] < nxt):
            nxt = floor[s]
    for f in fixed_list:
        if off[f] < 0 and lo_r <= sec_lo[f] < hi_r and fixed_off[f] > m and (nxt < 0 or fixed_off[f] < nxt):
            nxt = fixed_off[f]
    return nxt


@njit(cache=True)
def _pinned_buffer_buried(floor, fixed_list, fixed_off, off, sec_lo, sec_hi):
    """True when some unplaced pinned buffer lies below a section floor, so it can no longer be placed."""
    for f in fixed_list:
        if off[f] < 0:
            for s in range(sec_lo[f], sec_hi[f]):
                if floor[s] > fixed_off[f]:
                    return True
    return False


@njit(cache=True)
def _settle_part(floor, closed, remaining, lo_r, hi_r, fixed_list, fixed_off, off, sec_lo, sec_hi, capacity,
                 trail, tp):
    """Give the part ``[lo_r, hi_r)`` an open lowest point: when every section at the lowest floor is
    closed, nothing can start there any more, so they are wasted up to the next level where a buffer
    can start. Returns ``(ok, trail, tp)``; ``ok`` False when the part is dead."""
    while True:
        s_open, m = _lowest_open_point(floor, closed, remaining, lo_r, hi_r)
        if s_open >= 0:
            return True, trail, tp
        nxt = _next_level(floor, remaining, lo_r, hi_r, m, fixed_list, fixed_off, off, sec_lo)
        if nxt < 0:
            return False, trail, tp
        for s in range(lo_r, hi_r):
            if remaining[s] > 0 and floor[s] == m:
                trail, tp = _push(trail, tp, FLOOR, s, floor[s])
                floor[s] = nxt
                trail, tp = _push(trail, tp, CLOSED, s, closed[s])
                closed[s] = 0
                if _waste_exceeds_slack(remaining[s], nxt, capacity):
                    return False, trail, tp
        if _pinned_buffer_buried(floor, fixed_list, fixed_off, off, sec_lo, sec_hi):
            return False, trail, tp


@njit(cache=True)
def _propagate_floors(floor, closed, remaining, lo_r, hi_r, size, sec_lo, sec_hi, fixed_off, off, lowest, capacity,
                      trail, tp):
    """Raise each section's floor to the lowest offset any unplaced buffer covering it can still take (a
    buffer sits above the floors of all its sections), until nothing changes; the bytes skipped are
    wasted. Returns ``(ok, trail, tp)``; ``ok`` False when a buffer cannot fit or waste exceeds slack."""
    changed = True
    while changed:
        changed = False
        for s in range(lo_r, hi_r):
            lowest[s] = -1
        for c in range(size.shape[0]):
            if off[c] >= 0 or not lo_r <= sec_lo[c] < hi_r:
                continue
            o = fixed_off[c]
            if o < 0:
                for s in range(sec_lo[c], sec_hi[c]):
                    if floor[s] > o:
                        o = floor[s]
                if o + size[c] > capacity:
                    return False, trail, tp
            for s in range(sec_lo[c], sec_hi[c]):
                if lowest[s] < 0 or o < lowest[s]:
                    lowest[s] = o
        for s in range(lo_r, hi_r):
            if remaining[s] > 0 and lowest[s] > floor[s]:
                trail, tp = _push(trail, tp, FLOOR, s, floor[s])
                floor[s] = lowest[s]
                trail, tp = _push(trail, tp, CLOSED, s, closed[s])
                closed[s] = 0
                changed = True
                if _waste_exceeds_slack(remaining[s], floor[s], capacity):
                    return False, trail, tp
    return True, trail, tp


@njit(cache=True)
def _collides_with_pinned(b, m, size, fx_ptr, fx_idx, fixed_off, off):
    """True when ``b`` at offset ``m`` would overlap an unplaced pinned buffer alive at the same time."""
    for q in range(fx_ptr[b], fx_ptr[b + 1]):
        f = fx_idx[q]
        if off[f] < 0 and fixed_off[f] < m + size[b]:
            return True
    return False


@njit(cache=True)
def _waits_for_twin(b, twin, off):
    """True when an identical buffer earlier in branching order is still unplaced (twins go in order)."""
    return twin[b] >= 0 and off[twin[b]] < 0


@njit(cache=True)
def _can_cover_point(b, m, run_lo, run_hi, forced, size, sec_lo, sec_hi, fixed_off, off, twin, fx_ptr, fx_idx,
                     capacity):
    """True when buffer ``b`` may be placed at offset ``m`` inside the run ``[run_lo, run_hi)`` of sections
    open at that level."""
    if off[b] >= 0 or (forced >= 0 and b != forced):
        return False
    if sec_lo[b] < run_lo or sec_hi[b] > run_hi or m + size[b] > capacity:
        return False
    if fixed_off[b] >= 0:
        return fixed_off[b] == m
    return not _waits_for_twin(b, twin, off) and not _collides_with_pinned(b, m, size, fx_ptr, fx_idx,
                                                                           fixed_off, off)


@njit(cache=True)
def _pinned_cover(s, m, sec_ptr, sec_idx, fixed_off, off):
    """The unplaced pinned buffer covering section ``s`` at offset ``m`` (it must be placed there), or -1."""
    for q in range(sec_ptr[s], sec_ptr[s + 1]):
        b = sec_idx[q]
        if off[b] < 0 and fixed_off[b] == m:
            return b
    return -1


@njit(cache=True)
def _open_run_end(floor, closed, remaining, s, m, hi_r):
    """First section at or after ``s`` that is not open at level ``m``."""
    while s < hi_r and remaining[s] > 0 and floor[s] == m and not closed[s]:
        s += 1
    return s


@njit(cache=True)
def _open_node(node, d, lo_r, hi_r, floor, closed, remaining, sec_ptr, sec_idx, size, sec_lo, sec_hi, fixed_off,
               off, twin, fx_ptr, fx_idx, capacity):
    """Set up depth ``d`` to branch on the point of part ``[lo_r, hi_r)`` that fewest buffers can cover
    (first fail), among the open sections at the lowest level: in a packing, the byte at a section's
    floor is either wasted or the bottom of a buffer, which then lies inside the run of sections open
    at that level."""
    m = _lowest_open_point(floor, closed, remaining, lo_r, hi_r)[1]
    node[d, LEVEL] = m
    node[d, RLO] = lo_r
    node[d, RHI] = hi_r
    best = np.int64(-1)
    s = lo_r
    while s < hi_r and best != 0:
        run_hi = _open_run_end(floor, closed, remaining, s, m, hi_r)
        for t in range(s, run_hi):
            forced = _pinned_cover(t, m, sec_ptr, sec_idx, fixed_off, off)
            count = 0
            for q in range(sec_ptr[t], sec_ptr[t + 1]):
                if _can_cover_point(sec_idx[q], m, s, run_hi, forced, size, sec_lo, sec_hi, fixed_off, off, twin,
                                    fx_ptr, fx_idx, capacity):
                    count += 1
            if best < 0 or count < best:
                best = count
                node[d, PT] = t
                node[d, RUN_LO] = s
                node[d, RUN_HI] = run_hi
                node[d, FORCED] = forced
                if count == 0:
                    break
        s = run_hi + 1 if run_hi == s else run_hi
    node[d, CUR] = sec_ptr[node[d, PT]]


@njit(cache=True)
def search_packing(size, sec_lo, sec_hi, n_sections, sec_ptr, sec_idx, twin, fixed_off, fx_ptr, fx_idx,
                   capacity, alignment, node_limit, deadline, memo):
    """Depth-first skyline search for a packing of all buffers within ``capacity``.

    Every packing can be pushed down until each buffer rests on another one (or on 0, or is
    pinned); placing such a packing's buffers in (offset, first section) order, the next buffer
    always starts at the *lowest point*: the leftmost section at the lowest floor that is still
    open. So each node branches on which buffer starts there -- one whose first section is that
    section and whose sections all sit at the same floor -- or on closing the point (its bytes are
    wasted; MiniMalloc's canonical placements, Moffitt ASPLOS 2023, seen section by section).
    Inference: a section's unplaced bytes must fit above its floor (so zero-slack sections never
    waste); identical buffers go in order; the part is split where no unplaced buffer crosses
    and the parts are solved one after another.

    ``start_ptr/start_idx`` list the buffers by first section in branching order, ``twin[i]`` is
    the previous identical free buffer in that order (or -1), ``fixed_off[i] >= 0`` pins buffer
    ``i``, ``fx_ptr/fx_idx`` list per buffer the pinned buffers alive with it. ``deadline`` is a
    ``time.perf_counter()`` value (<= 0: none). ``memo`` (uint64, power-of-two length, zeros when fresh)
    keeps hashes of part states proven dead; it may be reused across calls on the same instance.
    Returns ``(status, offsets, nodes, memo hits)``, status FOUND,
    NOT_FOUND (proof that no packing exists), NODE_LIMIT or TIMEOUT.
    """
    n = size.shape[0]
    off = np.full(n, -1, np.int64)
    remaining = np.zeros(n_sections, np.int64)
    for i in range(n):
        for s in range(sec_lo[i], sec_hi[i]):
            remaining[s] += size[i]
    floor = np.zeros(n_sections, np.int64)
    closed = np.zeros(n_sections, np.int64)
    fixed_list = np.flatnonzero(fixed_off >= 0)
    trail = np.empty((4 * n + 64, 3), np.int64)
    lowest = np.zeros(n_sections, np.int64)
    ok = True
    for s in range(n_sections):
        if _waste_exceeds_slack(remaining[s], 0, capacity):
            ok = False
    if ok:
        ok, trail, tp = _propagate_floors(floor, closed, remaining, 0, n_sections, size, sec_lo, sec_hi, fixed_off,
                                          off, lowest, capacity, trail, 0)
    if ok:
        ok, trail, tp = _settle_part(floor, closed, remaining, 0, n_sections, fixed_list, fixed_off, off, sec_lo,
                                     sec_hi, capacity, trail, tp)
    if n == 0:
        return FOUND, off, np.int64(0), np.int64(0)
    if not ok:
        return NOT_FOUND, off, np.int64(0), np.int64(0)
    # per-depth node state (columns PT..RHI); closing decisions make the depth unbounded, so it grows
    node = np.zeros((n + n_sections + 1, N_COLS), np.int64)
    # decomposition frames: a part split into independent parts solved one after another
    f_depth = np.zeros(n + 2, np.int64)
    f_pptr = np.zeros(n + 2, np.int64)
    f_np = np.zeros(n + 2, np.int64)
    f_cur = np.zeros(n + 2, np.int64)
    f_start = np.zeros(n + 2, np.int64)
    part_lo = np.zeros(2 * n_sections + 2, np.int64)
    part_hi = np.zeros(2 * n_sections + 2, np.int64)
    cross = np.zeros(n_sections + 1, np.int64)
    live = np.zeros(n_sections + 1, np.int64)
    nf = 1
    f_depth[0] = -1
    f_np[0] = 1
    part_hi[0] = n_sections
    pp = 1
    d = 0
    _open_node(node, d, 0, n_sections, floor, closed, remaining, sec_ptr, sec_idx, size, sec_lo, sec_hi, fixed_off,
               off, twin, fx_ptr, fx_idx, capacity)
    placed = 0
    nodes = np.int64(0)
    memo_hits = np.int64(0)
    while True:
        s_open = node[d, PT]
        m = node[d, LEVEL]
        stop = sec_ptr[s_open + 1]
        if node[d, CUR] > stop:
            # options exhausted: this part's state has no completion; a failed part dooms its decomposition
            _memo_add(memo, _part_key(floor, closed, remaining, off, sec_lo, node[d, RLO], node[d, RHI]))
            fi = nf - 1
            target = d - 1
            if d == f_start[fi]:
                if fi == 0:
                    return NOT_FOUND, off, nodes, memo_hits
                target = f_depth[fi]
                nf -= 1
                pp = f_pptr[fi]
            while d > target:
                d -= 1
                placed -= _take_back(node[d, CHOSEN], size, sec_lo, sec_hi, remaining, off)
                tp = _undo(trail, tp, node[d, TSTART], floor, closed)
            continue
        b = -1
        if node[d, CUR] < stop:
            b = sec_idx[node[d, CUR]]
            node[d, CUR] += 1
            if not _can_cover_point(b, m, node[d, RUN_LO], node[d, RUN_HI], node[d, FORCED], size, sec_lo, sec_hi,
                                    fixed_off, off, twin, fx_ptr, fx_idx, capacity):
                continue
        else:
            node[d, CUR] += 1
            if node[d, FORCED] >= 0 or _waste_exceeds_slack(remaining[s_open], m + alignment, capacity):
                continue
        nodes += 1
        if nodes > node_limit:
            return NODE_LIMIT, off, nodes, memo_hits
        if deadline > 0 and (nodes & 1023) == 0:
            with objmode(now="float64"):
                now = _perf_counter()
            if now > deadline:
                return TIMEOUT, off, nodes, memo_hits
        node[d, TSTART] = tp
        node[d, CHOSEN] = b
        ok = True
        if b >= 0:
            off[b] = m
            placed += 1
            top = _align_up(m + size[b], alignment)
            for s in range(sec_lo[b], sec_hi[b]):
                remaining[s] -= size[b]
                trail, tp = _push(trail, tp, FLOOR, s, floor[s])
                floor[s] = top
                if _waste_exceeds_slack(remaining[s], top, capacity):
                    ok = False
            if placed == n and ok:
                return FOUND, off, nodes, memo_hits
        else:
            trail, tp = _push(trail, tp, CLOSED, s_open, closed[s_open])
            closed[s_open] = 1
        new_lo = node[d, RLO]
        new_hi = node[d, RHI]
        n_left = 0
        if ok:
            ok, trail, tp = _propagate_floors(floor, closed, remaining, new_lo, new_hi, size, sec_lo, sec_hi,
                                              fixed_off, off, lowest, capacity, trail, tp)
        if ok:
            n_left = _split_part(off, sec_lo, sec_hi, new_lo, new_hi, cross, live, part_lo, part_hi, pp)
            for k in range(n_left):
                ok2, trail, tp = _settle_part(floor, closed, remaining, part_lo[pp + k], part_hi[pp + k],
                                              fixed_list, fixed_off, off, sec_lo, sec_hi, capacity, trail, tp)
                ok = ok and ok2
        if not ok:
            placed -= _take_back(b, size, sec_lo, sec_hi, remaining, off)
            tp = _undo(trail, tp, node[d, TSTART], floor, closed)
            continue
        nd = d + 1
        if n_left == 0:
            # this part is complete: move on to the next part of the innermost unfinished decomposition
            while True:
                fi = nf - 1
                f_cur[fi] += 1
                if f_cur[fi] < f_np[fi]:
                    f_start[fi] = nd
                    new_lo = part_lo[f_pptr[fi] + f_cur[fi]]
                    new_hi = part_hi[f_pptr[fi] + f_cur[fi]]
                    break
                nf -= 1
                pp = f_pptr[fi]
        else:
            new_lo = part_lo[pp]
            new_hi = part_hi[pp]
            if n_left >= 2:
                f_depth[nf] = d
                f_pptr[nf] = pp
                f_np[nf] = n_left
                f_cur[nf] = 0
                f_start[nf] = nd
                pp += n_left
                nf += 1
        if nd == node.shape[0]:
            node = _grown(node)
        _open_node(node, nd, new_lo, new_hi, floor, closed, remaining, sec_ptr, sec_idx, size, sec_lo, sec_hi,
                   fixed_off, off, twin, fx_ptr, fx_idx, capacity)
        if _memo_has(memo, _part_key(floor, closed, remaining, off, sec_lo, new_lo, new_hi)):
            node[nd, CUR] = sec_ptr[node[nd, PT] + 1] + 1  # a state already proven dead (same skyline)
            memo_hits += 1
        d = nd


@njit(cache=True)
def _grown(table):
    """The table with twice as many rows (the new rows uninitialised)."""
    bigger = np.empty((2 * table.shape[0], table.shape[1]), table.dtype)
    bigger[:table.shape[0]] = table
    return bigger


@njit(cache=True)
def _take_back(b, size, sec_lo, sec_hi, remaining, off):
    """Unplace buffer ``b`` (no-op for a closing decision, ``b < 0``); returns how many buffers were unplaced."""
    if b < 0:
        return 0
    for s in range(sec_lo[b], sec_hi[b]):
        remaining[s] += size[b]
    off[b] = -1
    return 1


@njit(cache=True)
def _split_part(off, sec_lo, sec_hi, lo_r, hi_r, cross, live, part_lo, part_hi, pp):
    """Split sections [lo_r, hi_r) where no unplaced buffer crosses; write the non-empty parts at
    ``part_lo/part_hi[pp:]`` and return how many there are (0: no unplaced buffer is left)."""
    for s in range(lo_r, hi_r + 1):
        cross[s] = 0
        live[s] = 0
    any_left = False
    for i in range(off.shape[0]):
        if off[i] < 0 and lo_r <= sec_lo[i] < hi_r:
            any_left = True
            cross[sec_lo[i] + 1] += 1
            cross[sec_hi[i]] -= 1
            live[sec_lo[i]] += 1
            live[sec_hi[i]] -= 1
    if not any_left:
        return 0
    k = 0
    c = 0
    lv = 0
    start = -1
    for s in range(lo_r, hi_r):
        c += cross[s]
        lv += live[s]
        if start >= 0 and c == 0:
            part_lo[pp + k] = start
            part_hi[pp + k] = s
            k += 1
            start = -1
        if start < 0 and lv > 0:
            start = s
    if start >= 0:
        part_lo[pp + k] = start
        part_hi[pp + k] = hi_r
        k += 1
    return k


@njit(cache=True)
def _mix(x):
    """splitmix64 finaliser: a well-spread 64-bit hash of ``x``."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True)
def _part_key(floor, closed, remaining, off, sec_lo, lo_r, hi_r):
    """Hash of what the search of part ``[lo_r, hi_r)`` depends on: its section floors and closed flags and
    its unplaced buffers (not where the placed ones are, so rearrangements with the same skyline collide)."""
    h = _mix(np.uint64(lo_r) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(hi_r))
    for s in range(lo_r, hi_r):
        if remaining[s] > 0:
            h += _mix(_mix(np.uint64(s)) + np.uint64(2 * floor[s] + closed[s]))
    for i in range(off.shape[0]):
        if off[i] < 0 and lo_r <= sec_lo[i] < hi_r:
            h ^= _mix(np.uint64(i) + np.uint64(0x632BE59BD9B4E019))
    return h | np.uint64(1)  # 0 marks an empty slot


@njit(cache=True)
def _memo_has(memo, key):
    """True when ``key`` is in the open-addressing table ``memo``."""
    mask = np.uint64(memo.shape[0] - 1)
    for k in range(4):
        v = memo[(key + np.uint64(k)) & mask]
        if v == key:
            return True
        if v == 0:
            return False
    return False


@njit(cache=True)
def _memo_add(memo, key):
    """Insert ``key`` into ``memo`` (overwriting an old entry when its probe run is full)."""
    mask = np.uint64(memo.shape[0] - 1)
    for k in range(4):
        slot = (key + np.uint64(k)) & mask
        if memo[slot] == 0 or memo[slot] == key:
            memo[slot] = key
            return
    memo[key & mask] = key


@njit(cache=True)
def _push(trail, tp, kind, idx, old):
    """Record ``(kind, idx, old value)`` at row ``tp`` of the undo trail, doubling it when full;
    returns the (possibly new) trail and ``tp + 1``."""
    if tp == trail.shape[0]:
        trail = _grown(trail)
    trail[tp, 0] = kind
    trail[tp, 1] = idx
    trail[tp, 2] = old
    return trail, tp + 1


@njit(cache=True)
def _undo(trail, tp, stop, floor, closed):
    """Restore section floors and closed flags recorded on the trail above ``stop``; returns ``stop``."""
    while tp > stop:
        tp -= 1
        if trail[tp, 0] == FLOOR:
            floor[trail[tp, 1]] = trail[tp, 2]
        else:
            closed[trail[tp, 1]] = trail[tp, 2]
    return tp


def _perf_counter():
    import time

    return time.perf_counter()


def warmup() -> None:
    """Compile the allocation kernels on a three-buffer instance."""
    lo = np.array([0, 1, 2], np.int64)
    hi = np.array([2, 3, 3], np.int64)
    size = np.array([2, 1, 1], np.int64)
    ptr, idx = overlap_csr(lo, hi)
    greedy_place(np.arange(3), size, ptr, idx, np.full(3, -1, np.int64), 1, True)
    lifetime_partitions(lo, hi, 3)
    sec_ptr = np.array([0, 1, 3, 5], np.int64)
    sec_idx = np.array([0, 0, 1, 1, 2], np.int64)
    twin = np.full(3, -1, np.int64)
    fixed = np.array([-1, -1, 2], np.int64)
    fx_ptr = np.array([0, 0, 1, 1], np.int64)
    fx_idx = np.array([2], np.int64)
    for deadline in (0.0, 1e300):
        search_packing(size, lo, hi, 3, sec_ptr, sec_idx, twin, fixed, fx_ptr, fx_idx, 3, 1, 1000, deadline,
                       np.zeros(64, np.uint64))
