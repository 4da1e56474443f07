"""COSMA's baselines (cosma_fast.baselines): valid plans, Belady + greedy arena semantics."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import dags

import cosma_fast as cf
from cosma_fast.budgets import m_r
from cosma_fast.heuristic import rule_schedule
from cosma_fast.kernels.schedule import MIN_PEAK
from cosma_fast.trivial import trivial_plan


@given(dags(max_ops=10), st.floats(1.0, 3.0), st.sampled_from(["baseline", "baseline-mpmf"]))
def test_baseline_plans_valid(g, factor, method):
    cap = int(m_r(g) * factor)
    r = cf.solve(g, cap, method=method)
    assert r.traffic <= cf.validate(g, trivial_plan(g), cap).traffic


@given(dags(max_ops=10), st.sampled_from(["baseline", "baseline-mpmf"]))
@settings(max_examples=20)
def test_baselines_perfect_when_everything_fits(g, method):
    r = cf.solve(g, max(g.total_bytes(), m_r(g)), method=method)
    assert r.non_compulsory == 0


@given(dags(max_ops=10))
@settings(max_examples=20)
def test_orders(g):
    assert list(cf.solve(g, m_r(g), method="baseline").plan.schedule) == list(range(g.n_ops))
    mp = cf.solve(g, m_r(g), method="baseline-mpmf").plan.schedule
    assert list(mp) == list(rule_schedule(g, MIN_PEAK))


@given(dags(max_ops=10), st.floats(1.0, 2.0))
@settings(max_examples=20)
def test_heuristic_never_worse_than_baselines(g, factor):
    cap = int(m_r(g) * factor)
    h = cf.solve(g, cap, method="heuristic").non_compulsory
    assert h <= cf.solve(g, cap, method="baseline").non_compulsory
    assert h <= cf.solve(g, cap, method="baseline-mpmf").non_compulsory


def test_belady_evicts_farthest_next_use():
    # a (used at step 3) and b (used at step 4) both clean inputs; step 2 needs room for one.
    b = cf.GraphBuilder("far")
    x = b.input("x", 10)
    a = b.input("a", 10)
    bb = b.input("b", 10)
    (p,) = b.op("p", [x, a, bb], outputs=[("p", 10)])
    (q,) = b.op("q", [p], outputs=[("q", 20)])
    (r,) = b.op("r", [q, a], outputs=[("r", 10)])
    (y,) = b.op("y", [r, bb], outputs=[("y", 10)])
    b.mark_output(y)
    g = b.build()
    res = cf.solve(g, 40, method="baseline")
    # x dies (evicted first); then b, the farthest next use, goes before a; here the
    # layout x|a|b|p means only evicting both opens 20 contiguous bytes
    evicted = res.plan.steps[1].evicts
    ia, ib = g.tensor_index["a"], g.tensor_index["b"]
    assert evicted.index(ib) < evicted.index(ia)
    assert np.all(res.report.occupancy <= 40)
