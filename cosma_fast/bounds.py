"""Schedule-independent lower bounds on non-compulsory traffic (DESIGN.md section 2).

* :func:`forced_live`: for every operator ``o``, the tensors that are live across ``o``
  in *every* schedule although ``o`` does not touch them.
* :func:`spill_costs`: the non-compulsory bytes a tensor costs as soon as it is off chip
  across one such operator.
* :func:`spill_cover_bound`: a covering ILP over those facts, whose optimum (or any dual
  bound of it) is a lower bound on the non-compulsory bytes of every plan.
* :func:`least_spill_cover` and :func:`address_free_optimum`: exact searches over every
  order of graphs of up to 62 operators; :func:`chunked_spill_cover` sums the first over
  the parts of a larger graph, each tensor priced by its share.

These complement :func:`cosma_fast.schedule.lower_bound` (``M_P - C``, peak live of the
best schedule): that one counts every live byte but each only once, this one counts only
bytes live in every schedule but charges an intermediate's write-back as well as its
reload. Both are valid; callers take the larger. The reasoning is the "capacity forces
spills" argument of COSMA's replacement model (Li, Gupta, Malik, arXiv 2311.18246,
section 4) lifted out of the time index: the operator's step is unknown, but what must be
live at it is not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .budgets import aligned_capacity_rows, capacity_rows, check_capacity
from .errors import OptionError
from .graph import INTERMEDIATE, Graph
from .highs import solve_min

__all__ = ["Incidence", "address_free_beam", "address_free_optimum", "ancestors", "before_matrix",
           "chunked_spill_cover", "forced_live",
           "forced_need", "quiet_cuts",
           "op_pressure", "least_spill_cover", "owes_write_back", "spill_costs", "spill_cover_bound",
           "SpillSearchResult"]


def ancestors(graph: Graph) -> np.ndarray:
    """Boolean ``(n_ops, n_ops)`` matrix: ``[o, q]`` is True when ``q`` must run before ``o``."""
    n = graph.n_ops
    anc = np.zeros((n, n), dtype=bool)
    for o in range(n):  # operators are stored in a topological order
        for t in graph.inputs_of(o):
            p = graph.tensor_producer[t]
            if p >= 0:
                anc[o] |= anc[p]
                anc[o, p] = True
    return anc


def before_matrix(order) -> np.ndarray:
    """Boolean ``(n_ops, n_ops)`` matrix of a total order: ``[o, q]`` True when ``q`` runs before ``o``
    (the same layout as :func:`ancestors`)."""
    order = np.asarray(order, dtype=np.int64)
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))
    return pos[None, :] < pos[:, None]


def owes_write_back(graph: Graph) -> np.ndarray:
    """Per tensor: an intermediate that is not a graph output (reloading it costs a write-back
    that is not compulsory)."""
    return (graph.tensor_kind == INTERMEDIATE) & ~graph.tensor_is_output


class Incidence:
    """A graph's tensor/operator incidence as dense matrices, for live-across sets of any
    order (float32: the products below count operators exactly)."""

    def __init__(self, g: Graph):
        n, nt = g.n_ops, g.n_tensors
        self.touch = np.zeros((nt, n), dtype=np.float32)  # producer or reader
        self.read = np.zeros((nt, n), dtype=np.float32)
        for t in range(nt):
            c = g.consumers_of(t)
            self.read[t, c] = 1
            self.touch[t, c] = 1
            if g.tensor_producer[t] >= 0:
                self.touch[t, g.tensor_producer[t]] = 1
        self.operand = np.zeros((n, nt), dtype=bool)
        for o in range(n):
            self.operand[o, g.inputs_of(o)] = True
            self.operand[o, g.outputs_of(o)] = True
        self.readers = [np.flatnonzero(self.read[t]) for t in range(nt)]
        self.readers_ptr, self.readers_idx = _rows_csr(self.read)
        self.touchers_ptr, self.touchers_idx = _rows_csr(self.touch)
        self.io_ptr, self.io_idx = _operands_csr(g)
        self.size = g.tensor_size.astype(np.int64)
        self.op_bytes = g.op_bytes().astype(np.int64)
        self.twice = owes_write_back(g)

    def live_across(self, before: np.ndarray) -> np.ndarray:
        """``(n_ops, n_tensors)``: ``t`` is touched before ``o`` and read after it, and ``o``
        does not touch it, under the order ``before[o, q]`` (``q`` before ``o``)."""
        b = before.astype(np.float32)
        return ((b @ self.touch.T) > 0) & ((b.T @ self.read.T) > 0) & ~self.operand

    def possibly_live(self, before: np.ndarray) -> np.ndarray:
        """``(n_ops, n_tensors)``: ``t`` is live across ``o`` in *some* order extending
        ``before`` as far as pairs go (a toucher of ``t`` may run before ``o`` and a reader
        may run after it, and ``o`` does not touch ``t``); contains :meth:`live_across`."""
        free = ~np.eye(before.shape[0], dtype=bool)
        may_precede = (~before.T & free).astype(np.float32)  # [o, x]: x may run before o
        may_follow = (~before & free).astype(np.float32)     # [o, r]: r may run after o
        return ((may_precede @ self.touch.T) > 0) & ((may_follow @ self.read.T) > 0) & ~self.operand

    def pressure(self, before: np.ndarray, deadline: float | None = None) -> np.ndarray:
        """:func:`op_pressure` under ``before`` (until ``deadline``, a ``time.perf_counter``
        reading, as there)."""
        from .kernels.flow import op_pressure as kernel

        before = np.ascontiguousarray(before, dtype=bool)
        return kernel(before, *_reduction_csr(before), self.touchers_ptr, self.touchers_idx, self.readers_ptr,
                      self.readers_idx, self.size, self.op_bytes, self.io_ptr, self.io_idx,
                      0.0 if deadline is None else deadline)

    def need(self, live: np.ndarray, room, held: np.ndarray | None = None,
             op_held: np.ndarray | None = None) -> np.ndarray:
        """Per operator: bytes of ``live`` that cannot stay on chip beside its operands within
        ``room`` (the capacity, or one per operator), counted as ``held`` and ``op_held`` count
        a tensor and an operator's operands (their sizes by default; see :meth:`capacity_rows`)."""
        held = self.size if held is None else held
        op_held = self.op_bytes if op_held is None else op_held
        return op_held + live.astype(np.int64) @ held - room

    def capacity_rows(self, capacity: int, alignment: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """:func:`cosma_fast.budgets.capacity_rows` as ``(room, held, op_held)``, with each
        operator's operands counted as that row counts tensors: the plain row, and with
        ``alignment`` > 1 the padded one."""
        rows = capacity_rows(self.size, capacity, alignment)
        return [(room, held, self.op_bytes if k == 0 else self.operand.astype(np.int64) @ held)
                for k, (room, held) in enumerate(rows)]


def _reduction_csr(before: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ptr, idx)``: per operator, those right before it in the transitive reduction of
    ``before`` (no operator in between; cubic work, for the partial orders of small graphs)."""
    b = before.astype(np.float32)
    direct = before & ~((b @ b) > 0)
    return _rows_csr(direct)


def _csr_of(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    idx = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
    return ptr, idx


def _operands_csr(g: Graph) -> tuple[np.ndarray, np.ndarray]:
    """``(ptr, idx)``: per operator, the tensors it touches (inputs, then outputs)."""
    return _csr_of([np.concatenate([g.inputs_of(o), g.outputs_of(o)]) for o in range(g.n_ops)])


def _graph_pressure(g: Graph, deadline: float | None, size: np.ndarray | None = None,
                    op_bytes: np.ndarray | None = None) -> np.ndarray:
    """:func:`op_pressure` under the graph's own order, from its CSR arrays: no dense
    incidence matrices (800 MB each on 10000 operators) and no transitive reduction (the
    graph's edges generate the order, which is all the cuts need: a path between two
    operators incomparable to ``o`` meets only such operators). ``size`` and ``op_bytes``:
    the bytes each tensor and each operator's operands hold (their own by default)."""
    from .kernels.flow import op_pressure as kernel

    producer = g.tensor_producer
    preds = [np.unique(p[p >= 0]) for p in (producer[g.inputs_of(o)] for o in range(g.n_ops))]
    touchers = [np.concatenate([g.consumers_of(t), [producer[t]] if producer[t] >= 0 else []])
                for t in range(g.n_tensors)]
    size = g.tensor_size if size is None else size
    op_bytes = g.op_bytes() if op_bytes is None else op_bytes
    return kernel(ancestors(g), *_csr_of(preds), *_csr_of(touchers), g.cons_ptr.copy(), g.cons_idx.copy(),
                  size.astype(np.int64), op_bytes.astype(np.int64), *_operands_csr(g),
                  0.0 if deadline is None else deadline)


def _rows_csr(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ptr, idx)``: the nonzero columns of each row of ``M``, in CSR (ascending per row)."""
    ptr = np.concatenate([[0], np.cumsum(np.count_nonzero(M, axis=1))]).astype(np.int64)
    return ptr, np.nonzero(M)[1].astype(np.int64)


def op_pressure(graph: Graph, before: np.ndarray | None = None, *, time_limit: float | None = None) -> np.ndarray:
    """Per operator ``o``: the least bytes resident at ``o``'s step without any spill, over
    every schedule (every order extending ``before``, ``before[o, q]`` when ``q`` runs
    before ``o``, transitively closed): ``o``'s operands plus the tensors live across ``o``
    (touched before it, read after it). A minimum cut per operator
    (:mod:`cosma_fast.kernels.flow`).

    Every plan within a capacity ``C`` keeps off chip at ``o``'s step at least
    ``pressure[o] - C`` bytes of tensors that are read again later, so ``max(pressure)`` is
    a lower bound on ``M_P`` and ``max(pressure) - C`` one on the non-compulsory bytes. It
    is at least the :func:`forced_live` bytes plus ``o``'s operands, often far more on
    wide graphs, where few tensors are live across an operator in every order (randwire100:
    ``M_P`` >= 31177 bytes, against ``M_R`` = 13387 from the down-set search's bound).
    The operators not reached within ``time_limit`` seconds get their operands' bytes
    alone, which weakens those bounds and keeps them valid.
    """
    deadline = None if time_limit is None else time.perf_counter() + max(0.0, time_limit)
    if before is None:
        return _graph_pressure(graph, deadline)
    return Incidence(graph).pressure(np.asarray(before, dtype=bool), deadline)


def forced_live(graph: Graph, schedule=None) -> np.ndarray:
    """Boolean ``(n_ops, n_tensors)`` matrix: ``[o, t]`` is True when, in every schedule
    (or in ``schedule`` when given), ``t`` has been resident before ``o``'s step and is read
    after it, and ``o`` does not touch ``t``.

    That holds when some operator touching ``t`` (its producer or a reader) is an ancestor
    of ``o``, and some reader of ``t`` is a descendant of ``o``: ancestors run before ``o``
    and descendants after it in every topological order, and an operator's operands are
    resident while it runs. With a fixed ``schedule``, "before" and "after" are its order.
    """
    return _forced(graph, schedule)[2]


def forced_need(graph: Graph, capacity: int, schedule=None) -> tuple[np.ndarray, np.ndarray]:
    """``(F, need)``: :func:`forced_live`'s matrix and, per operator ``o``, the bytes of ``F_o``
    that cannot stay on chip beside ``o``'s operands within ``capacity``
    (``bytes(o) + size(F_o) - capacity``; positive where the capacity binds)."""
    inc, _, F = _forced(graph, schedule)
    return F, inc.need(F, int(capacity))


def _forced(graph: Graph, schedule) -> tuple[Incidence, np.ndarray, np.ndarray]:
    """``(Incidence, before, F)``: the order (the graph's, or ``schedule``'s) and the tensors
    live across each operator in every schedule extending it."""
    inc = Incidence(graph)
    before = ancestors(graph) if schedule is None else before_matrix(schedule)
    return inc, before, inc.live_across(before)


def spill_costs(graph: Graph) -> np.ndarray:
    """Non-compulsory bytes of a tensor that is off chip across an operator of
    :func:`forced_live`: twice its size for an intermediate that is not a graph output
    (a write-back and a reload), its size otherwise (a second load of an input or weight,
    or a reload of an output whose one write-back is compulsory)."""
    return graph.tensor_size.astype(np.int64) * np.where(owes_write_back(graph), 2, 1)


def spill_cover_bound(graph: Graph, capacity: int, schedule=None, *, time_limit: float | None = 1.0,
                      threads: int | None = None, alignment: int = 1) -> int:
    """A lower bound on the non-compulsory bytes of every plan of ``graph`` within ``capacity``
    (that runs ``schedule``, when given).

    The bound is the optimum of the covering problem

        minimise   sum_t cost_t z_t          (cost_t from :func:`spill_costs`)
        subject to sum_{t in F_o} size_t z_t >= need_o       for every operator o,
                   sum_{t in L_o} size_t z_t >= pressure_o - capacity   (free schedule only)
                   z_t in {0, 1},

    with ``F_o`` the tensors :func:`forced_live` across ``o``,
    ``need_o = bytes(o) + size(F_o) - capacity`` (operands of ``o`` plus ``F_o``, minus
    ``capacity``), ``L_o`` the tensors live across ``o`` in some schedule
    (:meth:`Incidence.possibly_live`) and ``pressure_o`` from :func:`op_pressure`. HiGHS
    solves it exactly (:func:`cosma_fast.highs.solve_min`); when ``time_limit`` stops it
    first, its dual bound is used, which is still valid. ``threads``: as in
    :func:`cosma_fast.solve` (HiGHS keeps one thread count per process).

    Why it is sound. Take any valid plan and let ``z_t = 1`` for the tensors that are off
    chip at the step of some operator ``o`` across which ``t`` is live in the plan's
    schedule (``F_o`` and ``L_o`` hold all such ``t``). (1) The constraints hold: at ``o``'s
    step, ``o``'s operands and the resident tensors live across ``o`` fit in ``capacity``,
    so the live tensors off chip there weigh at least ``need_o`` (the live ones include
    ``F_o``) and at least ``pressure_o - capacity`` (the live ones weigh at least
    ``pressure_o`` minus the operands). (2) Each such ``t`` costs the plan at least
    ``cost_t`` non-compulsory bytes: ``t`` is read after ``o``, so it is loaded again
    after ``o``. For an input or weight that load is not its first one (it was resident at
    an earlier step), and ``compulsory`` counts one load. For an intermediate every load
    is non-compulsory, and it needs an off-chip copy, i.e. a write-back of ``t`` (once per
    tensor), which is non-compulsory unless ``t`` is a graph output. Distinct tensors are
    distinct traffic, so the plan's non-compulsory bytes are at least ``sum_t cost_t z_t``
    >= the optimum. Addresses are ignored, which only weakens the bound. ``alignment`` > 1:
    for plans at addresses that are multiples of it, the same rows again in padded bytes within
    the padded room (:meth:`Incidence.capacity_rows`). Raises :class:`cosma_fast.InfeasibleError`
    below ``M_R`` (no plan exists; with ``alignment``, below the operators' aligned footprint).
    """
    t0 = time.perf_counter()
    check_capacity(graph, capacity, alignment)
    inc, before, F = _forced(graph, schedule)
    rooms = inc.capacity_rows(capacity, alignment)
    sets, weights, lower = [], [], []  # per block of rows: its tensor sets, their bytes, its bounds
    possibly = None if schedule is not None else inc.possibly_live(before)
    for k, (room, held, op_held) in enumerate(rooms):
        need = inc.need(F, room, held, op_held)
        sets.append(F[need > 0])
        weights.append(held)
        lower.append(need[need > 0])
        if schedule is None:  # with a schedule, pressure is need: the live sets are known
            # half the time at most for the cuts (quadratic work), the rest for HiGHS
            deadline = None if time_limit is None else t0 + 0.5 * time_limit * (k + 1) / len(rooms)
            extra = _graph_pressure(graph, deadline, held, op_held) - room
            more = extra > np.maximum(need, 0)
            sets.append(possibly[more])
            weights.append(held)
            lower.append(extra[more])
    M = np.concatenate(sets)
    if not len(M):
        return 0
    cols = M.any(axis=0)
    A = sp.csr_matrix(np.concatenate([S[:, cols] * w[cols].astype(float) for S, w in zip(sets, weights)]))
    # z binary; the optimum (or the dual bound at the time limit) rounded up: costs are bytes
    left = None if time_limit is None else max(0.01, time_limit - (time.perf_counter() - t0))
    return solve_min(spill_costs(graph)[cols].astype(float), A, np.concatenate(lower).astype(float), 1.0, True,
                     time_limit=left, threads=threads)[0]


@dataclass
class SpillSearchResult:
    """What :func:`least_spill_cover` or :func:`address_free_optimum` found: ``bound``
    (non-compulsory bytes, valid for every plan), ``schedule`` (an order that attains
    ``bound`` when ``exact``, else None), ``exact`` (the search finished: ``bound`` is its
    least value over every order, or ``upper`` was reached), ``states`` (states expanded)
    and ``time`` (seconds)."""
    bound: int
    schedule: np.ndarray | None
    exact: bool
    states: int
    time: float


def least_spill_cover(graph: Graph, capacity: int, *, upper: int | None = None, time_limit: float | None = None,
                      max_states: int = 2_000_000, lean_states: int | None = None,
                      alignment: int = 1) -> SpillSearchResult:
    """The least spill cover (the bound of :func:`spill_cover_bound` for a fixed schedule)
    over every order of ``graph``, by an A* search over down-sets
    (:mod:`cosma_fast.kernels.downset`); a lower bound on the non-compulsory bytes of every
    plan within ``capacity``, and stronger than :func:`spill_cover_bound` without a
    schedule, which relaxes the order to the operators' possible live sets.

    ``upper``: a known plan's non-compulsory bytes; states that cost that much are dropped,
    so the search ends sooner, and when none below it is left the bound is ``upper`` (the
    plan is then optimal). On ``time_limit`` or ``max_states`` stored states (about 125 bytes
    each, so ~250 MB at the default) the bound is the least estimate still queued (a state's
    cost plus a lower bound on what it still pays; valid: the cheapest order passes through
    a queued state, or one as good). Past ``lean_states`` stored states the search also stops
    when it has expanded fewer than one state in ``LEAN_RATIO`` of those it stored: its
    frontier then grows much faster than it closes, and it rarely finishes (randwire40 at
    ``M_H``: 50 stored per expanded, unfinished at 8M states after 13 s; layered50 at
    ``M_R``: 3, finished at 2.2M in 18 s). Graphs of more than
    :data:`cosma_fast.kernels.downset.MAX_OPS` operators raise :class:`ValueError`. Raises
    :class:`cosma_fast.InfeasibleError` below ``M_R`` (with ``alignment``, below the operators'
    aligned footprint). ``alignment`` > 1: a bound on every plan at addresses that are
    multiples of it; the states' tensors must fit as padded bytes
    (:func:`cosma_fast.budgets.aligned_capacity_rows`), the costs stay in bytes.
    """
    return _downset_search(graph, capacity, False, upper, time_limit, max_states, lean_states, "least_spill_cover",
                           alignment)


def address_free_optimum(graph: Graph, capacity: int, *, upper: int | None = None, time_limit: float | None = None,
                         max_states: int = 2_000_000, lean_states: int | None = None,
                         alignment: int = 1) -> SpillSearchResult:
    """The least address-free non-compulsory bytes over every order of ``graph``: the
    optimum of the relaxation that ignores addresses (a tensor off chip across an operator
    is loaded again before its next reader, each time; a dirty intermediate is written back
    once), and so a lower bound on every plan within ``capacity``, at least
    :func:`least_spill_cover`'s. The same search over down-sets, whose states also hold
    which live tensors are off chip now and which were written back
    (:mod:`cosma_fast.kernels.downset` with ``per_segment``); ``schedule`` is an order that
    attains it. Options (``alignment`` too), limits and errors as in :func:`least_spill_cover`;
    the states weigh more (two sets each) and are more numerous.
    """
    return _downset_search(graph, capacity, True, upper, time_limit, max_states, lean_states, "address_free_optimum",
                           alignment)


def address_free_beam(graph: Graph, capacity: int, *, width: int = 256, upper: int | None = None,
                      time_limit: float | None = None, stop=None) -> tuple[np.ndarray | None, int | None]:
    """``(order, value)``: an order of ``graph`` and address-free non-compulsory bytes it
    attains (at least its least, :func:`cosma_fast.ilp.orders.segment_cover`), by a beam
    search over the states of :func:`address_free_optimum` (Lowerre 1976): depth by depth,
    only the ``width`` states of least cost plus estimate are expanded, each taking at most
    the cheapest :data:`cosma_fast.kernels.beam.MAX_COVERS` sets of tensors to spill at a
    step. Where that search stores too many states to finish, this one still ends, in
    ``n_ops`` depths of at most ``width`` states each, and it takes graphs of any size (its
    down-sets are rows of words). ``(None, None)`` when every state reaches ``upper`` (a known
    plan's non-compulsory bytes), ``time_limit`` runs out first, or ``stop`` (a
    :class:`threading.Event`, checked between depths) is set. Raises
    :class:`cosma_fast.InfeasibleError` below ``M_R``."""
    from .kernels.beam import beam_layer_words
    from .kernels.downset import step_rows

    t0 = time.perf_counter()
    check_capacity(graph, capacity)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise OptionError(f"width must be a positive integer, got {width!r}")
    g, n = graph, graph.n_ops
    inc = Incidence(g)
    anc = ancestors(g)
    made_by, needed_by = _through_masks(inc, anc, g.tensor_producer)
    io_ptr, io_idx = inc.io_ptr, inc.io_idx
    masks = (_words(anc), _words(made_by), _words(needed_by))
    upper = np.iinfo(np.int64).max if upper is None else int(upper)
    WX = (g.n_tensors + 63) // 64
    D = np.zeros((1, (n + 63) // 64), np.uint64)
    S, cost = np.zeros((1, 2 * WX), np.uint64), np.zeros(1, np.int64)
    parents, ops = [], []
    args = (*masks, inc.size, spill_costs(g), io_ptr, io_idx, *step_rows(*masks, io_ptr, io_idx, inc.size),
            int(capacity), upper, int(width))
    for _ in range(n):
        if (time_limit is not None and time.perf_counter() - t0 > time_limit) or (stop is not None and stop.is_set()):
            return None, None
        D, S, cost, par, op = beam_layer_words(*args, D, S, cost)
        if not len(D):
            return None, None
        parents.append(par)
        ops.append(op)
    order, k = [], 0  # the cheapest goal, first in its depth's rank
    for par, op in zip(reversed(parents), reversed(ops)):
        order.append(int(op[k]))
        k = int(par[k])
    return np.asarray(order[::-1], np.int64), int(cost[0])


def _words(M: np.ndarray) -> np.ndarray:
    """The rows of the boolean matrix ``M`` as rows of ``uint64`` words (bit ``j`` of a row is
    bit ``j % 64`` of its word ``j // 64``)."""
    rows, cols = M.shape
    padded = np.zeros((rows, max(1, (cols + 63) // 64) * 64), dtype=bool)
    padded[:, :cols] = M
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64)

LEAN_RATIO = 10  # stored states per expanded one beyond which a search past ``lean_states`` stops


def _downset_search(graph: Graph, capacity: int, per_segment: bool, upper, time_limit, max_states, lean_states,
                    name, alignment: int = 1):
    """The search of :func:`least_spill_cover` (``per_segment`` False) or
    :func:`address_free_optimum`; ``name`` names the caller in errors. The kernel weighs the
    states' tensors by one array and prices them by another: with ``alignment``, the padded
    sizes within the padded room."""
    from .kernels import downset as K

    check_capacity(graph, capacity, alignment)
    if graph.n_ops > K.MAX_OPS:
        raise ValueError(f"{name} takes at most {K.MAX_OPS} operators, got {graph.n_ops}")
    inc = Incidence(graph)
    anc = ancestors(graph)
    made_by, needed_by = _through_masks(inc, anc, graph.tensor_producer)
    room, held = aligned_capacity_rows(inc.size, capacity, alignment)
    return _search_downsets(_bits(anc), _bits(made_by), _bits(needed_by), held, inc.size, spill_costs(graph),
                            inc.io_ptr, inc.io_idx, room, per_segment,
                            upper, time_limit, max_states, lean_states)


def _through_masks(inc: Incidence, anc: np.ndarray, producer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(made_by, needed_by)``, boolean ``(n_tensors, n_ops)``: the operators whose run
    shows that a tensor exists (its creators, a producer or an input's readers, and every
    operator that must run after one of them) and the ones whose not having run shows that
    it is still needed (its readers and every operator that must run before one of them).
    In a part of a graph a tensor made or read outside the part is live across a part's
    operator ``v`` in every order where one of the first has run before ``v`` and one of
    the second runs after it, touched by the part or not. For a whole graph, whose down-sets
    hold every ancestor of what they hold, these say what its creators and readers say.
    The down-set searches take them as bit masks (:func:`_bits`), the beam as word rows
    (:func:`_words`)."""
    read = inc.read > 0
    creators = read.copy()
    made = producer >= 0
    creators[made] = False
    creators[np.flatnonzero(made), producer[made]] = True
    ancf = anc.astype(np.float32)
    made_by = creators | ((creators.astype(np.float32) @ ancf.T) > 0)
    needed_by = read | ((read.astype(np.float32) @ ancf) > 0)
    return made_by, needed_by


def _bits(M: np.ndarray) -> np.ndarray:
    """Each row of the boolean ``M`` (at most 62 columns) as a bit mask."""
    return M @ (np.int64(1) << np.arange(M.shape[1], dtype=np.int64))


def _search_downsets(before, created, readers, size, reloads, costs, io_ptr, io_idx, capacity, per_segment, upper,
                     time_limit, max_states, lean_states) -> SpillSearchResult:
    """The down-set search on its arrays (bit masks of operators: ``before[v]``, and per
    tensor ``created`` and ``readers``; ``size``, ``reloads``, ``costs``; each operator's
    operands in CSR), in chunks between clock checks, growing the arrays as it goes."""
    from .kernels import downset as K

    t0 = time.perf_counter()
    nt = len(size)
    upper = np.iinfo(np.int64).max if upper is None else int(upper)
    W = (nt + 63) // 64 * (2 if per_segment else 1)  # off-chip words (then written-back words)
    cap = max(16, min(1 << 16, int(max_states)))
    # per state: down-set, spilled live tensors, cost, parent, operator run last
    st = [np.zeros(cap, np.int64), np.zeros((cap, W), np.uint64), np.zeros(cap, np.int64),
          np.full(cap, -1, np.int64), np.full(cap, -1, np.int64)]
    hg, hid = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
    hid[0] = 0
    # expanded states: a table of down-sets, each with its block of (cost, sets) in the pool
    hkey, hblock = np.full(1 << 12, -1, np.int64), np.zeros((1 << 12, 3), np.int64)
    cl_g, cl_S = np.zeros(cap, np.int64), np.zeros((cap, W), np.uint64)
    ctr = np.zeros(8, np.int64)
    ctr[K.N_STATES], ctr[K.HEAP_SIZE] = 1, 1
    ekey = np.full(1 << (2 * cap - 1).bit_length(), -1, np.int64)  # a power of two, at least 2 * cap
    ekey[K._twin_slot(ekey, 0, st[1][0], st[0], st[1])] = 0  # state 0: nothing run, nothing spilled
    deadline = None if time_limit is None else t0 + time_limit
    rows = K.step_rows(*(np.asarray(m, np.int64).astype(np.uint64)[:, None] for m in (before, created, readers)),
                       io_ptr, io_idx, size)
    while True:
        if deadline is not None and time.perf_counter() >= deadline:
            break
        # 2000 states a chunk: ~0.1 s between clock checks on the 50-operator graphs
        code = K.search_chunk(before, created, readers, size, reloads, costs, io_ptr, io_idx, *rows, int(capacity),
                              upper, 2000, per_segment, *st, hg, hid, hkey, hblock, cl_g, cl_S, ekey, ctr)
        if code == K.FINISHED:
            parent, last_op = st[3], st[4]
            order, s = [], int(ctr[K.GOAL])
            while last_op[s] >= 0:
                order.append(int(last_op[s]))
                s = int(parent[s])
            return SpillSearchResult(int(st[2][ctr[K.GOAL]]), np.asarray(order[::-1], np.int64), True,
                                     int(ctr[K.POPS]), time.perf_counter() - t0)
        if code == K.EXHAUSTED:
            return SpillSearchResult(upper, None, True, int(ctr[K.POPS]), time.perf_counter() - t0)
        if code == K.GROW:
            room = max(4096, int(ctr[K.NEED]))
            if len(st[0]) - ctr[K.N_STATES] < room:
                if len(st[0]) >= max_states:
                    break  # the state cap
                if lean_states is not None and len(st[0]) >= lean_states and LEAN_RATIO * ctr[K.POPS] < ctr[K.N_STATES]:
                    break  # a frontier that outgrows the search
                st = [np.concatenate([a, np.full_like(a, -1 if i >= 3 else 0)]) for i, a in enumerate(st)]
            while 2 * (ctr[K.N_KEYS] + room) > len(hkey):
                hkey, hblock = K.rehash(hkey, hblock, 2 * len(hkey))
            if 2 * (ctr[K.N_STATES] + room) > len(ekey):
                ekey = K.rehash_twins(ekey, 2 * len(ekey), st[0], st[1])
            if len(hg) - ctr[K.HEAP_SIZE] < room:
                hg, hid = np.concatenate([hg, np.zeros_like(hg)]), np.concatenate([hid, np.zeros_like(hid)])
            while len(cl_g) - ctr[K.POOL_USED] < max(4096, int(ctr[K.POOL_NEED])):
                cl_g, cl_S = np.concatenate([cl_g, np.zeros_like(cl_g)]), np.concatenate([cl_S, np.zeros_like(cl_S)])
    return SpillSearchResult(min(upper, int(hg[0])), None, False, int(ctr[K.POPS]), time.perf_counter() - t0)


def chunked_spill_cover(graph: Graph, capacity: int, parts=None, *, part_ops: int = 30, address_free: bool = False,
                        time_limit: float | None = None, max_states: int = 2_000_000,
                        workers: int = 1) -> SpillSearchResult:
    """A lower bound on the non-compulsory bytes of every plan of ``graph`` within
    ``capacity``, for graphs too large for :func:`least_spill_cover`: the sum of the least
    spill covers of its parts, each over every order of the part's operators.

    A part sees its own operators, with every operand. It sees a tensor when it touches it
    on both sides of one of its operators (made there and read there, or read there twice),
    and a tensor no part sees so (made in one part, read once in another) in the one part
    where it can be live across the most operators. A tensor the part sees is live across
    its operator ``v`` when an operator that shows it made (a creator, or one that must run
    after a creator) has run before ``v`` and one that shows it still needed (a reader, or
    one that must run before a reader) runs after ``v``, in the part or not
    (:func:`_through_masks`): in every order of the whole graph it is then live there, so
    the part's covers relax the whole's. The tensors made or read outside a part press on
    it as they do on the whole (layered100 at ``M_H``, parts of up to 62 operators: 15816
    bytes address-free, 15094 when a part saw only the tensors live between its own
    touches). A tensor seen by ``k`` parts costs ``cost_t / k`` in each (prices scaled to
    integers by a common factor), so the whole graph's least spill cover, cut into the
    parts, pays at least the sum: this is a Lagrangian-style decomposition by price sharing
    (as for the cost splits of dual decomposition, Guignard & Kim 1987).

    With ``address_free`` the parts are priced as :func:`address_free_optimum` prices the
    whole (a reload per segment off chip, a write-back once), each reload and write-back
    shared the same way: a part's segment off chip between two of its own touches holds
    whole segments of the whole graph's, one of which at least has the part's operator
    across which the tensor is off chip, so a segment of the whole is charged by at most
    ``k`` parts, and each part charges a write-back only where the whole makes one. Its
    sum is then at most the whole's address-free optimum, and at least the spill covers'
    sum, but its parts' states are larger and more numerous.

    The bound is strong where few tensors cross the parts (layered100 at ``M_H``: 11600
    bytes from runs of at most 30 operators in 0.3 s, 13106 address-free in 0.7 s, where
    :func:`spill_cover_bound` gives 3242) and weak where many do (randwire, whose edges
    are mostly rewired at random: randwire100 at ``M_R``, 6245 bytes, against 25833 from
    the other bounds).

    ``parts``: a partition of the operators into sequences of at most
    :data:`cosma_fast.kernels.downset.MAX_OPS`; by default :func:`quiet_cuts` of the
    graph's stored order into runs of at most ``part_ops``. ``workers``: parts searched at
    once, in threads (the search releases the GIL; each stores up to ``max_states``
    states). ``time_limit`` is shared among the parts, a part's unused time passing to the
    ones not yet started; a part stopped by it or by ``max_states`` gives the least
    estimate still queued (still a bound), so the result depends on ``workers`` only when
    a part is stopped. Returns a :class:`SpillSearchResult` whose
    ``exact`` says every part finished and whose ``schedule`` is the parts' least-cover
    orders one after another (a part that did not finish keeps its given order) when that
    is a topological order, as it is for runs of one, else None; that order need not
    attain ``bound``. Raises :class:`cosma_fast.InfeasibleError` below ``M_R`` and
    :class:`ValueError` for parts that do not partition the operators or are too large.
    """
    import math
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from .kernels import downset as K

    t0 = time.perf_counter()
    check_capacity(graph, capacity)
    n = graph.n_ops
    if parts is None:
        if not 1 <= part_ops <= K.MAX_OPS:
            raise ValueError(f"part_ops must be from 1 to {K.MAX_OPS}, got {part_ops}")
        parts = quiet_cuts(graph, part_ops)
    parts = [np.asarray(p, dtype=np.int64) for p in parts]
    seen = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    if len(seen) != n or not np.array_equal(np.sort(seen), np.arange(n)):
        raise ValueError("parts must hold every operator exactly once")
    too_large = [len(p) for p in parts if len(p) > K.MAX_OPS]
    if too_large:
        raise ValueError(f"a part has {too_large[0]} operators; at most {K.MAX_OPS}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise OptionError(f"workers must be a positive integer, got {workers!r}")
    inc = Incidence(graph)
    anc = ancestors(graph)
    part_of = np.empty(n, np.int64)
    for i, p in enumerate(parts):
        part_of[p] = i
    producer = graph.tensor_producer
    made_in = np.where(producer >= 0, part_of[np.maximum(producer, 0)], -1)
    own = made_in[:, None] == np.arange(len(parts))[None, :]
    # the parts that see a tensor: where the part itself touches it on both sides of one of
    # its operators (made there and read there, or read there twice); a tensor no part sees
    # so (made in one part, read once in another) goes to the part where it can be live
    # across the most operators
    reads = np.stack([inc.read[:, p].sum(axis=1) for p in parts], axis=1)
    sees = np.where(own, reads >= 1, reads >= 2)
    made_by, needed_by = _through_masks(inc, anc, producer)
    exposure = np.stack([np.minimum(made_by[:, p].sum(axis=1), needed_by[:, p].sum(axis=1))
                         * ((made_by[:, p] | needed_by[:, p]).sum(axis=1) >= 2) for p in parts], axis=1)
    unseen = np.flatnonzero(~sees.any(axis=1) & (exposure.max(axis=1) > 0))
    sees[unseen, exposure[unseen].argmax(axis=1)] = True
    k = sees.sum(axis=1)
    costs = spill_costs(graph)
    scale = math.lcm(*(int(x) for x in np.unique(k[k > 0]))) if (k > 0).any() else 1
    if int(costs.sum()) * scale >= 1 << 60:  # no room to scale: shares rounded down (still a bound)
        scale = 1
    # a reload's share and a write-back's, each rounded down (exact unless the scale is 1)
    reload = inc.size * scale // np.maximum(k, 1)
    price = reload + (costs - inc.size) * scale // np.maximum(k, 1)
    started = [0]  # parts handed to a worker so far
    lock = threading.Lock()

    def search(i):
        with lock:
            waiting = len(parts) - started[0]  # this part and the ones not yet started
            started[0] += 1
        # the time left, spread over the rounds of ``workers`` parts still to run
        rounds = -(-waiting // min(workers, len(parts)))
        left = None if time_limit is None else max(0.0, t0 + time_limit - time.perf_counter()) / rounds
        p = parts[i]
        # a tensor the part sees is live across its operator ``v`` when one of its ``made_by``
        # operators has run before ``v`` and one of its ``needed_by`` runs after, wherever they are
        return _search_downsets(_bits(anc[np.ix_(p, p)]), _bits(made_by[:, p] & sees[:, i, None]),
                                _bits(needed_by[:, p] & sees[:, i, None]), inc.size, reload, price,
                                *_rows_csr(inc.operand[p]), capacity, address_free, None, left, max_states, None)

    if workers == 1 or len(parts) == 1:
        results = [search(i) for i in range(len(parts))]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(parts))) as pool:
            results = list(pool.map(search, range(len(parts))))
    total = sum(r.bound for r in results)
    exact = all(r.exact for r in results)
    states = sum(r.states for r in results)
    order = [p if r.schedule is None else p[r.schedule] for p, r in zip(parts, results)]
    # the parts' own orders, one after another, when the parts are runs of one order
    schedule = np.concatenate(order)
    pos = np.empty(n, np.int64)
    pos[schedule] = np.arange(n)
    if np.any(anc & (pos[None, :] > pos[:, None])):
        schedule = None
    return SpillSearchResult(-(-total // scale), schedule, exact, states, time.perf_counter() - t0)


def quiet_cuts(graph: Graph, max_ops: int, order=None) -> list[np.ndarray]:
    """``order`` (by default the graph's stored order) cut into runs of at most ``max_ops``
    operators, and at least half that but for the last, where the fewest bytes cross: the
    cuts minimise the summed bytes of the tensors touched before a cut and read after it
    (a shortest path over cut positions). Tensors that cross a cut are the ones
    :func:`chunked_spill_cover` loses or shares, so its parts are then as independent as
    runs of the order can be. Raises :class:`ValueError` when ``max_ops`` is below 1."""
    if max_ops < 1:
        raise ValueError(f"max_ops must be at least 1, got {max_ops}")
    n = graph.n_ops
    order = np.arange(n, dtype=np.int64) if order is None else np.asarray(order, dtype=np.int64)
    pos = np.empty(n, np.int64)
    pos[order] = np.arange(n)
    inc = Incidence(graph)
    first = np.where(inc.touch > 0, pos[None, :], n).min(axis=1)
    last = np.where(inc.read > 0, pos[None, :], -1).max(axis=1)
    # crossing[i]: bytes of the tensors touched before position i and read at i or later
    diff = np.zeros(n + 2, np.int64)
    live = last > first
    np.add.at(diff, first[live] + 1, inc.size[live])
    np.add.at(diff, last[live] + 1, -inc.size[live])
    crossing = np.cumsum(diff)[:n + 1]
    least = np.full(n + 1, np.iinfo(np.int64).max)
    came_from = np.zeros(n + 1, np.int64)
    least[0] = 0
    shortest = max(1, max_ops // 2)
    for j in range(1, n + 1):
        lo = max(0, j - max_ops)
        hi = j - 1 if j == n else j - shortest  # the last run may be shorter
        if hi < lo:
            continue
        i = lo + int(np.argmin(least[lo:hi + 1]))
        if least[i] == np.iinfo(np.int64).max:
            continue
        least[j] = least[i] + (crossing[j] if j < n else 0)
        came_from[j] = i
    cuts, j = [n], n
    while j > 0:
        j = int(came_from[j])
        cuts.append(j)
    cuts = cuts[::-1]
    return [order[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
