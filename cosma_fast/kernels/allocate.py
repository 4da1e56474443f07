"""Static allocation kernels: greedy placement and a MiniMalloc-style search.

Buffers have half-open lifetimes over *sections* (elementary time intervals
between consecutive distinct lifetime endpoints) and a byte size; two buffers
whose section ranges intersect must get disjoint address ranges.

The exact search (:func:`search_packing`) follows MiniMalloc (Moffitt,
"MiniMalloc: A Lightweight Memory Allocator for Hardware-Accelerated Machine
Learning", ASPLOS 2023): a depth-first search over *canonical* packings, here
kept as a skyline (per section the floor below which every byte is used or
wasted) that grows from its lowest point or from a pit of sections that cannot
waste a byte, with inference on the cross-sections
(offset bounds, waste against slack, exact tiling of a level, a section's unplaced
buffers stacked from their bounds within the capacity), symmetry breaking
between identical buffers, decomposition of the lifetime axis where no unplaced
buffer crosses, and a memo of dead part states. Whole independent parts are
split off by the caller with :func:`lifetime_partitions`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, objmode

__all__ = ["overlap_csr", "greedy_place", "lifetime_partitions", "search_packing", "warmup"]

FOUND = 0
NOT_FOUND = 1  # the search space was exhausted: no packing within capacity
NODE_LIMIT = 2
TIMEOUT = 3
FLOOR, CLOSED, BOUND = range(3)  # undo-trail kinds: section floor, closed flag, buffer offset bound
TP, QLEN, NMARK, NLEV = range(4)  # counters: undo-trail top, queued sections, sections to re-check, levels to
# re-check (the level list lives after the counters in the same array)
# columns of the per-depth node table: branching point (section, level), the run of sections open at that
# level around it, option cursor and end of its candidates on the candidate stack (the end is the closing
# option), pinned buffer that must go there (or -1),
# decision taken (buffer, or -1 for closing the point), trail position before it, range of the part searched
PT, LEVEL, RUN_LO, RUN_HI, CUR, CEND, FORCED, CHOSEN, TSTART, RLO, RHI = range(11)
N_COLS = 11
MAX_LEVELS = 64  # levels whose tiling is re-checked after one decision (more are skipped: only pruning)


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
def _record(trail, ctr, kind, idx, old):
    """Push ``(kind, idx, old value)`` on the undo trail (``ctr[TP]`` is its top), doubling it when full;
    returns the (possibly new) trail."""
    tp = ctr[TP]
    if tp == trail.shape[0]:
        trail = _grown(trail)
    trail[tp, 0] = kind
    trail[tp, 1] = idx
    trail[tp, 2] = old
    ctr[TP] = tp + 1
    return trail


@njit(cache=True)
def _undo(trail, ctr, stop, floor, closed, bound):
    """Restore the floors, closed flags and offset bounds recorded on the trail above ``stop``."""
    tp = ctr[TP]
    while tp > stop:
        tp -= 1
        kind = trail[tp, 0]
        if kind == FLOOR:
            floor[trail[tp, 1]] = trail[tp, 2]
        elif kind == CLOSED:
            closed[trail[tp, 1]] = trail[tp, 2]
        else:
            bound[trail[tp, 1]] = trail[tp, 2]
    ctr[TP] = stop


@njit(cache=True)
def _raise_floor(s, level, floor, closed, trail, ctr, queue, queued):
    """Lift section ``s`` to ``level`` (a new, open point) and queue it for propagation; returns the trail."""
    trail = _record(trail, ctr, FLOOR, s, floor[s])
    floor[s] = level
    _note_level(level, ctr)
    if closed[s]:
        trail = _record(trail, ctr, CLOSED, s, 1)
        closed[s] = 0
    if not queued[s]:
        queued[s] = 1
        queue[ctr[QLEN]] = s
        ctr[QLEN] += 1
    return trail


@njit(cache=True)
def _note_level(level, ctr):
    """Add ``level`` to the levels whose tiling must be re-checked (``ctr[4:4 + ctr[NLEV]]``)."""
    k = ctr[NLEV]
    for j in range(4, 4 + k):
        if ctr[j] == level:
            return
    if k < MAX_LEVELS:
        ctr[4 + k] = level
        ctr[NLEV] = k + 1


@njit(cache=True)
def _level_tileable(level, lo_r, hi_r, floor, closed, remaining, bound, reach, by_lo, lo_ptr, sec_hi, off, fixed_off,
                    capacity, alignment):
    """False when the sections of ``[lo_r, hi_r)`` whose floor is ``level`` and that cannot waste a byte
    cannot all be covered by buffers sitting at ``level``: those buffers are disjoint in time, lie where
    floors are <= ``level``, and each starts and ends at section boundaries, so the covered sections
    must be an exact union of their lifetimes (a left-to-right reachability test)."""
    for t in range(lo_r, hi_r + 1):
        reach[t] = 0
    reach[lo_r] = 1
    for t in range(lo_r, hi_r):
        if not reach[t]:
            continue
        at_level = floor[t] == level and remaining[t] > 0
        if not (at_level and not closed[t] and _waste_exceeds_slack(remaining[t], level + alignment, capacity)):
            reach[t + 1] = 1  # t may stay uncovered at this level
        if floor[t] > level or (at_level and closed[t]):
            continue  # nothing can sit at this level in t
        for c in by_lo[lo_ptr[t]:lo_ptr[t + 1]]:
            if off[c] < 0 and (bound[c] == level if fixed_off[c] < 0 else fixed_off[c] == level):
                reach[sec_hi[c]] = 1
    return reach[hi_r] == 1


@njit(cache=True)
def _stack_overflows(t, floor, sec_ptr, sec_idx, off, size, fixed_off, bound, capacity, rel):
    """True when section ``t``'s unplaced buffers, each at or above its offset bound, cannot all fit below
    the capacity: stacking them from the floor in order of bound gives the lowest top (one machine with
    release times), so a higher top leaves no room."""
    k = 0
    for q in range(sec_ptr[t], sec_ptr[t + 1]):
        c = sec_idx[q]
        if off[c] < 0:
            r = fixed_off[c] if fixed_off[c] >= 0 else bound[c]
            j = k
            while j > 0 and rel[j - 1, 0] > r:  # insertion sort by bound
                rel[j, 0] = rel[j - 1, 0]
                rel[j, 1] = rel[j - 1, 1]
                j -= 1
            rel[j, 0] = r
            rel[j, 1] = size[c]
            k += 1
    if k == 0:
        return False  # nothing left to place (an aligned floor may sit above the capacity)
    top = floor[t]
    for j in range(k):
        top = max(top, rel[j, 0]) + rel[j, 1]
    return top > capacity


@njit(cache=True)
def _changed_stacks_fit(trail, start, stop, stamp, seen, floor, sec_lo, sec_hi, sec_ptr, sec_idx, off, size, fixed_off,
                        bound, capacity, rel):
    """False when a section whose floor or whose buffers' bounds changed since trail entry ``start``
    overflows (:func:`_stack_overflows`); ``seen`` stamps the sections already checked."""
    for e in range(start, stop):
        kind = trail[e, 0]
        if kind == CLOSED:
            continue
        a = trail[e, 1] if kind == FLOOR else sec_lo[trail[e, 1]]
        b = a + 1 if kind == FLOOR else sec_hi[trail[e, 1]]
        for t in range(a, b):
            if seen[t] != stamp:
                seen[t] = stamp
                if _stack_overflows(t, floor, sec_ptr, sec_idx, off, size, fixed_off, bound, capacity, rel):
                    return False
    return True


@njit(cache=True)
def _mark(s, marks, marked, ctr):
    """Add section ``s`` to the sections whose floor must be re-checked."""
    if not marked[s]:
        marked[s] = 1
        marks[ctr[NMARK]] = s
        ctr[NMARK] += 1


@njit(cache=True)
def _lowest_bound(s, sec_ptr, sec_idx, off, fixed_off, bound):
    """Lowest offset any unplaced buffer covering section ``s`` can still take (-1 when there is none)."""
    low = np.int64(-1)
    for q in range(sec_ptr[s], sec_ptr[s + 1]):
        c = sec_idx[q]
        if off[c] < 0:
            o = fixed_off[c] if fixed_off[c] >= 0 else bound[c]
            if low < 0 or o < low:
                low = o
    return low


@njit(cache=True)
def _propagate(floor, closed, remaining, bound, off, size, sec_lo, sec_hi, sec_ptr, sec_idx, fixed_off, capacity,
               trail, ctr, queue, queued, marks, marked):
    """Propagate the queued floor changes to a fixpoint: a buffer lies above the floors of all its
    sections (its offset bound), and a section's floor rises to the lowest bound among the unplaced
    buffers covering it (the bytes skipped are wasted). Returns ``(ok, trail)``; ``ok`` is False when a
    buffer no longer fits or a section's waste exceeds its slack."""
    ok = True
    while ok and (ctr[QLEN] > 0 or ctr[NMARK] > 0):
        for k in range(ctr[QLEN]):
            s = queue[k]
            queued[s] = 0
            for q in range(sec_ptr[s], sec_ptr[s + 1]):
                c = sec_idx[q]
                if not ok or off[c] >= 0 or fixed_off[c] >= 0 or bound[c] >= floor[s]:
                    continue
                trail = _record(trail, ctr, BOUND, c, bound[c])
                _note_level(bound[c], ctr)  # c no longer sits at its old level
                for t in range(sec_lo[c], sec_hi[c]):
                    if floor[t] == bound[c]:  # c may have been the only buffer able to start at t's floor
                        _mark(t, marks, marked, ctr)
                bound[c] = floor[s]
                ok = bound[c] + size[c] <= capacity
        ctr[QLEN] = 0
        n_marked = ctr[NMARK]
        ctr[NMARK] = 0
        for k in range(n_marked):
            t = marks[k]
            marked[t] = 0
            if ok and remaining[t] > 0:
                low = _lowest_bound(t, sec_ptr, sec_idx, off, fixed_off, bound)
                if low > floor[t]:
                    trail = _raise_floor(t, low, floor, closed, trail, ctr, queue, queued)
                    ok = not _waste_exceeds_slack(remaining[t], low, capacity)
    _drop_pending(queue, queued, marks, marked, ctr)
    return ok, trail


