"""minitf's CPU threads: one pool of `get_num_threads()` threads, and NumPy's BLAS kept in step.

NumPy runs its element-wise passes (exp, add, compare, sums over rows) on one core; only its
BLAS uses more. So minitf, like PyTorch's intra-op threads, keeps a pool of n threads (the
calling thread and n - 1 workers) on which ops run their blocks (minitf.cpu.blocking) and
large products (minitf.cpu.gemm). NumPy releases the GIL inside its loops, so the blocks
really run at once.

BLAS's thread count follows one rule, applied under one lock (`_apply_blas`): 1 while the pool
runs tasks or splits products (BLAS's idle threads would otherwise spin against the pool's),
else at most n. So once the pool has started, NumPy's own products outside minitf run on one
thread too; inside `inference()` (many small products, such as a decoder's one new position at
a time) products are not split and BLAS gets its own threads back, at most n.
`set_num_threads(1)` runs minitf's work, BLAS included, on the calling thread. The default is
the environment's MINITF_NUM_THREADS (the same as calling set_num_threads, the same rule; an
invalid value is raised at the first use, not at import), else OMP_NUM_THREADS's first number,
else this process's share of the CPUs (minitf.cpu.threads); without MINITF_NUM_THREADS or a
call, BLAS is left alone until the pool starts.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import queue
import threading
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError
from .threads import check_count, default_threads

__all__ = ["get_num_threads", "set_num_threads", "inference", "splits_products", "run_tasks", "concurrently"]


class _Pool:
    """n - 1 daemon worker threads, each with an inbox, and the calling thread."""

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
        """Run at most n tasks at once, one per thread, and wait for all."""
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

    def use(self, threads: int) -> None:
        """Each library on min(its own count, threads)."""
        wanted = [min(own, threads) for own in self.own]
        if wanted != self.threads:
            for lib, n in zip(self.libraries, wanted):
                lib.set_num_threads(n)
            self.threads = wanted


_local = threading.local()
# An invalid MINITF_NUM_THREADS must not break `import minitf`: it is raised at the first use of
# the thread count instead (_count), until set_num_threads replaces it.
_environment_error: ConfigError | None = None
try:
    _threads = default_threads()
except ConfigError as error:
    _threads, _environment_error = 1, error
_pool: _Pool | None = None
_blas: _NumpyBlas | None = None
_busy = False  # the pool is running tasks
_inference_depth = 0  # how many inference() blocks are open (in any thread)
_use_lock = threading.Lock()  # one caller of the pool at a time; a second concurrent caller runs inline
_blas_lock = threading.Lock()  # every change of the thread state that BLAS's count follows


def _apply_blas() -> None:
    """BLAS's thread count from the state (call with _blas_lock held): 1 while the pool runs
    tasks or splits products, else at most n. Left alone until the pool or a count is set."""
    if _blas is not None:
        _blas.use(1 if _pool is not None and (_busy or _inference_depth == 0) else _threads)


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
    with _use_lock, _blas_lock:
        if _pool is not None and len(_pool.inboxes) + 1 != n:
            _pool.close()
            _pool = None
        _threads, _environment_error = n, None
        _blas = _blas or _NumpyBlas()
        _apply_blas()


@contextlib.contextmanager
def inference() -> Iterator[None]:
    """A block of inference work (e.g. decoding): products are not split among the pool's
    threads but left to BLAS's own threads (at most n), which serve many small products (a
    decoder's one new position at a time) better than the pool's waking ones. Element-wise
    passes still run in blocks on the pool. Nests; process-wide, as BLAS's thread count is."""
    global _inference_depth
    with _blas_lock:
        _inference_depth += 1
        _apply_blas()
    try:
        yield
    finally:
        with _blas_lock:
            _inference_depth -= 1
            _apply_blas()


def splits_products() -> bool:
    """Whether large products are cut among the pool's threads: with more than one thread and
    outside inference()."""
    return _inference_depth == 0 and _count() > 1


def _start_pool() -> _Pool:
    global _pool, _blas
    with _blas_lock:
        if _pool is None:
            _blas = _blas or _NumpyBlas()
            _pool = _Pool(_threads)
        return _pool


def _set_busy(busy: bool) -> None:
    global _busy
    with _blas_lock:
        _busy = busy
        _apply_blas()


def _after_fork_in_child() -> None:  # the workers did not survive the fork
    global _pool, _use_lock, _blas_lock, _busy
    _pool, _use_lock, _blas_lock, _busy = None, threading.Lock(), threading.Lock(), False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def run_tasks(tasks: Sequence[Callable[[], Any]]) -> None:
    """Run the tasks on the pool and wait for all; the first exception raised is re-raised.
    The first task runs on the calling thread, the others on workers (see concurrently for why
    that matters to memory; results must not depend on it). Inline, one after another, with one
    thread, inside a task, or while another thread is using the pool."""
    if len(tasks) <= 1 or _count() == 1 or getattr(_local, "inside", False) \
            or not _use_lock.acquire(blocking=False):
        for task in tasks:
            task()
        return
    try:
        _local.inside = True
        pool = _start_pool()
        _set_busy(True)  # the pool's threads may call BLAS at once: one thread each
        k = min(len(tasks), _threads)
        pool.run(tasks if k == len(tasks) else [functools.partial(_run_all, tasks[i::k]) for i in range(k)])
    finally:
        _set_busy(False)
        _local.inside = False
        _use_lock.release()


def _run_all(tasks: Sequence[Callable[[], Any]]) -> None:
    for task in tasks:
        task()


def concurrently(*calls: Callable[[], Any] | None) -> list[Any]:
    """The results of the calls (None for a None call). With no more threads than calls they
    run at once, one call per thread (e.g. the input and the weight gradient of a product, each
    a whole one-thread product, and one pool dispatch instead of two); with more threads, one
    after another, each free to use the whole pool. Give calls of about equal work.

    The first call runs on the calling thread. The results are the same on any thread, but the
    arrays a call allocates come from its thread's malloc arena (glibc keeps one per thread), so
    placement decides where memory is reused: e.g. the feed-forward block's hidden gradient on a
    worker instead of the caller raised the reference training step's peak RSS by 3-8 MB."""
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


if _environment_error is None and os.environ.get("MINITF_NUM_THREADS", "").strip():
    set_num_threads(_threads)  # the environment's count caps BLAS too, as the call does
