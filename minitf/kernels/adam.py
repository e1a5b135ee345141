"""Adam and AdamW on CuPy arrays through the kernels of cuda/adam.cu: one parameter per
launch (adam_update) or many (adam_update_multi). The conventions of ops.py apply.

The math follows minitf/optim/adam.py operation by operation.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import backend
from ._compile import get_kernel
from .ops import _ELEMENTWISE_THREADS, _grid, _like, _require

__all__ = ["adam_update", "adam_update_multi", "ADAM_CHUNK"]

ADAM_CHUNK = 65536  # elements per block in adam_update_multi
_ADAM_MULTI_THREADS = 512


def _adam_scalars(dtype: Any, lr: float, beta1: float, beta2: float, eps: float, step: int,
                  weight_decay: float, decoupled: bool) -> tuple[Any, ...]:
    """Kernel scalars in minitf/optim/adam.py's spelling, then cast to dtype."""
    if step < 1:
        raise ValueError(f"adam_update: step counts from 1, got {step}")
    step_size = lr / (1 - beta1 ** step)
    inv_bias2 = 1.0 / math.sqrt(1 - beta2 ** step)
    mode = 0 if not weight_decay else (2 if decoupled else 1)
    T = np.dtype(dtype).type
    return (T(beta1), T(1 - beta1), T(beta2), T(1 - beta2), T(eps), T(step_size), T(inv_bias2),
            T(weight_decay), T(1 - lr * weight_decay), np.int32(mode))


def _check_state(cp: Any, p: Any, arr: Any, name: str) -> None:
    if not (backend.is_cupy_array(arr) and arr.dtype == p.dtype and arr.shape == p.shape
            and arr.flags.c_contiguous):
        raise ValueError(f"minitf.kernels.adam_update: {name} must be a C-contiguous CuPy array of "
                         f"p's shape {p.shape} and dtype {p.dtype} (it is updated in place)")


def adam_update(p: Any, g: Any, m: Any, v: Any, lr: float, beta1: float, beta2: float, eps: float, step: int,
                weight_decay: float = 0.0, decoupled: bool = False) -> None:
    """One Adam (decoupled=False: L2 decay added to g) or AdamW (decoupled=True: p *= 1 - lr wd)
    update of one parameter, in place, in one kernel. p, m, v: same shape, C-contiguous, updated;
    g: p's shape (copied to a contiguous array of p's dtype if needed); step: the step count t >= 1.

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """
    cp = _require(p, "adam_update", rows=False)
    for arr, name in ((m, "m"), (v, "v")):
        _check_state(cp, p, arr, name)
    g = _like(cp, g, p, "g", "adam_update")
    if p.size == 0:
        return
    scalars = _adam_scalars(p.dtype, lr, beta1, beta2, eps, step, weight_decay, decoupled)
    get_kernel("adam", "adam_step", p.dtype)(_grid(p.size), (_ELEMENTWISE_THREADS,),
                                             (p, g, m, v, np.int64(p.size)) + scalars)


def adam_update_multi(params: Sequence[Any], grads: Sequence[Any], ms: Sequence[Any], vs: Sequence[Any],
                      lr: float, beta1: float, beta2: float, eps: float, step: int, weight_decay: float = 0.0,
                      decoupled: bool = False, chunk_size: int = ADAM_CHUNK) -> None:
    """adam_update for many parameters with one kernel launch per dtype (multi-tensor apply).

    params[k], grads[k], ms[k], vs[k] are one parameter's arrays, as for adam_update; all on
    the current device. Each tensor is cut into chunks of `chunk_size` elements; a table
    (one int64 device array, uploaded once per call) lists, per tensor, the addresses of
    p, g, m, v and the element count, then per chunk (tensor index, first element).
    Block b of the launch updates chunk b: elements [start, min(start + chunk_size, size))
    of its tensor. Tensors of float32 and float64 are grouped, one launch per dtype.
    """
    n = len(params)
    if not (len(grads) == len(ms) == len(vs) == n):
        raise ValueError("adam_update_multi: params, grads, ms and vs must have the same length")
    if chunk_size < 1:
        raise ValueError(f"adam_update_multi: chunk_size must be positive, got {chunk_size}")
    if n == 0:
        return
    cp = None
    groups: dict[str, list[tuple[Any, Any, Any, Any]]] = {}
    for p, g, m, v in zip(params, grads, ms, vs):
        cp = _require(p, "adam_update_multi", rows=False)
        _check_state(cp, p, m, "m")
        _check_state(cp, p, v, "v")
        g = _like(cp, g, p, "g", "adam_update_multi")  # kept alive in `groups` until the launch
        if p.size:
            groups.setdefault(p.dtype.name, []).append((p, g, m, v))
    for dtype_name, items in groups.items():
        head: list[int] = []
        sizes: list[int] = []
        chunks: list[int] = []
        for k, (p, g, m, v) in enumerate(items):
            head += [p.data.ptr, g.data.ptr, m.data.ptr, v.data.ptr]
            sizes.append(p.size)
            for start in range(0, p.size, chunk_size):
                chunks += [k, start]
        table = cp.asarray(np.array(head + sizes + chunks, dtype=np.int64))
        scalars = _adam_scalars(dtype_name, lr, beta1, beta2, eps, step, weight_decay, decoupled)
        get_kernel("adam", "adam_step_multi", dtype_name)(
            (len(chunks) // 2,), (_ADAM_MULTI_THREADS,),
            (table, np.int64(len(items)), np.int64(chunk_size)) + scalars)
