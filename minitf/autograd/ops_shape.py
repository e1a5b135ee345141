"""Shape and selection ops: reshape/view, transpose, expand, unsqueeze/squeeze/flatten, indexing,
concat, stack, split, where."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import backend, scatter
from .axes import accepts_dim, normalize_axis
from .ops_math import lift
from . import versions
from .ops_inplace import check_writable
from .tensor import Tensor


def _shape_args(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """Accept both f(2, 3) and f((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(x: Tensor, *shape: Any) -> Tensor:
    """The same elements in a new shape (one axis may be -1)."""
    def backward(g):
        return (g.reshape(x.shape),)

    return Tensor.from_op(x.data.reshape(_shape_args(shape)), (x,), backward,
                          lambda g, out: (reshape(g, x.shape),))


def transpose(x: Tensor, *axes: Any) -> Tensor:
    """Permute axes (NumPy semantics): no axes reverses them, else `axes` is the new order."""
    axes = _shape_args(axes) or tuple(reversed(range(x.ndim)))
    if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: {axes} is not a permutation of the {x.ndim} axes of shape {x.shape}")
    inverse = tuple(np.argsort([a % x.ndim for a in axes]))

    def backward(g):
        return (g.transpose(inverse),)

    return Tensor.from_op(x.data.transpose(axes), (x,), backward, lambda g, out: (transpose(g, inverse),))


def permute(x: Tensor, *dims: Any) -> Tensor:
    """Permute axes into the order `dims` (as torch.Tensor.permute)."""
    return transpose(x, *_shape_args(dims))


def swapaxes(x: Tensor, axis1: int, axis2: int) -> Tensor:
    def backward(g):
        return (g.swapaxes(axis1, axis2),)

    return Tensor.from_op(x.data.swapaxes(axis1, axis2), (x,), backward,
                          lambda g, out: (swapaxes(g, axis1, axis2),))


def expand(x: Tensor, *shape: Any) -> Tensor:
    """Broadcast to `shape` without copying; -1 keeps an axis's size. The engine sums the gradient back."""
    shape = _shape_args(shape)
    offset = len(shape) - x.ndim
    if offset < 0:
        raise ValueError(f"expand: cannot expand shape {x.shape} to fewer axes {shape}")
    target = tuple(x.shape[i - offset] if n == -1 and i >= offset else n for i, n in enumerate(shape))
    xp = backend.get_array_module(x.data)
    try:
        out = xp.broadcast_to(x.data, target)
    except ValueError:
        raise ValueError(f"expand: shape {x.shape} cannot be broadcast to {shape}") from None

    def backward(g):
        return (g,)

    return Tensor.from_op(out, (x,), backward, lambda g, result: (g,))  # the engine's sum_to_shape sums g


def _index_data(index: Any, xp: Any) -> Any:
    """Replace tensors (and lists, as arrays of the indexed tensor's backend) inside an index by arrays."""
    if isinstance(index, tuple):
        return tuple(_index_data(i, xp) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return xp.asarray(index)
    return index


def _has_integer_array(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "dtype") and p.dtype.kind in "iu" for p in parts)


def getitem(x: Tensor, index: Any) -> Tensor:
    """x[index] with slices, integers, integer arrays and boolean masks (NumPy semantics)."""
    index = _index_data(index, backend.get_array_module(x.data))
    parts = index if isinstance(index, tuple) else (index,)
    arrays = tuple(Tensor.from_op(p) for p in parts if hasattr(p, "shape"))  # inputs, for versions.py
    for p in arrays:
        backend.check_same_device("indexing", x.data, p.data)

    def backward(g):
        xp = backend.get_array_module(g)
        gx = xp.zeros(x.shape, dtype=g.dtype)
        if _has_integer_array(index):
            scatter.scatter_add(gx, index, g)  # repeated indices add up
        else:
            gx[index] = g
        return (gx,)

    def higher(g, out):
        return (scatter_index(g, index, x.shape),) + (None,) * len(arrays)

    return Tensor.from_op(x.data[index], (x, *arrays), backward, higher)


def scatter_index(g: Tensor, index: Any, shape: tuple[int, ...]) -> Tensor:
    """zeros(shape) with g added at [index] (repeated integer indices add up): the gradient of
    `x[index]` as an op. Its own gradient is getitem of its g, whose gradient is this op again,
    so the two compose to any order. `index` holds arrays (getitem's converted index)."""
    xp = backend.get_array_module(g.data)
    out = xp.zeros(shape, dtype=g.dtype)
    if _has_integer_array(index):
        scatter.scatter_add(out, index, g.data)
    else:
        out[index] = g.data

    def backward(h):
        return (h[index],)

    return Tensor.from_op(out, (g,), backward, lambda h, result: (getitem(h, index),))


def setitem(x: Tensor, index: Any, value: Any) -> None:
    """x[index] = value, in place, with NumPy semantics (value: a tensor, an array or a number).

    Not differentiable: raises for a tensor that requires grad (except a leaf under no_grad,
    as an optimizer writes), and counts the write (versions.py), so that a graph that used
    x's memory refuses to run backward() on the changed values.
    """
    check_writable(x, "indexed assignment", value)
    xp = backend.get_array_module(x.data)
    index = _index_data(index, xp)
    for p in index if isinstance(index, tuple) else (index,):
        if hasattr(p, "shape"):
            backend.check_same_device("indexed assignment", x.data, p)
    data = value.data if isinstance(value, Tensor) else value
    if hasattr(data, "shape"):
        backend.check_same_device("indexed assignment", x.data, data)
    try:
        x.data[index] = data
    finally:  # NumPy may fail after writing part of it (a cast): count a possible write
        versions.bump(x.data)


@accepts_dim
def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat needs at least one tensor")
    backend.check_same_device("concat", *(t.data for t in tensors))
    xp = backend.get_array_module(tensors[0].data)
    out = xp.concatenate([t.data for t in tensors], axis=axis)
    bounds = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def backward(g):
        return tuple(xp.split(g, bounds, axis=axis))

    def higher(g, result):
        return tuple(split(g, [t.shape[axis] for t in tensors], axis))

    return Tensor.from_op(out, tuple(tensors), backward, higher)


@accepts_dim
def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    backend.check_same_device("stack", *(t.data for t in tensors))
    xp = backend.get_array_module(tensors[0].data)
    out = xp.stack([t.data for t in tensors], axis=axis)

    def backward(g):
        return tuple(xp.moveaxis(g, axis, 0))

    def higher(g, result):
        lead = (slice(None),) * (axis % g.ndim)
        return tuple(getitem(g, lead + (i,)) for i in range(len(tensors)))

    return Tensor.from_op(out, tuple(tensors), backward, higher)


@accepts_dim
def split(x: Tensor, split_size_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Split along `axis` into chunks of a given size (int) or of the given sizes (list), as torch.split."""
    axis = normalize_axis(axis, x.ndim, "split")
    length = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError(f"split size must be positive, got {split_size_or_sections}")
        sizes = [split_size_or_sections] * (length // split_size_or_sections)
        if length % split_size_or_sections:
            sizes.append(length % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length:
            raise ValueError(f"split sizes {sizes} do not add up to the axis length {length}")
    pieces, start = [], 0
    for size in sizes:
        index = (slice(None),) * axis + (slice(start, start + size),)
        pieces.append(getitem(x, index))
        start += size
    return pieces


@accepts_dim
def chunk(x: Tensor, chunks: int, axis: int = 0) -> list[Tensor]:
    """Split along `axis` into pieces of ceil(n / chunks) elements, the last one smaller, as
    torch.chunk: fewer than `chunks` pieces when n does not fill them (7 in 5 chunks: 2, 2, 2, 1)."""
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    axis = normalize_axis(axis, x.ndim, "chunk")
    length = x.shape[axis]
    if length == 0:  # as torch: `chunks` empty pieces
        return [getitem(x, (slice(None),) * axis + (slice(0, 0),)) for _ in range(chunks)]
    return split(x, -(-length // int(chunks)), axis)


def _as_mask(mask: Any, like: Tensor, op: str) -> Any:
    data = mask.data if isinstance(mask, Tensor) else mask
    if not hasattr(data, "dtype"):
        data = np.asarray(data)
    if data.dtype != np.bool_:
        raise TypeError(f"{op}: the mask must be boolean, got dtype {data.dtype}")
    backend.check_same_device(op, like.data, data)
    return data


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elementwise `a` where `condition` is True, else `b` (all broadcast together)."""
    like = a if isinstance(a, Tensor) else b
    if not isinstance(like, Tensor):  # two constants: they live where the condition (or `a`) lives
        anchor = next((v.data if isinstance(v, Tensor) else v for v in (a, condition) if hasattr(v, "shape")),
                      np.empty(0))
        like = Tensor.from_op(backend.get_array_module(anchor).asarray(a))
    cond = _as_mask(condition, like, "where")
    a, b = lift(a, like), lift(b, like)
    xp = backend.get_array_module(like.data)

    def backward(g):
        zero = xp.zeros((), dtype=g.dtype)
        return (xp.where(cond, g, zero) if a.requires_grad else None,
                xp.where(cond, zero, g) if b.requires_grad else None)

    def higher(g, out):
        return (where(cond, g, 0.0) if a.requires_grad else None,
                where(cond, 0.0, g) if b.requires_grad else None, None)

    return Tensor.from_op(xp.where(cond, a.data, b.data), (a, b, Tensor.from_op(cond)), backward, higher)


def masked_fill(x: Tensor, mask: Any, value: float) -> Tensor:
    """`x` with `value` where `mask` (boolean, broadcastable to x's shape) is True."""
    mask = _as_mask(mask, x, "masked_fill")
    if np.broadcast_shapes(mask.shape, x.shape) != x.shape:
        raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to {x.shape}")
    xp = backend.get_array_module(x.data)
    fill = xp.asarray(value, dtype=x.dtype)

    def backward(g):
        return (xp.where(mask, xp.zeros((), dtype=g.dtype), g),)

    return Tensor.from_op(xp.where(mask, fill, x.data), (x, Tensor.from_op(mask)), backward,
                          lambda g, out: (masked_fill(g, mask, 0.0), None))


def _axes_tuple(axis: Any, ndim: int, op: str) -> tuple[int, ...]:
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    result = tuple(normalize_axis(a, ndim, op) for a in axes)
    if len(set(result)) != len(result):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return result


@accepts_dim
def expand_dims(x: Tensor, axis: Any) -> Tensor:
    """Insert size-1 axes at the positions `axis` (an int or a tuple) of the output."""
    if isinstance(axis, int) and not isinstance(axis, bool):  # the common case, without the general path
        a = normalize_axis(axis, x.ndim + 1, "expand_dims")
        return reshape(x, x.shape[:a] + (1,) + x.shape[a:])
    count = len(axis) if isinstance(axis, (tuple, list)) else 1
    axes = _axes_tuple(axis, x.ndim + count, "expand_dims")
    sizes = iter(x.shape)
    return reshape(x, tuple(1 if i in axes else next(sizes) for i in range(x.ndim + count)))


unsqueeze = expand_dims


@accepts_dim
def squeeze(x: Tensor, axis: Any = None) -> Tensor:
    """Remove size-1 axes: all of them, or those in `axis`, each of which must have size 1 (NumPy)."""
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = _axes_tuple(axis, x.ndim, "squeeze")
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1 (shape {x.shape})")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge the axes start_dim..end_dim (inclusive) into one, as torch.flatten; a 0-d tensor gives shape (1,)."""
    if x.ndim == 0:
        return reshape(x, (1,))
    start = normalize_axis(start_dim, x.ndim, "flatten")
    end = normalize_axis(end_dim, x.ndim, "flatten")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for {x.ndim} dimensions")
    return reshape(x, x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])


view = reshape
