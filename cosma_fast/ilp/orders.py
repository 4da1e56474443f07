"""Branch and bound over operator orders, bounded by the segment-cover problem.

The address-free problem (the relaxation :mod:`cosma_fast.ilp.model` solves) has an exact
combinatorial form once the order of the operators is known: a tensor ``t`` is *live
across* operator ``o`` when an operator touching ``t`` runs before ``o`` and a reader of
``t`` runs after it, and ``o`` does not touch ``t``. At ``o``'s step the live tensors that
stay resident and ``o``'s operands fit in the capacity, so the tensors off chip there weigh
at least ``need_o = bytes(o) + live(o) - capacity``. A tensor off chip across ``o`` is
loaded again between ``o`` and its next reader; off-chip operators separated by a reader
need distinct loads; an intermediate that is loaded again was written back once. The
*segment cover* problem

    minimise   sum_t size_t * (L_t + s_t)        (s_t only for non-output intermediates)
    subject to sum_t size_t * off[t, o] >= need_o              for every operator o
               s_t >= off[t, o],  L_t >= h[t, o] >= off[t, o]
               h[t, o2] >= h[t, o1] + off[t, o2]    when o1 < c < o2 for a reader c of t
               off binary

is therefore a lower bound on the non-compulsory bytes of every plan whose order extends a
*partial* order ``P`` when "before" means "before in ``P``" (live-across sets only grow as
``P`` is refined), and for a total order it is exact: an optimal ``off`` is realised by
evicting each tensor after its last use before an off-chip segment and loading it just in
time, one load per segment (:func:`cosma_fast.bounds.spill_cover_bound` is the version
without segments on the graph's own partial order).

:func:`order_search` refines the graph's partial order two ways at a time (``a`` before
``b`` or after), best bound first, closing a node as soon as one of its linear extensions
costs its bound. The time-indexed LP spreads each operator over its window and sees little
capacity pressure; this bound sees the exact pressure of every decided order. This is our
decomposition of the COSMA problem (Li, Gupta, Malik, arXiv 2311.18246): order search,
then replacement by the segment cover, then addresses by :func:`cosma_fast.allocate`.

On a partial order few tensors are live across an operator in *every* extension, though
many are in each. The pressure rows add what a minimum cut knows: in every extension the
operator's operands and live tensors weigh at least its least live bytes
(:func:`cosma_fast.bounds.op_pressure`), so the tensors that *may* be live across it are
off chip there for at least that much beyond the capacity.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..bounds import Incidence, ancestors, before_matrix
from ..graph import Graph
from ..highs import solve_min
from ..kernels.cover import segment_chains
from ..plan import Plan

__all__ = ["OrderSearchResult", "improve_order", "order_plan", "order_plan_and_bound", "order_search",
           "segment_cover"]


@dataclass
class OrderSearchResult:
    """``schedule`` (best order found), ``value`` (address-free non-compulsory bytes of a
    plan of that order, or the caller's ``upper`` for the start; None when neither is
    known), ``lower_bound`` (proven for every order), ``proven`` (``lower_bound == value``),
    ``nodes`` (covers solved, LP scores included), ``time`` (seconds)."""

    schedule: np.ndarray
    value: int
    lower_bound: int
    proven: bool
    nodes: int
    time: float


def segment_cover(g: Graph, capacity: int, before: np.ndarray, *, time_limit: float | None = None,
                  threads: int | None = None, pressure_rows: bool = False,
                  _inc: Incidence | None = None) -> tuple[int, float]:
    """``(bound, found)``: the segment-cover problem (module docstring) for the partial order
    ``before`` (``before[o, q]`` True when ``q`` runs before ``o``; transitively closed).

    ``bound`` is a lower bound on the non-compulsory bytes of every plan whose order extends
    ``before``: the optimum, or HiGHS's dual bound when ``time_limit`` stops it first.
    ``found`` is the best solution's objective (``inf`` when none); ``found == bound`` when
    solved. For a total order both are exact: the optimum is the order's least address-free
    non-compulsory bytes, and every solution is a plan of that order (``found`` is an
    upper bound on it). ``pressure_rows``: add the rows of each operator's least live
    bytes over the orders extending ``before`` (see :func:`order_search`)."""
    inc = _inc or Incidence(g)
    return _segment_cover(g, capacity, before, time_limit, inc, threads=threads,
                          pressure=inc.pressure(before) if pressure_rows else None)[:2]


def _segment_cover(g: Graph, capacity: int, before: np.ndarray, time_limit, inc: Incidence, reserve=0,
                   threads=None, relaxed=False, pressure=None, alignment: int = 1):
    """:func:`segment_cover` plus its best solution: ``(bound, found, off)`` with ``off`` a
    boolean ``(n_ops, n_tensors)`` matrix (``t`` off chip across ``o``), None when no solution.
    ``reserve`` (bytes, one number or one per operator): capacity kept free at an operator
    where its operands leave room for it (slack for the packing; no longer a bound then).
    ``relaxed``: the LP relaxation (``found`` is its optimum, ``off`` fractional).
    ``pressure``: per operator, a lower bound on its operands plus the bytes live across it
    in every order extending ``before`` (:func:`cosma_fast.bounds.op_pressure`); where it
    exceeds the operands plus ``F_o``, a second row asks the tensors that may be live
    across ``o`` for the difference (partial orders only: a total order's live sets are
    known). ``alignment`` > 1: a second cover row per operator counts the sizes padded to it
    (:meth:`cosma_fast.bounds.Incidence.capacity_rows`); the costs stay in bytes."""
    n = g.n_ops
    total = before.sum() == n * (n - 1) // 2
    F = inc.live_across(before)
    reserve = np.asarray(reserve, dtype=np.int64)
    covers = []  # per capacity row: (bytes each tensor holds, room per operator, bytes to move off chip)
    for cap, held, op_held in inc.capacity_rows(capacity, alignment):
        room = np.maximum(cap - reserve, op_held)
        covers.append((held, room, inc.need(F, room, held, op_held)))
    _, room, need = covers[0]  # the plain row's, which the pressure rows count in
    binds = np.any([nd > 0 for _, _, nd in covers], axis=0)
    extra = np.zeros(n, dtype=np.int64) if pressure is None or total else pressure - room
    more = extra > np.maximum(need, 0)  # operators whose pressure row is stronger
    if not binds.any() and not more.any():
        return 0, 0.0, np.zeros_like(F)
    F = F & binds[:, None]  # off-chip variables only where the capacity binds
    pairs = F | (inc.possibly_live(before) & more[:, None]) if more.any() else F
    pair_t, pair_o = np.nonzero(pairs.T)  # grouped by tensor
    rows = _Rows()
    if total:  # a total order: its segments are known
        # off chip anywhere in a segment between two touches costs one reload: WLOG off chip
        # over the whole segment, so one binary per segment replaces its pairs
        touched_before = (before.astype(np.float32) @ inc.touch.T).astype(np.int64)  # (n, nt)
        key = pair_t * (n + 1) + touched_before[pair_o, pair_t]
        seg, var_of_pair = np.unique(key, return_inverse=True)
        seg_t = seg // (n + 1)
        cost = inc.size[seg_t].astype(float)
        binaries = len(seg)
        spilled_t, spilled = seg_t, np.arange(len(seg))
    else:
        m = len(pair_t)
        var_of_pair = np.arange(m)
        binaries = m
        cost = _segments_chained(inc, before, pair_t, pair_o, rows)
        spilled_t, spilled = pair_t, np.arange(m)
    # cover: sum_t size_t off[t, o] >= need_o over F_o (and in padded bytes, with an alignment);
    # over the possibly live tensors, >= the pressure's excess where that is more
    on_f = F[pair_o, pair_t]
    for sel, held, lower in [(on_f, h, nd) for h, _, nd in covers] + [(more[pair_o], inc.size, extra)]:
        sel = sel & (lower[pair_o] > 0)
        ops = np.flatnonzero(np.bincount(pair_o[sel], minlength=n) > 0)
        rows.add(np.searchsorted(ops, pair_o[sel]), var_of_pair[sel], held[pair_t[sel]].astype(float),
                 lower[ops].astype(float))
    # write-back: s_t >= each 0/1 "spilled" column of t, for the tensors that owe one
    owe = np.flatnonzero(inc.twice[spilled_t])
    ts = np.unique(spilled_t[owe])
    scol = len(cost) + np.arange(len(ts))
    rows.add_ge(scol[np.searchsorted(ts, spilled_t[owe])], spilled[owe])
    cost = np.concatenate([cost, inc.size[ts].astype(float)])
    ncol = len(cost)
    A, r_lo = rows.matrix(ncol)
    upper = np.full(ncol, np.inf)
    upper[:binaries] = 1
    integrality = np.zeros(ncol)
    integrality[:binaries] = 0 if relaxed else 1
    bound, found, x = solve_min(cost, A, r_lo, upper, integrality > 0, time_limit=time_limit, threads=threads)
    if x is None:
        return bound, found, None
    off_chip = np.zeros_like(F)
    sel = x[var_of_pair] > 0.5
    off_chip[pair_o[sel], pair_t[sel]] = True
    return bound, found, off_chip


class _Rows:
    """Rows ``A v >= lower`` collected as coordinate arrays."""

    def __init__(self):
        self.r, self.c, self.v, self.lo = [], [], [], []
        self.n = 0

    def add(self, row, col, val, lower):
        """Entries (``row`` local to this block) and one lower bound per new row."""
        self.r.append(self.n + np.asarray(row))
        self.c.append(np.asarray(col))
        self.v.append(np.asarray(val, dtype=float))
        self.lo.append(np.asarray(lower, dtype=float))
        self.n += len(lower)

    def add_ge(self, big, small, extra=None):
        """``big - small (- extra) >= 0``, elementwise over column arrays."""
        k = len(big)
        local = np.arange(k)
        cols = [big, small] + ([extra] if extra is not None else [])
        vals = [np.ones(k)] + [-np.ones(k)] * (len(cols) - 1)
        self.add(np.concatenate([local] * len(cols)), np.concatenate(cols), np.concatenate(vals), np.zeros(k))

    def matrix(self, ncol):
        """``(A, lower)`` with ``A`` in CSR (no row repeats a column, so no entries to sum)."""
        r = np.concatenate(self.r)
        by_row = np.argsort(r, kind="stable")
        indptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=self.n), out=indptr[1:])
        A = sp.csr_matrix((np.concatenate(self.v)[by_row], np.concatenate(self.c)[by_row], indptr),
                          shape=(self.n, ncol))
        return A, np.concatenate(self.lo)


def _segments_chained(inc, before, pair_t, pair_o, rows):
    """Partial order: ``h[t, o] >= off[t, o]``, ``h[t, o2] >= h[t, o1] + off[t, o2]`` when a
    reader of ``t`` runs between ``o1`` and ``o2`` (transitively reduced: longer chains
    follow), and one reload count ``L_t >= h[t, o]`` per tensor, after the ``off`` columns
    (one per pair). Returns the cost of every column so far."""
    m = len(pair_t)
    ts = np.unique(pair_t)
    h = m + np.arange(m)
    lcol = 2 * m + np.arange(len(ts))
    rows.add_ge(h, np.arange(m))
    rows.add_ge(lcol[np.searchsorted(ts, pair_t)], h)
    starts = np.searchsorted(pair_t, ts)
    ends = np.searchsorted(pair_t, ts, side="right")
    i, j = segment_chains(before, inc.readers_ptr, inc.readers_idx, pair_t.astype(np.int64),
                          pair_o.astype(np.int64), starts.astype(np.int64), ends.astype(np.int64))
    if len(i):
        rows.add_ge(h[j], h[i], j)
    cost = np.zeros(2 * m + len(ts))
    cost[lcol] = inc.size[ts]
    return cost


def _add_order(before: np.ndarray, a: int, b: int) -> np.ndarray:
    """``before`` with ``a`` before ``b`` added and closed transitively (a new array)."""
    out = before.copy()
    first = before[a].copy()
    first[a] = True
    then = before[:, b].copy()
    then[b] = True
    out[np.ix_(then, first)] = True
    return out


def _extension(before: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The linear extension of ``before`` that runs the ready operator of least ``key`` first."""
    n = len(key)
    left = np.ones(n, dtype=bool)
    order = np.empty(n, dtype=np.int64)
    waiting = before.sum(axis=1)
    for k in range(n):
        ready = np.flatnonzero(left & (waiting == 0))
        o = ready[np.argmin(key[ready])]
        order[k] = o
        left[o] = False
        waiting -= before[:, o]
    return order


