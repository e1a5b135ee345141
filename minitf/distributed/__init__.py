"""Data-parallel training on several processes, machines or GPUs (MPI and NCCL).

    mpiexec -n 4 python my_training.py

    comm = minitf.distributed.init()            # "mpi" under mpiexec, else one process
    ddp = minitf.distributed.DistributedDataParallel(model, comm)

A layer above `optim` and below `train`: communicators (comm.py; backends mpi.py and
nccl.py, each imported only when asked for), DistributedDataParallel (ddp.py) and the
check that all processes were started alike (agreement.py).
"""
from __future__ import annotations

import os
import sys

from .agreement import check_resumed_processes, check_same_settings, digest
from .comm import DEFAULT_TIMEOUT, CommunicationError, Communicator, SingleProcess, Work, default_timeout
from .ddp import DistributedDataParallel

BACKENDS = ("auto", "single", "mpi", "nccl")
# Variables that MPI launchers set in every process they start (MPICH/Hydra, Open MPI, PMIx).
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def launched_by_mpi() -> bool:
    """True when this process was started by mpiexec/mpirun with more than one process."""
    return any(int(os.environ.get(v, "1") or 1) > 1 for v in _LAUNCHER_SIZE_VARIABLES)


def init(backend: str = "auto", timeout: float | None = None) -> Communicator:
    """A communicator: "mpi" (mpi4py), "nccl" (one GPU per process), "single", or "auto"
    ("mpi" when started by an MPI launcher with several processes, else "single").
    `timeout`: seconds a collective may wait (default: $MINITF_COLLECTIVE_TIMEOUT, else 300)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown distributed backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "mpi" if launched_by_mpi() else "single"
    if backend == "single":
        return SingleProcess()
    if backend == "mpi":
        from .mpi import MPICommunicator  # noqa: PLC0415 (mpi4py is optional)
        return MPICommunicator(timeout=timeout)
    from .nccl import NCCLCommunicator  # noqa: PLC0415 (CuPy is optional)
    return NCCLCommunicator(timeout=timeout)


def abort_job(code: int = 1) -> None:
    """End every process of the MPI job at once (MPI_Abort), after an error that the others may
    be waiting on, e.g. a collective that timed out because a rank hung. Returns (does nothing)
    when this process was not started by an MPI launcher with several processes."""
    if not launched_by_mpi():
        return
    try:
        from mpi4py import MPI  # noqa: PLC0415 (optional; under mpiexec it is what runs the job)
    except ImportError:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    MPI.COMM_WORLD.Abort(code)


__all__ = ["init", "launched_by_mpi", "abort_job", "default_timeout", "check_same_settings", "digest",
           "check_resumed_processes",
           "Communicator", "SingleProcess", "Work", "CommunicationError", "DistributedDataParallel",
           "DEFAULT_TIMEOUT", "BACKENDS"]
