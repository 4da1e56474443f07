"""The dataflow graph: tensors and operators as flat numpy arrays.

A :class:`Graph` is immutable once built. It keeps every fact the kernels need in
flat arrays (CSR for operator inputs/outputs and for tensor consumers) and the
names only for messages and files. Operators are stored in a topological order
(the order they were given in when that is already topological, otherwise the
stable topological order that prefers the given order); that order is the
"model order" that baselines use.

Build one with :class:`GraphBuilder`, :meth:`Graph.from_json` or
:meth:`Graph.from_networkx`. See DESIGN.md section 1 for the rules checked here.
"""

from __future__ import annotations

import gzip
import heapq
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import FormatError, GraphError

__all__ = [
    "INPUT", "WEIGHT", "INTERMEDIATE", "KIND_NAMES",
    "Graph", "GraphBuilder", "TensorHandle", "GRAPH_SCHEMA", "GRAPH_VERSION",
]

INPUT, WEIGHT, INTERMEDIATE = 0, 1, 2
KIND_NAMES = ("input", "weight", "intermediate")
_KIND_BY_NAME = {n: i for i, n in enumerate(KIND_NAMES)}

GRAPH_SCHEMA = "cosma_fast.graph"
GRAPH_VERSION = 1


@dataclass(frozen=True)
class TensorHandle:
    """A tensor of a :class:`GraphBuilder`: pass it (or its name) to ``op``."""

    name: str
    index: int
    size: int

    def __str__(self) -> str:  # lets handles be used where names are expected
        return self.name


