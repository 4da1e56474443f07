"""The plan format and the independent checker: the trivial plan is valid with the
predicted cost, and every rule of DESIGN.md section 1 catches its own corruption."""

from __future__ import annotations

import copy

import networkx as nx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import dags

import cosma_fast as cf
from cosma_fast.budgets import m_r
from cosma_fast.graph import INTERMEDIATE
from cosma_fast.kernels.simulate import RULES, simulate_plan
from cosma_fast.trivial import trivial_plan


def predicted_traffic(g: cf.Graph) -> int:
    """Trivial plan: every step loads all its inputs; an intermediate is stored once
    when someone reads it or it is a graph output."""
    s = g.tensor_size
    loads = int(s[g.op_in_idx].sum())
    read = np.diff(g.cons_ptr) > 0
    stores = int(s[(g.tensor_kind == INTERMEDIATE) & (read | g.tensor_is_output)].sum())
    return loads + stores


def random_topological_order(g: cf.Graph, data) -> np.ndarray:
    """A topological order of the operators drawn by hypothesis."""
    indeg = np.zeros(g.n_ops, np.int64)
    for o in range(g.n_ops):
        indeg[o] = len({int(g.tensor_producer[t]) for t in g.inputs_of(o) if g.tensor_producer[t] >= 0})
    ready = [o for o in range(g.n_ops) if indeg[o] == 0]
    order = []
    while ready:
        o = ready.pop(data.draw(st.integers(0, len(ready) - 1)))
        order.append(o)
        for s in {int(c) for t in g.outputs_of(o) for c in g.consumers_of(t)}:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return np.array(order, np.int64)


@given(dags(), st.data())
def test_trivial_plan_is_valid_with_predicted_traffic(g, data):
    order = random_topological_order(g, data)
    cap = m_r(g) + data.draw(st.integers(0, 50))
    plan = trivial_plan(g, order)
    rep = cf.validate(g, plan, cap)
    assert rep.traffic == predicted_traffic(g)
    assert rep.traffic == plan.traffic(g)
    assert rep.non_compulsory == rep.traffic - g.compulsory() >= 0
    assert rep.peak_bytes == m_r(g)
    assert list(rep.occupancy) == list(g.op_bytes()[order])


@given(dags())
def test_activation_only_setting_ignores_weights(g):
    a = g.with_weights(False)
    assert not (a.tensor_kind == cf.WEIGHT).any()
    rep = cf.validate(g, trivial_plan(a), m_r(a), include_weights=False)
    assert rep.traffic == predicted_traffic(a)
    assert rep.compulsory == a.compulsory() <= g.compulsory()


@given(dags(), st.data())
def test_plan_json_round_trip_is_lossless(g, data):
    plan = trivial_plan(g, random_topological_order(g, data))
    back = cf.Plan.from_json(g, plan.to_json(g))
    assert back == plan
    arrays = plan.to_arrays()
    assert cf.Plan.from_arrays(**arrays) == plan


def test_plan_file_and_format_errors(tmp_path):
    g = _diamond()
    plan = trivial_plan(g)
    p = tmp_path / "plan.json"
    plan.to_json(g, p)
    assert cf.Plan.from_json(g, p) == plan
    assert cf.Plan.from_json(g, str(p)) == plan
    d = plan.to_dict(g)
    with pytest.raises(cf.FormatError, match="version 9"):
        cf.Plan.from_dict(g, dict(d, version=9))
    with pytest.raises(cf.FormatError, match="schema"):
        cf.Plan.from_dict(g, dict(d, schema="x"))
    with pytest.raises(cf.FormatError, match="malformed"):
        cf.Plan.from_json(g, "{")
    bad = copy.deepcopy(d)
    bad["steps"][0]["op"] = "no-such-op"
    with pytest.raises(cf.FormatError, match="'no-such-op'"):
        cf.Plan.from_dict(g, bad)
    bad = copy.deepcopy(d)
    bad["steps"][0]["load"][0][0] = "ghost"
    with pytest.raises(cf.FormatError, match="'ghost'"):
        cf.Plan.from_dict(g, bad)
    bad = copy.deepcopy(d)
    bad["steps"][0]["load"][0][1] = "0"
    with pytest.raises(cf.FormatError, match="addresses are integers"):
        cf.Plan.from_dict(g, bad)
    with pytest.raises(cf.FormatError, match="does not exist"):
        cf.Plan.from_json(g, tmp_path / "nope.json")


# ---------------------------------------------------------------- corruptions
# Each takes (graph, valid trivial plan, capacity) and returns
# (corrupted plan, capacity, alignment, expected rule), or None when the graph
# offers no place for that corruption.

