"""Matrix products on minitf's threads: a large NumPy product is cut into blocks of rows, columns
or batch entries, each a one-thread BLAS call on its own thread; an epilogue runs on each block
of rows right after BLAS writes it (while it is in cache).

A product is split when it is large (each block at least blocking.MIN_PRODUCT_FLOPS of work),
there is more than one thread and no pool.inference() block is open. The cut depends only on
the shapes and the thread count, never on which thread runs a block, so nested calls (inside a
task, which run their blocks inline) give the same bits.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import backend
from . import blocking
from .blocking import blocks, on_cpu
from .pool import concurrently, run_tasks, splits_products

__all__ = ["matmul", "linear_grads", "scaled", "column_sums", "column_dots"]

Epilogue = Callable[[Any, slice], Any]


def matmul(a: Any, b: Any, out: Any = None, epilogue: Epilogue | None = None) -> Any:
    """a @ b (as xp.matmul, into `out` if given); a large NumPy product runs in blocks on the pool.

    2-D: blocks of a's rows, or of b's columns when b is wider than a is tall; stacked (>= 3-D
    a): blocks of the first axis, broadcast against b's. `epilogue(out, rows)`, if given, runs
    right after the rows `rows` of the output are written (a, b 2-D; the product is then cut by
    rows): e.g. a bias added in place. It must touch only those rows.
    """
    if not (on_cpu(a) and on_cpu(b)) or a.ndim < 2 or b.ndim < 2 or not splits_products() \
            or a.size * b.shape[-1] < blocking.MIN_PRODUCT_FLOPS:  # small: a.size * b.shape[-1] is half its FLOPs
        xp = backend.get_array_module(a, b)
        out = xp.matmul(a, b) if out is None else xp.matmul(a, b, out=out)
        if epilogue is not None:
            epilogue(out, slice(0, out.shape[0]))
        return out
    if a.ndim > 2 and a.ndim >= b.ndim and math.prod(a.shape[:-2]) == 1 and math.prod(b.shape[:-2]) == 1:
        target = out if out is not None else np.empty((1,) * (a.ndim - 2) + (a.shape[-2], b.shape[-1]),
                                                       dtype=np.result_type(a, b))
        first = (0,) * (a.ndim - 2)  # a batch of one: a 2-D product (indexing gives views)
        matmul(a[first], b[(0,) * (b.ndim - 2)], out=target[first])
        return target
    if epilogue is not None and not a.ndim == b.ndim == 2:
        raise ValueError(f"cpu.matmul: an epilogue needs 2-D operands, got shapes {a.shape} "
                         f"and {b.shape}")
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    if out is None:
        out = np.empty(shape, dtype=np.result_type(a, b))
    per_block = blocking.MIN_PRODUCT_FLOPS / max(1, 2 * math.prod(shape) * a.shape[-1])
    if epilogue is not None or (a.ndim == 2 and b.ndim == 2 and a.shape[0] >= b.shape[1]):
        def rows(s: slice) -> None:
            np.matmul(a[s], b, out=out[s])
            if epilogue is not None:
                epilogue(out, s)
        tasks = [lambda s=s: rows(s) for s in blocks(a.shape[0], math.ceil(per_block * a.shape[0]))]
    elif a.ndim == 2 and b.ndim == 2:
        tasks = [lambda s=s: np.matmul(a, b[:, s], out=out[:, s])
                 for s in blocks(b.shape[1], math.ceil(per_block * b.shape[1]))]
    elif a.ndim > 2 and a.ndim >= b.ndim and a.shape[0] > 1:
        b_per_block = (lambda s: b[s]) if b.ndim == a.ndim and b.shape[0] > 1 else \
            (lambda s: b[0] if b.ndim == a.ndim else b)
        tasks = [lambda s=s: np.matmul(a[s], b_per_block(s), out=out[s])
                 for s in blocks(a.shape[0], math.ceil(per_block * a.shape[0]))]
    else:
        return np.matmul(a, b, out=out)
    run_tasks(tasks)
    return out


def scaled(a: Any, scale: float) -> Any:
    """a *= scale in place (if scale != 1); returns a."""
    if scale != 1.0:
        a *= scale
    return a


def linear_grads(g: Any, x: Any, w: Any, input_grad: bool = True, weight_grad: bool = True,
                 bias_grad: bool = False, scale: float = 1.0,
                 input_epilogue: Epilogue | None = None, input_on_caller: bool = False) -> tuple[Any, Any, Any]:
    """The backward products of a linear map y = x @ w.T + bias with output gradient g, at once
    on the pool: (gx, gw, gb) = (g @ w, then input_epilogue on each block of its rows; g.T @ x,
    times `scale`; g's column sums), each None when not asked for. g: (N, out); x: (N, in); w:
    (out, in). The weight gradient (the slower product) is one task, the input gradient and the
    bias sums the other; the weight gradient's runs on the calling thread, or the input
    gradient's with input_on_caller (see pool.concurrently: only memory depends on it)."""
    def input_and_bias() -> tuple[Any, Any]:
        return (matmul(g, w, epilogue=input_epilogue) if input_grad else None,
                column_sums(g) if bias_grad else None)

    def weight() -> Any:
        return scaled(matmul(g.T, x), scale) if weight_grad else None

    if input_on_caller:
        (gx, gb), gw = concurrently(input_and_bias, weight if weight_grad else None)
    else:
        gw, (gx, gb) = concurrently(weight if weight_grad else None, input_and_bias)
    return gx, gw, gb


def column_sums(a: Any) -> Any:
    """Sums of the 2-D array a over its rows, (columns,): a product with a ones vector, on the
    pool, faster than a.sum(axis=0) and as accurate (BLAS accumulates in blocks)."""
    if not on_cpu(a):
        return a.sum(axis=0)
    return matmul(np.ones((1, a.shape[0]), dtype=a.dtype), a)[0]


def column_dots(a: Any, b: Any) -> Any:
    """sum over rows of a * b for 2-D a and b of one shape, (columns,), without the product's
    temporary; on the pool in blocks of columns (so each column adds in the same order)."""
    if not on_cpu(a):
        return backend.get_array_module(a).einsum("ij,ij->j", a, b)
    out = np.empty(a.shape[1], dtype=np.result_type(a, b))

    def columns(s: slice) -> None:
        np.einsum("ij,ij->j", a[:, s], b[:, s], out=out[s])

    run_tasks([lambda s=s: columns(s) for s in blocking.row_blocks(a.shape[1], a.shape[0])])
    return out
