"""Parameter initializers, drawing from the seeded generator (see minitf.manual_seed)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend

DEFAULT_DTYPE = np.float32


def uniform(shape: tuple[int, ...], bound: float, dtype: Any = DEFAULT_DTYPE) -> np.ndarray:
    """Uniform in [-bound, bound)."""
    return ((2 * backend.random_uniform(np, shape, dtype) - 1) * bound).astype(dtype)


def normal(shape: tuple[int, ...], std: float, dtype: Any = DEFAULT_DTYPE) -> np.ndarray:
    return (backend.random_normal(np, shape, dtype) * std).astype(dtype)


def xavier_uniform(shape: tuple[int, int], dtype: Any = DEFAULT_DTYPE) -> np.ndarray:
    """Glorot uniform for a (fan_out, fan_in) weight."""
    fan_out, fan_in = shape
    return uniform(shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype)
