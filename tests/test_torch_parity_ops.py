"""Tensor ops against PyTorch: forward and every input's gradient in float64 for one random
cotangent (math, reductions and einsum; selection, gather/scatter, shape and order), integer
results (arg-functions, sort and topk indices, one_hot) exactly, and the values and dtypes of
the creation functions. Skipped when PyTorch is not installed.

Each differentiable case gives the float inputs, the minitf call and the PyTorch call; integer
indices are closed over. Run with PyTorch installed: python -m pytest tests/test_torch_parity_ops.py
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minitf as mt
from minitf import Tensor

from test_torch_parity import Case, assert_matches_torch, rand  # noqa: E402 (skips without torch)

torch = pytest.importorskip("torch")
tF = torch.nn.functional


def ints(low, high, *shape, seed=0):
    return np.random.default_rng(seed).integers(low, high, shape)


# ---- math, reductions, einsum, creation ------------------------------------------------------

ZEROS = np.array([[2.0, 0.0, 3.0, 0.0, 1.5], [0.5, -1.0, 2.0, 0.0, 3.0], [1.0, 2.0, 0.5, -2.0, 1.0]])
MAX_TIES = (np.array([[1.0, 2.0, -3.0], [0.5, 0.5, 4.0]]), np.array([[1.0, 0.0, -3.0], [0.5, 2.0, 1.0]]))
CLIPPED = np.array([[-2.0, -1.0, 0.0, 0.5], [1.0, 1.5, 3.0, -0.25]])  # hits both bounds exactly
LO, HI = np.array([[-1.0, -1.0, 0.5, 0.0]]), np.array([[1.0], [0.25]])  # one min > max

MATH_CASES = {
    "sin": Case((rand(3, 4),), lambda x: x.sin(), torch.sin),
    "cos": Case((rand(3, 4),), lambda x: x.cos(), torch.cos),
    "log1p": Case((np.abs(rand(3, 4)),), lambda x: x.log1p(), torch.log1p),
    "expm1": Case((rand(3, 4),), lambda x: x.expm1(), torch.expm1),
    "clamp_numbers": Case((CLIPPED,), lambda x: x.clamp(-1.0, 1.5), lambda x: x.clamp(-1.0, 1.5)),
    "clamp_min_only": Case((CLIPPED,), lambda x: x.clip(min=0.0), lambda x: x.clamp(min=0.0)),
    "clamp_tensors": Case((CLIPPED, LO, HI), lambda x, lo, hi: mt.clamp(x, lo, hi),
                          lambda x, lo, hi: torch.clamp(x, lo, hi)),
    "maximum_ties": Case(MAX_TIES, mt.maximum, torch.maximum),
    "minimum_ties_broadcast": Case((MAX_TIES[0], MAX_TIES[1][:1]), mt.minimum, torch.minimum),
    "cumsum": Case((rand(3, 4),), lambda x: x.cumsum(dim=-1), lambda x: x.cumsum(dim=-1)),
    "cumprod_zeros": Case((ZEROS,), lambda x: x.cumprod(1), lambda x: x.cumprod(1)),
    "cumprod_axis0": Case((ZEROS,), lambda x: x.cumprod(axis=0), lambda x: x.cumprod(0)),
    "logsumexp": Case((rand(2, 3, 4) * 300,), lambda x: x.logsumexp(axis=(0, 2)),
                      lambda x: x.logsumexp(dim=(0, 2))),
    "logsumexp_keepdim": Case((rand(2, 3),), lambda x: x.logsumexp(dim=1, keepdims=True),
                              lambda x: x.logsumexp(1, keepdim=True)),
    "var_correction0": Case((rand(3, 4),), lambda x: x.var(1), lambda x: x.var(1, correction=0)),
    "var_correction1": Case((rand(3, 4),), lambda x: x.var(dim=0, correction=1), lambda x: x.var(0)),
    "std_keepdim": Case((rand(3, 4),), lambda x: x.std(1, keepdims=True, ddof=1),
                        lambda x: x.std(1, keepdim=True)),
    "std_zero_variance": Case((np.ones((2, 3)),), lambda x: x.std(1), lambda x: x.std(1, correction=0)),
    "norm2": Case((rand(3, 4),), lambda x: x.norm(axis=1), lambda x: torch.linalg.vector_norm(x, dim=1)),
    "norm2_all": Case((rand(3, 4),), lambda x: x.norm(), lambda x: torch.linalg.vector_norm(x)),
    "norm1": Case((rand(3, 4),), lambda x: x.norm(1, 0), lambda x: torch.linalg.vector_norm(x, 1, 0)),
    "norm_inf_ties": Case((np.array([[3.0, -3.0, 1.0], [0.5, 2.0, -1.0]]),),
                          lambda x: x.norm(math.inf, -1),
                          lambda x: torch.linalg.vector_norm(x, math.inf, -1)),
    "norm2_zero": Case((np.zeros((2, 3)),), lambda x: x.norm(axis=1),
                       lambda x: torch.linalg.vector_norm(x, dim=1)),
}

EINSUMS = {  # subscripts: operand shapes
    "ij,jk->ik": [(2, 3), (3, 4)], "bij,bjk": [(2, 2, 3), (2, 3, 2)], "ii->i": [(3, 3)],
    "ii": [(3, 3)], "ij->": [(2, 3)], "i,j->ij": [(2,), (3,)], "...ij,...jk->...ik": [(2, 2, 3), (2, 3, 2)],
    "ij,ij->ij": [(1, 3), (2, 3)], "ab,bc,cd->ad": [(2, 3), (3, 2), (2, 2)], "iij->j": [(2, 2, 3)],
    "bhqd,bhkd->bhqk": [(2, 2, 3, 4), (2, 2, 5, 4)],
}
for _subscripts, _shapes in EINSUMS.items():
    MATH_CASES[f"einsum {_subscripts}"] = Case(
        tuple(rand(*s, seed=i) for i, s in enumerate(_shapes)),
        lambda *t, s=_subscripts: mt.einsum(s, *t), lambda *t, s=_subscripts: torch.einsum(s, *t))


@pytest.mark.parametrize("name", sorted(MATH_CASES))
def test_math_forward_and_gradients_match_torch(name):
    assert_matches_torch(MATH_CASES[name], rtol_out=1e-12, rtol_grad=1e-10)


@pytest.mark.parametrize("ours, theirs", [
    (lambda: mt.arange(5), lambda: torch.arange(5)),
    (lambda: mt.arange(0, 1, 0.25), lambda: torch.arange(0, 1, 0.25)),
    (lambda: mt.arange(1.0, 4), lambda: torch.arange(1.0, 4)),
    (lambda: mt.linspace(0, 1, 5), lambda: torch.linspace(0, 1, 5)),
    (lambda: mt.full((2,), 3), lambda: torch.full((2,), 3)),
    (lambda: mt.full((2,), 0.5), lambda: torch.full((2,), 0.5)),
    (lambda: mt.full((2,), True), lambda: torch.full((2,), True)),
    (lambda: mt.eye(2, 3), lambda: torch.eye(2, 3)),
    (lambda: mt.zeros(2, 3), lambda: torch.zeros(2, 3)),
    (lambda: mt.ones_like(mt.tensor(np.ones(2, dtype=np.int32))),
     lambda: torch.ones_like(torch.ones(2, dtype=torch.int32))),
])
def test_creation_values_and_dtypes_match_torch(ours, theirs):
    out, ref = ours(), theirs()
    assert out.dtype == ref.numpy().dtype
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-6)


def test_random_dtypes_match_torch():
    pairs = [(mt.rand(2), torch.rand(2)), (mt.randn(2), torch.randn(2)),
             (mt.randint(0, 5, (2,)), torch.randint(0, 5, (2,))), (mt.randperm(3), torch.randperm(3)),
             (mt.multinomial(mt.ones(3), 2), torch.multinomial(torch.ones(3), 2)),
             (mt.bernoulli(mt.full((2,), 0.5)), torch.bernoulli(torch.full((2,), 0.5)))]
    for ours, theirs in pairs:
        assert ours.dtype == theirs.numpy().dtype and ours.shape == tuple(theirs.shape)


# ---- selection, gather/scatter, shape and order ---------------------------------------------

GATHER = ints(0, 5, 3, 6, seed=1)       # repeats; fewer rows than x (torch.gather's rule)
SCATTER = ints(0, 4, 2, 5, seed=2)      # repeats (torch cannot differentiate a src larger than the index)
ALONG = ints(-4, 4, 6, 5, seed=5)       # negative indices (NumPy), more rows than x
ROWS = np.array([2, 0, 2, 3])
COUNTS = np.array([2, 0, 1, 3])

SHAPE_CASES = {
    "sort_descending": Case((rand(4, 6),), lambda x: x.sort(axis=1, descending=True)[0],
                            lambda x: torch.sort(x, dim=1, descending=True).values),
    "sort_axis0": Case((rand(5, 3, 2),), lambda x: mt.sort(x, dim=0)[0], lambda x: torch.sort(x, dim=0).values),
    "topk_largest": Case((rand(4, 9),), lambda x: x.topk(3)[0], lambda x: torch.topk(x, 3).values),
    "topk_smallest_axis0": Case((rand(7, 3),), lambda x: x.topk(2, axis=0, largest=False)[0],
                                lambda x: torch.topk(x, 2, dim=0, largest=False).values),
    "gather": Case((rand(4, 5),), lambda x: mt.gather(x, 1, GATHER), lambda x: torch.gather(x, 1, torch.tensor(GATHER))),
    "take_along_axis": Case((rand(4, 5),), lambda x: mt.take_along_axis(x, ALONG, 0),
                            lambda x: torch.gather(x, 0, torch.tensor(ALONG % 4))),
    "scatter_add": Case((rand(3, 4), rand(2, 5, seed=1)), lambda x, s: mt.scatter_add(x, 1, SCATTER % 4, s),
                        lambda x, s: torch.scatter_add(x, 1, torch.tensor(SCATTER % 4), s)),
    "scatter_add_axis0": Case((rand(4, 3), rand(5, 2, seed=1)), lambda x, s: x.scatter_add(0, SCATTER.T % 4, s),
                              lambda x, s: x.scatter_add(0, torch.tensor(SCATTER.T % 4), s)),
    "index_select": Case((rand(4, 3),), lambda x: x.index_select(0, ROWS),
                         lambda x: torch.index_select(x, 0, torch.tensor(ROWS))),
    "take": Case((rand(3, 4),), lambda x: mt.take(x, GATHER), lambda x: torch.take(x, torch.tensor(GATHER))),
    "unsqueeze": Case((rand(2, 3),), lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1)),
    "squeeze": Case((rand(2, 1, 3),), lambda x: x.squeeze(1), lambda x: x.squeeze(1)),
    "flatten": Case((rand(2, 3, 4, 5),), lambda x: x.flatten(1, 2), lambda x: x.flatten(1, 2)),
    "view": Case((rand(2, 6),), lambda x: x.view(3, 4), lambda x: x.view(3, 4)),
    "clone": Case((rand(2, 3),), lambda x: x.clone() * x, lambda x: x.clone() * x),
    "flip": Case((rand(2, 3, 4),), lambda x: x.flip((0, 2)), lambda x: x.flip((0, 2))),
    "roll": Case((rand(3, 4),), lambda x: x.roll((1, -2), (0, 1)), lambda x: x.roll((1, -2), (0, 1))),
    "tile_is_torch_repeat": Case((rand(2, 3),), lambda x: x.tile(2, 1, 3), lambda x: x.repeat(2, 1, 3)),
    "repeat_interleave": Case((rand(4, 2),), lambda x: x.repeat_interleave(COUNTS, axis=0),
                              lambda x: x.repeat_interleave(torch.tensor(COUNTS), dim=0)),
    "repeat_interleave_int": Case((rand(2, 3),), lambda x: x.repeat_interleave(2, axis=1),
                                  lambda x: x.repeat_interleave(2, dim=1)),
    "pad": Case((rand(2, 3, 4),), lambda x: mt.pad(x, ((0, 0), (1, 2), (3, 0)), value=0.5),
                lambda x: tF.pad(x, (3, 0, 1, 2), value=0.5)),
    "tril": Case((rand(2, 4, 5),), lambda x: x.tril(-1), lambda x: x.tril(-1)),
    "triu": Case((rand(4, 3),), lambda x: mt.triu(x, diagonal=1), lambda x: x.triu(diagonal=1)),
    "mT": Case((rand(2, 3, 4),), lambda x: x.mT, lambda x: x.mT),
}


@pytest.mark.parametrize("name", sorted(SHAPE_CASES))
def test_selection_and_shape_forward_and_gradients_match_torch(name):
    assert_matches_torch(SHAPE_CASES[name], rtol_out=1e-12, rtol_grad=1e-12)


X = rand(4, 7, seed=3)
INT_TIES = ints(0, 3, 4, 7, seed=4).astype(np.float64)

INDEX_CASES = {  # minitf call, PyTorch call: integer outputs compared exactly
    "argmax": (lambda: mt.tensor(INT_TIES).argmax(axis=1), lambda: torch.tensor(INT_TIES).argmax(dim=1)),
    "argmin_keepdims": (lambda: mt.tensor(INT_TIES).argmin(dim=0, keepdims=True),
                        lambda: torch.tensor(INT_TIES).argmin(dim=0, keepdim=True)),
    "argsort_stable": (lambda: mt.tensor(INT_TIES).argsort(descending=True, stable=True),
                       lambda: torch.argsort(torch.tensor(INT_TIES), descending=True, stable=True)),
    "sort_indices_stable": (lambda: mt.tensor(INT_TIES).sort(axis=0, stable=True)[1],
                            lambda: torch.sort(torch.tensor(INT_TIES), dim=0, stable=True).indices),
    "topk_indices": (lambda: mt.tensor(X).topk(3, largest=False)[1], lambda: torch.topk(torch.tensor(X), 3, largest=False).indices),
    "one_hot": (lambda: mt.one_hot(ROWS, 5), lambda: tF.one_hot(torch.tensor(ROWS), 5)),
    "one_hot_inferred": (lambda: mt.one_hot(GATHER), lambda: tF.one_hot(torch.tensor(GATHER))),
}


@pytest.mark.parametrize("name", sorted(INDEX_CASES))
def test_indices_match_torch(name):
    ours, theirs = INDEX_CASES[name]
    out, expected = ours(), theirs()
    assert out.dtype == np.int64 and out.shape == tuple(expected.shape)
    np.testing.assert_array_equal(out.numpy(), expected.numpy())


def test_sort_ties_give_each_value_its_own_gradient_as_torch():
    x, cotangent = INT_TIES[0], rand(7, seed=5)
    mine, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    mine.sort(stable=True)[0].backward(Tensor(cotangent))
    torch.sort(theirs, stable=True).values.backward(torch.tensor(cotangent))
    np.testing.assert_array_equal(mine.grad, theirs.grad.numpy())
