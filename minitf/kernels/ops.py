"""Array-level fused CUDA kernels: CuPy arrays in, CuPy arrays out (Adam's are in adam.py).

Every function here needs CuPy arrays of float32 or float64 whose main input is
C-contiguous (check with `available(x)` and fall back to the generic xp code otherwise).
Secondary inputs (cotangents, weights, saved statistics) are made C-contiguous and cast
to x's dtype only when needed (no copy when they already are).
"Rows" are the flattened leading axes: rows = x.size // x.shape[-1], cols = x.shape[-1].
Per-row statistics (mean, rstd, lse, per-row loss) come back with shape x.shape[:-1].

The math follows minitf.functional / minitf.optim operation by operation; results agree
with the NumPy path to rounding (reductions are summed in a different order).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend, rng
from ._compile import get_kernel

__all__ = [
    "available", "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
    "cross_entropy_forward", "cross_entropy_backward", "layer_norm_forward", "layer_norm_backward",
    "gelu_forward", "gelu_backward", "dropout_forward",
]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_ELEMENTWISE_THREADS = 256
_MAX_BLOCKS = 1 << 16  # grid-stride loops cover the rest


def available(x: Any) -> bool:
    """True when `x` is a C-contiguous CuPy array of float32 or float64 (kernels apply).

    Never imports CuPy: a NumPy array (or anything else) gives False.
    """
    if not backend.is_cupy_array(x):
        return False
    return x.dtype in _FLOATS and bool(x.flags.c_contiguous)


# ---- helpers --------------------------------------------------------------------------

def _require(x: Any, op: str, rows: bool = True) -> Any:
    if not available(x):
        what = type(x).__name__ if not backend.is_cupy_array(x) else \
            f"cupy array of dtype {x.dtype}, c_contiguous={x.flags.c_contiguous}"
        raise TypeError(f"minitf.kernels.{op}: needs a C-contiguous CuPy float32/float64 array, got {what}")
    if rows and x.ndim == 0:
        raise ValueError(f"minitf.kernels.{op}: needs an array with at least one axis")
    return backend.cupy()


def _contig(cp: Any, a: Any, dtype: Any) -> Any:
    """`a` as a C-contiguous CuPy array of `dtype`, copied only when needed (0-d stays 0-d)."""
    a = cp.asarray(a, dtype=dtype)
    return a if a.flags.c_contiguous else cp.ascontiguousarray(a)


def _like(cp: Any, a: Any, x: Any, name: str, op: str, shape: tuple[int, ...] | None = None) -> Any:
    """`a` as a C-contiguous array of x's dtype on x's device, checked against `shape` (default x's)."""
    a = _contig(cp, a, x.dtype)
    want = x.shape if shape is None else shape
    if a.shape != want:
        raise ValueError(f"minitf.kernels.{op}: {name} has shape {a.shape}, expected {want}")
    return a


def _rows(x: Any) -> tuple[int, int]:
    cols = x.shape[-1]
    return (x.size // cols if cols else 0), cols


def _row_threads(cols: int) -> int:
    """Threads per row-block: a power of two in [32, 512] (1024 for long rows)."""
    cap = 1024 if cols >= 8192 else 512
    t = 32
    while t < cols and t < cap:
        t *= 2
    return t


def _grid(n: int, threads: int = _ELEMENTWISE_THREADS) -> tuple[int]:
    return (max(1, min((n + threads - 1) // threads, _MAX_BLOCKS)),)


def _scalar(x: Any, value: float) -> Any:
    return x.dtype.type(value)


# ---- softmax / log-softmax ---------------------------------------------------------------

def _rowwise_unary(x: Any, kernel: str, op: str) -> Any:
    cp = _require(x, op)
    y = cp.empty_like(x)
    rows, cols = _rows(x)
    if rows == 0 or cols == 0:
        return y
    get_kernel("rowwise", kernel, x.dtype)((rows,), (_row_threads(cols),), (x, y, np.int64(cols)))
    return y


def _rowwise_backward(y: Any, g: Any, kernel: str, op: str) -> Any:
    cp = _require(y, op)
    g = _like(cp, g, y, "g", op)
    gx = cp.empty_like(y)
    rows, cols = _rows(y)
    if rows == 0 or cols == 0:
        return gx
    get_kernel("rowwise", kernel, y.dtype)((rows,), (_row_threads(cols),), (y, g, gx, np.int64(cols)))
    return gx


def softmax_forward(x: Any) -> Any:
    """Softmax over the last axis. x: (..., C), at least 1-d -> y: (..., C), exp(x - max) / sum."""
    return _rowwise_unary(x, "softmax_fwd", "softmax_forward")


def softmax_backward(y: Any, g: Any) -> Any:
    """Softmax backward from its output. y, g: (..., C) -> gx = y * (g - sum(g * y)): (..., C)."""
    return _rowwise_backward(y, g, "softmax_bwd", "softmax_backward")


def log_softmax_forward(x: Any) -> Any:
    """Log-softmax over the last axis. x: (..., C) -> y = x - logsumexp(x): (..., C).

    As minitf's logsumexp_array, a non-finite row max is replaced by 0 before shifting.
    """
    return _rowwise_unary(x, "log_softmax_fwd", "log_softmax_forward")


def log_softmax_backward(y: Any, g: Any) -> Any:
    """Log-softmax backward from its output. y, g: (..., C) -> gx = g - exp(y) * sum(g): (..., C)."""
    return _rowwise_backward(y, g, "log_softmax_bwd", "log_softmax_backward")


# ---- cross-entropy ----------------------------------------------------------------------------

def _targets(cp: Any, targets: Any, x: Any, op: str) -> Any:
    t = cp.asarray(targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"minitf.kernels.{op}: targets must be integer class ids, got dtype {t.dtype}")
    if t.shape != x.shape[:-1]:
        raise ValueError(f"minitf.kernels.{op}: targets have shape {t.shape}, expected {x.shape[:-1]}")
    return _contig(cp, t, cp.int64)


def cross_entropy_forward(x: Any, targets: Any, ignore_index: int = -100,
                          label_smoothing: float = 0.0) -> tuple[Any, Any]:
    """Per-row softmax cross-entropy. x: (..., C) logits; targets: (...) integer ids.

    Returns (loss, lse), both of shape x.shape[:-1] and x's dtype:
    lse = logsumexp(x) per row; loss = lse - (1 - s) x[t] - s mean(x), s = label_smoothing,
    exactly 0 where t == ignore_index. A target outside [0, C) that is not ignore_index
    gives NaN (validate targets before calling, as minitf.functional.cross_entropy does).
    """
    op = "cross_entropy_forward"
    cp = _require(x, op)
    t = _targets(cp, targets, x, op)
    rows, cols = _rows(x)
    loss = cp.empty(x.shape[:-1], dtype=x.dtype)
    lse = cp.empty(x.shape[:-1], dtype=x.dtype)
    if rows == 0:
        return loss, lse
    if cols == 0:
        raise ValueError(f"minitf.kernels.{op}: logits have no classes (shape {x.shape})")
    s = float(label_smoothing)
    get_kernel("rowwise", "cross_entropy_fwd", x.dtype)(
        (rows,), (_row_threads(cols),),
        (x, t, loss, lse, np.int64(cols), np.int64(ignore_index), _scalar(x, s), _scalar(x, 1.0 - s)))
    return loss, lse


def cross_entropy_backward(x: Any, targets: Any, lse: Any, scale_rows: Any, ignore_index: int = -100,
                           label_smoothing: float = 0.0) -> Any:
    """Gradient of the per-row cross-entropy with respect to the logits.

    x: (..., C); targets: (...); lse: (...) or (rows,) from cross_entropy_forward;
    scale_rows: the cotangent of each row's loss, shape (...) or (rows,), or a scalar
    (Python float or 0-d array) used for every row ("mean": g / count; "sum": g).
    Returns gx: (..., C) = (softmax(x) - q) * scale_row, q = (1 - s) onehot(t) + s / C,
    and exactly 0 on rows whose target is ignore_index.
    """
    op = "cross_entropy_backward"
    cp = _require(x, op)
    t = _targets(cp, targets, x, op)
    rows, cols = _rows(x)
    lse = _contig(cp, lse, x.dtype).reshape(-1)
    if lse.size != rows:
        raise ValueError(f"minitf.kernels.{op}: lse has {lse.size} entries, expected {rows}")
    scale = _contig(cp, scale_rows, x.dtype)
    if scale.size == 1 and rows != 1:
        stride = 0
    elif scale.size == rows:
        stride = 1
    else:
        raise ValueError(f"minitf.kernels.{op}: scale_rows has shape {scale.shape}, expected a scalar "
                         f"or {rows} per-row entries")
    gx = cp.empty_like(x)
    n = x.size
    if n == 0:
        return gx
    s = float(label_smoothing)
    get_kernel("rowwise", "cross_entropy_bwd", x.dtype)(
        _grid(n), (_ELEMENTWISE_THREADS,),
        (x, t, lse, scale, np.int64(stride), gx, np.int64(n), np.int64(cols), np.int64(ignore_index),
         _scalar(x, 1.0 - s), _scalar(x, s / cols)))
    return gx


# ---- layer norm ---------------------------------------------------------------------------

def layer_norm_forward(x: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> tuple[Any, Any, Any]:
    """Layer norm over the last axis. x: (..., D); weight, bias: (D,) or None.

    Returns (y, mean, rstd): y (..., D) = (x - mean) * rstd * weight + bias with the biased
    variance and rstd = 1 / sqrt(var + eps); mean and rstd have shape x.shape[:-1].
    """
    op = "layer_norm_forward"
    cp = _require(x, op)
    rows, cols = _rows(x)
    w = None if weight is None else _like(cp, weight, x, "weight", op, (cols,))
    b = None if bias is None else _like(cp, bias, x, "bias", op, (cols,))
    y = cp.empty_like(x)
    mean = cp.empty(x.shape[:-1], dtype=x.dtype)
    rstd = cp.empty(x.shape[:-1], dtype=x.dtype)
    if rows == 0:
        return y, mean, rstd
    if cols == 0:
        raise ValueError(f"minitf.kernels.{op}: the normalized axis is empty (shape {x.shape})")
    get_kernel("rowwise", "layer_norm_fwd", x.dtype)(
        (rows,), (_row_threads(cols),),
        (x, x if w is None else w, x if b is None else b, y, mean, rstd, np.int64(cols), _scalar(x, eps),
         np.int32(w is not None), np.int32(b is not None)))
    return y, mean, rstd


def layer_norm_backward(x: Any, g: Any, weight: Any, mean: Any, rstd: Any, has_bias: bool = True,
                        need_gx: bool = True) -> tuple[Any, Any, Any]:
    """Layer-norm backward. x, g: (..., D); weight: (D,) or None; mean, rstd from the forward.

    Returns (gx, gw, gb): gx (..., D) = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)),
    gh = g * weight, xhat = (x - mean) * rstd (None when need_gx is False);
    gw = sum over rows of g * xhat, (D,) (None when weight is None);
    gb = sum over rows of g, (D,) (None when has_bias is False).
    The column sums run in a second kernel that writes per-row-block partials, then
    cupy sums those over their first axis (deterministic, no atomics).
    """
    op = "layer_norm_backward"
    cp = _require(x, op)
    rows, cols = _rows(x)
    g = _like(cp, g, x, "g", op)
    w = None if weight is None else _like(cp, weight, x, "weight", op, (cols,))
    mean = _contig(cp, mean, x.dtype).reshape(-1)
    rstd = _contig(cp, rstd, x.dtype).reshape(-1)
    if mean.size != rows or rstd.size != rows:
        raise ValueError(f"minitf.kernels.{op}: mean/rstd have {mean.size}/{rstd.size} entries, expected {rows}")
    gx = cp.empty_like(x) if need_gx else None
    want_w, want_b = w is not None, bool(has_bias)
    if rows == 0 or cols == 0:
        gw = cp.zeros((cols,), x.dtype) if want_w else None
        gb = cp.zeros((cols,), x.dtype) if want_b else None
        return gx, gw, gb
    if need_gx:
        get_kernel("rowwise", "layer_norm_bwd", x.dtype)(
            (rows,), (_row_threads(cols),),
            (x, g, x if w is None else w, mean, rstd, gx, np.int64(cols), np.int32(want_w)))
    gw = gb = None
    if want_w or want_b:
        gx_blocks = (cols + 31) // 32
        gy_blocks = max(1, min((rows + 7) // 8, max(1, 2048 // gx_blocks), 65535))
        part_w = cp.empty((gy_blocks, cols), x.dtype) if want_w else x
        part_b = cp.empty((gy_blocks, cols), x.dtype) if want_b else x
        get_kernel("rowwise", "layer_norm_bwd_params", x.dtype)(
            (gx_blocks, gy_blocks), (32, 8),
            (x, g, mean, rstd, part_w, part_b, np.int64(rows), np.int64(cols), np.int32(want_w),
             np.int32(want_b)))
        gw = part_w.sum(axis=0) if want_w else None
        gb = part_b.sum(axis=0) if want_b else None
    return gx, gw, gb


# ---- gelu, dropout ------------------------------------------------------------------------------

def _gelu_mode(approximate: str) -> np.int32:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return np.int32(approximate == "tanh")


def gelu_forward(x: Any, approximate: str = "none") -> Any:
    """GELU, elementwise. x: any shape -> y, same shape: x * Phi(x) (erf), or the tanh formula."""
    cp = _require(x, "gelu_forward", rows=False)
    mode = _gelu_mode(approximate)
    y = cp.empty_like(x)
    if x.size:
        get_kernel("elementwise", "gelu_fwd", x.dtype)(_grid(x.size), (_ELEMENTWISE_THREADS,),
                                                      (x, y, np.int64(x.size), mode))
    return y


def gelu_backward(x: Any, g: Any, approximate: str = "none") -> Any:
    """GELU backward from its input. x, g: same shape -> gx = g * gelu'(x)."""
    cp = _require(x, "gelu_backward", rows=False)
    mode = _gelu_mode(approximate)
    g = _like(cp, g, x, "g", "gelu_backward")
    gx = cp.empty_like(x)
    if x.size:
        get_kernel("elementwise", "gelu_bwd", x.dtype)(_grid(x.size), (_ELEMENTWISE_THREADS,),
                                                      (x, g, gx, np.int64(x.size), mode))
    return gx


def dropout_forward(x: Any, p: float) -> tuple[Any, Any]:
    """Inverted dropout. x: any shape -> (y, mask), both x's shape and dtype.

    mask holds 0 (probability p) or 1 / (1 - p); y = x * mask. The uniform draws come from
    minitf.rng.random_uniform (the generator manual_seed seeds), compared as u >= p,
    exactly as minitf.functional.dropout, so a seed gives the same mask on either path.
    p == 0 gives mask 1 everywhere and y a copy of x; p == 1 gives zeros (no draws).
    """
    cp = _require(x, "dropout_forward", rows=False)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1], got {p}")
    if p == 1.0:
        return cp.zeros_like(x), cp.zeros_like(x)
    if p == 0.0:
        return x.copy(), cp.ones_like(x)
    y = cp.empty_like(x)
    mask = cp.empty_like(x)
    if x.size:
        u = rng.random_uniform(cp, x.shape, x.dtype)
        get_kernel("elementwise", "dropout_fwd", x.dtype)(
            _grid(x.size), (_ELEMENTWISE_THREADS,),
            (x, u, y, mask, np.int64(x.size), _scalar(x, p), _scalar(x, 1.0 / (1.0 - p))))
    return y, mask
