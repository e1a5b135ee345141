"""autograd.grad: the gradients of outputs with respect to chosen inputs, returned rather than
accumulated into `.grad`, and (create_graph=True) differentiable again, as torch.autograd.grad.

    x = minitf.tensor([1.0, 2.0], requires_grad=True)
    (g,) = grad((x ** 3).sum(), x, create_graph=True)     # 3 x^2, a Tensor with a graph
    (h,) = grad(g.sum(), x)                               # 6 x
"""
from __future__ import annotations

from typing import Any, Sequence

from . import graph
from .tensor import Tensor

Tensors = Tensor | Sequence[Tensor]


def grad(outputs: Tensors, inputs: Tensors, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) projected on `grad_outputs`: sum_k grad_outputs[k] . d outputs[k] / d input,
    one Tensor per input (the input's shape and dtype). No `.grad` is touched.

    `outputs` and `inputs` are a Tensor or a sequence of them; every input must require grad and
    may be any tensor of the graph (not only a leaf). `grad_outputs` (a cotangent per output,
    arrays or Tensors of the outputs' shapes; None or a None entry = 1 for a one-element output)
    defaults to ones. With `create_graph=True` the results carry a graph (from each op's
    differentiable rule), so they can be differentiated again; a Tensor among `grad_outputs` that
    requires grad is differentiated through too. `retain_graph` (default `create_graph`) keeps the
    graph's saved arrays for another backward pass. An input the outputs do not depend on is an
    error unless `allow_unused=True`, which gives None for it.
    """
    outputs, inputs = _as_tuple(outputs, "outputs"), _as_tuple(inputs, "inputs")
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise RuntimeError(f"grad: input {i} (shape {x.shape}) does not require grad")
    cotangents = _as_cotangents(grad_outputs, len(outputs))
    for k, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(f"grad: output {k} (shape {out.shape}) does not require grad: no graph "
                               "was recorded from the inputs to it")
    seeds = [_seed(out, v, create_graph) for out, v in zip(outputs, cotangents)]
    retain = create_graph if retain_graph is None else retain_graph
    found = graph.propagate(outputs, seeds, retain, create_graph, inputs=inputs)
    results: list[Tensor | None] = []
    for i, x in enumerate(inputs):
        g = found.get(id(x))
        if g is None and not allow_unused:
            raise RuntimeError(f"grad: input {i} (shape {x.shape}) is not used to compute the outputs; "
                               "pass allow_unused=True to get None for it")
        results.append(g if g is None or isinstance(g, Tensor) else Tensor.from_op(_owned(g, seeds)))
    return tuple(results)


def _as_tuple(value: Any, what: str) -> tuple[Tensor, ...]:
    items = (value,) if isinstance(value, Tensor) else tuple(value)
    if not items:
        raise ValueError(f"grad: {what} is empty")
    for item in items:
        if not isinstance(item, Tensor):
            raise TypeError(f"grad: {what} must be Tensors, got {type(item).__name__}")
    return items


def _as_cotangents(grad_outputs: Any, count: int) -> list[Any]:
    if grad_outputs is None:
        return [None] * count
    if isinstance(grad_outputs, (Tensor, int, float)) or hasattr(grad_outputs, "shape"):
        items = [grad_outputs]
    elif isinstance(grad_outputs, (list, tuple)):
        items = list(grad_outputs)
    else:
        raise TypeError(f"grad: grad_outputs must be a cotangent (array, Tensor or number) or a list of them, "
                        f"got {type(grad_outputs).__name__}")
    if len(items) != count:
        raise ValueError(f"grad: {len(items)} grad_outputs for {count} outputs")
    return items


def _seed(out: Tensor, v: Any, create_graph: bool) -> Any:
    """The cotangent of `out` as an array (a Tensor with create_graph), checked by Tensor.backward's rules."""
    array = out._seed_gradient(v)
    if not create_graph:
        return array
    if isinstance(v, Tensor):
        return v if v.dtype == out.dtype else v.astype(out.dtype)
    return Tensor.from_op(array)


def _owned(g: Any, seeds: list[Any]) -> Any:
    """A gradient that shares no memory with a seed the caller gave (an output among the inputs)."""
    return g.copy() if any(g is s for s in seeds) else g


__all__ = ["grad"]
