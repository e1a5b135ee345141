"""Tensor ops against PyTorch: fixed cases for the generic "torch" check (tests/functional/test_op_properties.py),
forward and every input's gradient in float64 for one random cotangent: math, reductions and
einsum; selection, gather/scatter, shape and order. Each case gives the float inputs, the minitf
call and the PyTorch call; integer indices are closed over.
"""
from __future__ import annotations

import math

import numpy as np
import torch

import minitf as mt
from minitf.testing import op_tests

from op_cases.torch_functional import parity, rand

tF = torch.nn.functional


# ---- math, reductions, einsum ------------------------------------------------------------------

def ints(low, high, *shape, seed=0):
    return np.random.default_rng(seed).integers(low, high, shape)


# ---- math, reductions, einsum, creation ------------------------------------------------------

ZEROS = np.array([[2.0, 0.0, 3.0, 0.0, 1.5], [0.5, -1.0, 2.0, 0.0, 3.0], [1.0, 2.0, 0.5, -2.0, 1.0]])
MAX_TIES = (np.array([[1.0, 2.0, -3.0], [0.5, 0.5, 4.0]]), np.array([[1.0, 0.0, -3.0], [0.5, 2.0, 1.0]]))
CLIPPED = np.array([[-2.0, -1.0, 0.0, 0.5], [1.0, 1.5, 3.0, -0.25]])  # hits both bounds exactly
LO, HI = np.array([[-1.0, -1.0, 0.5, 0.0]]), np.array([[1.0], [0.25]])  # one min > max

MATH_CASES = {
    "sin": parity((rand(3, 4),), lambda x: x.sin(), torch.sin),
    "cos": parity((rand(3, 4),), lambda x: x.cos(), torch.cos),
    "log1p": parity((np.abs(rand(3, 4)),), lambda x: x.log1p(), torch.log1p),
    "expm1": parity((rand(3, 4),), lambda x: x.expm1(), torch.expm1),
    "clamp_numbers": parity((CLIPPED,), lambda x: x.clamp(-1.0, 1.5), lambda x: x.clamp(-1.0, 1.5)),
    "clamp_min_only": parity((CLIPPED,), lambda x: x.clip(min=0.0), lambda x: x.clamp(min=0.0)),
    "clamp_tensors": parity((CLIPPED, LO, HI), lambda x, lo, hi: mt.clamp(x, lo, hi),
                            lambda x, lo, hi: torch.clamp(x, lo, hi)),
    "maximum_ties": parity(MAX_TIES, mt.maximum, torch.maximum),
    "minimum_ties_broadcast": parity((MAX_TIES[0], MAX_TIES[1][:1]), mt.minimum, torch.minimum),
    "cumsum": parity((rand(3, 4),), lambda x: x.cumsum(dim=-1), lambda x: x.cumsum(dim=-1)),
    "cumprod_zeros": parity((ZEROS,), lambda x: x.cumprod(1), lambda x: x.cumprod(1)),
    "cumprod_axis0": parity((ZEROS,), lambda x: x.cumprod(axis=0), lambda x: x.cumprod(0)),
    "logsumexp": parity((rand(2, 3, 4) * 300,), lambda x: x.logsumexp(axis=(0, 2)),
                        lambda x: x.logsumexp(dim=(0, 2))),
    "logsumexp_keepdim": parity((rand(2, 3),), lambda x: x.logsumexp(dim=1, keepdims=True),
                                lambda x: x.logsumexp(1, keepdim=True)),
    "var_correction0": parity((rand(3, 4),), lambda x: x.var(1), lambda x: x.var(1, correction=0)),
    "var_correction1": parity((rand(3, 4),), lambda x: x.var(dim=0, correction=1), lambda x: x.var(0)),
    "std_keepdim": parity((rand(3, 4),), lambda x: x.std(1, keepdims=True, ddof=1),
                          lambda x: x.std(1, keepdim=True)),
    "std_zero_variance": parity((np.ones((2, 3)),), lambda x: x.std(1), lambda x: x.std(1, correction=0)),
    "norm2": parity((rand(3, 4),), lambda x: x.norm(axis=1), lambda x: torch.linalg.vector_norm(x, dim=1)),
    "norm2_all": parity((rand(3, 4),), lambda x: x.norm(), lambda x: torch.linalg.vector_norm(x)),
    "norm1": parity((rand(3, 4),), lambda x: x.norm(1, 0), lambda x: torch.linalg.vector_norm(x, 1, 0)),
    "norm_inf_ties": parity((np.array([[3.0, -3.0, 1.0], [0.5, 2.0, -1.0]]),),
                            lambda x: x.norm(math.inf, -1),
                            lambda x: torch.linalg.vector_norm(x, math.inf, -1)),
}
# The 2-norm at 0: both give the gradient 0; PyTorch's second derivative there is NaN, minitf's 0.
AT_KINKS = {"norm2_zero": parity((np.zeros((2, 3)),), lambda x: x.norm(axis=1),
                                 lambda x: torch.linalg.vector_norm(x, dim=1))}

