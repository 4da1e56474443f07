"""Divide and conquer: cuts, stitched plans, executors (cosma_fast.dnc, kernels.partition)."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import dags

import cosma_fast as cf
from cosma_fast import dnc
from cosma_fast.kernels.partition import best_cuts, crossing_bytes
from cosma_fast.solve import SolveOptions


def _opts(**kw) -> SolveOptions:
    extra = kw.pop("extra", {})
    extra.setdefault("workers", 1)  # inline unless an executor is given: no pool start-up in tests
    extra.setdefault("sub_solver", "heuristic")  # the ILP sub-solver is exercised in one small test
    extra.setdefault("segment_time_limit", 1.0)
    return SolveOptions(extra=extra, **kw)


def _chain_graph(n_ops: int = 30, seed: int = 0) -> cf.Graph:
    """A chain with skip connections and a few weights: tensors cross most cuts."""
    rng = np.random.default_rng(seed)
    b = cf.GraphBuilder("skips")
    pool = [b.input("x", 40)]
    for o in range(n_ops):
        ins = [pool[-1]] + [pool[int(i)] for i in rng.integers(max(0, len(pool) - 6), len(pool), 2)]
        if o % 3 == 0:
            ins.append(b.weight(f"w{o}", int(rng.integers(5, 30))))
        pool += b.op(f"op{o}", ins, outputs=[(f"t{o}", int(rng.integers(10, 60)))])
    b.mark_output(pool[-1])
    return b.build()


# ---------------------------------------------------------------------------- partition kernel
@given(st.lists(st.integers(0, 50), min_size=1, max_size=9), st.integers(1, 4))
def test_best_cuts_is_optimal_and_bounded(inner, max_ops):
    cross = np.array([0] + inner + [0], dtype=np.int64)
    n = len(cross) - 1
    b = best_cuts(cross, max_ops)
    assert b[0] == 0 and b[-1] == n and np.all(np.diff(b) >= 1) and np.all(np.diff(b) <= max_ops)
    got = int(cross[b[1:-1]].sum())
    best = min(int(cross[list(c)].sum())
               for k in range(n) for c in itertools.combinations(range(1, n), k)
               if np.all(np.diff([0, *c, n]) <= max_ops))
    assert got == best


@given(dags(max_ops=10))
def test_crossing_bytes_matches_definition(g):
    order = np.arange(g.n_ops, dtype=np.int64)
    cross = crossing_bytes(order, g.op_in_ptr, g.op_in_idx, g.op_out_ptr, g.op_out_idx, g.tensor_size)
    for i in range(1, g.n_ops):
        want = 0
        for t in range(g.n_tensors):
            used = list(g.consumers_of(t))
            events = used + ([int(g.tensor_producer[t])] if g.tensor_producer[t] >= 0 else [])
            if used and min(events) < i <= max(used):
                want += int(g.tensor_size[t])
        assert cross[i] == want


# ---------------------------------------------------------------------------- stitched plans
@settings(max_examples=25)
@given(dags(max_ops=10), st.integers(1, 4), st.sampled_from(["M_R", "M_H", "M_P"]))
def test_stitched_plan_validates(g, seg_ops, tier):
    cap = cf.budgets(g)[tier]
    out = dnc.solve_dnc(g, cap, _opts(segment_ops=seg_ops, extra={"compare_start": False, "sub_solver": "heuristic"}))
    assert out.info["chosen"] == "stitched"
    rep = cf.validate(g, out.plan, cap)
    assert rep.traffic == out.info["stitched_traffic"]
    assert out.info["segments"] >= -(-g.n_ops // (2 * seg_ops))


def _heuristic_traffic(g, cap):
    """Traffic of the heuristic's plan, or None if that plan does not validate (its bug, not ours)."""
    from cosma_fast.heuristic import solve_heuristic

    try:
        return cf.validate(g, solve_heuristic(g, cap, SolveOptions()).plan, cap).traffic
    except cf.CosmaError:
        return None


@settings(max_examples=20)
@given(dags(max_ops=10), st.integers(1, 4))
def test_dnc_never_worse_than_heuristic(g, seg_ops):
    cap = cf.budgets(g).m_r
    r = cf.solve(g, cap, method="dnc", segment_ops=seg_ops, workers=1, sub_solver="heuristic")
    if r.info.get("start_traffic") is not None:  # never worse than the heuristic plan it starts from
        assert r.traffic <= r.info["start_traffic"]
    h = _heuristic_traffic(g, cap)
    if h is not None:
        assert r.traffic <= h


def test_windows_only_kept_when_cheaper():
    g = _chain_graph(40)
    cap = cf.budgets(g).m_h
    no_win = dnc.solve_dnc(g, cap, _opts(segment_ops=5, extra={"compare_start": False, "windows": False}))
    win = dnc.solve_dnc(g, cap, _opts(segment_ops=5, extra={"compare_start": False}))
    assert win.info["windows_tried"] > 0
    assert win.info["stitched_traffic"] <= no_win.info["stitched_traffic"]
    assert win.info["segments"] == no_win.info["segments"] - win.info["windows_accepted"]


