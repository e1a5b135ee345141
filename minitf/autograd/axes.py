"""PyTorch's spellings as aliases of NumPy's, for every op that takes an axis: `dim=` for `axis=`
and, for the ops that have `keepdims`, `keepdim=` for `keepdims=` (NumPy meaning in both cases).

    @accepts_dim
    def sum(x, axis=None, keepdims=False): ...   # sum(x, dim=1, keepdim=True) == sum(x, axis=1, keepdims=True)

Passing both names of one argument (or the NumPy one positionally and the alias by keyword) is a
TypeError naming them. `ALIASES` lists the pairs: a new one is added there, once, for every op.
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

ALIASES = {"dim": "axis", "keepdim": "keepdims"}  # PyTorch's name -> NumPy's (the parameter's)


def accepts_dim(fn: F) -> F:
    """Wrap `fn`, whose parameter `axis` may then also be passed as `dim=` (and `keepdims`, if it
    has one, as `keepdim=`). The wrapper's `dim_aliases` maps each alias to its parameter."""
    parameters = list(inspect.signature(fn).parameters)
    positions = {alias: parameters.index(name) for alias, name in ALIASES.items() if name in parameters}
    if "dim" not in positions:
        raise TypeError(f"accepts_dim: {fn.__name__} has no parameter 'axis'")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for alias, position in positions.items():
            if alias in kwargs:
                name = ALIASES[alias]
                if name in kwargs or len(args) > position:
                    raise TypeError(f"{fn.__name__}() got both {name} and {alias}; pass one "
                                    f"({alias} is an alias of {name})")
                kwargs[name] = kwargs.pop(alias)
        return fn(*args, **kwargs)

    wrapper.dim_aliases = {alias: ALIASES[alias] for alias in positions}  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def normalize_axis(axis: Any, ndim: int, op: str) -> int:
    """One axis as a non-negative int; raises naming the op for a non-int or out-of-range axis."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}: axis must be an int, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return axis % ndim
