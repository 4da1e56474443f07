"""The shipped COSMA model set and the synthetic graph families."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import cosma_fast as cf
from cosma_fast import INPUT, INTERMEDIATE, WEIGHT, zoo

ROOT = Path(__file__).resolve().parents[1]


def test_all_fourteen_models_ship():
    assert zoo.names() == zoo.MODELS
    assert len(zoo.HUMAN_MODELS) == 10 and len(zoo.NAS_MODELS) == 4


@pytest.mark.parametrize("name", zoo.MODELS)
def test_zoo_graph_loads_and_is_consistent(name):
    g = zoo.load(name)
    m = g.meta
    assert g.name == name and m["n_ops"] == g.n_ops and m["n_tensors"] == g.n_tensors
    assert m["dtype_bytes"] == 1 and m["batch"] == 1 and m["source"]
    # structure: one graph input, weights, every intermediate produced, something is an output
    assert (g.tensor_kind == INPUT).sum() == len(m["input_shapes"])
    assert int(g.tensor_size[g.tensor_kind == INPUT].sum()) == sum(int(np.prod(s)) for s in m["input_shapes"])
    assert (g.tensor_kind == WEIGHT).sum() > 0
    assert (g.tensor_producer[g.tensor_kind == INTERMEDIATE] >= 0).all()
    assert g.tensor_is_output.any()
    # every operator's result is used or returned: no fake view operators left dangling
    dead = (np.diff(g.cons_ptr) == 0) & (g.tensor_kind == INTERMEDIATE) & ~g.tensor_is_output
    assert not dead.any(), [g.tensor_names[t] for t in np.flatnonzero(dead)[:5]]
    for key, gw in (("with_weights", g), ("activations_only", g.activation_only())):
        b = m["budgets"][key]
        assert b["M_R"] == zoo.m_r(gw)
        assert b["M_R"] <= b["M_H"] <= b["M_P"]
        assert b["M_P"] <= max(b["M_R"], zoo.order_peak(gw))  # never worse than the model order


def test_resnet50_matches_the_known_sizes():
    g = zoo.load("resnet50")
    # 25.56 M parameters (+ BN running stats), ~36 MiB of 8-bit activations (143.3 MiB at fp32)
    assert 25_500_000 < g.meta["weight_bytes"] < 25_700_000
    assert abs(g.meta["activation_bytes"] / 2**20 - 143.3 / 4) < 0.5
    assert sum(bool(re.search(r"(conv\d|downsample_0)$", n)) for n in g.op_names) == 53  # 53 convolutions


def test_zoo_loads_without_torch_and_from_torch_says_how_to_install():
    # the shipped graphs are plain JSON: loading them must not import torch
    code = ("import sys; sys.modules['torch'] = None; import cosma_fast as cf; "
            "g = cf.zoo.load('darts'); assert g.n_ops == g.meta['n_ops']; "
            "import pytest\n"
            "with pytest.raises(ImportError, match='cosma-fast\\[torch\\]'): cf.from_torch(None, None)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_load_unknown_name():
    with pytest.raises(cf.FormatError, match="resnet50"):
        zoo.load("resnet51")


def test_randwire_shape_and_determinism():
    g = zoo.randwire(32, 4, 0.75, seed=1)
    assert g.n_ops == 33 and (g.tensor_kind == INPUT).sum() == 1
    act = 78 * 28 * 28
    assert (g.tensor_size[g.tensor_kind == INTERMEDIATE] == act).all()
    assert g == zoo.randwire(32, 4, 0.75, seed=1)
    assert g != zoo.randwire(32, 4, 0.75, seed=2)
    # rewiring makes some nodes read more than the k/2 ring predecessors
    n_in = np.diff(g.op_in_ptr)[:-1] - 1  # minus the node's weight
    assert n_in.max() > 2
    with pytest.raises(cf.OptionError):
        zoo.randwire(3, 4, 0.5)


def test_random_layered():
    g = zoo.random_layered(6, 3, seed=4)
    assert g.n_ops == 18 and g == zoo.random_layered(6, 3, seed=4)
    dead = (np.diff(g.cons_ptr) == 0) & (g.tensor_kind == INTERMEDIATE) & ~g.tensor_is_output
    assert not dead.any()
    assert cf.budgets(g).m_r <= cf.budgets(g).m_p


def _make_zoo():
    spec = importlib.util.spec_from_file_location("make_zoo", ROOT / "bench" / "make_zoo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _has_torchvision() -> bool:
    for m in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
        sys.modules.setdefault(m, types.ModuleType(m))
    try:
        import torchvision  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.parametrize("name", ["resnet50", "darts", "transformer"])
def test_regenerated_zoo_file_is_byte_identical(name):
    pytest.importorskip("torch")
    if name == "resnet50" and not _has_torchvision():
        pytest.skip("torchvision is not installed (pip install torchvision==0.28.0 --no-deps)")
    mk = _make_zoo()
    shipped = (ROOT / "cosma_fast" / "zoo_data" / f"{name}.json.gz").read_bytes()
    assert mk.regenerate(name) == shipped
