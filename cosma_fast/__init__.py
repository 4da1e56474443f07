"""cosma_fast: joint operator scheduling, scratchpad allocation and tensor
replacement for DNN accelerators, minimising off-chip traffic.

The problem is COSMA's (Li, Gupta, Malik, arXiv 2311.18246); see DESIGN.md.

>>> import cosma_fast as cf
>>> b = cf.GraphBuilder("tiny")
>>> x = b.input("x", 64)
>>> (y,) = b.op("relu", [x], outputs=[("y", 64)])
>>> b.mark_output(y)
>>> g = b.build()
>>> cf.budgets(g).m_r
128
"""

from __future__ import annotations

import importlib

# eager: importing the submodule cosma_fast.allocate would otherwise shadow the lazy function
from .allocate import Allocation, allocate
from .budgets import Budgets, budgets, parse_bytes
from .errors import CosmaError, FormatError, GraphError, InfeasibleError, OptionError, PlanError, SolverError
from .graph import INPUT, INTERMEDIATE, WEIGHT, Graph, GraphBuilder, TensorHandle
from .plan import Plan, Step
from .solve import Result, solve
from .validate import PlanReport, validate

__version__ = "0.1.0"

__all__ = [
    "Graph", "GraphBuilder", "TensorHandle", "INPUT", "WEIGHT", "INTERMEDIATE",
    "Plan", "Step", "validate", "PlanReport", "solve", "Result", "budgets", "Budgets",
    "parse_bytes", "CosmaError", "GraphError", "PlanError", "InfeasibleError", "SolverError",
    "OptionError", "FormatError", "allocate", "Allocation", "from_torch", "from_onnx", "zoo",
    "__version__",
]

# name -> module that defines it; imported on first use (optional extras stay optional)
_LAZY = {
    "allocate": "allocate", "Allocation": "allocate",
    "from_torch": "importers.torch", "from_onnx": "importers.onnx",
    "zoo": "zoo", "trivial_plan": "trivial",
}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = module if name == "zoo" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cosma_fast' has no attribute {name!r}")
