"""Properties of the heuristic planner (cosma_fast.heuristic, kernels/replace, kernels/schedule)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import dags

import cosma_fast as cf
from cosma_fast import generators as gen
from cosma_fast.budgets import m_r
from cosma_fast.heuristic import SETTINGS, heuristic_plan, local_search_plan, rule_schedule, run_pass
from cosma_fast.kernels.replace import BELADY, SIZE_AWARE
from cosma_fast.kernels.schedule import RULE_NAMES
from cosma_fast.trivial import trivial_plan


@given(dags(max_ops=10), st.floats(1.0, 3.0), st.integers(0, 3))
def test_heuristic_plan_valid_and_not_worse_than_trivial(g, factor, seed):
    cap = int(m_r(g) * factor)
    r = cf.solve(g, cap, method="heuristic", seed=seed)
    triv = cf.validate(g, trivial_plan(g), cap)
    assert r.traffic <= triv.traffic
    assert r.non_compulsory >= r.lower_bound >= 0


@given(dags(max_ops=10), st.floats(1.0, 2.0))
@settings(max_examples=20)
def test_every_pass_setting_is_valid(g, factor):
    cap = int(m_r(g) * factor)
    for rule in range(len(RULE_NAMES)):
        order = rule_schedule(g, rule)
        for mode, beta in ((SIZE_AWARE, 0.0), (SIZE_AWARE, 1.0), (BELADY, 0.0)):
            traffic, _, plan = run_pass(g, cap, order, mode=mode, beta=beta)
            assert cf.validate(g, plan, cap).traffic == traffic


@given(dags(max_ops=10))
@settings(max_examples=20)
def test_alignment_respected(g):
    cap = m_r(g) + 8 * 6
    r = cf.solve(g, cap, method="heuristic", alignment=8)
    assert all(a % 8 == 0 for s in r.plan.steps for _, a in s.loads + s.allocs)


@given(dags(max_ops=10))
def test_no_extra_traffic_when_everything_fits(g):
    r = cf.solve(g, max(g.total_bytes(), m_r(g)), method="heuristic")
    assert r.non_compulsory == 0 and r.traffic == r.compulsory


@given(dags(max_ops=10), st.integers(0, 5))
@settings(max_examples=15)
def test_deterministic_for_seed(g, seed):
    cap = m_r(g)
    a = cf.solve(g, cap, method="heuristic", seed=seed)
    b = cf.solve(g, cap, method="heuristic", seed=seed)
    assert a.plan == b.plan


@given(dags(max_ops=10))
@settings(max_examples=20)
def test_fixed_schedule_is_honoured(g):
    order = rule_schedule(g, 2)
    r = cf.solve(g, m_r(g), method="heuristic", schedule=order)
    assert list(r.plan.schedule) == list(order)


@given(dags(max_ops=10))
@settings(max_examples=20)
def test_list_schedules_are_topological(g):
    for rule in range(len(RULE_NAMES)):
        order = rule_schedule(g, rule)
        assert sorted(order) == list(range(g.n_ops))
        pos = np.empty(g.n_ops, int)
        pos[order] = np.arange(g.n_ops)
        for o in range(g.n_ops):
            for t in g.inputs_of(o):
                p = g.tensor_producer[t]
                assert p < 0 or pos[p] < pos[o]


def _belady_trap(big):
    """Belady's victim is a huge dirty tensor; a small clean weight is enough.

    Step 2 needs 100 bytes while the pad is full. Resident and not pinned: ``B``
    (``big`` bytes, dirty, read at step 5) and ``w`` (100 bytes, clean, read at
    step 4). Size-blind Belady evicts ``B`` (store + reload = 2 * big); the
    size-aware rule evicts ``w`` (one 100-byte reload), and memory is free again
    when ``w`` is needed.
    """
    b = cf.GraphBuilder("trap")
    x = b.input("x", 10)
    w = b.input("w", 100)
    (B,) = b.op("mkB", [x], outputs=[("B", big)])
    (p,) = b.op("p", [x, w], outputs=[("p", 10)])
    (q,) = b.op("q", [p], outputs=[("q", 100)])
    (r,) = b.op("r", [q], outputs=[("r", 10)])
    (s_,) = b.op("s", [r, w], outputs=[("s", 10)])
    (y,) = b.op("y", [B, s_], outputs=[("y", 10)])
    b.mark_output(y)
    return b.build(), big + 120


@pytest.mark.parametrize("big", [1000, 100_000])
def test_size_blind_belady_is_arbitrarily_bad(big):
    g, cap = _belady_trap(big)
    order = np.arange(g.n_ops)
    comp = g.compulsory()
    bel, _, p1 = run_pass(g, cap, order, mode=BELADY)
    aware, _, p2 = run_pass(g, cap, order, mode=SIZE_AWARE, beta=0.0)
    assert cf.validate(g, p1, cap).traffic == bel
    assert cf.validate(g, p2, cap).traffic == aware
    assert bel - comp >= 2 * big
    assert aware - comp <= 100
    assert cf.solve(g, cap, method="heuristic").non_compulsory <= 100
    assert cf.solve(g, cap, method="baseline").non_compulsory >= 2 * big


@pytest.mark.parametrize("name", sorted(gen.GENERATORS))
def test_generators_plan_at_m_r(name):
    g = gen.GENERATORS[name](seed=3)
    cap = m_r(g)
    h = cf.solve(g, cap, method="heuristic", ls_iters=50)
    for m in ("baseline", "baseline-mpmf"):
        assert h.non_compulsory <= cf.solve(g, cap, method=m).non_compulsory


@given(dags(max_ops=10), st.floats(1.0, 2.0), st.integers(0, len(RULE_NAMES) - 1), st.sampled_from([1, 2, None]))
@settings(max_examples=15)
def test_local_search_plan_is_valid_and_no_worse_than_its_start(g, factor, rule, threads):
    cap = int(m_r(g) * factor)
    order = rule_schedule(g, rule)
    start = min(run_pass(g, cap, order, mode=m, beta=b, emit=False)[0] for m, b in SETTINGS)
    plan = local_search_plan(g, cap, order, time_limit=0.02, threads=threads)
    assert cf.validate(g, plan, cap).traffic <= start


def test_parallel_climbs_give_a_valid_plan_and_reject_zero_threads():
    from cosma_fast.errors import OptionError
    from cosma_fast.heuristic import climb_threads

    g = gen.random_layered(30, seed=2)
    cap = m_r(g)
    order = rule_schedule(g, 0)
    # two climbs in threads, the cheaper kept: valid and no dearer than the start's setting
    both = cf.validate(g, local_search_plan(g, cap, order, time_limit=0.3, threads=2), cap).traffic
    start = min(run_pass(g, cap, order, mode=m, beta=b, emit=False)[0] for m, b in SETTINGS)
    assert both <= start
    assert climb_threads(3) == 3 and climb_threads(None) >= 1
    with pytest.raises(OptionError, match="threads must be a positive integer or None"):
        local_search_plan(g, cap, order, time_limit=0.01, threads=0)
    for bad in (0, -1, 1.5):  # the facade names the option before any solver runs
        with pytest.raises(OptionError, match="threads must be a positive integer or None"):
            cf.solve(g, cap, method="ilp", threads=bad)


def test_local_search_stops_at_its_target():
    from cosma_fast.heuristic import _climb, _refined_plan

    g = gen.random_layered(12, seed=3)
    cap = m_r(g)
    order = rule_schedule(g, 0)
    traffic, mode, beta = min((run_pass(g, cap, order, mode=m, beta=b, emit=False)[0], m, b) for m, b in SETTINGS)
    assert traffic > g.compulsory()  # so the search has something to do without a target
    assert _climb(g, cap, order, traffic, mode, beta, 200, None, 0, 1)[5] > 0
    assert _climb(g, cap, order, traffic, mode, beta, 200, None, 0, 1, target=traffic)[5] == 0
    # parallel climbs share an event: a climb that meets the target sets it, and a climb
    # that finds it set stops before its first move
    import threading
    met = threading.Event()
    _climb(g, cap, order, traffic, mode, beta, 200, None, 0, 1, target=traffic, stop=met)
    assert met.is_set()
    assert _climb(g, cap, order, traffic, mode, beta, 200, None, 0, 1, stop=met)[5] == 0
    unmet = threading.Event()
    assert _climb(g, cap, order, traffic, mode, beta, 200, None, 0, 1, target=-1, stop=unmet)[5] > 0
    assert not unmet.is_set()
    # the caller's event ends local_search_plan's climbs: set before, no move is made, and the
    # plan is the refined one of the order as given (with no time left, the first setting's
    # pass alone, not even refined)
    stopped = local_search_plan(g, cap, order, time_limit=5.0, stop=met)
    assert stopped == _refined_plan(g, cap, order, traffic, mode, beta, 1)[0]
    unrefined = local_search_plan(g, cap, order, time_limit=0.0)
    assert unrefined == run_pass(g, cap, order, mode=SETTINGS[0][0], beta=SETTINGS[0][1])[2]
    assert cf.validate(g, stopped, cap).traffic <= traffic


def test_restarts_in_threads_give_the_plan_of_restarts_one_after_another():
    from cosma_fast.heuristic import PARALLEL_RESTARTS_MIN_OPS

    g = gen.randwire(PARALLEL_RESTARTS_MIN_OPS + 5, seed=1)
    cap = m_r(g)
    one = heuristic_plan(g, cap, seed=3, threads=1)
    assert heuristic_plan(g, cap, seed=3, threads=2) == one
    assert cf.solve(g, cap, method="heuristic", seed=3, threads=3).plan == one


def test_heuristic_plan_api():
    g = gen.residual(3, seed=1)
    info = {}
    plan = heuristic_plan(g, m_r(g), seed=0, info=info)
    cf.validate(g, plan, m_r(g))
    assert info["schedule_rule"] in RULE_NAMES


def test_time_limit_stops_local_search():
    import time

    g = gen.randwire(300, seed=2)
    cap = m_r(g)
    t = time.perf_counter()
    r = cf.solve(g, cap, method="heuristic", time_limit=0.05, ls_iters=100_000)
    assert time.perf_counter() - t < 2.0  # 100k moves would take tens of seconds
    assert r.info["evaluations"] < 100_000


def test_repack_keeps_the_resident_operand_that_fits():
    """Operator ``o`` reads A (4 bytes at 0) and B (2 bytes at 5) and writes O (4 bytes) in a
    10-byte pad: O fits nowhere around both. Keeping A and moving B next to O is cheapest
    (one 2-byte reload); keeping B leaves no room for A and O, so A must stay."""
    from cosma_fast.kernels.replace import _cheapest_repack

    A, B, O = 0, 1, 2
    size = np.array([4, 2, 4], np.int64)
    addr = np.array([0, 5, -1], np.int64)
    offchip = np.array([False, True, False])
    in_ptr, in_idx = np.array([0, 2]), np.array([A, B])
    out_ptr, out_idx = np.array([0, 1]), np.array([O])
    items, item_addr = np.empty(3, np.int64), np.empty(3, np.int64)
    n = _cheapest_repack(0, in_ptr, in_idx, out_ptr, out_idx, size, addr, offchip, np.int64(10), np.int64(1),
                         items, item_addr)
    assert sorted(items[:n]) == [B, O]
    placed = sorted((int(a), int(a + size[t])) for t, a in zip(items[:n], item_addr[:n]))
    assert placed[0][0] >= 4 and placed[-1][1] <= 10 and placed[0][1] <= placed[1][0]


def _mlp_trap():
    """A transformer MLP block at M_R: ``act`` reads m0 and writes m1, 4 + 4 = all 8 bytes,
    so m0 must sit at one end of the pad and the residual r (read again by ``add``) must be
    gone. An online allocator learns this only at ``act`` and moves m0 (store + reload, 8
    bytes) besides writing r back (2 bytes); the refining round places m0 where ``act``'s
    packing wants it when ``fc1`` allocates it, and only r is written back (the optimum)."""
    b = cf.GraphBuilder("mlp")
    x = b.input("x", 1)
    (r,) = b.op("res", [x], outputs=[("r", 1)])
    (h,) = b.op("norm", [r], outputs=[("h", 1)])
    (m0,) = b.op("fc1", [h], outputs=[("m0", 4)])
    (m1,) = b.op("act", [m0], outputs=[("m1", 4)])
    (m2,) = b.op("fc2", [m1], outputs=[("m2", 1)])
    (y,) = b.op("add", [r, m2], outputs=[("y", 1)])
    b.mark_output(y)
    return b.build(), 8


def test_refining_rounds_place_tight_step_operands_ahead():
    g, cap = _mlp_trap()
    order = np.arange(g.n_ops)
    once, moved, _ = run_pass(g, cap, order, rounds=1)
    refined, _, plan = run_pass(g, cap, order, rounds=2)
    assert moved == 1 and once - g.compulsory() == 10
    assert cf.validate(g, plan, cap).traffic == refined == g.compulsory() + 2
    assert cf.solve(g, cap, method="heuristic").non_compulsory == 2


@given(dags(max_ops=10), st.floats(1.0, 2.0))
@settings(max_examples=20)
def test_refining_rounds_never_cost_more(g, factor):
    cap = int(m_r(g) * factor)
    order = rule_schedule(g, 1)
    once, _, _ = run_pass(g, cap, order, rounds=1)
    refined, _, plan = run_pass(g, cap, order, rounds=3)
    assert cf.validate(g, plan, cap).traffic == refined <= once


def test_no_time_left_gives_one_pass_and_each_setting_sees_every_order_first():
    # time_limit=10 took 26 s on 10000 operators (every setting of every order, 50 moves at
    # once, refining): with no time, one pass of the first setting on the first order
    from cosma_fast.heuristic import PORTFOLIO_FIRST

    g = gen.randwire(40, seed=2)
    cap = cf.budgets(g).m_h
    info = {}
    plan = heuristic_plan(g, cap, time_limit=0.0, info=info)
    mode, beta = PORTFOLIO_FIRST
    assert info["evaluations"] == 1 and (info["replacement"], info["beta"]) == ("size-aware", beta)
    assert plan == run_pass(g, cap, rule_schedule(g, 0), mode=mode, beta=beta)[2]
    # without a limit, every setting of every order, as before
    info = {}
    heuristic_plan(g, cap, info=info, ls_iters=0)
    n_orders = len({rule_schedule(g, r).tobytes() for r in range(len(RULE_NAMES))})
    assert info["evaluations"] >= len(SETTINGS) * n_orders
