"""Divide-and-conquer benchmark (issue 6).

1. RandWire with ``--ops`` operators at M_H: wall time of ``method="dnc"`` with 1 vs 2
   local worker processes (the same fixed per-segment time limit, so both do the same
   work), and the cost against the heuristic.
2. NAS graphs (NASNet-A, AmoebaNet-D, PNASNet-5, DARTS from ``cf.zoo`` or the bundled
   ``zoo_data``) at M_R / M_H / M_P: dnc vs the two baselines and the heuristic, with
   the reported lower bound.

Usage::

    python bench/dnc.py --ops 2000 --workers 1 2 --segment-time 1 --nas --tiers M_R M_H M_P --time-limit 120

Prints one JSON line per run and a table at the end. The machine matters: report its
cores and load with the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cosma_fast as cf

NAS = ("nasnet_a", "amoebanet_d", "pnasnet_5", "darts")


def load_nas(name: str) -> cf.Graph:
    try:
        return cf.zoo.load(name)
    except Exception:  # zoo module absent or different API: read the bundled file
        path = Path(cf.__file__).parent / "zoo_data" / f"{name}.json.gz"
        return cf.Graph.from_json(path)


def run(graph, cap, method, **kw) -> dict:
    t = time.perf_counter()
    r = cf.solve(graph, cap, method=method, **kw)
    return {"graph": graph.name, "n_ops": graph.n_ops, "capacity": int(cap), "method": method,
            "non_compulsory": r.non_compulsory, "lower_bound": r.lower_bound, "traffic": r.traffic,
            "wall": round(time.perf_counter() - t, 2),
            "info": {k: v for k, v in r.info.items() if k in ("segments", "chosen", "stitched_traffic",
                                                             "start_traffic", "segments_time",
                                                             "windows_accepted", "segment_solvers")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--segment-ops", type=int, default=40)
    ap.add_argument("--segment-time", type=float, default=1.0)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--nas", action="store_true")
    ap.add_argument("--tiers", nargs="*", default=["M_R", "M_H", "M_P"])
    ap.add_argument("--no-weights", action="store_true", help="COSMA's activation-only setting")
    ap.add_argument("--out", default=None, help="write all rows as JSON here")
    a = ap.parse_args()
    rows = []
    print(f"# cores={os.cpu_count()} load={os.getloadavg()}", flush=True)
    if a.ops and a.workers:
        g = cf.generators.randwire(a.ops, seed=0) if hasattr(cf, "generators") else None
        if g is None:
            from cosma_fast import generators
            g = generators.randwire(a.ops, seed=0)
        cap = cf.budgets(g).m_h
        for w in a.workers:
            row = run(g, cap, "dnc", segment_ops=a.segment_ops, workers=w, segment_time_limit=a.segment_time,
                      time_limit=a.time_limit * 3)
            row["workers"] = w
            rows.append(row)
            print(json.dumps(row), flush=True)
        rows.append(run(g, cap, "heuristic", time_limit=a.time_limit))
        print(json.dumps(rows[-1]), flush=True)
    if a.nas:
        for name in NAS:
            g = load_nas(name).with_weights(not a.no_weights)
            b = cf.budgets(g)
            for tier in a.tiers:
                cap = b[tier]
                for method, kw in (("baseline", {}), ("baseline-mpmf", {}),
                                   ("heuristic", {"time_limit": a.time_limit / 2}),
                                   ("dnc", {"time_limit": a.time_limit, "segment_ops": a.segment_ops})):
                    row = run(g, cap, method, **kw)
                    row["tier"] = tier
                    row["include_weights"] = not a.no_weights
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
