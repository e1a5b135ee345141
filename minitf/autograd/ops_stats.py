"""Reductions built on sums and maxima: logsumexp, var, std, norm (forward and backward).

`axis` is None (all axes), an int (negative allowed) or a tuple; `dim=` is its alias.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend
from .axes import accepts_dim
from .ops_math import exp
from .ops_reduce import _restore, mean, normalize_axes, unreduce
from .ops_shape import where
from .tensor import Tensor

Axis = Any  # None, int or tuple of ints


def _squeeze(out: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """A keepdims=True result with its reduced axes dropped unless keepdims."""
    if keepdims or not axes:
        return out
    return out.reshape([n for i, n in enumerate(out.shape) if i not in axes])


@accepts_dim
def logsumexp(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over axes, shifted by the maximum so that it never overflows.

    A row of -inf gives -inf and a zero gradient (PyTorch gives NaN there); a row with +inf
    gives +inf.
    """
    axes = normalize_axes(axis, x.ndim)
    xp = backend.get_array_module(x.data)
    if x.size == 0:
        raise ValueError(f"logsumexp of an empty tensor (shape {x.shape})")
    shift = x.data.max(axis=axes, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0)
    with np.errstate(divide="ignore"):  # log(0) = -inf for a row of -inf
        out = xp.log(xp.exp(x.data - shift).sum(axis=axes, keepdims=True)) + shift

    def backward(g):
        finite = ~xp.isneginf(out)
        softmax = xp.exp(x.data - xp.where(finite, out, 0)) * finite
        return (softmax * _restore(g, axes, keepdims),)

    def higher(g, result):  # softmax = exp(x - logsumexp), of tensors
        total = unreduce(result, axes, keepdims, x.shape)
        finite = ~xp.isneginf(out)
        if finite.all():
            softmax = exp(x - total)
        else:  # rows of -inf: a zero gradient, kept out of the arithmetic (-inf - -inf is NaN)
            softmax = where(finite, exp(where(finite, x, 0.0) - where(finite, total, 0.0)), 0.0)
        return (softmax * unreduce(g, axes, keepdims, x.shape),)

    return Tensor.from_op(_squeeze(out, axes, keepdims), (x,), backward, higher)


def _ddof(ddof: Any, correction: Any, op: str) -> int:
    """NumPy's ddof= or PyTorch's correction= (0 unless given: NumPy's default)."""
    if correction is not None and ddof is not None and correction != ddof:
        raise TypeError(f"{op}: ddof={ddof!r} and its alias correction={correction!r} disagree")
    value = ddof if ddof is not None else (correction if correction is not None else 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{op}: ddof (correction) must be a non-negative int, got {value!r}")
    return value


def _variance(x: Tensor, axis: Axis, ddof: Any, correction: Any,
              op: str) -> tuple[tuple[int, ...], int, Any, Any]:
    """(axes, N - ddof, x - mean, variance with keepdims) for var and std."""
    axes = normalize_axes(axis, x.ndim)
    ddof = _ddof(ddof, correction, op)
    dof = math.prod(x.shape[a] for a in axes) - ddof
    if dof <= 0:
        raise ValueError(f"{op}: {dof + ddof} element(s) over axis {axis} "
                         f"leave no degrees of freedom with ddof={ddof}")
    centred = x.data - x.data.mean(axis=axes, keepdims=True)
    return axes, dof, centred, (centred * centred).sum(axis=axes, keepdims=True) / dof


def _centred(x: Tensor, axes: tuple[int, ...]) -> Tensor:
    """x - mean(x) over axes, as a tensor."""
    return x - mean(x, axis=axes, keepdims=True)


def _inverse(result: Tensor, scale: int) -> Tensor:
    """1 / (scale * result) where result > 0, else 0, as a tensor (result is a std or a norm)."""
    positive = (result.data > 0).astype(result.dtype)
    return positive / ((result * positive + (1 - positive)) * scale)


@accepts_dim
def var(x: Tensor, axis: Axis = None, keepdims: bool = False, *, ddof: int | None = None,
        correction: int | None = None) -> Tensor:
    """Variance over axes: sum((x - mean)^2) / (N - ddof). ddof=0 by default (NumPy's;
    PyTorch's default is correction=1). Raises when N - ddof <= 0."""
    axes, dof, centred, out = _variance(x, axis, ddof, correction, "var")

    def backward(g):
        return (_restore(g, axes, keepdims) * (2 / dof) * centred,)

    def higher(g, result):
        return (unreduce(g, axes, keepdims, x.shape) * (2 / dof) * _centred(x, axes),)

    return Tensor.from_op(_squeeze(out, axes, keepdims), (x,), backward, higher)


@accepts_dim
def std(x: Tensor, axis: Axis = None, keepdims: bool = False, *, ddof: int | None = None,
        correction: int | None = None) -> Tensor:
    """Standard deviation over axes: sqrt(var(x, axis, ddof=ddof)), ddof=0 by default.

    Where the standard deviation is 0 (all values equal) the gradient is 0, as in PyTorch.
    """
    axes, dof, centred, variance = _variance(x, axis, ddof, correction, "std")
    xp = backend.get_array_module(x.data)
    out = xp.sqrt(variance)

    def backward(g):
        scale = xp.where(out > 0, 1 / (dof * xp.where(out > 0, out, 1)), 0)
        return (_restore(g, axes, keepdims) * scale * centred,)

    def higher(g, result):
        return (unreduce(g * _inverse(result, dof), axes, keepdims, x.shape) * _centred(x, axes),)

    return Tensor.from_op(_squeeze(out, axes, keepdims), (x,), backward, higher)


@accepts_dim
def norm(x: Tensor, p: float = 2, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Vector p-norm over axes (all of them by default), p in {1, 2, inf}, as
    torch.linalg.vector_norm (not NumPy's matrix norms for 2-D axes).

    Gradients: p=2 gives x / norm and 0 where the norm is 0; p=1 gives sign(x) (0 at 0);
    p=inf gives sign(x) at the maximal |x|, tied maxima sharing equally.
    """
    if p not in (1, 2, math.inf):
        raise ValueError(f"norm: p must be 1, 2 or inf, got {p!r}")
    axes = normalize_axes(axis, x.ndim)
    xp = backend.get_array_module(x.data)
    magnitude = xp.abs(x.data)
    if p == 1:
        out = magnitude.sum(axis=axes, keepdims=True)
    elif p == 2:
        out = xp.sqrt((x.data * x.data).sum(axis=axes, keepdims=True))
    else:
        if x.size == 0:
            raise ValueError(f"norm(p=inf) of an empty tensor (shape {x.shape})")
        out = magnitude.max(axis=axes, keepdims=True)

    def backward(g):
        g = _restore(g, axes, keepdims)
        if p == 1:
            return (g * xp.sign(x.data),)
        if p == 2:
            return (g * x.data / xp.where(out > 0, out, 1),)
        is_max = (magnitude == out).astype(g.dtype)
        return (g * xp.sign(x.data) * is_max / is_max.sum(axis=axes, keepdims=True),)

    def higher(g, result):
        if p == 2:
            return (unreduce(g * _inverse(result, 1), axes, keepdims, x.shape) * x,)
        slope = xp.sign(x.data)  # p = 1; p = inf: at the maximal |x|, shared (constants)
        if p != 1:
            is_max = (magnitude == out).astype(x.dtype)
            slope = slope * is_max / is_max.sum(axis=axes, keepdims=True)
        return (unreduce(g, axes, keepdims, x.shape) * slope,)

    return Tensor.from_op(_squeeze(out, axes, keepdims), (x,), backward, higher)
