"""The exact small-MILP solve behind the cover bounds (cosma_fast.highs.solve_min)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from cosma_fast.highs import solve_min


def _random_cover(rng, n=14, m=6):
    """A knapsack cover on tensor-like sizes (~100 KB, a few bytes apart): the instances on
    which a solver that stops at a relative gap of 1e-4 reports an optimum tens of bytes high."""
    size = rng.integers(100_000, 100_100, n).astype(float)
    A = (rng.random((m, n)) < 0.5) * size
    need = A.sum(axis=1) * rng.uniform(0.3, 0.7, m)
    return size, A, need


def _brute_force(cost, A, need):
    choices = np.array(list(itertools.product((0, 1), repeat=len(cost))), dtype=float)
    ok = np.all(choices @ A.T >= need - 1e-9, axis=1)
    return int(round((choices[ok] @ cost).min()))


def test_solve_min_is_exact_on_byte_sized_covers():
    rng = np.random.default_rng(0)
    for _ in range(30):
        cost, A, need = _random_cover(rng)
        bound, found, x = solve_min(cost, sp.csr_matrix(A), need, 1.0, True)
        best = _brute_force(cost, A, need)
        assert bound == best == found
        assert np.all(A @ np.round(x) >= need - 1e-6)


def test_a_time_limited_solve_still_returns_a_valid_bound():
    rng = np.random.default_rng(1)
    cost, A, need = _random_cover(rng, n=12, m=5)
    best = _brute_force(cost, A, need)
    bound, found, _ = solve_min(cost, sp.csr_matrix(A), need, 1.0, True, time_limit=1e-6)
    assert 0 <= bound <= best <= found


def test_fractional_costs_are_refused():
    with pytest.raises(ValueError, match="whole"):
        solve_min(np.array([1.5, 1.0]), sp.csr_matrix(np.ones((1, 2))), [1.0], 1.0, True)
