"""Reductions over axes: sum, mean, max, min. `axis` is None, an int (negative allowed) or a tuple."""
from __future__ import annotations

from typing import Any

from .. import backend
from .axes import accepts_dim
from .tensor import Tensor

Axis = Any  # None, int or tuple of ints


def normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints; raises for an axis out of range or repeated."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    result = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        result.append(a % ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(sorted(result))


def _restore(g: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """Give a reduced gradient back its reduced axes (size 1), ready to broadcast."""
    if keepdims or not axes:
        return g
    xp = backend.get_array_module(g)
    return xp.expand_dims(g, axes)


def unreduce(g: Tensor, axes: tuple[int, ...], keepdims: bool, shape: tuple[int, ...]) -> Tensor:
    """The Tensor `g` (a reduction's output or gradient) broadcast back to `shape`: the backward
    of a sum as a differentiable op, whose own backward (and `higher`) is the sum over `axes`."""
    xp = backend.get_array_module(g.data)

    def backward(g2):
        return (g2.sum(axis=axes, keepdims=keepdims),)

    def higher(g2, out):
        return (sum(g2, axis=axes, keepdims=keepdims),)

    return Tensor.from_op(xp.broadcast_to(_restore(g.data, axes, keepdims), shape), (g,), backward, higher)


@accepts_dim
def sum(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    axes = normalize_axes(axis, x.ndim)

    def backward(g):
        xp = backend.get_array_module(g)
        return (xp.broadcast_to(_restore(g, axes, keepdims), x.shape),)

    def higher(g, out):
        return (unreduce(g, axes, keepdims, x.shape),)

    return Tensor.from_op(x.data.sum(axis=axes, keepdims=keepdims), (x,), backward, higher)


@accepts_dim
def mean(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    axes = normalize_axes(axis, x.ndim)
    count = 1
    for a in axes:
        count *= x.shape[a]

    def backward(g):
        xp = backend.get_array_module(g)
        return (xp.broadcast_to(_restore(g, axes, keepdims) / count, x.shape),)

    def higher(g, out):
        return (unreduce(g / count, axes, keepdims, x.shape),)

    return Tensor.from_op(x.data.mean(axis=axes, keepdims=keepdims), (x,), backward, higher)


@accepts_dim
def max(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over axes. Tied maxima share the gradient equally (as torch.amax)."""
    axes = normalize_axes(axis, x.ndim)
    if x.size == 0:
        raise ValueError(f"max of an empty tensor (shape {x.shape})")
    out = x.data.max(axis=axes, keepdims=True)

    def backward(g):
        is_max = (x.data == out).astype(x.dtype)
        share = is_max / is_max.sum(axis=axes, keepdims=True)
        return (share * _restore(g, axes, keepdims),)

    def higher(g, result):  # the shares are constant (piecewise linear)
        is_max = (x.data == out).astype(x.dtype)
        return (unreduce(g, axes, keepdims, x.shape) * (is_max / is_max.sum(axis=axes, keepdims=True)),)

    result = out if keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in axes])
    return Tensor.from_op(result, (x,), backward, higher)


@accepts_dim
def min(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over axes. Tied minima share the gradient equally."""
    return -max(-x, axis=axis, keepdims=keepdims)


@accepts_dim
def all(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Whether every entry along the axes is nonzero (a bool tensor; no gradient), as torch.all."""
    return Tensor(x.data.astype(bool).all(axis=normalize_axes(axis, x.ndim), keepdims=keepdims))


@accepts_dim
def any(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Whether some entry along the axes is nonzero (a bool tensor; no gradient), as torch.any."""
    return Tensor(x.data.astype(bool).any(axis=normalize_axes(axis, x.ndim), keepdims=keepdims))


@accepts_dim
def amax(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """torch.amax: max (values only; tied maxima share the gradient)."""
    return max(x, axis, keepdims)


@accepts_dim
def amin(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """torch.amin: min (values only; tied minima share the gradient)."""
    return min(x, axis, keepdims)
