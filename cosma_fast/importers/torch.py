"""Import a PyTorch module as a :class:`~cosma_fast.graph.Graph` (needs ``torch``).

The module is traced with ``torch.fx`` (leaf modules: those without children,
plus ``nn.MultiheadAttention``) and its shapes are propagated with
``torch.fx.passes.shape_prop.ShapeProp``. When symbolic tracing fails (control
flow on tensor properties, e.g. ``nn.Transformer``), the module is traced with
``torch.export`` instead (ATen-level operators, the same folding of views).
Trace on the ``meta`` device (build the
model under ``torch.device("meta")`` and pass meta example inputs) to need no
weight memory at all.

Mapping (DESIGN.md section 1): placeholders become ``input`` tensors, parameters
and buffers ``weight`` tensors (a weight shared by several modules is one
tensor), every computing call an operator, the traced result the ``output``
tensors. View-only and shape-only calls (reshape, view, flatten, getitem,
permute, transpose, contiguous, dropout, identity, size, ...) create no operator:
their result is an alias of the tensor they read, so memory is never counted
twice. This is the granularity COSMA used (one operator per layer call).
"""

from __future__ import annotations

import operator
from typing import Any

from ..errors import GraphError
from ..graph import Graph, GraphBuilder

__all__ = ["from_torch"]

# calls whose tensor result shares storage with (or only describes) their first tensor argument
_VIEW_FUNCTIONS = {
    "flatten", "reshape", "view", "squeeze", "unsqueeze", "transpose", "permute", "t",
    "contiguous", "expand", "expand_as", "view_as", "reshape_as", "detach", "dropout",
    "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "narrow",
    "movedim", "swapaxes", "swapdims", "unflatten", "chunk", "split", "unbind", "tensor_split",
    "identity", "clone", "to", "type", "type_as", "float", "half", "double", "int", "long",
    "_assert", "getitem", "select", "squeeze_", "unsqueeze_",
    # ATen spellings met in torch.export graphs
    "slice", "alias", "_unsafe_view", "lift_fresh_copy", "split_with_sizes", "_to_copy", "native_dropout",
}
_VIEW_MODULES = {"Flatten", "Unflatten", "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
                 "AlphaDropout", "FeatureAlphaDropout"}
# calls that only read metadata (the result is a shape, a dtype or a number, never memory)
_SHAPE_FUNCTIONS = {"size", "dim", "numel", "getattr", "len", "_assert", "shape", "ndimension", "sym_size",
                    "sym_numel", "_assert_scalar", "sym_constrain_range_for_size", "_assert_tensor_metadata"}
# calls that mutate memory in a way a dataflow graph cannot express
_UNSUPPORTED = {"setitem", "copy_", "fill_", "zero_", "index_put_", "masked_fill_", "scatter_",
                "item", "tolist", "backward"}


def _require_torch():
    try:
        import torch  # noqa: F401
        import torch.fx  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("cosma_fast.from_torch needs PyTorch: pip install 'cosma-fast[torch]'") from None
    return torch


def _call_name(node) -> str:
    t = node.target
    if isinstance(t, str):
        return t
    packet = getattr(t, "overloadpacket", None)  # ATen overloads: aten.view.default -> "view"
    if packet is not None:
        return packet.__name__
    return getattr(t, "__name__", str(t))


def _tracer_class(torch):
    import torch.fx

    class _LayerTracer(torch.fx.Tracer):
        """Traces into every container module; modules without children are operators."""

        def is_leaf_module(self, m, qualname):  # noqa: D401
            if isinstance(m, torch.nn.MultiheadAttention):
                return True
            if isinstance(m, torch.nn.Sequential):
                return False
            return next(iter(m.children()), None) is None

    return _LayerTracer


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _tensor_metas(meta) -> list | Any:
    """The tensor shapes ShapeProp (or torch.export) recorded, nested (None for non-tensors)."""
    import torch
    from torch.fx.passes.shape_prop import TensorMetadata

    if isinstance(meta, (TensorMetadata, torch.Tensor)):
        return meta
    if isinstance(meta, (list, tuple)):
        return [_tensor_metas(m) for m in meta]
    if isinstance(meta, dict):
        return [_tensor_metas(m) for m in meta.values()]
    return None


