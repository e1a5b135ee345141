"""The MPI backend (mpi4py): CPUs, clusters, and GPUs through a CUDA-aware MPI.

    mpiexec -n 4 python train.py        # or: mpiexec -n 4 minitf train ...

Install with `pip install ".[mpi]"` from the minitf checkout (mpi4py and the `mpich`
wheel, which brings `mpiexec`; no system MPI needed). Every collective is non-blocking
underneath (Iallreduce, Ibcast, Ibarrier) and waited on with a timeout; so is starting MPI,
which waits for every process of the job (`import_mpi`).
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from typing import Any, Iterator, Sequence

import numpy as np

from .. import backend
from .comm import TIMEOUT_VARIABLE, Communicator, Work, default_timeout

MPI_HINT = 'install it from the minitf checkout with `pip install ".[mpi]"` (mpi4py and the mpich wheel)'


def import_mpi(timeout: float | None = None) -> Any:
    """The `mpi4py.MPI` module, MPI started, or an ImportError that says how to install it.

    Starting MPI (MPI_Init) waits for every process of the job, like a collective, so it too
    gives up after `timeout` seconds (default: $MINITF_COLLECTIVE_TIMEOUT, else 300): when one
    process exits without starting MPI, the others would otherwise wait forever.
    """
    if "mpi4py.MPI" in sys.modules:
        return sys.modules["mpi4py.MPI"]
    seconds = default_timeout() if timeout is None else timeout
    try:
        import mpi4py  # noqa: PLC0415, F401 (optional dependency; importing it starts nothing)
    except ImportError as exc:
        raise ImportError(f"the MPI backend needs mpi4py, which is not installed: {MPI_HINT}") from exc
    with _end_process_after(seconds, f"minitf: error: starting MPI did not complete within {seconds:g} s: "
                                     f"another process of the job has probably exited without starting MPI "
                                     f"(e.g. it ran with --backend single), died or hung (if start-up is that "
                                     f"slow, set {TIMEOUT_VARIABLE} to more seconds)"):
        from mpi4py import MPI  # noqa: PLC0415
    return MPI


# Run by a watchdog process: wait until its stdin closes (its parent is done or dead) or the
# time is up; then write the message and kill the parent.
_WATCHDOG = """import os, select, signal, sys
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if not select.select([sys.stdin], [], [], seconds)[0]:
    os.write(2, (message + "\\n").encode())
    os.kill(parent, signal.SIGKILL)
"""


@contextlib.contextmanager
def _end_process_after(seconds: float, message: str) -> Iterator[None]:
    """Kill this process, `message` on stderr (one line), unless the block ends within `seconds`.

    The watchdog is another process: MPI_Init holds the GIL while it waits, so no thread of
    this one could act (and a signal handler would run only after MPI_Init returned).
    """
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), repr(seconds), message],
                                stdin=subprocess.PIPE)
    try:
        yield
    finally:
        watchdog.stdin.close()  # the watchdog sees end of input and exits
        watchdog.wait()


class MPICommunicator(Communicator):
    """Collectives over an MPI communicator (default: COMM_WORLD).

    CuPy arrays go through host copies unless `cuda_aware=True` says that the MPI library
    reads GPU memory itself (MPI has no portable way to ask).
    """

    name = "mpi"

    def __init__(self, comm: Any = None, timeout: float | None = None, cuda_aware: bool = False) -> None:
        self.timeout = default_timeout() if timeout is None else timeout
        self.MPI = import_mpi(self.timeout)
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.cuda_aware = cuda_aware
        # A helper thread may call MPI only if MPI was started for threads (mpi4py asks for that)
        threads_ok = self.MPI.Query_thread() == self.MPI.THREAD_MULTIPLE
        self._progress = _ProgressThread(self.comm, self.MPI) if threads_ok else None

    def iallreduce(self, array: Any) -> Work:
        buffer, copy_back = self._buffer(array)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        if self._progress is not None:
            self._progress.start_one()

        def finished() -> None:
            if self._progress is not None:
                self._progress.end_one()
            if copy_back is not None:
                copy_back()
        return Work(request.Test, f"all-reduce of {array.size} values on rank {self.rank}",
                    self.timeout, finished)

    def broadcast(self, array: Any, root: int = 0) -> Any:
        buffer, copy_back = self._buffer(array)
        Work(self.comm.Ibcast(buffer, root=root).Test, f"broadcast from rank {root}", self.timeout,
             copy_back).wait()
        return array

    def allreduce_numbers(self, values: Sequence[float], timeout: float | None = None) -> list[float]:
        array = np.asarray(values, dtype=np.float64)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM)
        Work(request.Test, f"all-reduce of {len(array)} numbers on rank {self.rank}",
             self.timeout if timeout is None else timeout).wait()
        return array.tolist()

    def barrier(self) -> None:
        Work(self.comm.Ibarrier().Test, f"barrier on rank {self.rank}", self.timeout).wait()

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)

    def _buffer(self, array: Any) -> tuple[Any, Any]:
        """What MPI reads and writes for `array`, and what copies the result back (or None).

        A CUDA-aware MPI takes CuPy arrays directly once the stream that wrote them has
        finished; another MPI gets a host copy.
        """
        if not backend.is_cupy_array(array):
            if not array.flags.c_contiguous:
                raise ValueError("MPI collectives need C-contiguous arrays")
            return array, None
        backend.cupy().cuda.get_current_stream().synchronize()
        if self.cuda_aware:
            return array, None
        host = backend.to_device(array, "cpu")
        return host, lambda: array.set(host)


class _ProgressThread:
    """Moves all-reduces in flight forward while the main thread computes.

    MPI libraries without a progress thread of their own (MPICH's default) move data only
    inside MPI calls; a transfer started during backward would then mostly wait for
    `finish()`. While any all-reduce is in flight, this thread makes a cheap MPI call
    (Iprobe for a tag nobody sends) every 200 us, sleeping in between (so it takes little CPU).
    """

    TAG = 31_337
    PERIOD = 2e-4

    def __init__(self, comm: Any, MPI: Any) -> None:
        self._comm, self._MPI = comm, MPI
        self._in_flight = 0
        self._wake = threading.Condition()
        thread = threading.Thread(target=self._run, name="minitf-mpi-progress", daemon=True)
        thread.start()

    def start_one(self) -> None:
        with self._wake:
            self._in_flight += 1
            self._wake.notify()

    def end_one(self) -> None:
        with self._wake:
            self._in_flight -= 1

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._in_flight == 0:
                    self._wake.wait()
            self._comm.Iprobe(source=self._MPI.ANY_SOURCE, tag=self.TAG)
            time.sleep(self.PERIOD)
