"""Live bytes of operator schedules, and memory-aware list schedules.

A tensor is *live* from the step that creates it (an intermediate: its producer's
step; an input or weight: its first consumer's step) to its last consumer's step
(at least its creation step). At step ``i`` every input and output of the
running operator is live, so ``max(profile) >= M_R``. This is the live-memory
model of DESIGN.md section 1 ("Budgets", ``M_P``).

Kernels here take the graph's CSR arrays; :mod:`cosma_fast.schedule` is the thin
Python layer above them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, objmode

from .allocate import _perf_counter
from .beam import _has, _is_subset, _same
from .downset import _meets

__all__ = ["live_profile", "greedy_schedule", "swap_search", "min_peak_beam", "N_GREEDY_RULES", "warmup"]

_INTERMEDIATE = 2
#: rules of :func:`greedy_schedule`: 0 smallest step, 1 smallest live after the step,
#: 2 most recently enabled first (depth first), 3 largest bytes freed
N_GREEDY_RULES = 4


@njit(cache=True)
def _producers(n_tensors, op_out_ptr, op_out_idx):
    producer = np.full(n_tensors, -1, np.int64)
    for o in range(op_out_ptr.shape[0] - 1):
        for k in range(op_out_ptr[o], op_out_ptr[o + 1]):
            producer[op_out_idx[k]] = o
    return producer


@njit(cache=True)
def _interval(t, pos, producer, tensor_kind, cons_ptr, cons_idx):
    """Live interval ``(start, end)`` of ``t`` under positions ``pos``; ``(0, -1)`` if never live."""
    if tensor_kind[t] == _INTERMEDIATE:
        s = pos[producer[t]]
        e = s
    else:
        if cons_ptr[t] == cons_ptr[t + 1]:
            return 0, -1
        s = 1 << 62
        e = -1
    for k in range(cons_ptr[t], cons_ptr[t + 1]):
        p = pos[cons_idx[k]]
        if p < s:
            s = p
        if p > e:
            e = p
    return s, e


@njit(cache=True)
def _output_bytes(o, tensor_size, op_out_ptr, op_out_idx, cons_ptr):
    """``(made, dead)``: the bytes of ``o``'s outputs, and of those no operator reads (they
    die at ``o``'s own step)."""
    made = 0
    dead = 0
    for k in range(op_out_ptr[o], op_out_ptr[o + 1]):
        t = op_out_idx[k]
        made += tensor_size[t]
        if cons_ptr[t + 1] == cons_ptr[t]:
            dead += tensor_size[t]
    return made, dead


@njit(cache=True)
def live_profile(order, tensor_size, tensor_kind, op_out_ptr, op_out_idx, cons_ptr, cons_idx):
    """Live bytes at each step of the schedule ``order`` (a topological order)."""
    n = order.shape[0]
    nt = tensor_size.shape[0]
    pos = np.empty(n, np.int64)
    for i in range(n):
        pos[order[i]] = i
    producer = _producers(nt, op_out_ptr, op_out_idx)
    diff = np.zeros(n + 1, np.int64)
    for t in range(nt):
        s, e = _interval(t, pos, producer, tensor_kind, cons_ptr, cons_idx)
        if e >= s:
            diff[s] += tensor_size[t]
            diff[e + 1] -= tensor_size[t]
    prof = np.empty(n, np.int64)
    acc = 0
    for i in range(n):
        acc += diff[i]
        prof[i] = acc
    return prof


