"""The simulate kernel agrees with the independent checker, on valid plans and on
randomly mutated ones (same verdict, same rule, same step)."""

from __future__ import annotations

import copy

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import dags
from test_plan_validate import random_topological_order

import cosma_fast as cf
from cosma_fast.budgets import m_r
from cosma_fast.graph import INTERMEDIATE
from cosma_fast.kernels.simulate import RULES, simulate, simulate_plan
from cosma_fast.trivial import trivial_plan


def resident_plan(g: cf.Graph, order, evict_dead, alignment: int = 1) -> tuple[cf.Plan, int]:
    """A valid plan that gives every tensor its own address and keeps it resident
    until it is dead (if ``evict_dead[t]``) or forever; returns ``(plan, capacity)``."""
    size = g.tensor_size
    slot = np.zeros(g.n_tensors, np.int64)
    acc = 0
    for t in range(g.n_tensors):
        slot[t] = acc
        acc += -(-int(size[t]) // alignment) * alignment
    pos = np.empty(g.n_ops, np.int64)
    pos[order] = np.arange(g.n_ops)
    last = [max((pos[c] for c in g.consumers_of(t)), default=-1) for t in range(g.n_tensors)]
    resident: set[int] = set()
    stored: set[int] = set()
    steps = []
    for i, o in enumerate(order):
        step = cf.Step(int(o))
        for t in sorted(resident):
            dead = last[t] < i
            if dead and evict_dead[t]:
                if g.tensor_is_output[t] and g.tensor_kind[t] == INTERMEDIATE and t not in stored:
                    step.stores.append(t)
                    stored.add(t)
                step.evicts.append(t)
                resident.discard(t)
        for t in g.inputs_of(o):
            if int(t) not in resident:
                step.loads.append((int(t), int(slot[t])))
                resident.add(int(t))
        for t in g.outputs_of(o):
            step.allocs.append((int(t), int(slot[t])))
            resident.add(int(t))
        steps.append(step)
    final = [t for t in sorted(resident) if g.tensor_is_output[t] and g.tensor_kind[t] == INTERMEDIATE
             and t not in stored]
    return cf.Plan(steps, final), max(acc, 1)


def assert_agree(g, plan, cap, align=1):
    """validate and simulate give the same verdict; same cost when valid, same
    rule/step/tensor when not. Returns the verdict."""
    sim = simulate_plan(g, plan, cap, align)
    try:
        rep = cf.validate(g, plan, cap, align)
    except cf.PlanError as e:
        assert not sim.valid, (str(e), sim)
        assert RULES[sim.error_code] == e.rule, (str(e), sim)
        assert sim.step == (-1 if e.step is None else e.step)
        if e.tensor is not None:
            assert g.tensor_names[sim.tensor] == e.tensor
        return False
    assert sim.valid, sim
    assert (sim.traffic, sim.peak_bytes) == (rep.traffic, rep.peak_bytes)
    return True


@given(dags(), st.data())
def test_agrees_on_trivial_plans(g, data):
    order = random_topological_order(g, data)
    align = data.draw(st.sampled_from([1, 2, 8]))
    plan = trivial_plan(g, order)
    for step in plan.steps:  # scaling addresses keeps the packing disjoint and aligns it
        step.loads = [(t, a * align) for t, a in step.loads]
        step.allocs = [(t, a * align) for t, a in step.allocs]
    assert assert_agree(g, plan, m_r(g) * align, align)


@given(dags(), st.data())
def test_agrees_on_resident_plans(g, data):
    order = random_topological_order(g, data)
    align = data.draw(st.sampled_from([1, 4]))
    evict = data.draw(st.lists(st.booleans(), min_size=g.n_tensors, max_size=g.n_tensors))
    plan, cap = resident_plan(g, order, evict, align)
    assert assert_agree(g, plan, cap, align)
    rep = cf.validate(g, plan, cap, align)
    assert rep.peak_bytes >= m_r(g)
    assert rep.traffic == g.compulsory()  # nothing is ever reloaded


def _mutate(g, plan, cap, data):
    plan = copy.deepcopy(plan)
    steps = plan.steps
    i = data.draw(st.integers(0, len(steps) - 1))
    step = steps[i]
    what = data.draw(st.sampled_from(["addr", "drop", "dup", "swap", "op", "final", "tensor"]))
    lists = [n for n in ("stores", "evicts", "loads", "allocs") if getattr(step, n)]
    if what == "addr" and (step.loads or step.allocs):
        name = data.draw(st.sampled_from([n for n in ("loads", "allocs") if getattr(step, n)]))
        lst = getattr(step, name)
        k = data.draw(st.integers(0, len(lst) - 1))
        lst[k] = (lst[k][0], data.draw(st.integers(-3, cap + 3)))
    elif what in ("drop", "dup") and lists:
        lst = getattr(step, data.draw(st.sampled_from(lists)))
        k = data.draw(st.integers(0, len(lst) - 1))
        if what == "drop":
            del lst[k]
        else:
            lst.insert(data.draw(st.integers(0, len(lst))), lst[k])
    elif what == "swap" and len(steps) > 1:
        j = data.draw(st.integers(0, len(steps) - 1))
        steps[i], steps[j] = steps[j], steps[i]
    elif what == "op":
        step.op = data.draw(st.integers(0, g.n_ops - 1))
    elif what == "final":
        plan.final_stores.append(data.draw(st.integers(0, g.n_tensors - 1)))
    elif what == "tensor" and lists:
        lst = getattr(step, data.draw(st.sampled_from(lists)))
        k = data.draw(st.integers(0, len(lst) - 1))
        t = data.draw(st.integers(0, g.n_tensors - 1))
        lst[k] = (t, lst[k][1]) if isinstance(lst[k], tuple) else t
    return plan


@settings(max_examples=100)
@given(dags(max_ops=6), st.data())
def test_agrees_on_mutated_plans(g, data):
    order = random_topological_order(g, data)
    if data.draw(st.booleans()):
        plan, cap = trivial_plan(g, order), m_r(g) + data.draw(st.integers(0, 10))
    else:
        evict = data.draw(st.lists(st.booleans(), min_size=g.n_tensors, max_size=g.n_tensors))
        plan, cap = resident_plan(g, order, evict)
    for _ in range(data.draw(st.integers(1, 3))):
        plan = _mutate(g, plan, cap, data)
    assert_agree(g, plan, cap)


def test_kernel_on_raw_arrays_reports_schedule_errors():
    b = cf.GraphBuilder()
    x = b.input("x", 4)
    (y,) = b.op("f", [x], outputs=[("y", 4)])
    b.mark_output(y)
    g = b.build()
    arr = trivial_plan(g).to_arrays()
    args = (g.tensor_size, g.tensor_kind, g.tensor_is_output, g.op_in_ptr, g.op_in_idx, g.op_out_ptr,
            g.op_out_idx, g.cons_ptr, g.cons_idx, 8, 1)
    code, step, tensor, traffic, peak = simulate(arr["step_op"], arr["ev_ptr"], arr["ev_kind"],
                                                 arr["ev_tensor"], arr["ev_addr"], *args)
    assert (code, traffic, peak) == (0, 8, 8)
    code = simulate(arr["step_op"] + 5, arr["ev_ptr"], arr["ev_kind"], arr["ev_tensor"], arr["ev_addr"], *args)[0]
    assert RULES[code] == "schedule-complete"
    code = simulate(arr["step_op"], arr["ev_ptr"], arr["ev_kind"], arr["ev_tensor"], arr["ev_addr"],
                    *args[:-2], 7, 1)[0]
    assert RULES[code] == "out-of-range"
