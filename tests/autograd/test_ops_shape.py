"""Shape and selection ops: reshape, transpose/permute/swapaxes, expand, indexing,
concat/stack/split, where, masked_fill. Forward against NumPy, gradients by gradcheck."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitf as mt
from minitf import backend
from minitf.testing import arrays, broadcastable_shapes, masks, shapes


def host(array):
    return mt.backend.to_device(array, "cpu")


def check(fn, reference, inputs, device):
    """fn(*tensors) equals reference(*arrays) exactly (these ops only move values) and passes gradcheck.

    fn may return a list of tensors (split); reference then returns a list of arrays.
    """
    tensors = [mt.tensor(a, requires_grad=True, device=device) for a in inputs]
    outs, expected = fn(*tensors), reference(*inputs)
    if isinstance(outs, mt.Tensor):
        outs, expected = [outs], [expected]
    assert len(outs) == len(expected)
    for out, e in zip(outs, expected):
        assert out.shape == np.shape(e) and out.dtype == np.float64
        np.testing.assert_array_equal(out.numpy(), e)
    assert mt.gradcheck(fn, tensors)


def on(device, index_array):
    """An index array as is on the CPU; as a tensor on the device elsewhere (ops refuse mixing)."""
    return index_array if device == "cpu" else mt.tensor(index_array, device=device)


def signed(axis, ndim, negative):
    return axis - ndim if negative else axis


# ---- reshape, transpose, permute, swapaxes --------------------------------------------

@st.composite
def reshape_targets(draw, shape):
    permuted = draw(st.permutations(shape))
    return draw(st.sampled_from([(-1,), (1, -1), tuple(permuted), shape + (1,), (1,) + shape,
                                 (int(np.prod(shape)),)]))


@given(data=st.data(), shape=shapes())
def test_reshape(device, data, shape):
    x = data.draw(arrays(shape))
    target = data.draw(reshape_targets(shape))
    check(lambda t: t.reshape(target), lambda a: a.reshape(target), [x], device)
    check(lambda t: t.reshape(*target), lambda a: a.reshape(target), [x], device)
    np.testing.assert_array_equal(mt.reshape(mt.tensor(x), target).numpy(), x.reshape(target))


@given(data=st.data(), shape=shapes())
def test_transpose_and_permute(device, data, shape):
    x = data.draw(arrays(shape))
    ndim = len(shape)
    perm = [signed(a, ndim, data.draw(st.booleans())) for a in data.draw(st.permutations(range(ndim)))]
    reference = lambda a: np.transpose(a, perm)  # noqa: E731
    check(lambda t: t.transpose(*perm), reference, [x], device)
    check(lambda t: t.permute(perm), reference, [x], device)
    check(lambda t: mt.transpose(t, perm), reference, [x], device)
    check(lambda t: t.transpose(), np.transpose, [x], device)
    check(lambda t: t.T, lambda a: a.T, [x], device)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_swapaxes(device, data, shape):
    x = data.draw(arrays(shape))
    axis1, axis2 = (data.draw(st.integers(-len(shape), len(shape) - 1)) for _ in range(2))
    check(lambda t: t.swapaxes(axis1, axis2), lambda a: a.swapaxes(axis1, axis2), [x], device)
    np.testing.assert_array_equal(mt.swapaxes(mt.tensor(x), axis1, axis2).numpy(),
                                  np.swapaxes(x, axis1, axis2))


@pytest.mark.parametrize("axes", [(0, 0), (0,), (0, 1, 2), (0, 5)])
def test_transpose_rejects_non_permutations(axes):
    with pytest.raises(ValueError, match="permutation|out of bounds"):
        mt.tensor(np.ones((2, 3))).transpose(*axes)


# ---- expand -----------------------------------------------------------------------------

@st.composite
def expand_args(draw):
    """A shape with some size-1 axes, and a target it expands to (new leading axes, -1 kept)."""
    x_shape = tuple(1 if draw(st.booleans()) else n for n in draw(shapes(max_dims=3)))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    target = lead + tuple(draw(st.integers(1, 3)) if n == 1 else draw(st.sampled_from([n, -1]))
                          for n in x_shape)
    return x_shape, target


@given(data=st.data(), args=expand_args())
def test_expand(device, data, args):
    x_shape, target = args
    x = data.draw(arrays(x_shape))
    resolved = target[:len(target) - len(x_shape)] + tuple(
        n if t == -1 else t for n, t in zip(x_shape, target[len(target) - len(x_shape):]))
    check(lambda t: t.expand(*target), lambda a: np.broadcast_to(a, resolved), [x], device)
    check(lambda t: t.expand(target) * 1.0, lambda a: np.broadcast_to(a, resolved), [x], device)


@pytest.mark.parametrize("shape, target", [((2, 3), (3,)), ((2, 3), (4, 3)), ((3,), (-1, 3))])
def test_expand_errors(shape, target):
    with pytest.raises(ValueError, match="expand"):
        mt.tensor(np.ones(shape)).expand(*target)


# ---- indexing ---------------------------------------------------------------------------

@given(data=st.data(), shape=shapes())
def test_getitem_basic_indices(device, data, shape):
    x = data.draw(arrays(shape))
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True))
    check(lambda t: t[index], lambda a: a[index], [x], device)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_getitem_integer_arrays_with_repeats(device, data, shape):
    x = data.draw(arrays(shape))
    index = data.draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(max_dims=2)))
    check(lambda t: t[tuple(on(device, i) for i in index)], lambda a: a[index], [x], device)
    first = index[0]
    check(lambda t: t[mt.tensor(first, device=device)], lambda a: a[first], [x], device)
    check(lambda t: t[first.tolist()], lambda a: a[first], [x], device)


@given(data=st.data(), shape=shapes(min_dims=1))
def test_getitem_boolean_masks(device, data, shape):
    x = data.draw(arrays(shape))
    full = data.draw(masks(shape))
    leading = data.draw(masks(shape[:1]))
    check(lambda t: t[mt.tensor(full, device=device)], lambda a: a[full], [x], device)
    check(lambda t: t[on(device, leading)], lambda a: a[leading], [x], device)


@given(data=st.data(), shape=shapes(min_dims=2, max_dims=3))
def test_getitem_mixed_slices_and_integer_arrays(device, data, shape):
    x = data.draw(arrays(shape))
    rows = data.draw(hnp.arrays(np.int64, st.integers(1, 6), elements=st.integers(0, shape[0] - 1)))
    check(lambda t: t[on(device, rows), ::-1], lambda a: a[rows, ::-1], [x], device)
    check(lambda t: t[:, -1], lambda a: a[:, -1], [x], device)


def test_repeated_indices_add_up(device):
    x = mt.tensor(np.array([10.0, 20.0, 30.0]), requires_grad=True, device=device)
    out = x[on(device, np.array([0, 0, 2, 0]))]
    np.testing.assert_array_equal(out.numpy(), [10.0, 10.0, 30.0, 10.0])
    out.backward(mt.tensor(np.array([1.0, 2.0, 3.0, 4.0]), device=device))
    np.testing.assert_array_equal(host(x.grad), [7.0, 0.0, 3.0])


# ---- concat, stack, split ---------------------------------------------------------------

@st.composite
def concat_inputs(draw):
    shape = draw(shapes(min_dims=1, max_dims=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    pieces = []
    for _ in range(draw(st.integers(1, 3))):
        piece_shape = list(shape)
        piece_shape[axis] = draw(st.integers(1, 3))
        pieces.append(draw(arrays(tuple(piece_shape))))
    return pieces, axis


@given(args=concat_inputs())
def test_concat(device, args):
    pieces, axis = args
    check(lambda *ts: mt.concat(ts, axis=axis), lambda *arrs: np.concatenate(arrs, axis=axis),
          pieces, device)


@given(data=st.data(), shape=shapes(max_dims=3), count=st.integers(1, 3))
def test_stack(device, data, shape, count):
    pieces = [data.draw(arrays(shape)) for _ in range(count)]
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check(lambda *ts: mt.stack(ts, axis=axis), lambda *arrs: np.stack(arrs, axis=axis), pieces, device)


def test_concat_and_stack_of_mixed_inputs(device):
    a = mt.tensor(np.ones((2, 2)), requires_grad=True, device=device)
    b = mt.tensor(np.full((1, 2), 2.0, dtype=np.float32), device=device)  # a constant
    out = mt.concat([a, b]) * mt.stack([b[0], b[0], b[0]])
    out.backward(mt.tensor(np.ones((3, 2)), device=device))
    assert b.grad is None
    np.testing.assert_array_equal(host(a.grad), np.full((2, 2), 2.0))


@st.composite
def split_args(draw):
    shape = draw(shapes(min_dims=1, max_dims=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    length = shape[axis]
    if draw(st.booleans()):
        size = draw(st.integers(1, length + 1))
        return shape, axis, size, list(range(size, length, size))
    cuts = sorted(draw(st.sets(st.integers(1, length - 1))) if length > 1 else [])
    sizes = list(np.diff([0, *cuts, length]))
    return shape, axis, [int(s) for s in sizes], cuts


@given(data=st.data(), args=split_args())
def test_split(device, data, args):
    """torch.split semantics: an int is a chunk size (the last chunk may be shorter)."""
    shape, axis, spec, cuts = args
    x = data.draw(arrays(shape))
    check(lambda t: t.split(spec, axis=axis), lambda a: np.split(a, cuts, axis=axis), [x], device)
    check(lambda t: mt.split(t, spec, axis), lambda a: np.split(a, cuts, axis=axis), [x], device)


def test_split_chunk_sizes():
    pieces = mt.tensor(np.arange(5.0)).split(2)
    assert [p.tolist() for p in pieces] == [[0.0, 1.0], [2.0, 3.0], [4.0]]


@pytest.mark.parametrize("spec", [0, -1, [2, 2], [1, 5]])
def test_split_errors(spec):
    with pytest.raises(ValueError, match="split"):
        mt.tensor(np.arange(5.0)).split(spec)
    with pytest.raises(ValueError, match="split: axis 1 is out of range for a tensor with 1 dimensions"):
        mt.tensor(np.arange(5.0)).split(spec, 1)


# ---- where, masked_fill -----------------------------------------------------------------

@given(data=st.data(), shapes3=broadcastable_shapes(3))
def test_where(device, data, shapes3):
    cond_shape, a_shape, b_shape = shapes3
    cond = data.draw(masks(cond_shape))
    a, b = data.draw(arrays(a_shape)), data.draw(arrays(b_shape))
    cond_t = mt.tensor(cond, device=device)
    check(lambda x, y: mt.where(cond_t, x, y), lambda x, y: np.where(cond, x, y), [a, b], device)
    check(lambda x: mt.where(cond_t, x, 0.5), lambda x: np.where(cond, x, 0.5), [a], device)
    check(lambda y: mt.where(cond_t, -1.0, y), lambda y: np.where(cond, -1.0, y), [b], device)


@pytest.mark.parametrize("constants", [(2.0, -1.0), (np.array([1.0, 2.0, 3.0]), 0.0)])
def test_where_of_two_constants_lives_on_the_condition_device(constants, device):
    cond = np.array([True, False, True])
    a, b = constants
    a = backend.to_device(a, device) if isinstance(a, np.ndarray) else a
    out = mt.where(mt.tensor(cond, device=device), a, b)
    assert out.device == mt.tensor(cond, device=device).device and not out.requires_grad
    np.testing.assert_array_equal(backend.to_device(out.data, "cpu"), np.where(cond, *constants))


@st.composite
def mask_broadcastable_to(draw, shape):
    tail = shape[draw(st.integers(0, len(shape))):]
    return draw(masks(tuple(1 if draw(st.booleans()) else n for n in tail)))


@given(data=st.data(), shape=shapes(), value=st.sampled_from([0.0, -1e9, 2.5]))
def test_masked_fill(device, data, shape, value):
    x = data.draw(arrays(shape))
    mask = data.draw(mask_broadcastable_to(shape))
    mask_t = mt.tensor(mask, device=device)
    check(lambda t: t.masked_fill(mask_t, value), lambda a: np.where(mask, value, a), [x], device)


def test_masked_fill_and_where_need_boolean_masks():
    x = mt.tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match="boolean"):
        x.masked_fill(np.ones((2, 3), dtype=np.int64), 0.0)
    with pytest.raises(TypeError, match="boolean"):
        mt.where(np.ones(3), x, x)
    with pytest.raises(ValueError, match="broadcast"):
        x.masked_fill(np.ones((4, 2, 3), dtype=bool), 0.0)


def test_masked_fill_keeps_dtype():
    x = mt.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    out = x.masked_fill(np.array([True, False, True]), -1e9)
    assert out.dtype == np.float32
    out.backward(np.ones(3, dtype=np.float32))
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])
    assert x.grad.dtype == np.float32
