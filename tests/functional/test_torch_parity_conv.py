"""minitf's batch norm statistics and convolution backward against torch.nn.functional, in float64,
beyond the generic "torch" check that tests/functional/test_op_properties.py runs on op_cases/torch_conv.py.

Skipped when PyTorch is not installed.
"""
from __future__ import annotations

import numpy as np
import pytest

import minitf.functional as F
from minitf import Tensor
from minitf.functional import conv

torch = pytest.importorskip("torch")
tF = torch.nn.functional

from op_cases.torch_conv import CASES  # noqa: E402 (needs torch)
from op_cases.torch_functional import rand  # noqa: E402


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5, 2)])
def test_batch_norm_running_statistics_match_torch(shape):
    x = rand(*shape)
    ours = [np.zeros(3), np.ones(3)]
    theirs = [torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)]
    for step in range(3):
        F.batch_norm(Tensor(x * (step + 1)), *ours, training=True, momentum=0.3)
        tF.batch_norm(torch.tensor(x * (step + 1)), *theirs, training=True, momentum=0.3)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n in CASES if n.startswith("conv1d") or n.startswith("conv2d")))
def test_per_image_backward_matches_torch(name, monkeypatch):
    """The convolutions again with conv_grads' backward (taken for images of many positions)."""
    monkeypatch.setattr(conv, "MIN_IMAGE_POSITIONS", 1)
    CASES[name].check_matches_torch()
