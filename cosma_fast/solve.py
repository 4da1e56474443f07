"""The solver facade: one entry point, one result object for every method.

``cf.solve(graph, capacity, method=...)`` dispatches to a method, then checks the
plan it returns with the independent :func:`cosma_fast.validate` before handing
it to the user, so no method can return an unchecked plan. Options mean the same
thing for every method (``time_limit``, ``mip_gap``, ``threads``, ``seed``,
``schedule``); a method that does not use one ignores it.

A method is a function ``(graph, capacity, options) -> MethodOutput`` registered
in :data:`METHODS` as ``"module:function"`` and imported on first use.
"""

from __future__ import annotations

import importlib
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import CosmaError, OptionError, SolverError
from .graph import Graph
from .plan import Plan
from .validate import PlanReport, validate

__all__ = ["solve", "Result", "SolveOptions", "MethodOutput", "METHODS"]

#: method name -> "module:function" (relative to the cosma_fast package)
METHODS: dict[str, str] = {
    "heuristic": "heuristic:solve_heuristic",
    "baseline": "baselines:solve_baseline",
    "baseline-mpmf": "baselines:solve_baseline_mpmf",
    "ilp": "ilp:solve_ilp",
    "dnc": "dnc:solve_dnc",
    "auto": "dnc:solve_auto",
}

# keyword options each method reads from ``**extra`` (``auto`` hands them to every method it runs)
_ILP_OPTIONS = {"order_search", "warm_start", "skip_when_bound_met", "objective_cut"}
_DNC_OPTIONS = {"start_plan", "start_time_share", "workers", "max_rounds", "window_nodes", "window_time_limit"}
METHOD_OPTIONS: dict[str, set[str]] = {
    "heuristic": {"ls_iters"}, "baseline": set(), "baseline-mpmf": set(), "ilp": _ILP_OPTIONS,
    "dnc": _DNC_OPTIONS | {"ls_iters"}, "auto": _ILP_OPTIONS | _DNC_OPTIONS | {"ls_iters"},
}


@dataclass
class SolveOptions:
    """Options shared by every method (see :func:`solve` for their meaning)."""

    seed: int = 0
    time_limit: float | None = None
    mip_gap: float = 0.0
    threads: int | None = None
    schedule: np.ndarray | None = None
    alignment: int = 1
    formulation: str = "decomposed"
    segment_ops: int | None = None
    executor: Executor | None = None
    progress: Callable[[dict], None] | None = None
    verbose: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    start_time: float = field(default_factory=time.perf_counter)

    def remaining(self) -> float | None:
        """Seconds left of ``time_limit`` (None when unlimited)."""
        if self.time_limit is None:
            return None
        return max(0.0, self.time_limit - (time.perf_counter() - self.start_time))


@dataclass
class MethodOutput:
    """What a method hands back to the facade.

    ``lower_bound`` is a proven lower bound on non-compulsory bytes (0 when the
    method proves nothing); ``status`` is "optimal" only when the method proved it.
    """

    plan: Plan
    lower_bound: int = 0
    status: str = "feasible"
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """The outcome of :func:`solve`, the same for every method.

    Attributes
    ----------
    plan : Plan
        A plan that passed :func:`cosma_fast.validate`; its indices refer to ``graph``.
    graph : Graph
        The graph the plan indexes (``activation_only()`` when weights are excluded).
    status : str
        ``"optimal"`` (proven: ``lower_bound == non_compulsory``) or ``"feasible"``.
    message : str
    traffic, compulsory, non_compulsory : int
        Bytes, as in DESIGN.md section 1.
    lower_bound : int
        Proven lower bound on ``non_compulsory`` bytes.
    gap : float
        ``(non_compulsory - lower_bound) / non_compulsory`` (0 when both are 0).
    method : str
    solve_time : float
        Wall seconds inside :func:`solve`, validation included.
    report : PlanReport
    info : dict
        Method-specific facts (e.g. whether a warm start was accepted).
    """

    plan: Plan
    graph: Graph
    capacity: int
    status: str
    message: str
    traffic: int
    compulsory: int
    non_compulsory: int
    lower_bound: int
    gap: float
    method: str
    solve_time: float
    report: PlanReport
    info: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Result(method={self.method!r}, status={self.status!r}, non_compulsory={self.non_compulsory}, "
                f"lower_bound={self.lower_bound}, gap={self.gap:.4f}, traffic={self.traffic}, "
                f"solve_time={self.solve_time:.3f}s)")


