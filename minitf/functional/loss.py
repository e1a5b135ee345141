"""Cross-entropy with ignore_index and label smoothing, as one node over the last (class) axis;
the class axis anywhere, class weights and probabilities as targets through loss_targets.py."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import backend, cpu, kernels
from ..autograd import Tensor, where
from .loss_regression import mean_of
from .loss_targets import class_axis_of, move_axis, soft_cross_entropy, weighted_cross_entropy
from .softmax import exp_shifted, softmax

__all__ = ["cross_entropy"]


def in_row_blocks(fn: Callable[[slice], Any], x: Any) -> None:
    """fn(rows) for cache blocks of the rows of the 2-D array x (cpu.cache_blocks: the large
    logits are read from memory once instead of once per pass), the threads of minitf.cpu
    taking a thread block of rows each."""
    def part(rows: slice) -> None:
        for block in cpu.cache_blocks(rows, x.shape[1] * x.itemsize, x):
            fn(block)

    cpu.run_blocks(part, x.shape[0], x.shape[1], x)


def softmax_parts(x: Any, smoothing: float) -> tuple[Any, Any, Any, Any]:
    """For logits x (N, C): exp(x - rowmax) (N, C), its row sums (N, 1), logsumexp (N,) and,
    if smoothing, the row means of x (N,) (else None); block by block (in_row_blocks)."""
    xp = backend.get_array_module(x)
    exps = xp.empty_like(x)
    sums = xp.empty((x.shape[0], 1), dtype=x.dtype)
    lse = xp.empty(x.shape[0], dtype=x.dtype)
    means = xp.empty(x.shape[0], dtype=x.dtype) if smoothing else None

    def block(rows: slice) -> None:
        _, sums[rows], block_lse = exp_shifted(x[rows], axis=1, out=exps[rows])
        lse[rows] = block_lse[:, 0]
        if smoothing:
            means[rows] = x[rows].mean(axis=1)

    in_row_blocks(block, x)
    return exps, sums, lse, means


def _check_targets(logits: Tensor, targets: Any, ignore_index: int, axis: int) -> Any:
    """The integer targets (an array), checked against logits whose classes are on `axis`."""
    t = targets.data if isinstance(targets, Tensor) else targets
    if not hasattr(t, "dtype"):
        t = np.asarray(t)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class ids (or probabilities: floats of the "
                        f"logits' shape), got dtype {t.dtype}")
    expected = logits.shape[:axis] + logits.shape[axis + 1:]
    if t.shape != expected:
        raise ValueError(f"cross_entropy: targets have shape {t.shape}, expected {expected} "
                         f"for logits of shape {logits.shape} (classes on axis {axis})")
    backend.check_same_device("cross_entropy", logits.data, t)
    n_classes = logits.shape[axis]
    bad = ((t < 0) | (t >= n_classes)) & (t != ignore_index)
    if bad.any():
        raise IndexError(f"cross_entropy: target {int(t[bad].ravel()[0])} is not a class id in "
                         f"[0, {n_classes}) nor ignore_index {ignore_index}")
    return t


def cross_entropy(logits: Tensor, targets: Any, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: str = "mean", *, weight: Any = None, class_axis: int = -1) -> Tensor:
    """Softmax cross-entropy with the semantics of torch.nn.functional.cross_entropy.

    logits: classes on `class_axis`: the last axis by default, (..., C); `class_axis=1` is
    PyTorch's layout, (N, C, d1, ...) or (C,). targets: integer ids of the logits' shape without
    the class axis, or probabilities (soft labels: floats of the logits' shape). Per element,
    for ids: loss = (1 - s) * (lse - x[t]) + s * (lse - mean(x)), s = label_smoothing, and
    exactly 0, with a gradient row of exactly 0, where the target is ignore_index (even if that
    row's logits are NaN or inf, e.g. padding). "mean" divides by the number of non-ignored
    targets; with none (every target ignored, or no rows) the loss is NaN, with no warning, and the
    gradient is all 0, as in PyTorch (its nll_loss backward writes only at counted targets, so
    the 0 / 0 never reaches a gradient). "sum" adds; "none" keeps the targets' shape.
    Backward: (softmax(x) - q) per element, q = (1 - s) * onehot(t) + s / C.
    `weight` (C,): constant class weights, as PyTorch's ("mean" then divides by the kept targets'
    weights). Probabilities p: -sum_c w_c q_c log softmax(x)_c with q = (1 - s) p + s / C,
    "mean" over the items (elements / C); they take a gradient if they require it.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"cross_entropy: ignore_index must be an int, got {type(ignore_index).__name__} "
                        "(PyTorch's third positional argument is weight: pass weight= by name)")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    axis = class_axis_of(logits, class_axis)
    options = (axis, weight, label_smoothing, reduction, ignore_index)
    if not hasattr(targets, "dtype"):
        targets = np.asarray(targets)
    if targets.dtype.kind == "f":
        return soft_cross_entropy(logits, targets, *options)
    t = _check_targets(logits, targets, ignore_index, axis)
    if weight is not None:
        return weighted_cross_entropy(logits, t, *options)
    if axis != logits.ndim - 1:  # classes last, contiguous: the kernels' layout (on NumPy the copy
        logits = move_axis(logits, axis, logits.ndim - 1).contiguous()  # replaces the reshape's)
    if kernels.available(logits.data):
        return _cross_entropy_cuda(logits, t, ignore_index, label_smoothing, reduction)
    xp = backend.get_array_module(logits.data)
    n_classes = logits.shape[-1]
    x = logits.data.reshape(-1, n_classes)
    flat_t = t.reshape(-1)
    keep = flat_t != ignore_index
    safe_t = xp.where(keep, flat_t, 0)
    rows = xp.arange(x.shape[0])
    s = label_smoothing
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN / inf logits of ignored rows, masked here
        exps, sums, lse, means = softmax_parts(x, s)  # exps / sums is the softmax the backward needs
        per_item = lse - (1 - s) * x[rows, safe_t]
        if s:
            per_item -= s * means
    per_item = xp.where(keep, per_item, 0)  # not per_item * keep: NaN * 0 is NaN
    poisoned = ~(keep | xp.isfinite(lse))  # ignored rows whose exponentials are NaN, inf or all 0
    count = keep.sum()
    if reduction == "none":
        out = per_item.reshape(t.shape)
    elif reduction == "sum":
        out = per_item.sum()
    else:
        out = mean_of(per_item.sum(), count).astype(x.dtype)  # an integer count would upcast float32

    saved = [exps]

    def backward(g):
        if reduction == "none":
            scale = g.reshape(-1, 1)
        elif reduction == "sum":
            scale = g
        else:
            scale = g / max(int(count), 1)  # all ignored: NaN loss but zero gradient, as PyTorch
        # The saved exponentials become the gradient in place (no new logits-sized array);
        # a second backward (retain_graph) recomputes them.
        row_scale = xp.where(keep[:, None], scale, 0)  # 0 even where an ignored row's cotangent is NaN
        with np.errstate(divide="ignore", invalid="ignore"):
            grad = saved.pop() if saved else softmax_parts(x, 0.0)[0]
            factor = row_scale / sums
            offset = row_scale * (s / n_classes)

            def block(rows: slice) -> None:  # two passes over each block while it is in cache
                g_block = grad[rows]
                g_block *= factor[rows]
                if s:
                    g_block -= offset[rows]

            in_row_blocks(block, grad)
        grad[rows, safe_t] -= (1 - s) * row_scale[:, 0]
        if poisoned.any():  # there, the exponentials times 0 are NaN: an ignored row's gradient is 0
            grad[poisoned] = 0
        return (grad.reshape(logits.shape),)

    higher = _cross_entropy_higher(logits, lambda: (keep, safe_t), s, reduction)
    return Tensor.from_op(out, (logits,), backward, higher)


