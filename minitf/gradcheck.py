"""Check an op's analytic backward (gradcheck) and its second derivatives (gradgradcheck) against
central finite differences, in float64.

The output is projected on a random cotangent v, so the check compares v^T J (one
backward pass) with finite differences of v . f(x). A random v matters: many ops
(softmax, layer norm) have outputs that sum to a constant, so a plain `.sum()` would
see a zero gradient and pass a wrong backward.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from . import backend
from .autograd import Tensor, enable_grad, grad, no_grad
from .functional.dtypes import DtypeMismatchError


class GradcheckError(AssertionError):
    """The analytic gradient disagrees with finite differences."""


def gradcheck(fn: Callable[..., Any], inputs: Tensor | Sequence[Any], eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, fast: bool = False, seed: int = 0) -> bool:
    """Compare the backward of `fn(*inputs)` with central differences; raise GradcheckError if off.

    `inputs` is a list or tuple of arguments, or one Tensor (then `fn(inputs)`, as
    torch.autograd.gradcheck). Tensors among them that require grad are checked (as float64
    copies); everything else is passed to `fn` unchanged, so a module `fn` uses must be float64
    too: `gradcheck(layer.to(np.float64), [x])` (a float32 layer raises a TypeError saying so).
    A NaN or infinite gradient fails; NaN or infinite finite differences (the function is not
    finite at the inputs) raise a ValueError. `eps` (the finite-difference step)
    must be finite and > 0, `atol` and `rtol` finite and >= 0 (a ValueError otherwise). `fn` returns a tensor or a sequence of tensors. With
    `fast=True` only the random projections v^T J u are compared (one number per input),
    which costs two evaluations of `fn` per input instead of two per element.
    Returns True when every checked gradient matches.
    """
    inputs = _check_arguments(inputs, eps, atol, rtol)
    args = [_float64_copy(x) for x in inputs]
    checked = [i for i, x in enumerate(args) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; pass tensors made with requires_grad=True")
    rng = np.random.default_rng(seed)
    try:
        outputs = _as_outputs(fn(*args))
    except DtypeMismatchError as e:
        raise TypeError(f"gradcheck runs fn on float64 copies of the inputs, and {e}; convert the "
                        "module to float64 first with `module.to(np.float64)` (torch's gradcheck "
                        "needs double too)") from e
    cotangents = [_random_like(rng, out.data) for out in outputs]
    for out, v in zip(outputs, cotangents):
        if out.requires_grad:
            out.backward(v, retain_graph=True)

    def evaluate(values: list[Any]) -> list[Any]:
        with no_grad():
            return [o.data.astype(np.float64) for o in _as_outputs(fn(*values))]

    def projected(plus: list[Any], minus: list[Any]) -> float:
        """v . (f(x + h) - f(x - h)), differenced per element first so that large constant
        outputs (a masked_fill with -1e9, say) cancel exactly instead of swamping the sum."""
        total = 0.0
        for p, m, v in zip(plus, minus, cotangents):
            xp = backend.get_array_module(p)
            with np.errstate(invalid="ignore"):  # inf - inf where an output is a constant inf
                total += float((xp.where(p == m, 0.0, p - m) * v).sum())
        return total

    for i in checked:
        x = args[i]
        analytic = x.grad if x.grad is not None else backend.get_array_module(x.data).zeros_like(x.data)
        _check_gradient_layout(i, x, analytic)
        if fast:
            _compare_projection(i, x, analytic, (evaluate, projected), args, rng, eps, atol, rtol)
        else:
            _compare_elements(i, x, analytic, (evaluate, projected), args, eps, atol, rtol)
    return True


def gradgradcheck(fn: Callable[..., Any], inputs: Tensor | Sequence[Any], eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, fast: bool = False, seed: int = 0) -> bool:
    """Check the second derivatives of `fn(*inputs)`: gradcheck of its first-order vjp.

    The vjp (x, v) -> v^T J(x), computed by `autograd.grad(..., create_graph=True)` with a random
    cotangent v per output, is itself checked by `gradcheck` against central differences, with
    respect to the inputs and to v: so each op's differentiable backward (its `higher` rule) is
    compared with finite differences of its first derivative. A backward that is right at first
    order but wrong at second fails here; an op with no differentiable backward raises its
    RuntimeError. Arguments as `gradcheck` (float64 copies; `fast` compares random projections).
    """
    inputs = _check_arguments(inputs, eps, atol, rtol)
    args = [_float64_copy(x) for x in inputs]
    checked = [i for i, x in enumerate(args) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input requires grad; pass tensors made with requires_grad=True")
    rng = np.random.default_rng(seed + 1)
    with enable_grad():
        outputs = [o for o in _as_outputs(fn(*args)) if o.requires_grad]
    if not outputs:
        raise ValueError("gradgradcheck: no output of fn depends on an input that requires grad")
    cotangents = [Tensor(_random_like(rng, o.data), requires_grad=True) for o in outputs]
    _check_rules_match_backward(fn, args, checked, cotangents, atol, rtol)

    def first_derivatives(*values: Any) -> list[Tensor]:
        values, vs = list(values[:len(args)]), values[len(args):]
        with enable_grad():
            outs = [o for o in _as_outputs(fn(*values)) if o.requires_grad]
            grads = grad(outs, [values[i] for i in checked], grad_outputs=list(vs), create_graph=True,
                         allow_unused=True)
        # a gradient without a graph is kept: its finite differences then meet a zero analytic
        # derivative, so a `higher` rule that detaches everything fails instead of passing unseen
        return [g for g in grads if g is not None]

    return gradcheck(first_derivatives, [*args, *cotangents], eps=eps, atol=atol, rtol=rtol, fast=fast, seed=seed)


def _check_rules_match_backward(fn: Callable[..., Any], args: list[Any], checked: list[int],
                                cotangents: list[Tensor], atol: float, rtol: float) -> None:
    """The create_graph gradients (the ops' `higher` rules) must equal the plain first-order ones:
    finite differences of the rules' output alone would pass a rule that is off by a constant factor."""
    with enable_grad():
        outs = [o for o in _as_outputs(fn(*args)) if o.requires_grad]
        plain = grad(outs, [args[i] for i in checked], grad_outputs=[v.data for v in cotangents], allow_unused=True)
        outs = [o for o in _as_outputs(fn(*args)) if o.requires_grad]
        rules = grad(outs, [args[i] for i in checked], grad_outputs=list(cotangents), create_graph=True,
                     allow_unused=True)
    for i, a, b in zip(checked, plain, rules):
        a = np.zeros(args[i].shape) if a is None else backend.to_device(a.data, "cpu")
        b = np.zeros(args[i].shape) if b is None else backend.to_device(b.data, "cpu")
        off = ~(np.abs(a - b) <= atol + rtol * np.abs(a))
        if off.any():
            worst = np.unravel_index(int(np.argmax(np.abs(a - b))), a.shape) if a.ndim else ()
            raise GradcheckError(
                f"input {i} (shape {args[i].shape}): the create_graph gradient differs from the first-order one "
                f"at index {tuple(int(k) for k in worst)}: {b[worst]:.8g} vs {a[worst]:.8g} "
                f"({int(off.sum())} of {a.size} elements off): the op's `higher` rule computes another value")


def _check_arguments(inputs: Any, eps: float, atol: float, rtol: float) -> Sequence[Any]:
    """`inputs` as a sequence of arguments; raise on a bad step or tolerance (a NaN one would
    make every comparison false, so that any backward passed)."""
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    elif not isinstance(inputs, (list, tuple)):
        raise TypeError(f"gradcheck: inputs must be a Tensor or a list or tuple of arguments, "
                        f"got {type(inputs).__name__}")
    for name, value, strict in (("eps", eps, True), ("atol", atol, False), ("rtol", rtol, False)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"gradcheck: {name} must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0 or (strict and value == 0):
            bound = "> 0" if strict else ">= 0"
            raise ValueError(f"gradcheck: {name} must be finite and {bound}, got {value!r}")
    return inputs


def _float64_copy(x: Any) -> Any:
    if not isinstance(x, Tensor) or not x.requires_grad:
        return x
    return Tensor(x.data.astype(np.float64), requires_grad=True)


def _as_outputs(result: Any) -> list[Tensor]:
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    for out in outputs:
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return tensors, got {type(out).__name__}")
    return outputs


def _random_like(rng: np.random.Generator, array: Any) -> Any:
    xp = backend.get_array_module(array)
    return xp.asarray(rng.standard_normal(array.shape)).astype(np.float64)


def _check_gradient_layout(i: int, x: Tensor, grad: Any) -> None:
    if grad.shape != x.shape or grad.dtype != x.dtype:
        raise GradcheckError(f"input {i}: gradient has shape {grad.shape} and dtype {grad.dtype}, "
                             f"but the input has shape {x.shape} and dtype {x.dtype}")


def _numeric(x: Tensor, direction: Any, probe: tuple[Callable, Callable], args: list,
             eps: float) -> float:
    """Central difference of the projected output along `direction` (an array like x)."""
    evaluate, projected = probe
    original = x.data.copy()
    x.data = original + eps * direction
    plus = evaluate(args)
    x.data = original - eps * direction
    minus = evaluate(args)
    x.data = original
    return projected(plus, minus) / (2 * eps)


def _compare_elements(i, x, analytic, probe, args, eps, atol, rtol) -> None:
    xp = backend.get_array_module(x.data)
    numeric = np.zeros(x.shape)
    basis = xp.zeros_like(x.data)
    for index in np.ndindex(*x.shape):
        basis[index] = 1.0
        numeric[index] = _numeric(x, basis, probe, args, eps)
        basis[index] = 0.0
    analytic = backend.to_device(analytic, "cpu")
    _check_finite(i, x, numeric)
    error = np.abs(analytic - numeric)
    allowed = atol + rtol * np.abs(numeric)
    off = ~(error <= allowed)  # a NaN error is off too
    if off.any():
        nonfinite = int((~np.isfinite(analytic)).sum())
        first = np.argmax(~np.isfinite(analytic)) if nonfinite else np.argmax(error - allowed)
        worst = np.unravel_index(first, x.shape) if x.ndim else ()
        nans = f", {nonfinite} of them not finite" if nonfinite else ""
        raise GradcheckError(
            f"input {i} (shape {x.shape}): gradient mismatch at index {tuple(int(k) for k in worst)}: "
            f"analytic {analytic[worst]:.8g}, numeric {numeric[worst]:.8g}, "
            f"abs error {error[worst]:.3g} > allowed {allowed[worst]:.3g} "
            f"({int(off.sum())} of {x.size} elements off{nans})")


def _check_finite(i: int, x: Tensor, numeric: Any) -> None:
    """A ValueError if finite differences are NaN or infinite: nothing can be checked there."""
    bad = ~np.isfinite(np.asarray(numeric))
    if bad.any():
        where = f" at index {tuple(int(k) for k in np.argwhere(bad)[0])}" if np.ndim(numeric) else ""
        raise ValueError(
            f"gradcheck: input {i} (shape {x.shape}): the function is not finite at the inputs: "
            f"{int(bad.sum())} of {bad.size} finite-difference values are NaN or infinite{where}; "
            "check it at inputs inside its domain")


def _compare_projection(i, x, analytic, probe, args, rng, eps, atol, rtol) -> None:
    u = _random_like(rng, x.data)
    numeric = _numeric(x, u, probe, args, eps)
    _check_finite(i, x, numeric)
    exact = float((analytic * u).sum())
    if not abs(exact - numeric) <= atol + rtol * abs(numeric):  # a NaN analytic value fails
        nonfinite = int((~backend.get_array_module(analytic).isfinite(analytic)).sum())
        nans = f"; {nonfinite} of {x.size} analytic gradient elements are not finite" if nonfinite else ""
        raise GradcheckError(f"input {i} (shape {x.shape}): projected gradient v^T J u mismatch: "
                             f"analytic {exact:.8g}, numeric {numeric:.8g}, "
                             f"abs error {abs(exact - numeric):.3g}{nans}")
