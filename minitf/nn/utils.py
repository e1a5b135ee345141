"""torch.nn.utils' gradient and parameter helpers: clip the gradients by their total norm or by
value, and flatten parameters to one vector and back.

`parameters` is one Tensor or an iterable of Tensors; those whose `.grad` is None are skipped. A
gradient may be an array (NumPy or CuPy; the norm is computed on its device, with no copy to the
host unless error_if_nonfinite asks) or a Tensor (after backward(create_graph=True): it is then
scaled out of place, keeping its graph). minitf.optim.clip_grad_norm uses the same norm.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

from .. import backend
from ..autograd import Tensor, concat, no_grad

ParamsT = Tensor | Iterable[Tensor]


def _tensors(parameters: ParamsT) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    try:
        found = list(parameters)
    except TypeError:
        raise TypeError(f"parameters must be a Tensor or an iterable of Tensors, got "
                        f"{type(parameters).__name__}") from None
    for i, p in enumerate(found):
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters[{i}] is a {type(p).__name__}, not a Tensor")
    return found


def _with_grads(parameters: ParamsT) -> list[Tensor]:
    return [p for p in _tensors(parameters) if p.grad is not None]


def _array(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _norm_type(norm_type: Any) -> float:
    try:
        p = float(norm_type) if not isinstance(norm_type, bool) else math.nan
    except (TypeError, ValueError):
        p = math.nan
    if not p > 0:
        raise ValueError(f"norm_type must be a number > 0 or inf, got {norm_type!r}")
    return p


def total_norm_array(arrays: list[Any], norm_type: float = 2.0) -> Any:
    """The norm_type-norm of all entries of `arrays` together (the norm of their norms), as a 0-d
    float64 array on their device (0 for no arrays or no entries)."""
    xp = backend.get_array_module(*arrays)
    partials = []
    for a in arrays:
        flat = a.reshape(-1)
        if flat.size == 0:
            continue
        if flat.dtype.itemsize < 4:  # float16: a sum of squares above 65504 would overflow
            flat = flat.astype(np.float32)
        if norm_type == math.inf:
            partials.append(xp.max(xp.abs(flat)).astype(np.float64))
        elif norm_type == 2.0:
            partials.append(xp.dot(flat, flat).astype(np.float64))  # BLAS: the sum of squares
        else:
            partials.append(xp.sum(xp.abs(flat) ** norm_type).astype(np.float64))
    if not partials:
        return xp.zeros((), dtype=np.float64)
    if norm_type == math.inf:
        return xp.max(xp.stack(partials))
    total = xp.sum(xp.stack(partials))
    return xp.sqrt(total) if norm_type == 2.0 else xp.power(total, 1.0 / norm_type)


def get_total_norm(tensors: ParamsT | Iterable[Any], norm_type: float = 2.0,
                   error_if_nonfinite: bool = False) -> Tensor:
    """The norm_type-norm (p > 0, or inf) of all entries of `tensors` (Tensors or arrays, such as
    gradients) together, as a 0-d Tensor of their dtype on their device (float32 0 for none).
    With error_if_nonfinite, a nan or inf norm raises RuntimeError."""
    p = _norm_type(norm_type)
    single = isinstance(tensors, Tensor) or hasattr(tensors, "dtype")
    arrays = [_array(t) for t in ([tensors] if single else list(tensors))]
    for i, a in enumerate(arrays):
        if getattr(getattr(a, "dtype", None), "kind", None) != "f":
            raise TypeError(f"tensors[{i}] must be a float Tensor or array, got {type(a).__name__}")
    total = total_norm_array(arrays, p)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(f"the total norm of order {p} of the gradients is {float(total)} (not finite), so "
                           "they cannot be clipped; pass error_if_nonfinite=False to scale them by it anyway")
    dtype = np.result_type(*(a.dtype for a in arrays)) if arrays else np.dtype(np.float32)
    return Tensor.from_op(backend.get_array_module(total, *arrays).asarray(total, dtype=dtype))


def clip_grads_with_norm_(parameters: ParamsT, max_norm: float, total_norm: Tensor | Any) -> None:
    """Scale the gradients by min(1, max_norm / (total_norm + 1e-6)) (torch's formula: a nan or
    inf total_norm makes them nan or 0)."""
    max_norm = _max_norm(max_norm)
    total = _array(total_norm)
    xp = backend.get_array_module(total)
    coefficient = xp.minimum(max_norm / (total + 1e-6), 1.0)
    with np.errstate(invalid="ignore"):  # inf * 0 of a non-finite norm gives nan, as torch's
        for p in _with_grads(parameters):
            if isinstance(p.grad, Tensor):  # a gradient with a graph: scaled out of place, graph kept
                p.grad = p.grad * xp.asarray(coefficient, dtype=p.grad.dtype)
            else:
                p.grad *= xp.asarray(coefficient, dtype=p.grad.dtype)


def _max_norm(max_norm: Any) -> float:
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm >= 0:
        raise ValueError(f"max_norm must be a number >= 0, got {max_norm!r}")
    return float(max_norm)


def clip_grad_norm_(parameters: ParamsT, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their total norm_type-norm is at most max_norm (by
    max_norm / (norm + 1e-6) when above it), as torch.nn.utils.clip_grad_norm_.

    Returns the total norm before clipping as a 0-d Tensor (`float(norm)` for a number). A nan or
    inf norm raises RuntimeError with error_if_nonfinite; otherwise, as torch, the gradients are
    multiplied by the resulting coefficient (0 or nan). max_norm 0 zeroes the gradients (for
    "measure only", use get_total_norm or minitf.optim.clip_grad_norm with 0).
    """
    max_norm = _max_norm(max_norm)
    params = _with_grads(parameters)
    norm = get_total_norm([p.grad for p in params], norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, norm)
    return norm


def clip_grad_value_(parameters: ParamsT, clip_value: float) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value] (in place for arrays)."""
    if isinstance(clip_value, bool) or not isinstance(clip_value, numbers.Real) or not clip_value >= 0:
        raise ValueError(f"clip_value must be a number >= 0, got {clip_value!r}")
    c = float(clip_value)
    for p in _with_grads(parameters):
        xp = backend.get_array_module(p.grad)
        if isinstance(p.grad, xp.ndarray):
            xp.clip(p.grad, -c, c, out=p.grad)
        else:  # a Tensor (with a graph: clipped out of place, graph kept)
            p.grad = p.grad.clip(-c, c)


def parameters_to_vector(parameters: ParamsT) -> Tensor:
    """All parameters flattened and concatenated, in order, into one 1-D Tensor (differentiable:
    a gradient of the vector flows back to the parameters)."""
    params = _tensors(parameters)
    if not params:
        raise ValueError("parameters_to_vector needs at least one parameter, got none")
    return concat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: ParamsT) -> None:
    """Copy consecutive slices of the 1-D Tensor `vec` into the parameters, in order (in place,
    under no_grad; each parameter keeps its dtype and device). `vec` must have exactly as many
    entries as the parameters together. (torch instead makes the parameters views of vec.)"""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vec must be a Tensor, got {type(vec).__name__}")
    params = _tensors(parameters)
    if vec.ndim != 1:
        raise ValueError(f"vec must be 1-D, got shape {vec.shape}")
    needed = sum(p.size for p in params)
    if vec.size != needed:
        raise ValueError(f"vec has {vec.size} entries, the parameters have {needed} together")
    start = 0
    with no_grad():
        for p in params:
            p.copy_(vec.data[start:start + p.size].reshape(p.shape))
            start += p.size
