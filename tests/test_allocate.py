"""Tests of cosma_fast.allocate: every answer goes through an independent overlap checker."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cosma_fast as cf
from cosma_fast.allocate import allocate_csv, max_live, read_csv, unpackable_instance, write_csv, zero_slack_instance
from cosma_fast.errors import OptionError


def check_packing(lower, upper, size, offsets, capacity=None, alignment=1):
    """Independent checker: no two lifetime-overlapping buffers share an address byte."""
    lower, upper, size, offsets = (np.asarray(x, np.int64) for x in (lower, upper, size, offsets))
    assert (offsets >= 0).all()
    assert (offsets % alignment == 0).all()
    if capacity is not None:
        assert (offsets + size).max(initial=0) <= capacity
    n = len(size)
    for i in range(n):
        for j in range(i + 1, n):
            if lower[i] < upper[j] and lower[j] < upper[i]:
                assert offsets[i] + size[i] <= offsets[j] or offsets[j] + size[j] <= offsets[i], (i, j)


def brute_force_packable(lower, upper, size, capacity, fixed=None, alignment=1):
    """Try every aligned offset assignment (with pruning): is there a packing within capacity?"""
    n = len(size)
    offs = [0] * n
    fixed = fixed or {}

    def rec(k):
        if k == n:
            return True
        choices = [fixed[k]] if k in fixed else range(0, capacity - size[k] + 1, alignment)
        for o in choices:
            if all(not (lower[k] < upper[j] and lower[j] < upper[k]
                        and o < offs[j] + size[j] and offs[j] < o + size[k]) for j in range(k)):
                offs[k] = o
                if rec(k + 1):
                    return True
        return False

    return rec(0)


def test_small_example_is_optimal():
    a = cf.allocate([0, 1, 2], [2, 3, 4], [2, 1, 2], capacity=3)
    assert a.status == "optimal" and a.height == 3 == a.lower_bound
    check_packing([0, 1, 2], [2, 3, 4], [2, 1, 2], a.offsets, 3)


@pytest.mark.parametrize("n", [5, 10, 20, 30])
@pytest.mark.parametrize("guillotine", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_zero_slack_instances_are_packed_at_max_live(n, guillotine, seed):
    lo, up, sz, known = zero_slack_instance(n, 64, 40, seed=seed, guillotine=guillotine)
    check_packing(lo, up, sz, known, 64)  # the generator's own packing is valid
    assert max_live(lo, up, sz) == 64
    a = cf.allocate(lo, up, sz, 64, time_limit=10)
    assert a.status == "optimal", a
    check_packing(lo, up, sz, a.offsets, 64)


@settings(max_examples=25)
@given(st.integers(0, 10**6), st.integers(5, 30), st.booleans())
def test_zero_slack_instances_up_to_30_buffers_are_always_solved(seed, n, guillotine):
    lo, up, sz, _ = zero_slack_instance(n, 48, 32, seed=seed, guillotine=guillotine)
    a = cf.allocate(lo, up, sz, 48, time_limit=10)
    assert a.status == "optimal", a
    check_packing(lo, up, sz, a.offsets, 48)


@settings(max_examples=25)
@given(st.integers(0, 10**6), st.integers(5, 60), st.booleans())
def test_continuation_chains_hold_in_the_known_packing(seed, n, guillotine):
    # a merge claims every packing gives the chained buffers one offset: the generator's packing must agree
    from cosma_fast.allocate import _continuation_chains

    lo, up, sz, known = zero_slack_instance(n, 48, 32, seed=seed, guillotine=guillotine)
    chain, c_lo, c_hi, c_size, _ = _continuation_chains(lo, up, sz, np.full(len(sz), -1, np.int64), 48)
    for c in range(c_size.size):
        members = np.flatnonzero(chain == c)
        assert (known[members] == known[members[0]]).all() and (sz[members] == c_size[c]).all()
        assert lo[members].min() == c_lo[c] and up[members].max() == c_hi[c]


def test_continuation_needs_full_sections():
    # b starts where a ends, but one byte is free at that instant, so b may move (c alive throughout)
    from cosma_fast.allocate import _continuation_chains

    lo, hi, size = np.array([0, 1, 0]), np.array([1, 2, 2]), np.array([1, 1, 1])
    chain = _continuation_chains(lo, hi, size, np.full(3, -1, np.int64), 3)[0]
    assert len(set(chain)) == 3
    chain = _continuation_chains(lo, hi, size, np.full(3, -1, np.int64), 2)[0]
    assert chain[0] == chain[1] != chain[2]


def small_instance(data, max_n=6):
    """A few buffers with short lifetimes and small sizes (for brute force)."""
    n = data.draw(st.integers(1, max_n))
    lower = data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    length = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    size = data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    return lower, [a + b for a, b in zip(lower, length)], size


@settings(max_examples=40)
@given(st.data())
def test_search_alone_agrees_with_brute_force(data):
    # the greedy placement would answer most feasible cases; this calls each exact search directly
    from cosma_fast.allocate import _canonical_partition, _search_restarts, _sections
    from cosma_fast.kernels.allocate import FOUND, NOT_FOUND

    lower, upper, size = small_instance(data)
    alignment = data.draw(st.sampled_from([1, 2]))
    cap = max_live(lower, upper, size) + data.draw(st.integers(-1, 2))
    lo, hi, _ = _sections(np.array(lower), np.array(upper))
    n = len(size)
    sizes, free = np.array(size, np.int64), np.full(n, -1, np.int64)
    expected = brute_force_packable(lower, upper, size, cap, alignment=alignment)
    skyline_status, skyline_off, _, _ = _search_restarts(sizes, lo, hi, free, cap, alignment, None)
    canonical_status, canonical_off, _ = _canonical_partition(np.arange(n), sizes, lo, hi, free, cap, alignment, None)
    for status, off in ((skyline_status, skyline_off), (canonical_status, canonical_off)):
        assert status == (FOUND if expected else NOT_FOUND)
        if expected:
            check_packing(lower, upper, size, off, cap, alignment)


@settings(max_examples=25)
@given(st.integers(0, 10**6), st.integers(5, 40), st.booleans())
def test_skyline_search_alone_packs_zero_slack_instances(seed, n, guillotine):
    # every section is full, so the search branches in pits above the lowest level; a wrong pit (a run with
    # a lower neighbour) loses packings, and the search would wrongly report none
    from cosma_fast.allocate import _search_restarts, _sections
    from cosma_fast.kernels.allocate import FOUND

    lo, up, sz, _ = zero_slack_instance(n, 48, 32, seed=seed, guillotine=guillotine)
    sec_lo, sec_hi, _ = _sections(lo, up)
    status, off, _, _ = _search_restarts(sz.astype(np.int64), sec_lo, sec_hi, np.full(n, -1, np.int64), 48, 1, None)
    assert status == FOUND
    check_packing(lo, up, sz, off, 48)


@settings(max_examples=40)
@given(st.data())
def test_skyline_search_alone_agrees_with_brute_force_near_zero_slack(data):
    # a zero-slack instance with one buffer grown or shrunk by a byte, and maybe one pinned buffer: full
    # sections (pits above the lowest level) and infeasible cases
    from cosma_fast.allocate import _search_restarts, _sections
    from cosma_fast.kernels.allocate import FOUND, NOT_FOUND

    n = data.draw(st.integers(3, 8))
    seed, guillotine = data.draw(st.integers(0, 10**6)), data.draw(st.booleans())
    lo, up, sz, _ = zero_slack_instance(n, 6, 6, seed=seed, guillotine=guillotine)
    k = data.draw(st.integers(0, len(sz) - 1))
    sz = sz.copy()
    sz[k] = max(1, sz[k] + data.draw(st.sampled_from([-1, 0, 1])))
    fixed = np.full(len(sz), -1, np.int64)
    pin = data.draw(st.integers(-1, len(sz) - 1))
    if pin >= 0 and sz[pin] <= 6:
        fixed[pin] = data.draw(st.integers(0, 6 - sz[pin]))
    sec_lo, sec_hi, _ = _sections(lo, up)
    status, off, _, _ = _search_restarts(sz.astype(np.int64), sec_lo, sec_hi, fixed, 6, 1, None)
    pinned = {int(i): int(fixed[i]) for i in np.flatnonzero(fixed >= 0)}
    expected = brute_force_packable(list(lo), list(up), list(sz), 6, fixed=pinned)
    assert status == (FOUND if expected else NOT_FOUND)
    if expected:
        check_packing(lo, up, sz, off, 6)
        assert all(off[i] == o for i, o in pinned.items())


@settings(max_examples=60)
@given(st.data())
def test_stack_overflow_rule_agrees_with_brute_force(data):
    # one section: its unplaced buffers must fit between their offset bounds (and the floor) and the capacity
    from itertools import permutations

    from cosma_fast.kernels.allocate import _stack_overflows

    k = data.draw(st.integers(0, 5))
    size = np.array(data.draw(st.lists(st.integers(1, 4), min_size=k, max_size=k)), np.int64)
    bound = np.array(data.draw(st.lists(st.integers(0, 8), min_size=k, max_size=k)), np.int64)
    fixed_off = np.full(k, -1, np.int64)
    if k and data.draw(st.booleans()):
        fixed_off[0] = bound[0]  # an unplaced pinned buffer starts exactly at its offset
    placed = data.draw(st.integers(-1, k - 1))
    off = np.full(k, -1, np.int64)
    if placed >= 0:
        off[placed] = 0  # placed buffers are no longer part of the stack
    floor, cap = data.draw(st.integers(0, 4)), data.draw(st.integers(0, 16))
    free = [i for i in range(k) if off[i] < 0]

    def fits(order):  # earliest placement in this order (intervals on one line, like one machine)
        top = floor
        for i in order:
            start = max(top, bound[i])
            if fixed_off[i] >= 0 and start != fixed_off[i]:
                return False
            top = start + size[i]
        return not order or top <= cap  # nothing to place fits, even above an aligned floor

    expected_fit = any(fits(order) for order in permutations(free))
    sec_ptr, sec_idx = np.array([0, k], np.int64), np.arange(k, dtype=np.int64)
    overflows = _stack_overflows(0, np.array([floor], np.int64), sec_ptr, sec_idx, off, size, fixed_off, bound, cap,
                                 np.empty((k + 1, 2), np.int64))
    if expected_fit:
        assert not overflows  # the rule never cuts a section that can be packed
    elif all(fixed_off[i] < 0 for i in free):
        assert overflows  # without pinned buffers the rule is exact


def test_stack_overflow_rule_fires():
    from cosma_fast.kernels.allocate import _stack_overflows

    args = (np.array([0, 2], np.int64), np.arange(2, dtype=np.int64), np.full(2, -1, np.int64),
            np.array([2, 2], np.int64), np.full(2, -1, np.int64), np.array([0, 3], np.int64))
    rel = np.empty((3, 2), np.int64)
    assert not _stack_overflows(0, np.array([0], np.int64), *args, 5, rel)  # [0, 2) and [3, 5)
    assert _stack_overflows(0, np.array([0], np.int64), *args, 4, rel)  # 4 bytes, but the second starts at 3
    assert _stack_overflows(0, np.array([2], np.int64), *args, 5, rel)  # from floor 2: [2, 4), then [4, 6)


@settings(max_examples=40)
@given(st.data())
def test_skyline_search_alone_agrees_with_brute_force_with_slack(data):
    # near-full sections next to full ones, as in schedules at capacity max live: the stack overflow rule
    # fires in sections that can still waste; a wrong cut would report no packing
    from cosma_fast.allocate import _search_restarts, _sections
    from cosma_fast.kernels.allocate import FOUND, NOT_FOUND

    lower, upper, size = small_instance(data, max_n=7)
    cap = max_live(lower, upper, size) + data.draw(st.integers(0, 2))
    lo, hi, _ = _sections(np.array(lower), np.array(upper))
    n = len(size)
    fixed = np.full(n, -1, np.int64)
    pin = data.draw(st.integers(-1, n - 1))
    if pin >= 0 and size[pin] <= cap:
        fixed[pin] = data.draw(st.integers(0, cap - size[pin]))
    status, off, _, _ = _search_restarts(np.array(size, np.int64), lo, hi, fixed, cap, 1, None)
    pinned = {int(i): int(fixed[i]) for i in np.flatnonzero(fixed >= 0)}
    expected = brute_force_packable(lower, upper, size, cap, fixed=pinned)
    assert status == (FOUND if expected else NOT_FOUND)
    if expected:
        check_packing(lower, upper, size, off, cap)
        assert all(off[i] == o for i, o in pinned.items())


@settings(max_examples=40)
@given(st.data())
def test_probing_agrees_with_brute_force(data):
    # tiny restart budgets and immediate probing, so probes answer (and refute) on small instances
    from cosma_fast.allocate import _ProbingSearch, _sections
    from cosma_fast.kernels.allocate import FOUND, NODE_LIMIT, NOT_FOUND

    lower, upper, size = small_instance(data, max_n=7)
    cap = max_live(lower, upper, size) + data.draw(st.integers(-1, 1))
    lo, hi, _ = _sections(np.array(lower), np.array(upper))
    n = len(size)
    search = _ProbingSearch(np.array(size, np.int64), lo, hi, np.full(n, -1, np.int64), cap, 1, None, 0, 1)
    status = NODE_LIMIT
    while status == NODE_LIMIT:
        status, off = search.step()
    expected = brute_force_packable(lower, upper, size, cap)
    assert status == (FOUND if expected else NOT_FOUND)
    if expected:
        check_packing(lower, upper, size, off, cap)


@settings(max_examples=25)
@given(st.integers(0, 10**6), st.integers(5, 60), st.booleans(), st.integers(-1, 59))
def test_probed_section_has_a_buffer_at_the_bottom_of_the_known_packing(seed, n, guillotine, pin):
    from cosma_fast.allocate import _probe_buffers

    lo, up, sz, known = zero_slack_instance(n, 48, 32, seed=seed, guillotine=guillotine)
    fixed = np.full(len(sz), -1, np.int64)
    if 0 <= pin < len(sz):
        fixed[pin] = known[pin]
    probes = _probe_buffers(sz, lo, up, fixed, 48)
    if probes.size or pin < 0:  # without pins some section is full and unpinned
        assert (known[probes] == 0).sum() == 1 and fixed[probes].max() < 0


@settings(max_examples=40)
@given(st.data())
def test_agrees_with_brute_force(data):
    n = data.draw(st.integers(1, 6))
    lower = data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    length = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    size = data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    upper = [a + b for a, b in zip(lower, length)]
    lb = max_live(lower, upper, size)
    cap = lb + data.draw(st.integers(-1, 1))
    a = cf.allocate(lower, upper, size, cap, time_limit=10)
    expected = brute_force_packable(lower, upper, size, cap)
    assert a.status != "timeout"
    assert (a.status in ("optimal", "feasible")) == expected
    if expected:
        check_packing(lower, upper, size, a.offsets, cap)
    else:
        check_packing(lower, upper, size, a.offsets)  # best effort still is a valid layout


@settings(max_examples=30)
@given(st.data())
def test_fixed_offsets_are_respected(data):
    lo, up, sz, known = zero_slack_instance(data.draw(st.integers(4, 15)), 32, 20,
                                            seed=data.draw(st.integers(0, 10**6)))
    pick = data.draw(st.lists(st.integers(0, len(sz) - 1), max_size=3, unique=True))
    fixed = {i: int(known[i]) for i in pick}
    a = cf.allocate(lo, up, sz, 32, time_limit=10, fixed=fixed)
    assert a.status in ("optimal", "feasible")  # the known packing honours the pins
    check_packing(lo, up, sz, a.offsets, 32)
    for i, o in fixed.items():
        assert a.offsets[i] == o


@settings(max_examples=40)
@given(st.data())
def test_fixed_agrees_with_brute_force(data):
    n = data.draw(st.integers(2, 6))
    lower = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    upper = [a + b for a, b in zip(lower, data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))]
    size = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    cap = max_live(lower, upper, size) + data.draw(st.integers(0, 1))
    fixed = {0: data.draw(st.integers(0, max(cap - size[0], 0)))}
    a = cf.allocate(lower, upper, size, cap, time_limit=10, fixed=fixed)
    expected = brute_force_packable(lower, upper, size, cap, fixed) and fixed[0] + size[0] <= cap
    assert (a.status in ("optimal", "feasible")) == expected
    assert a.offsets[0] == fixed[0]
    check_packing(lower, upper, size, a.offsets, cap if expected else None)


def test_alignment_respected():
    lo, up, sz, _ = zero_slack_instance(12, 16, 10, seed=3)
    a = cf.allocate(lo, up, sz * 4, 64 * 4, alignment=8, time_limit=10)
    check_packing(lo, up, sz * 4, a.offsets, a.capacity, alignment=8)


@settings(max_examples=30)
@given(st.data())
def test_alignment_agrees_with_brute_force(data):
    lower, upper, size = small_instance(data)
    cap = max_live(lower, upper, size) + data.draw(st.integers(0, 3))
    a = cf.allocate(lower, upper, size, cap, time_limit=10, alignment=2)
    expected = brute_force_packable(lower, upper, size, cap, alignment=2)
    assert (a.status in ("optimal", "feasible")) == expected
    check_packing(lower, upper, size, a.offsets, cap if expected else None, alignment=2)


def test_time_limit_returns_the_best_layout_found():
    lo, up, sz, _ = zero_slack_instance(450, 1024, 1024, seed=0, guillotine=False)
    a = cf.allocate(lo, up, sz, 1024, time_limit=0.05)
    assert a.status in ("timeout", "optimal")
    check_packing(lo, up, sz, a.offsets, a.height)
    if a.status == "timeout":
        assert a.height == a.info["greedy_height"] > a.capacity


def test_capacity_below_max_live_is_infeasible():
    a = cf.allocate([0, 0], [1, 1], [3, 3], 5)
    assert a.status == "infeasible" and a.lower_bound == 6
    check_packing([0, 0], [1, 1], [3, 3], a.offsets)


@pytest.mark.parametrize("extra", [0, 10])
def test_unpackable_instance_is_infeasible(extra):
    lo, up, sz, cap = unpackable_instance(extra=extra)
    assert max_live(lo, up, sz) == cap
    a = cf.allocate(lo, up, sz, cap, time_limit=10)
    assert a.status == "infeasible"
    check_packing(lo, up, sz, a.offsets)
    if extra == 0:
        assert not brute_force_packable(list(lo), list(up), list(sz), cap)


def test_bad_input_names_the_buffer():
    with pytest.raises(OptionError, match="buffer 1"):
        cf.allocate([0, 0], [1, 1], [1, -2], 5)
    with pytest.raises(OptionError, match="buffer 0"):
        cf.allocate([3], [3], [1], 5)
    with pytest.raises(OptionError, match="same length"):
        cf.allocate([0, 1], [1], [1], 5)
    with pytest.raises(OptionError, match="fixed buffers 0 and 1"):
        cf.allocate([0, 0], [2, 2], [2, 2], 5, fixed={0: 0, 1: 1})


def test_csv_round_trip(tmp_path):
    lo, up, sz, _ = zero_slack_instance(15, 50, 30, seed=1)
    src = tmp_path / "in.csv"
    write_csv(src, [f"b{i}" for i in range(len(sz))], lo, up, sz, np.zeros(len(sz), int))
    ids, lo2, up2, sz2 = read_csv(src)
    assert ids[0] == "b0" and (lo2 == lo).all() and (up2 == up).all() and (sz2 == sz).all()
    out = tmp_path / "out.csv"
    a = allocate_csv(src, 50, out=out)
    assert a.fits
    text = out.read_text().splitlines()
    assert text[0] == "id,lower,upper,size,offset"
    offs = [int(r.split(",")[4]) for r in text[1:]]
    check_packing(lo, up, sz, offs, 50)


def test_bad_csv_is_a_format_error(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("id,start,size\n0,1,2\n")
    with pytest.raises(cf.FormatError):
        read_csv(p)
    p.write_text("id,lower,upper,size\nx,0,two,3\n")
    with pytest.raises(cf.FormatError, match="'x'"):
        read_csv(p)


def test_brute_force_helper_itself():
    assert not brute_force_packable([0, 0], [1, 1], [2, 2], 3)
    assert brute_force_packable([0, 1], [1, 2], [3, 3], 3)
