"""Benchmark: heuristic planner vs COSMA's baselines on generated graphs and the zoo.

For each graph x budget (M_R, M_H, M_P from ``cf.budgets``) x method (heuristic,
baseline, baseline-mpmf): non-compulsory bytes, reduction vs the best baseline,
and warm wall time. Three sets of graphs: the generated graphs below, and the
models of ``cf.zoo`` with weights and activation-only (COSMA evaluates both).
The M_R average reduction is reported per set and over all rows, each over the
rows where the best baseline moves non-compulsory bytes. Also: one schedule +
replacement + allocation pass in ms per 100 operators, the 1000-operator
RandWire with local search, and the cold first call (fresh process, empty
numba cache).

    python bench/heuristic.py [--out bench/results/heuristic] [--quick] [--no-zoo]

Writes ``<out>.md`` and ``<out>.csv``.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import cosma_fast as cf
from cosma_fast import generators as gen
from cosma_fast import zoo
from cosma_fast.heuristic import rule_schedule, run_pass
from cosma_fast.kernels import warmup
from cosma_fast.kernels.schedule import MIN_PEAK

METHODS = ("heuristic", "baseline", "baseline-mpmf")


def graphs(quick: bool):
    yield gen.chain(40, seed=1)
    yield gen.residual(16, seed=1)
    yield gen.dense_blocks(3, 6, seed=1)
    yield gen.inception(8, seed=1)
    yield gen.unet(5, seed=1)
    yield gen.random_layered(100, seed=1)
    yield gen.randwire(100, seed=1)
    if not quick:
        yield gen.randwire(300, seed=2)
        yield gen.random_layered(300, width=6, seed=2)


def graph_sets(quick: bool, with_zoo: bool):
    """``(set name, graph)`` pairs: the generated graphs, then the zoo with and without weights."""
    for g in graphs(quick):
        yield "generated", g
    if with_zoo:
        for name in zoo.names():
            base = zoo.load(name)
            yield "zoo-weights", base.with_weights(True)
            yield "zoo-activations", base.with_weights(False)


SETS = ("generated", "zoo-weights", "zoo-activations")


def timed(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def pass_ms_per_100(g, cap):
    order = rule_schedule(g, MIN_PEAK)
    _, t = timed(lambda: (rule_schedule(g, MIN_PEAK), run_pass(g, cap, order, emit=True)), repeat=5)
    return 1000 * t * 100 / g.n_ops


COLD = """
import time, cosma_fast as cf
from cosma_fast import generators as gen
from cosma_fast import zoo
g = gen.randwire(100, seed=1)
t = time.perf_counter(); cf.solve(g, 'M_R', method='heuristic'); print(time.perf_counter() - t)
"""


def cold_call() -> float:
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, NUMBA_CACHE_DIR=d)
        out = subprocess.run([sys.executable, "-c", COLD], env=env, capture_output=True, text=True,
                             check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/results/heuristic")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-cold", action="store_true")
    ap.add_argument("--no-zoo", action="store_true")
    args = ap.parse_args()
    warmup()
    rows = []
    for set_name, g in graph_sets(args.quick, not args.no_zoo):
        b = cf.budgets(g, time_limit=2.0)
        for tier in ("M_R", "M_H", "M_P"):
            cap = b[tier]
            res = {}
            for m in METHODS:
                r, t = timed(lambda m=m, g=g, cap=cap: cf.solve(g, cap, method=m), repeat=2)
                res[m] = (r.non_compulsory, t, r.lower_bound)
            best_base = min(res["baseline"][0], res["baseline-mpmf"][0])
            h = res["heuristic"][0]
            red = 0.0 if best_base == 0 else 100.0 * (best_base - h) / best_base
            rows.append({"set": set_name, "graph": g.name, "ops": g.n_ops, "tier": tier, "capacity": cap,
                         "m_p_exact": b.m_p_exact,
                         "heuristic": h, "baseline": res["baseline"][0],
                         "baseline_mpmf": res["baseline-mpmf"][0],
                         "lower_bound": res["heuristic"][2],
                         "reduction_pct": round(red, 1),
                         "t_heuristic_ms": round(1000 * res["heuristic"][1], 2),
                         "t_baseline_ms": round(1000 * res["baseline"][1], 2),
                         "pass_ms_per_100_ops": round(pass_ms_per_100(g, cap), 3)})
            print(rows[-1], flush=True)
    big = gen.randwire(1000, seed=7)
    cap = cf.budgets(big, time_limit=2.0).m_r
    rw, t_rw = timed(lambda: cf.solve(big, cap, method="heuristic"), repeat=2)
    base = min(cf.solve(big, cap, method=m).non_compulsory for m in METHODS[1:])
    cold = None if args.no_cold else cold_call()

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    def m_r_average(rows_of_set):
        mr = [r for r in rows_of_set if r["tier"] == "M_R" and min(r["baseline"], r["baseline_mpmf"]) > 0]
        return (float(np.mean([r["reduction_pct"] for r in mr])) if mr else 0.0), len(mr)

    worse = [r for r in rows if r["heuristic"] > min(r["baseline"], r["baseline_mpmf"])]
    lines = ["# Heuristic planner vs COSMA baselines (generated graphs and zoo models)", "",
             f"Machine: {os.cpu_count()} cores, shared and noisy; times are best of 2 warm calls. "
             "Zoo rows: `weights` = weights occupy the scratchpad and their loads count, "
             "`activations` = COSMA's activation-only setting.", "",
             "| set | graph | ops | tier | capacity | heuristic | baseline | baseline-mpmf | "
             "reduction vs best baseline | heuristic ms | baseline ms | one pass ms/100 ops |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tier = r["tier"] + ("" if r["tier"] == "M_R" or r["m_p_exact"] else " (M_P upper bd)")
        lines.append(f"| {r['set']} | {r['graph']} | {r['ops']} | {tier} | {r['capacity']} | {r['heuristic']} | "
                     f"{r['baseline']} | {r['baseline_mpmf']} | {r['reduction_pct']}% | "
                     f"{r['t_heuristic_ms']} | {r['t_baseline_ms']} | {r['pass_ms_per_100_ops']} |")
    lines.append("")
    for set_name in SETS + ("all",):
        of_set = rows if set_name == "all" else [r for r in rows if r["set"] == set_name]
        if of_set:
            avg, n = m_r_average(of_set)
            lines.append(f"- average reduction vs best baseline at M_R, {set_name} (rows where the best "
                         f"baseline moves non-compulsory bytes): {avg:.1f}% over {n} rows")
    lines += [f"- rows where the heuristic is worse than the best baseline: {len(worse)} of {len(rows)}",
              f"- RandWire 1000 ops at M_R ({big.n_ops} ops): heuristic with local search "
              f"{1000 * t_rw:.0f} ms warm, non-compulsory {rw.non_compulsory} vs best baseline {base} "
              f"({rw.info.get('evaluations')} passes)",
              f"- cold first call (fresh process, empty numba cache, RandWire 100): "
              f"{'n/a' if cold is None else f'{cold:.1f} s'}"]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-8:]))


if __name__ == "__main__":
    main()
