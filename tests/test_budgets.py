"""Budgets M_R <= M_H <= M_P, the exact M_P search against brute force, the live
profile, and the lower bounds of DESIGN.md section 2."""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import dags
from test_plan_validate import random_topological_order

import cosma_fast as cf
from cosma_fast.budgets import aligned_footprint, m_r, parse_capacity
from cosma_fast.graph import INTERMEDIATE
from cosma_fast.schedule import (
    live_profile,
    lower_bound,
    min_peak_bounds,
    min_peak_schedule,
    peak_live,
    schedule_lower_bound,
)
from cosma_fast.trivial import trivial_plan


def op_dag(g: cf.Graph) -> nx.DiGraph:
    d = nx.DiGraph()
    d.add_nodes_from(range(g.n_ops))
    for o in range(g.n_ops):
        for t in g.inputs_of(o):
            if g.tensor_producer[t] >= 0:
                d.add_edge(int(g.tensor_producer[t]), o)
    return d


def profile_by_definition(g: cf.Graph, order) -> list[int]:
    """Live bytes per step straight from the definition (DESIGN.md section 1, M_P)."""
    pos = {int(o): i for i, o in enumerate(order)}
    prof = []
    for i in range(g.n_ops):
        live = 0
        for t in range(g.n_tensors):
            uses = [pos[int(c)] for c in g.consumers_of(t)]
            if g.tensor_kind[t] == INTERMEDIATE:
                start = pos[int(g.tensor_producer[t])]
            elif uses:
                start = min(uses)
            else:
                continue
            if start <= i <= max(uses + [start]):
                live += int(g.tensor_size[t])
        prof.append(live)
    return prof


@given(dags(), st.data())
def test_live_profile_matches_definition(g, data):
    order = random_topological_order(g, data)
    prof = live_profile(g, order)
    assert list(prof) == profile_by_definition(g, order)
    assert peak_live(g, order) == max(prof) >= m_r(g)


@given(dags())
def test_budget_tiers_are_ordered(g):
    b = cf.budgets(g)
    assert b.m_r == m_r(g) <= b.m_h <= b.m_p
    assert b.m_h == (b.m_r + b.m_p) // 2
    assert (b["M_R"], b["M_H"], b["M_P"]) == (b.m_r, b.m_h, b.m_p)
    assert parse_capacity(g, "M_P") == b.m_p and parse_capacity(g, "m_r") == b.m_r
    a = cf.budgets(g, include_weights=False)
    assert a.m_r <= b.m_r and a.m_p <= b.m_p


@pytest.mark.parametrize("tier, time_limit", [("M_H", 2.0), ("M_P", 40.0), ("M_H", None)])
def test_a_budget_name_is_resolved_within_the_solves_time_limit(monkeypatch, tier, time_limit):
    """``cf.solve(g, "M_H", time_limit=2)`` ran the minimum-peak search with its default 10 s
    inside the 2 s (randwire150: 2.7 s), so the method started with nothing left, returned a
    plan 65% dearer and overran by 2.5 s: the search now gets half of the limit at most."""
    import sys

    budgets_module = sys.modules["cosma_fast.budgets"]
    given = []
    real = budgets_module.budgets
    monkeypatch.setattr(budgets_module, "budgets",
                        lambda graph, **kw: given.append(kw.get("time_limit")) or real(graph, **kw))
    from cosma_fast import generators as gen

    g = gen.randwire(12)
    r = cf.solve(g, tier, time_limit=time_limit)
    expected = (budgets_module.BUDGETS_TIME_LIMIT if time_limit is None
                else min(budgets_module.BUDGETS_TIME_LIMIT, 0.5 * time_limit))
    assert given == [expected]
    assert r.capacity == real(g, time_limit=expected)[tier]
    cf.validate(g, r.plan, r.capacity)


@settings(max_examples=30)
@given(dags(max_ops=6))
def test_exact_m_p_equals_brute_force(g):
    order, peak, exact = min_peak_schedule(g)
    assert exact
    orders = list(nx.all_topological_sorts(op_dag(g)))
    assert peak == min(peak_live(g, o) for o in orders)
    assert list(order) in [list(o) for o in orders]
    assert peak_live(g, order) == peak


@settings(max_examples=30)
@given(dags(max_ops=6), st.integers(0, 30))
def test_interrupted_search_brackets_m_p(g, max_states):
    order, peak, lower = min_peak_bounds(g, max_states=max_states)
    m_p = min(peak_live(g, o) for o in nx.all_topological_sorts(op_dag(g)))
    assert m_r(g) <= lower <= m_p <= peak == peak_live(g, order)
    assert min_peak_schedule(g, max_states=max_states)[2] == (lower == peak)


