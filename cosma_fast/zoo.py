"""The COSMA model set and synthetic graph families.

``names()`` / ``load(name)`` give the fourteen networks COSMA evaluated (Li, Gupta,
Malik, arXiv 2311.18246, section 6; DESIGN.md section 4) as shipped graph files:
ten human-designed DNNs traced from torchvision/torch and four NAS networks
built from their published cell genotypes, all at batch 1 with 8-bit data. No
torch is needed to load them; ``bench/make_zoo.py`` regenerates them.

Each graph's ``meta`` records its ``source``, ``n_ops``, ``n_tensors`` and
``budgets`` (``with_weights`` and ``activations_only``: ``M_R``, ``M_H``,
``M_P``, ``M_P_exact``).

``randwire`` builds RandWire-style irregular graphs (Xie et al., "Exploring
Randomly Wired Neural Networks for Image Recognition", ICCV 2019: a Watts-Strogatz
graph made acyclic by orienting edges from lower to higher node index);
``random_layered`` builds random layered DAGs with conv-like sizes.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from .errors import FormatError, OptionError
from .graph import INTERMEDIATE, Graph, GraphBuilder

__all__ = ["MODELS", "HUMAN_MODELS", "NAS_MODELS", "names", "load", "randwire", "random_layered",
           "m_r", "order_peak"]

HUMAN_MODELS = ["resnet50", "densenet121", "resnext50_32x4d", "r2plus1d_18", "s3d", "fcn_resnet50",
                "lraspp_mobilenet_v3_large", "deeplabv3_resnet50", "transformer", "vit_b_16"]
NAS_MODELS = ["nasnet_a", "amoebanet_d", "pnasnet_5", "darts"]
MODELS = HUMAN_MODELS + NAS_MODELS


def _data_file(name: str):
    return resources.files("cosma_fast").joinpath("zoo_data", f"{name}.json.gz")


def names() -> list[str]:
    """Names of the shipped model graphs (human-designed first, then NAS), in COSMA's order."""
    return [n for n in MODELS if _data_file(n).is_file()]


def load(name: str) -> Graph:
    """The shipped graph of model ``name`` (see :func:`names`).

    Returns a :class:`Graph` whose ``meta`` holds ``source``, counts and ``budgets``.
    Raises :class:`FormatError` for an unknown name.
    """
    f = _data_file(name)
    if name not in MODELS or not f.is_file():
        raise FormatError(f"no zoo model named {name!r}; available: {', '.join(names())}")
    with resources.as_file(f) as path:
        return Graph.from_json(path)


# ----------------------------------------------------------------------------- simple measures
def m_r(graph: Graph) -> int:
    """``M_R``: the largest input+output bytes of one operator."""
    b = graph.op_bytes()
    return int(b.max()) if len(b) else 0


def order_peak(graph: Graph, order=None) -> int:
    """Peak live bytes when the operators run in ``order`` (default: model order).

    A tensor is live from its production (or, for inputs and weights, its first
    use) to its last use, or to the end if it is an output; an upper bound on ``M_P``.
    """
    n, nt = graph.n_ops, graph.n_tensors
    order = np.arange(n) if order is None else np.asarray(order)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    first = np.full(nt, n, dtype=np.int64)
    last = np.full(nt, -1, dtype=np.int64)
    for o in range(n):
        p = pos[o]
        for t in graph.inputs_of(o):
            first[t] = min(first[t], p)
            last[t] = max(last[t], p)
        for t in graph.outputs_of(o):
            first[t] = p
            last[t] = max(last[t], p)
    last[graph.tensor_is_output & (graph.tensor_kind == INTERMEDIATE)] = n - 1
    used = last >= 0
    delta = np.zeros(n + 1, dtype=np.int64)
    np.add.at(delta, first[used], graph.tensor_size[used])
    np.add.at(delta, last[used] + 1, -graph.tensor_size[used])
    return int(np.cumsum(delta)[:n].max()) if n else 0


