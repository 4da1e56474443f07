"""Divide and conquer: cuts, windows with fixed entry/exit state, executors (cosma_fast.dnc)."""

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
from cosma_fast import generators as gen
from cosma_fast.ilp.decode import encode_residency
from cosma_fast.ilp.model import build_model
from cosma_fast.kernels.partition import best_cuts, crossing_bytes
from cosma_fast.solve import SolveOptions
from cosma_fast.trivial import trivial_plan

PARAMS = {"nodes": 50, "alignment": 1, "window_time": 5.0}


def _opts(**kw) -> SolveOptions:
    extra = kw.pop("extra", {})
    extra.setdefault("workers", 1)  # inline unless an executor is given: no pool start-up in tests
    extra.setdefault("window_nodes", 50)
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


# ---------------------------------------------------------------------------- windows
def _start(g, cap, trivial):
    if trivial:  # the trivial plan leaves dirty tensors resident at every cut: the hard boundary case
        return trivial_plan(g)
    return cf.solve(g, cap, method="heuristic").plan


@settings(max_examples=30)
@given(dags(max_ops=9, max_size=40), st.integers(1, 5), st.sampled_from(["M_R", "M_H"]), st.booleans(),
       st.booleans())
def test_each_window_meets_its_boundary(g, seg_ops, tier, trivial, fixed):
    """The start plan restricted to a window is a feasible point of the window model (so the
    boundary describes the start plan's state), and a window's own plan, spliced alone into
    the start plan, validates and moves no more bytes than the start did there."""
    cap = cf.budgets(g)[tier]
    plan = _start(g, cap, trivial)
    base = cf.validate(g, plan, cap).traffic
    for shifted in (False, True):
        wins = dnc._windows(plan, g, seg_ops, shifted)
        trace = dnc.trace_plan(g, plan, {c for w in wins for c in w})
        for a, b in wins:
            wp = dnc.window_problem(g, plan, trace, a, b, fixed)
            model = build_model(wp.graph, cap, np.arange(b - a) if fixed else None, boundary=wp.boundary)
            v = encode_residency(model, np.arange(b - a), wp.start_R, wp.start_stored, wp.boundary.entry_resident)
            assert model.check(v)
            assert model.cost @ v <= wp.start_traffic
            out = dnc.solve_window(wp, cap, PARAMS)
            if "steps" in out:
                assert out["traffic"] < wp.start_traffic
                spliced = dnc.splice(plan, [(a, b, out)])
                assert cf.validate(g, spliced, cap).traffic == base - wp.start_traffic + out["traffic"]
                if fixed:
                    assert np.array_equal(spliced.schedule, plan.schedule)


@settings(max_examples=25)
@given(dags(max_ops=10, max_size=40), st.integers(1, 4), st.sampled_from(["M_R", "M_H", "M_P"]), st.booleans())
def test_spliced_plan_validates_and_never_worse(g, seg_ops, tier, trivial):
    cap = cf.budgets(g)[tier]
    start = _start(g, cap, trivial)
    out = dnc.solve_dnc(g, cap, _opts(segment_ops=seg_ops, extra={"start_plan": start}))
    rep = cf.validate(g, out.plan, cap)
    assert rep.traffic <= cf.validate(g, start, cap).traffic == out.info["start_traffic"]
    saved = sum(r["saved"] for r in out.info["rounds"])
    assert rep.traffic == out.info["start_traffic"] - saved
    assert "splice_error" not in out.info


def test_windows_improve_a_trivial_start():
    g = _chain_graph(30)
    cap = cf.budgets(g).m_h
    start = trivial_plan(g)
    out = dnc.solve_dnc(g, cap, _opts(segment_ops=6, extra={"start_plan": start}))
    assert out.info["windows_accepted"] > 0
    assert cf.validate(g, out.plan, cap).traffic < cf.validate(g, start, cap).traffic
    assert out.info["rounds"][0]["saved"] > 0


@settings(max_examples=15)
@given(dags(max_ops=5, max_size=20), st.sampled_from(["M_R", "M_H"]))
def test_one_window_reaches_the_exact_optimum(g, tier):
    """A window over the whole graph (empty entry, outputs written back at exit) is the
    exact model, so from the trivial start it reaches the exact mode's optimum."""
    cap = cf.budgets(g)[tier]
    exact = cf.solve(g, cap, method="ilp")
    out = cf.solve(g, cap, method="dnc", segment_ops=g.n_ops, workers=1, start_plan=trivial_plan(g),
                   window_nodes=10**6)
    assert out.non_compulsory >= exact.lower_bound
    if exact.status == "optimal":
        assert out.non_compulsory == exact.non_compulsory


