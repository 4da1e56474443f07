"""The one exception hierarchy of cosma_fast.

Every public entry point raises a subclass of :class:`CosmaError`; the message
names the offending operator or tensor and says how to fix the input.
"""

from __future__ import annotations

__all__ = [
    "CosmaError",
    "GraphError",
    "PlanError",
    "InfeasibleError",
    "SolverError",
    "OptionError",
    "FormatError",
]


class CosmaError(Exception):
    """Base class of every error raised by cosma_fast."""


class GraphError(CosmaError, ValueError):
    """The dataflow graph is malformed (cycle, double producer, bad size, ...)."""


class PlanError(CosmaError, ValueError):
    """A plan breaks a rule of DESIGN.md section 1.

    Attributes ``step``, ``tensor`` and ``rule`` say where and what; ``step`` is
    the schedule position (``len(plan.steps)`` for the final stores) or None.
    """

    def __init__(self, message: str, *, step: int | None = None,
                 tensor: str | None = None, rule: str | None = None):
        super().__init__(message)
        self.step = step
        self.tensor = tensor
        self.rule = rule


class InfeasibleError(CosmaError, ValueError):
    """No plan exists for this capacity (for example capacity below ``M_R``)."""


class SolverError(CosmaError, RuntimeError):
    """A solver failed in a way that left no valid plan to return."""


class OptionError(CosmaError, ValueError):
    """An option has a value outside its documented range."""


class FormatError(CosmaError, ValueError):
    """A file or JSON document is malformed or has an unknown schema version."""
