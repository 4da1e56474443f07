"""Capacity budgets M_R, M_H, M_P (DESIGN.md section 1, "Budgets").

``M_R`` is the largest working set of one operator: below it no plan exists.
``M_P`` is the smallest peak of live bytes over all schedules; it is computed
exactly on small graphs and otherwise bounded from above by a schedule search
(``m_p_exact`` says which). ``M_H`` is their midpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import InfeasibleError, OptionError
from .graph import Graph

__all__ = ["Budgets", "aligned_footprint", "aligned_capacity_rows", "capacity_rows", "budgets", "m_r",
           "parse_capacity", "check_capacity", "parse_bytes"]


@dataclass(frozen=True)
class Budgets:
    """The three capacity tiers of COSMA's evaluation, in bytes.

    ``m_p_exact`` is True when ``m_p`` is the proven minimum peak, False when it is
    the peak of the best schedule found (an upper bound).
    """

    m_r: int
    m_h: int
    m_p: int
    m_p_exact: bool

    def __getitem__(self, key: str) -> int:
        return {"M_R": self.m_r, "M_H": self.m_h, "M_P": self.m_p}[key.upper()]


def m_r(graph: Graph) -> int:
    """``max over operators of (input bytes + output bytes)``."""
    b = graph.op_bytes()
    return int(b.max()) if len(b) else 0


def aligned_footprint(graph: Graph, alignment: int = 1) -> np.ndarray:
    """Per operator: the fewest bytes from address 0 that hold its inputs and outputs at
    addresses that are multiples of ``alignment`` (:meth:`Graph.op_bytes` when it is 1).

    Placed in address order, every operand but the last ends before the next one's aligned
    start, so it takes its size rounded up; the least total puts last the operand that
    rounding wastes the most on."""
    if alignment == 1:
        return graph.op_bytes()
    size = graph.tensor_size.astype(np.int64)
    padded = _padded(size, alignment)
    foot = np.zeros(graph.n_ops, dtype=np.int64)
    for o in range(graph.n_ops):
        ops = np.concatenate([graph.inputs_of(o), graph.outputs_of(o)])
        if len(ops):
            foot[o] = padded[ops].sum() - (padded[ops] - size[ops]).max()
    return foot


def aligned_capacity_rows(size: np.ndarray, capacity: int, alignment: int = 1) -> tuple[int, np.ndarray]:
    """``(room, held)``: capacity rows ``sum(held[t] * r[t, i]) <= room`` that every set of
    tensors of ``size`` bytes placed at once at multiples of ``alignment`` within ``capacity``
    bytes meets.

    Sorted by address, each tensor but the top one ends where the next one may start at the
    earliest, a multiple of the alignment: it holds its size padded to the alignment, ``p``.
    The top one holds ``p - w`` for its padding ``w``, at most ``W``, the largest padding of
    any tensor here. So ``sum(p) <= capacity + W``, and ``sum(p)`` is a multiple of the
    alignment: ``room = alignment * floor((capacity + W) / alignment)``. It is not always below
    ``capacity``: the plain rows hold too. With ``alignment`` 1, the plain rows.
    """
    size = np.asarray(size, dtype=np.int64)
    if alignment <= 1:
        return int(capacity), size
    held = _padded(size, alignment)
    widest = int((held - size).max()) if len(size) else 0
    return int((int(capacity) + widest) // alignment * alignment), held


def capacity_rows(size: np.ndarray, capacity: int, alignment: int = 1) -> list[tuple[int, np.ndarray]]:
    """Every ``(room, held)`` of the capacity rows a relaxation keeps: the plain row
    ``(capacity, size)``, and with ``alignment`` > 1 also :func:`aligned_capacity_rows`' (neither
    implies the other)."""
    plain = (int(capacity), np.asarray(size, dtype=np.int64))
    return [plain] + ([aligned_capacity_rows(size, capacity, alignment)] if alignment > 1 else [])


def _padded(size: np.ndarray, alignment: int) -> np.ndarray:
    """Each size rounded up to a multiple of ``alignment``."""
    return -(-size // alignment) * alignment


def check_capacity(graph: Graph, capacity: int, alignment: int = 1) -> None:
    """Raise :class:`InfeasibleError` naming the operator that does not fit in ``capacity``
    (with ``alignment``: whose operands do not fit at aligned addresses,
    :func:`aligned_footprint`)."""
    b = graph.op_bytes()
    if len(b) and b.max() > capacity:
        o = int(np.argmax(b))
        raise InfeasibleError(
            f"capacity {capacity} bytes is below M_R = {int(b.max())}: operator {graph.op_names[o]!r} "
            f"needs {int(b[o])} bytes of inputs and outputs at once, {int(b[o]) - capacity} more than "
            f"the scratchpad has; use a capacity of at least {int(b.max())} bytes")
    if alignment == 1:  # the footprint is op_bytes
        return
    foot = aligned_footprint(graph, alignment)
    if len(foot) and foot.max() > capacity:
        o = int(np.argmax(foot))
        raise InfeasibleError(
            f"operator {graph.op_names[o]!r} does not fit in {capacity} bytes with alignment {alignment}: "
            f"its inputs and outputs need {int(foot[o])} bytes at addresses that are multiples of "
            f"{alignment}; use a capacity of at least {int(foot.max())} bytes or a smaller alignment")


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "k": 2**10, "m": 2**20, "g": 2**30}


def parse_bytes(text: str | int) -> int:
    """``"512KiB"`` -> 524288; ``"2MB"`` -> 2000000; integers pass through."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise OptionError(f"cannot read {text!r} as a size; write e.g. 1048576, 512KiB, 2MiB, 1.5MB, "
                          "or a budget name M_R, M_H, M_P")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value != int(value):
        raise OptionError(f"size {text!r} is not a whole number of bytes")
    return int(value)


#: default ``time_limit`` of :func:`budgets`
BUDGETS_TIME_LIMIT = 10.0


def parse_capacity(graph: Graph, capacity, *, time_limit: float | None = BUDGETS_TIME_LIMIT) -> int:
    """A capacity in bytes from an int, a size string or a budget name (``M_R``/``M_H``/``M_P``);
    ``M_H`` and ``M_P`` come from :func:`budgets` with ``time_limit``."""
    if isinstance(capacity, str) and capacity.strip().upper() in ("M_R", "M_H", "M_P"):
        key = capacity.strip().upper()
        if key == "M_R":
            return m_r(graph)
        return budgets(graph, time_limit=time_limit)[key]
    if isinstance(capacity, float) and capacity == int(capacity):
        capacity = int(capacity)
    cap = parse_bytes(capacity)
    if cap <= 0:
        raise OptionError(f"capacity must be positive, got {capacity!r}")
    return cap


def budgets(graph: Graph, *, include_weights: bool = True,
            time_limit: float | None = BUDGETS_TIME_LIMIT) -> Budgets:
    """``Budgets(m_r, m_h, m_p, m_p_exact)`` of ``graph``.

    ``M_P`` comes from :func:`cosma_fast.schedule.min_peak_schedule` (exact search
    within ``time_limit`` on small graphs, otherwise the best schedule found).
    """
    from .schedule import min_peak_schedule

    g = graph.with_weights(include_weights)
    mr = m_r(g)
    _, peak, exact = min_peak_schedule(g, time_limit=time_limit)
    mp = max(int(peak), mr)
    return Budgets(m_r=mr, m_h=(mr + mp) // 2, m_p=mp, m_p_exact=bool(exact))