@njit(cache=True)
def greedy_schedule(rule, tensor_size, tensor_kind, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx,
                    cons_ptr, cons_idx):
    """A memory-aware list schedule: repeatedly run the ready operator chosen by ``rule``.

    Rules (ties broken by the other criteria, then by model order): 0 = smallest
    live bytes during the step, 1 = smallest live bytes after it, 2 = the most
    recently enabled operator (depth first, keeps branches short-lived),
    3 = most bytes freed. Returns ``(order, peak)``.
    """
    n = op_in_ptr.shape[0] - 1
    nt = tensor_size.shape[0]
    producer = _producers(nt, op_out_ptr, op_out_idx)
    rem = np.empty(nt, np.int64)  # consumers not yet run
    for t in range(nt):
        rem[t] = cons_ptr[t + 1] - cons_ptr[t]
    indeg = np.zeros(n, np.int64)  # inputs whose producer has not run
    for o in range(n):
        for k in range(op_in_ptr[o], op_in_ptr[o + 1]):
            if producer[op_in_idx[k]] >= 0:
                indeg[o] += 1
    enabled_at = np.full(n, -1, np.int64)
    order = np.empty(n, np.int64)
    done = np.zeros(n, np.bool_)
    live = 0
    peak = 0
    for i in range(n):
        best = -1
        bk0 = bk1 = bk2 = 0
        for o in range(n):
            if done[o] or indeg[o] > 0:
                continue
            new = 0
            freed = 0
            for k in range(op_in_ptr[o], op_in_ptr[o + 1]):
                t = op_in_idx[k]
                if tensor_kind[t] != _INTERMEDIATE and rem[t] == cons_ptr[t + 1] - cons_ptr[t]:
                    new += tensor_size[t]
                if rem[t] == 1:
                    freed += tensor_size[t]
            made, dead = _output_bytes(o, tensor_size, op_out_ptr, op_out_idx, cons_ptr)
            new += made
            freed += dead
            step = live + new
            after = step - freed
            if rule == 0:
                k0, k1, k2 = step, after, 0
            elif rule == 1:
                k0, k1, k2 = after, step, 0
            elif rule == 2:
                k0, k1, k2 = -enabled_at[o], step, after
            else:
                k0, k1, k2 = -freed, step, 0
            if best == -1 or (k0, k1, k2) < (bk0, bk1, bk2):
                best = o
                bk0, bk1, bk2 = k0, k1, k2
        o = best
        done[o] = True
        order[i] = o
        for k in range(op_in_ptr[o], op_in_ptr[o + 1]):
            t = op_in_idx[k]
            if tensor_kind[t] != _INTERMEDIATE and rem[t] == cons_ptr[t + 1] - cons_ptr[t]:
                live += tensor_size[t]
        for k in range(op_out_ptr[o], op_out_ptr[o + 1]):
            live += tensor_size[op_out_idx[k]]
        if live > peak:
            peak = live
        for k in range(op_in_ptr[o], op_in_ptr[o + 1]):
            t = op_in_idx[k]
            rem[t] -= 1
            if rem[t] == 0:
                live -= tensor_size[t]
        for k in range(op_out_ptr[o], op_out_ptr[o + 1]):
            t = op_out_idx[k]
            if cons_ptr[t + 1] == cons_ptr[t]:
                live -= tensor_size[t]
            for c in range(cons_ptr[t], cons_ptr[t + 1]):
                s = cons_idx[c]
                indeg[s] -= 1
                if indeg[s] == 0:
                    enabled_at[s] = i
    return order, peak


@njit(cache=True)
def _pair_live(i, a, b, pos, producer, tensor_size, tensor_kind, op_in_ptr, op_in_idx, op_out_ptr,
               op_out_idx, cons_ptr, cons_idx, seen, stamp):
    """Bytes live at steps ``i`` and ``i + 1`` counting only tensors touching ops ``a``, ``b``."""
    l0 = 0
    l1 = 0
    for which in range(2):
        o = a if which == 0 else b
        for part in range(2):
            lo = op_in_ptr[o] if part == 0 else op_out_ptr[o]
            hi = op_in_ptr[o + 1] if part == 0 else op_out_ptr[o + 1]
            for k in range(lo, hi):
                t = op_in_idx[k] if part == 0 else op_out_idx[k]
                if seen[t] == stamp:
                    continue
                seen[t] = stamp
                s, e = _interval(t, pos, producer, tensor_kind, cons_ptr, cons_idx)
                if s <= i <= e:
                    l0 += tensor_size[t]
                if s <= i + 1 <= e:
                    l1 += tensor_size[t]
    return l0, l1


