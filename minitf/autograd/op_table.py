"""The table of ops: each op is written here once, and everything else is derived from it.

A row names the op, its function, whether Tensor has it as a method (an operator when the
name is a __dunder__) and where it is exported as a function: "minitf" (minitf and
minitf.autograd), "autograd" (minitf.autograd only) or "" (a method only). `bind_methods`
puts the methods on Tensor; `exports` gives each namespace its functions (and `__all__`).
To add an op: write it (forward and backward) in an ops_*.py module, then add one row here.
The fused ops of minitf.functional that Tensor has as methods (softmax, log_softmax) have their
rows in that package (FUNCTIONAL_OPS), since autograd may not import the layer above it; the
same `bind_methods` and `exports` serve them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, ones, ones_like, zeros, zeros_like)
from .ops_convert import contiguous, to_bool, to_double, to_float, to_half, to_int, to_long
from .ops_einsum import einsum
from .ops_index import gather, index_select, one_hot, scatter_add, take, take_along_axis
from .ops_inplace import (add_, clamp_, copy_, div_, fill_, iadd, imul, ipow, isub, itruediv, mul_,
                          pow_, sub_, zero_)
from .ops_layout import clone, flip, pad, repeat, repeat_interleave, roll, tile, tril, triu
from .ops_math import (abs, add, astype, div, eq, exp, ge, gt, le, log, lt, matmul, mul, ne, neg,
                       pow, radd, rdiv, relu, rmatmul, rmul, rpow, rsub, sigmoid, sqrt, sub, tanh, to)
from .ops_elementwise import clamp, clip, cos, expm1, log1p, maximum, minimum, sin
from .ops_reduce import all, amax, amin, any, max, mean, min, sum
from .ops_scan import cumprod, cumsum
from .ops_select import argmax, argmin, argsort, sort, topk
from .ops_shape import (chunk, concat, expand, expand_dims, flatten, getitem, masked_fill, permute,
                        reshape, setitem, split, squeeze, stack, swapaxes, transpose, unsqueeze, view, where)
from .ops_stats import logsumexp, norm, std, var
from .sampling import bernoulli, multinomial, rand, randint, randn, randperm
from .tensor import Tensor, tensor

Export = Literal["minitf", "autograd", ""]


@dataclass(frozen=True)
class Op:
    name: str
    fn: Callable[..., Any]
    method: bool = True  # Tensor.<name>
    export: Export = "minitf"  # where the function is: minitf (and minitf.autograd), minitf.autograd, neither


OPS: tuple[Op, ...] = (
    # operators (Tensor only)
    Op("__add__", add, export=""), Op("__radd__", radd, export=""),
    Op("__sub__", sub, export=""), Op("__rsub__", rsub, export=""),
    Op("__mul__", mul, export=""), Op("__rmul__", rmul, export=""),
    Op("__truediv__", div, export=""), Op("__rtruediv__", rdiv, export=""),
    Op("__pow__", pow, export=""), Op("__rpow__", rpow, export=""),
    Op("__matmul__", matmul, export=""), Op("__rmatmul__", rmatmul, export=""),
    Op("__neg__", neg, export=""),
    Op("__lt__", lt, export=""), Op("__le__", le, export=""), Op("__gt__", gt, export=""),
    Op("__ge__", ge, export=""), Op("__eq__", eq, export=""), Op("__ne__", ne, export=""),
    Op("__getitem__", getitem, export=""), Op("__setitem__", setitem, export=""),
    Op("getitem", getitem, method=False, export="autograd"),
    Op("setitem", setitem, method=False, export="autograd"),
    # elementwise math (ops_math.py, ops_elementwise.py)
    Op("exp", exp), Op("log", log), Op("sqrt", sqrt), Op("tanh", tanh), Op("sigmoid", sigmoid),
    Op("relu", relu), Op("abs", abs), Op("sin", sin), Op("cos", cos), Op("log1p", log1p),
    Op("expm1", expm1), Op("clip", clip), Op("clamp", clamp), Op("maximum", maximum),
    Op("minimum", minimum), Op("matmul", matmul),
    Op("astype", astype, export="autograd"), Op("to", to, export=""), Op("pow", pow),
    # PyTorch's conversions (ops_convert.py): methods only
    Op("float", to_float, export=""), Op("double", to_double, export=""), Op("half", to_half, export=""),
    Op("long", to_long, export=""), Op("int", to_int, export=""), Op("bool", to_bool, export=""),
    Op("contiguous", contiguous, export=""),
    # reductions, scans, statistics (ops_reduce.py, ops_scan.py, ops_stats.py)
    Op("sum", sum), Op("mean", mean), Op("max", max), Op("min", min),
    Op("amax", amax), Op("amin", amin), Op("all", all), Op("any", any),
    Op("cumsum", cumsum), Op("cumprod", cumprod),
    Op("logsumexp", logsumexp), Op("var", var), Op("std", std), Op("norm", norm),
    # shape and layout (ops_shape.py, ops_layout.py)
    Op("reshape", reshape), Op("view", view, export="autograd"), Op("transpose", transpose),
    Op("permute", permute, export="autograd"), Op("swapaxes", swapaxes),
    Op("expand", expand, export="autograd"), Op("split", split), Op("masked_fill", masked_fill),
    Op("unsqueeze", unsqueeze), Op("expand_dims", expand_dims), Op("squeeze", squeeze),
    Op("flatten", flatten), Op("flip", flip), Op("clone", clone), Op("roll", roll), Op("tile", tile),
    Op("repeat", repeat), Op("repeat_interleave", repeat_interleave), Op("tril", tril), Op("triu", triu),
    Op("chunk", chunk), Op("concat", concat, method=False), Op("cat", concat, method=False),
    Op("stack", stack, method=False),
    Op("where", where, method=False), Op("pad", pad, method=False),
    Op("einsum", einsum, method=False),
    # selection and indexing (ops_select.py, ops_index.py)
    Op("argmax", argmax), Op("argmin", argmin), Op("argsort", argsort), Op("sort", sort), Op("topk", topk),
    Op("gather", gather), Op("take_along_axis", take_along_axis), Op("scatter_add", scatter_add),
    Op("take", take), Op("index_select", index_select), Op("one_hot", one_hot, method=False),
    # in-place writes (ops_inplace.py)
    Op("add_", add_, export=""), Op("sub_", sub_, export=""), Op("mul_", mul_, export=""),
    Op("div_", div_, export=""), Op("pow_", pow_, export=""), Op("zero_", zero_, export=""),
    Op("fill_", fill_, export=""), Op("copy_", copy_, export=""), Op("clamp_", clamp_, export=""),
    Op("__iadd__", iadd, export=""), Op("__isub__", isub, export=""), Op("__imul__", imul, export=""),
    Op("__itruediv__", itruediv, export=""), Op("__ipow__", ipow, export=""),
    # creating tensors (tensor.py, creation.py, sampling.py)
    Op("tensor", tensor, method=False), Op("from_numpy", from_numpy, method=False),
    Op("as_tensor", as_tensor, method=False),
    Op("zeros", zeros, method=False), Op("ones", ones, method=False), Op("empty", empty, method=False),
    Op("full", full, method=False), Op("zeros_like", zeros_like, method=False),
    Op("ones_like", ones_like, method=False), Op("empty_like", empty_like, method=False),
    Op("full_like", full_like, method=False), Op("arange", arange, method=False),
    Op("linspace", linspace, method=False), Op("eye", eye, method=False),
    Op("rand", rand, method=False), Op("randn", randn, method=False), Op("randint", randint, method=False),
    Op("randperm", randperm, method=False), Op("bernoulli", bernoulli, method=False),
    Op("multinomial", multinomial, method=False),
)


def bind_methods(cls: type = Tensor, ops: Sequence[Op] | None = None) -> None:
    """Set every op marked `method` of the table (or of `ops`) as an attribute of `cls` (Tensor)."""
    for op in OPS if ops is None else ops:
        if op.method:
            setattr(cls, op.name, op.fn)


def exports(namespace: Literal["minitf", "autograd"],
            ops: Sequence[Op] | None = None) -> dict[str, Callable[..., Any]]:
    """Name -> function of the ops that `minitf` or `minitf.autograd` exports, in table order
    (of this table, or of `ops`: minitf.functional's rows, FUNCTIONAL_OPS there)."""
    wanted = ("minitf",) if namespace == "minitf" else ("minitf", "autograd")
    return {op.name: op.fn for op in (OPS if ops is None else ops) if op.export in wanted}


__all__ = ["Op", "OPS", "bind_methods", "exports"]
