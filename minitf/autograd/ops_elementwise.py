"""Elementwise functions beyond ops_math.py's arithmetic and activations: sin, cos, log1p and
expm1 (exact near 0), clip (clamp), maximum, minimum.

Each forward with its backward beside it; broadcasting is summed back by the engine.
"""
from __future__ import annotations

from .. import backend
from .ops_math import Operand, _pair, lift
from .tensor import SAME_RULE, Tensor


# ---- unary ------------------------------------------------------------------------------

def sin(x: Tensor) -> Tensor:
    xp = backend.get_array_module(x.data)

    def backward(g):
        return (g * xp.cos(x.data),)

    return Tensor.from_op(xp.sin(x.data), (x,), backward, lambda g, out: (g * cos(x),))


def cos(x: Tensor) -> Tensor:
    xp = backend.get_array_module(x.data)

    def backward(g):
        return (-g * xp.sin(x.data),)

    return Tensor.from_op(xp.cos(x.data), (x,), backward, lambda g, out: (-g * sin(x),))


def log1p(x: Tensor) -> Tensor:
    """log(1 + x), accurate for small x."""
    xp = backend.get_array_module(x.data)

    def backward(g):
        return (g / (1 + x.data),)

    return Tensor.from_op(xp.log1p(x.data), (x,), backward, lambda g, out: (g / (1 + x),))


def expm1(x: Tensor) -> Tensor:
    """exp(x) - 1, accurate for small x."""
    xp = backend.get_array_module(x.data)
    out = xp.expm1(x.data)

    def backward(g):
        return (g * (out + 1),)

    return Tensor.from_op(out, (x,), backward, lambda g, result: (g * (result + 1),))


# ---- clip, maximum, minimum ---------------------------------------------------------------

def clip(x: Tensor, min: Operand = None, max: Operand = None) -> Tensor:  # noqa: A002
    """x limited to [min, max] (numbers or tensors, broadcast; None: no bound), as torch.clamp.

    The result is minimum(maximum(x, min), max), so max wins where min > max. Gradients as
    PyTorch: x gets g where min <= x <= max (bounds included), min where x < min < max, max
    where x > max or max < min.
    """
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    xp = backend.get_array_module(x.data)
    lo = None if min is None else lift(min, x)
    hi = None if max is None else lift(max, x)
    out = x.data
    if lo is not None:
        out = xp.maximum(out, lo.data)
    if hi is not None:
        out = xp.minimum(out, hi.data)
    parents = (x,) + tuple(t for t in (lo, hi) if t is not None)

    def backward(g):
        inside = True
        if lo is not None:
            inside = inside & (x.data >= lo.data)
        if hi is not None:
            inside = inside & (x.data <= hi.data)
        grads = [g * inside]
        if lo is not None:
            below = x.data < lo.data
            grads.append(g * (below & (lo.data < hi.data)) if hi is not None else g * below)
        if hi is not None:
            above = x.data > hi.data
            grads.append(g * (above | (hi.data < lo.data)) if lo is not None else g * above)
        return tuple(grads)

    return Tensor.from_op(out, parents, backward, SAME_RULE)  # g times constant masks


clamp = clip


def _extremum(a: Operand, b: Operand, name: str) -> Tensor:
    a, b = _pair(a, b)
    xp = backend.get_array_module(a.data, b.data)
    out = getattr(xp, name)(a.data, b.data)

    def backward(g):
        a_wins = a.data > b.data if name == "maximum" else a.data < b.data
        tie = a.data == b.data
        share_a = xp.where(tie, 0.5, a_wins).astype(g.dtype)
        return (g * share_a if a.requires_grad else None,
                g * (1 - share_a) if b.requires_grad else None)

    return Tensor.from_op(out, (a, b), backward, SAME_RULE)  # g times constant shares


def maximum(a: Operand, b: Operand) -> Tensor:
    """Elementwise maximum, broadcasting. Ties split the gradient 0.5/0.5 (as torch.maximum)."""
    return _extremum(a, b, "maximum")


def minimum(a: Operand, b: Operand) -> Tensor:
    """Elementwise minimum, broadcasting. Ties split the gradient 0.5/0.5 (as torch.minimum)."""
    return _extremum(a, b, "minimum")
