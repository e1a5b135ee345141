"""minitf.testing: the strategies produce what they claim, and assert_grad_close checks user ops."""
import numpy as np
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

import minitf as mt
from minitf import Tensor, testing
from minitf.testing import (arrays, as_tensors, assert_grad_close, axes, broadcastable_shapes, distinct_values,
                            masks, shapes)


@given(st.data(), st.integers(0, 3), st.integers(0, 3), st.integers(1, 4), st.integers(0, 3))
def test_shapes_stay_in_bounds(data, min_dims, extra_dims, min_side, extra_side):
    max_dims, max_side = min_dims + extra_dims, min_side + extra_side
    shape = data.draw(shapes(min_dims, max_dims, min_side, max_side))
    assert isinstance(shape, tuple) and min_dims <= len(shape) <= max_dims
    assert all(min_side <= n <= max_side for n in shape)


@given(shapes())
def test_default_shapes_follow_the_documented_limits(shape):
    assert len(shape) <= testing.MAX_DIMS == 4
    assert all(1 <= n <= testing.MAX_SIDE == 5 for n in shape)


@given(st.data(), st.integers(1, 4))
def test_broadcastable_shapes_really_broadcast(data, num_shapes):
    result = data.draw(broadcastable_shapes(num_shapes))
    assert len(result) == num_shapes
    full = np.broadcast_shapes(*result)
    for shape in result:
        assert len(shape) <= testing.MAX_DIMS and all(1 <= n <= testing.MAX_SIDE for n in shape)
        np.broadcast_to(np.zeros(shape), full)


def test_broadcastable_shapes_exercise_broadcasting():
    """They are not all equal: some pairs differ in rank, some stretch a size-1 axis."""
    find(broadcastable_shapes(2), lambda s: len(s[0]) != len(s[1]))
    find(broadcastable_shapes(2), lambda s: any(a == 1 < b for a, b in zip(s[0][::-1], s[1][::-1])))


@given(st.data(), st.floats(-10, 0), st.floats(0.1, 10), st.sampled_from([np.float32, np.float64]))
def test_arrays_have_the_claimed_shape_dtype_and_bounds(data, low, width, dtype):
    shape = data.draw(shapes())
    high = low + width
    a = data.draw(arrays(shape, low, high, dtype=dtype))
    assert a.shape == shape and a.dtype == dtype
    assert np.isfinite(a).all()
    assert ((a >= dtype(low)) & (a <= dtype(high))).all()
    assert data.draw(arrays(shapes())).dtype == np.float64


@given(st.data())
def test_axes_are_valid_for_the_rank(data):
    shape = data.draw(shapes())
    axis = data.draw(axes(len(shape)))
    np.sum(np.zeros(shape), axis=axis)  # NumPy accepts it: in range, no repeats
    if isinstance(axis, tuple):
        assert len({a % len(shape) for a in axis}) == len(axis)


@pytest.mark.parametrize("predicate", [
    lambda a: a is None,
    lambda a: isinstance(a, int) and a < 0,
    lambda a: isinstance(a, tuple) and len(a) > 1 and any(x < 0 for x in a),
])
def test_axes_cover_none_negative_and_tuples(predicate):
    find(axes(3), predicate)


@given(axes(2, allow_none=False, allow_tuple=False))
def test_axes_can_be_restricted_to_ints(axis):
    assert axis in (-2, -1, 0, 1)


def test_axes_of_a_scalar_are_none():
    assert find(axes(0), lambda a: True) is None


@given(st.data())
def test_masks_are_boolean(data):
    shape = data.draw(shapes())
    m = data.draw(masks(shape))
    assert m.dtype == np.bool_ and m.shape == shape


@given(st.data(), st.sampled_from([0.1, 0.5]))
def test_distinct_values_are_gap_apart(data, gap):
    shape = data.draw(shapes())
    x = data.draw(distinct_values(shape, gap))
    assert x.dtype == np.float64 and x.shape == shape
    np.testing.assert_allclose(np.diff(np.sort(x, axis=None)), gap)


def test_device_under_test_and_as_tensors(monkeypatch):
    monkeypatch.delenv("MINITF_TEST_DEVICE", raising=False)
    assert testing.device_under_test() == "cpu"
    monkeypatch.setenv("MINITF_TEST_DEVICE", "cuda:1")
    assert testing.device_under_test() == "cuda:1"
    a, b = as_tensors(np.ones(2, dtype=np.float32), [1, 2], device="cpu")
    assert a.dtype == b.dtype == np.float64 and a.requires_grad and b.requires_grad
    (c,) = as_tensors([1.0], requires_grad=False, device="cpu")
    assert not c.requires_grad


# ---- assert_grad_close on a user-defined op (the README's example) ----------------------

def softplus(x):
    """log(1 + exp(x)), built from minitf ops."""
    return (x.exp() + 1.0).log()


def softplus_by_hand(x, wrong=False):
    """The same op as a new primitive with its own backward (d/dx = sigmoid(x))."""
    xp = mt.backend.get_array_module(x.data)
    out = xp.log1p(xp.exp(x.data))

    def backward(g):
        slope = 1 / (1 + xp.exp(-x.data))
        return (g * (slope if not wrong else slope * slope),)

    return Tensor.from_op(out, (x,), backward)


@given(arrays(shapes()))
def test_assert_grad_close_on_user_ops(device, x):
    assert_grad_close(softplus, x)
    assert_grad_close(softplus_by_hand, x, fast=True)


def test_assert_grad_close_catches_a_wrong_user_backward(device):
    x = np.linspace(-2, 2, 6).reshape(2, 3)
    with pytest.raises(AssertionError, match="gradient mismatch"):
        assert_grad_close(lambda t: softplus_by_hand(t, wrong=True), x)


def test_assert_grad_close_passes_non_float_inputs_through(device):
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    rows = mt.tensor(np.arange(2), device=device)
    ids = mt.tensor(np.array([2, 0]), device=device)
    mask = mt.tensor(np.array([[True, False, True]]), device=device)
    assert_grad_close(lambda t, i, m: t[rows, i].exp() + t.masked_fill(m, 0.0).sum(), x, ids, mask)
