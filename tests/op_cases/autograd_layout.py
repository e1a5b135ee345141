"""The shape, layout and indexing ops of minitf.autograd that autograd_ops.py does not cover (split, stack,
pad, roll, tile, repeat_interleave, gather, take, index_select, scatter_add, squeeze/unsqueeze, expand,
swapaxes, triu, masked_fill, flatten, clone, chunk, contiguous): one entry each, checked by
tests/functional/test_op_properties.py as every registry is. Index arrays are drawn with repeats, so gradients that add up are exercised.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import minitf as mt
from minitf.testing import OpCase, float_arrays, masks, op_tests, shapes


def arrays_with_axis(min_dims=1):
    """A float array and one of its axes (negative too)."""
    return shapes(min_dims=min_dims).flatmap(float_arrays).flatmap(
        lambda x: st.tuples(st.just(x), st.integers(-x.ndim, x.ndim - 1)))


def indices(draw, shape, high):
    """An int64 array of `shape` with values in [0, high), repeats allowed."""
    size = int(np.prod(shape))
    return np.array(draw(st.lists(st.integers(0, high - 1), min_size=size, max_size=size)),
                    dtype=np.int64).reshape(shape)


@st.composite
def split_cases(draw):
    """The parts of a split, put back in reverse order: every part's gradient lands in its own place."""
    x, axis = draw(arrays_with_axis())
    n = x.shape[axis]
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=n - 1))) if n > 1 else []
    sizes = list(np.diff([0, *cuts, n]))
    return OpCase(lambda t: mt.concat(mt.split(t, sizes, axis)[::-1], axis), (x,),
                  lambda a: np.concatenate(np.split(a, cuts, axis)[::-1], axis))


@st.composite
def chunk_cases(draw):
    """chunk's pieces (torch's rule: ceil(n / chunks) each, the last smaller), put back in reverse order."""
    x, axis = draw(arrays_with_axis())
    chunks = draw(st.integers(1, 6))
    step = -(-x.shape[axis] // chunks)
    cuts = list(range(step, x.shape[axis], step))
    return OpCase(lambda t: mt.concat(t.chunk(chunks, axis)[::-1], axis), (x,),
                  lambda a: np.concatenate(np.split(a, cuts, axis)[::-1], axis))


@st.composite
def stack_cases(draw):
    shape = draw(shapes())
    a, b = draw(float_arrays(shape)), draw(float_arrays(shape))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return OpCase(lambda s, t: mt.stack([s, t], axis), (a, b), lambda s, t: np.stack([s, t], axis))


@st.composite
def pad_cases(draw):
    x = draw(shapes(min_dims=1).flatmap(float_arrays))
    widths = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(x.ndim))
    value = draw(st.sampled_from([0.0, -1.5]))
    return OpCase(lambda t: mt.pad(t, widths, value), (x,), lambda a: np.pad(a, widths, constant_values=value))


@st.composite
def roll_cases(draw):
    x, axis = draw(arrays_with_axis())
    shift = draw(st.integers(-6, 6))
    axis = draw(st.sampled_from([None, axis]))
    return OpCase(lambda t: mt.roll(t, shift, axis), (x,), lambda a: np.roll(a, shift, axis))


@st.composite
def tile_cases(draw):
    x = draw(shapes(max_dims=3).flatmap(float_arrays))
    reps = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=x.ndim + 1)))
    return OpCase(lambda t: mt.tile(t, *reps), (x,), lambda a: np.tile(a, reps))


@st.composite
def repeat_interleave_cases(draw):
    x, axis = draw(arrays_with_axis())
    axis = draw(st.sampled_from([None, axis]))
    n = x.size if axis is None else x.shape[axis]
    repeats = draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 3), min_size=n, max_size=n).map(np.array)))
    return OpCase(lambda t: mt.repeat_interleave(t, repeats, axis), (x,), lambda a: np.repeat(a, repeats, axis))


@st.composite
def gather_cases(draw):
    """PyTorch's gather: the index may be smaller than x along the other axes."""
    x, axis = draw(arrays_with_axis())
    axis %= x.ndim
    shape = tuple(draw(st.integers(1, 4)) if d == axis else draw(st.integers(1, n)) for d, n in enumerate(x.shape))
    index = indices(draw, shape, x.shape[axis])
    crop = tuple(slice(None) if d == axis else slice(0, n) for d, n in enumerate(shape))
    return OpCase(lambda t: mt.gather(t, axis, index), (x,), lambda a: np.take_along_axis(a[crop], index, axis))


@st.composite
def take_cases(draw):
    x, axis = draw(arrays_with_axis())
    axis = draw(st.sampled_from([None, axis]))
    n = x.size if axis is None else x.shape[axis]
    index = indices(draw, draw(shapes(max_dims=2)), n) - draw(st.sampled_from([0, n]))  # negative ones too
    return OpCase(lambda t: mt.take(t, index, axis), (x,), lambda a: np.take(a, index, axis))


