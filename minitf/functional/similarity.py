"""Vector similarity and normalization along an axis: cosine_similarity, normalize."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..autograd.axes import accepts_dim, normalize_axis
from ..autograd.ops_math import lift

__all__ = ["cosine_similarity", "normalize"]


@accepts_dim
def cosine_similarity(x1: Tensor, x2: Any, axis: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps)) along `axis` (alias `dim`), as torch's formula.

    x1 and x2 broadcast together; the output has their broadcast shape without `axis`.
    As in PyTorch, the eps clamp is outside the graph: the gradient through each norm
    is that of the unclamped norm, x / |x| (0 for a zero vector).
    """
    x2 = lift(x2, x1)
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(f"cosine_similarity: x1 of shape {x1.shape} and x2 of shape {x2.shape} "
                         "do not broadcast together") from None
    backend.check_same_device("cosine_similarity", x1.data, x2.data)
    xp = backend.get_array_module(x1.data)
    axis = normalize_axis(axis, max(len(shape), 1), "cosine_similarity")
    a, b = (xp.broadcast_to(v.data, shape) for v in (x1, x2))
    norm_a = xp.sqrt((a * a).sum(axis=axis, keepdims=True))
    norm_b = xp.sqrt((b * b).sum(axis=axis, keepdims=True))
    na, nb = xp.maximum(norm_a, eps), xp.maximum(norm_b, eps)
    ua, ub = a / na, b / nb
    cos = (ua * ub).sum(axis=axis, keepdims=True)

    def grad_of(u_self, u_other, n_self, norm_self, g):
        # d/dx of sum(x / n * u_other), n's derivative x / |x| (the unclamped norm's)
        safe = xp.where(norm_self > 0, norm_self, 1)
        return g * (u_other / n_self - cos * u_self / safe * (norm_self > 0))

    def backward(g):
        g = xp.expand_dims(g, axis)
        return (grad_of(ua, ub, na, norm_a, g) if x1.requires_grad else None,
                grad_of(ub, ua, nb, norm_b, g) if x2.requires_grad else None)

    return Tensor.from_op(cos.squeeze(axis), (x1, x2), backward)


@accepts_dim
def normalize(input: Tensor, p: float = 2.0, axis: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along `axis` (alias `dim`), as torch.nn.functional.normalize (p > 0 or inf).

    Backward: g / n - sum(g * x) / n**2 * d||x||_p/dx where the norm n is at least eps;
    below it the denominator is the constant eps and the gradient g / eps. For p = inf the norm's gradient is split
    evenly between the entries of largest magnitude, as PyTorch.
    """
    if not p > 0:
        raise ValueError(f"normalize: p must be positive (or inf), got {p}")
    xp = backend.get_array_module(input.data)
    axis = normalize_axis(axis, max(input.ndim, 1), "normalize")
    x = input.data
    ax = xp.abs(x)
    if p == np.inf:
        norm = ax.max(axis=axis, keepdims=True)
    elif p == 1:
        norm = ax.sum(axis=axis, keepdims=True)
    elif p == 2:
        norm = xp.sqrt((x * x).sum(axis=axis, keepdims=True))
    else:
        norm = (ax ** p).sum(axis=axis, keepdims=True) ** (1 / p)
    above = norm >= eps
    denominator = xp.maximum(norm, eps).astype(x.dtype, copy=False)
    out = x / denominator

    def norm_gradient():
        """d||x||_p / dx (0 where the norm is 0)."""
        safe = xp.where(norm > 0, norm, 1)
        if p == np.inf:
            top = ax == norm
            return xp.sign(x) * top / top.sum(axis=axis, keepdims=True)
        if p == 1:
            return xp.sign(x)
        if p == 2:
            return x / safe
        return xp.sign(x) * (ax / safe) ** (p - 1)

    def backward(g):
        gx = g / denominator
        correction = (g * out).sum(axis=axis, keepdims=True) / denominator
        return (gx - correction * norm_gradient() * above,)

    return Tensor.from_op(out, (input,), backward)
