"""Shared set-up for the optimizer tests (holds no tests itself): small parameters and a reproducible
gradient per step, so that an optimizer's trajectory can be compared with a reference or a resumed run."""
from __future__ import annotations

import numpy as np

from minitf import backend
from minitf.nn import Parameter


SHAPES = [(3, 4), (5,), ()]


def make_params(dtype=np.float64, device="cpu", seed=0) -> list[Parameter]:
    rng = np.random.default_rng(seed)
    return [Parameter(backend.to_device(rng.standard_normal(s).astype(dtype), device)) for s in SHAPES]


def gradient(p: np.ndarray, t: int, i: int) -> np.ndarray:
    """A gradient that depends on the parameter (so errors compound) and varies with the step."""
    noise = np.random.default_rng(100 * t + i).standard_normal(np.shape(p))
    return np.sin(p) + 0.5 * noise


def set_grads(params, t):
    for i, p in enumerate(params):
        xp = backend.get_array_module(p.data)
        p.grad = xp.asarray(gradient(backend.to_device(p.data, "cpu"), t, i)).astype(p.dtype)


def run(opt, params, steps, first=1):
    for t in range(first, first + steps):
        set_grads(params, t)
        opt.step()
