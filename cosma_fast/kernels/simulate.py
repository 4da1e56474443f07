"""Replay a plan in array form: a fast checker for solvers' inner loops.

:func:`simulate` applies the rules of DESIGN.md section 1 to a plan encoded by
:meth:`cosma_fast.Plan.to_arrays` and returns its traffic and peak. It mirrors
:func:`cosma_fast.validate` check by check (same order, same rule names in
:data:`RULES`), but shares no code with it: ``validate`` stays the independent
judge, this kernel is the cheap one to call thousands of times.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

__all__ = ["simulate", "simulate_plan", "SimulationResult", "RULES", "warmup"]

#: error_code -> rule name used by :class:`cosma_fast.PlanError` (code 0 = valid)
RULES = ("", "schedule-complete", "unknown-tensor", "store-kind", "double-store",
         "store-not-resident", "evict-not-resident", "evict-live", "load-resident",
         "load-no-copy", "alignment", "out-of-range", "overlap", "dependency",
         "input-not-resident", "alloc-outputs", "output-not-stored")
(OK, E_SCHEDULE, E_UNKNOWN, E_STORE_KIND, E_DOUBLE_STORE, E_STORE_NOT_RES, E_EVICT_NOT_RES,
 E_EVICT_LIVE, E_LOAD_RES, E_LOAD_NO_COPY, E_ALIGN, E_RANGE, E_OVERLAP, E_DEPENDENCY,
 E_INPUT_NOT_RES, E_ALLOC, E_OUTPUT_NOT_STORED) = range(len(RULES))

_STORE, _EVICT, _LOAD, _ALLOC = 0, 1, 2, 3
_INTERMEDIATE = 2


class SimulationResult(NamedTuple):
    """``error_code`` 0 when the plan is valid, else an index into :data:`RULES`;
    ``step``/``tensor`` locate the first broken rule (-1 when not applicable;
    ``step == n_ops`` means the final stores); ``traffic`` and ``peak_bytes`` are
    meaningful only for valid plans."""

    error_code: int
    step: int
    tensor: int
    traffic: int
    peak_bytes: int

    @property
    def valid(self) -> bool:
        return self.error_code == 0

    @property
    def rule(self) -> str:
        return RULES[self.error_code]


@njit(cache=True)
def _admit(t, a, size, capacity, alignment, res_list, n_res, addr, resident, res_pos):
    """Put ``t`` at ``a`` beside the ``n_res`` resident tensors; returns the error code.

    On ``OK`` the tensor is recorded as resident (slot ``n_res`` of ``res_list``); the
    caller then counts it with ``n_res += 1``.
    """
    if a % alignment != 0:
        return E_ALIGN
    end = a + size[t]
    if a < 0 or end > capacity:
        return E_RANGE
    for k in range(n_res):
        u = res_list[k]
        if addr[u] < end and a < addr[u] + size[u]:
            return E_OVERLAP
    resident[t] = True
    addr[t] = a
    res_list[n_res] = t
    res_pos[t] = n_res
    return OK


@njit(cache=True)
def simulate(step_op, ev_ptr, ev_kind, ev_tensor, ev_addr, tensor_size, tensor_kind, tensor_is_output,
             op_in_ptr, op_in_idx, op_out_ptr, op_out_idx, cons_ptr, cons_idx, capacity, alignment):
    """Replay a plan; returns ``(error_code, error_step, error_tensor, traffic, peak_bytes)``.

    ``error_code`` indexes :data:`RULES` (0 = valid). Checks are made in the order
    of :func:`cosma_fast.validate`, so both report the same first broken rule.
    """
    n_ops = op_in_ptr.shape[0] - 1
    nt = tensor_size.shape[0]
    n = step_op.shape[0]
    if n != n_ops:
        return E_SCHEDULE, -1, -1, 0, 0
    position = np.full(n_ops, -1, np.int64)
    for i in range(n):
        o = step_op[i]
        if o < 0 or o >= n_ops or position[o] != -1:
            return E_SCHEDULE, i, -1, 0, 0
        position[o] = i
    last_use = np.full(nt, -1, np.int64)
    for t in range(nt):
        for k in range(cons_ptr[t], cons_ptr[t + 1]):
            p = position[cons_idx[k]]
            if p > last_use[t]:
                last_use[t] = p
    producer = np.full(nt, -1, np.int64)
    for o in range(n_ops):
        for k in range(op_out_ptr[o], op_out_ptr[o + 1]):
            producer[op_out_idx[k]] = o
    offchip = np.zeros(nt, np.bool_)
    stored = np.zeros(nt, np.bool_)
    for t in range(nt):
        offchip[t] = tensor_kind[t] != _INTERMEDIATE
    resident = np.zeros(nt, np.bool_)
    addr = np.full(nt, -1, np.int64)
    res_list = np.empty(nt, np.int64)   # resident tensors, unordered
    res_pos = np.full(nt, -1, np.int64)  # index of a tensor in res_list
    n_res = 0
    used = 0
    traffic = 0
    peak = 0
    given = np.zeros(nt, np.int64)  # allocs per tensor in the current step
    for i in range(n + 1):
        o = step_op[i] if i < n else -1
        for e in range(ev_ptr[i], ev_ptr[i + 1]):
            kd = ev_kind[e]
            t = ev_tensor[e]
            if kd == _ALLOC:
                continue
            if i == n and kd != _STORE:
                return E_UNKNOWN, i, -1, 0, 0
            if t < 0 or t >= nt:
                return E_UNKNOWN, i, -1, 0, 0
            if kd == _STORE:
                if tensor_kind[t] != _INTERMEDIATE:
                    return E_STORE_KIND, i, t, 0, 0
                if stored[t]:
                    return E_DOUBLE_STORE, i, t, 0, 0
                if not resident[t]:
                    return E_STORE_NOT_RES, i, t, 0, 0
                stored[t] = True
                offchip[t] = True
                traffic += tensor_size[t]
            elif kd == _EVICT:
                if not resident[t]:
                    return E_EVICT_NOT_RES, i, t, 0, 0
                needed = last_use[t] >= i
                owed = tensor_is_output[t] and not offchip[t]
                if not offchip[t] and (needed or owed):
                    return E_EVICT_LIVE, i, t, 0, 0
                resident[t] = False
                k = res_pos[t]
                n_res -= 1
                last = res_list[n_res]
                res_list[k] = last
                res_pos[last] = k
                res_pos[t] = -1
                used -= tensor_size[t]
            else:  # LOAD
                if resident[t]:
                    return E_LOAD_RES, i, t, 0, 0
                if not offchip[t]:
                    return E_LOAD_NO_COPY, i, t, 0, 0
                code = _admit(t, ev_addr[e], tensor_size, capacity, alignment, res_list, n_res, addr,
                              resident, res_pos)
                if code != OK:
                    return code, i, t, 0, 0
                n_res += 1
                used += tensor_size[t]
                traffic += tensor_size[t]
        if i == n:
            break
        for k in range(op_in_ptr[o], op_in_ptr[o + 1]):
            t = op_in_idx[k]
            if not resident[t]:
                p = producer[t]
                if p >= 0 and position[p] > i:
                    return E_DEPENDENCY, i, t, 0, 0
                return E_INPUT_NOT_RES, i, t, 0, 0
        # every output allocated exactly once, nothing else
        bad = -1
        for e in range(ev_ptr[i], ev_ptr[i + 1]):
            if ev_kind[e] == _ALLOC:
                t = ev_tensor[e]
                if t < 0 or t >= nt:
                    return E_UNKNOWN, i, -1, 0, 0
                given[t] += 1
        missing = -1
        for k in range(op_out_ptr[o], op_out_ptr[o + 1]):
            t = op_out_idx[k]
            if given[t] == 0 and (missing == -1 or t < missing):
                missing = t
        if missing == -1:
            for e in range(ev_ptr[i], ev_ptr[i + 1]):  # first alloc that is not an output of o
                t = ev_tensor[e]
                if ev_kind[e] == _ALLOC and producer[t] != o:
                    bad = t
                    break
            if bad == -1:
                for e in range(ev_ptr[i], ev_ptr[i + 1]):  # first alloc given twice
                    t = ev_tensor[e]
                    if ev_kind[e] == _ALLOC and given[t] > 1:
                        bad = t
                        break
        for e in range(ev_ptr[i], ev_ptr[i + 1]):
            if ev_kind[e] == _ALLOC:
                given[ev_tensor[e]] = 0
        if missing != -1:
            return E_ALLOC, i, missing, 0, 0
        if bad != -1:
            return E_ALLOC, i, bad, 0, 0
        for e in range(ev_ptr[i], ev_ptr[i + 1]):
            if ev_kind[e] == _ALLOC:
                t = ev_tensor[e]
                code = _admit(t, ev_addr[e], tensor_size, capacity, alignment, res_list, n_res, addr,
                              resident, res_pos)
                if code != OK:
                    return code, i, t, 0, 0
                n_res += 1
                used += tensor_size[t]
        if used > peak:
            peak = used
    for t in range(nt):
        if tensor_is_output[t] and not offchip[t]:
            return E_OUTPUT_NOT_STORED, n, t, 0, 0
    return OK, -1, -1, traffic, peak


def simulate_plan(graph, plan, capacity: int, alignment: int = 1) -> SimulationResult:
    """Replay ``plan`` on ``graph`` with :func:`simulate`; returns a :class:`SimulationResult`.

    ``plan`` is a :class:`cosma_fast.Plan` or the dict of its ``to_arrays()``.
    Use ``cosma_fast.validate`` for a readable error; this is the fast yes/no.
    """
    arr = plan if isinstance(plan, dict) else plan.to_arrays()
    g = graph
    res = simulate(np.asarray(arr["step_op"], np.int64), np.asarray(arr["ev_ptr"], np.int64),
                   np.asarray(arr["ev_kind"], np.int8), np.asarray(arr["ev_tensor"], np.int64),
                   np.asarray(arr["ev_addr"], np.int64), g.tensor_size, g.tensor_kind, g.tensor_is_output,
                   g.op_in_ptr, g.op_in_idx, g.op_out_ptr, g.op_out_idx, g.cons_ptr, g.cons_idx,
                   int(capacity), int(alignment))
    return SimulationResult(*(int(x) for x in res))


def warmup() -> None:
    """Compile :func:`simulate` on a two-operator graph."""
    from ..graph import GraphBuilder
    from ..trivial import trivial_plan

    b = GraphBuilder("warmup")
    x = b.input("x", 4)
    (y,) = b.op("a", [x], outputs=[("y", 4)])
    (z,) = b.op("b", [y], outputs=[("z", 4)])
    b.mark_output(z)
    g = b.build()
    simulate_plan(g, trivial_plan(g), 16)
