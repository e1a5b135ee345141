"""Gather and scatter along an axis: take_along_axis/gather, take/index_select, scatter_add, one_hot.

Indices are integer tensors or arrays on the data's device; negative indices count from the end
(NumPy), except in one_hot. The index tensor is recorded as a (gradient-free) input of the op, so
that an in-place change of it before backward() is caught like a change of any saved input.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, scatter
from .axes import accepts_dim, normalize_axis
from .ops_shape import scatter_index
from .tensor import Tensor


def index_array(indices: Any, like: Tensor, op: str) -> Any:
    """`indices` as an integer array on `like`'s device; TypeError for any other dtype."""
    xp = backend.get_array_module(like.data)
    data = indices.data if isinstance(indices, Tensor) else indices
    if not hasattr(data, "dtype"):
        data = xp.asarray(data)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be an integer tensor, got dtype {data.dtype}")
    backend.check_same_device(op, like.data, data)
    return data


def wrap_negative(idx: Any, size: int, op: str, axis: int) -> Any:
    """Check that every index is in [-size, size) and return them all in [0, size)."""
    if idx.size == 0:
        return idx
    low, high = int(idx.min()), int(idx.max())
    if low < -size or high >= size:
        bad = high if high >= size else low
        raise IndexError(f"{op}: index {bad} is out of range for axis {axis} of size {size}")
    return idx + size * (idx < 0) if low < 0 else idx


def scatter_add_along(shape: tuple[int, ...], axis: int, idx: Any, values: Any) -> Any:
    """zeros(shape) with `values` added at `idx` along `axis` (repeats add up; for per-entry indices).

    `idx` (in [0, shape[axis])) broadcasts to `values.shape`, which is at most `shape` on every
    other axis: out[p with p[axis] := idx[p]] += values[p] for every position p of values.
    """
    xp = backend.get_array_module(values)
    idx = xp.broadcast_to(idx.astype(xp.int64, copy=False), values.shape)
    strides = np.cumprod((shape[1:] + (1,))[::-1])[::-1]  # C-order element strides of `shape`
    flat = idx * int(strides[axis])
    for d, n in enumerate(values.shape):
        if d != axis and n > 1:
            flat = flat + (xp.arange(n) * int(strides[d])).reshape((n,) + (1,) * (values.ndim - d - 1))
    out = xp.zeros(shape, dtype=values.dtype)  # returned whole: the engine keeps it without a copy
    scatter.scatter_add(out.reshape(-1), flat.ravel(), values.ravel())  # 1-D np.add.at: NumPy's fast path
    return out


_ROUNDS = 8  # see add_rows


def add_rows(rows: Any, idx: Any, n: int, shape: tuple[int, ...]) -> Any:
    """zeros(shape) seen as (pre, n, post), with rows[:, j] added at [:, idx[j]]; idx in [0, n).

    On NumPy, rows are added in rounds, each taking at most one occurrence of every index, so that
    fancy-index `+=` is exact and fast; occurrences past the 8th of an index go through np.add.at.
    """
    xp = backend.get_array_module(rows)
    result = xp.zeros(shape, dtype=rows.dtype)  # returned whole: the engine keeps it without a copy
    out = result.reshape(rows.shape[0], n, rows.shape[2])
    if xp is not np:
        scatter.scatter_add(out, (slice(None), idx), rows)
        return result
    order = np.argsort(idx, kind="stable")
    ids = idx[order]
    new = np.ones(len(ids), dtype=bool)
    new[1:] = ids[1:] != ids[:-1]
    starts = np.flatnonzero(new)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids)) - starts[np.cumsum(new) - 1]  # occurrence number of each index
    lead: tuple = (slice(None),)
    if rows.shape[0] == 1:  # indexing the first axis is faster
        out, rows, lead = out[0], rows[0], ()
    for k in range(min(int(rank.max(initial=-1)) + 1, _ROUNDS)):
        chosen = rank == k
        if k == 0:  # out is still zero at these rows
            out[lead + (idx[chosen],)] = rows[lead + (chosen,)]
        else:
            out[lead + (idx[chosen],)] += rows[lead + (chosen,)]
    rest = rank >= _ROUNDS
    if rest.any():
        np.add.at(out, lead + (idx[rest],), rows[lead + (rest,)])
    return result


