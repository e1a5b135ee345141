"""Layer normalization over the last axis, forward and backward in one node."""
from __future__ import annotations

from .. import backend, kernels
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
