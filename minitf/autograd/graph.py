"""The reverse-mode walk: backward() sends a gradient from an output back through the recorded
graph (each node's `_parents` and `_backward` closure, tensor.py) into the leaves' `.grad`."""
from __future__ import annotations

import contextlib
from typing import Any, Sequence

import numpy as np

from . import grad_mode, hooks, versions

Array = Any  # a numpy.ndarray or cupy.ndarray
SAME_RULE: Any = "the backward itself"
"""`Tensor.from_op(..., higher=SAME_RULE)`: the backward, applied to a Tensor `g`, is already the
differentiable rule (it only negates `g`, scales it by constants, masks it or passes it on), so the op
needs no second closure."""
Tensor = Any  # a minitf Tensor (tensor.py imports this module, so not the class itself)


def backward(roots: Sequence[Tensor], seeds: Sequence[Any], aliased: set[int], retain_graph: bool,
             create_graph: bool = False) -> None:
    """Accumulate d(roots)/d(leaf), with cotangents `seeds` for the roots, into every leaf's `.grad`.

    `aliased` holds the ids of arrays that a stored gradient must not share (the caller's own
    seed). Each node's saved arrays are released after its backward unless `retain_graph`.
    With `create_graph` the seeds and gradients are Tensors and each node's differentiable
    rule (`_higher`) runs with the graph recorded, so the gradients can be differentiated again.
    """
    if create_graph:
        propagate(roots, seeds, retain_graph, create_graph, aliased=aliased)
    else:
        _first_order(roots, seeds, aliased, retain_graph)


def _first_order(roots: Sequence[Tensor], seeds: Sequence[Any], aliased: set[int], retain_graph: bool) -> None:
    """`propagate`'s walk for the common case, arrays into `.grad`, without its per-node tests of
    inputs and create_graph (the walk of every training step: its speed is the engine's overhead)."""
    grads = _seeded(roots, seeds)
    for node in _topological_order(roots):
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
        for parent, pg in zip(node._parents, node._backward(g)):
            if pg is None or not parent.requires_grad:
                continue
            pg = _fit_gradient(pg, parent)
            previous = grads.get(id(parent))
            grads[id(parent)] = pg if previous is None else previous + pg
        if not retain_graph:
            node._backward = _graph_freed
            node._higher = None
            node._parents = ()


def propagate(roots: Sequence[Tensor], seeds: Sequence[Any], retain_graph: bool, create_graph: bool,
              inputs: Sequence[Tensor] | None = None, aliased: set[int] | None = None) -> dict[int, Any]:
    """The reverse walk from `roots` (cotangents `seeds`). Without `inputs`: accumulate into the
    leaves' `.grad`. With `inputs`: touch no `.grad`, walk only the nodes that lead to an input,
    and return {id(input): its gradient} (inputs no gradient reaches are missing)."""
    order = _topological_order(roots)
    targets = None if inputs is None else {id(t) for t in inputs}
    leading = None if targets is None else _leading_to(order, targets)
    grads = _seeded(roots, seeds)
    found: dict[int, Any] = {}
    with grad_mode.enable_grad() if create_graph else contextlib.nullcontext():
        for node in order:
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if targets is not None and id(node) in targets:
                found[id(node)] = g
            if node._backward is None:
                if targets is None:
                    _accumulate_leaf(node, g, aliased if aliased is not None else set())
                    if hooks.any_registered():
                        hooks.run_post_accumulate_hooks(node)
                continue
            if node._backward is _graph_freed:
                _graph_freed(g)
            if leading is not None and id(node) not in leading:
                continue
            if node._made_at != versions.clock:  # read per node: a hook may write during backward
                _check_unmodified(node)
            parent_grads = _differentiable_step(node, g) if create_graph else node._backward(g)
            for parent, pg in zip(node._parents, parent_grads):
                if pg is None or not parent.requires_grad or (leading is not None and id(parent) not in leading):
                    continue
                pg = _fit_gradient(pg, parent)
                previous = grads.get(id(parent))
                grads[id(parent)] = pg if previous is None else previous + pg
            if not retain_graph:
                node._backward = _graph_freed
                node._higher = None
                node._parents = ()
    return found



def _seeded(roots: Sequence[Tensor], seeds: Sequence[Any]) -> dict[int, Any]:
    """{id(root): its cotangent}, summed for a root given twice."""
    grads: dict[int, Any] = {}
    for root, seed in zip(roots, seeds):
        grads[id(root)] = seed if id(root) not in grads else grads[id(root)] + seed
    return grads

def _differentiable_step(node: Tensor, g: Tensor) -> Sequence[Any]:
    """The node's gradients as Tensors with a graph (its `_higher` rule), or a clear error."""
    if node._higher is None:
        parts = getattr(node._backward, "__qualname__", "an op").split(".<locals>.")
        op = parts[-2] if len(parts) > 1 else parts[0]  # the function that made the backward closure
        raise RuntimeError(
            f"create_graph=True: `{op}` (output of shape {node.shape}) has no differentiable backward, so "
            "its gradient cannot be differentiated again; give Tensor.from_op a `higher` rule written "
            "with tensor ops (README: Higher-order gradients), or compose the function from ops that have one")
    if node._higher is SAME_RULE:
        return node._backward(g)
    return node._higher(g, node)


def _leading_to(order: list[Tensor], targets: set[int]) -> set[int]:
    """Ids of the nodes in `order` from which some target can be reached (targets included)."""
    leading: set[int] = set()
    for node in reversed(order):  # each node's parents come before it
        # a node whose graph was released (no parents left) may have led to a target: keep it, so
        # that reaching it raises _graph_freed's error instead of silently dropping its gradient
        if id(node) in targets or node._backward is _graph_freed or any(id(p) in leading for p in node._parents):
            leading.add(id(node))
    return leading


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


def _topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Nodes that require grad, each after all of its consumers (iterative, no recursion limit).

    Kahn's algorithm with a last-in-first-out ready list: a node is taken as soon as its
    last consumer is done, so a leaf's gradient is complete (and its hooks fire) right
    after the op that used it last, not at the end of the backward pass.
    """
    consumers: dict[int, int] = {}
    roots = list({id(r): r for r in roots}.values())
    stack = list(roots)
    while stack:
        node = stack.pop()
        for parent in node._parents:
            if parent.requires_grad:
                seen = id(parent) in consumers
                consumers[id(parent)] = consumers.get(id(parent), 0) + 1
                if not seen:
                    stack.append(parent)
    order: list[Tensor] = []
    ready = [r for r in roots if id(r) not in consumers]  # a root that another root uses waits for it
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


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "requires_grad")  # a Tensor, not a NumPy or CuPy array


def _accumulate_leaf(leaf: Tensor, g: Array, aliased: set[int]) -> None:
    """Add `g` into `leaf.grad`; a stored gradient always owns its memory. A Tensor `g`
    (create_graph) makes `.grad` a Tensor, whose sum with an earlier `.grad` keeps its graph."""
    if _is_tensor(g) or _is_tensor(leaf.grad):
        leaf.grad = g if leaf.grad is None else leaf.grad + g
        return
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
