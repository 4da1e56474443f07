"""Static allocation: give fixed-lifetime buffers addresses inside a capacity.

Every buffer ``i`` lives during the half-open interval ``[lower[i], upper[i])`` and
needs ``size[i]`` contiguous bytes; two buffers alive at the same time must not
overlap in address. :func:`allocate` first tries greedy placements (several
orders, first-fit and best-fit); if none fits ``capacity`` it runs two exact
searches on each independent part of the lifetime axis: MiniMalloc's canonical
branch-and-bound (:mod:`cosma_fast.kernels.canonical`; Moffitt, "MiniMalloc: A
Lightweight Memory Allocator for Hardware-Accelerated Machine Learning", ASPLOS
2023) for a fixed node budget, which settles instances with slack, then the skyline
search of :mod:`cosma_fast.kernels.allocate`, strong on zero-slack packings. Both
stop at the first packing within ``capacity``, a proof that none exists, or the
time limit.

CSV files follow the public allocation benchmarks: header ``id,lower,upper,size``
(half-open lifetimes); :func:`write_csv` adds an ``offset`` column.

>>> import cosma_fast as cf
>>> a = cf.allocate([0, 1, 2], [2, 3, 4], [2, 1, 2], capacity=3)
>>> a.status, a.height, a.lower_bound
('optimal', 3, 3)
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import FormatError, OptionError

__all__ = ["Allocation", "allocate", "max_live", "read_csv", "write_csv", "allocate_csv",
           "zero_slack_instance", "unpackable_instance"]


@dataclass
class Allocation:
    """Result of :func:`allocate`.

    ``offsets[i]`` is buffer ``i``'s address; ``height`` = max of ``offset + size``;
    ``status`` is ``"optimal"`` (height equals the max-live lower bound, or is proven
    minimal), ``"feasible"`` (fits ``capacity``), ``"infeasible"`` (proven: no packing
    within ``capacity``; offsets are the best greedy answer) or ``"timeout"`` (the search
    stopped without fitting; offsets are the best found). ``lower_bound`` is the maximum
    number of bytes alive at one instant.
    """

    offsets: np.ndarray
    height: int
    status: str
    lower_bound: int
    capacity: int
    solve_time: float
    info: dict = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        """True when ``height <= capacity``."""
        return self.height <= self.capacity


def max_live(lower, upper, size) -> int:
    """Maximum total size of buffers alive at one instant (a lower bound on any packing height)."""
    lower = np.asarray(lower, np.int64)
    upper = np.asarray(upper, np.int64)
    size = np.asarray(size, np.int64)
    if lower.size == 0:
        return 0
    t = np.concatenate([lower, upper])
    d = np.concatenate([size, -size])
    order = np.lexsort((d, t))  # at equal times, ends (negative) before starts
    return int(max(0, np.cumsum(d[order]).max()))


def _check_inputs(lower, upper, size, capacity, alignment, fixed):
    lower = np.asarray(lower)
    upper = np.asarray(upper)
    size = np.asarray(size)
    for name, a in (("lower", lower), ("upper", upper), ("size", size)):
        if a.ndim != 1:
            raise OptionError(f"allocate: {name} must be a 1-D sequence of integers")
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise OptionError(f"allocate: {name} must hold integers, got dtype {a.dtype}")
    n = lower.size
    if upper.size != n or size.size != n:
        raise OptionError(f"allocate: lower, upper and size must have the same length "
                          f"(got {n}, {upper.size}, {size.size})")
    lower = lower.astype(np.int64)
    upper = upper.astype(np.int64)
    size = size.astype(np.int64)
    bad = np.flatnonzero(size <= 0)
    if bad.size:
        raise OptionError(f"allocate: buffer {bad[0]} has size {size[bad[0]]}; sizes must be positive")
    bad = np.flatnonzero(lower >= upper)
    if bad.size:
        i = bad[0]
        raise OptionError(f"allocate: buffer {i} has lifetime [{lower[i]}, {upper[i]}); "
                          f"lower must be < upper (half-open lifetimes)")
    if int(capacity) != capacity or capacity < 0:
        raise OptionError(f"allocate: capacity must be a non-negative integer, got {capacity!r}")
    if int(alignment) != alignment or alignment < 1:
        raise OptionError(f"allocate: alignment must be a positive integer, got {alignment!r}")
    fixed_off = np.full(n, -1, np.int64)
    if fixed:
        for i, o in dict(fixed).items():
            if not (0 <= int(i) < n):
                raise OptionError(f"allocate: fixed names buffer {i}, but there are {n} buffers")
            if int(o) != o or o < 0 or o % alignment:
                raise OptionError(f"allocate: fixed offset {o!r} of buffer {i} must be a non-negative "
                                  f"multiple of alignment {alignment}")
            fixed_off[int(i)] = int(o)
        pinned = np.flatnonzero(fixed_off >= 0)
        for a_ in range(pinned.size):
            i = pinned[a_]
            for j in pinned[a_ + 1:]:
                if (lower[i] < upper[j] and lower[j] < upper[i]
                        and fixed_off[i] < fixed_off[j] + size[j] and fixed_off[j] < fixed_off[i] + size[i]):
                    raise OptionError(f"allocate: fixed buffers {i} and {j} are alive at the same time and "
                                      f"their address ranges overlap; move one of them")
    return lower, upper, size, int(capacity), int(alignment), fixed_off


def _sections(lower, upper):
    """Compress time to section indices: buffer i covers sections [lo[i], hi[i])."""
    pts = np.unique(np.concatenate([lower, upper]))
    lo = np.searchsorted(pts, lower)
    hi = np.searchsorted(pts, upper)
    return lo.astype(np.int64), hi.astype(np.int64), max(len(pts) - 1, 0)


def _greedy(size, lo, hi, ov_ptr, ov_idx, fixed_off, alignment):
    """Best of several greedy orders x {first-fit, best-fit}: returns (offsets, height, name)."""
    from .kernels.allocate import greedy_place

    length = (hi - lo).astype(np.int64)
    idx = np.arange(size.size)
    orders = {
        "size": np.lexsort((idx, lo, -size)),
        "area": np.lexsort((idx, -size, -size * length)),
        "length": np.lexsort((idx, -size, -length)),
        "start": np.lexsort((idx, -size, lo)),
    }
    best = None
    for name, order in orders.items():
        for best_fit in (False, True):
            off, h = greedy_place(order.astype(np.int64), size, ov_ptr, ov_idx, fixed_off, alignment, best_fit)
            if best is None or h < best[1]:
                best = (off, int(h), f"greedy-{name}-{'best' if best_fit else 'first'}-fit")
    return best


def _search_partition(members, size, lo, hi, fixed_off, capacity, alignment, deadline):
    """Search one independent part: MiniMalloc's canonical search within ``CANONICAL_NODES``
    nodes, then the skyline search after merging continuations (:func:`_continuation_chains`).

    Returns ``(status, offsets of members, nodes, memo hits)``.
    """
    from .kernels.allocate import NODE_LIMIT

    status, off, nodes = _canonical_partition(members, size, lo, hi, fixed_off, capacity, alignment, deadline)
    if status != NODE_LIMIT:  # packed, proven impossible, or out of time
        return status, off, nodes, 0
    chain, c_lo, c_hi, c_size, c_fixed = _continuation_chains(lo[members], hi[members], size[members],
                                                              fixed_off[members], capacity)
    c_lo, c_hi, _ = _sections(c_lo, c_hi)
    status, off2, nodes2, hits = _search_restarts(c_size, c_lo, c_hi, c_fixed, capacity, alignment, deadline)
    return status, None if off2 is None else off2[chain], nodes + nodes2, hits


#: nodes of MiniMalloc's canonical search per part before the skyline search takes over
CANONICAL_NODES = 20_000


def _canonical_partition(members, size, lo, hi, fixed_off, capacity, alignment, deadline):
    """MiniMalloc's canonical branch-and-bound on one part, within ``CANONICAL_NODES`` nodes.

    Restarts cycle through MiniMalloc's static preorders (T = max section total over the
    lifetime, W = width, A = area) with doubling node limits. It settles instances with
    slack that the skyline search wanders on; the node budget (not time) keeps the result
    deterministic. Returns ``(status, offsets of members or None, nodes)``; status
    ``NODE_LIMIT`` when the budget ran out.
    """
    from .kernels.allocate import FOUND, NODE_LIMIT, overlap_csr
    from .kernels.canonical import canonical_search

    free = members[fixed_off[members] < 0]
    pinned = members[fixed_off[members] >= 0]
    if free.size == 0:
        return FOUND, fixed_off[members].copy(), 0
    s0 = lo[members].min()
    n_sec = int(hi[members].max() - s0)
    flo, fhi, fsize = lo[free] - s0, hi[free] - s0, size[free]
    tot = np.zeros(n_sec + 1, np.int64)
    np.add.at(tot, flo, fsize)
    np.add.at(tot, fhi, -fsize)
    tot = np.cumsum(tot)[:n_sec]
    keys = {"T": np.array([tot[a:b].max() for a, b in zip(flo, fhi)], np.int64), "W": fhi - flo,
            "A": fsize * (fhi - flo)}
    # pinned obstacles of each free buffer, sorted by offset
    fx_lists = []
    for i in free:
        ov = pinned[(lo[pinned] < hi[i]) & (hi[pinned] > lo[i])]
        fx_lists.append(ov[np.argsort(fixed_off[ov], kind="stable")])
    fx_ptr = np.zeros(free.size + 1, np.int64)
    fx_ptr[1:] = np.cumsum([len(x) for x in fx_lists])
    fx_all = np.concatenate(fx_lists + [np.zeros(0, np.int64)]).astype(np.int64)
    fx_off = fixed_off[fx_all].astype(np.int64)
    fx_end = fx_off + size[fx_all]
    # one renumbered instance per preorder, built once and searched with doubling node limits
    instances = []
    for name in ("TWA", "WAT", "TAW"):
        order = np.lexsort(tuple([np.arange(free.size)] + [-keys[c] for c in reversed(name)]))
        p_lo, p_hi, p_size = flo[order], fhi[order], fsize[order]
        p_fx_ptr = np.zeros(free.size + 1, np.int64)
        p_fx_ptr[1:] = np.cumsum(np.diff(fx_ptr)[order])
        p_fx = np.concatenate([np.arange(fx_ptr[k], fx_ptr[k + 1]) for k in order]).astype(np.int64)
        # buffers of each section, ascending (CSR)
        ent_sec = np.concatenate([np.arange(a, b) for a, b in zip(p_lo, p_hi)])
        sec_ptr = np.zeros(n_sec + 1, np.int64)
        sec_ptr[1:] = np.cumsum(np.bincount(ent_sec, minlength=n_sec))
        sec_idx = np.repeat(np.arange(free.size), p_hi - p_lo)[np.argsort(ent_sec, kind="stable")].astype(np.int64)
        ov_ptr, ov_idx = overlap_csr(p_lo, p_hi)
        instances.append((order, (p_size, p_lo, p_hi, n_sec, sec_ptr, sec_idx, ov_ptr, ov_idx, p_fx_ptr,
                                  fx_off[p_fx], fx_end[p_fx], capacity, alignment)))
    node_limit, spent = max(4 * free.size, 64), 0
    while spent < CANONICAL_NODES:
        for order, instance in instances:
            limit = min(node_limit, CANONICAL_NODES - spent)
            status, off, nodes = canonical_search(*instance, limit, deadline if deadline is not None else 0.0)
            spent += int(nodes)
            if status == FOUND:
                res = fixed_off[members].copy()
                res[np.searchsorted(members, free[order])] = off
                return status, res, spent
            if status != NODE_LIMIT or spent >= CANONICAL_NODES:
                return status, None, spent
        node_limit *= 2
    return NODE_LIMIT, None, spent


def _tight_points(lo, hi, size, capacity):
    """Time points with full sections (no slack) on both sides: a list of ``(enders, starters)``, the
    buffers whose lifetime ends and starts there. At such a point the bytes of the buffers that end are
    exactly the bytes of the buffers that start (both are the bytes free of the buffers crossing it)."""
    s0 = lo.min()
    n_sec = int(hi.max() - s0)
    delta = np.zeros(n_sec + 1, np.int64)
    np.add.at(delta, lo - s0, size)
    np.subtract.at(delta, hi - s0, size)
    full = np.cumsum(delta)[:n_sec] == capacity
    enders = [[] for _ in range(n_sec + 1)]
    starters = [[] for _ in range(n_sec + 1)]
    for i in range(size.size):
        enders[hi[i] - s0].append(i)
        starters[lo[i] - s0].append(i)
    return [(enders[t], starters[t]) for t in range(1, n_sec) if full[t - 1] and full[t]]


def _continuation_chains(lo, hi, size, fixed_off, capacity):
    """Merge buffers that must continue one another into single buffers.

    Where exactly one buffer ``a`` ends and one buffer ``b`` starts at a tight point
    (:func:`_tight_points`), ``b`` has ``a``'s bytes: its size and offset. Chains of such free
    buffers become one buffer living over their union. Returns ``(chain, lo, hi, size, fixed_off)``:
    ``chain[i]`` is the merged buffer holding buffer ``i``, then the merged buffers.
    """
    n = size.size
    successor = np.full(n, -1, np.int64)
    for enders, starters in _tight_points(lo, hi, size, capacity):
        if len(enders) == 1 and len(starters) == 1 and fixed_off[enders[0]] < 0 and fixed_off[starters[0]] < 0:
            successor[enders[0]] = starters[0]
    is_next = np.zeros(n, bool)
    is_next[successor[successor >= 0]] = True
    chain = np.full(n, -1, np.int64)
    heads = np.flatnonzero(~is_next)
    tail_hi = np.empty(heads.size, np.int64)
    for c, i in enumerate(heads):
        while i >= 0:
            chain[i] = c
            tail_hi[c] = hi[i]
            i = successor[i]
    return chain, lo[heads], tail_hi, size[heads], fixed_off[heads]


def _search_restarts(size, lo, hi, fixed_off, capacity, alignment, deadline):
    """Run :class:`_ProbingSearch` on one independent part until it answers.

    Returns ``(status, offsets, nodes, memo hits)``.
    """
    from .kernels.allocate import NODE_LIMIT

    search = _ProbingSearch(size, lo, hi, fixed_off, capacity, alignment, deadline, PROBE_AFTER,
                            max(2 * size.size, 500))
    while True:
        status, off = search.step()
        if status != NODE_LIMIT:
            return status, off, search.nodes, search.hits


PROBE_AFTER = 50_000  # nodes of plain restarts before probing (most instances are solved well before)


class _ProbingSearch:
    """Restarts of the skyline search (:class:`_Restarts`) that start probing the bottom of a full
    section once they have spent ``probe_after`` nodes (restart budgets are multiples of ``base`` nodes).

    In a section with no slack some buffer alive there sits at offset 0; each probe pins one of
    them there and is itself a probing search, stepped round robin with the plain restarts
    (failed-literal probing: a probe proven infeasible is dropped, and when all are, the instance
    is infeasible).
    """

    def __init__(self, size, lo, hi, fixed_off, capacity, alignment, deadline, probe_after, base):
        self.args = (size, lo, hi, fixed_off, capacity, alignment, deadline)
        self.probe_after, self.base = probe_after, base
        self.plain = _Restarts(*self.args, base)
        self.probes = None  # None: not probing yet
        self.retired_nodes = self.retired_hits = 0
        self.refutable = False  # probing started with at least one probe

    @property
    def nodes(self):
        return self.plain.nodes + self.retired_nodes + sum(p.nodes for p in self.probes or [])

    @property
    def hits(self):
        return self.plain.hits + self.retired_hits + sum(p.hits for p in self.probes or [])

    def step(self):
        """One plain restart and one step of every probe; returns ``(status, offsets)`` (status
        NODE_LIMIT: not answered yet)."""
        from .kernels.allocate import FOUND, NODE_LIMIT, NOT_FOUND, TIMEOUT

        status, off = self.plain.step()
        if status != NODE_LIMIT:
            return status, off
        if self.probes is None and self.plain.nodes >= self.probe_after:
            size, lo, hi, fixed_off, capacity = self.args[:5]
            self.probes = []
            for b in _probe_buffers(size, lo, hi, fixed_off, capacity):
                pinned = fixed_off.copy()
                pinned[b] = 0
                self.probes.append(_ProbingSearch(size, lo, hi, pinned, *self.args[4:], self.probe_after, self.base))
            self.refutable = bool(self.probes)
        for probe in list(self.probes or []):
            status, off = probe.step()
            if status in (FOUND, TIMEOUT):
                return status, off
            if status == NOT_FOUND:  # this buffer is not at the bottom of the probed section
                self.probes.remove(probe)
                self.retired_nodes += probe.nodes
                self.retired_hits += probe.hits
        if self.probes == [] and self.refutable:
            return NOT_FOUND, off
        return NODE_LIMIT, off


def _probe_buffers(size, lo, hi, fixed_off, capacity):
    """The buffers alive in the full section without pinned buffers that has the fewest buffers (one of
    them is at offset 0 in every packing); none when there is no such section."""
    n_sec = int(hi.max())
    delta = np.zeros(n_sec + 1, np.int64)
    np.add.at(delta, lo, size)
    np.subtract.at(delta, hi, size)
    count = np.zeros(n_sec + 1, np.int64)
    np.add.at(count, lo, 1)
    np.subtract.at(count, hi, 1)
    pinned = np.zeros(n_sec + 1, np.int64)
    np.add.at(pinned, lo[fixed_off >= 0], 1)
    np.subtract.at(pinned, hi[fixed_off >= 0], 1)
    full = np.flatnonzero((np.cumsum(delta)[:n_sec] == capacity) & (np.cumsum(pinned)[:n_sec] == 0))
    if full.size == 0:
        return np.zeros(0, np.int64)
    s = full[np.argmin(np.cumsum(count)[full])]
    return np.flatnonzero((lo <= s) & (hi > s))


class _Restarts:
    """Restarts of the skyline search on one instance; :meth:`step` runs the next one.

    Restart ``k`` gets a node budget of ``luby(k)`` times a base and a static branching order
    (the tie-break among equally snug candidates): MiniMalloc's width-then-area order (Moffitt,
    ASPLOS 2023), size descending, size ascending, then seeded random orders; the search's
    tree sizes are heavy-tailed in this order, and the memo of dead states is shared by all
    restarts. Odd restarts search the time-reversed instance (same packings, another search order).
    """

    def __init__(self, size, lo, hi, fixed_off, capacity, alignment, deadline, base):
        n_sec = int(hi.max())  # sections are compressed: the part starts at section 0
        n = size.size
        width = hi - lo
        self.idx = np.arange(n)
        self.fixed_orders = [np.lexsort((self.idx, -size * width, -width)), np.lexsort((self.idx, -size)),
                             np.lexsort((self.idx, size))]
        self.rng = np.random.default_rng(0)
        # pinned buffers alive with each buffer
        pinned = np.flatnonzero(fixed_off >= 0)
        fx_lists = [pinned[(lo[pinned] < hi[i]) & (hi[pinned] > lo[i]) & (pinned != i)] for i in range(n)]
        self.fx_ptr = np.zeros(n + 1, np.int64)
        self.fx_ptr[1:] = np.cumsum([len(x) for x in fx_lists])
        self.fx_idx = np.concatenate(fx_lists + [np.zeros(0, np.int64)]).astype(np.int64)
        # (section, buffer) pairs of every lifetime; per order they are sorted into per-section lists
        self.ent_buf = np.repeat(self.idx, width)
        ent_sec = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)])
        sec_ptr = np.zeros(n_sec + 1, np.int64)
        sec_ptr[1:] = np.cumsum(np.bincount(ent_sec, minlength=n_sec))
        rev_ptr = np.concatenate([[0], np.cumsum(np.diff(sec_ptr)[::-1])])
        self.sides = ((lo, hi, ent_sec, sec_ptr), (n_sec - hi, n_sec - lo, n_sec - 1 - ent_sec, rev_ptr))
        slots = 1 << min(20, max(10, int(1024 * n).bit_length()))
        self.memo = [np.zeros(slots, np.uint64) for _ in self.sides]  # dead part states, shared by the restarts
        self.base = base
        self.size, self.fixed_off, self.n_sec = size, fixed_off, n_sec
        self.capacity, self.alignment = capacity, alignment
        self.deadline = deadline if deadline is not None else 0.0
        self.k = self.nodes = self.hits = 0

    def step(self):
        """Run the next restart; returns ``(status, offsets)`` (status NODE_LIMIT: not answered yet)."""
        from .kernels.allocate import search_packing

        k = self.k
        self.k += 1
        order = self.fixed_orders[k // 2] if k // 2 < len(self.fixed_orders) else self.rng.permutation(self.idx.size)
        rank = np.empty(self.idx.size, np.int64)
        rank[order] = self.idx
        b_lo, b_hi, b_sec, b_ptr = self.sides[k % 2]
        sec_idx = self.ent_buf[np.lexsort((rank[self.ent_buf], b_sec))].astype(np.int64)
        twin = _twins(order, b_lo, b_hi, self.size, self.fixed_off)
        status, off, nodes, hits = search_packing(self.size, b_lo, b_hi, self.n_sec, b_ptr.astype(np.int64), sec_idx,
                                                  twin, self.fixed_off, self.fx_ptr, self.fx_idx, self.capacity,
                                                  self.alignment, self.base * _luby(k // 2), self.deadline,
                                                  self.memo[k % 2])
        self.nodes += int(nodes)
        self.hits += int(hits)
        return status, off


def _luby(k):
    """The ``k``-th term (from 0) of the Luby restart sequence 1, 1, 2, 1, 1, 2, 4, 1, ..."""
    i = k + 1
    while True:
        p = 2
        while p - 1 < i:
            p *= 2
        if p - 1 == i:
            return p // 2
        i -= p // 2 - 1


def _twins(order, lo, hi, size, fixed_off):
    """``twin[i]``: the free buffer identical to ``i`` (lifetime and size) just before it in ``order``, or -1."""
    twin = np.full(order.size, -1, np.int64)
    last = {}
    for i in order:
        if fixed_off[i] < 0:
            key = (lo[i], hi[i], size[i])
            twin[i] = last.get(key, -1)
            last[key] = i
    return twin


def allocate(lower, upper, size, capacity, time_limit=None, alignment=1, fixed=None) -> Allocation:
    """Give every buffer an address so that buffers alive together do not overlap.

    Parameters
    ----------
    lower, upper, size : sequences of int
        Half-open lifetimes ``[lower, upper)`` and byte sizes.
    capacity : int
        Bytes available; the search looks for a packing with height <= capacity.
    time_limit : float or None
        Seconds for the exact search (None: unlimited).
    alignment : int
        Every offset is a multiple of it.
    fixed : dict {buffer index: offset} or None
        Pre-placed buffers that keep their offsets.

    Returns
    -------
    Allocation
        Greedy answer if it fits (status "optimal" when it reaches max live), otherwise
        the result of the MiniMalloc-style search (Moffitt, ASPLOS 2023).
    """
    from .kernels.allocate import FOUND, NOT_FOUND, lifetime_partitions, overlap_csr

    t0 = time.perf_counter()
    lower, upper, size, capacity, alignment, fixed_off = _check_inputs(
        lower, upper, size, capacity, alignment, fixed)
    n = size.size
    lb = max_live(lower, upper, size)
    if n == 0:
        return Allocation(np.zeros(0, np.int64), 0, "optimal", 0, capacity, time.perf_counter() - t0)
    lo, hi, n_sec = _sections(lower, upper)
    ov_ptr, ov_idx = overlap_csr(lo, hi)
    off, height, how = _greedy(size, lo, hi, ov_ptr, ov_idx, fixed_off, alignment)
    info = {"method": how, "greedy_height": height}
    pinned_top = int((fixed_off + size)[fixed_off >= 0].max()) if (fixed_off >= 0).any() else 0

    def done(offsets, h, status):
        return Allocation(offsets, int(h), status, lb, capacity, time.perf_counter() - t0, info)

    if height == lb and height <= capacity:
        return done(off, height, "optimal")
    if height <= capacity:
        return done(off, height, "feasible")
    if lb > capacity or pinned_top > capacity:
        return done(off, height, "infeasible")
    deadline = None if time_limit is None else t0 + float(time_limit)
    part = lifetime_partitions(lo, hi, n_sec)
    buf_part = part[lo]
    result = off.copy()
    info["method"] = "search"
    info["nodes"] = info["memo_hits"] = 0
    for p in np.unique(buf_part):
        members = np.flatnonzero(buf_part == p)
        if (off[members] + size[members]).max() <= capacity:
            continue  # the greedy answer already fits this independent part
        status, res, nodes, hits = _search_partition(members, size, lo, hi, fixed_off, capacity, alignment,
                                                     deadline)
        info["nodes"] += nodes
        info["memo_hits"] += hits
        if status == FOUND:
            result[members] = res
            continue
        if status == NOT_FOUND:
            return done(off, height, "infeasible")
        return done(off, height, "timeout")
    h = int((result + size).max())
    return done(result, h, "optimal" if h == lb else "feasible")


# ----------------------------------------------------------------------------- CSV I/O

def read_csv(path):
    """Read ``id,lower,upper,size`` rows; returns ``(ids, lower, upper, size)`` (ids as str)."""
    ids, rows = [], []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            need = {"id", "lower", "upper", "size"}
            if reader.fieldnames is None or not need <= {h.strip() for h in reader.fieldnames}:
                raise FormatError(f"{path}: header must contain id,lower,upper,size (got {reader.fieldnames})")
            for k, row in enumerate(reader, start=2):
                row = {key.strip(): v for key, v in row.items() if key is not None}
                try:
                    rows.append((int(row["lower"]), int(row["upper"]), int(row["size"])))
                except (TypeError, ValueError):
                    raise FormatError(f"{path}:{k}: buffer {row.get('id')!r} has a non-integer "
                                      f"lower/upper/size") from None
                ids.append(row["id"].strip())
    except OSError as e:
        raise FormatError(f"{path}: cannot read ({e})") from None
    arr = np.array(rows, np.int64).reshape(-1, 3)
    return ids, arr[:, 0].copy(), arr[:, 1].copy(), arr[:, 2].copy()


def write_csv(path, ids, lower, upper, size, offsets) -> None:
    """Write ``id,lower,upper,size,offset`` rows."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "lower", "upper", "size", "offset"])
        for row in zip(ids, lower, upper, size, offsets):
            w.writerow([row[0]] + [int(x) for x in row[1:]])


