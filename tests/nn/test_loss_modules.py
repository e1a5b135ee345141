"""nn's loss modules: each equals its function of minitf.functional with the module's options, and
PyTorch's module (float64, skipped without PyTorch), CrossEntropyLoss in PyTorch's (N, C, d1) layout."""
from __future__ import annotations

import numpy as np
import pytest

import minitf as mt
from minitf import nn

R = np.random.default_rng(0)


def test_cross_entropy_loss_takes_pytorchs_layout_and_options():
    logits, target = R.standard_normal((4, 3, 5)), R.integers(0, 3, (4, 5))
    loss = nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5]), label_smoothing=0.1)(mt.tensor(logits), target)
    expected = mt.functional.cross_entropy(mt.tensor(np.moveaxis(logits, 1, -1)), target, label_smoothing=0.1,
                                           weight=np.array([1.0, 2.0, 0.5]))
    np.testing.assert_allclose(loss.numpy(), expected.numpy(), rtol=1e-12)
    one = nn.CrossEntropyLoss()(mt.tensor(logits[0, :, 0]), np.array(1))  # unbatched (C,)
    np.testing.assert_allclose(one.numpy(), np.log(np.exp(logits[0, :, 0]).sum()) - logits[0, 1, 0], rtol=1e-12)
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.MSELoss(reduction="avg")


CASES = {  # name -> (constructor kwargs, input, target)
    "CrossEntropyLoss": (dict(ignore_index=2, label_smoothing=0.2), R.standard_normal((4, 3, 2)),
                         R.integers(0, 3, (4, 2))),
    "NLLLoss": (dict(weight=np.array([0.5, 1.0, 2.0])), np.log(R.dirichlet(np.ones(3), 4)), R.integers(0, 3, 4)),
    "MSELoss": (dict(reduction="sum"), R.standard_normal((3, 2)), R.standard_normal((3, 2))),
    "L1Loss": ({}, R.standard_normal((3, 2)), R.standard_normal((3, 2))),
    "SmoothL1Loss": (dict(beta=0.5), R.standard_normal((3, 2)), R.standard_normal((3, 2))),
    "BCELoss": ({}, R.uniform(0.1, 0.9, (3, 2)), R.uniform(0, 1, (3, 2))),
    "BCEWithLogitsLoss": (dict(pos_weight=np.array([2.0, 0.5])), R.standard_normal((3, 2)), R.uniform(0, 1, (3, 2))),
    "KLDivLoss": (dict(reduction="batchmean"), np.log(R.dirichlet(np.ones(3), 4)), R.dirichlet(np.ones(3), 4)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_modules_match_pytorchs(name):
    torch = pytest.importorskip("torch")
    kwargs, x, target = CASES[name]
    torch_kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    xm, xt = mt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    mine = getattr(nn, name)(**kwargs)(xm, target)
    theirs = getattr(torch.nn, name)(**torch_kwargs)(xt, torch.tensor(target))
    np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-10)
    mine.backward()
    theirs.backward()
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
