"""The Tensor and the reverse-mode engine: creation rules, backward, accumulation, graph release."""
import gc
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitf as mt
from minitf.testing import arrays, broadcastable_shapes, shapes


def leaf(array, device, dtype=None):
    return mt.tensor(array, requires_grad=True, dtype=dtype, device=device)


def host(array):
    """A backend array as a NumPy array."""
    return mt.backend.to_device(array, "cpu")


def cotangent(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def stored_grads_are_independent(*arrays):
    """No two of the arrays share memory (stored grads, data, the caller's cotangent)."""
    return not any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])


# ---- creating tensors -------------------------------------------------------------------

@pytest.mark.parametrize("data, dtype", [
    (1.5, np.float32),
    ([1.0, 2.5], np.float32),
    ([[1.0, 2.0], [3.0, 4.0]], np.float32),
    (np.array([1.0, 2.0]), np.float64),
    (np.array([1.0, 2.0], dtype=np.float32), np.float32),
    (np.float64(2.0), np.float64),
    (3, np.int64),
    ([1, 2, 3], np.int64),
    (np.array([1, 2], dtype=np.int32), np.int32),
    (True, np.bool_),
    ([True, False], np.bool_),
])
def test_tensor_dtype_rules(data, dtype):
    t = mt.tensor(data)
    assert t.dtype == dtype
    assert t.shape == np.shape(data)
    np.testing.assert_array_equal(t.numpy(), np.asarray(data))


@pytest.mark.parametrize("data", [3, [1, 2], np.arange(3, dtype=np.int32), True, [True, False]])
def test_integer_and_boolean_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match="floating-point"):
        mt.tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="floating-point"):
        mt.tensor(data).requires_grad_()


def test_explicit_dtype_overrides_the_rules():
    t = mt.tensor([1, 2], dtype=np.float64, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad


@given(arrays(shapes(), dtype=np.float32) | arrays(shapes(), dtype=np.float64))
def test_tensor_attributes(device, array):
    t = mt.tensor(array, requires_grad=True, device=device)
    assert t.shape == array.shape and t.dtype == array.dtype
    assert t.requires_grad and t.grad is None and t.is_leaf
    assert str(t.device) == str(mt.backend.parse_device(device))
    assert isinstance(t.numpy(), np.ndarray)
    np.testing.assert_array_equal(t.numpy(), array)
    d = t.detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), array)
    assert t.to("cpu").device == mt.backend.CPU
    np.testing.assert_array_equal(t.to("cpu").numpy(), array)


def test_item():
    assert mt.tensor([[2.5]]).item() == 2.5
    assert isinstance(mt.tensor(np.array(3.0)).item(), float)
    with pytest.raises(ValueError, match="one element"):
        mt.tensor([1.0, 2.0]).item()


def test_detach_cuts_the_graph(device):
    x = leaf(np.array([1.0, 2.0, 3.0]), device)
    (x.detach() * x).sum().backward()
    np.testing.assert_allclose(host(x.grad), x.numpy())  # only the live branch


# ---- backward: values and accumulation --------------------------------------------------

def test_reused_tensor_accumulates(device):
    x = leaf(np.array([1.0, -2.0, 3.0]), device)
    v = cotangent(3)
    (x * x).backward(mt.tensor(v, device=device))
    np.testing.assert_allclose(host(x.grad), 2 * x.numpy() * v)


def test_several_branches_accumulate(device):
    data = np.array([0.5, -1.0, 2.0])
    x = leaf(data, device)
    y = x.exp() + x * 3.0 + x.tanh()
    v = cotangent(3, seed=1)
    y.backward(mt.tensor(v, device=device))
    expected = v * (np.exp(data) + 3.0 + 1 - np.tanh(data) ** 2)
    np.testing.assert_allclose(host(x.grad), expected)


def test_diamond_graph(device):
    data = np.array([[0.3, -0.7], [1.1, 0.2]])
    x = leaf(data, device)
    a = x * 2.0
    d = a.exp() + a * a  # both branches go through a
    v = cotangent((2, 2), seed=2)
    d.backward(mt.tensor(v, device=device))
    expected = v * (np.exp(2 * data) + 2 * (2 * data)) * 2
    np.testing.assert_allclose(host(x.grad), expected)


