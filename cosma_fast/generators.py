"""Synthetic DNN-like graphs for tests and benchmarks.

Every generator takes a ``seed`` (sizes are drawn from it), adds a weight per
operator when ``weights`` is true, and marks the last operator's output as the
graph output. Sizes are conv-like byte counts (channels x spatial, 8-bit data).

``chain``, ``residual``, ``dense_blocks`` (DenseNet), ``inception`` (parallel
branches + concat), ``unet`` (long skip connections), ``random_layered`` (random
layered DAG), ``randwire`` (Watts-Strogatz small-world graph made acyclic by
orienting edges from lower to higher node index, as in Xie et al., "Exploring
randomly wired neural networks", ICCV 2019).
"""

from __future__ import annotations

import numpy as np

from .graph import Graph, GraphBuilder

__all__ = ["chain", "residual", "dense_blocks", "inception", "unet", "random_layered", "randwire",
           "GENERATORS"]


class _Net:
    def __init__(self, name, seed, weights, base):
        self.b = GraphBuilder(name)
        self.rng = np.random.default_rng(seed)
        self.weights = weights
        self.base = int(base)
        self.k = 0
        self.last = None

    def size(self, scale=1.0):
        return max(1, int(self.base * scale * self.rng.uniform(0.5, 1.5)))

    def op(self, inputs, out_size):
        ins = list(inputs)
        if self.weights:
            ins.append(self.b.weight(f"w{self.k}", max(1, out_size // 4)))
        (y,) = self.b.op(f"op{self.k}", ins, outputs=[(f"t{self.k}", int(out_size))])
        self.k += 1
        self.last = y
        return y

    def build(self):
        self.b.mark_output(self.last)
        return self.b.build()


def chain(n_ops=20, seed=0, weights=True, base=1000) -> Graph:
    """A plain chain of ``n_ops`` operators."""
    g = _Net("chain", seed, weights, base)
    x = g.b.input("x", g.size())
    for _ in range(n_ops):
        x = g.op([x], g.size())
    return g.build()


def residual(n_blocks=6, seed=0, weights=True, base=1000) -> Graph:
    """ResNet-like blocks: two convs and an add of the skip."""
    g = _Net("residual", seed, weights, base)
    s = g.size()
    x = g.b.input("x", s)
    for _ in range(n_blocks):
        h = g.op([x], g.size(1.5))
        h = g.op([h], s)
        x = g.op([h, x], s)
    return g.build()


def dense_blocks(n_blocks=2, layers=5, seed=0, weights=True, base=1000) -> Graph:
    """DenseNet-like: each layer reads the concatenation of all earlier ones."""
    g = _Net("dense", seed, weights, base)
    x = g.b.input("x", g.size())
    for _ in range(n_blocks):
        feats = [x]
        for _ in range(layers):
            feats.append(g.op(feats, g.size(0.5)))
        x = g.op(feats, g.size())
    return g.build()


def inception(n_modules=4, branches=4, seed=0, weights=True, base=1000) -> Graph:
    """Inception-like modules: parallel branches of 1-3 ops joined by a concat."""
    g = _Net("inception", seed, weights, base)
    x = g.b.input("x", g.size())
    for _ in range(n_modules):
        outs = []
        for _ in range(branches):
            h = x
            for _ in range(int(g.rng.integers(1, 4))):
                h = g.op([h], g.size(0.6))
            outs.append(h)
        x = g.op(outs, g.size(2.0))
    return g.build()


def unet(depth=4, seed=0, weights=True, base=4000) -> Graph:
    """U-Net: an encoder that halves sizes, a decoder that reads the skips back."""
    g = _Net("unet", seed, weights, base)
    x = g.b.input("x", base)
    skips = []
    s = base
    for _ in range(depth):
        x = g.op([x], s)
        skips.append(x)
        s = max(1, s // 2)
        x = g.op([x], s)
    for skip in reversed(skips):
        s *= 2
        x = g.op([x], s)
        x = g.op([x, skip], s)
    return g.build()


def random_layered(n_ops=40, width=4, seed=0, weights=True, base=1000, max_inputs=3) -> Graph:
    """A random layered DAG: each operator reads 1..max_inputs tensors of earlier layers."""
    g = _Net("layered", seed, weights, base)
    pool = [g.b.input("x", g.size())]
    for _ in range(n_ops):
        lo = max(0, len(pool) - 3 * width)
        k = int(g.rng.integers(1, max_inputs + 1))
        idx = sorted(set(int(i) for i in g.rng.integers(lo, len(pool), size=k)))
        pool.append(g.op([pool[i] for i in idx], g.size()))
    return g.build()


def randwire(n_ops=100, k=4, p=0.75, seed=0, weights=True, base=1000) -> Graph:
    """RandWire: a Watts-Strogatz ring lattice (``k`` neighbours, rewiring ``p``) made acyclic.

    Nodes without predecessors read the graph input; nodes without successors feed a
    final aggregation operator.
    """
    rng = np.random.default_rng(seed)
    n = n_ops
    edges = set()
    degree = [0] * n
    half = max(1, k // 2)
    for i in range(n):
        for j in range(1, half + 1):
            u, v = i, (i + j) % n
            # a node already joined to every other one keeps its lattice edge (as networkx's
            # watts_strogatz_graph does): drawing a new partner would never end
            if rng.random() < p and degree[u] < n - 1:
                v = int(rng.integers(n))
                while v == u or (min(u, v), max(u, v)) in edges:
                    v = int(rng.integers(n))
            e = (min(u, v), max(u, v))
            if e not in edges and u != v:
                edges.add(e)
                degree[u] += 1
                degree[v] += 1
    preds = [[] for _ in range(n)]
    succ_count = [0] * n
    for u, v in edges:
        preds[v].append(u)
        succ_count[u] += 1
    g = _Net("randwire", seed, weights, base)
    x = g.b.input("x", g.size())
    node_out = []
    for v in range(n):
        ins = [node_out[u] for u in sorted(preds[v])] or [x]
        node_out.append(g.op(ins, g.size()))
    sinks = [node_out[v] for v in range(n) if succ_count[v] == 0]
    g.op(sinks, g.size())
    return g.build()


#: name -> generator, for benchmarks
GENERATORS = {"chain": chain, "residual": residual, "dense": dense_blocks, "inception": inception,
              "unet": unet, "layered": random_layered, "randwire": randwire}
