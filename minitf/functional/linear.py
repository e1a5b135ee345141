"""Affine maps and lookups: linear, the fused feed-forward block, embedding."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend, cpu, scatter
from ..autograd import Tensor, scatter_add
from ..rng import dropout_keep
from .activations import INV_SQRT_2, INV_SQRT_2PI, check_probability, erf, gelu, gelu_derivative
from .dtypes import check_dtypes

__all__ = ["linear", "feed_forward", "embedding"]


def _check_linear(x: Tensor, weight: Tensor, bias: Tensor | None, name: str) -> None:
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"{name}: input of shape {x.shape} does not fit weight of shape "
                         f"{weight.shape} (expected (..., {weight.shape[-1]}) and (out, in))")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{name}: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    check_dtypes(name, x, weight=weight, bias=bias)
    backend.check_same_device(name, x.data, weight.data, *([bias.data] if bias is not None else []))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias. x: (..., in); weight: (out, in) as in PyTorch; bias: (out,); -> (..., out)."""
    _check_linear(x, weight, bias, "linear")
    lead, n_in, n_out = x.shape[:-1], weight.shape[1], weight.shape[0]
    x2 = x.data.reshape(-1, n_in)  # one large GEMM instead of a batch of small ones
    epilogue = None if bias is None else _scale_and_add_bias_rows(1.0, bias.data)
    y = cpu.matmul(x2, weight.data.T, epilogue=epilogue)

    def backward(g):
        gx, gw, gb = cpu.linear_grads(g.reshape(-1, n_out), x2, weight.data, input_grad=x.requires_grad,
                                      weight_grad=weight.requires_grad,
                                      bias_grad=bias is not None and bias.requires_grad)
        gx = gx.reshape(x.shape) if gx is not None else None
        return [gx, gw] if bias is None else [gx, gw, gb]

    def higher(g, out):  # the same products, of tensors
        g2 = g.reshape(x2.shape[0], n_out)
        gx = (g2 @ weight).reshape(x.shape) if x.requires_grad else None
        gw = g2.swapaxes(0, 1) @ x.reshape(x2.shape) if weight.requires_grad else None
        if bias is None:
            return gx, gw
        return gx, gw, g2.sum(axis=0) if bias.requires_grad else None

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(y.reshape(*lead, n_out), parents, backward, higher)


def _scale_and_add_bias_rows(scale: float, bias: Any) -> Any:
    """An epilogue for cpu.matmul: out = out * scale + bias on the rows just written."""
    def epilogue(out: Any, rows: slice) -> None:
        if scale != 1.0:
            out[rows] *= scale
        out[rows] += bias
    return epilogue


def _scale_rows(scale: float) -> Any:
    """An epilogue for cpu.matmul: out *= scale on the rows just written (if scale != 1)."""
    def epilogue(out: Any, rows: slice) -> None:
        if scale != 1.0:
            out[rows] *= scale
    return epilogue


def _gelu_inplace(h: Any) -> Any:
    """Apply gelu to pre-activations h in place; return its derivative at h."""
    xp = backend.get_array_module(h)
    cdf = 0.5 * (1 + erf(h * INV_SQRT_2))
    derivative = cdf + h * xp.exp(-0.5 * h * h) * INV_SQRT_2PI
    h *= cdf
    return derivative


