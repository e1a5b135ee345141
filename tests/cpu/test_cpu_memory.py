"""minitf.cpu.memory: glibc keeps freed memory for reuse when asked."""
import pathlib
import subprocess
import sys

import pytest

RETENTION_PROBE = """
import sys
import numpy as np
from minitf.cpu import memory

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

if sys.argv[1] == "retain" and not memory.retain_freed_memory():
    print("unsupported")
    raise SystemExit
before = rss_mb()
block = np.ones(200 * 2**20 // 8)  # 200 MB, every page touched
del block
print(rss_mb() - before)
"""


@pytest.mark.skipif(not pathlib.Path("/proc/self/status").exists(), reason="reads RSS from /proc (Linux)")
def test_retain_freed_memory_keeps_a_freed_block_for_reuse():
    def run(mode):
        done = subprocess.run([sys.executable, "-c", RETENTION_PROBE, mode], capture_output=True, text=True,
                              check=True)
        return done.stdout.strip()

    retained = run("retain")
    if retained == "unsupported":
        pytest.skip("the C library is not glibc")
    assert float(retained) > 150  # the freed 200 MB stay mapped, ready for the next step
    assert float(run("default")) < 50  # by default glibc hands them back to the kernel
