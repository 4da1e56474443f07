"""Exact mode: the joint schedule + replacement ILP on HiGHS, with addresses searched apart.

Method of COSMA (Li, Gupta, Malik, "Combined Scheduling, Memory Allocation and Tensor
Replacement for Minimizing Off-Chip Data Accesses of DNN Accelerators", arXiv 2311.18246),
reformulated (DESIGN.md section 3): the time-indexed model of
:mod:`cosma_fast.ilp.model` drops the address constraints, so its optimum is a lower
bound; its residency intervals are then packed into the scratchpad as buffers. When they
pack, the plan is optimal for the full problem. When they do not, the residency pattern is
forbidden by a no-good cut and the model is solved again (a few rounds, the bound of the
first round kept), and the best valid plan known (the heuristic's or the trivial one) is
the fallback.

:func:`solve_ilp` is the ``method="ilp"`` entry of :func:`cosma_fast.solve`;
:func:`min_peak_ilp` gives the exact minimum peak of live bytes (``M_P``).
"""

from __future__ import annotations

import math
import threading
import time
from functools import partial

import numpy as np

from ..bounds import address_free_optimum, chunked_spill_cover, least_spill_cover, spill_cover_bound
from ..budgets import aligned_capacity_rows
from ..errors import CosmaError, OptionError, SolverError
from ..graph import Graph
from ..highs import integral_bound, new_highs, pass_model
from ..highs import run as run_model
from ..kernels.downset import MAX_OPS as DOWNSET_MAX_OPS
from ..plan import Plan
from ..schedule import live_profile, min_peak_bounds, min_peak_schedule, schedule_lower_bound
from ..solve import MethodOutput, SolveOptions
from ..trivial import trivial_plan
from ..validate import validate
from .cuts import spill_cover_rows
from .decode import build_plan, decode_residency, encode_plan, pack_buffers, residency_buffers
from .model import ModelBuildTimeout, ReplacementModel, build_model, op_windows
from .orders import improve_order, order_plan, order_plan_and_bound, order_search

__all__ = ["solve_ilp", "min_peak_ilp", "build_model", "op_windows", "run_highs"]

_NO_GOOD_ROUNDS = 3
START_SHARE = 0.5  # of the time left, at most, for the heuristic's start plan
ORDER_SEARCH_NODES = 20_000  # order search budget when there is no time limit
ORDER_SEARCH_SHARE = 0.75  # of the time left; the time-indexed model gets the rest
HIGHS_TIME_SHARE = 0.9  # of the time left, for a model solve (see highs_time)
WINDOW_SEARCH_MIN_OPS = 40  # from this size, half of that share goes to a search for cheaper plans
MODEL_MAX_OPS = 100  # from this size under a time limit the local search gets the model's time
# beyond this size under a time limit only the start and the local search run: the bounds' and
# the order search's dense matrices grow with operators x operators x tensors (time_limit=2:
# 2.8 s on 1000 operators, 5.4 s on 2000; time_limit=10 on 10000: 290 s)
DENSE_MAX_OPS = 1000
SPILL_SEARCH_MAX_OPS = DOWNSET_MAX_OPS  # the down-set search's bit masks hold this many operators
SPILL_SEARCH_SHARE = 0.25  # of the order search's share, for the address-free down-set search run first
SPILL_SEARCH_SHARE_LARGE = 0.5  # the same from WINDOW_SEARCH_MIN_OPS operators, where the order search rarely proves
DOWNSET_MAX_STATES = 8_000_000  # states the down-set searches may store (about 1 GB)
DOWNSET_LEAN_STATES = 2_000_000  # past these, a search whose frontier outgrows it stops (bounds.LEAN_RATIO)
# of the order search's share, for the chunked bound beyond SPILL_SEARCH_MAX_OPS (0.25 cut its
# last passes on layered100/200 at M_H: bounds 12593 and 12602 instead of 15094 and 15401; 0.4
# left layered100 at M_R at 67350 instead of 69852; 0.6 layered200 at M_R at 93519, 0.9 97704,
# where the order search's bound was 29195 and it is skipped)
CHUNKED_SHARE = 0.9
# its passes, the parts' largest sizes: a quick probe, then the largest parts first (the strongest
# bounds: layered100 at M_R, 57584, 58517, 67862 and 69852 bytes from 30 to 62 operators)
CHUNKED_PART_OPS = (30, 62, 50, 40)
LAST_SEARCH_SEED = 104729  # added to the seed of the local search given the model's time
EARLY_DOWNSET_MAX_OPS = 24  # up to this size the down-set search may prove the heuristic's start before phase one
EARLY_DOWNSET_TIME = 0.2  # seconds at most for that early search
CHUNKED_COVER_TIME = 4.0  # seconds at most to cover and pack the chunked bound's order
SPILL_ORDER_PACK_TIME = 8.0  # seconds at most to cover and pack the down-set search's order at once
BEAM_WIDTHS = (64, 256, 1024, 4096)  # the beam search's widths, in turn while its time lasts
BEAM_SHARE = 0.15  # of the time left, for the beam search (all widths); without a time limit, widths to 1024
BEAM_SHARE_LARGE = 0.1  # the same beyond SPILL_SEARCH_MAX_OPS, where it helps fewer graphs (layered, at M_R)
CONCURRENT_SHARE = 0.75  # of the order search's share, for it and a local search at once (from 40 operators)
BEAM_PACK_TIME = 2.0  # seconds at most to cover and pack the beam's best order


def run_highs(model: ReplacementModel, *, time_limit=None, mip_gap=0.0, threads=None,
              start: np.ndarray | None = None, verbose=False, progress=None,
              start_via: str = "callback", max_nodes: int | None = None) -> dict:
    """Solve ``model`` with HiGHS from arrays passed in one call.

    Returns ``{"status": "optimal"|"feasible"|"infeasible"|"unknown", "x": solution or None,
    "objective", "bound" (dual bound, -inf when none), "start_accepted", "time", "threads_honoured"}`` (False when
    HiGHS already ran in this process with another thread count: its scheduler is kept).
    ``start`` is handed to HiGHS only after it is checked feasible in numpy (HiGHS drops an
    infeasible start silently). ``start_via="callback"`` (default) gives it in the MIP
    user-solution callback so presolve stays on; ``"setSolution"`` uses ``Highs.setSolution``
    and turns presolve off (HiGHS 1.16 bug, see below). ``random_seed`` is fixed, so a run
    that finishes within its limits is reproducible. ``max_nodes`` (HiGHS ``mip_max_nodes``)
    is a work limit: unlike ``time_limit`` it gives the same answer on a busy machine (it
    does not bound the root node; HiGHS 1.16 reports no LP iteration count to the MIP
    interrupt callback, so there is no finer deterministic limit).
    """
    import highspy

    t0 = time.perf_counter()
    h = new_highs(time_limit=time_limit, threads=threads, mip_rel_gap=mip_gap, verbose=verbose)
    if max_nodes is not None:
        h.setOptionValue("mip_max_nodes", int(max_nodes))
    pass_model(h, model.cost, model.A, model.row_lower, model.row_upper, model.col_lower, model.col_upper, True)
    accepted = False
    if start is not None and model.check(start):
        if start_via == "callback":
            # Handed over in the MIP user-solution callback, after presolve: HiGHS maps it
            # into the reduced space itself, and presolve stays on (cf. the setSolution bug
            # below). Accepted = HiGHS took it (its status is checked in the callback).
            given = {"done": False, "ok": False}
            start_arr = np.asarray(start, dtype=float)

            def _give(e):
                if given["done"]:
                    return
                given["done"] = True
                given["ok"] = e.data_in.setSolution(start_arr) == highspy.HighsStatus.kOk

            h.cbMipUserSolution.subscribe(_give)
            accepted = given
        else:
            sol = highspy.HighsSolution()
            sol.col_value = list(map(float, start))
            sol.value_valid = True
            accepted = h.setSolution(sol) == highspy.HighsStatus.kOk
            if accepted:
                # HiGHS 1.16 with presolve on mishandles a start: it maps it to the reduced
                # space and then reports the start as optimal with a wrong dual bound (seen on
                # a 4-op graph: start 40, optimum 37, "optimal 40"). Without presolve the
                # answer is right.
                h.setOptionValue("presolve", "off")
    if progress is not None:
        def _cb(e):
            d = e.data_out
            progress({"incumbent": d.objective_function_value, "bound": d.mip_dual_bound,
                      "gap": d.mip_gap, "time": time.perf_counter() - t0})
        try:
            h.cbMipImprovingSolution.subscribe(_cb)
        except AttributeError:  # older highspy without the callback API
            pass
    threads_kept = run_model(h)
    if isinstance(accepted, dict):
        # never asked for: presolve or the root closed the model before any search, so
        # there was nothing to reject (the start passed the numpy check above)
        accepted = accepted["ok"] if accepted["done"] else True
    ms = h.getModelStatus()
    info = h.getInfo()
    has_sol = info.primal_solution_status == 2
    x = np.array(h.getSolution().col_value) if has_sol else None
    if ms == highspy.HighsModelStatus.kOptimal:
        status = "optimal"
    elif ms == highspy.HighsModelStatus.kInfeasible:
        status = "infeasible"
    else:
        status = "feasible" if has_sol else "unknown"
    # HiGHS says "optimal" once the gap is within mip_rel_gap: only at gap 0 is the objective a bound
    exact = status == "optimal" and float(mip_gap) == 0.0
    bound = float(info.objective_function_value) if exact else float(info.mip_dual_bound)
    if not math.isfinite(bound):
        bound = -math.inf
    return {"status": status, "x": x, "objective": float(info.objective_function_value) if has_sol else math.inf,
            "bound": bound, "start_accepted": accepted, "time": time.perf_counter() - t0,
            "threads_honoured": threads_kept}


