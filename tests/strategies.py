"""Hypothesis strategies shared by the test suite: random dataflow graphs."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import cosma_fast as cf


@st.composite
def dags(draw, max_ops: int = 8, max_size: int = 100, weights: bool = True,
         max_inputs: int = 3, max_outputs: int = 2) -> cf.Graph:
    """A random DAG: multi-input and multi-output operators, weights, shared inputs,
    graph outputs, tensors read by several operators, occasional unused tensors."""
    n_ops = draw(st.integers(1, max_ops))
    b = cf.GraphBuilder("random")
    size = st.integers(1, max_size)
    pool = [b.input(f"in{i}", draw(size)) for i in range(draw(st.integers(1, 3)))]
    for o in range(n_ops):
        k = draw(st.integers(0 if o else 1, min(max_inputs, len(pool))))
        ins = draw(st.lists(st.sampled_from(pool), min_size=k, max_size=k)) if k else []
        if weights and draw(st.booleans()):
            ins.append(b.weight(f"w{o}", draw(size)))
        n_out = draw(st.integers(1, max_outputs))
        outs = b.op(f"op{o}", ins, outputs=[(f"t{o}_{j}", draw(size)) for j in range(n_out)])
        pool.extend(outs)
        for t in outs:
            if draw(st.integers(0, 3)) == 0:
                b.mark_output(t)
    # the last operator's outputs are always graph outputs, like a model's result
    b.mark_output(*outs)
    return b.build()


def with_pair(before: np.ndarray, a: int, b: int) -> np.ndarray:
    """The partial order ``before`` (``before[o, q]``: ``q`` runs before ``o``) with ``a``
    before ``b`` added and closed transitively, written plainly (a new array)."""
    out = before.copy()
    out[b, a] = True
    for k in range(len(out)):
        out |= out[:, [k]] & out[[k], :]
    return out
