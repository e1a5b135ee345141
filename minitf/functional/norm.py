"""Layer normalization and RMS normalization over the last axes, forward and backward in one node."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import backend, kernels, parallel
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
    x2 = x.data.reshape(-1, d)
    n = x2.shape[0]
    xhat = xp.empty_like(x2)
    out = xhat if weight is None and bias is None else xp.empty_like(x2)
    rstd = xp.empty((n, 1), dtype=x2.dtype)

    def forward_rows(rows: slice) -> None:
        xh = xhat[rows]
        xp.subtract(x2[rows], x2[rows].mean(axis=-1, keepdims=True), out=xh)
        variance = xp.einsum("ij,ij->i", xh, xh)[:, None] / d  # no squared temporary
        rstd[rows] = 1.0 / xp.sqrt(variance + eps)
        xh *= rstd[rows]
        if weight is not None:
            xp.multiply(xh, weight.data, out=out[rows])
        if bias is not None:
            xp.add(out[rows] if weight is not None else xh, bias.data, out=out[rows])

    parallel.run_blocks(forward_rows, n, d, x2)

    def backward(g):
        # gx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)), gxhat = g * weight
        g2 = g.reshape(-1, d)
        grads = [None]
        if x.requires_grad:
            gx = xp.empty_like(g2)

            def input_grad_rows(rows: slice) -> None:
                gxhat = g2[rows] if weight is None else g2[rows] * weight.data
                xh, out_rows = xhat[rows], gx[rows]
                mean_gxhat_xhat = xp.einsum("ij,ij->i", gxhat, xh)[:, None] / d
                xp.multiply(xh, mean_gxhat_xhat, out=out_rows)
                xp.subtract(gxhat, out_rows, out=out_rows)
                out_rows -= gxhat.mean(axis=-1, keepdims=True)
                out_rows *= rstd[rows]

            parallel.run_blocks(input_grad_rows, n, d, g2)
            grads[0] = gx.reshape(x.shape)
        if weight is not None:
            grads.append(parallel.column_dots(g2, xhat) if weight.requires_grad else None)
        if bias is not None:
            grads.append(parallel.column_sums(g2) if bias.requires_grad else None)
        return grads

    out = out.reshape(x.shape)
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
