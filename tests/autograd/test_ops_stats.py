"""logsumexp, var, std, norm: forward against NumPy float64, gradients against finite
differences (axes None / int / negative / tuple, keepdims), and their edge cases."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitf as mt
from minitf.testing import arrays, axes, shapes


def leaf(array, device):
    return mt.tensor(np.asarray(array, dtype=np.float64), requires_grad=True, device=device)


def host(array):
    return mt.backend.to_device(array, "cpu")


def np_logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def np_norm(x, p, axis, keepdims):
    a = np.abs(x)
    if p == math.inf:
        return a.max(axis=axis, keepdims=keepdims)
    return (a ** p).sum(axis=axis, keepdims=keepdims) ** (1 / p)


@st.composite
def spread_values(draw, shape):
    """Distinct values at least 0.1 apart (no ties in |x|, no near-zero variance)."""
    size = int(np.prod(shape))
    order = np.array(draw(st.permutations(range(size))), dtype=np.float64).reshape(shape)
    return (order + 0.5) * 0.1 * np.where(draw(arrays(shape)) > 0, 1, -1) + 0.01 * order


CASES = {  # name: (call on tensor with axis/keepdims, NumPy reference, needs spread values)
    "logsumexp": (lambda t, a, k: t.logsumexp(a, k), np_logsumexp, False),
    "var": (lambda t, a, k: t.var(a, k), lambda x, a, k: np.var(x, axis=a, keepdims=k), False),
    "var_ddof1": (lambda t, a, k: t.var(dim=a, keepdims=k, correction=1),
                  lambda x, a, k: np.var(x, axis=a, keepdims=k, ddof=1), False),
    "std": (lambda t, a, k: t.std(a, k), lambda x, a, k: np.std(x, axis=a, keepdims=k), True),
    "std_ddof1": (lambda t, a, k: mt.std(t, a, k, ddof=1),
                  lambda x, a, k: np.std(x, axis=a, keepdims=k, ddof=1), True),
    "norm2": (lambda t, a, k: t.norm(2, a, k), lambda x, a, k: np_norm(x, 2, a, k), True),
    "norm1": (lambda t, a, k: t.norm(1, a, k), lambda x, a, k: np_norm(x, 1, a, k), True),
    "norm_inf": (lambda t, a, k: mt.norm(t, math.inf, dim=a, keepdims=k),
                 lambda x, a, k: np_norm(x, math.inf, a, k), True),
}


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data(), shape=shapes(), keepdims=st.booleans())
def test_reduction(device, name, data, shape, keepdims):
    op, reference, spread = CASES[name]
    x_np = data.draw(spread_values(shape) if spread else arrays(shape))
    axis = data.draw(axes(len(shape)))
    count = int(np.prod([shape[a] for a in np.atleast_1d(axis if axis is not None
                                                         else range(len(shape)))], dtype=int))
    if name.endswith("ddof1") and count < 2:
        with pytest.raises(ValueError, match="degrees of freedom"):
            op(leaf(x_np, device), axis, keepdims)
        return
    x = leaf(x_np, device)
    out = op(x, axis, keepdims)
    expected = reference(x_np, axis, keepdims)
    assert out.shape == np.shape(expected) and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    if name.startswith("std") and count < 2:
        return  # std of one value: its gradient is 0 by convention (tested below), not smooth
    assert mt.gradcheck(lambda t: op(t, axis, keepdims), [x])


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(device, name, dtype):
    x = mt.tensor(np.array([[0.5, -2.0, 1.0], [1.5, 0.25, -3.0]], dtype=dtype), requires_grad=True,
                  device=device)
    out = CASES[name][0](x, -1, False)
    assert out.dtype == dtype and out.shape == (2,)
    out.backward(mt.tensor(np.ones(2, dtype=dtype), device=device))
    assert x.grad.dtype == dtype and x.grad.shape == (2, 3)


def test_logsumexp_is_stable(device):
    x = leaf([[1000.0, 1000.0], [-1000.0, -1000.0], [-np.inf, -np.inf], [-np.inf, 0.0]], device)
    out = x.logsumexp(axis=1)
    np.testing.assert_allclose(out.numpy(), [1000 + np.log(2), -1000 + np.log(2), -np.inf, 0.0])
    out.backward(mt.tensor(np.ones(4), device=device))
    np.testing.assert_allclose(host(x.grad), [[0.5, 0.5], [0.5, 0.5], [0.0, 0.0], [0.0, 1.0]])
    assert mt.tensor(np.array([np.inf, 1.0]), device=device).logsumexp().item() == np.inf


def test_zero_variance_and_zero_norm_give_zero_gradients(device):
    x = leaf([[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]], device)
    zeros = x[1]
    (x.std(axis=1).sum() + x.std(axis=1, ddof=1).sum() + zeros.norm() + zeros.norm(1)
     + zeros.norm(math.inf)).backward()
    np.testing.assert_array_equal(host(x.grad), np.zeros((2, 3)))


def test_ties_share_the_inf_norm_gradient(device):
    x = leaf([3.0, -3.0, 1.0], device)
    x.norm(math.inf).backward()
    np.testing.assert_array_equal(host(x.grad), [0.5, -0.5, 0.0])


def test_var_default_is_numpys_ddof0():
    x = np.array([1.0, 2.0, 4.0])
    assert mt.tensor(x).var().item() == pytest.approx(np.var(x))
    assert mt.tensor(x).std(correction=1).item() == pytest.approx(np.std(x, ddof=1))


def test_bad_arguments():
    x = mt.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="p must be 1, 2 or inf"):
        x.norm(3)
    with pytest.raises(TypeError, match="disagree"):
        x.var(ddof=0, correction=1)
    with pytest.raises(ValueError, match="non-negative int"):
        x.std(ddof=-1)
    with pytest.raises(ValueError, match="2 element.*ddof=2"):
        x.var(axis=0, ddof=2)
    with pytest.raises(TypeError, match="both axis and dim"):
        x.logsumexp(0, dim=0)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        x.norm(axis=2)
    with pytest.raises(ValueError, match="empty"):
        mt.tensor(np.ones((0,))).logsumexp()