def _along_axis_shapes(x: Tensor, idx: Any, axis: int, op: str) -> None:
    if idx.ndim != x.ndim:
        raise ValueError(f"{op}: indices must have as many dimensions as the tensor ({x.ndim}), "
                         f"got shape {idx.shape} for a tensor of shape {x.shape}")


@accepts_dim
def take_along_axis(x: Tensor, indices: Any, axis: int | None) -> Tensor:
    """out[..., j, ...] = x[..., indices[..., j, ...], ...] along `axis` (np.take_along_axis).

    `indices` has x's number of dimensions and broadcasts with x on the other axes; with
    axis=None, x is flattened and indices are 1-D. The gradient adds up over repeated indices.
    """
    if axis is None:
        return take_along_axis(x.reshape(-1), indices, 0)
    raw = index_array(indices, x, "take_along_axis")
    axis = normalize_axis(axis, x.ndim, "take_along_axis")
    _along_axis_shapes(x, raw, axis, "take_along_axis")
    return _take_along_axis(x, raw, axis, "take_along_axis")


def _take_along_axis(x: Tensor, raw: Any, axis: int, op: str) -> Tensor:
    idx = wrap_negative(raw, x.shape[axis], op, axis)
    xp = backend.get_array_module(x.data)
    out = xp.take_along_axis(x.data, idx, axis)

    def backward(g):
        shape = g.shape[:axis] + (x.shape[axis],) + g.shape[axis + 1:]
        return scatter_add_along(shape, axis, idx, g), None

    return Tensor.from_op(out, (x, Tensor.from_op(raw)), backward,
                          lambda g, result: (scatter_along(g, axis, idx, x.shape[axis]), None))


def scatter_along(g: Tensor, axis: int, idx: Any, n: int) -> Tensor:
    """The gradient of take_along_axis(x, idx, axis) (x of length n on `axis`) as an op: g added at
    idx along axis into zeros. Its gradient is take_along_axis of its g, whose gradient is this op
    again, so the two compose to any order. `idx` is in [0, n) and broadcasts to g's shape."""
    xp = backend.get_array_module(g.data)
    shape = g.shape[:axis] + (n,) + g.shape[axis + 1:]

    def backward(h):
        return (xp.take_along_axis(h, idx, axis),)

    return Tensor.from_op(scatter_add_along(shape, axis, idx, g.data), (g,), backward,
                          lambda h, out: (_take_along_axis(h, idx, axis, "take_along_axis"),))


def _leading_block(shape: tuple[int, ...], axis: int | None) -> tuple[slice, ...]:
    """Slices selecting the first shape[d] entries on every axis but `axis` (all of it)."""
    return tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(shape))


def _check_fits(idx: Any, other: tuple[int, ...], axis: int | None, op: str, name: str) -> None:
    for d, (n, m) in enumerate(zip(idx.shape, other)):
        if d != axis and n > m:
            raise ValueError(f"{op}: index shape {idx.shape} exceeds {name} shape {other} on axis {d}")


@accepts_dim
def gather(x: Tensor, axis: int, index: Any) -> Tensor:
    """torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] for axis=1.

    PyTorch's argument order and shapes: `index` has x's number of dimensions and is at most as
    large as x on the other axes (the leading block of x is used), with no broadcasting.
    """
    raw = index_array(index, x, "gather")
    axis = normalize_axis(axis, x.ndim, "gather")
    _along_axis_shapes(x, raw, axis, "gather")
    _check_fits(raw, x.shape, axis, "gather", "input")
    if any(n != m for d, (n, m) in enumerate(zip(raw.shape, x.shape)) if d != axis):
        x = x[_leading_block(raw.shape, axis)]
    return _take_along_axis(x, raw, axis, "gather")


