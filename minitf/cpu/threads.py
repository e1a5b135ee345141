"""How many CPU threads minitf may use: the rule for a count and the default from the environment.

`minitf.cpu.pool` runs its pool on this count; `set_num_threads(n)` and MINITF_NUM_THREADS are
held to one rule (check_count), OMP_NUM_THREADS only suggests a count.
"""
from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigError


def max_threads() -> int:
    """The most threads set_num_threads (and MINITF_NUM_THREADS) accepts: 4 per CPU of this
    machine. The pool's work is CPU-bound, so threads beyond the CPUs only take turns on them;
    4x leaves room to test counts above the CPUs (e.g. 3 threads on 2 CPUs), not to start
    hundreds of idle workers."""
    return 4 * (os.cpu_count() or 1)


def check_count(n: Any, what: str, shown: Any = None) -> int:
    """n if it is an int from 1 to max_threads(), else ConfigError naming `what` and the value."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= max_threads():
        raise ConfigError(f"{what} must be a positive int of at most {max_threads()} (4 threads per CPU "
                          f"of this machine), got {n if shown is None else shown!r}")
    return n


def _environment_threads() -> int | None:
    """MINITF_NUM_THREADS, checked as set_num_threads checks its n; None when unset."""
    text = os.environ.get("MINITF_NUM_THREADS", "").strip()
    if not text:
        return None
    try:
        n: Any = int(text)
    except ValueError:
        n = None
    return check_count(n, "environment variable MINITF_NUM_THREADS", shown=text)


def _omp_threads() -> int | None:
    """OMP_NUM_THREADS's first number ("4,2" sets nested levels), at most max_threads(); None
    when unset or not understood: other libraries read it too, so it is theirs to refuse."""
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    try:
        n = int(first)
    except ValueError:
        return None
    return min(n, max_threads()) if n >= 1 else None


def default_threads() -> int:
    """MINITF_NUM_THREADS (ConfigError if invalid), else OMP_NUM_THREADS, else this process's
    share of the CPUs it may use."""
    n = _environment_threads() or _omp_threads()
    if n is not None:
        return n
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus // _processes_on_this_machine())


# Set by MPI launchers in each process: how many processes they started on this machine
# (MPICH/Hydra, Open MPI). Those processes share the CPUs.
_LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")


def _processes_on_this_machine() -> int:
    for var in _LOCAL_SIZE_VARIABLES:
        try:
            return max(1, int(os.environ.get(var, "")))
        except ValueError:
            continue
    return 1
