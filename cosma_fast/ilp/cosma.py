"""COSMA's full formulation: the replacement model plus big-M pairwise addresses.

As in Li, Gupta, Malik (arXiv 2311.18246): every resident tensor gets an integer address
at every step, kept while it stays resident, and every pair of tensors that can be
resident together at a step gets an order binary with big-M (``M = C``) non-overlap
constraints. Exact for the whole problem in one solve, but its LP relaxation is weak
(the address rows are slack at fractional residency); kept for comparison with the
decomposed formulation (``formulation="cosma"``). It is built on the same replacement
model (with all its valid rows), so a comparison measures the price of the addresses.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import CosmaError, SolverError
from ..graph import Graph
from ..highs import integral_bound
from ..solve import MethodOutput, SolveOptions
from ..validate import validate
from .decode import build_plan, decode_residency, encode_plan, residency_buffers
from .model import ModelBuildTimeout, ReplacementModel, build_model

__all__ = ["build_cosma_model", "solve_cosma"]


def build_cosma_model(graph: Graph, capacity: int, schedule=None, alignment: int = 1,
                      deadline: float | None = None):
    """The replacement model extended with address columns ``acol`` (n_tensors x n) in
    units of ``alignment`` and pairwise order binaries. Returns (model, acol).
    ``deadline``: as in :func:`cosma_fast.ilp.model.build_model` (the address rows are built
    in numpy and take a fraction of its time)."""
    base = build_model(graph, capacity, schedule, deadline=deadline, alignment=alignment)
    size = graph.tensor_size
    C = int(capacity)
    nt, n = base.rcol.shape
    may = base.rcol >= 0  # tensor t may be resident at step i
    acol = np.full((nt, n), -1, dtype=np.int64)
    acol[may] = base.n_cols + np.arange(int(may.sum()))  # one address per (t, i), t major
    a_up = (C - size[np.nonzero(may)[0]]) // alignment
    ncol = base.n_cols + len(a_up)
    big = C / alignment + max(1, C)  # in address units, loose enough for every row
    inf = np.inf
    # an address is kept while the tensor stays resident: two rows per (t, i) with t possibly
    # resident at i - 1 and i
    t, i = np.nonzero(may[:, 1:] & may[:, :-1])
    i = i + 1
    a1, a0, r1, r0 = acol[t, i], acol[t, i - 1], base.rcol[t, i], base.rcol[t, i - 1]
    one = np.ones(len(t))
    keep = _row_pairs(np.stack([a1, a0, r1, r0], axis=1), [1.0, -1.0, big, big], [1.0, -1.0, -big, -big],
                      (-inf * one, 2 * big * one), (-2 * big * one, inf * one))
    # pairwise non-overlap at each step: z = 1 means t below u
    pt, pu, pi = [], [], []
    for step in range(n):
        ts = np.flatnonzero(may[:, step])
        x, y = np.triu_indices(len(ts), 1)
        pt.append(ts[x])
        pu.append(ts[y])
        pi.append(np.full(len(x), step, dtype=np.int64))
    pt, pu, pi = (np.concatenate(v) if v else np.zeros(0, np.int64) for v in (pt, pu, pi))
    z = ncol + np.arange(len(pt))
    ncol += len(pt)
    at, au, rt, ru = acol[pt, pi], acol[pu, pi], base.rcol[pt, pi], base.rcol[pu, pi]
    one = np.ones(len(pt))
    # a_t + s_t <= a_u + big(1 - z) + big(2 - r_t - r_u);  a_u + s_u <= a_t + big z + big(2 - r_t - r_u)
    apart = _row_pairs(np.stack([at, au, z, rt, ru], axis=1), [1.0, -1.0, big, big, big],
                       [1.0, -1.0, -big, big, big], (-inf * one, 3 * big - size[pt] / alignment),
                       (-inf * one, 2 * big - size[pu] / alignment))
    # the second row of a pair lists a_u before a_t
    apart[1][1::2, [0, 1]] = apart[1][1::2, [1, 0]]
    A2, rlo, rup = _stack_rows([keep, apart], ncol)
    extra = ncol - base.n_cols
    cost = np.concatenate([base.cost, np.zeros(extra)])
    clo = np.concatenate([base.col_lower, np.zeros(extra)])
    cup = np.concatenate([base.col_upper, a_up.astype(float), np.ones(len(pt))])
    A1 = sp.hstack([base.A, sp.csr_matrix((base.A.shape[0], extra))], format="csr")
    model = ReplacementModel(graph=graph, capacity=C, n_cols=ncol, cost=cost, col_lower=clo, col_upper=cup,
                             A=sp.vstack([A1, A2], format="csr"),
                             row_lower=np.concatenate([base.row_lower, rlo]),
                             row_upper=np.concatenate([base.row_upper, rup]),
                             xcol=base.xcol, rcol=base.rcol, lcol=base.lcol, wcol=base.wcol, used=base.used)
    return model, acol


def _row_pairs(cols, vals_a, vals_b, bounds_a, bounds_b):
    """Two rows over the same columns per line of ``cols`` (m x k), interleaved (a, b, a, b,
    ...): ``(vals, cols, lower, upper)`` with ``vals`` and ``cols`` (2m x k)."""
    m, k = cols.shape
    vals = np.empty((2 * m, k))
    vals[0::2], vals[1::2] = vals_a, vals_b
    lower, upper = np.empty(2 * m), np.empty(2 * m)
    lower[0::2], upper[0::2] = bounds_a
    lower[1::2], upper[1::2] = bounds_b
    return vals, np.repeat(cols, 2, axis=0), lower, upper


def _stack_rows(families, ncol):
    """One CSR matrix (with its row bounds) of row families from :func:`_row_pairs`, in turn."""
    data, indices, indptr, lower, upper = [], [], [np.zeros(1, np.int64)], [], []
    start = 0
    for vals, cols, lo, hi in families:
        data.append(vals.ravel())
        indices.append(cols.ravel())
        indptr.append(start + cols.shape[1] * np.arange(1, cols.shape[0] + 1))
        start += cols.size
        lower.append(lo)
        upper.append(hi)
    A = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.concatenate(indptr)),
                      shape=(sum(len(lo) for lo in lower), ncol))
    A.sort_indices()  # HiGHS gets each row's columns ascending, as from every other builder
    return A, np.concatenate(lower), np.concatenate(upper)


def solve_cosma(graph: Graph, capacity: int, opts: SolveOptions) -> MethodOutput:
    """``cf.solve(..., method="ilp", formulation="cosma")``: one exact solve with addresses.

    Returns the decoded plan ("optimal" when HiGHS proved it) or, when HiGHS found
    nothing in time, the starting plan with the dual bound.
    """
    from . import _feasible, _start_and_bound, _with_valid_cuts, highs_time, model_deadline, run_highs

    g = graph
    compulsory = g.compulsory()
    start_plan, start_cost, other, skipped = _start_and_bound(g, capacity, opts)
    if skipped is not None:
        return skipped
    info = {"start_accepted": False, "formulation": "cosma"}
    try:
        model, acol = build_cosma_model(g, capacity, opts.schedule, opts.alignment, deadline=model_deadline(opts))
    except ModelBuildTimeout:
        return _feasible(g, start_plan, start_cost, other, info,
                         "the model was not built within a quarter of the time left")
    if opts.remaining() is not None and opts.remaining() <= 0:  # HiGHS's presolve does not watch the clock
        return _feasible(g, start_plan, start_cost, other, info, "no time left after building the model")
    model = _with_valid_cuts(model, compulsory + other, opts)  # the same rows as the decomposed model
    start = None
    if opts.extra.get("warm_start", True):
        try:
            start = _encode_with_addresses(model, acol, start_plan, opts.alignment)
        except ValueError:
            start = None
    res = run_highs(model, time_limit=highs_time(opts), mip_gap=opts.mip_gap, threads=opts.threads,
                    start=start, verbose=opts.verbose, progress=opts.progress)
    info.update(model_cols=int(model.n_cols), model_rows=int(model.A.shape[0]), start_accepted=res["start_accepted"],
                ilp_status=res["status"], dual_bound=res["bound"])
    lower = max(0, integral_bound(res["bound"]) - compulsory)
    plan, cost = start_plan, start_cost
    if res["x"] is not None:
        v = res["x"]
        order, R, stored = decode_residency(model, v)
        bt, ba, bb = residency_buffers(R)
        off = np.array([int(round(v[acol[t, a]])) * opts.alignment for t, a in zip(bt, ba)], dtype=np.int64)
        cand = build_plan(g, order, R, stored, bt, ba, off)
        try:
            c = validate(g, cand, capacity, opts.alignment).traffic
        except CosmaError as e:
            raise SolverError(f"the COSMA formulation decoded an invalid plan ({e}); this is a bug") from e
        if c < cost:
            plan, cost = cand, c
        if res["status"] == "optimal" and opts.mip_gap == 0:
            lower = c - compulsory
    nc = cost - compulsory
    info["other_lower_bound"] = other
    lower = min(max(lower, other), nc)
    return MethodOutput(plan=plan, lower_bound=int(lower), status="optimal" if lower >= nc else "feasible",
                        info=info)


def _encode_with_addresses(model, acol, plan, alignment):
    """The start vector of a plan, with its addresses and the pair orders they imply."""
    v = encode_plan(model, plan)
    g = model.graph
    n = g.n_ops
    addr = np.full((g.n_tensors, n), -1, dtype=np.int64)
    cur: dict[int, int] = {}
    for i, st in enumerate(plan.steps):
        for t in st.evicts:
            cur.pop(t, None)
        for t, a in st.loads + st.allocs:
            cur[t] = a
        for t, a in cur.items():
            addr[t, i] = a
    R = (model.rcol >= 0) & (v[np.maximum(model.rcol, 0)] > 0.5)
    for t in range(g.n_tensors):
        for i in np.flatnonzero(R[t]):
            v[acol[t, i]] = addr[t, i] // alignment
    # order binaries in the order the addresses say (0 when not both resident)
    z_start = acol.max() + 1
    k = z_start
    for i in range(n):
        ts = np.flatnonzero(model.rcol[:, i] >= 0)
        for x in range(len(ts)):
            for y in range(x + 1, len(ts)):
                t, u = ts[x], ts[y]
                v[k] = 1.0 if (R[t, i] and R[u, i] and addr[t, i] < addr[u, i]) else 0.0
                k += 1
    return v
