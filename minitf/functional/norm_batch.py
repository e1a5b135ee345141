"""Batch and group normalization of (N, C, ...) inputs, forward and backward in one node.

The differentiable rules (create_graph) recompute the statistics as tensor expressions of x,
with sums over the statistics' axes as windows.channel_sum / group_sum and their transposes,
and write the backward's formulas with them (so they hold to any order)."""
from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Tensor
from .dtypes import check_dtypes
from .windows import channel_broadcast, channel_sum, group_broadcast, group_sum

__all__ = ["batch_norm", "group_norm"]


def _check_affine(op: str, x: Tensor, params: dict[str, Any]) -> None:
    if x.ndim < 2:
        raise ValueError(f"{op}: input must be (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    for name, p in params.items():
        if p is not None and tuple(p.shape) != (channels,):
            raise ValueError(f"{op}: {name} has shape {tuple(p.shape)}, expected ({channels},) "
                             f"for input {x.shape}")
    check_dtypes(op, x, weight=params.get("weight"), bias=params.get("bias"))  # not the running statistics


def _normalize(x: Any, axes: tuple[int, ...], eps: float) -> tuple[Any, Any, Any, Any]:
    """(xhat, mean, biased variance, 1/sqrt(var + eps)) over `axes`, kept for broadcasting."""
    xp = backend.get_array_module(x)
    mean = x.mean(axis=axes, keepdims=True)
    xhat = x - mean
    variance = xp.square(xhat).mean(axis=axes, keepdims=True)
    rstd = 1.0 / xp.sqrt(variance + eps)
    xhat *= rstd
    return xhat, mean, variance, rstd


def _normalized_grad(gxhat: Any, xhat: Any, rstd: Any, axes: tuple[int, ...]) -> Any:
    """d/dx of xhat = (x - mean) * rstd, statistics over `axes`, applied to gxhat:
    rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))."""
    gx = xhat * (gxhat * xhat).mean(axis=axes, keepdims=True)
    gx -= gxhat
    gx += gxhat.mean(axis=axes, keepdims=True)
    gx *= -rstd
    return gx


def _affine(xhat: Any, weight: Tensor | None, bias: Tensor | None, shape: tuple[int, ...]) -> Any:
    out = xhat if weight is None else xhat * weight.data.reshape(shape)
    return out if bias is None else out + bias.data.reshape(shape)  # never in place: out may be xhat


def _affine_grads(g: Any, xhat: Any, weight: Tensor | None, bias: Tensor | None,
                  axes: tuple[int, ...]) -> list[Any]:
    grads = []
    if weight is not None:
        grads.append((g * xhat).sum(axis=axes) if weight.requires_grad else None)
    if bias is not None:
        grads.append(g.sum(axis=axes) if bias.requires_grad else None)
    return grads


def _array(buffer: Any) -> Any:
    return buffer.data if isinstance(buffer, Tensor) else buffer


def batch_norm(x: Tensor, running_mean: Any, running_var: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalize each channel of x (N, C, ...) as torch.nn.functional.batch_norm.

    training: batch statistics (biased variance), and running_mean / running_var (C,) arrays or
    tensors, when given, are updated in place: r = (1 - momentum) * r + momentum * stat, with the
    unbiased variance. Otherwise the running statistics normalize. weight, bias: (C,) or None.
    """
    op = "batch_norm"
    _check_affine(op, x, {"weight": weight, "bias": bias, "running_mean": running_mean,
                          "running_var": running_var})
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var, or neither")
    if not training and running_mean is None:
        raise ValueError(f"{op}: running_mean and running_var are needed when training=False")
    if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
        raise ValueError(f"{op}: momentum must be a number in [0, 1], got {momentum!r}")
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (x.shape[1],) + (1,) * (x.ndim - 2)
    if not training:
        return _batch_norm_eval(x, _array(running_mean), _array(running_var), weight, bias, eps, axes, shape)
    count = x.data.size // x.shape[1]
    if count < 2:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got input {x.shape}")
    xhat, mean, variance, rstd = _normalize(x.data, axes, eps)
    if running_mean is not None:
        for buffer, stat in ((_array(running_mean), mean), (_array(running_var), variance * (count / (count - 1)))):
            buffer *= 1 - momentum
            buffer += momentum * stat.reshape(buffer.shape)

    def backward(g):
        gx = None
        if x.requires_grad:
            gx = _normalized_grad(g if weight is None else g * weight.data.reshape(shape), xhat, rstd, axes)
        return [gx] + _affine_grads(g, xhat, weight, bias, axes)

    def higher(g, out):
        return _normalized_higher(g, x, weight, bias, (channel_sum, lambda v: channel_broadcast(v, x.shape)),
                                  count, eps)

    parents = (x,) + tuple(p for p in (weight, bias) if p is not None)
    return Tensor.from_op(_affine(xhat, weight, bias, shape), parents, backward, higher)


def _normalized_higher(g: Tensor, x: Tensor, weight: Tensor | None, bias: Tensor | None, stats: tuple,
                       count: int, eps: float) -> list[Tensor | None]:
    """The gradients of (x, weight, bias) of weight * xhat + bias as tensor expressions: xhat,
    1/sqrt(var + eps) from x with `stats` = (sum over each statistic's elements, its transpose)."""
    total, spread = stats
    centered = x - spread(total(x) * (1.0 / count))
    rstd = spread((total(centered * centered) * (1.0 / count) + eps) ** -0.5)
    xhat = centered * rstd
    grads: list[Tensor | None] = [None]
    if x.requires_grad:
        gxhat = g if weight is None else g * channel_broadcast(weight, x.shape)
        mean_g = spread(total(gxhat) * (1.0 / count))
        mean_gx = spread(total(gxhat * xhat) * (1.0 / count))
        grads[0] = rstd * (gxhat - mean_g - xhat * mean_gx)
    return grads + _affine_higher(g, xhat, weight, bias)


def _affine_higher(g: Tensor, xhat: Tensor, weight: Tensor | None, bias: Tensor | None) -> list[Tensor | None]:
    grads: list[Tensor | None] = []
    if weight is not None:
        grads.append(channel_sum(g * xhat) if weight.requires_grad else None)
    if bias is not None:
        grads.append(channel_sum(g) if bias.requires_grad else None)
    return grads


def _batch_norm_eval(x: Tensor, mean: Any, variance: Any, weight: Tensor | None, bias: Tensor | None,
                     eps: float, axes: tuple[int, ...], shape: tuple[int, ...]) -> Tensor:
    """The running statistics are constants here: y = (x - mean) * rstd * weight + bias."""
    xp = backend.get_array_module(x.data)
    rstd = (1.0 / xp.sqrt(variance + eps)).astype(x.dtype, copy=False).reshape(shape)
    xhat = (x.data - mean.reshape(shape).astype(x.dtype, copy=False)) * rstd

    def backward(g):
        gx = (g * rstd if weight is None else g * (rstd * weight.data.reshape(shape))) if x.requires_grad else None
        return [gx] + _affine_grads(g, xhat, weight, bias, axes)

    def higher(g, out):  # mean and rstd are constants; xhat is still a function of x
        xhat_t = (x - mean.reshape(shape).astype(x.dtype, copy=False)) * rstd
        gx = None
        if x.requires_grad:
            gx = g * rstd if weight is None else g * channel_broadcast(weight, x.shape) * rstd
        return [gx] + _affine_higher(g, xhat_t, weight, bias)

    parents = (x,) + tuple(p for p in (weight, bias) if p is not None)
    return Tensor.from_op(_affine(xhat, weight, bias, shape), parents, backward, higher)


def group_norm(x: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalize x (N, C, ...) over each group of C/num_groups channels (and all positions),
    as torch.nn.functional.group_norm; then scale and shift per channel by weight, bias (C,)."""
    op = "group_norm"
    _check_affine(op, x, {"weight": weight, "bias": bias})
    if not isinstance(num_groups, int) or num_groups < 1 or x.shape[1] % num_groups:
        raise ValueError(f"{op}: num_groups={num_groups!r} must be a positive int dividing the "
                         f"{x.shape[1]} channels of input {x.shape}")
    grouped = (x.shape[0], num_groups, -1)
    xhat, _, _, rstd = _normalize(x.data.reshape(grouped), (2,), eps)
    xhat = xhat.reshape(x.shape)
    shape = (x.shape[1],) + (1,) * (x.ndim - 2)
    axes = (0,) + tuple(range(2, x.ndim))

    def backward(g):
        gx = None
        if x.requires_grad:
            gxhat = g if weight is None else g * weight.data.reshape(shape)
            gx = _normalized_grad(gxhat.reshape(grouped), xhat.reshape(grouped), rstd, (2,)).reshape(x.shape)
        return [gx] + _affine_grads(g, xhat, weight, bias, axes)

    def higher(g, out):
        stats = (lambda t: group_sum(t, num_groups), lambda s: group_broadcast(s, x.shape))
        return _normalized_higher(g, x, weight, bias, stats, x.size // (x.shape[0] * num_groups), eps)

    parents = (x,) + tuple(p for p in (weight, bias) if p is not None)
    return Tensor.from_op(_affine(xhat, weight, bias, shape), parents, backward, higher)