def test_fixed_schedule_is_kept():
    g = _chain_graph(20)
    sched = np.arange(g.n_ops)
    r = cf.solve(g, "M_R", method="dnc", segment_ops=4, schedule=sched, workers=1, start_plan=trivial_plan(g))
    assert np.array_equal(r.plan.schedule, sched)
    assert r.info["windows_accepted"] > 0


def test_no_round_starts_that_would_overrun_the_time_limit():
    # a window's safety net is MIN_WINDOW_TIME: with less time left no round starts (nor a
    # process pool), and the start comes back (0.05 s used to take 0.3-0.4 s)
    g = gen.randwire(60)
    r = cf.solve(g, "M_H", method="dnc", time_limit=0.1)
    assert dnc.MIN_WINDOW_TIME > 0.1 and r.info["rounds"] == [] and r.info["windows_tried"] == 0
    assert r.non_compulsory == r.info["start_traffic"] - r.compulsory


def test_a_round_takes_only_the_windows_its_time_gives_a_safety_net():
    # 20 windows with 0.3 s left used to get 0.2 s each: 2.5 s with two workers
    g = _chain_graph(40)
    plan = cf.solve(g, "M_R", method="heuristic").plan
    wins = dnc._windows(plan, g, 4, shifted=False)
    trace = dnc.trace_plan(g, plan, {c for w in wins for c in w})
    probs = [dnc.window_problem(g, plan, trace, a, b, False) for a, b in wins]
    moving = [p for p in probs if p.start_traffic > 0]
    assert len(moving) >= 5
    assert [dnc.window_traffic(g, plan, p.a, p.b) for p in probs] == [p.start_traffic for p in probs]
    # without a limit: every window that moves bytes, along the schedule
    assert [p.a for p in dnc._round_windows(g, plan, trace, wins, False, set(), None)] == [p.a for p in moving]
    for rem in (0.0, 0.19, 0.2, 0.45, 0.61, 1e9):
        kept = dnc._round_windows(g, plan, trace, wins, False, set(), rem)
        assert len(kept) == min(len(moving), int(rem // dnc.MIN_WINDOW_TIME))
        assert [p.a for p in kept] == sorted(p.a for p in kept)  # along the schedule
        # those with the most bytes to save
        least_kept = min((p.start_traffic for p in kept), default=np.inf)
        kept_at = {p.a for p in kept}
        assert all(p.start_traffic <= least_kept for p in moving if p.a not in kept_at)
    # windows solved before without a gain are skipped, and the next ones taken
    done = {moving[0].key()}
    kept = dnc._round_windows(g, plan, trace, wins, False, done, 0.4)
    assert len(kept) == 2 and moving[0].a not in {p.a for p in kept}


@pytest.mark.parametrize("seg_ops", [-1, 0, 2.5, "4", True])
def test_bad_segment_ops(seg_ops):
    # 0 used to mean the default silently; only None does
    g = _chain_graph(5)
    with pytest.raises(cf.OptionError, match="segment_ops"):
        dnc.solve_dnc(g, cf.budgets(g).m_r, _opts(segment_ops=seg_ops))


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
    kw = {"segment_ops": 6, "extra": {"start_plan": trivial_plan(g)}}
    ref = dnc.solve_dnc(g, cap, _opts(**kw))
    assert ref.info["windows_accepted"] > 1
    with ThreadPoolExecutor(2) as pool:
        threaded = dnc.solve_dnc(g, cap, _opts(executor=pool, **kw))
    dasked = dnc.solve_dnc(g, cap, _opts(executor=dask_executor, **kw))
    arrays = ref.plan.to_arrays()
    for other in (threaded, dasked):
        assert [r["saved"] for r in other.info["rounds"]] == [r["saved"] for r in ref.info["rounds"]]
        for k, v in other.plan.to_arrays().items():
            assert np.array_equal(v, arrays[k]), k
    cf.validate(g, dasked.plan, cap)


def test_default_pool_after_a_multithreaded_solve_in_this_process():
    """Forked pool workers inherit HiGHS's thread scheduler but not its threads; before the
    pool's initializer reset it, their first window solve hung."""
    import highspy

    from cosma_fast.ilp import run_highs
    from cosma_fast.ilp.model import build_model

    g = _chain_graph(40, seed=3)
    cap = cf.budgets(g).m_h
    highspy.Highs.resetGlobalScheduler(True)  # nothing else solves now: start one with 2 threads
    assert run_highs(build_model(_chain_graph(6), cap), threads=2)["threads_honoured"]
    kw = {"segment_ops": 6, "extra": {"start_plan": trivial_plan(g)}}
    ref = dnc.solve_dnc(g, cap, _opts(**kw))
    pooled = dnc.solve_dnc(g, cap, _opts(segment_ops=6, extra={"start_plan": trivial_plan(g), "workers": 2}))
    assert ref.info["windows_accepted"] > 1
    assert np.array_equal(pooled.plan.schedule, ref.plan.schedule)
    assert [r["saved"] for r in pooled.info["rounds"]] == [r["saved"] for r in ref.info["rounds"]]


# ---------------------------------------------------------------------------- auto
def _heuristic_traffic(g, cap):
    """Traffic of the heuristic's plan, or None if that plan does not validate (its bug, not ours)."""
    from cosma_fast.heuristic import solve_heuristic

    try:
        return cf.validate(g, solve_heuristic(g, cap, SolveOptions()).plan, cap).traffic
    except cf.CosmaError:
        return None


@settings(max_examples=10)
@given(dags(max_ops=8))
def test_auto_never_worse_than_heuristic(g):
    cap = cf.budgets(g).m_r
    r = cf.solve(g, cap, method="auto", time_limit=5, workers=1)
    h = _heuristic_traffic(g, cap)
    assert h is None or r.traffic <= h
    assert 0 <= r.lower_bound <= r.non_compulsory


@pytest.mark.parametrize("limit", [0.5, 1.0, 6.0])
def test_auto_gives_the_whole_limit_to_one_method(monkeypatch, limit):
    # 61-1000 operators under a limit of 1 s or more: the ILP has the whole limit (D&C for half
    # of it, then the ILP, gave dearer plans on 24 of 48 generated graphs, bench/auto.py);
    # under 1 s, or above AUTO_ILP_MAX_OPS (its dense bounds took 290 s on 10000 operators at
    # time_limit=10), D&C has it
    g = _chain_graph(70)
    got = {}
    heuristic = cf.solve(g, "M_R", method="heuristic")

    def fake(name):
        def run(graph, capacity, opts):
            got[name] = opts.time_limit
            return dnc.MethodOutput(heuristic.plan, 0, "feasible", "", {})
        return run

    monkeypatch.setattr(dnc, "solve_dnc", fake("dnc"))
    real_optional = dnc._optional
    monkeypatch.setattr(dnc, "_optional", lambda m, n: fake("ilp") if m == "ilp" else real_optional(m, n))
    r = cf.solve(g, "M_R", method="auto", time_limit=limit)
    method = "ilp" if limit >= dnc.AUTO_EXACT_MIN_SECONDS else "dnc"
    assert r.info["auto_choice"] == method and list(got) == [method] and limit - 0.5 < got[method] <= limit
    got.clear()
    monkeypatch.setattr(dnc, "AUTO_ILP_MAX_OPS", g.n_ops - 1)
    r = cf.solve(g, "M_R", method="auto", time_limit=limit)
    assert list(got) == ["dnc"] and limit - 0.5 < got["dnc"] <= limit and r.info["auto_choice"] == "dnc"


def test_auto_hands_a_given_start_plan_to_the_ilp():
    g = _chain_graph(20)
    cap = cf.budgets(g).m_r
    start = cf.solve(g, cap, method="heuristic").plan
    r = cf.solve(g, cap, method="auto", time_limit=5, start_plan=start)
    assert r.info["auto_choice"] == "ilp" and r.traffic <= cf.validate(g, start, cap).traffic
    bad = cf.solve(g, cap + 10**9, method="baseline").plan  # valid only in a far larger scratchpad
    with pytest.raises(cf.CosmaError):
        cf.solve(g, cap, method="auto", time_limit=5, start_plan=bad)


def test_auto_choices():
    small, big = _chain_graph(10), _chain_graph(120)
    r = cf.solve(small, "M_R", method="auto", time_limit=10, workers=1)
    assert r.info["auto_choice"] in ("ilp", "dnc")
    r = cf.solve(big, "M_R", method="auto", time_limit=0.01, workers=1)  # too little time for D&C
    assert r.info["auto_choice"] == "heuristic"
    r = cf.solve(big, "M_R", method="auto", workers=1, segment_ops=10, window_nodes=20)
    assert r.info["auto_choice"] == "dnc"
    h = _heuristic_traffic(big, cf.budgets(big).m_r)
    assert h is None or r.traffic <= h
