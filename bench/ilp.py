"""Benchmark of the exact ILP (cosma_fast.ilp) on generated graphs.

Usage: python bench/ilp.py [time_limit_seconds] [--threads N] [--quick] [--part2 [--no-skip]]
       python bench/ilp.py [time_limit_seconds] --large [--sizes 50,100,200] [--families chain,randwire]
                           [--tiers M_R,M_H,M_P] [--budget-limit 5]

Part 1: the decomposed formulation at M_R, M_H, M_P: solve time, status,
non-compulsory bytes, proven bound, gap, whether the warm start was accepted.
Part 2: decomposed vs formulation="cosma" on graphs where the decomposed model proves the
optimum: both times and statuses, same optimum, ratio per row and the median ratio.
Part 2 alone: ``--part2``; with ``--no-skip`` both formulations run without the shortcut
that returns the start when it already meets a proven bound, so every row times the
formulations themselves, not the checks they share.
``--large`` (instead of parts 1-2): issue 4's scale target, every generator family at about
50, 100 and 200 operators, M_R/M_H/M_P, time_limit 60 s by default; a summary line gives
the proven count and the median time. ``--tiers``: the tiers solved (all three by default);
``--budget-limit``: the ``time_limit`` of ``cf.budgets`` (5 s by default; its own default is 10 s,
which gives some wide graphs a lower ``M_P``).
Prints a table; numbers are wall seconds on whatever machine runs it.
"""

from __future__ import annotations

import statistics
import sys
import time

import cosma_fast as cf
from cosma_fast import generators as G
from cosma_fast.kernels import warmup


def graphs(quick: bool):
    gs = [("chain20", G.chain(20)), ("residual4", G.residual(4)), ("dense1x5", G.dense_blocks(1, 5)),
          ("inception2", G.inception(2)), ("layered20", G.random_layered(20)), ("unet3", G.unet(3)),
          ("randwire20", G.randwire(20)), ("layered12", G.random_layered(12)), ("layered14", G.random_layered(14)),
          ("randwire16", G.randwire(16))]
    return gs[:3] if quick else gs


def comparison_graphs(quick: bool):
    """Graphs of 8-19 ops from three families on which the decomposed model proves the optimum
    and HiGHS has to search (the start does not meet the peak bound at M_R or M_H)."""
    gs = [("residual3", G.residual(3)), ("residual5", G.residual(5)), ("residual6", G.residual(6)),
          ("layered8", G.random_layered(8)), ("layered10", G.random_layered(10)),
          ("layered10s1", G.random_layered(10, seed=1)), ("layered12", G.random_layered(12)),
          ("layered14", G.random_layered(14)), ("layered16", G.random_layered(16)), ("randwire8", G.randwire(8)),
          ("randwire10", G.randwire(10)), ("randwire12", G.randwire(12)), ("randwire12s1", G.randwire(12, seed=1)),
          ("randwire14", G.randwire(14)), ("randwire16", G.randwire(16)), ("randwire18", G.randwire(18))]
    return gs[:4] if quick else gs


def compare_formulations(tl: float, threads, quick: bool, skip: bool = True):
    """Part 2: the same cf.solve call with formulation="decomposed" and "cosma" (same start,
    same time limit, same threads); a cosma run stopped by the limit is shown as "> limit".
    ``skip=False`` (``--no-skip``): both without the shared shortcut that returns the start
    when it meets a proven bound before any model (``skip_when_bound_met=False``), so every
    row compares the two formulations themselves."""
    opt = {} if skip else {"skip_when_bound_met": False}
    print(f"\n# decomposed vs formulation='cosma' (time_limit={tl}s, threads={threads}"
          f"{'' if skip else ', skip_when_bound_met=False'})")
    print(f"{'graph':12s} {'ops':>4s} tier {'dec_nc':>7s} {'dec_s':>7s} {'dec_st':9s} "
          f"{'cos_nc':>7s} {'cos_s':>8s} {'cos_st':9s} {'same':5s} {'ratio':>7s}")
    warm = G.residual(2)  # compile kernels and start HiGHS before anything is timed
    for form in ("decomposed", "cosma"):
        cf.solve(warm, cf.budgets(warm)["M_R"], method="ilp", formulation=form, time_limit=tl, threads=threads)
    ratios, capped = [], 0
    for name, g in comparison_graphs(quick):
        b = cf.budgets(g, time_limit=5.0)
        for tier in ("M_R", "M_H"):
            t0 = time.perf_counter()
            d = cf.solve(g, b[tier], method="ilp", time_limit=tl, threads=threads, **opt)
            td = time.perf_counter() - t0
            t0 = time.perf_counter()
            c = cf.solve(g, b[tier], method="ilp", formulation="cosma", time_limit=tl, threads=threads, **opt)
            tc = time.perf_counter() - t0
            both = d.status == c.status == "optimal"
            same = str(d.non_compulsory == c.non_compulsory) if both else "n/a"
            limited = c.status != "optimal"
            ratio = tc / max(td, 1e-3)
            cos_s = f"> {tl:.0f}" if limited else f"{tc:.2f}"
            ratio_s = "n/a" if d.status != "optimal" else f"> {ratio:.1f}" if limited else f"{ratio:.1f}"
            if d.status == "optimal":  # a ratio only where the decomposed side finished
                ratios.append(ratio)
                capped += limited
            print(f"{name:12s} {g.n_ops:4d} {tier:4s} {d.non_compulsory:7d} {td:7.2f} {d.status:9s} "
                  f"{c.non_compulsory:7d} {cos_s:>8s} {c.status:9s} {same:5s} {ratio_s:>7s}", flush=True)
    note = f" (a lower bound: {capped} cosma runs hit the limit)" if capped else ""
    print(f"# median ratio cosma/decomposed {statistics.median(ratios):.1f}{note}; "
          f"rows >= 10x: {sum(r >= 10 for r in ratios)}/{len(ratios)}")


