"""One line naming the machine and the BLAS kernel NumPy runs, for every benchmark's header.

The BLAS kernel matters: OpenBLAS picks AVX-512 kernels ("SkylakeX") on a machine that has
them, unless OPENBLAS_CORETYPE forces another (these benchmark machines set it to Haswell,
AVX2, about half the float32 matmul speed); run benchmarks with
`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/...`.
"""
from __future__ import annotations

import os
import platform

import numpy as np

FORCING_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_kernel() -> str:
    """NumPy's BLAS library, version and the kernel it selected (e.g. 'openblas 0.3.31 SkylakeX')."""
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415 (optional)
    except ImportError:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}, kernel unknown (pip install threadpoolctl to name it)"
    for info in threadpool_info():
        if info.get("user_api") == "blas" and "numpy" in info.get("filepath", ""):
            return f"{info['internal_api']} {info['version']} {info.get('architecture', '?')} kernels"
    return "BLAS not found by threadpoolctl"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """'CPU model, N cores; NumPy x (BLAS ...)', with a warning when a variable forces the kernel."""
    forced = [f"{v}={os.environ[v]}" for v in FORCING_VARIABLES if v in os.environ]
    warning = f"; WARNING: {' '.join(forced)} is set, forcing the BLAS kernel" if forced else ""
    return (f"{cpu_model()}, {os.cpu_count()} cores; NumPy {np.__version__} "
            f"({blas_kernel()}){warning}")


if __name__ == "__main__":
    print(describe())
