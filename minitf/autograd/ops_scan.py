"""Cumulative sums and products along an axis, each with its backward beside it.

NumPy semantics: `axis=None` works on the flattened tensor; `dim=` is an alias of `axis=`.
"""
from __future__ import annotations

from typing import Any

from .. import backend
from ._axis import accepts_dim
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


def _reverse_cumsum(g: Any, axis: int) -> Any:
    """out[i] = sum of g[j] for j >= i along `axis`."""
    xp = backend.get_array_module(g)
    return xp.flip(xp.cumsum(xp.flip(g, axis), axis=axis), axis)


@accepts_dim
def cumsum(x: Tensor, axis: int | None = None) -> Tensor:
    """Cumulative sum along `axis` (same shape; flattened when axis is None)."""
    x, axis = _scan_axis(x, axis, "cumsum")
    xp = backend.get_array_module(x.data)

    def backward(g):
        return (_reverse_cumsum(g, axis),)

    return Tensor._make(xp.cumsum(x.data, axis=axis), (x,), backward)


@accepts_dim
def cumprod(x: Tensor, axis: int | None = None) -> Tensor:
    """Cumulative product along `axis` (same shape; flattened when axis is None).

    The backward divides by nothing, so it is exact when x has zeros: with E the exclusive
    cumulative product (E_k = x_0...x_{k-1}) and S_k = g_k + x_{k+1} S_{k+1} (a reverse
    linear scan), d/dx_k sum_i g_i y_i = E_k S_k.
    """
    x, axis = _scan_axis(x, axis, "cumprod")
    xp = backend.get_array_module(x.data)
    out = xp.cumprod(x.data, axis=axis)

    def backward(g):
        data = xp.moveaxis(x.data, axis, -1)
        g = xp.moveaxis(g, axis, -1)
        ones = xp.ones_like(data[..., :1])
        exclusive = xp.cumprod(xp.concatenate([ones, data[..., :-1]], axis=-1), axis=-1)
        next_x = xp.concatenate([data[..., 1:], xp.zeros_like(ones)], axis=-1)
        return (xp.moveaxis(exclusive * _affine_reverse_scan(next_x, g), -1, axis),)

    return Tensor._make(out, (x,), backward)


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
