"""minitf.func: grad, vjp, jvp, jacrev/jacfwd/jacobian, hessian, hvp against closed forms, finite
differences and torch.func (float64)."""
from __future__ import annotations

import numpy as np
import pytest

import minitf as mt
from minitf import func

R = np.random.default_rng(3)


def t(*shape):
    return mt.tensor(R.standard_normal(shape))


def energy(x, w):
    """A scalar of x (n,) and w (n, m) through ops with differentiable rules: sum via matmul."""
    h = mt.tanh(x @ w)
    return h @ (h * mt.exp(h * 0.5))


def numeric_jacobian(f, x, eps=1e-6):
    base = x.numpy()
    columns = []
    for k in range(base.size):
        e = np.zeros(base.size)
        e[k] = eps
        plus = f(mt.tensor(base + e.reshape(base.shape))).numpy()
        minus = f(mt.tensor(base - e.reshape(base.shape))).numpy()
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=-1).reshape(plus.shape + base.shape)


def test_grad_of_a_scalar_function_and_its_nesting():
    x = t(4)
    cube = lambda x: (x * x) @ x  # sum of x^3
    np.testing.assert_allclose(func.grad(cube)(x).numpy(), 3 * x.numpy() ** 2)
    np.testing.assert_allclose(func.grad(lambda x: func.grad(cube)(x) @ x)(x).numpy(), 9 * x.numpy() ** 2)
    g = func.grad(cube)(x)
    assert not g.requires_grad  # top level: no graph kept


def test_grad_argnums_has_aux_and_grad_and_value():
    x, w = t(3), t(3, 2)
    gx, gw = func.grad(energy, argnums=(0, 1))(x, w)
    assert gx.shape == (3,) and gw.shape == (3, 2)
    np.testing.assert_allclose(gw.numpy(), numeric_jacobian(lambda w: energy(x, w), w), rtol=1e-6, atol=1e-8)
    (g, aux) = func.grad(lambda x: (energy(x, w), "aux"), has_aux=True)(x)
    assert aux == "aux" and np.allclose(g.numpy(), gx.numpy())
    _, tensors = func.grad(lambda x: (energy(x, w), {"h": [x * 2.0]}), has_aux=True)(x)  # as torch.func:
    assert not tensors["h"][0].requires_grad  # a Tensor in aux is not differentiated by this transform
    np.testing.assert_allclose(tensors["h"][0].numpy(), 2 * x.numpy())
    g, value = func.grad_and_value(energy)(x, w)
    assert np.isclose(value.item(), energy(x, w).item())
    with pytest.raises(ValueError, match="one-element"):
        func.grad(lambda x: x * 2.0)(x)
    with pytest.raises(ValueError, match="argnums"):
        func.grad(energy, argnums=2)(x, w)


def test_jacrev_jacfwd_and_jacobian_agree_with_finite_differences():
    x, w = t(3), t(3, 2)
    f = lambda x: mt.tanh(x @ w) * mt.exp(x[:2] if False else x @ w)
    expected = numeric_jacobian(f, x)
    for jac in (func.jacrev(f)(x), func.jacfwd(f)(x), func.jacobian(f, x)):
        assert jac.shape == (2, 3)
        np.testing.assert_allclose(jac.numpy(), expected, rtol=1e-6, atol=1e-8)


def test_vjp_and_jvp_are_transposes():
    x, w = t(3), t(3, 4)
    f = lambda x: mt.sigmoid(x @ w)
    out, vjp_fn = func.vjp(f, x)
    u = R.standard_normal(4)
    v = R.standard_normal(3)
    (vjp_u,) = vjp_fn(u)
    _, jvp_v = func.jvp(f, (x,), (v,))
    assert np.isclose(vjp_u.numpy() @ v, u @ jvp_v.numpy())  # <J^T u, v> = <u, J v>
    np.testing.assert_allclose(jvp_v.numpy(), numeric_jacobian(f, x) @ v, rtol=1e-6, atol=1e-8)
    (again,) = vjp_fn(u)  # callable again
    np.testing.assert_allclose(again.numpy(), vjp_u.numpy())
    with pytest.raises(ValueError, match="tangent of shape"):
        func.jvp(f, (x,), (np.ones(4),))