def _candidate_pairs(inc: Incidence, capacity: int, before: np.ndarray, order: np.ndarray,
                     limit: int, tight_ops: int = 3) -> list[tuple[int, int]]:
    """Unordered pairs of ``before`` to branch on, heaviest first (bytes that one of their
    two orders makes live across an operator where capacity binds, or nearly):

    * pairs whose order in ``order`` (the node's completion) makes a tensor live across an
      operator where the capacity binds;
    * for the ``tight_ops`` operators of largest need under ``before``, the unordered
      operators whose placement on one side would make a tensor live across them (this
      does not depend on the completion, which matters when a good completion leaves
      few pairs of the first kind).

    The first unordered pair of ``order`` when there is none."""
    total = before_matrix(order)
    Fp = inc.live_across(before)
    Ft = inc.live_across(total)
    need = inc.need(Ft, int(capacity))
    new = Ft & ~Fp & (need > 0)[:, None]
    weight: dict[tuple[int, int], float] = {}

    def add(a, b, w):
        key = (int(min(a, b)), int(max(a, b)))
        weight[key] = weight.get(key, 0.0) + float(w)

    for o, t in zip(*np.nonzero(new)):
        ops = np.flatnonzero(inc.touch[t])
        for a in ops[total[o, ops] & ~before[o, ops]]:   # a toucher moved before o
            add(a, o, inc.size[t])
        rd = inc.readers[t]
        for c in rd[total[rd, o] & ~before[rd, o]]:        # a reader moved after o
            add(o, c, inc.size[t])
    bf = before.astype(np.float32)
    touched_before = (bf @ inc.touch.T) > 0   # (n, nt): some toucher of t runs before o
    read_after = (bf.T @ inc.read.T) > 0      # some reader of t runs after o
    need_p = inc.need(Fp, int(capacity))
    free = ~Fp & ~inc.operand
    size = inc.size.astype(np.float32)
    for o in np.argsort(-need_p)[:tight_ops]:
        loose = ~before[o] & ~before[:, o]
        loose[o] = False
        if not loose.any():
            continue
        first = inc.touch.T @ (size * (read_after[o] & free[o]))     # q before o makes t live
        last = inc.read.T @ (size * (touched_before[o] & free[o]))   # q after o makes t live
        for q in np.flatnonzero(loose & ((first > 0) | (last > 0))):
            add(q, o, first[q] + last[q])
    pairs = sorted(weight, key=lambda p: (-weight[p], p))[:limit]
    if pairs:
        return pairs
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            if not before[b, a]:
                return [(int(a), int(b))]
    return []