# ----------------------------------------------------------------------------- synthetic graphs
def randwire(nodes: int = 32, k: int = 4, p: float = 0.75, seed: int = 0, *, channels: int = 78,
             spatial: int = 28, dtype_bytes: int = 1) -> Graph:
    """A RandWire stage (Xie et al. 2019) as a graph.

    A Watts-Strogatz graph WS(``nodes``, ``k``, ``p``) is made acyclic by orienting
    every edge from the lower to the higher node index. Each node is one operator
    (weighted sum of its inputs, ReLU, 3x3 separable conv, BN) reading its
    predecessors' outputs and its weights (``9*C + C*C + 2*C`` elements) and producing
    a ``C x H x W`` tensor; nodes without predecessors read the stage input, and an
    output operator averages the nodes without successors.

    Returns a :class:`Graph`; deterministic for a given ``seed``.
    """
    import networkx as nx

    if nodes < 2 or k < 2 or k >= nodes or not 0 <= p <= 1:
        raise OptionError(f"randwire needs nodes >= 2, 2 <= k < nodes and 0 <= p <= 1; got nodes={nodes}, "
                          f"k={k}, p={p}")
    ws = nx.watts_strogatz_graph(nodes, k, p, seed=seed)
    preds = {v: sorted(u for u in ws.neighbors(v) if u < v) for v in range(nodes)}
    succs = {v: [w for w in ws.neighbors(v) if w > v] for v in range(nodes)}
    act = channels * spatial * spatial * dtype_bytes
    b = GraphBuilder(f"randwire_n{nodes}_k{k}_p{p}_s{seed}",
                     meta={"source": "randwire (Watts-Strogatz, edges oriented low->high)", "nodes": nodes,
                           "k": k, "p": p, "seed": seed, "channels": channels, "spatial": spatial})
    x = b.input("input", act)
    out = {}
    for v in range(nodes):
        w = b.weight(f"node{v}.w", (9 * channels + channels * channels + 2 * channels) * dtype_bytes)
        ins = [out[u] for u in preds[v]] or [x]
        (out[v],) = b.op(f"node{v}", ins + [w], outputs=[(f"node{v}.out", act)])
    sinks = [out[v] for v in range(nodes) if not succs[v]]
    (y,) = b.op("output", sinks, outputs=[("output", act)])
    b.mark_output(y)
    return b.build()


def random_layered(layers: int = 8, width: int = 4, seed: int = 0, *, max_inputs: int = 3,
                   min_size: int = 16 * 14 * 14, max_size: int = 256 * 28 * 28,
                   weights: bool = True) -> Graph:
    """A random layered DAG: ``layers`` layers of ``width`` operators.

    Each operator reads 1..``max_inputs`` tensors from the previous layer (and, with
    probability 1/4 each, from earlier layers: skip connections) plus one weight, and
    writes one tensor of a random conv-like size in ``[min_size, max_size]`` bytes.
    The first layer reads the graph input; tensors nobody reads (the last layer's
    among them) are outputs.
    Deterministic for a given ``seed``.
    """
    if layers < 1 or width < 1 or max_inputs < 1 or not 0 < min_size <= max_size:
        raise OptionError("random_layered needs layers, width, max_inputs >= 1 and 0 < min_size <= max_size")
    rng = np.random.default_rng(seed)
    b = GraphBuilder(f"random_layered_l{layers}_w{width}_s{seed}",
                     meta={"source": "random_layered", "layers": layers, "width": width, "seed": seed})
    prev = [b.input("input", int(rng.integers(min_size, max_size + 1)))]
    earlier: list = []
    read: set[str] = set()
    for i in range(layers):
        cur = []
        for j in range(width):
            n_in = int(rng.integers(1, min(max_inputs, len(prev)) + 1))
            ins = [prev[int(q)] for q in rng.choice(len(prev), size=n_in, replace=False)]
            ins += [t for t in earlier if rng.random() < 0.25 / max(1, len(earlier)) * 2]
            if weights:
                ins.append(b.weight(f"l{i}_{j}.w", int(rng.integers(64, 64 * 1024))))
            read.update(h.name for h in ins)
            (t,) = b.op(f"l{i}_{j}", ins, outputs=[(f"l{i}_{j}.out", int(rng.integers(min_size, max_size + 1)))])
            cur.append(t)
        earlier.extend(prev)
        prev = cur
    # every tensor nobody reads is a result, so no operator is dead code
    b.mark_output(*prev, *[t for t in earlier if t.name not in read and t.name != "input"])
    return b.build()

