"""minitf's convolution, pooling and batch/group norm against torch.nn.functional, in float64.

Skipped when PyTorch is not installed. Same table layout as test_torch_parity.py: the
float inputs (whose gradients are compared), the minitf call and the PyTorch call.
"""
from __future__ import annotations

import numpy as np
import pytest

import minitf.functional as F
from minitf import Tensor
from minitf.functional import conv

from test_torch_parity import Case, assert_matches_torch, rand

torch = pytest.importorskip("torch")
tF = torch.nn.functional


def both(name, *args, **options):
    """The same call on both sides: F.<name>(*tensors, *args, **options)."""
    return (lambda *t: getattr(F, name)(*t, *args, **options),
            lambda *t: getattr(tF, name)(*t, *args, **options))


def _batch_norm(shape, training, affine):
    c = shape[1]
    ours_stats = [rand(c, seed=3), rand(c, seed=4) ** 2 + 0.5]
    theirs_stats = [torch.tensor(a) for a in ours_stats]

    def ours(x, *p):
        return F.batch_norm(x, *ours_stats, *p, training=training, momentum=0.2, eps=1e-4)

    def theirs(x, *p):
        return tF.batch_norm(x, *theirs_stats, *p, training=training, momentum=0.2, eps=1e-4)

    params = (rand(c, seed=1), rand(c, seed=2)) if affine else ()
    return Case((rand(*shape), *params), ours, theirs)


TIES = np.round(rand(2, 3, 6, 7, seed=8))  # small integers: many tied maxima

CASES = {
    "conv2d": Case((rand(2, 4, 7, 6), rand(6, 4, 3, 3, seed=1), rand(6, seed=2)), *both("conv2d")),
    "conv2d_strided_dilated_groups": Case((rand(2, 4, 9, 8), rand(6, 2, 3, 2, seed=1), rand(6, seed=2)),
                                          *both("conv2d", stride=(2, 3), padding=(1, 2), dilation=(2, 1),
                                                groups=2)),
    "conv2d_same_even_kernel": Case((rand(1, 3, 5, 6), rand(4, 3, 2, 4, seed=1)), *both("conv2d", padding="same")),
    "conv2d_depthwise_valid": Case((rand(2, 4, 5, 5), rand(4, 1, 3, 3, seed=1)),
                                   *both("conv2d", padding="valid", groups=4)),
    "conv2d_wide_rows": Case((rand(2, 3, 5, 20), rand(4, 3, 3, 3, seed=1), rand(4, seed=2)),
                             *both("conv2d", padding=(0, 1))),
    "conv1d": Case((rand(2, 4, 11), rand(6, 2, 3, seed=1), rand(6, seed=2)),
                   *both("conv1d", stride=2, padding=1, dilation=2, groups=2)),
    "conv1d_same": Case((rand(2, 3, 10), rand(5, 3, 4, seed=1)), *both("conv1d", padding="same", dilation=3)),
    "conv_transpose2d": Case((rand(2, 4, 4, 5), rand(4, 3, 3, 3, seed=1), rand(3, seed=2)),
                             *both("conv_transpose2d", stride=2, padding=1, output_padding=1)),
    "conv_transpose2d_groups_dilation": Case((rand(2, 4, 3, 4), rand(4, 2, 2, 3, seed=1), rand(4, seed=2)),
                                             *both("conv_transpose2d", stride=(1, 3), padding=(0, 1),
                                                   output_padding=(1, 2), groups=2, dilation=(2, 1))),
    "max_pool2d": Case((rand(2, 3, 8, 8),), *both("max_pool2d", 2)),
    "max_pool2d_ties_overlapping": Case((TIES,), *both("max_pool2d", 3, 1, 1)),
    "max_pool2d_padded_dilated_ceil": Case((rand(2, 3, 9, 7),),
                                           *both("max_pool2d", (3, 2), (2, 2), 1, (2, 1), True)),
    "avg_pool2d": Case((rand(2, 3, 8, 8),), *both("avg_pool2d", 2)),
    "avg_pool2d_padded_ceil": Case((rand(2, 3, 7, 9),), *both("avg_pool2d", 3, 2, 1, True)),
    "avg_pool2d_exclude_pad": Case((rand(2, 3, 7, 9),),
                                   *both("avg_pool2d", 3, 2, 1, True, count_include_pad=False)),
    "adaptive_avg_pool2d": Case((rand(2, 3, 7, 10),), *both("adaptive_avg_pool2d", (3, 4))),
    "adaptive_avg_pool2d_upsampling": Case((rand(2, 3, 3, 5),), *both("adaptive_avg_pool2d", (5, None))),
    "batch_norm_train_2d": _batch_norm((5, 3), True, True),
    "batch_norm_train_4d": _batch_norm((2, 3, 4, 5), True, True),
    "batch_norm_eval": _batch_norm((2, 3, 4, 5), False, True),
    "batch_norm_train_plain": _batch_norm((3, 2, 5), True, False),
    "group_norm": Case((rand(2, 6, 4, 3), rand(6, seed=1), rand(6, seed=2)),
                       lambda x, w, b: F.group_norm(x, 3, w, b), lambda x, w, b: tF.group_norm(x, 3, w, b)),
    "group_norm_plain_3d": Case((rand(3, 4, 5),), *both("group_norm", 2)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_gradients_match_torch(name):
    assert_matches_torch(CASES[name])


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
    assert_matches_torch(CASES[name])