def _placements(st_):
    return [("loads", k) for k in range(len(st_.loads))] + [("allocs", k) for k in range(len(st_.allocs))]


def _set_addr(step, where, addr):
    kind, k = where
    lst = getattr(step, kind)
    lst[k] = (lst[k][0], addr)


def c_overlap(g, plan, cap):
    for step in plan.steps:
        pl = _placements(step)
        if len(pl) >= 2:
            _set_addr(step, pl[1], 0)
            return plan, cap, 1, "overlap"


def c_out_of_range(g, plan, cap):
    _set_addr(plan.steps[0], _placements(plan.steps[0])[-1], cap)
    return plan, cap, 1, "out-of-range"


def c_negative_address(g, plan, cap):
    _set_addr(plan.steps[0], _placements(plan.steps[0])[0], -2)
    return plan, cap, 1, "out-of-range"


def c_alignment(g, plan, cap):
    # double every address so the plan is 2-aligned, then misalign one
    for step in plan.steps:
        step.loads = [(t, 2 * a) for t, a in step.loads]
        step.allocs = [(t, 2 * a) for t, a in step.allocs]
    step = plan.steps[len(plan.steps) // 2]
    where = _placements(step)[-1]
    _set_addr(step, where, getattr(step, where[0])[where[1]][1] + 1)
    return plan, 2 * cap, 2, "alignment"


def c_input_not_resident(g, plan, cap):
    for step in plan.steps:
        if step.loads:
            del step.loads[0]
            return plan, cap, 1, "input-not-resident"


def c_load_without_copy(g, plan, cap):
    stored = {t for s in plan.steps for t in s.stores} | set(plan.final_stores)
    for step in plan.steps[1:]:
        for t in step.evicts:
            if g.tensor_kind[t] == INTERMEDIATE and t not in stored:
                step.loads.append((t, 0))
                return plan, cap, 1, "load-no-copy"


def c_output_never_stored(g, plan, cap):
    if not plan.final_stores:
        return None
    plan.final_stores.pop()
    return plan, cap, 1, "output-not-stored"


def c_double_store(g, plan, cap):
    if not plan.final_stores:
        return None
    plan.final_stores.append(plan.final_stores[0])
    return plan, cap, 1, "double-store"


def c_double_store_in_step(g, plan, cap):
    for step in plan.steps:
        if step.stores:
            step.stores.append(step.stores[0])
            return plan, cap, 1, "double-store"


def c_evict_live(g, plan, cap):
    for step in plan.steps:
        if step.stores:
            step.stores.pop(0)
            return plan, cap, 1, "evict-live"


def c_evict_not_resident(g, plan, cap):
    plan.steps[0].evicts.append(int(g.outputs_of(plan.steps[0].op)[0]))
    return plan, cap, 1, "evict-not-resident"


def c_store_not_resident(g, plan, cap):
    plan.steps[0].stores.append(int(g.outputs_of(plan.steps[0].op)[0]))
    return plan, cap, 1, "store-not-resident"


def c_store_input(g, plan, cap):
    if len(plan.steps) > 1 and plan.steps[0].loads:
        plan.steps[1].stores.append(plan.steps[0].loads[0][0])
        return plan, cap, 1, "store-kind"


def c_load_resident(g, plan, cap):
    step = plan.steps[0]
    if step.loads:
        step.loads.append(step.loads[0])
        return plan, cap, 1, "load-resident"


def c_dependency(g, plan, cap):
    for i in range(len(plan.steps) - 1):
        a, b = plan.steps[i], plan.steps[i + 1]
        made = set(int(t) for t in g.outputs_of(a.op))
        if made & set(int(t) for t in g.inputs_of(b.op)):
            a.op, b.op = b.op, a.op
            a.loads, b.loads = [(t, x) for t, x in b.loads if t not in made], a.loads
            a.allocs, b.allocs = b.allocs, a.allocs
            # repack the moved operator's operands from address 0
            addr = 0
            for lst in (a.loads, a.allocs):
                for k, (t, _) in enumerate(lst):
                    lst[k] = (t, addr)
                    addr += int(g.tensor_size[t])
            return plan, cap, 1, "dependency"


def c_operator_twice(g, plan, cap):
    if len(plan.steps) >= 2:
        plan.steps[-1].op = plan.steps[0].op
        return plan, cap, 1, "schedule-complete"


def c_operator_missing(g, plan, cap):
    plan.steps.pop()
    return plan, cap, 1, "schedule-complete"


def c_alloc_missing(g, plan, cap):
    plan.steps[0].allocs.pop()
    return plan, cap, 1, "alloc-outputs"


def c_alloc_extra(g, plan, cap):
    step = plan.steps[0]
    step.allocs.append(step.allocs[0])
    return plan, cap, 1, "alloc-outputs"


def c_alloc_wrong_tensor(g, plan, cap):
    if len(plan.steps) >= 2:
        other = int(g.outputs_of(plan.steps[1].op)[0])
        step = plan.steps[0]
        step.allocs[0] = (other, step.allocs[0][1])
        return plan, cap, 1, "alloc-outputs"


def c_unknown_tensor(g, plan, cap):
    plan.steps[0].evicts.append(g.n_tensors + 3)
    return plan, cap, 1, "unknown-tensor"


CORRUPTIONS = [c_overlap, c_out_of_range, c_negative_address, c_alignment, c_input_not_resident,
               c_load_without_copy, c_output_never_stored, c_double_store, c_double_store_in_step,
               c_evict_live, c_evict_not_resident, c_store_not_resident, c_store_input, c_load_resident,
               c_dependency, c_operator_twice, c_operator_missing, c_alloc_missing, c_alloc_extra,
               c_alloc_wrong_tensor, c_unknown_tensor]


def _diamond() -> cf.Graph:
    """x -> a -> (b, c) -> d, with a weight, an output in the middle and a dead tensor."""
    b = cf.GraphBuilder("diamond")
    x = b.input("x", 8)
    w = b.weight("w", 4)
    (ya, dead) = b.op("a", [x, w], outputs=[("ya", 6), ("dead", 3)])
    (yb,) = b.op("b", [ya], outputs=[("yb", 5)])
    (yc,) = b.op("c", [ya, x], outputs=[("yc", 7)])
    (yd,) = b.op("d", [yb, yc], outputs=[("yd", 2)])
    b.mark_output(yb, yd)
    return b.build()


def check_caught(g, corruption, plan, cap):
    """Apply ``corruption``; assert validate and the simulate kernel both flag the
    expected rule at the same step. Returns False when the corruption does not apply."""
    out = corruption(g, copy.deepcopy(plan), cap)
    if out is None:
        return False
    bad, cap2, align, rule = out
    with pytest.raises(cf.PlanError) as e:
        cf.validate(g, bad, cap2, align)
    err = e.value
    assert err.rule == rule, (corruption.__name__, str(err))
    assert f"[rule: {rule}]" in str(err)
    sim = simulate_plan(g, bad, cap2, align)
    assert RULES[sim.error_code] == rule, (corruption.__name__, sim)
    assert sim.step == (-1 if err.step is None else err.step)
    if err.tensor is not None:
        assert g.tensor_names[sim.tensor] == err.tensor
        assert f"{err.tensor!r}" in str(err)
    return True


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda c: c.__name__[2:])
def test_each_rule_catches_its_corruption(corruption):
    g = _diamond()
    plan = trivial_plan(g)
    cap = m_r(g)
    cf.validate(g, plan, cap)
    assert check_caught(g, corruption, plan, cap)


