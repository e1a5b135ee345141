"""Lazy compilation of the CUDA sources (source.py, cuda/*.cu) with `cupy.RawModule`, cached.

Each module is compiled once per (dtype, device), with every kernel template of the module
instantiated for that dtype through `name_expressions` (the one place the dtype enters).
CuPy is imported only when a kernel is first asked for.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .. import backend
from .source import kernel_names, module_source

OPTIONS = ("-std=c++14",)
CTYPES = {"float32": "float", "float64": "double"}  # the template argument T of each dtype

_lock = threading.Lock()
_modules: dict[tuple[str, str, int], Any] = {}
_functions: dict[tuple[str, str, str, int], Any] = {}


def ctype(dtype: Any) -> str:
    """"float" or "double" for float32 or float64; TypeError otherwise."""
    name = np.dtype(dtype).name
    if name not in CTYPES:
        raise TypeError(f"minitf.kernels: dtype {name} is not supported (float32 or float64 only)")
    return CTYPES[name]


def name_expressions(module: str, t: str) -> list[str]:
    """Every kernel template of `module` instantiated for the C type `t`: ["softmax_fwd<float>", ...]."""
    return [f"{k}<{t}>" for k in kernel_names(module)]


def get_kernel(module: str, kernel: str, dtype: Any) -> Any:
    """The compiled `kernel<T>` of `module` for `dtype` on the current CUDA device."""
    cp = backend.cupy()
    t = ctype(dtype)
    device = cp.cuda.Device().id
    key = (module, kernel, t, device)
    fn = _functions.get(key)
    if fn is not None:
        return fn
    if kernel not in kernel_names(module):
        raise KeyError(f"minitf.kernels: module {module!r} has no kernel {kernel!r}")
    with _lock:
        mkey = (module, t, device)
        mod = _modules.get(mkey)
        if mod is None:
            mod = cp.RawModule(code=module_source(module), options=OPTIONS,
                               name_expressions=name_expressions(module, t))
            _modules[mkey] = mod
        fn = mod.get_function(f"{kernel}<{t}>")
        _functions[key] = fn
    return fn


def clear_cache() -> None:
    """Forget the compiled modules (they are rebuilt, from CuPy's disk cache, on next use)."""
    with _lock:
        _modules.clear()
        _functions.clear()
