"""The exact ILP against a plain brute-force enumeration on tiny DAGs."""

from __future__ import annotations

import dataclasses
import heapq
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import dags

import cosma_fast as cf
from cosma_fast.budgets import m_r
from cosma_fast.graph import INTERMEDIATE
from cosma_fast.ilp import min_peak_ilp


def brute_force_non_compulsory(g: cf.Graph, capacity: int, schedule=None) -> int:
    """Least non-compulsory traffic ignoring addresses, by Dijkstra over states.

    A state after a step is (operators done, resident tensors, tensors with an off-chip
    copy). A move runs a ready operator with any resident set that holds its operands,
    keeps only tensors it had or can load (inputs, weights, stored intermediates) or
    creates, and fits in ``capacity``. A tensor leaving while still needed (or an
    output not yet written back) is written back first.
    """
    n = g.n_ops
    size = g.tensor_size
    kind = g.tensor_kind
    ins = [set(g.inputs_of(o).tolist()) for o in range(n)]
    outs = [set(g.outputs_of(o).tolist()) for o in range(n)]
    producer = g.tensor_producer
    readers = [set(g.consumers_of(t).tolist()) for t in range(g.n_tensors)]
    full = frozenset(range(n))

    def needed(t, done):
        return bool(readers[t] - done)

    start = (frozenset(), frozenset(), frozenset(t for t in range(g.n_tensors) if kind[t] != INTERMEDIATE))
    dist = {start: 0}
    heap = [(0, 0, start)]
    tie = itertools.count(1)
    while heap:
        d, _, state = heapq.heappop(heap)
        if dist.get(state, None) != d:
            continue
        done, res, copy = state
        if done == full:
            return d - g.compulsory()
        if schedule is not None:
            ready = [int(schedule[len(done)])]
        else:
            ready = [o for o in range(n) if o not in done
                     and all(producer[t] < 0 or producer[t] in done for t in ins[o])]
        for o in ready:
            done2 = done | {o}
            must = ins[o] | outs[o]
            if any(t not in res and t not in copy for t in ins[o]):
                continue
            optional = [t for t in res | copy if t not in must and needed(t, done2)
                        and (t in res or t in copy)]
            for k in range(len(optional) + 1):
                for extra in itertools.combinations(optional, k):
                    new = must | set(extra)
                    if sum(int(size[t]) for t in new) > capacity:
                        continue
                    cost = sum(int(size[t]) for t in new - res - outs[o])
                    copy2 = set(copy)
                    for t in res - new:  # leaving: write back if still owed
                        if t not in copy2 and (needed(t, done2) or g.tensor_is_output[t]):
                            copy2.add(t)
                            cost += int(size[t])
                    if done2 == full:  # outputs still owed are written back at the end
                        cost += sum(int(size[t]) for t in range(g.n_tensors)
                                    if g.tensor_is_output[t] and t not in copy2)
                    nxt = (done2, frozenset(new), frozenset(copy2))
                    nd = d + cost
                    if nd < dist.get(nxt, float("inf")):
                        dist[nxt] = nd
                        heapq.heappush(heap, (nd, next(tie), nxt))
    raise AssertionError("no plan found")


def topological(g: cf.Graph, priority) -> list[int]:
    """The topological order that runs the ready operator of least priority first."""
    prio = {o: i for i, o in enumerate(priority)}
    done: list[int] = []
    while len(done) < g.n_ops:
        ready = [o for o in range(g.n_ops) if o not in done and all(
            g.tensor_producer[t] < 0 or g.tensor_producer[t] in done for t in g.inputs_of(o))]
        done.append(min(ready, key=prio.get))
    return done


@st.composite
def instances(draw, **dag_options):
    """A random DAG (:func:`strategies.dags` with ``dag_options``) and a capacity near its M_R."""
    g = draw(dags(**dag_options))
    return g, draw(capacities(g))


@st.composite
def ordered_instances(draw, max_ops: int = 6):
    """A random DAG, a capacity near M_R and a random topological order of it."""
    g, cap = draw(instances(max_ops=max_ops, max_size=20))
    return g, cap, topological(g, draw(st.permutations(range(g.n_ops))))


