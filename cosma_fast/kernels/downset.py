"""Least spill-cover cost over every order, by a search over the graph's down-sets.

A schedule runs the operators one by one; the operators run before step ``i`` form a
down-set ``D`` (closed under predecessors). A tensor ``t`` is *live across* the operator
``v`` run after ``D`` when an operator touching it (its producer, or for an input or weight a
reader) is in ``D`` and a reader is neither in ``D`` nor ``v``. The *spill cover* of an order
(:func:`cosma_fast.bounds.spill_cover_bound` with a schedule) is the least cost of a set
``S`` of tensors such that at every step the operands of ``v`` plus the tensors live across
``v`` and not in ``S`` fit in the capacity; ``t`` in ``S`` costs ``cost_t`` (twice its size
for a dirty intermediate, its size otherwise). Its minimum over all orders is a lower bound
on every plan's non-compulsory bytes.

Two orders reaching the same down-set with the same spilled live tensors have the same
future, so the search is an A* search (Hart, Nilsson & Raphael 1968) over states
``(D, S ∩ live)`` with cost ``sum cost(S)``, as in dynamic programs over down-sets for
scheduling with precedences (Held & Karp 1962; for memory, the exact peak-memory search of
:mod:`cosma_fast.schedule`), ordered by that cost plus :func:`_cost_to_come`, a lower bound on
what is still to pay. Rules that keep it small, each in its own function:

* :func:`_minimal_covers`: at a step that does not fit, ``S`` grows only by a minimal set of
  live tensors (adding more now is never cheaper than adding it at the step that needs it);
* :func:`_dominated`: a state (popped, or a child about to be queued) is dropped when a
  state already expanded at its down-set, spilling now the tensors it keeps and the new
  state does not, would hold supersets of its sets at no more cost (:func:`_catch_up_cost`);
  spilling earlier than needed is allowed and being off chip never hurts later, so that
  state's best future is no dearer;
* :func:`_twin_slot`: equal states reached by different orders are queued once, at the
  least cost;
* states whose cost plus :func:`_cost_to_come` reaches ``upper`` (a known plan's cost) are
  never queued: when the queue runs dry the bound is ``upper`` itself.

The least estimate still queued is a lower bound at any time (some state on an optimal
order, or one that dominates it, is queued, and its estimate is no more than the optimum).
``cost`` may be any non-negative prices (a part of a graph priced by its share of each
tensor, :func:`cosma_fast.bounds.chunked_spill_cover`); with ``per_segment`` a tensor's price
is at least its size.

With ``per_segment`` the search prices what the address-free problem (the relaxation of
:mod:`cosma_fast.ilp.model`, DESIGN.md section 3) charges instead: a tensor off chip across
an operator is loaded again before its next reader, every time, and a dirty intermediate is
written back the first time only. A state then holds the live tensors off chip now and the
live ones written back; a spill is charged its reload (and its write-back when due) at the
step that needs it, on chip again once an operator reads it. Being off chip over a whole
segment between two touches costs one reload however long, so spilling at the step that
needs it, back to the segment's start, loses nothing; dominance catches up on both sets
(a tensor another state wrote back may still cost this one its write-back). The search's
value is then the address-free optimum over every order: what the time-indexed model
without addresses proves, without the model.

Down-sets are ``int64`` bit masks, so graphs of at most 62 operators; tensor sets are rows of
``uint64`` words. The search state lives in flat arrays passed in and out so that the Python
layer can run it in chunks between clock checks and grow the arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_OPS = 62

#: return codes of :func:`search_chunk`
RUNNING, FINISHED, GROW, EXHAUSTED = 0, 1, 2, 3
# counters in ``ctr``
N_STATES, HEAP_SIZE, POPS, GOAL, N_KEYS, NEED, POOL_USED, POOL_NEED = 0, 1, 2, 3, 4, 5, 6, 7
# columns of ``hblock``: where a down-set's expanded states start in the pool, how many, room
START, COUNT, ROOM = 0, 1, 2


@njit(cache=True)
def _popcount(x):
    """The number of set bits of the non-negative ``x``."""
    c = 0
    while x:
        x &= x - 1
        c += 1
    return c


# a heap entry: the operators still to run above ``DEPTH_SHIFT`` bits, the state below
DEPTH_SHIFT = 40
ID_MASK = (np.int64(1) << DEPTH_SHIFT) - 1


@njit(cache=True)
def _heap_entry(n, D, sid):
    """The heap entry of state ``sid`` at the down-set ``D`` of ``n`` operators: at equal
    estimates the state with fewer operators left goes first (towards a goal, as A* is
    usually tie-broken), then the older state (so the search is deterministic)."""
    return (np.int64(n - _popcount(D)) << DEPTH_SHIFT) | sid


@njit(cache=True)
def _less(hg, hid, a, b):
    """Heap order: least estimate first, then by the entry (:func:`_heap_entry`)."""
    return hg[a] < hg[b] or (hg[a] == hg[b] and hid[a] < hid[b])


@njit(cache=True)
def _swap(hg, hid, a, b):
    hg[a], hg[b] = hg[b], hg[a]
    hid[a], hid[b] = hid[b], hid[a]


@njit(cache=True)
def _heap_push(hg, hid, size, g, sid):
    """Queue state ``sid`` at cost ``g`` in the binary heap ``(hg, hid)`` of ``size`` entries;
    returns the new size."""
    i = size
    hg[i] = g
    hid[i] = sid
    while i > 0 and _less(hg, hid, i, (i - 1) >> 1):
        _swap(hg, hid, i, (i - 1) >> 1)
        i = (i - 1) >> 1
    return size + 1


@njit(cache=True)
def _heap_pop(hg, hid, size):
    """``(state, new size)``: the least entry, taken off the heap."""
    sid = hid[0]
    size -= 1
    hg[0] = hg[size]
    hid[0] = hid[size]
    i = 0
    while 2 * i + 1 < size:
        a = 2 * i + 1
        c = a + 1 if a + 1 < size and _less(hg, hid, a + 1, a) else a
        if not _less(hg, hid, c, i):
            break
        _swap(hg, hid, i, c)
        i = c
    return sid, size


@njit(cache=True)
def _slot(hkey, D):
    """Slot of the down-set ``D`` in the open-addressing table (its own or the empty one)."""
    mask = hkey.shape[0] - 1
    h = (D * np.int64(-7046029254386353131)) & mask
    while hkey[h] != -1 and hkey[h] != D:
        h = (h + 1) & mask
    return h


# the bit index of a lowest set bit, by de Bruijn multiplication (Leiserson, Prokop & Randall 1998)
_DEBRUIJN = np.uint64(0x03F79D71B4CB0A89)
_DEBRUIJN_INDEX = np.zeros(64, np.int64)
for _i in range(64):
    _DEBRUIJN_INDEX[((_DEBRUIJN << np.uint64(_i)) & np.uint64(0xFFFFFFFFFFFFFFFF)) >> np.uint64(58)] = _i


@njit(cache=True)
def _low_bit(x):
    """The index of the lowest set bit of the nonzero word ``x``."""
    return _DEBRUIJN_INDEX[((x & (~x + np.uint64(1))) * _DEBRUIJN) >> np.uint64(58)]


@njit(cache=True)
def _catch_up_cost(A, S, budget, per_segment, WX, reload, cost):
    """What the state with words ``A`` pays to hold at least the words ``S`` by spilling now
    every tensor of ``S`` it keeps on chip (at its own prices: a reload, and a write-back
    unless ``A`` wrote the tensor back already), plus, with ``per_segment``, the write-back
    it may still owe for a tensor ``S`` wrote back and keeps on chip. Stops once the cost
    passes ``budget`` (any value above it is returned then)."""
    extra = 0
    # the prices of spill_costs_now, written out: a shared per-tensor helper here made the
    # scan three times slower (randwire29 at M_R: 2.7 -> 8.5 s)
    for w in range(WX):
        missing = S[w] & ~A[w]
        while missing != np.uint64(0):
            b = _low_bit(missing)
            missing &= missing - np.uint64(1)
            t = w * 64 + b
            if per_segment and (A[WX + w] >> np.uint64(b)) & np.uint64(1):
                extra += reload[t]
            else:
                extra += cost[t]
            if extra > budget:
                return extra
    if per_segment:
        for w in range(WX):
            missing = S[WX + w] & ~A[WX + w] & ~S[w]
            while missing != np.uint64(0):
                t = w * 64 + _low_bit(missing)
                missing &= missing - np.uint64(1)
                extra += cost[t] - reload[t]
                if extra > budget:
                    return extra
    return extra


@njit(cache=True)
def _dominated(D, S, g, per_segment, WX, reload, cost, hkey, hblock, cl_g, cl_S):
    """Whether a state already expanded at ``D``, spilling now what it keeps and ``S`` does
    not (:func:`_catch_up_cost`), reaches supersets of ``S`` at no more cost than ``g``.
    The expanded states of one down-set lie side by side in the pool ``(cl_g, cl_S)``, so
    the scan reads memory in order."""
    h = _slot(hkey, D)
    if hkey[h] == -1:
        return False
    start = hblock[h, START]
    for c in range(start, start + hblock[h, COUNT]):
        budget = g - cl_g[c]
        if budget >= 0 and _catch_up_cost(cl_S[c], S, budget, per_segment, WX, reload, cost) <= budget:
            return True
    return False


@njit(cache=True)
def _pool_need(hkey, hblock, h):
    """Pool rows that closing a state in the table's slot ``h`` takes: a first block of 4,
    or, when the down-set's block is full, a new one twice as large (the old one is left
    behind)."""
    if hkey[h] == -1:
        return 4
    return 2 * hblock[h, ROOM] if hblock[h, COUNT] == hblock[h, ROOM] else 0


@njit(cache=True)
def _close(hkey, hblock, cl_g, cl_S, h, D, g, S, ctr):
    """Record an expanded state at ``D`` (slot ``h`` of the table) in its down-set's block
    (room checked by :func:`_pool_need`)."""
    if hkey[h] == -1:
        hkey[h] = D
        hblock[h, START] = ctr[POOL_USED]
        hblock[h, COUNT] = 0
        hblock[h, ROOM] = 4
        ctr[POOL_USED] += 4
        ctr[N_KEYS] += 1
    elif hblock[h, COUNT] == hblock[h, ROOM]:
        old, k = hblock[h, START], hblock[h, COUNT]
        new = ctr[POOL_USED]
        cl_g[new:new + k] = cl_g[old:old + k]
        cl_S[new:new + k] = cl_S[old:old + k]
        hblock[h, START] = new
        hblock[h, ROOM] = 2 * k
        ctr[POOL_USED] += 2 * k
    c = hblock[h, START] + hblock[h, COUNT]
    cl_g[c] = g
    cl_S[c] = S
    hblock[h, COUNT] += 1


@njit(cache=True)
def _twin_slot(ekey, D, S, st_D, st_S):
    """Slot of the stored state equal to ``(D, S)`` in the table of queued states (its own
    slot or the empty one): equal states from different orders are queued once, at the
    least cost."""
    mask = ekey.shape[0] - 1
    h = D * np.int64(-7046029254386353131)
    for w in range(S.shape[0]):
        h = (h ^ np.int64(S[w])) * np.int64(1099511628211)
    h = (h ^ (h >> 29)) & mask
    W = S.shape[0]
    while ekey[h] != -1:
        c = ekey[h]
        if st_D[c] == D:
            same = True
            for w in range(W):
                if st_S[c, w] != S[w]:
                    same = False
                    break
            if same:
                return h
        h = (h + 1) & mask
    return h


@njit(cache=True)
def _minimal_covers(items, size, cost, need, out_sets, out_cost):
    """Every minimal subset of ``items`` (sorted by size, largest first) weighing at least
    ``need``: rows of 0/1 in ``out_sets`` and their costs; returns their number (-1 when the
    buffers are too small). With the items largest first, a subset is minimal exactly when
    the last item taken is the one that reaches ``need``."""
    m = items.shape[0]
    suffix = np.zeros(m + 1, np.int64)
    for k in range(m - 1, -1, -1):
        suffix[k] = suffix[k + 1] + size[items[k]]
    taken = np.zeros(m, np.bool_)
    stack = np.empty(m, np.int64)
    depth = 0
    count = 0
    k = 0
    left = need
    c = 0
    while True:
        if left <= 0:
            if count == out_sets.shape[0]:
                return -1
            for j in range(m):
                out_sets[count, j] = taken[j]
            out_cost[count] = c
            count += 1
            descend = False
        else:
            descend = k < m and suffix[k] >= left
        if descend:
            taken[k] = True
            left -= size[items[k]]
            c += cost[items[k]]
            stack[depth] = k
            depth += 1
            k += 1
            continue
        # back up: the last item taken is left out instead
        if depth == 0:
            return count
        depth -= 1
        j = stack[depth]
        taken[j] = False
        left += size[items[j]]
        c -= cost[items[j]]
        k = j + 1


@njit(cache=True)
def mark_operands(v, io_ptr, io_idx, size, is_io):
    """The bytes of operator ``v``'s operands (each tensor once), marking them in ``is_io``
    (the caller clears the marks)."""
    load = 0
    for q in range(io_ptr[v], io_ptr[v + 1]):
        t = io_idx[q]
        if not is_io[t]:
            is_io[t] = True
            load += size[t]
    return load


@njit(cache=True)
def step_covers(free, m, size, price, excess, cover_sets, cover_cost):
    """``(count, cover_sets, cover_cost)``: the ways a step that is ``excess`` bytes over the
    capacity fits, as :func:`_minimal_covers` of the live tensors ``free[:m]`` (sorted here,
    largest first, in place) at ``price``, or one empty set when it fits already; the buffers
    grown when they were too small."""
    if excess <= 0:
        cover_cost[0] = 0
        for j in range(m):
            cover_sets[0, j] = False
        return 1, cover_sets, cover_cost
    items = free[:m][np.argsort(-size[free[:m]], kind="mergesort")]
    for j in range(m):
        free[j] = items[j]
    n_covers = _minimal_covers(free[:m], size, price, excess, cover_sets, cover_cost)
    while n_covers < 0:
        cover_sets = np.zeros((2 * cover_sets.shape[0], cover_sets.shape[1]), np.bool_)
        cover_cost = np.empty(cover_sets.shape[0], np.int64)
        n_covers = _minimal_covers(free[:m], size, price, excess, cover_sets, cover_cost)
    return n_covers, cover_sets, cover_cost


@njit(cache=True)
def spill_costs_now(S, WX, reload, cost, out):
    """Per tensor, what spilling it costs in the state ``S`` (off-chip words, then written-back
    words from ``WX``): one reload, and one write-back unless the tensor was written back
    already (it stays valid off chip until it dies)."""
    for t in range(reload.shape[0]):
        stored = (S[WX + (t >> 6)] >> np.uint64(t & 63)) & np.uint64(1)
        out[t] = reload[t] if stored else cost[t]


@njit(cache=True)
def _doubled(ch_D, ch_S, ch_g, ch_op):
    k = ch_D.shape[0]
    D = np.empty(2 * k, np.int64)
    S = np.empty((2 * k, ch_S.shape[1]), np.uint64)
    g = np.empty(2 * k, np.int64)
    op = np.empty(2 * k, np.int64)
    D[:k] = ch_D
    S[:k] = ch_S
    g[:k] = ch_g
    op[:k] = ch_op
    return D, S, g, op


@njit(cache=True)
def _meets(a, b):
    """Whether the word rows ``a`` and ``b`` share a bit."""
    for w in range(a.shape[0]):
        if a[w] & b[w]:
            return True
    return False


@njit(cache=True)
def step_rows(before, created, readers, io_ptr, io_idx, size):
    """Per operator ``v``, as tensor word rows: ``forced[v]``, the tensors live across ``v``
    in every order (made by an operator that runs before ``v`` in every order, read by one
    that runs after it in every order); ``read_after[v]``, those read after ``v`` in every
    order; ``operands[v]``; and ``op_load[v]``, the bytes of ``v``'s operands. ``before``,
    ``created`` and ``readers`` are word rows over the operators (one word each in the
    down-set search, any number in the beam); the two searches take these rows from here,
    computed once per graph."""
    n, WO = before.shape
    nt = size.shape[0]
    WX = (nt + 63) // 64
    after = np.zeros((n, WO), np.uint64)
    for r in range(n):
        for v in range(n):
            if (before[r, v >> 6] >> np.uint64(v & 63)) & np.uint64(1):
                after[v, r >> 6] |= np.uint64(1) << np.uint64(r & 63)
    forced = np.zeros((n, WX), np.uint64)
    read_after = np.zeros((n, WX), np.uint64)
    operands = np.zeros((n, WX), np.uint64)
    op_load = np.zeros(n, np.int64)
    for v in range(n):
        for q in range(io_ptr[v], io_ptr[v + 1]):
            t = io_idx[q]
            operands[v, t >> 6] |= np.uint64(1) << np.uint64(t & 63)
            op_load[v] += size[t]
        for t in range(nt):
            if _meets(readers[t], after[v]):
                read_after[v, t >> 6] |= np.uint64(1) << np.uint64(t & 63)
                if _meets(created[t], before[v]):
                    forced[v, t >> 6] |= np.uint64(1) << np.uint64(t & 63)
    return forced, read_after, operands, op_load


@njit(cache=True)
def _cost_to_come(D, S, per_segment, WX, created, forced, read_after, operands, op_load, by_cost_rate, size, reload,
                  cost, capacity, made, live, back):
    """A lower bound on what the state ``(D, S)`` still pays (the A* estimate; Hart, Nilsson
    & Raphael 1968): the most that any one operator ``v`` not yet run forces on its own. At
    ``v``'s step its operands and the tensors live across it in every order from here (made
    already or by an operator before ``v``, read by one after ``v``) are resident unless
    spilled; the state's off-chip tensors are taken as free, and the rest must cover the
    excess over ``capacity`` at no less than the cheapest bytes' prices (a fractional
    cover, price per byte ascending: a tensor costs ``cost``, or with ``per_segment`` only
    its ``reload`` once written back; ``by_cost_rate`` orders the tensors by cost per byte,
    the written-back ones are sorted on the spot, and the cover walks both at once).
    ``made``/``live``/``back``: scratch."""
    n = forced.shape[0]
    nt = size.shape[0]
    for w in range(WX):
        made[w] = np.uint64(0)
    for t in range(nt):
        if created[t] & D:
            made[t >> 6] |= np.uint64(1) << np.uint64(t & 63)
    todo = np.empty(n, np.int64)
    n_todo = 0
    for v in range(n):
        if not (D >> v) & 1:
            todo[n_todo] = v
            n_todo += 1
    return estimate_to_come(todo[:n_todo], made, S, per_segment, WX, forced, read_after, operands, op_load,
                            by_cost_rate, size, reload, cost, capacity, live, back)


@njit(cache=True)
def estimate_to_come(todo, made, S, per_segment, WX, forced, read_after, operands, op_load, by_cost_rate, size,
                     reload, cost, capacity, live, back):
    """:func:`_cost_to_come` of a state given as the operators not yet run (``todo``) and the
    tensors its operators made (``made``, tensor words), so that searches holding down-sets
    in other forms share it (:mod:`cosma_fast.kernels.beam`)."""
    nt = size.shape[0]
    best = 0.0
    for v in todo:
        load = op_load[v]
        for w in range(WX):
            live[w] = (forced[v, w] | (made[w] & read_after[v, w])) & ~S[w] & ~operands[v, w]
            x = live[w]
            while x != np.uint64(0):
                load += size[w * 64 + _low_bit(x)]
                x &= x - np.uint64(1)
        left = load - capacity
        if left <= 0:
            continue
        h = 0.0
        n_back = 0  # the live tensors written back, at their reload, by price per byte
        if per_segment:
            for w in range(WX):
                x = live[w] & S[WX + w]
                live[w] &= ~S[WX + w]
                while x != np.uint64(0):
                    t = w * 64 + _low_bit(x)
                    x &= x - np.uint64(1)
                    if size[t] == 0:
                        continue
                    k = n_back
                    while k > 0 and reload[back[k - 1]] / size[back[k - 1]] > reload[t] / size[t]:
                        back[k] = back[k - 1]
                        k -= 1
                    back[k] = t
                    n_back += 1
        i = 0
        j = 0  # over the others, at their cost
        while left > 0:
            while j < nt and (size[by_cost_rate[j]] == 0 or not (live[by_cost_rate[j] >> 6]
                                                                  >> np.uint64(by_cost_rate[j] & 63)) & np.uint64(1)):
                j += 1
            if i == n_back and j == nt:
                break
            if j == nt or (i < n_back and reload[back[i]] / size[back[i]]
                           <= cost[by_cost_rate[j]] / size[by_cost_rate[j]]):
                t, price = back[i], reload[back[i]]
                i += 1
            else:
                t, price = by_cost_rate[j], cost[by_cost_rate[j]]
                j += 1
            take = min(left, size[t])
            h += price * (take / size[t])
            left -= take
        best = max(best, h)
    # whole bytes, rounded down with room for the float sums' error
    return np.int64(np.floor(best * (1.0 - 1e-12)))


@njit(cache=True)
def _children(D, S, g, upper, per_segment, WX, before, created, readers, size, reload, cost, state_cost, io_ptr,
              io_idx, capacity, is_io, T, keep, free, cover_sets, cover_cost, ch_D, ch_S, ch_g, ch_op):
    """The children of the state ``(D, S)`` of cost ``g`` below ``upper``: one per operator ``v``
    that may run next and per minimal set of live tensors that makes ``v``'s step fit
    (:func:`_minimal_covers`, priced by ``state_cost``), each the down-set with ``v``, the
    live tensors still off chip (and, with ``per_segment``, written back) after ``v``, its
    cost, and ``v``. A live tensor may be spilled unless ``v`` touches it or it is off chip
    already (in a part of a graph, one made outside the part is live from the first operator
    that shows it made, which need not touch it). Returns
    ``(count, cover_sets, cover_cost, ch_D, ch_S, ch_g, ch_op)``,
    the buffers grown when they were too small; ``is_io``, ``T``, ``keep``, ``free``: scratch."""
    n = before.shape[0]
    nt = size.shape[0]
    W = S.shape[0]
    nch = 0
    for v in range(n):
        bit = np.int64(1) << v
        if (D & bit) != 0 or (before[v] & D) != before[v]:
            continue
        Dn = D | bit
        load = mark_operands(v, io_ptr, io_idx, size, is_io)
        # in one pass: the live tensors v may spill (``free``), and the bits a child keeps
        # (tensors live after v; in the off-chip words with per_segment, not v's operands,
        # which are loaded for it)
        for w in range(W):
            keep[w] = np.uint64(0)
        m = 0
        for t in range(nt):
            if (readers[t] & ~Dn) == 0 or (created[t] & Dn) == 0:
                continue
            for base in range(0, W, WX):
                keep[base + (t >> 6)] |= np.uint64(1) << np.uint64(t & 63)
            if is_io[t] or (S[t >> 6] >> np.uint64(t & 63)) & np.uint64(1):
                continue
            free[m] = t
            m += 1
            load += size[t]
        for q in range(io_ptr[v], io_ptr[v + 1]):
            is_io[io_idx[q]] = False
        if per_segment:
            for q in range(io_ptr[v], io_ptr[v + 1]):
                t = io_idx[q]
                keep[t >> 6] &= ~(np.uint64(1) << np.uint64(t & 63))
        n_covers, cover_sets, cover_cost = step_covers(free, m, size, state_cost, load - capacity, cover_sets,
                                                       cover_cost)
        for c in range(n_covers):
            gc = g + cover_cost[c]
            if gc >= upper:
                continue
            for w in range(W):
                T[w] = S[w]
            for j in range(m):
                if cover_sets[c, j]:
                    t = free[j]
                    T[t >> 6] |= np.uint64(1) << np.uint64(t & 63)
                    if per_segment and cost[t] > reload[t]:  # written back now, once
                        T[WX + (t >> 6)] |= np.uint64(1) << np.uint64(t & 63)
            for w in range(W):
                T[w] &= keep[w]
            if nch == ch_D.shape[0]:
                ch_D, ch_S, ch_g, ch_op = _doubled(ch_D, ch_S, ch_g, ch_op)
            ch_D[nch] = Dn
            for w in range(W):
                ch_S[nch, w] = T[w]
            ch_g[nch] = gc
            ch_op[nch] = v
            nch += 1
    return nch, cover_sets, cover_cost, ch_D, ch_S, ch_g, ch_op


@njit(cache=True, nogil=True)
def search_chunk(before, created, readers, size, reload, cost, io_ptr, io_idx, forced, read_after, operands, op_load,
                 capacity, upper, max_pops, per_segment, st_D, st_S, st_g, st_par, st_op, hg, hid, hkey, hblock, cl_g,
                 cl_S, ekey, ctr):
    """Run the A* search for at most ``max_pops`` states (the heap ``(hg, hid)`` holds
    estimates and :func:`_heap_entry` entries).

    ``before[v]``: the operators that run before ``v`` in every order, ``created[t]`` the ones
    whose step creates ``t`` (its producer, or for an input or weight its readers),
    ``readers[t]``, as bit masks; ``io_ptr``/``io_idx``: each operator's operands (CSR);
    ``forced``, ``read_after``, ``operands``, ``op_load``: :func:`step_rows` of those.
    ``cost[t]``: the price of spilling ``t``; ``per_segment``: the exact address-free cost
    instead of the spill cover (module docstring): a state's words are its off-chip set,
    then its written-back set, and spilling a tensor written back costs ``reload[t]``
    (its size for a whole graph; ``cost[t] > reload[t]`` for a tensor that owes a
    write-back).
    Returns RUNNING (chunk done), FINISHED (``ctr[GOAL]`` is the state that ran every
    operator), GROW (an array or the table is too small: the popped state was put back) or
    EXHAUSTED (no state under ``upper`` is left)."""
    n = before.shape[0]
    nt = size.shape[0]
    W = st_S.shape[1]
    WX = W // 2 if per_segment else W  # words of the off-chip (spilled) set
    state_cost = cost.copy()
    full = (np.int64(1) << n) - 1
    is_io = np.zeros(nt, np.bool_)
    S = np.empty(W, np.uint64)
    T = np.empty(W, np.uint64)
    keep = np.empty(W, np.uint64)
    free = np.empty(nt, np.int64)
    by_cost_rate = np.argsort(cost / np.maximum(size, 1), kind="mergesort")
    back = np.empty(nt, np.int64)
    made = np.empty(WX, np.uint64)
    live = np.empty(WX, np.uint64)
    cover_sets = np.zeros((4096, nt), np.bool_)
    cover_cost = np.empty(4096, np.int64)
    ch_D = np.empty(1024, np.int64)
    ch_S = np.empty((1024, W), np.uint64)
    ch_g = np.empty(1024, np.int64)
    ch_op = np.empty(1024, np.int64)
    for _ in range(max_pops):
        if ctr[HEAP_SIZE] == 0:
            return EXHAUSTED
        f = hg[0]
        entry, ctr[HEAP_SIZE] = _heap_pop(hg, hid, ctr[HEAP_SIZE])
        sid = entry & ID_MASK
        D = st_D[sid]
        g = st_g[sid]
        if D == full:
            ctr[GOAL] = sid
            return FINISHED
        for w in range(W):
            S[w] = st_S[sid, w]
        if ekey[_twin_slot(ekey, D, S, st_D, st_S)] != sid:
            continue  # a cheaper twin was queued after it
        if _dominated(D, S, g, per_segment, WX, reload, cost, hkey, hblock, cl_g, cl_S):
            continue
        ctr[POPS] += 1
        if per_segment:
            spill_costs_now(S, WX, reload, cost, state_cost)
        # the children, into local buffers first so that a full array leaves nothing half done
        nch, cover_sets, cover_cost, ch_D, ch_S, ch_g, ch_op = _children(
            D, S, g, upper, per_segment, WX, before, created, readers, size, reload, cost, state_cost, io_ptr,
            io_idx, capacity, is_io, T, keep, free, cover_sets, cover_cost, ch_D, ch_S, ch_g, ch_op)
        h = _slot(hkey, D)  # the popped state's slot: the table does not change until it is closed
        pool_need = _pool_need(hkey, hblock, h)
        if (ctr[N_STATES] + nch > st_D.shape[0] or ctr[HEAP_SIZE] + nch + 1 > hg.shape[0]
                or 2 * (ctr[N_KEYS] + 1) > hkey.shape[0] or 2 * (ctr[N_STATES] + nch) > ekey.shape[0]
                or ctr[POOL_USED] + pool_need > cl_g.shape[0]):
            ctr[HEAP_SIZE] = _heap_push(hg, hid, ctr[HEAP_SIZE], f, entry)
            ctr[POPS] -= 1
            ctr[NEED] = nch + 1
            ctr[POOL_NEED] = pool_need
            return GROW
        _close(hkey, hblock, cl_g, cl_S, h, D, g, S, ctr)
        for c in range(nch):
            e = _twin_slot(ekey, ch_D[c], ch_S[c], st_D, st_S)
            if ekey[e] != -1 and st_g[ekey[e]] <= ch_g[c]:
                continue  # a stored state, or a sibling just stored, is the same for no more
            if _dominated(ch_D[c], ch_S[c], ch_g[c], per_segment, WX, reload, cost, hkey, hblock, cl_g, cl_S):
                continue
            fc = ch_g[c] + _cost_to_come(ch_D[c], ch_S[c], per_segment, WX, created, forced, read_after, operands,
                                         op_load, by_cost_rate, size, reload, cost, capacity, made, live, back)
            if fc >= upper:
                continue
            k = ctr[N_STATES]
            st_D[k] = ch_D[c]
            for w in range(W):
                st_S[k, w] = ch_S[c, w]
            st_g[k] = ch_g[c]
            st_par[k] = sid
            st_op[k] = ch_op[c]
            ekey[e] = k
            ctr[N_STATES] = k + 1
            ctr[HEAP_SIZE] = _heap_push(hg, hid, ctr[HEAP_SIZE], fc, _heap_entry(n, ch_D[c], k))
    return RUNNING


@njit(cache=True)
def rehash(hkey, hblock, new_size):
    """The open-addressing table of expanded down-sets, in ``new_size`` slots."""
    nk = np.full(new_size, -1, np.int64)
    nb = np.zeros((new_size, 3), np.int64)
    for i in range(hkey.shape[0]):
        if hkey[i] != -1:
            s = _slot(nk, hkey[i])
            nk[s] = hkey[i]
            nb[s] = hblock[i]
    return nk, nb


@njit(cache=True)
def rehash_twins(ekey, new_size, st_D, st_S):
    """The table of queued states, in ``new_size`` slots."""
    nk = np.full(new_size, -1, np.int64)
    for i in range(ekey.shape[0]):
        c = ekey[i]
        if c != -1:
            nk[_twin_slot(nk, st_D[c], st_S[c], st_D, st_S)] = c
    return nk


def warmup() -> None:
    """Compile :func:`step_rows`, :func:`search_chunk` and the rehashes on a two-operator chain."""
    i64 = np.int64
    cap = 8
    st = (np.zeros(cap, i64), np.zeros((cap, 1), np.uint64), np.zeros(cap, i64), np.full(cap, -1, i64),
          np.full(cap, -1, i64))
    hkey, hblock, ekey = np.full(16, -1, i64), np.zeros((16, 3), i64), np.full(16, -1, i64)
    cl_g, cl_S = np.zeros(16, i64), np.zeros((16, 1), np.uint64)
    ctr = np.array([1, 1, 0, 0, 0, 0, 0, 0], i64)
    ekey[_twin_slot(ekey, 0, st[1][0], st[0], st[1])] = 0
    size = np.array([4, 4, 4], i64)
    before, created, readers = (np.array(m, np.uint64)[:, None] for m in ([0, 1], [1, 1, 2], [1, 2, 0]))
    io_ptr, io_idx = np.array([0, 2, 4], i64), np.array([0, 1, 1, 2], i64)
    rows = step_rows(before, created, readers, io_ptr, io_idx, size)
    search_chunk(before[:, 0].astype(i64), created[:, 0].astype(i64), readers[:, 0].astype(i64), size, size,
                 np.array([4, 8, 4], i64), io_ptr, io_idx, *rows, 8, np.iinfo(i64).max, 10, False, *st,
                 np.zeros(cap, i64), np.zeros(cap, i64), hkey, hblock, cl_g, cl_S, ekey, ctr)
    rehash(hkey, hblock, 32)
    rehash_twins(ekey, 32, st[0], st[1])
