"""The ``cosma-fast`` command line.

Commands
--------
``plan MODEL --capacity C``
    Solve the COSMA problem (Li, Gupta, Malik, arXiv 2311.18246) for a model and print
    the budgets, the traffic split, the bound, the gap and the solve time.
``check MODEL plan.json``
    Validate a plan with the independent checker; print its cost or the broken rule.
``show plan.json --png out.png``
    Draw the scratchpad over time (see :func:`cosma_fast.viz.plot_plan`).
``allocate FILE.csv --capacity N``
    Static allocation of buffers with fixed lifetimes (:mod:`cosma_fast.allocate`).
``bench``
    The benchmark suite reproducing COSMA's evaluation (:mod:`cosma_fast.benchsuite`).

MODEL is ``example`` (a small bundled graph), a zoo name, a graph JSON (``.json`` or
``.json.gz``) or an ``.onnx`` file. Every error ends with one line on stderr and a
non-zero exit code: 2 for bad arguments or input files, 1 when ``check``/``show`` find
an invalid plan, 3 when a solver fails.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path

from .budgets import Budgets, check_capacity, m_r, parse_bytes
from .errors import CosmaError, FormatError, OptionError, PlanError, SolverError
from .graph import INPUT, WEIGHT, Graph
from .plan import Plan

__all__ = ["main", "load_model", "model_budgets", "resolve_capacity", "run_method",
           "method_available", "METHOD_CHOICES"]

#: methods the command line offers; "trivial" is the load-run-store plan (always available)
METHOD_CHOICES = ("auto", "heuristic", "ilp", "dnc", "baseline", "baseline-mpmf", "trivial")
#: what the default method falls back to, in order, while parts of the package are missing
_DEFAULT_CHAIN = ("auto", "heuristic", "trivial")

EXIT_INVALID_PLAN, EXIT_USAGE, EXIT_SOLVER = 1, 2, 3


# ---------------------------------------------------------------------- helpers
def fmt_bytes(n: int | float | None) -> str:
    """``1234567`` -> ``"1,234,567 B (1.18 MiB)"``."""
    if n is None:
        return "-"
    n = int(n)
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= scale:
            return f"{n:,} B ({n / scale:.2f} {unit})"
    return f"{n:,} B"


def load_model(spec: str) -> Graph:
    """A graph from ``"example"``, a zoo name, a graph JSON(.gz) path or an ``.onnx`` path.

    Raises
    ------
    FormatError
        The file does not exist or cannot be read, or the name is neither a file nor a zoo model.
    """
    if spec == "example":
        text = resources.files("cosma_fast").joinpath("examples/example.json").read_text(encoding="utf-8")
        return Graph.from_json(text)
    p = Path(spec)
    if p.suffix.lower() == ".onnx":
        if not p.exists():
            raise FormatError(f"ONNX file {spec!r} does not exist")
        try:
            from .importers.onnx import from_onnx
        except ImportError as e:
            raise FormatError(f"cannot read {spec!r}: the ONNX importer is not available ({e}); "
                              "install the 'onnx' extra: pip install 'cosma-fast[onnx]'") from None
        return from_onnx(str(p))
    if p.exists() or p.suffix.lower() in (".json", ".gz") or "/" in spec or "\\" in spec:
        return Graph.from_json(p)
    try:
        zoo = importlib.import_module(f"{__package__}.zoo")
    except ImportError:
        raise FormatError(f"{spec!r} is not a file, and the model zoo is not available in this build; "
                          "pass 'example', a graph .json/.json.gz or an .onnx file") from None
    names = list(zoo.names())
    if spec not in names:
        raise FormatError(f"{spec!r} is neither a file nor a zoo model; zoo models: {', '.join(names)} "
                          "(or pass 'example', a graph .json/.json.gz or an .onnx file)")
    return zoo.load(spec)


def _model_order_peak(g: Graph) -> int:
    """Peak live bytes of the model order (an upper bound on M_P when no schedule search exists)."""
    import numpy as np

    n = g.n_ops
    if n == 0:
        return 0
    delta = np.zeros(n + 1, dtype=np.int64)
    for t in range(g.n_tensors):
        cons = g.consumers_of(t)
        prod = int(g.tensor_producer[t])
        if g.tensor_kind[t] in (INPUT, WEIGHT):
            if len(cons) == 0:
                continue
            first, last = int(cons.min()), int(cons.max())
        else:
            first = prod
            last = max(prod, int(cons.max()) if len(cons) else prod)
        delta[first] += g.tensor_size[t]
        delta[last + 1] -= g.tensor_size[t]
    return int(np.cumsum(delta)[:n].max())


def model_budgets(g: Graph, time_limit: float = 10.0) -> Budgets:
    """M_R, M_H, M_P of ``g`` (``cf.budgets``; the model-order peak as an upper bound on
    M_P while the schedule search is not part of the build)."""
    try:
        from .budgets import budgets
        return budgets(g, time_limit=time_limit)
    except ImportError:
        mr = m_r(g)
        mp = max(_model_order_peak(g), mr)
        return Budgets(m_r=mr, m_h=(mr + mp) // 2, m_p=mp, m_p_exact=False)


def resolve_capacity(g: Graph, text: str, budgets: Budgets | None = None) -> tuple[int, str]:
    """``(bytes, label)`` from ``"M_R"``/``"M_H"``/``"M_P"`` or a size such as ``"512KiB"``."""
    key = str(text).strip().upper()
    if key in ("M_R", "M_H", "M_P"):
        b = budgets if budgets is not None else model_budgets(g)
        return b[key], key
    cap = parse_bytes(text)
    if cap <= 0:
        raise OptionError(f"capacity must be positive, got {text!r}")
    return cap, "given"


def method_available(name: str) -> tuple[bool, str]:
    """``(True, "")`` when ``name`` can run in this build, else ``(False, reason)``."""
    if name == "trivial":
        return True, ""
    from .solve import METHODS

    if name not in METHODS:
        return False, f"unknown method {name!r}; choose one of {', '.join(METHOD_CHOICES)}"
    mod, fn = METHODS[name].split(":")
    try:
        module = importlib.import_module(f"{__package__}.{mod}")
    except ImportError as e:
        return False, f"method {name!r} is not available in this build ({e})"
    if not hasattr(module, fn):
        return False, f"method {name!r} is not available in this build (cosma_fast.{mod} has no {fn})"
    return True, ""


def run_method(g: Graph, capacity: int, method: str, *, time_limit: float | None = None, seed: int = 0,
               progress=None, alignment: int = 1):
    """``cf.solve`` for a method name; ``"trivial"`` gives the load-run-store plan as a Result."""
    if method == "trivial":
        from .budgets import check_capacity
        from .solve import MethodOutput, finish
        from .trivial import trivial_plan

        t0 = time.perf_counter()
        check_capacity(g, capacity, alignment)
        return finish(g, capacity, MethodOutput(plan=trivial_plan(g, alignment=alignment),
                                                message="load-run-store plan"), "trivial", t0, alignment)
    from .solve import solve

    return solve(g, capacity, method=method, time_limit=time_limit, seed=seed, progress=progress,
                 alignment=alignment)


class _ProgressPrinter:
    """Prints incumbent/bound updates of a long solve on stderr.

    On a terminal the line is redrawn in place, and a heartbeat (elapsed seconds) keeps it
    alive while the method reports nothing; elsewhere (logs, pipes) each update is one line.
    """

    def __init__(self, stream=None, label: str = "solving", heartbeat: float = 1.0):
        import threading

        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.label = label
        self.used = False
        self.t0 = time.perf_counter()
        self._last = self.t0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = None
        if self.tty:
            self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True)
            self._thread.start()

    def _write(self, line: str) -> None:
        with self._lock:
            if self.tty:
                self.stream.write("\r" + line.ljust(78))
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
            self.used = True
            self._last = time.perf_counter()

    def _beat(self, every: float) -> None:
        while not self._done.wait(every):
            if time.perf_counter() - self._last >= every:
                self._write(f"[{time.perf_counter() - self.t0:7.1f}s] {self.label} ...")

    def __call__(self, info: dict) -> None:
        inc, bound, gap, t = (info.get(k) for k in ("incumbent", "bound", "gap", "time"))
        parts = [f"[{t:7.1f}s]" if isinstance(t, (int, float)) else f"[{time.perf_counter() - self.t0:7.1f}s]"]
        parts.append(f"incumbent {int(inc):,} B" if inc is not None else "incumbent -")
        parts.append(f"bound {int(bound):,} B" if bound is not None else "bound -")
        if gap is not None:
            parts.append(f"gap {100 * float(gap):.2f}%")
        self._write("  ".join(parts))

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self.used and self.tty:
            self.stream.write("\n")
            self.stream.flush()


@contextlib.contextmanager
def solver_noise_to_stderr():
    """Send what native solver code writes to file descriptor 1 (HiGHS prints a banner even
    with output off) to stderr, so that stdout holds only the report."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 1)
        os.close(saved)