def _start_plan(graph: Graph, capacity: int, opts: SolveOptions) -> tuple[Plan | None, int | None]:
    """(plan, traffic): the heuristic's plan when that module is available and valid, else
    the trivial plan (:func:`_start_and_bound` may improve it with :func:`_phase_one`)."""
    candidates = list(opts.extra.get("_start_plans", []))
    if opts.extra.get("_no_heuristic"):
        candidates.append(trivial_plan(graph, opts.schedule, opts.alignment))
        return _cheapest_valid(graph, capacity, opts, candidates)
    try:
        import dataclasses

        from ..heuristic import solve_heuristic
        rem = opts.remaining()
        # the heuristic stops when its moves are done (0.1-0.5 s on 150-300 operators), so a
        # large share costs the ILP nothing there and keeps it from returning a plan dearer
        # than the heuristic's under the same limit; without a limit it runs to the end
        h_opts = dataclasses.replace(opts, time_limit=None if rem is None else max(0.05, START_SHARE * rem),
                                     start_time=time.perf_counter())
        out = solve_heuristic(graph, capacity, h_opts)
        candidates.append(out.plan)
    except Exception:  # noqa: BLE001 - the heuristic is optional here; trivial always exists
        pass
    candidates.append(trivial_plan(graph, opts.schedule, opts.alignment))
    return _cheapest_valid(graph, capacity, opts, candidates)


def _phase_one_applies(graph: Graph, opts: SolveOptions, start: Plan | None, cost: int | None) -> bool:
    """Whether :func:`_phase_one` may improve ``start``: a free schedule, and extra bytes to
    save."""
    return (opts.schedule is None and start is not None and not opts.extra.get("_no_phase1")
            and cost > graph.compulsory())


def _start_and_bound(graph: Graph, capacity: int, opts: SolveOptions, quick=None):
    """``(start plan, its traffic, proven bound, output or None)`` for both formulations: the
    start of :func:`_start_plan`, the bound of :func:`_other_bounds`, and the start as an
    optimal output when it meets that bound (:func:`_skip_when_start_meets_bound`). The
    heuristic's plan is checked before :func:`_phase_one` improves it, so a start that is
    already proven skips phase one, which costs a few milliseconds of segment covers per
    order on the smallest graphs. ``quick(plan, traffic, bound)``: a formulation's own cheap
    proof, tried before phase one too, returning an output or None."""
    plan, cost = _start_plan(graph, capacity, opts)
    if plan is None:
        return None, None, 0, None
    min_peak = _MinPeak(graph)
    other, done = _skip_when_start_meets_bound(graph, capacity, opts, plan, cost, min_peak=min_peak)
    if done is None and quick is not None:
        done = quick(plan, cost, other)
    if done is not None or not _phase_one_applies(graph, opts, plan, cost):
        return plan, cost, other, done
    plan, cost = _phase_one(graph, capacity, opts, plan, cost, other, min_peak)
    other, done = _skip_when_start_meets_bound(graph, capacity, opts, plan, cost, other=other)
    return plan, cost, other, done


class _MinPeak:
    """:func:`cosma_fast.schedule.min_peak_bounds` of one graph, computed once per solve: the
    bound (:func:`_other_bounds`) and phase one's order (:func:`_phase_one`) both need it, and
    it takes up to a second beyond 60 operators (randwire100: 0.5 s, randwire200: 0.9 s)."""

    def __init__(self, graph: Graph):
        self.graph, self.found = graph, None

    def __call__(self, time_limit: float | None) -> tuple[np.ndarray, int, int]:
        """``(order, peak, lower)``; ``time_limit`` applies to the first call only."""
        if self.found is None:
            self.found = min_peak_bounds(self.graph, time_limit=time_limit)
        return self.found


def _phase_one(graph: Graph, capacity: int, opts: SolveOptions, start: Plan, start_cost: int, other: int = 0,
               min_peak: _MinPeak | None = None) -> tuple[Plan, int]:
    """Better starts on the start's schedule, a minimum-peak schedule and the model order:
    each order's plan from its segment covers (:func:`cosma_fast.ilp.orders.order_plan`),
    or from the fixed-schedule model when none was found or packed. (Not the model after a
    cover that packed with slack: on large graphs its residency rarely packs either, and
    phase one is meant to be quick.) ``start_cost``: the start's traffic. From
    ``WINDOW_SEARCH_MIN_OPS`` operators an order other than the start's is skipped when
    :func:`_far_behind` (its covers take seconds there). When the minimum-peak schedule's
    peak is near the capacity (``PEAK_SLACK``, ``PEAK_NEAR``) and not proven, a plan without spills may
    exist if an order leaves room to pack, so a wider beam searches for one
    (:func:`cosma_fast.schedule.min_peak_schedule` for ``PEAK_TIME`` seconds at most, without
    its exact search). An order whose peak fits the capacity is tried first, its zero-slack
    cover's packing for up to ``SPILL_ORDER_PACK_TIME`` seconds (that cover is optimal when it
    packs; randwire80 at the ``M_P`` of ``cf.budgets``' default limit, 27718 bytes: proven in
    8 s instead of 23 s), then, when no plan of it meets ``other``, the proven bound, the
    heuristic's local search from it (``FITS_SEARCH_TIME`` seconds at most, a fifth of the
    time left). Phase one stops at a plan that meets ``other``. ``min_peak``: the solve's
    minimum-peak search, which the bound may have run already."""
    schedules = [start.schedule, np.arange(graph.n_ops)]
    compulsory = graph.compulsory()
    fits = None  # an order without spills
    try:
        rem = opts.remaining()
        order, peak, lower = (min_peak or _MinPeak(graph))(1.0 if rem is None else max(0.05, min(1.0, 0.05 * rem)))
        if peak > lower and (1 - PEAK_SLACK) * capacity < peak <= PEAK_NEAR * capacity:
            # a plan without spills may exist, if an order leaves room to pack: a wider beam
            # (randwire100 at M_P, 34747 bytes: 34925 -> 33967, which packs at once)
            order, peak, _ = min_peak_schedule(graph, time_limit=PEAK_TIME if rem is None
                                               else max(0.05, min(PEAK_TIME, 0.2 * rem)), max_states=0)
        # an order that fits without spills goes first, unscreened by _far_behind: if its
        # residency packs, the plan moves no extra byte and the others need not be tried
        # (layered200 at M_P: 4.2 -> 0.7 s)
        schedules.insert(0 if peak <= capacity else 1, np.asarray(order))
        if peak <= capacity and _fits_padded(graph, order, capacity, opts.alignment):
            fits = schedules[0]  # the same object the loop meets
    except CosmaError:
        pass
    found = [(start, start_cost)]  # the valid plans and their traffic, in the order found

    def keep(plan: Plan) -> int | None:
        """``plan``'s traffic, kept when it validates (None otherwise)."""
        cost = _cheapest_valid(graph, capacity, opts, [plan], any_schedule=True)[1]
        if cost is not None:
            found.append((plan, cost))
        return cost

    seen = set()
    for sch in schedules:
        key = tuple(int(o) for o in sch)
        if key in seen:
            continue
        seen.add(key)
        if (graph.n_ops >= WINDOW_SEARCH_MIN_OPS and not np.array_equal(sch, start.schedule) and sch is not fits
                and _far_behind(graph, capacity, opts, sch, start_cost)):
            continue
        rem = opts.remaining()
        share = 5.0 if rem is None else 0.25 * rem
        if share < 0.05:
            break
        plan = order_plan(graph, capacity, sch, alignment=opts.alignment, time_limit=share, threads=opts.threads,
                          first_pack_time=SPILL_ORDER_PACK_TIME if sch is fits else None)
        if plan is None:  # no cover in time, or no cover packed: the model, without the cover again
            plan = _fixed_schedule_plan(graph, capacity, opts, sch, [start] if np.array_equal(start.schedule, sch)
                                        else [], share, cover=False)
        cost = keep(plan)
        if sch is fits and (cost is None or cost - compulsory > other):
            # its residency did not pack: the local search from it moves operators until one
            # does (randwire200 at the M_P of the default cf.budgets, 85476 bytes: no extra
            # byte after 4.8 s, where the later searches took 50 s)
            from ..heuristic import local_search_plan

            rem = opts.remaining()
            plan = local_search_plan(graph, capacity, fits, seed=opts.seed, alignment=opts.alignment,
                                     time_limit=FITS_SEARCH_TIME if rem is None else min(FITS_SEARCH_TIME, 0.2 * rem),
                                     target=compulsory + other, threads=opts.threads)
            cost = keep(plan)
        if cost is not None and cost - compulsory <= other:
            break  # it meets the proven bound: no other order can do better
    return min(found, key=lambda pc: pc[1])  # the first of the cheapest


