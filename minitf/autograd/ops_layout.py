"""Order and layout: clone, flip, roll, tile, repeat_interleave (= NumPy's repeat), pad, tril, triu.

Each returns a new array, as PyTorch's (NumPy's flip is a view: it is copied), so writing
the result in place never changes x.

`repeat` is NumPy's (each element repeated: `repeat_interleave` in PyTorch); PyTorch's
`Tensor.repeat` (the whole tensor repeated) is `tile`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from .axes import accepts_dim, normalize_axis
from .ops_index import take
from .ops_shape import _axes_tuple
from .tensor import Tensor


def clone(x: Tensor) -> Tensor:
    """A copy of x with its own memory that stays in the graph (the gradient flows back to x)."""
    def backward(g):
        return (g,)

    return Tensor.from_op(x.data.copy(), (x,), backward, lambda g, out: (g,))


@accepts_dim
def flip(x: Tensor, axis: Any = None) -> Tensor:
    """Reverse the order of the entries along `axis` (an int, a tuple, or None: all axes); a copy."""
    axes = tuple(range(x.ndim)) if axis is None else _axes_tuple(axis, x.ndim, "flip")
    xp = backend.get_array_module(x.data)

    def backward(g):
        return (xp.flip(g, axes),)

    return Tensor.from_op(xp.flip(x.data, axes).copy(), (x,), backward, lambda g, out: (flip(g, axes),))


@accepts_dim
def roll(x: Tensor, shift: Any, axis: Any = None) -> Tensor:
    """Shift entries cyclically by `shift` along `axis` (None: of the flattened tensor), as np.roll."""
    for a in () if axis is None else axis if isinstance(axis, (tuple, list)) else (axis,):
        normalize_axis(a, x.ndim, "roll")
    xp = backend.get_array_module(x.data)
    back = tuple(-s for s in shift) if isinstance(shift, (tuple, list)) else -shift

    def backward(g):
        return (xp.roll(g, back, axis),)

    return Tensor.from_op(xp.roll(x.data, shift, axis), (x,), backward, lambda g, out: (roll(g, back, axis),))


def tile(x: Tensor, *reps: Any) -> Tensor:
    """The whole tensor repeated `reps` times along each axis (np.tile; torch.Tensor.repeat).

    Missing leading reps count as 1; extra reps add leading axes. Backward sums the copies.
    """
    reps = tuple(reps[0]) if len(reps) == 1 and isinstance(reps[0], (tuple, list)) else tuple(reps)
    if any(not isinstance(r, (int, np.integer)) or r < 0 for r in reps):
        raise ValueError(f"tile: reps must be non-negative integers, got {reps}")
    ndim = max(x.ndim, len(reps))
    shape = (1,) * (ndim - x.ndim) + x.shape
    reps = (1,) * (ndim - len(reps)) + reps
    xp = backend.get_array_module(x.data)

    def backward(g):  # (also the differentiable rule: the same code on a Tensor g)
        pairs = g.reshape(tuple(v for r, n in zip(reps, shape) for v in (r, n)))
        return (pairs.sum(axis=tuple(range(0, 2 * ndim, 2))).reshape(x.shape),)

    return Tensor.from_op(xp.tile(x.data.reshape(shape), reps), (x,), backward, lambda g, out: backward(g))


@accepts_dim
def repeat_interleave(x: Tensor, repeats: Any, axis: int | None = None) -> Tensor:
    """Each entry repeated `repeats` times along `axis` (None: the flattened tensor), as np.repeat.

    `repeats` is an int or one non-negative count per entry along the axis.
    """
    if axis is None:
        return repeat_interleave(x.reshape(-1), repeats, 0)
    axis = normalize_axis(axis, x.ndim, "repeat_interleave")
    n = x.shape[axis]
    if isinstance(repeats, (int, np.integer)):
        if repeats < 0:
            raise ValueError(f"repeat_interleave: repeats must be non-negative, got {repeats}")
        xp = backend.get_array_module(x.data)

        def backward(g):  # (also the differentiable rule: the same code on a Tensor g)
            split = g.shape[:axis] + (n, int(repeats)) + g.shape[axis + 1:]
            return (g.reshape(split).sum(axis=axis + 1),)

        return Tensor.from_op(xp.repeat(x.data, int(repeats), axis), (x,), backward,
                              lambda g, out: backward(g))
    counts = backend.to_device(repeats.data if isinstance(repeats, Tensor) else np.asarray(repeats), "cpu")
    if counts.dtype.kind not in "iu" or counts.ndim > 1 or counts.size not in (1, n) or (counts < 0).any():
        raise ValueError(f"repeat_interleave: repeats must be non-negative integers, one per entry "
                         f"({n}) along axis {axis} or a single one; got {counts!r}")
    index = np.repeat(np.arange(n), np.broadcast_to(counts.reshape(-1), (n,)))
    return take(x, backend.to_device(index, x.device), axis)


repeat = repeat_interleave


def pad(x: Tensor, pad_width: Any, value: float = 0.0) -> Tensor:
    """Constant padding with NumPy's `pad_width`: an int, (before, after), or one pair per axis.

    (PyTorch's F.pad takes a flat tuple starting from the last axis; this is np.pad's order.)
    """
    widths = np.broadcast_to(np.asarray(pad_width), (x.ndim, 2)) if x.ndim else np.zeros((0, 2), int)
    if widths.dtype.kind not in "iu" or (widths < 0).any():
        raise ValueError(f"pad: pad_width must be non-negative integers, got {pad_width!r}")
    inner = tuple(slice(int(b), int(b) + n) for (b, _), n in zip(widths, x.shape))
    shape = tuple(int(b + a) + n for (b, a), n in zip(widths, x.shape))
    xp = backend.get_array_module(x.data)
    out = xp.full(shape, value, dtype=x.dtype)
    out[inner] = x.data

    def backward(g):  # (also the differentiable rule: getitem of a Tensor g)
        return (g[inner],)

    return Tensor.from_op(out, (x,), backward, lambda g, result: backward(g))


def _triangle(x: Tensor, k: int, diagonal: int | None, lower: bool, op: str) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"{op} needs at least 2 dimensions, got shape {x.shape}")
    if diagonal is not None:
        k = diagonal
    xp = backend.get_array_module(x.data)
    rows, cols = x.shape[-2:]
    mask = xp.tri(rows, cols, k, dtype=bool) if lower else ~xp.tri(rows, cols, k - 1, dtype=bool)

    def keep(a):  # zeros with a's entries where the mask is set (faster than where; inf stays out)
        out = xp.zeros(a.shape, dtype=a.dtype)
        xp.copyto(out, a, where=mask)
        return out

    def backward(g):
        return (keep(g),)

    return Tensor.from_op(keep(x.data), (x,), backward, lambda g, out: (_triangle(g, k, None, lower, op),))


def tril(x: Tensor, k: int = 0, diagonal: int | None = None) -> Tensor:
    """Zero the entries above the k-th diagonal of the last two axes (`diagonal`: torch's name for k)."""
    return _triangle(x, k, diagonal, True, "tril")


def triu(x: Tensor, k: int = 0, diagonal: int | None = None) -> Tensor:
    """Zero the entries below the k-th diagonal of the last two axes (`diagonal`: torch's name for k)."""
    return _triangle(x, k, diagonal, False, "triu")

