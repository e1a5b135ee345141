"""Second (and third) derivatives of the reductions, statistics, scans, einsum and elementwise ops
(ops_reduce, ops_stats, ops_scan, ops_einsum, ops_elementwise): gradgradcheck on drawn shapes and
axes (negative, tuples, keepdims, size-1 axes), double backward against PyTorch, and rules that
compose to the third order."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf as mt
from minitf.autograd import grad
from minitf.testing import arrays, axes, broadcastable_shapes, distinct_values, masks, shapes

R = np.random.default_rng(20)
SHAPES = shapes(max_dims=3, max_side=4)


def leaf(a):
    return mt.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def check(fn, inputs, fast=False):
    """gradgradcheck, and the first derivative through the `higher` rules (create_graph) equal to
    the one through the first-order backwards: gradgradcheck alone differentiates the rules' graph
    against finite differences of the same rules, so a rule with wrong values but a consistent
    graph (cumsum's rule scanning forward) would pass it."""
    assert mt.gradgradcheck(fn, inputs, fast=fast)
    v = np.random.default_rng(0).standard_normal(fn(*inputs).shape)
    plain = grad(fn(*inputs), inputs, v)
    differentiable = grad(fn(*inputs), inputs, v, create_graph=True)
    for p, d in zip(plain, differentiable):
        assert d.requires_grad
        np.testing.assert_allclose(d.numpy(), p.numpy(), rtol=1e-12, atol=1e-14)


def spread(shape):
    """Distinct values (a finite difference never reorders them), none within 0.03 of 0 (kinks),
    no two of the same magnitude (norm(p=inf) ties)."""
    return distinct_values(shape).map(lambda a: a + 0.03)


# name: (function of the tensor, the axis and keepdims; values it needs)
REDUCTIONS = {
    "sum": (lambda t, ax, k: mt.sum(t ** 3, axis=ax, keepdims=k), arrays),
    "mean": (lambda t, ax, k: (t ** 3).mean(axis=ax, keepdims=k), arrays),
    "max": (lambda t, ax, k: mt.max(t ** 3, axis=ax, keepdims=k), spread),
    "min": (lambda t, ax, k: (t ** 3).min(dim=ax, keepdims=k), spread),
    "logsumexp": (lambda t, ax, k: mt.logsumexp(t, axis=ax, keepdims=k), arrays),
    "var": (lambda t, ax, k: mt.var(t, axis=ax, keepdims=k), arrays),
    "std": (lambda t, ax, k: mt.std(t, axis=ax, keepdims=k), spread),
    "norm": (lambda t, ax, k: mt.norm(t, axis=ax, keepdims=k), spread),
    "norm1": (lambda t, ax, k: mt.norm(t ** 3, p=1, axis=ax, keepdims=k), spread),
    "norm_inf": (lambda t, ax, k: mt.norm(t ** 3, p=math.inf, axis=ax, keepdims=k), spread),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@settings(max_examples=12, deadline=None)
@given(data=st.data(), shape=SHAPES, keepdims=st.booleans())
def test_reductions_pass_gradgradcheck(name, data, shape, keepdims):
    fn, values = REDUCTIONS[name]
    x = leaf(data.draw(values(shape)))
    axis = data.draw(axes(len(shape)))
    check(lambda t: fn(t, axis, keepdims), [x], fast=x.size > 16)


@settings(max_examples=10, deadline=None)
@given(data=st.data(), shape=SHAPES, keepdims=st.booleans())
def test_var_and_std_with_ddof_pass_gradgradcheck(data, shape, keepdims):
    x = leaf(data.draw(spread(shape)))
    axis = data.draw(axes(len(shape)))
    count = math.prod(shape[a] for a in range(len(shape))) if axis is None else \
        math.prod(shape[a] for a in ((axis,) if isinstance(axis, int) else axis))
    ddof = data.draw(st.integers(0, count - 1))
    check(lambda t: mt.var(t, axis, keepdims, ddof=ddof) * mt.std(t, axis, keepdims, ddof=ddof),
                            [x], fast=x.size > 16)


def test_sum_and_max_second_derivatives_by_hand():
    x = leaf(R.standard_normal((3, 4)))
    check(lambda t: mt.max(t * t, axis=-1) ** 2, [x])
    gx, = grad(mt.sum(x ** 3, axis=0), x, np.ones(4), create_graph=True)
    assert gx.requires_grad and gx.shape == x.shape
    np.testing.assert_allclose(grad(gx, x, np.ones((3, 4)))[0].numpy(), 6 * x.numpy())


@pytest.mark.parametrize("op", ["cumsum", "cumprod"])
@settings(max_examples=12, deadline=None)
@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3, max_side=4))
def test_scans_pass_gradgradcheck(op, data, shape):
    a = data.draw(arrays(shape, -2.0, 2.0))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    if op == "cumprod":  # exact zeros take the rule that divides by nothing
        a = np.where(data.draw(masks(shape)), 0.0, a)
    fn = (lambda t: mt.cumsum(t ** 3, axis=axis)) if op == "cumsum" else (lambda t: mt.cumprod(t, dim=axis))
    check(fn, [leaf(a)], fast=a.size > 16)


