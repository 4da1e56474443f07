"""The plan: what every solver returns (DESIGN.md section 1, "Plan").

A :class:`Plan` is a list of :class:`Step` objects, one per operator in schedule
order, plus ``final_stores``: the stores after the last operator has run (the only
place where the outputs of the last operator can be written back, since a step's
stores come before its ``run``).

Inside a plan, tensors and operators are indices into the :class:`Graph`; the JSON
form uses names. For kernels a plan is also a set of flat arrays
(:meth:`Plan.to_arrays` / :meth:`Plan.from_arrays`): one event per store, evict,
load and output allocation, in execution order, with ``ev_ptr`` cutting them into
steps (the last slice holds the final stores).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FormatError
from .graph import Graph

__all__ = ["Step", "Plan", "STORE", "EVICT", "LOAD", "ALLOC", "PLAN_SCHEMA", "PLAN_VERSION"]

STORE, EVICT, LOAD, ALLOC = 0, 1, 2, 3
PLAN_SCHEMA = "cosma_fast.plan"
PLAN_VERSION = 1


@dataclass
class Step:
    """One schedule step: ``stores``, then ``evicts``, then ``loads`` (tensor, address),
    then ``run op`` with ``allocs`` (output tensor, address) for each output."""

    op: int
    stores: list[int] = field(default_factory=list)
    evicts: list[int] = field(default_factory=list)
    loads: list[tuple[int, int]] = field(default_factory=list)
    allocs: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Plan:
    """A schedule with its memory allocation and tensor replacement."""

    steps: list[Step]
    final_stores: list[int] = field(default_factory=list)

    @property
    def schedule(self) -> np.ndarray:
        """Operator indices in execution order."""
        return np.array([s.op for s in self.steps], dtype=np.int64)

    def traffic(self, graph: Graph) -> int:
        """Bytes loaded plus bytes stored (no validity check; use ``cf.validate``)."""
        s = graph.tensor_size
        tot = sum(int(s[t]) for st in self.steps for t in st.stores)
        tot += sum(int(s[t]) for st in self.steps for t, _ in st.loads)
        return tot + sum(int(s[t]) for t in self.final_stores)

    # ------------------------------------------------------------------ arrays
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat arrays for kernels: ``step_op`` (n), ``ev_ptr`` (n + 2),
        ``ev_kind`` (STORE/EVICT/LOAD/ALLOC), ``ev_tensor``, ``ev_addr`` (-1 when none)."""
        n = len(self.steps)
        kinds, tens, addrs = [], [], []
        ptr = np.zeros(n + 2, dtype=np.int64)
        for i, st in enumerate(self.steps):
            for t in st.stores:
                kinds.append(STORE); tens.append(t); addrs.append(-1)  # noqa: E702
            for t in st.evicts:
                kinds.append(EVICT); tens.append(t); addrs.append(-1)  # noqa: E702
            for t, a in st.loads:
                kinds.append(LOAD); tens.append(t); addrs.append(a)  # noqa: E702
            for t, a in st.allocs:
                kinds.append(ALLOC); tens.append(t); addrs.append(a)  # noqa: E702
            ptr[i + 1] = len(kinds)
        for t in self.final_stores:
            kinds.append(STORE); tens.append(t); addrs.append(-1)  # noqa: E702
        ptr[n + 1] = len(kinds)
        return {"step_op": np.array([s.op for s in self.steps], dtype=np.int64), "ev_ptr": ptr,
                "ev_kind": np.array(kinds, dtype=np.int8), "ev_tensor": np.array(tens, dtype=np.int64),
                "ev_addr": np.array(addrs, dtype=np.int64)}

    @classmethod
    def from_arrays(cls, step_op, ev_ptr, ev_kind, ev_tensor, ev_addr) -> "Plan":
        """Inverse of :meth:`to_arrays` (kernels build plans this way)."""
        step_op = np.asarray(step_op)
        ev_ptr = np.asarray(ev_ptr)
        ev_kind = np.asarray(ev_kind).tolist()
        ev_tensor = np.asarray(ev_tensor).tolist()
        ev_addr = np.asarray(ev_addr).tolist()
        n = len(step_op)
        steps = []
        for i in range(n):
            st = Step(int(step_op[i]))
            for e in range(int(ev_ptr[i]), int(ev_ptr[i + 1])):
                k, t, a = ev_kind[e], int(ev_tensor[e]), int(ev_addr[e])
                if k == STORE:
                    st.stores.append(t)
                elif k == EVICT:
                    st.evicts.append(t)
                elif k == LOAD:
                    st.loads.append((t, a))
                else:
                    st.allocs.append((t, a))
            steps.append(st)
        final = [int(ev_tensor[e]) for e in range(int(ev_ptr[n]), int(ev_ptr[n + 1]))]
        return cls(steps, final)

    # ------------------------------------------------------------------ JSON
    def to_dict(self, graph: Graph) -> dict[str, Any]:
        """JSON-ready dict with names (schema ``cosma_fast.plan`` version 1):
        ``{"schema", "version", "graph", "steps": [{"op", "store", "evict",
        "load": [[tensor, addr]], "alloc": [[tensor, addr]]}], "final_store": [...]}``."""
        tn, on = graph.tensor_names, graph.op_names
        steps = [{"op": on[s.op], "store": [tn[t] for t in s.stores],
                  "evict": [tn[t] for t in s.evicts],
                  "load": [[tn[t], int(a)] for t, a in s.loads],
                  "alloc": [[tn[t], int(a)] for t, a in s.allocs]} for s in self.steps]
        return {"schema": PLAN_SCHEMA, "version": PLAN_VERSION, "graph": graph.name,
                "steps": steps, "final_store": [tn[t] for t in self.final_stores]}

    def to_json(self, graph: Graph, path: str | Path | None = None, *, indent: int | None = None) -> str:
        """Serialise with names; also write to ``path`` when given."""
        text = json.dumps(self.to_dict(graph), indent=indent)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, graph: Graph, d: dict[str, Any]) -> "Plan":
        """Read :meth:`to_dict` output against ``graph`` (names must exist in it)."""
        if not isinstance(d, dict) or d.get("schema") != PLAN_SCHEMA:
            raise FormatError(f"not a cosma_fast plan document: expected \"schema\": \"{PLAN_SCHEMA}\"")
        if d.get("version") != PLAN_VERSION:
            raise FormatError(f"plan schema version {d.get('version')!r} is not supported "
                              f"(this cosma_fast reads version {PLAN_VERSION})")

        def tensor(name):
            if name not in graph.tensor_index:
                raise FormatError(f"plan names tensor {name!r}, which graph {graph.name!r} does not have; "
                                  "was the plan made for another graph?")
            return graph.tensor_index[name]

        def addr(a, name):
            if not isinstance(a, int) or isinstance(a, bool):
                raise FormatError(f"plan gives tensor {name!r} the address {a!r}; addresses are integers")
            return a

        try:
            steps = []
            for s in d["steps"]:
                if s["op"] not in graph.op_index:
                    raise FormatError(f"plan runs operator {s['op']!r}, which graph {graph.name!r} does not have")
                steps.append(Step(graph.op_index[s["op"]], [tensor(t) for t in s.get("store", [])],
                                  [tensor(t) for t in s.get("evict", [])],
                                  [(tensor(t), addr(a, t)) for t, a in s.get("load", [])],
                                  [(tensor(t), addr(a, t)) for t, a in s.get("alloc", [])]))
            final = [tensor(t) for t in d.get("final_store", [])]
        except FormatError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"malformed plan document: missing or wrong field {e}") from None
        return cls(steps, final)

    @classmethod
    def from_json(cls, graph: Graph, source: str | Path) -> "Plan":
        """Read a plan from a JSON string or file path, resolving names in ``graph``."""
        text = source
        if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
            p = Path(source)
            if not p.exists():
                raise FormatError(f"plan file {str(p)!r} does not exist")
            text = p.read_text(encoding="utf-8")
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise FormatError(f"plan JSON is malformed: {e}") from None
        return cls.from_dict(graph, d)