def allocate_csv(path, capacity, out=None, time_limit=None, alignment=1) -> Allocation:
    """Allocate the buffers of a CSV file; write the result with an ``offset`` column to ``out`` if given."""
    ids, lower, upper, size = read_csv(path)
    try:
        a = allocate(lower, upper, size, capacity, time_limit=time_limit, alignment=alignment)
    except OptionError as e:
        # name the buffer by its id from the file rather than by its row index
        raise OptionError(f"{path}: {e} (buffer ids: row order of the file)") from None
    if out is not None:
        write_csv(out, ids, lower, upper, size, a.offsets)
    return a


# ----------------------------------------------------------------------------- generators

def zero_slack_instance(n_buffers, capacity, horizon, seed=0, guillotine=True):
    """Cut a ``capacity x horizon`` rectangle into ``n_buffers`` rectangles (a packing with no slack).

    Each rectangle ``[addr0, addr1) x [t0, t1)`` becomes a buffer of size ``addr1 - addr0``
    living ``[t0, t1)``, so max live == capacity and a packing at height ``capacity``
    exists. With ``guillotine=False`` some cuts are pinwheels (five pieces, not
    separable by straight cuts). Returns ``(lower, upper, size, offsets)`` where
    ``offsets`` is the known packing.
    """
    rng = np.random.default_rng(seed)
    rects = [(0, capacity, 0, horizon)]  # (a0, a1, t0, t1)
    while len(rects) < n_buffers:
        areas = np.array([(a1 - a0) * (t1 - t0) for a0, a1, t0, t1 in rects], float)
        k = int(rng.choice(len(rects), p=areas / areas.sum()))
        a0, a1, t0, t1 = rects[k]
        da, dt = a1 - a0, t1 - t0
        if (not guillotine and len(rects) + 4 <= n_buffers and da >= 3 and dt >= 3
                and rng.random() < 0.5):
            x1, x2 = sorted(rng.choice(np.arange(a0 + 1, a1), 2, replace=False))
            y1, y2 = sorted(rng.choice(np.arange(t0 + 1, t1), 2, replace=False))
            new = [(a0, x2, t0, y1), (x2, a1, t0, y2), (x1, a1, y2, t1), (a0, x1, y1, t1), (x1, x2, y1, y2)]
        elif da < 2 and dt < 2:
            if all((r[1] - r[0]) < 2 and (r[3] - r[2]) < 2 for r in rects):
                break  # nothing left to cut
            continue
        elif dt < 2 or (da >= 2 and rng.random() < 0.5):
            x = int(rng.integers(a0 + 1, a1))
            new = [(a0, x, t0, t1), (x, a1, t0, t1)]
        else:
            y = int(rng.integers(t0 + 1, t1))
            new = [(a0, a1, t0, y), (a0, a1, y, t1)]
        rects[k:k + 1] = new
    r = np.array(rects, np.int64)
    return r[:, 2].copy(), r[:, 3].copy(), (r[:, 1] - r[:, 0]).copy(), r[:, 0].copy()