@pytest.mark.parametrize("zeros", [False, True])
def test_cumprod_second_derivative_along_a_long_axis(zeros):
    """Many rows (NumPy's row loop in the first-order backward) and zeros in some of them."""
    a = R.uniform(0.5, 1.5, (300, 3)) * R.choice([-1, 1], (300, 3))
    if zeros:
        a[::7, 1] = 0.0
        a[::11, 0] = 0.0
    check(lambda t: mt.cumprod(t, axis=1), [leaf(a)], fast=True)


EINSUMS = {  # subscripts: shapes of the operands from the drawn sizes (i, j, k)
    "ij,jk->ik": lambda i, j, k: [(i, j), (j, k)],
    "bij,bjk": lambda i, j, k: [(2, i, j), (2, j, k)],
    "...ij,...jk->...ik": lambda i, j, k: [(2, 1, i, j), (3, j, k)],
    "ij,j->i": lambda i, j, k: [(i, j), (1,)],
    "ii->i": lambda i, j, k: [(i, i)],
    "ij->": lambda i, j, k: [(i, j)],
    "i,i": lambda i, j, k: [(i,), (i,)],
    "ijk,ikj->ij": lambda i, j, k: [(i, j, k), (i, k, j)],
}


@pytest.mark.parametrize("subscripts", sorted(EINSUMS))
@settings(max_examples=8, deadline=None)
@given(data=st.data(), sizes=st.tuples(*[st.integers(1, 3)] * 3))
def test_einsum_passes_gradgradcheck(subscripts, data, sizes):
    operands = [leaf(data.draw(arrays(shape))) for shape in EINSUMS[subscripts](*sizes)]

    def fn(*ts):  # squares: nonzero second derivatives through every operand
        return mt.einsum(subscripts, *[t * t for t in ts]) * 1.0

    check(fn, operands, fast=sum(t.size for t in operands) > 16)


@settings(max_examples=15, deadline=None)
@given(a=arrays(SHAPES, -2.0, 2.0))
def test_unary_elementwise_ops_pass_gradgradcheck(a):
    x = leaf(a)
    check(lambda t: mt.sin(t) * mt.cos(t * 2.0) + mt.expm1(t) * mt.log1p(t * t)
                            + mt.log1p(mt.expm1(t * 0.5)), [x], fast=x.size > 16)


def off_grid(draw, shape, offset):
    """Values on a 0.1 grid (offset 0: lower bounds, 0.02: upper bounds, 0.05: inputs), never within
    a finite-difference step of each other (ties are kinks)."""
    return np.round(draw(arrays(shape, -1.0, 1.0)), 1) + offset