@njit(cache=True)
def _drop_pending(queue, queued, marks, marked, ctr):
    """Forget queued and marked sections (after a failure)."""
    for k in range(ctr[QLEN]):
        queued[queue[k]] = 0
    for k in range(ctr[NMARK]):
        marked[marks[k]] = 0
    ctr[QLEN] = 0
    ctr[NMARK] = 0


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
def _settle_part(lo_r, hi_r, floor, closed, remaining, fixed_list, fixed_off, off, sec_lo, sec_hi, capacity, trail,
                 ctr, queue, queued):
    """Give the part ``[lo_r, hi_r)`` an open lowest point: when every section at the lowest floor is
    closed, nothing starts there any more, so they are wasted up to the next level where a buffer can
    start (the raised sections are queued). Returns ``(ok, trail)``; ``ok`` False when the part is dead."""
    s_open, m = _lowest_open_point(floor, closed, remaining, lo_r, hi_r)
    if s_open >= 0:
        return True, trail
    nxt = _next_level(floor, remaining, lo_r, hi_r, m, fixed_list, fixed_off, off, sec_lo)
    if nxt < 0:
        return False, trail
    for s in range(lo_r, hi_r):
        if remaining[s] > 0 and floor[s] == m:
            trail = _raise_floor(s, nxt, floor, closed, trail, ctr, queue, queued)
            if _waste_exceeds_slack(remaining[s], nxt, capacity):
                return False, trail
    return not _pinned_buffer_buried(floor, fixed_list, fixed_off, off, sec_lo, sec_hi), trail


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
def _fit_score(c, m, run_lo, run_hi, lo_r, hi_r, floor, size, sec_lo, sec_hi, alignment):
    """How snugly ``c`` at level ``m`` fits its run: +2 per run end it reaches, +1 per neighbour whose floor
    its top meets (buffers that fill a gap exactly are the likely ones in a tight packing)."""
    score = 0
    top = _align_up(m + size[c], alignment)
    if sec_lo[c] == run_lo:
        score += 2
        if run_lo > lo_r and floor[run_lo - 1] == top:
            score += 1
    if sec_hi[c] == run_hi:
        score += 2
        if run_hi < hi_r and floor[run_hi] == top:
            score += 1
    return score


