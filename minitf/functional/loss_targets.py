"""cross_entropy's paths beside the fused one: probabilities as targets (soft labels) and class
weights, each a composite of differentiable ops (log_softmax, nll_loss, products, sums), so that
gradients of any order come from their parts; and where the class axis is (PyTorch's axis 1, or
minitf's last axis).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..autograd import Tensor, where
from ..autograd.axes import normalize_axis
from ..autograd.ops_math import lift
from .loss_probability import _constant, nll_loss
from .softmax import log_softmax

__all__ = ["class_axis_of", "move_axis", "soft_cross_entropy", "weighted_cross_entropy"]


def class_axis_of(logits: Tensor, class_axis: int) -> int:
    """The class axis as a non-negative int; 1 on 1-D logits (C,) means axis 0, as PyTorch's layout."""
    if logits.ndim == 0:
        raise ValueError(f"cross_entropy: logits must have a class axis, got shape {logits.shape}")
    if logits.ndim == 1 and class_axis == 1:
        return 0
    return normalize_axis(class_axis, logits.ndim, "cross_entropy: class_axis")


def move_axis(x: Tensor, source: int, destination: int) -> Tensor:
    """x with axis `source` moved to `destination` (a permutation, differentiable; x if it stays)."""
    if source == destination:
        return x
    order = [i for i in range(x.ndim) if i != source]
    order.insert(destination, source)
    return x.permute(*order)


def _weight_along(weight: Any, logits: Tensor, axis: int) -> Any:
    """The class weights (C,) as a constant array shaped to broadcast along `axis` of the logits."""
    n_classes = logits.shape[axis]
    w = _constant("cross_entropy", "weight", weight, logits)
    if w.shape != (n_classes,):
        raise ValueError(f"cross_entropy: weight has shape {w.shape}, expected ({n_classes},) "
                         f"for logits of shape {logits.shape} (classes on axis {axis})")
    return w.reshape([n_classes if i == axis else 1 for i in range(logits.ndim)])


def soft_cross_entropy(logits: Tensor, target: Any, axis: int, weight: Any, smoothing: float,
                       reduction: str, ignore_index: int) -> Tensor:
    """-sum_c w_c p_c log softmax(x)_c along `axis`, p the target probabilities (smoothed to
    (1 - s) p + s / C), as PyTorch's cross_entropy with a float target of the logits' shape:
    "mean" divides by the number of items (elements / C), not by weights."""
    if ignore_index >= 0:
        raise ValueError(f"cross_entropy: ignore_index ({ignore_index}) is not supported for "
                         "probabilities as targets (as in PyTorch)")
    p = lift(target, logits)
    backend.check_same_device("cross_entropy", logits.data, p.data)
    if p.shape != logits.shape:
        raise ValueError(f"cross_entropy: probabilities as target need the logits' shape {logits.shape}, "
                         f"got {p.shape}")
    if p.dtype != logits.dtype:
        p = p.astype(logits.dtype)
    n_classes = logits.shape[axis]
    if smoothing:
        p = p * (1 - smoothing) + smoothing / n_classes
    terms = log_softmax(logits, axis=axis) * p
    if weight is not None:
        terms = terms * _weight_along(weight, logits, axis)
    per_item = -terms.sum(axis=axis)
    if reduction == "none":
        return per_item
    total = per_item.sum()
    if reduction == "sum":
        return total
    items = logits.size // n_classes
    return total / items if items else total * np.nan  # no items: NaN, as PyTorch


def weighted_cross_entropy(logits: Tensor, targets: Any, axis: int, weight: Any, smoothing: float,
                           reduction: str, ignore_index: int) -> Tensor:
    """PyTorch's cross_entropy with class weights (targets: checked integer ids): (1 - s) times
    nll_loss(log_softmax(x), t, weight) plus s / C times -sum_c w_c log softmax(x)_c per kept item;
    "mean" divides both by the sum of the kept targets' weights (NaN, zero gradient, if 0)."""
    x = move_axis(logits, axis, 1 if logits.ndim > 1 else 0)  # PyTorch's layout, as nll_loss's
    cax = 1 if x.ndim > 1 else 0
    w = _weight_along(weight, x, cax)
    xp = backend.get_array_module(x.data)
    keep = targets != ignore_index
    if not keep.all():  # the logits of ignored items may be NaN or inf (padding): never read
        x = where(xp.expand_dims(keep, cax), x, 0.0)
    logp = log_softmax(x, axis=cax)
    nll = nll_loss(logp, targets, weight=w.reshape(-1), ignore_index=ignore_index, reduction=reduction)
    if not smoothing:
        return nll
    smooth = -(logp * w).sum(axis=cax) * keep.astype(x.dtype)
    if reduction == "none":
        smooth_total = smooth
    elif reduction == "sum":
        smooth_total = smooth.sum()
    else:
        kept_weight = float((w.reshape(-1)[xp.where(keep, targets, 0)] * keep).sum())
        smooth_total = smooth.sum() / kept_weight if kept_weight else smooth.sum() * 0.0
    return nll * (1 - smoothing) + smooth_total * (smoothing / x.shape[cax])
