"""Host memory: let glibc's malloc keep freed memory for reuse."""
from __future__ import annotations

import ctypes

__all__ = ["retain_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
RETAINED_BLOCK_LIMIT = 1 << 30


def retain_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.

    Training frees and re-allocates the same activations every step. By default glibc maps
    large blocks (and trims the heap) on every step, so each step page-faults its memory in
    again: about a tenth of a CPU training step of the reference model (BENCHMARKS.md). This
    sets malloc's mmap and trim thresholds to 1 GiB for the whole process, so the process's
    memory stays at its peak instead of shrinking between steps. `minitf train` calls it;
    library users opt in. Returns False (and changes nothing) where the C library is not glibc.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, RETAINED_BLOCK_LIMIT)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, RETAINED_BLOCK_LIMIT))
