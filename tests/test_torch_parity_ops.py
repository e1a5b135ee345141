"""Tensor ops of issue 10 (math, reductions, einsum) against PyTorch: forward and every input's
gradient in float64 for one random cotangent; creation dtype defaults. Skipped without torch.

Run with PyTorch installed: python -m pytest tests/test_torch_parity_ops.py
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import pytest

import minitf as mt

torch = pytest.importorskip("torch")


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


class Case(NamedTuple):
    floats: tuple[np.ndarray, ...]
    ours: Callable[..., mt.Tensor]
    theirs: Callable[..., "torch.Tensor"]


ZEROS = np.array([[2.0, 0.0, 3.0, 0.0, 1.5], [0.5, -1.0, 2.0, 0.0, 3.0], [1.0, 2.0, 0.5, -2.0, 1.0]])
TIES = (np.array([[1.0, 2.0, -3.0], [0.5, 0.5, 4.0]]), np.array([[1.0, 0.0, -3.0], [0.5, 2.0, 1.0]]))
CLIPPED = np.array([[-2.0, -1.0, 0.0, 0.5], [1.0, 1.5, 3.0, -0.25]])  # hits both bounds exactly
LO, HI = np.array([[-1.0, -1.0, 0.5, 0.0]]), np.array([[1.0], [0.25]])  # one min > max

CASES = {
    "sin": Case((rand(3, 4),), lambda x: x.sin(), torch.sin),
    "cos": Case((rand(3, 4),), lambda x: x.cos(), torch.cos),
    "log1p": Case((np.abs(rand(3, 4)),), lambda x: x.log1p(), torch.log1p),
    "expm1": Case((rand(3, 4),), lambda x: x.expm1(), torch.expm1),
    "clamp_numbers": Case((CLIPPED,), lambda x: x.clamp(-1.0, 1.5), lambda x: x.clamp(-1.0, 1.5)),
    "clamp_min_only": Case((CLIPPED,), lambda x: x.clip(min=0.0), lambda x: x.clamp(min=0.0)),
    "clamp_tensors": Case((CLIPPED, LO, HI), lambda x, lo, hi: mt.clamp(x, lo, hi),
                          lambda x, lo, hi: torch.clamp(x, lo, hi)),
    "maximum_ties": Case(TIES, mt.maximum, torch.maximum),
    "minimum_ties_broadcast": Case((TIES[0], TIES[1][:1]), mt.minimum, torch.minimum),
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
    CASES[f"einsum {_subscripts}"] = Case(
        tuple(rand(*s, seed=i) for i, s in enumerate(_shapes)),
        lambda *t, s=_subscripts: mt.einsum(s, *t), lambda *t, s=_subscripts: torch.einsum(s, *t))


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_gradients_match_torch(name):
    case = CASES[name]
    ours = [mt.tensor(a, requires_grad=True) for a in case.floats]
    theirs = [torch.tensor(a, requires_grad=True) for a in case.floats]
    out, ref = case.ours(*ours), case.theirs(*theirs)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    cotangent = rand(*out.shape, seed=9)
    out.backward(mt.tensor(cotangent))
    ref.backward(torch.tensor(cotangent))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        expected = np.zeros(a.shape) if b.grad is None else b.grad.numpy()
        np.testing.assert_allclose(a.grad, expected, rtol=1e-10, atol=1e-12, err_msg=f"input {i}")


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
