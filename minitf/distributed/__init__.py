"""Data-parallel training on several processes, machines or GPUs (MPI and NCCL).

    mpiexec -n 4 python my_training.py

    comm = minitf.distributed.init()            # "mpi" under mpiexec, else one process
    ddp = minitf.distributed.DistributedDataParallel(model, comm)

A layer above `optim` and below `train`: communicators (comm.py; backends mpi.py and
nccl.py, each imported only when asked for), DistributedDataParallel (ddp.py) and the
check that all processes were started alike (agreement.py).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

from ..errors import ConfigError
from .agreement import check_resumed_processes, check_same_settings, digest
from .comm import DEFAULT_TIMEOUT, CommunicationError, Communicator, SingleProcess, Work, default_timeout
from .ddp import DistributedDataParallel

BACKENDS = ("auto", "single", "mpi", "nccl")
# Variables that MPI launchers set in every process they start (MPICH/Hydra, Open MPI, PMIx).
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def launcher_processes() -> int:
    """How many processes the MPI launcher that started this one started (1: none, or one)."""
    sizes = [1]
    for variable in _LAUNCHER_SIZE_VARIABLES:
        with contextlib.suppress(ValueError):
            sizes.append(int(os.environ.get(variable, "1")))
    return max(sizes)


def launched_by_mpi() -> bool:
    """True when this process was started by mpiexec/mpirun with more than one process."""
    return launcher_processes() > 1


def init(backend: str = "auto", timeout: float | None = None) -> Communicator:
    """A communicator: "mpi" (mpi4py), "nccl" (one GPU per process), "single", or "auto"
    ("mpi" when started by an MPI launcher with several processes, else "single"; "single" is
    then a ConfigError: each process would train alone while the others wait for it).
    `timeout`: seconds a collective, and starting MPI, may wait (default:
    $MINITF_COLLECTIVE_TIMEOUT, else 300)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown distributed backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "mpi" if launched_by_mpi() else "single"
    if backend == "single":
        if launched_by_mpi():  # it would train alone, and its partners would wait for it
            raise ConfigError(f"backend 'single', but this process was started by an MPI launcher with "
                              f"{launcher_processes()} processes; use --backend mpi or auto, or run without "
                              f"mpiexec")
        return SingleProcess()
    if backend == "mpi":
        from .mpi import MPICommunicator  # noqa: PLC0415 (mpi4py is optional)
        return MPICommunicator(timeout=timeout)
    from .nccl import NCCLCommunicator  # noqa: PLC0415 (CuPy is optional)
    return NCCLCommunicator(timeout=timeout)


ABORT_GRACE_SECONDS = 0.5


def abort_job(code: int = 1) -> None:
    """End every process of the MPI job at once (MPI_Abort), after an error that the others may
    be waiting on, e.g. a collective that timed out because a rank hung. Returns (does nothing)
    when this process was not started by an MPI launcher with several processes."""
    if not launched_by_mpi():
        return
    try:
        seconds = default_timeout()
    except ConfigError:  # the error being reported, perhaps
        seconds = DEFAULT_TIMEOUT
    from .mpi import import_mpi  # noqa: PLC0415 (the MPI backend is imported only when needed)

    try:
        # Started here if not yet: a process that exits without starting MPI does not end the
        # job, and the others may be waiting for it to start MPI.
        MPI = import_mpi(seconds)
    except ImportError:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # The launcher forwards each process's output asynchronously and drops what it has not yet
    # forwarded when the job aborts: give it a moment, so that the error line reaches the user.
    time.sleep(ABORT_GRACE_SECONDS)
    MPI.COMM_WORLD.Abort(code)


__all__ = ["init", "launched_by_mpi", "launcher_processes", "abort_job", "default_timeout", "check_same_settings",
           "digest", "check_resumed_processes",
           "Communicator", "SingleProcess", "Work", "CommunicationError", "DistributedDataParallel",
           "DEFAULT_TIMEOUT", "BACKENDS"]
