"""Divide and conquer for large graphs, solved in parallel (COSMA's D&C for NAS graphs).

COSMA (Li, Gupta, Malik, arXiv 2311.18246, sec. 5) plans NAS-generated graphs with
hundreds to thousands of operators by splitting them along a schedule, solving each
part exactly and stitching the parts. :func:`solve_dnc` does this:

1. **Schedule and cuts.** A whole-graph plan from the heuristic (its schedule, or the
   user's fixed schedule) is cut into consecutive segments of at most ``segment_ops``
   operators, choosing the cuts that fewest bytes live across
   (:func:`cosma_fast.kernels.partition.best_cuts`). Segments are contiguous ranges of a
   topological order, so no dependency is broken and any topological order inside a
   segment stays globally valid.
2. **Boundary model: the scratchpad is empty at every cut.** At a cut, every tensor
   produced before it that is read after it (or is a graph output) already has an
   off-chip copy, and nothing is resident. Each segment is therefore an independent
   graph: tensors produced by earlier segments become *inputs* (they start off-chip),
   tensors it produces that later segments read become *outputs* (they must end
   off-chip), graph inputs and weights stay what they are. The state at every cut is
   fully defined, so the stitched plan is valid whenever each segment plan is:
   the stitched first step of segment ``k+1`` first performs segment ``k``'s final
   stores (its tensors are still resident) and then evicts everything segment ``k``
   left resident, which is legal because every such tensor is dead, an input/weight, or
   has just been / was earlier written back. A crossing intermediate is stored only in
   its producer's segment (elsewhere it is an input), so no tensor is stored twice.
   The price of the model is one store and one reload per crossing tensor and
   reader segment; the cut choice minimises it.
3. **Sub-solver.** Each segment is solved by the exact ILP (``cosma_fast.ilp``, which
   warm-starts from the heuristic) with a per-segment time limit when it is
   installed, else by the heuristic, else by the trivial plan; the cheapest valid
   sub-plan wins. Sub-problems are submitted all at once to ``opts.executor`` and
   collected in submission order, so the result does not depend on the executor.
4. **Windows straddling cuts.** Pairs of adjacent segments are re-solved as one
   window (removing the cut between them, in two rounds: even then odd cuts); a
   window replaces its two segments only if the validated total traffic drops.
5. The stitched plan is checked with :func:`cosma_fast.validate` and compared with
   the heuristic's whole-graph plan; the cheaper one is returned, so D&C is never
   worse than the heuristic it starts from.

:func:`solve_auto` picks exact, D&C or heuristic by graph size and ``time_limit``.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from .errors import CosmaError, OptionError
from .graph import INPUT, INTERMEDIATE, Graph
from .kernels.partition import best_cuts, crossing_bytes
from .plan import Plan, Step
from .solve import MethodOutput, SolveOptions
from .trivial import trivial_plan
from .validate import validate

__all__ = ["solve_dnc", "solve_auto", "segment_graph", "stitch", "DEFAULT_SEGMENT_OPS"]

#: operators per segment when ``segment_ops`` is not given (small enough for the ILP)
DEFAULT_SEGMENT_OPS = 40
#: per-segment ILP time limit (s) when the solve has no ``time_limit``
DEFAULT_SEGMENT_TIME = 10.0
#: graphs up to this many operators go to the exact ILP in ``method="auto"``
AUTO_EXACT_OPS = 60
#: graphs above this many operators skip D&C in ``method="auto"`` unless time is ample
AUTO_HUGE_OPS = 20000
#: seconds that must remain of ``time_limit`` for ``auto`` to try the whole-graph ILP after D&C
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


# ---------------------------------------------------------------------------- sub-problems
@dataclass
class Segment:
    """One sub-problem: ``ops`` (global operator indices, in schedule order) and its graph.

    ``tensors[i]`` is the global index of the segment graph's tensor ``i``.
    """

    ops: np.ndarray
    graph: Graph
    tensors: np.ndarray


def segment_graph(graph: Graph, ops: np.ndarray, position: np.ndarray) -> Segment:
    """The independent graph of the operators ``ops`` under the empty-cut boundary model.

    ``position[o]`` is the schedule position of global operator ``o``; ``ops`` must be
    a contiguous range of positions. Tensors produced before the segment become
    inputs; tensors produced in it and read after it (or graph outputs) become outputs.
    Operators keep their order and names, tensors their names.
    """
    ops = np.asarray(ops, dtype=np.int64)
    lo, hi = int(position[ops].min()), int(position[ops].max())
    touched: dict[int, int] = {}
    for o in ops:
        for t in graph.inputs_of(o):
            touched.setdefault(int(t), len(touched))
        for t in graph.outputs_of(o):
            touched.setdefault(int(t), len(touched))
    tensors = np.fromiter(touched.keys(), dtype=np.int64, count=len(touched))
    kind = graph.tensor_kind[tensors].copy()
    is_out = graph.tensor_is_output[tensors].copy()
    for i, t in enumerate(tensors):
        if kind[i] != INTERMEDIATE:
            continue
        p = graph.tensor_producer[t]
        if position[p] < lo:
            kind[i] = INPUT       # written back by an earlier segment: starts off-chip here
            is_out[i] = False     # already has its off-chip copy
        else:
            cons = graph.consumers_of(t)
            if len(cons) and position[cons].max() > hi:
                is_out[i] = True  # a later segment reads it: must leave with an off-chip copy
    sub = Graph(tensor_names=[graph.tensor_names[t] for t in tensors], tensor_size=graph.tensor_size[tensors],
                tensor_kind=kind, tensor_is_output=is_out, op_names=[graph.op_names[o] for o in ops],
                op_inputs=[[touched[int(t)] for t in graph.inputs_of(o)] for o in ops],
                op_outputs=[[touched[int(t)] for t in graph.outputs_of(o)] for o in ops],
                name=f"{graph.name}[{lo}:{hi + 1}]")
    return Segment(ops=ops, graph=sub, tensors=tensors)


def _solve_segment(sub: Graph, capacity: int, params: dict) -> tuple[dict, int, str]:
    """Solve one segment graph; returns (plan arrays, traffic, solver name).

    Runs in a worker: builds its own options (so the time limit starts here), tries
    the heuristic, then the ILP when asked, and keeps the cheapest plan that passes
    :func:`validate` (ties go to the earlier solver, so the choice is deterministic).
    """
    sched = params.get("schedule")
    opts = SolveOptions(seed=params["seed"], time_limit=params.get("time_limit"), mip_gap=params.get("mip_gap", 0.0),
                        threads=1, schedule=sched, alignment=params.get("alignment", 1),
                        formulation=params.get("formulation", "decomposed"))
    best: tuple[Plan, int, str] | None = None

    def consider(plan: Plan, name: str):
        nonlocal best
        try:
            rep = validate(sub, plan, capacity, opts.alignment)
        except CosmaError:
            return
        if best is None or rep.traffic < best[1]:
            best = (plan, rep.traffic, name)

    solver = params.get("sub_solver", "auto")
    for name, wanted in (("heuristic", solver != "trivial"), ("ilp", solver in ("auto", "ilp"))):
        method = _optional(name, f"solve_{name}") if wanted else None
        if method is not None:
            try:
                consider(method(sub, capacity, opts).plan, name)
            except CosmaError:
                pass
    if best is None or opts.alignment == 1:
        consider(trivial_plan(sub, sched), "trivial")
    if best is None:
        raise OptionError(f"no sub-solver produced a valid plan for segment {sub.name!r} "
                          f"(alignment {opts.alignment} needs the heuristic module)")
    plan, traffic, name = best
    return plan.to_arrays(), traffic, name


# ---------------------------------------------------------------------------- stitching
def _resident_after(plan: Plan) -> list[int]:
    """Tensors resident after the last step of ``plan`` (in the order they entered)."""
    res: dict[int, None] = {}
    for st in plan.steps:
        for t in st.evicts:
            res.pop(t, None)
        for t, _ in st.loads:
            res[t] = None
        for t, _ in st.allocs:
            res[t] = None
    return list(res)


def _to_global(seg: Segment, plan: Plan) -> Plan:
    tmap, omap = seg.tensors, seg.ops
    steps = [Step(int(omap[s.op]), [int(tmap[t]) for t in s.stores], [int(tmap[t]) for t in s.evicts],
                  [(int(tmap[t]), int(a)) for t, a in s.loads], [(int(tmap[t]), int(a)) for t, a in s.allocs])
             for s in plan.steps]
    return Plan(steps, [int(tmap[t]) for t in plan.final_stores])


def stitch(parts: list[Plan]) -> Plan:
    """Concatenate segment plans (global indices) under the empty-cut boundary model.

    The first step of each segment after the first begins with the previous segment's
    final stores, then evicts everything the previous segment left resident.
    """
    steps: list[Step] = []
    final: list[int] = []
    leftover: list[int] = []
    for k, part in enumerate(parts):
        for i, st in enumerate(part.steps):
            st = Step(st.op, list(st.stores), list(st.evicts), list(st.loads), list(st.allocs))
            if i == 0 and k > 0:
                st.stores = final + st.stores
                st.evicts = leftover + st.evicts
            steps.append(st)
        final = list(part.final_stores)
        leftover = _resident_after(part)
    return Plan(steps, final)


def keep_resident(plan: Plan, sizes: np.ndarray, is_output: np.ndarray) -> Plan:
    """Cancel evict/reload pairs that the stitching made unnecessary (a peephole pass).

    When tensor ``t`` is evicted at step ``s`` and next loaded at step ``j`` at the same
    address, and no other tensor is placed over that range in steps ``s .. j-1``, ``t``
    can simply stay resident: both events go. Afterwards a store of a non-output
    intermediate that is no longer followed by any load of it goes too (with no reload
    after it, every later evict of it happens when it is dead). The caller validates the
    result and keeps it only if it is cheaper.
    """
    steps = [Step(st.op, list(st.stores), list(st.evicts), list(st.loads), list(st.allocs)) for st in plan.steps]
    addr: dict[int, int] = {}
    evict_at: list[tuple[int, int, int]] = []  # (step, tensor, address)
    for i, st in enumerate(steps):
        for t in st.evicts:
            evict_at.append((i, t, addr.pop(t)))
        for t, a in st.loads:
            addr[t] = a
        for t, a in st.allocs:
            addr[t] = a
    loads_of: dict[int, list[int]] = {}
    for i, st in enumerate(steps):
        for t, _ in st.loads:
            loads_of.setdefault(t, []).append(i)
    for s, t, a in evict_at:
        nxt = [j for j in loads_of.get(t, []) if j >= s]
        if not nxt:
            continue
        j = nxt[0]
        if dict(steps[j].loads).get(t) != a:
            continue
        lo, hi = a, a + int(sizes[t])
        clash = False
        for i in range(s, j + 1):
            placed = steps[i].loads + steps[i].allocs if i < j else steps[i].loads
            for u, b in placed:
                if u != t and b < hi and lo < b + int(sizes[u]):
                    clash = True
                    break
            if clash:
                break
        if clash:
            continue
        steps[s].evicts.remove(t)
        steps[j].loads = [(u, b) for u, b in steps[j].loads if u != t]
        loads_of[t].remove(j)
    final = list(plan.final_stores)
    for i, st in enumerate(steps):
        st.stores = [t for t in st.stores if is_output[t] or any(j >= i for j in loads_of.get(t, []))]
    return Plan(steps, final)


# ---------------------------------------------------------------------------- driver
class _Inline(Executor):
    """Runs each call at submit time (for a single sub-problem: no pool to start)."""

    def submit(self, fn, /, *args, **kwargs):
        from concurrent.futures import Future

        f: Future = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - re-raised by f.result()
            f.set_exception(e)
        return f


def _whole_graph_start(graph: Graph, capacity: int, opts: SolveOptions) -> tuple[Plan | None, int, str]:
    """The heuristic's whole-graph plan (the D&C start), or (None, 0, "") when unavailable."""
    heur = _optional("heuristic", "solve_heuristic")
    if heur is None:
        return None, 0, ""
    rem = opts.remaining()
    share = opts.extra.get("start_time_share", 0.25)  # the rest of the time is for the segments
    sub = SolveOptions(seed=opts.seed, time_limit=None if rem is None else max(0.5, share * rem),
                       threads=opts.threads, schedule=opts.schedule,
                       alignment=opts.alignment, formulation=opts.formulation)
    out = heur(graph, capacity, sub)
    return out.plan, int(out.lower_bound), "heuristic"


