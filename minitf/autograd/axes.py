"""`dim=` as an alias of `axis=`, for every op that takes an axis (PyTorch spelling, NumPy meaning).

    @accepts_dim
    def cumsum(x, axis=None): ...      # cumsum(x, dim=1) == cumsum(x, axis=1)

Passing both (or `axis` positionally and `dim=` by keyword) is a TypeError.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def accepts_dim(fn: F) -> F:
    """Wrap `fn`, whose parameter `axis` may then also be passed as `dim=`."""
    position = list(inspect.signature(fn).parameters).index("axis")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "dim" in kwargs:
            if "axis" in kwargs or len(args) > position:
                raise TypeError(f"{fn.__name__}() got both axis and dim; pass one (dim is an alias of axis)")
            kwargs["axis"] = kwargs.pop("dim")
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def normalize_axis(axis: Any, ndim: int, op: str) -> int:
    """One axis as a non-negative int; raises naming the op for a non-int or out-of-range axis."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim
