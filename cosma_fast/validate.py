"""The independent plan checker (DESIGN.md section 1).

:func:`validate` is the judge of every plan the project produces. It is plain
Python that replays a plan event by event and shares no code with the kernels, so
that a bug in a kernel cannot hide itself. It raises :class:`~cosma_fast.PlanError`
naming the step, the tensor and the broken rule.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from .errors import OptionError, PlanError
from .graph import INTERMEDIATE, Graph
from .plan import Plan

__all__ = ["validate", "PlanReport"]


@dataclass(frozen=True)
class PlanReport:
    """What a valid plan costs.

    ``traffic`` = loaded + stored bytes; ``compulsory`` = the floor of section 1;
    ``non_compulsory`` = ``traffic - compulsory``; ``peak_bytes`` = most bytes ever
    resident at once; ``occupancy[i]`` = bytes resident while step ``i`` runs.
    """

    traffic: int
    compulsory: int
    non_compulsory: int
    load_bytes: int
    store_bytes: int
    peak_bytes: int
    occupancy: np.ndarray
    capacity: int


class _Scratchpad:
    """Resident tensors as sorted, disjoint address ranges."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.starts: list[int] = []   # sorted start addresses
        self.ranges: list[tuple[int, int, int]] = []  # (start, end, tensor) sorted by start
        self.addr: dict[int, int] = {}
        self.bytes = 0

    def conflict(self, start: int, end: int) -> int | None:
        """The resident tensor overlapping ``[start, end)``, or None."""
        k = bisect.bisect_left(self.starts, start)
        for j in (k - 1, k):
            if 0 <= j < len(self.ranges):
                s, e, t = self.ranges[j]
                if s < end and start < e:
                    return t
        return None

    def add(self, t: int, start: int, end: int) -> None:
        k = bisect.bisect_left(self.starts, start)
        self.starts.insert(k, start)
        self.ranges.insert(k, (start, end, t))
        self.addr[t] = start
        self.bytes += end - start

    def remove(self, t: int) -> None:
        start = self.addr.pop(t)
        k = bisect.bisect_left(self.starts, start)
        s, e, _ = self.ranges[k]
        del self.starts[k]
        del self.ranges[k]
        self.bytes -= e - s


def validate(graph: Graph, plan: Plan, capacity: int, alignment: int = 1, *,
             include_weights: bool = True) -> PlanReport:
    """Check ``plan`` against every rule of DESIGN.md section 1 and return its cost.

    Parameters
    ----------
    graph : Graph
    plan : Plan
        Indices refer to ``graph`` (to ``graph.activation_only()`` when
        ``include_weights`` is false).
    capacity : int
        Scratchpad bytes ``C``; every resident range lies in ``[0, C)``.
    alignment : int
        Every address must be a multiple of it.

    Returns
    -------
    PlanReport

    Raises
    ------
    PlanError
        With ``step``, ``tensor`` and ``rule`` attributes: the first broken rule.
    """
    if int(capacity) != capacity or capacity <= 0:
        raise OptionError(f"capacity must be a positive integer number of bytes, got {capacity!r}")
    if int(alignment) != alignment or alignment < 1:
        raise OptionError(f"alignment must be a positive integer, got {alignment!r}")
    capacity, alignment = int(capacity), int(alignment)
    g = graph.with_weights(include_weights)
    size, kind = g.tensor_size, g.tensor_kind
    tname, oname = g.tensor_names, g.op_names
    n = g.n_ops

    def fail(rule: str, msg: str, step: int | None, t: int | None = None):
        where = f"step {step}" if step is not None and step < n else "final stores"
        if step is None:
            where = "plan"
        raise PlanError(f"{where}: {msg} [rule: {rule}]", step=step,
                        tensor=None if t is None else tname[t], rule=rule)

    if len(plan.steps) != n:
        fail("schedule-complete", f"the plan has {len(plan.steps)} steps but the graph has {n} operators; "
             "schedule every operator exactly once", None)
    position = [-1] * n
    for i, st in enumerate(plan.steps):
        o = st.op
        if not (isinstance(o, (int, np.integer)) and 0 <= o < n):
            fail("schedule-complete", f"operator index {o!r} does not exist", i)
        if position[o] != -1:
            fail("schedule-complete", f"operator {oname[o]!r} runs twice (steps {position[o]} and {i})", i)
        position[o] = i
    # last step at which each tensor is read (-1 when never)
    last_use = [-1] * g.n_tensors
    for t in range(g.n_tensors):
        for o in g.consumers_of(t):
            last_use[t] = max(last_use[t], position[o])

    pad = _Scratchpad(capacity)
    offchip = [bool(kind[t] != INTERMEDIATE) for t in range(g.n_tensors)]
    stored = [False] * g.n_tensors
    load_bytes = store_bytes = 0
    peak = 0
    occupancy = np.zeros(n, dtype=np.int64)

    def check_tensor(t, i):
        if not (isinstance(t, (int, np.integer)) and 0 <= t < g.n_tensors):
            fail("unknown-tensor", f"tensor index {t!r} does not exist", i)

    def place(t, a, i, what):
        if not isinstance(a, (int, np.integer)):
            fail("address", f"{what} of {tname[t]!r} has a non-integer address {a!r}", i, t)
        if a % alignment:
            fail("alignment", f"{what} of {tname[t]!r} at {a} is not a multiple of the alignment {alignment}", i, t)
        end = a + int(size[t])
        if a < 0 or end > capacity:
            fail("out-of-range", f"{what} of {tname[t]!r} at [{a}, {end}) is outside the scratchpad "
                 f"[0, {capacity})", i, t)
        other = pad.conflict(a, end)
        if other is not None:
            oa = pad.addr[other]
            fail("overlap", f"{what} of {tname[t]!r} at [{a}, {end}) overlaps resident tensor "
                 f"{tname[other]!r} at [{oa}, {oa + int(size[other])})", i, t)
        pad.add(t, a, end)

    def store(t, i):
        nonlocal store_bytes
        check_tensor(t, i)
        if kind[t] != INTERMEDIATE:
            fail("store-kind", f"store of {tname[t]!r}: only intermediates are stored "
                 "(inputs and weights already live off-chip)", i, t)
        if stored[t]:
            fail("double-store", f"{tname[t]!r} is stored a second time; it already has an off-chip copy", i, t)
        if t not in pad.addr:
            fail("store-not-resident", f"store of {tname[t]!r}, which is not resident", i, t)
        stored[t] = offchip[t] = True
        store_bytes += int(size[t])

    for i, st in enumerate(plan.steps):
        o = st.op
        for t in st.stores:
            store(t, i)
        for t in st.evicts:
            check_tensor(t, i)
            if t not in pad.addr:
                fail("evict-not-resident", f"evict of {tname[t]!r}, which is not resident", i, t)
            needed = last_use[t] >= i
            owed = bool(g.tensor_is_output[t]) and not offchip[t]
            if not offchip[t] and (needed or owed):
                why = f"is read again at step {last_use[t]}" if needed else "is a graph output not yet stored"
                fail("evict-live", f"evict of {tname[t]!r}, which {why} and has no off-chip copy "
                     "(store it first)", i, t)
            pad.remove(t)
        for t, a in st.loads:
            check_tensor(t, i)
            if t in pad.addr:
                fail("load-resident", f"load of {tname[t]!r}, which is already resident", i, t)
            if not offchip[t]:
                fail("load-no-copy", f"load of {tname[t]!r}, which has no off-chip copy "
                     "(an intermediate must be stored before it can be loaded)", i, t)
            place(t, a, i, "load")
            load_bytes += int(size[t])
        for t in g.inputs_of(o):
            if t not in pad.addr:
                p = g.tensor_producer[t]
                if p >= 0 and position[p] > i:
                    fail("dependency", f"operator {oname[o]!r} reads {tname[t]!r}, whose producer "
                         f"{oname[p]!r} runs later (step {position[p]})", i, t)
                fail("input-not-resident", f"operator {oname[o]!r} reads {tname[t]!r}, which is not resident "
                     "(load it in this step)", i, t)
        outs = [int(t) for t in g.outputs_of(o)]
        for t, _ in st.allocs:
            check_tensor(t, i)
        given = [t for t, _ in st.allocs]
        if sorted(given) != sorted(outs):
            missing = set(outs) - set(given)
            extra = [t for t in given if t not in outs] or [t for t in given if given.count(t) > 1]
            if missing:
                t = min(missing)
                fail("alloc-outputs", f"operator {oname[o]!r} creates {tname[t]!r} but the step gives it "
                     "no address (alloc every output once)", i, t)
            t = extra[0]
            fail("alloc-outputs", f"step allocates {tname[t]!r}, which is not an output of "
                 f"{oname[o]!r} or is given twice", i, t)
        for t, a in st.allocs:
            place(t, a, i, "alloc")
        occupancy[i] = pad.bytes
        peak = max(peak, pad.bytes)
    for t in plan.final_stores:
        store(t, n)
    for t in range(g.n_tensors):
        if g.tensor_is_output[t] and not offchip[t]:
            fail("output-not-stored", f"graph output {tname[t]!r} never reaches off-chip memory "
                 "(store it while it is resident, or in final_stores)", n, t)
    compulsory = g.compulsory()
    traffic = load_bytes + store_bytes
    return PlanReport(traffic=traffic, compulsory=compulsory, non_compulsory=traffic - compulsory,
                      load_bytes=load_bytes, store_bytes=store_bytes, peak_bytes=peak,
                      occupancy=occupancy, capacity=capacity)
