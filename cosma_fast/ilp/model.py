"""The time-indexed replacement model without addresses, built as flat arrays.

Steps ``i = 0..n-1`` x tensors. Columns:

- ``x[o, i]``: operator ``o`` runs at step ``i`` (only for ``i`` in its ASAP/ALAP window;
  fixed to its position in fixed-schedule mode);
- ``r[t, i]``: tensor ``t`` is resident while step ``i`` runs (only inside the window
  where some operator touching ``t`` can run);
- ``l[t, i]``: ``t`` is loaded at step ``i`` (only where a reader of ``t`` can run, see
  "just in time" below);
- ``w[t]``: intermediate ``t`` is written back once, right after it is created (storing
  later costs the same and only delays the off-chip copy, so this loses nothing).

Rows: one operator per step and one step per operator; precedence in cumulative form
(``sum_{j<=k} x[o,j] <= sum_{j<k} x[p,j]``); residency only by continuing, loading or
creating; every operand resident while its operator runs, one row per tensor and step
(``r[t,i] >= sum of x[o,i]`` over the operators touching ``t``: at most one runs); a load
of an intermediate needs its write-back and its producer done; an input or weight is
loaded by the time each reader runs; capacity per step.

Whole-graph models (no :class:`Boundary`) are restricted without loss to plans whose
residency runs go from use to use: a load happens at a step where a reader runs, and a
run ends at a step where an operator touching the tensor runs (moving a load later or
an eviction earlier frees space and costs nothing; :func:`cosma_fast.ilp.decode.encode_plan`
trims any valid plan to this form). This implies liveness (no residency once no
remaining operator reads the tensor), which window models state as rows instead.
Measured with HiGHS, threads=1, no start (same optima): layered14 at M_R 13.1 -> 3.2 s,
randwire16 at M_R 20.3 -> 9.3 s; the LP bound was below the compulsory bytes before.

Without addresses this is a relaxation of the COSMA problem (Li, Gupta, Malik,
arXiv 2311.18246): its optimum is a lower bound, and a plan whose residency intervals
pack into the scratchpad attains it.

A :class:`Boundary` turns the model into a *window* sub-problem (steps of a larger plan
with a fixed state before and after, see :mod:`cosma_fast.dnc`): tensors resident at
entry are resident at step 0 without a load, tensors resident at exit are forced
resident at the last step, and write-backs can be forced or forbidden.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..bounds import ancestors
from ..budgets import capacity_rows
from ..errors import SolverError
from ..graph import INTERMEDIATE, Graph

__all__ = ["ReplacementModel", "Boundary", "ModelBuildTimeout", "build_model", "op_windows"]


class ModelBuildTimeout(SolverError):
    """Raised by :func:`build_model` when its ``deadline`` passes (``solve_ilp`` catches it and
    returns its best plan without the model)."""


def op_windows(graph: Graph, schedule=None) -> tuple[np.ndarray, np.ndarray]:
    """(asap, alap) step of every operator: ancestors before it, descendants after it."""
    n = graph.n_ops
    if schedule is not None:
        pos = np.empty(n, dtype=np.int64)
        pos[np.asarray(schedule, dtype=np.int64)] = np.arange(n)
        return pos, pos.copy()
    anc = ancestors(graph)
    return anc.sum(axis=1).astype(np.int64), (n - 1 - anc.sum(axis=0)).astype(np.int64)


@dataclass
class Boundary:
    """Fixed entry and exit state of a window sub-problem (one entry per tensor of its graph).

    ``entry_resident``: resident before step 0 (no load needed while it stays).
    ``dirty``: an input of the window graph without an off-chip copy (it was created
    before the window and never written back); it gets a write-back column like an
    intermediate, and it can be loaded only after that write-back.
    ``exit_resident``: must be resident at the last step.
    ``live_out``: may stay resident up to the last step although no window operator
    reads it later (read after the window, or resident at exit).
    ``store``: write-back of an intermediate or dirty tensor: 1 forced, -1 forbidden, 0 free.
    """

    entry_resident: np.ndarray
    dirty: np.ndarray
    exit_resident: np.ndarray
    live_out: np.ndarray
    store: np.ndarray


@dataclass
class ReplacementModel:
    """Arrays of the model plus the index maps needed to encode and decode solutions."""

    graph: Graph
    capacity: int
    n_cols: int
    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    xcol: np.ndarray   # (n_ops, n) column of x[o, i] or -1
    rcol: np.ndarray   # (n_tensors, n)
    lcol: np.ndarray   # (n_tensors, n)
    wcol: np.ndarray   # (n_tensors,) or -1
    used: np.ndarray   # tensors that take part in some operator
    peak_col: int = -1  # min-peak mode only

    def check(self, v: np.ndarray, tol: float = 1e-6) -> bool:
        """True when ``v`` is an integral point satisfying every bound and row."""
        if np.any(np.abs(v - np.round(v)) > tol):
            return False
        if np.any(v < self.col_lower - tol) or np.any(v > self.col_upper + tol):
            return False
        a = self.A @ v
        return bool(np.all(a >= self.row_lower - tol) and np.all(a <= self.row_upper + tol))


def build_model(graph: Graph, capacity: int, schedule=None, *, min_peak: bool = False,
                write_back_cover: bool = False, boundary: Boundary | None = None,
                deadline: float | None = None, alignment: int = 1) -> ReplacementModel:
    """Build the address-free replacement model (see the module docstring).

    With ``min_peak=True`` there are no loads or write-backs (everything stays resident
    while live) and the objective is one extra column, the peak resident bytes.
    ``write_back_cover=True`` adds ``w[t] + r[t,i] + X[p,>i] >= X[c,>i]`` rows (valid;
    measured mixed: layered14 at M_R 6.4 -> 5.4 s, randwire16 8.6 s -> not closed in 10 s).
    ``boundary`` makes it a window sub-problem (see :class:`Boundary`).
    ``deadline`` (a ``time.perf_counter()`` value): raise :class:`ModelBuildTimeout` once it
    passes; free-schedule models grow with steps squared (randwire200: 45M nonzeros, ~20 s).
    ``alignment`` > 1: a second capacity row per step counts every tensor padded to the
    alignment (:func:`cosma_fast.budgets.capacity_rows`): still a relaxation of every
    plan at aligned addresses, and one whose optimum packs more often.
    """
    g = graph
    n, nt = g.n_ops, g.n_tensors
    size = g.tensor_size.astype(np.int64)
    asap, alap = op_windows(g, schedule)
    used = (np.diff(g.cons_ptr) > 0) | (g.tensor_producer >= 0)
    # residency window of each tensor
    lo = np.full(nt, n, dtype=np.int64)
    hi = np.full(nt, -1, dtype=np.int64)
    for t in range(nt):
        p = g.tensor_producer[t]
        ops = list(g.consumers_of(t)) + ([int(p)] if p >= 0 else [])
        if ops:
            lo[t] = asap[ops].min()
            hi[t] = alap[ops].max()
    entry = np.zeros(nt, dtype=bool)
    dirty = np.zeros(nt, dtype=bool)
    live_out = np.zeros(nt, dtype=bool)
    if boundary is not None:
        entry, dirty, live_out = boundary.entry_resident, boundary.dirty, boundary.live_out
        used = used | entry | boundary.exit_resident
        lo = np.where(live_out, np.minimum(lo, n - 1), lo)  # prefetched for after the window: last step
        lo = np.where(entry, 0, lo)
        hi = np.where(live_out, n - 1, np.where(entry, np.maximum(hi, 0), hi))
    ncol = 0
    xcol = np.full((n, n), -1, dtype=np.int64)
    for o in range(n):
        k = alap[o] - asap[o] + 1
        xcol[o, asap[o]:alap[o] + 1] = np.arange(ncol, ncol + k)
        ncol += k
    rcol = np.full((nt, n), -1, dtype=np.int64)
    lcol = np.full((nt, n), -1, dtype=np.int64)
    wcol = np.full(nt, -1, dtype=np.int64)
    for t in range(nt):
        if used[t]:
            k = hi[t] - lo[t] + 1
            rcol[t, lo[t]:hi[t] + 1] = np.arange(ncol, ncol + k)
            ncol += k
    # loads just in time (WLOG, see below): only at steps where some reader can run
    just_in_time = boundary is None and not min_peak
    for t in range(nt):
        if not used[t] or len(g.consumers_of(t)) == 0:
            continue  # never read: created resident, never loaded
        if min_peak and g.tensor_kind[t] == INTERMEDIATE:
            continue  # min-peak: intermediates stay resident while live
        a = lo[t] if g.tensor_producer[t] < 0 and not entry[t] else lo[t] + 1
        steps = np.arange(a, hi[t] + 1)
        if just_in_time:
            steps = steps[(xcol[np.asarray(g.consumers_of(t), dtype=np.int64)][:, steps] >= 0).any(axis=0)]
        lcol[t, steps] = np.arange(ncol, ncol + len(steps))
        ncol += len(steps)
    if not min_peak:
        for t in range(nt):
            if used[t] and (g.tensor_kind[t] == INTERMEDIATE or dirty[t]):
                wcol[t] = ncol
                ncol += 1
    peak_col = -1
    if min_peak:
        peak_col = ncol
        ncol += 1
    cost = np.zeros(ncol)
    clo = np.zeros(ncol)
    cup = np.ones(ncol)
    for t in range(nt):
        m = lcol[t] >= 0
        cost[lcol[t][m]] = 0 if min_peak else size[t]
        if wcol[t] >= 0:
            cost[wcol[t]] = size[t]
            if g.tensor_is_output[t]:
                clo[wcol[t]] = 1
            if boundary is not None and boundary.store[t] > 0:
                clo[wcol[t]] = 1
            elif boundary is not None and boundary.store[t] < 0:
                cup[wcol[t]] = 0
    if boundary is not None:
        ex = np.flatnonzero(boundary.exit_resident)
        clo[rcol[ex, n - 1]] = 1
    if min_peak:
        cost[peak_col] = 1
        cup[peak_col] = float(size[used].sum())
    if schedule is not None:
        clo[xcol[xcol >= 0]] = 1

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rlo: list[float] = []
    rup: list[float] = []

    def row(cs, vs, a, b):
        r = len(rlo)
        if deadline is not None and r % 4096 == 0 and time.perf_counter() > deadline:
            raise ModelBuildTimeout(f"model of {n} steps not built by the deadline")
        rows.extend([r] * len(cs))
        cols.extend(cs)
        vals.extend(vs)
        rlo.append(a)
        rup.append(b)

    inf = np.inf
    # the operators touching each tensor: its readers and its producer
    touch = [sorted(set(g.consumers_of(t).tolist()) | ({int(g.tensor_producer[t])} if g.tensor_producer[t] >= 0
                                                      else set())) for t in range(nt)]
    if schedule is None:
        for o in range(n):
            c = xcol[o][xcol[o] >= 0].tolist()
            row(c, [1.0] * len(c), 1, 1)
        for i in range(n):
            c = xcol[:, i][xcol[:, i] >= 0].tolist()
            row(c, [1.0] * len(c), 1, 1)
        for o in range(n):
            ps = {int(g.tensor_producer[t]) for t in g.inputs_of(o) if g.tensor_producer[t] >= 0}
            for p in ps:
                for k in range(asap[o], alap[o] + 1):
                    co = xcol[o, :k + 1][xcol[o, :k + 1] >= 0].tolist()
                    cp = xcol[p, :k][xcol[p, :k] >= 0].tolist()
                    row(co + cp, [1.0] * len(co) + [-1.0] * len(cp), -inf, 0)
    for t in range(nt):
        if not used[t]:
            continue
        p = int(g.tensor_producer[t])
        cons = g.consumers_of(t)
        x_readers = xcol[np.asarray(cons, dtype=np.int64)]  # readers' step columns, one row each
        for i in range(lo[t], hi[t] + 1):
            if not (i == 0 and entry[t]):  # resident at entry: step 0 needs no load
                # residency continues, or is loaded, or is created
                c = [rcol[t, i]]
                v = [1.0]
                if i - 1 >= lo[t]:
                    c.append(rcol[t, i - 1]); v.append(-1.0)  # noqa: E702
                if lcol[t, i] >= 0:
                    c.append(lcol[t, i]); v.append(-1.0)  # noqa: E702
                if p >= 0 and xcol[p, i] >= 0:
                    c.append(xcol[p, i]); v.append(-1.0)  # noqa: E702
                row(c, v, -inf, 0)
            if not live_out[t] and not just_in_time:
                # liveness: resident only if created now or some reader runs now or later
                # (implied by the use-to-use rows below when they are built)
                later = x_readers[:, i:].ravel()
                live = later[later >= 0].tolist()
                if p >= 0 and xcol[p, i] >= 0:
                    live.append(xcol[p, i])
                row([rcol[t, i]] + live, [1.0] + [-1.0] * len(live), -inf, 0)
            if lcol[t, i] >= 0 and p >= 0:
                # a load of an intermediate needs its producer done
                done = xcol[p, :i][xcol[p, :i] >= 0].tolist()
                row([lcol[t, i]] + done, [1.0] + [-1.0] * len(done), -inf, 0)
            if lcol[t, i] >= 0 and wcol[t] >= 0:
                row([lcol[t, i], wcol[t]], [1.0, -1.0], -inf, 0)  # ... and its write-back
    if not min_peak and schedule is None:
        # Reload cover (valid inequality, not implied by the LP): if reader c of t runs
        # after step i, then t is resident at i, or loaded after i, or created after i.
        # Aggregated over the steps after i it cuts off LPs that spread x[c] thinly.
        for t in range(nt):
            if not used[t] or lcol[t].max() < 0:
                continue
            p = int(g.tensor_producer[t])
            first = lo[t] if p < 0 else max(lo[t], int(asap[p]))
            for c in set(int(q) for q in g.consumers_of(t)):
                if c == p:
                    continue
                for i in range(first, min(hi[t], int(alap[c]) - 1) + 1):
                    cs = [rcol[t, i]]
                    vs = [1.0]
                    lt = lcol[t, i + 1:]
                    lt = lt[lt >= 0].tolist()
                    cs += lt
                    vs += [1.0] * len(lt)
                    if p >= 0:
                        xp = xcol[p, i + 1:]
                        xp = xp[xp >= 0].tolist()
                        cs += xp
                        vs += [1.0] * len(xp)
                    xc = xcol[c, i + 1:]
                    xc = xc[xc >= 0].tolist()
                    cs += xc
                    vs += [-1.0] * len(xc)
                    row(cs, vs, 0.0, inf)
                    if wcol[t] >= 0 and write_back_cover:
                        # same, with every later load replaced by the single write-back
                        # they all need: w[t] + r[t,i] + X[p,>i] >= X[c,>i]
                        wc = [rcol[t, i], wcol[t]] + cs[1 + len(lt):]
                        wv = [1.0, 1.0] + vs[1 + len(lt):]
                        row(wc, wv, 0.0, inf)
    if not min_peak:
        # An input or weight is loaded at least once, and by the time its first reader runs:
        # L[t,<=i] >= X[c,<=i] (the LP otherwise loads half a weight that half-runs twice)
        for t in range(nt):
            if g.tensor_kind[t] == INTERMEDIATE or entry[t] or dirty[t] or lcol[t].max() < 0:
                continue
            for c in set(g.consumers_of(t).tolist()):
                for i in range(int(asap[c]), int(alap[c]) + 1):
                    lt = lcol[t, :i + 1][lcol[t, :i + 1] >= 0].tolist()
                    xc = xcol[c, :i + 1][xcol[c, :i + 1] >= 0].tolist()
                    row(lt + xc, [1.0] * len(lt) + [-1.0] * len(xc), 0.0, inf)
    if min_peak:  # inputs and weights are loaded once, at their first use
        for t in range(nt):
            c = lcol[t][lcol[t] >= 0].tolist()
            if c:
                row(c, [1.0] * len(c), -inf, 1)
    # operands resident while their operator runs, one row per tensor and step: at most one
    # operator runs at a step, so r[t,i] >= the sum of x[o,i] over the operators touching t
    # (stronger in the LP than one row per operator, and fewer rows)
    for t in range(nt):
        if not touch[t]:
            continue
        xs = xcol[touch[t]]
        for i in range(lo[t], hi[t] + 1):
            c = xs[:, i][xs[:, i] >= 0].tolist()
            if c:
                row(c + [rcol[t, i]], [1.0] * len(c) + [-1.0], -inf, 0)
    if just_in_time:
        # WLOG a load happens at a step where a reader runs, and a residency run ends at a
        # step where an operator touching the tensor runs: moving a load later or an eviction
        # earlier to such a step frees capacity and costs nothing
        for t in range(nt):
            if not touch[t] or live_out[t]:
                continue
            xr = xcol[np.asarray(g.consumers_of(t), dtype=np.int64)]
            for i in np.flatnonzero(lcol[t] >= 0):
                c = xr[:, i][xr[:, i] >= 0].tolist()
                row([lcol[t, i]] + c, [1.0] + [-1.0] * len(c), -inf, 0)
            xs = xcol[touch[t]]
            for i in range(lo[t], hi[t] + 1):
                c = xs[:, i][xs[:, i] >= 0].tolist()
                nxt = [rcol[t, i + 1]] if i + 1 <= hi[t] else []
                row([rcol[t, i]] + nxt + c, [1.0] + [-1.0] * len(nxt) + [-1.0] * len(c), -inf, 0)
    # capacity (or peak) per step; with an alignment, the padded bytes too
    rooms = capacity_rows(size, capacity, alignment)
    for i in range(n):
        m = rcol[:, i] >= 0
        c = rcol[m, i].tolist()
        if min_peak:
            row(c + [peak_col], size[m].astype(float).tolist() + [-1.0], -inf, 0)
            continue
        for room, held in rooms:
            row(c, held[m].astype(float).tolist(), -inf, float(room))
    A = sp.csr_matrix((np.array(vals), (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))),
                      shape=(len(rlo), ncol))
    A.sum_duplicates()
    return ReplacementModel(graph=g, capacity=int(capacity), n_cols=ncol, cost=cost, col_lower=clo,
                            col_upper=cup, A=A, row_lower=np.array(rlo, dtype=float),
                            row_upper=np.array(rup, dtype=float), xcol=xcol, rcol=rcol, lcol=lcol,
                            wcol=wcol, used=used, peak_col=peak_col)
