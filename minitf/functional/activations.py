"""Activations and dropout as fused ops: gelu (exact or tanh), silu, softplus, leaky_relu, elu,
log_sigmoid, dropout; relu, sigmoid and tanh are minitf's own (minitf.autograd.ops_math)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, cpu, kernels
from ..autograd import Tensor, exp, relu, sigmoid, tanh
from ..autograd.ops_math import sigmoid_array
from ..kernels.constants import GELU_C, INV_SQRT_2, INV_SQRT_2PI, SQRT_2_OVER_PI
from ..rng import dropout_keep

__all__ = ["relu", "gelu", "silu", "softplus", "leaky_relu", "elu", "sigmoid", "tanh", "log_sigmoid",
           "dropout", "erf"]

_erf_float64 = np.frompyfunc(math.erf, 1, 1)


def erf(x: Any) -> Any:
    """The error function of an array, accurate to the array's precision.

    CuPy has it built in. NumPy has none: float64 goes through `math.erf` (exact, slower),
    other dtypes through Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, about
    one float32 ulp near 1).
    """
    xp = backend.get_array_module(x)
    if xp is not np:
        import cupyx.scipy.special  # noqa: PLC0415 (CuPy is optional)

        return cupyx.scipy.special.erf(x)
    if x.dtype == np.float64:
        return np.asarray(_erf_float64(x), dtype=np.float64)  # (a 0-d input gives a Python float)
    a = np.abs(x)
    t = 1 / (1 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                         + t * 1.061405429))))
    return np.copysign(1 - poly * np.exp(-a * a), x).astype(x.dtype)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF; `approximate="tanh"` uses the tanh formula."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    if kernels.available(x.data):
        return _gelu_cuda(x, approximate)
    xp = backend.get_array_module(x.data)
    if approximate == "none":
        cdf = 0.5 * (1 + erf(x.data * INV_SQRT_2))

        def backward(g):
            pdf = xp.exp(-0.5 * x.data * x.data) * INV_SQRT_2PI
            return (g * (cdf + x.data * pdf),)

        return Tensor.from_op(x.data * cdf, (x,), backward, _gelu_higher(x, approximate))
    inner = SQRT_2_OVER_PI * (x.data + GELU_C * x.data ** 3)
    th = xp.tanh(inner)

    def backward(g):
        d_inner = SQRT_2_OVER_PI * (1 + 3 * GELU_C * x.data * x.data)
        return (g * (0.5 * (1 + th) + 0.5 * x.data * (1 - th * th) * d_inner),)

    return Tensor.from_op(0.5 * x.data * (1 + th), (x,), backward, _gelu_higher(x, approximate))


def _gelu_cuda(x: Tensor, approximate: str) -> Tensor:
    """gelu of a CuPy array that kernels.available accepts: one kernel each way."""
    y = kernels.gelu_forward(x.data, approximate)
    return Tensor.from_op(y, (x,), lambda g: (kernels.gelu_backward(x.data, g, approximate),),
                          _gelu_higher(x, approximate))


def normal_pdf(x: Tensor) -> Tensor:
    """The standard normal density exp(-x^2 / 2) / sqrt(2 pi), in tensor ops."""
    return exp(x * x * -0.5) * INV_SQRT_2PI


def normal_cdf(x: Tensor) -> Tensor:
    """The standard normal CDF (1 + erf(x / sqrt 2)) / 2 as an op: its derivative is normal_pdf."""
    def backward(g):
        xp = backend.get_array_module(g)
        return (g * xp.exp(-0.5 * x.data * x.data) * INV_SQRT_2PI,)

    out = 0.5 * (1 + erf(x.data * INV_SQRT_2))
    return Tensor.from_op(out, (x,), backward, lambda g, result: (g * normal_pdf(x),))


def gelu_derivative(x: Tensor, approximate: str = "none") -> Tensor:
    """d gelu / dx at x, in tensor ops (so that it can be differentiated again)."""
    if approximate == "none":
        return normal_cdf(x) + x * normal_pdf(x)
    x2 = x * x
    th = tanh(x * (1 + GELU_C * x2) * SQRT_2_OVER_PI)
    return (1 + th) * 0.5 + x * (1 - th * th) * (1 + 3 * GELU_C * x2) * (0.5 * SQRT_2_OVER_PI)


def _gelu_higher(x: Tensor, approximate: str):
    """gelu's rule in tensor ops: g * gelu'(x)."""
    return lambda g, out: (g * gelu_derivative(x, approximate),)


def softplus_array(xp: Any, x: Any) -> Any:
    """log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)) as a new array, without overflow
    (np.logaddexp does the same, several times slower)."""
    out = xp.abs(x, out=xp.empty_like(x))
    xp.negative(out, out=out)
    xp.exp(out, out=out)
    xp.log1p(out, out=out)
    out += xp.maximum(x, 0)
    return out


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x) (swish). Backward: s * (1 + x * (1 - s)), s = sigmoid(x)."""
    xp = backend.get_array_module(x.data)
    s = sigmoid_array(xp, x.data)

    def backward(g):
        gx = 1 - s  # s * (1 + x * (1 - s)) * g, in place
        gx *= x.data
        gx += 1
        gx *= s
        gx *= g
        return (gx,)

    def higher(g, out):
        st = sigmoid(x)
        return (g * st * (1 + x * (1 - st)),)

    return Tensor.from_op(x.data * s, (x,), backward, higher)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (as PyTorch).

    Backward: sigmoid(beta * x), and 1 above the threshold.
    """
    xp = backend.get_array_module(x.data)
    bx = x.data if beta == 1 else beta * x.data
    linear = bx > threshold  # (mostly False: `copyto` below is fast on it)
    out = softplus_array(xp, bx)
    if beta != 1:
        out /= beta
    xp.copyto(out, x.data, where=linear)

    def backward(g):
        slope = sigmoid_array(xp, bx)
        xp.copyto(slope, 1, where=linear)
        slope *= g
        return (slope,)

    def higher(g, result):  # sigmoid(beta x) below the threshold, 1 above
        if not linear.any():
            return (g * sigmoid(x if beta == 1 else x * beta),)
        below = (~linear).astype(x.dtype)
        return (g * (sigmoid(x if beta == 1 else x * beta) * below + linear.astype(x.dtype)),)

    return Tensor.from_op(out, (x,), backward, higher)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, negative_slope * x elsewhere; at 0 the gradient is negative_slope, as PyTorch."""
    xp = backend.get_array_module(x.data)
    out = xp.multiply(x.data, negative_slope, out=xp.empty_like(x.data))
    # max(x, slope * x) is the function for slopes up to 1, min(x, slope * x) above
    (xp.maximum if negative_slope <= 1 else xp.minimum)(out, x.data, out=out)

    def backward(g):
        slope = (x.data > 0).astype(g.dtype)
        slope *= 1 - negative_slope
        slope += negative_slope
        slope *= g
        return (slope,)

    def higher(g, result):  # a piecewise constant slope: a constant array
        return (g * xp.where(x.data > 0, 1, negative_slope).astype(x.dtype),)

    return Tensor.from_op(out, (x,), backward, higher)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, alpha * (exp(x) - 1) elsewhere; at 0 the gradient is alpha, as PyTorch."""
    xp = backend.get_array_module(x.data)
    negative_part = xp.minimum(x.data, 0, out=xp.empty_like(x.data))  # 0 where x > 0: no overflow
    xp.expm1(negative_part, out=negative_part)
    negative_part *= alpha
    out = xp.maximum(x.data, 0, out=xp.empty_like(x.data))
    out += negative_part  # (one term is 0: exact)

    def backward(g):
        slope = (x.data > 0).astype(g.dtype)  # 1 where x > 0, else alpha * exp(x)
        slope *= 1 - alpha
        slope += alpha
        slope += negative_part
        slope *= g
        return (slope,)

    def higher(g, result):  # 1 where x > 0, alpha at 0, else alpha * exp(x) = result + alpha (through out)
        positive, negative = x.data > 0, x.data < 0  # (at 0 the second derivative is 0, as PyTorch's)
        constant = xp.where(positive, 1, 0).astype(x.dtype) + xp.where(x.data == 0, alpha, 0).astype(x.dtype)
        return (g * ((result + alpha) * negative.astype(x.dtype) + constant),)

    return Tensor.from_op(out, (x,), backward, higher)


def log_sigmoid(x: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), finite for any x. Backward: sigmoid(-x)."""
    xp = backend.get_array_module(x.data)

    def backward(g):
        return (g * sigmoid_array(xp, -x.data),)

    return Tensor.from_op(-softplus_array(xp, -x.data), (x,), backward, lambda g, out: (g * sigmoid(-x),))


