"""How minitf cuts CPU work into blocks: one policy, its sizes in one place.

Two kinds of blocks, both cutting rows (or columns, images, words), never the terms of a sum,
so that a given thread count gives the same bits every run:
- thread blocks (`blocks`, `run_blocks`, `for_each`): at most one per thread, each worth
  starting a thread for (MIN_BLOCK_ELEMENTS elements of an element-wise pass; MIN_PRODUCT_FLOPS
  for a product, minitf.cpu.gemm);
- cache blocks (`cache_blocks`, `chunk_size`): small enough to stay in a core's cache while
  a fused op makes several passes over it (CACHE_BLOCK_BYTES: cross-entropy's rows of logits;
  CHUNK_BYTES: a convolution's columns of a few images).
A thread block may hold several cache blocks. CuPy arrays are never cut (the GPU is parallel
already). The sizes are read at each call, so tests may lower them to split tiny inputs.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import numpy as np

from .pool import get_num_threads, run_tasks

__all__ = ["MIN_BLOCK_ELEMENTS", "MIN_PRODUCT_FLOPS", "CACHE_BLOCK_BYTES", "CHUNK_BYTES", "on_cpu", "blocks",
           "row_blocks", "run_blocks", "for_each", "cache_blocks", "chunk_size"]

MIN_BLOCK_ELEMENTS = 1 << 16  # a thread block of an element-wise pass holds at least this many elements
MIN_PRODUCT_FLOPS = 1 << 24  # a product is split only if each block does at least this much work
CACHE_BLOCK_BYTES = 1 << 19  # a cache block of rows: stays in a core's L2 cache
CHUNK_BYTES = 2 << 20  # a convolution's columns per chunk: 1, 2, 4, 8 MiB measured on MNIST's second
# layer, 2 and 4 best, 1 and 8 slower (the columns stay in cache and below malloc's mmap threshold)


def on_cpu(array: Any) -> bool:
    """A NumPy array (not CuPy's, nor a subclass standing in for it)."""
    return type(array) is np.ndarray


def blocks(n: int, min_size: int = 1) -> list[slice]:
    """range(n) cut into at most get_num_threads() near-equal slices of at least min_size."""
    k = max(1, min(get_num_threads(), n // max(1, min_size)))
    bounds = [n * i // k for i in range(k + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(k)]


def row_blocks(n: int, row_size: int) -> list[slice]:
    """The thread blocks of n rows of row_size elements each: at least MIN_BLOCK_ELEMENTS each."""
    return blocks(n, math.ceil(MIN_BLOCK_ELEMENTS / max(1, row_size)))


def run_blocks(fn: Callable[[slice], Any], n: int, row_size: int = 1, array: Any = None) -> None:
    """fn(rows) for the thread blocks of rows of range(n) (row_blocks), in parallel; fn must
    touch only its rows. `array`: a CuPy array runs one block."""
    if array is not None and not on_cpu(array):
        fn(slice(0, n))
        return
    run_tasks([functools.partial(fn, s) for s in row_blocks(n, row_size)])


def for_each(fn: Callable[[Any], Any], items: Sequence[Any], sizes: Sequence[int]) -> None:
    """fn(item) for every item, the items shared among the threads so that each gets about the
    same total size (largest first, each to the least loaded thread); in order on one thread."""
    k = min(get_num_threads(), len(items))
    if k <= 1 or sum(sizes) < MIN_BLOCK_ELEMENTS * k:
        for item in items:
            fn(item)
        return
    shares: list[list[Any]] = [[] for _ in range(k)]
    loads = [0] * k
    for i in sorted(range(len(items)), key=lambda i: -sizes[i]):
        lightest = loads.index(min(loads))
        shares[lightest].append(items[i])
        loads[lightest] += sizes[i]
    run_tasks([lambda share=share: [fn(item) for item in share] for share in shares])


def cache_blocks(rows: slice, row_bytes: int, array: Any = None) -> list[slice]:
    """The slice `rows` (start and stop set) cut into cache blocks of about CACHE_BLOCK_BYTES
    when a row holds row_bytes; one block for a CuPy `array`."""
    if array is not None and not on_cpu(array):
        return [rows]
    step = max(1, CACHE_BLOCK_BYTES // max(1, row_bytes))
    return [slice(i, min(i + step, rows.stop)) for i in range(rows.start, rows.stop, step)]


def chunk_size(item_bytes: int, budget: int | None = None) -> int:
    """How many items of item_bytes make a chunk of about `budget` bytes (default CHUNK_BYTES),
    at least one."""
    return max(1, (CHUNK_BYTES if budget is None else budget) // max(1, item_bytes))