@accepts_dim
def scatter_add(x: Tensor, axis: int, index: Any, src: Tensor) -> Tensor:
    """torch.scatter_add, out of place: x with src[i][j][k] added at out[i][index[i][j][k]][k] (axis=1).

    `index`, `src` and `x` have the same number of dimensions; index is at most src's shape and
    at most x's shape on the other axes (the leading block of src is used). Repeats add up.
    Gradients: g for x, g gathered at index for the used block of src.
    """
    raw = index_array(index, x, "scatter_add")
    axis = normalize_axis(axis, x.ndim, "scatter_add")
    backend.check_same_device("scatter_add", x.data, src.data)
    _along_axis_shapes(x, raw, axis, "scatter_add")
    _along_axis_shapes(src, raw, axis, "scatter_add")
    _check_fits(raw, x.shape, axis, "scatter_add", "input")
    _check_fits(raw, src.shape, None, "scatter_add", "src")
    idx = wrap_negative(raw, x.shape[axis], "scatter_add", axis)
    block = _leading_block(raw.shape, None)
    xp = backend.get_array_module(x.data)
    added = scatter_add_along(x.shape, axis, idx, src.data[block].astype(x.dtype, copy=False))

    def backward(g):
        gsrc = None
        if src.requires_grad:
            gsrc = xp.zeros(src.shape, dtype=g.dtype)
            gsrc[block] = xp.take_along_axis(g[_leading_block(raw.shape, axis)], idx, axis)
        return g, gsrc, None

    def higher(g, out):
        gsrc = None
        if src.requires_grad:
            picked = _take_along_axis(g[_leading_block(raw.shape, axis)], idx, axis, "scatter_add")
            gsrc = picked if picked.shape == src.shape else scatter_index(picked, block, src.shape)
        return g, gsrc, None

    return Tensor.from_op(x.data + added, (x, src, Tensor.from_op(raw)), backward, higher)


@accepts_dim
def take(x: Tensor, indices: Any, axis: int | None = None) -> Tensor:
    """np.take: the entries at `indices` (any shape) along `axis`, or of the flattened x (None).

    Output shape: x.shape[:axis] + indices.shape + x.shape[axis + 1:].
    """
    if axis is None:
        return take(x.reshape(-1), indices, 0)
    raw = index_array(indices, x, "take")
    axis = normalize_axis(axis, x.ndim, "take")
    n = x.shape[axis]
    idx = wrap_negative(raw, n, "take", axis)
    xp = backend.get_array_module(x.data)
    out = xp.take(x.data, idx, axis=axis)

    def backward(g):
        pre, post = x.shape[:axis], x.shape[axis + 1:]
        rows = g.reshape(int(np.prod(pre)), idx.size, int(np.prod(post)))
        return add_rows(rows, idx.reshape(-1), n, x.shape), None

    return Tensor.from_op(out, (x, Tensor.from_op(raw)), backward,
                          lambda g, result: (put_rows(g, idx, axis, x.shape), None))


def put_rows(g: Tensor, idx: Any, axis: int, shape: tuple[int, ...]) -> Tensor:
    """The gradient of take(x, idx, axis) (x of `shape`) as an op: g's entries added at idx along
    axis into zeros. Its gradient is take of its g, whose gradient is this op again. idx in range."""
    xp = backend.get_array_module(g.data)
    rows = g.data.reshape(math.prod(shape[:axis]), idx.size, math.prod(shape[axis + 1:]))

    def backward(h):
        return (xp.take(h, idx, axis=axis),)

    return Tensor.from_op(add_rows(rows, idx.reshape(-1), shape[axis], shape), (g,), backward,
                          lambda h, out: (take(h, idx, axis),))


@accepts_dim
def index_select(x: Tensor, axis: int, index: Any) -> Tensor:
    """torch.index_select: the entries at a 1-D `index` along `axis` (PyTorch's argument order)."""
    raw = index_array(index, x, "index_select")
    if raw.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {raw.shape}")
    return take(x, raw.reshape(-1), axis)


def one_hot(ids: Any, num_classes: int = -1, dtype: Any = np.int64) -> Tensor:
    """F.one_hot: a new last axis of length num_classes with 1 at each id (int64 unless dtype given).

    num_classes=-1 means max(ids) + 1; ids must be integers in [0, num_classes).
    """
    if isinstance(ids, Tensor):
        data = ids.data
    else:
        data = ids if hasattr(ids, "dtype") else np.asarray(ids)
    if data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: ids must be an integer tensor, got dtype {data.dtype}")
    xp = backend.get_array_module(data)
    if num_classes == -1:
        num_classes = int(data.max()) + 1 if data.size else 0
    if data.size:
        low, high = int(data.min()), int(data.max())
        if low < 0 or high >= num_classes:
            raise IndexError(f"one_hot: id {low if low < 0 else high} is out of range for "
                             f"num_classes {num_classes}")
    return Tensor.from_op((data[..., None] == xp.arange(num_classes)).astype(dtype))
