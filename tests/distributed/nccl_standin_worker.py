"""NCCLCommunicator on a CPU stand-in for CuPy and cupyx.distributed; run under mpiexec.

    mpiexec -n 2 python tests/distributed/nccl_standin_worker.py

The stand-in's NCCL all-reduce and broadcast are MPI's (mpi4py), its streams and events
record what waits on what. Checks the backend's collectives and stream discipline, and
prints "ok" on rank 0.
"""
from __future__ import annotations

import sys
import types

import numpy as np
from mpi4py import MPI

log: list[str] = []


class Event:
    def __init__(self, name: str) -> None:
        self.name, self.done = name, True


class Stream:
    count = 0

    def __init__(self, non_blocking: bool = False, name: str | None = None) -> None:
        Stream.count += 1
        self.name = name or f"side{Stream.count}"

    def record(self) -> Event:
        return Event(self.name)

    def wait_event(self, event: Event) -> None:
        log.append(f"{self.name} waits for {event.name}")


class Backend:
    def __init__(self, n_devices: int, rank: int, use_mpi: bool) -> None:
        assert use_mpi and n_devices == MPI.COMM_WORLD.Get_size() and rank == MPI.COMM_WORLD.Get_rank()

    def all_reduce(self, in_array, out_array, op="sum", stream=None):
        assert op == "sum" and in_array is out_array
        log.append(f"all_reduce on {stream.name if stream else 'default'}")
        MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, out_array, op=MPI.SUM)

    def broadcast(self, array, root=0, stream=None):
        MPI.COMM_WORLD.Bcast(array, root=root)

    def barrier(self):
        MPI.COMM_WORLD.Barrier()


class FakeArray(np.ndarray):
    def get(self):
        return np.asarray(self)


def install() -> None:
    default = Stream(name="compute")
    cp = types.ModuleType("cupy")
    cp.ndarray = FakeArray
    cp.asarray = lambda a, dtype=None: np.array(a, dtype=dtype).view(FakeArray)
    cp.cuda = types.SimpleNamespace(
        Stream=Stream, get_current_stream=lambda: default,
        Device=lambda i: types.SimpleNamespace(use=lambda: log.append(f"device {i}")),
        runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    distributed = types.ModuleType("cupyx.distributed")
    distributed.init_process_group = lambda n, rank, use_mpi=False: Backend(n, rank, use_mpi)
    cupyx = types.ModuleType("cupyx")
    cupyx.distributed = distributed
    sys.modules.update({"cupy": cp, "cupyx": cupyx, "cupyx.distributed": distributed})


def main() -> None:
    install()
    from minitf.distributed import init

    comm = init("nccl", timeout=10)
    rank, size = comm.rank, comm.size
    assert (rank, size) == (MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size())
    grad = np.full(5, rank + 1.0).view(FakeArray)
    work = comm.iallreduce(grad)
    work.wait()
    assert np.all(grad == size * (size + 1) / 2), grad
    side = comm.stream.name  # the all-reduce runs on the side stream, between two waits
    assert log[-3:] == [f"{side} waits for compute", f"all_reduce on {side}", f"compute waits for {side}"], log
    weights = np.full(3, float(rank)).view(FakeArray)
    comm.broadcast(weights, 0)
    assert np.all(weights == 0.0)
    assert comm.allreduce_numbers([1, rank]) == [size, size * (size - 1) / 2]
    comm.barrier()
    if rank == 0:
        print("ok")


if __name__ == "__main__":
    main()
