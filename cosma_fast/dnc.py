"""Divide and conquer for large graphs: windows over a whole-graph plan, solved in parallel.

COSMA (Li, Gupta, Malik, arXiv 2311.18246, sec. 5) plans NAS-generated graphs with
hundreds to thousands of operators by splitting them along a schedule and solving each
part exactly. :func:`solve_dnc` does this as a large-neighbourhood search that carries
the scratchpad state across the cuts:

1. **Start.** A validated whole-graph plan ``P``: the heuristic's (with the user's fixed
   schedule when one is given), else the trivial plan.
2. **Windows.** ``P``'s schedule is cut into windows of at most ``segment_ops``
   operators where the fewest bytes live across the cut
   (:func:`cosma_fast.kernels.partition.best_cuts`). Windows are contiguous ranges of a
   topological order, so any topological order inside a window stays globally valid.
3. **Boundary model: ``P``'s own state at both ends of a window ``[a, b)``.** The
   *entry* state is ``P``'s before step ``a``: resident tensors at their addresses, and
   which tensors have an off-chip copy. The window's plan replaces steps ``a .. b-1``;
   its closing stores and evicts run at the start of step ``b`` (before ``P``'s own
   events there; in ``final_stores`` when ``b = n``). The *exit* condition:

   * the resident set after those closing events is ``P``'s before step ``b``, every
     tensor at ``P``'s address (no loads at the exit: ``P``'s step ``b`` could evict them);
   * for every tensor that matters after the cut (read at a position ``>= b``, loaded or
     stored by ``P`` at ``>= b``, or a graph output), having an off-chip copy is exactly
     as in ``P``: written back in the window when ``P`` has a copy at ``b`` (and had none
     at ``a``), never written back when ``P`` has none.

   *Why it is sound* (rules of :func:`cosma_fast.validate`): after the window the resident
   tensors and addresses equal ``P``'s, so every later load, alloc, evict and store of
   ``P`` meets the same occupancy and residency. The only other state is the off-chip
   flag. It is read by a load (``load-no-copy``: tensors ``P`` loads later match), an
   evict (``evict-live`` only for tensors read later or graph outputs: they match), a
   store (``double-store``: a tensor ``P`` stores later has no copy in the window's
   result either, because the window never writes it back) and the final output check
   (outputs match). Tensors that matter for none of these may differ, harmlessly. A
   window only writes back a tensor created before it when that tensor still matters at
   the window's entry, so two windows of one round never both store the same tensor;
   and since each window leaves ``P``'s state at its cuts unchanged, all windows of a
   round can be spliced into ``P`` at once. The spliced plan is validated as a whole.
4. **Window solver.** The exact ILP of :mod:`cosma_fast.ilp` with that boundary
   (:class:`cosma_fast.ilp.model.Boundary`: entry-resident tensors are resident at step 0
   at no cost, dirty ones need a write-back before they can be reloaded, exit-resident
   ones are forced resident at the last step, pass-through tensors take capacity),
   warm-started by ``P`` restricted to the window, which meets the boundary by
   construction, so a window is never worse than ``P`` there. Its residency intervals are
   packed by :func:`cosma_fast.allocate` with the entry-resident buffers (until their
   first eviction) and the exit-resident ones pinned at ``P``'s addresses; when they do
   not pack, ``P``'s window is kept. HiGHS runs with a node limit (``window_nodes``), a
   work limit that makes the result independent of machine load; time is only a safety net.
5. **Rounds.** The windows of a round are disjoint, hence independent: all are submitted
   to ``opts.executor`` (any ``concurrent.futures.Executor``; a local process pool by
   default) and collected in submission order, so the result does not depend on the
   executor. With a ``time_limit``, a round takes only the windows that the time left
   gives :data:`MIN_WINDOW_TIME` each (those that move the most bytes in ``P``), and a
   window's safety net covers its model, solve and packing together, so the round ends
   within the limit. A window is accepted when it moves fewer bytes than ``P`` did there. The
   next round shifts the cuts by half a window so that cut regions are re-solved. The
   search stops on ``time_limit``, after ``max_rounds``, or when two rounds in a row
   (both alignments) save nothing.

:func:`solve_auto` picks exact, D&C or heuristic by graph size and ``time_limit``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from .errors import CosmaError, OptionError
from .graph import INPUT, INTERMEDIATE, WEIGHT, Graph
from .kernels.partition import best_cuts, crossing_bytes
from .plan import Plan, Step
from .solve import MethodOutput, SolveOptions
from .trivial import trivial_plan
from .validate import validate

__all__ = ["solve_dnc", "solve_auto", "reset_highs_scheduler", "window_problem", "solve_window", "splice",
           "DEFAULT_SEGMENT_OPS"]

#: operators per window when ``segment_ops`` is not given (small enough for the ILP)
DEFAULT_SEGMENT_OPS = 16
#: HiGHS branch-and-bound nodes per window ILP (the deterministic work limit)
DEFAULT_WINDOW_NODES = 200
#: safety-net seconds per window ILP (less when the ``time_limit`` left is short)
DEFAULT_WINDOW_TIME = 10.0
#: the least safety net a window gets; a round starts only with at least this much time left,
#: and takes only as many windows as the time left gives this much each
MIN_WINDOW_TIME = 0.2
#: the least time a window's HiGHS solve or packing gets when its safety net is spent
MIN_STEP_TIME = 0.02
#: rounds of windows when the solve has no ``time_limit``
DEFAULT_MAX_ROUNDS = 8
#: graphs up to this many operators go to the exact ILP in ``method="auto"``
AUTO_EXACT_OPS = 60
#: graphs above this many operators skip D&C in ``method="auto"`` unless time is ample
AUTO_HUGE_OPS = 20000
#: graphs up to this many operators go to the ILP in ``method="auto"`` under a time limit of
#: ``AUTO_EXACT_MIN_SECONDS`` or more; beyond, its bounds' dense matrices grow with operators x
#: tensors (time_limit=2 took 2.8 s on 1000 operators, 5.4 s on 2000; on 10000, 290 s and 7 GB)
AUTO_ILP_MAX_OPS = 1000
#: the least ``time_limit`` for which ``auto`` gives graphs of more than ``AUTO_EXACT_OPS``
#: operators to the ILP (at 0.3 s its share for the heuristic's start cut that start short)
AUTO_EXACT_MIN_SECONDS = 1.0


def _optional(module: str, name: str):
    """``cosma_fast.<module>.<name>`` or None when that module is not in this build."""
    try:
        mod = importlib.import_module(f"{__package__}.{module}")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith(f"{__package__}.{module}"):
            return None
        raise
    return getattr(mod, name, None)


# ---------------------------------------------------------------------------- the start plan's state
@dataclass
class PlanTrace:
    """What a valid plan does, for cutting it into windows.

    ``resident[c]`` (tensor -> address) and ``offchip[c]`` (bool per tensor) are the state
    before step ``c``'s events for every requested cut ``c`` (for ``c = n``: after the
    final stores). ``last_read``, ``last_store``, ``last_load``: last position at which
    each tensor is read, stored (final stores count as ``n``) or loaded, -1 when never.
    """

    resident: dict[int, dict[int, int]]
    offchip: dict[int, np.ndarray]
    last_read: np.ndarray
    last_store: np.ndarray
    last_load: np.ndarray

    def matters(self, graph: Graph, cut: int) -> np.ndarray:
        """Tensors whose off-chip copy some event at position ``>= cut`` can check."""
        return ((self.last_read >= cut) | (self.last_store >= cut) | (self.last_load >= cut)
                | graph.tensor_is_output.astype(bool))


def trace_plan(graph: Graph, plan: Plan, cuts) -> PlanTrace:
    """Replay ``plan`` once and record its state at each position of ``cuts``."""
    n, nt = graph.n_ops, graph.n_tensors
    want = set(int(c) for c in cuts)
    offchip = graph.tensor_kind != INTERMEDIATE
    res: dict[int, int] = {}
    last_read = np.full(nt, -1, dtype=np.int64)
    last_store = np.full(nt, -1, dtype=np.int64)
    last_load = np.full(nt, -1, dtype=np.int64)
    snaps_res, snaps_off = {}, {}
    for i, st in enumerate(plan.steps):
        if i in want:
            snaps_res[i], snaps_off[i] = dict(res), offchip.copy()
        for t in st.stores:
            offchip[t] = True
            last_store[t] = i
        for t in st.evicts:
            del res[t]
        for t, a in st.loads:
            res[t] = a
            last_load[t] = i
        for t, a in st.allocs:
            res[t] = a
        last_read[graph.inputs_of(st.op)] = i
    for t in plan.final_stores:
        offchip[t] = True
        last_store[t] = n
    if n in want:
        snaps_res[n], snaps_off[n] = dict(res), offchip.copy()
    return PlanTrace(snaps_res, snaps_off, last_read, last_store, last_load)


# ---------------------------------------------------------------------------- window sub-problems
@dataclass
class WindowProblem:
    """The sub-problem of steps ``[a, b)`` of a plan, in its own small graph.

    ``tensors[i]`` / ``ops[k]`` are the global indices of the window graph's tensor ``i``
    / operator ``k`` (``ops`` in the start plan's order). ``entry_addr`` / ``exit_addr``:
    address at entry / exit, -1 when not resident. ``start_R`` / ``start_stored``: the
    start plan restricted to the window (residency clipped to the model's liveness), its
    warm start. ``start_traffic``: bytes the start plan moves in the window.
    """

    a: int
    b: int
    graph: Graph
    tensors: np.ndarray
    ops: np.ndarray
    boundary: object
    entry_addr: np.ndarray
    exit_addr: np.ndarray
    start_R: np.ndarray
    start_stored: np.ndarray
    start_traffic: int
    fixed_order: bool

    def key(self) -> tuple:
        """Identifies the sub-problem (same key => same answer)."""
        bd = self.boundary
        return (self.ops.tobytes(), self.tensors.tobytes(), self.entry_addr.tobytes(), self.exit_addr.tobytes(),
                bd.dirty.tobytes(), bd.live_out.tobytes(), bd.store.tobytes(), self.start_R.tobytes(),
                self.start_stored.tobytes(), self.fixed_order)


def window_problem(graph: Graph, plan: Plan, trace: PlanTrace, a: int, b: int,
                   fixed_order: bool = False) -> WindowProblem:
    """The window ``[a, b)`` of ``plan`` with the fixed entry and exit state of the module docstring.

    ``trace`` must hold the states at ``a`` and ``b``.
    """
    from .ilp.model import Boundary

    n = graph.n_ops
    ops = np.array([plan.steps[i].op for i in range(a, b)], dtype=np.int64)
    entry, exit_ = trace.resident[a], (trace.resident[b] if b < n else {})
    index: dict[int, int] = {}
    for o in ops:
        for t in list(graph.inputs_of(o)) + list(graph.outputs_of(o)):
            index.setdefault(int(t), len(index))
    for t in sorted(entry) + sorted(exit_):
        index.setdefault(int(t), len(index))
    tensors = np.fromiter(index, dtype=np.int64, count=len(index))
    step_of = {int(o): k for k, o in enumerate(ops)}
    produced = np.array([int(graph.tensor_producer[t]) in step_of for t in tensors], dtype=bool)
    kind = np.where(produced, INTERMEDIATE, np.where(graph.tensor_kind[tensors] == WEIGHT, WEIGHT, INPUT))
    sub = Graph(tensor_names=[graph.tensor_names[t] for t in tensors], tensor_size=graph.tensor_size[tensors],
                tensor_kind=kind, tensor_is_output=np.zeros(len(tensors), dtype=bool),
                op_names=[graph.op_names[o] for o in ops],
                op_inputs=[[index[int(t)] for t in graph.inputs_of(o)] for o in ops],
                op_outputs=[[index[int(t)] for t in graph.outputs_of(o)] for o in ops],
                name=f"{graph.name}[{a}:{b}]")
    entry_addr = np.array([entry.get(int(t), -1) for t in tensors], dtype=np.int64)
    exit_addr = np.array([exit_.get(int(t), -1) for t in tensors], dtype=np.int64)
    off_a, off_b = trace.offchip[a][tensors], trace.offchip[b][tensors]
    dirty = ~produced & ~off_a
    matters_a, matters_b = trace.matters(graph, a)[tensors], trace.matters(graph, b)[tensors]
    store = np.zeros(len(tensors), dtype=np.int8)
    store[matters_b] = np.where(off_b[matters_b], 1, -1)
    store[dirty & ~matters_a] = -1  # created before the window and no longer needed: never written back
    live_out = (exit_addr >= 0) | (trace.last_read[tensors] >= b)
    boundary = Boundary(entry_resident=entry_addr >= 0, dirty=dirty, exit_resident=exit_addr >= 0,
                        live_out=live_out, store=store)
    # the start plan restricted to the window: residency while each step runs, write-backs
    m = b - a
    R = np.zeros((len(tensors), m), dtype=bool)
    stored = np.zeros(len(tensors), dtype=bool)
    cur = {index[t] for t in entry}
    for k in range(m):
        st = plan.steps[a + k]
        for t in st.stores:
            stored[index[t]] = True
        cur -= {index[t] for t in st.evicts}
        cur |= {index[t] for t, _ in st.loads} | {index[t] for t, _ in st.allocs}
        R[sorted(cur), k] = True
    if b == n:
        stored[[index[t] for t in plan.final_stores]] = True
    last = np.full(len(tensors), -1, dtype=np.int64)  # last window step that reads or creates it
    for k, o in enumerate(ops):
        last[[index[int(t)] for t in graph.inputs_of(o)]] = k
        last[[index[int(t)] for t in graph.outputs_of(o)]] = np.maximum(
            last[[index[int(t)] for t in graph.outputs_of(o)]], k)
    R &= live_out[:, None] | (np.arange(m)[None, :] <= last[:, None])
    return WindowProblem(a=a, b=b, graph=sub, tensors=tensors, ops=ops, boundary=boundary,
                         entry_addr=entry_addr, exit_addr=exit_addr, start_R=R, start_stored=stored,
                         start_traffic=window_traffic(graph, plan, a, b), fixed_order=fixed_order)


def window_traffic(graph: Graph, plan: Plan, a: int, b: int) -> int:
    """Bytes ``plan`` moves in steps ``[a, b)`` (its final write-backs too when ``b`` ends it):
    a window's ``start_traffic``, without building the window."""
    size = graph.tensor_size
    steps = plan.steps[a:b]
    moved = sum(int(size[t]) for st in steps for t in st.stores)
    moved += sum(int(size[t]) for st in steps for t, _ in st.loads)
    if b == len(plan.steps):
        moved += sum(int(size[t]) for t in plan.final_stores)
    return moved


def _pack_window(wp: WindowProblem, R: np.ndarray, capacity: int, alignment: int, time_limit: float):
    """Addresses of the residency runs of ``R`` with the boundary buffers pinned.

    Returns ``{(tensor, first step): address}`` or None when they do not pack.
    """
    from .allocate import allocate
    from .ilp.decode import _check_packing, residency_buffers

    bt, ba, bb = residency_buffers(R)
    m = R.shape[1]
    fixed: dict[int, int] = {}
    for k, (t, lo, hi) in enumerate(zip(bt, ba, bb)):
        pins = set()
        if lo == 0 and wp.entry_addr[t] >= 0:
            pins.add(int(wp.entry_addr[t]))
        if hi == m - 1 and wp.exit_addr[t] >= 0:
            pins.add(int(wp.exit_addr[t]))
        if len(pins) > 1:
            return None  # one run would need the start plan's two different addresses
        if pins:
            fixed[k] = pins.pop()
    size = wp.graph.tensor_size[bt].astype(np.int64)
    if len(bt) == 0:
        return {}
    try:
        res = allocate(ba, bb + 1, size, capacity, time_limit=time_limit, alignment=alignment, fixed=fixed)
    except CosmaError:
        return None
    off = np.asarray(res.offsets, dtype=np.int64)
    if not res.fits or not _check_packing(ba, bb, size, capacity, off, alignment) \
            or any(off[k] != a for k, a in fixed.items()):
        return None
    return {(int(t), int(lo)): int(o) for t, lo, o in zip(bt, ba, off)}


def _window_steps(wp: WindowProblem, order, R, stored, addr) -> tuple[list[Step], list[int], list[int]]:
    """Steps of the window's plan (window indices) and its closing stores and evicts."""
    g, bd = wp.graph, wp.boundary
    m = len(order)
    steps = []
    for i, o in enumerate(order):
        st = Step(int(o))
        prev = R[:, i - 1] if i > 0 else bd.entry_resident
        if i == 0:
            st.stores = [int(t) for t in np.flatnonzero(stored & bd.dirty)]
        else:
            st.stores = [int(t) for t in g.outputs_of(order[i - 1]) if stored[t]]
        st.evicts = [int(t) for t in np.flatnonzero(prev & ~R[:, i])]
        outs = set(int(t) for t in g.outputs_of(o))
        st.loads = [(int(t), addr[(int(t), i)]) for t in np.flatnonzero(R[:, i] & ~prev) if int(t) not in outs]
        st.allocs = [(int(t), addr[(int(t), i)]) for t in g.outputs_of(o)]
        steps.append(st)
    closing_stores = [int(t) for t in g.outputs_of(order[m - 1]) if stored[t]]
    closing_evicts = [int(t) for t in np.flatnonzero(R[:, m - 1] & ~bd.exit_resident)]
    return steps, closing_stores, closing_evicts


def solve_window(wp: WindowProblem, capacity: int, params: dict) -> dict:
    """Solve one window with the exact ILP; runs in a worker.

    Returns ``{"timed_out": bool}`` (the time safety net stopped HiGHS before its node
    limit) and, only when the window beats the start plan there, its plan:
    ``"steps"``, ``"closing_stores"``, ``"closing_evicts"`` in global indices and
    ``"traffic"`` (bytes moved by the window, closing stores included).
    """
    from .ilp import run_highs
    from .ilp.decode import decode_residency, encode_residency
    from .ilp.model import build_model

    t0 = time.perf_counter()

    def left() -> float:  # the window's safety net covers its model, its solve and its packing
        return max(MIN_STEP_TIME, params["window_time"] - (time.perf_counter() - t0))

    m = wp.b - wp.a
    model = build_model(wp.graph, capacity, np.arange(m) if wp.fixed_order else None, boundary=wp.boundary,
                        alignment=params["alignment"])
    try:
        start = encode_residency(model, np.arange(m), wp.start_R, wp.start_stored, wp.boundary.entry_resident)
    except ValueError:
        start = None
    highs_time = left()
    res = run_highs(model, time_limit=highs_time, threads=1, start=start, max_nodes=params["nodes"])
    out = {"timed_out": res["status"] != "optimal" and res["time"] >= 0.99 * highs_time}
    if res["x"] is None or res["objective"] > wp.start_traffic - 0.5:
        return out
    order, R, stored = decode_residency(model, res["x"])
    addr = _pack_window(wp, R, capacity, params["alignment"], left())
    if addr is None:
        return out
    steps, closing_stores, closing_evicts = _window_steps(wp, order, R, stored, addr)
    size = wp.graph.tensor_size
    traffic = sum(int(size[t]) for st in steps for t in st.stores) + sum(int(size[t]) for t in closing_stores)
    traffic += sum(int(size[t]) for st in steps for t, _ in st.loads)
    if traffic >= wp.start_traffic:
        return out
    tm, om = wp.tensors, wp.ops
    glob = [Step(int(om[s.op]), [int(tm[t]) for t in s.stores], [int(tm[t]) for t in s.evicts],
                 [(int(tm[t]), a) for t, a in s.loads], [(int(tm[t]), a) for t, a in s.allocs]) for s in steps]
    return dict(out, steps=glob, closing_stores=[int(tm[t]) for t in closing_stores],
                closing_evicts=[int(tm[t]) for t in closing_evicts], traffic=int(traffic))


def splice(plan: Plan, windows: list[tuple[int, int, dict]]) -> Plan:
    """``plan`` with steps ``[a, b)`` replaced by each window's steps (disjoint windows).

    A window's closing stores and evicts run first in step ``b`` (in ``final_stores``
    when ``b`` is the end of the plan, where nothing needs evicting).
    """
    n = len(plan.steps)
    steps = [Step(s.op, list(s.stores), list(s.evicts), list(s.loads), list(s.allocs)) for s in plan.steps]
    final = list(plan.final_stores)
    for a, b, w in windows:
        steps[a:b] = [Step(s.op, list(s.stores), list(s.evicts), list(s.loads), list(s.allocs))
                      for s in w["steps"]]
    for _, b, w in windows:
        if b == n:
            final = w["closing_stores"]
        else:
            steps[b].stores = w["closing_stores"] + steps[b].stores
            steps[b].evicts = w["closing_evicts"] + steps[b].evicts
    return Plan(steps, final)


# ---------------------------------------------------------------------------- driver
def reset_highs_scheduler() -> None:
    """Process-pool initializer: drop the HiGHS thread scheduler inherited through ``fork``.

    A forked worker inherits the parent's scheduler (started by any earlier solve in the
    parent) but not its threads, and its first solve then hangs; a fresh scheduler is
    started on the worker's first solve instead.
    """
    import highspy

    highspy.Highs.resetGlobalScheduler(False)


class _Inline(Executor):
    """Runs each call at submit time (one worker: no pool to start)."""

    def submit(self, fn, /, *args, **kwargs):
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - re-raised by f.result()
            f.set_exception(e)
        return f


def _start(graph: Graph, capacity: int, opts: SolveOptions) -> tuple[Plan, int, str]:
    """The whole-graph start plan, its lower bound and its source: ``extra["start_plan"]``
    when given, else the heuristic's, else the trivial plan."""
    given = opts.extra.get("start_plan")
    if given is not None:
        validate(graph, given, capacity, opts.alignment)  # a bad start is the caller's error: raise
        return given, 0, "given"
    heur = _optional("heuristic", "solve_heuristic")
    if heur is not None:
        rem = opts.remaining()
        share = opts.extra.get("start_time_share", 0.25)  # the rest of the time is for the windows
        # at least 0.05 s, as the ILP's start: more would overrun a short limit (0.05 s took 0.43 s)
        sub = SolveOptions(seed=opts.seed, time_limit=None if rem is None else max(0.05, share * rem),
                           threads=opts.threads, schedule=opts.schedule, alignment=opts.alignment,
                           formulation=opts.formulation)
        try:
            out = heur(graph, capacity, sub)
            validate(graph, out.plan, capacity, opts.alignment)
            return out.plan, int(out.lower_bound), "heuristic"
        except CosmaError:
            pass  # a start-solver bug must not sink D&C: fall back to the trivial plan
    return trivial_plan(graph, opts.schedule, opts.alignment), 0, "trivial"


def _round_windows(graph: Graph, plan: Plan, trace: PlanTrace, wins: list[tuple[int, int]], fixed_order: bool,
                   done: set[tuple], rem: float | None) -> list[WindowProblem]:
    """The windows of a round, along the schedule: those that move bytes in ``plan`` and were
    not solved before without a gain (``done``). Under a time limit, only as many as the
    ``rem`` seconds left give :data:`MIN_WINDOW_TIME` each, counted as if solved one after
    another (as the safety nets are), those that move the most bytes first (the most to
    gain); only they are built (building all 625 of randwire10000 took 10 s)."""
    moved = [window_traffic(graph, plan, a, b) for a, b in wins]
    cand = [i for i in range(len(wins)) if moved[i] > 0]
    fit = len(cand) if rem is None else int(rem // MIN_WINDOW_TIME)
    if rem is not None:
        cand.sort(key=lambda i: (-moved[i], wins[i][0]))
    todo = []
    for i in cand:
        if len(todo) >= fit:
            break
        p = window_problem(graph, plan, trace, *wins[i], fixed_order)
        if p.key() not in done:
            todo.append(p)
    return sorted(todo, key=lambda p: p.a)


def _windows(plan: Plan, graph: Graph, seg_ops: int, shifted: bool) -> list[tuple[int, int]]:
    """Windows of at most ``seg_ops`` steps at cheap cuts; ``shifted`` moves every cut to
    the middle of its window, so the previous round's cut regions are solved inside a window."""
    order = plan.schedule
    cross = crossing_bytes(order, graph.op_in_ptr, graph.op_in_idx, graph.op_out_ptr, graph.op_out_idx,
                           graph.tensor_size)
    bounds = [int(b) for b in best_cuts(cross, seg_ops)]
    if shifted and len(bounds) > 2:
        bounds = [0] + [(lo + hi) // 2 for lo, hi in zip(bounds[:-1], bounds[1:])] + [graph.n_ops]
        bounds = sorted(set(bounds))
    return list(zip(bounds[:-1], bounds[1:]))


def solve_dnc(graph: Graph, capacity: int, opts: SolveOptions) -> MethodOutput:
    """Divide-and-conquer plan of ``graph`` (see the module docstring for the model).

    Options used: ``segment_ops`` (operators per window, default
    :data:`DEFAULT_SEGMENT_OPS`), ``executor`` (any ``concurrent.futures.Executor``;
    default a local process pool), ``seed``, ``time_limit``, ``schedule`` (fixed-schedule
    mode: windows keep the order), ``alignment``. ``extra`` may hold ``workers`` (default
    pool size), ``window_nodes`` (HiGHS node limit per window, default
    :data:`DEFAULT_WINDOW_NODES`), ``window_time_limit`` (safety net per window),
    ``max_rounds`` and ``start_plan`` (a valid plan to improve instead of the heuristic's).

    Returns
    -------
    MethodOutput
        The improved plan (never worse than the start); ``lower_bound`` is the start
        solver's proven bound (window bounds are not global bounds); ``info`` holds
        ``start``, ``start_traffic``, ``rounds`` (per round: windows, tried, accepted,
        bytes saved, seconds), ``windows_tried``, ``windows_accepted`` and ``dnc_time``.
    """
    t0 = time.perf_counter()
    seg_ops = DEFAULT_SEGMENT_OPS if opts.segment_ops is None else opts.segment_ops
    if not isinstance(seg_ops, (int, np.integer)) or isinstance(seg_ops, bool) or seg_ops < 1:
        raise OptionError(f"segment_ops must be a positive number of operators, got {opts.segment_ops!r}")
    extra = opts.extra or {}
    plan, lower_bound, start_name = _start(graph, capacity, opts)
    rep = validate(graph, plan, capacity, opts.alignment)
    start_traffic = rep.traffic
    info = {"start": start_name, "start_traffic": start_traffic, "rounds": [], "windows_tried": 0,
            "windows_accepted": 0}
    workers = int(extra.get("workers") or os.cpu_count() or 1)
    max_rounds = int(extra.get("max_rounds") or DEFAULT_MAX_ROUNDS)
    params = {"nodes": int(extra.get("window_nodes") or DEFAULT_WINDOW_NODES), "alignment": opts.alignment}
    executor, own_pool = opts.executor, None
    if executor is None:
        executor = _Inline()
    pool_wanted = opts.executor is None and workers > 1 and graph.n_ops > seg_ops
    done: set[tuple] = set()  # sub-problems already solved without improvement
    idle = 0
    try:
        for rnd in range(max_rounds):
            if rep.non_compulsory <= lower_bound or idle >= 2:
                break
            rem = opts.remaining()
            if rem is not None and rem < MIN_WINDOW_TIME:  # a round would overrun the limit
                break
            t_round = time.perf_counter()
            wins = _windows(plan, graph, seg_ops, shifted=rnd % 2 == 1)
            trace = trace_plan(graph, plan, {c for w in wins for c in w})
            todo = _round_windows(graph, plan, trace, wins, opts.schedule is not None, done, rem)
            # safety net only (the node limit is the real budget): the round's windows share
            # what is left as if solved one after another, so the limit, and with it the
            # result, does not depend on the worker count, and more workers finish sooner
            share = DEFAULT_WINDOW_TIME if rem is None else max(MIN_WINDOW_TIME, rem / max(1, len(todo)))
            params["window_time"] = float(min(extra.get("window_time_limit") or DEFAULT_WINDOW_TIME, share))
            if todo and pool_wanted and own_pool is None:  # started once there is work (it takes ~0.2 s)
                own_pool = executor = ProcessPoolExecutor(max_workers=workers, initializer=reset_highs_scheduler)
            futs = [executor.submit(solve_window, p, capacity, params) for p in todo]
            results = [f.result() for f in futs]
            accepted = [(p.a, p.b, r) for p, r in zip(todo, results) if "steps" in r]
            done.update(p.key() for p, r in zip(todo, results) if "steps" not in r)
            saved = 0
            if accepted:
                new = splice(plan, accepted)
                try:
                    new_rep = validate(graph, new, capacity, opts.alignment)
                except CosmaError as e:  # a bug in a window must not sink the search: keep P
                    info["splice_error"] = str(e)
                    accepted = []
                else:
                    saved = rep.traffic - new_rep.traffic
                    plan, rep = new, new_rep
            info["rounds"].append({"windows": len(wins), "tried": len(todo), "accepted": len(accepted),
                                   "timed_out": sum(r["timed_out"] for r in results), "saved": int(saved),
                                   "time": round(time.perf_counter() - t_round, 3)})
            info["windows_tried"] += len(todo)
            info["windows_accepted"] += len(accepted)
            idle = idle + 1 if saved <= 0 else 0
    finally:
        if own_pool is not None:
            own_pool.shutdown()
    info["dnc_time"] = time.perf_counter() - t0
    status = "optimal" if rep.non_compulsory <= lower_bound else "feasible"
    saved = start_traffic - rep.traffic
    return MethodOutput(plan, lower_bound, status,
                        f"D&C: {info['windows_accepted']} of {info['windows_tried']} windows improved the "
                        f"{start_name} plan by {saved} bytes", info)


def solve_auto(graph: Graph, capacity: int, opts: SolveOptions) -> MethodOutput:
    """Pick a method by graph size and ``time_limit``; return the best valid plan found.

    * the ILP, when it is installed and either ``n_ops <= AUTO_EXACT_OPS`` or a
      ``time_limit`` of at least ``AUTO_EXACT_MIN_SECONDS`` is given and ``n_ops <=
      AUTO_ILP_MAX_OPS``: it starts from the heuristic's plan (and ``start_plan`` when
      given) and proves real models optimal in seconds; under the same limit its plans
      were as cheap as or cheaper than those of D&C for half of it followed by the ILP on 43
      of 48 generated graphs of 100-600 operators (bench/results/auto.md);
    * else, with more operators and either no time limit or enough time (>= 2 ms per
      operator) and ``n_ops <= AUTO_HUGE_OPS``: divide and conquer, with the whole limit;
    * otherwise (huge graph or little time): the heuristic.

    The cheapest plan that passes :func:`validate` is returned with the best proven lower
    bound; each method starts from the heuristic's plan, so ``auto`` is not worse than the
    heuristic under a limit the heuristic finishes in. ``info["auto_choice"]`` says what ran.
    """
    n = graph.n_ops
    tl = opts.time_limit
    ilp = _optional("ilp", "solve_ilp")
    heur = _optional("heuristic", "solve_heuristic")
    candidates: list[tuple[Plan, int, str, str]] = []  # (plan, lower bound, status, name)
    if ilp is not None and (n <= AUTO_EXACT_OPS or (tl is not None and tl >= AUTO_EXACT_MIN_SECONDS
                                                    and n <= AUTO_ILP_MAX_OPS)):
        choice = "ilp"
        if opts.extra.get("start_plan") is not None:
            start_plan, start_lb, start_name = _start(graph, capacity, opts)  # raises on a bad plan
            candidates.append((start_plan, start_lb, "feasible", start_name))
            opts = dataclasses.replace(opts, extra=dict(opts.extra, _start_plans=[start_plan]))
        out = ilp(graph, capacity, opts)
        candidates.append((out.plan, int(out.lower_bound), out.status, "ilp"))
    elif heur is None or (n <= AUTO_HUGE_OPS and (tl is None or tl >= 0.002 * n)):
        choice = "dnc"  # solve_dnc also runs the heuristic and keeps the cheaper plan
        out = solve_dnc(graph, capacity, opts)
        candidates.append((out.plan, int(out.lower_bound), out.status, "dnc"))
    else:
        choice = "heuristic"
        out = heur(graph, capacity, opts)
        candidates.append((out.plan, int(out.lower_bound), out.status, "heuristic"))
    best = None
    lb = 0
    for plan, bound, status, name in candidates:
        try:
            rep = validate(graph, plan, capacity, opts.alignment)
        except CosmaError:
            continue
        lb = max(lb, bound)
        if best is None or rep.traffic < best[1]:
            best = (plan, rep.traffic, status, name)
    if best is None:
        plan = trivial_plan(graph, opts.schedule, opts.alignment)
        best = (plan, 0, "feasible", "trivial")
    plan, _, status, name = best
    return MethodOutput(plan, lb, status if name == "ilp" else "feasible",
                        f"auto chose {choice}; best plan from {name}", {"auto_choice": choice, "best_from": name})
