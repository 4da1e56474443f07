"""``method="auto"`` against the policy it replaced: D&C for half the limit, then the ILP.

Until the twentieth session, ``auto`` gave a graph of 61-1000 operators under a ``time_limit``
to divide and conquer for half of it and to the whole-graph ILP for the rest. It now gives it
to the ILP for the whole limit (the ILP starts from the heuristic's plan and runs its own
local searches). This bench runs, in the same process and at the same limit:

- ``auto``: ``cf.solve(g, C, method="auto", time_limit=T)``;
- ``dnc+ilp``: ``cf.solve(..., method="dnc", time_limit=T/2)``, then ``method="ilp"`` with the
  time left; the cheaper plan and the higher bound (the old ``auto``, rebuilt from its parts).

On generated graphs (layered and randwire, ``--sizes``, seed 3) at ``M_R``, ``M_H`` and
``M_P`` and each of ``--limits``; with ``--zoo``, on every zoo model with and without
weights at ``M_R`` and ``M_H`` at the largest limit. Prints one row per solve pair
(non-compulsory bytes, bound, wall seconds) and the median and worst ratio ``auto /
dnc+ilp`` of the non-compulsory bytes, with the count of rows where each side is cheaper.

Usage::

    python bench/auto.py [--sizes 100,150,300,600] [--limits 2,10] [--zoo]
"""

from __future__ import annotations

import argparse
import statistics
import time

import cosma_fast as cf
from cosma_fast import generators as gen
from cosma_fast import zoo
from cosma_fast.kernels import warmup


def _old_auto(g, cap, tl):
    """(non-compulsory, bound): D&C for half of ``tl``, then the ILP for the time left."""
    t0 = time.perf_counter()
    d = cf.solve(g, cap, method="dnc", time_limit=tl / 2)
    i = cf.solve(g, cap, method="ilp", time_limit=max(0.05, tl - (time.perf_counter() - t0)))
    return min(d.non_compulsory, i.non_compulsory), max(d.lower_bound, i.lower_bound)


def _row(name, g, cap, tl, out):
    t = time.perf_counter()
    r = cf.solve(g, cap, method="auto", time_limit=tl)
    wa = time.perf_counter() - t
    t = time.perf_counter()
    old, old_bound = _old_auto(g, cap, tl)
    wo = time.perf_counter() - t
    mark = "auto cheaper" if r.non_compulsory < old else ("dnc+ilp cheaper" if old < r.non_compulsory else "")
    print(f"{name:40s} {tl:5.1f}  auto {r.non_compulsory:10d} {r.lower_bound:10d} {wa:6.2f}s "
          f"{r.info.get('auto_choice', ''):9s} dnc+ilp {old:10d} {old_bound:10d} {wo:6.2f}s  {mark}", flush=True)
    out.append((tl, r.non_compulsory, old))


def _summary(rows):
    for tl in sorted({r[0] for r in rows}):
        sel = [(a, o) for t, a, o in rows if t == tl]
        ratios = [a / o if o else (1.0 if a == 0 else float("inf")) for a, o in sel]
        print(f"# limit {tl:g} s: {len(sel)} rows; auto / dnc+ilp median {statistics.median(ratios):.3f}, "
              f"worst {max(ratios):.3f}, best {min(ratios):.3f}; auto cheaper in "
              f"{sum(a < o for a, o in sel)}, dnc+ilp cheaper in {sum(o < a for a, o in sel)}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100,150,300,600")
    ap.add_argument("--limits", default="2,10")
    ap.add_argument("--zoo", action="store_true")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x]
    limits = [float(x) for x in args.limits.split(",") if x]
    warmup()
    rows: list = []
    for n in sizes:
        for fam, g in (("layered", gen.random_layered(n, seed=3)), ("randwire", gen.randwire(n - 1, seed=3))):
            b = cf.budgets(g, time_limit=5.0)
            for tier in ("M_R", "M_H", "M_P"):
                for tl in limits:
                    _row(f"{fam}{n} {tier}", g, b[tier], tl, rows)
    _summary(rows)
    if args.zoo:
        zrows: list = []
        for name in zoo.names():
            for w in (True, False):
                g = zoo.load(name).with_weights(w)
                b = cf.budgets(g, time_limit=5.0)
                for tier in ("M_R", "M_H"):
                    _row(f"{name} {'with' if w else 'without'} weights ({g.n_ops}) {tier}", g, b[tier],
                         max(limits), zrows)
        print("# zoo")
        _summary(zrows)


if __name__ == "__main__":
    main()
