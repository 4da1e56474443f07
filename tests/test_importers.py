"""from_torch and from_onnx on small modules with hand-checked sizes."""

from __future__ import annotations

import os

import numpy as np
import pytest

import cosma_fast as cf
from cosma_fast import INPUT, INTERMEDIATE, WEIGHT, GraphError

try:
    import torch
    from torch import nn
except ImportError:  # the ONNX tests below still run
    torch = nn = None
try:
    import onnx
except ImportError:
    onnx = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
needs_onnx = pytest.mark.skipif(onnx is None, reason="onnx is not installed")


def sizes(g, kind):
    return sorted(int(s) for s, k in zip(g.tensor_size, g.tensor_kind) if k == kind)


def op_of(g, name):
    o = g.op_index[name]
    return ([g.tensor_names[t] for t in g.inputs_of(o)], [g.tensor_names[t] for t in g.outputs_of(o)])


if torch is not None:
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.relu(self.conv2(self.relu(self.conv1(x))) + x)


@needs_torch
def test_residual_block_sizes_and_wiring():
    g = cf.from_torch(Residual(), torch.zeros(1, 4, 8, 8), dtype_bytes=2)
    assert g.n_ops == 5  # conv1, relu, conv2, add, relu
    act = 4 * 8 * 8 * 2
    assert sizes(g, INPUT) == [act]
    assert sizes(g, INTERMEDIATE) == [act] * 5
    # conv1.weight 4*4*3*3, conv2.weight same, conv2.bias 4 (elements x 2 bytes)
    assert sizes(g, WEIGHT) == [8, 288, 288]
    ins, _ = op_of(g, "add")
    assert "x" in ins and "conv2" in ins
    assert g.tensor_is_output.sum() == 1 and g.tensor_producer[np.flatnonzero(g.tensor_is_output)[0]] == g.n_ops - 1
    assert cf.budgets(g).m_r == 3 * act  # the add: two inputs and one output


if torch is not None:
    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 5, 1)
            self.b = nn.Conv2d(3, 7, 1)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            y = torch.cat([self.a(x), self.b(x)], dim=1)
            return self.drop(torch.flatten(y, 1)).view(1, -1, 2).permute(0, 2, 1).contiguous()


@needs_torch
def test_concat_branches_and_views_fold():
    g = cf.from_torch(Branches(), torch.zeros(1, 3, 4, 4))
    assert g.op_names == ["a", "b", "cat"]  # flatten, dropout, view, permute, contiguous fold away
    assert int(g.tensor_size[g.tensor_index["cat"]]) == 12 * 16
    assert bool(g.tensor_is_output[g.tensor_index["cat"]])


if torch is not None:
    class MultiOut(nn.Module):
        def forward(self, x):
            values, indices = torch.max(x, dim=1)
            a, b = torch.chunk(x, 2, dim=1)
            return values + indices, a * b


@needs_torch
def test_multi_output_op_and_chunk_alias():
    g = cf.from_torch(MultiOut(), torch.zeros(2, 6))
    ins, outs = op_of(g, "max_1")
    assert ins == ["x"] and outs == ["max_1:0", "max_1:1"]
    assert [int(g.tensor_size[g.tensor_index[t]]) for t in outs] == [2, 2]
    # chunk is a view: the multiply reads the whole input once, no chunk operator
    assert "chunk" not in g.op_names
    assert op_of(g, "mul")[0] == ["x"]
    assert op_of(g, "add")[0] == ["max_1:0", "max_1:1"]


if torch is not None:
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(8, 8, bias=False)
            self.l2 = nn.Linear(8, 8, bias=False)
            self.l2.weight = self.l1.weight

        def forward(self, x):
            return self.l2(self.l1(x))


@needs_torch
def test_shared_weight_is_one_tensor():
    g = cf.from_torch(Tied(), torch.zeros(1, 8))
    assert sizes(g, WEIGHT) == [64]
    w = g.tensor_names[int(np.flatnonzero(g.tensor_kind == WEIGHT)[0])]
    assert w in op_of(g, "l1")[0] and w in op_of(g, "l2")[0]


@needs_torch
def test_meta_device_trace_matches_cpu():
    with torch.device("meta"):
        m = Residual()
        x = torch.empty(1, 4, 8, 8)
    assert cf.from_torch(m, (x,)) == cf.from_torch(Residual(), torch.zeros(1, 4, 8, 8))


