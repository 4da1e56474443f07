"""Time-limit benchmark: how long each method takes against the ``time_limit`` it is given.

``cf.solve(..., time_limit=T)`` promises the best valid plan found within ``T`` seconds. Every
method (``ilp``, ``ilp`` with a fixed schedule, ``dnc``, ``auto``, ``heuristic``) is run on
generated graphs of 150 to 10000 operators at ``M_R``, ``M_H`` and ``M_P``, after a whole-graph
ILP of one second on the same graph (a solve that leaves a process pool or HiGHS threads
behind would show in the next one). Prints one row per run (wall seconds, overrun, status,
non-compulsory bytes, bound) and the median and worst ratio ``wall / T`` per method, and
``cf.budgets``' wall time against its own limit.

Usage::

    python bench/time_limits.py [--limits 0.3,2,6] [--sizes 150,300] [--huge 3000,10000]

``--huge`` graphs run only at ``M_H`` with ``--huge-limit`` (default 10 s). Wall times on a
shared machine are noisy: report the machine's load with the numbers.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cosma_fast as cf
from cosma_fast import generators as gen
from cosma_fast.kernels import warmup


def _graphs(sizes, huge):
    out = []
    for n in sizes:
        out.append((f"layered{n}", gen.random_layered(n, seed=1), False))
        out.append((f"randwire{n}", gen.randwire(n - 1, seed=2), False))
    for n in huge:
        out.append((f"randwire{n}", gen.randwire(n - 1, seed=1), True))
    return out


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limits", default="0.3,2,6")
    ap.add_argument("--sizes", default="150,300")
    ap.add_argument("--huge", default="3000,10000")
    ap.add_argument("--huge-limit", type=float, default=10.0)
    ap.add_argument("--budget-limit", type=float, default=5.0)
    args = ap.parse_args(argv)
    limits = [float(x) for x in args.limits.split(",") if x]
    sizes = [int(x) for x in args.sizes.split(",") if x]
    huge = [int(x) for x in args.huge.split(",") if x]
    warmup()
    ratios: dict[str, list[float]] = {}
    print(f"{'graph':13s} {'tier':4s} {'method':10s} {'limit':>6s} {'wall':>7s} {'over':>6s} "
          f"{'status':9s} {'non_comp':>9s} {'bound':>8s}")
    for name, g, is_huge in _graphs(sizes, huge):
        b, tb = _timed(cf.budgets, g, time_limit=args.budget_limit)
        print(f"{name:13s} budgets {tb:.2f} s (limit {args.budget_limit:g} s)")
        ratios.setdefault("budgets", []).append(tb / args.budget_limit)
        tiers = [("M_H", b.m_h)] if is_huge else [("M_R", b.m_r), ("M_H", b.m_h), ("M_P", b.m_p)]
        heur = cf.solve(g, b.m_h, method="heuristic", time_limit=args.huge_limit if is_huge else 2.0)
        if not is_huge:
            cf.solve(g, b.m_h, method="ilp", time_limit=1.0)
        for tier, cap in tiers:
            for method in ("ilp", "ilp-fixed", "dnc", "auto", "heuristic"):
                kw = {"schedule": heur.plan.schedule} if method == "ilp-fixed" else {}
                for limit in ([args.huge_limit] if is_huge else limits):
                    r, wall = _timed(cf.solve, g, cap, method=method.split("-")[0], time_limit=limit, **kw)
                    ratios.setdefault(method, []).append(wall / limit)
                    print(f"{name:13s} {tier:4s} {method:10s} {limit:6g} {wall:7.2f} {wall - limit:+6.2f} "
                          f"{r.status:9s} {r.non_compulsory:9d} {r.lower_bound:8d}", flush=True)
    print("\n# wall / time_limit per method")
    for method, rs in ratios.items():
        print(f"# {method:10s} runs {len(rs):3d}  median {statistics.median(rs):.2f}  worst {max(rs):.2f}")


if __name__ == "__main__":
    main()
