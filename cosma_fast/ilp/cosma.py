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
from .model import ReplacementModel, build_model

__all__ = ["build_cosma_model", "solve_cosma"]


def build_cosma_model(graph: Graph, capacity: int, schedule=None, alignment: int = 1):
    """The replacement model extended with address columns ``acol`` (n_tensors x n) in
    units of ``alignment`` and pairwise order binaries. Returns (model, acol)."""
    base = build_model(graph, capacity, schedule)
    g = graph
    size = g.tensor_size
    C = int(capacity)
    n, nt = g.n_ops, g.n_tensors
    ncol = base.n_cols
    acol = np.full((nt, n), -1, dtype=np.int64)
    a_up = []
    for t in range(nt):
        for i in np.flatnonzero(base.rcol[t] >= 0):
            acol[t, i] = ncol
            ncol += 1
            a_up.append((C - int(size[t])) // alignment)
    n_addr = ncol - base.n_cols
    rows, cols, vals, rlo, rup = [], [], [], [], []

    def row(cs, vs, lo, hi):
        r = len(rlo)
        rows.extend([r] * len(cs))
        cols.extend(cs)
        vals.extend(vs)
        rlo.append(lo)
        rup.append(hi)

    big = C / alignment + max(1, C)  # in address units, loose enough for every row
    inf = np.inf
    # an address is kept while the tensor stays resident
    for t in range(nt):
        for i in np.flatnonzero(base.rcol[t] >= 0):
            if i > 0 and base.rcol[t, i - 1] >= 0:
                a1, a0 = acol[t, i], acol[t, i - 1]
                r1, r0 = base.rcol[t, i], base.rcol[t, i - 1]
                row([a1, a0, r1, r0], [1.0, -1.0, big, big], -inf, 2 * big)
                row([a1, a0, r1, r0], [1.0, -1.0, -big, -big], -2 * big, inf)
    # pairwise non-overlap: z = 1 means t below u
    n_pairs = 0
    for i in range(n):
        ts = np.flatnonzero(base.rcol[:, i] >= 0)
        for x in range(len(ts)):
            for y in range(x + 1, len(ts)):
                t, u = int(ts[x]), int(ts[y])
                z = ncol
                ncol += 1
                n_pairs += 1
                at, au, rt, ru = acol[t, i], acol[u, i], base.rcol[t, i], base.rcol[u, i]
                st_, su = size[t] / alignment, size[u] / alignment
                # a_t + s_t <= a_u + big(1 - z) + big(2 - r_t - r_u)
                row([at, au, z, rt, ru], [1.0, -1.0, big, big, big], -inf, 3 * big - st_)
                # a_u + s_u <= a_t + big z + big(2 - r_t - r_u)
                row([au, at, z, rt, ru], [1.0, -1.0, -big, big, big], -inf, 2 * big - su)
    extra = ncol - base.n_cols
    cost = np.concatenate([base.cost, np.zeros(extra)])
    clo = np.concatenate([base.col_lower, np.zeros(extra)])
    cup = np.concatenate([base.col_upper, np.array(a_up, dtype=float), np.ones(n_pairs)])
    A2 = sp.csr_matrix((np.array(vals, dtype=float), (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))),
                       shape=(len(rlo), ncol))
    A1 = sp.hstack([base.A, sp.csr_matrix((base.A.shape[0], extra))], format="csr")
    model = ReplacementModel(graph=g, capacity=C, n_cols=ncol, cost=cost, col_lower=clo, col_upper=cup,
                             A=sp.vstack([A1, A2], format="csr"),
                             row_lower=np.concatenate([base.row_lower, rlo]),
                             row_upper=np.concatenate([base.row_upper, rup]),
                             xcol=base.xcol, rcol=base.rcol, lcol=base.lcol, wcol=base.wcol, used=base.used)
    assert n_addr == len(a_up)
    return model, acol


def solve_cosma(graph: Graph, capacity: int, opts: SolveOptions) -> MethodOutput:
    """``cf.solve(..., method="ilp", formulation="cosma")``: one exact solve with addresses.

    Returns the decoded plan ("optimal" when HiGHS proved it) or, when HiGHS found
    nothing in time, the starting plan with the dual bound.
    """
    from . import _start_and_bound, _with_valid_cuts, highs_time, run_highs

    g = graph
    compulsory = g.compulsory()
    start_plan, start_cost, other, skipped = _start_and_bound(g, capacity, opts)
    if skipped is not None:
        return skipped
    model, acol = build_cosma_model(g, capacity, opts.schedule, opts.alignment)
    model = _with_valid_cuts(model, compulsory + other, opts)  # the same rows as the decomposed model
    start = None
    if opts.extra.get("warm_start", True):
        try:
            start = _encode_with_addresses(model, acol, start_plan, opts.alignment)
        except ValueError:
            start = None
    res = run_highs(model, time_limit=highs_time(opts), mip_gap=opts.mip_gap, threads=opts.threads,
                    start=start, verbose=opts.verbose, progress=opts.progress)
    info = {"model_cols": int(model.n_cols), "model_rows": int(model.A.shape[0]),
            "start_accepted": res["start_accepted"], "ilp_status": res["status"], "dual_bound": res["bound"],
            "formulation": "cosma"}
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
