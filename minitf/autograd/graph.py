"""The reverse-mode walk: backward() sends a gradient from an output back through the recorded
graph (each node's `_parents` and `_backward` closure, tensor.py) into the leaves' `.grad`."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import hooks, versions

Array = Any  # a numpy.ndarray or cupy.ndarray
Tensor = Any  # a minitf Tensor (tensor.py imports this module, so not the class itself)


def backward(root: Tensor, seed: Array, aliased: set[int], retain_graph: bool) -> None:
    """Accumulate d(root)/d(leaf), with cotangent `seed` for root, into every leaf's `.grad`.

    `aliased` holds the ids of arrays that a stored gradient must not share (the caller's own
    seed). Each node's saved arrays are released after its backward unless `retain_graph`.
    """
    grads: dict[int, Array] = {id(root): seed}
    for node in _topological_order(root):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        if node._backward is None:
            _accumulate_leaf(node, g, aliased)
            if hooks.any_registered():
                hooks.run_post_accumulate_hooks(node)
            continue
        if node._made_at != versions.clock:  # read per node: a hook may write during backward
            _check_unmodified(node)
        parent_grads = node._backward(g)
        for parent, pg in zip(node._parents, parent_grads):
            if pg is None or not parent.requires_grad:
                continue
            pg = _fit_gradient(pg, parent)
            previous = grads.get(id(parent))
            grads[id(parent)] = pg if previous is None else previous + pg
        if not retain_graph:
            node._backward = _graph_freed
            node._parents = ()


def _graph_freed(_grad: Array) -> Sequence[Any]:
    raise RuntimeError(
        "backward() went through a part of the graph a second time, but its saved arrays were "
        "already released; call the first backward() with retain_graph=True"
    )


def _check_unmodified(node: Tensor) -> None:
    """Raise if the memory of the node's output or of one of its inputs was written in place
    after the node was made (versions.py): its backward would use the new values."""
    for t in (node, *node._parents):
        if versions.last_write(t.data) > node._made_at:
            op = getattr(node._backward, "__qualname__", "an op").split(".")[0]
            role = "output" if t is node else "input"
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"in-place operation: the {role} of shape {t.shape} ({t.dtype}) of `{op}` was "
                f"written after the op used it (it is at version {versions.version(t.data)}); "
                "write to a copy, or run the forward pass again after the write"
            )


def _topological_order(root: Tensor) -> list[Tensor]:
    """Nodes that require grad, each after all of its consumers (iterative, no recursion limit).

    Kahn's algorithm with a last-in-first-out ready list: a node is taken as soon as its
    last consumer is done, so a leaf's gradient is complete (and its hooks fire) right
    after the op that used it last, not at the end of the backward pass.
    """
    consumers: dict[int, int] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for parent in node._parents:
            if parent.requires_grad:
                seen = id(parent) in consumers
                consumers[id(parent)] = consumers.get(id(parent), 0) + 1
                if not seen:
                    stack.append(parent)
    order: list[Tensor] = []
    ready = [root]
    while ready:
        node = ready.pop()
        order.append(node)
        for parent in node._parents:
            if parent.requires_grad:
                left = consumers[id(parent)] - 1
                consumers[id(parent)] = left
                if left == 0:
                    ready.append(parent)
    return order


def _fit_gradient(g: Array, parent: Tensor) -> Array:
    """Sum a broadcast gradient back to the parent's shape and cast it to its dtype."""
    shape = parent.data.shape
    if g.shape != shape:
        g = sum_to_shape(g, shape)
    if g.dtype != parent.data.dtype:
        g = g.astype(parent.data.dtype)
    return g


def sum_to_shape(g: Array, shape: tuple[int, ...]) -> Array:
    """Sum `g` over the axes that broadcasting added or stretched to reach `g.shape` from `shape`."""
    extra = g.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"gradient of shape {g.shape} cannot be summed to shape {shape}")
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    if g.shape != shape:
        raise ValueError(f"gradient of shape {g.shape} does not match shape {shape}")
    return g


def _accumulate_leaf(leaf: Tensor, g: Array, aliased: set[int]) -> None:
    """Add `g` into `leaf.grad`; a stored gradient always owns its memory."""
    if leaf.grad is not None:
        leaf.grad += g
        return
    if isinstance(g, np.generic):  # a NumPy scalar: store a 0-d array like the data
        g = np.asarray(g)
    elif g.base is not None or id(g) in aliased or not getattr(g.flags, "writeable", True):
        g = g.copy()  # (CuPy arrays have no `writeable` flag)
    aliased.add(id(g))
    leaf.grad = g


__all__ = ["backward", "sum_to_shape"]
