"""The fused ops on CuPy through the CUDA kernels of minitf.kernels, one kernel per pass.

Each function here mirrors its NumPy-path twin in this package (same arguments, same
results) and is chosen by that twin when `kernels.available(x.data)`: a C-contiguous
CuPy float32/float64 array. Arguments were validated by the twin before dispatch.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import kernels
from ..autograd import Tensor


def softmax(x: Tensor) -> Tensor:
    y = kernels.softmax_forward(x.data)
    return Tensor.from_op(y, (x,), lambda g: (kernels.softmax_backward(y, g),))


def log_softmax(x: Tensor) -> Tensor:
    y = kernels.log_softmax_forward(x.data)
    return Tensor.from_op(y, (x,), lambda g: (kernels.log_softmax_backward(y, g),))


def gelu(x: Tensor, approximate: str) -> Tensor:
    y = kernels.gelu_forward(x.data, approximate)
    return Tensor.from_op(y, (x,), lambda g: (kernels.gelu_backward(x.data, g, approximate),))


def dropout(x: Tensor, p: float) -> Tensor:
    y, mask = kernels.dropout_forward(x.data, p)
    return Tensor.from_op(y, (x,), lambda g: (g * mask,))


def layer_norm(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    y, mean, rstd = kernels.layer_norm_forward(x.data, None if weight is None else weight.data,
                                               None if bias is None else bias.data, eps)

    def backward(g):
        gx, gw, gb = kernels.layer_norm_backward(x.data, g, None if weight is None else weight.data,
                                                 mean, rstd, has_bias=bias is not None,
                                                 need_gx=x.requires_grad)
        return [gx] + ([gw] if weight is not None else []) + ([gb] if bias is not None else [])

    parents = (x,) + tuple(p for p in (weight, bias) if p is not None)
    return Tensor.from_op(y, parents, backward)


def cross_entropy(logits: Tensor, targets: Any, ignore_index: int, label_smoothing: float,
                  reduction: str) -> Tensor:
    loss, lse = kernels.cross_entropy_forward(logits.data, targets, ignore_index, label_smoothing)
    count = int((targets != ignore_index).sum()) if reduction == "mean" else 1
    with np.errstate(invalid="ignore"):  # "mean" of no targets: 0 / 0 = NaN, as on the NumPy path
        out = loss if reduction == "none" else loss.sum() / count if reduction == "mean" else loss.sum()

    def backward(g):
        scale = g if reduction == "none" else g / max(count, 1)  # no targets: zero gradient
        return (kernels.cross_entropy_backward(logits.data, targets, lse, scale, ignore_index,
                                               label_smoothing),)

    return Tensor.from_op(out.astype(logits.dtype, copy=False), (logits,), backward)
