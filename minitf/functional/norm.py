"""Layer normalization and RMS normalization over the last axes, forward and backward in one node."""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from .. import backend, cpu, kernels
from ..autograd import Tensor, sqrt
from ..rng import dropout_keep
from .activations import check_probability, dropout, keep_and_scale
from .dtypes import check_dtypes

__all__ = ["layer_norm", "dropout_add_layer_norm", "rms_norm"]


def layer_norm(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance).

    x: (..., D); weight, bias: (D,) or None.
    """
    _check_affine("layer_norm", x, weight, bias)
    if kernels.available(x.data):
        return _layer_norm_cuda(x, weight, bias, eps)
    x2 = x.data.reshape(-1, x.shape[-1])
    higher = _layer_norm_higher(lambda: x, lambda gz: [gz], (x,), weight, bias, eps)
    return _layer_norm(lambda rows: x2[rows], (x,), lambda gz: [gz], x.shape, weight, bias, eps, higher=higher)


def _layer_norm_cuda(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """layer_norm of a CuPy array that kernels.available accepts: one kernel forward, two backward."""
    y, mean, rstd = kernels.layer_norm_forward(x.data, None if weight is None else weight.data,
                                               None if bias is None else bias.data, eps)

    def backward(g):
        gx, gw, gb = kernels.layer_norm_backward(x.data, g, None if weight is None else weight.data,
                                                 mean, rstd, has_bias=bias is not None,
                                                 need_gx=x.requires_grad)
        return [gx] + ([gw] if weight is not None else []) + ([gb] if bias is not None else [])

    parents = (x,) + tuple(p for p in (weight, bias) if p is not None)
    higher = _layer_norm_higher(lambda: x, lambda gz: [gz], (x,), weight, bias, eps)
    return Tensor.from_op(y, parents, backward, higher)


def dropout_add_layer_norm(x: Tensor, h: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
                           p: float = 0.0, training: bool = True, eps: float = 1e-5) -> Tensor:
    """layer_norm(x + dropout(h, p, training)) as one node: the residual block of a post-norm
    Transformer, without the dropout's and the sum's arrays and passes (the dropout mask is the
    one F.dropout would draw). x, h: (..., D); weight, bias: (D,) or None.
    Backward: gz = the layer norm's input gradient; gx = gz, gh = gz * mask / (1 - p).
    """
    if x.shape != h.shape or x.dtype != h.dtype:
        raise ValueError(f"dropout_add_layer_norm: x ({x.shape}, {x.dtype}) and h ({h.shape}, {h.dtype}) "
                         "must have one shape and dtype")
    _check_affine("dropout_add_layer_norm", x, weight, bias)
    check_probability(p)
    backend.check_same_device("dropout_add_layer_norm", x.data, h.data)
    if kernels.available(x.data) or not training or p == 0.0:
        return layer_norm(x + dropout(h, p, training), weight, bias, eps)
    xp = backend.get_array_module(x.data)
    x2, h2 = x.data.reshape(-1, x.shape[-1]), h.data.reshape(-1, x.shape[-1])
    keep, scale = dropout_keep(xp, h2.shape, p, h2.dtype)
    z = xp.empty_like(x2)

    def residual_rows(rows: slice) -> Any:
        zr = z[rows]
        xp.multiply(h2[rows], keep[rows], out=zr)
        zr *= scale
        zr += x2[rows]
        return zr

    def input_grads(gz: Any) -> list[Any]:
        return [gz.reshape(x.shape), keep_and_scale(gz, keep.reshape(gz.shape), scale).reshape(h.shape)]

    higher = _layer_norm_higher(lambda: x + h * keep.reshape(h.shape) * scale,
                                lambda gz: [gz, gz * keep.reshape(h.shape) * scale], (x, h), weight, bias, eps)
    return _layer_norm(residual_rows, (x, h), input_grads, x.shape, weight, bias, eps, scratch=z, higher=higher)


def _check_affine(op: str, x: Tensor, weight: Tensor | None, bias: Tensor | None) -> None:
    d = x.shape[-1] if x.ndim else None
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (d,):
            raise ValueError(f"{op}: {name} has shape {p.shape}, expected ({d},) for input {x.shape}")
    check_dtypes(op, x, weight=weight, bias=bias)


def _layer_norm(load_rows: Callable[[slice], Any], inputs: tuple[Tensor, ...],
                input_grads: Callable[[Any], list[Any]], shape: tuple[int, ...], weight: Tensor | None,
                bias: Tensor | None, eps: float, scratch: Any = None, higher: Any = None) -> Tensor:
    """The layer-norm node over rows of D = shape[-1] that load_rows(rows) gives (the rows of the
    norm's input z, which may be built on the fly into `scratch`, then overwritten by xhat);
    input_grads(gz) turns z's gradient (of `shape`) into the gradients of `inputs`. Runs in
    blocks of rows on minitf's threads. `higher`: the node's rule in tensor ops (_layer_norm_higher)."""
    xp = backend.get_array_module(inputs[0].data)
    d = shape[-1]
    n = math.prod(shape[:-1])
    dtype = inputs[0].dtype
    xhat = xp.empty((n, d), dtype=dtype) if scratch is None else scratch
    out = xhat if weight is None and bias is None else xp.empty((n, d), dtype=dtype)
    rstd = xp.empty((n, 1), dtype=dtype)

    def forward_rows(rows: slice) -> None:
        z, xh = load_rows(rows), xhat[rows]
        xp.subtract(z, z.mean(axis=-1, keepdims=True), out=xh)
        variance = xp.einsum("ij,ij->i", xh, xh)[:, None] / d  # no squared temporary
        rstd[rows] = 1.0 / xp.sqrt(variance + eps)
        xh *= rstd[rows]
        if weight is not None:
            xp.multiply(xh, weight.data, out=out[rows])
        if bias is not None:
            xp.add(out[rows] if weight is not None else xh, bias.data, out=out[rows])

    cpu.run_blocks(forward_rows, n, d, xhat)

    def backward(g):
        # gz = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat)), gxhat = g * weight
        g2 = g.reshape(-1, d)
        grads: list[Any] = [None] * len(inputs)
        if any(t.requires_grad for t in inputs):
            gz = xp.empty_like(g2)

            def input_grad_rows(rows: slice) -> None:
                gxhat = g2[rows] if weight is None else g2[rows] * weight.data
                xh, out_rows = xhat[rows], gz[rows]
                mean_gxhat_xhat = xp.einsum("ij,ij->i", gxhat, xh)[:, None] / d
                xp.multiply(xh, mean_gxhat_xhat, out=out_rows)
                xp.subtract(gxhat, out_rows, out=out_rows)
                out_rows -= gxhat.mean(axis=-1, keepdims=True)
                out_rows *= rstd[rows]

            cpu.run_blocks(input_grad_rows, n, d, g2)
            grads = [gi if t.requires_grad else None for t, gi in zip(inputs, input_grads(gz.reshape(shape)))]
        if weight is not None:
            grads.append(cpu.column_dots(g2, xhat) if weight.requires_grad else None)
        if bias is not None:
            grads.append(cpu.column_sums(g2) if bias.requires_grad else None)
        return grads

    parents = inputs + tuple(p for p in (weight, bias) if p is not None)
    return Tensor.from_op(out.reshape(shape), parents, backward, higher)


def _layer_norm_higher(z_of: Callable[[], Tensor], input_grads: Callable[[Tensor], list[Tensor]],
                       inputs: tuple[Tensor, ...], weight: Tensor | None, bias: Tensor | None, eps: float):
    """The layer norm's rule as the composite formula in tensor ops, for any of its paths: z_of()
    rebuilds the norm's input z from `inputs` (lazily, when create_graph asks), input_grads(gz) turns
    z's gradient into theirs. gz = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))."""
    def higher(g, out):
        z = z_of()
        d, n = z.shape[-1], math.prod(z.shape[:-1])
        centered = z - z.mean(axis=-1, keepdims=True)
        rstd = 1 / sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
        xhat = centered * rstd
        grads: list[Any] = [None] * len(inputs)
        if any(t.requires_grad for t in inputs):
            gxhat = g if weight is None else g * weight
            gz = rstd * (gxhat - gxhat.mean(axis=-1, keepdims=True)
                         - xhat * (gxhat * xhat).mean(axis=-1, keepdims=True))
            grads = [gi if t.requires_grad else None for t, gi in zip(inputs, input_grads(gz))]
        if weight is not None:
            grads.append((g * xhat).reshape(n, d).sum(axis=0) if weight.requires_grad else None)
        if bias is not None:
            grads.append(g.reshape(n, d).sum(axis=0) if bias.requires_grad else None)
        return grads

    return higher


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
    check_dtypes("rms_norm", x, weight=weight)
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

    def higher(g, result):  # the same formula, with r and xhat rebuilt from x in tensor ops
        r_t = 1 / sqrt((x * x).mean(axis=axes, keepdims=True) + eps)
        xhat_t = x * r_t
        gxhat = g if weight is None else g * weight
        gx = None
        if x.requires_grad:
            gx = r_t * (gxhat - xhat_t * (gxhat * xhat_t).mean(axis=axes, keepdims=True))
        if weight is None:
            return (gx,)
        lead = math.prod(x.shape[:x.ndim - k])
        return gx, (g * xhat_t).reshape(lead, *shape).sum(axis=0) if weight.requires_grad else None

    return Tensor.from_op(out, (x,) if weight is None else (x, weight), backward, higher)
