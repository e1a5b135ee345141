"""Numerical constants used by both paths of the fused ops: the NumPy code of
minitf.functional (gelu's exact and tanh forms, the fused feed-forward) and the CUDA sources.

This module is their one home. source.py hands CUDA_DEFINES to every CUDA module as
`#define MINITF_<NAME> <repr(value)>`; repr round-trips, so both paths use the same double.
"""
from __future__ import annotations

import math

__all__ = ["SQRT_2_OVER_PI", "INV_SQRT_2", "INV_SQRT_2PI", "GELU_C", "CUDA_DEFINES"]

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_C = 0.044715  # the cubic coefficient of gelu's tanh approximation

# name (without the MINITF_ prefix) -> value, for the CUDA sources.
CUDA_DEFINES: dict[str, float] = {
    "SQRT_2_OVER_PI": SQRT_2_OVER_PI,
    "INV_SQRT_2": INV_SQRT_2,
    "INV_SQRT_2PI": INV_SQRT_2PI,
    "GELU_C": GELU_C,
    "GELU_3C": 3 * GELU_C,  # Python's `3 * GELU_C * x * x` multiplies in this order too
}
