"""minitf's CPU threads: one pool that splits large matrix products and element-wise passes.

NumPy runs its element-wise passes (exp, add, compare, sums over rows) on one core; only its
BLAS uses more. So minitf, like PyTorch's intra-op threads, keeps a pool of `get_num_threads()`
threads (the calling thread and n - 1 workers). A large product is cut into blocks of rows,
columns or batch entries, each multiplied by a one-thread BLAS call on its own thread, and the
fused ops (layer norm, cross-entropy, attention's softmax, the feed-forward block, Adam) run
their passes block by block on the pool. NumPy releases the GIL inside its loops, so the blocks
really run at once.

Blocks cut rows or columns, never the terms of a sum: a given number of threads gives the same
bits every run, and another number agrees to rounding (BLAS and NumPy's SIMD loops may round a
block's edge rows or columns differently). The thread count also caps NumPy's BLAS (through
threadpoolctl), so that no more than n threads are busy at once: while the pool may split
products, BLAS runs on one thread (BLAS's idle threads would otherwise spin against the
pool's), so NumPy's own products outside minitf run on one thread too; under minitf.no_grad
(inference: many small products, such as a decoder's one new position at a time) products are
not split and BLAS gets its own threads back, at most n (`split_products`).
`set_num_threads(1)` runs minitf's work, BLAS included, on the calling thread. The default is
the environment's MINITF_NUM_THREADS (the same as calling set_num_threads, the same rule; an
invalid value is raised at the first use, not at import), else OMP_NUM_THREADS's first number,
else the number of CPUs this process may use divided by the processes an MPI launcher started
on this machine; without MINITF_NUM_THREADS or a call, BLAS is left alone until the pool starts.
CuPy arrays are never split (the GPU is parallel already).
"""
from __future__ import annotations

import contextvars
import functools
import math
import os
import queue
import threading
from typing import Any, Callable, Sequence

import numpy as np

from . import backend
from .errors import ConfigError
from .thread_count import check_count, default_threads, max_threads

__all__ = ["get_num_threads", "set_num_threads", "max_threads", "split_products", "run_tasks", "run_blocks", "for_each",
           "concurrently", "blocks", "matmul", "random_keep_mask", "column_sums", "column_dots"]

MIN_ROWS_ELEMENTS = 1 << 16  # a block of an element-wise pass holds at least this many elements
MIN_PRODUCT_FLOPS = 1 << 24  # a product is split only if each block does at least this much work


class _Pool:
    """n - 1 daemon worker threads, each with an inbox; the caller runs the first task itself."""

    def __init__(self, n: int) -> None:
        self.inboxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(n - 1)]
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        for i, inbox in enumerate(self.inboxes, 1):
            threading.Thread(target=self._work, args=(inbox,), daemon=True, name=f"minitf-worker-{i}").start()

    def _work(self, inbox: queue.SimpleQueue) -> None:
        _local.inside = True  # a task that calls run_tasks again runs its subtasks inline
        while True:
            task = inbox.get()
            if task is None:
                return
            try:
                task()
                self.done.put(None)
            except BaseException as error:  # noqa: BLE001 (re-raised in the caller)
                self.done.put(error)

    def run(self, tasks: Sequence[Callable[[], Any]]) -> None:
        for inbox, task in zip(self.inboxes, tasks[1:]):
            # in a copy of the caller's context: NumPy's errstate, for one, is a context variable
            inbox.put(functools.partial(contextvars.copy_context().run, task))
        errors = []
        try:
            tasks[0]()
        except BaseException as error:  # noqa: BLE001 (wait for the workers first)
            errors.append(error)
        for _ in tasks[1:]:
            error = self.done.get()
            if error is not None:
                errors.append(error)
        if errors:
            raise errors[0]

    def close(self) -> None:
        for inbox in self.inboxes:
            inbox.put(None)


_local = threading.local()
# An invalid MINITF_NUM_THREADS must not break `import minitf`: it is raised at the first use of
# the thread count instead (_count), until set_num_threads replaces it.
_environment_error: ConfigError | None = None
try:
    _threads = default_threads()
except ConfigError as error:
    _threads, _environment_error = 1, error
_pool: _Pool | None = None
_lock = threading.Lock()  # one caller at a time; a second concurrent caller runs inline


_split_products = True


def split_products(split: bool) -> bool:
    """Whether matmul cuts large products among the pool's threads (True, the default) or leaves
    every product to BLAS's own threads (False); returns the previous setting. minitf.no_grad
    turns splitting off: inference multiplies many small products (a decoder's one new position
    at a time), which BLAS's own spinning threads serve better than the pool's waking ones, and
    mixing the two makes BLAS's idle threads spin against the pool's."""
    global _split_products
    previous, _split_products = _split_products, bool(split)
    _set_blas_threads()
    return previous


