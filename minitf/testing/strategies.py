"""Hypothesis strategies for the inputs of ops: shapes, broadcastable shapes, bounded float arrays
(sometimes as non-contiguous views), distinct values, axes and masks."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MAX_DIMS = 4
MAX_SIDE = 5


def shapes(min_dims: int = 0, max_dims: int = MAX_DIMS, min_side: int = 1,
           max_side: int = MAX_SIDE) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes with up to `max_dims` axes of sizes `min_side`..`max_side` (size-1 axes included)."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = MAX_DIMS,
                         max_side: int = MAX_SIDE) -> st.SearchStrategy[tuple[tuple[int, ...], ...]]:
    """Tuples of `num_shapes` shapes that broadcast together (differing ranks, size-1 axes)."""
    strategy = hnp.mutually_broadcastable_shapes(num_shapes=num_shapes, min_dims=min_dims,
                                                 max_dims=max_dims, min_side=1, max_side=max_side)
    return strategy.map(lambda b: b.input_shapes)


def arrays(shape: Any, min_value: float = -3.0, max_value: float = 3.0,
           dtype: Any = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Float arrays of `shape` (a tuple or a strategy) with finite values in [min_value, max_value]."""
    dtype = np.dtype(dtype)
    low, high = dtype.type(min_value), dtype.type(max_value)  # bounds the dtype can represent,
    if low < min_value:                                        # rounded inwards
        low = np.nextafter(low, dtype.type(np.inf))
    if high > max_value:
        high = np.nextafter(high, dtype.type(-np.inf))
    elements = st.floats(float(low), float(high), allow_nan=False, allow_infinity=False,
                         width=dtype.itemsize * 8)
    return hnp.arrays(dtype, shape, elements=elements)


@st.composite
def distinct_values(draw: Callable, shape: tuple[int, ...], gap: float = 0.1) -> np.ndarray:
    """Float64 arrays of `shape` whose values are a shuffled `gap`-spaced range around 0: far enough
    apart that a finite difference never reorders them (for max, min, sort, topk gradients)."""
    size = int(np.prod(shape))
    order = draw(st.permutations(range(size)))
    return (np.array(order, dtype=np.float64).reshape(shape) - size / 2) * gap


def axes(ndim: int, allow_none: bool = True, allow_tuple: bool = True) -> st.SearchStrategy[Any]:
    """Axis arguments for a tensor with `ndim` axes: None, an int (negative too), or a tuple of ints."""
    options = []
    if allow_none:
        options.append(st.none())
    if ndim > 0:
        options.append(st.integers(-ndim, ndim - 1))
        if allow_tuple:
            options.append(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)
                           .flatmap(lambda ax: st.tuples(*[st.sampled_from([a, a - ndim]) for a in ax])))
    return st.one_of(options) if options else st.none()


def masks(shape: Any) -> st.SearchStrategy[np.ndarray]:
    """Boolean arrays of `shape`."""
    return hnp.arrays(np.bool_, shape)


@st.composite
def float_arrays(draw: Callable, shape: Any, min_value: float = -3.0, max_value: float = 3.0) -> np.ndarray:
    """Float64 arrays of `shape` (a tuple); with 2+ axes sometimes a transposed, non-contiguous view."""
    shape = tuple(shape)
    if len(shape) >= 2 and draw(st.booleans()):
        return draw(arrays(shape[::-1], min_value, max_value)).T
    return draw(arrays(shape, min_value, max_value))


def away_from_zero(x: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """`x` with its values pushed out of (-margin, margin), where relu and abs have their kink."""
    return np.where(x >= 0, x + margin, x - margin)