def test_one_segment_equals_sub_solver():
    g = _chain_graph(25)
    for tier in ("M_R", "M_H"):
        cap = cf.budgets(g)[tier]
        out = dnc.solve_dnc(g, cap, _opts(segment_ops=g.n_ops, extra={"compare_start": False,
                                                                       "sub_solver": "heuristic"}))
        assert out.info["segments"] == 1
        h = cf.solve(g, cap, method="heuristic")
        assert out.info["stitched_traffic"] == h.traffic


def test_fixed_schedule_is_kept():
    g = _chain_graph(20)
    sched = np.arange(g.n_ops)
    r = cf.solve(g, "M_R", method="dnc", segment_ops=4, schedule=sched, workers=1, compare_start=False,
                 sub_solver="heuristic")
    assert np.array_equal(r.plan.schedule, sched)


def test_bad_segment_ops():
    g = _chain_graph(5)
    with pytest.raises(cf.OptionError, match="segment_ops"):
        dnc.solve_dnc(g, cf.budgets(g).m_r, _opts(segment_ops=-1))


# ---------------------------------------------------------------------------- executors
@pytest.fixture(scope="module")
def dask_executor():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client.get_executor()
    client.close()
    cluster.close()


def test_executor_does_not_change_result(dask_executor):
    g = _chain_graph(40, seed=3)
    cap = cf.budgets(g).m_h
    kw = {"segment_ops": 6, "extra": {"compare_start": False}}
    ref = dnc.solve_dnc(g, cap, _opts(**kw))
    assert ref.info["segments"] > 1
    with ThreadPoolExecutor(2) as pool:
        threaded = dnc.solve_dnc(g, cap, _opts(executor=pool, **kw))
    dasked = dnc.solve_dnc(g, cap, _opts(executor=dask_executor, **kw))
    arrays = ref.plan.to_arrays()
    for other in (threaded, dasked):
        assert other.info["cuts"] == ref.info["cuts"]
        for k, v in other.plan.to_arrays().items():
            assert np.array_equal(v, arrays[k]), k
    cf.validate(g, dasked.plan, cap)


# ---------------------------------------------------------------------------- auto
@settings(max_examples=10)
@given(dags(max_ops=8))
def test_auto_never_worse_than_heuristic(g):
    cap = cf.budgets(g).m_r
    r = cf.solve(g, cap, method="auto", time_limit=5, workers=1)
    h = _heuristic_traffic(g, cap)
    assert h is None or r.traffic <= h
    assert 0 <= r.lower_bound <= r.non_compulsory


@settings(max_examples=5)
@given(dags(max_ops=8), st.integers(2, 4))
def test_stitched_plan_validates_with_ilp_sub_solver(g, seg_ops):
    cap = cf.budgets(g).m_h
    out = dnc.solve_dnc(g, cap, _opts(segment_ops=seg_ops, extra={"compare_start": False, "sub_solver": "auto",
                                                                   "segment_time_limit": 2.0}))
    assert cf.validate(g, out.plan, cap).traffic == out.info["stitched_traffic"]


def test_keep_resident_cancels_evict_reload_at_same_address():
    b = cf.GraphBuilder("cancel")
    x = b.input("x", 10)
    (a,) = b.op("op0", [x], outputs=[("a", 20)])
    (c,) = b.op("op1", [x], outputs=[("c", 5)])
    (d,) = b.op("op2", [a, c], outputs=[("d", 5)])
    b.mark_output(d)
    g = b.build()
    ti = g.tensor_index
    X, A, C, D = ti["x"], ti["a"], ti["c"], ti["d"]
    plan = cf.Plan([cf.Step(0, loads=[(X, 0)], allocs=[(A, 10)]),
                    cf.Step(1, stores=[A], evicts=[A], allocs=[(C, 30)]),
                    cf.Step(2, evicts=[X], loads=[(A, 10)], allocs=[(D, 0)])], final_stores=[D])
    before = cf.validate(g, plan, 40).traffic
    better = dnc.keep_resident(plan, g.tensor_size, g.tensor_is_output)
    assert cf.validate(g, better, 40).traffic == before - 2 * 20  # store and reload of "a" both gone
    # a reload at another address (its old range is partly taken by "c") is kept
    clash = cf.Plan([cf.Step(0, loads=[(X, 0)], allocs=[(A, 10)]),
                     cf.Step(1, stores=[A], evicts=[A], allocs=[(C, 15)]),
                     cf.Step(2, evicts=[X], loads=[(A, 20)], allocs=[(D, 0)])], final_stores=[D])
    same = dnc.keep_resident(clash, g.tensor_size, g.tensor_is_output)
    assert cf.validate(g, same, 40).traffic == cf.validate(g, clash, 40).traffic


def test_auto_choices():
    small, big = _chain_graph(10), _chain_graph(120)
    r = cf.solve(small, "M_R", method="auto", time_limit=10, workers=1)
    assert r.info["auto_choice"] in ("ilp", "dnc")
    r = cf.solve(big, "M_R", method="auto", time_limit=0.01, workers=1)  # too little time for D&C
    assert r.info["auto_choice"] == "heuristic"
    r = cf.solve(big, "M_R", method="auto", workers=1, sub_solver="heuristic", segment_ops=30)
    assert r.info["auto_choice"] == "dnc"
    h = _heuristic_traffic(big, cf.budgets(big).m_r)
    assert h is None or r.traffic <= h