def test_two_backward_calls_accumulate(device):
    x = leaf(np.array([1.0, 2.0]), device)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(host(x.grad), 3.0 + 2 * np.array([1.0, 2.0]))
    x.zero_grad()
    assert x.grad is None


def test_deep_chain_has_no_recursion_limit(device):
    x = leaf(np.array([1.0, 2.0]), device)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(host(x.grad), [1.0001 ** 10_000] * 2, rtol=1e-9)


def test_deep_chain_with_retained_graph_can_be_freed(device):
    x = leaf(np.array([1.0]), device)
    y = x
    for _ in range(10_000):
        y = y + 1.0
    y.backward(retain_graph=True)
    y.backward()
    del y
    gc.collect()
    assert float(x.grad[0]) == 2.0


@given(broadcastable_shapes(2), st.data())
def test_broadcast_gradients_sum_back_to_the_input_shape(device, shape_pair, data):
    sa, sb = shape_pair
    a_np = data.draw(arrays(sa))
    b_np = data.draw(arrays(sb))
    a, b = leaf(a_np, device), leaf(b_np, device)
    out = a * b
    v = cotangent(out.shape)
    out.backward(mt.tensor(v, device=device))
    full = np.broadcast_shapes(sa, sb)
    assert a.grad.shape == sa and b.grad.shape == sb
    np.testing.assert_allclose(host(a.grad), _sum_to(v * np.broadcast_to(b_np, full), sa))
    np.testing.assert_allclose(host(b.grad), _sum_to(v * np.broadcast_to(a_np, full), sb))


def _sum_to(g, shape):
    """Reference for undoing broadcasting: sum the leading and the stretched axes."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))
    return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


@given(broadcastable_shapes(2), st.sampled_from([np.float32, np.float64]),
       st.sampled_from([np.float32, np.float64]), st.data())
def test_gradient_layout_matches_each_input(device, shape_pair, dtype_a, dtype_b, data):
    """Mixed float32/float64 and broadcasting: each grad has its own input's shape and dtype."""
    sa, sb = shape_pair
    a = leaf(data.draw(arrays(sa, dtype=dtype_a)), device)
    b = leaf(data.draw(arrays(sb, dtype=dtype_b)), device)
    out = (a * b + a - b / (b.abs() + 1.0)).tanh()
    assert out.dtype == np.result_type(dtype_a, dtype_b)
    out.backward(mt.tensor(cotangent(out.shape), device=device))
    for t in (a, b):
        assert t.grad.shape == t.shape and t.grad.dtype == t.dtype
        assert type(t.grad) is type(t.data)


def test_zero_dimensional_grad_is_an_array():
    x = mt.tensor(np.array(2.0), requires_grad=True)
    y = (x * 3.0).exp()
    assert isinstance(y.data, np.ndarray) and isinstance(x.sum().data, np.ndarray)
    y.backward()
    assert isinstance(x.grad, np.ndarray) and x.grad.shape == ()
    np.testing.assert_allclose(x.grad, 3 * np.exp(6.0))


def test_constants_get_no_grad(device):
    x = leaf(np.array([1.0, 2.0]), device)
    c = mt.tensor(np.array([3.0, 4.0]), device=device)
    (x * c).sum().backward()
    assert c.grad is None and not c.requires_grad
    np.testing.assert_allclose(host(x.grad), [3.0, 4.0])


# ---- stored grads never alias -----------------------------------------------------------

@pytest.mark.parametrize("combine", [
    lambda a, b: a + b,
    lambda a, b: (a + b) * 2.0,
    lambda a, b: mt.concat([a, b]).reshape(2, 3),
    lambda a, b: a.expand(2, 3) + b,
    lambda a, b: mt.stack([a.astype(np.float64), b]),
    lambda a, b: a - b,
])
def test_stored_grads_never_alias(combine):
    a = mt.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = mt.tensor(np.array([4.0, 5.0, 6.0]), requires_grad=True)
    out = combine(a, b)
    v = cotangent(out.shape)
    v_before = v.copy()
    out.backward(v)
    assert stored_grads_are_independent(a.grad, b.grad, v, a.data, b.data)
    b_before = b.grad.copy()
    a.grad += 100.0
    np.testing.assert_array_equal(b.grad, b_before)
    np.testing.assert_array_equal(v, v_before)


