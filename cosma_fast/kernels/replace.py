"""Replacement + online allocation for a fixed schedule, in one pass.

:func:`plan_pass` walks a schedule step by step and decides, for every operand
that is not resident, where it goes and which resident tensors leave to make
room. It emits the plan as flat event arrays (``Plan.from_arrays`` format).

Two replacement rules share the same machinery:

``SIZE_AWARE`` (the heuristic)
    When no contiguous hole fits a request, every window of consecutive,
    address-sorted resident tensors that would open a large enough hole is
    scored by what evicting it costs: a clean tensor (input, weight, or an
    intermediate already written back) costs its reload, ``s``; a dirty
    intermediate still needed costs a store and a reload, ``2 s``; a dead
    tensor costs nothing. Each cost is divided by ``d ** beta`` where ``d`` is
    the distance to its next use (far uses are cheaper to give up: the tensor
    would likely be evicted anyway). The cheapest window is evicted. Size and
    write-back matter because size-blind Belady is arbitrarily bad with sizes
    and dirty data (DESIGN.md section 3; COSMA, arXiv 2311.18246).
    Placement is best fit; inside the chosen hole the tensor is put against
    the neighbour that dies later, so that the rest of the hole merges with
    the space freed when the other neighbour dies.

``BELADY`` (COSMA's baseline)
    Best-fit placement at the lowest address of the tightest hole (TFLite's
    arena rule) and size-blind Belady eviction: evict the resident tensor with
    the farthest next use until the request fits contiguously.

Both rules evict dead tensors at the start of each step, write graph outputs
back at the first step after they are produced (that store is compulsory, and a
clean tensor is cheaper to evict later). If the pinned operands of a step leave
no room, ``BELADY`` falls back to emptying the scratchpad and packing the step's
operands from address 0 (always possible when ``capacity >= M_R`` and the
alignment allows it); ``SIZE_AWARE`` first repacks the step around the resident
operands worth keeping (:func:`_cheapest_repack`) and uses that fallback only
when no such packing is found.

At ``M_R`` the largest operator leaves no slack: its operands must tile the
scratchpad, which an online allocator finds out only when it gets there.
:func:`plan_pass_refined` therefore repeats the size-aware pass, placing each
tensor whose step had to move operands at the address that step gave it (and
clearing that range when the tensor is created or loaded), as COSMA's joint
ILP does by construction.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .allocate import _align_up

STORE, EVICT, LOAD, ALLOC = 0, 1, 2, 3
SIZE_AWARE, BELADY = 0, 1
_INTERMEDIATE = 2
_INF = np.int64(1) << np.int64(62)
#: subsets of resident operands and search nodes per subset tried by the repacking fallback
_REPACK_TRIES, _REPACK_NODES = 32, 200


@njit(cache=True)
def use_positions(order, n_tensors, cons_ptr, cons_idx):
    """``pos`` (op -> step), ``use`` (per tensor, sorted steps that read it, CSR by
    ``cons_ptr``) and ``last`` (last step reading each tensor, -1 when none)."""
    n = order.shape[0]
    pos = np.empty(n, np.int64)
    for i in range(n):
        pos[order[i]] = i
    use = np.empty(cons_idx.shape[0], np.int64)
    last = np.full(n_tensors, -1, np.int64)
    for t in range(n_tensors):
        a = cons_ptr[t]
        b = cons_ptr[t + 1]
        for e in range(a, b):
            use[e] = pos[cons_idx[e]]
        if b > a:
            use[a:b] = np.sort(use[a:b])
            last[t] = use[b - 1]
    return pos, use, last


@njit(cache=True)
def _insert(res, nres, addr, t, a):
    k = nres
    while k > 0 and addr[res[k - 1]] > a:
        res[k] = res[k - 1]
        k -= 1
    res[k] = t
    addr[t] = a
    return nres + 1


@njit(cache=True)
def _remove(res, nres, addr, t):
    k = 0
    while res[k] != t:
        k += 1
    for j in range(k, nres - 1):
        res[j] = res[j + 1]
    addr[t] = -1
    return nres - 1


@njit(cache=True)
def _death(t, last, i):
    return last[t] if last[t] >= i else i


@njit(cache=True)
def _find_hole(res, nres, addr, size, last, capacity, alignment, s, i, mode):
    """Address for ``s`` bytes in the tightest free hole, or -1."""
    best_a = -1
    best_gap = _INF
    prev_end = 0
    prev_death = _INF
    for k in range(nres + 1):
        if k < nres:
            nx_start = addr[res[k]]
            nx_death = _death(res[k], last, i)
        else:
            nx_start = capacity
            nx_death = _INF
        lo = _align_up(prev_end, alignment)
        if lo + s <= nx_start:
            gap = nx_start - prev_end
            if gap < best_gap:
                best_gap = gap
                if mode == SIZE_AWARE and nx_death > prev_death:
                    best_a = (nx_start - s) // alignment * alignment
                else:
                    best_a = lo
        if k < nres:
            prev_end = addr[res[k]] + size[res[k]]
            prev_death = _death(res[k], last, i)
    return best_a


@njit(cache=True)
def _is_output_of(t, o, op_out_ptr, op_out_idx):
    for e in range(op_out_ptr[o], op_out_ptr[o + 1]):
        if op_out_idx[e] == t:
            return True
    return False


@njit(cache=True)
def _place(res, nres, addr, size, last, capacity, alignment, t, i, mode, pref):
    """Address for tensor ``t``: its preferred address ``pref[t]`` when that range is free
    (size-aware mode; see :func:`plan_pass_refined`), else :func:`_find_hole`, else -1."""
    s = size[t]
    p = pref[t]
    if mode == SIZE_AWARE and p >= 0 and p % alignment == 0 and p + s <= capacity:
        free = True
        for k in range(nres):
            v = res[k]
            if addr[v] < p + s and addr[v] + size[v] > p:
                free = False
                break
        if free:
            return p
    return _find_hole(res, nres, addr, size, last, capacity, alignment, s, i, mode)


@njit(cache=True)
def _pref_evictable(res, nres, addr, size, pin, placed, i, p, s, capacity, alignment):
    """Whether ``[p, p + s)`` is a valid range whose residents may all leave at step ``i``
    (none is an operand of the step or was placed in it); false when ``p`` is -1."""
    if p < 0 or p % alignment != 0 or p + s > capacity:
        return False
    for k in range(nres):
        v = res[k]
        if addr[v] < p + s and addr[v] + size[v] > p and (pin[v] == i or placed[v] == i):
            return False
    return True


@njit(cache=True)
def _write_back_and_evict(v, res, nres, addr, size, offchip, s_st, n_st, s_ev, n_ev, traffic):
    """Evict resident ``v``, storing it first when it has no off-chip copy; returns
    ``(nres, n_st, n_ev, traffic)``."""
    if not offchip[v]:
        s_st[n_st] = v
        n_st += 1
        offchip[v] = True
        traffic += size[v]
    s_ev[n_ev] = v
    n_ev += 1
    nres = _remove(res, nres, addr, v)
    return nres, n_st, n_ev, traffic


@njit(cache=True)
def _evict_range(t, lo, hi, res, nres, addr, size, offchip, s_st, n_st, s_ev, n_ev, traffic):
    """Evict ``t`` (when resident; -1 for none) and every resident overlapping ``[lo, hi)``,
    writing back the dirty ones; returns ``(nres, n_st, n_ev, traffic)``."""
    k = 0
    while k < nres:
        v = res[k]
        if v == t or (addr[v] < hi and addr[v] + size[v] > lo):
            nres, n_st, n_ev, traffic = _write_back_and_evict(v, res, nres, addr, size, offchip, s_st, n_st,
                                                              s_ev, n_ev, traffic)
            continue
        k += 1
    return nres, n_st, n_ev, traffic


@njit(cache=True)
def _attempt_cost(stored, s_ld, n_ld, s_ev, ev_lo, ev_hi, size, snap_addr, pin, i):
    """Bytes a step's placement attempt moves or commits to: its stores, the reloads of the
    operands it moved, and one future reload per live non-operand it evicted."""
    c = stored
    for k in range(n_ld):
        if snap_addr[s_ld[k]] >= 0:
            c += size[s_ld[k]]
    for k in range(ev_lo, ev_hi):
        if pin[s_ev[k]] != i:
            c += size[s_ev[k]]
    return c


@njit(cache=True)
def _repack_cost(items, item_addr, n_items, snap, nsnap, snap_addr, snap_clean, size, pin, i):
    """The same measure as :func:`_attempt_cost` for a repacking of the step as it began:
    each moved operand and each non-operand under a placed item costs its reload plus its
    store when dirty."""
    c = 0
    for k in range(n_items):
        t = items[k]
        if snap_addr[t] >= 0:
            c += size[t] if snap_clean[t] else 2 * size[t]
    for kk in range(nsnap):
        v = snap[kk]
        if pin[v] == i:
            continue
        for k in range(n_items):
            if item_addr[k] < snap_addr[v] + size[v] and snap_addr[v] < item_addr[k] + size[items[k]]:
                c += size[v] if snap_clean[v] else 2 * size[v]
                break
    return c


@njit(cache=True)
def _propose(o, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, where, items, item_addr, n_items, proposed):
    """``proposed[t]``: ``where[t]`` for the operands of ``o``, the packing's address for the
    ``n_items`` repacked ones."""
    for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
        proposed[op_in_idx[e]] = where[op_in_idx[e]]
    for e in range(op_out_ptr[o], op_out_ptr[o + 1]):
        proposed[op_out_idx[e]] = where[op_out_idx[e]]
    for k in range(n_items):
        proposed[items[k]] = item_addr[k]


@njit(cache=True)
def _propose_around(o, t, p, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, snap_addr, snap_clean,
                    capacity, alignment, items, item_addr, proposed):
    """Propose (into ``proposed``) the cheapest repacking of step ``o`` as it began with its
    operand ``t`` fixed at ``p`` and the resident operands overlapping ``[p, p + size[t])``
    moved; returns 1 when one was found, else 0. ``snap_addr`` is left as it was."""
    n_in = op_in_ptr[o + 1] - op_in_ptr[o]
    saved = np.empty(n_in, np.int64)
    for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
        v = op_in_idx[e]
        saved[e - op_in_ptr[o]] = snap_addr[v]
        if snap_addr[v] >= 0 and snap_addr[v] < p + size[t] and p < snap_addr[v] + size[v]:
            snap_addr[v] = -1
    old_t, clean_t = snap_addr[t], snap_clean[t]
    snap_addr[t] = p
    snap_clean[t] = False  # keeping it where it was wanted is worth its write-back and reload
    n = _cheapest_repack(o, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, snap_addr, snap_clean,
                         capacity, alignment, items, item_addr)
    if n >= 0:
        _propose(o, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, snap_addr, items, item_addr, n, proposed)
    snap_addr[t], snap_clean[t] = old_t, clean_t
    for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
        snap_addr[op_in_idx[e]] = saved[e - op_in_ptr[o]]
    return 1 if n >= 0 else 0


@njit(cache=True)
def _next_use(t, nxt, use, i):
    p = nxt[t]
    while use[p] < i:
        p += 1
    nxt[t] = p
    return use[p]


@njit(cache=True)
def _grow(a, need):
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0]), a.dtype)
    b[:a.shape[0]] = a
    return b


@njit(cache=True)
def _pack_one(t, p, alignment, size, out_t, out_a, n_out, res, nres, addr):
    """Place tensor ``t`` at the first multiple of ``alignment`` from address ``p``; records
    it as an event and as resident, and returns ``(next free address, event count, resident
    count)``."""
    p = _align_up(p, alignment)
    out_t[n_out] = t
    out_a[n_out] = p
    res[nres] = t
    addr[t] = p
    return p + size[t], n_out + 1, nres + 1


@njit(cache=True)
def _pack_operands(idx, lo, hi, p, alignment, size, out_t, out_a, n_out, res, nres, addr, tail):
    """Place tensors ``idx[lo:hi]`` one after another from address ``p`` (the fallback that
    packs a step's operands into an empty scratchpad), except ``tail``, which the caller
    places after all the others (:func:`_last_operand`)."""
    for e in range(lo, hi):
        if idx[e] != tail:
            p, n_out, nres = _pack_one(idx[e], p, alignment, size, out_t, out_a, n_out, res, nres, addr)
    return p, n_out, nres


@njit(cache=True)
def _pack_step(o, tail, tail_in, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, alignment, size, s_ld, s_lda, s_al,
               s_ala, res, addr):
    """Pack the operands of ``o`` into an empty scratchpad from address 0: its inputs as loads,
    then its outputs as allocations, ``tail`` (an input when ``tail_in``; -1: none) after all
    the others. Returns ``(next free address, loads, allocations, resident count)``."""
    p, n_ld, nres = _pack_operands(op_in_idx, op_in_ptr[o], op_in_ptr[o + 1], 0, alignment, size,
                                   s_ld, s_lda, 0, res, 0, addr, tail)
    p, n_al, nres = _pack_operands(op_out_idx, op_out_ptr[o], op_out_ptr[o + 1], p, alignment, size,
                                   s_al, s_ala, 0, res, nres, addr, tail)
    if tail >= 0 and tail_in:
        p, n_ld, nres = _pack_one(tail, p, alignment, size, s_ld, s_lda, n_ld, res, nres, addr)
    elif tail >= 0:
        p, n_al, nres = _pack_one(tail, p, alignment, size, s_al, s_ala, n_al, res, nres, addr)
    return p, n_ld, n_al, nres


@njit(cache=True)
def _last_operand(o, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, alignment):
    """``(t, is_input)``: the operand of ``o`` that rounding up to ``alignment`` wastes the most
    bytes on (the first such; -1 when none wastes any). Packed last it needs no rounding, so
    the operands end as low as any aligned placement lets them
    (:func:`cosma_fast.budgets.aligned_footprint`)."""
    best, is_input, waste = -1, False, 0
    for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
        w = _align_up(size[op_in_idx[e]], alignment) - size[op_in_idx[e]]
        if w > waste:
            best, is_input, waste = op_in_idx[e], True, w
    for e in range(op_out_ptr[o], op_out_ptr[o + 1]):
        w = _align_up(size[op_out_idx[e]], alignment) - size[op_out_idx[e]]
        if w > waste:
            best, is_input, waste = op_out_idx[e], False, w
    return best, is_input


@njit(cache=True)
def _append_events(ev_kind, ev_t, ev_a, ne, kind, tens, addrs, n, has_addr):
    """Append ``n`` events of one kind (address -1 unless ``has_addr``); returns the new count."""
    for kk in range(n):
        ev_kind[ne] = kind
        ev_t[ne] = tens[kk]
        ev_a[ne] = addrs[kk] if has_addr else -1
        ne += 1
    return ne


@njit(cache=True)
def _pack_into_gaps(items, n_items, size, gap_lo, gap_hi, n_gaps, alignment, out_addr, node_limit):
    """Depth-first bin packing of ``items`` (largest first) into the gaps ``[gap_lo, gap_hi)``,
    each gap filled from its low end; writes the addresses to ``out_addr`` and returns whether
    a packing was found within ``node_limit`` search nodes."""
    cur = gap_lo[:n_gaps].copy()
    prev = np.empty(n_items, np.int64)
    choice = np.full(n_items + 1, -1, np.int64)
    d = 0
    nodes = 0
    while 0 <= d < n_items:
        nodes += 1
        if nodes > node_limit:
            return False
        s = size[items[d]]
        if choice[d] >= 0:
            cur[choice[d]] = prev[d]
        g = choice[d] + 1
        while g < n_gaps and _align_up(cur[g], alignment) + s > gap_hi[g]:
            g += 1
        if g == n_gaps:
            choice[d] = -1
            d -= 1
            continue
        prev[d] = cur[g]
        out_addr[d] = _align_up(cur[g], alignment)
        cur[g] = out_addr[d] + s
        choice[d] = g
        d += 1
        choice[d] = -1
    return d == n_items


@njit(cache=True)
def _stable_order(key, n):
    """Indices of ``key[:n]`` in increasing order, ties by index (insertion sort: the lists here
    are short, and a library sort would multiply the kernel's compile time)."""
    idx = np.arange(n)
    for a in range(1, n):
        v = idx[a]
        b = a
        while b > 0 and key[idx[b - 1]] > key[v]:
            idx[b] = idx[b - 1]
            b -= 1
        idx[b] = v
    return idx


@njit(cache=True)
def _cheapest_repack(o, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, addr, offchip, capacity,
                     alignment, items, item_addr):
    """The cheapest way to fit the operands of ``o`` when online placement failed: keep a subset
    of the resident operands where they are and pack all other operands into the gaps around
    them. Evicting a resident operand costs its reload (plus its store when dirty); subsets are
    tried cheapest first. Fills ``items``/``item_addr`` with the operands to (re)load or allocate
    and their addresses (a resident operand among them must leave first) and returns their
    count, or -1 when no packing is found."""
    n_in = op_in_ptr[o + 1] - op_in_ptr[o]
    ops = np.empty(n_in + op_out_ptr[o + 1] - op_out_ptr[o], np.int64)
    n_ops = 0
    for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
        t = op_in_idx[e]
        dup = False
        for k in range(n_ops):
            if ops[k] == t:
                dup = True
        if not dup:
            ops[n_ops] = t
            n_ops += 1
    for e in range(op_out_ptr[o], op_out_ptr[o + 1]):
        ops[n_ops] = op_out_idx[e]
        n_ops += 1
    # resident operands (at most 8 are candidates to stay, the largest), by address
    kept = np.zeros(n_ops, np.int64)
    resid = np.empty(n_ops, np.int64)
    key = np.empty(n_ops, np.int64)
    n_r = 0
    for k in range(n_ops):
        t = ops[k]
        if addr[t] >= 0:
            resid[n_r] = k
            key[n_r] = -size[t]
            n_r += 1
    by_size = _stable_order(key, n_r)
    n_c = min(n_r, 8)
    for b in range(n_c):
        key[b] = addr[ops[resid[by_size[b]]]]
    by_addr = _stable_order(key, n_c)
    cand = np.empty(n_c, np.int64)
    for b in range(n_c):
        cand[b] = resid[by_size[by_addr[b]]]
    n_masks = 1 << n_c
    mask_cost = np.empty(n_masks, np.int64)
    for m in range(n_masks):
        c = 0
        for b in range(n_c):
            if not (m >> b) & 1:
                t = ops[cand[b]]
                c += size[t] if offchip[t] else 2 * size[t]
        mask_cost[m] = c
    gap_lo = np.empty(n_c + 1, np.int64)
    gap_hi = np.empty(n_c + 1, np.int64)
    by_cost = _stable_order(mask_cost, n_masks)
    item_key = np.empty(n_ops, np.int64)
    for r in range(min(n_masks, _REPACK_TRIES + 1)):
        # the cheapest few subsets, then keeping nothing (always packs when capacity >= M_R)
        m = by_cost[r] if r < _REPACK_TRIES else 0
        n_gaps = 0
        lo = 0
        for b in range(n_c):
            if (m >> b) & 1:
                t = ops[cand[b]]
                gap_lo[n_gaps] = lo
                gap_hi[n_gaps] = addr[t]
                n_gaps += 1
                lo = addr[t] + size[t]
        gap_lo[n_gaps] = lo
        gap_hi[n_gaps] = capacity
        n_gaps += 1
        for b in range(n_c):
            kept[cand[b]] = (m >> b) & 1
        n_items = 0
        for k in range(n_ops):
            if kept[k] == 0:
                items[n_items] = ops[k]
                n_items += 1
        for k in range(n_items):
            item_key[k] = -size[items[k]]
        by_item = _stable_order(item_key, n_items)
        for k in range(n_items):
            item_key[k] = items[by_item[k]]
        items[:n_items] = item_key[:n_items]
        if _pack_into_gaps(items, n_items, size, gap_lo, gap_hi, n_gaps, alignment, item_addr, _REPACK_NODES):
            return n_items
    return -1


@njit(cache=True)
def plan_pass(order, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, kind, is_out,
              cons_ptr, cons_idx, capacity, alignment, mode, beta, emit, pref, landed, proposed):
    """Replacement and allocation for the schedule ``order``.

    Returns ``(status, traffic, n_moved, ev_ptr, ev_kind, ev_tensor, ev_addr)``.
    ``n_moved`` counts the steps that had to move resident operands (evict and reload them).
    ``status`` is 0 on success, else ``1 + step`` of a step whose operands do not
    fit even when packed from address 0 (possible only with alignment > 1).
    When ``emit`` is false the event arrays are empty (cost-only evaluation).
    ``pref`` holds a preferred address per tensor (-1: none; size-aware mode only). For every
    step that moved operands, ``landed`` receives the addresses its operands ended up at and
    ``proposed`` those of the cheapest repacking of the step as it began (when one is found).
    """
    n = order.shape[0]
    nt = size.shape[0]
    pos, use, last = use_positions(order, nt, cons_ptr, cons_idx)
    nxt = cons_ptr[:-1].copy()
    addr = np.full(nt, -1, np.int64)
    offchip = kind != _INTERMEDIATE
    res = np.empty(nt + 1, np.int64)
    nres = 0
    pin = np.full(nt, -1, np.int64)
    placed = np.full(nt, -1, np.int64)
    s_st = np.empty(nt, np.int64)
    s_ev = np.empty(2 * nt, np.int64)
    s_ld = np.empty(nt, np.int64)
    s_lda = np.empty(nt, np.int64)
    s_al = np.empty(nt, np.int64)
    s_ala = np.empty(nt, np.int64)
    snap = np.empty(nt, np.int64)
    snap_a = np.empty(nt, np.int64)
    snap_addr = np.full(nt, -1, np.int64)  # per tensor: its address at the snapshot
    snap_clean = np.zeros(nt, np.bool_)  # per resident tensor: whether it had an off-chip copy
    snap_off = np.empty(nt, np.bool_)
    rp_t = np.empty(nt, np.int64)
    rp_a = np.empty(nt, np.int64)
    req = np.empty(2 * nt + 2, np.int64)
    ev_ptr = np.zeros(n + 2, np.int64)
    cap0 = 16 + 2 * (op_in_idx.shape[0] + op_out_idx.shape[0]) if emit else 1
    ev_kind = np.empty(cap0, np.int8)
    ev_t = np.empty(cap0, np.int64)
    ev_a = np.empty(cap0, np.int64)
    ne = 0
    traffic = 0
    n_moved = 0
    for i in range(n):
        o = order[i]
        n_st = 0
        n_ev = 0
        n_ld = 0
        n_al = 0
        # write back outputs, drop dead tensors
        k = 0
        while k < nres:
            t = res[k]
            if is_out[t] and not offchip[t]:
                s_st[n_st] = t
                n_st += 1
                offchip[t] = True
                traffic += size[t]
            if last[t] < i:
                s_ev[n_ev] = t
                n_ev += 1
                nres = _remove(res, nres, addr, t)
                continue
            k += 1
        for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
            pin[op_in_idx[e]] = i
        for e in range(op_out_ptr[o], op_out_ptr[o + 1]):
            pin[op_out_idx[e]] = i
        nsnap = nres
        snap[:nres] = res[:nres]
        for kk in range(nres):
            snap_a[kk] = addr[res[kk]]
            snap_off[kk] = offchip[res[kk]]
        n_ev_dead = n_ev
        n_st0 = n_st
        traffic0 = traffic
        nreq = 0
        for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
            t = op_in_idx[e]
            if addr[t] < 0:
                req[nreq] = t
                nreq += 1
        for e in range(op_out_ptr[o], op_out_ptr[o + 1]):
            req[nreq] = op_out_idx[e]
            nreq += 1
        # largest first packs better
        for a in range(1, nreq):
            t = req[a]
            b = a
            while b > 0 and size[req[b - 1]] < size[t]:
                req[b] = req[b - 1]
                b -= 1
            req[b] = t
        fail = False
        n_rp = -1
        blocked = -1  # the first tensor of the step that could not take its preferred address
        moved = False  # an operand of this step had to leave and come back
        r = 0
        while r < nreq:
            t = req[r]
            r += 1
            s = size[t]
            if mode == SIZE_AWARE and _pref_evictable(res, nres, addr, size, pin, placed, i, pref[t], s,
                                                      capacity, alignment):
                # a previous round repacked a step for this tensor at pref[t]: clear that range now
                nres, n_st, n_ev, traffic = _evict_range(-1, pref[t], pref[t] + s, res, nres, addr, size,
                                                         offchip, s_st, n_st, s_ev, n_ev, traffic)
            a = _place(res, nres, addr, size, last, capacity, alignment, t, i, mode, pref)
            if a < 0:
                if mode == SIZE_AWARE:
                    best_cost = np.inf
                    best_bytes = _INF
                    bj = -1
                    bk = -1
                    for j in range(nres + 1):
                        if j == 0:
                            lo = 0
                        else:
                            lo = addr[res[j - 1]] + size[res[j - 1]]
                        lo = _align_up(lo, alignment)
                        cost = 0.0
                        nbytes = 0
                        kk = j
                        found = False
                        while True:
                            rb = capacity if kk == nres else addr[res[kk]]
                            if lo + s <= rb:
                                found = True
                                break
                            if kk == nres:
                                break
                            v = res[kk]
                            if placed[v] == i:
                                break
                            c = size[v] if offchip[v] else 2 * size[v]
                            if pin[v] == i:
                                # an operand of this step: moving it costs its reload now
                                cost += c
                            else:
                                d = _next_use(v, nxt, use, i) - i
                                cost += c / (d ** beta)
                            nbytes += size[v]
                            if cost > best_cost:
                                break
                            kk += 1
                        if found and kk > j and (cost < best_cost or (cost == best_cost and nbytes < best_bytes)):
                            best_cost = cost
                            best_bytes = nbytes
                            bj = j
                            bk = kk
                    if bj >= 0:
                        for _ in range(bj, bk):
                            v = res[bj]
                            nres, n_st, n_ev, traffic = _write_back_and_evict(v, res, nres, addr, size, offchip,
                                                                              s_st, n_st, s_ev, n_ev, traffic)
                            if pin[v] == i:
                                req[nreq] = v
                                nreq += 1
                                moved = True
                        a = _place(res, nres, addr, size, last, capacity, alignment, t, i, mode, pref)
                else:
                    while a < 0:
                        bv = -1
                        bd = -1
                        for kk in range(nres):
                            v = res[kk]
                            if pin[v] == i:
                                continue
                            d = _next_use(v, nxt, use, i)
                            if d > bd:
                                bd = d
                                bv = v
                        if bv < 0:
                            break
                        nres, n_st, n_ev, traffic = _write_back_and_evict(bv, res, nres, addr, size, offchip,
                                                                          s_st, n_st, s_ev, n_ev, traffic)
                        a = _place(res, nres, addr, size, last, capacity, alignment, t, i, mode, pref)
            if a < 0:
                fail = True
                break
            if mode == SIZE_AWARE and 0 <= pref[t] != a and blocked < 0:
                blocked = t
            nres = _insert(res, nres, addr, t, a)
            placed[t] = i
            if not _is_output_of(t, o, op_out_ptr, op_out_idx):
                s_ld[n_ld] = t
                s_lda[n_ld] = a
                n_ld += 1
            else:
                s_al[n_al] = t
                s_ala[n_al] = a
                n_al += 1
        by_tensor = mode == SIZE_AWARE and (fail or moved or blocked >= 0)
        if by_tensor:
            # the snapshot indexed by tensor, for the repacking below (rarely needed: built lazily)
            for kk in range(nsnap):
                snap_addr[snap[kk]] = snap_a[kk]
                snap_clean[snap[kk]] = snap_off[kk]
        if mode == SIZE_AWARE and (fail or moved):
            # the attempt failed or moved operands: repack the step as it began around the
            # resident operands worth keeping, when that fits and is cheaper
            n_rp = _cheapest_repack(o, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, snap_addr,
                                    snap_clean, capacity, alignment, rp_t, rp_a)
            use_repack = n_rp >= 0 and (fail or _repack_cost(rp_t, rp_a, n_rp, snap, nsnap, snap_addr, snap_clean,
                                                             size, pin, i)
                                        < _attempt_cost(traffic - traffic0, s_ld, n_ld, s_ev, n_ev_dead, n_ev,
                                                        size, snap_addr, pin, i))
            if use_repack:
                for kk in range(nres):
                    addr[res[kk]] = -1
                for kk in range(nsnap):
                    res[kk] = snap[kk]
                    addr[snap[kk]] = snap_a[kk]
                    offchip[snap[kk]] = snap_off[kk]
                nres = nsnap
                traffic = traffic0
                n_st = n_st0
                n_ev = n_ev_dead
                n_ld = 0
                n_al = 0
                fail = False
                moved = True
                for kk in range(n_rp):
                    t = rp_t[kk]
                    nres, n_st, n_ev, traffic = _evict_range(t, rp_a[kk], rp_a[kk] + size[t], res, nres, addr,
                                                             size, offchip, s_st, n_st, s_ev, n_ev, traffic)
                for kk in range(n_rp):
                    t = rp_t[kk]
                    nres = _insert(res, nres, addr, t, rp_a[kk])
                    if _is_output_of(t, o, op_out_ptr, op_out_idx):
                        s_al[n_al] = t
                        s_ala[n_al] = rp_a[kk]
                        n_al += 1
                    else:
                        s_ld[n_ld] = t
                        s_lda[n_ld] = rp_a[kk]
                        n_ld += 1
        if fail:
            # empty the scratchpad and pack this step's operands from address 0
            moved = True
            for kk in range(nres):
                addr[res[kk]] = -1
            n_ev = n_ev_dead
            for kk in range(nsnap):
                v = snap[kk]
                if not offchip[v] and (last[v] >= i or is_out[v]):
                    s_st[n_st] = v
                    n_st += 1
                    offchip[v] = True
                    traffic += size[v]
                s_ev[n_ev] = v
                n_ev += 1
            p, n_ld, n_al, nres = _pack_step(o, -1, False, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, alignment,
                                             size, s_ld, s_lda, s_al, s_ala, res, addr)
            if p > capacity:  # packed again, the operand that rounding wastes the most on last
                tail, tail_in = _last_operand(o, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, alignment)
                p, n_ld, n_al, nres = _pack_step(o, tail, tail_in, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx,
                                                 alignment, size, s_ld, s_lda, s_al, s_ala, res, addr)
            if p > capacity:
                return (1 + i, traffic, n_moved, ev_ptr, ev_kind[:0], ev_t[:0], ev_a[:0])
        if moved:
            # remember where this step's operands landed and where the cheapest repacking of the
            # step as it began would put them: a later round places them there beforehand
            n_moved += 1
            for e in range(op_in_ptr[o], op_in_ptr[o + 1]):
                landed[op_in_idx[e]] = addr[op_in_idx[e]]
            for e in range(op_out_ptr[o], op_out_ptr[o + 1]):
                landed[op_out_idx[e]] = addr[op_out_idx[e]]
            _propose(o, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, snap_addr if n_rp >= 0 else addr,
                     rp_t, rp_a, n_rp, proposed)
        elif blocked >= 0:
            # this step's own operands kept ``blocked`` from its preferred address: propose the
            # cheapest repacking of the step with it there, moving the operands in the way
            n_moved += _propose_around(o, blocked, pref[blocked], op_in_ptr, op_in_idx, op_out_ptr, op_out_idx,
                                       size, snap_addr, snap_clean, capacity, alignment, rp_t, rp_a, proposed)
        if by_tensor:
            for kk in range(nsnap):
                snap_addr[snap[kk]] = -1
        for kk in range(n_ld):
            traffic += size[s_ld[kk]]
        if emit:
            need = ne + n_st + n_ev + n_ld + n_al
            ev_kind = _grow(ev_kind, need)
            ev_t = _grow(ev_t, need)
            ev_a = _grow(ev_a, need)
            ne = _append_events(ev_kind, ev_t, ev_a, ne, STORE, s_st, s_st, n_st, False)
            ne = _append_events(ev_kind, ev_t, ev_a, ne, EVICT, s_ev, s_ev, n_ev, False)
            ne = _append_events(ev_kind, ev_t, ev_a, ne, LOAD, s_ld, s_lda, n_ld, True)
            ne = _append_events(ev_kind, ev_t, ev_a, ne, ALLOC, s_al, s_ala, n_al, True)
            ev_ptr[i + 1] = ne
    # graph outputs still owed
    n_fin = 0
    for kk in range(nres):
        t = res[kk]
        if is_out[t] and not offchip[t]:
            s_st[n_fin] = t
            n_fin += 1
            offchip[t] = True
            traffic += size[t]
    if emit:
        need = ne + n_fin
        ev_kind = _grow(ev_kind, need)
        ev_t = _grow(ev_t, need)
        ev_a = _grow(ev_a, need)
        for kk in range(n_fin):
            ev_kind[ne] = STORE
            ev_t[ne] = s_st[kk]
            ev_a[ne] = -1
            ne += 1
        ev_ptr[n + 1] = ne
    return (0, traffic, n_moved, ev_ptr, ev_kind[:ne], ev_t[:ne], ev_a[:ne])


@njit(cache=True, nogil=True)  # called from threads too (the climbs' setting re-picks)
def plan_pass_refined(order, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, kind, is_out,
                      cons_ptr, cons_idx, capacity, alignment, mode, beta, emit, rounds):
    """:func:`plan_pass` repeated up to ``rounds`` times, each later round placing the operands
    of the steps that had to move operands at the addresses suggested by the previous rounds
    (alternately where they landed and where the cheapest repacking of the step wanted them),
    so that a tight step's operands are already in place; returns the cheapest round.

    The ILP plans of COSMA tile the zero-slack steps at ``M_R`` this way; an online
    allocator that learns only at the tight step that its operands are scattered has to
    write them back and reload them. Stops early when a round moves nothing or would
    repeat the previous one.
    """
    nt = size.shape[0]
    pref = np.full(nt, -1, np.int64)
    landed = np.full(nt, -1, np.int64)
    proposed = np.full(nt, -1, np.int64)
    best = plan_pass(order, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, kind, is_out,
                     cons_ptr, cons_idx, capacity, alignment, mode, beta, emit, pref, landed, proposed)
    for r in range(1, rounds):
        if mode != SIZE_AWARE or best[0] != 0 or best[2] == 0:
            break
        # the layouts the moved steps suggest (see plan_pass): where their operands landed,
        # then (cumulatively over the rounds) the repackings proposed for them
        nxt = landed if r == 1 else proposed
        if r > 2 and np.array_equal(nxt, pref):
            break  # nothing new was proposed: the round would repeat the last one
        pref[:] = nxt
        cur = plan_pass(order, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, size, kind, is_out,
                        cons_ptr, cons_idx, capacity, alignment, mode, beta, emit, pref, landed, proposed)
        if cur[0] == 0 and cur[1] < best[1]:
            best = cur
    return best


@njit(cache=True, nogil=True)  # without the GIL: independent climbs run in threads
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
        st, c_cost, _, _, _, _, _ = plan_pass_refined(cand, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx,
                                                      size, kind, is_out, cons_ptr, cons_idx, capacity,
                                                      alignment, mode, beta, False, 1)
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
    """Compile :func:`plan_pass_refined` and :func:`local_search` on a two-operator chain."""
    from . import tiny_chain

    c = tiny_chain()
    graph = (c["in_ptr"], c["in_idx"], c["out_ptr"], c["out_idx"], c["size"], c["kind"], c["is_out"])
    for mode in (SIZE_AWARE, BELADY):
        plan_pass_refined(c["order"], *graph, c["cons_ptr"], c["cons_idx"],
                          np.int64(8), np.int64(1), np.int64(mode), 1.0, True, np.int64(2))
    local_search(c["order"], np.int64(0), *graph, c["producer"], c["cons_ptr"], c["cons_idx"],
                 np.int64(8), np.int64(1), np.int64(SIZE_AWARE), 1.0, np.int64(2), np.int64(0))
