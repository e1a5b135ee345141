"""The NCCL backend: one GPU per process, collectives through `cupyx.distributed`.

    mpiexec -n 8 minitf train --device cuda --backend nccl ...

Ranks and the number of processes come from MPI when the processes were started by an
MPI launcher (NCCL's rendezvous then goes through MPI too); otherwise from the RANK and
WORLD_SIZE variables, with the rendezvous through cupyx's TCP store on
CUPYX_DISTRIBUTED_HOST:CUPYX_DISTRIBUTED_PORT (rank 0's machine). Each process uses GPU
`local rank % GPUs on the machine`. All-reduces run on a side stream that first waits
for the compute stream, so they overlap the rest of the backward pass.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

from .. import backend
from .comm import Communicator, Work, default_timeout


def _rank_and_size(timeout: float) -> tuple[int, int, bool]:
    """(rank, size, use_mpi) from an MPI launcher (MPI started within `timeout` seconds) or from
    RANK/WORLD_SIZE."""
    from . import launched_by_mpi  # noqa: PLC0415 (the package imports this module lazily)

    if launched_by_mpi():
        from .mpi import import_mpi  # noqa: PLC0415
        world = import_mpi(timeout).COMM_WORLD
        return world.Get_rank(), world.Get_size(), True
    try:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), False
    except KeyError:
        raise RuntimeError("the NCCL backend needs several processes: start them with mpiexec, "
                           "or set RANK and WORLD_SIZE in each") from None


def _local_rank(rank: int) -> int:
    for variable in ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "LOCAL_RANK"):
        if variable in os.environ:
            return int(os.environ[variable])
    return rank


class NCCLCommunicator(Communicator):
    """Collectives among GPUs with NCCL (cupyx.distributed.NCCLBackend)."""

    name = "nccl"

    def __init__(self, timeout: float | None = None) -> None:
        cp = backend.cupy()
        import cupyx.distributed  # noqa: PLC0415 (optional, with CuPy)

        self.timeout = default_timeout() if timeout is None else timeout
        self.rank, self.size, use_mpi = _rank_and_size(self.timeout)
        cp.cuda.Device(_local_rank(self.rank) % cp.cuda.runtime.getDeviceCount()).use()
        self.comm = cupyx.distributed.init_process_group(self.size, self.rank, use_mpi=use_mpi)
        self.stream = cp.cuda.Stream(non_blocking=True)
        self._cp = cp

    def iallreduce(self, array: Any, timeout: float | None = None) -> Work:
        cp = self._cp
        self.stream.wait_event(cp.cuda.get_current_stream().record())  # the gradient is written
        self.comm.all_reduce(array, array, op="sum", stream=self.stream)
        done = self.stream.record()
        return Work(lambda: done.done, f"NCCL all-reduce of {array.size} values on rank {self.rank}",
                    self.timeout if timeout is None else timeout,
                    lambda: cp.cuda.get_current_stream().wait_event(done))

    def broadcast(self, array: Any, root: int = 0) -> Any:
        self.comm.broadcast(array, root)
        return array

    def allreduce_numbers(self, values: Sequence[float], timeout: float | None = None) -> list[float]:
        array = self._cp.asarray(values, dtype="float64")
        self.iallreduce(array, timeout).wait()
        return array.get().tolist()

    def barrier(self) -> None:
        self.comm.barrier()

    def abort(self, code: int = 1) -> None:
        os._exit(code)  # NCCL has no job-wide abort: the others stop at their next timeout