def _kept_and_safe(targets: Any, ignore_index: int) -> tuple[Any, Any]:
    """(target is not ignore_index, the targets with 0 at ignored ones), flat."""
    xp = backend.get_array_module(targets)
    flat = targets.reshape(-1)
    keep = flat != ignore_index
    return keep, xp.where(keep, flat, 0)


def _cross_entropy_higher(logits: Tensor, kept_and_safe: Callable[[], tuple[Any, Any]], s: float, reduction: str):
    """cross_entropy's rule as the composite formula in tensor ops, for either path:
    (softmax(x) - q) * the row's cotangent, q = (1 - s) * onehot(t) + s / C, and rows of ignored
    targets exactly 0 (their logits replaced by 0 first: they may be NaN or inf). kept_and_safe():
    the flat targets as _kept_and_safe gives them."""
    def higher(g, out):
        xp = backend.get_array_module(logits.data)
        n_classes = logits.shape[-1]
        kept, safe = kept_and_safe()
        keep = kept[:, None]
        x = logits.reshape(keep.shape[0], n_classes)
        every = bool(keep.all())
        q = xp.full(x.shape, s / n_classes, dtype=logits.dtype)
        q[xp.arange(x.shape[0]), safe] += 1 - s
        scale = g.reshape(-1, 1) if reduction == "none" else g if reduction == "sum" \
            else g / max(int(keep.sum()), 1)
        row = scale * keep.astype(logits.dtype) if every or reduction != "none" else where(keep, scale, 0.0)
        p = softmax(x if every else where(keep, x, 0.0), axis=-1)
        return (((p - q) * row).reshape(logits.shape),)

    return higher


def _cross_entropy_cuda(logits: Tensor, targets: Any, ignore_index: int, label_smoothing: float,
                        reduction: str) -> Tensor:
    """cross_entropy of CuPy logits that kernels.available accepts, targets already checked:
    one kernel forward, one backward."""
    loss, lse = kernels.cross_entropy_forward(logits.data, targets, ignore_index, label_smoothing)
    count = int((targets != ignore_index).sum()) if reduction == "mean" else 1
    with np.errstate(invalid="ignore"):  # "mean" of no targets: 0 / 0 = NaN, as on the NumPy path
        out = loss if reduction == "none" else loss.sum() / count if reduction == "mean" else loss.sum()

    def backward(g):
        scale = g if reduction == "none" else g / max(count, 1)  # no targets: zero gradient
        return (kernels.cross_entropy_backward(logits.data, targets, lse, scale, ignore_index,
                                               label_smoothing),)

    kept_and_safe = lambda: _kept_and_safe(targets, ignore_index)  # noqa: E731 (lazily: create_graph only)
    higher = _cross_entropy_higher(logits, kept_and_safe, label_smoothing, reduction)
    return Tensor.from_op(out.astype(logits.dtype, copy=False), (logits,), backward, higher)
