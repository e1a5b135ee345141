"""Scaled dot-product attention as one node: softmax(q k^T / sqrt(d) + mask) v."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, cpu
from ..autograd import Tensor
from ..rng import dropout_keep
from .activations import check_probability, keep_and_scale
from .dtypes import check_dtypes

__all__ = ["scaled_dot_product_attention", "causal_mask"]


def causal_mask(xp: Any, len_q: int, len_k: int) -> Any:
    """(len_q, len_k) boolean, True where query i may attend key j <= i (top-left aligned, as PyTorch)."""
    return xp.tril(xp.ones((len_q, len_k), dtype=bool))


def _allowed(q: Tensor, k: Tensor, mask: Any, is_causal: bool) -> Any:
    """The boolean mask of allowed (query, key) pairs, or None if all are allowed."""
    xp = backend.get_array_module(q.data)
    allowed = None
    if mask is not None:
        allowed = mask.data if isinstance(mask, Tensor) else mask
        if not hasattr(allowed, "dtype"):
            allowed = np.asarray(allowed)
        if allowed.dtype != np.bool_:
            raise TypeError(f"attention: mask must be boolean (True = may attend), got dtype {allowed.dtype}")
        backend.check_same_device("attention mask", q.data, allowed)
        scores_shape = q.shape[:-1] + (k.shape[-2],)
        try:
            np.broadcast_shapes(allowed.shape, scores_shape)
        except ValueError:
            raise ValueError(f"attention: mask of shape {allowed.shape} does not broadcast to the "
                             f"scores' shape {scores_shape}") from None
    if is_causal:
        causal = causal_mask(xp, q.shape[-2], k.shape[-2])
        allowed = causal if allowed is None else allowed & causal
    return allowed


def _product(xp: Any, a: Any, b: Any) -> Any:
    """a @ b written into an array laid out heads-last (see _empty_heads_last) on NumPy."""
    if xp is not np or a.ndim < 3 or b.ndim < 3:
        return cpu.matmul(a, b)
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    return cpu.matmul(a, b, out=_empty_heads_last(shape, np.result_type(a, b)))


def _empty_heads_last(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialized array of `shape` (..., H, L, d) whose memory is laid out as (..., L, H, d).

    Multi-head attention merges the heads of its output, and splits those of its inputs, by
    permuting (B, H, L, d) to (B, L, H, d): with this layout that is a view, not a copy, both
    for the output in the forward and for the gradients of q, k and v in the backward.
    """
    swapped = shape[:-3] + (shape[-2], shape[-3], shape[-1])
    return np.empty(swapped, dtype=dtype).swapaxes(-3, -2)


def _masked_softmax(scores: Any, allowed: Any) -> Any:
    """Row softmax over allowed keys only, computed in place in `scores` where shapes allow.

    A row with no allowed key gives zeros, never NaN. The mask enters as an additive bias
    of 0 / -inf built on the mask's own (usually broadcast, small) shape.
    """
    xp = backend.get_array_module(scores)
    if allowed is not None:
        bias = xp.zeros(allowed.shape, dtype=scores.dtype)
        bias[~allowed] = -np.inf
        if np.broadcast_shapes(bias.shape, scores.shape) == scores.shape:
            scores += bias
        else:
            scores = scores + bias
    m = scores.max(axis=-1, keepdims=True)
    if allowed is not None:
        m = xp.where(xp.isfinite(m), m, 0)
    scores -= m
    e = xp.exp(scores, out=scores)
    denom = e.sum(axis=-1, keepdims=True)
    if allowed is not None:
        denom = xp.where(denom == 0, 1, denom)
    e /= denom
    return e


