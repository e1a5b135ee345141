"""Cumulative sums and products along an axis, each with its backward beside it.

NumPy semantics: `axis=None` works on the flattened tensor; `dim=` is an alias of `axis=`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from .axes import accepts_dim
from .ops_reduce import normalize_axes
from .tensor import Tensor


def _scan_axis(x: Tensor, axis: Any, op: str) -> tuple[Tensor, int]:
    """The input (flattened when the axis is None) and the non-negative axis to scan."""
    if axis is None:
        return x.reshape(-1), 0
    if not isinstance(axis, int):
        raise TypeError(f"{op}: axis must be an int or None, got {axis!r}")
    if x.ndim == 0:
        raise ValueError(f"{op}: a 0-d tensor has no axis {axis}; use axis=None")
    return x, normalize_axes(axis, x.ndim)[0]


# NumPy's accumulate runs one scalar loop per row along the axis: for many short rows (a batch of
# attention maps along its last axis) a Python loop over the axis of whole-slice ufunc calls, on a
# copy with the axis first, is several times faster and adds in the same order (the same result).
ROWS_FOR_LOOP = 256


def _loops_over_axis(a: Any, axis: int) -> bool:
    n = a.shape[axis]
    return isinstance(a, np.ndarray) and n > 1 and a.size // n >= ROWS_FOR_LOOP


def _transpose(m: Any) -> Any:
    """A C-contiguous m.T, copied in tiles that stay in cache (2-5x faster than m.T.copy()).

    Few rows of a wide m per tile: reading many rows a power of two apart thrashes the cache."""
    rows, cols = (16, 256) if m.shape[1] > m.shape[0] else (64, 64)
    out = np.empty(m.shape[::-1], dtype=m.dtype)
    for i in range(0, m.shape[0], rows):
        for j in range(0, m.shape[1], cols):
            out[j:j + cols, i:i + rows] = m[i:i + rows, j:j + cols].T
    return out


def _to_rows(a: Any, axis: int) -> Any:
    """A contiguous copy of `a` as (n, before, after): rows[k] is a's k-th slice along the axis."""
    before, n = int(np.prod(a.shape[:axis])), a.shape[axis]
    m = a.reshape(before, n, -1)
    if m.shape[2] == 1:
        return _transpose(m[:, :, 0]).reshape(n, before, 1)
    return m.transpose(1, 0, 2).copy()  # a copy even when already contiguous: the loop writes it


def _from_rows(rows: Any, shape: tuple[int, ...]) -> Any:
    if rows.shape[2] == 1:
        return _transpose(rows[:, :, 0]).reshape(shape)
    return np.ascontiguousarray(rows.transpose(1, 0, 2)).reshape(shape)


def _accumulate(a: Any, axis: int, ufunc: Any, reverse: bool = False) -> Any:
    """ufunc.accumulate(a, axis) (np.add: cumsum, np.multiply: cumprod), from the end if reverse."""
    if not _loops_over_axis(a, axis):
        xp = backend.get_array_module(a)
        scan = xp.cumsum if ufunc is np.add else xp.cumprod
        return xp.flip(scan(xp.flip(a, axis), axis=axis), axis) if reverse else scan(a, axis=axis)
    rows = _to_rows(a, axis)
    n = len(rows)
    for k in (range(n - 2, -1, -1) if reverse else range(1, n)):
        ufunc(rows[k], rows[k + 1 if reverse else k - 1], out=rows[k])
    return _from_rows(rows, a.shape)


def _reverse_cumsum(g: Any, axis: int) -> Any:
    """out[i] = sum of g[j] for j >= i along `axis`."""
    return _accumulate(g, axis, np.add, reverse=True)


@accepts_dim
def cumsum(x: Tensor, axis: int | None = None) -> Tensor:
    """Cumulative sum along `axis` (same shape; flattened when axis is None)."""
    x, axis = _scan_axis(x, axis, "cumsum")

    def backward(g):
        return (_reverse_cumsum(g, axis),)

    def higher(g, out):
        return (reverse_cumsum(g, axis),)

    return Tensor.from_op(_accumulate(x.data, axis, np.add), (x,), backward, higher)


def reverse_cumsum(g: Tensor, axis: int) -> Tensor:
    """Cumulative sum from the end along `axis` (a non-negative int): cumsum's backward as a
    differentiable op, whose own backward is cumsum."""
    def backward(g2):
        return (_accumulate(g2, axis, np.add),)

    def higher(g2, out):
        return (cumsum(g2, axis),)

    return Tensor.from_op(_reverse_cumsum(g.data, axis), (g,), backward, higher)


