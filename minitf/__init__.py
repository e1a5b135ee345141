"""minitf: a framework-free Transformer engine on NumPy (CPU) and CuPy (GPU).

Layers, each importing only the ones before it:
backend (+ parallel) -> autograd -> serialization -> functional -> nn -> optim -> translate -> train -> cli,
with tokenizer and data standing alone (NumPy and the standard library only).
`import minitf` loads the engine, functional, nn and optim; the rest on first import.
"""
from . import backend
from .autograd import (Tensor, abs, concat, exp, is_grad_enabled, log, masked_fill, matmul, max,
                       mean, min, no_grad, ones, randn, relu, reshape, sigmoid, split, sqrt, stack,
                       sum, swapaxes, tanh, tensor, transpose, where, zeros)
from .autograd import (clamp, clip, cos, cumprod, cumsum, einsum, expm1, log1p, logsumexp,
                       maximum, minimum, norm, sin, std, var)
from .autograd import (arange, bernoulli, empty, empty_like, eye, full, full_like, linspace,
                       multinomial, ones_like, rand, randint, randperm, zeros_like)
from .autograd import (argmax, argmin, argsort, clone, expand_dims, flatten, flip, gather,
                       index_select, one_hot, pad, repeat, repeat_interleave, roll, scatter_add, sort,
                       squeeze, take, take_along_axis, tile, topk, tril, triu, unsqueeze)
from .autograd import as_tensor, from_numpy
from .backend import DeviceError
from .rng import manual_seed
from .cpu import get_num_threads, set_num_threads
from .gradcheck import GradcheckError, gradcheck
from .serialization import CheckpointError, load, save
from . import functional, nn, optim  # noqa: E402 (after the engine they build on)

__version__ = "0.1.0"

__all__ = [
    "from_numpy", "as_tensor",
    "Tensor", "tensor", "no_grad", "is_grad_enabled", "zeros", "ones", "randn", "manual_seed",
    "gradcheck", "GradcheckError", "DeviceError", "backend", "functional", "nn", "optim", "exp", "log", "sqrt", "tanh",
    "sigmoid", "relu", "abs", "sum", "mean", "max", "min", "matmul", "reshape", "transpose",
    "swapaxes", "concat", "stack", "split", "where", "masked_fill", "save", "load", "CheckpointError",
    "sin", "cos", "log1p", "expm1", "clip", "clamp", "maximum", "minimum", "cumsum", "cumprod",
    "logsumexp", "var", "std", "norm", "einsum", "arange", "linspace", "full", "empty",
    "zeros_like", "ones_like", "full_like", "empty_like", "eye", "rand", "randint", "randperm",
    "multinomial", "bernoulli",
    "argmax", "argmin", "argsort", "sort", "topk", "take_along_axis", "gather", "scatter_add", "take",
    "index_select", "one_hot", "expand_dims", "unsqueeze", "squeeze", "flatten", "flip", "clone", "roll",
    "tile", "repeat", "repeat_interleave", "pad", "tril", "triu", "get_num_threads", "set_num_threads",
]
