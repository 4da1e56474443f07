"""Schedule-independent lower bounds (cosma_fast.bounds) against brute force and real plans."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import dags, with_pair
from test_budgets import op_dag, profile_by_definition
from test_ilp import brute_force_non_compulsory, instances

import cosma_fast as cf
from cosma_fast import generators
from cosma_fast.bounds import (
    Incidence,
    address_free_beam,
    address_free_optimum,
    ancestors,
    before_matrix,
    chunked_spill_cover,
    forced_live,
    least_spill_cover,
    op_pressure,
    quiet_cuts,
    spill_cover_bound,
)
from cosma_fast.budgets import m_r


def skip_graph() -> cf.Graph:
    """x -> op0 -> a -> op1 -> c -> op2 -> d; op3 reads a and d. At M_R = 21, ``a`` (10 bytes)
    cannot stay on chip while op2 runs (c + d = 20): one write-back and one reload, 20 bytes."""
    b = cf.GraphBuilder("skip")
    x = b.input("x", 1)
    (a,) = b.op("op0", [x], outputs=[("a", 10)])
    (c,) = b.op("op1", [a], outputs=[("c", 10)])
    (d,) = b.op("op2", [c], outputs=[("d", 10)])
    (e,) = b.op("op3", [a, d], outputs=[("e", 1)])
    b.mark_output(e)
    return b.build()


@settings(max_examples=40)
@given(dags(max_ops=7), st.data())
def test_op_pressure_is_the_least_live_bytes_at_each_step(g, data):
    """Per operator, the minimum cut equals the least live bytes at its step over every
    topological order (extending one more decided pair, when the graph leaves one open)."""
    before = ancestors(g)
    open_pairs = [(a, b) for a in range(g.n_ops) for b in range(a + 1, g.n_ops)
                  if not before[a, b] and not before[b, a]]
    if open_pairs and data.draw(st.booleans()):
        a, b = data.draw(st.sampled_from(open_pairs))
        before = with_pair(before, a, b)
    least = np.full(g.n_ops, np.iinfo(np.int64).max)
    for order in nx.all_topological_sorts(op_dag(g)):
        pos = np.empty(g.n_ops, np.int64)
        pos[list(order)] = np.arange(g.n_ops)
        if np.any(before & (pos[None, :] > pos[:, None])):
            continue  # some q runs after an o it must precede
        least = np.minimum(least, np.asarray(profile_by_definition(g, order))[pos])
    assert op_pressure(g, before).tolist() == least.tolist()
    assert np.all(op_pressure(g) <= least)  # the graph's own order is a relaxation
    # out of time: each operator's operands alone, at most the least, never more
    assert op_pressure(g, before, time_limit=0).tolist() == g.op_bytes().tolist()
    assert op_pressure(g, before, time_limit=60).tolist() == least.tolist()
    inc = Incidence(g)
    assert not np.any(inc.live_across(before) & ~inc.possibly_live(before))


def test_skip_tensor_is_forced_and_costs_its_write_back_and_reload():
    g = skip_graph()
    F = forced_live(g)
    a = g.tensor_index["a"]
    # op1 reads a; op0 and op3 touch it too: only op2 runs while a must wait
    assert np.flatnonzero(F[:, a]).tolist() == [g.op_index["op2"]]
    cap = m_r(g)
    assert cap == 21
    assert spill_cover_bound(g, cap) == 20 == brute_force_non_compulsory(g, cap)
    r = cf.solve(g, cap, method="ilp")
    assert r.status == "optimal" and r.non_compulsory == 20 and r.lower_bound == 20
    assert r.info["rounds"] == 0  # the bound met the start: HiGHS was not needed


@settings(max_examples=30)
@given(data=st.data())
def test_spill_cover_bound_is_below_the_brute_force_optimum(data):
    g, cap = data.draw(instances(max_ops=5, max_size=20))
    assert spill_cover_bound(g, cap) <= brute_force_non_compulsory(g, cap)


@settings(max_examples=20)
@given(n=st.integers(3, 6), seed=st.integers(0, 10_000))
def test_spill_cover_bound_on_layered_graphs_at_m_r(n, seed):
    # random DAGs rarely force a tensor across an operator; layered graphs with skips
    # at M_R often do (seed 4: bound 28 = optimum, where the peak bound gives 2)
    g = generators.random_layered(n, seed=seed, base=10)
    assert spill_cover_bound(g, m_r(g)) <= brute_force_non_compulsory(g, m_r(g))


def test_layered_example_bound_is_the_optimum():
    g = generators.random_layered(5, seed=4, base=10)
    assert spill_cover_bound(g, m_r(g)) == 28 == brute_force_non_compulsory(g, m_r(g))


@settings(max_examples=20)
@given(data=st.data())
def test_fixed_schedule_bound_is_below_that_schedules_optimum(data):
    g, cap = data.draw(instances(max_ops=6, max_size=20))
    order = cf.solve(g, cap, method="heuristic").plan.schedule
    assert spill_cover_bound(g, cap, order) <= brute_force_non_compulsory(g, cap, schedule=list(order))
    assert spill_cover_bound(g, cap) <= spill_cover_bound(g, cap, order)  # a schedule only adds facts


def _one_order(search):
    """What ``search`` minimises over every order, for one order: the spill cover of
    :func:`spill_cover_bound`, or the segment cover of :mod:`cosma_fast.ilp.orders`, which
    for a total order is its exact address-free optimum."""
    from cosma_fast.ilp.orders import segment_cover

    if search is least_spill_cover:
        return lambda g, cap, o: spill_cover_bound(g, cap, np.array(o), time_limit=None)
    return lambda g, cap, o: segment_cover(g, cap, before_matrix(o))[0]


@pytest.mark.parametrize("search", [least_spill_cover, address_free_optimum])
@settings(max_examples=25)
@given(data=st.data())
def test_down_set_searches_find_the_least_value_over_every_order(search, data):
    g, cap = data.draw(instances(max_ops=6, max_size=20))
    value = _one_order(search)
    values = {tuple(o): value(g, cap, o) for o in nx.all_topological_sorts(op_dag(g))}
    res = search(g, cap)
    assert res.exact and res.bound == min(values.values())
    assert values[tuple(res.schedule.tolist())] == res.bound  # its order attains it
    assert least_spill_cover(g, cap).bound <= res.bound <= brute_force_non_compulsory(g, cap)
    # a known plan's cost as ``upper``: the search never reports more than it
    capped = search(g, cap, upper=res.bound)
    assert capped.exact and capped.bound == res.bound and capped.schedule is None
    # stopped early, the least estimate still queued is no more than the least value
    assert search(g, cap, max_states=16).bound <= res.bound


def test_least_spill_cover_proves_more_than_the_relaxed_order():
    # randwire10 at M_H: the cover over possible live sets gives 864, every order needs 2086,
    # the optimum
    g = generators.randwire(10)
    cap = cf.budgets(g)["M_H"]
    res = least_spill_cover(g, cap)
    assert res.exact and res.bound == spill_cover_bound(g, cap, res.schedule)
    assert spill_cover_bound(g, cap) < res.bound == cf.solve(g, cap, method="ilp").non_compulsory


def test_address_free_optimum_charges_every_reload():
    # randwire20 at M_R: the spill cover (one reload per spilled tensor) over every order is
    # 13366; a reload per off-chip segment gives 14988, the optimum
    g = generators.randwire(20)
    cap = cf.budgets(g)["M_R"]
    res = address_free_optimum(g, cap)
    assert res.exact and res.bound == 14988 > least_spill_cover(g, cap).bound == 13366
    assert res.bound == cf.solve(g, cap, method="ilp", time_limit=60).non_compulsory


@pytest.mark.parametrize("search", [least_spill_cover, address_free_optimum])
def test_down_set_searches_under_a_time_limit_or_state_cap_are_still_bounds(search):
    g = generators.randwire(20)
    cap = cf.budgets(g)["M_R"]
    exact = search(g, cap)
    assert exact.exact and exact.bound == {least_spill_cover: 13366, address_free_optimum: 14988}[search]
    for res in (search(g, cap, time_limit=0.0), search(g, cap, max_states=1024)):
        assert not res.exact and res.schedule is None and 0 <= res.bound <= exact.bound
    assert 0 < search(g, cap, max_states=1024).bound  # the least queued cost, not 0


@pytest.mark.parametrize("search", [least_spill_cover, address_free_optimum])
def test_lean_states_stop_a_search_whose_frontier_outgrows_it(search):
    # randwire30 at M_R stores more than ten states for each it expands
    g = generators.randwire(30)
    cap = m_r(g)
    lean = search(g, cap, lean_states=100_000, max_states=400_000)
    full = search(g, cap, max_states=400_000)
    assert not lean.exact and lean.states < full.states
    assert lean.bound <= full.bound  # the same search, stopped sooner: a bound all the same
    # a search that finishes under ``lean_states`` is not affected
    small = generators.randwire(20)
    a, b = search(small, m_r(small), lean_states=100_000), search(small, m_r(small))
    assert a.exact and (a.bound, a.states, a.schedule.tolist()) == (b.bound, b.states, b.schedule.tolist())


@pytest.mark.parametrize("search", [least_spill_cover, address_free_optimum])
def test_down_set_searches_name_their_size_limit(search):
    with pytest.raises(ValueError, match=f"{search.__name__} takes at most 62 operators"):
        search(generators.chain(63), 10**9)


@settings(max_examples=30)
@given(data=st.data())
def test_spill_cover_bound_is_below_every_heuristic_plan(data):
    g, cap = data.draw(instances(max_ops=14, max_size=100))
    bound = spill_cover_bound(g, cap)
    for method in ("heuristic", "baseline"):
        r = cf.solve(g, cap, method=method)
        assert bound <= r.non_compulsory
        assert spill_cover_bound(g, cap, r.plan.schedule) <= r.non_compulsory


# layered graphs whose model gets spill-cover rows (found by scanning seeds 0-39)
ROW_CASES = [(4, 9, "M_R"), (4, 17, "M_H"), (5, 0, "M_R"), (5, 4, "M_H"), (5, 6, "M_R"), (5, 34, "M_H"),
             (6, 9, "M_R"), (6, 24, "M_H"), (6, 35, "M_R")]


@pytest.mark.parametrize("n,seed,tier", ROW_CASES)
def test_ilp_with_spill_cover_rows_keeps_the_brute_force_optimum(n, seed, tier):
    from cosma_fast.ilp import build_model
    from cosma_fast.ilp.cuts import spill_cover_rows

    g = generators.random_layered(n, seed=seed, base=10)
    cap = cf.budgets(g)[tier]
    assert spill_cover_rows(build_model(g, cap))[0].shape[0] > 0
    # HiGHS must solve the model with the rows (no skip when the start meets the bound)
    r = cf.solve(g, cap, method="ilp", skip_when_bound_met=False, order_search=False)
    brute = brute_force_non_compulsory(g, cap)
    # the model's own optimum (not the reported bound, which is capped by the plan) is the
    # address-free optimum: rows that cut it off would raise it or make the model infeasible
    assert r.info["ilp_status"] == "optimal"
    assert round(r.info["dual_bound"]) - g.compulsory() == brute == r.lower_bound <= r.non_compulsory


def test_spill_cover_rows_hold_at_a_valid_plan():
    from cosma_fast.ilp import build_model
    from cosma_fast.ilp.cuts import spill_cover_rows
    from cosma_fast.ilp.decode import encode_plan

    g = skip_graph()
    model = build_model(g, m_r(g))
    A, lower = spill_cover_rows(model)
    assert lower.tolist() == [9, 9]  # op2: 20 + 10 - 21, once by a's loads, once by its write-back
    a = g.tensor_index["a"]
    assert A[1, model.wcol[a]] == 10 and A[0, model.lcol[a][model.lcol[a] >= 0]].min() == 10
    v = encode_plan(model, cf.solve(g, m_r(g), method="heuristic").plan)
    assert np.all(A @ v >= lower)


def test_capacity_below_m_r_is_a_clear_error():
    g = skip_graph()
    with pytest.raises(cf.InfeasibleError, match="op"):
        spill_cover_bound(g, m_r(g) - 1)


@settings(max_examples=25)
@given(data=st.data(), width=st.sampled_from([1, 2, 8]))
def test_address_free_beam_attains_its_value_on_its_order(data, width):
    g, cap = data.draw(instances(max_ops=6, max_size=20))
    order, value = address_free_beam(g, cap, width=width)
    assert _is_topological(g, order)
    optimum = address_free_optimum(g, cap).bound
    # what the order attains without addresses, at least its least (its segment cover), and
    # no order does better than the optimum over every order
    assert value >= _one_order(address_free_optimum)(g, cap, order) >= optimum
    # wide enough to hold every state, the beam is the whole search: the optimum itself
    wide_order, wide = address_free_beam(g, cap, width=1_000_000)
    assert wide == optimum and _one_order(address_free_optimum)(g, cap, wide_order) == optimum
    # ``upper``: nothing at or above it is kept
    assert address_free_beam(g, cap, width=1_000_000, upper=optimum) == (None, None)


def test_address_free_beam_finds_cheap_orders_where_the_search_cannot_finish():
    # randwire30 at M_R: the down-set search stops at its state cap; width 256 ends in under
    # a second at an order of 15726 bytes without addresses, where the heuristic's plan costs
    # 17869
    g = generators.randwire(30)
    cap = m_r(g)
    order, value = address_free_beam(g, cap, width=256)
    stopped = address_free_optimum(g, cap, max_states=20_000)
    assert not stopped.exact and stopped.bound <= value < cf.solve(g, cap, method="heuristic").non_compulsory
    assert _one_order(address_free_optimum)(g, cap, order) <= value
    # deterministic: the same order again
    again = address_free_beam(g, cap, width=256)
    assert again[1] == value and again[0].tolist() == order.tolist()


def test_address_free_beam_takes_graphs_beyond_the_down_set_search():
    # layered70 at M_R: more operators than a down-set fits in one word; the beam's order is
    # a valid schedule whose segment cover is no more than the beam's value, and cheaper than
    # the heuristic's plan
    g = generators.random_layered(70)
    cap = m_r(g)
    order, value = address_free_beam(g, cap, width=64)
    assert _is_topological(g, order)
    assert _one_order(address_free_optimum)(g, cap, order) <= value < cf.solve(g, cap,
                                                                               method="heuristic").non_compulsory


def test_address_free_beam_options_are_checked():
    g = generators.randwire(10)
    with pytest.raises(cf.OptionError, match="width must be a positive integer"):
        address_free_beam(g, cf.budgets(g)["M_R"], width=0)
    with pytest.raises(cf.OptionError, match="width must be a positive integer"):
        address_free_beam(g, cf.budgets(g)["M_R"], width=2.5)
    with pytest.raises(cf.InfeasibleError):
        address_free_beam(g, m_r(g) - 1)
    assert address_free_beam(g, cf.budgets(g)["M_R"], time_limit=0.0) == (None, None)
    import threading
    stop = threading.Event()
    assert address_free_beam(g, cf.budgets(g)["M_R"], stop=stop)[0] is not None
    stop.set()  # a caller's event, checked between depths
    assert address_free_beam(g, cf.budgets(g)["M_R"], stop=stop) == (None, None)


def _is_topological(g, order) -> bool:
    pos = np.empty(g.n_ops, np.int64)
    pos[np.asarray(order)] = np.arange(g.n_ops)
    return sorted(order) == list(range(g.n_ops)) and not np.any(ancestors(g) & (pos[None, :] > pos[:, None]))


@settings(max_examples=25)
@given(data=st.data())
def test_chunked_spill_cover_of_any_partition_is_below_the_whole(data):
    g, cap = data.draw(instances(max_ops=8, max_size=20))
    whole = least_spill_cover(g, cap)
    labels = data.draw(st.lists(st.integers(0, 2), min_size=g.n_ops, max_size=g.n_ops))
    parts = [np.flatnonzero(np.array(labels) == i) for i in range(3)]
    parts = [p for p in parts if len(p)]
    res = chunked_spill_cover(g, cap, parts)
    assert res.exact and 0 <= res.bound <= whole.bound <= brute_force_non_compulsory(g, cap)
    assert res.schedule is None or _is_topological(g, res.schedule)
    # one part is the whole graph, each tensor at its full price
    one = chunked_spill_cover(g, cap, [np.arange(g.n_ops)])
    assert one.bound == whole.bound and _is_topological(g, one.schedule)
    runs = chunked_spill_cover(g, cap, part_ops=data.draw(st.integers(1, 4)))
    assert runs.bound <= whole.bound and _is_topological(g, runs.schedule)
    # priced as the address-free relaxation prices the whole: below its optimum
    free = address_free_optimum(g, cap)
    assert res.bound <= chunked_spill_cover(g, cap, parts, address_free=True).bound <= free.bound
    assert chunked_spill_cover(g, cap, [np.arange(g.n_ops)], address_free=True).bound == free.bound


def _crossing_by_definition(g, order, cut):
    """Bytes of the tensors touched before position ``cut`` of ``order`` and read at it or after."""
    pos = {int(o): i for i, o in enumerate(order)}
    total = 0
    for t in range(g.n_tensors):
        readers = [pos[int(o)] for o in g.consumers_of(t)]
        touchers = readers + ([pos[int(g.tensor_producer[t])]] if g.tensor_producer[t] >= 0 else [])
        if readers and min(touchers) < cut <= max(readers):
            total += int(g.tensor_size[t])
    return total


@settings(max_examples=30)
@given(dags(max_ops=9), st.integers(1, 5))
def test_quiet_cuts_cross_the_fewest_bytes(g, max_ops):
    runs = quiet_cuts(g, max_ops)
    n, shortest = g.n_ops, max(1, max_ops // 2)
    order = np.arange(n)
    assert np.array_equal(np.concatenate(runs), order)
    assert all(len(r) <= max_ops for r in runs) and all(len(r) >= shortest for r in runs[:-1])

    def least(start):  # least crossing bytes of the runs from ``start`` on, by enumeration
        if n - start <= max_ops:
            options = [0]
        else:
            options = []
        for k in range(shortest, max_ops + 1):
            if start + k < n:
                rest = least(start + k)
                if rest is not None:
                    options.append(_crossing_by_definition(g, order, start + k) + rest)
        return min(options) if options else None

    ends = np.cumsum([len(r) for r in runs])[:-1]
    assert sum(_crossing_by_definition(g, order, int(c)) for c in ends) == least(0)


def test_chunked_spill_cover_bounds_a_layered_graph_too_large_for_one_search():
    # layered100 at M_H: runs of at most 30 operators give 11600 bytes, where the cover over
    # possible live sets gives far less; below the heuristic's plan
    g = generators.random_layered(100)
    cap = cf.budgets(g)["M_H"]
    res = chunked_spill_cover(g, cap, part_ops=30)
    assert res.exact and res.bound == 11600
    assert spill_cover_bound(g, cap) < res.bound <= cf.solve(g, cap, method="heuristic").non_compulsory
    assert _is_topological(g, res.schedule)


def test_chunked_spill_cover_parts_see_the_tensors_that_cross_their_cuts():
    # randwire10 at M_R in runs of 3: each tensor crossing a cut is made in one part and read
    # once in another, so no part touches it on both sides of an operator; the part where it
    # can be live across the most operators sees it all the same, and the parts then pay
    # 769 bytes (a part seeing only its own touches: 0), still below the whole's optimum
    g = generators.randwire(10)
    cap = cf.budgets(g)["M_R"]
    res = chunked_spill_cover(g, cap, part_ops=3, address_free=True)
    assert res.exact and res.bound == 769
    assert res.bound <= address_free_optimum(g, cap).bound == 3624


def test_chunked_spill_cover_searches_parts_at_once_with_the_same_result():
    # two workers search the parts in threads; when every part finishes, the sum and the
    # parts' orders are those of one worker
    g = generators.random_layered(100)
    cap = cf.budgets(g)["M_H"]
    one = chunked_spill_cover(g, cap, part_ops=30, address_free=True, workers=1)
    two = chunked_spill_cover(g, cap, part_ops=30, address_free=True, workers=2)
    assert one.exact and two.exact and one.bound == two.bound and one.states == two.states
    assert np.array_equal(one.schedule, two.schedule)
    with pytest.raises(cf.OptionError, match="workers"):
        chunked_spill_cover(g, cap, part_ops=30, workers=0)


def test_chunked_spill_cover_rejects_parts_that_do_not_partition():
    g = generators.random_layered(70)
    cap = cf.budgets(g)["M_H"]
    with pytest.raises(ValueError, match="exactly once"):
        chunked_spill_cover(g, cap, [np.arange(40), np.arange(39, 70)])
    with pytest.raises(ValueError, match="at most 62"):
        chunked_spill_cover(g, cap, [np.arange(63), np.arange(63, 70)])
    with pytest.raises(ValueError, match="part_ops"):
        chunked_spill_cover(g, cap, part_ops=0)
    with pytest.raises(ValueError, match="max_ops"):
        quiet_cuts(g, 0)


@pytest.mark.parametrize("search", [least_spill_cover, address_free_optimum])
@settings(max_examples=20)
@given(data=st.data())
def test_aligned_down_set_searches_bound_every_aligned_plan(search, data):
    """With an alignment the searches weigh padded bytes within the padded room: still below
    every order's aligned segment cover (which keeps the plain rows too) and every plan at
    aligned addresses."""
    from cosma_fast.bounds import Incidence
    from cosma_fast.budgets import aligned_footprint
    from cosma_fast.ilp.orders import _segment_cover

    g, cap = data.draw(instances(max_ops=6, max_size=20))
    alignment = data.draw(st.sampled_from([2, 8, 16]))
    cap = max(cap, int(aligned_footprint(g, alignment).max())) + data.draw(st.integers(0, 30))
    res = search(g, cap, alignment=alignment)
    assert res.exact
    inc = Incidence(g)
    covers = [_segment_cover(g, cap, before_matrix(o), None, inc, alignment=alignment)[0]
              for o in nx.all_topological_sorts(op_dag(g))]
    assert res.bound <= min(covers)
    for method in ("heuristic", "baseline"):
        assert res.bound <= cf.solve(g, cap, method=method, alignment=alignment).non_compulsory


def test_an_aligned_search_sees_what_padding_forces():
    g = generators.randwire(8)
    cap = cf.budgets(g).m_p
    assert address_free_optimum(g, cap).bound == 0
    res = address_free_optimum(g, cap, alignment=16)
    assert res.exact and res.bound > 0
    assert res.bound == cf.solve(g, cap, method="ilp", alignment=16, time_limit=30).non_compulsory


@settings(max_examples=20)
@given(data=st.data())
def test_an_aligned_spill_cover_bound_is_below_every_aligned_plan(data):
    """With an alignment the cover adds its rows in padded bytes: at least the plain bound,
    and at most every plan at aligned addresses (with a schedule, every plan running it)."""
    from cosma_fast.budgets import aligned_footprint

    g, cap = data.draw(instances(max_ops=7, max_size=40))
    alignment = data.draw(st.sampled_from([2, 8, 16]))
    cap = max(cap, int(aligned_footprint(g, alignment).max())) + data.draw(st.integers(0, 30))
    bound = spill_cover_bound(g, cap, time_limit=None, alignment=alignment)
    assert bound >= spill_cover_bound(g, cap, time_limit=None)
    for method in ("heuristic", "baseline"):
        plan = cf.solve(g, cap, method=method, alignment=alignment)
        assert bound <= plan.non_compulsory
        order = plan.plan.schedule
        assert spill_cover_bound(g, cap, order, time_limit=None, alignment=alignment) <= plan.non_compulsory


def test_padding_proves_densenets_spills_at_its_m_p():
    """densenet121 at its M_P, alignment 64: the plain bound is 0 (every tensor fits in the
    least-peak order), and the rows in padded bytes force 200704 bytes, what the exact
    mode's plan moves (it ended at bound 0 before those rows)."""
    from cosma_fast import zoo

    g = zoo.load("densenet121")
    cap = 2108289  # cf.budgets(g, time_limit=3).m_p; the default limit can find a lower one
    assert spill_cover_bound(g, cap, time_limit=None) == 0
    assert spill_cover_bound(g, cap, time_limit=None, alignment=64) == 200704
