"""Second and third derivatives of the shape, layout, indexing and selection ops (their `higher`
rules): gradgradcheck on hypothesis-drawn shapes (negative axes, size-1 axes, broadcasting,
advanced indices with repeats, masks), the differentiable gradient's value against the plain one,
PyTorch's double backward in float64, and one third-order check.

A linear op's gradient does not depend on x, so each op is followed by `square`: the gradient
2 op(x) v then goes through the op's rule with a g that depends on x, and gradgradcheck checks the
rule's own gradient with respect to x and to the cotangent v.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitf as mt
from minitf.autograd import grad, sum_to_shape
from minitf.testing import distinct_values, float_arrays, masks, shapes

R = np.random.default_rng(0)
SMALL = dict(max_dims=3, max_side=4)


def square(y):
    return y * y


def check(fn, *arrays, fast=False):
    """fn's gradient made with create_graph equals the plain one (a rule's value), and gradgradcheck
    passes (the rule's gradient, against central differences)."""
    inputs = [mt.tensor(a, requires_grad=True) for a in arrays]
    v = R.standard_normal(fn(*inputs).shape)
    plain = grad(fn(*inputs), inputs, v, allow_unused=True)
    made = grad(fn(*inputs), inputs, v, create_graph=True, allow_unused=True)
    for p, m in zip(plain, made):
        assert (p is None) == (m is None)
        if p is not None:
            np.testing.assert_allclose(m.numpy(), p.numpy(), rtol=1e-12, atol=1e-12)
    assert mt.gradgradcheck(fn, inputs, fast=fast)


def drawn(data, **kwargs):
    """A float64 array of a drawn shape (sometimes a non-contiguous view)."""
    return data.draw(shapes(**{**SMALL, **kwargs}).flatmap(float_arrays))


def indices(data, shape, high, negative=True):
    """Integer indices of `shape` in [-high, high) (or [0, high)), with repeats."""
    return data.draw(hnp.arrays(np.int64, shape, elements=st.integers(-high if negative else 0, high - 1)))


# ---- reshape, transpose, expand ----------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(st.data())
def test_reshape_view_flatten_squeeze_unsqueeze(data):
    a = drawn(data, max_dims=4)
    axis = data.draw(st.integers(-a.ndim - 1, a.ndim))
    start = data.draw(st.integers(-max(a.ndim, 1), max(a.ndim, 1) - 1))
    check(lambda x: square(x.reshape(-1).view(a.shape[::-1]).unsqueeze(axis).squeeze()), a)
    check(lambda x: square(x.flatten(start if x.ndim else 0).expand_dims((0, -1)).squeeze((0, -1))), a)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_transpose_permute_swapaxes(data):
    a = drawn(data, min_dims=2)
    order = data.draw(st.permutations(range(a.ndim)))
    order = [data.draw(st.sampled_from([d, d - a.ndim])) for d in order]
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    check(lambda x: square(x.permute(order).swapaxes(axis, 0).T.mT), a)
    check(lambda x: square(mt.transpose(x) * x.transpose(tuple(reversed(range(x.ndim))))), a)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_expand_sums_back_through_a_differentiable_sum_to_shape(data):
    a = drawn(data)
    lead = data.draw(st.lists(st.integers(1, 3), max_size=2))
    target = tuple(lead) + tuple(data.draw(st.sampled_from([-1, 3])) if n == 1
                                 else data.draw(st.sampled_from([-1, n])) for n in a.shape)
    check(lambda x: square(x.expand(*target)), a)


def test_sum_to_shape_of_a_tensor_keeps_the_graph():
    """The engine sums a broadcast Tensor gradient (create_graph) with Tensor.sum (axis tuples,
    keepdims): the result is a Tensor with a graph, the value that of NumPy."""
    g = mt.tensor(R.standard_normal((2, 3, 1, 4)), requires_grad=True)
    s = sum_to_shape(g, (3, 1, 1))
    assert isinstance(s, mt.Tensor) and s.requires_grad and s.shape == (3, 1, 1)
    np.testing.assert_allclose(s.numpy(), g.numpy().sum(axis=(0, 3))[..., None], rtol=1e-12)
    assert mt.gradcheck(lambda t: sum_to_shape(t, (1, 4)), [g])


# ---- joining and splitting -----------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(st.data())
def test_concat_stack_split(data):
    a = drawn(data, min_dims=1)
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    other = list(a.shape)
    other[axis] = data.draw(st.integers(1, 3))
    b = R.standard_normal(other)
    cut = data.draw(st.integers(1, a.shape[axis] + other[axis] - 1))
    check(lambda x, y: square(mt.concat([x, y, x], axis=axis)), a, b)
    new = data.draw(st.integers(-a.ndim - 1, a.ndim))
    check(lambda x: square(mt.stack([x, x * 2.0], axis=new)), a)
    sizes = [cut, a.shape[axis] + other[axis] - cut]
    check(lambda x, y: square(mt.concat([y, x], axis=axis).split(sizes, axis=axis)[1]), a, b)
    check(lambda x: square(x.split(2, axis)[-1]), a)


# ---- layout ----------------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(st.data())
def test_flip_roll_clone_tile_repeat(data):
    a = drawn(data, min_dims=1)
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    shift = data.draw(st.integers(-5, 5))
    reps = data.draw(st.lists(st.integers(1, 2), max_size=a.ndim + 1))
    counts = data.draw(hnp.arrays(np.int64, a.shape[axis], elements=st.integers(0, 2)))
    check(lambda x: square(x.flip(axis).flip().roll(shift, axis).roll(shift).clone()), a)
    check(lambda x: square(x.tile(*reps)), a)
    check(lambda x: square(x.repeat(2, axis)), a)
    check(lambda x: square(x.repeat_interleave(counts, axis)), a)
    check(lambda x: square(x.repeat_interleave(2)), a)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_pad_tril_triu(data):
    a = drawn(data, min_dims=2)
    widths = [tuple(data.draw(st.lists(st.integers(0, 2), min_size=2, max_size=2))) for _ in a.shape]
    k = data.draw(st.integers(-3, 3))
    check(lambda x: square(mt.pad(x, widths, value=1.5)), a)
    check(lambda x: square(x.tril(k) + x.triu(diagonal=k + 1) * 2.0), a)


# ---- indexing --------------------------------------------------------------------------------------

@st.composite
def basic_indices(draw, shape):
    """Slices (negative steps, out-of-range bounds), integers (negative), None and Ellipsis."""
    groups = []
    for n in shape:
        kind = draw(st.sampled_from(["all", "slice", "int", "new"]))
        bound = st.one_of(st.none(), st.integers(-n - 1, n + 1))
        if kind == "int":
            groups.append([draw(st.integers(-n, n - 1))])
        elif kind == "slice":
            groups.append([slice(draw(bound), draw(bound), draw(st.sampled_from([None, 1, 2, -1, -2])))])
        else:
            groups.append([None, slice(None)] if kind == "new" else [slice(None)])
    skip = draw(st.integers(0, len(shape)))
    parts = [p for group in groups[skip:] for p in group]
    return tuple([Ellipsis] + parts) if skip else tuple(parts)


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_getitem_basic(data):
    a = drawn(data)
    index = data.draw(basic_indices(a.shape))
    check(lambda x: square(x[index]), a)


def int_arrays(shape, n):
    """Integer arrays of `shape` in [-n, n), with repeats."""
    return hnp.arrays(np.int64, shape, elements=st.integers(-n, n - 1))


@st.composite
def advanced_indices(draw, shape):
    """Integer arrays (repeats, negative; a list, an array or a tensor), two broadcasting arrays,
    arrays beside slices and integers, boolean masks over leading axes."""
    ndim = len(shape)
    axis = draw(st.integers(0, ndim - 1))
    size = st.integers(1, 4)
    kind = draw(st.sampled_from(["one", "list", "tensor", "two", "mixed", "mask"]))
    if kind in ("one", "list", "tensor") or ndim < 2 and kind != "mask":
        arr = draw(int_arrays(draw(size), shape[axis]))
        arr = {"list": arr.tolist(), "tensor": mt.tensor(arr)}.get(kind, arr)
        return (slice(None),) * axis + (arr,)
    middle = (slice(None),) * (ndim - 2)
    if kind == "two":  # (k, 1) and (m,) on the first and last axes: a (k, m) block, first in the result
        return (draw(int_arrays((draw(size), 1), shape[0])),) + middle + (draw(int_arrays(draw(size), shape[-1])),)
    if kind == "mixed":  # an integer, reversed slices, an array
        return (draw(st.integers(-shape[0], shape[0] - 1)),) + (slice(None, None, -1),) * (ndim - 2) \
            + (draw(int_arrays(draw(size), shape[-1])),)
    return (draw(masks(shape[:axis + 1])),)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_getitem_advanced(data):
    a = drawn(data, min_dims=1)
    index = data.draw(advanced_indices(a.shape))
    check(lambda x: square(x[index]), a)


def test_the_gradient_of_getitem_and_its_scatter_compose():
    """getitem's rule scatters g; the scatter's rule is getitem of its g: repeated indices add up at
    every order (d/dv of the gradient is the scatter, its own gradient the gather)."""
    a, idx = R.standard_normal((4, 3)), np.array([2, 0, 2, -2, 2])
    x = mt.tensor(a, requires_grad=True)
    v = mt.tensor(R.standard_normal((5, 3)), requires_grad=True)
    gx, = grad(square(x[idx]), x, v, create_graph=True)
    expected = np.zeros_like(a)
    np.add.at(expected, idx, 2 * a[idx] * v.numpy())
    np.testing.assert_allclose(gx.numpy(), expected, rtol=1e-12)
    u = R.standard_normal((4, 3))
    hx, hv = grad(gx, [x, v], u)
    np.testing.assert_allclose(hv.numpy(), 2 * a[idx] * u[idx], rtol=1e-12)
    hx_expected = np.zeros_like(a)
    np.add.at(hx_expected, idx, 2 * v.numpy() * u[idx])
    np.testing.assert_allclose(hx.numpy(), hx_expected, rtol=1e-12)


# ---- gather and scatter ------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(st.data())
def test_take_along_axis_gather_scatter_add(data):
    a = drawn(data, min_dims=1)
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = a.shape[axis]
    along = [data.draw(st.sampled_from([1, m])) if d != axis % a.ndim else data.draw(st.integers(1, 4))
             for d, m in enumerate(a.shape)]
    idx = indices(data, tuple(along), n)
    small = [data.draw(st.integers(1, m)) if d != axis % a.ndim else data.draw(st.integers(1, 4))
             for d, m in enumerate(a.shape)]
    index = indices(data, tuple(small), n)
    src = R.standard_normal([m + data.draw(st.integers(0, 1)) for m in small])
    check(lambda x: square(mt.take_along_axis(x, idx, axis)), a)
    check(lambda x: square(mt.take_along_axis(x, idx.reshape(-1)[:3], None)), a)
    check(lambda x: square(x.gather(axis, index)), a)
    check(lambda x, s: square(x.scatter_add(axis, index % n, s * s)), a, src)


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_take_index_select(data):
    a = drawn(data, min_dims=1)
    axis = data.draw(st.integers(-a.ndim, a.ndim - 1))
    n = a.shape[axis]
    idx = indices(data, data.draw(shapes(max_dims=2, max_side=3)), n)
    check(lambda x: square(x.take(idx, axis)), a)
    check(lambda x: square(x.take(idx % a.size)), a)
    check(lambda x: square(x.index_select(axis, mt.tensor(idx.reshape(-1)))), a)


# ---- where, masks, sort -------------------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(st.data())
def test_where_and_masked_fill_with_broadcast_masks(data):
    cond_shape, a_shape, b_shape = data.draw(hnp.mutually_broadcastable_shapes(
        num_shapes=3, max_dims=3, max_side=3)).input_shapes
    cond = data.draw(masks(cond_shape))
    a, b = data.draw(float_arrays(a_shape)), data.draw(float_arrays(b_shape))
    check(lambda x, y: square(mt.where(cond, x, y)), a, b)
    check(lambda x: square(mt.where(cond, x, 0.5)) + square(mt.where(cond, -1.0, x)), a)
    out = np.broadcast_shapes(cond_shape, a_shape)
    check(lambda x: square(x.expand(*out).masked_fill(cond, 3.0)), a)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_sort_and_topk_values(data):
    shape = data.draw(shapes(min_dims=1, **SMALL))
    a = data.draw(distinct_values(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    k = data.draw(st.integers(0, shape[axis]))
    descending, largest = data.draw(st.booleans()), data.draw(st.booleans())
    check(lambda x: square(x.sort(axis, descending=descending)[0]), a)
    check(lambda x: square(x.topk(k, axis, largest=largest)[0] * 1.0), a)


# ---- against PyTorch, and a third order -------------------------------------------------------------

def pytorch_cases(torch):
    """name -> (minitf function, the same in PyTorch) of a (4, 5) tensor."""
    idx, g, s = np.array([2, 0, 2, -1]), np.array([[0, 4, 4], [1, 0, 2]]), np.array([[4, 4, 0], [1, 1, 3]])
    along, pick, mask = np.array([[3, 0, 3, 1, 1]]), np.array([3, 0, 0]), R.random((4, 5)) > 0.5
    t = torch.tensor
    return {
        "getitem": (lambda x: x[idx, 1:], lambda x: x[t(idx), 1:]),
        "gather": (lambda x: x.gather(1, g), lambda x: x.gather(1, t(g))),
        "scatter_add": (lambda x: x.scatter_add(1, s, x[:2, :3] * x[2:, 1:4]),  # (torch's backward fails
                        lambda x: x.scatter_add(1, t(s), x[:2, :3] * x[2:, 1:4])),  # for a larger src)
        "where_expand_flip": (lambda x: mt.where(mask, x[:, :1].expand(4, 5), x.flip(0)),
                              lambda x: torch.where(t(mask), x[:, :1].expand(4, 5), x.flip(0))),
        "tile_pad": (lambda x: mt.pad(x.tile(1, 2), ((1, 0), (0, 2))),
                     lambda x: torch.nn.functional.pad(x.repeat(1, 2), (0, 2, 1, 0))),
        "sort_take_along": (lambda x: x.sort(-1)[0] * mt.take_along_axis(x, along, 0),
                            lambda x: torch.sort(x, -1).values * torch.take_along_dim(x, t(along), 0)),
        "tril_roll_masked_fill": (lambda x: x.tril(-1).roll(2, -1).masked_fill(mask, 0.5),
                                  lambda x: torch.roll(torch.tril(x, -1), 2, -1).masked_fill(t(mask), 0.5)),
        "index_select_stack_split": (lambda x: mt.stack([x.index_select(0, pick), x.split([3, 1])[0]], -1),
                                     lambda x: torch.stack([x.index_select(0, t(pick)), x.split([3, 1])[0]], -1)),
    }


@pytest.mark.parametrize("name", ["getitem", "gather", "scatter_add", "where_expand_flip", "tile_pad",
                                  "sort_take_along", "tril_roll_masked_fill", "index_select_stack_split"])
def test_double_backward_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = pytorch_cases(torch)[name]
    a = R.standard_normal((4, 5))
    v = R.standard_normal(ours(mt.tensor(a)).shape)
    u = R.standard_normal((4, 5))
    x, cot = mt.tensor(a, requires_grad=True), mt.tensor(v, requires_grad=True)
    y = ours(x)
    gx, = grad(mt.tanh(y) * y, x, cot, create_graph=True)
    hx, hv = grad(gx, [x, cot], u)
    tx, tv = torch.tensor(a, requires_grad=True), torch.tensor(v, requires_grad=True)
    ty = theirs(tx)
    tgx, = torch.autograd.grad(torch.tanh(ty) * ty, tx, tv, create_graph=True)
    thx, thv = torch.autograd.grad(tgx, [tx, tv], torch.tensor(u))
    np.testing.assert_allclose(gx.numpy(), tgx.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hx.numpy(), thx.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-10, atol=1e-12)


def test_third_derivatives_through_a_chain_of_the_ops():
    """`check` of a create_graph gradient: the second derivatives made by the rules of the rules (the
    scatters' gathers, the gathers' scatters, split, where, pad, tril, ...) equal the plain ones, and
    gradgradcheck of it compares third derivatives with central differences."""
    v = R.standard_normal((8, 3))
    mask = R.random((4, 1, 2)) > 0.5

    def chain(x):
        y = x.sort(-1)[0].T[np.array([1, 1, -2])]                                  # (3, 4)
        y = mt.concat([y, y.flip(0).roll(1, 1)], axis=-1)                           # (3, 8)
        y = mt.pad(y.tril(1), ((1, 0), (0, 1)), value=0.25)                         # (4, 9)
        y = mt.stack([y.take(np.array([0, 8, 8, -6]), 1), y.gather(1, np.array([[2, 2, 0, 7]] * 4))], -1)
        y = mt.where(mask, y, y.masked_fill(~mask, 0.5) * 2.0).reshape(8, 4)       # (8, 4)
        y = y.scatter_add(0, np.array([[0, 7, 7, 1]]), y[3:4] * 1.0)
        y = mt.take_along_axis(y, np.array([[0, 3, 3]]), 1) + y.index_select(1, np.array([3, 0, 0]))
        return y * y * y

    def gradient(x):
        return grad(chain(x), x, v, create_graph=True)[0]

    check(gradient, R.standard_normal((4, 5)))  # the rules' rules: their values and their gradients


def test_the_rules_run_on_the_gpu_backend(fake_gpu):
    """The scatters' CuPy paths (cupyx.scatter_add, add_rows), on tests/fake_gpu.py's NumPy stand-in
    for CuPy: second derivatives equal the CPU's."""
    from fake_gpu import FakeCupyArray  # noqa: PLC0415 (tests/ is on the path under pytest)

    a, v, u = R.standard_normal((4, 5)), R.standard_normal((3, 5)), R.standard_normal((4, 5))

    def second(device):
        idx = mt.tensor(np.array([2, -1, 2]), device=device)
        along = mt.tensor(np.array([[4, 4, 0, 1, 1]]), device=device)
        x = mt.tensor(a, requires_grad=True, device=device)
        y = x[idx] * x.take(idx, 0) + mt.take_along_axis(x, along, 1)[1:, ::-1] * x.sort(-1)[0][1:]
        gx, = grad(y * y, x, mt.tensor(v, device=device), create_graph=True)
        hx, = grad(gx, x, mt.tensor(u, device=device))
        return hx

    on_gpu = second("cuda")
    assert isinstance(on_gpu.data, FakeCupyArray)
    np.testing.assert_allclose(on_gpu.numpy(), second("cpu").numpy(), rtol=1e-12, atol=1e-12)
