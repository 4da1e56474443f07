"""Pictures of a plan: the scratchpad over time and its occupancy.

:func:`plot_plan` draws the figure COSMA-style papers use to explain a plan
(Li, Gupta, Malik, arXiv 2311.18246, Fig. 2): operator steps on x, scratchpad
addresses on y, one rectangle per residency of a tensor, loads and stores
marked, the capacity as a line; below it, resident bytes per step against the
capacity. matplotlib (the ``plot`` extra) is imported only when drawing, with
the headless Agg backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import OptionError
from .graph import INPUT, WEIGHT, Graph
from .plan import Plan

__all__ = ["Residency", "residencies", "occupancy", "plot_plan"]


@dataclass(frozen=True)
class Residency:
    """Tensor ``tensor`` held at ``[addr, addr + size)`` from step ``start`` up to ``end``
    (exclusive; ``n_steps`` when it stays to the end). ``loaded`` says whether it came in
    by a load (else it was created by its operator); ``stores`` are the steps at which it
    was written back (``n_steps`` for the final stores)."""

    tensor: int
    addr: int
    size: int
    start: int
    end: int
    loaded: bool
    stores: tuple[int, ...]


def residencies(graph: Graph, plan: Plan) -> list[Residency]:
    """Every residency interval of ``plan``, in the order they begin.

    The replay trusts the plan (run :func:`cosma_fast.validate` first); a step's
    evictions happen before its operator runs, so a tensor evicted at step ``j``
    occupies steps ``start .. j - 1``.
    """
    n = len(plan.steps)
    size = graph.tensor_size
    open_: dict[int, list] = {}  # tensor -> [addr, start, loaded, stores]
    out: list[Residency] = []

    def close(t: int, end: int) -> None:
        a, s, loaded, stores = open_.pop(t)
        out.append(Residency(t, a, int(size[t]), s, end, loaded, tuple(stores)))

    for i, st in enumerate(plan.steps):
        for t in st.stores:
            if t in open_:
                open_[t][3].append(i)
        for t in st.evicts:
            if t in open_:
                close(t, i)
        for t, a in st.loads:
            open_[t] = [int(a), i, True, []]
        for t, a in st.allocs:
            open_[t] = [int(a), i, False, []]
    for t in plan.final_stores:
        if t in open_:
            open_[t][3].append(n)
    for t in list(open_):
        close(t, n)
    out.sort(key=lambda r: (r.start, r.addr))
    return out


def occupancy(graph: Graph, plan: Plan) -> np.ndarray:
    """Bytes resident while each step's operator runs (length ``len(plan.steps)``)."""
    occ = np.zeros(len(plan.steps) + 1, dtype=np.int64)
    for r in residencies(graph, plan):
        occ[r.start] += r.size
        occ[r.end] -= r.size
    return np.cumsum(occ)[:-1]


def _pyplot():
    """matplotlib.pyplot on the headless Agg backend; OptionError naming the extra when missing."""
    try:
        import matplotlib
    except ImportError:
        raise OptionError("drawing needs matplotlib: pip install 'cosma-fast[plot]'") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_plan(graph: Graph, plan: Plan, capacity: int, path: str | Path, *, title: str | None = None,
              dpi: int = 110) -> Path:
    """Draw ``plan`` to the PNG ``path`` and return the path.

    Top: address (y) over schedule steps (x); each tensor residency is a rectangle
    (blue input, grey weight, orange intermediate), a green triangle marks a load, a
    red bar marks a store (write-back), the dashed line is the capacity. Bottom:
    resident bytes per step against the capacity.
    """
    plt = _pyplot()
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Patch, Rectangle

    n = len(plan.steps)
    res = residencies(graph, plan)
    occ = occupancy(graph, plan)
    colours = {INPUT: "#4c72b0", WEIGHT: "#8c8c8c"}
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(max(8.0, min(24.0, 0.12 * n + 6)), 7.5), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    try:
        rects = [Rectangle((r.start, r.addr), r.end - r.start, r.size) for r in res]
        face = [colours.get(int(graph.tensor_kind[r.tensor]), "#dd8452") for r in res]
        ax.add_collection(PatchCollection(rects, facecolor=face, edgecolor="black", linewidth=0.3, alpha=0.85))
        lx = [r.start for r in res if r.loaded]
        ly = [r.addr + r.size / 2 for r in res if r.loaded]
        ax.scatter(lx, ly, marker=">", s=18, color="#2ca02c", zorder=3, label="load")
        sx = [s for r in res for s in r.stores]
        sy = [r.addr + r.size / 2 for r in res for _ in r.stores]
        ax.scatter(sx, sy, marker="|", s=60, color="#d62728", zorder=3, label="store")
        ax.axhline(capacity, color="black", linestyle="--", linewidth=1, label=f"capacity {capacity:,} B")
        ax.set_xlim(0, max(n, 1))
        ax.set_ylim(0, capacity * 1.05)
        ax.set_ylabel("scratchpad address (bytes)")
        kinds = [Patch(facecolor=c, edgecolor="black", label=lbl) for lbl, c in
                 (("input", colours[INPUT]), ("weight", colours[WEIGHT]), ("intermediate", "#dd8452"))]
        handles, _ = ax.get_legend_handles_labels()
        ax.legend(handles=kinds + handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=6, fontsize=8,
                  frameon=False)
        if title:
            fig.suptitle(title, fontsize=10)
        steps = np.arange(n + 1)  # repeat the last value so the last step has a width
        occ_ext = np.append(occ, occ[-1] if n else 0)
        ax2.step(steps, occ_ext, where="post", color="#dd8452", label="resident bytes")
        ax2.fill_between(steps, occ_ext, step="post", color="#dd8452", alpha=0.3)
        ax2.axhline(capacity, color="black", linestyle="--", linewidth=1, label="capacity")
        ax2.set_ylim(0, capacity * 1.1)
        ax2.set_xlabel("schedule step")
        ax2.set_ylabel("occupancy (bytes)")
        ax2.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    return path