def _note(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------- commands
def _print_budgets(b: Budgets) -> None:
    label = "exact" if b.m_p_exact else "upper bound"
    print(f"budgets    M_R = {fmt_bytes(b.m_r)}")
    print(f"           M_H = {fmt_bytes(b.m_h)}")
    print(f"           M_P = {fmt_bytes(b.m_p)}  [{label}]")


def cmd_plan(args) -> int:
    g = load_model(args.model).with_weights(not args.no_weights)
    b = model_budgets(g, time_limit=args.budget_time)
    cap, label = resolve_capacity(g, args.capacity, b)
    check_capacity(g, cap, args.alignment)
    explicit = args.method is not None
    chain = (args.method,) if explicit else _DEFAULT_CHAIN
    method = None
    for i, name in enumerate(chain):
        ok, why = method_available(name)
        if ok:
            method = name
            break
        if explicit:
            raise OptionError(why)
        _note(f"{why}; falling back to {chain[i + 1]!r}")
    weights = "activations only (--no-weights)" if args.no_weights else "weights included"
    print(f"model      {g.name}: {g.n_ops} operators, {g.n_tensors} tensors, {weights}")
    _print_budgets(b)
    print(f"capacity   {fmt_bytes(cap)}" + (f"  ({label})" if label != "given" else "")
          + (f", addresses multiples of {args.alignment}" if args.alignment > 1 else ""))
    limit = f" (time limit {args.time_limit:g} s)" if args.time_limit else ""
    printer = _ProgressPrinter(label=f"solving with {method!r}{limit}")
    try:
        with solver_noise_to_stderr():
            res = run_method(g, cap, method, time_limit=args.time_limit, seed=args.seed, progress=printer,
                             alignment=args.alignment)
    finally:
        printer.close()
    print(f"method     {res.method}   status {res.status}   solve time {res.solve_time:.3f} s")
    print(f"traffic    {fmt_bytes(res.traffic)}")
    print(f"  compulsory      {fmt_bytes(res.compulsory)}")
    print(f"  non-compulsory  {fmt_bytes(res.non_compulsory)}")
    print(f"bound      non-compulsory >= {fmt_bytes(res.lower_bound)}   gap {100 * res.gap:.2f}%")
    print(f"peak       {fmt_bytes(res.report.peak_bytes)} resident at once")
    if res.message:
        print(f"message    {res.message}")
    if args.out:
        d = res.plan.to_dict(res.graph)
        d.update(model=args.model, capacity=int(cap), include_weights=not args.no_weights, method=res.method,
                 alignment=args.alignment)
        Path(args.out).write_text(json.dumps(d), encoding="utf-8")
        print(f"wrote      {args.out}")
    if args.png:
        from .viz import plot_plan

        plot_plan(res.graph, res.plan, cap, args.png, title=f"{g.name}  {res.method}  C = {fmt_bytes(cap)}")
        print(f"wrote      {args.png}")
    return 0


def _read_plan_doc(path: str) -> dict:
    p = Path(path)
    if not p.exists():
        raise FormatError(f"plan file {path!r} does not exist")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"plan file {path!r} is not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise FormatError(f"plan file {path!r} does not hold a cosma_fast plan document")
    return d


def _plan_context(model: str | None, doc: dict, capacity: str | None, no_weights: bool | None):
    """(graph, plan, capacity bytes) from a plan document and the command-line overrides."""
    model = model or doc.get("model")
    if not model:
        raise OptionError("the plan file does not say which model it is for; pass --model MODEL")
    include_weights = doc.get("include_weights", True) if not no_weights else False
    g = load_model(model).with_weights(bool(include_weights))
    plan = Plan.from_dict(g, doc)
    if capacity is not None:
        cap, _ = resolve_capacity(g, capacity)
    elif isinstance(doc.get("capacity"), int) and doc["capacity"] > 0:
        cap = int(doc["capacity"])
    else:
        raise OptionError("the plan file does not record its capacity; pass --capacity (bytes, 512KiB, M_R, ...)")
    return g, plan, cap


def _alignment(given: int | None, doc: dict) -> int:
    """``--alignment`` when given, else the plan file's (1 when it records none)."""
    if given is not None:
        return given
    a = doc.get("alignment", 1)
    if not isinstance(a, int) or isinstance(a, bool) or a < 1:
        raise FormatError(f"the plan file's alignment must be a positive integer, got {a!r}")
    return a


def cmd_check(args) -> int:
    from .validate import validate

    doc = _read_plan_doc(args.plan)
    g, plan, cap = _plan_context(args.model, doc, args.capacity, args.no_weights)
    try:
        rep = validate(g, plan, cap, _alignment(args.alignment, doc))
    except PlanError as e:
        print(f"INVALID plan {args.plan}: {e}", file=sys.stderr)
        return EXIT_INVALID_PLAN
    print(f"valid plan for {g.name} at capacity {fmt_bytes(cap)}")
    print(f"traffic    {fmt_bytes(rep.traffic)}")
    print(f"  compulsory      {fmt_bytes(rep.compulsory)}")
    print(f"  non-compulsory  {fmt_bytes(rep.non_compulsory)}")
    print(f"peak       {fmt_bytes(rep.peak_bytes)} resident at once")
    return 0


def cmd_show(args) -> int:
    from .validate import validate
    from .viz import plot_plan

    doc = _read_plan_doc(args.plan)
    g, plan, cap = _plan_context(args.model, doc, args.capacity, args.no_weights)
    try:
        rep = validate(g, plan, cap)
    except PlanError as e:
        print(f"INVALID plan {args.plan}: {e}", file=sys.stderr)
        return EXIT_INVALID_PLAN
    plot_plan(g, plan, cap, args.png, title=f"{g.name}  C = {fmt_bytes(cap)}  "
              f"non-compulsory {fmt_bytes(rep.non_compulsory)}")
    print(f"wrote {args.png}")
    return 0


def cmd_allocate(args) -> int:
    if not Path(args.file).exists():
        raise FormatError(f"buffer file {args.file!r} does not exist")
    try:
        from .allocate import allocate_csv
    except ImportError as e:
        raise OptionError(f"the allocator is not available in this build ({e})") from None
    cap = parse_bytes(args.capacity)
    if cap <= 0:
        raise OptionError(f"capacity must be positive, got {args.capacity!r}")
    alloc = allocate_csv(args.file, cap, out=args.out, time_limit=args.time_limit)
    print(f"buffers    {len(alloc.offsets)}")
    print(f"status     {alloc.status}   solve time {alloc.solve_time:.3f} s")
    print(f"height     {fmt_bytes(alloc.height)}  (capacity {fmt_bytes(alloc.capacity)})")
    print(f"max live   {fmt_bytes(alloc.lower_bound)}  (lower bound on any packing)")
    if args.out:
        print(f"wrote      {args.out}")
    if not alloc.fits:
        why = "no packing exists" if alloc.status == "infeasible" else "no packing found within the time limit"
        print(f"cosma-fast allocate: {why} within {alloc.capacity:,} bytes; the best packing needs "
              f"{alloc.height:,} bytes", file=sys.stderr)
        return EXIT_INVALID_PLAN
    return 0


def cmd_bench(args) -> int:
    from .benchsuite import DEFAULT_METHODS, default_models, run_suite

    models = _split(args.models) or default_models()
    budgets = [b.upper() for b in _split(args.budgets)]
    for b in budgets:
        if b not in ("M_R", "M_H", "M_P"):
            raise OptionError(f"unknown budget {b!r}; use M_R, M_H and/or M_P")
    methods = _split(args.methods) or list(DEFAULT_METHODS)
    for m in methods:
        if m not in METHOD_CHOICES:
            raise OptionError(f"unknown method {m!r}; choose from {', '.join(METHOD_CHOICES)}")
    weights = {"with": [True], "without": [False], "both": [True, False]}[args.weights]
    command = (f"cosma-fast bench --models {' '.join(models)} --budgets {','.join(budgets)} --methods "
               f"{' '.join(methods)} --time-limit {args.time_limit:g} --weights {args.weights} --seed {args.seed}")
    run_suite(models, budgets=budgets, methods=methods, time_limit=args.time_limit, out_dir=args.out,
              weight_settings=weights, seed=args.seed, command=command, log=lambda s: print(s, flush=True))
    return 0


def _split(text) -> list[str]:
    if text is None:
        return []
    items = text if isinstance(text, list) else [text]
    return [s.strip() for item in items for s in str(item).split(",") if s.strip()]


# ---------------------------------------------------------------------- parser
_EXAMPLES = """examples:
  cosma-fast plan example --capacity M_R
  cosma-fast plan resnet50 --capacity 2.5MiB --method ilp --time-limit 60 --out plan.json --png plan.png
  cosma-fast check resnet50 plan.json
  cosma-fast show plan.json --png scratchpad.png
  cosma-fast bench --models resnet50 transformer --budgets M_R,M_H --time-limit 20

exit codes: 0 ok, 1 invalid plan (check/show) or buffers do not fit (allocate),
2 bad arguments or input files, 3 solver failure"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (exit 2)."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive seconds")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of bytes")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cosma-fast", description="Joint operator scheduling, scratchpad allocation and "
                "tensor replacement for DNN accelerators (the COSMA problem).",
                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EXAMPLES)
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    cap_help = "scratchpad size: bytes, a size such as 512KiB or 2MiB, or a budget M_R, M_H, M_P"
    model_help = "'example', a zoo model name, a graph .json/.json.gz file or an .onnx file"

    sp = sub.add_parser("plan", help="plan a model: schedule, addresses, replacement")
    sp.add_argument("model", metavar="MODEL", help=model_help)
    sp.add_argument("--capacity", "-c", required=True, help=cap_help)
    sp.add_argument("--method", "-m", choices=METHOD_CHOICES, default=None,
                    help="solver (default: auto, falling back to heuristic, then trivial, when missing)")
    sp.add_argument("--time-limit", type=_positive_float, default=None, metavar="S",
                    help="wall seconds for the solve; on expiry the best valid plan is returned with its bound")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--no-weights", action="store_true", help="COSMA's activation-only setting")
    sp.add_argument("--alignment", type=_positive_int, default=1, metavar="BYTES",
                    help="every address a multiple of it (default 1)")
    sp.add_argument("--budget-time", type=_positive_float, default=10.0,
                    help="seconds for the exact M_P search (default 10)")
    sp.add_argument("--out", "-o", help="write the plan as JSON")
    sp.add_argument("--png", help="draw the scratchpad timeline to this PNG")
    sp.set_defaults(func=cmd_plan)

    sp = sub.add_parser("check", help="validate a plan and print its cost or the broken rule")
    sp.add_argument("model", metavar="MODEL", help=model_help)
    sp.add_argument("plan", metavar="PLAN_JSON")
    sp.add_argument("--capacity", "-c", default=None, help=cap_help + " (default: the one in the plan file)")
    sp.add_argument("--alignment", type=_positive_int, default=None, metavar="BYTES",
                    help="every address a multiple of it (default: the plan file's, else 1)")
    sp.add_argument("--no-weights", action="store_true", default=None)
    sp.set_defaults(func=cmd_check)

    sp = sub.add_parser("show", help="draw the scratchpad over time and the occupancy curve")
    sp.add_argument("plan", metavar="PLAN_JSON")
    sp.add_argument("--model", default=None, help=model_help + " (default: the one in the plan file)")
    sp.add_argument("--png", required=True, help="output PNG")
    sp.add_argument("--capacity", "-c", default=None, help=cap_help + " (default: the one in the plan file)")
    sp.add_argument("--no-weights", action="store_true", default=None)
    sp.set_defaults(func=cmd_show)

    sp = sub.add_parser("allocate", help="static allocation of a CSV of buffers (id,lower,upper,size)")
    sp.add_argument("file", metavar="FILE.csv")
    sp.add_argument("--capacity", "-c", required=True, help="bytes or a size such as 2MiB")
    sp.add_argument("--out", "-o", default=None, help="write the CSV with an offset column")
    sp.epilog = "exit code 1 when the buffers do not fit the capacity"
    sp.add_argument("--time-limit", type=_positive_float, default=None)
    sp.set_defaults(func=cmd_allocate)

    sp = sub.add_parser("bench", help="every model x budget x method: CSV, markdown table, bar chart")
    sp.add_argument("--models", nargs="+", default=None, help="models (comma or space separated; default: zoo)")
    sp.add_argument("--budgets", default="M_R,M_H,M_P")
    sp.add_argument("--methods", nargs="+", default=None,
                    help="methods (comma or space separated; default: baselines, heuristic, auto)")
    sp.add_argument("--time-limit", type=_positive_float, default=60.0, help="seconds per solve (default 60)")
    sp.add_argument("--weights", choices=("with", "without", "both"), default="with",
                    help="include weights, exclude them (activation-only) or both settings")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", default="bench/results", help="output directory (default bench/results)")
    sp.set_defaults(func=cmd_bench)
    return p


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 invalid plan, 2 bad input, 3 solver failure)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: usage errors (2), --help/--version (0)
        return int(e.code or 0)
    prog = f"cosma-fast {args.command}"
    try:
        return int(args.func(args) or 0)
    except SolverError as e:
        print(f"{prog}: solver failed: {e}", file=sys.stderr)
        return EXIT_SOLVER
    except CosmaError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:
        print(f"{prog}: error: {e.strerror or e}{': ' + repr(e.filename) if e.filename else ''}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _console() -> None:  # pragma: no cover - exercised through the console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
