"""The tensor ops of minitf.autograd (elementwise math, reductions, scans, shape, layout, indexing and
selection), one entry each: a hypothesis strategy of `OpCase`s with a NumPy float64 reference, from
which tests/functional/test_op_properties.py generates the forward, gradient, second-derivative
(gradgradcheck), float32/float64 and CuPy checks. A new tensor op is covered by adding its entry.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import minitf as mt
from minitf.testing import OpCase, arrays, away_from_zero, axes, broadcastable_shapes, distinct_values, \
    float_arrays, masks, op_tests, shapes

POSITIVE = dict(min_value=0.2, max_value=3.0)


def unary(op, reference, **bounds):
    """An elementwise op on any shape (transposed views too); `bounds` keep x in the op's domain."""
    return shapes().flatmap(lambda s: float_arrays(s, **bounds)).map(lambda x: OpCase(op, (x,), reference))


def binary(op, reference, second=None):
    """An op of two broadcastable float inputs; `second` bounds the second one (a divisor, an exponent base)."""
    @st.composite
    def cases(draw):
        s1, s2 = draw(broadcastable_shapes(2))
        a, b = draw(float_arrays(s1)), draw(float_arrays(s2, **(second or {})))
        return OpCase(op, (a, b), reference)
    return cases()


@st.composite
def reduction(draw, name, reference, distinct=False):
    """x.<name>(axis, keepdims) over a drawn axis (None, negative, tuples); `distinct`: no ties (max, min)."""
    shape = draw(shapes())
    x = draw(distinct_values(shape)) if distinct else draw(float_arrays(shape))
    axis, keepdims = draw(axes(x.ndim)), draw(st.booleans())
    return OpCase(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), (x,),
                  lambda a: reference(a, axis=axis, keepdims=keepdims))


@st.composite
def scan(draw, name, reference):
    x = draw(shapes(min_dims=1).flatmap(float_arrays))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return OpCase(lambda t: getattr(t, name)(axis=axis), (x,), lambda a: reference(a, axis=axis))


@st.composite
def permute_cases(draw):
    x = draw(shapes().flatmap(float_arrays))
    order = tuple(draw(st.permutations(range(x.ndim))))
    return OpCase(lambda t: t.permute(*order), (x,), lambda a: a.transpose(order))


@st.composite
def reshape_cases(draw):
    x = draw(shapes().flatmap(float_arrays))
    sizes = [n for n in range(1, x.size + 1) if x.size % n == 0]
    first = draw(st.sampled_from(sizes))
    return OpCase(lambda t: t.reshape(first, -1), (x,), lambda a: a.reshape(first, -1))


@st.composite
def getitem_cases(draw):
    x = draw(shapes(min_dims=1).flatmap(float_arrays))
    n = x.shape[0]
    index = draw(st.sampled_from([
        (slice(None, None, -1),), (slice(1, None),), (np.array([0, n - 1, 0]),), (Ellipsis, 0),
        (x > 0,), (np.array([-1, 0]), Ellipsis)]))
    return OpCase(lambda t: t[index], (x,), lambda a: a[index])


@st.composite
def concat_cases(draw):
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    other = list(shape)
    other[axis] = draw(st.integers(1, 3))
    a, b = draw(float_arrays(shape)), draw(float_arrays(tuple(other)))
    return OpCase(lambda s, t: mt.concat([s, t], axis=axis), (a, b), lambda s, t: np.concatenate([s, t], axis))


@st.composite
def where_cases(draw):
    s1, s2, s3 = draw(broadcastable_shapes(3))
    cond = draw(masks(s1))
    a, b = draw(float_arrays(s2)), draw(float_arrays(s3))
    return OpCase(lambda s, t: mt.where(cond, s, t), (a, b), lambda s, t: np.where(cond, s, t))