PHASE_ONE_SCREEN = 1.2  # see _far_behind
# phase one's minimum-peak order is searched longer (PEAK_TIME seconds at most, a fifth of the time
# left; its beam gets half) when its peak is within PEAK_SLACK below to PEAK_NEAR above the capacity
PEAK_SLACK, PEAK_NEAR, PEAK_TIME = 0.01, 1.1, 10.0
FITS_SEARCH_TIME = 10.0  # seconds at most (a fifth of the time left) for the local search from an order that fits


def _far_behind(graph: Graph, capacity: int, opts: SolveOptions, schedule, start_cost: int) -> bool:
    """Whether the heuristic's best replacement setting on ``schedule`` costs more than
    ``PHASE_ONE_SCREEN`` times the non-compulsory bytes of the start (traffic ``start_cost``;
    milliseconds to find out).
    On the layered and randwire graphs of 100 and 200 operators at ``M_R`` and ``M_H`` (8
    rows) a cover's plan was 5-20% below its order's heuristic plan, and none of the 13
    orders this skips there (every model order, at 1.25-2.3 times; 5 of the 8 minimum-peak
    orders, at 1.21-1.6) gave a plan below the cover of the start's order; the kept
    minimum-peak order at 0.95 times did (layered200 at ``M_H``)."""
    from ..heuristic import best_setting

    compulsory = graph.compulsory()
    try:
        nc = best_setting(graph, capacity, schedule, alignment=opts.alignment)[0] - compulsory
    except CosmaError:
        return False
    return nc > PHASE_ONE_SCREEN * (start_cost - compulsory)


def _fixed_schedule_plan(graph: Graph, capacity: int, opts: SolveOptions, schedule, starts: list[Plan],
                         time_limit: float | None, cover: bool = True) -> Plan:
    """The plan of :func:`solve_ilp` on the fixed ``schedule`` (decomposed formulation, no
    heuristic; the segment cover's plan unless ``cover`` is False, or the fixed-schedule
    model warm-started from the cheapest of ``starts`` that runs it) within ``time_limit``."""
    import dataclasses

    extra = dict(opts.extra, _no_heuristic=True, _start_plans=list(starts))
    if not cover:
        extra["order_search"] = False
    sub = dataclasses.replace(opts, schedule=np.asarray(schedule, dtype=np.int64), time_limit=time_limit,
                              start_time=time.perf_counter(), extra=extra, progress=None, formulation="decomposed")
    return solve_ilp(graph, capacity, sub).plan


def _cheapest_valid(graph, capacity, opts, candidates, any_schedule=False) -> tuple[Plan | None, int | None]:
    """(plan, traffic) of the cheapest candidate that validates (running ``opts.schedule``
    when one is fixed, unless ``any_schedule``); (None, None) when none does."""
    best, best_cost = None, None
    for p in candidates:
        if not any_schedule and opts.schedule is not None and not np.array_equal(p.schedule, opts.schedule):
            continue
        try:
            rep = validate(graph, p, capacity, opts.alignment)
        except CosmaError:
            continue
        if best is None or rep.traffic < best_cost:
            best, best_cost = p, rep.traffic
    return best, best_cost


def highs_time(opts: SolveOptions) -> float | None:
    """The time limit HiGHS gets: ``HIGHS_TIME_SHARE`` of the time left. Its root cut
    separation neither watches the clock nor calls the interrupt callbacks (layered50 at
    M_R: 3 s over a 25.7 s limit, with 5 s between two interrupt checks), so the rest is
    kept back for it."""
    rem = opts.remaining()
    return None if rem is None else HIGHS_TIME_SHARE * rem


def model_deadline(opts: SolveOptions) -> float | None:
    """The deadline of a model's build (a ``time.perf_counter()`` value): a quarter of the
    time left at most, since converting the rows and HiGHS (whose presolve does not watch the
    clock) need the rest."""
    rem = opts.remaining()
    return None if rem is None else time.perf_counter() + 0.25 * rem


def _no_good(model: ReplacementModel, v: np.ndarray):
    """Row forbidding the residency pattern of ``v``: sum_{on} (1 - r) + sum_{off} r >= 1."""
    cols = model.rcol[model.rcol >= 0]
    on = v[cols] > 0.5
    vals = np.where(on, -1.0, 1.0)
    return cols, vals, 1.0 - float(on.sum())