@needs_torch
def test_untraceable_by_fx_falls_back_to_torch_export():
    # nn.TransformerEncoderLayer's fast-path checks branch on tensor properties: torch.fx fails
    with torch.device("meta"):
        m = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, batch_first=True)
        x = torch.empty(1, 5, 16)
    g = cf.from_torch(m, (x,))
    assert g.meta["source"] == "torch.export"
    assert int(g.tensor_size[g.tensor_kind == WEIGHT].sum()) == sum(p.numel() for p in m.parameters())
    assert sizes(g, INPUT) == [80]
    ops = [n.rstrip("_0123456789") for n in g.op_names]
    assert ops.count("scaled_dot_product_attention") == 1 and ops.count("layer_norm") == 2
    assert not any(o in ("view", "transpose", "permute", "reshape", "select") for o in ops)


if torch is not None:
    class InPlaceFill(nn.Module):
        def forward(self, x):
            y = x + 1
            y.fill_(0)
            return y


@needs_torch
def test_unsupported_op_names_the_node():
    with pytest.raises(GraphError, match="'fill_'.*in place"):
        cf.from_torch(InPlaceFill(), torch.zeros(2, 2))


if torch is not None:
    class Empty(nn.Module):
        def forward(self, x):
            return x[:, :0] * 2


@needs_torch
def test_empty_tensor_is_an_error_not_zero_size():
    with pytest.raises(GraphError, match="mul"):
        cf.from_torch(Empty(), torch.zeros(2, 2))


# --------------------------------------------------------------------------- ONNX


def tiny_onnx():
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.zeros((8, 4), np.float32), "w")
    shape = numpy_helper.from_array(np.array([1, 32], np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["flat"], name="reshape"),
        helper.make_node("Constant", [], ["c"], name="const",
                         value=numpy_helper.from_array(np.ones((1, 32), np.float32))),
        helper.make_node("Mul", ["c", "c"], ["c2"], name="fold_me"),  # constant-only: a weight
        helper.make_node("Add", ["flat", "c2"], ["y"], name="add"),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])],
                              initializer=[w, shape])
    return helper.make_model(graph)


@needs_onnx
def test_onnx_tiny_model():
    g = cf.from_onnx(tiny_onnx())
    assert g.op_names == ["mm", "relu", "add"]
    assert op_of(g, "add")[0] == ["r", "c2"]  # the reshape folded into an alias of r
    assert int(g.tensor_size[g.tensor_index["x"]]) == 8 * 8 * 4
    assert int(g.tensor_size[g.tensor_index["c2"]]) == 32 * 4
    assert g.tensor_kind[g.tensor_index["c2"]] == WEIGHT
    assert "shape" not in g.tensor_index  # read by nothing that computes
    g1 = cf.from_onnx(tiny_onnx(), dtype_bytes=1)
    assert int(g1.tensor_size[g1.tensor_index["x"]]) == 64


@needs_onnx
def test_onnx_shape_arithmetic_is_not_memory():
    from onnx import TensorProto, helper, numpy_helper

    idx = numpy_helper.from_array(np.array([0], np.int64), "idx")
    minus1 = numpy_helper.from_array(np.array([-1], np.int64), "minus1")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Shape", ["r"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "idx"], ["n"], name="gather"),
        helper.make_node("Concat", ["n", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["r", "target"], ["flat"], name="reshape"),
        helper.make_node("Sigmoid", ["flat"], ["y"], name="sigmoid"),
    ]
    graph = helper.make_graph(nodes, "shapes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])],
                              initializer=[idx, minus1])
    g = cf.from_onnx(helper.make_model(graph))
    assert g.op_names == ["relu", "sigmoid"]
    assert op_of(g, "sigmoid") == (["r"], ["y"])
    assert (g.tensor_kind == WEIGHT).sum() == 0


@needs_onnx
def test_onnx_light_resnet50():
    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_resnet50.onnx")
    if not os.path.exists(path):
        pytest.skip("this onnx wheel has no light model files")
    g = cf.from_onnx(path)
    assert 170 <= g.n_ops <= 180  # 53 conv + 53 bn + 49 relu + 16 sum + pools, gemm, softmax
    act = int(g.tensor_size[g.tensor_kind != WEIGHT].sum())
    assert abs(act / 2**20 - 143.3) < 2  # float32 activations, as torchvision's ResNet-50 traced
    weights = int(g.tensor_size[g.tensor_kind == WEIGHT].sum())
    assert 95 * 2**20 < weights < 100 * 2**20  # 25.5 M parameters of 4 bytes
    g1 = cf.from_onnx(path, dtype_bytes=1)
    assert int(g1.tensor_size.sum()) * 4 == int(g.tensor_size.sum())


@needs_onnx
def test_onnx_unknown_shape_is_a_graph_error():
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    graph = helper.make_graph([node], "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    with pytest.raises(GraphError, match="symbolic dimension"):
        cf.from_onnx(helper.make_model(graph))
