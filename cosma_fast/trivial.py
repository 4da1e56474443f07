"""The trivial plan: load every operand, run, write back, empty the scratchpad.

It exists whenever ``capacity >= M_R`` and is the ceiling every solver must beat:
each step loads all inputs of its operator packed from address 0, allocates the
outputs right after them, and the next step stores what is still needed (or is a
graph output) and evicts everything.
"""

from __future__ import annotations

import numpy as np

from .graph import INTERMEDIATE, Graph
from .plan import Plan, Step

__all__ = ["trivial_plan"]


def trivial_plan(graph: Graph, schedule=None, alignment: int = 1) -> Plan:
    """The load-run-store-evict plan of ``graph`` in ``schedule`` (default: model order).

    Each step's operands start at multiples of ``alignment``, the one that rounding up
    wastes the most on last, so they end within :func:`cosma_fast.budgets.aligned_footprint`
    (the plan is valid whenever that fits the capacity)."""
    order = np.arange(graph.n_ops) if schedule is None else np.asarray(schedule, dtype=np.int64)
    pos = np.empty(graph.n_ops, dtype=np.int64)
    pos[order] = np.arange(len(order))
    size, kind = graph.tensor_size, graph.tensor_kind
    last_use = np.full(graph.n_tensors, -1, dtype=np.int64)
    for t in range(graph.n_tensors):
        c = graph.consumers_of(t)
        if len(c):
            last_use[t] = pos[c].max()
    offchip = kind != INTERMEDIATE  # a fresh array: updated as intermediates are stored
    resident: list[int] = []
    steps = []
    for i, o in enumerate(order):
        st = Step(int(o))
        for t in resident:
            if not offchip[t] and (last_use[t] >= i or graph.tensor_is_output[t]):
                st.stores.append(t)
                offchip[t] = True
        st.evicts = list(resident)
        operands = [(int(t), st.loads) for t in graph.inputs_of(o)] + [(int(t), st.allocs)
                                                                       for t in graph.outputs_of(o)]
        waste = [-int(size[t]) % alignment for t, _ in operands]
        if any(waste):  # stable: the first operand of the most waste moves to the end
            operands.append(operands.pop(waste.index(max(waste))))
        addr = 0
        for t, events in operands:
            addr = -(-addr // alignment) * alignment
            events.append((t, addr))
            addr += int(size[t])
        resident = [t for t, _ in st.loads] + [t for t, _ in st.allocs]
        steps.append(st)
    final = [t for t in resident if not offchip[t] and graph.tensor_is_output[t]]
    return Plan(steps, final)