def solve_ilp(graph: Graph, capacity: int, opts: SolveOptions) -> MethodOutput:
    """Exact plan of ``graph`` within ``capacity`` (``cf.solve(..., method="ilp")``).

    Returns
    -------
    MethodOutput
        ``status`` "optimal" when the address-free optimum packed; otherwise "feasible"
        with the best valid plan known and ``lower_bound`` = the model's dual bound in
        non-compulsory bytes. ``info`` holds ``start_accepted``, ``rounds``, ``packed``,
        ``model_cols``, ``model_rows``, ``dual_bound``.
    """
    if opts.formulation == "cosma":
        from .cosma import solve_cosma
        return solve_cosma(graph, capacity, opts)
    if opts.formulation != "decomposed":
        raise OptionError(f"unknown ILP formulation {opts.formulation!r}; use 'decomposed' or 'cosma'")
    g = graph
    compulsory = g.compulsory()
    info = {"start_accepted": False, "rounds": 0, "packed": False}
    if g.n_ops > DENSE_MAX_OPS and opts.remaining() is not None:
        return _large_graph(g, capacity, opts, info)
    start_plan, start_cost, other, done = _start_and_bound(g, capacity, opts, _early_downset_proof(g, capacity, opts,
                                                                                                 info))
    if start_plan is None:
        raise _no_start()
    if done is not None:
        return done
    info["start_non_compulsory"] = start_cost - compulsory
    if opts.schedule is None and opts.extra.get("order_search", True):
        start_plan, start_cost, other = _search_orders(g, capacity, opts, start_plan, start_cost, other, info)
        nc = start_cost - compulsory
        if nc <= other:
            by_spill = info.get("spill_search_exact") and info["spill_search_bound"] >= nc
            return _proven(g, start_plan, start_cost, other, info,
                           "the down-set search" if by_spill else "the order search")
        if nc - other <= opts.mip_gap * nc:  # close enough for the caller: no model needed
            return _feasible(g, start_plan, start_cost, other, info, "the order search met mip_gap")
        if WINDOW_SEARCH_MIN_OPS <= g.n_ops <= SPILL_SEARCH_MAX_OPS:
            rem = opts.remaining()
            if not info.get("spill_search_exact"):  # the spill cover: fewer states, finishes more often
                spill = _downset_search(g, capacity, nc, info, None if rem is None else HIGHS_TIME_SHARE * rem,
                                        alignment=opts.alignment)
                other = max(other, spill.bound)
                start_plan, start_cost = _realise_spill_order(g, capacity, opts, spill, start_plan, start_cost, other)
                nc = start_cost - compulsory
                if nc <= other:
                    return _proven(g, start_plan, start_cost, other, info, "the down-set search")
            if rem is not None:  # what the down-set search left (it may stop at its state cap)
                return _local_search_instead_of_model(
                    g, capacity, opts, start_plan, start_cost, other, info,
                    f"the down-set search and the local search had the model's time from {WINDOW_SEARCH_MIN_OPS} "
                    f"to {SPILL_SEARCH_MAX_OPS} operators")
        if g.n_ops >= MODEL_MAX_OPS and opts.remaining() is not None:
            return _local_search_instead_of_model(g, capacity, opts, start_plan, start_cost, other, info)
    elif opts.extra.get("order_search", True):
        start_plan, start_cost, other = _cover_schedule(g, capacity, opts, start_plan, start_cost, other, info)
        if start_cost - compulsory <= other:
            return _proven(g, start_plan, start_cost, other, info, "the schedule's segment cover")
    try:
        model = build_model(g, capacity, opts.schedule, deadline=model_deadline(opts), alignment=opts.alignment)
    except ModelBuildTimeout:
        model = None
        info["ilp_status"] = "skipped: the model was not built within a quarter of the time left"
    start = None
    if model is not None:
        model = _with_valid_cuts(model, compulsory + other, opts)
        info.update(model_cols=int(model.n_cols), model_rows=int(model.A.shape[0]))
        try:
            start = encode_plan(model, start_plan)
        except ValueError:
            pass
    best_plan, best_cost = start_plan, start_cost
    lower = 0
    proven = False
    for rnd in range(0 if model is None else _NO_GOOD_ROUNDS + 1):
        if opts.remaining() is not None and opts.remaining() <= 0:
            # HiGHS's presolve does not watch the clock: a 200-op model given 0.01 s ran 18 s
            info["ilp_status"] = info.get("ilp_status", "skipped: no time left after building the model")
            break
        res = run_highs(model, time_limit=highs_time(opts), mip_gap=opts.mip_gap, threads=opts.threads,
                        start=start if rnd == 0 and opts.extra.get("warm_start", True) else None,
                        verbose=opts.verbose, progress=opts.progress)
        info["rounds"] = rnd + 1
        if rnd == 0:
            info["start_accepted"] = res["start_accepted"]
            info["dual_bound"] = res["bound"]
            info["ilp_status"] = res["status"]
            # only the first round is a relaxation of the full problem: its bound is proven
            lower = max(0, integral_bound(res["bound"]) - compulsory)
        if res["x"] is None:
            break
        order, R, stored = decode_residency(model, res["x"])
        bt, ba, bb = residency_buffers(R)
        # half the time left: a residency packs at once or rarely at all, and the next round needs time
        rem = opts.remaining()
        off = pack_buffers(ba, bb, g.tensor_size[bt], capacity, opts.alignment,
                           time_limit=None if rem is None else 0.5 * rem)
        if off is not None:
            plan = build_plan(g, order, R, stored, bt, ba, off)
            try:
                cost = validate(g, plan, capacity, opts.alignment).traffic
            except CosmaError as e:
                raise SolverError(f"the ILP decoded an invalid plan ({e}); this is a bug in cosma_fast") from e
            info["packed"] = True
            if cost < best_cost:
                best_plan, best_cost = plan, cost
            proven = rnd == 0 and res["status"] == "optimal" and opts.mip_gap == 0
            break
        if opts.remaining() is not None and opts.remaining() <= 0:
            break
        cols, vals, rhs = _no_good(model, res["x"])
        model = _append_row(model, cols, vals, rhs)
    nc = best_cost - compulsory
    info["other_lower_bound"] = other
    lower = max(lower, other)
    if proven:
        lower = nc
    lower = min(lower, nc)
    status = "optimal" if lower >= nc else "feasible"
    msg = "" if status == "optimal" else (
        f"best plan {nc} non-compulsory bytes, proven lower bound {lower}")
    return MethodOutput(plan=best_plan, lower_bound=int(lower), status=status, message=msg, info=info)


