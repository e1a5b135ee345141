"""Higher-order gradients: autograd.grad and backward(create_graph=True), their semantics (PyTorch's),
errors, and gradgradcheck catching a backward that is right at first order and wrong at second."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import minitf as mt
from minitf.autograd import grad
from minitf.testing import arrays, away_from_zero, shapes

R = np.random.default_rng(0)


def leaf(*shape):
    return mt.tensor(R.standard_normal(shape), requires_grad=True)


def test_the_derivatives_of_x_cubed_to_the_fourth_order():
    x = mt.tensor(np.array([-1.5, 0.5, 2.0]), requires_grad=True)
    ones = np.ones(3)
    g1, = grad(x ** 3, x, ones, create_graph=True)
    g2, = grad(g1, x, ones, create_graph=True)
    g3, = grad(g2, x, ones, create_graph=True)
    g4, = grad(g3, x, ones, allow_unused=True)
    np.testing.assert_allclose(g1.numpy(), 3 * x.numpy() ** 2)
    np.testing.assert_allclose(g2.numpy(), 6 * x.numpy())
    np.testing.assert_allclose(g3.numpy(), 6 * np.ones(3))
    assert g4 is None or not g4.numpy().any()  # 6 does not depend on x
    assert g1.requires_grad and g2.requires_grad and g3.requires_grad


def test_grad_returns_tensors_and_touches_no_grad():
    x, w = leaf(3, 4), leaf(4, 2)
    y = mt.tanh(x @ w)
    v = R.standard_normal(y.shape)
    gx, gw = grad(y, [x, w], v)
    assert isinstance(gx, mt.Tensor) and gx.shape == x.shape and not gx.requires_grad
    assert x.grad is None and w.grad is None
    y2 = mt.tanh(x @ w)
    y2.backward(v)
    np.testing.assert_allclose(gx.numpy(), x.grad)
    np.testing.assert_allclose(gw.numpy(), w.grad)


def test_inputs_may_be_intermediate_tensors():
    x = leaf(5)
    h = x * 2.0
    y = mt.exp(h)
    v = R.standard_normal(5)
    gh, gx = grad(y, [h, x], v)
    np.testing.assert_allclose(gh.numpy(), v * np.exp(h.numpy()))
    np.testing.assert_allclose(gx.numpy(), 2 * v * np.exp(h.numpy()))


def test_unused_inputs_are_an_error_unless_allowed():
    x, unused = leaf(3), leaf(3)
    y = x * 3.0
    with pytest.raises(RuntimeError, match="input 1 .* is not used"):
        grad(y, [x, unused], np.ones(3))
    gx, gu = grad(x * 3.0, [x, unused], np.ones(3), allow_unused=True)
    assert gu is None and np.allclose(gx.numpy(), 3.0)


def test_bad_calls_name_what_is_wrong():
    x = leaf(3)
    with pytest.raises(RuntimeError, match="input 0 .* does not require grad"):
        grad(x * 2.0, mt.tensor(np.ones(3)), np.ones(3))
    with pytest.raises(RuntimeError, match="one-element output"):
        grad(x * 2.0, x)
    with pytest.raises(ValueError, match="2 grad_outputs for 1 outputs"):
        grad(x * 2.0, x, [np.ones(3), np.ones(3)])
    with pytest.raises(RuntimeError, match="output 0 .* does not require grad"):
        grad(mt.tensor(np.ones(3)), x, np.ones(3))
    with pytest.raises(ValueError, match="grad has shape"):
        grad(x * 2.0, x, np.ones(4))
    with pytest.raises(TypeError, match="grad_outputs must be .* got str"):
        grad((x * x).sum(), x, "1")
    (g,) = grad((x * x).sum(), x, 2.0)  # a number is the cotangent of a one-element output
    np.testing.assert_allclose(g.numpy(), 4 * x.numpy())


def test_several_outputs_sum_their_vector_jacobian_products():
    x = leaf(4)
    a, b = x * x, mt.exp(x)
    va, vb = R.standard_normal(4), R.standard_normal(4)
    gx, = grad([a, b], x, [va, vb])
    np.testing.assert_allclose(gx.numpy(), 2 * x.numpy() * va + np.exp(x.numpy()) * vb)


def test_the_graph_is_freed_after_grad_unless_retained_or_created():
    x = leaf(3)
    y = mt.exp(x)
    grad(y, x, np.ones(3))
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        grad(y, x, np.ones(3))
    y = mt.exp(x)
    grad(y, x, np.ones(3), create_graph=True)  # retain_graph defaults to create_graph
    grad(y, x, np.ones(3))


def test_backward_with_create_graph_leaves_a_differentiable_grad():
    x = leaf(4)
    (x * x * x).backward(np.ones(4), create_graph=True)
    assert isinstance(x.grad, mt.Tensor) and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.numpy(), 3 * x.numpy() ** 2)
    gg, = grad(x.grad, x, np.ones(4))
    np.testing.assert_allclose(gg.numpy(), 6 * x.numpy())
    x.grad = None
    (x * x).backward(np.ones(4))  # first order: an array, as before
    assert isinstance(x.grad, np.ndarray)


def test_a_cotangent_that_requires_grad_is_differentiated_too():
    x, v = leaf(3), leaf(3)
    gx, = grad(mt.tanh(x), x, v, create_graph=True)  # v * (1 - tanh^2)
    gv, = grad(gx, v, np.ones(3))
    np.testing.assert_allclose(gv.numpy(), 1 - np.tanh(x.numpy()) ** 2)


def test_an_op_without_a_differentiable_rule_refuses_create_graph_by_name():
    x = leaf(3)

    def cube(t):  # a custom op with only a first-order backward
        return mt.Tensor.from_op(t.data ** 3, (t,), lambda g: (3 * g * t.data ** 2,))

    with pytest.raises(RuntimeError, match="`cube` .* has no differentiable backward"):
        grad(cube(x), x, np.ones(3), create_graph=True)
    gx, = grad(cube(x), x, np.ones(3))  # first order works as before
    np.testing.assert_allclose(gx.numpy(), 3 * x.numpy() ** 2)


def cube_with_rule(t, wrong_second_order=False):
    def backward(g):
        return (3 * g * t.data ** 2,)

    def higher(g, out):
        return (3 * g * t * (t if not wrong_second_order else t.detach()),)  # detach: d/dt off by half

    return mt.Tensor.from_op(t.data ** 3, (t,), backward, higher)


def test_gradgradcheck_catches_a_rule_right_at_first_order_and_wrong_at_second():
    x = mt.tensor(R.standard_normal(4), requires_grad=True)
    assert mt.gradcheck(lambda t: cube_with_rule(t, True), [x])  # first order cannot see it
    assert mt.gradgradcheck(cube_with_rule, [x])
    with pytest.raises(mt.GradcheckError, match="input 0"):
        mt.gradgradcheck(lambda t: cube_with_rule(t, True), [x])


@settings(max_examples=15, deadline=None)
@given(arrays(shapes(max_dims=3)))
def test_ops_math_pass_gradgradcheck(a):
    x = mt.tensor(away_from_zero(a, 0.1), requires_grad=True)  # relu and abs: no kink within the step
    y = mt.tensor(np.abs(a) + 0.5, requires_grad=True)
    mt.gradgradcheck(lambda s, t: mt.tanh(s) * t / (t + 1.0) + mt.exp(s * 0.3) * mt.log(t) - mt.sqrt(t) ** 1.5
                     + mt.sigmoid(s) * mt.abs(s) + mt.relu(s) * t ** s, [x, y])


@settings(max_examples=10, deadline=None)
@given(arrays(shapes(min_dims=1, max_dims=3)))
def test_matmul_passes_gradgradcheck_for_every_rank(a):
    x = mt.tensor(a, requires_grad=True)
    w = mt.tensor(R.standard_normal((a.shape[-1], 2)), requires_grad=True)
    v = mt.tensor(R.standard_normal(a.shape[-1]), requires_grad=True)
    mt.gradgradcheck(lambda x, w, v: mt.tanh(x @ w) * 1.0, [x, w, v])
    mt.gradgradcheck(lambda x, v: (x @ v) * (x @ v), [x, v])


def test_second_derivatives_match_pytorch():
    torch = pytest.importorskip("torch")
    a, b = R.standard_normal((3, 4)), R.standard_normal((4, 5))
    v, u = R.standard_normal((3, 5)), R.standard_normal((3, 4))

    def f(lib, x, w):
        return lib.tanh(x @ w) * lib.exp(x @ w * 0.1) / (1.0 + (x @ w) ** 2)

    x, w = mt.tensor(a, requires_grad=True), mt.tensor(b, requires_grad=True)
    gx, = grad(f(mt, x, w), x, v, create_graph=True)
    hx, hw = grad(gx, [x, w], u)
    tx, tw = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    tgx, = torch.autograd.grad(f(torch, tx, tw), tx, torch.tensor(v), create_graph=True)
    thx, thw = torch.autograd.grad(tgx, [tx, tw], torch.tensor(u))
    np.testing.assert_allclose(gx.numpy(), tgx.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(hx.numpy(), thx.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hw.numpy(), thw.numpy(), rtol=1e-10, atol=1e-12)


def test_gradgradcheck_catches_a_rule_off_by_a_constant_factor():
    """Finite differences of a doubled rule's own output agree with its derivative; the value does not."""
    def doubled(t):
        return mt.Tensor.from_op(t.data ** 3, (t,), lambda g: (3 * g * t.data ** 2,), lambda g, out: (6 * g * t * t,))

    x = mt.tensor(R.standard_normal(4), requires_grad=True)
    with pytest.raises(mt.GradcheckError, match="differs from the first-order one"):
        mt.gradgradcheck(doubled, [x])