@settings(max_examples=15, deadline=None)
@given(data=st.data(), shapes3=broadcastable_shapes(3, max_dims=3, max_side=3), bounds=st.sampled_from("lh*"))
def test_clip_passes_gradgradcheck(data, shapes3, bounds):
    x = leaf(off_grid(data.draw, shapes3[0], 0.05))
    lo = leaf(off_grid(data.draw, shapes3[1], 0.0)) if bounds in "l*" else None
    hi = leaf(off_grid(data.draw, shapes3[2], 0.02)) if bounds in "h*" else None  # hi < lo sometimes
    tensors = [t for t in (x, lo, hi) if t is not None]

    def fn(t, *b):
        b = list(b)
        low = b.pop(0) if lo is not None else None
        high = b.pop(0) if hi is not None else None
        return mt.clip(t, low, high) * t * (1.0 if low is None else low)

    check(fn, tensors)


@pytest.mark.parametrize("op", [mt.maximum, mt.minimum])
@settings(max_examples=12, deadline=None)
@given(data=st.data(), shapes2=broadcastable_shapes(2, max_dims=3, max_side=3))
def test_maximum_and_minimum_pass_gradgradcheck(op, data, shapes2):
    a, b = leaf(off_grid(data.draw, shapes2[0], 0.05)), leaf(off_grid(data.draw, shapes2[1], 0.0))
    check(lambda s, t: op(s * s, t) * s + op(0.123, t * s), [a, b])


def test_logsumexp_of_rows_of_minus_infinity_gives_a_zero_differentiable_gradient():
    a = R.standard_normal((3, 4))
    a[1] = -np.inf
    x, v = leaf(a), R.standard_normal(3)
    gx, = grad(mt.logsumexp(x, axis=1), x, v, create_graph=True)
    y = leaf(a)
    mt.logsumexp(y, axis=1).backward(v)
    np.testing.assert_array_equal(gx.numpy(), y.grad)
    assert gx.requires_grad and not gx.numpy()[1].any()
    u = R.standard_normal((3, 4))
    hx, = grad(gx, x, u)  # the finite rows as without the row of -inf, the row of -inf zero
    z = leaf(a[[0, 2]])
    gz, = grad(mt.logsumexp(z, axis=1), z, v[[0, 2]], create_graph=True)
    np.testing.assert_allclose(hx.numpy()[[0, 2]], grad(gz, z, u[[0, 2]])[0].numpy(), rtol=1e-12)
    assert not hx.numpy()[1].any()


def test_ties_share_the_gradient_as_at_first_order():
    a = np.array([[1.0, -2.0, 2.0, 2.0], [0.5, 0.5, -0.5, 0.1]])
    half = mt.tensor(np.full((2, 1), 0.5))
    fns = [lambda t: mt.max(t, axis=-1), lambda t: mt.min(t, axis=0, keepdims=True),
           lambda t: mt.norm(t, p=math.inf, axis=1), lambda t: mt.maximum(t, half) * mt.minimum(2.0, t),
           lambda t: mt.clip(t, 0.5, 2.0)]
    for fn in fns:
        x = leaf(a)
        v = R.standard_normal(fn(x).shape)
        differentiable, = grad(fn(x), x, v, create_graph=True)
        np.testing.assert_array_equal(differentiable.numpy(), grad(fn(x), x, v)[0].numpy())


# ---- against PyTorch --------------------------------------------------------------------