def get_num_threads() -> int:
    """How many threads minitf's CPU ops use (ConfigError if MINITF_NUM_THREADS is invalid)."""
    return _count()


def _count() -> int:
    """The thread count, or the error of an invalid MINITF_NUM_THREADS."""
    if _environment_error is not None:
        raise _environment_error
    return _threads


def set_num_threads(n: int) -> None:
    """Use n threads for all of minitf's CPU work: the pool (the caller and n - 1 workers; 1 =
    the caller only) and NumPy's BLAS, capped at n threads (1 while the pool splits products).
    n: an int from 1 to max_threads(), else ConfigError."""
    global _threads, _pool, _blas, _environment_error
    check_count(n, "set_num_threads: n")
    if getattr(_local, "inside", False):
        raise RuntimeError("set_num_threads: called from inside one of minitf's parallel tasks")
    with _lock:
        if _pool is not None and len(_pool.inboxes) + 1 != n:
            _pool.close()
            _pool = None
        _threads, _environment_error = n, None
        _blas = _blas or _NumpyBlas()
        _set_blas_threads()


class _NumpyBlas:
    """NumPy's BLAS libraries (found through threadpoolctl), each on its own number of threads
    (`own`, as found) or fewer (`use`)."""

    def __init__(self) -> None:
        from threadpoolctl import ThreadpoolController

        blas = ThreadpoolController().select(user_api="blas").lib_controllers
        numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
        self.libraries = [lib for lib in blas if lib.filepath.startswith(numpy_dir)] or blas
        self.own = [lib.get_num_threads() for lib in self.libraries]
        self.threads = list(self.own)  # what each library runs on now

    def use(self, threads: list[int] | int) -> list[int]:
        """Each library on min(its own count, threads) (an int, or a list as returned before);
        returns the previous counts."""
        previous = self.threads
        wanted = [min(own, threads) for own in self.own] if isinstance(threads, int) else threads
        if wanted != previous:
            for lib, n in zip(self.libraries, wanted):
                lib.set_num_threads(n)
            self.threads = wanted
        return previous


_blas: _NumpyBlas | None = None


def _set_blas_threads() -> None:
    """BLAS on one thread while the pool runs and splits products, else on at most n threads."""
    if _blas is not None:
        _blas.use(1 if _pool is not None and _split_products else _threads)


def _get_pool() -> _Pool:
    global _pool, _blas
    if _pool is None:
        _blas = _blas or _NumpyBlas()
        _pool = _Pool(_threads)
        _set_blas_threads()
    return _pool


def _after_fork_in_child() -> None:  # the workers did not survive the fork
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def run_tasks(tasks: Sequence[Callable[[], Any]]) -> None:
    """Run the tasks on the pool (the caller takes a share) and wait for all; the first
    exception raised is re-raised. Inline, one after another, with one thread, inside a task,
    or while another thread is using the pool."""
    if len(tasks) <= 1 or _count() == 1 or getattr(_local, "inside", False) \
            or not _lock.acquire(blocking=False):
        for task in tasks:
            task()
        return
    blas_threads = None
    try:
        _local.inside = True
        pool = _get_pool()
        blas_threads = _blas.use(1)  # the pool's threads may call BLAS at once: one thread each
        k = min(len(tasks), _threads)
        pool.run(tasks if k == len(tasks) else [functools.partial(_run_all, tasks[i::k]) for i in range(k)])
    finally:
        if blas_threads is not None:
            _blas.use(blas_threads)
        _local.inside = False
        _lock.release()


def _run_all(tasks: Sequence[Callable[[], Any]]) -> None:
    for task in tasks:
        task()


def for_each(fn: Callable[[Any], Any], items: Sequence[Any], sizes: Sequence[int]) -> None:
    """fn(item) for every item, the items shared among the threads so that each gets about the
    same total size (largest first, each to the least loaded thread); in order on one thread."""
    k = min(_count(), len(items))
    if k <= 1 or sum(sizes) < MIN_ROWS_ELEMENTS * k:
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


def concurrently(*calls: Callable[[], Any] | None) -> list[Any]:
    """The results of the calls (None for a None call). With no more threads than calls they
    run at once, one call per thread (e.g. the input and the weight gradient of a product, each
    a whole one-thread product, and one pool dispatch instead of two); with more threads, one
    after another, each free to use the whole pool. Give calls of about equal work."""
    results: list[Any] = [None] * len(calls)
    todo = [i for i, call in enumerate(calls) if call is not None]

    def run(i: int) -> None:
        results[i] = calls[i]()

    if 1 < _count() <= len(todo):
        run_tasks([functools.partial(run, i) for i in todo])
    else:
        for i in todo:
            run(i)
    return results