def feed_forward(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, activation: str = "relu",
                 dropout_p: float = 0.0, training: bool = False) -> Tensor:
    """The Transformer feed-forward block as one node: linear -> activation -> dropout -> linear.

    x: (..., d); w1: (ff, d); b1: (ff,); w2: (d_out, ff); b2: (d_out,); -> (..., d_out).
    The hidden activations are transformed in place, so the block allocates one
    (tokens, ff) array and one mask in the forward. The products and the passes between them
    run in blocks of rows on minitf's threads (minitf.cpu).
    """
    _check_linear(x, w1, b1, "feed_forward (first layer)")
    if w2.ndim != 2 or w2.shape[1] != w1.shape[0]:
        raise ValueError(f"feed_forward: second weight has shape {w2.shape}, expected (out, {w1.shape[0]})")
    if b2.shape != (w2.shape[0],):
        raise ValueError(f"feed_forward: second bias has shape {b2.shape}, expected ({w2.shape[0]},)")
    check_dtypes("feed_forward (second layer)", x, weight=w2, bias=b2)
    backend.check_same_device("feed_forward (second layer)", x.data, w2.data, b2.data)
    check_probability(dropout_p, "dropout_p")
    if activation not in ("relu", "gelu"):
        raise ValueError(f"feed_forward: activation must be 'relu' or 'gelu', got {activation!r}")
    xp = backend.get_array_module(x.data)
    x2 = x.data.reshape(-1, x.shape[-1])
    shape = (x2.shape[0], w1.shape[0])
    keep, scale = dropout_keep(xp, shape, dropout_p, x2.dtype) if training and dropout_p > 0 else (None, 1.0)
    # a: the hidden activations, transformed in place block by block right after the first GEMM
    # writes them; da: their derivative times the dropout mask. relu is applied as a *= (a > 0),
    # together with the dropout mask: one pass instead of np.maximum's slower one and a second
    # product (so a pre-activation of -inf gives NaN instead of 0); relu's derivative stays
    # boolean, a quarter of the memory. The dropout's 1/(1-p) is applied to the four times
    # smaller (tokens, d) arrays and the weight gradients instead: a (and its gradient) stay unscaled.
    da = xp.empty(shape, dtype=bool if activation == "relu" else x2.dtype)

    def activate(a: Any, rows: slice) -> None:
        h = a[rows]
        h += b1.data
        if activation == "relu":
            xp.greater(h, 0, out=da[rows])
            if keep is not None:
                da[rows] &= keep[rows]
            h *= da[rows]
        else:
            da[rows] = _gelu_inplace(h)
            if keep is not None:
                da[rows] *= keep[rows]
                h *= keep[rows]

    a = cpu.matmul(x2, w1.data.T, epilogue=activate)  # a is (activation * mask) / scale
    y = cpu.matmul(a, w2.data.T, epilogue=_scale_and_add_bias_rows(scale, b2.data))

    def backward(g):
        g2 = g.reshape(-1, w2.shape[0])

        def times_derivative(gh: Any, rows: slice) -> None:
            gh[rows] *= da[rows]

        # gh: the gradient of the hidden pre-activations, without the factor scale; computed on the
        # calling thread, whose malloc arena reuses its memory best (cpu.concurrently)
        gh, gw2, _ = cpu.linear_grads(g2, a, w2.data, weight_grad=w2.requires_grad, scale=scale,
                                      input_epilogue=times_derivative, input_on_caller=True)
        gx, gw1, _ = cpu.linear_grads(gh, x2, w1.data, input_grad=x.requires_grad, weight_grad=w1.requires_grad,
                                      scale=scale, input_epilogue=_scale_rows(scale))
        gx = gx.reshape(x.shape) if gx is not None else None
        return gx, gw1, cpu.scaled(cpu.column_sums(gh), scale), gw2, cpu.column_sums(g2)

    def higher(g, out):  # the composite formula: the hidden layer rebuilt from the inputs in tensor ops
        xt = x.reshape(x2.shape)
        h = xt @ w1.swapaxes(0, 1) + b1
        if activation == "relu":  # relu's derivative times the mask: the constant da
            a_t, slope = h * da, da
        else:
            a_t, slope = gelu(h), gelu_derivative(h)
            if dropout_p > 0 and training:  # the mask read back from a = gelu * mask and da = gelu' * mask
                kept = (da != 0) | (a != 0)  # (`keep` itself the backward does not hold; gelu and gelu'
                a_t, slope = a_t * kept, slope * kept  # are 0 together only where both underflow)
        g2 = g.reshape(x2.shape[0], w2.shape[0])
        gh = (g2 @ w2) * slope * scale if any(t.requires_grad for t in (x, w1, b1)) else None
        return ((gh @ w1).reshape(x.shape) if x.requires_grad else None,
                gh.swapaxes(0, 1) @ xt if w1.requires_grad else None,
                gh.sum(axis=0) if b1.requires_grad else None,
                g2.swapaxes(0, 1) @ a_t * scale if w2.requires_grad else None,
                g2.sum(axis=0) if b2.requires_grad else None)

    return Tensor.from_op(y.reshape(*x.shape[:-1], w2.shape[0]), (x, w1, b1, w2, b2), backward, higher)


def embedding(ids: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of `weight` (V, D) picked by integer `ids` (...) -> (..., D).

    The backward adds gradients of repeated ids (scatter-add); the `padding_idx` row gets none.
    """
    index = ids.data if isinstance(ids, Tensor) else ids
    if not hasattr(index, "dtype"):
        index = np.asarray(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"embedding: ids must be integers, got dtype {index.dtype}")
    backend.check_same_device("embedding", index, weight.data)
    vocab = weight.shape[0]
    if index.size and (int(index.min()) < 0 or int(index.max()) >= vocab):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise IndexError(f"embedding: id {bad} is outside the vocabulary of {vocab} rows")

    def backward(g):
        xp = backend.get_array_module(g)
        gw = xp.zeros(weight.shape, dtype=g.dtype)
        scatter.add_rows(gw, index.reshape(-1), g.reshape(-1, weight.shape[1]))
        if padding_idx is not None:
            gw[padding_idx] = 0
        return (gw,)

    def higher(g, out):  # the scatter-add as a tensor op; the padding row masked by a constant
        xp = backend.get_array_module(weight.data)
        rows = xp.broadcast_to(index.reshape(-1, 1), (index.size, weight.shape[1]))
        zeros = Tensor.from_op(xp.zeros(weight.shape, dtype=weight.dtype))
        gw = scatter_add(zeros, 0, rows, g.reshape(index.size, weight.shape[1]))
        if padding_idx is not None:
            keep = xp.ones((weight.shape[0], 1), dtype=weight.dtype)
            keep[padding_idx] = 0
            gw = gw * keep
        return (gw,)

    return Tensor.from_op(weight.data[index], (weight,), backward, higher)