@njit(cache=True)
def _rests_flat(c, level, floor, closed, sec_lo, sec_hi):
    """True when every section of ``c`` has its floor at ``level``, none closed (``c`` can be placed there and
    keep a skyline)."""
    for t in range(sec_lo[c], sec_hi[c]):
        if floor[t] != level or closed[t]:
            return False
    return True


@njit(cache=True)
def _mark_pits(lo_r, hi_r, floor, remaining, pit):
    """``pit[t] = 1`` for the sections of ``[lo_r, hi_r)`` whose run of equal floors has no neighbour with a lower
    floor (sections without unplaced bytes count as walls): a buffer resting at that floor there lies inside the
    run, so branching there keeps the search complete even above the lowest level."""
    a = lo_r
    while a < hi_r:
        if remaining[a] == 0:
            pit[a] = 0
            a += 1
            continue
        f = floor[a]
        b = a + 1
        while b < hi_r and remaining[b] > 0 and floor[b] == f:
            b += 1
        low_left = a > lo_r and remaining[a - 1] > 0 and floor[a - 1] < f
        low_right = b < hi_r and remaining[b] > 0 and floor[b] < f
        for t in range(a, b):
            pit[t] = 0 if low_left or low_right else 1
        a = b


@njit(cache=True)
def _open_node(node, d, lo_r, hi_r, floor, closed, remaining, bound, count, pit, by_lo, lo_ptr, sec_ptr, sec_idx, size,
               sec_lo, sec_hi, fixed_off, off, twin, fx_ptr, fx_idx, capacity, alignment, cand):
    """Set up depth ``d`` to branch on the point of part ``[lo_r, hi_r)`` that fewest buffers can cover
    (first fail): an open section at the lowest level ``m``, or a section in a pit (:func:`_mark_pits`) that
    cannot waste a byte. In a packing, the byte at such a section's floor is either wasted (only at
    ``m``) or the bottom of some unplaced buffer, which then sits at that floor (its offset bound) inside
    the pit, with no closed section under it. An unplaced pinned buffer at ``m`` is placed first."""
    m = _lowest_open_point(floor, closed, remaining, lo_r, hi_r)[1]
    node[d, LEVEL] = m
    node[d, RLO] = lo_r
    node[d, RHI] = hi_r
    node[d, FORCED] = -1
    for t in range(lo_r, hi_r):
        count[t] = 0
    _mark_pits(lo_r, hi_r, floor, remaining, pit)
    for c in by_lo[lo_ptr[lo_r]:lo_ptr[hi_r]]:
        if off[c] >= 0:
            continue
        if fixed_off[c] >= 0:
            if fixed_off[c] == m:
                node[d, FORCED] = c
                node[d, PT] = sec_lo[c]
                break
            continue
        lv = bound[c]
        if (not pit[sec_lo[c]] or floor[sec_lo[c]] != lv or lv + size[c] > capacity or _waits_for_twin(c, twin, off)
                or _collides_with_pinned(c, lv, size, fx_ptr, fx_idx, fixed_off, off)
                or not _rests_flat(c, lv, floor, closed, sec_lo, sec_hi)):
            continue
        for t in range(sec_lo[c], sec_hi[c]):
            count[t] += 1
    if node[d, FORCED] < 0:
        best = np.int64(-1)
        best_low = False
        for t in range(lo_r, hi_r):
            if remaining[t] == 0 or closed[t] or (best >= 0 and count[t] > best):
                continue
            low = floor[t] == m
            if best >= 0 and count[t] == best and (best_low or not low):
                continue  # ties go to the lowest level, then to the leftmost section
            if low or (pit[t] and _waste_exceeds_slack(remaining[t], floor[t] + alignment, capacity)):
                best = count[t]
                best_low = low
                node[d, PT] = t
        m = floor[node[d, PT]]
        node[d, LEVEL] = m
    t = node[d, PT]
    run_lo = t
    while run_lo > lo_r and remaining[run_lo - 1] > 0 and floor[run_lo - 1] == m and not closed[run_lo - 1]:
        run_lo -= 1
    run_hi = t + 1
    while run_hi < hi_r and remaining[run_hi] > 0 and floor[run_hi] == m and not closed[run_hi]:
        run_hi += 1
    node[d, RUN_LO] = run_lo
    node[d, RUN_HI] = run_hi
    base = node[d, CUR]
    while cand.shape[0] < base + sec_ptr[t + 1] - sec_ptr[t]:
        cand = _grown(cand)
    k = base
    for q in range(sec_ptr[t], sec_ptr[t + 1]):
        c = sec_idx[q]
        if _can_cover_point(c, m, run_lo, run_hi, node[d, FORCED], size, sec_lo, sec_hi, fixed_off, off, twin, fx_ptr,
                            fx_idx, capacity):
            score = _fit_score(c, m, run_lo, run_hi, lo_r, hi_r, floor, size, sec_lo, sec_hi, alignment)
            j = k
            while j > base and cand[j - 1, 1] < score:  # stable insertion by score, static order otherwise
                cand[j, 0] = cand[j - 1, 0]
                cand[j, 1] = cand[j - 1, 1]
                j -= 1
            cand[j, 0] = c
            cand[j, 1] = score
            k += 1
    node[d, CEND] = k
    return cand