def order_search(graph: Graph, capacity: int, *, start_schedule=None, upper: int | None = None,
                 time_limit: float | None = None, max_nodes: int | None = None,
                 mip_gap: float = 0.0, strong: int = 8, node_time: float | None = None,
                 progress=None, root: np.ndarray | None = None, threads: int | None = None,
                 pressure_rows: bool = True) -> OrderSearchResult:
    """The order of least address-free non-compulsory bytes, by branch and bound on pairs
    of operators (module docstring).

    ``start_schedule`` (a valid order, e.g. the heuristic's) guides the search: each node
    is completed by the linear extension closest to the best order so far, whose value
    (a segment-cover solution) updates the incumbent. ``upper``: non-compulsory bytes of a known plan that runs
    ``start_schedule`` (an upper bound on its value, used when that value is not computed
    in time). ``strong``: candidate pairs whose two children are scored, by their covers'
    LP relaxations, before the branching pair is chosen (the pair whose weaker child scores
    higher); only the chosen children are bounded exactly (the exact covers cost 2-9x
    more: randwire20 at M_R is proven in 6 s instead of 12 s).
    ``node_time``: seconds per segment-cover solve (a dual bound when it stops; default a
    tenth of ``time_limit``, at least 1 s). Stops at
    ``time_limit`` seconds, ``max_nodes`` covers solved (LP scores included) or a relative gap of ``mip_gap``, and
    returns the best order found with the least bound of the open nodes (valid for every
    order). ``progress`` is called with ``{"incumbent", "bound", "time"}`` (non-compulsory
    bytes) when the best order improves. ``root``: search only the orders extending this
    partial order (transitively closed, refining the graph's); the lower bound then holds
    for those orders only (see :func:`improve_order`). ``threads``: HiGHS threads, as in
    :func:`cosma_fast.solve`.

    ``pressure_rows``: a node about to be branched is first bounded again by the LP
    relaxation of its cover with :func:`_segment_cover`'s pressure rows (each operator's
    least live bytes over the node's orders, :func:`cosma_fast.bounds.op_pressure`); when
    that raises its bound it goes back to the queue. The rows lift the bound where few
    tensors are live across an operator in every order but many are in each one (wide
    graphs, capacities near ``M_P``). Their LPs cost 10x a plain one, so they get a share
    of the search's time that follows how often they paid (:func:`_worth_strengthening`).
    20 s from the heuristic's order, bound without -> with: layered50 at M_H 4480 -> 4976,
    randwire49 at M_H 7972 -> 11841, randwire49 at M_R 36919 -> 37320, layered100 at M_R
    26787 -> 26200 (they never pay there; the exact covers with the rows paid at every node
    but took 0.6 s each).
    """
    t0 = time.perf_counter()
    g = graph
    n = g.n_ops
    inc = Incidence(g)
    if node_time is None:
        node_time = 1.0 if time_limit is None else max(1.0, 0.1 * time_limit)
    key = np.arange(n, dtype=np.int64)
    if start_schedule is not None:
        key[np.asarray(start_schedule, dtype=np.int64)] = np.arange(n)
    nodes = 0

    def left():
        return None if time_limit is None else time_limit - (time.perf_counter() - t0)

    def out_of_time():
        return (time_limit is not None and left() <= 0) or (max_nodes is not None and nodes >= max_nodes)

    def cover(before, relaxed=False, pressure=False):
        """``(bound, found, off)`` of :func:`_segment_cover`, within the node's time and the
        search's; ``relaxed``: its LP relaxation, which scores a candidate child in a
        fraction of the time; ``pressure``: with the pressure rows."""
        nonlocal nodes
        nodes += 1
        rem = left()
        return _segment_cover(g, capacity, before, node_time if rem is None else min(rem, node_time), inc,
                              threads=threads, relaxed=relaxed,
                              pressure=inc.pressure(before) if pressure else None)

    def bound(before, pressure=False):
        """(segment-cover bound, best solution found): see :func:`segment_cover`."""
        return cover(before, pressure=pressure)[:2]

    def relaxed(before):
        """The LP relaxation's optimum."""
        return cover(before, relaxed=True)[1]

    if root is None:
        root = ancestors(g)
    best = _extension(root, key)
    best_value = bound(before_matrix(best))[1]
    if upper is not None and upper < best_value:
        best, best_value = np.asarray(start_schedule, dtype=np.int64), int(upper)
    heap = [(bound(root)[0], 0, 0, not pressure_rows, root)]  # (bound, depth, tie, strengthened, node)
    spent = [0, 0, 0.0]  # strengthenings tried, those that raised a bound, their seconds
    counter = 1
    values: dict[bytes, float] = {}
    while heap and not out_of_time():
        lb, depth, _, strong_bound, before = heapq.heappop(heap)
        if lb >= best_value:
            continue
        if lb >= (1.0 - mip_gap) * best_value:  # best first: no open node is below lb
            heapq.heappush(heap, (lb, depth, counter, strong_bound, before))
            break
        if not strong_bound and _worth_strengthening(spent, time.perf_counter() - t0):
            # about to be branched: bounded again by the LP with the pressure rows
            t_s = time.perf_counter()
            new = cover(before, relaxed=True, pressure=True)[0]
            spent[0] += 1
            spent[1] += new > lb
            spent[2] += time.perf_counter() - t_s
            if new > lb:
                heapq.heappush(heap, (new, depth, counter, True, before))
                counter += 1
                continue
        order = _extension(before, key)
        value = values.get(order.tobytes())
        if value is None:  # a child often completes to its parent's order: value it once
            value = values[order.tobytes()] = bound(before_matrix(order))[1]
        if value < best_value:
            best, best_value = order, value
            key = np.empty(n, dtype=np.int64)
            key[order] = np.arange(n)
            if progress is not None:
                progress({"incumbent": int(value), "bound": int(lb), "time": time.perf_counter() - t0})
        if value <= lb:
            continue
        kids = None
        for a, b in _candidate_pairs(inc, capacity, before, order, strong):
            if out_of_time():
                break
            pair = [(relaxed(c), c) for c in (_add_order(before, a, b), _add_order(before, b, a))]
            score = (min(pair[0][0], pair[1][0]), pair[0][0] + pair[1][0])
            if kids is None or score > kids[0]:
                kids = (score, pair)
        if kids is not None and not out_of_time():  # the chosen children's exact bounds
            kids = (kids[0], [(bound(c)[0], c) for _, c in kids[1]])
        if kids is None or out_of_time():
            heapq.heappush(heap, (lb, depth, counter, True, before))  # not (fully) branched: still open
            break
        for b_kid, kid in kids[1]:
            if b_kid < best_value:
                heapq.heappush(heap, (b_kid, depth - 1, counter, not pressure_rows, kid))
                counter += 1
    lower = min([best_value] + [h[0] for h in heap])
    value = int(best_value) if np.isfinite(best_value) else None
    lower = int(lower) if np.isfinite(lower) else 0
    return OrderSearchResult(schedule=np.asarray(best, dtype=np.int64), value=value, lower_bound=lower,
                             proven=value is not None and lower >= value, nodes=nodes,
                             time=time.perf_counter() - t0)