def _softmax_in_blocks(scores: Any, scale: float, allowed: Any) -> Any:
    """_masked_softmax(scores * scale, allowed) in place, in blocks of the first axis on
    minitf's threads (one block if the mask broadcasts the scores to a larger shape)."""
    if scores.ndim < 2 or (allowed is not None
                           and np.broadcast_shapes(allowed.shape, scores.shape) != scores.shape):
        scores *= scale
        return _masked_softmax(scores, allowed)
    split_mask = allowed is not None and allowed.ndim == scores.ndim and allowed.shape[0] > 1

    def block(rows: slice) -> None:
        s = scores[rows]
        s *= scale
        _masked_softmax(s, allowed[rows] if split_mask else allowed)  # in place: shapes fit

    cpu.run_blocks(block, scores.shape[0], scores[:1].size, scores)
    return scores


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Any = None,
                                 is_causal: bool = False, dropout_p: float = 0.0,
                                 return_weights: bool = False) -> Any:
    """softmax(q k^T / sqrt(d)) v over keys allowed by `mask` (and causality).

    q: (..., Lq, d); k: (..., Lk, d); v: (..., Lk, dv); leading axes broadcast. mask:
    boolean, broadcastable to (..., Lq, Lk), True = may attend. Dropout with probability
    `dropout_p` is applied to the weights (pass 0 in evaluation). Returns (..., Lq, dv),
    and with `return_weights=True` also the weights (..., Lq, Lk) as a tensor without graph.
    """
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"attention: shapes q {q.shape}, k {k.shape}, v {v.shape} do not fit "
                         "(need q (..., Lq, d), k (..., Lk, d), v (..., Lk, dv))")
    check_probability(dropout_p, "dropout_p")
    backend.check_same_device("attention", q.data, k.data, v.data)
    check_dtypes("attention", q, input_name="q", k=k, v=v)
    xp = backend.get_array_module(q.data)
    scale = 1.0 / math.sqrt(q.shape[-1])
    weights = _softmax_in_blocks(cpu.matmul(q.data, xp.swapaxes(k.data, -1, -2)), scale,
                                 _allowed(q, k, mask, is_causal))
    dropped = weights
    keep = None
    if dropout_p > 0:
        keep, keep_scale = dropout_keep(xp, weights.shape, dropout_p, weights.dtype)
        dropped = keep_and_scale(weights, keep, keep_scale)

    def backward(g):
        # the weights' gradient gs (made the scores' below) and v's, at once (cpu.concurrently)
        gs, gv = cpu.concurrently(
            lambda: cpu.matmul(g, xp.swapaxes(v.data, -1, -2)),
            (lambda: _product(xp, xp.swapaxes(dropped, -1, -2), g)) if v.requires_grad else None)

        def softmax_grad(rows: slice) -> None:  # gs = weights * (gw - sum(gw * weights)) * scale
            gw, w = gs[rows], weights[rows]
            if keep is not None:
                gw *= keep[rows]
                gw *= keep_scale
            gw -= (gw * w).sum(axis=-1, keepdims=True)
            gw *= w
            gw *= scale

        if gs.shape == weights.shape:
            cpu.run_blocks(softmax_grad, gs.shape[0], gs[:1].size, gs)
        else:  # v broadcast the output beyond the weights' shape
            softmax_grad(slice(None))
        gq, gk = cpu.concurrently(
            (lambda: _product(xp, gs, k.data)) if q.requires_grad else None,
            (lambda: _product(xp, xp.swapaxes(gs, -1, -2), q.data)) if k.requires_grad else None)
        return gq, gk, gv

    dropout_factor = None if keep is None else (keep, keep_scale)
    higher = _attention_higher(q, k, v, scale, lambda: _allowed(q, k, mask, is_causal), dropout_factor)
    out = Tensor.from_op(_product(xp, dropped, v.data), (q, k, v), backward, higher)
    return (out, Tensor.from_op(weights)) if return_weights else out


def _masked_softmax_tensor(scores: Tensor, allowed: Any) -> Tensor:
    """_masked_softmax in tensor ops (differentiable again): the mask enters as constant factors,
    a row with no allowed key gives zeros. The shift by the row maximum is a constant: the
    softmax does not depend on it."""
    xp = backend.get_array_module(scores.data)
    if allowed is None:
        shift = scores.data.max(axis=-1, keepdims=True)
        e = (scores - shift).exp()
        return e / e.sum(axis=-1, keepdims=True)
    on = allowed.astype(scores.dtype)
    shift = xp.where(allowed, scores.data, -np.inf).max(axis=-1, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, 0)
    e = ((scores - shift) * on).exp() * on  # masked entries: exp(0) * 0, never inf * 0
    denom = e.sum(axis=-1, keepdims=True)
    return e / (denom + (denom.data == 0).astype(scores.dtype))


def _attention_higher(q: Tensor, k: Tensor, v: Tensor, scale: float, allowed_of: Any, dropout_factor: Any):
    """The attention's rule as the composite formula in tensor ops: the weights rebuilt from q and k
    (the mask too: allowed_of()), then the backward's products (gs = w * (gw - sum(gw * w)) * scale)."""
    def higher(g, out):
        w = _masked_softmax_tensor((q @ k.swapaxes(-1, -2)) * scale, allowed_of())
        dropped = w if dropout_factor is None else w * dropout_factor[0] * dropout_factor[1]
        gv = dropped.swapaxes(-1, -2) @ g if v.requires_grad else None
        gq = gk = None
        if q.requires_grad or k.requires_grad:
            gw = g @ v.swapaxes(-1, -2)
            if dropout_factor is not None:
                gw = gw * dropout_factor[0] * dropout_factor[1]
            gs = w * (gw - (gw * w).sum(axis=-1, keepdims=True)) * scale
            gq = gs @ k if q.requires_grad else None
            gk = gs.swapaxes(-1, -2) @ q if k.requires_grad else None
        return gq, gk, gv

    return higher