@njit(cache=True)
def swap_search(order, max_passes, tensor_size, tensor_kind, op_in_ptr, op_in_idx, op_out_ptr, op_out_idx,
                cons_ptr, cons_idx):
    """Hill climbing over swaps of adjacent independent operators.

    A swap only changes the live bytes of its two steps, so it is evaluated
    locally; it is kept when it lowers the larger of the two (or keeps it and
    lowers their sum). The peak never increases. Returns ``(order, peak)``.
    """
    n = order.shape[0]
    nt = tensor_size.shape[0]
    order = order.copy()
    pos = np.empty(n, np.int64)
    for i in range(n):
        pos[order[i]] = i
    producer = _producers(nt, op_out_ptr, op_out_idx)
    prof = live_profile(order, tensor_size, tensor_kind, op_out_ptr, op_out_idx, cons_ptr, cons_idx)
    seen = np.zeros(nt, np.int64)
    stamp = 0
    for _ in range(max_passes):
        improved = False
        for i in range(n - 1):
            a = order[i]
            b = order[i + 1]
            dep = False
            for k in range(op_in_ptr[b], op_in_ptr[b + 1]):
                if producer[op_in_idx[k]] == a:
                    dep = True
                    break
            if dep:
                continue
            stamp += 1
            o0, o1 = _pair_live(i, a, b, pos, producer, tensor_size, tensor_kind, op_in_ptr, op_in_idx,
                                op_out_ptr, op_out_idx, cons_ptr, cons_idx, seen, stamp)
            pos[a] = i + 1
            pos[b] = i
            stamp += 1
            n0, n1 = _pair_live(i, a, b, pos, producer, tensor_size, tensor_kind, op_in_ptr, op_in_idx,
                                op_out_ptr, op_out_idx, cons_ptr, cons_idx, seen, stamp)
            p0 = prof[i] - o0 + n0
            p1 = prof[i + 1] - o1 + n1
            old_max = max(prof[i], prof[i + 1])
            new_max = max(p0, p1)
            if new_max < old_max or (new_max == old_max and p0 + p1 < prof[i] + prof[i + 1]):
                order[i] = b
                order[i + 1] = a
                prof[i] = p0
                prof[i + 1] = p1
                improved = True
            else:
                pos[a] = i
                pos[b] = i + 1
        if not improved:
            break
    peak = 0
    for i in range(n):
        if prof[i] > peak:
            peak = prof[i]
    return order, peak


@njit(cache=True)
def _down_set_slot(slots, rows, i):
    """Slot of the kept row equal to ``rows[i]`` in the open-addressing table ``slots`` of
    indices into ``rows`` (its own slot or the empty one). Its own table, not
    :func:`cosma_fast.kernels.beam._state_slot`'s, whose down-set and spill rows (none here)
    made this beam 60% slower (randwire100, width 16384: 4.1 s against 2.5 s)."""
    h = np.uint64(1469598103934665603)
    for w in range(rows.shape[1]):
        h = (h ^ rows[i, w]) * np.uint64(1099511628211)
        h ^= h >> np.uint64(29)
    j = np.int64(h % np.uint64(slots.shape[0]))
    while slots[j] != -1 and not _same(rows[slots[j]], rows[i]):
        j = (j + 1) % slots.shape[0]
    return j


@njit(cache=True)
def _largest_left(D, op_bytes, by_bytes):
    """The largest of ``op_bytes`` over the operators not in the down-set ``D``: a lower bound on
    the peak of every schedule that continues from ``D``."""
    for o in by_bytes:
        if not _has(D, o):
            return op_bytes[o]
    return 0


#: units of work (``n_ops`` per state expanded) between two clock checks of :func:`min_peak_beam`
#: (about 20 ms; checked every depth, the clock cost small graphs 10 ms per solve)
CLOCK_WORK = 1 << 20


