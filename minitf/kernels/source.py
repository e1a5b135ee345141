"""The CUDA C sources of the fused kernels, read from the package data in cuda/ (no CuPy needed).

cuda/common.cuh holds the shared device code and the conventions; each cuda/<module>.cu is a
module, compiled as one translation unit per dtype: the MINITF_* #defines of
constants.CUDA_DEFINES, then common.cuh, then the module. Every kernel is a template over T,
declared `template <typename T>` then `__global__ void NAME(`; the names are parsed from there.
"""
from __future__ import annotations

import functools
import re
from importlib import resources

from .constants import CUDA_DEFINES

__all__ = ["modules", "kernel_names", "module_source", "read"]

COMMON = "common.cuh"
_KERNEL = re.compile(r"^template <typename T>\s*\n__global__ void (\w+)\(", re.M)


@functools.cache
def read(filename: str) -> str:
    """The text of cuda/<filename>, shipped as package data."""
    return (resources.files(__package__) / "cuda" / filename).read_text(encoding="utf-8")


@functools.cache
def modules() -> tuple[str, ...]:
    """The module names: one per cuda/*.cu file, sorted."""
    files = (f.name for f in (resources.files(__package__) / "cuda").iterdir())
    return tuple(sorted(name[:-3] for name in files if name.endswith(".cu")))


def _module_file(module: str) -> str:
    if module not in modules():
        raise KeyError(f"minitf.kernels: no CUDA module {module!r} (modules: {', '.join(modules())})")
    return f"{module}.cu"


@functools.cache
def kernel_names(module: str) -> tuple[str, ...]:
    """The kernel templates that cuda/<module>.cu defines, in source order."""
    return tuple(_KERNEL.findall(read(_module_file(module))))


def defines() -> str:
    """The #define lines of the shared constants, one per line."""
    return "".join(f"#define MINITF_{name} {value!r}\n" for name, value in CUDA_DEFINES.items())


@functools.cache
def module_source(module: str) -> str:
    """The full translation unit of `module`: the constants' #defines, common.cuh, <module>.cu."""
    return defines() + read(COMMON) + read(_module_file(module))