@given(dags(max_ops=7))
def test_heuristic_m_p_is_an_upper_bound(g):
    _, exact_peak, exact = min_peak_schedule(g)
    order, peak, _ = min_peak_schedule(g, max_states=0)
    assert exact and peak >= exact_peak
    assert peak_live(g, order) == peak
    assert nx.is_directed_acyclic_graph(op_dag(g))
    pos = np.empty(g.n_ops, np.int64)
    pos[order] = np.arange(g.n_ops)
    assert all(pos[u] < pos[v] for u, v in op_dag(g).edges)


@settings(max_examples=40)
@given(dags(max_ops=7), st.sampled_from([1, 2, 64]), st.sampled_from([None, -1, 0, 1]),
       st.sampled_from([None, 0, 5, 20]), st.sampled_from([0.0, 1e-9, 1e300]))
def test_min_peak_beam_gives_a_schedule_and_its_peak(g, width, above, max_work, deadline):
    # ``upper`` none, or M_P + above: the beam finds a schedule below it or proves there is none;
    # ``max_work`` none, or a few states' work: stopped short, it finds nothing and proves less;
    # ``deadline`` none, long past (stopped before the first depth) or far ahead (no effect)
    from cosma_fast.kernels.peak import min_peak_beam
    from cosma_fast.schedule import _arrays

    m_p = min(peak_live(g, o) for o in nx.all_topological_sorts(op_dag(g)))
    upper = 1 << 62 if above is None else m_p + above
    work = 1 << 62 if max_work is None else max_work
    order, peak, complete, lower, states = min_peak_beam(width, upper, work, deadline, *_arrays(g))
    assert lower <= m_p and lower <= upper and 0 <= states <= width * g.n_ops
    # no more down-sets of one size than 64: the exact search
    if width == 64 and max_work is None and deadline != 1e-9:
        assert complete
    if max_work == 0 or deadline == 1e-9:  # no work at all: nothing found, nothing proven beyond 0
        assert order.min() == -1 and not complete and lower == 0
    if order[0] < 0:  # nothing below upper
        assert peak == upper and order.min() == -1
        if complete:
            assert m_p >= upper and lower == upper
        return
    pos = np.empty(g.n_ops, np.int64)
    pos[order] = np.arange(g.n_ops)
    assert all(pos[u] < pos[v] for u, v in op_dag(g).edges)
    assert peak == peak_live(g, order) and m_p <= peak < upper
    if complete:
        assert peak == m_p == lower


def test_the_exact_beam_proves_m_p_where_the_widths_stop_short():
    # layered200 within 1 s: the widths that fit half the limit (64, 256) do not hold every
    # down-set; the exact search's beam, pruned by their peak, does, and proves it
    from cosma_fast import generators as gen

    g = gen.random_layered(200)
    _, peak, lower = min_peak_bounds(g, 1.0, max_states=0)
    assert lower < peak == 11827
    order, peak, lower = min_peak_bounds(g, 1.0)
    assert lower == peak == 11827 == peak_live(g, order)


def test_the_beam_lowers_m_p_where_the_list_schedules_go_astray():
    from cosma_fast import generators as gen
    from cosma_fast.schedule import heuristic_schedule

    g = gen.randwire(99)  # wide: the greedy list schedules peak at 43704 bytes
    b = cf.budgets(g, time_limit=1.0)
    assert not b.m_p_exact
    order, peak, lower = min_peak_bounds(g, time_limit=1.0)
    assert lower < b.m_p == peak == peak_live(g, order) < 0.85 * heuristic_schedule(g)[1]
    assert cf.budgets(g, time_limit=1.0) == b  # its widths depend on the size and the limit only


@given(dags(), st.data())
def test_schedule_lower_bound_is_below_trivial_plan_cost(g, data):
    order = random_topological_order(g, data)
    cap = m_r(g) + data.draw(st.integers(0, 100))
    lb = schedule_lower_bound(g, order, cap)
    assert lb == max(0, peak_live(g, order) - cap)
    rep = cf.validate(g, trivial_plan(g, order), cap)
    assert 0 <= lb <= rep.non_compulsory


@given(dags(max_ops=6), st.data())
def test_lower_bound_holds_for_every_schedule(g, data):
    b = cf.budgets(g)
    cap = data.draw(st.integers(b.m_r, b.m_p + 5))
    lb = lower_bound(g, cap)
    assert lb == max(0, b.m_p - cap)
    order = random_topological_order(g, data)
    assert lb <= schedule_lower_bound(g, order, cap)
    assert lb <= cf.validate(g, trivial_plan(g, order), cap).non_compulsory


