"""From model solutions to plans and back: decoding, packing, warm-start encoding."""

from __future__ import annotations

import numpy as np

from ..allocate import allocate
from ..graph import INTERMEDIATE, Graph
from ..plan import Plan, Step
from .model import ReplacementModel

__all__ = ["decode_residency", "residency_buffers", "pack_buffers", "build_plan", "encode_plan", "encode_residency"]


def decode_residency(model: ReplacementModel, v: np.ndarray):
    """(order, R, stored) from a solution vector: schedule, residency (n_tensors x n), write-backs."""
    g = model.graph
    n = g.n_ops
    xv = np.where(model.xcol >= 0, v[np.maximum(model.xcol, 0)], 0.0)
    order = np.argmax(xv, axis=0).astype(np.int64)
    R = (model.rcol >= 0) & (v[np.maximum(model.rcol, 0)] > 0.5)
    stored = (model.wcol >= 0) & (v[np.maximum(model.wcol, 0)] > 0.5)
    assert sorted(order.tolist()) == list(range(n))
    return order, R, stored


def residency_buffers(R: np.ndarray):
    """Maximal residency runs as buffers: arrays (tensor, first step, last step)."""
    ts, a, b = [], [], []
    for t in range(R.shape[0]):
        row = R[t]
        if not row.any():
            continue
        d = np.diff(np.concatenate(([0], row.astype(np.int8), [0])))
        starts = np.flatnonzero(d == 1)
        ends = np.flatnonzero(d == -1) - 1
        ts.extend([t] * len(starts))
        a.extend(starts.tolist())
        b.extend(ends.tolist())
    return np.array(ts, dtype=np.int64), np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)


def pack_buffers(lower, upper, size, capacity, alignment=1, time_limit=None):
    """Offsets for buffers alive over steps ``[lower, upper]`` (inclusive) within ``capacity``,
    from :func:`cosma_fast.allocate` (greedy, then its exact search for at most ``time_limit``
    seconds, 10 s when None). Returns the offsets, independently re-checked, or None when no
    packing was found in time (not a proof that none exists).
    """
    lower, upper, size = (np.asarray(x, dtype=np.int64) for x in (lower, upper, size))
    if len(size) == 0:
        return np.zeros(0, dtype=np.int64)
    tl = 10.0 if time_limit is None else max(0.05, min(10.0, time_limit))
    res = allocate(lower, upper + 1, size, capacity, time_limit=tl, alignment=alignment)
    off = np.asarray(res.offsets, dtype=np.int64)
    if not res.fits or not _check_packing(lower, upper, size, capacity, off, alignment):
        return None
    return off


def _check_packing(lower, upper, size, capacity, off, alignment=1) -> bool:
    if len(off) != len(size) or np.any(off < 0) or np.any(off + size > capacity) or np.any(off % alignment):
        return False
    for i in range(len(size)):
        ov = (lower <= upper[i]) & (lower[i] <= upper)
        ov[i] = False
        if np.any(ov & (off < off[i] + size[i]) & (off[i] < off + size)):
            return False
    return True


def build_plan(graph: Graph, order, R, stored, buf_t, buf_a, buf_off) -> Plan:
    """The plan of a schedule, a residency matrix and packed buffer offsets.

    Loads where residency starts other than at creation; evicts where it ends; a
    write-back right after creation for outputs and for tensors loaded again later.
    """
    n = graph.n_ops
    addr = {(int(t), int(a)): int(o) for t, a, o in zip(buf_t, buf_a, buf_off)}
    creator_step = np.full(graph.n_tensors, -1, dtype=np.int64)
    for i, o in enumerate(order):
        creator_step[graph.outputs_of(o)] = i
    reloaded = np.zeros(graph.n_tensors, dtype=bool)
    for t in range(graph.n_tensors):
        for i in range(n):
            if R[t, i] and (i == 0 or not R[t, i - 1]) and creator_step[t] != i:
                reloaded[t] = True
    write_back = (graph.tensor_kind == INTERMEDIATE) & (graph.tensor_is_output | reloaded)
    steps = []
    for i, o in enumerate(order):
        st = Step(int(o))
        if i > 0:
            prev = order[i - 1]
            st.stores = [int(t) for t in graph.outputs_of(prev) if write_back[t]]
            st.evicts = [int(t) for t in np.flatnonzero(R[:, i - 1] & ~R[:, i])]
        outs = set(int(t) for t in graph.outputs_of(o))
        for t in np.flatnonzero(R[:, i] & ~(R[:, i - 1] if i > 0 else False)):
            t = int(t)
            if t not in outs:
                st.loads.append((t, addr[(t, i)]))
        st.allocs = [(t, addr[(t, i)]) for t in graph.outputs_of(o).tolist()]
        steps.append(st)
    final = [int(t) for t in graph.outputs_of(order[-1]) if write_back[t]] if n else []
    return Plan(steps, final)


