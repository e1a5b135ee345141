"""Vector similarity and normalization along an axis: cosine_similarity, normalize."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..autograd import Tensor, abs as abs_t, sqrt
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

    def higher(g, out):  # grad_of in tensor ops, each norm clamped in value only, as in the first order
        parts = [_clamped_norm_parts(t, shape, axis, eps) for t in (x1, x2)]
        (u1, n1, safe1, nonzero1), (u2, n2, safe2, nonzero2) = parts
        g = g.unsqueeze(axis)
        cos_t = (u1 * u2).sum(axis=axis, keepdims=True)
        return (g * (u2 / n1 - cos_t * u1 / safe1 * nonzero1) if x1.requires_grad else None,
                g * (u1 / n2 - cos_t * u2 / safe2 * nonzero2) if x2.requires_grad else None)

    return Tensor.from_op(cos.squeeze(axis), (x1, x2), backward, higher)


def _clamped_norm_parts(x: Tensor, shape: tuple[int, ...], axis: int, eps: float) -> tuple[Tensor, ...]:
    """For cosine_similarity's rule, in tensor ops of x broadcast to `shape`: x / n, n, |x| where it
    is > 0 (else 1), and the constant mask |x| > 0; n has the value max(|x|, eps) and the derivative
    of |x| (PyTorch's graph: the norm clamped in place without grad), at every order."""
    xp = backend.get_array_module(x.data)
    if x.shape != shape:
        x = x * xp.broadcast_to(xp.ones((), dtype=x.dtype), shape)
    square = (x * x).sum(axis=axis, keepdims=True)
    nonzero = square.data > 0
    norm = sqrt(square + (~nonzero).astype(x.dtype))  # |x|, and 1 where |x| = 0: sqrt stays differentiable
    clamped = norm + (xp.maximum(norm.data * nonzero, eps) - norm.data).astype(x.dtype)  # a constant shift
    return x / clamped, clamped, norm, nonzero.astype(x.dtype)


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

    def higher(g, result):  # the same formula in tensor ops, the norm rebuilt from the input
        norm_t, gradient_t = _norm_and_gradient(input, p, axis, ax, norm)
        ab = above.astype(x.dtype)
        denominator_t = norm_t * ab + ((1 - ab) * eps).astype(x.dtype)
        correction = (g * result).sum(axis=axis, keepdims=True) / denominator_t
        return (g / denominator_t - correction * gradient_t * ab,)

    return Tensor.from_op(out, (input,), backward, higher)


def _norm_and_gradient(x: Tensor, p: float, axis: int, ax: Any, norm: Any) -> tuple[Tensor, Any]:
    """normalize's ||x||_p along `axis` (keepdims) and its gradient (0 where the norm is 0), in
    tensor ops of x; ax = |x| and norm: their arrays. For p = inf the norm is the mean of the
    entries of largest magnitude, whose gradient is normalize's even split between them."""
    xp = backend.get_array_module(x.data)
    sign = xp.sign(x.data)
    if p == np.inf:
        top = (ax == norm).astype(x.dtype)
        share = top / top.sum(axis=axis, keepdims=True)
        return (abs_t(x) * share).sum(axis=axis, keepdims=True), sign * share
    if p == 1:
        return abs_t(x).sum(axis=axis, keepdims=True), sign
    zero = (norm == 0).astype(x.dtype)
    if p == 2:
        norm_t = sqrt((x * x).sum(axis=axis, keepdims=True) + zero)  # 1 where the norm is 0
        return norm_t * (1 - zero), x / norm_t
    norm_t = ((abs_t(x) ** p).sum(axis=axis, keepdims=True) + zero) ** (1 / p)  # 1 where the norm is 0
    return norm_t * (1 - zero), (abs_t(x) / norm_t) ** (p - 1) * sign