EINSUMS = {  # subscripts: operand shapes
    "ij,jk->ik": [(2, 3), (3, 4)], "bij,bjk": [(2, 2, 3), (2, 3, 2)], "ii->i": [(3, 3)],
    "ii": [(3, 3)], "ij->": [(2, 3)], "i,j->ij": [(2,), (3,)], "...ij,...jk->...ik": [(2, 2, 3), (2, 3, 2)],
    "ij,ij->ij": [(1, 3), (2, 3)], "ab,bc,cd->ad": [(2, 3), (3, 2), (2, 2)], "iij->j": [(2, 2, 3)],
    "bhqd,bhkd->bhqk": [(2, 2, 3, 4), (2, 2, 5, 4)],
}
for _subscripts, _shapes in EINSUMS.items():
    MATH_CASES[f"einsum {_subscripts}"] = parity(
        tuple(rand(*s, seed=i) for i, s in enumerate(_shapes)),
        lambda *t, s=_subscripts: mt.einsum(s, *t), lambda *t, s=_subscripts: torch.einsum(s, *t))


# ---- selection, gather/scatter, shape and order ---------------------------------------------

GATHER = ints(0, 5, 3, 6, seed=1)       # repeats; fewer rows than x (torch.gather's rule)
SCATTER = ints(0, 4, 2, 5, seed=2)      # repeats (torch cannot differentiate a src larger than the index)
ALONG = ints(-4, 4, 6, 5, seed=5)       # negative indices (NumPy), more rows than x
ROWS = np.array([2, 0, 2, 3])
COUNTS = np.array([2, 0, 1, 3])