def test_hessian_and_hvp_against_finite_differences_of_the_gradient():
    x, w = t(4), t(4, 3)
    f = lambda x: energy(x, w)
    H = func.hessian(f)(x)
    expected = numeric_jacobian(func.grad(f), x)
    np.testing.assert_allclose(H.numpy(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(H.numpy(), H.numpy().T, rtol=1e-10, atol=1e-12)
    v = R.standard_normal(4)
    value, hv = func.hvp(f, x, v)
    np.testing.assert_allclose(hv.numpy(), H.numpy() @ v, rtol=1e-10, atol=1e-12)
    assert np.isclose(value.item(), f(x).item())


def test_an_integer_argument_cannot_be_differentiated():
    with pytest.raises(TypeError, match="floating point"):
        func.grad(lambda i: i)(mt.tensor(np.array([1, 2])))


def test_matches_torch_func():
    torch = pytest.importorskip("torch")
    a, b = R.standard_normal(4), R.standard_normal((4, 3))
    v = R.standard_normal(4)

    def f(lib, x, w):
        h = lib.tanh(x @ w)
        return h @ (h * lib.exp(h * 0.5))

    mine_h = func.hessian(lambda x: f(mt, x, mt.tensor(b)))(mt.tensor(a)).numpy()
    theirs_h = torch.func.hessian(lambda x: f(torch, x, torch.tensor(b)))(torch.tensor(a)).numpy()
    np.testing.assert_allclose(mine_h, theirs_h, rtol=1e-10, atol=1e-12)
    _, mine_hv = func.hvp(lambda x: f(mt, x, mt.tensor(b)), mt.tensor(a), v)
    _, theirs_hv = torch.autograd.functional.hvp(lambda x: f(torch, x, torch.tensor(b)), torch.tensor(a),
                                                  torch.tensor(v))
    np.testing.assert_allclose(mine_hv.numpy(), theirs_hv.numpy(), rtol=1e-10, atol=1e-12)
    mine_j = func.jacfwd(lambda x: mt.tanh(x @ mt.tensor(b)))(mt.tensor(a)).numpy()
    theirs_j = torch.func.jacfwd(lambda x: torch.tanh(x @ torch.tensor(b)))(torch.tensor(a)).numpy()
    np.testing.assert_allclose(mine_j, theirs_j, rtol=1e-12, atol=1e-14)


def test_a_transform_of_a_tensor_that_requires_grad_keeps_the_graph():
    x = mt.tensor(R.standard_normal(3), requires_grad=True)
    g = func.grad(lambda x: (x * x) @ x)(x)  # 3 x^2, differentiable with respect to the caller's x
    assert g.requires_grad
    (gg,) = mt.autograd.grad(g, x, np.ones(3))
    np.testing.assert_allclose(gg.numpy(), 6 * x.numpy())


def test_autograd_functional_results_keep_a_graph_only_with_create_graph():
    """As torch.autograd.functional: plain values by default even for inputs that require grad; with
    create_graph, H v is differentiable with respect to x and v (d(v^T H v)/dv = 2 H v here)."""
    x, w = mt.tensor(R.standard_normal(4), requires_grad=True), t(4, 3)
    v = mt.tensor(R.standard_normal(4), requires_grad=True)
    f = lambda x: energy(x, w)
    value, hv = func.hvp(f, x, v)
    jac = func.jacobian(lambda x: mt.tanh(x * 2.0), x)
    assert not (value.requires_grad or hv.requires_grad or jac.requires_grad)
    value, hv = func.hvp(f, x, v, create_graph=True)
    assert value.requires_grad and hv.requires_grad
    (dv,) = mt.autograd.grad((hv * v).sum(), v)
    np.testing.assert_allclose(dv.numpy(), 2 * hv.numpy(), rtol=1e-10, atol=1e-12)
    assert func.jacobian(lambda x: mt.tanh(x * 2.0), x, create_graph=True).requires_grad
    with pytest.raises(ValueError, match="2 vectors v for 1 inputs"):
        func.hvp(lambda a: f(a[0]), [x], [v, v])