def _search_orders(g: Graph, capacity: int, opts: SolveOptions, start_plan: Plan, start_cost: int,
                   other: int, info: dict) -> tuple[Plan, int, int]:
    """(best plan, its traffic, proven lower bound) after :func:`cosma_fast.ilp.orders.order_search`.

    Up to ``SPILL_SEARCH_MAX_OPS`` operators :func:`cosma_fast.bounds.address_free_optimum`
    runs first with ``SPILL_SEARCH_SHARE`` of the share (``SPILL_SEARCH_SHARE_LARGE`` from
    ``WINDOW_SEARCH_MIN_OPS`` operators: layered50 at ``M_R`` needs 19 s and 2.2M states,
    and is then proven at 27200 bytes, where 60 s ended at 28274 over 18057 before), storing
    ``DOWNSET_MAX_STATES`` states at most (``DOWNSET_LEAN_STATES`` when it stores ten states
    or more for each it expands: randwire40 at ``M_R`` and ``M_H``): when it finishes, its
    value is the least address-free traffic over every order, and a plan of its order's covers
    (``SPILL_ORDER_PACK_TIME``) at that value is optimal with no order search (layered30 at
    ``M_R``: 22355 bytes proven in 1.5 s, where 60 s ended at 26519 over 19042 before;
    layered40 at ``M_R``: 19442 in 8 s, the zero-slack cover alone did not pack; layered50 at
    ``M_H``: 6820 in 5 s, its zero-slack cover packs after 1.4 s of allocation search). From
    ``WINDOW_SEARCH_MIN_OPS`` operators, when that fails, the local search below runs before
    the order search and stops once it meets the value (layered40 at ``M_H``: 4564 bytes
    proven in 10 s instead of 34 s). Beyond ``SPILL_SEARCH_MAX_OPS`` operators
    :func:`_chunked_bound` takes ``CHUNKED_SHARE`` of the share instead, and the beam
    ``BEAM_SHARE_LARGE`` of the solve's time; when the chunked bound is above the others the
    order search is skipped and the local search gets half of its share (its bound there was far
    below: layered100 at ``M_R`` 27516 bytes against 69852, layered200 29195 against 93519; its
    orders were no cheaper than the beam's on the layered graphs of 100 and 200 operators).

    The search gets ``ORDER_SEARCH_SHARE`` of the time left (``ORDER_SEARCH_NODES`` bounds without a time
    limit). From ``WINDOW_SEARCH_MIN_OPS`` operators, where proofs are rare, it gets half of
    that (up to ``SPILL_SEARCH_MAX_OPS`` operators under a time limit, ``CONCURRENT_SHARE`` of
    it with one climb of the local search below in a second thread for the same time,
    :func:`_alongside_local_search`; randwire49 at ``M_R``: bound 35740 -> 36454 bytes in 60
    s; beyond, where its bound is far below the chunked one, a single climb there lost the
    diversity of two: layered100 at ``M_H`` 26401 bytes instead of 20349), and when it
    proves nothing the rest goes to cheaper plans:

    * under a time limit, a quarter of the share (unless it ran alongside) to the
      heuristic's local search continued from the start's order
      (:func:`cosma_fast.heuristic.local_search_plan`),
      whose plans are valid by construction: the searches below find orders of less
      address-free traffic whose residency often packs only at a much higher cost on 100
      operators or more (layered100 at ``M_H``: an order of 25288 bytes address-free costs
      36262 with its best packed cover and 38607 with the heuristic's replacement, against
      the start's 34691);
    * the rest to :func:`cosma_fast.ilp.orders.improve_order`'s window search from the
      search's best order, which :func:`_realise_order` turns into a plan when it beats the
      best so far (its fixed-schedule model gets an eighth of the share at most).

    60 s on the 12 layered/randwire rows of 50-200 operators at ``M_R`` and ``M_H``
    (``bench/ilp.py --large``): no row worse than the window search alone, 8 better (by up to
    28%: layered200 at ``M_H``, 47600 -> 34117 bytes). The lower bound holds for every order."""
    t0 = time.perf_counter()
    rem = opts.remaining()
    compulsory = g.compulsory()
    report = None
    if opts.progress is not None:
        def report(d):  # in traffic bytes, like HiGHS's reports
            inc, bound = d["incumbent"] + compulsory, d["bound"] + compulsory
            opts.progress({"incumbent": inc, "bound": bound, "gap": (inc - bound) / max(inc, 1),
                           "time": time.perf_counter() - opts.start_time})
    share = None if rem is None else ORDER_SEARCH_SHARE * rem
    windows = g.n_ops >= WINDOW_SEARCH_MIN_OPS
    from ..heuristic import climb_threads

    two_threads = climb_threads(opts.threads) > 1  # threads=1 keeps the solve on one thread
    spill = early = None
    if g.n_ops <= SPILL_SEARCH_MAX_OPS:
        background = None  # the beam below, started now beside the down-set search when two threads may run
        if g.n_ops > EARLY_DOWNSET_MAX_OPS and share is not None and two_threads:
            background = _Background(_beam_search, g, capacity, start_cost - compulsory, BEAM_SHARE * rem)
        try:
            spill_share = SPILL_SEARCH_SHARE_LARGE if windows else SPILL_SEARCH_SHARE
            spill = _downset_search(g, capacity, start_cost - compulsory, info,
                                    None if share is None else spill_share * share, address_free=True,
                                    alignment=opts.alignment)
            if spill.exact and background is not None:  # the search finished: no beam is needed
                background.close()
                background = None
            other = max(other, spill.bound)
            if start_cost - compulsory <= other:
                return start_plan, start_cost, other
            if spill.schedule is not None:
                # its order costs ``other`` without addresses: when a cover of that cost packs, it is
                # optimal (its covers only here, its fixed-schedule model after the order search: a
                # new start would change the search's path)
                left = opts.remaining()
                pack_time = SPILL_ORDER_PACK_TIME if left is None else min(SPILL_ORDER_PACK_TIME, 0.2 * left)
                plan = order_plan(g, capacity, spill.schedule, alignment=opts.alignment, threads=opts.threads,
                                  time_limit=pack_time)
                plan, cost = _cheapest_valid(g, capacity, opts, [] if plan is None else [plan])
                if plan is not None and cost - compulsory <= other:
                    return plan, cost, other
            if not spill.exact and g.n_ops > EARLY_DOWNSET_MAX_OPS:
                start_plan, start_cost = _beam_start(g, capacity, opts, start_plan, start_cost, info,
                                                     found=None if background is None else background.result(),
                                                     other=other)
                if start_cost - compulsory <= other:
                    return start_plan, start_cost, other
            if share is not None:
                share = ORDER_SEARCH_SHARE * opts.remaining()
                if spill.exact and windows:  # the bound is known: the local search stops once it meets it
                    early = _local_search(g, capacity, opts, start_plan, start_cost, share / 4, other + compulsory)
                    if early[1] - compulsory <= other:
                        return early[0], early[1], other
                    share = ORDER_SEARCH_SHARE * opts.remaining()
        finally:
            if background is not None:
                background.close()
    else:
        chunked, chunked_order = _chunked_bound(g, capacity, opts, other, info,
                                                None if share is None else CHUNKED_SHARE * share)
        chunked_binds = chunked > other
        other = max(other, chunked)
        # the beam's time is a share of the whole solve's, however long the chunked passes took
        left = opts.remaining()
        found = _beam_search(g, capacity, start_cost - compulsory,
                             None if rem is None else min(BEAM_SHARE_LARGE * rem, left / 2))
        start_plan, start_cost = _beam_start(g, capacity, opts, start_plan, start_cost, info, found=found,
                                             other=other)
        if found[0] is None and chunked_order is not None:  # no beam order: the chunked passes' instead
            start_plan, start_cost = _chunked_order_plan(g, capacity, opts, chunked_order, start_plan, start_cost,
                                                         info)
        if start_cost - compulsory <= other:
            return start_plan, start_cost, other
        if share is not None:
            share = ORDER_SEARCH_SHARE * opts.remaining()
            if chunked_binds:  # the order search's bound would be far below it, its orders no cheaper
                info["order_search"] = "skipped: the chunked bound binds"
                start_plan, start_cost = _local_search(g, capacity, opts, start_plan, start_cost, share / 2)
                info["local_search_non_compulsory"] = start_cost - compulsory
                return start_plan, start_cost, other
    alongside = windows and g.n_ops <= SPILL_SEARCH_MAX_OPS and share is not None and early is None and two_threads
    search = partial(order_search, g, capacity, start_schedule=start_plan.schedule, upper=start_cost - compulsory,
                     time_limit=None if share is None else CONCURRENT_SHARE * share if alongside else share / 2
                     if windows else share, max_nodes=ORDER_SEARCH_NODES if rem is None else None,
                     mip_gap=opts.mip_gap, progress=report, threads=opts.threads)
    if alongside:
        res, (start_plan, start_cost) = _alongside_local_search(g, capacity, opts, start_plan, start_cost,
                                                                CONCURRENT_SHARE * share, search)
        info["local_search_non_compulsory"] = start_cost - compulsory
    else:
        res = search()
    info.update(order_nodes=res.nodes, order_value=res.value, order_lower_bound=res.lower_bound,
                order_proven=res.proven, order_time=res.time)
    order, value = res.schedule, res.value
    searching = windows and not res.proven and value is not None
    if early is not None:
        start_plan, start_cost = early
        info["local_search_non_compulsory"] = start_cost - compulsory
    elif searching and not alongside and rem is not None:
        start_plan, start_cost = _local_search(g, capacity, opts, start_plan, start_cost, share / 4)
        info["local_search_non_compulsory"] = start_cost - compulsory
    if searching:
        left = None if rem is None else share - (time.perf_counter() - t0)
        order, value = improve_order(g, capacity, order, value, time_limit=left, threads=opts.threads)
        info["window_search_value"] = value
    if value is not None and value + compulsory < start_cost:
        cap = share / 8 if searching and rem is not None else None
        plan, cost = _realise_order(g, capacity, opts, order, value + compulsory, time_cap=cap)
        if cost < start_cost:
            start_plan, start_cost = plan, cost
    other = max(other, res.lower_bound)
    if spill is not None:  # after the order search, whose own orders pack more often
        start_plan, start_cost = _realise_spill_order(g, capacity, opts, spill, start_plan, start_cost, other)
    return start_plan, start_cost, other


def _beam_start(g: Graph, capacity: int, opts: SolveOptions, start_plan: Plan, start_cost: int,
                info: dict, share: float = BEAM_SHARE, found=None, other: int = 0) -> tuple[Plan, int]:
    """(plan, traffic): the cheaper of the start and a plan of the best order of
    :func:`cosma_fast.bounds.address_free_beam` (widths ``BEAM_WIDTHS`` in turn, each only when
    four times the last one's time fits in ``share`` of the time left; its order's segment
    covers packed, ``BEAM_PACK_TIME`` at most, or the heuristic's plan of it), run when the
    address-free down-set search did not finish, or beyond its size after the chunked bound:
    the later searches start from it. randwire39 at ``M_R``: width 4096 finds an order whose
    covers pack at 34601 bytes in 4 s, where 60 s of the other searches ended at 40024;
    layered100 at ``M_R``: width 1024, 73582 bytes in 2.3 s, against 82109. (At ``M_H`` there
    its orders rarely pack near their address-free cost: layered100, 16286 bytes without
    addresses, 42265 packed.) ``found``: :func:`_beam_search`'s answer when it ran already.
    ``other``: the proven bound; an order that meets it gets up to ``SPILL_ORDER_PACK_TIME``
    seconds, as the down-set search's optimal order does, and its zero-slack cover's packing
    up to half of that (layered100 at ``M_P``: 6.7 -> 4.0 s; the down-set search's order
    keeps 2 s there: layered40 at ``M_H``, whose zero-slack cover does not pack, took 12.9 s
    instead of 10.8 with the longer packing)."""
    compulsory = g.compulsory()
    if found is None:
        rem = opts.remaining()
        found = _beam_search(g, capacity, start_cost - compulsory, None if rem is None else share * rem)
    best_order, best_value, seconds = found
    info.update(beam_value=None if best_order is None else best_value, beam_time=seconds)
    if best_order is None:
        return start_plan, start_cost
    optimal = best_value <= other
    plan, cost = _order_plan_or_heuristic(g, capacity, opts, best_order,
                                          SPILL_ORDER_PACK_TIME if optimal else BEAM_PACK_TIME, optimal)
    info["beam_order_plan"] = None if plan is None else cost - compulsory
    return _cheapest_valid(g, capacity, opts, [start_plan] + ([] if plan is None else [plan]))