def keep_and_scale(a: Any, keep: Any, scale: float) -> Any:
    """a * keep * scale as a new array, in two passes (blocks of the first axis on minitf's threads)."""
    xp = backend.get_array_module(a)
    out = xp.empty(np.broadcast_shapes(a.shape, keep.shape), dtype=a.dtype)
    if out.ndim == 0 or out.shape != a.shape or out.shape != keep.shape:
        xp.multiply(a, keep, out=out)
        out *= scale
        return out

    def block(rows: slice) -> None:
        xp.multiply(a[rows], keep[rows], out=out[rows])
        out[rows] *= scale

    cpu.run_blocks(block, out.shape[0], out[:1].size, out)
    return out


def check_probability(p: float, name: str = "p") -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability {name} must be in [0, 1], got {p}")


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p); identity when not training."""
    check_probability(p)
    if not training or p == 0.0:
        return x
    if kernels.available(x.data):
        return _dropout_cuda(x, p)
    keep, scale = dropout_keep(backend.get_array_module(x.data), x.shape, p, x.dtype)

    def backward(g):
        return (keep_and_scale(g, keep, scale),)

    return Tensor.from_op(keep_and_scale(x.data, keep, scale), (x,), backward,
                          lambda g, out: (g * keep * scale,))


def _dropout_cuda(x: Tensor, p: float) -> Tensor:
    """dropout of a CuPy array that kernels.available accepts: one kernel draws, masks and scales."""
    y, mask = kernels.dropout_forward(x.data, p)
    return Tensor.from_op(y, (x,), lambda g: (g * mask,), lambda g, out: (g * mask,))
