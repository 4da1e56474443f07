"""The fast heuristic planner: schedule rules, size-aware replacement, local search.

:func:`heuristic_plan` runs a small portfolio and keeps the cheapest plan:

1. candidate orders from the list-scheduling rules of
   :mod:`cosma_fast.kernels.schedule` (model order, min-peak greedy, depth-first,
   lookahead), or only the given order in fixed-schedule mode;
2. for each order, one pass of :func:`cosma_fast.kernels.replace.plan_pass`
   per replacement setting: the size-aware, write-back-aware window rule for
   several next-use weights ``beta``, and COSMA's size-blind Belady rule (so the
   result is never worse than the baselines of :mod:`cosma_fast.baselines`); the
   passes go setting by setting over the orders, and ``time_limit`` stops them at
   ``PORTFOLIO_SHARE`` of it (after one pass at least);
3. a local search over the order of the best candidate (single operator moves
   that keep dependencies; on graphs of at most 200 operators also restarted
   from the second and third best orders, the restarts in threads from
   ``PARALLEL_RESTARTS_MIN_OPS`` operators), re-picking the replacement setting
   on the current order after every chunk of moves; deterministic for a seed;
   ``time_limit`` cuts it short;
4. on the final order, the size-aware settings again with up to ``REFINE_ROUNDS``
   refining passes (:func:`cosma_fast.kernels.replace.plan_pass_refined`), which
   place the operands of tight steps (at ``M_R`` the largest operator leaves no
   slack) where those steps' packings want them.

The problem and the cost are those of COSMA (Li, Gupta, Malik, arXiv 2311.18246).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .errors import InfeasibleError
from .graph import Graph
from .kernels.replace import BELADY, SIZE_AWARE, local_search, plan_pass_refined
from .kernels.schedule import RULE_NAMES, list_schedule
from .plan import Plan
from .solve import MethodOutput, SolveOptions, check_threads

__all__ = ["best_setting", "heuristic_plan", "local_search_plan", "solve_heuristic", "run_pass", "rule_schedule"]

#: next-use weights tried by the size-aware rule (cost / distance ** beta)
BETAS = (0.0, 0.5, 1.0, 2.0, 3.0)
#: every replacement setting (mode, beta) a pass is tried with, in order of preference on ties
SETTINGS = tuple((SIZE_AWARE, b) for b in BETAS) + ((BELADY, 0.0),)
#: refining passes for the final order (see :func:`cosma_fast.kernels.replace.plan_pass_refined`):
#: each round can move a tight step's layout one tight step further back
REFINE_ROUNDS = 8
#: up to this many operators every size-aware setting is refined on the final order, above it
#: only the chosen one (speed target: 1,000 operators with local search in 1 s)
REFINE_ALL_MAX_OPS = 500
#: of ``time_limit``, for the passes of every setting on every candidate order (steps 1-2)
PORTFOLIO_SHARE = 0.5
#: the setting tried first on every candidate order (the most often best)
PORTFOLIO_FIRST = (SIZE_AWARE, 1.0)
#: from this many operators the restarts of the local search run in threads: the pool's
#: cost is then small beside the climbs (2 cores, medians: layered20 5.9 -> 6.2 ms,
#: layered30 17.0 -> 15.6 ms, layered100 88.6 -> 65.1 ms, layered200 225 -> 154 ms)
PARALLEL_RESTARTS_MIN_OPS = 40


def _arrays(graph: Graph):
    return (graph.op_in_ptr, graph.op_in_idx, graph.op_out_ptr, graph.op_out_idx,
            graph.tensor_size, graph.tensor_kind, graph.tensor_is_output)


def rule_schedule(graph: Graph, rule: int) -> np.ndarray:
    """The order of list-scheduling ``rule`` (see :mod:`cosma_fast.kernels.schedule`)."""
    return list_schedule(np.int64(rule), graph.op_in_ptr, graph.op_in_idx, graph.op_out_ptr,
                         graph.op_out_idx, graph.tensor_size, graph.tensor_kind,
                         graph.tensor_producer, graph.cons_ptr, graph.cons_idx)


def run_pass(graph: Graph, capacity: int, order, *, mode: int = SIZE_AWARE, beta: float = 1.0,
             alignment: int = 1, emit: bool = True, rounds: int = 1):
    """One replacement + allocation pass (size-aware mode with ``rounds > 1``: the best of up to
    ``rounds`` refining passes, see :func:`~cosma_fast.kernels.replace.plan_pass_refined`); returns
    ``(traffic, n_moved, plan or None)`` where ``n_moved`` counts the steps that had to move
    resident operands.

    Raises :class:`InfeasibleError` when a step's operands cannot be packed (alignment).
    """
    order = np.ascontiguousarray(order, dtype=np.int64)
    st, traffic, n_moved, ptr, kinds, tens, addrs = plan_pass_refined(
        order, *_arrays(graph), graph.cons_ptr, graph.cons_idx, np.int64(capacity),
        np.int64(alignment), np.int64(mode), float(beta), bool(emit), np.int64(rounds))
    if st != 0:
        o = int(order[st - 1])
        raise InfeasibleError(
            f"operator {graph.op_names[o]!r} does not fit in {capacity} bytes with alignment "
            f"{alignment}: its operands padded to the alignment exceed the scratchpad; use a larger "
            "capacity or a smaller alignment")
    plan = Plan.from_arrays(order, ptr, kinds, tens, addrs) if emit else None
    return int(traffic), int(n_moved), plan


def _candidates(graph: Graph, schedule) -> list[tuple[str, np.ndarray]]:
    if schedule is not None:
        return [("fixed", np.asarray(schedule, dtype=np.int64))]
    out: list[tuple[str, np.ndarray]] = []
    seen: set[bytes] = set()
    for rule, name in enumerate(RULE_NAMES):
        order = rule_schedule(graph, rule)
        key = order.tobytes()
        if key not in seen:
            seen.add(key)
            out.append((name, order))
    return out


def heuristic_plan(graph: Graph, capacity: int, schedule=None, seed: int = 0, *,
                   time_limit: float | None = None, alignment: int = 1,
                   ls_iters: int | None = None, info: dict | None = None, threads: int | None = None) -> Plan:
    """The best plan of the portfolio described in the module docstring.

    Parameters
    ----------
    schedule : sequence of int, optional
        Fix the operator order (no scheduling rules, no local search).
    seed : int
        Seeds the local search; the plan is deterministic for a seed unless
        ``time_limit`` stops the search early.
    ls_iters : int, optional
        Local-search moves (default ``max(20, min(4 n, 100000 / n))`` for ``n``
        operators; ``time_limit`` may stop it earlier).
    info : dict, optional
        Filled with what was chosen (rule, replacement, beta, evaluations).
    threads : int, optional
        Threads for the restarts of step 3 from ``PARALLEL_RESTARTS_MIN_OPS`` operators
        (None: one per core, see :func:`climb_threads`); without ``time_limit`` the plan is
        the same for any number.

    Returns
    -------
    Plan
    """
    t0 = time.perf_counter()
    capacity = int(capacity)
    # under a time limit the portfolio (steps 1-2) stops at half of it, after one pass on the
    # first order at least, and the refining passes (step 4) at all of it: one pass takes
    # 0.07 s on 3000 operators, 0.3 s on 10000, and time_limit=10 took 26 s there
    portfolio_end = None if time_limit is None else t0 + PORTFOLIO_SHARE * time_limit
    end = None if time_limit is None else t0 + time_limit
    cands = _candidates(graph, schedule)
    tried: list[list[tuple[int, int, float]]] = [[] for _ in cands]  # (traffic, mode, beta) per order
    pass_time = 0.0  # seconds per pass, the first one's (the climbs' and refining's estimate)
    # setting by setting over every order, the most often best setting first, so that a time
    # limit cut short sees every order (on 10000 operators the best is the last rule's)
    for k, (m, b) in enumerate(sorted(SETTINGS, key=lambda mb: mb != PORTFOLIO_FIRST)):
        for i, (_, order) in enumerate(cands):
            if (k or i) and _past(portfolio_end):
                break
            t_pass = time.perf_counter()
            tried[i].append((run_pass(graph, capacity, order, mode=m, beta=b, alignment=alignment, emit=False)[0],
                             m, b))
            if not pass_time:
                pass_time = time.perf_counter() - t_pass
    per_order = []  # the best setting of each candidate order tried
    for t, (name, order) in zip(tried, cands):
        if t:
            traffic, mode, beta = min(t)
            per_order.append((traffic, name, order, mode, beta))
    n_evals = sum(len(t) for t in tried)
    per_order.sort(key=lambda c: c[0])  # stable: rule order breaks ties
    improved = 0
    compulsory = graph.compulsory()
    best = per_order[0]
    if schedule is None and best[0] > compulsory and graph.n_ops > 2:
        # about 100k operator-steps of simulation: ~0.5 s for 1,000 operators; graphs of at
        # most 200 operators also search from the second and third best orders (restarts)
        iters = max(20, min(4 * graph.n_ops, 100_000 // graph.n_ops)) if ls_iters is None else int(ls_iters)
        starts = per_order[:3] if graph.n_ops <= 200 else per_order[:1]
        deadline = None if time_limit is None else t0 + 0.8 * time_limit

        def climb(r):
            traffic, _, order, mode, beta = starts[r]
            return _climb(graph, capacity, order, traffic, mode, beta, iters, deadline, seed * 1000003 + r * 7919,
                          alignment, move_time=pass_time)

        # the restarts are independent: in threads, the same plans as one after another
        workers = climb_threads(threads) if graph.n_ops >= PARALLEL_RESTARTS_MIN_OPS else 1
        for (_, name, *_), climbed in zip(starts, _in_threads(climb, len(starts), workers)):
            order, traffic, mode, beta, acc, evals = climbed
            improved += acc
            n_evals += evals
            if traffic < best[0]:
                best = (traffic, name, order, mode, beta)
    traffic, name, order, mode, beta = best
    plan, traffic, mode, beta, n_moved, evals = _refined_plan(graph, capacity, order, traffic, mode, beta, alignment,
                                                              end, pass_time)
    n_evals += evals
    if info is not None:
        info.update(schedule_rule=name, replacement="size-aware" if mode == SIZE_AWARE else "belady",
                    beta=beta, evaluations=n_evals, improving_moves=improved, moved_steps=n_moved,
                    time=time.perf_counter() - t0)
    return plan


def _past(deadline: float | None) -> bool:
    """Whether ``deadline`` (a ``time.perf_counter`` reading, None for none) has passed."""
    return deadline is not None and time.perf_counter() > deadline


def best_setting(graph: Graph, capacity: int, order, *, alignment: int = 1) -> tuple[int, int, float]:
    """``(traffic, mode, beta)``: the cheapest of ``SETTINGS`` for one pass on ``order`` (no
    refining), the first of them on ties."""
    return _settings_tried(graph, capacity, order, alignment, None)[0]


def _settings_tried(graph: Graph, capacity: int, order, alignment: int,
                    deadline: float | None) -> tuple[tuple[int, int, float], int]:
    """(:func:`best_setting`'s answer, how many settings it tried): from ``deadline`` on (a
    ``time.perf_counter`` reading; None for none) no further setting is tried."""
    best, tried = None, 0
    for m, b in SETTINGS:
        if best is not None and _past(deadline):
            break
        cand = (run_pass(graph, capacity, order, mode=m, beta=b, alignment=alignment, emit=False)[0], m, b)
        best = cand if best is None or cand < best else best
        tried += 1
    return best, tried


def _refined_plan(graph: Graph, capacity: int, order, traffic: int, mode: int, beta: float, alignment: int,
                  deadline: float | None = None, pass_time: float = 0.0):
    """Step 4 of the module docstring on ``order``: the size-aware settings with refining passes
    (on large graphs only the chosen one; Belady does not refine; none that would end after
    ``deadline``, at ``pass_time`` seconds per pass). Returns ``(plan, traffic, mode, beta,
    moved steps, evaluations)``."""
    settings = [s for s in SETTINGS if s[0] == SIZE_AWARE]
    refine = settings if graph.n_ops <= REFINE_ALL_MAX_OPS else [(mode, beta)] if mode == SIZE_AWARE else []
    rounds = 1
    n_evals = 0
    if traffic > graph.compulsory():
        for m2, b2 in refine:
            if deadline is not None and time.perf_counter() + (REFINE_ROUNDS + 1) * pass_time > deadline:
                break
            t2, _, _ = run_pass(graph, capacity, order, mode=m2, beta=b2, alignment=alignment, emit=False,
                                rounds=REFINE_ROUNDS)
            n_evals += 1
            if t2 < traffic:
                traffic, mode, beta, rounds = t2, m2, b2, REFINE_ROUNDS
    traffic2, n_moved, plan = run_pass(graph, capacity, order, mode=mode, beta=beta, alignment=alignment,
                                       rounds=rounds)
    assert traffic2 == traffic
    return plan, traffic, mode, beta, n_moved, n_evals


def _climb(graph: Graph, capacity: int, order, traffic: int, mode: int, beta: float, moves: int | None,
           deadline: float | None, seed: int, alignment: int, target: int | None = None, stop=None,
           move_time: float = 0.0):
    """Local search from ``order`` (plan cost ``traffic`` with setting ``mode``, ``beta``): up to
    ``moves`` moves (None: until ``deadline``) in chunks of 50, the replacement setting
    re-picked after every chunk, until the cost is ``target`` or less (default: the
    compulsory traffic), or until ``stop`` (a :class:`threading.Event`) is set; sets it
    when it meets the target. Before ``deadline``, a chunk holds only the moves that fit
    the time left at ``move_time`` seconds each (a first estimate, then each chunk's own:
    50 moves took 13 s on 10000 operators), and the setting is re-picked only while time is
    left. Returns ``(order, traffic, mode, beta, improving moves, evaluations)``."""
    target = graph.compulsory() if target is None else target
    improved = n_evals = done = 0
    while (moves is None or done < moves) and traffic > target:
        if _past(deadline) or (stop is not None and stop.is_set()):
            break
        k = 50 if moves is None else min(50, moves - done)
        if deadline is not None and move_time > 0:
            k = min(k, int((deadline - time.perf_counter()) / move_time))
            if k < 1:
                break
        t_chunk = time.perf_counter()
        order, traffic, acc = local_search(
            order, np.int64(traffic), *_arrays(graph)[:6], graph.tensor_is_output,
            graph.tensor_producer, graph.cons_ptr, graph.cons_idx, np.int64(capacity),
            np.int64(alignment), np.int64(mode), float(beta), np.int64(k), np.int64(seed + done))
        improved += int(acc)
        done += k
        move_time = (time.perf_counter() - t_chunk) / k
        # the moves tuned the order for one replacement setting; another may now do
        # better on it, so re-pick the setting after every chunk (strict improvement only)
        for m2, b2 in SETTINGS:
            if (m2, b2) == (mode, beta):
                continue
            if deadline is not None and time.perf_counter() + move_time > deadline:
                break
            t2, _, _ = run_pass(graph, capacity, order, mode=m2, beta=b2, alignment=alignment, emit=False)
            n_evals += 1
            if t2 < traffic:
                traffic, mode, beta = t2, m2, b2
    if stop is not None and traffic <= target:
        stop.set()  # the other climbs can stop: this one met the target
    return order, int(traffic), mode, beta, improved, n_evals + done


def local_search_plan(graph: Graph, capacity: int, schedule, *, time_limit: float, seed: int = 0,
                      alignment: int = 1, target: int | None = None, threads: int | None = None,
                      stop: threading.Event | None = None) -> Plan:
    """The heuristic's local search (module docstring, step 3) continued from ``schedule`` for
    ``time_limit`` seconds instead of a fixed number of moves, or until a plan's traffic is
    ``target`` bytes or less (a proven bound, say), then its refining passes (step 4).

    :func:`heuristic_plan` stops after ``max(20, min(4 n, 100000 / n))`` moves so that it
    answers in milliseconds; the exact mode has seconds to spare on graphs it cannot prove,
    and there more moves keep paying (layered100 at ``M_H``: 34691 bytes after 400 moves,
    29901 after 4,000, 25584 after 40,000). Climbs from the same order with different seeds
    end 10-25% apart (layered100 at ``M_H``, 10 s each: 21994 to 26201 bytes), so ``threads``
    independent climbs (seeds ``seed``, ``seed + 7919``, ...) run at once, one per thread (None:
    one per available core, at most ``MAX_CLIMBS``), and the cheapest is kept, the lower
    seed on ties; once one meets ``target`` the others stop. ``stop``: an event that ends
    the climbs early when the caller sets it (set by them too when one meets ``target``).
    Returns a plan at least as cheap as the best setting's on ``schedule``; depends on the
    machine's speed, as every time limit does.
    """
    t0 = time.perf_counter()
    capacity = int(capacity)
    order = np.ascontiguousarray(schedule, dtype=np.int64)
    # the settings get half the time at most (six passes took 4.9 s on 10000 operators)
    (traffic, mode, beta), tried = _settings_tried(graph, capacity, order, alignment, t0 + PORTFOLIO_SHARE * time_limit)
    pass_time = (time.perf_counter() - t0) / tried
    deadline = t0 + 0.9 * time_limit
    met = threading.Event() if stop is None else stop

    def climb(k):
        return _climb(graph, capacity, order, traffic, mode, beta, None, deadline, seed + 7919 * k, alignment, target,
                      met, move_time=pass_time)

    n = climb_threads(threads)
    climbs = _in_threads(climb, n, n)
    best = min(range(n), key=lambda k: climbs[k][1])
    order, traffic, mode, beta, _, _ = climbs[best]
    return _refined_plan(graph, capacity, order, traffic, mode, beta, alignment, t0 + time_limit, pass_time)[0]


#: independent climbs :func:`local_search_plan` runs at once when ``threads`` is None
MAX_CLIMBS = 8


def _in_threads(fn, n: int, threads: int) -> list:
    """``[fn(0), ..., fn(n - 1)]``, on up to ``threads`` threads (the climbs' kernel releases
    the GIL), in order whatever the threads."""
    if threads <= 1 or n <= 1:
        return [fn(k) for k in range(n)]
    with ThreadPoolExecutor(max_workers=min(n, threads)) as pool:
        return list(pool.map(fn, range(n)))


def climb_threads(threads: int | None) -> int:
    """How many climbs :func:`local_search_plan` runs at once: ``threads``, or with None one
    per core this process may use, at most ``MAX_CLIMBS``."""
    check_threads(threads)
    if threads is not None:
        return int(threads)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_CLIMBS, cores))


def _lower_bound(graph: Graph, capacity: int, schedule) -> int:
    """The bounds of :mod:`cosma_fast.schedule` when present: the fixed-schedule bound
    ``max_i live_i - C``, or ``M_P - C`` with an exact ``M_P`` on small graphs; else 0."""
    try:
        from . import schedule as sched_mod
        if schedule is not None:
            return max(0, int(sched_mod.schedule_lower_bound(graph, schedule, capacity)))
        if graph.n_ops <= 40:
            return max(0, int(sched_mod.lower_bound(graph, capacity, time_limit=0.05)))
    except (ImportError, AttributeError):  # neighbour module not built yet
        pass
    return 0


def solve_heuristic(graph: Graph, capacity: int, opts: SolveOptions) -> MethodOutput:
    """``method="heuristic"`` of :func:`cosma_fast.solve`: the plan of :func:`heuristic_plan`.

    ``lower_bound`` comes from :mod:`cosma_fast.schedule` (see :func:`_lower_bound`).
    """
    info: dict = {}
    rem = opts.remaining()
    plan = heuristic_plan(graph, capacity, schedule=opts.schedule, seed=opts.seed, time_limit=rem,
                          alignment=opts.alignment, ls_iters=opts.extra.get("ls_iters"), info=info,
                          threads=opts.threads)
    lb = _lower_bound(graph, capacity, opts.schedule)
    return MethodOutput(plan=plan, lower_bound=lb, status="feasible",
                        message=f"heuristic: {info['schedule_rule']} order, {info['replacement']} replacement",
                        info=info)
