"""minitf.einsum: Einstein summation with a gradient for every operand.

The forward is the backend's einsum on the subscripts as given (NumPy's rules, errors and
implicit mode). For the backward the subscripts are made explicit, one letter per axis:
ellipses become unused letters (aligned from the right across operands), the implicit
output is spelled out as NumPy does, and a size-1 axis that broadcasts against a longer
one gets a letter of its own. Then the gradient of operand k is the einsum of the output
gradient with the other operands, producing k's labels. Two cases need more: a label
that occurs only in operand k (summed away within it, or broadcast) has nothing to take
its size from, so a vector of ones supplies it (the gradient is constant along it); a
label repeated within operand k (a diagonal, 'ii->i') is produced once and multiplied
by an identity matrix for each repeat, so the gradient lands on the diagonal.
"""
from __future__ import annotations

import string
from typing import Any, Iterator

from .. import backend
from .ops_math import lift
from .tensor import Tensor, as_array

LETTERS = string.ascii_letters  # the labels NumPy's einsum accepts


def einsum(subscripts: str, *operands: Any) -> Tensor:
    """Einstein summation as numpy.einsum(subscripts, *operands), differentiable in every
    operand: 'ij,jk->ik', 'bij,bjk', 'ii->i', '...ij,...jk->...ik', 'i,i', ..."""
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a string such as 'ij,jk->ik', "
                        f"got {type(subscripts).__name__}")
    if not operands:
        raise ValueError(f"einsum({subscripts!r}) needs at least one operand")
    tensors = _as_tensors(operands)
    arrays = [t.data for t in tensors]
    backend.check_same_device("einsum", *arrays)
    xp = backend.get_array_module(*arrays)
    try:
        out = xp.einsum(subscripts, *arrays, optimize=len(arrays) > 1)
    except ValueError as exc:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"einsum({subscripts!r}) on operands of shapes {shapes}: {exc}") from exc

    def backward(g):
        inputs, output, unused = explicit_subscripts(subscripts, [a.shape for a in arrays])
        return tuple(_operand_gradient(k, g, arrays, inputs, output, iter(unused), subscripts)
                     if t.requires_grad else None for k, t in enumerate(tensors))

    def higher(g, result):  # the same einsums, of tensors
        inputs, output, unused = explicit_subscripts(subscripts, [a.shape for a in arrays])
        terms = (_gradient_einsum(xp, k, g, tensors, inputs, output, iter(unused), subscripts)
                 if t.requires_grad else None for k, t in enumerate(tensors))
        return tuple(None if term is None else einsum(term[0], *term[1]) for term in terms)

    return Tensor.from_op(xp.asarray(out), tuple(tensors), backward, higher)


def _as_tensors(operands: tuple[Any, ...]) -> list[Tensor]:
    like = next((t for t in operands if isinstance(t, Tensor)), None)
    if like is None:
        like = Tensor.from_op(as_array(operands[0]))
    return [lift(t, like) for t in operands]


def explicit_subscripts(subscripts: str, shapes: list[tuple[int, ...]]
                        ) -> tuple[list[list[str]], list[str], list[str]]:
    """(labels of each operand, labels of the output, letters left unused), one label per axis.

    Assumes subscripts NumPy accepted for these shapes (the forward ran first).
    """
    text = "".join(subscripts.split())
    inputs_text, arrow, output_text = text.partition("->")
    terms = inputs_text.split(",")
    used = {c for c in text if c in LETTERS}
    unused = iter([c for c in LETTERS if c not in used])
    ellipsis_ndim = max((len(shape) - len(term.replace("...", ""))
                         for term, shape in zip(terms, shapes) if "..." in term), default=0)
    ellipsis = [_take(unused, subscripts) for _ in range(ellipsis_ndim)]

    def expand(term: str, ndim: int) -> list[str]:
        head, dots, tail = term.partition("...")
        if not dots:
            return list(term)
        count = ndim - len(head) - len(tail)
        return list(head) + ellipsis[ellipsis_ndim - count:] + list(tail)

    inputs = [expand(term, len(shape)) for term, shape in zip(terms, shapes)]
    if arrow:
        output = expand(output_text, len(output_text.replace("...", "")) + ellipsis_ndim)
    else:  # NumPy's implicit output: broadcast axes, then labels seen once, in ASCII order
        once = sorted(c for c in set(inputs_text) if c in LETTERS and inputs_text.count(c) == 1)
        output = ellipsis + once
    _split_broadcast_labels(inputs, shapes, unused, subscripts)
    return inputs, output, list(unused)


def _split_broadcast_labels(inputs: list[list[str]], shapes: list[tuple[int, ...]],
                            unused: Iterator[str], subscripts: str) -> None:
    """Give a label that has size 1 in one operand but more in another a new letter there."""
    sizes: dict[str, int] = {}
    for labels, shape in zip(inputs, shapes):
        for label, n in zip(labels, shape):
            if n != 1:
                sizes[label] = n
    for labels, shape in zip(inputs, shapes):
        for label in set(labels):
            own = {n for lab, n in zip(labels, shape) if lab == label}
            if own == {1} and sizes.get(label, 1) > 1:
                new = _take(unused, subscripts)
                labels[:] = [new if lab == label else lab for lab in labels]


def _take(unused: Iterator[str], subscripts: str) -> str:
    try:
        return next(unused)
    except StopIteration:
        raise ValueError(f"einsum({subscripts!r}): too many distinct axes for a gradient (at most "
                         f"{len(LETTERS)} labels, ellipsis and broadcast axes included)") from None


def _operand_gradient(k: int, g: Any, arrays: list[Any], inputs: list[list[str]],
                      output: list[str], unused: Iterator[str], subscripts: str) -> Any:
    """d(sum(g * out)) / d(operand k), as one einsum of g with the other operands."""
    xp = backend.get_array_module(g)
    equation, operands = _gradient_einsum(xp, k, g, arrays, inputs, output, unused, subscripts)
    return xp.einsum(equation, *operands, optimize=len(operands) > 1)


def _gradient_einsum(xp: Any, k: int, g: Any, arrays: list[Any], inputs: list[list[str]],
                     output: list[str], unused: Iterator[str], subscripts: str) -> tuple[str, list[Any]]:
    """(equation, operands) of the einsum giving operand k's gradient: g and the other operands
    (arrays, or Tensors for a differentiable gradient), with ones and identities as needed."""
    terms, operands = ["".join(output)], [g]
    for j, (array, labels) in enumerate(zip(arrays, inputs)):
        if j != k:
            terms.append("".join(labels))
            operands.append(array)
    available = set("".join(terms))
    result, seen = [], set()
    for label, n in zip(inputs[k], arrays[k].shape):
        if label in seen:  # a repeat: on the diagonal with the first occurrence
            twin = _take(unused, subscripts)
            terms.append(label + twin)
            operands.append(xp.eye(n, dtype=g.dtype))
            result.append(twin)
            continue
        seen.add(label)
        result.append(label)
        if label not in available:  # only in operand k: constant along it
            terms.append(label)
            operands.append(xp.ones(n, dtype=g.dtype))
            available.add(label)
    return ",".join(terms) + "->" + "".join(result), operands
