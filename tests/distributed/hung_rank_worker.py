"""Rank 1 stops itself (SIGSTOP) before a collective, under the `minitf` command's error handling.

    MINITF_COLLECTIVE_TIMEOUT=2 mpiexec -n 2 python tests/distributed/hung_rank_worker.py PIDS

`minitf train` is replaced by a collective that rank 1 never joins: rank 0's times out, and
the command must print one error line and end the whole job, the stopped rank included.
Each rank writes its process id to PIDS.<rank>, so that the test can clean up if it does not.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from minitf import cli, distributed


def hang_on_rank_1(args) -> int:
    comm = distributed.init("mpi")
    Path(f"{sys.argv[1]}.{comm.rank}").write_text(str(os.getpid()))
    if comm.rank == 1:
        os.kill(os.getpid(), signal.SIGSTOP)
    comm.allreduce_numbers([1.0])
    return 0


if __name__ == "__main__":
    cli.cmd_train = hang_on_rank_1  # the real command line and its error handling, another command
    sys.exit(cli.main(["train"]))