def _csr(lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    for i, row in enumerate(lists):
        ptr[i + 1] = ptr[i] + len(row)
    idx = np.fromiter((x for row in lists for x in row), dtype=np.int64, count=int(ptr[-1]))
    return ptr, idx


class Graph:
    """A DNN dataflow graph (DESIGN.md section 1), stored as flat arrays.

    Tensor arrays (length ``n_tensors``): ``tensor_size`` (int64 bytes),
    ``tensor_kind`` (int8: ``INPUT``, ``WEIGHT``, ``INTERMEDIATE``),
    ``tensor_is_output`` (bool), ``tensor_producer`` (int64 op index, -1 if none).

    Operator CSR arrays: ``op_in_ptr``/``op_in_idx`` (inputs in the given order, a
    repeated input recorded once), ``op_out_ptr``/``op_out_idx`` (outputs).
    Tensor consumers CSR: ``cons_ptr``/``cons_idx`` (consumer ops ascending).

    Names: ``tensor_names``, ``op_names`` (lists of str), with ``tensor_index`` and
    ``op_index`` dicts from name to index. ``name`` and ``meta`` describe the graph.
    """

    def __init__(self, *, tensor_names: list[str], tensor_size, tensor_kind,
                 tensor_is_output, op_names: list[str], op_inputs: list[list[int]],
                 op_outputs: list[list[int]], name: str = "graph",
                 meta: dict | None = None):
        self.name = str(name)
        self.meta = dict(meta or {})
        self.tensor_names = list(tensor_names)
        self.tensor_size = np.asarray(tensor_size, dtype=np.int64).copy()
        self.tensor_kind = np.asarray(tensor_kind, dtype=np.int8).copy()
        self.tensor_is_output = np.asarray(tensor_is_output, dtype=np.bool_).copy()
        nt = len(self.tensor_names)
        if not (len(self.tensor_size) == len(self.tensor_kind) == len(self.tensor_is_output) == nt):
            raise GraphError("tensor arrays have different lengths; pass one entry per tensor")
        self.tensor_index = {}
        for i, n in enumerate(self.tensor_names):
            if n in self.tensor_index:
                raise GraphError(f"tensor name {n!r} is used twice; give every tensor a unique name")
            self.tensor_index[n] = i
        for i in range(nt):
            if self.tensor_size[i] <= 0:
                raise GraphError(
                    f"tensor {self.tensor_names[i]!r} has size {int(self.tensor_size[i])}; "
                    "every tensor needs a positive size in bytes")
            if self.tensor_kind[i] not in (INPUT, WEIGHT, INTERMEDIATE):
                raise GraphError(f"tensor {self.tensor_names[i]!r} has unknown kind {int(self.tensor_kind[i])}")
        op_names = list(op_names)
        if not (len(op_names) == len(op_inputs) == len(op_outputs)):
            raise GraphError("operator lists have different lengths; pass one entry per operator")
        seen_ops: set[str] = set()
        for n in op_names:
            if n in seen_ops:
                raise GraphError(f"operator name {n!r} is used twice; give every operator a unique name")
            seen_ops.add(n)
        # dedupe inputs (order kept), check outputs
        ins = []
        producer = np.full(nt, -1, dtype=np.int64)
        for o, (name_o, inp, out) in enumerate(zip(op_names, op_inputs, op_outputs)):
            seen: set[int] = set()
            row = []
            for t in inp:
                t = int(t)
                if not 0 <= t < nt:
                    raise GraphError(f"operator {name_o!r} reads tensor index {t}, which does not exist")
                if t not in seen:
                    seen.add(t)
                    row.append(t)
            ins.append(row)
            if len(out) == 0:
                raise GraphError(f"operator {name_o!r} has no outputs; every operator must produce >= 1 tensor")
            for t in out:
                t = int(t)
                if not 0 <= t < nt:
                    raise GraphError(f"operator {name_o!r} writes tensor index {t}, which does not exist")
                tn = self.tensor_names[t]
                if self.tensor_kind[t] != INTERMEDIATE:
                    raise GraphError(
                        f"operator {name_o!r} produces tensor {tn!r} of kind "
                        f"{KIND_NAMES[self.tensor_kind[t]]}; only intermediates are produced "
                        "(declare it as an operator output instead)")
                if producer[t] != -1:
                    raise GraphError(
                        f"tensor {tn!r} is produced by both {op_names[producer[t]]!r} and {name_o!r}; "
                        "every tensor needs exactly one producer")
                if t in seen:
                    raise GraphError(f"operator {name_o!r} reads its own output {tn!r} (a cycle)")
                producer[t] = o
        for t in range(nt):
            if self.tensor_kind[t] == INTERMEDIATE and producer[t] == -1:
                raise GraphError(
                    f"intermediate tensor {self.tensor_names[t]!r} has no producer (dangling); "
                    "declare it as an input or weight, or add the operator that produces it")
        order = _stable_topological_order(ins, op_outputs, producer, op_names, self.tensor_names)
        # canonicalise: operators stored in topological order
        self.op_names = [op_names[o] for o in order]
        ins = [ins[o] for o in order]
        outs = [[int(t) for t in op_outputs[o]] for o in order]
        self.op_index = {n: i for i, n in enumerate(self.op_names)}
        self.op_in_ptr, self.op_in_idx = _csr(ins)
        self.op_out_ptr, self.op_out_idx = _csr(outs)
        self.tensor_producer = np.full(nt, -1, dtype=np.int64)
        for o, row in enumerate(outs):
            for t in row:
                self.tensor_producer[t] = o
        cons: list[list[int]] = [[] for _ in range(nt)]
        for o, row in enumerate(ins):
            for t in row:
                cons[t].append(o)
        self.cons_ptr, self.cons_idx = _csr(cons)
        for arr in (self.tensor_size, self.tensor_kind, self.tensor_is_output, self.tensor_producer,
                    self.op_in_ptr, self.op_in_idx, self.op_out_ptr, self.op_out_idx,
                    self.cons_ptr, self.cons_idx):
            arr.setflags(write=False)

    # ------------------------------------------------------------------ basics
    @property
    def n_tensors(self) -> int:
        return len(self.tensor_names)

    @property
    def n_ops(self) -> int:
        return len(self.op_names)

    def inputs_of(self, op: int) -> np.ndarray:
        """Input tensor indices of operator ``op`` (each once, in the given order)."""
        return self.op_in_idx[self.op_in_ptr[op]:self.op_in_ptr[op + 1]]

    def outputs_of(self, op: int) -> np.ndarray:
        """Output tensor indices of operator ``op``."""
        return self.op_out_idx[self.op_out_ptr[op]:self.op_out_ptr[op + 1]]

    def consumers_of(self, t: int) -> np.ndarray:
        """Operators that read tensor ``t``, ascending."""
        return self.cons_idx[self.cons_ptr[t]:self.cons_ptr[t + 1]]

    def op_bytes(self) -> np.ndarray:
        """Per operator: bytes of its inputs plus its outputs (what must be resident to run it)."""
        s = self.tensor_size
        if self.n_ops == 0:
            return np.zeros(0, np.int64)
        # reduceat reads one element for an empty row: a trailing 0, masked out below
        ins = np.add.reduceat(np.append(s[self.op_in_idx], 0), self.op_in_ptr[:-1])
        ins = np.where(np.diff(self.op_in_ptr) > 0, ins, 0)
        outs = np.add.reduceat(s[self.op_out_idx], self.op_out_ptr[:-1]) if self.n_ops else np.zeros(0, np.int64)
        return (ins + outs).astype(np.int64)

    def compulsory(self) -> int:
        """Traffic no plan can avoid (DESIGN.md section 1, "Cost").

        Bytes of every input or weight that some operator reads, plus the bytes of
        every intermediate flagged ``output`` (an input or weight flagged output already
        has its off-chip copy and costs nothing more).
        """
        s = self.tensor_size
        read = np.diff(self.cons_ptr) > 0
        offchip = self.tensor_kind != INTERMEDIATE
        out = self.tensor_is_output & ~offchip
        return int(s[read & offchip].sum() + s[out].sum())

    def total_bytes(self) -> int:
        """Bytes of all tensors that take part in some operator."""
        used = (np.diff(self.cons_ptr) > 0) | (self.tensor_producer >= 0)
        return int(self.tensor_size[used].sum())

    def activation_only(self) -> "Graph":
        """The graph of COSMA's ``include_weights=False`` setting: weights removed.

        Weight tensors are dropped from the graph and from every operator's inputs,
        so they count neither for capacity nor for traffic.
        """
        keep = [t for t in range(self.n_tensors) if self.tensor_kind[t] != WEIGHT]
        if len(keep) == self.n_tensors:
            return self
        new = {t: i for i, t in enumerate(keep)}
        meta = dict(self.meta, include_weights=False)
        return Graph(
            tensor_names=[self.tensor_names[t] for t in keep],
            tensor_size=self.tensor_size[keep], tensor_kind=self.tensor_kind[keep],
            tensor_is_output=self.tensor_is_output[keep], op_names=self.op_names,
            op_inputs=[[new[t] for t in self.inputs_of(o) if t in new] for o in range(self.n_ops)],
            op_outputs=[[new[t] for t in self.outputs_of(o)] for o in range(self.n_ops)],
            name=self.name, meta=meta)

    def with_weights(self, include_weights: bool) -> "Graph":
        """``self`` when ``include_weights`` is true, else :meth:`activation_only`."""
        return self if include_weights else self.activation_only()

    def __repr__(self) -> str:
        return (f"Graph({self.name!r}, {self.n_ops} operators, {self.n_tensors} tensors, "
                f"{int(self.tensor_size.sum())} bytes)")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The graph as a JSON-ready dict (schema ``cosma_fast.graph`` version 1).

        ``{"schema", "version", "name", "meta", "tensors": [{"name", "size", "kind",
        "output"}], "operators": [{"name", "inputs": [tensor names], "outputs": [...]}]}``
        """
        tensors = [{"name": self.tensor_names[t], "size": int(self.tensor_size[t]),
                    "kind": KIND_NAMES[self.tensor_kind[t]],
                    "output": bool(self.tensor_is_output[t])} for t in range(self.n_tensors)]
        ops = [{"name": self.op_names[o],
                "inputs": [self.tensor_names[t] for t in self.inputs_of(o)],
                "outputs": [self.tensor_names[t] for t in self.outputs_of(o)]}
               for o in range(self.n_ops)]
        return {"schema": GRAPH_SCHEMA, "version": GRAPH_VERSION, "name": self.name,
                "meta": self.meta, "tensors": tensors, "operators": ops}

    def to_json(self, path: str | Path | None = None, *, indent: int | None = None) -> str:
        """Serialise to JSON; also write it to ``path`` when given (``.gz`` compresses)."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            p = Path(path)
            if p.suffix == ".gz":
                with gzip.open(p, "wt", encoding="utf-8") as f:
                    f.write(text)
            else:
                p.write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Graph":
        """Build a graph from :meth:`to_dict` output; raises FormatError/GraphError."""
        if not isinstance(d, dict) or d.get("schema") != GRAPH_SCHEMA:
            raise FormatError(f"not a cosma_fast graph document: expected \"schema\": \"{GRAPH_SCHEMA}\"")
        if d.get("version") != GRAPH_VERSION:
            raise FormatError(f"graph schema version {d.get('version')!r} is not supported "
                              f"(this cosma_fast reads version {GRAPH_VERSION})")
        try:
            b = GraphBuilder(d.get("name", "graph"), meta=d.get("meta") or {})
            for t in d["tensors"]:
                kind = t.get("kind", "intermediate")
                if kind not in _KIND_BY_NAME:
                    raise GraphError(f"tensor {t.get('name')!r} has unknown kind {kind!r}; "
                                     f"use one of {', '.join(KIND_NAMES)}")
                b._declare(t["name"], t["size"], _KIND_BY_NAME[kind], bool(t.get("output", False)))
            for o in d["operators"]:
                b._op_by_index(o["name"], o["inputs"], o["outputs"])
        except (KeyError, TypeError) as e:
            raise FormatError(f"malformed graph document: missing or wrong field {e}") from None
        return b.build()

    @classmethod
    def from_json(cls, source: str | Path) -> "Graph":
        """Read a graph from a JSON string or a ``.json``/``.json.gz`` file path."""
        text = source
        if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
            p = Path(source)
            if not p.exists():
                raise FormatError(f"graph file {str(p)!r} does not exist")
            try:
                if p.suffix == ".gz":
                    with gzip.open(p, "rt", encoding="utf-8") as f:
                        text = f.read()
                else:
                    text = p.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise FormatError(f"cannot read graph file {str(p)!r}: {e}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise FormatError(f"graph JSON is malformed: {e}") from None
        return cls.from_dict(d)

    # ------------------------------------------------------------------ networkx
    def to_networkx(self):
        """A bipartite ``networkx.DiGraph``.

        Nodes are ``("tensor", name)`` with attributes ``size``, ``kind``, ``output``,
        and ``("op", name)``; edges run tensor -> op for inputs (attribute ``index``,
        the input position) and op -> tensor for outputs.
        """
        import networkx as nx
        g = nx.DiGraph(name=self.name, **{"meta": self.meta})
        for t in range(self.n_tensors):
            g.add_node(("tensor", self.tensor_names[t]), size=int(self.tensor_size[t]),
                       kind=KIND_NAMES[self.tensor_kind[t]], output=bool(self.tensor_is_output[t]))
        for o in range(self.n_ops):
            g.add_node(("op", self.op_names[o]), order=o)
            for i, t in enumerate(self.inputs_of(o)):
                g.add_edge(("tensor", self.tensor_names[t]), ("op", self.op_names[o]), index=i)
            for i, t in enumerate(self.outputs_of(o)):
                g.add_edge(("op", self.op_names[o]), ("tensor", self.tensor_names[t]), index=i)
        return g

    @classmethod
    def from_networkx(cls, g) -> "Graph":
        """Inverse of :meth:`to_networkx`.

        Tensor nodes need ``size``; ``kind`` defaults to ``intermediate`` when the
        tensor has a producer and ``input`` otherwise. Operator order follows the
        ``order`` attribute when present, else insertion order.
        """
        b = GraphBuilder(g.graph.get("name", "graph"), meta=g.graph.get("meta") or {})
        ops = []
        for node, data in g.nodes(data=True):
            if not (isinstance(node, tuple) and len(node) == 2 and node[0] in ("tensor", "op")):
                raise GraphError(f"networkx node {node!r} is not ('tensor', name) or ('op', name)")
            if node[0] == "tensor":
                if "size" not in data:
                    raise GraphError(f"tensor {node[1]!r} has no 'size' attribute; give its size in bytes")
                kind = data.get("kind")
                if kind is None:
                    kind = "intermediate" if g.in_degree(node) else "input"
                if kind not in _KIND_BY_NAME:
                    raise GraphError(f"tensor {node[1]!r} has unknown kind {kind!r}")
                b._declare(node[1], data["size"], _KIND_BY_NAME[kind], bool(data.get("output", False)))
            else:
                ops.append((data.get("order", len(ops)), len(ops), node))
        for _, _, node in sorted(ops):
            ins = sorted(g.in_edges(node, data=True), key=lambda e: e[2].get("index", 0))
            outs = sorted(g.out_edges(node, data=True), key=lambda e: e[2].get("index", 0))
            b._op_by_index(node[1], [u[1] for u, _, _ in ins], [v[1] for _, v, _ in outs])
        return b.build()


def _stable_topological_order(ins, outs, producer, op_names, tensor_names) -> list[int]:
    """Kahn's algorithm taking the smallest ready index first; raises on a cycle."""
    n = len(ins)
    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for o in range(n):
        preds = {int(producer[t]) for t in ins[o] if producer[t] >= 0}
        indeg[o] = len(preds)
        for p in preds:
            succ[p].append(o)
    ready = [o for o in range(n) if indeg[o] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        o = heapq.heappop(ready)
        order.append(o)
        for s in succ[o]:
            indeg[s] -= 1
            if indeg[s] == 0:
                heapq.heappush(ready, s)
    if len(order) < n:
        stuck = [o for o in range(n) if indeg[o] > 0]
        cyc = ", ".join(repr(op_names[o]) for o in stuck[:5])
        raise GraphError(f"the operator graph has a cycle through {cyc}; a dataflow graph must be acyclic")
    return order


class GraphBuilder:
    """Build a :class:`Graph` step by step.

    >>> b = GraphBuilder("tiny")
    >>> x = b.input("x", 100)
    >>> w = b.weight("w", 10)
    >>> (y,) = b.op("conv", [x, w], outputs=[("y", 50)])
    >>> b.mark_output(y)
    >>> g = b.build()
    """

    def __init__(self, name: str = "graph", meta: dict | None = None):
        self.name = name
        self.meta = dict(meta or {})
        self._names: list[str] = []
        self._size: list[int] = []
        self._kind: list[int] = []
        self._out: list[bool] = []
        self._index: dict[str, int] = {}
        self._op_names: list[str] = []
        self._op_in: list[list[int]] = []
        self._op_out: list[list[int]] = []
        self._pending_ops: list[tuple[str, list, list]] = []
        self._op_name_set: set[str] = set()

    def _declare(self, name, size, kind, output=False) -> TensorHandle:
        name = str(name)
        if name in self._index:
            raise GraphError(f"tensor name {name!r} is used twice; give every tensor a unique name")
        try:
            isize = int(size)
        except (TypeError, ValueError):
            raise GraphError(f"tensor {name!r} has size {size!r}; sizes are integers (bytes)") from None
        if isize != size or isize <= 0:
            raise GraphError(f"tensor {name!r} has size {size!r}; every tensor needs a positive integer size in bytes")
        self._index[name] = len(self._names)
        self._names.append(name)
        self._size.append(isize)
        self._kind.append(kind)
        self._out.append(bool(output))
        return TensorHandle(name, len(self._names) - 1, isize)

    def _resolve(self, t, op_name: str) -> int:
        key = t.name if isinstance(t, TensorHandle) else str(t)
        if key not in self._index:
            raise GraphError(f"operator {op_name!r} reads tensor {key!r}, which is not declared; "
                             "declare it with input(), weight() or as an earlier operator's output")
        return self._index[key]

    def input(self, name: str, size: int) -> TensorHandle:
        """Declare a graph input of ``size`` bytes (starts off-chip)."""
        return self._declare(name, size, INPUT)

    def weight(self, name: str, size: int) -> TensorHandle:
        """Declare a constant parameter of ``size`` bytes (starts off-chip)."""
        return self._declare(name, size, WEIGHT)

    def op(self, name: str, inputs: Iterable, outputs: Sequence[tuple[str, int]]) -> list[TensorHandle]:
        """Add operator ``name`` reading ``inputs`` (handles or names) and creating
        ``outputs`` given as ``(name, size)`` pairs; returns the output handles."""
        name = str(name)
        if name in self._op_name_set:
            raise GraphError(f"operator name {name!r} is used twice; give every operator a unique name")
        ins = [self._resolve(t, name) for t in inputs]
        if not outputs:
            raise GraphError(f"operator {name!r} has no outputs; every operator must produce >= 1 tensor")
        handles = []
        for item in outputs:
            try:
                tname, size = item
            except (TypeError, ValueError):
                raise GraphError(f"operator {name!r}: outputs are (name, size) pairs, got {item!r}") from None
            handles.append(self._declare(tname, size, INTERMEDIATE))
        self._op_names.append(name)
        self._op_name_set.add(name)
        self._op_in.append(ins)
        self._op_out.append([h.index for h in handles])
        return handles

    def _op_by_index(self, name, inputs, outputs) -> None:
        """Add an operator whose output tensors are already declared (file readers)."""
        name = str(name)
        ins = [self._resolve(t, name) for t in inputs]
        outs = []
        for t in outputs:
            if str(t) not in self._index:
                raise GraphError(f"operator {name!r} writes tensor {str(t)!r}, which is not declared")
            outs.append(self._index[str(t)])
        self._op_names.append(name)
        self._op_name_set.add(name)
        self._op_in.append(ins)
        self._op_out.append(outs)

    def mark_output(self, *tensors) -> None:
        """Flag tensors (handles or names) as graph outputs: they must end off-chip."""
        for t in tensors:
            key = t.name if isinstance(t, TensorHandle) else str(t)
            if key not in self._index:
                raise GraphError(f"cannot mark {key!r} as output: no such tensor")
            self._out[self._index[key]] = True

    def build(self) -> Graph:
        """Check every rule of DESIGN.md section 1 and return the :class:`Graph`."""
        return Graph(tensor_names=self._names, tensor_size=self._size, tensor_kind=self._kind,
                     tensor_is_output=self._out, op_names=self._op_names, op_inputs=self._op_in,
                     op_outputs=self._op_out, name=self.name, meta=self.meta)