def _beam_search(g: Graph, capacity: int, upper: int, budget: float | None, stop=None):
    """``(order, value, seconds)``: the best order of :func:`cosma_fast.bounds.address_free_beam`
    below ``upper`` non-compulsory bytes (None and ``upper`` when none), widths ``BEAM_WIDTHS``
    in turn, each only when four times the last one's time fits in ``budget`` seconds (without
    one, widths up to 1024), until ``stop`` is set."""
    from ..bounds import address_free_beam

    t0 = time.perf_counter()
    best_order, best_value, last = None, upper, 0.0
    for width in BEAM_WIDTHS:
        spent = time.perf_counter() - t0
        if (budget is None and width > 1024) or (budget is not None and spent + 4 * last > budget):
            break
        if stop is not None and stop.is_set():
            break
        t1 = time.perf_counter()
        order, value = address_free_beam(g, capacity, width=width, upper=best_value,
                                         time_limit=None if budget is None else budget - spent, stop=stop)
        last = time.perf_counter() - t1
        if order is not None and value < best_value:
            best_order, best_value = order, value
    return best_order, best_value, time.perf_counter() - t0


class _Background:
    """``fn(*args, stop=event, **kwargs)`` in a second thread, started at once, while the
    caller searches in this one (HiGHS and the kernels release the GIL, so on two cores
    neither waits); :meth:`close` sets the event and waits for ``fn`` to return, and
    :meth:`result` gives what it returned."""

    def __init__(self, fn, *args, **kwargs):
        from concurrent.futures import ThreadPoolExecutor

        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future = self.pool.submit(fn, *args, stop=self.stop, **kwargs)

    def result(self):
        return self.future.result()

    def close(self):
        self.stop.set()
        self.pool.shutdown(wait=True)


def _alongside_local_search(g: Graph, capacity: int, opts: SolveOptions, start_plan: Plan, start_cost: int,
                            time_limit: float, search):
    """``(search(), (plan, traffic))``: the order search ``search`` and, in a second thread for
    the same ``time_limit`` (:class:`_Background`), one climb of the heuristic's local search
    from the start's order (:func:`_local_search`), stopped when the order search is over (a
    proof, or its time is up as the climb's is): on two cores each gets the whole time
    instead of a share of it."""
    climb = _Background(_local_search, g, capacity, opts, start_plan, start_cost, time_limit, threads=1)
    try:
        res = search()
    finally:
        climb.close()
    return res, climb.result()


def _local_search(g: Graph, capacity: int, opts: SolveOptions, start_plan: Plan, start_cost: int,
                  time_limit: float, target: int | None = None, threads: int | None = None,
                  stop=None) -> tuple[Plan, int]:
    """(plan, traffic): the cheaper of the start and the heuristic's local search continued
    from its order for ``time_limit`` seconds, or until its traffic is ``target`` or less
    (:func:`cosma_fast.heuristic.local_search_plan`)."""
    from ..heuristic import local_search_plan

    plan = local_search_plan(g, capacity, start_plan.schedule, seed=opts.seed, time_limit=time_limit,
                             alignment=opts.alignment, target=target,
                             threads=opts.threads if threads is None else threads, stop=stop)
    return _cheapest_valid(g, capacity, opts, [start_plan, plan])


def _downset_search(g: Graph, capacity: int, upper: int, info: dict, time_limit: float | None,
                    address_free: bool = False, alignment: int = 1):
    """:func:`cosma_fast.bounds.least_spill_cover` (one write-back and one reload per spilled
    tensor, addresses ignored), or with ``address_free``
    :func:`cosma_fast.bounds.address_free_optimum` (a reload per off-chip segment: the
    relaxation's optimum itself), over every order by a search over down-sets that merges
    the orders reaching the same state, which the order search's branching on pairs cannot;
    ``info`` records it. layered50 at ``M_H``: a spill cover of 6820 bytes proven in 5 s,
    where the order search's bound was 4976 after 60 s and 5545 after 600 s; randwire20 at
    ``M_R``: the address-free optimum 14988 in 0.07 s, which the order search proved in 9 s.
    The address-free search holds more states (two sets each, more of them): where neither
    finishes, the spill cover's bound is often the higher (layered50 at ``M_R`` in 13 s: 13180
    against 9926), so from ``WINDOW_SEARCH_MIN_OPS`` operators it runs again after the order
    search when the address-free search did not finish (layered50 at ``M_R`` finishes now, at
    27200, with the dominance that catches up on spills). Expanding each state's children one
    cost at a time (partial expansion) stored 1.5-2.7x fewer states but took 2.5-3x longer
    (layered30/35 at ``M_R``, randwire34 at ``M_H``, before that dominance rule)."""
    search = address_free_optimum if address_free else least_spill_cover
    res = search(g, capacity, upper=upper, time_limit=time_limit, max_states=DOWNSET_MAX_STATES,
                 lean_states=DOWNSET_LEAN_STATES, alignment=alignment)
    info.update(spill_search=search.__name__, spill_search_bound=res.bound, spill_search_exact=res.exact,
                spill_search_states=res.states, spill_search_time=res.time)
    return res


def _chunked_bound(g: Graph, capacity: int, opts: SolveOptions, other: int, info: dict,
                   time_limit: float | None) -> tuple[int, np.ndarray | None]:
    """(bound, order) for graphs too large for the down-set search: the best
    :func:`cosma_fast.bounds.chunked_spill_cover` with ``address_free`` (the parts' least
    address-free traffic, shares summed), one pass per size in ``CHUNKED_PART_OPS`` while
    ``time_limit`` lasts, until a pass gives no more than ``other``, the bound known already
    (larger parts lose fewer tensors at their cuts but take longer; where the cuts fall
    matters as much, so every pass counts, and a pass stopped by the time or its states
    still gives a bound), each part storing ``DOWNSET_LEAN_STATES`` at most, the parts
    searched at once by :func:`cosma_fast.heuristic.climb_threads` threads; ``order`` is the
    best pass's (its parts' orders in turn, None when they do not make an order); ``info``
    records the passes. Passes of 30, 40, 50 and 62 operators: layered100 at ``M_H`` 13106,
    12125, 13365 and 15816 bytes in 0.7, 4.3, 4.1 and 5.2 s on one thread (12384, 12125,
    12615 and 15094 before its parts saw the tensors made or read outside them), where the
    other bounds give 3242; layered100 at ``M_R`` 57584, 58517 (a part stopped), 67862 and
    69852 (before that change) in 1.8, 13, 32 and 34 s on one thread (18 s for the last on
    two), against 26329; randwire: far below the other bounds, as most edges cross the cuts
    (randwire100 at ``M_R``: 6245 against 25833), so one pass only."""
    from ..heuristic import climb_threads

    t0 = time.perf_counter()
    best, sizes, order = 0, [], None
    for part_ops in CHUNKED_PART_OPS:
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            break
        res = chunked_spill_cover(g, capacity, part_ops=part_ops, address_free=True, time_limit=left,
                                  max_states=DOWNSET_LEAN_STATES, workers=climb_threads(opts.threads))
        sizes.append(part_ops)
        if res.bound > best:
            best, order = res.bound, res.schedule
        if res.bound <= other:
            break
    info.update(chunked_bound=best, chunked_part_ops=sizes, chunked_time=time.perf_counter() - t0)
    return best, order


def _chunked_order_plan(g: Graph, capacity: int, opts: SolveOptions, order: np.ndarray, start_plan: Plan,
                        start_cost: int, info: dict) -> tuple[Plan, int]:
    """(plan, traffic): the cheaper of the start and of the heuristic's plan of the chunked
    passes' ``order`` and the plan of its segment covers (:func:`cosma_fast.ilp.orders.order_plan`,
    ``CHUNKED_COVER_TIME`` seconds at most, a tenth of the time left); ``info`` records it.
    Used when the beam finds no order: its orders are cheaper (layered100 at ``M_R``: the
    covers of the 30-operator pass's order, 79120 bytes address-free, pack at 85624 bytes in
    3.3 s; the beam's order at 73582 in 2.3 s)."""
    plan, cost = _order_plan_or_heuristic(g, capacity, opts, order, CHUNKED_COVER_TIME)
    if plan is None:
        return start_plan, start_cost
    info["chunked_order_plan"] = cost - g.compulsory()
    return (plan, cost) if cost < start_cost else (start_plan, start_cost)