def large_graphs(sizes, families):
    """About ``n`` operators from each generator family (never more than ``n``)."""
    make = {"chain": lambda n: G.chain(n), "residual": lambda n: G.residual(n // 3),
            "dense": lambda n: G.dense_blocks(max(1, n // 6), 5), "inception": lambda n: G.inception(max(1, n // 10)),
            "unet": lambda n: G.unet(max(1, n // 4)), "layered": lambda n: G.random_layered(n),
            "randwire": lambda n: G.randwire(n - 1)}
    for fam in families:
        for n in sizes:
            yield f"{fam}{n}", make[fam](n)


def row(name, g, tier, cap, r, t):
    print(f"{name:12s} {g.n_ops:4d} {tier:4s} {cap:9d} {r.status:9s} {r.non_compulsory:9d} {r.lower_bound:9d} "
          f"{r.gap:6.3f} {t:7.2f} {str(r.info.get('start_accepted')):6s} {r.info.get('rounds', '-')}", flush=True)


def _arg(argv, flag, default):
    return argv[argv.index(flag) + 1] if flag in argv else default


def solve_table(title, named_graphs, tl, threads, tiers=("M_R", "M_H", "M_P"), budget_limit=5.0):
    """One row per graph and tier (``tiers`` of ``cf.budgets(g, time_limit=budget_limit)``) and a
    summary line: proven count, median, max."""
    print(f"# {title}, time_limit={tl}s, threads={threads}, budgets' time_limit={budget_limit}s")
    print(f"{'graph':12s} {'ops':>4s} tier {'capacity':>9s} {'status':9s} {'non_comp':>9s} {'bound':>9s} "
          f"{'gap':>6s} {'time_s':>7s} start  rounds")
    times, opt = [], 0
    for name, g in named_graphs:
        b = cf.budgets(g, time_limit=budget_limit)
        for tier in tiers:
            t0 = time.perf_counter()
            r = cf.solve(g, b[tier], method="ilp", time_limit=tl, threads=threads)
            t = time.perf_counter() - t0
            times.append(t)
            opt += r.status == "optimal"
            row(name, g, tier, b[tier], r, t)
    print(f"# proven optimal {opt}/{len(times)}; median time {statistics.median(times):.2f}s; "
          f"max {max(times):.2f}s")


def main(argv):
    tl = float(argv[0]) if argv and not argv[0].startswith("--") else None
    threads = int(_arg(argv, "--threads", 0)) or None
    if "--large" in argv:
        sizes = [int(x) for x in _arg(argv, "--sizes", "50,100,200").split(",")]
        families = _arg(argv, "--families", "chain,residual,dense,inception,unet,layered,randwire").split(",")
        tiers = _arg(argv, "--tiers", "M_R,M_H,M_P").split(",")
        budget_limit = float(_arg(argv, "--budget-limit", 5.0))
        warmup()  # numba compilation is not solve time
        solve_table("large generated graphs, decomposed ILP", large_graphs(sizes, families), tl or 60.0, threads,
                    tiers, budget_limit)
        return
    tl = tl or 20.0
    quick = "--quick" in argv
    warmup()  # numba compilation is not solve time (a fresh clone compiles every kernel on first use)
    if "--part2" in argv:
        compare_formulations(tl, threads, quick, skip="--no-skip" not in argv)
        return
    solve_table("decomposed ILP", graphs(quick), tl, threads)
    compare_formulations(tl, threads, quick)


if __name__ == "__main__":
    main(sys.argv[1:])