@st.composite
def index_select_cases(draw):
    x, axis = draw(arrays_with_axis())
    index = indices(draw, (draw(st.integers(1, 6)),), x.shape[axis])
    return OpCase(lambda t: mt.index_select(t, axis, index), (x,), lambda a: np.take(a, index, axis))


def scatter_add_reference(axis, index):
    def reference(a, src):
        out, where = a.copy(), list(np.indices(index.shape))
        where[axis] = index
        np.add.at(out, tuple(where), src)
        return out
    return reference


@st.composite
def scatter_add_cases(draw):
    """x.scatter_add(axis, index, src), both x and src differentiable; repeated indices add up."""
    x, axis = draw(arrays_with_axis())
    axis %= x.ndim
    shape = tuple(draw(st.integers(1, 4)) if d == axis else n for d, n in enumerate(x.shape))
    index, src = indices(draw, shape, x.shape[axis]), draw(float_arrays(shape))
    return OpCase(lambda t, s: mt.scatter_add(t, axis, index, s), (x, src), scatter_add_reference(axis, index))


@st.composite
def squeeze_cases(draw):
    x = draw(shapes(min_side=1, max_side=2).flatmap(float_arrays))
    ones = [d for d, n in enumerate(x.shape) if n == 1]
    axis = draw(st.sampled_from([None, *ones, *[d - x.ndim for d in ones]]))
    return OpCase(lambda t: mt.squeeze(t, axis), (x,), lambda a: np.squeeze(a, axis))


@st.composite
def unsqueeze_cases(draw):
    x = draw(shapes().flatmap(float_arrays))
    axis = draw(st.integers(-x.ndim - 1, x.ndim))
    return OpCase(lambda t: mt.unsqueeze(t, axis), (x,), lambda a: np.expand_dims(a, axis))


@st.composite
def expand_cases(draw):
    """Size-1 axes broadcast to larger sizes, and new leading axes."""
    x = draw(shapes(max_side=2).flatmap(float_arrays))
    target = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in x.shape)
    target = tuple(draw(st.lists(st.integers(1, 3), max_size=2))) + target
    return OpCase(lambda t: t.expand(*target), (x,), lambda a: np.broadcast_to(a, target))


@st.composite
def swapaxes_cases(draw):
    x, first = draw(arrays_with_axis())
    second = draw(st.integers(-x.ndim, x.ndim - 1))
    return OpCase(lambda t: mt.swapaxes(t, first, second), (x,), lambda a: np.swapaxes(a, first, second))


@st.composite
def triu_cases(draw):
    x, k = draw(shapes(min_dims=2).flatmap(float_arrays)), draw(st.integers(-2, 2))
    return OpCase(lambda t: mt.triu(t, k), (x,), lambda a: np.triu(a, k))


@st.composite
def masked_fill_cases(draw):
    """The mask broadcasts against x (it may have fewer axes or size-1 ones)."""
    x = draw(shapes().flatmap(float_arrays))
    shape = tuple(1 if draw(st.booleans()) else n for n in x.shape)[draw(st.integers(0, x.ndim)):]
    mask = draw(masks(shape))
    return OpCase(lambda t: mt.masked_fill(t, mask, -2.5), (x,), lambda a: np.where(mask, -2.5, a))


@st.composite
def flatten_cases(draw):
    x = draw(shapes(min_dims=1).flatmap(float_arrays))
    start = draw(st.integers(0, x.ndim - 1))
    end = draw(st.integers(start, x.ndim - 1))
    shape = x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]
    return OpCase(lambda t: mt.flatten(t, start, end - x.ndim), (x,), lambda a: a.reshape(shape))


CASES = {
    "split": split_cases(),
    "stack": stack_cases(),
    "pad": pad_cases(),
    "roll": roll_cases(),
    "tile": tile_cases(),
    "repeat_interleave": repeat_interleave_cases(),
    "gather": gather_cases(),
    "take": take_cases(),
    "index_select": index_select_cases(),
    "scatter_add": scatter_add_cases(),
    "squeeze": squeeze_cases(),
    "unsqueeze": unsqueeze_cases(),
    "expand": expand_cases(),
    "swapaxes": swapaxes_cases(),
    "triu": triu_cases(),
    "masked_fill": masked_fill_cases(),
    "flatten": flatten_cases(),
    "clone": shapes().flatmap(float_arrays).map(lambda x: OpCase(mt.clone, (x,), np.copy)),
    "chunk": chunk_cases(),
    "contiguous": shapes().flatmap(float_arrays).map(  # float_arrays gives transposed views too
        lambda x: OpCase(lambda t: t.contiguous() * 2.0, (x,), lambda a: a * 2.0)),
}

OPS = op_tests(CASES, examples={"gradient": 8, "gradgrad": 8, "float32": 4, "float64": 4, "forward": 10})
