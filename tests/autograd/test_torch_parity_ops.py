"""Tensor ops against PyTorch beyond the generic "torch" check (which tests/functional/test_op_properties.py
runs on op_cases/torch_ops.py: math, reductions, einsum, selection, shape and order): integer
results (arg-functions, sort and topk indices, one_hot) exactly, sort's ties, and the values and
dtypes of the creation functions. Skipped when PyTorch is not installed.
"""
from __future__ import annotations

import numpy as np
import pytest

import minitf as mt
from minitf import Tensor

torch = pytest.importorskip("torch")
tF = torch.nn.functional

from op_cases.torch_functional import rand  # noqa: E402 (needs torch)
from op_cases.torch_ops import GATHER, ROWS, ints  # noqa: E402


# ---- creation ------------------------------------------------------------------------------------

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
