"""Gradient clipping by global norm (the norm and the scaling are minitf.nn.utils')."""
from __future__ import annotations

import math
import numbers
from typing import Iterable

from ..autograd import Tensor
from ..nn.utils import clip_grads_with_norm_, total_norm_array


def global_grad_norm(params: Iterable[Tensor]) -> float:
    """sqrt of the sum of squared gradient entries over all parameters (those with a gradient)."""
    grads = [p.grad for p in params if p.grad is not None]
    return float(total_norm_array([g.data if isinstance(g, Tensor) else g for g in grads]))


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients in place so that their global norm is at most `max_norm`.

    `max_norm` must be a finite number > 0, or exactly 0 for no clipping (the norm is still
    measured and returned); anything else (negative, nan, inf) raises ValueError.
    Returns the norm before clipping (inf or nan if a gradient is not finite; then nothing is scaled).
    (minitf.nn.utils.clip_grad_norm_ is torch's variant: it returns a Tensor, and its max_norm 0
    zeroes the gradients.)
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not (
            math.isfinite(max_norm) and max_norm >= 0):
        raise ValueError(f"max_norm must be a finite number > 0 (or 0 for no clipping), got {max_norm!r}")
    params = [p for p in params if p.grad is not None]
    norm = global_grad_norm(params)
    if max_norm > 0 and math.isfinite(norm) and norm > max_norm:
        clip_grads_with_norm_(params, max_norm, norm)
    return norm