def from_torch(module, example_inputs, dtype_bytes: int = 1, *, name: str | None = None,
               meta: dict | None = None) -> Graph:
    """Trace ``module`` on ``example_inputs`` and return its dataflow :class:`Graph`.

    Parameters
    ----------
    module : torch.nn.Module
        Put in eval mode before tracing (dropout is then an alias, batch norm a layer).
    example_inputs : tensor or tuple of tensors
        Positional inputs; their shapes fix every tensor size. Meta tensors work.
    dtype_bytes : int
        Bytes per element of every tensor (COSMA uses 8-bit data: 1).

    Returns
    -------
    Graph
        One operator per computing call; sizes are ``numel * dtype_bytes``.

    Raises
    ------
    GraphError
        On a call that mutates memory (``setitem``, ``copy_``, ...), a call whose
        result shape is unknown, or a zero-sized tensor; the message names the node.
    """
    torch = _require_torch()  # also imports torch.fx
    from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

    if dtype_bytes <= 0 or int(dtype_bytes) != dtype_bytes:
        raise GraphError(f"dtype_bytes must be a positive integer, got {dtype_bytes!r}")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    module.eval()
    weight_placeholders: dict[str, str] = {}  # torch.export: placeholder -> parameter name
    tracer = "torch.fx"
    try:
        fx_graph = _tracer_class(torch)().trace(module)
        gm = torch.fx.GraphModule(module, fx_graph)
        with torch.no_grad():
            ShapeProp(gm).propagate(*example_inputs)
    except Exception as fx_error:  # torch raises many types for untraceable code
        # data-independent control flow on shapes (e.g. nn.Transformer's fast-path checks)
        # defeats symbolic tracing but not torch.export, which traces with concrete shapes
        try:
            ep = torch.export.export(module, tuple(example_inputs))
        except Exception as e:
            raise GraphError(f"neither torch.fx ({fx_error}) nor torch.export ({e}) could trace "
                             f"{type(module).__name__}; make the control flow independent of tensor values") from e
        gm = ep.graph_module
        sig = ep.graph_signature
        weight_placeholders = dict(sig.inputs_to_parameters)
        weight_placeholders.update(sig.inputs_to_buffers)
        weight_placeholders.update(getattr(sig, "inputs_to_lifted_tensor_constants", {}))
        params = dict(ep.state_dict)
        params.update(getattr(ep, "constants", {}))
        tracer = "torch.export"

    gname = name or type(module).__name__
    b = GraphBuilder(gname, meta=dict(meta or {}, source=tracer, dtype_bytes=int(dtype_bytes)))
    weight_by_id: dict[int, Any] = {}  # id(parameter) -> handle (shared weights once)
    value: dict[str, Any] = {}  # fx node name -> handle | list | None

    def size_of(node, tm) -> int:
        s = _numel(tm.shape) * int(dtype_bytes)
        if s <= 0:
            raise GraphError(f"node {node.name!r} ({_call_name(node)}) produces an empty tensor of shape "
                             f"{tuple(tm.shape)}; cosma_fast needs positive sizes")
        return s

    def weight(qualname: str, tensor):
        h = weight_by_id.get(id(tensor))
        if h is None:
            h = b.weight(qualname, max(1, tensor.numel()) * int(dtype_bytes))
            weight_by_id[id(tensor)] = h
        return h

    def tensors_in(args) -> list:
        out: list = []

        def walk(a):
            if isinstance(a, torch.fx.Node):
                v = value.get(a.name)
                walk_value(v)
            elif isinstance(a, (list, tuple)):
                for x in a:
                    walk(x)
            elif isinstance(a, dict):
                for x in a.values():
                    walk(x)
            elif isinstance(a, slice):
                walk([a.start, a.stop, a.step])

        def walk_value(v):
            if v is None:
                return
            if isinstance(v, list):
                for x in v:
                    walk_value(x)
            else:
                out.append(v)

        walk(args)
        seen, uniq = set(), []
        for h in out:
            if h.name not in seen:
                seen.add(h.name)
                uniq.append(h)
        return uniq

    def first_tensor_value(args):
        for a in args:
            if isinstance(a, torch.fx.Node) and value.get(a.name) is not None:
                return value[a.name]
        return None

    for node in gm.graph.nodes:
        tm = node.meta.get("tensor_meta", node.meta.get("val"))
        if node.op == "placeholder" and node.name in weight_placeholders:
            qual = weight_placeholders[node.name]
            value[node.name] = weight(qual, params[qual])
            continue
        if node.op == "placeholder":
            if not isinstance(tm, (TensorMetadata, torch.Tensor)):
                raise GraphError(f"input {node.name!r} is not a tensor; pass tensors as example_inputs")
            value[node.name] = b.input(node.name, size_of(node, tm))
            continue
        if node.op == "get_attr":
            obj = gm
            for part in str(node.target).split("."):
                obj = getattr(obj, part)
            value[node.name] = weight(str(node.target), obj) if isinstance(obj, torch.Tensor) else None
            continue
        if node.op == "output":
            outs = tensors_in(node.args)
            if not outs:
                raise GraphError("the traced module returns no tensor; return at least one tensor")
            b.mark_output(*outs)
            continue

        cname = _call_name(node)
        if cname in _UNSUPPORTED or (node.op == "call_function" and node.target is operator.setitem):
            raise GraphError(f"node {node.name!r} calls {cname!r}, which mutates a tensor in place and has no "
                             "dataflow equivalent; rewrite it out of place (e.g. torch.cat / torch.where)")
        module_type = type(gm.get_submodule(node.target)).__name__ if node.op == "call_module" else None
        shapes = _tensor_metas(tm)

        # getitem on a multi-output value selects that output; on a tensor it is a view
        if node.op == "call_function" and node.target is operator.getitem:
            src = value.get(node.args[0].name) if isinstance(node.args[0], torch.fx.Node) else None
            if isinstance(src, list):
                idx = node.args[1]
                value[node.name] = src[idx] if isinstance(idx, int) else None
                if isinstance(idx, slice):
                    value[node.name] = src[idx]
                continue
            value[node.name] = src
            continue
        if cname in _SHAPE_FUNCTIONS and shapes is None or (shapes is None and not tensors_in(node.args)
                                                            and not tensors_in(node.kwargs)):
            value[node.name] = None  # a number, a shape, or a constant: no memory
            continue
        if cname in _VIEW_FUNCTIONS or module_type in _VIEW_MODULES:
            v = first_tensor_value(node.args)
            if v is None:
                raise GraphError(f"view node {node.name!r} ({cname}) reads no tensor")
            if isinstance(shapes, list) and not isinstance(v, list):
                v = [v if s is not None else None for s in _flat(shapes)]
            value[node.name] = v
            continue
        if shapes is None:
            raise GraphError(f"node {node.name!r} ({cname}) produces no tensor of known shape; "
                             "cosma_fast cannot size its output (is it supported by ShapeProp?)")

        inputs = tensors_in(node.args) + tensors_in(node.kwargs)
        if node.op == "call_module":
            mod = gm.get_submodule(node.target)
            for pname, p in list(mod.named_parameters()) + list(mod.named_buffers()):
                inputs.append(weight(f"{node.target}.{pname}", p))
        flat = _flat(shapes)
        outs = []
        for i, s in enumerate(flat):
            if s is not None:
                outs.append((node.name if len(flat) == 1 else f"{node.name}:{i}", size_of(node, s)))
        if not outs:
            raise GraphError(f"node {node.name!r} ({cname}) produces no tensor; cosma_fast cannot model it")
        handles = b.op(node.name, inputs, outputs=outs)
        if isinstance(shapes, list):
            it = iter(handles)
            value[node.name] = [next(it) if s is not None else None for s in flat]
        else:
            value[node.name] = handles[0]
    return b.build()


def _flat(shapes) -> list:
    if isinstance(shapes, list):
        out = []
        for s in shapes:
            out.extend(_flat(s))
        return out
    return [shapes]
