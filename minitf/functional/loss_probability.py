"""Losses on probabilities and log-probabilities, with PyTorch's semantics and reductions:
nll_loss, binary_cross_entropy, binary_cross_entropy_with_logits, kl_div.

Class weights, `weight` and `pos_weight` are constants (PyTorch does not differentiate them
either): a weight that requires grad is an error.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..autograd import Tensor, exp, log, sigmoid
from ..autograd.ops_math import lift
from .activations import log_sigmoid, sigmoid_array, softplus_array
from .loss_regression import check_reduction, expand, expand_tensor, mean_of, pair, reduce

__all__ = ["nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]


def _constant(name: str, argument: str, value: Any, like: Tensor) -> Any:
    """The array of a weight argument (None stays None); it must not require grad."""
    if value is None:
        return None
    if isinstance(value, Tensor) and value.requires_grad:
        raise ValueError(f"{name}: {argument} is a constant and cannot require grad (as in PyTorch)")
    return lift(value, like).data.astype(like.dtype, copy=False)


def _class_targets(name: str, input: Tensor, target: Any, ignore_index: int) -> Any:
    """Integer targets of shape input.shape minus the class axis 1 (axis 0 for 1-D input), checked."""
    t = target.data if isinstance(target, Tensor) else target
    if not hasattr(t, "dtype"):
        t = np.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: target must hold integer class ids, got dtype {t.dtype}")
    if input.ndim == 0:
        raise ValueError(f"{name}: input must have a class axis, got shape {input.shape}")
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if t.shape != expected:
        raise ValueError(f"{name}: target has shape {t.shape}, expected {expected} for input of shape "
                         f"{input.shape} (classes on axis {1 if input.ndim > 1 else 0})")
    backend.check_same_device(name, input.data, t)
    n_classes = input.shape[1 if input.ndim > 1 else 0]
    bad = ((t < 0) | (t >= n_classes)) & (t != ignore_index)
    if bad.any():
        raise IndexError(f"{name}: target {int(t[bad].ravel()[0])} is not a class id in [0, {n_classes}) "
                         f"nor ignore_index {ignore_index}")
    return t


def _class_index(xp: Any, targets: Any) -> tuple[Any, ...]:
    """The index of input[n, targets[n, d1, ...], d1, ...] (of input[targets] for 1-D input)."""
    if targets.ndim == 0:
        return (targets,)
    grids = [xp.arange(n).reshape([-1 if i == j else 1 for j in range(targets.ndim)])
             for i, n in enumerate(targets.shape)]
    return (grids[0], targets, *grids[1:])


def nll_loss(input: Tensor, target: Any, weight: Any = None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class log-probabilities, as torch.nn.functional.nll_loss.

    input: (N, C) or (N, C, d1, ...) or (C,); target: (N,) or (N, d1, ...) or (). Per element:
    -weight[t] * input[n, t, ...], and 0 where t == ignore_index. "mean" divides the sum by the
    sum of the weights of the kept targets (NaN if none is kept, with zero gradients, as PyTorch).
    Backward: -weight[t] (scaled as the reduction) at the target class, 0 elsewhere.
    """
    check_reduction("nll_loss", reduction)
    t = _class_targets("nll_loss", input, target, ignore_index)
    w = _constant("nll_loss", "weight", weight, input)
    xp = backend.get_array_module(input.data)
    n_classes = input.shape[1 if input.ndim > 1 else 0]
    if w is not None and w.shape != (n_classes,):
        raise ValueError(f"nll_loss: weight has shape {w.shape}, expected ({n_classes},) for input {input.shape}")
    keep = t != ignore_index
    safe_t = xp.where(keep, t, 0)
    at_target = _class_index(xp, safe_t)
    picked = input.data[at_target]
    item_weight = keep.astype(input.dtype) if w is None else w.astype(input.dtype)[safe_t] * keep
    per_item = -picked * item_weight
    if reduction == "mean":
        total_weight = item_weight.sum()
        out = mean_of(per_item.sum(), total_weight)
    else:
        out = reduce(per_item, reduction)

    def backward(g):
        if reduction == "mean":
            scale = g / total_weight if total_weight else xp.zeros_like(g)
        else:
            scale = g
        grad = xp.zeros(input.shape, dtype=input.dtype)
        grad[at_target] = -item_weight * scale
        return (grad,)

    def higher(g, result):  # linear in the input: a constant array of -weight[t] at the targets, times g
        picks = xp.zeros(input.shape, dtype=input.dtype)
        picks[at_target] = -item_weight
        if reduction == "mean":
            scale = g / total_weight if total_weight else g * 0
        else:
            scale = g.unsqueeze(1) if reduction == "none" and input.ndim > 1 else g
        return (scale * picks,)

    return Tensor.from_op(out, (input,), backward, higher)


