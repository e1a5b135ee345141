"""The MPI backend (mpi4py): CPUs, clusters, and GPUs through a CUDA-aware MPI.

    mpiexec -n 4 python train.py        # or: mpiexec -n 4 minitf train ...

Install with `pip install ".[mpi]"` from the minitf checkout (mpi4py and the `mpich`
wheel, which brings `mpiexec`; no system MPI needed). Every collective is non-blocking
underneath (Iallreduce, Ibcast, Ibarrier) and waited on with a timeout.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import backend
from .comm import DEFAULT_TIMEOUT, Communicator, Work

MPI_HINT = 'install it from the minitf checkout with `pip install ".[mpi]"` (mpi4py and the mpich wheel)'


def import_mpi() -> Any:
    """The `mpi4py.MPI` module, or an ImportError that says how to install it."""
    try:
        from mpi4py import MPI  # noqa: PLC0415 (optional dependency)
    except ImportError as exc:
        raise ImportError(f"the MPI backend needs mpi4py, which is not installed: {MPI_HINT}") from exc
    return MPI


class MPICommunicator(Communicator):
    """Collectives over an MPI communicator (default: COMM_WORLD).

    CuPy arrays go through host copies unless `cuda_aware=True` says that the MPI library
    reads GPU memory itself (MPI has no portable way to ask).
    """

    name = "mpi"

    def __init__(self, comm: Any = None, timeout: float = DEFAULT_TIMEOUT, cuda_aware: bool = False) -> None:
        self.MPI = import_mpi()
        self.comm = comm if comm is not None else self.MPI.COMM_WORLD
        self.rank, self.size, self.timeout = self.comm.Get_rank(), self.comm.Get_size(), timeout
        self.cuda_aware = cuda_aware

    def iallreduce(self, array: Any) -> Work:
        buffer, copy_back = self._buffer(array)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        return Work(request.Test, f"all-reduce of {array.size} values on rank {self.rank}",
                    self.timeout, copy_back)

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
