"""In-place ops: `t += u` (and `-= *= /= **=`), `add_ sub_ mul_ div_ pow_ zero_ fill_ copy_ clamp_`.

Each writes the tensor's own memory (views of it see the change, as in NumPy), returns the
same Tensor and bumps its version counter (versions.py). None is recorded in the graph, so
`check_writable` allows a write only outside it: on a tensor that does not require grad, or
on a leaf under `no_grad()` (as an optimizer steps). `t[index] = value` follows the same rule.

The tensor keeps its dtype and shape: the other operand is cast with NumPy's 'same_kind' rule
(float32 += float64 stays float32; int += float is a TypeError) and must broadcast to the
tensor's shape without growing it.

Everything is checked before the tensor is written (value, shape, cast, read-only view), so a
failed op leaves it as it was: a floating tensor is written by one ufunc (which cannot stop
halfway), anything else is computed into a temporary and copied in one step. A write that
started is always counted, even if NumPy raises after it (np.errstate).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import backend
from . import versions
from .grad_mode import is_grad_enabled
from .tensor import Tensor


def check_writable(x: Tensor, op: str, *values: Any) -> None:
    """Raise unless writing `x` in place with `values` stays outside the recorded graph."""
    if x.requires_grad and (is_grad_enabled() or not x.is_leaf):
        what = "a leaf tensor that requires grad" if x.is_leaf else "a tensor computed by a recorded op"
        new = f"`t = t {op[:-1]} u`, " if op.endswith("=") else ""  # an augmented assignment
        raise RuntimeError(
            f"{op}: in-place write to {what} (shape {x.shape}): minitf records no in-place ops; "
            f"build a new tensor instead ({new}where, masked_fill, concat, scatter_add), or change a "
            "parameter's values under `with minitf.no_grad():`"
        )
    if is_grad_enabled() and any(isinstance(v, Tensor) and v.requires_grad for v in values):
        raise RuntimeError(
            f"{op}: the value written into the tensor of shape {x.shape} requires grad, but an "
            "in-place write records no graph, so its gradient would be lost; build a new tensor "
            "instead, or write a detached value (`value.detach()`) or under `minitf.no_grad()`"
        )


def _operand(x: Tensor, other: Any, op: str) -> Any:
    """`other` as an array on x's device (Python numbers stay numbers), broadcastable to x.shape."""
    data = other.data if isinstance(other, Tensor) else other
    if data is None:
        raise TypeError(f"{op}: the value is None (did backward run? a parameter's .grad is None "
                        "until then), not a number or array to write into the tensor of shape "
                        f"{x.shape}")
    if isinstance(data, (list, tuple)):
        data = backend.get_array_module(x.data).asarray(data)
    kind = getattr(getattr(data, "dtype", None), "kind", None)
    if kind is None and not isinstance(data, (bool, int, float, np.generic)):
        raise TypeError(f"{op}: the value must be a number, an array or a tensor, got {type(data).__name__}")
    if kind is not None and kind not in "biuf":
        raise TypeError(f"{op}: the value has dtype {data.dtype}, not a number")
    if hasattr(data, "shape"):
        backend.check_same_device(op, x.data, data)
        try:
            fits = np.broadcast_shapes(x.shape, data.shape) == x.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{op}: a value of shape {data.shape} cannot be written into the tensor "
                             f"of shape {x.shape} (it must broadcast to that shape without growing it)")
    return data


def _check_fits(x: Tensor, op: str, dtype: Any) -> None:
    """Raise unless a result of `dtype` can be stored in x (same_kind cast) and x is writable."""
    if not np.can_cast(dtype, x.dtype, casting="same_kind"):  # dtypes only: NumPy's answers for CuPy
        raise TypeError(f"{op} on a tensor of dtype {x.dtype}: the result has dtype {dtype}, which "
                        f"cannot be stored as {x.dtype} (same_kind casting); convert the tensor "
                        "first with .astype(...)")
    if not getattr(x.data.flags, "writeable", True):  # (CuPy arrays have no `writeable` flag)
        raise ValueError(f"{op}: the tensor of shape {x.shape} is a read-only view (e.g. from "
                         "expand); write to a copy")


def _write(x: Tensor, op: str, compute: Callable[[Any], Any]) -> Tensor:
    """Set x's memory to `compute(x.data)` (a new array or number, x.data untouched) and count the
    write. Everything that can fail (computing, the dtype cast, a read-only view) fails before
    x changes, so a failed op leaves x as it was; the one copy that writes is always counted."""
    result = compute(x.data)
    _check_fits(x, op, result.dtype if hasattr(result, "dtype") else np.asarray(result).dtype)
    try:
        backend.get_array_module(x.data).copyto(x.data, result, casting="same_kind")
    finally:
        versions.bump(x.data)
    return x


