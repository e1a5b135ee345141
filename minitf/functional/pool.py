"""Pooling over the last two axes of (N, C, H, W) or (C, H, W), each one fused node.

Max and average pooling loop over the kernel offsets: each offset is one strided slice of
the padded input covering every output position (a vectorised maximum or add), and the
backward scatters the gradient through the same slices. Adaptive average pooling is two
small averaging matrices, out = A_h @ x @ A_w.T, so its backward is A_h.T @ g @ A_w.

Each backward is linear in g with constant coefficients (max pooling: the first maximum of each
window, a fixed index set), so its differentiable rule is windows.linear_op of the backward and
its transpose (the pooling itself; for max pooling, reading the cotangent at the maxima).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend
from ..autograd import Tensor
from .windows import Pair, linear_op, offset_slices, output_size, pad2d, pair, unpad2d

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


def _check_input(op: str, x: Tensor) -> None:
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: input must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {x.dtype}")


def pool_geometry(op: str, shape: tuple[int, ...], kernel_size: Any, stride: Any, padding: Any,
                  dilation: Any, ceil_mode: bool) -> tuple[Pair, Pair, Pair, tuple[int, int, int, int], Pair]:
    """(kernel, stride, dilation, (top, bottom, left, right) pads, output size) as PyTorch computes
    them; with ceil_mode the bottom/right pad grows to cover the last, partial window."""
    kernel = pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else pair(stride, "stride", op, 1)
    pad, dilation = pair(padding, "padding", op, 0), pair(dilation, "dilation", op, 1)
    if any(p > (d * (k - 1) + 1) // 2 for p, d, k in zip(pad, dilation, kernel)):
        raise ValueError(f"{op}: padding {pad} must be at most half the kernel {kernel} "
                         f"(dilation {dilation}), as in PyTorch")
    out, extra = [], []
    for size, k, s, d, p in zip(shape[-2:], kernel, stride, dilation, pad):
        n = output_size(size, k, s, d, 2 * p, ceil_mode)
        if ceil_mode and (n - 1) * s >= size + p:  # the last window would start in the padding
            n -= 1
        if n < 1:
            raise ValueError(f"{op}: kernel {kernel} with dilation {dilation} is larger than the "
                             f"padded input ({shape[-2] + 2 * pad[0]}, {shape[-1] + 2 * pad[1]})")
        out.append(n)
        extra.append(max(0, (n - 1) * s + d * (k - 1) + 1 - (size + 2 * p)))
    pads = (pad[0], pad[0] + extra[0], pad[1], pad[1] + extra[1])
    return kernel, stride, dilation, pads, (out[0], out[1])


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> Tensor:
    """Maximum over each window, as torch.nn.functional.max_pool2d (stride defaults to the kernel;
    padding counts as -inf). The gradient goes to the first maximum of each window (row-major)."""
    _check_input("max_pool2d", x)
    kernel, stride, dilation, pads, out_size = pool_geometry(
        "max_pool2d", x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    xp = backend.get_array_module(x.data)
    xpad = pad2d(x.data, pads, -math.inf)
    slices = [index for _, _, index in offset_slices(kernel, stride, dilation, out_size)]
    out = xpad[slices[0]].copy()
    for index in slices[1:]:
        xp.maximum(out, xpad[index], out=out)

    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    disjoint = all(s >= e for s, e in zip(stride, extent))  # each input cell in at most one window
    tiled = all(s == k == e and n * s == p  # windows without gaps cover every padded cell once
                for s, k, e, n, p in zip(stride, kernel, extent, out_size, xpad.shape[-2:]))

    def backward(g):
        # Offsets in row-major order; `unclaimed` is g where no earlier offset held the maximum,
        # so each window's gradient goes to its first maximum, as in PyTorch.
        gpad = (xp.empty if tiled else xp.zeros)(xpad.shape, dtype=g.dtype)
        unclaimed = g.copy()
        for k, index in enumerate(slices):
            hit = xpad[index] == out
            if disjoint:
                xp.multiply(unclaimed, hit, out=gpad[index])
            else:
                gpad[index] += unclaimed * hit
            if k < len(slices) - 1:
                xp.copyto(unclaimed, 0, where=hit)
        return (unpad2d(gpad, pads),)

    def at_maxima(u):  # the transpose of backward: u (x's shape) read at each window's first maximum
        upad, result = pad2d(u, pads), xp.zeros(out.shape, dtype=u.dtype)
        claimed = xp.zeros(out.shape, dtype=bool)
        for index in slices:
            hit = (xpad[index] == out) & ~claimed
            result += upad[index] * hit
            claimed |= hit
        return result

    def higher(g, result):
        return (linear_op(g, lambda a: backward(a)[0], at_maxima),)

    return Tensor.from_op(out, (x,), backward, higher)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over each window, as torch.nn.functional.avg_pool2d: zero padding counted in the
    divisor when count_include_pad (the extra of ceil_mode never is); divisor_override replaces it."""
    _check_input("avg_pool2d", x)
    if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override < 1):
        raise ValueError(f"avg_pool2d: divisor_override must be a positive int, got {divisor_override!r}")
    kernel, stride, dilation, pads, out_size = pool_geometry(
        "avg_pool2d", x.shape, kernel_size, stride, padding, 1, ceil_mode)
    xp = backend.get_array_module(x.data)
    slices = [index for _, _, index in offset_slices(kernel, stride, dilation, out_size)]
    xpad = pad2d(x.data, pads)
    total = xpad[slices[0]].copy()
    for index in slices[1:]:
        total += xpad[index]
    divisor = _divisor(x.shape[-2:], pads, slices, count_include_pad, divisor_override)
    out = total / xp.asarray(divisor, dtype=x.dtype)
    inverse = xp.asarray(1.0 / divisor, dtype=x.dtype)

    def backward(g):
        share = g * inverse
        gpad = xp.zeros(xpad.shape, dtype=g.dtype)
        for index in slices:
            gpad[index] += share
        return (unpad2d(gpad, pads),)

    def pool(u):  # the forward on u, the transpose of backward
        upad = pad2d(u, pads)
        pooled = upad[slices[0]].copy()
        for index in slices[1:]:
            pooled += upad[index]
        return pooled * inverse

    def higher(g, result):
        return (linear_op(g, lambda a: backward(a)[0], pool),)

    return Tensor.from_op(out, (x,), backward, higher)


