"""The benchmark suite reproducing COSMA's evaluation (Li, Gupta, Malik, arXiv 2311.18246, Sec. 5).

Every model x weight setting x budget (M_R, M_H, M_P) x method is solved once; each
row records the non-compulsory bytes, the reduction against the best baseline of the
same model and budget (COSMA's headline metric), the proven bound, the gap, the
status and the wall time. :func:`run_suite` writes ``results.csv``, ``results.md``
and ``results.png`` (a grouped bar chart like the paper's Fig. 6, traffic normalised to the best
baseline) into ``out_dir``.

Run it with ``cosma-fast bench`` or ``python bench/run.py`` (same options).
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import platform
import time
from pathlib import Path
from typing import Callable, Iterable

from .errors import CosmaError, OptionError

__all__ = ["run_suite", "default_models", "DEFAULT_METHODS", "BASELINES", "COLUMNS",
           "write_csv", "write_markdown", "plot_bars"]

#: COSMA's comparison points; "reduction" is measured against the best of them
BASELINES = ("baseline", "baseline-mpmf", "trivial")
DEFAULT_METHODS = ("baseline", "baseline-mpmf", "heuristic", "auto")

COLUMNS = ("model", "weights", "n_ops", "budget", "capacity", "m_p_exact", "method", "status",
           "traffic", "compulsory", "non_compulsory", "lower_bound", "gap", "reduction_vs_best_baseline",
           "best_baseline", "wall_time", "message")


def default_models() -> list[str]:
    """The zoo's models when the zoo is part of the build, else the bundled example."""
    try:
        from . import zoo
        names = list(zoo.names())
        return names or ["example"]
    except ImportError:
        return ["example"]


def _machine() -> str:
    cores = os.cpu_count()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.system()} {platform.machine()}, {cores} cores{mem}, Python {platform.python_version()}"


def run_suite(models: Iterable[str], *, budgets: Iterable[str] = ("M_R", "M_H", "M_P"),
              methods: Iterable[str] = DEFAULT_METHODS, time_limit: float | None = 60.0,
              out_dir: str | Path | None = "bench/results", weight_settings: Iterable[bool] = (True,),
              seed: int = 0, budget_time: float = 10.0, command: str | None = None,
              log: Callable[[str], None] | None = None) -> list[dict]:
    """Solve every model x weight setting x budget x method; return the rows (dicts keyed by
    :data:`COLUMNS`) and, when ``out_dir`` is given, write CSV, markdown and bar chart there.

    A method missing from the build gives rows with status ``"unavailable"``; a method that
    raises gives status ``"error"`` with the message, so one failure does not stop the suite.
    """
    from .cli import load_model, method_available, model_budgets, resolve_capacity, run_method, solver_noise_to_stderr

    log = log or (lambda s: None)
    budgets, methods = list(budgets), list(methods)
    rows: list[dict] = []
    for model in models:
        base = load_model(model)
        for include_weights in weight_settings:
            g = base.with_weights(include_weights)
            b = model_budgets(g, time_limit=budget_time)
            for budget in budgets:
                cap, _ = resolve_capacity(g, budget, b)
                group = []
                for method in methods:
                    row = {"model": model, "weights": "with" if include_weights else "without",
                           "n_ops": g.n_ops, "budget": budget, "capacity": cap, "m_p_exact": b.m_p_exact,
                           "method": method}
                    ok, why = method_available(method)
                    t0 = time.perf_counter()
                    if not ok:
                        row.update(status="unavailable", message=why)
                    else:
                        try:
                            with solver_noise_to_stderr():
                                r = run_method(g, cap, method, time_limit=time_limit, seed=seed)
                            row.update(status=r.status, traffic=r.traffic, compulsory=r.compulsory,
                                       non_compulsory=r.non_compulsory, lower_bound=r.lower_bound,
                                       gap=round(r.gap, 6), message=r.message)
                        except CosmaError as e:
                            row.update(status="error", message=str(e))
                        except Exception as e:  # a bug in one method must not stop the whole suite
                            row.update(status="error", message=f"{type(e).__name__}: {e}")
                    row["wall_time"] = round(time.perf_counter() - t0, 4)
                    group.append(row)
                    log(f"{model:>16} {row['weights']:>7} {budget} {method:>14}: {row['status']:<11} "
                        f"non-compulsory {_num(row.get('non_compulsory'))} B  {row['wall_time']:.2f}s")
                _add_reduction(group)
                rows.extend(group)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_csv(rows, out / "results.csv")
        write_markdown(rows, out / "results.md", time_limit=time_limit, command=command)
        try:
            plot_bars(rows, out / "results.png")
        except OptionError as e:  # matplotlib missing: the tables are still written
            log(f"no bar chart: {e}")
        log(f"wrote {out / 'results.csv'}, {out / 'results.md'}, {out / 'results.png'}")
    return rows


def _num(v) -> str:
    return "-" if v is None else f"{int(v):,}"


def _solved(row: dict) -> bool:
    return row.get("status") in ("optimal", "feasible")


def _add_reduction(group: list[dict]) -> None:
    """``reduction_vs_best_baseline`` = 1 - nc / best baseline nc (COSMA's metric).

    Undefined (None) where the best baseline already moves 0 non-compulsory bytes: such rows
    cannot show a reduction, and counting them as 0% would dilute the mean.
    """
    base = [r["non_compulsory"] for r in group if r["method"] in BASELINES and _solved(r)]
    best = min(base) if base else None
    for r in group:
        r["best_baseline"] = best
        if best is None or not _solved(r):
            r["reduction_vs_best_baseline"] = None
        elif best == 0:
            r["reduction_vs_best_baseline"] = None
        else:
            r["reduction_vs_best_baseline"] = round(1 - r["non_compulsory"] / best, 6)