@given(dags(), st.data())
def test_corruptions_are_caught_on_random_graphs(g, data):
    plan = trivial_plan(g, random_topological_order(g, data))
    cap = m_r(g) + data.draw(st.integers(0, 20))
    applied = [c.__name__ for c in CORRUPTIONS if check_caught(g, c, plan, cap)]
    # these apply to every graph
    always = ["c_out_of_range", "c_alignment", "c_input_not_resident", "c_operator_missing",
              "c_alloc_missing", "c_unknown_tensor"]
    if plan.final_stores:  # the last operator's outputs are stored after the last step
        always += ["c_output_never_stored", "c_double_store"]
    for name in always:
        assert name in applied


def test_moving_a_resident_tensor_is_caught():
    """A resident tensor keeps its address: the plan format can move it only by
    evict + load, and loading a tensor that is still resident is an error."""
    g = _diamond()
    plan = trivial_plan(g)
    t = plan.steps[0].loads[0][0]
    plan.steps[1].evicts.remove(t)
    plan.steps[1].loads.insert(0, (t, 100))
    with pytest.raises(cf.PlanError) as e:
        cf.validate(g, plan, 200)
    assert e.value.rule == "load-resident" and e.value.tensor == "x"


def test_schedule_is_a_topological_order():
    g = _diamond()
    order = trivial_plan(g).schedule
    dg = nx.DiGraph()
    dg.add_nodes_from(range(g.n_ops))
    for o in range(g.n_ops):
        for t in g.inputs_of(o):
            if g.tensor_producer[t] >= 0:
                dg.add_edge(int(g.tensor_producer[t]), o)
    assert list(order) in [list(x) for x in nx.all_topological_sorts(dg)]
