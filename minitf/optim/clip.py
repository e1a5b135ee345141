"""Gradient clipping by global norm."""
from __future__ import annotations

import math
import numbers
from typing import Iterable

from .. import backend
from ..autograd import Tensor


def global_grad_norm(params: Iterable[Tensor]) -> float:
    """sqrt of the sum of squared gradient entries over all parameters (those with a gradient)."""
    total = 0.0
    for p in params:
        if p.grad is not None:
            g = (p.grad.data if isinstance(p.grad, Tensor) else p.grad).reshape(-1)
            total += float(backend.get_array_module(g).dot(g, g))
    return math.sqrt(total)


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients in place so that their global norm is at most `max_norm`.

    `max_norm` must be a finite number > 0, or exactly 0 for no clipping (the norm is still
    measured and returned); anything else (negative, nan, inf) raises ValueError.
    Returns the norm before clipping (inf or nan if a gradient is not finite; then nothing is scaled).
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not (
            math.isfinite(max_norm) and max_norm >= 0):
        raise ValueError(f"max_norm must be a finite number > 0 (or 0 for no clipping), got {max_norm!r}")
    params = [p for p in params if p.grad is not None]
    norm = global_grad_norm(params)
    if max_norm > 0 and math.isfinite(norm) and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for p in params:
            if isinstance(p.grad, Tensor):  # a gradient with a graph: scaled out of place, graph kept
                p.grad = p.grad * scale
            else:
                p.grad *= scale
    return norm