@accepts_dim
def cumprod(x: Tensor, axis: int | None = None) -> Tensor:
    """Cumulative product along `axis` (same shape; flattened when axis is None).

    The backward divides by nothing, so it is exact when x has zeros: with E the exclusive
    cumulative product (E_k = x_0...x_{k-1}) and S_k = g_k + x_{k+1} S_{k+1} (a reverse
    linear scan), d/dx_k sum_i g_i y_i = E_k S_k.
    """
    x, axis = _scan_axis(x, axis, "cumprod")
    xp = backend.get_array_module(x.data)
    out = _accumulate(x.data, axis, np.multiply)

    def backward(g):
        if _loops_over_axis(g, axis):
            return (_cumprod_grad_by_rows(x.data, g, axis),)
        data = xp.moveaxis(x.data, axis, -1)
        g = xp.moveaxis(g, axis, -1)
        ones = xp.ones_like(data[..., :1])
        exclusive = xp.cumprod(xp.concatenate([ones, data[..., :-1]], axis=-1), axis=-1)
        next_x = xp.concatenate([data[..., 1:], xp.zeros_like(ones)], axis=-1)
        return (xp.moveaxis(exclusive * _affine_reverse_scan(next_x, g), -1, axis),)

    def higher(g, result):  # E_k S_k of tensors: E is y shifted by one, S an affine scan
        first = (xp.arange(x.shape[axis]) == 0).reshape((-1,) + (1,) * (x.ndim - axis - 1))
        exclusive = shift(result, axis, 1) + first.astype(x.dtype)
        return (exclusive * affine_scan(shift(x, axis, -1), g, axis, reverse=True),)

    return Tensor.from_op(out, (x,), backward, higher)


# ---- differentiable pieces of cumprod's backward ------------------------------------------

def shift(t: Tensor, axis: int, step: int) -> Tensor:
    """t moved by `step` (1 or -1) along `axis`: out_k = t_{k-step}, zero where that is outside."""
    def backward(g):
        return (_shift_array(g, axis, -step),)

    return Tensor.from_op(_shift_array(t.data, axis, step), (t,), backward,
                          lambda g, result: (shift(g, axis, -step),))


def _shift_array(a: Any, axis: int, step: int) -> Any:
    xp = backend.get_array_module(a)
    out = xp.zeros_like(a)
    n = a.shape[axis]
    source, target = [slice(None)] * a.ndim, [slice(None)] * a.ndim
    ahead, behind = slice(1, n), slice(0, n - 1)
    source[axis], target[axis] = (behind, ahead) if step > 0 else (ahead, behind)
    out[tuple(target)] = a[tuple(source)]
    return out


def affine_scan(a: Tensor, b: Tensor, axis: int, reverse: bool) -> Tensor:
    """S with S_k = b_k + a_k S_{k+1} (reverse; a_{n-1} unused) or S_k = b_k + a_k S_{k-1}
    (forward; a_0 unused) along `axis`. Its adjoint is the scan the other way, over a shifted."""
    step = 1 if reverse else -1
    out = _affine_scan_array(a.data, b.data, axis, reverse)

    def backward(h):
        adjoint = _affine_scan_array(_shift_array(a.data, axis, step), h, axis, not reverse)
        ga = adjoint * _shift_array(out, axis, -step) if a.requires_grad else None
        return ga, adjoint

    def higher(h, result):
        adjoint = affine_scan(shift(a, axis, step), h, axis, not reverse)
        return adjoint * shift(result, axis, -step) if a.requires_grad else None, adjoint

    return Tensor.from_op(out, (a, b), backward, higher)


def _affine_scan_array(a: Any, b: Any, axis: int, reverse: bool) -> Any:
    xp = backend.get_array_module(a, b)
    a, b = xp.broadcast_arrays(a, b)
    a, b = xp.moveaxis(a, axis, -1), xp.moveaxis(b, axis, -1)
    if not reverse:
        a, b = a[..., ::-1], b[..., ::-1]
    out = _affine_reverse_scan(a, b)
    return xp.moveaxis(out if reverse else out[..., ::-1], -1, axis)


def _cumprod_grad_by_rows(x: Any, g: Any, axis: int) -> Any:
    """E_k S_k of cumprod's backward, as two linear loops over the axis (NumPy, many rows)."""
    x, s = _to_rows(x, axis), _to_rows(g, axis)
    exclusive = np.empty_like(s)
    exclusive[0] = 1
    for k in range(1, len(x)):
        np.multiply(exclusive[k - 1], x[k - 1], out=exclusive[k])
    for k in range(len(x) - 2, -1, -1):  # S_k = g_k + x_{k+1} S_{k+1}
        s[k] += x[k + 1] * s[k + 1]
    return _from_rows(exclusive * s, g.shape)


def _affine_reverse_scan(a: Any, b: Any) -> Any:
    """S along the last axis with S_k = b_k + a_k S_{k+1} (a_{n-1} = 0), in log2(n) steps.

    Hillis-Steele: after the step with offset d, (a_k, b_k) compose the maps k..k+2d-1.
    """
    n = a.shape[-1]
    a, b = a.copy(), b.copy()
    d = 1
    while d < n:
        b_next = b[..., :-d] + a[..., :-d] * b[..., d:]
        a[..., :-d] = a[..., :-d] * a[..., d:]
        b[..., :-d] = b_next
        d *= 2
    return b