def solve_dnc(graph: Graph, capacity: int, opts: SolveOptions) -> MethodOutput:
    """Divide-and-conquer plan of ``graph`` (see the module docstring for the model).

    Options used: ``segment_ops`` (operators per segment, default
    :data:`DEFAULT_SEGMENT_OPS`), ``executor`` (any ``concurrent.futures.Executor``;
    default a local process pool with one solver thread per worker), ``seed``,
    ``time_limit``, ``schedule`` (fixed-schedule mode), ``alignment``. ``extra`` may hold
    ``workers`` (default pool size), ``sub_solver`` (``"auto"``, ``"heuristic"``, ``"ilp"``,
    ``"trivial"``), ``segment_time_limit``, ``windows`` (False skips step 4) and ``compare_start``
    (False returns the stitched plan even when the heuristic's is cheaper).

    Returns
    -------
    MethodOutput
        The cheaper of the stitched plan and the heuristic's whole-graph plan;
        ``lower_bound`` is the heuristic's (segment bounds are not global bounds);
        ``info`` holds the cuts, per-segment solvers and both costs.
    """
    t0 = time.perf_counter()
    seg_ops = int(opts.segment_ops or DEFAULT_SEGMENT_OPS)
    if seg_ops < 1:
        raise OptionError(f"segment_ops must be a positive number of operators, got {opts.segment_ops!r}")
    extra = dict(opts.extra or {})
    start_plan, lower_bound, start_name = _whole_graph_start(graph, capacity, opts)
    start_traffic = None
    if start_plan is not None:
        try:
            start_rep = validate(graph, start_plan, capacity, opts.alignment)
        except CosmaError as e:  # a sub-solver bug must not sink D&C: start from model order
            extra["start_error"] = str(e)
            start_plan, lower_bound, start_name = None, 0, ""
    if start_plan is not None:
        start_traffic = start_rep.traffic
        if start_rep.non_compulsory <= lower_bound and extra.get("compare_start", True):
            # already optimal: nothing to divide
            return MethodOutput(start_plan, lower_bound, "optimal", f"the {start_name} plan is optimal",
                                {"segments": 0, "chosen": "start", "start_traffic": start_traffic,
                                 "start": start_name, "dnc_time": time.perf_counter() - t0})
    if opts.schedule is not None:
        order = np.asarray(opts.schedule, dtype=np.int64)
    elif start_plan is not None:
        order = start_plan.schedule
    else:
        order = np.arange(graph.n_ops, dtype=np.int64)
    position = np.empty(graph.n_ops, dtype=np.int64)
    position[order] = np.arange(graph.n_ops)
    cross = crossing_bytes(order, graph.op_in_ptr, graph.op_in_idx, graph.op_out_ptr, graph.op_out_idx,
                           graph.tensor_size)
    bounds = [int(b) for b in best_cuts(cross, seg_ops)]

    # per-segment time: share what is left among the segments, per worker
    n_seg = len(bounds) - 1
    workers = int(extra.get("workers") or os.cpu_count() or 1)
    seg_time = extra.get("segment_time_limit")
    if seg_time is None:
        rem = opts.remaining()
        seg_time = DEFAULT_SEGMENT_TIME if rem is None else max(0.5, 0.4 * rem * workers / max(1, n_seg))
    params = {"seed": opts.seed, "time_limit": float(seg_time), "mip_gap": opts.mip_gap,
              "alignment": opts.alignment, "formulation": opts.formulation,
              "sub_solver": extra.get("sub_solver", "auto")}

    executor = opts.executor
    own_pool = None
    if executor is None:
        if n_seg > 1 and workers > 1:
            own_pool = executor = ProcessPoolExecutor(max_workers=min(workers, n_seg))
        else:
            executor = _Inline()
    cache: dict[tuple[int, int], tuple[Plan, int, str]] = {}

    def run(ranges: list[tuple[int, int]]) -> None:
        """Solve the segments ``[lo, hi)`` not yet cached: submit all, collect in order."""
        todo = [r for r in dict.fromkeys(ranges) if r not in cache]
        segs, futs = [], []
        for lo, hi in todo:
            seg = segment_graph(graph, order[lo:hi], position)
            p = dict(params)
            if opts.schedule is not None:
                p["schedule"] = np.arange(hi - lo, dtype=np.int64)
            segs.append(seg)
            futs.append(executor.submit(_solve_segment, seg.graph, capacity, p))
        for (lo, hi), seg, fut in zip(todo, segs, futs):
            arrays, traffic, name = fut.result()
            cache[(lo, hi)] = (_to_global(seg, Plan.from_arrays(**arrays)), int(traffic), name)

    t_seg = time.perf_counter()
    try:
        segs = list(zip(bounds[:-1], bounds[1:]))
        run(segs)
        n_windows = n_accepted = 0
        if extra.get("windows", True) and len(segs) > 1:
            for parity in (0, 1):
                rem = opts.remaining()
                if rem is not None and rem < 0.25 * (opts.time_limit or 0):
                    break
                pairs = [(k, k + 1) for k in range(parity, len(segs) - 1, 2)
                         if segs[k + 1][1] - segs[k][0] <= 2 * seg_ops]
                run([(segs[a][0], segs[b][1]) for a, b in pairs])
                n_windows += len(pairs)
                merged, k = [], 0
                while k < len(segs):
                    if k + 1 < len(segs) and (k - parity) % 2 == 0 and k >= parity:
                        a, b = segs[k], segs[k + 1]
                        w = (a[0], b[1])
                        if w in cache and cache[w][1] < cache[a][1] + cache[b][1]:
                            merged.append(w)
                            n_accepted += 1
                            k += 2
                            continue
                        merged.extend([a, b])
                        k += 2
                        continue
                    merged.append(segs[k])
                    k += 1
                segs = merged
    finally:
        if own_pool is not None:
            own_pool.shutdown()

    stitched = stitch([cache[s][0] for s in segs])
    rep = validate(graph, stitched, capacity, opts.alignment)
    n_kept = 0
    if len(segs) > 1:
        try:
            better = keep_resident(stitched, graph.tensor_size, graph.tensor_is_output)
            rep2 = validate(graph, better, capacity, opts.alignment)
            if rep2.traffic < rep.traffic:
                n_kept = rep.traffic - rep2.traffic
                stitched, rep = better, rep2
        except CosmaError:
            pass  # keep the plain stitched plan; the peephole pass is only an improvement
    info = {"cuts": [s[0] for s in segs[1:]], "segments": len(segs), "segment_solvers": [cache[s][2] for s in segs],
            "stitched_traffic": rep.traffic, "start_traffic": start_traffic, "start": start_name,
            "windows_tried": n_windows, "windows_accepted": n_accepted,
            "keep_resident_saved": n_kept, "start_error": extra.get("start_error"),
            "segment_time_limit": float(seg_time),
            "dnc_time": time.perf_counter() - t0, "segments_time": time.perf_counter() - t_seg}
    if start_plan is not None and start_traffic <= rep.traffic and extra.get("compare_start", True):
        info["chosen"] = "start"
        return MethodOutput(start_plan, lower_bound, "feasible",
                            f"D&C over {len(segs)} segments did not beat the {start_name} plan; returning it", info)
    info["chosen"] = "stitched"
    return MethodOutput(stitched, lower_bound, "feasible",
                        f"D&C over {len(segs)} segments (empty scratchpad at every cut)", info)


