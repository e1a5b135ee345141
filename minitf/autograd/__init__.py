"""Reverse-mode autograd: the Tensor (tensor.py) and its ops (ops_*.py), which the table of ops
(op_table.py) binds to Tensor as methods and operators and exports here and from minitf."""
from __future__ import annotations

from . import op_table, versions
from .differentiate import grad
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .graph import sum_to_shape
from .ops_shape import swapaxes, transpose
from .tensor import Tensor, as_array

ENGINE = ["Tensor", "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "as_array",
          "sum_to_shape"]  # exported besides the ops


def _bind_methods() -> None:
    """Attach the ops to Tensor as operators and methods (`x + y`, `x.sum(axis=1)`, ...)."""
    op_table.bind_methods(Tensor)
    Tensor.__hash__ = object.__hash__  # defining __eq__ would otherwise remove it
    Tensor._version = property(lambda self: versions.version(self.data),
                               doc="How many in-place writes the tensor's memory has had (torch's _version).")
    Tensor.T = property(lambda self: transpose(self))
    Tensor.mT = property(_matrix_transpose, doc="Swap the last two axes (torch.Tensor.mT).")


def _matrix_transpose(x: Tensor) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f".mT needs at least 2 dimensions, this tensor has shape {x.shape}")
    return swapaxes(x, -1, -2)


_bind_methods()
globals().update(op_table.exports("autograd"))  # minitf.autograd.exp, .sum, .zeros, ...

__all__ = [*ENGINE, *op_table.exports("autograd")]
