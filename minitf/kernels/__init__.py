"""Fused CUDA kernels for CuPy arrays: softmax, log-softmax, cross-entropy, layer norm,
GELU, dropout and Adam/AdamW, each one kernel (or two) instead of a chain of CuPy ops.

    from minitf import kernels
    if kernels.available(x):          # a C-contiguous CuPy float32/float64 array
        y = kernels.softmax_forward(x)
    else:
        ...                           # the generic xp code

The kernels are CUDA C templates (float and double) in the package data cuda/*.cu (read by
`source`), compiled lazily with `cupy.RawModule` the first time each is used and cached per
dtype and device; ops.py and adam.py launch them. Importing this package never imports
CuPy. `set_tf32` switches CuPy's float32 matmuls to TF32.
"""
from __future__ import annotations

import os
import warnings

from .. import backend
from .adam import ADAM_CHUNK, adam_update, adam_update_multi
from .ops import (available, cross_entropy_backward, cross_entropy_forward, dropout_forward, gelu_backward,
                  gelu_forward, layer_norm_backward, layer_norm_forward, log_softmax_backward,
                  log_softmax_forward, softmax_backward, softmax_forward)

__all__ = [
    "available", "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
    "cross_entropy_forward", "cross_entropy_backward", "layer_norm_forward", "layer_norm_backward",
    "gelu_forward", "gelu_backward", "dropout_forward", "adam_update", "adam_update_multi", "ADAM_CHUNK",
    "set_tf32", "tf32_enabled",
]


def set_tf32(enabled: bool) -> bool:
    """Let CuPy's float32 matrix products use TF32 tensor cores (or stop them); return whether
    TF32 is now in effect for float32 matmuls.

    What it does: CuPy picks the cuBLAS compute type of float32 (and complex64) GEMMs -- the
    ones behind `@`/matmul, dot, tensordot and einsum's contractions -- from a process-wide
    setting, `cupy._core._routines_linalg.set_compute_type`. That setting starts undecided
    and is fixed from the CUPY_TF32 environment variable ("1": TF32) the first time a float32
    matmul runs, not at `import cupy`; afterwards the variable is no longer read. This
    function therefore does both: it sets CUPY_TF32 (which covers a CuPy not yet imported,
    and child processes) and, when CuPy and a GPU are usable, sets the compute type directly,
    so it takes effect at once whatever has run before.

    Limits: TF32 needs compute capability 8.0 or newer (Ampere+); on an older GPU CuPy warns
    and keeps the default, and this returns False. It rounds the GEMM inputs to a 10-bit
    mantissa (float32 accumulation), about 1e-3 relative error per product instead of 1e-7,
    so gradchecks and tight float32 comparisons must run with it off. It changes only cuBLAS
    GEMMs: float64, elementwise ops, reductions and the kernels of this package are unaffected.
    It is process-wide (every device and thread), uses CuPy-internal API (checked against
    CuPy 13/14; if that API is missing only the environment variable is set), and
    NVIDIA_TF32_OVERRIDE=0 in the environment disables TF32 in cuBLAS whatever is set here.
    Without CuPy or a GPU only the environment variable is set and False is returned.
    """
    os.environ["CUPY_TF32"] = "1" if enabled else "0"
    try:
        backend.cupy()
        from cupy._core import _routines_linalg as linalg  # noqa: PLC0415 (CuPy-internal)
    except (backend.DeviceError, ImportError):
        return False
    import numpy as np  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "only available on compute capability >= 8.0": reported by the result
        linalg.set_compute_type(np.float32, linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT)
    return tf32_enabled()


def tf32_enabled() -> bool:
    """Whether CuPy's float32 matmuls use TF32 now (False without CuPy or a GPU)."""
    try:
        backend.cupy()
        from cupy._core import _routines_linalg as linalg  # noqa: PLC0415
    except (backend.DeviceError, ImportError):
        return False
    import numpy as np  # noqa: PLC0415

    return int(linalg.get_compute_type(np.float32)) == int(linalg.COMPUTE_TYPE_TF32)
