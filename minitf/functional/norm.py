"""Layer normalization over the last axis, forward and backward in one node."""
from __future__ import annotations

from .. import kernels
from ..autograd import Tensor
from . import cuda

__all__ = ["layer_norm"]


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
    mu = x.data.mean(axis=-1, keepdims=True)
    centered = x.data - mu
    rstd = 1.0 / (((centered * centered).mean(axis=-1, keepdims=True) + eps) ** 0.5)
    xhat = centered * rstd
    out = xhat
    if weight is not None:
        out = out * weight.data
    if bias is not None:
        out = out + bias.data

    def backward(g):
        gxhat = g if weight is None else g * weight.data
        grads = [None]
        if x.requires_grad:
            grads[0] = rstd * (gxhat - gxhat.mean(axis=-1, keepdims=True)
                               - xhat * (gxhat * xhat).mean(axis=-1, keepdims=True))
        rows = g.reshape(-1, d)
        if weight is not None:
            grads.append((rows * xhat.reshape(-1, d)).sum(axis=0) if weight.requires_grad else None)
        if bias is not None:
            grads.append(rows.sum(axis=0) if bias.requires_grad else None)
        return grads

    parents = (x,) + tuple(p for p in (weight, bias) if p is not None)
    return Tensor._make(out, parents, backward)
