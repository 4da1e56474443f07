"""Valid inequalities for the time-indexed model from the forced-spill cover bound.

:func:`spill_cover_rows` writes the constraints of :func:`cosma_fast.bounds.spill_cover_bound`
in the variables of :mod:`cosma_fast.ilp.model`. The time-indexed LP relaxation spreads each
operator over its window, so it sees little capacity pressure at any one step; these rows do
not mention steps and keep the pressure of every operator whatever its step. Measured with a
20 s limit (one run each, 2 shared cores): layered14 at M_R 12.3 s -> 4.5 s to optimality,
layered12 at M_H 3.7 s -> 0.3 s; the dual bound of layered20 at M_R after 20 s 1375 -> 5806.
:func:`cosma_fast.ilp.solve_ilp` adds them to the free-schedule model only: in the short
fixed-schedule solves of its phase one they made the starts worse within the same time
(layered100 at M_R, 10 s: start 90445 -> 99744 non-compulsory bytes).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..bounds import forced_need, owes_write_back
from ..graph import INTERMEDIATE
from .model import ReplacementModel

__all__ = ["spill_cover_rows"]


def spill_cover_rows(model: ReplacementModel, schedule=None) -> tuple[sp.csr_matrix, np.ndarray]:
    """Rows ``A v >= lower`` valid for every integral point of ``model`` (built without a
    boundary), for the operators whose forced-live tensors cannot all stay on chip.

    For such an operator ``o`` (``F_o``, ``need_o`` as in
    :func:`cosma_fast.bounds.spill_cover_bound`, with ``schedule`` when the model has one):

        sum_{t in F_o} size_t * u_t >= need_o

    twice: once with ``u_t`` = loads of ``t`` (minus one for an input or weight), once with
    ``u_t = w[t]`` for the intermediates that are not graph outputs (loads otherwise).

    Why they are valid: at ``o``'s step the capacity row and ``o``'s operand rows leave
    ``capacity - bytes(o)`` for the rest, so tensors of ``F_o`` weighing ``need_o`` are
    not resident there. Such a ``t`` is resident at a reader after ``o``'s step, and the
    residency rows allow that only through a load after the step (its producer ran
    before). An input or weight was also resident at an ancestor's step before, again only
    through a load, so it has at least two. An intermediate's load needs ``w[t] = 1``.
    Hence ``u_t >= 1`` for every ``t`` of ``F_o`` off chip at ``o``'s step, and ``u_t >= 0``
    for the others (an input of ``F_o`` is read by an ancestor, so it is loaded at least once).
    """
    g = model.graph
    F, need = forced_need(g, model.capacity, schedule)
    size = g.tensor_size.astype(np.int64)
    write_back = owes_write_back(g)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lower: list[float] = []
    for o in np.flatnonzero(need > 0):
        forced = np.flatnonzero(F[o])
        variants = (False, True) if write_back[forced].any() else (False,)
        for by_write_back in variants:
            rhs = float(need[o])
            for t in forced:
                if by_write_back and write_back[t]:
                    c = model.wcol[t:t + 1]
                else:
                    c = model.lcol[t][model.lcol[t] >= 0]
                    if g.tensor_kind[t] != INTERMEDIATE:
                        rhs += float(size[t])  # its first load is compulsory
                rows.append(np.full(len(c), len(lower)))
                cols.append(c)
                vals.append(np.full(len(c), float(size[t])))
            lower.append(rhs)
    if not lower:
        return sp.csr_matrix((0, model.n_cols)), np.zeros(0)
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(len(lower), model.n_cols))
    return A, np.array(lower)
