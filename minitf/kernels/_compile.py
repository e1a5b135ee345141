"""Lazy compilation of the CUDA sources in `_source` with `cupy.RawModule`, cached.

Each module of `_source.SOURCES` is compiled once per (dtype, device), with every kernel
template of the module instantiated for that dtype through `name_expressions`.
CuPy is imported only when a kernel is first asked for.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .. import backend
from ._source import CTYPES, TEMPLATES, module_source

OPTIONS = ("-std=c++14",)

_lock = threading.Lock()
_modules: dict[tuple[str, str, int], Any] = {}
_functions: dict[tuple[str, str, str, int], Any] = {}


def ctype(dtype: Any) -> str:
    """"float" or "double" for float32 or float64; TypeError otherwise."""
    name = np.dtype(dtype).name
    if name not in CTYPES:
        raise TypeError(f"minitf.kernels: dtype {name} is not supported (float32 or float64 only)")
    return CTYPES[name]


def get_kernel(module: str, kernel: str, dtype: Any) -> Any:
    """The compiled `kernel<T>` of `module` for `dtype` on the current CUDA device."""
    cp = backend.cupy()
    t = ctype(dtype)
    device = cp.cuda.Device().id
    key = (module, kernel, t, device)
    fn = _functions.get(key)
    if fn is not None:
        return fn
    if kernel not in TEMPLATES[module]:
        raise KeyError(f"minitf.kernels: module {module!r} has no kernel {kernel!r}")
    with _lock:
        mkey = (module, t, device)
        mod = _modules.get(mkey)
        if mod is None:
            mod = cp.RawModule(code=module_source(module), options=OPTIONS,
                               name_expressions=[f"{k}<{t}>" for k in TEMPLATES[module]])
            _modules[mkey] = mod
        fn = mod.get_function(f"{kernel}<{t}>")
        _functions[key] = fn
    return fn


def clear_cache() -> None:
    """Forget the compiled modules (they are rebuilt, from CuPy's disk cache, on next use)."""
    with _lock:
        _modules.clear()
        _functions.clear()