TORCH_CASES = {  # name: (minitf function, PyTorch function (torch module, tensor))
    "logsumexp": (lambda t: mt.logsumexp(t, axis=(0, -1)), lambda th, t: th.logsumexp(t, dim=(0, -1))),
    "std": (lambda t: mt.std(t, axis=1, keepdims=True, ddof=1), lambda th, t: t.std(dim=1, keepdim=True)),
    "var": (lambda t: mt.var(t, axis=-1), lambda th, t: t.var(dim=-1, correction=0)),
    "norm": (lambda t: mt.norm(t, axis=(1, 2)), lambda th, t: th.linalg.vector_norm(t, dim=(1, 2))),
    "cumprod": (lambda t: mt.cumprod(t, axis=1), lambda th, t: th.cumprod(t, dim=1)),
    "cumsum": (lambda t: mt.cumsum(t ** 3, axis=-1), lambda th, t: th.cumsum(t ** 3, dim=-1)),
    "einsum": (lambda t: mt.einsum("bij,bkj->bik", t, t * t),
               lambda th, t: th.einsum("bij,bkj->bik", t, t * t)),
    "sin_cos": (lambda t: mt.sin(t) * mt.cos(t) + mt.expm1(t) * mt.log1p(t * t),
                lambda th, t: th.sin(t) * th.cos(t) + th.expm1(t) * th.log1p(t * t)),
    "max_mean": (lambda t: mt.max(t ** 2, axis=-1) * mt.mean(t, axis=(0, 2)),
                 lambda th, t: th.amax(t ** 2, dim=-1) * t.mean(dim=(0, 2))),
}


def derivatives(x, fn, cotangents, order, autograd_grad):
    """The first `order` vjps of fn at x, each differentiated again with the next cotangent."""
    results, y = [], fn(x)
    for v in cotangents[:order]:
        y, = autograd_grad(y, x, v, create_graph=True)
        results.append(y)
    return results


def compare_with_torch(a, fn, torch_fn, order, outer=False):
    """Derivatives 1..order against PyTorch's; `outer`: of tanh(fn), so that the cotangent reaching
    fn's ops depends on x (their rules' own rules then take part from the second order)."""
    torch = pytest.importorskip("torch")
    if outer:
        fn, torch_fn = (lambda t, f=fn: mt.tanh(f(t))), (lambda th, t, f=torch_fn: th.tanh(f(th, t)))
    x = leaf(a)
    shapes_ = [fn(x).shape] + [a.shape] * (order - 1)
    vs = [R.standard_normal(s) for s in shapes_]
    ours = derivatives(x, fn, vs, order, lambda y, t, v, **kw: grad(y, t, v, **kw))
    t = torch.tensor(a, requires_grad=True)
    theirs = derivatives(t, lambda s: torch_fn(torch, s), [torch.tensor(v) for v in vs], order,
                         lambda y, s, v, **kw: torch.autograd.grad(y, s, v, **kw))
    for k, (mine, ref) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(mine.numpy(), ref.detach().numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=f"derivative {k + 1}")


@pytest.mark.parametrize("outer", [False, True])
@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_double_backward_matches_pytorch(name, outer):
    a = R.standard_normal((2, 4, 3))
    if name == "cumprod":
        a[0, 1, 2] = a[1, 3, 0] = a[1, 0, 1] = 0.0
    compare_with_torch(a, *TORCH_CASES[name], order=2, outer=outer)


@pytest.mark.parametrize("name, zeros", [("cumprod", False), ("cumprod", True), ("logsumexp", False),
                                         ("std", False), ("einsum", False), ("max_mean", False),
                                         ("cumsum", False), ("sin_cos", False), ("norm", False)])
def test_third_derivatives_match_pytorch(name, zeros):
    """The rules compose: each `higher` is made of ops that have their own."""
    a = R.standard_normal((2, 4, 3))
    if zeros:
        a[0, 1, 2] = a[1, 0, 1] = a[1, 2, 1] = 0.0
    compare_with_torch(a, *TORCH_CASES[name], order=3, outer=True)


def test_third_derivative_of_sum_of_cubes():
    x = leaf([-1.5, 0.5, 2.0, 3.0])
    g1, = grad(mt.sum(x ** 3), x, create_graph=True)
    g2, = grad(mt.sum(g1 * g1), x, create_graph=True)  # d/dx sum(9 x^4) = 36 x^3
    g3, = grad(mt.mean(g2, axis=0), x)  # d/dx mean(36 x^3) = 27 x^2
    np.testing.assert_allclose(g2.numpy(), 36 * x.numpy() ** 3)
    np.testing.assert_allclose(g3.numpy(), 27 * x.numpy() ** 2)
