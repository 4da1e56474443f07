"""The cosma-fast command line: every command on the bundled example, the error paths,
the picture and a bench smoke run. Commands run in-process through ``cli.main``."""

from __future__ import annotations

import csv
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cosma_fast as cf
from cosma_fast import cli
from cosma_fast.cli import load_model, main, method_available

M_R_EXAMPLE = 32768  # stem.relu: 16 KiB in + 16 KiB out


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("note:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def example():
    return load_model("example")


@pytest.fixture()
def plan_file(tmp_path, capsys):
    path = tmp_path / "plan.json"
    code, _, _ = run(capsys, "plan", "example", "--capacity", "M_R", "--method", "trivial", "--out", str(path))
    assert code == 0
    return path


# ---------------------------------------------------------------------- plan
def test_example_graph_is_interesting(example):
    """The bundled example has weights, a residual and a branch, and M_R < M_P."""
    b = cf.budgets(example)
    assert 10 <= example.n_ops <= 20
    assert (example.tensor_kind == cf.WEIGHT).any()
    assert b.m_r == M_R_EXAMPLE and b.m_p > b.m_r
    assert max(len(example.consumers_of(t)) for t in range(example.n_tensors)) >= 2


def test_plan_prints_budgets_traffic_and_writes_files(tmp_path, capsys, example):
    out_json, png = tmp_path / "p.json", tmp_path / "p.png"
    code, out, err = run(capsys, "plan", "example", "-c", "M_R", "-m", "trivial", "--out", str(out_json),
                         "--png", str(png))
    assert code == 0, err
    b = cf.budgets(example)
    for text in (f"M_R = {b.m_r:,} B", f"M_H = {b.m_h:,} B", f"M_P = {b.m_p:,} B", "compulsory",
                 "non-compulsory", "gap", "status", "solve time"):
        assert text in out
    assert ("[exact]" if b.m_p_exact else "[upper bound]") in out
    doc = json.loads(out_json.read_text())
    assert doc["capacity"] == b.m_r and doc["model"] == "example"
    plan = cf.Plan.from_dict(example, doc)
    rep = cf.validate(example, plan, b.m_r)
    assert f"non-compulsory  {rep.non_compulsory:,} B" in out
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000


def test_plan_byte_capacity_and_no_weights(tmp_path, capsys, example):
    code, out, err = run(capsys, "plan", "example", "-c", "64KiB", "-m", "trivial", "--no-weights",
                         "--out", str(tmp_path / "p.json"))
    assert code == 0, err
    assert "65,536 B" in out and "activations only" in out
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["include_weights"] is False
    # the plan indexes the activation-only graph: check reads it back that way
    code, out, err = run(capsys, "check", "example", str(tmp_path / "p.json"))
    assert code == 0, err
    rep = cf.validate(example.activation_only(), cf.Plan.from_dict(example.activation_only(), doc), 65536)
    assert f"{rep.traffic:,} B" in out


@pytest.mark.parametrize("method", ["heuristic", "baseline", "baseline-mpmf"])
def test_plan_with_solver_methods(capsys, method):
    ok, why = method_available(method)
    if not ok:
        pytest.skip(why)
    code, out, err = run(capsys, "plan", "example", "-c", "M_H", "-m", method, "--time-limit", "5")
    assert code == 0, err
    assert f"method     {method}" in out


def test_default_method_runs_and_falls_back(capsys, monkeypatch):
    """Without --method the CLI uses auto, and says so when it must fall back."""
    monkeypatch.setitem(cf.solve.__globals__["METHODS"], "auto", "no_such_module:solve")
    code, out, err = run(capsys, "plan", "example", "-c", "M_R")
    assert code == 0, err
    assert "falling back" in err and "'auto'" in err
    expected = "heuristic" if method_available("heuristic")[0] else "trivial"
    assert f"method     {expected}" in out


def test_progress_callback_is_printed(capsys, monkeypatch):
    """Incumbent/bound updates a method reports reach stderr."""
    real = cli.run_method

    def fake(g, cap, method, **kw):
        kw["progress"]({"incumbent": 4096, "bound": 1024, "gap": 0.75, "time": 0.5})
        return real(g, cap, "trivial")

    monkeypatch.setattr(cli, "run_method", fake)
    code, _, err = run(capsys, "plan", "example", "-c", "M_R", "-m", "trivial")
    assert code == 0
    assert "incumbent 4,096 B" in err and "bound 1,024 B" in err and "gap 75.00%" in err


def test_progress_heartbeat_on_a_terminal():
    """On a terminal a silent solve still shows elapsed time; the line is redrawn in place."""
    import io
    import time

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    printer = cli._ProgressPrinter(stream, label="solving with 'ilp'", heartbeat=0.05)
    time.sleep(0.3)
    printer({"incumbent": 10, "bound": 5, "gap": 0.5, "time": 0.3})
    printer.close()
    text = stream.getvalue()
    assert "solving with 'ilp' ..." in text and "incumbent 10 B" in text
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("argv, needle", [
    (["plan", "example", "-c", "12XB"], "cannot read '12XB'"),
    (["plan", "example", "-c", "-5"], "cannot read '-5'"),
    (["plan", "example", "-c", "0"], "capacity must be positive"),
    (["plan", "no/such/graph.json", "-c", "M_R"], "does not exist"),
    (["plan", "missing.onnx", "-c", "M_R"], "does not exist"),
    (["plan", "example", "-c", "1000"], "'stem.relu'"),
    (["plan", "example"], "--capacity"),
    (["plan", "example", "-c", "M_R", "-m", "magic"], "invalid choice"),
    (["plan", "example", "-c", "M_R", "--time-limit", "-1"], "positive"),
    (["check", "example", "no_such_plan.json", "-c", "M_R"], "does not exist"),
    (["show", "no_such_plan.json", "--png", "x.png"], "does not exist"),
    (["allocate", "no_such.csv", "-c", "1MiB"], "no_such.csv"),
    (["bench", "--budgets", "M_X"], "M_X"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_give_one_line_and_exit_2(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in _one_line_error(err)


def test_capacity_below_m_r_names_operator_and_shortfall(capsys):
    code, _, err = run(capsys, "plan", "example", "-c", str(M_R_EXAMPLE - 1), "-m", "trivial")
    line = _one_line_error(err)
    assert code == 2 and "'stem.relu'" in line and "1 more" in line


def test_unavailable_method_is_one_clear_error(capsys, monkeypatch):
    monkeypatch.setitem(cf.solve.__globals__["METHODS"], "ilp", "no_such_module:solve_ilp")
    code, _, err = run(capsys, "plan", "example", "-c", "M_R", "-m", "ilp")
    assert code == 2 and "not available" in _one_line_error(err)


def test_malformed_graph_file(tmp_path, capsys):
    bad = tmp_path / "g.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "plan", str(bad), "-c", "M_R")
    assert code == 2 and "malformed" in _one_line_error(err)


# ---------------------------------------------------------------------- check
def test_check_valid_plan(plan_file, capsys, example):
    code, out, err = run(capsys, "check", "example", str(plan_file), "--capacity", "M_R")
    assert code == 0, err
    rep = cf.validate(example, cf.Plan.from_json(example, plan_file), M_R_EXAMPLE)
    assert "valid plan" in out and f"{rep.non_compulsory:,} B" in out


@pytest.mark.parametrize("method", ["trivial", "heuristic"])
def test_plan_with_alignment_writes_a_plan_check_reads_with_it(tmp_path, capsys, example, method):
    from cosma_fast.budgets import aligned_footprint

    path = tmp_path / "aligned.json"
    cap = int(aligned_footprint(example, 64).max())
    code, out, err = run(capsys, "plan", "example", "-c", str(cap), "-m", method, "--alignment", "64",
                         "--out", str(path))
    assert code == 0, err
    assert "multiples of 64" in out
    doc = json.loads(path.read_text())
    assert doc["alignment"] == 64
    cf.validate(example, cf.Plan.from_json(example, path), cap, alignment=64)
    code, out, err = run(capsys, "check", "example", str(path))  # the file's alignment
    assert code == 0 and "valid plan" in out, err
    code, out, err = run(capsys, "check", "example", str(path), "--alignment", "128")
    assert code != 0 and "alignment" in _one_line_error(err)


def test_plan_with_alignment_below_the_aligned_footprint_names_the_operator(capsys, example):
    from cosma_fast.budgets import aligned_footprint, m_r

    foot = aligned_footprint(example, 1000)
    assert foot.max() > m_r(example)  # only the alignment makes it infeasible
    code, _, err = run(capsys, "plan", "example", "-c", str(int(foot.max()) - 1), "--alignment", "1000")
    line = _one_line_error(err)
    assert code != 0 and "alignment 1000" in line and example.op_names[int(foot.argmax())] in line
    assert f"at least {int(foot.max())} bytes" in line


def test_check_corrupt_plan_names_rule(plan_file, capsys):
    doc = json.loads(plan_file.read_text())
    doc["steps"][1]["load"] = []  # relu runs without its input
    plan_file.write_text(json.dumps(doc))
    code, _, err = run(capsys, "check", "example", str(plan_file))
    line = _one_line_error(err)
    assert code == 1 and "INVALID" in line and "[rule:" in line and "step 1" in line


def test_check_address_outside_scratchpad(plan_file, capsys):
    """A plan made for M_R is also valid on a larger scratchpad; an address beyond it is not."""
    code, _, err = run(capsys, "check", "example", str(plan_file), "-c", str(M_R_EXAMPLE + 1))
    assert code == 0, err
    doc = json.loads(plan_file.read_text())
    doc["steps"][0]["load"][0][1] += 10**6  # outside the scratchpad
    plan_file.write_text(json.dumps(doc))
    code, _, err = run(capsys, "check", "example", str(plan_file))
    assert code == 1 and "[rule:" in _one_line_error(err)


def test_check_plan_for_another_graph(plan_file, capsys, tmp_path):
    b = cf.GraphBuilder("other")
    x = b.input("x", 8)
    b.op("a", [x], outputs=[("y", 8)])
    other = tmp_path / "other.json"
    b.build().to_json(other)
    code, _, err = run(capsys, "check", str(other), str(plan_file), "-c", "64")
    assert code == 2 and "does not have" in _one_line_error(err)


# ---------------------------------------------------------------------- show
def test_show_draws_png(plan_file, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "show.png"
    code, out, err = run(capsys, "show", str(plan_file), "--model", "example", "--png", str(png))
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000


def test_show_refuses_invalid_plan(plan_file, capsys, tmp_path):
    doc = json.loads(plan_file.read_text())
    doc["steps"][0]["alloc"] = []
    plan_file.write_text(json.dumps(doc))
    code, _, err = run(capsys, "show", str(plan_file), "--png", str(tmp_path / "x.png"))
    assert code == 1 and "[rule:" in _one_line_error(err)
    assert not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------------- allocate
def _allocate_available():
    allocate = pytest.importorskip("cosma_fast.allocate", reason="cosma_fast.allocate is not in this build")
    if not hasattr(allocate, "allocate_csv"):
        pytest.skip("cosma_fast.allocate has no allocate_csv")


def test_allocate_csv(tmp_path, capsys):
    """Three buffers, max live 8 bytes: packed within 8, no two live buffers overlap."""
    _allocate_available()
    src = tmp_path / "buffers.csv"
    src.write_text("id,lower,upper,size\nb0,0,2,4\nb1,1,3,4\nb2,2,4,4\n")
    out = tmp_path / "out.csv"
    code, stdout, err = run(capsys, "allocate", str(src), "-c", "8", "--out", str(out), "--time-limit", "5")
    assert code == 0, err
    assert "max live   8 B" in stdout
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == ["b0", "b1", "b2"]
    spans = [(int(r["lower"]), int(r["upper"]), int(r["offset"]), int(r["offset"]) + int(r["size"])) for r in rows]
    assert all(0 <= a0 and a1 <= 8 for _, _, a0, a1 in spans)
    for i, (l1, u1, a1, b1) in enumerate(spans):
        for l2, u2, a2, b2 in spans[i + 1:]:
            assert not (l1 < u2 and l2 < u1 and a1 < b2 and a2 < b1)


def test_allocate_does_not_fit(tmp_path, capsys):
    _allocate_available()
    src = tmp_path / "buffers.csv"
    src.write_text("id,lower,upper,size\nb0,0,2,4\nb1,1,3,4\n")
    code, _, err = run(capsys, "allocate", str(src), "-c", "7", "--time-limit", "5")
    assert code == 1 and "no packing exists within 7 bytes" in _one_line_error(err)


# ---------------------------------------------------------------------- bench
def test_bench_smoke_table(tmp_path, capsys):
    methods = ["trivial", "baseline" if method_available("baseline")[0] else "heuristic"]
    if not method_available(methods[1])[0]:
        pytest.skip("neither baseline nor heuristic is in this build")
    out = tmp_path / "bench"
    code, stdout, err = run(capsys, "bench", "--models", "example", "--budgets", "M_R", "--methods",
                            ",".join(methods), "--time-limit", "5", "--out", str(out))
    assert code == 0, err
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["method"] for r in rows] == methods
    for r in rows:
        assert r["model"] == "example" and r["budget"] == "M_R" and int(r["capacity"]) == M_R_EXAMPLE
        assert r["status"] in ("optimal", "feasible")
        assert int(r["traffic"]) == int(r["compulsory"]) + int(r["non_compulsory"])
        assert 0 <= int(r["lower_bound"]) <= int(r["non_compulsory"])
    best = min(int(r["non_compulsory"]) for r in rows)  # both count as baselines here
    assert all(int(r["best_baseline"]) == best for r in rows)
    table = (out / "results.md").read_text().splitlines()
    start = next(i for i, ln in enumerate(table) if ln.startswith("| model"))
    body = table[start:start + 2 + len(rows)]
    assert set(body[1].replace("|", "")) == {"-"}
    widths = {ln.count("|") for ln in body}
    assert widths == {12}  # 11 columns
    for ln, r in zip(body[2:], rows):
        assert r["method"] in ln
    assert "machine:" in "\n".join(table) and "- command: `cosma-fast bench --models example" in "\n".join(table)
    mean = next(i for i, ln in enumerate(table) if ln.startswith("## Mean reduction"))
    trivial_row = next(ln for ln in table[mean:] if ln.startswith("| trivial |"))
    red = float(rows[0]["reduction_vs_best_baseline"])
    assert f"{100 * red:.1f}% (n=1)" in trivial_row
    png = (out / "results.png").read_bytes()
    assert png[:4] == b"\x89PNG"


def test_bench_records_unavailable_methods(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(cf.solve.__globals__["METHODS"], "ilp", "no_such_module:solve_ilp")
    code, _, err = run(capsys, "bench", "--models", "example", "--budgets", "M_R", "--methods", "trivial", "ilp",
                       "--time-limit", "5", "--out", str(tmp_path))
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert rows[0]["status"] in ("optimal", "feasible") and rows[1]["status"] == "unavailable"
    assert "Not solved" in (tmp_path / "results.md").read_text()


def test_bench_both_weight_settings(tmp_path, capsys, example):
    code, _, err = run(capsys, "bench", "--models", "example", "--budgets", "M_R,M_P", "--methods", "trivial",
                       "--weights", "both", "--out", str(tmp_path))
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [(r["weights"], r["budget"]) for r in rows] == [("with", "M_R"), ("with", "M_P"),
                                                          ("without", "M_R"), ("without", "M_P")]
    no_w = cf.budgets(example.activation_only())
    assert int(rows[2]["capacity"]) == no_w.m_r and int(rows[3]["capacity"]) == no_w.m_p
    assert int(rows[2]["compulsory"]) == example.activation_only().compulsory() < int(rows[0]["compulsory"])


# ---------------------------------------------------------------------- other models
def test_plan_gzipped_graph_file(tmp_path, capsys, example):
    path = tmp_path / "g.json.gz"
    example.to_json(path)
    code, out, err = run(capsys, "plan", str(path), "-c", "M_R", "-m", "trivial")
    assert code == 0, err
    assert f"{example.n_ops} operators" in out



def test_plan_zoo_model(capsys):
    zoo = pytest.importorskip("cosma_fast.zoo", reason="cosma_fast.zoo is not in this build")
    names = sorted(zoo.names(), key=lambda n: zoo.load(n).n_ops)
    code, out, err = run(capsys, "plan", names[0], "-c", "M_H", "-m", "trivial", "--budget-time", "2")
    assert code == 0, err
    assert "non-compulsory" in out


def test_plan_onnx_file(capsys):
    pytest.importorskip("cosma_fast.importers.onnx", reason="ONNX importer is not in this build")
    onnx = pytest.importorskip("onnx")
    path = Path(onnx.__file__).parent / "backend/test/data/light/light_squeezenet.onnx"
    if not path.exists():
        pytest.skip(f"{path} is not shipped with this onnx")
    code, out, err = run(capsys, "plan", str(path), "-c", "M_R", "-m", "trivial", "--budget-time", "2")
    assert code == 0, err
    assert "light_squeezenet" in out


# ---------------------------------------------------------------------- console script
def test_console_script_quick_start(tmp_path):
    """The README quick start: ``cosma-fast plan example --capacity M_R``."""
    exe = shutil.which("cosma-fast")
    cmd = [exe] if exe else [sys.executable, "-m", "cosma_fast.cli"]
    proc = subprocess.run([*cmd, "plan", "example", "--capacity", "M_R"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "non-compulsory" in proc.stdout and "M_R" in proc.stdout
    assert "HiGHS" not in proc.stdout  # native solver banners go to stderr; stdout is the report
    bad = subprocess.run([*cmd, "plan", "example", "--capacity", "lots"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.count("\n") == 1


def test_module_importable_without_matplotlib_import():
    """The command line itself does not import matplotlib (it is an optional extra)."""
    code = "import sys, cosma_fast.cli, cosma_fast.viz, cosma_fast.benchsuite; print('matplotlib' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr
    importlib.import_module("cosma_fast.cli")