def _method_function(name: str) -> Callable[[Graph, int, SolveOptions], MethodOutput]:
    if name not in METHODS:
        raise OptionError(f"unknown method {name!r}; choose one of {', '.join(sorted(METHODS))}")
    mod, fn = METHODS[name].split(":")
    try:
        module = importlib.import_module(f"{__package__}.{mod}")
    except ModuleNotFoundError as e:
        raise OptionError(f"method {name!r} is not available in this build ({e})") from None
    return getattr(module, fn)


def finish(graph: Graph, capacity: int, out: MethodOutput, method: str, t0: float,
           alignment: int = 1) -> Result:
    """Validate a method's plan and wrap it in a :class:`Result` (used by methods too)."""
    try:
        report = validate(graph, out.plan, capacity, alignment)
    except CosmaError as e:
        raise SolverError(f"method {method!r} produced an invalid plan ({e}); this is a bug in "
                          "cosma_fast, please report it with the graph") from e
    lb = int(min(max(out.lower_bound, 0), report.non_compulsory))
    status = out.status
    if lb >= report.non_compulsory:
        status = "optimal"
    elif status == "optimal":
        status = "feasible"
    gap = 0.0 if report.non_compulsory == 0 else (report.non_compulsory - lb) / report.non_compulsory
    return Result(plan=out.plan, graph=graph, capacity=int(capacity), status=status, message=out.message,
                  traffic=report.traffic, compulsory=report.compulsory, non_compulsory=report.non_compulsory,
                  lower_bound=lb, gap=gap, method=method, solve_time=time.perf_counter() - t0,
                  report=report, info=dict(out.info))


#: share of ``time_limit`` that resolving a budget name (``"M_H"``, ``"M_P"``) may take
BUDGET_NAME_SHARE = 0.5