def binary_cross_entropy(input: Tensor, target: Any, weight: Any = None, reduction: str = "mean") -> Tensor:
    """-weight * (t * log(x) + (1 - t) * log(1 - x)) for probabilities x in [0, 1], as PyTorch.

    input and target have one shape; weight broadcasts to it. Each log is clamped at -100, as
    PyTorch, so x = 0 or 1 gives a finite loss. Backward: weight * (x - t) / max(x * (1 - x), 1e-12)
    for the input, weight * (log(1 - x) - log(x)) for the target.
    """
    check_reduction("binary_cross_entropy", reduction)
    input, target, shape = pair("binary_cross_entropy", input, target, same_shape=True)
    w = _constant("binary_cross_entropy", "weight", weight, input)
    xp = backend.get_array_module(input.data)
    x, t = input.data, target.data
    if x.size and (xp.isnan(x).any() or x.min() < 0 or x.max() > 1):
        raise ValueError("binary_cross_entropy: input must hold probabilities in [0, 1] "
                         f"(got values from {float(xp.nanmin(x))} to {float(xp.nanmax(x))})")
    with np.errstate(divide="ignore"):
        log_x, log_1mx = xp.maximum(xp.log(x), -100), xp.maximum(xp.log1p(-x), -100)
    per_element = -(t * log_x + (1 - t) * log_1mx)
    if w is not None:
        per_element = per_element * w

    def backward(g):
        gw = expand(g, reduction, shape)
        if w is not None:
            gw = gw * w
        gx = gw * (x - t) / xp.maximum(x * (1 - x), 1e-12)
        gt = None
        if target.requires_grad:
            with np.errstate(divide="ignore"):
                gt = gw * (xp.log1p(-x) - xp.log(x))
        return gx, gt

    def higher(g, out):  # the same formula in tensor ops; the clamp's 1e-12 is a constant
        gw = expand_tensor(g, reduction, shape)
        if w is not None:
            gw = gw * w
        variance = input * (1 - input)
        small = variance.data < 1e-12
        gx = gw * (input - target) / (variance * (~small).astype(x.dtype) + (small * 1e-12).astype(x.dtype))
        gt = None
        if target.requires_grad:
            with np.errstate(divide="ignore"):
                gt = gw * (log(1 - input) - log(input))
        return gx, gt

    return Tensor.from_op(reduce(per_element, reduction), (input, target), backward, higher)