def capacities(g):
    lo = m_r(g)
    hi = int(g.total_bytes())
    # near M_R, where replacement is needed and the comparison has teeth
    return st.one_of(st.just(lo), st.integers(lo, lo + max(0, hi - lo) // 4))


@settings(max_examples=25)
@given(data=st.data())
def test_ilp_matches_brute_force(data):
    g, cap = data.draw(instances(max_ops=5, max_size=20))
    brute = brute_force_non_compulsory(g, cap)
    r = cf.solve(g, cap, method="ilp")
    # the address-free optimum is the proven bound; the plan can only be worse by fragmentation
    assert r.lower_bound == brute
    assert r.non_compulsory >= brute
    if r.status == "optimal":
        assert r.non_compulsory == brute
    h = cf.solve(g, cap, method="heuristic")
    assert r.non_compulsory <= h.non_compulsory


@settings(max_examples=20)
@given(inst=ordered_instances())
def test_fixed_schedule_matches_brute_force(inst):
    g, cap, done = inst
    brute = brute_force_non_compulsory(g, cap, schedule=done)
    r = cf.solve(g, cap, method="ilp", schedule=done)
    assert list(r.plan.schedule) == done
    assert r.lower_bound == brute
    assert r.non_compulsory >= brute
    if r.status == "optimal":
        assert r.non_compulsory == brute


def chain_with_skips(n: int) -> cf.Graph:
    b = cf.GraphBuilder("skips")
    x = b.input("x", 7)
    prev = [x]
    for i in range(n):
        ins = prev[-2:] if i % 2 else prev[-1:]
        (t,) = b.op(f"op{i}", ins, outputs=[(f"t{i}", 5 + (i * 7) % 11)])
        prev.append(t)
    b.mark_output(prev[-1])
    return b.build()


def test_time_limited_run_returns_valid_plan_and_bound():
    g = chain_with_skips(14)
    r = cf.solve(g, m_r(g), method="ilp", time_limit=0.5)
    cf.validate(g, r.plan, m_r(g))
    assert 0 <= r.lower_bound <= r.non_compulsory
    assert r.status in ("optimal", "feasible")
    assert "start_accepted" in r.info


@pytest.mark.parametrize("time_limit", [None, 0.4, 4.0])
def test_the_heuristic_start_gets_half_the_time_or_runs_to_its_end(monkeypatch, time_limit):
    """The start is the heuristic's plan, given half the time left (or no limit without one),
    so that the ILP's plan is no dearer than the heuristic's under a limit it finishes in: with a
    tenth, the ILP at 0.3 and 2 s returned plans up to 15% dearer than the heuristic's at the same
    limit on 150-300 operators (12 of 36 rows, bench/results/time_limits.md)."""
    from cosma_fast import heuristic
    from cosma_fast.ilp import START_SHARE

    given = []
    real = heuristic.solve_heuristic
    monkeypatch.setattr(heuristic, "solve_heuristic",
                        lambda g, c, opts: given.append(opts.time_limit) or real(g, c, opts))
    g = chain_with_skips(10)
    r = cf.solve(g, m_r(g), method="ilp", time_limit=time_limit)
    cf.validate(g, r.plan, m_r(g))
    assert len(given) == 1
    if time_limit is None:
        assert given[0] is None
    else:
        assert START_SHARE * (time_limit - 0.1) <= given[0] <= START_SHARE * time_limit  # 0.1 s for the setup
    assert r.non_compulsory <= cf.solve(g, m_r(g), method="heuristic", time_limit=time_limit).non_compulsory


def test_a_large_graph_unproven_in_time_gets_the_longer_local_search():
    """From WINDOW_SEARCH_MIN_OPS operators an order search that proves nothing hands half its
    time to the heuristic's local search: the plan is valid and no worse than the heuristic's."""
    from cosma_fast import generators as gen
    from cosma_fast.ilp import WINDOW_SEARCH_MIN_OPS

    g = gen.random_layered(WINDOW_SEARCH_MIN_OPS)
    cap = m_r(g)
    r = cf.solve(g, cap, method="ilp", time_limit=3.0)
    h = cf.solve(g, cap, method="heuristic")
    cf.validate(g, r.plan, cap)
    assert r.status == "feasible" and 0 <= r.lower_bound < r.non_compulsory <= h.non_compulsory
    assert r.info["local_search_non_compulsory"] >= r.non_compulsory


def test_the_down_set_search_proves_an_optimum_before_any_model():
    # randwire12 at M_H: the least spill cover over every order, 6114, is met by the start
    from cosma_fast import generators as gen

    g = gen.randwire(12)
    cap = cf.budgets(g)["M_H"]
    r = cf.solve(g, cap, method="ilp")
    cf.validate(g, r.plan, cap)
    assert r.status == "optimal" and r.non_compulsory == r.lower_bound == r.info["spill_search_bound"] == 6114
    assert r.info["spill_search_exact"] and r.info["rounds"] == 0
    assert r.info["ilp_status"] == "skipped: the down-set search proved the bound"


def test_near_its_minimum_peak_a_wider_beam_finds_an_order_that_packs():
    # randwire100 at M_P (34747 bytes, the peak of cf.budgets' beam at width 4096, whose order
    # does not pack at it): phase one's short beam peaks at 34925, the wider one at 33967 packs
    from cosma_fast import generators as gen

    g = gen.randwire(99)
    cap = cf.budgets(g, time_limit=5.0).m_p
    r = cf.solve(g, cap, method="ilp", time_limit=60)
    cf.validate(g, r.plan, cap)
    assert r.status == "optimal" and r.non_compulsory == 0


def test_at_m_p_an_order_that_fits_is_realised_first_and_the_minimum_peak_searched_once(monkeypatch):
    # layered100 at M_P: the minimum-peak order fits without spills and packs at once, so
    # phase one stops after it (one order realised, the start's and the model order's skipped)
    # and the bound and phase one share one minimum-peak search
    from cosma_fast import generators as gen
    from cosma_fast import ilp
    from cosma_fast.schedule import peak_live

    g = gen.random_layered(100)
    cap = cf.budgets(g, time_limit=5.0).m_p
    searched, realised = [], []
    real_peak, real_plan = ilp.min_peak_bounds, ilp.order_plan
    monkeypatch.setattr(ilp, "min_peak_bounds", lambda *a, **k: searched.append(1) or real_peak(*a, **k))
    monkeypatch.setattr(ilp, "order_plan", lambda *a, **k: realised.append(a[2]) or real_plan(*a, **k))
    r = cf.solve(g, cap, method="ilp", time_limit=60)
    cf.validate(g, r.plan, cap)
    assert r.status == "optimal" and r.non_compulsory == 0
    assert r.info["ilp_status"] == "skipped: start meets the lower bound"  # after phase one:
    assert cf.solve(g, cap, method="heuristic").non_compulsory > 0  # the heuristic's start spills
    assert len(searched) == 1 and len(realised) == 1
    assert peak_live(g, realised[0]) <= cap and np.array_equal(r.plan.schedule, realised[0])


def test_an_order_that_fits_but_does_not_pack_is_searched_locally(monkeypatch):
    # no cover packs (order_plan monkeypatched to find none) and the fixed-schedule plans are
    # trivial: the local search from the minimum-peak order, which fits, finds a plan without
    # extra bytes, and phase one stops there
    from cosma_fast import generators as gen
    from cosma_fast import heuristic, ilp
    from cosma_fast.schedule import peak_live
    from cosma_fast.trivial import trivial_plan

    g = gen.random_layered(100)
    cap = cf.budgets(g, time_limit=5.0).m_p
    searched = []
    real = heuristic.local_search_plan
    monkeypatch.setattr(ilp, "order_plan", lambda *a, **k: None)
    monkeypatch.setattr(ilp, "_fixed_schedule_plan", lambda graph, c, opts, schedule, *a, **k:
                        trivial_plan(graph, schedule))
    monkeypatch.setattr(heuristic, "local_search_plan", lambda graph, c, schedule, **k:
                        searched.append(np.array(schedule)) or real(graph, c, schedule, **k))
    r = cf.solve(g, cap, method="ilp", time_limit=60)
    cf.validate(g, r.plan, cap)
    assert r.status == "optimal" and r.non_compulsory == 0
    assert r.info["ilp_status"] == "skipped: start meets the lower bound"
    assert len(searched) == 1 and peak_live(g, searched[0]) <= cap


def test_the_address_free_searchs_order_is_packed_before_any_order_search():
    # randwire20 at M_R: the start costs 16247, every order 14988 without addresses, and the
    # cover of the down-set search's order packs: optimal with no order search and no model
    from cosma_fast import generators as gen

    g = gen.randwire(20)
    cap = cf.budgets(g)["M_R"]
    r = cf.solve(g, cap, method="ilp", time_limit=60)
    cf.validate(g, r.plan, cap)
    assert r.info["start_non_compulsory"] == 16247
    assert r.status == "optimal" and r.non_compulsory == r.lower_bound == r.info["spill_search_bound"] == 14988
    assert r.info["spill_search"] == "address_free_optimum" and r.info["spill_search_exact"]
    assert "order_nodes" not in r.info and "model_cols" not in r.info


def test_from_40_operators_the_down_set_search_takes_the_models_time():
    from cosma_fast import generators as gen
    from cosma_fast.ilp import SPILL_SEARCH_MAX_OPS, WINDOW_SEARCH_MIN_OPS

    g = gen.random_layered(WINDOW_SEARCH_MIN_OPS)
    cap = cf.budgets(g, time_limit=2.0)["M_H"]
    r = cf.solve(g, cap, method="ilp", time_limit=4.0)
    cf.validate(g, r.plan, cap)
    assert r.info["spill_search_bound"] <= r.lower_bound <= r.non_compulsory
    assert "down-set search" in r.info["ilp_status"] and "model_cols" not in r.info  # no model built
    assert WINDOW_SEARCH_MIN_OPS <= g.n_ops <= SPILL_SEARCH_MAX_OPS


def test_from_model_max_ops_the_local_search_takes_the_models_time():
    from cosma_fast import generators as gen
    from cosma_fast.ilp import MODEL_MAX_OPS

    g = gen.random_layered(MODEL_MAX_OPS)
    cap = m_r(g)
    r = cf.solve(g, cap, method="ilp", time_limit=3.0)
    cf.validate(g, r.plan, cap)
    assert r.status == "feasible" and 0 <= r.lower_bound < r.non_compulsory
    assert r.non_compulsory <= cf.solve(g, cap, method="heuristic").non_compulsory
    assert r.info["ilp_status"] == f"skipped: {MODEL_MAX_OPS} operators or more under a time limit"
    assert "model_cols" not in r.info


def test_beyond_the_down_set_search_the_chunked_spill_cover_bounds_the_plan():
    from cosma_fast import generators as gen
    from cosma_fast.bounds import chunked_spill_cover, spill_cover_bound
    from cosma_fast.ilp import SPILL_SEARCH_MAX_OPS

    g = gen.random_layered(SPILL_SEARCH_MAX_OPS + 8)
    cap = cf.budgets(g, time_limit=2.0)["M_H"]
    r = cf.solve(g, cap, method="ilp", time_limit=4.0)
    cf.validate(g, r.plan, cap)
    assert r.info["chunked_part_ops"][0] == 30
    # the first pass, finished within the time; the parts' address-free optima sum to at
    # least their spill covers (here the same, 11190)
    first = chunked_spill_cover(g, cap, part_ops=30, address_free=True).bound
    assert chunked_spill_cover(g, cap, part_ops=30).bound <= first
    assert spill_cover_bound(g, cap) < first <= r.info["chunked_bound"] <= r.lower_bound <= r.non_compulsory
    # the chunked bound binds: the order search, whose bound would be lower, gives its time away
    assert r.info["order_search"].startswith("skipped") and "order_nodes" not in r.info


def test_the_chunked_passes_order_is_realised_when_the_beam_finds_none(monkeypatch):
    import cosma_fast.ilp as ilp
    from cosma_fast import generators as gen

    g = gen.random_layered(ilp.SPILL_SEARCH_MAX_OPS + 8)
    cap = cf.budgets(g, time_limit=2.0)["M_H"]
    monkeypatch.setattr(ilp, "_beam_search", lambda g, capacity, upper, budget, stop=None: (None, upper, 0.0))
    r = cf.solve(g, cap, method="ilp", time_limit=4.0)
    cf.validate(g, r.plan, cap)
    assert r.info["beam_value"] is None
    # the best pass's order, realised by the heuristic and by its covers, is a candidate start
    assert r.non_compulsory <= r.info["chunked_order_plan"]


def test_the_chunked_passes_go_on_after_a_pass_stopped_early(monkeypatch):
    # a pass stopped by its time or states still gives a bound: the next (larger) parts run
    # too, the largest first after the probe, and the bound is the best pass's
    import cosma_fast.ilp as ilp
    from cosma_fast import generators as gen
    from cosma_fast.bounds import chunked_spill_cover

    seen = []

    def first_pass_stopped(*args, **kw):
        res = chunked_spill_cover(*args, **kw)
        seen.append((kw["part_ops"], res.bound))
        if len(seen) == 1:
            res = dataclasses.replace(res, exact=False)
        return res

    monkeypatch.setattr(ilp, "chunked_spill_cover", first_pass_stopped)
    g = gen.random_layered(ilp.SPILL_SEARCH_MAX_OPS + 8)
    cap = cf.budgets(g, time_limit=2.0)["M_H"]
    r = cf.solve(g, cap, method="ilp", time_limit=6.0)
    cf.validate(g, r.plan, cap)
    assert [p for p, _ in seen] == list(ilp.CHUNKED_PART_OPS[:len(seen)]) and len(seen) >= 2
    assert seen[1][0] == max(ilp.CHUNKED_PART_OPS)
    assert r.info["chunked_bound"] == max(b for _, b in seen) <= r.lower_bound <= r.non_compulsory


def test_where_the_down_set_search_stops_the_beams_order_is_a_start():
    from cosma_fast import generators as gen
    from cosma_fast.budgets import m_r

    # randwire32 at M_R: the address-free down-set search does not finish in its share of
    # 6 s; the beam search's order (27017 bytes without addresses) is realised at 28167, where
    # the start cost 32036
    g = gen.randwire(32)
    cap = m_r(g)
    r = cf.solve(g, cap, method="ilp", time_limit=6.0)
    cf.validate(g, r.plan, cap)
    assert not r.info["spill_search_exact"] and r.info["beam_value"] is not None
    assert r.lower_bound <= r.non_compulsory <= r.info["beam_order_plan"]
    assert r.info["beam_value"] < r.info["start_non_compulsory"]


def test_beyond_the_down_set_search_the_beams_order_is_a_start_too():
    from cosma_fast import generators as gen
    from cosma_fast.budgets import m_r

    # layered70 at M_R, 6 s: after the chunked bound (its order's plan: 57031 bytes), the
    # beam's order (49728 bytes without addresses) packs at 51356, where the start cost 67410
    g = gen.random_layered(70)
    cap = m_r(g)
    r = cf.solve(g, cap, method="ilp", time_limit=6.0)
    cf.validate(g, r.plan, cap)
    assert r.info["beam_value"] is not None and r.info["beam_value"] < r.info["start_non_compulsory"]
    assert r.lower_bound <= r.non_compulsory <= r.info["beam_order_plan"]


def test_the_order_search_runs_alongside_a_climb_only_when_threads_allow_two(monkeypatch):
    from cosma_fast import generators as gen
    from cosma_fast import ilp
    from cosma_fast.budgets import m_r

    calls = []
    real = ilp._alongside_local_search
    monkeypatch.setattr(ilp, "_alongside_local_search", lambda *a, **k: calls.append(1) or real(*a, **k))
    # randwire44 at M_R: from 40 operators, not proven by the down-set search
    g = gen.randwire(44)
    cap = m_r(g)
    one = cf.solve(g, cap, method="ilp", time_limit=4.0, threads=1)
    assert calls == []
    two = cf.solve(g, cap, method="ilp", time_limit=4.0, threads=2)
    assert calls == [1]
    for r in (one, two):
        cf.validate(g, r.plan, cap)
        assert r.lower_bound <= r.non_compulsory <= r.info["start_non_compulsory"]
        assert "local_search_non_compulsory" in r.info


def test_phase_one_runs_only_when_the_heuristic_start_is_not_proven_at_once(monkeypatch):
    from cosma_fast import generators as gen
    from cosma_fast import ilp

    calls = []
    real = ilp._phase_one
    monkeypatch.setattr(ilp, "_phase_one", lambda *a, **k: calls.append(a[0].n_ops) or real(*a, **k))
    # randwire8 at M_H: the heuristic's plan is optimal, the down-set search proves it first
    g = gen.randwire(8)
    cap = cf.budgets(g, time_limit=2.0)["M_H"]
    r = cf.solve(g, cap, method="ilp")
    assert r.status == "optimal" and r.info["ilp_status"] == "skipped: the down-set search proved the bound"
    assert r.non_compulsory == cf.solve(g, cap, method="heuristic").non_compulsory
    assert calls == []
    # randwire10 at M_R: the heuristic's plan is dearer than the optimum, so phase one runs
    g = gen.randwire(10)
    cap = cf.budgets(g, time_limit=2.0)["M_R"]
    r = cf.solve(g, cap, method="ilp")
    assert r.status == "optimal" and r.non_compulsory < cf.solve(g, cap, method="heuristic").non_compulsory
    assert calls == [g.n_ops]


def test_a_model_too_slow_to_build_gives_the_start_plan_and_its_bound(monkeypatch):
    g = chain_with_skips(14)
    from cosma_fast import ilp
    from cosma_fast.ilp.model import ModelBuildTimeout, build_model
    with pytest.raises(cf.SolverError):  # a deadline already passed stops the build
        build_model(g, m_r(g), deadline=0.0)
    assert issubclass(ModelBuildTimeout, cf.CosmaError)

    def too_slow(*args, deadline=None, **kw):
        assert deadline is not None  # a time limit gives the build a deadline
        raise ModelBuildTimeout("too slow")

    monkeypatch.setattr(ilp, "build_model", too_slow)
    r = cf.solve(g, m_r(g), method="ilp", time_limit=30, skip_when_bound_met=False, order_search=False)
    cf.validate(g, r.plan, m_r(g))
    assert r.info["rounds"] == 0 and r.info["ilp_status"].startswith("skipped")
    assert 0 <= r.lower_bound <= r.non_compulsory == r.info["start_non_compulsory"]


def test_warm_start_is_accepted():
    g = chain_with_skips(8)
    r = cf.solve(g, m_r(g), method="ilp", skip_when_bound_met=False, order_search=False)
    assert r.info["start_accepted"] is True
    assert r.status == "optimal"
    # by default HiGHS is skipped when the start already meets a proven bound
    q = cf.solve(g, m_r(g), method="ilp")
    assert q.status == "optimal" and q.non_compulsory == r.non_compulsory
    if q.info["rounds"] == 0:
        assert q.non_compulsory <= q.info["other_lower_bound"]


@settings(max_examples=20)
@given(g=dags(max_ops=6, max_size=20))
def test_min_peak_is_the_least_peak_over_all_orders(g):
    order, peak, exact = min_peak_ilp(g)
    assert exact
    from cosma_fast.ilp import _peak_of
    best = min(_peak_of(g, list(p)) for p in itertools.permutations(range(g.n_ops))
               if _topological(g, p))
    assert peak == best
    assert _topological(g, order)
    from cosma_fast.schedule import peak_live
    assert peak_live(g, order) == peak  # the same definition of live bytes as cf.budgets


def _topological(g, order) -> bool:
    pos = np.empty(g.n_ops, dtype=np.int64)
    pos[np.asarray(order)] = np.arange(g.n_ops)
    return all(g.tensor_producer[t] < 0 or pos[g.tensor_producer[t]] < pos[o]
               for o in range(g.n_ops) for t in g.inputs_of(o))


def test_unknown_formulation_is_a_clear_error():
    g = chain_with_skips(3)
    with pytest.raises(cf.OptionError, match="formulation"):
        cf.solve(g, m_r(g), method="ilp", formulation="nope")


def test_a_misspelt_method_option_is_a_clear_error():
    g = chain_with_skips(3)
    with pytest.raises(cf.OptionError, match="'order_serach' for method 'ilp'.*order_search"):
        cf.solve(g, m_r(g), method="ilp", order_serach=False)
    with pytest.raises(cf.OptionError, match="'workers' for method 'heuristic'"):
        cf.solve(g, m_r(g), method="heuristic", workers=2)


@settings(max_examples=10)
@given(data=st.data())
def test_cosma_formulation_has_the_same_optimum(data):
    g, cap = data.draw(instances(max_ops=4, max_size=12, max_outputs=1))
    r = cf.solve(g, cap, method="ilp", formulation="cosma", time_limit=20)
    d = cf.solve(g, cap, method="ilp")
    assert r.info["formulation"] == "cosma"
    if r.status == "optimal" and d.status == "optimal":
        assert r.non_compulsory == d.non_compulsory
    assert r.lower_bound <= d.non_compulsory and d.lower_bound <= r.non_compulsory


def cosma_address_rows(model, capacity: int, alignment: int):
    """COSMA's address rows over ``model`` (the replacement model), written out one by one:
    ``({(row cols, row vals): (lower, upper)}, address columns, pair columns)``, the columns
    numbered from ``model.n_cols`` as :func:`build_cosma_model` numbers them."""
    size = model.graph.tensor_size
    nt, n = model.rcol.shape
    big = capacity / alignment + max(1, capacity)
    acol, ncol = {}, model.n_cols
    for t in range(nt):
        for i in range(n):
            if model.rcol[t, i] >= 0:
                acol[t, i] = ncol
                ncol += 1
    rows = {}
    for (t, i), a1 in acol.items():  # the address is kept while t stays resident
        if (t, i - 1) in acol:
            a0, r1, r0 = acol[t, i - 1], model.rcol[t, i], model.rcol[t, i - 1]
            rows[(a1, a0, r1, r0), (1.0, -1.0, big, big)] = (-np.inf, 2 * big)
            rows[(a1, a0, r1, r0), (1.0, -1.0, -big, -big)] = (-2 * big, np.inf)
    pairs = 0
    for i in range(n):  # z = 1: t below u
        ts = [t for t in range(nt) if model.rcol[t, i] >= 0]
        for x, t in enumerate(ts):
            for u in ts[x + 1:]:
                at, au, rt, ru, z = acol[t, i], acol[u, i], model.rcol[t, i], model.rcol[u, i], ncol + pairs
                rows[(at, au, z, rt, ru), (1.0, -1.0, big, big, big)] = (-np.inf, 3 * big - size[t] / alignment)
                rows[(au, at, z, rt, ru), (1.0, -1.0, -big, big, big)] = (-np.inf, 2 * big - size[u] / alignment)
                pairs += 1
    return rows, acol, pairs


@settings(max_examples=15)
@given(data=st.data())
def test_cosma_model_has_the_papers_address_rows(data):
    from cosma_fast.ilp.cosma import build_cosma_model
    from cosma_fast.ilp.model import build_model

    g, cap = data.draw(instances(max_ops=6, max_size=20))
    alignment = data.draw(st.sampled_from([1, 4]))
    base = build_model(g, cap, alignment=alignment)
    model, acol = build_cosma_model(g, cap, alignment=alignment)
    want, want_acol, pairs = cosma_address_rows(base, cap, alignment)
    assert {(t, i): int(acol[t, i]) for t, i in zip(*np.nonzero(acol >= 0))} == want_acol
    assert model.n_cols == base.n_cols + len(want_acol) + pairs
    A = model.A.tocsr()
    assert (A[:base.A.shape[0], :base.n_cols] != base.A).nnz == 0  # the replacement model unchanged
    got = {}
    for r in range(base.A.shape[0], A.shape[0]):
        cols, vals = A.indices[A.indptr[r]:A.indptr[r + 1]], A.data[A.indptr[r]:A.indptr[r + 1]]
        row = sorted(zip(cols.tolist(), vals.tolist()))
        got[tuple(c for c, _ in row), tuple(v for _, v in row)] = (model.row_lower[r], model.row_upper[r])
    assert got == {tuple(zip(*sorted(zip(c, v)))): bounds for (c, v), bounds in want.items()}


def test_cosma_formulation_without_time_for_its_model_returns_the_start():
    # the start alone takes more than 0.01 s: neither the model nor HiGHS may run (HiGHS's
    # presolve does not watch the clock; the model of 70 operators took 3 s to build)
    from cosma_fast import generators as gen

    g = gen.randwire(70, seed=24)
    cap = cf.budgets(g, time_limit=0.5).m_h
    r = cf.solve(g, cap, method="ilp", formulation="cosma", time_limit=0.01)
    assert r.info["ilp_status"].startswith("skipped")
    assert r.status in ("optimal", "feasible") and 0 <= r.lower_bound <= r.non_compulsory


def test_warm_start_does_not_stop_highs_at_the_start():
    # HiGHS 1.16 with presolve reported a feasible start as optimal on this graph (start 3,
    # optimum 0 non-compulsory bytes); run_highs turns presolve off when it gives a start
    b = cf.GraphBuilder("start-bug")
    in0 = b.input("in0", 6)
    w0 = b.weight("w0", 7)
    w2 = b.weight("w2", 3)
    (t0,) = b.op("op0", [in0, w0], outputs=[("t0_0", 7)])
    (t1,) = b.op("op1", [], outputs=[("t1_0", 3)])
    (t2,) = b.op("op2", [in0, t1, w2], outputs=[("t2_0", 10)])
    (t3,) = b.op("op3", [], outputs=[("t3_0", 1)])
    b.mark_output(t0, t1, t2, t3)
    g = b.build()
    from cosma_fast.ilp import build_model, run_highs
    from cosma_fast.ilp.decode import encode_plan
    model = build_model(g, 22)
    from cosma_fast.trivial import trivial_plan
    start = encode_plan(model, trivial_plan(g, [1, 0, 2, 3]))
    res = run_highs(model, start=start)
    assert res["start_accepted"]
    assert res["status"] == "optimal" and round(res["objective"]) == g.compulsory() == 37


@settings(max_examples=20)
@given(data=st.data())
def test_start_by_callback_or_by_set_solution_gives_the_true_optimum(data):
    # the start goes in through the MIP user-solution callback (presolve on); with
    # setSolution presolve is switched off; both, and no start at all, agree
    g, cap = data.draw(instances(max_ops=6, max_size=20))
    from cosma_fast.ilp import build_model, run_highs
    from cosma_fast.ilp.decode import encode_plan
    from cosma_fast.trivial import trivial_plan
    model = build_model(g, cap)
    start = encode_plan(model, trivial_plan(g))
    plain = run_highs(model)
    by_cb = run_highs(model, start=start, start_via="callback")
    by_set = run_highs(model, start=start, start_via="setSolution")
    assert plain["status"] == by_cb["status"] == by_set["status"] == "optimal"
    assert round(plain["objective"]) == round(by_cb["objective"]) == round(by_set["objective"])
    assert by_cb["start_accepted"] and by_set["start_accepted"]
    assert round(plain["objective"]) <= round(float(start @ model.cost))


@settings(max_examples=15)
@given(data=st.data())
def test_write_back_cover_rows_keep_the_optimum(data):
    g, cap = data.draw(instances(max_ops=6, max_size=20))
    from cosma_fast.ilp import build_model, run_highs
    a = run_highs(build_model(g, cap))
    b = run_highs(build_model(g, cap, write_back_cover=True))
    assert a["status"] == b["status"] == "optimal"
    assert round(a["objective"]) == round(b["objective"])


def brute_force_window(wp, cap: int) -> int:
    """Least bytes moved by a window sub-problem (:func:`cosma_fast.dnc.window_problem`),
    ignoring addresses, by Dijkstra over (operators done, resident, off-chip copies).

    Starts from the entry state; a tensor leaving while a later window operator reads
    it, or while it is still wanted after the window (``live_out``) without a copy, is
    written back first, which ``store = -1`` forbids; ``store = 1`` tensors are written
    back when they leave or at the end; the last resident set must hold the exit set.
    """
    g, bd = wp.graph, wp.boundary
    n, size = g.n_ops, g.tensor_size
    ins = [set(g.inputs_of(o).tolist()) for o in range(n)]
    outs = [set(g.outputs_of(o).tolist()) for o in range(n)]
    readers = [set(g.consumers_of(t).tolist()) for t in range(g.n_tensors)]
    producer = g.tensor_producer
    full = frozenset(range(n))
    exit_set = set(np.flatnonzero(bd.exit_resident).tolist())

    def wanted(t, done):
        return bool(readers[t] - done) or bool(bd.live_out[t])

    def leave(t, done, copy):
        """Cost of ``t`` leaving the scratchpad (None when not allowed); updates ``copy``."""
        if t in copy:
            return 0
        owed = wanted(t, done) or bd.store[t] > 0
        if not owed:
            return 0
        if bd.store[t] < 0:
            return None
        copy.add(t)
        return int(size[t])

    start = (frozenset(), frozenset(np.flatnonzero(bd.entry_resident).tolist()),
             frozenset(t for t in range(g.n_tensors) if g.tensor_kind[t] != INTERMEDIATE and not bd.dirty[t]))
    dist = {start: 0}
    heap = [(0, 0, start)]
    tie = itertools.count(1)
    while heap:
        d, _, state = heapq.heappop(heap)
        if dist.get(state, None) != d:
            continue
        done, res, copy = state
        if done == full:
            return d
        ready = [o for o in range(n) if o not in done and all(producer[t] < 0 or producer[t] in done for t in ins[o])]
        for o in ready:
            done2 = done | {o}
            must = ins[o] | outs[o]
            if any(t not in res and t not in copy for t in ins[o]):
                continue
            optional = [t for t in res | copy if t not in must and wanted(t, done2)]
            for k in range(len(optional) + 1):
                for extra in itertools.combinations(optional, k):
                    new = must | set(extra)
                    if sum(int(size[t]) for t in new) > cap:
                        continue
                    if done2 == full and not exit_set <= new:
                        continue
                    cost = sum(int(size[t]) for t in new - res - outs[o])
                    copy2 = set(copy)
                    leaving = list(res - new) + (sorted(new - exit_set) if done2 == full else [])
                    costs = [leave(t, done2, copy2) for t in leaving]
                    if any(c is None for c in costs):
                        continue
                    cost += sum(costs)
                    if done2 == full:  # forced write-backs of tensors that stay resident
                        for t in exit_set:
                            if bd.store[t] > 0 and t not in copy2:
                                copy2.add(t)
                                cost += int(size[t])
                    nxt = (done2, frozenset(new), frozenset(copy2))
                    if d + cost < dist.get(nxt, float("inf")):
                        dist[nxt] = d + cost
                        heapq.heappush(heap, (d + cost, next(tie), nxt))
    raise AssertionError("no window plan found")


@settings(max_examples=25)
@given(dags(max_ops=7, max_size=20), st.sampled_from(["M_R", "M_H"]), st.integers(2, 4), st.booleans())
def test_window_ilp_matches_brute_force(g, tier, seg_ops, trivial):
    """With a fixed entry and exit state (cut from a whole-graph plan), the window model's
    optimum equals the brute force over the same boundary, and is at most the start's bytes."""
    from cosma_fast import dnc
    from cosma_fast.ilp import run_highs
    from cosma_fast.ilp.model import build_model
    from cosma_fast.trivial import trivial_plan

    cap = cf.budgets(g)[tier]
    plan = trivial_plan(g) if trivial else cf.solve(g, cap, method="heuristic").plan
    wins = dnc._windows(plan, g, seg_ops, False)
    trace = dnc.trace_plan(g, plan, {c for w in wins for c in w})
    for a, b in wins:
        wp = dnc.window_problem(g, plan, trace, a, b)
        model = build_model(wp.graph, cap, boundary=wp.boundary)
        res = run_highs(model)
        assert res["status"] == "optimal"
        assert round(res["objective"]) == brute_force_window(wp, cap) <= wp.start_traffic


def test_a_second_thread_count_in_one_process_still_solves():
    """HiGHS sizes one thread scheduler per process at its first solve and then refuses
    another ``threads``; run_highs must still solve (D&C windows ask for 1 thread after
    a whole-graph ILP ran with the default)."""
    from cosma_fast.ilp import run_highs
    from cosma_fast.ilp.model import build_model

    g = chain_with_skips(8)
    model = build_model(g, m_r(g))
    runs = [run_highs(model, threads=t) for t in (None, 1, 2)]
    assert all(r["status"] == "optimal" for r in runs)
    assert len({round(r["objective"], 6) for r in runs}) == 1
    assert not all(r["threads_honoured"] for r in runs[1:])  # 1 and 2 cannot both match


@settings(max_examples=20)
@given(data=st.data())
def test_valid_plans_encode_to_feasible_points_of_the_model(data):
    """Loads just in time and residency runs ending at a use are WLOG rows of the model:
    every valid plan (trimmed by encode_plan) is still a feasible point costing no more; with
    an alignment, of the model whose capacity rows count padded sizes."""
    from cosma_fast.budgets import aligned_footprint
    from cosma_fast.ilp import build_model
    from cosma_fast.ilp.decode import encode_plan
    g, cap = data.draw(instances(max_ops=7, max_size=20))
    alignment = data.draw(st.sampled_from([1, 2, 4, 8]))
    cap = max(cap, int(aligned_footprint(g, alignment).max()))
    plan = cf.solve(g, cap, method=data.draw(st.sampled_from(["heuristic", "baseline"])), alignment=alignment).plan
    for schedule in (None, plan.schedule):
        model = build_model(g, cap, schedule, alignment=alignment)
        v = encode_plan(model, plan)
        assert model.check(v)
        assert round(float(v @ model.cost)) <= cf.validate(g, plan, cap, alignment).traffic


@settings(max_examples=20)
@given(g=dags(max_ops=7, max_size=20))
def test_a_plan_that_prefetches_everything_encodes_trimmed(g):
    """A plan loading every input at step 0 and evicting nothing breaks the just-in-time
    rows as it stands; encode_plan trims it to a feasible point of the same cost."""
    from cosma_fast.ilp import build_model
    from cosma_fast.ilp.decode import encode_plan
    from cosma_fast.plan import Plan, Step
    addr = 0
    steps = []
    for o in range(g.n_ops):
        st = Step(o)
        if o == 0:
            for t in range(g.n_tensors):
                if g.tensor_kind[t] != INTERMEDIATE and len(g.consumers_of(t)):
                    st.loads.append((t, addr))
                    addr += int(g.tensor_size[t])
        for t in g.outputs_of(o).tolist():
            st.allocs.append((t, addr))
            addr += int(g.tensor_size[t])
        steps.append(st)
    finals = [t for t in range(g.n_tensors) if g.tensor_is_output[t] and g.tensor_kind[t] == INTERMEDIATE]
    plan = Plan(steps, finals)
    cap = max(addr, 1)
    traffic = cf.validate(g, plan, cap).traffic
    model = build_model(g, cap)
    v = encode_plan(model, plan)
    assert model.check(v)
    assert round(float(v @ model.cost)) <= traffic


def test_beyond_dense_max_ops_a_timed_solve_skips_the_dense_bounds(monkeypatch):
    # the cover bounds and the order search grow with operators^2 x tensors: time_limit=10 on
    # 10000 operators took 290 s; beyond DENSE_MAX_OPS the start and the local search only
    import cosma_fast.ilp as ilp
    from cosma_fast import generators as gen
    from cosma_fast.schedule import schedule_lower_bound

    g = gen.randwire(30, seed=4)
    cap = cf.budgets(g).m_r
    monkeypatch.setattr(ilp, "DENSE_MAX_OPS", g.n_ops - 1)
    r = cf.solve(g, cap, method="ilp", time_limit=1.0)
    assert "more than" in r.info["ilp_status"] and r.lower_bound == 0 < r.non_compulsory
    heur = cf.solve(g, cap, method="heuristic")
    assert r.non_compulsory <= heur.non_compulsory
    fixed = cf.solve(g, cap, method="ilp", time_limit=1.0, schedule=heur.plan.schedule)
    assert np.array_equal(fixed.plan.schedule, heur.plan.schedule)
    assert fixed.lower_bound == min(fixed.non_compulsory, schedule_lower_bound(g, heur.plan.schedule, cap))


def test_an_alignment_pads_the_models_capacity_rows():
    """At M_P every tensor fits unpadded, so the unpadded model costs nothing, and its optimum
    did not pack at 16-byte addresses (the solve ended at bound 0 against a plan of 1032
    bytes). With rows that count padded sizes (still a relaxation, see the encoding test
    above) the model's optimum is that plan's cost, and the solve proves it."""
    from cosma_fast import generators as gen
    from cosma_fast.budgets import aligned_capacity_rows
    from cosma_fast.ilp import run_highs
    from cosma_fast.ilp.model import build_model

    assert aligned_capacity_rows(np.array([1, 16, 17]), 33, 16)[0] == 48
    assert aligned_capacity_rows(np.array([1, 16, 17]), 33, 16)[1].tolist() == [16, 16, 32]
    assert aligned_capacity_rows(np.array([16, 32]), 40, 16)[0] == 32  # no padding: the room is below 40
    g = gen.randwire(8)
    cap = cf.budgets(g).m_p
    assert cf.solve(g, cap, method="ilp", time_limit=30).non_compulsory == 0
    r = cf.solve(g, cap, method="ilp", alignment=16, time_limit=30)
    assert r.status == "optimal" and r.non_compulsory > 0
    assert r.non_compulsory <= cf.solve(g, cap, method="heuristic", alignment=16).non_compulsory
    model = {a: run_highs(build_model(g, cap, alignment=a)) for a in (1, 16)}
    assert all(m["status"] == "optimal" for m in model.values())
    assert round(model[1]["objective"]) == g.compulsory()
    assert round(model[16]["objective"]) == g.compulsory() + r.non_compulsory


@settings(max_examples=25)
@given(g=dags(max_ops=7, max_size=40), alignment=st.sampled_from([2, 8, 16]), extra=st.integers(0, 60))
def test_an_order_whose_padded_live_bytes_overflow_has_no_plan_without_spills(g, alignment, extra):
    """_fits_padded is a necessary condition: every valid plan at aligned addresses that
    moves no extra byte runs an order it accepts."""
    from cosma_fast.budgets import aligned_footprint
    from cosma_fast.ilp import _fits_padded

    cap = int(aligned_footprint(g, alignment).max()) + extra
    for method in ("heuristic", "baseline"):
        r = cf.solve(g, cap, method=method, alignment=alignment)
        if r.non_compulsory == 0:
            assert _fits_padded(g, r.plan.schedule, cap, alignment)
        assert _fits_padded(g, r.plan.schedule, 10 ** 9, alignment)
    assert not _fits_padded(g, np.arange(g.n_ops), int(aligned_footprint(g, alignment).max()) - alignment,
                            alignment) or g.n_ops == 0
