"""Element-wise losses with PyTorch's reductions: mse_loss, l1_loss, smooth_l1_loss.

Input and target broadcast together (as in PyTorch); both get gradients.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..autograd.ops_math import lift

__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss"]

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(name: str, reduction: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"{name}: reduction must be one of {', '.join(map(repr, allowed))}, got {reduction!r}")


def pair(name: str, input: Tensor, target: Any, same_shape: bool = False) -> tuple[Tensor, Tensor, tuple]:
    """(input, target as a tensor, their broadcast shape); raises naming both shapes if they do not fit."""
    target = lift(target, input)
    backend.check_same_device(name, input.data, target.data)
    if same_shape and target.shape != input.shape:
        raise ValueError(f"{name}: target has shape {target.shape}, input has shape {input.shape}; "
                         "they must be equal")
    try:
        shape = np.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        raise ValueError(f"{name}: input of shape {input.shape} and target of shape {target.shape} "
                         "do not broadcast together") from None
    return input, target, shape


def mean_of(total: Any, count: Any) -> Any:
    """total / count for a "mean" reduction: NaN, with no warning, when nothing is counted
    (count 0: an empty input, every target ignored, all weights 0), as PyTorch."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def reduce(per_element: Any, reduction: str) -> Any:
    """Per-element losses reduced as PyTorch: their mean, their sum, or as they are."""
    if reduction == "none":
        return per_element
    total = per_element.sum()
    return total if reduction == "sum" else mean_of(total, per_element.size)


def expand(g: Any, reduction: str, shape: tuple[int, ...]) -> Any:
    """The cotangent of the reduced loss as a per-element cotangent of `shape`."""
    if reduction == "none":
        return g
    xp = backend.get_array_module(g)
    return xp.broadcast_to(mean_of(g, math.prod(shape)) if reduction == "mean" else g, shape)


def expand_tensor(g: Tensor, reduction: str, shape: tuple[int, ...]) -> Tensor:
    """`expand` in tensor ops (for `higher` rules): the reduced loss's cotangent per element."""
    if reduction == "none":
        return g
    xp = backend.get_array_module(g.data)
    ones = xp.broadcast_to(xp.ones((), dtype=g.dtype), shape)  # (a view: no memory)
    return (g / max(math.prod(shape), 1) if reduction == "mean" else g) * ones  # (no elements: empty anyway)


def _elementwise_loss(name: str, input: Tensor, target: Any, reduction: str, loss_and_slope,
                      slope_tensor) -> Tensor:
    """A loss f(input - target) with df/d(input) = slope, reduced; the target's gradient is -that.
    slope_tensor(d, diff): the slope in tensor ops of the tensor d = input - target (diff: its array)."""
    check_reduction(name, reduction)
    input, target, shape = pair(name, input, target)
    diff = input.data - target.data
    per_element, slope = loss_and_slope(diff)

    def backward(g):
        gd = expand(g, reduction, shape) * slope()
        return gd, (-gd if target.requires_grad else None)

    def higher(g, out):  # (diff recomputed: the backward does not hold it)
        gd = expand_tensor(g, reduction, shape) * slope_tensor(input - target, input.data - target.data)
        return gd, (-gd if target.requires_grad else None)

    return Tensor.from_op(reduce(per_element, reduction), (input, target), backward, higher)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """(input - target)**2, reduced by "mean", "sum" or "none". Backward: 2 * (input - target)."""
    return _elementwise_loss("mse_loss", input, target, reduction, lambda d: (d * d, lambda: 2 * d),
                             lambda d, diff: d * 2)


def l1_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """|input - target|, reduced. Backward: sign(input - target), 0 where they are equal (as PyTorch)."""
    xp = backend.get_array_module(input.data)
    return _elementwise_loss("l1_loss", input, target, reduction, lambda d: (xp.abs(d), lambda: xp.sign(d)),
                             lambda d, diff: xp.sign(diff))


def smooth_l1_loss(input: Tensor, target: Any, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Huber-like loss of d = input - target: 0.5 * d**2 / beta where |d| < beta, |d| - 0.5 * beta
    elsewhere; beta = 0 is l1_loss. Backward: d / beta inside, sign(d) outside."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    if beta == 0:
        return l1_loss(input, target, reduction)
    xp = backend.get_array_module(input.data)

    def loss_and_slope(d):
        m = xp.clip(d, -beta, beta)  # d inside (-beta, beta), else +-beta (no branching `where`)
        loss = 0.5 / beta * m * m
        loss += xp.abs(d)
        loss -= xp.abs(m)
        return loss, lambda: m / beta

    def slope_tensor(d, diff):  # d / beta inside (-beta, beta), the constant sign(d) outside
        inside = xp.abs(diff) < beta
        return d * (inside / beta).astype(d.dtype) + (xp.sign(diff) * ~inside).astype(d.dtype)

    return _elementwise_loss("smooth_l1_loss", input, target, reduction, loss_and_slope, slope_tensor)
