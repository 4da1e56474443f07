"""Importers from deep-learning frameworks: :func:`from_torch` and :func:`from_onnx`.

Both are optional: ``torch`` and ``onnx`` are imported only when called.
"""

from __future__ import annotations

__all__ = ["from_torch", "from_onnx"]


def from_torch(*args, **kwargs):
    """See :func:`cosma_fast.importers.torch.from_torch`."""
    from .torch import from_torch as f

    return f(*args, **kwargs)


def from_onnx(*args, **kwargs):
    """See :func:`cosma_fast.importers.onnx.from_onnx`."""
    from .onnx import from_onnx as f

    return f(*args, **kwargs)
