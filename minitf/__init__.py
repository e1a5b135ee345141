"""minitf: a framework-free Transformer engine on NumPy (CPU) and CuPy (GPU).

Layers, each importing only the ones before it:
backend -> autograd -> functional -> nn -> optim -> (tokenizer, data) -> translate -> train -> cli.
"""
from . import backend
from .autograd import (Tensor, abs, concat, exp, is_grad_enabled, log, masked_fill, matmul, max,
                       mean, min, no_grad, ones, randn, relu, reshape, sigmoid, split, sqrt, stack,
                       sum, swapaxes, tanh, tensor, transpose, where, zeros)
from .backend import DeviceError, manual_seed
from .gradcheck import GradcheckError, gradcheck

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "no_grad", "is_grad_enabled", "zeros", "ones", "randn", "manual_seed",
    "gradcheck", "GradcheckError", "DeviceError", "backend", "exp", "log", "sqrt", "tanh",
    "sigmoid", "relu", "abs", "sum", "mean", "max", "min", "matmul", "reshape", "transpose",
    "swapaxes", "concat", "stack", "split", "where", "masked_fill",
]
