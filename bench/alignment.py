"""Alignment benchmark: the exact mode when every address must be a multiple of ``alignment``.

Accelerators place buffers at aligned addresses (16 to 64 bytes is common), and the sizes of
real tensors are not all multiples of that (a bias of 1000 bytes, say). The address-free
relaxations of ``method="ilp"`` count sizes as they are, so at aligned addresses their optimum
often does not pack, and the bound stays where the unaligned problem has it (0 at ``M_P``).

Two parts, on generated graphs of 8 to 100 operators (``--alignments``, default 4 and 16):

- ``free``: ``cf.solve(g, C, method="ilp", alignment=a)`` at ``M_H`` and ``M_P`` on
  randwire/layered graphs of 8-30 operators (two seeds);
- ``fixed``: the same with ``schedule=`` the heuristic's order at that alignment, at
  ``M_R``, ``M_H`` and ``M_P`` on randwire/layered graphs of 20-100 operators.

The capacity is the tier's, or the operators' aligned footprint when that is larger (below it
no plan exists). Prints one row per solve (status, non-compulsory bytes / bound, gap, wall
seconds) and per part the proven count, the median and mean gap and the median time.

Usage::

    python bench/alignment.py [--time-limit 10] [--alignments 4,16] [--parts free,fixed]
"""

from __future__ import annotations

import argparse
import statistics
import time

import cosma_fast as cf
from cosma_fast import generators as gen
from cosma_fast.budgets import aligned_footprint
from cosma_fast.kernels import warmup


def _free_graphs():
    out = []
    for seed in range(2):
        out += [(f"randwire{n}s{seed}", gen.randwire(n, seed=seed)) for n in (8, 14, 22)]
        out += [(f"layered{n}s{seed}", gen.random_layered(n, seed=seed)) for n in (10, 18, 30)]
    return out


def _fixed_graphs():
    return ([(f"randwire{n}", gen.randwire(n)) for n in (20, 40, 60, 100)]
            + [(f"layered{n}", gen.random_layered(n)) for n in (20, 40, 60, 100)])


def run(part: str, alignment: int, time_limit: float) -> dict:
    """One part at one alignment: prints its rows and returns its summary."""
    graphs, tiers = (_free_graphs(), ("M_H", "M_P")) if part == "free" else (_fixed_graphs(), ("M_R", "M_H", "M_P"))
    print(f"\n# {part} schedule, alignment {alignment}, time_limit={time_limit}s")
    print(f"{'graph':14s} tier {'capacity':>8s} {'status':8s} {'non_comp':>8s} {'bound':>8s} {'gap':>6s} "
          f"{'time_s':>6s}")
    proven, gaps, times = 0, [], []
    for name, g in graphs:
        b = cf.budgets(g, time_limit=3.0)
        foot = int(aligned_footprint(g, alignment).max())
        for tier in tiers:
            cap = max({"M_R": b.m_r, "M_H": b.m_h, "M_P": b.m_p}[tier], foot)
            schedule = None
            if part == "fixed":
                schedule = cf.solve(g, cap, method="heuristic", alignment=alignment).plan.schedule
            t0 = time.perf_counter()
            r = cf.solve(g, cap, method="ilp", alignment=alignment, schedule=schedule, time_limit=time_limit)
            dt = time.perf_counter() - t0
            gap = (r.non_compulsory - r.lower_bound) / max(1, r.non_compulsory)
            proven += r.status == "optimal"
            gaps.append(gap)
            times.append(dt)
            print(f"{name:14s} {tier:4s} {cap:8d} {r.status:8s} {r.non_compulsory:8d} {r.lower_bound:8d} "
                  f"{gap:6.3f} {dt:6.2f}", flush=True)
    summary = dict(part=part, alignment=alignment, proven=proven, rows=len(gaps),
                   median_gap=statistics.median(gaps), mean_gap=statistics.fmean(gaps),
                   median_time=statistics.median(times))
    print(f"# proven {proven}/{len(gaps)}; gap median {summary['median_gap']:.3f}, mean {summary['mean_gap']:.3f}; "
          f"median time {summary['median_time']:.2f}s")
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--alignments", default="4,16")
    ap.add_argument("--parts", default="free,fixed")
    args = ap.parse_args(argv)
    warmup()
    summaries = [run(part, int(a), args.time_limit) for part in args.parts.split(",")
                 for a in args.alignments.split(",")]
    print("\n# summary")
    for s in summaries:
        print(f"{s['part']:5s} alignment {s['alignment']:3d}: proven {s['proven']}/{s['rows']}, "
              f"gap median {s['median_gap']:.3f} mean {s['mean_gap']:.3f}, median time {s['median_time']:.2f}s")


if __name__ == "__main__":
    main()