def _realise_spill_order(g: Graph, capacity: int, opts: SolveOptions, spill, start_plan: Plan, start_cost: int,
                         other: int) -> tuple[Plan, int]:
    """(best plan, its traffic) after :func:`_realise_order` of the down-set search's order when
    it may beat the best plan (its fixed-schedule model gets a tenth of the time left)."""
    compulsory = g.compulsory()
    if spill.schedule is None or spill.bound + compulsory >= start_cost or start_cost - compulsory <= other:
        return start_plan, start_cost
    rem = opts.remaining()
    plan, cost = _realise_order(g, capacity, opts, spill.schedule, spill.bound + compulsory,
                                time_cap=None if rem is None else 0.1 * rem)
    return (plan, cost) if cost < start_cost else (start_plan, start_cost)


def _local_search_instead_of_model(g: Graph, capacity: int, opts: SolveOptions, start_plan: Plan, start_cost: int,
                                   other: int, info: dict, reason: str | None = None) -> MethodOutput:
    """The output when a graph of ``MODEL_MAX_OPS`` operators or more, under a time limit, is
    not proven by the order search: the time the time-indexed model would get goes to the
    heuristic's local search from the best plan's order
    (:func:`cosma_fast.heuristic.local_search_plan`), and the bound is the order search's and
    :func:`_other_bounds`'. In 60 s on the layered and randwire graphs of 100 and 200
    operators the model never got past its root (status "unknown", or not built in its
    quarter of the time); with its time the local search made 4 of those 8 rows cheaper
    (randwire100 at ``M_H``: 21010 -> 19776 bytes), and HiGHS's root no longer overruns the
    time limit there. From ``WINDOW_SEARCH_MIN_OPS`` to ``SPILL_SEARCH_MAX_OPS`` operators it gets
    what the down-set search leaves (``reason`` says which). Its climbs take new seeds
    (``LAST_SEARCH_SEED`` added): continued from the earlier local search's best order with
    that search's seeds, 14 s left layered100 at ``M_H`` at 23848 bytes, new seeds found 21926."""
    from ..heuristic import local_search_plan

    compulsory = g.compulsory()
    rem = opts.remaining()
    if rem > 0.1:
        # new seeds: the earlier local search's, continued from its own best order, rarely moved
        plan = local_search_plan(g, capacity, start_plan.schedule, seed=opts.seed + LAST_SEARCH_SEED,
                                 time_limit=HIGHS_TIME_SHARE * rem,
                                 alignment=opts.alignment, threads=opts.threads)
        start_plan, start_cost = _cheapest_valid(g, capacity, opts, [start_plan, plan])
    nc = start_cost - compulsory
    if nc <= other:
        return _proven(g, start_plan, start_cost, other, info, "the local search's plan")
    info["local_search_non_compulsory"] = int(nc)
    return _feasible(g, start_plan, start_cost, other, info,
                     reason or f"{MODEL_MAX_OPS} operators or more under a time limit")


def _no_start() -> SolverError:
    return SolverError("no valid starting plan for the ILP (even the trivial plan failed); "
                       "this is a bug in cosma_fast, please report it with the graph")


def _large_graph(g: Graph, capacity: int, opts: SolveOptions, info: dict) -> MethodOutput:
    """The output beyond ``DENSE_MAX_OPS`` operators under a time limit: the start of
    :func:`_start_plan`, the bound of a fixed schedule's live bytes (else 0: the
    minimum-peak search's list schedules alone took 3 s on 10000 operators), and the rest
    of the time for :func:`_local_search_instead_of_model` (none with a fixed schedule)."""
    start_plan, start_cost = _start_plan(g, capacity, opts)
    if start_plan is None:
        raise _no_start()
    nc = info["start_non_compulsory"] = start_cost - g.compulsory()
    other = 0 if opts.schedule is None else max(0, int(schedule_lower_bound(g, opts.schedule, capacity)))
    if nc <= other:
        return _proven(g, start_plan, start_cost, other, info,
                       "the schedule's live bytes" if other else "a start without extra bytes")
    reason = f"more than {DENSE_MAX_OPS} operators under a time limit: no cover bound or order search"
    if opts.schedule is not None:
        return _feasible(g, start_plan, start_cost, other, info, reason)
    return _local_search_instead_of_model(g, capacity, opts, start_plan, start_cost, other, info, reason)


def _order_heuristic_plan(g: Graph, capacity: int, opts: SolveOptions, order, time_limit: float | None) -> Plan:
    """The heuristic's plan of the fixed ``order`` (its replacement settings on that order, no
    order moves) within ``time_limit`` seconds."""
    import dataclasses

    from ..heuristic import solve_heuristic

    fixed = dataclasses.replace(opts, schedule=np.asarray(order, dtype=np.int64), start_time=time.perf_counter(),
                                time_limit=time_limit, progress=None)
    return solve_heuristic(g, capacity, fixed).plan


def _order_plan_or_heuristic(g: Graph, capacity: int, opts: SolveOptions, order, cover_time: float,
                             optimal: bool = False):
    """(plan, traffic), or (None, None): the cheaper valid plan of ``order`` between the
    heuristic's (:func:`_order_heuristic_plan`) and its segment covers' packed
    (:func:`cosma_fast.ilp.orders.order_plan`, ``cover_time`` seconds at most and a tenth of
    the time left; skipped when none is left). ``optimal``: the order attains a proven bound
    without addresses, so its zero-slack cover, when it packs, is optimal: a fifth of the
    time left, and that packing may take half of it (layered100 at ``M_P``: 3.3 s)."""
    plans = [_order_heuristic_plan(g, capacity, opts, order, None)]
    left = opts.remaining()
    if left is None or left > 0:
        limit = cover_time if left is None else min(cover_time, (0.2 if optimal else 0.1) * left)
        cover = order_plan(g, capacity, order, alignment=opts.alignment, threads=opts.threads, time_limit=limit,
                           first_pack_time=limit if optimal else None)
        plans += [] if cover is None else [cover]
    return _cheapest_valid(g, capacity, opts, plans)


def _realise_order(g: Graph, capacity: int, opts: SolveOptions, order: np.ndarray, target: int,
                   time_cap: float | None = None) -> tuple[Plan, int]:
    """(plan, traffic): the cheapest valid plan found for ``order``, whose address-free least
    traffic is ``target``: the heuristic's plan of that order (fast, packs by construction),
    and when that misses ``target`` and time is left, :func:`_fixed_schedule_plan` (the
    order's segment cover, which attains it when its residency packs, else the
    fixed-schedule model started from the heuristic's plan; half the time left, at most
    ``time_cap`` seconds)."""
    rem = opts.remaining()
    heuristic = _order_heuristic_plan(g, capacity, opts, order, None if rem is None else 0.1 * rem)
    best, cost = _cheapest_valid(g, capacity, opts, [heuristic], any_schedule=True)
    rem = opts.remaining()
    if best is None or (cost > target and (rem is None or rem > 0.5)):
        limit = None if rem is None else 0.5 * rem if time_cap is None else min(0.5 * rem, time_cap)
        plan = _fixed_schedule_plan(g, capacity, opts, order, [heuristic], limit)
        c = validate(g, plan, capacity, opts.alignment).traffic
        if best is None or c < cost:
            best, cost = plan, c
    return best, cost


def _cover_schedule(g: Graph, capacity: int, opts: SolveOptions, start_plan: Plan, start_cost: int,
                    other: int, info: dict) -> tuple[Plan, int, int]:
    """(best plan, its traffic, proven lower bound) on the fixed schedule ``opts.schedule``:
    its segment cover is its least address-free traffic (a bound for every plan of the
    schedule), and its plan when the residency packs
    (:func:`cosma_fast.ilp.orders.order_plan_and_bound`, half the time left)."""
    rem = opts.remaining()
    plan, bound = order_plan_and_bound(g, capacity, opts.schedule, alignment=opts.alignment,
                                       time_limit=None if rem is None else 0.5 * rem, threads=opts.threads)
    info["order_lower_bound"] = int(bound)
    best, cost = _cheapest_valid(g, capacity, opts, [start_plan] + ([plan] if plan is not None else []))
    return best, cost, max(other, bound)


def _proven(g: Graph, plan: Plan, cost: int, lower: int, info: dict, prover: str) -> MethodOutput:
    """``plan`` as an optimal output: its non-compulsory bytes meet the ``lower`` bound that
    ``prover`` proved."""
    nc = cost - g.compulsory()
    info.update(packed=True, other_lower_bound=int(lower), ilp_status=f"skipped: {prover} proved the bound")
    return MethodOutput(plan=plan, lower_bound=int(nc), status="optimal", message="", info=info)