def test_leaf_grad_does_not_alias_the_seed():
    x = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    v = np.array([0.5, -1.0])
    x.backward(v)
    x.grad *= 10
    np.testing.assert_array_equal(v, [0.5, -1.0])
    y = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y.sum().backward()
    assert y.grad.flags.writeable and y.grad.base is None


# ---- graph release and retain_graph -----------------------------------------------------

def test_second_backward_through_freed_graph_raises(device):
    x = leaf(np.array([1.0, 2.0]), device)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_freed_intermediate_raises_for_a_new_output(device):
    x = leaf(np.array([1.0, 2.0]), device)
    z = x.exp()
    z.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (z * 3.0).sum().backward()


def test_retain_graph_allows_a_second_backward_that_doubles_the_grads(device):
    data = np.array([1.0, -2.0])
    x = leaf(data, device)
    y = (x * x.exp()).sum()
    y.backward(retain_graph=True)
    once = host(x.grad).copy()
    y.backward()
    np.testing.assert_allclose(host(x.grad), 2 * once)
    np.testing.assert_allclose(once, np.exp(data) * (1 + data))


@pytest.mark.parametrize("retain", [False, True])
def test_saved_arrays_are_released_unless_retained(retain):
    x = mt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    e = x.exp()
    saved = weakref.ref(e.data)
    y = (e * x).sum()  # mul saves e.data for x's gradient
    del e
    gc.collect()
    assert saved() is not None  # the graph keeps it
    y.backward(retain_graph=retain)
    gc.collect()
    assert (saved() is not None) == retain


# ---- errors -----------------------------------------------------------------------------

def test_backward_on_non_scalar_needs_a_grad(device):
    x = leaf(np.ones((2, 3)), device)
    with pytest.raises(RuntimeError, match=r"one-element.*\(2, 3\)"):
        (x * 2.0).backward()


@pytest.mark.parametrize("shape", [(3, 2), (2,), (), (1, 2, 3)])
def test_backward_with_wrong_shaped_grad_raises(shape):
    x = mt.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="shape"):
        (x * 2.0).backward(np.ones(shape))


def test_backward_without_graph_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (mt.tensor([1.0]) * 2.0).backward()


# ---- no_grad ----------------------------------------------------------------------------

def test_no_grad_context_records_no_graph(device):
    x = leaf(np.array([1.0, 2.0]), device)
    with mt.no_grad():
        assert not mt.is_grad_enabled()
        y = x * 2.0 + x.exp()
    assert mt.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y._parents == ()
    assert (x * 2.0).requires_grad


def test_no_grad_restores_state_after_an_exception():
    with pytest.raises(KeyError):
        with mt.no_grad():
            raise KeyError("boom")
    assert mt.is_grad_enabled()


def test_no_grad_nests():
    with mt.no_grad():
        with mt.no_grad():
            pass
        assert not mt.is_grad_enabled()
    assert mt.is_grad_enabled()


def test_no_grad_decorator_including_recursion():
    x = mt.tensor([1.0, 2.0], requires_grad=True)

    @mt.no_grad()
    def recurse(t, depth):
        out = t * 2.0 if depth == 0 else recurse(t, depth - 1)
        assert not mt.is_grad_enabled()
        return out

    y = recurse(x, 3)
    assert not y.requires_grad
    assert mt.is_grad_enabled()
    assert (x * 2.0).requires_grad


def test_no_graph_without_inputs_requiring_grad(device):
    a = mt.tensor(np.array([1.0, 2.0]), device=device)
    y = (a * 2.0).exp().sum()
    assert not y.requires_grad and y.is_leaf and y._parents == ()
