"""Reductions (sum, mean, max, min): axis None / int / negative / tuple, keepdims, tie rules."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitf as mt
from minitf.testing import arrays, axes, distinct_values, shapes


def host(array):
    return mt.backend.to_device(array, "cpu")


REDUCTIONS = {  # name: (NumPy reference, needs distinct values for the gradcheck)
    "sum": (np.sum, False),
    "mean": (np.mean, False),
    "max": (np.max, True),
    "min": (np.min, True),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data(), shape=shapes(), keepdims=st.booleans())
def test_reduction(device, name, data, shape, keepdims):
    reference, distinct = REDUCTIONS[name]
    x_np = data.draw(distinct_values(shape) if distinct else arrays(shape))
    axis = data.draw(axes(len(shape)))
    x = mt.tensor(x_np, requires_grad=True, device=device)

    def fn(t):
        return getattr(t, name)(axis=axis, keepdims=keepdims)

    out = fn(x)
    expected = reference(x_np, axis=axis, keepdims=keepdims)
    assert out.shape == expected.shape and out.dtype == x_np.dtype
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(getattr(mt, name)(x, axis=axis, keepdims=keepdims).numpy(),
                                  out.numpy())
    assert mt.gradcheck(fn, [x])


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_keeps_float32(device, name):
    x = mt.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), requires_grad=True, device=device)
    out = getattr(x, name)(axis=-1)
    assert out.dtype == np.float32 and out.shape == (2,)
    out.backward(mt.tensor(np.ones(2, dtype=np.float32), device=device))
    assert x.grad.dtype == np.float32 and x.grad.shape == (2, 3)


@pytest.mark.parametrize("name, x, axis, expected_grad", [
    ("max", [1.0, 3.0, 3.0], None, [0.0, 0.5, 0.5]),
    ("min", [2.0, 1.0, 1.0], None, [0.0, 0.5, 0.5]),
    ("max", [2.0, 2.0, 2.0, 2.0], 0, [0.25] * 4),
    ("max", [[1.0, 1.0], [0.0, 2.0]], 1, [[0.5, 0.5], [0.0, 1.0]]),
    ("min", [[1.0, 1.0], [0.0, 2.0]], 0, [[0.0, 1.0], [1.0, 0.0]]),
    ("max", [[4.0, 1.0], [4.0, 4.0]], (0, 1), [[1 / 3, 0.0], [1 / 3, 1 / 3]]),
])
def test_tied_extremes_share_the_gradient_equally(device, name, x, axis, expected_grad):
    t = mt.tensor(np.array(x), requires_grad=True, device=device)
    out = getattr(t, name)(axis=axis)
    out.backward(mt.tensor(np.ones(out.shape), device=device))
    np.testing.assert_allclose(host(t.grad), expected_grad)


@pytest.mark.parametrize("axis", [2, -3, (0, 0), (1, -1)])
def test_invalid_axes_raise(axis):
    x = mt.tensor(np.ones((2, 3)))
    for name in REDUCTIONS:
        with pytest.raises(ValueError, match="axis"):
            getattr(x, name)(axis=axis)


def test_reductions_of_integer_tensors_have_no_graph():
    x = mt.tensor([[1, 5], [7, 2]])
    assert x.max().item() == 7 and x.min(axis=0).tolist() == [1, 2]
    assert x.sum(axis=1).tolist() == [6, 9] and not x.sum().requires_grad
