"""Reverse-mode autograd: the Tensor (tensor.py) and its ops (ops_*.py), bound here as methods."""
from __future__ import annotations

from . import ops_math, versions
from .ops_inplace import IN_PLACE
from .creation import (arange, empty, empty_like, eye, full, full_like, linspace, ones, ones_like,
                       zeros, zeros_like)
from .creation import as_tensor, from_numpy
from .ops_einsum import einsum
from .ops_index import gather, index_select, one_hot, scatter_add, take, take_along_axis
from .ops_layout import clone, flip, pad, repeat, repeat_interleave, roll, tile, tril, triu
from .ops_math import abs, astype, exp, log, matmul, relu, sigmoid, sqrt, tanh
from .ops_math2 import clamp, clip, cos, expm1, log1p, maximum, minimum, sin
from .ops_reduce import max, mean, min, sum
from .ops_scan import cumprod, cumsum
from .ops_select import argmax, argmin, argsort, sort, topk
from .ops_shape import (concat, expand, expand_dims, flatten, getitem, masked_fill, permute, reshape,
                        setitem, split, squeeze, stack, swapaxes, transpose, unsqueeze, view, where)
from .ops_stats import logsumexp, norm, std, var
from .sampling import bernoulli, multinomial, rand, randint, randn, randperm
from .grad_mode import is_grad_enabled, no_grad
from .graph import sum_to_shape
from .tensor import Tensor, as_array, tensor


def _bind_methods() -> None:
    """Attach the ops to Tensor as operators and methods (`x + y`, `x.sum(axis=1)`, ...)."""
    operators = {
        "__add__": ops_math.add, "__radd__": ops_math.radd,
        "__sub__": ops_math.sub, "__rsub__": ops_math.rsub,
        "__mul__": ops_math.mul, "__rmul__": ops_math.rmul,
        "__truediv__": ops_math.div, "__rtruediv__": ops_math.rdiv,
        "__pow__": ops_math.pow, "__rpow__": ops_math.rpow,
        "__matmul__": ops_math.matmul, "__rmatmul__": ops_math.rmatmul,
        "__neg__": ops_math.neg, "__getitem__": getitem, "__setitem__": setitem,
        "__lt__": ops_math.lt, "__le__": ops_math.le, "__gt__": ops_math.gt,
        "__ge__": ops_math.ge, "__eq__": ops_math.eq, "__ne__": ops_math.ne,
    }
    methods = {
        "exp": exp, "log": log, "sqrt": sqrt, "tanh": tanh, "sigmoid": sigmoid, "relu": relu,
        "abs": abs, "sum": sum, "mean": mean, "max": max, "min": min, "reshape": reshape,
        "transpose": transpose, "permute": permute, "swapaxes": swapaxes, "expand": expand,
        "split": split, "masked_fill": masked_fill, "matmul": matmul, "astype": astype,
        "to": ops_math.to,
        "sin": sin, "cos": cos, "log1p": log1p, "expm1": expm1, "clip": clip, "clamp": clamp,
        "maximum": maximum, "minimum": minimum, "cumsum": cumsum, "cumprod": cumprod,
        "logsumexp": logsumexp, "var": var, "std": std, "norm": norm,
        "argmax": argmax, "argmin": argmin, "argsort": argsort, "sort": sort, "topk": topk,
        "gather": gather, "take_along_axis": take_along_axis, "scatter_add": scatter_add,
        "take": take, "index_select": index_select,
        "unsqueeze": unsqueeze, "expand_dims": expand_dims, "squeeze": squeeze, "flatten": flatten,
        "view": view, "flip": flip, "clone": clone,
        "roll": roll, "tile": tile, "repeat": repeat, "repeat_interleave": repeat_interleave,
        "tril": tril, "triu": triu,
    }
    for name, fn in {**operators, **methods, **IN_PLACE}.items():
        setattr(Tensor, name, fn)
    Tensor.__hash__ = object.__hash__  # defining __eq__ would otherwise remove it
    Tensor._version = property(lambda self: versions.version(self.data),
                               doc="How many in-place writes the tensor's memory has had (torch's _version).")
    Tensor.T = property(lambda self: transpose(self))
    Tensor.mT = property(_matrix_transpose, doc="Swap the last two axes (torch.Tensor.mT).")


def _matrix_transpose(x: Tensor) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f".mT needs at least 2 dimensions, this tensor has shape {x.shape}")
    return swapaxes(x, -1, -2)


_bind_methods()

__all__ = [
    "from_numpy", "as_tensor",
    "Tensor", "tensor", "no_grad", "is_grad_enabled", "zeros", "ones", "randn", "as_array",
    "sum_to_shape", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "sum", "mean", "max",
    "min", "matmul", "astype", "reshape", "transpose", "permute", "swapaxes", "expand", "getitem",
    "concat", "stack", "split", "where", "masked_fill",
    "sin", "cos", "log1p", "expm1", "clip", "clamp", "maximum", "minimum", "cumsum", "cumprod",
    "logsumexp", "var", "std", "norm", "einsum", "arange", "linspace", "full", "empty",
    "zeros_like", "ones_like", "full_like", "empty_like", "eye", "rand", "randint", "randperm",
    "multinomial", "bernoulli",
    "argmax", "argmin", "argsort", "sort", "topk", "take_along_axis", "gather", "scatter_add", "take",
    "index_select", "one_hot", "expand_dims", "unsqueeze", "squeeze", "flatten", "view", "flip", "clone",
    "roll", "tile", "repeat", "repeat_interleave", "pad", "tril", "triu",
]