SHAPE_CASES = {
    "sort_descending": parity((rand(4, 6),), lambda x: x.sort(axis=1, descending=True)[0],
                              lambda x: torch.sort(x, dim=1, descending=True).values),
    "sort_axis0": parity((rand(5, 3, 2),), lambda x: mt.sort(x, dim=0)[0], lambda x: torch.sort(x, dim=0).values),
    "topk_largest": parity((rand(4, 9),), lambda x: x.topk(3)[0], lambda x: torch.topk(x, 3).values),
    "topk_smallest_axis0": parity((rand(7, 3),), lambda x: x.topk(2, axis=0, largest=False)[0],
                                  lambda x: torch.topk(x, 2, dim=0, largest=False).values),
    "gather": parity((rand(4, 5),), lambda x: mt.gather(x, 1, GATHER), lambda x: torch.gather(x, 1, torch.tensor(GATHER))),
    "take_along_axis": parity((rand(4, 5),), lambda x: mt.take_along_axis(x, ALONG, 0),
                              lambda x: torch.gather(x, 0, torch.tensor(ALONG % 4))),
    "scatter_add": parity((rand(3, 4), rand(2, 5, seed=1)), lambda x, s: mt.scatter_add(x, 1, SCATTER % 4, s),
                          lambda x, s: torch.scatter_add(x, 1, torch.tensor(SCATTER % 4), s)),
    "scatter_add_axis0": parity((rand(4, 3), rand(5, 2, seed=1)), lambda x, s: x.scatter_add(0, SCATTER.T % 4, s),
                                lambda x, s: x.scatter_add(0, torch.tensor(SCATTER.T % 4), s)),
    "index_select": parity((rand(4, 3),), lambda x: x.index_select(0, ROWS),
                           lambda x: torch.index_select(x, 0, torch.tensor(ROWS))),
    "take": parity((rand(3, 4),), lambda x: mt.take(x, GATHER), lambda x: torch.take(x, torch.tensor(GATHER))),
    "unsqueeze": parity((rand(2, 3),), lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1)),
    "squeeze": parity((rand(2, 1, 3),), lambda x: x.squeeze(1), lambda x: x.squeeze(1)),
    "flatten": parity((rand(2, 3, 4, 5),), lambda x: x.flatten(1, 2), lambda x: x.flatten(1, 2)),
    "view": parity((rand(2, 6),), lambda x: x.view(3, 4), lambda x: x.view(3, 4)),
    "clone": parity((rand(2, 3),), lambda x: x.clone() * x, lambda x: x.clone() * x),
    "flip": parity((rand(2, 3, 4),), lambda x: x.flip((0, 2)), lambda x: x.flip((0, 2))),
    "roll": parity((rand(3, 4),), lambda x: x.roll((1, -2), (0, 1)), lambda x: x.roll((1, -2), (0, 1))),
    "tile_is_torch_repeat": parity((rand(2, 3),), lambda x: x.tile(2, 1, 3), lambda x: x.repeat(2, 1, 3)),
    "repeat_interleave": parity((rand(4, 2),), lambda x: x.repeat_interleave(COUNTS, axis=0),
                                lambda x: x.repeat_interleave(torch.tensor(COUNTS), dim=0)),
    "repeat_interleave_int": parity((rand(2, 3),), lambda x: x.repeat_interleave(2, axis=1),
                                    lambda x: x.repeat_interleave(2, dim=1)),
    "pad": parity((rand(2, 3, 4),), lambda x: mt.pad(x, ((0, 0), (1, 2), (3, 0)), value=0.5),
                  lambda x: tF.pad(x, (3, 0, 1, 2), value=0.5)),
    "tril": parity((rand(2, 4, 5),), lambda x: x.tril(-1), lambda x: x.tril(-1)),
    "triu": parity((rand(4, 3),), lambda x: mt.triu(x, diagonal=1), lambda x: x.triu(diagonal=1)),
    "mT": parity((rand(2, 3, 4),), lambda x: x.mT, lambda x: x.mT),
    "chunk": parity((rand(2, 7),),
                    lambda x: mt.cat([c * (i + 1) for i, c in enumerate(x.chunk(3, dim=-1))], dim=1),
                    lambda x: torch.cat([c * (i + 1) for i, c in enumerate(x.chunk(3, dim=-1))], dim=1)),
    "contiguous": parity((rand(3, 4),), lambda x: x.T.contiguous() * x.T, lambda x: x.T.contiguous() * x.T),
    "double_float_casts": parity((rand(2, 3),), lambda x: x.float().double() * x, lambda x: x.float().double() * x),
    "pow_method": parity((np.abs(rand(2, 3)) + 0.1, rand(2, 3, seed=1)), lambda x, y: x.pow(y) + x.pow(3),
                         lambda x, y: x.pow(y) + x.pow(3)),
    "softmax_methods": parity((rand(2, 3),), lambda x: x.softmax(0) * x.log_softmax(dim=1),
                              lambda x: x.softmax(0) * x.log_softmax(dim=1)),
}

OPS = op_tests(MATH_CASES, checks=("torch",), options={"torch": {"rtol_out": 1e-12, "rtol_grad": 1e-10}}) \
    + op_tests(AT_KINKS, checks=("torch",), options={"torch": {"rtol_out": 1e-12, "second_order": False}}) \
    + op_tests(SHAPE_CASES, checks=("torch",), options={"torch": {"rtol_out": 1e-12, "rtol_grad": 1e-12}})
