"""HiGHS (highspy) from CSR arrays: one model build, one run, the solve's thread count.

Every MILP of the library goes through here. :func:`solve_min` is the exact solve of the
small covering MILPs of :mod:`cosma_fast.bounds` and :mod:`cosma_fast.ilp.orders`, whose
optimum is used as a *lower bound*. ``scipy.optimize.milp`` is not used for them: it stops
at HiGHS's default relative gap of 1e-4 and calls the incumbent optimal, and with objectives
of 1e5-1e6 bytes that incumbent is often tens of bytes above the optimum (on random covers
of ~100 KB tensors, 12% of the "optimal" values were too high, by up to 83 bytes), which is
no bound at all. Here the relative gap is 0, and the absolute gap is just under 1: the costs
are whole bytes, so a smaller gap proves the incumbent optimal. It is also 1.4-3.6x
faster per solve than scipy's bundled HiGHS on the order search's covers.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

__all__ = ["integral_bound", "new_highs", "pass_model", "run", "solve_min"]


def new_highs(*, time_limit: float | None = None, threads: int | None = None, mip_rel_gap: float = 0.0,
              verbose: bool = False):
    """A silent ``highspy.Highs`` with the options every solve shares; ``random_seed`` is
    fixed, so a solve that finishes within its limits is reproducible."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", bool(verbose))
    if time_limit is not None:
        h.setOptionValue("time_limit", max(float(time_limit), 0.01))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    h.setOptionValue("random_seed", 0)
    return h


def pass_model(h, cost, A: sp.csr_matrix, row_lower, row_upper, col_lower, col_upper, integer) -> None:
    """Hand ``min cost.x, row_lower <= A x <= row_upper, col_lower <= x <= col_upper`` to
    ``h`` in one call (``integer``: a boolean mask of the integer columns)."""
    import highspy

    A = A if isinstance(A, sp.csr_matrix) else sp.csr_matrix(A)
    n, m = len(cost), A.shape[0]

    def full(v, k):
        return np.ascontiguousarray(np.broadcast_to(np.asarray(v, dtype=np.float64), (k,)))

    # the flat-array overload: no HighsLp object, integrality as one int32 array
    status = h.passModel(int(n), int(m), int(A.nnz), int(highspy.MatrixFormat.kRowwise),
                         int(highspy.ObjSense.kMinimize), 0.0, full(cost, n), full(col_lower, n),
                         full(col_upper, n), full(row_lower, m), full(row_upper, m),
                         A.indptr.astype(np.int32), A.indices.astype(np.int32), A.data.astype(np.float64),
                         np.broadcast_to(np.asarray(integer, dtype=np.int32), (n,)).copy())
    if status == highspy.HighsStatus.kError:
        raise ValueError("HiGHS rejected the model (a bound or coefficient that is not a number?)")


def run(h) -> bool:
    """Run ``h``; False when its ``threads`` could not be honoured. HiGHS keeps one thread
    scheduler per process, sized by its first solve; asking for another thread count later
    makes ``run()`` fail before solving, so the solve then uses the scheduler there is."""
    import highspy

    if h.run() == highspy.HighsStatus.kError and h.getModelStatus() == highspy.HighsModelStatus.kNotset:
        h.setOptionValue("threads", 0)
        h.run()
        return False
    return True


def solve_min(cost, A, lower, upper, integer, *, time_limit: float | None = None,
              threads: int | None = None) -> tuple[int, float, np.ndarray | None]:
    """``(bound, found, x)`` of ``min cost.x  s.t.  A x >= lower, 0 <= x <= upper`` with the
    columns of ``integer`` integral, whole ``cost`` (bytes) and a whole optimum (true of the
    covers here: each continuous column is a count bounded below by integer ones).

    ``bound``: a proven lower bound on the optimum in whole units (the optimum when solved,
    HiGHS's dual bound when ``time_limit`` stops it first; never below 0, as every caller's
    costs are). ``found``: the best objective found (``inf`` when none), ``x`` its solution
    or None."""
    import highspy

    cost = np.asarray(cost, dtype=float)
    if not np.array_equal(cost, np.round(cost)):
        raise ValueError("solve_min: the costs must be whole numbers (bytes)")
    h = new_highs(time_limit=time_limit, threads=threads)
    # the optimum is a whole number of bytes: a gap below 1 proves the incumbent optimal
    h.setOptionValue("mip_abs_gap", 1.0 - 1e-3)
    integer = np.broadcast_to(np.asarray(integer, dtype=bool), cost.shape)
    if integer.any():
        # feasibility jump is half of a small cover's solve time (2.8 of 5.7 ms on randwire14's
        # order search) and finds nothing the root's own heuristics miss; no effect on large ones
        h.setOptionValue("mip_heuristic_run_feasibility_jump", False)
    else:
        h.setOptionValue("presolve", "off")  # an LP this small: presolve costs more than it saves
    pass_model(h, cost, A, lower, np.inf, 0.0, upper, integer)
    run(h)
    info = h.getInfo()
    has_sol = info.primal_solution_status == 2
    x, found = None, math.inf
    if has_sol:  # integer columns rounded (HiGHS leaves them within its tolerance): exact bytes
        x = np.array(h.getSolution().col_value)
        x[integer] = np.round(x[integer])
        found = float(cost @ x)
        if abs(found - round(found)) < 1e-6 * max(1.0, abs(found)):
            found = float(round(found))
    dual = float(info.mip_dual_bound)
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal and has_sol:
        dual = max(dual, found - (1.0 - 1e-3)) if math.isfinite(dual) else found - (1.0 - 1e-3)
    bound = integral_bound(dual)
    if has_sol:
        bound = min(bound, math.floor(found + 1e-6))
    return max(0, bound), found, x


def integral_bound(bound: float) -> int:
    """A solver's dual bound on whole bytes, rounded up with a tolerance (0 when not finite)."""
    if not math.isfinite(bound):
        return 0
    return int(math.ceil(bound - 1e-6 - 1e-9 * abs(bound)))