def binary_cross_entropy_with_logits(input: Tensor, target: Any, weight: Any = None, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """binary_cross_entropy(sigmoid(x), t) computed from the logits x without overflow, as PyTorch.

    Per element: weight * (pos_weight * t * softplus(-x) + (1 - t) * softplus(x)); pos_weight
    (e.g. one per class, on the last axis) and weight broadcast to input's shape, which target
    must equal. Backward: weight * (sigmoid(x) * (pos_weight * t + 1 - t) - pos_weight * t) for the
    input, weight * (pos_weight * softplus(-x) - softplus(x)) for the target.
    """
    name = "binary_cross_entropy_with_logits"
    check_reduction(name, reduction)
    input, target, shape = pair(name, input, target, same_shape=True)
    w = _constant(name, "weight", weight, input)
    pw = _constant(name, "pos_weight", pos_weight, input)
    xp = backend.get_array_module(input.data)
    x, t = input.data, target.data
    softplus_neg = softplus_array(xp, -x)  # -log(sigmoid(x)); -log(1 - sigmoid(x)) is that + x
    coef = None if pw is None else 1 + (pw - 1) * t  # pos_weight * t + 1 - t
    per_element = 1 - t  # (1 - t) * x + coef * softplus(-x)
    per_element *= x
    per_element += softplus_neg if coef is None else coef * softplus_neg
    if w is not None:
        per_element = per_element * w

    def backward(g):
        gw = expand(g, reduction, shape)
        if w is not None:
            gw = gw * w
        gx = sigmoid_array(xp, x)  # sigmoid(x) * coef - pos_weight * t
        if coef is None:
            gx -= t
        else:
            gx *= coef
            gx -= pw * t
        gx *= gw
        gt = None
        if target.requires_grad:  # pos_weight * softplus(-x) - softplus(x)
            gt = gw * (-x if pw is None else (pw - 1) * softplus_neg - x)
        return gx, gt

    def higher(g, out):  # the same formula in tensor ops; softplus(-x) = -log_sigmoid(x)
        gw = expand_tensor(g, reduction, shape)
        if w is not None:
            gw = gw * w
        if pw is None:
            gx = gw * (sigmoid(input) - target)
        else:
            gx = gw * (sigmoid(input) * (1 + target * (pw - 1)) - target * pw)
        gt = None
        if target.requires_grad:
            gt = gw * (-input if pw is None else log_sigmoid(input) * (1 - pw) - input)
        return gx, gt

    return Tensor.from_op(reduce(per_element, reduction), (input, target), backward, higher)


def kl_div(input: Tensor, target: Any, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL divergence of `target` from the log-probabilities `input`, as torch.nn.functional.kl_div.

    Per element: t * (log(t) - x) (0 where t == 0), or exp(t) * (t - x) with log_target.
    Reductions: "mean" over all elements, "batchmean" (sum / input.shape[0], the true KL
    divergence per sample), "sum", "none". input and target broadcast together.
    Backward: -t (or -exp(t)) for the input; log(t) + 1 - x (or exp(t) * (t + 1 - x)) for the target.
    """
    check_reduction("kl_div", reduction, ("mean", "batchmean", "sum", "none"))
    input, target, shape = pair("kl_div", input, target)
    if reduction == "batchmean" and len(shape) == 0:
        raise ValueError("kl_div: reduction 'batchmean' needs inputs with a batch axis, got 0-d ones")
    xp = backend.get_array_module(input.data)
    x, t = input.data, target.data
    if log_target:
        p = xp.exp(t)
        per_element = p * (t - x)
    else:
        per_element = t * xp.log(t + (t == 0)) - t * x  # (0 * log 0 is 0)
        p = None
    if reduction == "batchmean":
        out = mean_of(per_element.sum(), shape[0])
    else:
        out = reduce(per_element, reduction)

    def backward(g):
        if reduction == "batchmean":
            gl = xp.broadcast_to(mean_of(g, shape[0]), shape)
        else:
            gl = expand(g, reduction, shape)
        gx = -gl * (p if log_target else t)
        gt = None
        if target.requires_grad:
            with np.errstate(divide="ignore"):
                gt = gl * (p * (t + 1 - x) if log_target else xp.log(t) + 1 - x)
        return gx, gt

    def higher(g, result):  # the same formula in tensor ops
        if reduction == "batchmean":
            gl = expand_tensor(g, "sum", shape) / max(shape[0], 1)
        else:
            gl = expand_tensor(g, reduction, shape)
        p_t = exp(target) if log_target else None
        gx = -gl * (p_t if log_target else target)
        gt = None
        if target.requires_grad:
            with np.errstate(divide="ignore"):
                gt = gl * (p_t * (target + 1 - input) if log_target else log(target) + 1 - input)
        return gx, gt

    return Tensor.from_op(out, (input, target), backward, higher)
