"""Elementwise arithmetic, unary math and matmul: each forward with its backward beside it.

Each backward receives `g`, the gradient of the output, and returns one gradient per
input (None where an input needs none). Broadcasting is undone by the engine, which
sums each gradient back to its input's shape.
"""
from __future__ import annotations

from typing import Any

from .. import backend
from ..cpu import gemm
from .tensor import SAME_RULE, Tensor

Operand = Any  # a Tensor, an array or a Python number


def lift(value: Operand, like: Tensor) -> Tensor:
    """`value` as a constant tensor on `like`'s device; Python numbers take a float tensor's dtype."""
    if isinstance(value, Tensor):
        backend.check_same_device("op", like.data, value.data)
        return value
    xp = backend.get_array_module(like.data)
    if isinstance(value, (bool, int, float)):
        dtype = like.dtype if like.dtype.kind == "f" else None
        return Tensor.from_op(xp.asarray(value, dtype=dtype))
    if hasattr(value, "shape"):
        backend.check_same_device("op", like.data, value)
    return Tensor.from_op(xp.asarray(value))


def _pair(a: Operand, b: Operand) -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor):
        return a, lift(b, a)
    return lift(a, b), b


# ---- arithmetic -------------------------------------------------------------------------

def _is_scalar(value: Any) -> bool:
    """A Python int or float (NumPy scalars excluded: they are not weakly typed), for which
    ops take a fast path with one parent and no constant tensor."""
    return type(value) in (int, float)


def _pass_through(g):
    return (g,)




def add(a: Operand, b: Operand) -> Tensor:
    if _is_scalar(b) and isinstance(a, Tensor):
        return Tensor.from_op(a.data + b, (a,), _pass_through, SAME_RULE)
    if _is_scalar(a):
        return add(b, a)
    a, b = _pair(a, b)

    def backward(g):
        return g, g

    return Tensor.from_op(a.data + b.data, (a, b), backward, SAME_RULE)


def sub(a: Operand, b: Operand) -> Tensor:
    if _is_scalar(b) and isinstance(a, Tensor):
        return Tensor.from_op(a.data - b, (a,), _pass_through, SAME_RULE)
    if _is_scalar(a):
        return Tensor.from_op(a - b.data, (b,), lambda g: (-g,), SAME_RULE)
    a, b = _pair(a, b)

    def backward(g):
        return g, (-g if b.requires_grad else None)

    return Tensor.from_op(a.data - b.data, (a, b), backward, SAME_RULE)


def mul(a: Operand, b: Operand) -> Tensor:
    if _is_scalar(a):
        a, b = b, a
    if _is_scalar(b):
        return Tensor.from_op(a.data * b, (a,), lambda g: (g * b,), SAME_RULE)
    a, b = _pair(a, b)

    def backward(g):
        return (g * b.data if a.requires_grad else None,
                g * a.data if b.requires_grad else None)

    def higher(g, out):
        return g * b if a.requires_grad else None, g * a if b.requires_grad else None

    return Tensor.from_op(a.data * b.data, (a, b), backward, higher)


def div(a: Operand, b: Operand) -> Tensor:
    if _is_scalar(b) and isinstance(a, Tensor):
        return Tensor.from_op(a.data / b, (a,), lambda g: (g / b,), SAME_RULE)
    a, b = _pair(a, b)
    out = a.data / b.data

    def backward(g):
        ga = g / b.data
        return (ga if a.requires_grad else None,
                -ga * out if b.requires_grad else None)

    def higher(g, result):
        ga = g / b
        return ga if a.requires_grad else None, -ga * result if b.requires_grad else None

    return Tensor.from_op(out, (a, b), backward, higher)


