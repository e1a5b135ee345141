"""Scaled dot-product attention as one node: softmax(q k^T * scale + mask) v, scale 1 / sqrt(E) by default."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, cpu
from ..autograd import Tensor, where
from ..rng import dropout_keep
from .activations import check_probability, keep_and_scale
from .dtypes import check_dtypes

__all__ = ["scaled_dot_product_attention", "causal_mask"]


def causal_mask(xp: Any, len_q: int, len_k: int) -> Any:
    """(len_q, len_k) boolean, True where query i may attend key j <= i (top-left aligned, as PyTorch)."""
    return xp.tril(xp.ones((len_q, len_k), dtype=bool))


def _mask_parts(q: Tensor, k: Tensor, mask: Any, is_causal: bool) -> tuple[Any, Any]:
    """(allowed, bias): the boolean mask of allowed (query, key) pairs and the additive float bias
    (an array, or the mask Tensor itself), each None if absent. A float mask's -inf entries go into
    `allowed` (the bias has 0 there), so a row masked either way gives zeros, never NaN."""
    xp = backend.get_array_module(q.data)
    allowed = bias = None
    if mask is not None:
        data = mask.data if isinstance(mask, Tensor) else mask
        if not hasattr(data, "dtype"):
            data = np.asarray(data)
        if data.dtype.kind not in "bf":
            raise TypeError("attention: mask must be boolean (True = may attend) or floating-point "
                            f"(added to the scores), got dtype {data.dtype}")
        backend.check_same_device("attention mask", q.data, data)
        scores_shape = q.shape[:-1] + (k.shape[-2],)
        try:
            np.broadcast_shapes(data.shape, scores_shape)
        except ValueError:
            raise ValueError(f"attention: mask of shape {data.shape} does not broadcast to the "
                             f"scores' shape {scores_shape}") from None
        if data.dtype == np.bool_:
            allowed = data
        else:
            blocked = xp.isneginf(data)
            allowed = ~blocked if blocked.any() else None
            bias = mask if isinstance(mask, Tensor) and mask.requires_grad else \
                xp.where(blocked, 0, data).astype(q.dtype, copy=False)
    if is_causal:
        causal = causal_mask(xp, q.shape[-2], k.shape[-2])
        allowed = causal if allowed is None else allowed & causal
    return allowed, bias


def _bias_array(bias: Any, allowed: Any, dtype: Any) -> Any:
    """The additive bias as an array of `dtype` (0 where a float mask was -inf), or None."""
    if not isinstance(bias, Tensor):
        return bias
    xp = backend.get_array_module(bias.data)
    data = bias.data if allowed is None else xp.where(allowed, bias.data, 0)
    return data.astype(dtype, copy=False)


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


def _add(scores: Any, term: Any) -> Any:
    """scores + term, in place when term broadcasts to the scores' shape."""
    if np.broadcast_shapes(term.shape, scores.shape) == scores.shape:
        scores += term
        return scores
    return scores + term


def _masked_softmax(scores: Any, allowed: Any, bias: Any = None) -> Any:
    """Row softmax of scores + bias over allowed keys only, computed in place in `scores` where
    shapes allow.

    A row with no allowed key gives zeros, never NaN. The mask enters as an additive bias
    of 0 / -inf built on the mask's own (usually broadcast, small) shape.
    """
    xp = backend.get_array_module(scores)
    if bias is not None:
        scores = _add(scores, bias)
    if allowed is not None:
        blocked = xp.zeros(allowed.shape, dtype=scores.dtype)
        blocked[~allowed] = -np.inf
        scores = _add(scores, blocked)
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


