"""Communicators: the collective operations that data-parallel training needs.

A communicator joins `size` processes, numbered by `rank`. Data-parallel training needs
few collectives (ChainerMN's and Horovod's design): a sum all-reduce of gradient buffers
that can run in the background (`iallreduce`, waited on later), a broadcast of the
initial weights, a small all-reduce of Python numbers (token counts, stop flags) and a
barrier. Every wait has a timeout, so that a rank that died or hangs makes the others
fail with a clear error instead of waiting forever.

Backends: `SingleProcess` (size 1, everything a no-op), `minitf.distributed.mpi`
(mpi4py, any MPI) and `minitf.distributed.nccl` (NCCL through cupyx.distributed).
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Sequence

from ..errors import ConfigError, UserError

DEFAULT_TIMEOUT = 300.0  # seconds a collective may wait for the other ranks
TIMEOUT_VARIABLE = "MINITF_COLLECTIVE_TIMEOUT"  # overrides DEFAULT_TIMEOUT when set


class CommunicationError(UserError, RuntimeError):
    """A collective failed or timed out (another rank died, hung or was interrupted).

    The `minitf` command prints it as one error line and then ends the whole job
    (`minitf.distributed.abort_job`), so that no process waits for a hung one forever.
    """


def default_timeout() -> float:
    """Seconds a collective may wait: $MINITF_COLLECTIVE_TIMEOUT if set, else DEFAULT_TIMEOUT."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"{TIMEOUT_VARIABLE} must be a number of seconds > 0, got {text!r}")
    return seconds


class Work:
    """A collective in flight: `wait()` blocks until it is done (or raises on timeout)."""

    def __init__(self, is_done: Callable[[], bool], what: str, timeout: float,
                 on_done: Callable[[], None] | None = None) -> None:
        self._is_done, self._what, self._timeout, self._on_done = is_done, what, timeout, on_done
        self._finished = False

    def poll(self) -> bool:
        """True once done; never blocks. Calling it lets MPI progress a transfer in flight
        (MPI libraries without a progress thread move data only inside MPI calls)."""
        return self._finished or bool(self._is_done())

    def wait(self) -> None:
        if not self._finished:
            wait_until(self._is_done, self._what, self._timeout)
            self._finished = True
            if self._on_done is not None:
                self._on_done()


class CompletedWork(Work):
    """A collective that finished when it was started (single process, blocking backends)."""

    def __init__(self) -> None:
        super().__init__(lambda: True, "nothing", 0.0)


def wait_until(is_done: Callable[[], bool], what: str, timeout: float) -> None:
    """Poll `is_done` until it is true or `timeout` passes: busily for 2 ms (small messages
    finish within microseconds), then sleeping 10 us .. 1 ms between polls."""
    start = time.monotonic()
    pause = 1e-5
    while not is_done():
        waited = time.monotonic() - start
        if waited > timeout:
            raise CommunicationError(
                f"{what} did not complete within {timeout:g} s: another rank has probably died, "
                f"hung or stopped early (if a step is that slow, set {TIMEOUT_VARIABLE} to more seconds)")
        if waited > 2e-3:
            time.sleep(pause)
            pause = min(pause * 2, 1e-3)


class Communicator:
    """The interface every backend implements; arrays are NumPy (or CuPy for GPU backends)."""

    rank: int = 0
    size: int = 1
    name: str = "single"
    timeout: float = DEFAULT_TIMEOUT

    def iallreduce(self, array: Any) -> Work:
        """Start summing `array` over all ranks, in place; the result is there after `wait()`."""
        raise NotImplementedError

    def allreduce(self, array: Any) -> Any:
        """Sum `array` over all ranks, in place, and return it."""
        self.iallreduce(array).wait()
        return array

    def broadcast(self, array: Any, root: int = 0) -> Any:
        """Overwrite `array` on every rank with root's `array`, in place, and return it."""
        raise NotImplementedError

    def allreduce_numbers(self, values: Sequence[float], timeout: float | None = None) -> list[float]:
        """Sum a few Python numbers over all ranks (token counts, loss sums, stop flags); wait at
        most `timeout` seconds (default: the communicator's), e.g. longer while rank 0 evaluates."""
        raise NotImplementedError

    def barrier(self) -> None:
        raise NotImplementedError

    def abort(self, code: int = 1) -> None:
        """End every rank's process at once (after an error that the others cannot see)."""
        raise SystemExit(code)

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs, evaluates and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class SingleProcess(Communicator):
    """One process: every collective returns its input."""

    def iallreduce(self, array: Any) -> Work:
        return CompletedWork()

    def broadcast(self, array: Any, root: int = 0) -> Any:
        return array

    def allreduce_numbers(self, values: Sequence[float], timeout: float | None = None) -> list[float]:
        return list(values)

    def barrier(self) -> None:
        pass