def _ufunc(x: Tensor, name: str, op: str, *operands: Any) -> Callable[[Any], Any]:
    """The computation `name(data, *operands)` into a new array (x is written by `_write`)."""
    ufunc = getattr(backend.get_array_module(x.data), name)

    def compute(data: Any) -> Any:
        try:
            return ufunc(data, *operands)
        except TypeError as e:  # e.g. NumPy's UFuncTypeError: no loop for these dtypes
            raise TypeError(f"{op} on a tensor of dtype {x.dtype}: {e}") from e
        except ValueError as e:  # e.g. an integer to a negative integer power
            raise ValueError(f"{op} on a tensor of dtype {x.dtype}: {e}") from e

    return compute


def _write_through(x: Tensor, op: str, name: str, operand: Any) -> Tensor:
    """`name(x, operand, out=x)` without a temporary, for a floating x: NumPy resolves and checks
    the dtypes before the loop, and a float loop does not stop halfway (floating-point errors,
    under np.errstate, are raised after it), so it writes all of x or nothing."""
    xp = backend.get_array_module(x.data)
    _check_fits(x, op, np.result_type(x.dtype, getattr(operand, "dtype", operand)))
    try:
        getattr(xp, name)(x.data, operand, out=x.data, casting="same_kind")
    finally:
        versions.bump(x.data)
    return x


def _arithmetic(x: Tensor, other: Any, ufunc_name: str, op: str, alpha: float = 1) -> Tensor:
    check_writable(x, op, other)
    value = _operand(x, other, op)
    operand = value if alpha == 1 else value * alpha
    if x.dtype.kind == "f":
        return _write_through(x, op, ufunc_name, operand)
    return _write(x, op, _ufunc(x, ufunc_name, op, operand))  # an integer power may fail halfway


def add_(x: Tensor, other: Any, *, alpha: float = 1) -> Tensor:
    """x += alpha * other, in place (x keeps its dtype and shape); returns x."""
    return _arithmetic(x, other, "add", "add_", alpha)


def sub_(x: Tensor, other: Any, *, alpha: float = 1) -> Tensor:
    """x -= alpha * other, in place (x keeps its dtype and shape); returns x."""
    return _arithmetic(x, other, "subtract", "sub_", alpha)


def mul_(x: Tensor, other: Any) -> Tensor:
    """x *= other, in place (x keeps its dtype and shape); returns x."""
    return _arithmetic(x, other, "multiply", "mul_")


def div_(x: Tensor, other: Any) -> Tensor:
    """x /= other, in place (x keeps its dtype and shape: an integer x is a TypeError); returns x."""
    return _arithmetic(x, other, "true_divide", "div_")


def pow_(x: Tensor, other: Any) -> Tensor:
    """x **= other, in place (x keeps its dtype and shape); returns x."""
    return _arithmetic(x, other, "power", "pow_")


def _augmented(ufunc_name: str, symbol: str) -> Callable[[Tensor, Any], Tensor]:
    """`x op= other` (Python calls this instead of rebinding x to `x op other`)."""
    def operator(x: Tensor, other: Any) -> Tensor:
        return _arithmetic(x, other, ufunc_name, symbol)

    operator.__doc__ = f"`x {symbol} other`: in place, as the `_` methods."
    return operator


def copy_(x: Tensor, src: Any) -> Tensor:
    """Write src's values into x (broadcast to x's shape, cast 'same_kind' to x's dtype); returns x."""
    return _copy(x, src, "copy_")


def _copy(x: Tensor, src: Any, op: str) -> Tensor:
    check_writable(x, op, src)
    data = _operand(x, src, op)
    return _write(x, op, lambda _: data)


def fill_(x: Tensor, value: Any) -> Tensor:
    """Set every element of x to `value`: a number, or an array, list or tensor of exactly one
    element (any shape, as torch); returns x."""
    data = value.data if isinstance(value, Tensor) else value
    if isinstance(data, (list, tuple)):
        data = backend.get_array_module(x.data).asarray(data)
    if getattr(data, "size", 1) != 1:
        raise ValueError(f"fill_: the value must be a number or hold exactly one element, "
                         f"got shape {data.shape}")
    if isinstance(value, Tensor):
        return _copy(x, value.reshape(()), "fill_")
    return _copy(x, data.reshape(()) if hasattr(data, "reshape") else data, "fill_")


def zero_(x: Tensor) -> Tensor:
    """Set every element of x to 0; returns x."""
    return fill_(x, 0)


def clamp_(x: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
    """x limited to [min, max] in place, as `clamp` (max wins where min > max); returns x."""
    if min is None and max is None:
        raise ValueError("clamp_: give at least one of min and max")
    check_writable(x, "clamp_", min, max)
    bounds = [_ufunc(x, name, "clamp_", _operand(x, bound, "clamp_"))
              for name, bound in (("maximum", min), ("minimum", max)) if bound is not None]

    def compute(data: Any) -> Any:
        for bound in bounds:
            data = bound(data)
        return data

    return _write(x, "clamp_", compute)


iadd = _augmented("add", "+=")  # the operators of `t += u` and the like: Tensor.__iadd__ ...
isub = _augmented("subtract", "-=")
imul = _augmented("multiply", "*=")
itruediv = _augmented("true_divide", "/=")
ipow = _augmented("power", "**=")