def pow(a: Operand, b: Operand) -> Tensor:  # noqa: A001 (mirrors operator.pow)
    """a ** b. The gradient with respect to b is taken as 0 where a <= 0 (log a undefined)."""
    if _is_scalar(b) and isinstance(a, Tensor):
        if b == 0:  # a constant: its gradient is 0 everywhere (0 * a ** -1 would be nan at a = 0); so is
            return Tensor.from_op(a.data ** b, (a,), lambda g: (g * 0,), SAME_RULE)  # x ** 1's second one
        return Tensor.from_op(a.data ** b, (a,), lambda g: (g * b * a.data ** (b - 1),),
                              lambda g, out: (g * b * a ** (b - 1),))
    a, b = _pair(a, b)
    out = a.data ** b.data

    def backward(g):
        xp = backend.get_array_module(g)
        ga = g * b.data * a.data ** (b.data - 1) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            positive = a.data > 0
            gb = g * out * xp.log(xp.where(positive, a.data, 1)) * positive
        return ga, gb

    def higher(g, result):
        ga = g * b * a ** (b - 1) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            positive = a.data > 0
            gb = g * result * log(a * positive + ~positive) * positive  # log a where a > 0, else 0
        return ga, gb

    return Tensor.from_op(out, (a, b), backward, higher)


def neg(a: Tensor) -> Tensor:
    def backward(g):
        return (-g,)

    return Tensor.from_op(-a.data, (a,), backward, SAME_RULE)


def radd(a: Tensor, b: Operand) -> Tensor:
    return add(b, a)


def rsub(a: Tensor, b: Operand) -> Tensor:
    return sub(b, a)


def rmul(a: Tensor, b: Operand) -> Tensor:
    return mul(b, a)


def rdiv(a: Tensor, b: Operand) -> Tensor:
    return div(b, a)


def rpow(a: Tensor, b: Operand) -> Tensor:
    return pow(b, a)


# ---- unary math -------------------------------------------------------------------------

# Rules that need only the output: module functions, so that the op creates no closure for them.
def _exp_higher(g, out):
    return (g * out,)


def _sqrt_higher(g, out):
    return (g / (2 * out),)


def _tanh_higher(g, out):
    return (g * (1 - out * out),)


def _sigmoid_higher(g, out):
    return (g * out * (1 - out),)


def exp(x: Tensor) -> Tensor:
    xp = backend.get_array_module(x.data)
    out = xp.exp(x.data)

    def backward(g):
        return (g * out,)

    return Tensor.from_op(out, (x,), backward, _exp_higher)


def log(x: Tensor) -> Tensor:
    xp = backend.get_array_module(x.data)

    def backward(g):
        return (g / x.data,)

    return Tensor.from_op(xp.log(x.data), (x,), backward, lambda g, out: (g / x,))


def sqrt(x: Tensor) -> Tensor:
    xp = backend.get_array_module(x.data)
    out = xp.sqrt(x.data)

    def backward(g):
        return (g / (2 * out),)

    return Tensor.from_op(out, (x,), backward, _sqrt_higher)


def tanh(x: Tensor) -> Tensor:
    xp = backend.get_array_module(x.data)
    out = xp.tanh(x.data)

    def backward(g):
        return (g * (1 - out * out),)

    return Tensor.from_op(out, (x,), backward, _tanh_higher)


