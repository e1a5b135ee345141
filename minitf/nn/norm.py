"""Normalization modules: BatchNorm1d/2d (running statistics as buffers), GroupNorm, RMSNorm."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import functional as F
from ..autograd import Tensor
from . import init
from .module import Module, Parameter, check_input_dtype


class _BatchNorm(Module):
    """As torch.nn.BatchNorm*d: per-channel batch statistics while training, running ones in eval.

    Buffers running_mean (C,), running_var (C,) and num_batches_tracked () when
    track_running_stats; momentum None means a cumulative average (1 / batches seen).
    """

    ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = init.DEFAULT_DTYPE
        self.weight = Parameter(np.ones(num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(num_features, dtype)) if affine else None
        tracked = track_running_stats
        self.register_buffer("running_mean", np.zeros(num_features, dtype) if tracked else None)
        self.register_buffer("running_var", np.ones(num_features, dtype) if tracked else None)
        self.register_buffer("num_batches_tracked", np.zeros((), np.int64) if tracked else None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self.ndims:
            raise ValueError(f"{type(self).__name__}: expected a {' or '.join(map(str, self.ndims))}-D input, "
                             f"got shape {x.shape}")
        check_input_dtype(self, x, weight=self.weight, bias=self.bias)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                            self.weight, self.bias, use_batch, momentum, self.eps)


class BatchNorm1d(_BatchNorm):
    """Input (N, C) or (N, C, L)."""

    ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Input (N, C, H, W)."""

    ndims = (4,)


class GroupNorm(Module):
    """Normalize over groups of num_channels / num_groups channels, as torch.nn.GroupNorm."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels {num_channels} must be divisible by num_groups {num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        self.weight = Parameter(np.ones(num_channels, init.DEFAULT_DTYPE)) if affine else None
        self.bias = Parameter(np.zeros(num_channels, init.DEFAULT_DTYPE)) if affine else None

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"

    def forward(self, x: Tensor) -> Tensor:
        check_input_dtype(self, x, weight=self.weight, bias=self.bias)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class RMSNorm(Module):
    """x / sqrt(mean(x**2) + eps) * weight over the trailing normalized_shape, as torch.nn.RMSNorm."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float | None = None,
                 elementwise_affine: bool = True) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = Parameter(np.ones(shape, init.DEFAULT_DTYPE)) if elementwise_affine else None

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"

    def forward(self, x: Any) -> Tensor:
        check_input_dtype(self, x, weight=self.weight)
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)
