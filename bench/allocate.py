"""Benchmark of cosma_fast.allocate (static allocation search).

1. Zero-slack instances (a capacity x horizon rectangle cut into 150-450 rectangles,
   guillotine and non-guillotine cuts) solved at capacity == max live.
2. A DNN-like lifetime set of 20,000+ buffers: greedy height vs max live.

Run: python bench/allocate.py [--quick] [--shuffle SEED]

The generator lists buffers in the order it cut them, so ties broken by buffer id can leak
the known packing; ``--shuffle SEED`` renumbers the buffers of every instance with a seeded
permutation to measure the search without that help.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import cosma_fast as cf
from cosma_fast.allocate import max_live, zero_slack_instance
from cosma_fast.kernels.allocate import warmup


def dnn_like_lifetimes(n, seed=0):
    """Buffers of a long chain-like network: short lifetimes, a few skip connections, typical sizes."""
    rng = np.random.default_rng(seed)
    lower = np.arange(n, dtype=np.int64)
    length = 1 + rng.geometric(0.6, n)
    skips = rng.random(n) < 0.05  # residual / concat inputs living longer
    length[skips] += rng.integers(2, 40, skips.sum())
    upper = lower + length
    base = rng.choice([64, 128, 256, 512, 1024], n) * rng.choice([49, 196, 784, 3136], n)
    size = base.astype(np.int64)
    return lower, upper, size


def check(lower, upper, size, off, cap):
    order = np.argsort(lower)
    for a in range(len(order)):
        i = order[a]
        for b in range(a + 1, len(order)):
            j = order[b]
            if lower[j] >= upper[i]:
                break
            assert off[i] + size[i] <= off[j] or off[j] + size[j] <= off[i]
    assert (off + size).max() <= cap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--shuffle", type=int, default=None, metavar="SEED",
                    help="renumber each instance's buffers with a permutation drawn from SEED")
    args = ap.parse_args()
    t = time.perf_counter()
    warmup()
    print(f"warmup {time.perf_counter() - t:.2f} s")
    sizes = [150, 300, 450]
    seeds = range(2) if args.quick else range(3)
    times = []
    print("n   guillotine seed status   height  maxlive greedy  nodes     hits     time_s")
    for n in sizes:
        for guillotine in (True, False):
            for seed in seeds:
                # a 1024 x 1024 grid scaled to 2**20 bytes, like the public MiniMalloc CSV benchmarks
                cap = 1 << 20
                lo, up, sz, _ = zero_slack_instance(n, 1024, 1024, seed=seed, guillotine=guillotine)
                lo, up, sz = lo * 1024, up * 1024, sz * 1024
                if args.shuffle is not None:
                    perm = np.random.default_rng([args.shuffle, n, seed]).permutation(len(sz))
                    lo, up, sz = lo[perm], up[perm], sz[perm]
                a = cf.allocate(lo, up, sz, cap, time_limit=args.time_limit)
                if a.fits:
                    check(lo, up, sz, a.offsets, cap)
                times.append(a.solve_time)
                print(f"{len(sz):<4}{guillotine!s:<11}{seed:<5}{a.status:<9}{a.height:<8}{a.lower_bound:<8}"
                      f"{a.info['greedy_height']:<8}{a.info.get('nodes', 0):<10}"
                      f"{a.info.get('memo_hits', 0):<9}{a.solve_time:.3f}")
    print(f"zero-slack: median {statistics.median(times):.3f} s, max {max(times):.3f} s over {len(times)}")
    for n in (20000, 50000):
        lo, up, sz = dnn_like_lifetimes(n)
        lb = max_live(lo, up, sz)
        t = time.perf_counter()
        a = cf.allocate(lo, up, sz, 2 * lb)
        dt = time.perf_counter() - t
        check(lo, up, sz, a.offsets, a.height)
        print(f"DNN-like n={n}: greedy height {a.height} vs max live {lb} "
              f"(+{100 * (a.height / lb - 1):.3f}%), {dt:.3f} s, {a.info['method']}")


if __name__ == "__main__":
    main()