def blocks(n: int, min_size: int = 1) -> list[slice]:
    """range(n) cut into at most get_num_threads() near-equal slices of at least min_size."""
    k = max(1, min(_count(), n // max(1, min_size)))
    bounds = [n * i // k for i in range(k + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(k)]


def _on_cpu(array: Any) -> bool:
    """A NumPy array (not CuPy's, nor a subclass standing in for it)."""
    return type(array) is np.ndarray


def run_blocks(fn: Callable[[slice], Any], n: int, row_size: int = 1, array: Any = None) -> None:
    """fn(rows) for blocks of rows of range(n), in parallel, each block at least
    MIN_ROWS_ELEMENTS elements when a row holds row_size. `array`: a CuPy array runs one block."""
    if array is not None and not _on_cpu(array):
        fn(slice(0, n))
        return
    parts = blocks(n, math.ceil(MIN_ROWS_ELEMENTS / max(1, row_size)))
    run_tasks([functools.partial(fn, s) for s in parts])


def matmul(a: Any, b: Any, out: Any = None, epilogue: Callable[[Any, slice], Any] | None = None) -> Any:
    """a @ b (as xp.matmul, into `out` if given); a large NumPy product runs in blocks on the pool.

    2-D: blocks of a's rows, or of b's columns when b is wider than a is tall; stacked (>= 3-D
    a): blocks of the first axis, broadcast against b's. `epilogue(out, rows)`, if given, runs
    right after the rows `rows` of the output are written (while they are in cache; a, b 2-D; the
    product is then cut by rows): e.g. a bias added in place.
    """
    if not (_on_cpu(a) and _on_cpu(b)) or a.ndim < 2 or b.ndim < 2 or _count() == 1 or not _split_products \
            or a.size * b.shape[-1] < MIN_PRODUCT_FLOPS:  # small: a.size * b.shape[-1] is half its FLOPs
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
        raise ValueError(f"parallel.matmul: an epilogue needs 2-D operands, got shapes {a.shape} "
                         f"and {b.shape}")
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    if out is None:
        out = np.empty(shape, dtype=np.result_type(a, b))
    per_block = MIN_PRODUCT_FLOPS / max(1, 2 * math.prod(shape) * a.shape[-1])
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


def random_keep_mask(shape: tuple[int, ...], p: float) -> np.ndarray:
    """backend.random_keep_mask(np, shape, p), the same bits, drawn in blocks on the pool: each
    block copies the generator's state and advances it to the block's first word (PCG64's
    jump-ahead); the generator itself then advances past all the words, as one draw would."""
    bit_generator = backend.generator(np).bit_generator
    size = math.prod(shape)
    n_words = (size + 3) // 4
    parts = blocks(n_words, math.ceil(MIN_ROWS_ELEMENTS / 4))
    if len(parts) == 1 or not hasattr(bit_generator, "advance"):
        return backend.random_keep_mask(np, shape, p)
    keep = np.empty(4 * n_words, dtype=bool)
    state = bit_generator.state

    def draw(words: slice) -> None:
        block = type(bit_generator)()
        block.state = state
        block.advance(words.start)
        n = words.stop - words.start
        keep[4 * words.start:4 * words.stop] = backend.keep_from_words(block.random_raw(n), 4 * n, p)

    run_tasks([functools.partial(draw, s) for s in parts])
    bit_generator.advance(n_words)
    return keep[:size].reshape(shape)


def column_sums(a: Any) -> Any:
    """Sums of the 2-D array a over its rows, (columns,): a product with a ones vector, on the
    pool, faster than a.sum(axis=0) and as accurate (BLAS accumulates in blocks)."""
    if not _on_cpu(a):
        return a.sum(axis=0)
    return matmul(np.ones((1, a.shape[0]), dtype=a.dtype), a)[0]


def column_dots(a: Any, b: Any) -> Any:
    """sum over rows of a * b for 2-D a and b of one shape, (columns,), without the product's
    temporary; on the pool in blocks of columns (so each column adds in the same order)."""
    if not _on_cpu(a):
        return backend.get_array_module(a).einsum("ij,ij->j", a, b)
    out = np.empty(a.shape[1], dtype=np.result_type(a, b))

    def columns(s: slice) -> None:
        np.einsum("ij,ij->j", a[:, s], b[:, s], out=out[s])

    parts = blocks(a.shape[1], math.ceil(MIN_ROWS_ELEMENTS / max(1, a.shape[0])))
    run_tasks([lambda s=s: columns(s) for s in parts])
    return out


if _environment_error is None and os.environ.get("MINITF_NUM_THREADS", "").strip():
    set_num_threads(_threads)  # the environment's count caps BLAS too, as the call does
