"""Selection: argmax/argmin/argsort (indices, no gradient), sort and topk (values with gradient).

The values of sort and topk take the gradient at the positions they came from: tied values
each get their own (as in PyTorch), unlike max/min, where tied maxima share it equally.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from .axes import accepts_dim, normalize_axis
from .ops_index import scatter_add_along, scatter_along
from .tensor import Tensor


def _indices(data: Any) -> Tensor:
    return Tensor.from_op(data.astype(backend.get_array_module(data).int64, copy=False))


@accepts_dim
def argmax(x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the first maximum along `axis` (of the flattened tensor for None), int64."""
    if x.size == 0:
        raise ValueError(f"argmax of an empty tensor (shape {x.shape})")
    if axis is not None:
        axis = normalize_axis(axis, x.ndim, "argmax")
    return _indices(x.data.argmax(axis=axis, keepdims=keepdims))


@accepts_dim
def argmin(x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index of the first minimum along `axis` (of the flattened tensor for None), int64."""
    if x.size == 0:
        raise ValueError(f"argmin of an empty tensor (shape {x.shape})")
    if axis is not None:
        axis = normalize_axis(axis, x.ndim, "argmin")
    return _indices(x.data.argmin(axis=axis, keepdims=keepdims))


def _argsort(data: Any, axis: int, descending: bool, stable: bool) -> Any:
    """Sorting permutation along `axis`; descending keeps the order of ties when stable."""
    xp = backend.get_array_module(data)
    kind = "stable" if stable else None
    if not descending:
        return xp.argsort(data, axis=axis, kind=kind)
    # Sort the reversed axis ascending and read it backwards: ties keep their original order.
    n = data.shape[axis]
    order = xp.argsort(xp.flip(data, axis), axis=axis, kind=kind)
    return (n - 1) - xp.flip(order, axis)


@accepts_dim
def argsort(x: Tensor, axis: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """Indices that sort `x` along `axis` (int64); stable=True keeps tied entries in order."""
    axis = normalize_axis(axis, max(x.ndim, 1), "argsort")
    data = x.data.reshape(1) if x.ndim == 0 else x.data
    return _indices(_argsort(data, axis, descending, stable).reshape(x.shape))


def _select(x: Tensor, idx: Any, axis: int) -> Tensor:
    """x's values at `idx` along `axis`; the gradient goes back to the positions they came from."""
    xp = backend.get_array_module(x.data)

    def backward(g):
        return (scatter_add_along(x.shape, axis, idx, g),)

    return Tensor.from_op(xp.take_along_axis(x.data, idx, axis), (x,), backward,
                          lambda g, out: (scatter_along(g, axis, idx, x.shape[axis]),))


@accepts_dim
def sort(x: Tensor, axis: int = -1, descending: bool = False,
         stable: bool = False) -> tuple[Tensor, Tensor]:
    """(values, indices) of `x` sorted along `axis`, as torch.sort; values carry the gradient."""
    if x.ndim == 0:
        values, indices = sort(x.reshape(1))
        return values.reshape(()), indices.reshape(())
    axis = normalize_axis(axis, x.ndim, "sort")
    idx = _argsort(x.data, axis, descending, stable)
    return _select(x, idx, axis), _indices(idx)


@accepts_dim
def topk(x: Tensor, k: int, axis: int = -1, largest: bool = True,
         sorted: bool = True) -> tuple[Tensor, Tensor]:  # noqa: A002 (torch's name)
    """(values, indices) of the k largest (or smallest) entries along `axis`, as torch.topk.

    sorted=True orders them (largest first, or smallest first), ties by index; with
    sorted=False their order is unspecified. Which of several tied entries at the k-th place
    is taken is unspecified (as in PyTorch). Values carry the gradient.
    """
    if x.ndim == 0:  # as torch: a 0-d tensor is its own top 1
        values, indices = topk(x.reshape(1), k, 0, largest, sorted)
        return (values.reshape(()), indices.reshape(())) if k == 1 else (values, indices)
    axis = normalize_axis(axis, x.ndim, "topk")
    data = x.data
    n = data.shape[axis]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"topk: k={k!r} is out of range for axis {axis} of size {n}")
    xp = backend.get_array_module(data)
    if k in (0, n) or xp is not np:
        idx = _take_block(_argsort(data, axis, largest, stable=True), axis, 0, k)
    else:  # O(n) selection, then sorting only the k chosen entries (ties by index)
        kth, start = (n - k, n - k) if largest else (k - 1, 0)
        idx = xp.sort(_take_block(xp.argpartition(data, kth, axis=axis), axis, start, k), axis=axis)
        if sorted:
            chosen = xp.take_along_axis(data, idx, axis)
            idx = xp.take_along_axis(idx, _argsort(chosen, axis, largest, stable=True), axis)
    return _select(x, idx, axis), _indices(idx)


def _take_block(a: Any, axis: int, start: int, length: int) -> Any:
    return a[(slice(None),) * axis + (slice(start, start + length),)]
