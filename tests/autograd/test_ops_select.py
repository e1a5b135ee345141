"""Selection: argmax/argmin/argsort (no gradient), sort and topk (gradient to the chosen values)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitf as mt
from minitf.testing import arrays, distinct_values, shapes


def host(array):
    return mt.backend.to_device(array, "cpu")


@st.composite
def with_ties(draw, shape):
    """Small integers as floats: many ties."""
    return draw(arrays(shape, 0, 3)).round()


def axis_of(data, ndim):
    return data.draw(st.integers(-ndim, ndim - 1)) if ndim else -1


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(data=st.data(), shape=shapes(), keepdims=st.booleans())
def test_argmax_argmin(device, name, data, shape, keepdims):
    x = data.draw(st.one_of(arrays(shape), with_ties(shape)))
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1) if shape else st.none()))
    t = mt.tensor(x, requires_grad=True, device=device)
    out = getattr(t, name)(axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)  # the first extremum on ties
    assert out.dtype == np.int64 and not out.requires_grad and out.shape == np.shape(expected)
    np.testing.assert_array_equal(out.numpy(), expected)
    if axis is not None:
        np.testing.assert_array_equal(getattr(mt, name)(t, dim=axis).numpy(), getattr(np, name)(x, axis=axis))


@given(data=st.data(), shape=shapes(min_dims=1), descending=st.booleans())
def test_argsort_stable(device, data, shape, descending):
    x = data.draw(with_ties(shape))
    axis = axis_of(data, len(shape))
    out = mt.tensor(x, device=device).argsort(axis=axis, descending=descending, stable=True)
    keys = -x if descending else x  # no ties are broken differently by negation: stable on both
    np.testing.assert_array_equal(out.numpy(), np.argsort(keys, axis=axis, kind="stable"))
    assert out.dtype == np.int64


@given(data=st.data(), shape=shapes(min_dims=1), descending=st.booleans())
def test_sort(device, data, shape, descending):
    x = data.draw(distinct_values(shape))
    axis = axis_of(data, len(shape))
    t = mt.tensor(x, requires_grad=True, device=device)
    values, indices = t.sort(axis=axis, descending=descending)
    order = np.argsort(-x if descending else x, axis=axis)
    np.testing.assert_array_equal(indices.numpy(), order)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(x, order, axis))
    assert mt.gradcheck(lambda a: mt.sort(a, dim=axis, descending=descending)[0], [t])


@given(data=st.data(), shape=shapes(min_dims=1), largest=st.booleans())
def test_topk_sorted(device, data, shape, largest):
    x = data.draw(distinct_values(shape))
    axis = axis_of(data, len(shape))
    k = data.draw(st.integers(0, shape[axis]))
    t = mt.tensor(x, requires_grad=True, device=device)
    values, indices = t.topk(k, axis=axis, largest=largest)
    order = np.take(np.argsort(-x if largest else x, axis=axis), range(k), axis=axis)
    np.testing.assert_array_equal(indices.numpy(), order)
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(x, order, axis))
    assert mt.gradcheck(lambda a: a.topk(k, dim=axis, largest=largest)[0], [t])


@given(data=st.data(), shape=shapes(min_dims=1), largest=st.booleans())
def test_topk_unsorted_picks_the_same_set(device, data, shape, largest):
    x = data.draw(distinct_values(shape))
    axis = axis_of(data, len(shape))
    k = data.draw(st.integers(0, shape[axis]))
    t = mt.tensor(x, requires_grad=True, device=device)
    values, indices = mt.topk(t, k, axis, largest, sorted=False)
    expected = np.take(np.argsort(-x if largest else x, axis=axis), range(k), axis=axis)
    np.testing.assert_array_equal(np.sort(indices.numpy(), axis=axis), np.sort(expected, axis=axis))
    np.testing.assert_array_equal(values.numpy(), np.take_along_axis(x, indices.numpy(), axis))
    assert mt.gradcheck(lambda a: mt.topk(a, k, axis, largest, sorted=False)[0], [t])


def test_tied_values_each_get_their_own_gradient(device):
    """Unlike max, sort and topk route each output's gradient to the one entry it came from."""
    x = mt.tensor(np.array([1.0, 3.0, 3.0, 0.0]), requires_grad=True, device=device)
    values, indices = x.sort(descending=True, stable=True)
    assert indices.tolist() == [1, 2, 0, 3] and values.tolist() == [3.0, 3.0, 1.0, 0.0]
    values.backward(mt.tensor(np.array([10.0, 20.0, 30.0, 40.0]), device=device))
    np.testing.assert_array_equal(host(x.grad), [30.0, 10.0, 20.0, 40.0])
    x.grad = None
    values, indices = x.topk(2)
    assert sorted(indices.tolist()) == [1, 2]
    values.backward(mt.tensor(np.array([5.0, 7.0]), device=device))
    np.testing.assert_array_equal(host(x.grad)[indices.numpy()], [5.0, 7.0])
    assert host(x.grad)[[0, 3]].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sort_and_topk_keep_dtype(device, dtype):
    x = mt.tensor(np.array([[3.0, 1.0, 2.0]], dtype=dtype), requires_grad=True, device=device)
    values, _ = x.sort()
    top, _ = x.topk(2)
    assert values.dtype == dtype and top.dtype == dtype
    (values.sum() + top.sum()).backward()
    assert x.grad.dtype == dtype
    np.testing.assert_array_equal(host(x.grad), [[2.0, 1.0, 2.0]])


def test_sort_and_argsort_of_integers(device):
    x = mt.tensor(np.array([3, 1, 2, 1], dtype=np.uint8), device=device)
    values, indices = x.sort(descending=True, stable=True)
    assert values.tolist() == [3, 2, 1, 1] and indices.tolist() == [0, 2, 1, 3]
    assert x.topk(2, largest=False)[1].tolist() == [1, 3]


def test_selection_errors():
    x = mt.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="k=4 is out of range for axis 1 of size 3"):
        x.topk(4)
    with pytest.raises(ValueError, match="k=-1"):
        x.topk(-1)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        x.sort(axis=2)
    with pytest.raises(ValueError, match="axis -3 is out of range"):
        x.argmax(axis=-3)
    with pytest.raises(ValueError, match="argmin of an empty tensor"):
        mt.tensor(np.ones((0, 3))).argmin()
    with pytest.raises(TypeError, match="both axis and dim"):
        x.argsort(axis=0, dim=0)


def test_zero_dim_tensors_sort_to_themselves(device):
    x = mt.tensor(np.array(2.5), requires_grad=True, device=device)
    for values, indices in (x.sort(), x.topk(1)):
        assert values.shape == () and indices.shape == () and indices.item() == 0 and values.item() == 2.5
        values.backward(mt.tensor(np.array(3.0), device=device))
    assert x.grad.item() == 6.0 and x.argsort().item() == 0 and x.argmax().item() == 0
