"""The scratchpad picture: residency replay agrees with the checker; the PNG is drawn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import dags

import cosma_fast as cf
from cosma_fast.cli import load_model
from cosma_fast.trivial import trivial_plan
from cosma_fast.viz import occupancy, plot_plan, residencies

pytest.importorskip("matplotlib")


def _overlap(a, b) -> bool:
    return a.start < b.end and b.start < a.end and a.addr < b.addr + b.size and b.addr < a.addr + a.size


@settings(max_examples=25)
@given(dags())
def test_replay_matches_checker(g):
    """Bytes resident per step equal the checker's occupancy; rectangles never overlap and fit in C."""
    cap = int(g.op_bytes().max())  # M_R: the tightest capacity the trivial plan fits
    plan = trivial_plan(g)
    rep = cf.validate(g, plan, cap)
    np.testing.assert_array_equal(occupancy(g, plan), rep.occupancy)
    res = residencies(g, plan)
    assert all(0 <= r.addr and r.addr + r.size <= cap and r.start < r.end for r in res)
    assert not any(_overlap(a, b) for i, a in enumerate(res) for b in res[i + 1:])
    # every load and every store of the plan is marked exactly once
    n_loads = sum(len(st.loads) for st in plan.steps)
    n_stores = sum(len(st.stores) for st in plan.steps) + len(plan.final_stores)
    assert sum(r.loaded for r in res) == n_loads
    assert sum(len(r.stores) for r in res) == n_stores


def test_residencies_of_a_known_plan():
    b = cf.GraphBuilder("two")
    x = b.input("x", 10)
    (y,) = b.op("a", [x], outputs=[("y", 20)])
    (z,) = b.op("b", [y], outputs=[("z", 5)])
    b.mark_output(z)
    g = b.build()
    plan = cf.Plan([cf.Step(0, loads=[(0, 0)], allocs=[(1, 10)]),
                    cf.Step(1, evicts=[0], allocs=[(2, 0)])], final_stores=[2])
    cf.validate(g, plan, 30)
    res = {g.tensor_names[r.tensor]: r for r in residencies(g, plan)}
    assert (res["x"].start, res["x"].end, res["x"].loaded) == (0, 1, True)
    assert (res["y"].start, res["y"].end, res["y"].addr) == (0, 2, 10)
    assert res["z"].stores == (2,) and not res["z"].loaded
    assert occupancy(g, plan).tolist() == [30, 25]


def test_missing_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    g = load_model("example")
    with pytest.raises(cf.OptionError, match="cosma-fast\\[plot\\]"):
        plot_plan(g, trivial_plan(g), int(g.op_bytes().max()), tmp_path / "t.png")
    assert not (tmp_path / "t.png").exists()


def test_plot_plan_writes_png(tmp_path):
    g = load_model("example")
    cap = int(g.op_bytes().max())
    plan = trivial_plan(g)
    out = plot_plan(g, plan, cap, tmp_path / "t.png", title="example")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