def test_branching_reorders_to_lower_peak():
    """Two independent branches: finishing one before starting the other beats model order."""
    b = cf.GraphBuilder()
    x = b.input("x", 1)
    (a1,) = b.op("a1", [x], outputs=[("a1", 50)])
    (b1,) = b.op("b1", [x], outputs=[("b1", 50)])
    (a2,) = b.op("a2", [a1], outputs=[("a2", 1)])
    (b2,) = b.op("b2", [b1], outputs=[("b2", 1)])
    b.op("join", [a2, b2], outputs=[("y", 1)])
    g = b.build()
    assert peak_live(g) == 101  # model order: a1, b1 live together
    order, peak, exact = min_peak_schedule(g)
    assert exact and peak == 52 and peak_live(g, order) == 52  # x + a1 + a2, then x + a2 + b1
    assert lower_bound(g, 60) == 0 and lower_bound(g, 49) == 3


def test_large_chain_is_exact_and_wide_graph_respects_time_limit():
    b = cf.GraphBuilder()
    t = b.input("x", 10)
    for i in range(300):  # a long chain with skip connections: few down-sets
        (u,) = b.op(f"f{i}", [t], outputs=[(f"u{i}", 10 + i % 7)])
        (t,) = b.op(f"g{i}", [u, t], outputs=[(f"v{i}", 10 + i % 5)])
    g = b.build()
    t0 = time.perf_counter()
    _, peak, exact = min_peak_schedule(g, time_limit=20)
    assert exact and peak == peak_live(g)
    assert time.perf_counter() - t0 < 20

    b = cf.GraphBuilder()
    x = b.input("x", 1)
    outs = [b.op(f"p{i}", [x], outputs=[(f"p{i}", 3 + (i * 7) % 11)])[0] for i in range(60)]
    heads = [b.op(f"q{i}", [outs[i]], outputs=[(f"q{i}", 1 + i % 3)])[0] for i in range(60)]
    b.op("sum", heads, outputs=[("s", 1)])
    g = b.build()
    t0 = time.perf_counter()
    order, peak, exact = min_peak_schedule(g, time_limit=0.5)
    assert time.perf_counter() - t0 < 5
    assert peak == peak_live(g, order) >= m_r(g)
    if not exact:
        assert lower_bound(g, m_r(g), time_limit=0.2) in (0, max(0, peak - m_r(g)))


def test_bad_schedule_is_an_option_error():
    b = cf.GraphBuilder()
    x = b.input("x", 1)
    (y,) = b.op("f", [x], outputs=[("y", 1)])
    b.op("g", [y], outputs=[("z", 1)])
    g = b.build()
    with pytest.raises(cf.OptionError, match="'g' before 'f'"):
        peak_live(g, [1, 0])
    with pytest.raises(cf.OptionError, match="exactly once"):
        peak_live(g, [0, 0])


def aligned_end_brute_force(sizes, alignment):
    """The least end address of ``sizes`` placed one after another at multiples of
    ``alignment``, over every order of them (each order written out)."""
    import itertools

    best = None
    for perm in itertools.permutations(sizes):
        addr = 0
        for s in perm:
            addr = -(-addr // alignment) * alignment + s
        best = addr if best is None else min(best, addr)
    return best or 0


@given(dags(max_ops=6, max_size=40), st.sampled_from([1, 2, 3, 8, 64]))
@settings(max_examples=40)
def test_aligned_footprint_is_the_least_aligned_placement(g, alignment):
    foot = aligned_footprint(g, alignment)
    for o in range(g.n_ops):
        sizes = [int(g.tensor_size[t]) for t in list(g.inputs_of(o)) + list(g.outputs_of(o))]
        assert foot[o] == aligned_end_brute_force(sizes, alignment)


@given(dags(max_ops=6, max_size=40), st.sampled_from([2, 8, 64]), st.integers(0, 80))
@settings(max_examples=30)
def test_a_capacity_too_small_for_aligned_operands_is_a_clear_error(g, alignment, extra):
    # every method plans within the aligned footprint and raises InfeasibleError below it
    cap = m_r(g) + extra
    fits = aligned_footprint(g, alignment).max() <= cap
    if fits:
        cf.validate(g, trivial_plan(g, alignment=alignment), cap, alignment)
    for method in ("heuristic", "ilp", "dnc"):
        if fits:
            r = cf.solve(g, cap, method=method, alignment=alignment, time_limit=5)
            assert all(a % alignment == 0 for s in r.plan.steps for _, a in s.loads + s.allocs)
        else:
            with pytest.raises(cf.InfeasibleError, match=f"with alignment {alignment}"):
                cf.solve(g, cap, method=method, alignment=alignment, time_limit=5)
