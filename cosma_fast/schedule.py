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
  factorization", SIAM J. Algebraic Discrete Methods 1987). States are pruned
  by branch and bound against the best schedule found first: greedy list
  schedules polished by adjacent swaps, and a beam search over the same
  down-sets (:func:`cosma_fast.kernels.peak.min_peak_beam`). When the state or
  time budget runs out, that schedule is returned and labelled not exact.
* :func:`schedule_lower_bound` / :func:`lower_bound`: lower bounds on
  non-compulsory traffic (DESIGN.md section 2).
"""

from __future__ import annotations

import time

import numpy as np

from .graph import INTERMEDIATE, Graph
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


def live_profile(graph: Graph, order=None) -> np.ndarray:
    """Live bytes at each step of ``order`` (default: model order).

    A tensor is live from its creation (producer's step; for an input or weight
    its first use) to its last use; at step ``i`` the running operator's inputs
    and outputs are all live. Returns an int64 array of length ``n_ops``.
    """
    order = np.arange(graph.n_ops) if order is None else _check_order(graph, order)
    return _k.live_profile(order, graph.tensor_size, graph.tensor_kind, graph.op_out_ptr, graph.op_out_idx,
                           graph.cons_ptr, graph.cons_idx)


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


class _OutOfBudget(Exception):
    """The down-set search ran out of states or time; ``lower`` is still proven."""

    def __init__(self, lower: int):
        super().__init__(lower)
        self.lower = lower


def _exact_search(graph: Graph, upper: int, deadline: float, max_states: int):
    """Down-set DP with branch and bound. Returns ``(order or None, peak)``:
    ``order`` None means no schedule beats ``upper`` (so ``upper`` is optimal).
    Raises :class:`_OutOfBudget` with a proven lower bound on ``M_P`` when the
    budget runs out: every schedule passes through one down-set of each size, so
    the smallest bound over a completed level bounds every schedule."""
    n = graph.n_ops
    size = [int(x) for x in graph.tensor_size]
    first_use_is_load = [int(k) != INTERMEDIATE for k in graph.tensor_kind]
    cons_mask = [0] * graph.n_tensors
    for t in range(graph.n_tensors):
        for o in graph.consumers_of(t):
            cons_mask[t] |= 1 << int(o)
    ins = [[int(t) for t in graph.inputs_of(o)] for o in range(n)]
    outs = [[int(t) for t in graph.outputs_of(o)] for o in range(n)]
    out_bytes = [sum(size[t] for t in outs[o]) for o in range(n)]
    # outputs nobody reads die at their own step
    out_dead = [sum(size[t] for t in outs[o] if cons_mask[t] == 0) for o in range(n)]
    pred_mask = [0] * n
    succ: list[set[int]] = [set() for _ in range(n)]
    for o in range(n):
        for t in ins[o]:
            p = int(graph.tensor_producer[t])
            if p >= 0:
                pred_mask[o] |= 1 << p
                succ[p].add(o)
    op_bytes = graph.op_bytes()
    by_bytes = [int(o) for o in np.argsort(-op_bytes, kind="stable")]
    full = (1 << n) - 1

    def rest_bound(mask: int) -> int:
        # every remaining operator's inputs + outputs are live at its step
        for o in by_bytes:
            if not mask >> o & 1:
                return int(op_bytes[o])
        return 0

    # state: mask -> (best peak so far, live bytes after, ready ops)
    level = {0: (0, 0, tuple(o for o in range(n) if pred_mask[o] == 0))}
    parent: dict[int, tuple[int, int]] = {}
    n_states = 0
    proven = int(op_bytes.max())  # M_R: every schedule runs the largest operator
    for _ in range(n):
        nxt: dict[int, tuple[int, int, tuple]] = {}
        for mask, (best, live, ready) in level.items():
            for o in ready:
                bit = 1 << o
                new_mask = mask | bit
                step = live + out_bytes[o]
                dying = out_dead[o]
                after_mask = ~new_mask
                for t in ins[o]:
                    if first_use_is_load[t] and not cons_mask[t] & mask:
                        step += size[t]
                    if not cons_mask[t] & after_mask:
                        dying += size[t]
                peak = best if best > step else step
                if peak >= upper:
                    continue
                old = nxt.get(new_mask)
                if old is not None and old[0] <= peak:
                    continue
                if old is None:
                    rb = rest_bound(new_mask)
                    if rb >= upper or step - dying >= upper:
                        continue
                    ready2 = [r for r in ready if r != o]
                    for s in succ[o]:
                        if pred_mask[s] & ~new_mask == 0:
                            ready2.append(s)
                    ready2 = tuple(ready2)
                    n_states += 1
                    if n_states > max_states or (n_states & 1023 == 0 and time.perf_counter() > deadline):
                        raise _OutOfBudget(proven)
                else:
                    ready2 = old[2]
                nxt[new_mask] = (peak, step - dying, ready2)
                parent[new_mask] = (mask, o)
        level = nxt
        if not level:
            return None, upper
        # a schedule that beats ``upper`` passes through a state of this level, so its
        # peak is at least that state's peak so far, live bytes and largest remaining op
        level_lb = min(max(peak, live if mask != full else 0, rest_bound(mask))
                       for mask, (peak, live, _) in level.items())
        proven = max(proven, min(upper, level_lb))
    best = level[full][0]
    order = []
    mask = full
    while mask:
        mask, o = parent[mask]
        order.append(o)
    return np.array(order[::-1], dtype=np.int64), int(best)


def min_peak_bounds(graph: Graph, time_limit: float | None = 10.0, *,
                    max_states: int = 300_000) -> tuple[np.ndarray, int, int]:
    """``(order, peak, lower)``: the best schedule found, its peak live bytes, and a
    proven lower bound on ``M_P`` (``lower == peak`` exactly when ``M_P`` is proven).

    ``lower`` is at least ``M_R`` and the largest :func:`cosma_fast.bounds.op_pressure`
    (the least bytes live at one operator's step over all schedules); when the search
    stops early it is the larger of that and the bound of the last completed level of the
    down-set search. The best schedule is the least peak of the greedy list schedules and
    of a beam search over down-sets (:func:`_beam_schedule`), and the exact down-set search
    prunes against it.
    """
    from .bounds import op_pressure

    start = time.perf_counter()
    n = graph.n_ops
    if n == 0:
        return np.zeros(0, np.int64), 0, 0
    order, peak = heuristic_schedule(graph)
    m_r = int(graph.op_bytes().max())
    if peak <= m_r:  # no schedule goes below M_R
        return order, peak, peak
    pressure = int(op_pressure(graph).max())
    if peak <= pressure:
        return order, peak, peak
    deadline = start + (time_limit if time_limit is not None else float("inf"))
    order, peak, complete = _beam_schedule(graph, order, peak, pressure, time_limit, deadline)
    if complete or peak <= pressure:
        return order, peak, peak
    try:
        exact_order, exact_peak = _exact_search(graph, peak, deadline, max_states)
    except _OutOfBudget as e:
        return order, peak, min(peak, max(e.lower, pressure))
    if exact_order is None:
        return order, peak, peak
    return exact_order, exact_peak, exact_peak


#: the beam's widths, in turn (:func:`_beam_schedule`)
BEAM_WIDTHS = (64, 256, 1024, 4096, 16384)
#: a width's work, in ``width * n_ops ** 2`` units per second: about a third of the 2-core
#: machine's rate (randwire100 and randwire200 at width 4096: 0.53 and 2.14 s)
BEAM_RATE = 5e7
BEAM_SHARE = 0.5  # of ``time_limit``, for the beam; the exact search gets the rest
BEAM_MAX_BYTES = 1 << 28  # a width's arrays (its children and their parents) stay below this


def _beam_schedule(graph: Graph, order: np.ndarray, peak: int, lower: int, time_limit: float | None,
                   deadline: float) -> tuple[np.ndarray, int, bool]:
    """``(order, peak, complete)``: the better of the given schedule and those of
    :func:`cosma_fast.kernels.peak.min_peak_beam` at the widths of ``BEAM_WIDTHS`` whose work
    fits ``BEAM_SHARE`` of ``time_limit`` at ``BEAM_RATE`` (all of them without a limit) and
    whose arrays fit ``BEAM_MAX_BYTES``, until ``peak`` meets ``lower`` (a proven lower bound
    on ``M_P``). The widths depend on the graph's size and the limit only, so ``M_P`` does
    not depend on the machine's speed (unless ``deadline`` passes first). Wide graphs gain
    most, where the greedy list schedules go astray (randwire100: 43704 -> 34747 bytes at
    width 4096 in 0.5 s; randwire200: 96152 -> 85476 in 2.1 s), and a lower upper bound
    prunes the exact search (layered200: 12375 -> 11827 at width 64, which is the pressure
    bound: exact). ``complete``: a width held every down-set of each size, so the beam was the
    exact search and ``peak`` is ``M_P`` (small graphs: no wider width runs)."""
    n = graph.n_ops
    arrs = _arrays(graph)
    for width in BEAM_WIDTHS:
        if peak <= lower or width * n * (8 * ((n + 63) // 64) + 48) > BEAM_MAX_BYTES:
            break
        if time_limit is not None and (width * n * n > BEAM_SHARE * time_limit * BEAM_RATE
                                       or time.perf_counter() > deadline):
            break
        o, p, complete = _k.min_peak_beam(width, *arrs)
        if p < peak:
            order, peak = o, int(p)
        if complete:
            return order, peak, True
    return order, peak, False


def min_peak_schedule(graph: Graph, time_limit: float | None = 10.0, *,
                      max_states: int = 300_000) -> tuple[np.ndarray, int, bool]:
    """A schedule of minimum peak live bytes (``M_P``).

    Returns ``(order, peak, exact)``: ``exact`` is True when the down-set search
    finished (``peak`` is then the minimum over all topological orders), False
    when ``time_limit`` seconds or ``max_states`` states ran out and ``peak`` is
    the best heuristic schedule's (an upper bound on ``M_P``). See
    :func:`min_peak_bounds` for the proven lower bound as well.
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
