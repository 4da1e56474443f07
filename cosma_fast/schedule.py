"""Operator schedules that keep live memory low, and the bounds they give.

* :func:`live_profile` / :func:`peak_live`: live bytes of a given schedule
  (the live-memory model is documented in :mod:`cosma_fast.kernels.peak`).
* :func:`min_peak_schedule`: ``M_P``, the smallest peak over all schedules.
  Exact by dynamic programming over the *down-sets* (sets of already executed
  operators closed under predecessors): the live bytes after a down-set do not
  depend on the order that reached it, so ``best[S + o] = min(max(best[S],
  step(S, o)))`` — the classic formulation of memory-optimal scheduling of
  Kayaaslan, Lambert, Marchal and Ucar ("Scheduling series-parallel task graphs
  to minimize peak memory", TCS 2018) and of Liu's work on tree schedules
  (Liu, "An application of generalized tree pebbling to sparse matrix
  factorization", SIAM J. Algebraic Discrete Methods 1987). A beam search over
  the down-sets (:func:`cosma_fast.kernels.peak.min_peak_beam`) prunes them by
  branch and bound against the best schedule found first (greedy list schedules
  polished by adjacent swaps, then its own narrower widths); a width that holds
  every down-set left is the exact search. When the time runs out first, the best
  schedule is returned and labelled not exact.
* :func:`schedule_lower_bound` / :func:`lower_bound`: lower bounds on
  non-compulsory traffic (DESIGN.md section 2).
"""

from __future__ import annotations

import time

import numpy as np

from .graph import Graph
from .kernels import peak as _k

__all__ = ["live_profile", "peak_live", "min_peak_schedule", "min_peak_bounds", "schedule_lower_bound", "lower_bound"]


def _check_order(graph: Graph, order) -> np.ndarray:
    from .errors import OptionError

    order = np.asarray(order, dtype=np.int64)
    n = graph.n_ops
    if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
        raise OptionError(f"a schedule must list each of the {n} operators exactly once")
    pos = np.empty(n, np.int64)
    pos[order] = np.arange(n)
    for o in range(n):
        for t in graph.inputs_of(o):
            p = graph.tensor_producer[t]
            if p >= 0 and pos[p] > pos[o]:
                raise OptionError(f"schedule runs {graph.op_names[o]!r} before {graph.op_names[p]!r}, "
                                  f"which produces its input {graph.tensor_names[t]!r}")
    return order


def live_profile(graph: Graph, order=None, size: np.ndarray | None = None) -> np.ndarray:
    """Live bytes at each step of ``order`` (default: model order).

    A tensor is live from its creation (producer's step; for an input or weight
    its first use) to its last use; at step ``i`` the running operator's inputs
    and outputs are all live. ``size``: the bytes each tensor counts for (its own
    by default; padded sizes for aligned capacity rows). Returns an int64 array of
    length ``n_ops``.
    """
    order = np.arange(graph.n_ops) if order is None else _check_order(graph, order)
    return _k.live_profile(order, graph.tensor_size if size is None else size, graph.tensor_kind,
                           graph.op_out_ptr, graph.op_out_idx, graph.cons_ptr, graph.cons_idx)


def peak_live(graph: Graph, order=None) -> int:
    """Peak live bytes of the schedule ``order`` (default: model order)."""
    prof = live_profile(graph, order)
    return int(prof.max()) if len(prof) else 0


def _arrays(graph: Graph):
    return (graph.tensor_size, graph.tensor_kind, graph.op_in_ptr, graph.op_in_idx, graph.op_out_ptr,
            graph.op_out_idx, graph.cons_ptr, graph.cons_idx)


def heuristic_schedule(graph: Graph, swap_passes: int = 20) -> tuple[np.ndarray, int]:
    """Best of the greedy list schedules of :func:`cosma_fast.kernels.peak.greedy_schedule`
    and model order, each polished by adjacent swaps. Returns ``(order, peak)``."""
    arrs = _arrays(graph)
    candidates = [np.arange(graph.n_ops, dtype=np.int64)]
    for rule in range(_k.N_GREEDY_RULES):
        candidates.append(_k.greedy_schedule(rule, *arrs)[0])
    best, best_peak = None, None
    for order in candidates:
        order, peak = _k.swap_search(order, swap_passes, *arrs)
        if best_peak is None or peak < best_peak:
            best, best_peak = order, int(peak)
    return best, best_peak


