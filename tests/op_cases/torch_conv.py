"""minitf's convolution, pooling and batch/group norm against torch.nn.functional, in float64.

Fixed cases for the generic "torch" check (tests/functional/test_op_properties.py), in the layout of
op_cases/torch_functional.py: the float inputs (whose gradients are compared), the minitf call
and the PyTorch call.
"""
from __future__ import annotations

import numpy as np
import torch

import minitf.functional as F
from minitf.testing import op_tests

from op_cases.torch_functional import parity, rand

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
    return parity((rand(*shape), *params), ours, theirs)


TIES = np.round(rand(2, 3, 6, 7, seed=8))  # small integers: many tied maxima

CASES = {
    "conv2d": parity((rand(2, 4, 7, 6), rand(6, 4, 3, 3, seed=1), rand(6, seed=2)), *both("conv2d")),
    "conv2d_strided_dilated_groups": parity((rand(2, 4, 9, 8), rand(6, 2, 3, 2, seed=1), rand(6, seed=2)),
                                            *both("conv2d", stride=(2, 3), padding=(1, 2), dilation=(2, 1),
                                                  groups=2)),
    "conv2d_same_even_kernel": parity((rand(1, 3, 5, 6), rand(4, 3, 2, 4, seed=1)), *both("conv2d", padding="same")),
    "conv2d_depthwise_valid": parity((rand(2, 4, 5, 5), rand(4, 1, 3, 3, seed=1)),
                                     *both("conv2d", padding="valid", groups=4)),
    "conv2d_wide_rows": parity((rand(2, 3, 5, 20), rand(4, 3, 3, 3, seed=1), rand(4, seed=2)),
                               *both("conv2d", padding=(0, 1))),
    "conv1d": parity((rand(2, 4, 11), rand(6, 2, 3, seed=1), rand(6, seed=2)),
                     *both("conv1d", stride=2, padding=1, dilation=2, groups=2)),
    "conv1d_same": parity((rand(2, 3, 10), rand(5, 3, 4, seed=1)), *both("conv1d", padding="same", dilation=3)),
    "conv_transpose2d": parity((rand(2, 4, 4, 5), rand(4, 3, 3, 3, seed=1), rand(3, seed=2)),
                               *both("conv_transpose2d", stride=2, padding=1, output_padding=1)),
    "conv_transpose2d_groups_dilation": parity((rand(2, 4, 3, 4), rand(4, 2, 2, 3, seed=1), rand(4, seed=2)),
                                               *both("conv_transpose2d", stride=(1, 3), padding=(0, 1),
                                                     output_padding=(1, 2), groups=2, dilation=(2, 1))),
    "max_pool2d": parity((rand(2, 3, 8, 8),), *both("max_pool2d", 2)),
    "max_pool2d_ties_overlapping": parity((TIES,), *both("max_pool2d", 3, 1, 1)),
    "max_pool2d_padded_dilated_ceil": parity((rand(2, 3, 9, 7),),
                                             *both("max_pool2d", (3, 2), (2, 2), 1, (2, 1), True)),
    "avg_pool2d": parity((rand(2, 3, 8, 8),), *both("avg_pool2d", 2)),
    "avg_pool2d_padded_ceil": parity((rand(2, 3, 7, 9),), *both("avg_pool2d", 3, 2, 1, True)),
    "avg_pool2d_exclude_pad": parity((rand(2, 3, 7, 9),),
                                     *both("avg_pool2d", 3, 2, 1, True, count_include_pad=False)),
    "adaptive_avg_pool2d": parity((rand(2, 3, 7, 10),), *both("adaptive_avg_pool2d", (3, 4))),
    "adaptive_avg_pool2d_upsampling": parity((rand(2, 3, 3, 5),), *both("adaptive_avg_pool2d", (5, None))),
    "batch_norm_train_2d": _batch_norm((5, 3), True, True),
    "batch_norm_train_4d": _batch_norm((2, 3, 4, 5), True, True),
    "batch_norm_eval": _batch_norm((2, 3, 4, 5), False, True),
    "batch_norm_train_plain": _batch_norm((3, 2, 5), True, False),
    "group_norm": parity((rand(2, 6, 4, 3), rand(6, seed=1), rand(6, seed=2)),
                         lambda x, w, b: F.group_norm(x, 3, w, b), lambda x, w, b: tF.group_norm(x, 3, w, b)),
    "group_norm_plain_3d": parity((rand(3, 4, 5),), *both("group_norm", 2)),
}

OPS = op_tests(CASES, checks=("torch",))
