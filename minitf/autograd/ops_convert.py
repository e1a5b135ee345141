"""PyTorch's conversion methods: `.float() .double() .half() .long() .int() .bool()` (astype to
float32, float64, float16, int64, int32, bool) and `.contiguous()`.

A cast between floating-point dtypes keeps the graph, as astype does (the gradient is cast back
to the input's dtype); a cast to an integer or boolean dtype gives a tensor without gradient.
"""
from __future__ import annotations

import numpy as np

from .. import backend
from .ops_math import astype
from .tensor import SAME_RULE, Tensor


def to_float(x: Tensor) -> Tensor:
    """x as float32 (torch's `.float()`); differentiable."""
    return astype(x, np.float32)


def to_double(x: Tensor) -> Tensor:
    """x as float64 (torch's `.double()`); differentiable."""
    return astype(x, np.float64)


def to_half(x: Tensor) -> Tensor:
    """x as float16 (torch's `.half()`); differentiable."""
    return astype(x, np.float16)


def to_long(x: Tensor) -> Tensor:
    """x as int64 (torch's `.long()`), truncated toward 0; no gradient."""
    return astype(x, np.int64)


def to_int(x: Tensor) -> Tensor:
    """x as int32 (torch's `.int()`), truncated toward 0; no gradient."""
    return astype(x, np.int32)


def to_bool(x: Tensor) -> Tensor:
    """x != 0 as bool (torch's `.bool()`); no gradient."""
    return astype(x, np.bool_)


def contiguous(x: Tensor) -> Tensor:
    """x with C-contiguous memory: x itself if it already is (as torch), else a copy in the graph."""
    if x.data.flags.c_contiguous:
        return x
    xp = backend.get_array_module(x.data)
    return Tensor.from_op(xp.ascontiguousarray(x.data), (x,), lambda g: (g,), SAME_RULE)