def _softmax_in_blocks(scores: Any, scale: float, allowed: Any, bias: Any = None) -> Any:
    """_masked_softmax(scores * scale, allowed, bias) in place, in blocks of the first axis on
    minitf's threads (one block if a mask broadcasts the scores to a larger shape)."""
    masks = [a for a in (allowed, bias) if a is not None]
    if scores.ndim < 2 or any(np.broadcast_shapes(a.shape, scores.shape) != scores.shape for a in masks):
        scores *= scale
        return _masked_softmax(scores, allowed, bias)

    def rows_of(a: Any, rows: slice) -> Any:  # a mask's rows, or all of it where it broadcasts
        return a[rows] if a is not None and a.ndim == scores.ndim and a.shape[0] > 1 else a

    def block(rows: slice) -> None:
        s = scores[rows]
        s *= scale
        _masked_softmax(s, rows_of(allowed, rows), rows_of(bias, rows))  # in place: shapes fit

    cpu.run_blocks(block, scores.shape[0], scores[:1].size, scores)
    return scores


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Any = None,
                                 is_causal: bool = False, dropout_p: float = 0.0,
                                 return_weights: bool = False, *, attn_mask: Any = None,
                                 scale: float | None = None) -> Any:
    """softmax(q k^T * scale + mask) v over keys allowed by the mask (and causality).

    q: (..., Lq, E); k: (..., Lk, E); v: (..., Lk, Ev); leading axes broadcast. `mask` (or
    PyTorch's name `attn_mask`), broadcastable to (..., Lq, Lk): boolean, True = may attend; or
    floating-point, added to the scaled scores (-inf = may not attend; a float Tensor that requires
    grad gets its gradient, e.g. a learned position bias). `scale` defaults to 1 / sqrt(E).
    `is_causal` lets query i attend keys j <= i; with `mask=` both apply, while `attn_mask=` and
    `is_causal` together are an error, as in PyTorch. A row with no allowed key gives zeros (and
    zero gradients), never NaN. Dropout with probability `dropout_p` is applied to the weights
    (pass 0 in evaluation). Returns (..., Lq, Ev), and with `return_weights=True` also the
    weights (..., Lq, Lk) as a tensor without graph.
    """
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"attention: shapes q {q.shape}, k {k.shape}, v {v.shape} do not fit "
                         "(need q (..., Lq, E), k (..., Lk, E), v (..., Lk, Ev))")
    if not isinstance(is_causal, (bool, np.bool_)):  # torch's order is (q, k, v, attn_mask, dropout_p, is_causal)
        raise TypeError(f"attention: is_causal must be a bool, got {is_causal!r} (minitf's positional order is "
                        "q, k, v, mask, is_causal, dropout_p: pass dropout_p= by name)")
    mask = _torch_mask(mask, attn_mask, is_causal)
    check_probability(dropout_p, "dropout_p")
    backend.check_same_device("attention", q.data, k.data, v.data)
    check_dtypes("attention", q, input_name="q", k=k, v=v)
    xp = backend.get_array_module(q.data)
    scale = _scale(scale, q.shape[-1])
    allowed, bias = _mask_parts(q, k, mask, is_causal)
    bias_grad = isinstance(bias, Tensor)  # the mask is a float Tensor that requires grad
    weights = _softmax_in_blocks(cpu.matmul(q.data, xp.swapaxes(k.data, -1, -2)), scale, allowed,
                                 _bias_array(bias, allowed, q.dtype))
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
        factor = 1.0 if bias_grad else scale  # the mask's gradient is the scores' before the scale

        def softmax_grad(rows: slice) -> None:  # gs = weights * (gw - sum(gw * weights)) * scale
            gw, w = gs[rows], weights[rows]
            if keep is not None:
                gw *= keep[rows]
                gw *= keep_scale
            gw -= (gw * w).sum(axis=-1, keepdims=True)
            gw *= w
            gw *= factor

        if gs.shape == weights.shape:
            cpu.run_blocks(softmax_grad, gs.shape[0], gs[:1].size, gs)
        else:  # v broadcast the output beyond the weights' shape
            softmax_grad(slice(None))
        gbias = None
        if bias_grad:
            gbias = gs.copy()  # 0 where not allowed: the weight is 0 there
            gs *= scale
        gq, gk = cpu.concurrently(
            (lambda: _product(xp, gs, k.data)) if q.requires_grad else None,
            (lambda: _product(xp, xp.swapaxes(gs, -1, -2), q.data)) if k.requires_grad else None)
        return (gq, gk, gv, gbias) if bias_grad else (gq, gk, gv)

    dropout_factor = None if keep is None else (keep, keep_scale)
    higher = _attention_higher(q, k, v, scale, lambda: _mask_parts(q, k, mask, is_causal), dropout_factor)
    parents = (q, k, v, bias) if bias_grad else (q, k, v)
    out = Tensor.from_op(_product(xp, dropped, v.data), parents, backward, higher)
    return (out, Tensor.from_op(weights)) if return_weights else out


def _torch_mask(mask: Any, attn_mask: Any, is_causal: bool) -> Any:
    """The one mask of `mask=` (minitf's, combined with is_causal) or `attn_mask=` (PyTorch's, which
    PyTorch refuses with is_causal)."""
    if attn_mask is None:
        return mask
    if mask is not None:
        raise TypeError("scaled_dot_product_attention() got both mask and attn_mask; pass one "
                        "(attn_mask is PyTorch's name)")
    if is_causal:
        raise ValueError("scaled_dot_product_attention: attn_mask and is_causal=True together are refused, "
                         "as in PyTorch; pass mask= to combine a mask with causality")
    return attn_mask


def _scale(scale: Any, size: int) -> float:
    """The scores' factor: 1 / sqrt(E) by default, else `scale` (a finite number)."""
    if scale is None:
        return 1.0 / math.sqrt(size)
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)) \
            or not math.isfinite(scale):
        raise ValueError(f"attention: scale must be a finite number, got {scale!r}")
    return float(scale)


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


def _attention_higher(q: Tensor, k: Tensor, v: Tensor, scale: float, parts_of: Any, dropout_factor: Any):
    """The attention's rule as the composite formula in tensor ops: the weights rebuilt from q and k
    (the mask too: parts_of() gives _mask_parts), then the backward's products
    (gs = w * (gw - sum(gw * w)) * scale; a float mask Tensor that requires grad gets gs / scale)."""
    def higher(g, out):
        allowed, bias = parts_of()
        bias_grad = isinstance(bias, Tensor)
        scores = (q @ k.swapaxes(-1, -2)) * scale
        if bias is not None:
            scores = scores + (where(allowed, bias, 0.0) if bias_grad and allowed is not None else bias)
        w = _masked_softmax_tensor(scores, allowed)
        dropped = w if dropout_factor is None else w * dropout_factor[0] * dropout_factor[1]
        gv = dropped.swapaxes(-1, -2) @ g if v.requires_grad else None
        gq = gk = gbias = None
        if q.requires_grad or k.requires_grad or bias_grad:
            gw = g @ v.swapaxes(-1, -2)
            if dropout_factor is not None:
                gw = gw * dropout_factor[0] * dropout_factor[1]
            gscores = w * (gw - (gw * w).sum(axis=-1, keepdims=True))
            gs = gscores * scale
            gq = gs @ k if q.requires_grad else None
            gk = gs.swapaxes(-1, -2) @ q if k.requires_grad else None
            gbias = gscores if bias_grad else None
        return (gq, gk, gv, gbias) if bias_grad else (gq, gk, gv)

    return higher