def sigmoid_array(xp: Any, x: Any) -> Any:
    """1 / (1 + exp(-x)) as a new array, through tanh so that it cannot overflow."""
    out = xp.asarray(x * 0.5)  # (an array even when x is 0-d: NumPy gives a scalar)
    xp.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2, which cannot overflow.
    Backward: s * (1 - s), with the passes in place (fewer temporaries)."""
    xp = backend.get_array_module(x.data)
    s = sigmoid_array(xp, x.data)

    def backward(g):
        gx = 1 - s
        gx *= s
        gx *= g
        return (gx,)

    return Tensor.from_op(s, (x,), backward, _sigmoid_higher)


def relu(x: Tensor) -> Tensor:
    """max(x, 0). At x == 0 the gradient is taken as 0, as in PyTorch."""
    positive = x.data > 0

    def backward(g):
        return (g * positive,)

    return Tensor.from_op(x.data * positive, (x,), backward, lambda g, out: (g * positive,))


def abs(x: Tensor) -> Tensor:  # noqa: A001
    """|x|. At x == 0 the gradient is taken as 0."""
    xp = backend.get_array_module(x.data)

    def backward(g):
        return (g * xp.sign(x.data),)

    return Tensor.from_op(xp.abs(x.data), (x,), backward, lambda g, out: (g * xp.sign(x.data),))


# ---- matmul -----------------------------------------------------------------------------

def matmul(a: Operand, b: Operand) -> Tensor:
    """a @ b with NumPy semantics: 1-D operands, batched and broadcast leading axes."""
    a, b = _pair(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs at least 1-D operands, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align "
                         f"({a.shape[-1]} != {b.shape[-2 if b.ndim > 1 else 0]})")
    backend.check_same_device("matmul", a.data, b.data)

    def backward(g):
        xp = backend.get_array_module(g)
        A = a.data if a.ndim > 1 else a.data[None, :]
        B = b.data if b.ndim > 1 else b.data[:, None]
        if a.ndim == 1 and b.ndim == 1:
            g = g.reshape(1, 1)
        elif a.ndim == 1:
            g = g[..., None, :]
        elif b.ndim == 1:
            g = g[..., None]
        ga = gb = None
        if a.requires_grad:
            ga = gemm.matmul(g, xp.swapaxes(B, -1, -2))
            ga = ga[..., 0, :] if a.ndim == 1 else ga
        if b.requires_grad:
            gb = gemm.matmul(xp.swapaxes(A, -1, -2), g)
            gb = gb[..., 0] if b.ndim == 1 else gb
        return ga, gb

    def higher(g, out):  # the same products, of tensors (1-D operands: as rows and columns)
        A = a if a.ndim > 1 else a.unsqueeze(0)
        B = b if b.ndim > 1 else b.unsqueeze(-1)
        g = g.reshape(1, 1) if a.ndim == 1 and b.ndim == 1 else g.unsqueeze(-2) if a.ndim == 1 \
            else g.unsqueeze(-1) if b.ndim == 1 else g
        ga = matmul(g, B.swapaxes(-1, -2)) if a.requires_grad else None
        gb = matmul(A.swapaxes(-1, -2), g) if b.requires_grad else None
        return (None if ga is None else ga.squeeze(-2) if a.ndim == 1 else ga,
                None if gb is None else gb.squeeze(-1) if b.ndim == 1 else gb)

    return Tensor.from_op(gemm.matmul(a.data, b.data), (a, b), backward, higher)


def rmatmul(a: Tensor, b: Operand) -> Tensor:
    return matmul(b, a)


# ---- dtype and device -------------------------------------------------------------------

def astype(x: Tensor, dtype: Any) -> Tensor:
    """Cast to `dtype`; the gradient is cast back (by the engine)."""
    out = x.data.astype(dtype)
    if out.dtype.kind != "f":
        return Tensor.from_op(out)

    def backward(g):
        return (g,)

    return Tensor.from_op(out, (x,), backward, lambda g, result: (g,))


def to(x: Tensor, device: Any) -> Tensor:
    """Copy to `device` ("cpu", "cuda", "cuda:N"); the gradient flows back to x's device."""
    source = x.device
    out = backend.to_device(x.data, device)
    if out is x.data:
        return x

    def backward(g):
        return (backend.to_device(g, source),)

    return Tensor.from_op(out, (x,), backward, lambda g, result: (to(g, source),))


# ---- comparisons (no gradient) ----------------------------------------------------------

def _comparison(name: str):
    def compare(a: Tensor, b: Operand) -> Tensor:
        a, b = _pair(a, b)
        return Tensor.from_op(getattr(a.data, name)(b.data))

    compare.__name__ = name
    return compare


lt, le, gt, ge, eq, ne = (_comparison(n) for n in
                          ("__lt__", "__le__", "__gt__", "__ge__", "__eq__", "__ne__"))
