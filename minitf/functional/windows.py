"""Sliding windows over the last two axes, shared by convolution and pooling.

A window op reads, for every output position (oh, ow) and kernel offset (i, j), the input
element at (oh * stride + i * dilation, ow * stride + j * dilation) of the padded input.
`window_view` exposes all of them as one strided view (no copy); `offset_slices` gives, per
kernel offset, the strided slice of the padded input that the offset touches over all
output positions, which is how gradients are scattered back (one vectorised add per offset).

`linear_op` makes a node of a linear map whose gradient is its transpose (pooling's backward,
the per-channel sums of biases and statistics): its differentiable rule is the transpose's node,
whose own rule is the map again, so gradients of any order go through (create_graph).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterator

from typing import Callable

from .. import backend
from ..autograd import Tensor

Pair = tuple[int, int]


def pair(value: Any, name: str, op: str, minimum: int) -> Pair:
    """An int or a 2-sequence of ints as a pair, each at least `minimum`."""
    def is_int(v: Any) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    values = (value, value) if is_int(value) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(values) != 2 or not all(is_int(v) for v in values):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    values = (int(values[0]), int(values[1]))
    if min(values) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return values  # type: ignore[return-value]


def output_size(size: int, kernel: int, stride: int, dilation: int, pad: int, ceil: bool = False) -> int:
    """Number of window positions along one axis of length `size` padded by `pad` in total."""
    span = size + pad - dilation * (kernel - 1) - 1
    return (math.ceil(span / stride) if ceil else span // stride) + 1


def window_view(x: Any, kernel: Pair, stride: Pair, dilation: Pair, out: Pair) -> Any:
    """View (..., KH, KW, OH, OW) of x (..., H, W): element x[..., oh*sh + i*dh, ow*sw + j*dw]."""
    xp = backend.get_array_module(x)
    *lead, sh_, sw_ = x.strides
    strides = (*lead, sh_ * dilation[0], sw_ * dilation[1], sh_ * stride[0], sw_ * stride[1])
    return xp.lib.stride_tricks.as_strided(x, (*x.shape[:-2], *kernel, *out), strides)


def offset_slices(kernel: Pair, stride: Pair, dilation: Pair, out: Pair) -> Iterator[tuple[int, int, tuple]]:
    """(i, j, index) per kernel offset: x[index] is (..., OH, OW), the elements offset (i, j) reads."""
    for i in range(kernel[0]):
        rows = slice(i * dilation[0], i * dilation[0] + stride[0] * (out[0] - 1) + 1, stride[0])
        for j in range(kernel[1]):
            cols = slice(j * dilation[1], j * dilation[1] + stride[1] * (out[1] - 1) + 1, stride[1])
            yield i, j, (Ellipsis, rows, cols)


def pad2d(x: Any, pads: tuple[int, int, int, int], value: float = 0.0) -> Any:
    """x (..., H, W) padded by (top, bottom, left, right) with `value`; x itself when no padding."""
    if not any(pads):
        return x
    xp = backend.get_array_module(x)
    top, bottom, left, right = pads
    h, w = x.shape[-2:]
    out = xp.full((*x.shape[:-2], h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[..., top:top + h, left:left + w] = x
    return out


def unpad2d(x: Any, pads: tuple[int, int, int, int]) -> Any:
    """The inverse of pad2d: the interior of x (a view)."""
    top, bottom, left, right = pads
    return x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]


# ---- linear maps as nodes (create_graph) ------------------------------------------------------

def linear_op(x: Tensor, forward: Callable[[Any], Any], adjoint: Callable[[Any], Any]) -> Tensor:
    """forward(x) as a node, for a linear array map `forward` whose transpose is `adjoint`: the
    gradient is adjoint(g), and its differentiable rule the node linear_op(g, adjoint, forward)."""
    def backward(g):
        return (adjoint(g),)

    def higher(g, out):
        return (linear_op(g, adjoint, forward),)

    return Tensor.from_op(forward(x.data), (x,), backward, higher)


def _broadcast(v: Any, view: tuple[int, ...], shape: tuple[int, ...]) -> Any:
    xp = backend.get_array_module(v)
    return xp.ascontiguousarray(xp.broadcast_to(v.reshape(view), shape))


def channel_sum(x: Tensor) -> Tensor:
    """x (N, C, ...) summed over all axes but the channels: (C,), differentiable to any order."""
    shape, axes = x.shape, (0,) + tuple(range(2, x.ndim))
    view = (1, shape[1]) + (1,) * (x.ndim - 2)
    return linear_op(x, lambda a: a.sum(axis=axes), lambda v: _broadcast(v, view, shape))


def channel_broadcast(v: Tensor, shape: tuple[int, ...]) -> Tensor:
    """v (C,) repeated along the other axes of `shape` (N, C, ...): the transpose of channel_sum."""
    axes, view = (0,) + tuple(range(2, len(shape))), (1, shape[1]) + (1,) * (len(shape) - 2)
    return linear_op(v, lambda a: _broadcast(a, view, shape), lambda g: g.sum(axis=axes))


def group_sum(x: Tensor, groups: int) -> Tensor:
    """x (N, C, ...) summed over each group of C/groups channels and all positions: (N, groups)."""
    shape, grouped = x.shape, (x.shape[0], groups, -1)
    return linear_op(x, lambda a: a.reshape(grouped).sum(axis=2),
                     lambda v: _broadcast(v, (*v.shape, 1), (*v.shape, x.size // v.size)).reshape(shape))


def group_broadcast(s: Tensor, shape: tuple[int, ...]) -> Tensor:
    """s (N, groups) repeated over each group's channels and positions of `shape`: group_sum's transpose."""
    n, groups = s.shape
    size = 1
    for d in shape:
        size *= d
    return linear_op(s, lambda a: _broadcast(a, (n, groups, 1), (n, groups, size // (n * groups))).reshape(shape),
                     lambda g: g.reshape(n, groups, -1).sum(axis=2))
