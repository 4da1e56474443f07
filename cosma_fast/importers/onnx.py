"""Import an ONNX model as a :class:`~cosma_fast.graph.Graph` (needs ``onnx``).

Shapes come from ONNX shape inference. Initializers (and graph inputs that have
an initializer) become ``weight`` tensors; nodes whose inputs are all constant
(``Constant``, ``ConstantOfShape`` on an initializer, arithmetic on constants,
...) are folded: their outputs are weights too, since a deployed model stores
them. ``Shape``/``Size`` results are metadata, not memory. View-only nodes
(Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout, Transpose) become
aliases of the tensor they read, so memory is never counted twice. Only
weights that some operator reads are kept.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FormatError, GraphError
from ..graph import Graph, GraphBuilder

__all__ = ["from_onnx"]

_VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Transpose"}
_META_OPS = {"Shape", "Size"}


def _require_onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("cosma_fast.from_onnx needs onnx: pip install 'cosma-fast[onnx]'") from None
    return onnx


def from_onnx(path_or_model, dtype_bytes: int | None = None, *, name: str | None = None) -> Graph:
    """Read an ONNX model (path or ``onnx.ModelProto``) and return its :class:`Graph`.

    Parameters
    ----------
    path_or_model : str, Path or onnx.ModelProto
    dtype_bytes : int or None
        Bytes per element for every tensor; ``None`` uses each tensor's element type.

    Returns
    -------
    Graph
        One operator per computing node; sizes are ``numel * bytes per element``.

    Raises
    ------
    FormatError
        The file cannot be read as ONNX.
    GraphError
        A tensor's shape is unknown after shape inference (the message names the
        node), or has a zero size.
    """
    onnx = _require_onnx()
    from onnx import helper

    if isinstance(path_or_model, (str, Path)):
        try:
            model = onnx.load(str(path_or_model))
        except Exception as e:
            raise FormatError(f"cannot read ONNX model {str(path_or_model)!r}: {e}") from e
        default_name = Path(path_or_model).stem
    else:
        model = path_or_model
        default_name = model.graph.name or "onnx"
    if dtype_bytes is not None and (int(dtype_bytes) != dtype_bytes or dtype_bytes <= 0):
        raise GraphError(f"dtype_bytes must be a positive integer or None, got {dtype_bytes!r}")
    try:
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as e:
        raise GraphError(f"ONNX shape inference failed: {e}") from e
    g = model.graph

    types: dict[str, object] = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        types[vi.name] = vi.type
    init = {t.name: t for t in g.initializer}

    def elem_bytes(elem_type: int) -> int:
        if dtype_bytes is not None:
            return int(dtype_bytes)
        return int(helper.tensor_dtype_to_np_dtype(elem_type).itemsize)

    def size_from_type(tname: str, where: str) -> int:
        tp = types.get(tname)
        if tp is None or not tp.HasField("tensor_type") or not tp.tensor_type.HasField("shape"):
            raise GraphError(f"{where}: tensor {tname!r} has no inferred shape; give the model static shapes "
                             "(e.g. onnx.tools.update_model_dims) before importing")
        n = 1
        for d in tp.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                raise GraphError(f"{where}: tensor {tname!r} has a symbolic dimension {d.dim_param!r}; "
                                 "fix the batch/sequence sizes before importing")
            n *= int(d.dim_value)
        s = n * elem_bytes(tp.tensor_type.elem_type)
        if s <= 0:
            raise GraphError(f"{where}: tensor {tname!r} is empty")
        return s

    def size_of_init(t) -> int:
        n = 1
        for d in t.dims:
            n *= int(d)
        return max(1, n) * elem_bytes(t.data_type)

    b = GraphBuilder(name or default_name, meta={"source": "onnx", "dtype_bytes": dtype_bytes})
    # kind of each ONNX value: "const" (weight, declared lazily), "meta" (shape data), handle
    value: dict[str, object] = {}
    const_size: dict[str, int] = {}
    for t in g.initializer:
        value[t.name] = "const"
        const_size[t.name] = size_of_init(t)
    for vi in g.input:
        if vi.name not in init:
            value[vi.name] = b.input(vi.name, size_from_type(vi.name, f"graph input {vi.name!r}"))
    declared: dict[str, object] = {}
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}

    def resolve(tname: str):
        v = value.get(tname)
        if v == "const":
            if tname not in declared:
                declared[tname] = b.weight(tname, const_size[tname])
            return declared[tname]
        return v

    for k, node in enumerate(g.node):
        nname = node.name or f"{node.op_type}_{k}"
        ins = [i for i in node.input if i]
        outs = [o for o in node.output if o]
        kinds = [value.get(i) for i in ins]
        for i, kd in zip(ins, kinds):
            if kd is None and i not in value:
                raise GraphError(f"node {nname!r} ({node.op_type}) reads {i!r}, which nothing defines")
        if node.op_type in _META_OPS:
            for o in outs:
                value[o] = "meta"
            continue
        if all(kd in ("const", "meta") for kd in kinds):
            # constant sub-graph: its results are stored parameters (or shape data)
            for o in outs:
                if "meta" in kinds:  # arithmetic on shapes (Gather, Concat, ...) is shape data
                    value[o] = "meta"
                    continue
                if node.op_type == "Constant" and o not in types:
                    attr = next((a for a in node.attribute if a.name == "value"), None)
                    if attr is not None:
                        const_size[o] = size_of_init(attr.t)
                        value[o] = "const"
                        continue
                const_size[o] = size_from_type(o, f"constant node {nname!r} ({node.op_type})")
                value[o] = "const"
            continue
        if node.op_type in _VIEW_OPS:
            src = resolve(ins[0])
            if src == "meta":
                raise GraphError(f"node {nname!r} ({node.op_type}) views shape data as a tensor")
            value[outs[0]] = src
            for o in outs[1:]:  # Dropout's mask, only when something reads it
                if o not in used:
                    value[o] = "meta"
                    continue
                value[o] = b.op(f"{nname}:{o}", [src], outputs=[(o, size_from_type(o, nname))])[0]
            continue
        handles = [resolve(i) for i, kd in zip(ins, kinds) if kd != "meta"]
        res = b.op(nname, handles, outputs=[(o, size_from_type(o, f"node {nname!r} ({node.op_type})"))
                                            for o in outs])
        for o, h in zip(outs, res):
            value[o] = h
    marked = []
    for vi in g.output:
        v = resolve(vi.name)
        if v is None or isinstance(v, str):
            raise GraphError(f"graph output {vi.name!r} is not computed from the inputs")
        marked.append(v)
    b.mark_output(*marked)
    return b.build()
