"""Graph model: JSON / networkx round trips and the input errors of DESIGN.md section 5."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given
from strategies import dags

import cosma_fast as cf
from cosma_fast.budgets import check_capacity


def _arrays_equal(a: cf.Graph, b: cf.Graph) -> None:
    assert a == b
    for name in ("tensor_size", "tensor_kind", "tensor_is_output", "tensor_producer", "op_in_ptr",
                 "op_in_idx", "op_out_ptr", "op_out_idx", "cons_ptr", "cons_idx"):
        assert (getattr(a, name) == getattr(b, name)).all(), name
    assert a.tensor_names == b.tensor_names and a.op_names == b.op_names


@given(dags())
def test_json_round_trip_is_lossless(g):
    _arrays_equal(cf.Graph.from_json(g.to_json()), g)


@given(dags(max_ops=4))
def test_networkx_round_trip_is_lossless(g):
    _arrays_equal(cf.Graph.from_networkx(g.to_networkx()), g)


def test_json_file_and_gzip_round_trip(tmp_path):
    b = cf.GraphBuilder("files", meta={"source": "test"})
    x = b.input("x", 7)
    w = b.weight("w", 3)
    (y, z) = b.op("split", [x, w], outputs=[("y", 4), ("z", 5)])
    (u,) = b.op("add", [y, z], outputs=[("u", 6)])
    b.mark_output(u, z)
    g = b.build()
    for name in ("g.json", "g.json.gz"):
        p = tmp_path / name
        g.to_json(p)
        _arrays_equal(cf.Graph.from_json(p), g)
        _arrays_equal(cf.Graph.from_json(str(p)), g)
    with gzip.open(tmp_path / "g.json.gz", "rt") as f:
        assert json.load(f)["schema"] == "cosma_fast.graph"
    assert cf.Graph.from_json(tmp_path / "g.json").meta == {"source": "test"}


def test_operators_are_stored_in_topological_order():
    d = {"schema": "cosma_fast.graph", "version": 1, "name": "rev",
         "tensors": [{"name": "x", "size": 1, "kind": "input"}, {"name": "a", "size": 2},
                     {"name": "b", "size": 3, "output": True}],
         "operators": [{"name": "second", "inputs": ["a"], "outputs": ["b"]},
                       {"name": "first", "inputs": ["x"], "outputs": ["a"]}]}
    g = cf.Graph.from_dict(d)
    assert g.op_names == ["first", "second"]
    assert list(g.tensor_producer) == [-1, 0, 1]


def _doc(tensors, operators, **extra):
    d = {"schema": "cosma_fast.graph", "version": 1, "name": "bad", "tensors": tensors, "operators": operators}
    d.update(extra)
    return d


def test_cycle_is_a_graph_error():
    d = _doc([{"name": "a", "size": 1}, {"name": "b", "size": 1}],
             [{"name": "f", "inputs": ["b"], "outputs": ["a"]}, {"name": "g", "inputs": ["a"], "outputs": ["b"]}])
    with pytest.raises(cf.GraphError, match="cycle") as e:
        cf.Graph.from_dict(d)
    assert "'f'" in str(e.value) and "'g'" in str(e.value)
    d = _doc([{"name": "a", "size": 1}], [{"name": "f", "inputs": ["a"], "outputs": ["a"]}])
    with pytest.raises(cf.GraphError, match="cycle"):
        cf.Graph.from_dict(d)


def test_dangling_intermediate_is_a_graph_error():
    d = _doc([{"name": "x", "size": 1, "kind": "input"}, {"name": "ghost", "size": 1},
              {"name": "y", "size": 1}], [{"name": "f", "inputs": ["x", "ghost"], "outputs": ["y"]}])
    with pytest.raises(cf.GraphError, match="'ghost'.*dangling"):
        cf.Graph.from_dict(d)
    b = cf.GraphBuilder()
    with pytest.raises(cf.GraphError, match="'nope'.*not declared"):
        b.op("f", ["nope"], outputs=[("y", 1)])


def test_double_producer_is_a_graph_error():
    d = _doc([{"name": "x", "size": 1, "kind": "input"}, {"name": "y", "size": 1}],
             [{"name": "f", "inputs": ["x"], "outputs": ["y"]}, {"name": "g", "inputs": ["x"], "outputs": ["y"]}])
    with pytest.raises(cf.GraphError, match="'y' is produced by both 'f' and 'g'"):
        cf.Graph.from_dict(d)


@pytest.mark.parametrize("size", [0, -5, 1.5, "8"])
def test_non_positive_or_non_integer_size_is_a_graph_error(size):
    with pytest.raises(cf.GraphError, match="'x'"):
        cf.GraphBuilder().input("x", size)
    d = _doc([{"name": "x", "size": size, "kind": "input"}, {"name": "y", "size": 1}],
             [{"name": "f", "inputs": ["x"], "outputs": ["y"]}])
    with pytest.raises(cf.GraphError, match="'x'"):
        cf.Graph.from_dict(d)


def test_duplicate_names_are_graph_errors():
    b = cf.GraphBuilder()
    x = b.input("x", 1)
    with pytest.raises(cf.GraphError, match="'x' is used twice"):
        b.weight("x", 2)
    b.op("f", [x], outputs=[("y", 1)])
    with pytest.raises(cf.GraphError, match="operator name 'f' is used twice"):
        b.op("f", [x], outputs=[("z", 1)])
    d = _doc([{"name": "x", "size": 1, "kind": "input"}, {"name": "y", "size": 1}, {"name": "z", "size": 1}],
             [{"name": "f", "inputs": ["x"], "outputs": ["y"]}, {"name": "f", "inputs": ["x"], "outputs": ["z"]}])
    with pytest.raises(cf.GraphError, match="'f' is used twice"):
        cf.Graph.from_dict(d)


def test_operator_without_outputs_and_produced_input_are_graph_errors():
    b = cf.GraphBuilder()
    x = b.input("x", 1)
    with pytest.raises(cf.GraphError, match="'f' has no outputs"):
        b.op("f", [x], outputs=[])
    d = _doc([{"name": "x", "size": 1, "kind": "input"}], [{"name": "f", "inputs": [], "outputs": ["x"]}])
    with pytest.raises(cf.GraphError, match="'f' produces tensor 'x' of kind input"):
        cf.Graph.from_dict(d)


def test_malformed_documents_are_format_errors(tmp_path):
    with pytest.raises(cf.FormatError, match="malformed"):
        cf.Graph.from_json('{"schema": "cosma_fast.graph", "version": 1, "tensors": [')
    with pytest.raises(cf.FormatError, match="schema"):
        cf.Graph.from_json('{"schema": "something.else", "version": 1}')
    with pytest.raises(cf.FormatError, match="version 2"):
        cf.Graph.from_json('{"schema": "cosma_fast.graph", "version": 2, "tensors": [], "operators": []}')
    with pytest.raises(cf.FormatError, match="missing or wrong field"):
        cf.Graph.from_dict({"schema": "cosma_fast.graph", "version": 1, "tensors": [{"name": "x"}],
                            "operators": []})
    with pytest.raises(cf.FormatError, match="does not exist"):
        cf.Graph.from_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(cf.FormatError, match="cannot read"):
        cf.Graph.from_json(bad)


def test_capacity_below_m_r_names_operator_and_missing_bytes():
    b = cf.GraphBuilder()
    x = b.input("x", 10)
    (y,) = b.op("small", [x], outputs=[("y", 5)])
    (z,) = b.op("big", [x, y], outputs=[("z", 20)])
    b.mark_output(z)
    g = b.build()
    check_capacity(g, 35)
    with pytest.raises(cf.InfeasibleError) as e:
        check_capacity(g, 30)
    msg = str(e.value)
    assert "'big'" in msg and "needs 35 bytes" in msg and "5 more" in msg and "at least 35" in msg
