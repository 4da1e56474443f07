"""Divide-and-conquer benchmark (issue 6): windows with fixed entry/exit state.

1. NAS graphs (NASNet-A, AmoebaNet-D, PNASNet-5, DARTS from ``cf.zoo``) at M_R / M_H / M_P,
   with and without weights: non-compulsory bytes of baseline, baseline-mpmf, heuristic
   and dnc; dnc's reduction against the best baseline, its lower bound and gap, wall time.
2. RandWire with ``--ops`` operators at M_H: dnc with 1 and 2 local worker processes in
   the same run (node-limited windows: both do the same work), against the heuristic.
3. Generated graphs of 100-300 operators (randwire, random_layered) at M_R: dnc vs heuristic.

Usage::

    python bench/dnc.py --nas --randwire 2000 --generated --md bench/results/dnc.md

Prints one JSON line per run; ``--md`` writes the tables. Report the machine (cores,
load) with the numbers: wall times on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import cosma_fast as cf
from cosma_fast import generators

NAS = ("nasnet_a", "amoebanet_d", "pnasnet_5", "darts")


def run(graph, cap, method, **kw) -> dict:
    t = time.perf_counter()
    r = cf.solve(graph, cap, method=method, **kw)
    row = {"graph": graph.name, "n_ops": graph.n_ops, "capacity": int(cap), "method": method,
           "non_compulsory": r.non_compulsory, "lower_bound": r.lower_bound, "traffic": r.traffic,
           "wall": round(time.perf_counter() - t, 2)}
    if method == "dnc":
        row["info"] = {k: r.info.get(k) for k in ("start_traffic", "windows_tried", "windows_accepted", "rounds")}
        row["plan"] = r.plan
    print(json.dumps({k: v for k, v in row.items() if k != "plan"}), flush=True)
    return row


def nas_rows(time_limit: float, segment_ops: int) -> list[dict]:
    out = []
    for name in NAS:
        full = cf.zoo.load(name)
        for weights in (True, False):
            g = full if weights else full.activation_only()
            b = cf.budgets(g)
            for tier in ("M_R", "M_H", "M_P"):
                cap = b[tier]
                r = {m: run(g, cap, m, **kw) for m, kw in (
                    ("baseline", {}), ("baseline-mpmf", {}), ("heuristic", {"time_limit": time_limit / 4}),
                    ("dnc", {"time_limit": time_limit, "segment_ops": segment_ops}))}
                out.append({"graph": name, "weights": weights, "tier": tier, "capacity": int(cap), **{
                    m: r[m]["non_compulsory"] for m in r}, "lower_bound": r["dnc"]["lower_bound"],
                    "wall": r["dnc"]["wall"], "windows": f"{r['dnc']['info']['windows_accepted']}/"
                                                         f"{r['dnc']['info']['windows_tried']}"})
    return out


def reduction(row) -> float | None:
    """dnc's non-compulsory bytes below the best baseline, in % (None when that baseline moves 0)."""
    best = min(row["baseline"], row["baseline-mpmf"])
    return None if best == 0 else 100.0 * (best - row["dnc"]) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nas", action="store_true")
    ap.add_argument("--randwire", type=int, default=0, help="operators of the RandWire worker-scaling run")
    ap.add_argument("--generated", action="store_true")
    ap.add_argument("--segment-ops", type=int, default=None)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--window-time", type=float, default=2.0,
                    help="safety-net seconds per window in the RandWire run (the same for 1 and 2 workers, "
                         "so both do the same work unless a window hits it)")
    ap.add_argument("--md", default=None, help="write the markdown tables here")
    a = ap.parse_args()
    head = f"cores={os.cpu_count()} load={tuple(round(x, 2) for x in os.getloadavg())}"
    print("#", head, flush=True)
    md = [f"# D&C benchmark (bench/dnc.py)\n\nMachine: {head} at start (2 cores shared with other jobs).\n"]
    seg = a.segment_ops
    if a.nas:
        rows = nas_rows(a.time_limit, seg)
        md.append("## NAS graphs (time_limit %g s)\n" % a.time_limit)
        md.append("| graph | weights | tier | baseline | baseline-mpmf | heuristic | dnc | reduction vs best "
                  "baseline | lower bound | gap | dnc wall s | windows acc/tried |")
        md.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            gap = 0 if r["dnc"] == 0 else (r["dnc"] - r["lower_bound"]) / r["dnc"]
            red = reduction(r)
            md.append(f"| {r['graph']} | {r['weights']} | {r['tier']} | {r['baseline']} | {r['baseline-mpmf']} | "
                      f"{r['heuristic']} | {r['dnc']} | {'n/a' if red is None else f'{red:.1f}%'} | "
                      f"{r['lower_bound']} | {gap:.3f} | {r['wall']} | {r['windows']} |")
        for w in (True, False):
            sel = [reduction(r) for r in rows if r["weights"] == w and reduction(r) is not None]
            mean = f"{np.mean(sel):.1f}% over {len(sel)} rows" if sel else "n/a"
            md.append(f"\nweights={w}: mean reduction vs best baseline {mean} (rows where that baseline moves "
                      f"bytes; in the others every method moves 0); max dnc wall "
                      f"{max(r['wall'] for r in rows if r['weights'] == w)} s.")
    if a.randwire:
        g = generators.randwire(a.randwire, seed=0)
        cap = cf.budgets(g).m_h
        h = run(g, cap, "heuristic", time_limit=a.time_limit)
        runs = [run(g, cap, "dnc", time_limit=300, segment_ops=seg, workers=w, window_time_limit=a.window_time)
                for w in (1, 2)]
        same = all(np.array_equal(x, y) for x, y in zip(*(r["plan"].to_arrays().values() for r in runs)))
        md.append(f"\n## RandWire {g.n_ops} ops at M_H (capacity {cap}), time_limit 300 s, "
                  f"segment_ops {seg}, window_time_limit {a.window_time} s\n")
        md.append("| run | non-compulsory | wall s | windows acc/tried | rounds | windows stopped by time |")
        md.append("|---|---|---|---|---|---|")
        md.append(f"| heuristic | {h['non_compulsory']} | {h['wall']} | | | |")
        for w, r in zip((1, 2), runs):
            md.append(f"| dnc, {w} worker(s) | {r['non_compulsory']} | {r['wall']} | "
                      f"{r['info']['windows_accepted']}/{r['info']['windows_tried']} | {len(r['info']['rounds'])} | "
                      f"{sum(x['timed_out'] for x in r['info']['rounds'])} |")
        md.append(f"\nSpeed-up 1 -> 2 workers: {runs[0]['wall'] / runs[1]['wall']:.2f}x; identical plans: {same}.")
    if a.generated:
        md.append("\n## Generated graphs at M_R (time_limit %g s, 2 workers)\n" % a.time_limit)
        md.append("| graph | ops | heuristic | dnc | saved | lower bound | dnc wall s | windows acc/tried |")
        md.append("|---|---|---|---|---|---|---|---|")
        for name, g in (("randwire", generators.randwire(100, seed=1)), ("randwire", generators.randwire(200, seed=2)),
                        ("randwire", generators.randwire(300, seed=3)),
                        ("layered", generators.random_layered(100, seed=1)),
                        ("layered", generators.random_layered(200, seed=2)),
                        ("layered", generators.random_layered(300, seed=3))):
            cap = cf.budgets(g).m_r
            h = run(g, cap, "heuristic", time_limit=a.time_limit / 4)
            d = run(g, cap, "dnc", time_limit=a.time_limit, segment_ops=seg)
            saved = 0 if h["non_compulsory"] == 0 else 100 * (h["non_compulsory"] - d["non_compulsory"]) / h[
                "non_compulsory"]
            md.append(f"| {name} | {g.n_ops} | {h['non_compulsory']} | {d['non_compulsory']} | {saved:.1f}% | "
                      f"{d['lower_bound']} | {d['wall']} | {d['info']['windows_accepted']}/"
                      f"{d['info']['windows_tried']} |")
    if a.md:
        Path(a.md).write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