def solve_auto(graph: Graph, capacity: int, opts: SolveOptions) -> MethodOutput:
    """Pick a method by graph size and ``time_limit``; return the best valid plan found.

    * ``n_ops <= AUTO_EXACT_OPS`` and the ILP is installed: exact ILP;
    * more operators and either no time limit or enough time (>= 2 ms per operator)
      and ``n_ops <= AUTO_HUGE_OPS``: divide and conquer;
    * otherwise (huge graph or little time): the heuristic.

    When a ``time_limit`` is given and at least ``AUTO_EXACT_MIN_SECONDS`` of it remain
    after D&C or the heuristic without a proof, the whole-graph ILP (warm-started by the
    heuristic) gets the rest of the time: it proves many real models optimal in seconds
    and otherwise contributes its lower bound.

    The heuristic's plan is always computed too, and the cheapest plan that passes
    :func:`validate` is returned with the best proven lower bound, so ``auto`` is never
    worse than the heuristic. ``info["auto_choice"]`` says what ran.
    """
    n = graph.n_ops
    tl = opts.time_limit
    ilp = _optional("ilp", "solve_ilp")
    heur = _optional("heuristic", "solve_heuristic")
    candidates: list[tuple[Plan, int, str, str]] = []  # (plan, lower bound, status, name)
    if n <= AUTO_EXACT_OPS and ilp is not None:
        choice = "ilp"
        start_plan, start_lb, start_name = _whole_graph_start(graph, capacity, opts)
        if start_plan is not None:
            candidates.append((start_plan, start_lb, "feasible", start_name))
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
    left = opts.remaining()
    if (choice != "ilp" and ilp is not None and left is not None and left >= AUTO_EXACT_MIN_SECONDS
            and out.status != "optimal"
            and out.lower_bound < out.plan.traffic(graph) - graph.compulsory()):
        # time is left and nothing is proven: the whole-graph ILP (warm-started by the
        # heuristic) often closes real models in seconds, and at worst it adds a bound
        choice += "+ilp"
        sub = dataclasses.replace(opts, time_limit=left, start_time=time.perf_counter())
        try:
            ex = ilp(graph, capacity, sub)
            candidates.append((ex.plan, int(ex.lower_bound), ex.status, "ilp"))
        except CosmaError:
            pass
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
        plan = trivial_plan(graph, opts.schedule)
        best = (plan, 0, "feasible", "trivial")
    plan, _, status, name = best
    return MethodOutput(plan, lb, status if name == "ilp" else "feasible",
                        f"auto chose {choice}; best plan from {name}", {"auto_choice": choice, "best_from": name})
