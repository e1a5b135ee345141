"""Creating tensors: filled (zeros, ones, full, empty and their _like forms), ranges, identity,
and views of existing arrays (from_numpy, as_tensor; `tensor` copies).

PyTorch's names and dtype defaults: float32 for floating-point results, int64 for integer
ones (`arange` with integer arguments), and `full` takes its dtype from the fill value. Every
creator takes `device=` ("cpu", "cuda", "cuda:N") and `dtype=`; `requires_grad=` needs a
floating-point dtype.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .. import backend
from ..backend import Device
from .tensor import Tensor, as_array

DeviceLike = str | Device


def backend_of(device: DeviceLike) -> Any:
    """NumPy for the CPU, CuPy for a CUDA device (a DeviceError if CuPy or a GPU is missing)."""
    return np if backend.parse_device(device).kind == "cpu" else backend.cupy()


def parse_shape(shape: tuple[Any, ...], op: str) -> tuple[int, ...]:
    """`f(2, 3)` or `f((2, 3))` as a tuple of non-negative ints."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        dims = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise TypeError(f"{op}: the shape must be ints, got {shape!r}") from None
    if any(n < 0 for n in dims):
        raise ValueError(f"{op}: the shape must not be negative, got {dims}")
    return dims


def _filled(fill: str):
    def create(*shape: Any, dtype: Any = np.float32, device: DeviceLike = "cpu",
               requires_grad: bool = False) -> Tensor:
        array = getattr(backend_of(device), fill)(parse_shape(shape, fill), dtype=dtype)
        return Tensor(array, requires_grad=requires_grad, device=device)

    create.__name__ = create.__qualname__ = fill
    create.__doc__ = (f"A tensor of the given shape (`{fill}(2, 3)` or `{fill}((2, 3))`) made by "
                      f"`{fill}`; float32 unless dtype is given.")
    return create


zeros = _filled("zeros")
ones = _filled("ones")
empty = _filled("empty")


def _fill_dtype(value: Any) -> Any:
    """full()'s default dtype, as PyTorch: bool, int64 for ints, float32 for floats."""
    if isinstance(value, (bool, np.bool_)):
        return np.bool_
    if isinstance(value, (int, np.integer)):
        return np.int64
    if isinstance(value, (float, np.floating)):
        return np.float32
    raise TypeError(f"full: fill_value must be a bool, int or float, got {type(value).__name__}")


def full(shape: Any, fill_value: Any, *, dtype: Any = None, device: DeviceLike = "cpu",
         requires_grad: bool = False) -> Tensor:
    """A tensor of `shape` filled with `fill_value` (dtype from the value unless given)."""
    dtype = _fill_dtype(fill_value) if dtype is None else dtype
    array = backend_of(device).full(parse_shape((shape,), "full"), fill_value, dtype=dtype)
    return Tensor(array, requires_grad=requires_grad, device=device)


def _like(creator):
    def create(t: Any, *, dtype: Any = None, device: DeviceLike | None = None,
               requires_grad: bool = False) -> Tensor:
        t = t if isinstance(t, Tensor) else Tensor(t)
        return creator(t.shape, dtype=t.dtype if dtype is None else dtype,
                       device=t.device if device is None else device, requires_grad=requires_grad)

    create.__name__ = create.__qualname__ = f"{creator.__name__}_like"
    create.__doc__ = f"`{creator.__name__}` with the shape, dtype and device of `t` (unless given)."
    return create


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)


def full_like(t: Any, fill_value: Any, *, dtype: Any = None, device: DeviceLike | None = None,
              requires_grad: bool = False) -> Tensor:
    """`full` with the shape, dtype and device of `t` (unless given)."""
    t = t if isinstance(t, Tensor) else Tensor(t)
    return full(t.shape, fill_value, dtype=t.dtype if dtype is None else dtype,
                device=t.device if device is None else device, requires_grad=requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, *, dtype: Any = None,
           device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    """Values start, start + step, ... below end (`arange(end)` starts at 0): int64 when every
    argument is an int, float32 otherwise (as PyTorch), unless dtype is given."""
    if end is None:
        start, end = 0, start
    for name, value in (("start", start), ("end", end), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"arange: {name} must be a number, got {value!r}")
        if not np.isfinite(value):
            raise ValueError(f"arange: {name} must be finite, got {value!r}")
    if step == 0:
        raise ValueError("arange: step must not be 0")
    integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    if dtype is None:
        dtype = np.int64 if integral else np.float32
    xp = backend_of(device)
    array = xp.arange(start, end, step, dtype=np.int64 if integral else np.float64).astype(dtype)
    return Tensor(array, requires_grad=requires_grad, device=device)


def linspace(start: float, end: float, steps: int, *, dtype: Any = np.float32,
             device: DeviceLike = "cpu", requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from start to end, both included (float32 by default)."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a non-negative int, got {steps!r}")
    array = backend_of(device).linspace(float(start), float(end), int(steps)).astype(dtype)
    return Tensor(array, requires_grad=requires_grad, device=device)


def eye(n: int, m: int | None = None, *, dtype: Any = np.float32, device: DeviceLike = "cpu",
        requires_grad: bool = False) -> Tensor:
    """The (n, m) identity matrix (m = n by default)."""
    rows, cols = parse_shape((n, n if m is None else m), "eye")
    return Tensor(backend_of(device).eye(rows, cols, dtype=dtype), requires_grad=requires_grad,
                  device=device)


def from_numpy(array: np.ndarray) -> Tensor:
    """A CPU tensor that shares `array`'s memory (no copy, as torch.from_numpy): writes to
    either are seen by both. The dtype is kept, float64 included."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__} "
                        "(minitf.tensor copies any data, minitf.as_tensor shares it when it can)")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"from_numpy: cannot make a tensor from an array of dtype {array.dtype}")
    if not array.dtype.isnative:  # converting would copy (torch.from_numpy refuses it too)
        raise TypeError(f"from_numpy: the array's byte order ({array.dtype.str}) is not the machine's, "
                        "so its memory cannot be shared; use minitf.tensor(array), which converts it")
    return Tensor(array)


def as_tensor(data: Any, dtype: Any = None, device: DeviceLike | None = None) -> Tensor:
    """`data` as a tensor, sharing its memory when it can (as torch.as_tensor).

    An array already of `dtype` (default: its own) on `device` (default: where it is) is used
    without a copy; other data is converted, as `tensor` does. A Tensor of that dtype and
    device is returned itself; otherwise its conversion is recorded (astype, to).
    """
    if isinstance(data, Tensor):
        out = data if dtype is None or np.dtype(dtype) == data.dtype else data.astype(dtype)
        return out if device is None else out.to(device)
    return Tensor(as_array(data, dtype), device=device)