def write_csv(rows: list[dict], path: str | Path) -> None:
    """One line per row, columns :data:`COLUMNS` (missing values empty)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})


def _version() -> str:
    from . import __version__

    return __version__


def _mib(v) -> str:
    return "-" if v is None else f"{v / 2**20:.3f}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _git_revision() -> str:
    """Short commit of the source tree (``+dirty`` with local changes), or "unknown"."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (rev + ("+dirty" if dirty else "")) if rev else "unknown"


def write_markdown(rows: list[dict], path: str | Path, *, time_limit: float | None = None,
                   command: str | None = None) -> None:
    """The table of the paper: non-compulsory MiB, reduction vs best baseline, bound, gap, status, time."""
    head = ["model", "weights", "budget", "capacity MiB", "method", "non-compulsory MiB",
            "vs best baseline", "bound MiB", "gap", "status", "wall s"]
    lines = [
        "# cosma_fast benchmark", "",
        f"- date: {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {_machine()}",
        f"- cosma_fast {_version()}, source revision {_git_revision()}",
        *([f"- command: `{command}`"] if command else []),
        f"- time limit per solve: {time_limit if time_limit is not None else 'none'} s",
        "- non-compulsory = traffic - compulsory (DESIGN.md section 1); "
        "\"vs best baseline\" = 1 - ours / best baseline (higher is better); bound = proven lower "
        "bound on non-compulsory bytes; M_P marked * is an upper bound (not proven minimal)", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cap = _mib(r.get("capacity")) + ("" if r.get("budget") != "M_P" or r.get("m_p_exact") else "*")
        cells = [r["model"], r["weights"], r["budget"], cap, r["method"], _mib(r.get("non_compulsory")),
                 _pct(r.get("reduction_vs_best_baseline")), _mib(r.get("lower_bound")),
                 _pct(r.get("gap")), r["status"], f"{r['wall_time']:.2f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += summary_lines(rows)
    notes = [r for r in rows if r["status"] in ("unavailable", "error")]
    if notes:
        lines += ["", "## Not solved", ""]
        lines += [f"- {r['model']} {r['weights']} {r['budget']} {r['method']}: {r['status']}: "
                  f"{str(r.get('message', '')).splitlines()[0] if r.get('message') else ''}" for r in notes]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def summary_lines(rows: list[dict]) -> list[str]:
    """Markdown lines: mean reduction vs best baseline per method and (weights, budget), over the
    models where both the method and a baseline solved (COSMA's "-84% at M_R" is this mean)."""
    panels = list(dict.fromkeys((r["weights"], r["budget"]) for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    if not panels:
        return []
    head = ["method"] + [f"{b} ({'w' if w == 'with' else 'no w'})" for w, b in panels]
    out = ["", "## Mean reduction vs best baseline", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in methods:
        cells = [m]
        for w, b in panels:
            vals = [r["reduction_vs_best_baseline"] for r in rows if (r["method"], r["weights"], r["budget"]) ==
                    (m, w, b) and r.get("reduction_vs_best_baseline") is not None]
            cells.append(f"{100 * sum(vals) / len(vals):.1f}% (n={len(vals)})" if vals else "-")
        out.append("| " + " | ".join(cells) + " |")
    return out


def plot_bars(rows: list[dict], path: str | Path) -> None:
    """Grouped bars like COSMA's Fig. 6: per budget and weight setting, models on x, one bar per
    method, non-compulsory traffic normalised to the best baseline of that model (1 = best baseline,
    0 = no non-compulsory traffic; a gap where the baseline itself is perfect and the method is not)."""
    import numpy as np

    from .viz import _pyplot

    plt = _pyplot()

    panels = list(dict.fromkeys((r["weights"], r["budget"]) for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(len(panels) or 1, 1, figsize=(max(6, 1.2 * len(models) * max(1, len(methods)) / 2 + 3),
                                                          2.8 * max(1, len(panels))), squeeze=False)
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(models))
    try:
        for ax, (weights, budget) in zip(axes[:, 0], panels):
            for k, m in enumerate(methods):
                vals = []
                for model in models:
                    hit = [r for r in rows if (r["model"], r["weights"], r["budget"], r["method"]) ==
                           (model, weights, budget, m) and _solved(r)]
                    best = hit[0].get("best_baseline") if hit else None
                    if not hit or best is None:
                        vals.append(np.nan)
                    elif best == 0:  # nothing to normalise by: 0 when also perfect, else off the chart
                        vals.append(0.0 if hit[0]["non_compulsory"] == 0 else np.nan)
                    else:
                        vals.append(hit[0]["non_compulsory"] / best)
                ax.bar(x + (k - (len(methods) - 1) / 2) * width, vals, width, label=m)
            ax.set_xticks(x, models, rotation=20, ha="right", fontsize=8)
            ax.axhline(1.0, color="black", linewidth=0.6, linestyle=":")
            ax.set_ylabel("non-compulsory /\nbest baseline")
            ax.set_title(f"{budget}, weights {'included' if weights == 'with' else 'excluded'}", fontsize=9)
            ax.legend(fontsize=7, ncol=min(4, len(methods)))
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