def _worth_strengthening(spent, elapsed: float) -> bool:
    """Whether the next node is bounded again with the pressure rows: while their LPs have
    taken at most a share of the search's time that grows with how often they raised a
    bound (a tenth when never, half when always). On layered100 at M_R they never do and
    cost 145 ms each; on randwire50 at M_H they always do."""
    tried, raised, seconds = spent
    share = 0.5 if not tried else 0.1 + 0.4 * raised / tried
    return seconds <= share * elapsed


def improve_order(graph: Graph, capacity: int, schedule, value: int, *, window: int = 12,
                  time_limit: float | None = None, window_nodes: int = 200,
                  node_time: float | None = None, threads: int | None = None) -> tuple[np.ndarray, int]:
    """A better order than ``schedule`` (address-free non-compulsory bytes ``value``) by
    large-neighbourhood search: the order is kept outside a window of ``window``
    consecutive positions, and :func:`order_search` re-orders the window's operators
    (``window_nodes`` bounds each). Windows slide by half their length, round after round,
    until a round improves nothing or ``time_limit`` passes. Returns ``(order, value)``.
    Graphs too large for :func:`order_search` to prove still get better orders this way.
    ``threads`` as in :func:`order_search`."""
    t0 = time.perf_counter()
    g = graph
    n = g.n_ops
    anc = ancestors(g)
    order = np.asarray(schedule, dtype=np.int64)
    step = max(1, window // 2)
    improved = True
    while improved and n > 1:
        improved = False
        for s in range(0, max(1, n - step), step):
            rem = None if time_limit is None else time_limit - (time.perf_counter() - t0)
            if rem is not None and rem <= 0:
                return order, value
            inside = order[s:s + window]
            root = before_matrix(order)
            root[np.ix_(inside, inside)] = anc[np.ix_(inside, inside)]
            res = order_search(g, capacity, start_schedule=order, upper=value, time_limit=rem, pressure_rows=False,
                               max_nodes=window_nodes, node_time=node_time, root=root, threads=threads)
            if res.value is not None and res.value < value:
                order, value, improved = res.schedule, res.value, True
    return order, value


def order_plan(graph: Graph, capacity: int, schedule, *, alignment: int = 1,
               time_limit: float | None = None, attempts: int = 8, threads: int | None = None,
               first_pack_time: float | None = None) -> Plan | None:
    """:func:`order_plan_and_bound`'s plan."""
    return order_plan_and_bound(graph, capacity, schedule, alignment=alignment, time_limit=time_limit,
                                attempts=attempts, threads=threads, first_pack_time=first_pack_time)[0]


SLACK_STEPS = (0.0, 0.01, 0.02, 0.04, 0.08, 0.16)  # capacity kept free by successive covers
SLACK_REFINE = 2  # bisection steps between the last slack that failed and the first that packed


def order_plan_and_bound(graph: Graph, capacity: int, schedule, *, alignment: int = 1,
                         time_limit: float | None = None, attempts: int = 8,
                         threads: int | None = None, first_pack_time: float | None = None) -> tuple[Plan | None, int]:
    """``(plan, bound)``: ``bound`` is a proven lower bound on the non-compulsory bytes of
    every plan running ``schedule`` at ``alignment`` (the order's least address-free traffic when its
    segment cover is solved in time); ``plan`` runs ``schedule`` with that traffic when its
    residency packs, or is None when no segment cover was found or packed in
    ``time_limit`` (the caller then needs another way to place the order).

    Residency from the segment cover's solution: each tensor is resident from its first
    touch to its last, except over every segment between two touches in which it is off
    chip somewhere; it is evicted after the segment's first touch and loaded just before
    its next reader. The buffers are packed by :func:`cosma_fast.allocate`. A cover that
    fills the scratchpad to the byte often does not pack (fragmentation: layered100 at
    M_H, max live 8911 of 8914 bytes). Then the next covers keep a share of the capacity
    free at every step (``SLACK_STEPS``), and between the last share that failed and the
    first that packed ``SLACK_REFINE`` bisection steps look for a cheaper one; at most
    ``attempts`` covers in all, the cheapest plan that packed is returned (more traffic
    than the bound then, still valid). Uniform slack packs at less traffic than keeping
    free only the bytes where the last packing overflowed (randwire100 at M_H, heuristic
    order: 35294 against 39286 bytes; layered200 at M_R: 175994 against 198765).
    The first packing gets 2 s at most and a quarter of the time left; with
    ``first_pack_time``, for an order known to be optimal without addresses (whose
    zero-slack cover, if it packs, is an optimal plan), up to that long and half the time
    left (layered100 at ``M_P``: the beam's order packs after 3.2 s).
    ``threads`` as in :func:`order_search`.
    """
    t0 = time.perf_counter()
    order = np.asarray(schedule, dtype=np.int64)
    realise = _CoverRealiser(graph, capacity, order, alignment, threads)

    def left():
        return None if time_limit is None else time_limit - (time.perf_counter() - t0)

    bound, best, best_cost, tried = 0, None, np.inf, 0

    def attempt(share):
        """Realise the cover keeping ``share`` of the capacity free: True when it packed,
        None when no cover was found (nothing more to try)."""
        nonlocal bound, best, best_cost, tried
        rem = left()
        pack_time = 2.0 if tried == 0 else 0.3  # a packing is found at once or rarely at all
        part = 0.25
        if tried == 0 and first_pack_time is not None:
            pack_time, part = first_pack_time, 0.5
        low, found, plan = realise(int(share * capacity), None if rem is None else rem / 2,
                                   pack_time if rem is None else max(0.05, min(part * rem, pack_time)))
        tried += 1
        if share == 0.0:  # no capacity kept free: a bound
            bound = low
        if found is None:
            return None
        if plan is not None and found < best_cost:
            best, best_cost = plan, found
        return plan is not None

    def more():
        return tried < attempts and (left() is None or left() > 0)

    failed, packed = 0.0, None  # the largest share that failed, the smallest that packed
    for share in SLACK_STEPS:
        if not more():
            break
        ok = attempt(share)
        if ok is None:
            return best, bound
        if ok:
            packed = share
            break
        failed = share
    for _ in range(SLACK_REFINE if packed else 0):
        if not more():
            break
        mid = (failed + packed) / 2
        ok = attempt(mid)
        if ok is None:
            break
        if ok:
            packed = mid
        else:
            failed = mid
    return best, bound


class _CoverRealiser:
    """Plans of one order from its segment covers (see :func:`order_plan_and_bound`)."""

    def __init__(self, g: Graph, capacity: int, order: np.ndarray, alignment: int, threads):
        self.g, self.capacity, self.order, self.alignment, self.threads = g, capacity, order, alignment, threads
        n = g.n_ops
        self.before = before_matrix(order)
        self.inc = Incidence(g)
        self.pos = np.empty(n, dtype=np.int64)
        self.pos[order] = np.arange(n)
        self.touched = [np.sort(self.pos[np.flatnonzero(self.inc.touch[t])]) for t in range(g.n_tensors)]

    def __call__(self, slack: int, cover_time, pack_time):
        """``(bound, found, plan)`` of the cover keeping ``slack`` bytes free at every step:
        ``found`` None when no cover was found, ``plan`` None when its residency did not pack."""
        from ..allocate import allocate
        from .decode import build_plan, residency_buffers

        g, n, order = self.g, self.g.n_ops, self.order
        low, found, off = _segment_cover(g, self.capacity, self.before, cover_time, self.inc, reserve=slack,
                                         threads=self.threads, alignment=self.alignment)
        if off is None:
            return low, None, None
        R = np.zeros((g.n_tensors, n), dtype=bool)
        for t in range(g.n_tensors):
            tt = self.touched[t]
            if not len(tt):
                continue
            R[t, tt[0]:tt[-1] + 1] = True
            for i in np.flatnonzero(off[order, t]):  # steps where t is off chip
                j = np.searchsorted(tt, i)
                R[t, tt[j - 1] + 1:tt[j]] = False
        bt, ba, bb = residency_buffers(R)
        size = g.tensor_size[bt].astype(np.int64)
        packing = allocate(ba, bb + 1, size, self.capacity, time_limit=pack_time, alignment=self.alignment)
        if not packing.fits:
            return low, found, None
        return low, found, build_plan(g, order, R, None, bt, ba, np.asarray(packing.offsets, dtype=np.int64))