def _feasible(g: Graph, plan: Plan, cost: int, lower: int, info: dict, reason: str) -> MethodOutput:
    """``plan`` as a feasible output with the proven ``lower`` bound, returned before the model
    for ``reason``."""
    nc = cost - g.compulsory()
    info.update(other_lower_bound=int(lower), ilp_status=f"skipped: {reason}")
    return MethodOutput(plan=plan, lower_bound=int(lower), status="feasible", info=info,
                        message=f"best plan {nc} non-compulsory bytes, proven lower bound {lower}")


def _skip_when_start_meets_bound(g: Graph, capacity: int, opts: SolveOptions, start_plan: Plan,
                                 start_cost: int, other: int | None = None,
                                 min_peak: _MinPeak | None = None) -> tuple[int, MethodOutput | None]:
    """(proven bound of :func:`_other_bounds`, the start as an optimal output when its extra
    bytes already meet that bound, else None): nothing is left to search then, whatever the
    formulation. Opt out with ``skip_when_bound_met=False``. ``other``: that bound when
    known already."""
    nc = start_cost - g.compulsory()
    if other is None:  # a start without non-compulsory bytes meets the bound 0: no other bound is needed
        other = 0 if nc <= 0 else _other_bounds(g, capacity, opts, min_peak)
    if nc > other or not opts.extra.get("skip_when_bound_met", True):
        return other, None
    info = {"start_accepted": False, "start_non_compulsory": nc, "rounds": 0, "packed": True,
            "other_lower_bound": other, "ilp_status": "skipped: start meets the lower bound",
            "formulation": opts.formulation}
    return other, MethodOutput(plan=start_plan, lower_bound=int(nc), status="optimal", message="", info=info)


def _early_downset_proof(g: Graph, capacity: int, opts: SolveOptions, info: dict):
    """The decomposed formulation's ``quick`` proof for :func:`_start_and_bound`: up to
    ``EARLY_DOWNSET_MAX_OPS`` operators on a free schedule, the address-free down-set search
    (:func:`_downset_search`, ``EARLY_DOWNSET_TIME`` seconds at most), which settles such
    graphs in milliseconds; the start as an optimal output when the search proves it."""
    def quick(plan: Plan, cost: int, other: int) -> MethodOutput | None:
        if g.n_ops > EARLY_DOWNSET_MAX_OPS or opts.schedule is not None or not opts.extra.get("order_search", True):
            return None
        nc = cost - g.compulsory()
        rem = opts.remaining()
        res = _downset_search(g, capacity, nc, info, EARLY_DOWNSET_TIME if rem is None
                              else min(EARLY_DOWNSET_TIME, 0.1 * rem), address_free=True, alignment=opts.alignment)
        if not (res.exact and res.bound >= nc):
            return None
        info["start_non_compulsory"] = nc
        return _proven(g, plan, cost, max(other, res.bound), info, "the down-set search")
    return quick


def _other_bounds(g: Graph, capacity: int, opts: SolveOptions, min_peak: _MinPeak | None = None) -> int:
    """Proven bounds without the model: the larger of :mod:`cosma_fast.schedule`'s (peak live
    minus capacity, the peak from ``min_peak`` when given) and
    :func:`cosma_fast.bounds.spill_cover_bound`, 0 if missing."""
    rem = opts.remaining()
    # taken before the cover bound spends any; half of a short limit at most, the start's plan
    # and phase one need the rest (randwire300 at M_P, time_limit=1: 1.74 s with all of it)
    peak_time = 1.0 if rem is None else min(1.0, 0.5 * rem)
    cover = spill_cover_bound(g, capacity, opts.schedule, time_limit=1.0 if rem is None else min(1.0, 0.1 * rem),
                              threads=opts.threads, alignment=opts.alignment)
    try:
        if opts.schedule is not None:
            return max(cover, int(schedule_lower_bound(g, opts.schedule, capacity)))
        return max(cover, int((min_peak or _MinPeak(g))(peak_time)[2]) - int(capacity))
    except CosmaError:
        return cover


def _with_valid_cuts(model: ReplacementModel, lower: int, opts: SolveOptions) -> ReplacementModel:
    """``model`` (either formulation) with the valid rows both formulations share: on a free
    schedule the forced-spill cover rows (:func:`cosma_fast.ilp.cuts.spill_cover_rows`; in
    phase one's short fixed-schedule solves they made the starts worse), then the objective
    cut, below.
    """
    if opts.schedule is None:
        model = _append_rows(model, *spill_cover_rows(model))
    return _with_objective_cut(model, lower, opts)


def _with_objective_cut(model: ReplacementModel, lower: int, opts: SolveOptions) -> ReplacementModel:
    """``model`` with the valid row cost >= ``lower`` (compulsory + the proven bound), which
    lifts the root bound where the LP sits at the compulsory bytes. Measured with the
    use-to-use rows (threads=1): 22 runs of 10-17 ops, 14 faster, 6 slower, total -17%
    (randwire16 at M_H 8.2 -> 4.3 s); with the older rows it had slowed HiGHS ~6x, hence
    the opt-out ``objective_cut=False``."""
    if lower <= model.graph.compulsory() or not opts.extra.get("objective_cut", True):
        return model
    nz = np.flatnonzero(model.cost)
    return _append_row(model, nz, model.cost[nz], float(lower))


def _append_row(model: ReplacementModel, cols, vals, lower) -> ReplacementModel:
    import scipy.sparse as sp
    row = sp.csr_matrix((vals, (np.zeros(len(cols), dtype=np.int64), cols)), shape=(1, model.n_cols))
    return _append_rows(model, row, np.array([float(lower)]))


def _append_rows(model: ReplacementModel, rows, lower: np.ndarray) -> ReplacementModel:
    """``model`` with the rows ``rows @ v >= lower`` added."""
    import scipy.sparse as sp
    if rows.shape[0]:
        model.A = sp.vstack([model.A, rows], format="csr")
        model.row_lower = np.append(model.row_lower, lower)
        model.row_upper = np.append(model.row_upper, np.full(len(lower), np.inf))
    return model


def min_peak_ilp(graph: Graph, time_limit: float | None = None, threads: int | None = None,
                 schedule=None) -> tuple[np.ndarray, int, bool]:
    """The schedule of least peak live bytes, as ``(order, peak, exact)``.

    Live bytes at a step: tensors created or loaded and still read at that step or later
    (every operand of the running operator included). ``exact`` is True when HiGHS proved
    optimality within ``time_limit``; otherwise ``peak`` is the best found (an upper bound)
    and the order is that schedule (model order when nothing was found).
    """
    g = graph
    model = build_model(g, 0, schedule, min_peak=True)
    res = run_highs(model, time_limit=time_limit, threads=threads)
    if res["x"] is None:
        order = np.arange(g.n_ops) if schedule is None else np.asarray(schedule, dtype=np.int64)
        return order, _peak_of(g, order), False
    order, _, _ = decode_residency(model, res["x"])
    return order, _peak_of(g, order), res["status"] == "optimal"


def _fits_padded(g: Graph, order, capacity: int, alignment: int) -> bool:
    """Whether the tensors live at each step of ``order``, padded as the aligned capacity rows
    count them (:func:`cosma_fast.budgets.aligned_capacity_rows`), fit: otherwise every plan
    of ``order`` at addresses that are multiples of ``alignment`` spills (randwire8 at its
    ``M_P``, alignment 16: the local search from that order sought a plan without spills for
    1.8 s of 2.1)."""
    if alignment <= 1:
        return True
    room, held = aligned_capacity_rows(g.tensor_size, capacity, alignment)
    prof = live_profile(g, order, size=held)
    return not len(prof) or int(prof.max()) <= room


def _peak_of(g: Graph, order) -> int:
    """Peak live bytes of ``order`` (inputs from first use, everything until last use)."""
    n = g.n_ops
    pos = np.empty(n, dtype=np.int64)
    pos[np.asarray(order, dtype=np.int64)] = np.arange(n)
    live = np.zeros(n + 1, dtype=np.int64)
    for t in range(g.n_tensors):
        c = g.consumers_of(t)
        p = g.tensor_producer[t]
        if p < 0 and not len(c):
            continue
        a = pos[p] if p >= 0 else pos[c].min()
        b = max(pos[c].max() if len(c) else a, a)
        live[a] += g.tensor_size[t]
        live[b + 1] -= g.tensor_size[t]
    return int(np.cumsum(live)[:n].max()) if n else 0