def encode_plan(model: ReplacementModel, plan: Plan) -> np.ndarray:
    """A model solution vector for a valid plan (residency clipped to liveness)."""
    g = model.graph
    n = g.n_ops
    order = plan.schedule
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    res = np.zeros((g.n_tensors, n), dtype=bool)
    cur: set[int] = set()
    stored = np.zeros(g.n_tensors, dtype=bool)
    for i, st in enumerate(plan.steps):
        stored[st.stores] = True
        cur -= set(st.evicts)
        cur |= {t for t, _ in st.loads} | {t for t, _ in st.allocs}
        res[list(cur), i] = True
    stored[plan.final_stores] = True
    # clip to [creation or first step, last reading step]
    steps = np.arange(n)
    for t in range(g.n_tensors):
        c = g.consumers_of(t)
        last = pos[c].max() if len(c) else -1
        p = g.tensor_producer[t]
        if p >= 0:
            last = max(last, pos[p])
        res[t] &= steps <= last
        if p < 0:
            res[t] &= steps >= (pos[c].min() if len(c) else n)
    _runs_from_use_to_use(g, pos, res)
    return encode_residency(model, order, res, stored | g.tensor_is_output)


def _runs_from_use_to_use(g: Graph, pos: np.ndarray, res: np.ndarray) -> None:
    """Trim every residency run of ``res`` in place to start at its creation or first read
    and end at its last use (the model's just-in-time rows; it costs nothing and frees space)."""
    n = res.shape[1]
    for t in range(g.n_tensors):
        if not res[t].any():
            continue
        read = np.zeros(n, dtype=bool)
        read[pos[g.consumers_of(t)]] = True
        created = np.zeros(n, dtype=bool)
        if g.tensor_producer[t] >= 0:
            created[pos[g.tensor_producer[t]]] = True
        _, starts, ends = residency_buffers(res[t][None, :])
        res[t] = False
        for a, b in zip(starts, ends):
            first = a if created[a] else a + int(np.argmax(read[a:b + 1]))
            if not (created[first] or read[first]):
                continue  # loaded and never read before eviction
            used = np.flatnonzero((read | created)[first:b + 1])
            res[t, first:first + used[-1] + 1] = True


def encode_residency(model: ReplacementModel, order, R: np.ndarray, stored: np.ndarray,
                     entry: np.ndarray | None = None) -> np.ndarray:
    """A model solution vector from a schedule, a residency matrix and write-backs.

    ``R`` must lie inside the model's residency windows and respect liveness;
    ``entry`` marks tensors resident before step 0 (a window's entry state: no load there).
    Raises ValueError when ``R`` uses a step outside the model's windows.
    """
    g = model.graph
    n = g.n_ops
    pos = np.empty(n, dtype=np.int64)
    pos[np.asarray(order, dtype=np.int64)] = np.arange(n)
    v = np.zeros(model.n_cols)

    def put(col):
        if col < 0:
            raise ValueError("plan uses a step outside the model's windows")
        v[col] = 1

    for o in range(n):
        put(model.xcol[o, pos[o]])
    for t in range(g.n_tensors):
        for i in np.flatnonzero(R[t]):
            put(model.rcol[t, i])
            p = g.tensor_producer[t]
            created = p >= 0 and pos[p] == i
            before = R[t, i - 1] if i > 0 else (entry is not None and entry[t])
            if not created and not before:
                put(model.lcol[t, i])
        if model.wcol[t] >= 0:
            v[model.wcol[t]] = 1.0 if stored[t] else 0.0
    return v
