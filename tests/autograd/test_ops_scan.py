"""cumsum and cumprod: forward against NumPy float64, gradients against finite differences,
cumprod's backward exact with zeros (it divides by nothing). Each on both paths: NumPy's
accumulate, and the loop over the axis used for many rows (forced with `row_loop`)."""
import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitf as mt
from minitf.autograd import ops_scan
from minitf.testing import arrays, masks, shapes


@contextlib.contextmanager
def row_loop(on):
    """Force the loop over the axis (any number of rows) when `on`."""
    saved = ops_scan.ROWS_FOR_LOOP
    ops_scan.ROWS_FOR_LOOP = 1 if on else saved
    try:
        yield
    finally:
        ops_scan.ROWS_FOR_LOOP = saved


def leaf(array, device):
    return mt.tensor(np.asarray(array, dtype=np.float64), requires_grad=True, device=device)


def scan_axis(ndim):
    return st.none() | st.integers(-ndim, ndim - 1) if ndim else st.none()


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@given(data=st.data(), shape=shapes())
def test_scan(device, name, loop, data, shape):
    x_np = data.draw(arrays(shape, -2.0, 2.0))
    if name == "cumprod":  # zeros, several per lane, where the mask says
        x_np = np.where(data.draw(masks(shape)) & data.draw(masks(shape)), 0.0, x_np)
    axis = data.draw(scan_axis(len(shape)))
    x = leaf(x_np, device)
    with row_loop(loop):
        _check_scan(x, x_np, name, axis)


def _check_scan(x, x_np, name, axis):
    out = getattr(x, name)(axis)
    expected = getattr(np, name)(x_np, axis=axis)
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(getattr(mt, name)(x, dim=axis).numpy(), out.numpy())
    assert mt.gradcheck(lambda t: getattr(t, name)(axis), [x])


def cumprod_grad_by_definition(x, g):
    """d/dx_k sum_i g_i prod_{j<=i} x_j = sum_{i>=k} g_i prod_{j<=i, j!=k} x_j (1-D)."""
    n = len(x)
    return np.array([sum(g[i] * np.prod([x[j] for j in range(i + 1) if j != k])
                         for i in range(k, n)) for k in range(n)])


@pytest.mark.parametrize("x", [
    [2.0, 0.0, 3.0, 4.0], [0.0, 0.0, 2.0], [1.5, 2.0, 0.0], [0.0], [3.0, 0.0, 0.5, 0.0, 2.0],
    [1e-200, 1e-200, 1e200, 3.0],  # the running product underflows: dividing would lose terms
])
@pytest.mark.parametrize("loop", [False, True])
def test_cumprod_gradient_with_zeros_is_exact(device, x, loop):
    g = np.arange(1.0, len(x) + 1)
    t = leaf(np.stack([x, x]).T, device)  # two rows along axis 1: the loop path runs on rows
    with row_loop(loop):
        t.cumprod(0).backward(mt.tensor(np.stack([g, g]).T, device=device))
    t.grad = t.grad[:, 0]
    np.testing.assert_allclose(mt.backend.to_device(t.grad, "cpu"), cumprod_grad_by_definition(x, g),
                               rtol=1e-12)
    assert np.isfinite(mt.backend.to_device(t.grad, "cpu")).all()


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scan_keeps_dtype(device, name, dtype):
    x = mt.tensor(np.array([[0.5, 2.0, 0.0], [1.0, -1.0, 3.0]], dtype=dtype), requires_grad=True,
                  device=device)
    out = getattr(x, name)(axis=-1)
    assert out.dtype == dtype
    out.backward(mt.tensor(np.ones((2, 3), dtype=dtype), device=device))
    assert x.grad.dtype == dtype and x.grad.shape == (2, 3)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_scan_bad_axes(name):
    x = mt.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        getattr(x, name)(2)
    with pytest.raises(TypeError, match="int or None"):
        getattr(x, name)((0, 1))
    with pytest.raises(TypeError, match="both axis and dim"):
        getattr(x, name)(0, dim=1)
    with pytest.raises(ValueError, match="0-d"):
        getattr(mt.tensor(1.0), name)(0)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_scan_of_many_rows_takes_the_loop_and_matches_numpy_exactly(name, axis):
    """Shapes over several transpose tiles (16 x 256, 64 x 64) in both directions."""
    x_np = 1 + 0.01 * np.random.default_rng(0).standard_normal((4, 70, 300))
    assert ops_scan._loops_over_axis(x_np, axis % 3)  # at least 256 rows
    x = mt.tensor(x_np, requires_grad=True)
    out = getattr(x, name)(axis)
    np.testing.assert_array_equal(out.numpy(), getattr(np, name)(x_np, axis=axis))
    g = np.random.default_rng(1).standard_normal(x_np.shape)
    out.backward(mt.tensor(g))
    with row_loop(False):
        ops_scan.ROWS_FOR_LOOP = 10 ** 9
        y = mt.tensor(x_np, requires_grad=True)
        getattr(y, name)(axis).backward(mt.tensor(g))
    np.testing.assert_allclose(x.grad, y.grad, rtol=1e-10, atol=1e-12)
