"""Parameter initializers, drawing from the seeded generator (see minitf.manual_seed).

The in-place ones (`uniform_`, `kaiming_uniform_`, ...) follow torch.nn.init: names, arguments
and formulas. They overwrite a Tensor's values on its own device, outside any graph, and count
as an in-place write (a graph that used the old values can no longer run backward()).

`uniform`, `normal` and `xavier_uniform` build new float32 NumPy arrays from a shape: the
Transformer's own initialization, kept as it is so that seeded runs do not change.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, rng
from ..autograd import Tensor, versions

DEFAULT_DTYPE = np.float32


# ---- arrays from shapes (the Transformer's initialization) ----------------------------------
def uniform(shape: tuple[int, ...], bound: float, dtype: Any = DEFAULT_DTYPE) -> np.ndarray:
    """Uniform in [-bound, bound)."""
    return ((2 * rng.random_uniform(np, shape, dtype) - 1) * bound).astype(dtype)


def normal(shape: tuple[int, ...], std: float, dtype: Any = DEFAULT_DTYPE) -> np.ndarray:
    return (rng.random_normal(np, shape, dtype) * std).astype(dtype)


def xavier_uniform(shape: tuple[int, int], dtype: Any = DEFAULT_DTYPE) -> np.ndarray:
    """Glorot uniform for a (fan_out, fan_in) weight."""
    fan_out, fan_in = shape
    return uniform(shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype)


# ---- in place, as torch.nn.init ---------------------------------------------------------------
def _check(op: str, tensor: Any) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init.{op}: expected a Tensor or Parameter, got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"init.{op}: expected a floating-point tensor, got dtype {tensor.dtype}")


def _write(tensor: Tensor, values: Any) -> Tensor:
    tensor.data[...] = values
    versions.bump(tensor.data)
    return tensor


def _draw(tensor: Tensor, kind: str) -> Any:
    xp = backend.get_array_module(tensor.data)
    draw = rng.random_uniform if kind == "uniform" else rng.random_normal
    return draw(xp, tensor.shape, tensor.dtype)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with U(a, b) draws."""
    _check("uniform_", tensor)
    if not a <= b:
        raise ValueError(f"init.uniform_: needs a <= b, got a={a}, b={b}")
    return _write(tensor, a + (b - a) * _draw(tensor, "uniform"))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with N(mean, std^2) draws."""
    _check("normal_", tensor)
    if std < 0:
        raise ValueError(f"init.normal_: std must be >= 0, got {std}")
    return _write(tensor, mean + std * _draw(tensor, "normal"))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0) -> Tensor:
    """Fill with N(mean, std^2) draws restricted to [a, b] (a and b are absolute values).

    Draws outside [a, b] are drawn again (the same distribution as PyTorch's inverse-CDF method).
    """
    _check("trunc_normal_", tensor)
    if not a < b or std <= 0:
        raise ValueError(f"init.trunc_normal_: needs a < b and std > 0, got a={a}, b={b}, std={std}")
    xp = backend.get_array_module(tensor.data)
    values = mean + std * _draw(tensor, "normal")
    for _ in range(1000):
        outside = (values < a) | (values > b)
        count = int(outside.sum())
        if count == 0:
            return _write(tensor, values)
        values[outside] = mean + std * rng.random_normal(xp, (count,), tensor.dtype)
    raise ValueError(f"init.trunc_normal_: [a, b] = [{a}, {b}] lies too far in the tail of N({mean}, {std}^2)")


def constant_(tensor: Tensor, val: float) -> Tensor:
    _check("constant_", tensor)
    return _write(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain of torch.nn.init.calculate_gain for a nonlinearity."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a (out, in, *kernel) weight: in * kernel size and out * kernel size."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tensor.shape}")
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return max(fan_in if mode == "fan_in" else fan_out, 1)  # a zero-element tensor has nothing to fill


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / max(fan_in + fan_out, 1))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / max(fan_in + fan_out, 1)))


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-b, b) with b = gain * sqrt(3 / fan) (He et al., 2015); a: the leaky_relu slope."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """N(0, std^2) with std = gain / sqrt(fan)."""
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))


def default_init_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's reset_parameters for Linear and Conv*: kaiming_uniform_(a=sqrt(5)) on the weight,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)