def unpackable_instance(scale=1, extra=0, seed=0):
    """An instance whose max live equals its capacity but that provably has no packing.

    Capacity 4, every instant exactly full (five instants ``t0..t4``)::

        t0: A(2) B(2)          t3: C(1) D(1) E(2)
        t1: B(2) D(1) F(1)     t4: E(2) G(2)
        t2: C(1) D(1) F(1) H(1)

    At ``t0`` B sits in one half (address 0 or 2), so at ``t1`` D and F fill the other
    half ``h``. Symmetrically E sits in a half at ``t4``, so at ``t3`` C and D fill the
    other half ``h'``. D is in both, so ``h == h'``; then C, D and F -- all alive at
    ``t2`` -- must fit three bytes into the two bytes of ``h``: impossible. (Found by a
    random search, checked by brute force in the tests.)

    ``scale`` multiplies every size; ``extra`` appends a zero-slack packable part of that
    many buffers later in time (independent, so the whole stays unpackable). Returns
    ``(lower, upper, size, capacity)``.
    """
    lower = np.array(_GADGET[0], np.int64)
    upper = np.array(_GADGET[1], np.int64)
    size = np.array(_GADGET[2], np.int64) * scale
    cap = _GADGET[3] * scale
    if extra > 0:
        lo2, up2, s2, _ = zero_slack_instance(extra, cap, 4 * extra, seed=seed)
        t = int(upper.max())
        lower = np.concatenate([lower, lo2 + t])
        upper = np.concatenate([upper, up2 + t])
        size = np.concatenate([size, s2])
    return lower, upper, size, cap


# buffers C, D, E, B, A, F, H, G of the docstring: (lower, upper, size, capacity)
_GADGET = ([2, 1, 3, 0, 0, 1, 2, 4], [4, 4, 5, 2, 1, 3, 3, 5], [1, 1, 2, 2, 2, 1, 1, 2], 4)