def min_peak_bounds(graph: Graph, time_limit: float | None = 10.0, *,
                    max_states: int = 300_000) -> tuple[np.ndarray, int, int]:
    """``(order, peak, lower)``: the best schedule found, its peak live bytes, and a
    proven lower bound on ``M_P`` (``lower == peak`` exactly when ``M_P`` is proven).

    The best schedule is the least peak of the greedy list schedules (polished by adjacent
    swaps) and of a beam search over down-sets (:func:`_beam_schedule`) whose widths grow
    while each one's work fits half of ``time_limit``. Then, unless a width was exhaustive,
    the exact search: a beam as wide as ``max_states`` down-sets allow (``width * n_ops``),
    pruned by branch and bound against the best peak, with the work the widths left of the
    limit (:func:`_exact_beam`; ``max_states=0`` skips it). ``lower`` is at least ``M_R``, the
    largest :func:`cosma_fast.bounds.op_pressure` (the least bytes live at one operator's
    step over all schedules) and the beams' bounds.
    """
    from .bounds import op_pressure

    n = graph.n_ops
    if n == 0:
        return np.zeros(0, np.int64), 0, 0
    deadline = time.perf_counter() + (time_limit if time_limit is not None else float("inf"))
    order, peak = heuristic_schedule(graph)
    m_r = int(graph.op_bytes().max())
    if peak <= m_r:  # no schedule goes below M_R
        return order, peak, peak
    # half the time left at most: quadratic work, 11.5 s on 3000 operators (budgets' 5 s took 13 s)
    pressure = int(op_pressure(graph, time_limit=None if time_limit is None
                               else 0.5 * max(0.0, deadline - time.perf_counter())).max())
    if peak <= pressure:
        return order, peak, peak
    order, peak, lower, widest = _beam_schedule(graph, order, peak, pressure, time_limit, deadline)
    if lower < peak and time.perf_counter() < deadline:
        # the work the widths left of the limit, and no more than the time left allows
        work = None if time_limit is None else min(time_limit * BEAM_RATE - sum(
            w * n * n for w in BEAM_WIDTHS if w <= widest), (deadline - time.perf_counter()) * BEAM_RATE)
        exact_order, lower = _exact_beam(graph, peak, lower, max_states // n, widest, work, deadline)
        if exact_order is not None:  # M_P: its peak is ``lower``
            order, peak = exact_order, lower
    return order, peak, max(lower, pressure, m_r)


#: the beam's widths, in turn (:func:`_beam_schedule`)
BEAM_WIDTHS = (64, 256, 1024, 4096, 16384)
#: a width's work, in ``width * n_ops ** 2`` units per second: about a third of the 2-core
#: machine's rate (randwire100 and randwire200 at width 4096: 0.53 and 2.14 s)
BEAM_RATE = 5e7
BEAM_SHARE = 0.5  # of ``time_limit``, for each width's beam; the exact search gets what they leave
BEAM_MAX_BYTES = 1 << 28  # a width's arrays (its children and their parents) stay below this
_NO_LIMIT = 1 << 62  # min_peak_beam's upper and max_work when there is none


def _clock(deadline: float) -> float:
    """``deadline`` as :func:`cosma_fast.kernels.peak.min_peak_beam` takes it: 0 for none."""
    return 0.0 if deadline == float("inf") else float(deadline)


def _fits_memory(width: int, n: int) -> bool:
    return width * n * (8 * ((n + 63) // 64) + 48) <= BEAM_MAX_BYTES


def _beam_schedule(graph: Graph, order: np.ndarray, peak: int, lower: int, time_limit: float | None,
                   deadline: float) -> tuple[np.ndarray, int, int, int]:
    """``(order, peak, lower, widest)``: the better of the given schedule and those of
    :func:`cosma_fast.kernels.peak.min_peak_beam` at the widths of ``BEAM_WIDTHS`` whose work
    fits ``BEAM_SHARE`` of ``time_limit`` at ``BEAM_RATE`` (all of them without a limit) and
    whose arrays fit ``BEAM_MAX_BYTES``, each pruned by the best peak so far, until ``peak``
    meets ``lower`` (a proven lower bound on ``M_P``, raised by each beam's). The widths
    depend on the graph's size and the limit only, so ``M_P`` does not depend on the
    machine's speed (unless ``deadline`` passes first). Wide graphs gain most, where the
    greedy list schedules go astray (randwire100: 43704 -> 34747 bytes at width 4096 in
    0.5 s; randwire200: 96152 -> 85476 in 2.1 s). ``lower`` is ``peak`` when a width held
    every down-set of each size that could beat the best peak: the beam was the exact search
    (small graphs: no wider width runs). ``widest``: the widest width run, 0 for none."""
    n = graph.n_ops
    arrs = _arrays(graph)
    widest = 0
    for width in BEAM_WIDTHS:
        if peak <= lower or not _fits_memory(width, n):
            break
        if time_limit is not None and (width * n * n > BEAM_SHARE * time_limit * BEAM_RATE
                                       or time.perf_counter() > deadline):
            break
        o, p, complete, low, _ = _k.min_peak_beam(width, peak, _NO_LIMIT, _clock(deadline), *arrs)
        widest = width
        if p < peak:
            order, peak = o, int(p)
        lower = max(lower, int(low))
        if complete:
            return order, peak, peak, widest
    return order, peak, min(lower, peak), widest


def _exact_beam(graph: Graph, peak: int, lower: int, width: int, widest: int,
                work: float | None, deadline: float = float("inf")) -> tuple[np.ndarray | None, int]:
    """``(order or None, lower)``: the exact search for a schedule below ``peak``, a beam of
    ``width`` (wider than ``widest``, the beams' widest, and within ``BEAM_MAX_BYTES``) that
    stops after ``work`` units (None: no limit; counted, not timed: a proof does not depend
    on the machine, only whether there was time for it; ``deadline``, a
    ``time.perf_counter`` reading, is a safety net). Only an exhaustive search counts:
    its order when it beats ``peak`` (``lower`` is then its peak, ``M_P``), else None with
    ``lower = peak`` (no schedule beats it); when it stops short, None and ``lower`` raised
    by its bound.
    Branch and bound prunes most down-sets where the best peak is close to ``M_P``
    (layered200: 11827 bytes proven in 0.01 s, 9213 states at width 1500; the down-set search
    in Python it replaces took 0.13 s)."""
    n = graph.n_ops
    while width > widest and not _fits_memory(width, n):
        width //= 2
    if width <= widest or (work is not None and work < 1):
        return None, lower
    o, p, complete, low, _ = _k.min_peak_beam(width, peak, _NO_LIMIT if work is None else int(work),
                                              _clock(deadline), *_arrays(graph))
    if not complete:
        return None, max(lower, int(low))
    if p < peak:
        return o, int(p)
    return None, peak


def min_peak_schedule(graph: Graph, time_limit: float | None = 10.0, *,
                      max_states: int = 300_000) -> tuple[np.ndarray, int, bool]:
    """A schedule of minimum peak live bytes (``M_P``).

    Returns ``(order, peak, exact)``: ``exact`` is True when the search proved ``peak``
    the minimum over all topological orders, False when ``time_limit`` seconds or
    ``max_states`` states ran out and ``peak`` is the best schedule found's (an upper bound
    on ``M_P``). See :func:`min_peak_bounds` for the search and the proven lower bound.
    """
    order, peak, lower = min_peak_bounds(graph, time_limit, max_states=max_states)
    return order, peak, lower == peak


def schedule_lower_bound(graph: Graph, order, capacity: int) -> int:
    """``max(0, max_i live_i - capacity)``: a lower bound on the non-compulsory bytes
    of any plan that runs the operators in ``order`` (DESIGN.md section 2).

    Why it is sound: at step ``i`` the operator's own operands are resident, and
    every other tensor live at ``i`` was created before and is read after ``i``.
    At most ``capacity`` of the ``live_i`` bytes fit on chip, so tensors of at least
    ``live_i - capacity`` bytes are off chip at step ``i`` while still needed later;
    each must be loaded again before its next use, and that load is not compulsory
    (an input's or weight's compulsory load is its first one, which happened at or
    before its first use; an intermediate has no compulsory load at all). Each such
    tensor is counted once, at this one step.
    """
    prof = live_profile(graph, order)
    return max(0, int(prof.max()) - int(capacity)) if len(prof) else 0


def lower_bound(graph: Graph, capacity: int, time_limit: float | None = 10.0) -> int:
    """``max(0, M_P - capacity)`` when ``M_P`` is computed exactly; otherwise the same
    with the proven lower bound on ``M_P`` of :func:`min_peak_bounds` (often 0).

    Sound for every schedule: each schedule's peak live is at least ``M_P``, so
    :func:`schedule_lower_bound` of any schedule is at least ``M_P - capacity``,
    and that is a lower bound on its non-compulsory bytes. A heuristic ``M_P`` is
    only an upper bound on the true minimum and is never used here.
    """
    _, _, lower = min_peak_bounds(graph, time_limit=time_limit)
    return max(0, int(lower) - int(capacity))
