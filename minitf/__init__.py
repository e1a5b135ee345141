"""minitf: a framework-free Transformer engine on NumPy (CPU) and CuPy (GPU).

The layers, each importing only those below it, are drawn in README's Architecture section
(tests/test_structure.py checks the picture against the code). `import minitf` loads the engine
(autograd, functional, nn, optim); the rest, and the translation application, on first import.
"""
from . import backend
from .autograd import Tensor, enable_grad, is_grad_enabled, no_grad, op_table, set_grad_enabled
globals().update(op_table.exports("minitf"))  # minitf.exp, minitf.sum, minitf.zeros, ... (op_table.py)
from .backend import DeviceError
from .rng import manual_seed
from .cpu import get_num_threads, set_num_threads
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .serialization import CheckpointError, load, save
from . import functional, nn, optim  # noqa: E402 (after the engine they build on)
globals().update(op_table.exports("minitf", functional.FUNCTIONAL_OPS))  # minitf.softmax, minitf.log_softmax

__version__ = "0.1.0"

__all__ = [
    "Tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "manual_seed", "gradcheck", "gradgradcheck", "GradcheckError", "DeviceError",
    "backend", "functional", "nn", "optim", "save", "load", "CheckpointError", "get_num_threads",
    "set_num_threads", *op_table.exports("minitf"), *op_table.exports("minitf", functional.FUNCTIONAL_OPS),
]