def _divisor(size: tuple[int, ...], pads: tuple[int, int, int, int], slices: list, count_include_pad: bool,
             divisor_override: int | None) -> np.ndarray:
    """(OH, OW) window sizes: the cells of each window inside the input (with its symmetric padding
    when count_include_pad), computed on the host by pooling a mask of ones."""
    if divisor_override is not None:
        return np.full(1, float(divisor_override))
    top, bottom, left, right = pads
    mask = np.zeros((size[0] + top + bottom, size[1] + left + right))
    if count_include_pad:  # the symmetric padding counts; the ceil_mode extra does not
        mask[:size[0] + 2 * top, :size[1] + 2 * left] = 1
    else:
        mask[top:top + size[0], left:left + size[1]] = 1
    return sum(mask[index] for index in slices)


def _averaging_matrix(size: int, out: int) -> np.ndarray:
    """(out, size): row i averages input[start:end], start = floor(i*size/out), end = ceil((i+1)*size/out)."""
    a = np.zeros((out, size))
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        a[i, start:end] = 1.0 / (end - start)
    return a


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Average pooling to a fixed (OH, OW) with PyTorch's windows (None keeps that input size).

    x: (N, C, H, W) or (C, H, W) -> (..., OH, OW).
    """
    _check_input("adaptive_avg_pool2d", x)
    sizes = (output_size, output_size) if output_size is None or isinstance(output_size, int) \
        else tuple(output_size)
    if len(sizes) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size!r}")
    sizes = tuple(s if o is None else o for o, s in zip(sizes, x.shape[-2:]))
    if not all(isinstance(o, int) and o >= 1 for o in sizes):
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive ints, got {output_size!r}")
    xp = backend.get_array_module(x.data)
    a_h, a_w = (xp.asarray(_averaging_matrix(s, o), dtype=x.dtype) for s, o in zip(x.shape[-2:], sizes))
    out = a_h @ x.data @ a_w.T

    def backward(g):
        return (a_h.T @ g @ a_w,)

    def higher(g, result):
        return (linear_op(g, lambda a: a_h.T @ a @ a_w, lambda u: a_h @ u @ a_w.T),)

    return Tensor.from_op(out, (x,), backward, higher)