@st.composite
def take_along_axis_cases(draw):
    x = draw(shapes(min_dims=1).flatmap(float_arrays))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    shape = list(x.shape)
    shape[axis] = draw(st.integers(1, 4))
    index = draw(st.lists(st.integers(0, x.shape[axis] - 1), min_size=int(np.prod(shape)),
                          max_size=int(np.prod(shape)))).copy()
    index = np.array(index, dtype=np.int64).reshape(shape)
    return OpCase(lambda t: mt.take_along_axis(t, index, axis), (x,),
                  lambda a: np.take_along_axis(a, index, axis))


@st.composite
def sort_cases(draw):
    x = draw(shapes(min_dims=1).flatmap(distinct_values))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return OpCase(lambda t: t.sort(axis=axis)[0], (x,), lambda a: np.sort(a, axis=axis))


@st.composite
def matmul_cases(draw):
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(shapes(max_dims=2))
    a, b = draw(float_arrays(batch + (n, k))), draw(float_arrays((k, m)))
    return OpCase(lambda s, t: s @ t, (a, b), lambda s, t: s @ t)


def off_grid(draw, shape, offset=0.0):
    """Distinct multiples of 0.2 around 0, plus `offset`: two arrays drawn with offsets 0 and 0.1 never tie
    (maximum, minimum; clip against bounds on the grid), even under a finite difference."""
    size = int(np.prod(shape))
    order = np.array(draw(st.permutations(range(size))), dtype=np.float64).reshape(shape)
    return (order - size // 2) * 0.2 + offset


@st.composite
def extremum_cases(draw, op, reference):
    """maximum/minimum of two broadcastable inputs that are never equal (no kink)."""
    s1, s2 = draw(broadcastable_shapes(2))
    a, b = off_grid(draw, s1), off_grid(draw, s2, 0.1)
    return OpCase(op, (a, b), reference)


@st.composite
def clip_cases(draw):
    x = off_grid(draw, draw(shapes()), 0.1)
    low = draw(st.sampled_from([None, -0.4, 0.0]))
    high = draw(st.sampled_from([None, 0.2, 1.0] if low is not None else [0.2, 1.0]))
    return OpCase(lambda t: mt.clip(t, low, high), (x,), lambda a: np.clip(a, low, high))


@st.composite
def std_cases(draw):
    x = draw(shapes(min_dims=1, min_side=2).flatmap(distinct_values))
    axis, keepdims, ddof = draw(axes(x.ndim)), draw(st.booleans()), draw(st.sampled_from([0, 1]))
    return OpCase(lambda t: t.std(axis=axis, keepdims=keepdims, ddof=ddof), (x,),
                  lambda a: np.std(a, axis=axis, keepdims=keepdims, ddof=ddof))


@st.composite
def topk_cases(draw):
    x = draw(shapes(min_dims=1).flatmap(distinct_values))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    k, largest = draw(st.integers(1, x.shape[axis])), draw(st.booleans())

    def reference(a):
        ordered = np.sort(a, axis=axis)
        return np.flip(ordered, axis).take(range(k), axis) if largest else ordered.take(range(k), axis)
    return OpCase(lambda t: mt.topk(t, k, axis, largest=largest)[0], (x,), reference)


EINSUM = {  # equation -> the letters' roles; sizes are drawn per letter
    "ij,jk->ik": 2, "bij,bjk->bik": 2, "ii->i": 1, "ij->": 1, "i,j->ij": 2, "ij,ij->i": 2,
    "bhqd,bhkd->bhqk": 2, "ijk->kji": 1, "ij,j->i": 2}


@st.composite
def einsum_cases(draw):
    equation = draw(st.sampled_from(sorted(EINSUM)))
    sizes = {letter: draw(st.integers(1, 4)) for letter in sorted(set(equation) - set(",->"))}
    inputs = tuple(draw(float_arrays(tuple(sizes[c] for c in term))) for term in equation.split("->")[0].split(","))
    return OpCase(lambda *t: mt.einsum(equation, *t), inputs, lambda *a: np.einsum(equation, *a))


@st.composite
def index_cases(draw, op, reference):
    """argmax/argmin (axis, keepdims) and argsort (axis): integer outputs, no gradient."""
    x = draw(shapes(min_dims=1).flatmap(distinct_values))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return OpCase(lambda t: op(t, axis), (x,), lambda a: reference(a, axis))


def var(a, axis=None, keepdims=False):
    return np.var(a, axis=axis, keepdims=keepdims)


def norm(a, axis=None, keepdims=False):
    return np.sqrt((a * a).sum(axis=axis, keepdims=keepdims))


CASES = {
    "add": binary(lambda a, b: a + b, np.add),
    "mul": binary(lambda a, b: a * b, np.multiply),
    "div": binary(lambda a, b: a / b, np.divide, second=POSITIVE),
    "pow": binary(lambda a, b: b ** a, lambda a, b: b ** a, second=POSITIVE),
    "exp": unary(mt.exp, np.exp),
    "log": unary(mt.log, np.log, **POSITIVE),
    "sqrt": unary(mt.sqrt, np.sqrt, **POSITIVE),
    "tanh": unary(mt.tanh, np.tanh),
    "sigmoid": unary(mt.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    "sin": unary(mt.sin, np.sin),
    "cos": unary(mt.cos, np.cos),
    "maximum": extremum_cases(mt.maximum, np.maximum),
    "minimum": extremum_cases(mt.minimum, np.minimum),
    "clip": clip_cases(),
    "einsum": einsum_cases(),
    "log1p": unary(mt.log1p, np.log1p, **POSITIVE),
    "expm1": unary(mt.expm1, np.expm1),
    "abs": shapes().flatmap(float_arrays).map(lambda x: OpCase(mt.abs, (away_from_zero(x),), np.abs)),
    "relu": shapes().flatmap(float_arrays).map(
        lambda x: OpCase(mt.relu, (away_from_zero(x),), lambda a: np.maximum(a, 0))),
    "matmul": matmul_cases(),
    "sum": reduction("sum", np.sum),
    "mean": reduction("mean", np.mean),
    "max": reduction("max", np.max, distinct=True),
    "min": reduction("min", np.min, distinct=True),
    "var": reduction("var", var),
    "std": std_cases(),
    "norm": shapes().flatmap(float_arrays).map(lambda x: OpCase(
        lambda t: t.norm(), (away_from_zero(x, 0.1),), lambda a: norm(a))),
    "logsumexp": reduction("logsumexp", lambda a, axis, keepdims: np.log(np.exp(a).sum(axis=axis,
                                                                                      keepdims=keepdims))),
    "cumsum": scan("cumsum", np.cumsum),
    "cumprod": scan("cumprod", np.cumprod),
    "reshape": reshape_cases(),
    "permute": permute_cases(),
    "getitem": getitem_cases(),
    "concat": concat_cases(),
    "where": where_cases(),
    "take_along_axis": take_along_axis_cases(),
    "sort": sort_cases(),
    "topk": topk_cases(),
    "flip": shapes(min_dims=1).flatmap(float_arrays).map(
        lambda x: OpCase(lambda t: t.flip(0), (x,), lambda a: np.flip(a, 0))),
    "tril": shapes(min_dims=2).flatmap(float_arrays).map(
        lambda x: OpCase(lambda t: t.tril(-1), (x,), lambda a: np.tril(a, -1))),
}

# Not differentiable (an index is piecewise constant in the values: its derivative is zero almost everywhere
# and undefined at ties, so the output keeps no graph and a backward through it is an error).
INDICES = {
    "argmax": index_cases(lambda t, axis: mt.argmax(t, axis), lambda a, axis: np.argmax(a, axis)),
    "argmin": index_cases(lambda t, axis: mt.argmin(t, axis), lambda a, axis: np.argmin(a, axis)),
    "argsort": index_cases(lambda t, axis: mt.argsort(t, axis), lambda a, axis: np.argsort(a, axis)),
}

OPS = op_tests(CASES, examples={"gradient": 10, "gradgrad": 10, "float32": 5, "float64": 5, "forward": 10},
               options={"float32": {"float32_tol": 1e-3}}) + op_tests(
    INDICES, checks=("forward", "no_gradient"), examples={"forward": 10, "no_gradient": 5})