def solve(graph: Graph, capacity, method: str = "heuristic", *, seed: int = 0,
          time_limit: float | None = None, mip_gap: float = 0.0, threads: int | None = None,
          schedule=None, alignment: int = 1, include_weights: bool = True,
          formulation: str = "decomposed", segment_ops: int | None = None,
          executor: Executor | None = None, progress: Callable[[dict], None] | None = None,
          verbose: bool = False, **extra) -> Result:
    """Plan ``graph`` on a scratchpad of ``capacity`` bytes, minimising off-chip traffic.

    Parameters
    ----------
    graph : Graph
    capacity : int or str
        Bytes, a size such as ``"512KiB"``/``"2MiB"``, or a budget ``"M_R"``, ``"M_H"``, ``"M_P"``.
        ``"M_H"`` and ``"M_P"`` run :func:`cosma_fast.budgets` first, within ``time_limit``:
        with half of it at most (and at most its own default, 10 s); a search cut short may
        give a larger ``M_P``. ``Result.capacity`` holds the bytes used; pass
        ``cf.budgets(graph).m_h`` to solve at the default budget under any limit.
    method : str
        ``"heuristic"`` (fast kernels), ``"ilp"`` (exact HiGHS model), ``"dnc"``
        (divide and conquer), ``"auto"`` (picks by size and ``time_limit``),
        ``"baseline"`` / ``"baseline-mpmf"`` (COSMA's comparison points).
    seed : int
        Results are deterministic for a given seed.
    time_limit : float, optional
        Wall seconds; on expiry the best valid plan found is returned with its bound.
    mip_gap : float
        Relative gap at which exact methods stop (0 = prove optimality).
    threads : int, optional
        Solver threads: HiGHS's, and in ``method="ilp"`` the local searches run at once on
        graphs it cannot prove; None lets each choose (HiGHS its default, one local search
        per core).
    schedule : sequence of operator indices or names, optional
        Fix the operator order (COSMA's fixed-schedule mode).
    alignment : int
        Every address is a multiple of it.
    include_weights : bool
        False is COSMA's activation-only setting: weights are ignored (DESIGN.md section 1).
    formulation : str
        ILP formulation: ``"decomposed"`` (default) or ``"cosma"`` (the paper's full address model).
    segment_ops : int, optional
        Operators per window for ``"dnc"`` (each window is one exact sub-problem).
    executor : concurrent.futures.Executor, optional
        Where ``"dnc"`` runs its window sub-problems (default: a local process pool).
    progress : callable, optional
        Called with ``{"incumbent", "bound", "gap", "time"}`` as a long solve improves.
    **extra
        Method options. ``"ilp"``: ``order_search=False`` (no branch and bound over orders,
        or with ``schedule`` no segment cover of it, before the HiGHS model),
        ``warm_start=False``, ``skip_when_bound_met=False`` (run the solvers even when the
        start meets a proven bound), ``objective_cut=False``.

    Returns
    -------
    Result
        Its plan has passed :func:`cosma_fast.validate`.

    Raises
    ------
    InfeasibleError
        ``capacity`` is below ``M_R``, or with ``alignment`` below an operator's operands at
        aligned addresses (:func:`cosma_fast.budgets.aligned_footprint`); the message names
        the operator that does not fit and the least capacity that works.
    GraphError, OptionError
        Bad graph or options.
    """
    from .budgets import BUDGETS_TIME_LIMIT, check_capacity, parse_capacity

    t0 = time.perf_counter()
    if not isinstance(graph, Graph):
        raise OptionError(f"solve() takes a cosma_fast.Graph, got {type(graph).__name__}")
    g = graph.with_weights(include_weights)
    if time_limit is not None and not time_limit > 0:
        raise OptionError(f"time_limit must be positive seconds or None, got {time_limit!r}")
    # a budget name's minimum-peak search counts against time_limit: half of it at most
    cap = parse_capacity(g, capacity, time_limit=BUDGETS_TIME_LIMIT if time_limit is None
                         else min(BUDGETS_TIME_LIMIT, BUDGET_NAME_SHARE * time_limit))
    if alignment < 1 or int(alignment) != alignment:
        raise OptionError(f"alignment must be a positive integer, got {alignment!r}")
    if not 0 <= mip_gap < 1:
        raise OptionError(f"mip_gap must be in [0, 1), got {mip_gap!r}")
    check_threads(threads)
    check_capacity(g, cap, alignment)
    sched = None
    if schedule is not None:
        sched = _resolve_schedule(g, schedule)
    fn = _method_function(method)
    unknown = sorted(k for k in extra if not k.startswith("_") and k not in METHOD_OPTIONS[method])
    if unknown:
        known = ", ".join(sorted(METHOD_OPTIONS[method])) or "none"
        raise OptionError(f"unknown option {unknown[0]!r} for method {method!r}; its options: {known}")
    opts = SolveOptions(seed=int(seed), time_limit=time_limit, mip_gap=float(mip_gap), threads=threads,
                        schedule=sched, alignment=int(alignment), formulation=formulation,
                        segment_ops=segment_ops, executor=executor, progress=progress,
                        verbose=verbose, extra=extra, start_time=t0)
    out = fn(g, cap, opts)
    if isinstance(out, Result):  # composite methods (auto/dnc) may finish themselves
        return out
    return finish(g, cap, out, method, t0, alignment)


def check_threads(threads) -> None:
    """Raise :class:`OptionError` unless ``threads`` is a positive integer or None: the one
    check of the option, for the facade and the functions that take it directly."""
    if threads is not None and not (isinstance(threads, (int, np.integer)) and threads >= 1):
        raise OptionError(f"threads must be a positive integer or None (each solver's default), got {threads!r}")


def _resolve_schedule(g: Graph, schedule) -> np.ndarray:
    """Operator indices from indices or names; checks it is a topological order."""
    idx = []
    for s in schedule:
        if isinstance(s, str):
            if s not in g.op_index:
                raise OptionError(f"schedule names operator {s!r}, which the graph does not have")
            idx.append(g.op_index[s])
        else:
            idx.append(int(s))
    if sorted(idx) != list(range(g.n_ops)):
        raise OptionError(f"schedule must list each of the {g.n_ops} operators exactly once")
    pos = np.empty(g.n_ops, dtype=np.int64)
    pos[np.array(idx, dtype=np.int64)] = np.arange(g.n_ops)
    for o in range(g.n_ops):
        for t in g.inputs_of(o):
            p = g.tensor_producer[t]
            if p >= 0 and pos[p] > pos[o]:
                raise OptionError(f"schedule runs {g.op_names[o]!r} before {g.op_names[p]!r}, "
                                  f"which produces its input {g.tensor_names[t]!r}")
    return np.array(idx, dtype=np.int64)
