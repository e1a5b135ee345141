"""Gather and scatter: take_along_axis/gather, take/index_select, scatter_add, one_hot."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitf as mt
from minitf.testing import arrays, shapes


def host(array):
    return mt.backend.to_device(array, "cpu")


def on(device, index_array):
    return index_array if device == "cpu" else mt.tensor(index_array, device=device)


def indices(draw, shape, high, negative=True):
    """Integer indices of `shape` in [-high, high) (or [0, high)), with repeats."""
    low = -high if negative else 0
    return draw(hnp.arrays(np.int64, shape, elements=st.integers(low, high - 1)))


def check(fn, reference, inputs, device):
    """fn(*tensors) equals reference(*arrays) exactly and passes gradcheck; dtype is kept."""
    tensors = [mt.tensor(a, requires_grad=True, device=device) for a in inputs]
    out, expected = fn(*tensors), reference(*inputs)
    assert out.shape == np.shape(expected) and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert mt.gradcheck(fn, tensors)


@st.composite
def along_axis_args(draw, broadcast=True):
    """x's shape, an axis and indices with x's rank (broadcasting against x on the other axes)."""
    shape = draw(shapes(min_dims=1, max_dims=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    idx_shape = [draw(st.sampled_from([1, n])) if broadcast else n for n in shape]
    idx_shape[axis] = draw(st.integers(0, 6))
    return shape, axis, indices(draw, tuple(idx_shape), shape[axis])


@given(data=st.data(), args=along_axis_args())
def test_take_along_axis(device, data, args):
    shape, axis, idx = args
    x = data.draw(arrays(shape))
    check(lambda t: mt.take_along_axis(t, on(device, idx), axis),
          lambda a: np.take_along_axis(a, idx, axis), [x], device)
    check(lambda t: t.take_along_axis(mt.tensor(idx, device=device), dim=axis),
          lambda a: np.take_along_axis(a, idx, axis), [x], device)


@given(data=st.data(), shape=shapes(max_dims=3))
def test_take_along_flattened_axis(device, data, shape):
    x = data.draw(arrays(shape))
    idx = indices(data.draw, data.draw(st.integers(0, 5)), x.size)
    check(lambda t: mt.take_along_axis(t, on(device, idx), None),
          lambda a: np.take_along_axis(a, idx, None), [x], device)


@st.composite
def torch_gather_args(draw):
    """Index no larger than x on the other axes (torch.gather's rule), no broadcasting."""
    shape = draw(shapes(min_dims=1, max_dims=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    idx_shape = [draw(st.integers(1, n)) for n in shape]
    idx_shape[axis] = draw(st.integers(1, 6))
    return shape, axis, indices(draw, tuple(idx_shape), shape[axis], negative=False)


def reference_gather(a, axis, idx):
    block = tuple(slice(None) if d == axis % a.ndim else slice(0, n) for d, n in enumerate(idx.shape))
    return np.take_along_axis(a[block], idx, axis)


@given(data=st.data(), args=torch_gather_args())
def test_gather(device, data, args):
    shape, axis, idx = args
    x = data.draw(arrays(shape))
    check(lambda t: mt.gather(t, axis, on(device, idx)), lambda a: reference_gather(a, axis, idx), [x], device)
    check(lambda t: t.gather(dim=axis, index=on(device, idx)), lambda a: reference_gather(a, axis, idx),
          [x], device)


def reference_scatter_add(a, axis, idx, src):
    out = a.copy()
    block = tuple(slice(0, n) for n in idx.shape)
    positions = list(np.indices(idx.shape, sparse=True))
    positions[axis % a.ndim] = idx
    np.add.at(out, tuple(positions), src[block])
    return out


@st.composite
def scatter_args(draw):
    shape = draw(shapes(min_dims=1, max_dims=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    idx_shape = [draw(st.integers(1, n)) for n in shape]
    idx_shape[axis] = draw(st.integers(1, 6))
    src_shape = tuple(n + draw(st.integers(0, 1)) for n in idx_shape)
    return shape, axis, indices(draw, tuple(idx_shape), shape[axis]), src_shape


@given(data=st.data(), args=scatter_args())
def test_scatter_add(device, data, args):
    shape, axis, idx, src_shape = args
    x, src = data.draw(arrays(shape)), data.draw(arrays(src_shape))
    check(lambda t, s: mt.scatter_add(t, axis, on(device, idx), s),
          lambda a, s: reference_scatter_add(a, axis, idx, s), [x, src], device)
    check(lambda t, s: t.scatter_add(dim=axis, index=on(device, idx), src=s),
          lambda a, s: reference_scatter_add(a, axis, idx, s), [x, src], device)


@given(data=st.data(), shape=shapes(min_dims=1, max_dims=3))
def test_take_and_index_select(device, data, shape):
    x = data.draw(arrays(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    idx = indices(data.draw, data.draw(shapes(min_dims=0, max_dims=2)), shape[axis])
    check(lambda t: mt.take(t, on(device, idx), axis), lambda a: np.take(a, idx, axis), [x], device)
    flat = indices(data.draw, data.draw(shapes(max_dims=2)), x.size)
    check(lambda t: t.take(on(device, flat)), lambda a: np.take(a, flat), [x], device)
    rows = idx.reshape(-1) % shape[axis]
    check(lambda t: t.index_select(axis, on(device, rows)), lambda a: np.take(a, rows, axis), [x], device)


def test_repeated_indices_add_up(device):
    x = mt.tensor(np.array([[1.0, 2.0, 3.0]]), requires_grad=True, device=device)
    idx = on(device, np.array([[2, 2, -1, 0]]))
    out = mt.take_along_axis(x, idx, 1)
    assert out.tolist() == [[3.0, 3.0, 3.0, 1.0]]
    out.backward(mt.tensor(np.array([[1.0, 10.0, 100.0, 1000.0]]), device=device))
    np.testing.assert_array_equal(host(x.grad), [[1000.0, 0.0, 111.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_index_ops_keep_dtype(device, dtype):
    x = mt.tensor(np.arange(6, dtype=dtype).reshape(2, 3), requires_grad=True, device=device)
    src = mt.tensor(np.ones((2, 3), dtype=dtype), requires_grad=True, device=device)
    idx = on(device, np.array([[0, 2], [1, 1]]))
    outs = [mt.gather(x, 1, idx), mt.take(x, idx, 1), mt.scatter_add(x, 1, idx, src),
            x.index_select(0, on(device, np.array([1, 0])))]
    assert all(o.dtype == dtype for o in outs)
    sum(o.sum() for o in outs).backward()
    assert x.grad.dtype == dtype and src.grad.dtype == dtype


def test_one_hot(device):
    ids = mt.tensor(np.array([[0, 2], [1, 2]]), device=device)
    out = mt.one_hot(ids, 3)
    assert out.dtype == np.int64 and out.shape == (2, 2, 3) and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), np.eye(3, dtype=np.int64)[[[0, 2], [1, 2]]])
    assert mt.one_hot(ids).shape == (2, 2, 3)
    assert mt.one_hot(ids, 5, dtype=np.float32).dtype == np.float32
    assert mt.one_hot(np.array([], dtype=np.int64), 4).shape == (0, 4)


def test_index_errors():
    x = mt.tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match="gather: index 3 is out of range for axis 1 of size 3"):
        mt.gather(x, 1, np.array([[0, 3]]))
    with pytest.raises(IndexError, match="take: index -3 is out of range for axis 0 of size 2"):
        x.take(np.array([-3]), axis=0)
    with pytest.raises(TypeError, match="indices must be an integer tensor, got dtype float64"):
        mt.take_along_axis(x, np.array([[0.0]]), 1)
    with pytest.raises(ValueError, match="as many dimensions as the tensor \\(2\\)"):
        mt.take_along_axis(x, np.array([0]), 1)
    with pytest.raises(ValueError, match="index shape \\(3, 1\\) exceeds input shape \\(2, 3\\) on axis 0"):
        mt.gather(x, 1, np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(ValueError, match="exceeds src shape"):
        mt.scatter_add(x, 1, np.zeros((2, 2), dtype=np.int64), mt.tensor(np.ones((2, 1))))
    with pytest.raises(ValueError, match="index must be 1-D"):
        x.index_select(0, np.zeros((1, 1), dtype=np.int64))
    with pytest.raises(TypeError, match="axis must be an int"):
        mt.gather(x, np.array([[0]]), 1)
    with pytest.raises(IndexError, match="one_hot: id 3 is out of range for num_classes 3"):
        mt.one_hot(np.array([0, 3]), 3)
    with pytest.raises(IndexError, match="one_hot: id -1"):
        mt.one_hot(np.array([-1]), 3)
    with pytest.raises(TypeError, match="one_hot: ids must be an integer tensor"):
        mt.one_hot(np.array([0.0]), 3)


@pytest.mark.parametrize("axis", [0, 1])
def test_take_gradient_with_an_index_repeated_many_times(device, axis):
    """More repeats than add_rows's rounds: the rest goes through the slow, exact path."""
    x = np.arange(12.0).reshape(3, 4)
    idx = np.array([1] * 20 + [0, 2] + [1] * 3)
    t = mt.tensor(x, requires_grad=True, device=device)
    out = mt.take(t, on(device, idx), axis)
    cotangent = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(mt.tensor(cotangent, device=device))
    expected = np.zeros_like(x)
    np.add.at(expected, (slice(None),) * axis + (idx,), cotangent)
    np.testing.assert_allclose(host(t.grad), expected, rtol=1e-12)
