"""Regressions from review 20 of higher-order gradients: silent zeros and wrong values."""
from __future__ import annotations

import numpy as np
import pytest

import minitf as mt
from minitf import func, optim
from minitf.autograd import Tensor, grad

X0 = np.array([0.5, -1.0, 2.0])


def test_func_grad_keeps_the_graph_to_a_tensor_the_function_closes_over():
    w = mt.tensor(np.array([0.3, 0.2, -0.4]), requires_grad=True)
    gx = func.grad(lambda x: mt.tanh(x * w).sum())(mt.tensor(X0))   # (1 - tanh^2(x w)) w
    assert gx.requires_grad
    (gw,) = grad(gx.sum(), w)
    t = np.tanh(X0 * w.data)
    np.testing.assert_allclose(gw.data, (1 - t * t) - 2 * t * (1 - t * t) * X0 * w.data)


def test_nested_func_grad_with_respect_to_an_argument_outside_argnums():
    x0, y0 = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    outer = func.grad(lambda y: func.grad(lambda x, y: (x * x * y).sum(), 0)(mt.tensor(x0), y).sum())
    np.testing.assert_allclose(outer(mt.tensor(y0)).data, 2 * x0)


def test_transforms_differentiate_through_tangents_and_cotangents():
    f, x, t = (lambda x: mt.sin(x) * x * x), mt.tensor(X0), mt.tensor(np.array([1.0, 2.0, -1.0]))
    expected = func.jacrev(f)(x).data.sum(0)     # d/dt sum(J t) = J^T 1
    np.testing.assert_allclose(func.grad(lambda t: func.jvp(f, (x,), (t,))[1].sum())(t).data, expected)
    np.testing.assert_allclose(func.grad(lambda v: func.vjp(f, x)[1](v)[0].sum())(t).data,
                               func.jacrev(f)(x).data.sum(1))


def test_jacfwd_of_a_transposed_input():
    x = mt.tensor(np.arange(6.0).reshape(2, 3)).T       # not C-contiguous
    np.testing.assert_allclose(func.jacfwd(lambda t: (t * t).sum())(x).data, 2 * x.data)


def test_autograd_grad_through_a_released_graph_raises_instead_of_dropping_it():
    x = mt.tensor(X0, requires_grad=True)
    y = mt.tanh(x)
    (y * 2).sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        grad((y * 3 + x).sum(), x)
    x = mt.tensor(X0, requires_grad=True)
    (g,) = grad((mt.tanh(x) * x).sum(), x, create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError, match="retain_graph"):
        grad(g.sum(), x)


def test_gradgradcheck_fails_a_higher_rule_without_a_graph():
    def cube(x):
        return Tensor.from_op(x.data ** 3, (x,), lambda g: (3 * g * x.data ** 2,),
                              lambda g, out: (Tensor(3 * g.data * x.data ** 2),))
    with pytest.raises(mt.GradcheckError):
        mt.gradgradcheck(cube, [mt.tensor(X0, requires_grad=True)])


@pytest.mark.parametrize("make", [lambda p: optim.SGD([p], lr=0.1), lambda p: optim.Adam([p], lr=0.1),
                                  lambda p: optim.RMSprop([p], lr=0.1)])
def test_optimizers_step_on_a_gradient_with_a_graph(make):
    p, q = mt.tensor(X0, requires_grad=True), mt.tensor(X0, requires_grad=True)
    (p ** 3).sum().backward(create_graph=True)
    (q ** 3).sum().backward()
    a, b = make(p), make(q)
    a.step()
    b.step()
    assert isinstance(p.grad, Tensor) and type(p.data) is np.ndarray
    np.testing.assert_allclose(p.data, q.data)
    assert optim.clip_grad_norm([p], 1.0) == pytest.approx(optim.clip_grad_norm([q], 1.0))
