"""Elementwise and matmul ops: forward against NumPy float64, gradients against finite differences."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf as mt
from minitf.testing import arrays, broadcastable_shapes, masks, shapes


def leaf(array, device):
    return mt.tensor(array, requires_grad=True, device=device)


def host(array):
    return mt.backend.to_device(array, "cpu")


@st.composite
def values(draw, shape, domain):
    """Float64 arrays on a domain that keeps finite differences away from kinks and poles."""
    if domain == "real":
        return draw(arrays(shape))
    if domain == "positive":  # log, sqrt, division, pow base
        return draw(arrays(shape, 0.5, 3.0))
    if domain == "exponent":
        return draw(arrays(shape, -2.0, 2.0))
    if domain == "nonzero":  # relu, abs: |x| >= 0.1
        magnitude = draw(arrays(shape, 0.1, 3.0))
        return np.where(draw(masks(shape)), -magnitude, magnitude)
    raise ValueError(domain)


def check_forward_and_grad(fn, reference, inputs, device):
    """fn(*tensors) matches reference(*arrays) in float64, and its backward passes gradcheck."""
    tensors = [leaf(a, device) for a in inputs]
    out = fn(*tensors)
    expected = reference(*inputs)
    assert out.shape == np.shape(expected) and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert mt.gradcheck(fn, tensors)


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


UNARY = {  # name: (NumPy reference, input domain)
    "exp": (np.exp, "real"),
    "log": (np.log, "positive"),
    "sqrt": (np.sqrt, "positive"),
    "tanh": (np.tanh, "real"),
    "sigmoid": (_np_sigmoid, "real"),
    "relu": (lambda x: np.maximum(x, 0), "nonzero"),
    "abs": (np.abs, "nonzero"),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data(), shape=shapes())
def test_unary_op(device, name, data, shape):
    reference, domain = UNARY[name]
    x = data.draw(values(shape, domain))
    check_forward_and_grad(lambda t: getattr(t, name)(), reference, [x], device)
    np.testing.assert_array_equal(getattr(mt, name)(leaf(x, device)).numpy(),
                                  getattr(leaf(x, device), name)().numpy())


def test_neg(device):
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    check_forward_and_grad(lambda t: -t, np.negative, [x], device)


BINARY = {  # name: (op, NumPy reference, domain of a, domain of b)
    "add": (lambda a, b: a + b, np.add, "real", "real"),
    "sub": (lambda a, b: a - b, np.subtract, "real", "real"),
    "mul": (lambda a, b: a * b, np.multiply, "real", "real"),
    "div": (lambda a, b: a / b, np.divide, "real", "positive"),
    "div_negative": (lambda a, b: a / -b, lambda a, b: a / -b, "real", "positive"),
    "pow": (lambda a, b: a ** b, np.power, "positive", "exponent"),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data(), shape_pair=broadcastable_shapes(2))
def test_binary_op_with_broadcasting(device, name, data, shape_pair):
    op, reference, domain_a, domain_b = BINARY[name]
    a = data.draw(values(shape_pair[0], domain_a))
    b = data.draw(values(shape_pair[1], domain_b))
    check_forward_and_grad(op, reference, [a, b], device)


SCALAR_OPS = {  # name: (op with a Python scalar on one side, NumPy reference, domain)
    "x + 2": (lambda x: x + 2, lambda x: x + 2, "real"),
    "1.5 + x": (lambda x: 1.5 + x, lambda x: 1.5 + x, "real"),
    "x - 2": (lambda x: x - 2, lambda x: x - 2, "real"),
    "2 - x": (lambda x: 2 - x, lambda x: 2 - x, "real"),
    "3 * x": (lambda x: 3 * x, lambda x: 3 * x, "real"),
    "x * -0.5": (lambda x: x * -0.5, lambda x: x * -0.5, "real"),
    "x / 4": (lambda x: x / 4, lambda x: x / 4, "real"),
    "2 / x": (lambda x: 2 / x, lambda x: 2 / x, "positive"),
    "x ** 2": (lambda x: x ** 2, lambda x: x ** 2, "real"),
    "x ** 3": (lambda x: x ** 3, lambda x: x ** 3, "real"),
    "x ** -1.5": (lambda x: x ** -1.5, lambda x: x ** -1.5, "positive"),
    "x ** 0.5": (lambda x: x ** 0.5, np.sqrt, "positive"),
    "2 ** x": (lambda x: 2 ** x, lambda x: 2.0 ** x, "real"),
    "0.5 ** x": (lambda x: 0.5 ** x, lambda x: 0.5 ** x, "real"),
}


@pytest.mark.parametrize("name", sorted(SCALAR_OPS))
@settings(max_examples=15)
@given(data=st.data(), shape=shapes())
def test_python_scalar_operands(device, name, data, shape):
    op, reference, domain = SCALAR_OPS[name]
    check_forward_and_grad(op, reference, [data.draw(values(shape, domain))], device)


@pytest.mark.parametrize("name", sorted(SCALAR_OPS))
def test_python_scalars_keep_float32(name):
    x = mt.tensor(np.array([0.5, 1.5], dtype=np.float32), requires_grad=True)
    out = SCALAR_OPS[name][0](x)
    assert out.dtype == np.float32
    out.backward(np.ones(2, dtype=np.float32))
    assert x.grad.dtype == np.float32 and x.grad.shape == (2,)


def test_array_operands_on_either_side():
    x = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = np.array([3.0, 5.0])
    out = c * x + x / c - c @ x  # c @ x is a scalar, broadcast over both outputs
    np.testing.assert_allclose(out.numpy(), c * x.numpy() + x.numpy() / c - c @ x.numpy())
    out.backward(np.ones(2))
    np.testing.assert_allclose(x.grad, c + 1 / c - 2 * c)


# ---- matmul ---------------------------------------------------------------------------

@st.composite
def matmul_shapes(draw):
    """Operand shapes for a @ b: 1-D operands, batches, broadcast leading axes."""
    batch_a, batch_b = draw(broadcastable_shapes(2, max_dims=2, max_side=3))
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    a = (k,) if draw(st.booleans()) else batch_a + (n, k)
    b = (k,) if draw(st.booleans()) else batch_b + (k, m)
    return a, b


@given(data=st.data(), operand_shapes=matmul_shapes())
def test_matmul(device, data, operand_shapes):
    a, b = (data.draw(arrays(s)) for s in operand_shapes)
    check_forward_and_grad(lambda x, y: x @ y, np.matmul, [a, b], device)
    np.testing.assert_allclose(mt.matmul(leaf(a, device), leaf(b, device)).numpy(), a @ b)
    np.testing.assert_allclose(leaf(a, device).matmul(leaf(b, device)).numpy(), a @ b)


def test_matmul_with_an_array_on_the_left():
    w = mt.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    m = np.ones((4, 3))
    out = m @ w
    np.testing.assert_allclose(out.numpy(), m @ w.numpy())
    assert mt.gradcheck(lambda t: m @ t, [w])


@pytest.mark.parametrize("a, b", [((2, 3), (2, 3)), ((3,), (4,)), ((), (3,)), ((2, 3), ())])
def test_matmul_shape_errors(a, b):
    with pytest.raises(ValueError, match="matmul"):
        mt.tensor(np.ones(a)) @ mt.tensor(np.ones(b))


# ---- non-contiguous inputs ------------------------------------------------------------

NON_CONTIGUOUS = {
    "transposed": lambda a: a.T,
    "strided": lambda a: a[::2, ::-1],
    "broadcast view": lambda a: np.broadcast_to(a[:1], a.shape),
}


@pytest.mark.parametrize("view", sorted(NON_CONTIGUOUS))
@settings(max_examples=20)
@given(base=arrays(st.tuples(st.integers(2, 5), st.integers(2, 5))))
def test_non_contiguous_inputs(device, view, base):
    x_np = NON_CONTIGUOUS[view](base)
    w_np = np.linspace(-1, 1, x_np.shape[1] * 3).reshape(x_np.shape[1], 3)
    x = mt.tensor(x_np, requires_grad=True, device=device)

    def fn(t):
        return (t @ mt.tensor(w_np, device=device)).tanh() * t.sum(axis=1, keepdims=True) + t.exp()[:, :1]

    out = fn(x)
    expected = np.tanh(x_np @ w_np) * x_np.sum(axis=1, keepdims=True) + np.exp(x_np)[:, :1]
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)
    out.backward(mt.tensor(np.ones(out.shape), device=device))
    assert x.grad.shape == x_np.shape and x.grad.dtype == np.float64
    assert mt.gradcheck(fn, [x])


# ---- dtypes, comparisons, astype ------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BINARY))
def test_float32_meets_float64(device, name):
    op = BINARY[name][0]
    a = mt.tensor(np.array([[0.5], [1.5]], dtype=np.float32), requires_grad=True, device=device)
    b = mt.tensor(np.array([0.7, 1.2, 2.0]), requires_grad=True, device=device)
    out = op(a, b)
    assert out.dtype == np.float64 and out.shape == (2, 3)
    out.backward(mt.tensor(np.ones((2, 3)), device=device))
    assert a.grad.dtype == np.float32 and a.grad.shape == (2, 1)
    assert b.grad.dtype == np.float64 and b.grad.shape == (3,)


COMPARISONS = {
    "<": (lambda a, b: a < b, np.less), "<=": (lambda a, b: a <= b, np.less_equal),
    ">": (lambda a, b: a > b, np.greater), ">=": (lambda a, b: a >= b, np.greater_equal),
    "==": (lambda a, b: a == b, np.equal), "!=": (lambda a, b: a != b, np.not_equal),
}


@pytest.mark.parametrize("name", sorted(COMPARISONS))
@settings(max_examples=10)
@given(data=st.data(), shape_pair=broadcastable_shapes(2))
def test_comparisons(device, name, data, shape_pair):
    op, reference = COMPARISONS[name]
    # few distinct values, so that ties (== and !=) actually occur
    a_np, b_np = (data.draw(arrays(s, -1, 1)).round() for s in shape_pair)
    a, b = leaf(a_np, device), leaf(b_np, device)
    for out, expected in [(op(a, b), reference(a_np, b_np)), (op(a, 0.0), reference(a_np, 0.0)),
                          (op(0.0, b), reference(0.0, b_np))]:
        assert out.dtype == np.bool_ and not out.requires_grad and out.is_leaf
        np.testing.assert_array_equal(out.numpy(), expected)


def test_astype(device):
    x_np = np.array([[0.25, -1.5], [3.0, 2.0]])
    x = leaf(x_np, device)
    y = x.astype(np.float32)
    assert y.dtype == np.float32 and y.requires_grad
    v = np.array([[1.0, 2.0], [-3.0, 0.5]], dtype=np.float32)
    (y * 2.0).backward(mt.tensor(v, device=device))
    assert x.grad.dtype == np.float64 and x.grad.shape == (2, 2)
    np.testing.assert_allclose(host(x.grad), 2 * v)
    ints = x.astype(np.int64)
    assert ints.dtype == np.int64 and not ints.requires_grad
    np.testing.assert_array_equal(ints.numpy(), x_np.astype(np.int64))
    assert mt.gradcheck(lambda t: t.astype(np.float64).exp(), [x])


# ---- documented conventions at kinks, and stability -----------------------------------

@pytest.mark.parametrize("op, x, expected_grad", [
    ("relu", [-1.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    ("abs", [-2.0, 0.0, 3.0], [-1.0, 0.0, 1.0]),
])
def test_kink_conventions(device, op, x, expected_grad):
    t = leaf(np.array(x), device)
    getattr(t, op)().backward(mt.tensor(np.ones(3), device=device))
    np.testing.assert_array_equal(host(t.grad), expected_grad)


def test_pow_gradient_for_the_exponent_is_zero_where_the_base_is_not_positive():
    base = mt.tensor(np.array([0.0, -2.0, 2.0]))
    exponent = mt.tensor(np.array([2.0, 2.0, 2.0]), requires_grad=True)
    (base ** exponent).backward(np.ones(3))
    np.testing.assert_allclose(exponent.grad, [0.0, 0.0, 4 * np.log(2)])


def test_powers_zero_and_one_have_finite_derivatives_at_zero(device):
    """d(x**0)/dx = 0 and d2(x**1)/dx2 = 0 at x = 0, as PyTorch (not 0 * inf = nan)."""
    x = mt.tensor(np.array([0.0, 2.0]), requires_grad=True, device=device)
    (x ** 0).backward(mt.tensor(np.ones(2), device=device))
    np.testing.assert_array_equal(host(x.grad), [0.0, 0.0])
    (g,) = mt.autograd.grad((x ** 1 * x).sum(), x, create_graph=True)  # 2x
    (h,) = mt.autograd.grad(g.sum(), x)
    np.testing.assert_array_equal(host(h), [2.0, 2.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_and_tanh_are_stable_for_large_inputs(device, dtype):
    x = mt.tensor(np.array([-1000.0, 0.0, 1000.0], dtype=dtype), requires_grad=True, device=device)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        s = x.sigmoid()
        (s + x.tanh()).backward(mt.tensor(np.ones(3, dtype=dtype), device=device))
    assert s.dtype == dtype
    np.testing.assert_array_equal(s.numpy(), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(host(x.grad), [0.0, 1.25, 0.0])
