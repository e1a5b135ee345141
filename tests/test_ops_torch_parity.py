"""Tensor ops (selection, gather/scatter, shape and order) against PyTorch: forward and gradients, float64.

Skipped when PyTorch is not installed. Each differentiable case gives the float inputs, the
minitf call and the PyTorch call; both get the same random cotangent and their gradients are
compared. Integer indices are closed over.
"""
from __future__ import annotations

import numpy as np
import pytest

import minitf as mt
from minitf import Tensor

from test_torch_parity import Case, assert_matches_torch, rand  # noqa: E402 (skips without torch)

torch = pytest.importorskip("torch")
tF = torch.nn.functional


def ints(low, high, *shape, seed=0):
    return np.random.default_rng(seed).integers(low, high, shape)


GATHER = ints(0, 5, 3, 6, seed=1)       # repeats; fewer rows than x (torch.gather's rule)
SCATTER = ints(0, 4, 2, 5, seed=2)      # repeats (torch cannot differentiate a src larger than the index)
ALONG = ints(-4, 4, 6, 5, seed=5)       # negative indices (NumPy), more rows than x
ROWS = np.array([2, 0, 2, 3])
COUNTS = np.array([2, 0, 1, 3])

CASES = {
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


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_gradients_match_torch(name):
    assert_matches_torch(CASES[name], rtol_out=1e-12, rtol_grad=1e-12)


X = rand(4, 7, seed=3)
TIES = ints(0, 3, 4, 7, seed=4).astype(np.float64)

INDEX_CASES = {  # minitf call, PyTorch call: integer outputs compared exactly
    "argmax": (lambda: mt.tensor(TIES).argmax(axis=1), lambda: torch.tensor(TIES).argmax(dim=1)),
    "argmin_keepdims": (lambda: mt.tensor(TIES).argmin(dim=0, keepdims=True),
                        lambda: torch.tensor(TIES).argmin(dim=0, keepdim=True)),
    "argsort_stable": (lambda: mt.tensor(TIES).argsort(descending=True, stable=True),
                       lambda: torch.argsort(torch.tensor(TIES), descending=True, stable=True)),
    "sort_indices_stable": (lambda: mt.tensor(TIES).sort(axis=0, stable=True)[1],
                            lambda: torch.sort(torch.tensor(TIES), dim=0, stable=True).indices),
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
    x, cotangent = TIES[0], rand(7, seed=5)
    mine, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    mine.sort(stable=True)[0].backward(Tensor(cotangent))
    torch.sort(theirs, stable=True).values.backward(torch.tensor(cotangent))
    np.testing.assert_array_equal(mine.grad, theirs.grad.numpy())
