"""Layer normalization and RMS normalization over the last axes, forward and backward in one node."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import backend, kernels
from ..autograd import Tensor
from . import cuda

__all__ = ["layer_norm", "rms_norm"]


def layer_norm(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance).

    x: (..., D); weight, bias: (D,) or None.
    """
    d = x.shape[-1]
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (d,):
            raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected ({d},) for input {x.shape}")
    if kernels.available(x.data):
        return cuda.layer_norm(x, weight, bias, eps)
    xp = backend.get_array_module(x.data)
    xhat = x.data - x.data.mean(axis=-1, keepdims=True)
    variance = xp.einsum("...i,...i->...", xhat, xhat)[..., None] / d  # no squared temporary
    rstd = 1.0 / xp.sqrt(variance + eps)
    xhat *= rstd
    out = xhat if weight is None else xhat * weight.data
    if bias is not None:
        out = out + bias.data  # (never in place: out may be the saved xhat)

    def backward(g):
        # gx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)), gxhat = g * weight
        gxhat = g if weight is None else g * weight.data
        grads = [None]
        if x.requires_grad:
            mean_gxhat_xhat = xp.einsum("...i,...i->...", gxhat, xhat)[..., None] / d
            gx = xhat * mean_gxhat_xhat
            xp.subtract(gxhat, gx, out=gx)
            gx -= gxhat.mean(axis=-1, keepdims=True)
            gx *= rstd
            grads[0] = gx
        rows = g.reshape(-1, d)
        if weight is not None:
            grads.append(xp.einsum("ij,ij->j", rows, xhat.reshape(-1, d)) if weight.requires_grad else None)
        if bias is not None:
            grads.append(rows.sum(axis=0) if bias.requires_grad else None)
        return grads

    parents = (x,) + tuple(p for p in (weight, bias) if p is not None)
    return Tensor._make(out, parents, backward)


def rms_norm(x: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x**2) + eps) * weight over the last len(normalized_shape) axes.

    As torch.nn.functional.rms_norm: x: (..., *normalized_shape); weight: normalized_shape or
    None; eps None means the machine epsilon of x's dtype.
    Backward: gx = r * (gxhat - xhat * mean(gxhat * xhat)), r = 1/sqrt(mean(x**2) + eps),
    xhat = x * r, gxhat = g * weight; gweight = sum of g * xhat over the leading axes.
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k:] != shape:
        raise ValueError(f"rms_norm: input of shape {x.shape} does not end in normalized_shape {shape}")
    if weight is not None and weight.shape != shape:
        raise ValueError(f"rms_norm: weight has shape {weight.shape}, expected normalized_shape {shape}")
    if eps is None:
        eps = float(np.finfo(x.dtype).eps)
    xp = backend.get_array_module(x.data)
    axes = tuple(range(-k, 0))
    n = math.prod(shape)
    rows = x.data.reshape(*x.shape[:x.ndim - k], n)
    mean_square = xp.einsum("...i,...i->...", rows, rows)[..., None] / n  # no squared temporary
    r = (1.0 / xp.sqrt(mean_square + eps)).astype(x.dtype, copy=False)
    r = r.reshape(r.shape[:-1] + (1,) * k)
    xhat = x.data * r
    out = xhat if weight is None else xhat * weight.data

    def backward(g):
        gxhat = g if weight is None else g * weight.data
        gx = None
        if x.requires_grad:
            mean_gxhat_xhat = (gxhat * xhat).mean(axis=axes, keepdims=True)
            gx = r * (gxhat - xhat * mean_gxhat_xhat)
        if weight is None:
            return (gx,)
        gw = (g * xhat).reshape(-1, *shape).sum(axis=0) if weight.requires_grad else None
        return gx, gw

    return Tensor._make(out, (x,) if weight is None else (x, weight), backward)
