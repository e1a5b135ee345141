"""Softmax and log-softmax along one axis, max-subtracted so that no input overflows."""
from __future__ import annotations

from typing import Any

from .. import backend, kernels
from ..autograd.axes import accepts_dim
from ..autograd import Tensor, exp

__all__ = ["softmax", "log_softmax", "logsumexp_array", "exp_shifted"]


def exp_shifted(x: Any, axis: int, out: Any = None) -> tuple[Any, Any, Any]:
    """(exp(x - max), its sum, logsumexp(x)) along `axis` with keepdims, on a raw array.

    Max-subtracted, so nothing overflows; a row of -inf gives lse -inf instead of NaN.
    The exponentials are written into `out` (x's shape and dtype) when given.
    """
    xp = backend.get_array_module(x)
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    e = xp.subtract(x, m, out=out)
    xp.exp(e, out=e)
    sums = e.sum(axis=axis, keepdims=True)
    return e, sums, m + xp.log(sums)


def logsumexp_array(x: Any, axis: int) -> Any:
    """log(sum(exp(x), axis)) with keepdims, computed stably on a raw array."""
    return exp_shifted(x, axis)[2]


@accepts_dim
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`. Backward: y * (g - sum(g * y))."""
    if kernels.available(x.data) and axis in (-1, x.ndim - 1):
        return _softmax_cuda(x)
    xp = backend.get_array_module(x.data)
    e = xp.exp(x.data - x.data.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)

    def backward(g):
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)

    return Tensor.from_op(y, (x,), backward, _softmax_higher(axis))


def _softmax_higher(axis: int):
    """softmax's rule in tensor ops, y the output: y * (g - sum(g * y))."""
    def higher(g, y):
        return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)
    return higher


def _softmax_cuda(x: Tensor) -> Tensor:
    """softmax over the last axis of a CuPy array that kernels.available accepts: one kernel each way."""
    y = kernels.softmax_forward(x.data)
    return Tensor.from_op(y, (x,), lambda g: (kernels.softmax_backward(y, g),), _softmax_higher(-1))


@accepts_dim
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along `axis`. Backward: g - softmax(x) * sum(g)."""
    if kernels.available(x.data) and axis in (-1, x.ndim - 1):
        return _log_softmax_cuda(x)
    xp = backend.get_array_module(x.data)
    y = x.data - logsumexp_array(x.data, axis)

    def backward(g):
        return (g - xp.exp(y) * g.sum(axis=axis, keepdims=True),)

    return Tensor.from_op(y, (x,), backward, _log_softmax_higher(axis))


def _log_softmax_higher(axis: int):
    """log_softmax's rule in tensor ops, y the output: g - exp(y) * sum(g)."""
    def higher(g, y):
        return (g - exp(y) * g.sum(axis=axis, keepdims=True),)
    return higher


def _log_softmax_cuda(x: Tensor) -> Tensor:
    """log_softmax over the last axis of a CuPy array that kernels.available accepts: one kernel each way."""
    y = kernels.log_softmax_forward(x.data)
    return Tensor.from_op(y, (x,), lambda g: (kernels.log_softmax_backward(y, g),), _log_softmax_higher(-1))
