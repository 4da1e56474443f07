"""COSMA's comparison points: greedy arena allocation with size-blind Belady eviction.

These are the baselines of COSMA's evaluation (Li, Gupta, Malik, arXiv 2311.18246,
section 6): what a user gets from a standard framework allocator when the
activations do not fit on chip.

``baseline``
    The graph's own operator order (what PyTorch/TFLite execute), TFLite-style
    greedy arena placement (the tightest free hole that fits, at its lowest
    address, as ``SimpleMemoryArena`` does), and size-blind Belady replacement:
    evict the resident tensor whose next use is farthest until the request fits
    contiguously. Dead tensors are freed as soon as they die, dirty tensors are
    written back before eviction, graph outputs are written back once produced.
``baseline-mpmf``
    The same with a memory-aware, min-peak-first order (the greedy min-peak
    list schedule of :mod:`cosma_fast.kernels.schedule`).

Both are single deterministic passes of :func:`cosma_fast.kernels.replace.plan_pass`
in its ``BELADY`` mode; the heuristic planner uses the same kernel with a
size- and write-back-aware rule.
"""

from __future__ import annotations

import numpy as np

from .graph import Graph
from .heuristic import rule_schedule, run_pass
from .kernels.replace import BELADY
from .kernels.schedule import MIN_PEAK
from .plan import Plan
from .solve import MethodOutput, SolveOptions

__all__ = ["baseline_plan", "solve_baseline", "solve_baseline_mpmf"]


def baseline_plan(graph: Graph, capacity: int, order=None, *, alignment: int = 1) -> Plan:
    """The Belady + greedy-arena plan of ``order`` (default: model order)."""
    order = np.arange(graph.n_ops, dtype=np.int64) if order is None else np.asarray(order, np.int64)
    _, _, plan = run_pass(graph, capacity, order, mode=BELADY, beta=0.0, alignment=alignment)
    return plan


def solve_baseline(graph: Graph, capacity: int, opts: SolveOptions) -> MethodOutput:
    """``method="baseline"``: model order (or ``opts.schedule``), arena, Belady."""
    plan = baseline_plan(graph, capacity, opts.schedule, alignment=opts.alignment)
    return MethodOutput(plan=plan, message="baseline: model order, greedy arena, Belady")


def solve_baseline_mpmf(graph: Graph, capacity: int, opts: SolveOptions) -> MethodOutput:
    """``method="baseline-mpmf"``: min-peak-first order (or ``opts.schedule``), arena, Belady."""
    order = opts.schedule if opts.schedule is not None else rule_schedule(graph, MIN_PEAK)
    plan = baseline_plan(graph, capacity, order, alignment=opts.alignment)
    return MethodOutput(plan=plan, message="baseline-mpmf: min-peak order, greedy arena, Belady")