@njit(cache=True)
def min_peak_beam(width, upper, max_work, deadline, tensor_size, tensor_kind, op_in_ptr, op_in_idx, op_out_ptr,
                  op_out_idx, cons_ptr, cons_idx):
    """A schedule of low peak live bytes by a beam search over down-sets.

    The live bytes after a down-set do not depend on the order that reached it (the
    observation behind the exact search of :mod:`cosma_fast.schedule`), so the states of
    one depth are down-sets, each with the least peak found so far: from each, every ready
    operator gives a child (its step's live bytes raise the peak), equal down-sets keep
    the child of least ``(peak, live bytes after)``, and the ``width`` children least by that
    key go on (beam search: Lowerre 1976; for schedules, the down-set states of Held & Karp
    1962). Down-sets are rows of ``uint64`` words, so any size.

    Children through which no schedule beats ``upper`` (the best peak known) are dropped
    (branch and bound): those whose peak so far, live bytes after, or largest operator still
    to run reaches it. Returns ``(order, peak, complete, lower, states)``:

    - ``order`` and ``peak``: the schedule found, or ``-1`` rows and ``upper`` when none beats it;
    - ``complete``: no depth had more than ``width`` down-sets below ``upper``, so the beam was
      the exact search over all of them: ``peak`` is ``M_P`` when a schedule was found, and no
      schedule beats ``upper`` otherwise;
    - ``lower``: a proven lower bound on ``M_P`` (capped at ``upper``): every schedule passes
      through one down-set of each size, so while the beam holds every down-set of a depth,
      the least peak so far among their children (or the least live bytes after them, which
      the next step holds still) bounds every schedule's peak; ``peak`` when ``complete``;
    - ``states``: the down-sets kept over all depths (at most ``width * n_ops``).

    ``max_work``: the search stops, as if it found nothing and with ``complete`` False, before
    a depth would take the work done beyond it, counted as ``n_ops`` units per state
    expanded (``width * n_ops ** 2`` at most in all). ``deadline`` (a ``time.perf_counter``
    reading; 0 for none): the same stop, checked before a depth once ``CLOCK_WORK`` units
    were done since the last check, a safety net for a machine slower than the work's
    estimate (wide graphs past 200 operators).
    """
    n = op_in_ptr.shape[0] - 1
    nt = tensor_size.shape[0]
    WX = (n + 63) // 64
    producer = _producers(nt, op_out_ptr, op_out_idx)
    preds = np.zeros((n, WX), np.uint64)  # the producers of each operator's inputs
    for o in range(n):
        for k in range(op_in_ptr[o], op_in_ptr[o + 1]):
            p = producer[op_in_idx[k]]
            if p >= 0:
                preds[o, p >> 6] |= np.uint64(1) << np.uint64(p & 63)
    readers = np.zeros((nt, WX), np.uint64)
    for t in range(nt):
        for k in range(cons_ptr[t], cons_ptr[t + 1]):
            c = cons_idx[k]
            readers[t, c >> 6] |= np.uint64(1) << np.uint64(c & 63)
    op_bytes = np.zeros(n, np.int64)  # what must be live at each operator's own step
    for o in range(n):
        op_bytes[o] = _output_bytes(o, tensor_size, op_out_ptr, op_out_idx, cons_ptr)[0]
        for k in range(op_in_ptr[o], op_in_ptr[o + 1]):
            op_bytes[o] += tensor_size[op_in_idx[k]]
    by_bytes = np.argsort(-op_bytes, kind="mergesort")
    W = max(1, width)
    cur = np.zeros((1, WX), np.uint64)
    cur_live = np.zeros(1, np.int64)
    cur_peak = np.zeros(1, np.int64)
    parent = np.empty((n, W), np.int64)
    chosen = np.empty((n, W), np.int64)
    complete = True
    lower = 0
    states = 0
    work = 0
    next_check = 0
    for depth in range(n):
        work += cur.shape[0] * n
        if work > max_work:
            return np.full(n, -1, np.int64), upper, False, lower, states
        if deadline > 0 and work >= next_check:  # the clock costs more than a small depth
            next_check = work + CLOCK_WORK
            with objmode(now="float64"):
                now = _perf_counter()
            if now > deadline:
                return np.full(n, -1, np.int64), upper, False, lower, states
        m = cur.shape[0] * (n - depth)  # at most this many ready operators per state
        ch = np.empty((m, WX), np.uint64)
        ch_live = np.empty(m, np.int64)
        ch_peak = np.empty(m, np.int64)
        ch_par = np.empty(m, np.int64)
        ch_op = np.empty(m, np.int64)
        ch_rest = np.empty(m, np.int64)
        nc = 0
        for s in range(cur.shape[0]):
            D = cur[s]
            for v in range(n):
                if _has(D, v) or not _is_subset(preds[v], D):
                    continue
                for w in range(WX):
                    ch[nc, w] = D[w]
                ch[nc, v >> 6] |= np.uint64(1) << np.uint64(v & 63)
                step = cur_live[s]
                freed = 0
                for k in range(op_in_ptr[v], op_in_ptr[v + 1]):  # each input once (the graph dedupes them)
                    t = op_in_idx[k]
                    if tensor_kind[t] != _INTERMEDIATE and not _meets(readers[t], D):
                        step += tensor_size[t]  # an input or weight is live from its first reader
                    if _is_subset(readers[t], ch[nc]):  # its last reader
                        freed += tensor_size[t]
                made, dead = _output_bytes(v, tensor_size, op_out_ptr, op_out_idx, cons_ptr)
                step += made
                freed += dead
                rest = 0 if depth == n - 1 else _largest_left(ch[nc], op_bytes, by_bytes)
                if max(cur_peak[s], step, rest) >= upper or (depth < n - 1 and step - freed >= upper):
                    continue  # no schedule through it beats upper
                ch_rest[nc] = rest
                ch_live[nc] = step - freed
                ch_peak[nc] = max(cur_peak[s], step)
                ch_par[nc] = s
                ch_op[nc] = v
                nc += 1
        if complete:  # every down-set of this depth below upper is a child here
            least = upper
            for i in range(nc):
                bound = ch_peak[i] if depth == n - 1 else max(ch_peak[i], ch_live[i], ch_rest[i])
                least = min(least, bound)
            lower = max(lower, least)
        if nc == 0:  # no schedule beats upper
            return np.full(n, -1, np.int64), upper, complete, lower, states
        # least (peak, live after) first; stable sorts keep generation order among ties
        by_live = np.argsort(ch_live[:nc], kind="mergesort")
        by_key = by_live[np.argsort(ch_peak[:nc][by_live], kind="mergesort")]
        slots = np.full(4 * min(W, nc), -1, np.int64)
        keep = np.empty(min(W, nc), np.int64)
        n_keep = 0
        for i in by_key:
            j = _down_set_slot(slots, ch, i)
            if slots[j] != -1:  # an equal down-set kept already, at no more cost
                continue
            if n_keep == W:  # a down-set beyond the width: the beam is no longer exhaustive
                complete = False
                break
            slots[j] = i
            keep[n_keep] = i
            n_keep += 1
        nxt = np.empty((n_keep, WX), np.uint64)
        nxt_live = np.empty(n_keep, np.int64)
        nxt_peak = np.empty(n_keep, np.int64)
        for r in range(n_keep):
            i = keep[r]
            nxt[r] = ch[i]
            nxt_live[r] = ch_live[i]
            nxt_peak[r] = ch_peak[i]
            parent[depth, r] = ch_par[i]
            chosen[depth, r] = ch_op[i]
        cur, cur_live, cur_peak = nxt, nxt_live, nxt_peak
        states += n_keep
    order = np.empty(n, np.int64)
    r = 0  # the states of the last depth are all the full set: the first has the least peak
    for depth in range(n - 1, -1, -1):
        order[depth] = chosen[depth, r]
        r = parent[depth, r]
    peak = cur_peak[0] if n else 0
    return order, peak, complete, (peak if complete else lower), states

def warmup() -> None:
    """Compile the kernels on a two-operator graph."""
    from ..graph import GraphBuilder

    b = GraphBuilder("warmup")
    x = b.input("x", 4)
    (y,) = b.op("a", [x], outputs=[("y", 4)])
    b.op("b", [x], outputs=[("z", 4)])
    g = b.build()
    arrs = (g.tensor_size, g.tensor_kind, g.op_in_ptr, g.op_in_idx, g.op_out_ptr, g.op_out_idx,
            g.cons_ptr, g.cons_idx)
    order, _ = greedy_schedule(0, *arrs)
    swap_search(order, 2, *arrs)
    min_peak_beam(2, 1 << 62, 1 << 62, 0.0, *arrs)
    min_peak_beam(2, 1 << 62, 1 << 62, 1e300, *arrs)  # the clock check, compiled on its first run
    live_profile(order, g.tensor_size, g.tensor_kind, g.op_out_ptr, g.op_out_idx, g.cons_ptr, g.cons_idx)