@njit(cache=True)
def search_packing(size, sec_lo, sec_hi, n_sections, sec_ptr, sec_idx, twin, fixed_off, fx_ptr, fx_idx,
                   capacity, alignment, node_limit, deadline, memo):
    """Depth-first skyline search for a packing of all buffers within ``capacity``.

    State: per section its *floor* (every byte below is used or wasted, every byte above is free)
    and whether the byte at the floor is *closed* (known to be wasted). At the lowest floor, the
    byte at a section's floor is either the bottom of some unplaced buffer -- which then lies
    inside the run of sections open at that level -- or wasted. The same holds above the lowest
    floor in a *pit* (a run of equal floors with no lower neighbour) for a section that cannot
    waste a byte: its floor byte is the bottom of a buffer resting flat in the pit. Each node
    branches on this for the section, at the lowest floor or in such a pit, with the fewest
    candidate buffers (first fail anywhere on the skyline, so a constrained region is not left
    until everything below it is packed). When every section at the lowest floor is
    closed, they are wasted up to the next level where a buffer can start (every packing can be
    pushed down until each buffer rests on another one, so this loses none). This is MiniMalloc's
    canonical search (Moffitt, ASPLOS 2023) seen section by section. Inference: a buffer lies
    above the floors of its sections and a section's floor rises to the lowest such bound of its
    unplaced buffers; a section's unplaced bytes must fit above its floor (so zero-slack sections
    never waste), and also when each starts at or above its bound (when some section has slack);
    identical buffers go in order; the part is split where no unplaced buffer
    crosses and the parts are solved one after another; part states proven dead are memoised by
    skyline and unplaced set, so rearrangements with the same skyline are not searched again.

    ``sec_ptr/sec_idx`` list the buffers live in each section in branching order, ``twin[i]`` is
    the previous identical free buffer in that order (or -1), ``fixed_off[i] >= 0`` pins buffer
    ``i``, ``fx_ptr/fx_idx`` list per buffer the pinned buffers alive with it. ``deadline`` is a
    ``time.perf_counter()`` value (<= 0: none). ``memo`` (uint64, power-of-two length, zeros when fresh)
    keeps hashes of part states proven dead; it may be reused across calls on the same instance.
    Returns ``(status, offsets, nodes, memo hits)``, status FOUND, NOT_FOUND (proof that no packing
    exists), NODE_LIMIT or TIMEOUT.
    """
    n = size.shape[0]
    off = np.full(n, -1, np.int64)
    remaining = np.zeros(n_sections, np.int64)
    for i in range(n):
        for s in range(sec_lo[i], sec_hi[i]):
            remaining[s] += size[i]
    floor = np.zeros(n_sections, np.int64)
    closed = np.zeros(n_sections, np.int64)
    bound = np.zeros(n, np.int64)
    fixed_list = np.flatnonzero(fixed_off >= 0)
    by_lo = np.argsort(sec_lo, kind="mergesort")
    lo_ptr = np.searchsorted(sec_lo[by_lo], np.arange(n_sections + 1))
    trail = np.empty((8 * n + 64, 3), np.int64)
    ctr = np.zeros(4 + MAX_LEVELS, np.int64)
    queue = np.empty(n_sections, np.int64)
    queued = np.zeros(n_sections, np.int64)
    marks = np.empty(n_sections, np.int64)
    marked = np.zeros(n_sections, np.int64)
    ok = True
    for s in range(n_sections):
        ok = ok and not _waste_exceeds_slack(remaining[s], 0, capacity)
        _mark(s, marks, marked, ctr)
    while ok:
        ok, trail = _propagate(floor, closed, remaining, bound, off, size, sec_lo, sec_hi, sec_ptr, sec_idx,
                               fixed_off, capacity, trail, ctr, queue, queued, marks, marked)
        if ok:
            ok, trail = _settle_part(0, n_sections, floor, closed, remaining, fixed_list, fixed_off, off, sec_lo,
                                     sec_hi, capacity, trail, ctr, queue, queued)
        if ctr[QLEN] == 0:
            break
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
    count = np.zeros(n_sections, np.int64)
    pit = np.zeros(n_sections, np.int64)
    rel = np.empty((n + 1, 2), np.int64)
    seen = np.full(n_sections, -1, np.int64)
    # sections never gain slack, so without any at the start the stack rule never applies
    has_slack = ((remaining > 0) & (remaining < capacity)).any()
    reach = np.zeros(n_sections + 1, np.int64)
    ctr[NLEV] = 0
    cand = np.empty((4 * n + 16, 2), np.int64)  # candidate stack: per depth the options of its point
    node[0, CUR] = 0
    cand = _open_node(node, d, 0, n_sections, floor, closed, remaining, bound, count, pit, by_lo, lo_ptr, sec_ptr,
                      sec_idx, size, sec_lo, sec_hi, fixed_off, off, twin, fx_ptr, fx_idx, capacity, alignment, cand)
    placed = 0
    nodes = np.int64(0)
    memo_hits = np.int64(0)
    while True:
        s_open = node[d, PT]
        m = node[d, LEVEL]
        stop = node[d, CEND]
        if node[d, CUR] > stop:
            # options exhausted: this part's state has no completion; a failed part dooms its decomposition
            _memo_add(memo, _part_key(floor, closed, remaining, off, by_lo, lo_ptr, node[d, RLO], node[d, RHI]))
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
                _undo(trail, ctr, node[d, TSTART], floor, closed, bound)
            continue
        b = -1
        if node[d, CUR] < stop:
            b = cand[node[d, CUR], 0]
            node[d, CUR] += 1
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
        node[d, TSTART] = ctr[TP]
        node[d, CHOSEN] = b
        ok = True
        if b >= 0:
            off[b] = m
            placed += 1
            top = _align_up(m + size[b], alignment)
            for s in range(sec_lo[b], sec_hi[b]):
                remaining[s] -= size[b]
                trail = _raise_floor(s, top, floor, closed, trail, ctr, queue, queued)
                ok = ok and not _waste_exceeds_slack(remaining[s], top, capacity)
            if placed == n and ok:
                return FOUND, off, nodes, memo_hits
        else:
            trail = _record(trail, ctr, CLOSED, s_open, closed[s_open])
            closed[s_open] = 1
        new_lo = node[d, RLO]
        new_hi = node[d, RHI]
        n_left = 0
        if ok:
            ok, trail = _propagate(floor, closed, remaining, bound, off, size, sec_lo, sec_hi, sec_ptr, sec_idx,
                                   fixed_off, capacity, trail, ctr, queue, queued, marks, marked)
        if ok:
            n_left = _split_part(off, sec_lo, sec_hi, by_lo, lo_ptr, new_lo, new_hi, cross, live, part_lo, part_hi,
                                 pp)
        while ok and n_left > 0:
            # settle every part; lifting closed sections may trigger more propagation
            for k in range(n_left):
                if ok:
                    ok, trail = _settle_part(part_lo[pp + k], part_hi[pp + k], floor, closed, remaining, fixed_list,
                                             fixed_off, off, sec_lo, sec_hi, capacity, trail, ctr, queue, queued)
            if not ok or ctr[QLEN] == 0:
                break
            ok, trail = _propagate(floor, closed, remaining, bound, off, size, sec_lo, sec_hi, sec_ptr, sec_idx,
                                   fixed_off, capacity, trail, ctr, queue, queued, marks, marked)
        for k in range(4, 4 + ctr[NLEV]):
            ok = ok and _level_tileable(ctr[k], new_lo, new_hi, floor, closed, remaining, bound, reach, by_lo, lo_ptr,
                                        sec_hi, off, fixed_off, capacity, alignment)
        ctr[NLEV] = 0
        if ok and has_slack:
            ok = _changed_stacks_fit(trail, node[d, TSTART], ctr[TP], nodes, seen, floor, sec_lo, sec_hi, sec_ptr,
                                     sec_idx, off, size, fixed_off, bound, capacity, rel)
        if not ok:
            _drop_pending(queue, queued, marks, marked, ctr)
            placed -= _take_back(b, size, sec_lo, sec_hi, remaining, off)
            _undo(trail, ctr, node[d, TSTART], floor, closed, bound)
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
        node[nd, CUR] = node[d, CEND] + 1
        cand = _open_node(node, nd, new_lo, new_hi, floor, closed, remaining, bound, count, pit, by_lo, lo_ptr, sec_ptr,
                          sec_idx, size, sec_lo, sec_hi, fixed_off, off, twin, fx_ptr, fx_idx, capacity, alignment,
                          cand)
        if _memo_has(memo, _part_key(floor, closed, remaining, off, by_lo, lo_ptr, new_lo, new_hi)):
            node[nd, CUR] = node[nd, CEND] + 1  # a state already proven dead (same skyline)
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
def _split_part(off, sec_lo, sec_hi, by_lo, lo_ptr, lo_r, hi_r, cross, live, part_lo, part_hi, pp):
    """Split sections [lo_r, hi_r) where no unplaced buffer crosses; write the non-empty parts at
    ``part_lo/part_hi[pp:]`` and return how many there are (0: no unplaced buffer is left).
    ``by_lo[lo_ptr[s]:lo_ptr[s + 1]]`` are the buffers whose first section is ``s``."""
    for s in range(lo_r, hi_r + 1):
        cross[s] = 0
        live[s] = 0
    any_left = False
    for i in by_lo[lo_ptr[lo_r]:lo_ptr[hi_r]]:
        if off[i] < 0:
            any_left = True
            cross[sec_lo[i] + 1] += 1
            cross[sec_hi[i]] -= 1
            live[sec_lo[i]] += 1
            live[sec_hi[i]] -= 1
    if not any_left:
        return 0
    return _live_runs(cross, live, lo_r, hi_r, part_lo, part_hi, pp)


@njit(cache=True)
def _live_runs(cross, live, lo_r, hi_r, part_lo, part_hi, pp):
    """Write the maximal runs of sections in ``[lo_r, hi_r)`` that hold unplaced buffers and
    are not crossed at their ends (``cross``/``live``: difference arrays of crossings and of
    live buffers) to ``part_lo/part_hi[pp:]``; returns how many."""
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
def _part_key(floor, closed, remaining, off, by_lo, lo_ptr, lo_r, hi_r):
    """Hash of what the search of part ``[lo_r, hi_r)`` depends on: its section floors and closed flags and
    its unplaced buffers (not where the placed ones are, so rearrangements with the same skyline collide)."""
    h = _mix(np.uint64(lo_r) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(hi_r))
    for s in range(lo_r, hi_r):
        if remaining[s] > 0:
            h += _mix(_mix(np.uint64(s)) + np.uint64(2 * floor[s] + closed[s]))
    for i in by_lo[lo_ptr[lo_r]:lo_ptr[hi_r]]:
        if off[i] < 0:
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
