"""minitf.nn.utils: clip_grad_norm_ (p = 2, 1, 3.5, inf), clip_grad_value_, get_total_norm,
parameters_to_vector / vector_to_parameters; against NumPy, on (stand-in) CuPy gradients, with
Tensor gradients, bad input, and against torch.nn.utils in float64 when torch is installed.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minitf
import minitf.nn.utils
from fake_gpu import FakeCupyArray
from minitf import Tensor
from minitf.nn import Parameter
from minitf.nn.utils import (clip_grad_norm_, clip_grad_value_, get_total_norm, parameters_to_vector,
                             vector_to_parameters)
from minitf.optim import clip_grad_norm, global_grad_norm

SHAPES = [(3, 4), (5,), ()]


def params_with_grads(seed=0, scale=1.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = [Parameter(rng.standard_normal(s).astype(dtype)) for s in SHAPES]
    for p in params:
        p.grad = np.asarray(scale * rng.standard_normal(p.shape), dtype=dtype)
    params.append(Parameter(np.ones(2, dtype=dtype)))  # no gradient: skipped
    return params


def reference_norm(grads, p):
    flat = np.concatenate([np.ravel(g) for g in grads])
    return np.max(np.abs(flat)) if p == math.inf else np.sum(np.abs(flat) ** p) ** (1 / p)


@pytest.mark.parametrize("p", [2.0, 1, 3.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_scales_to_max_norm(p, max_norm):
    params = params_with_grads()
    before = [p_.grad.copy() for p_ in params[:3]]
    norm = clip_grad_norm_(params, max_norm, norm_type=p)
    want = reference_norm(before, float(p))
    assert isinstance(norm, Tensor) and norm.shape == () and norm.dtype == np.float64
    assert float(norm) == pytest.approx(want, rel=1e-12)
    scale = min(1.0, max_norm / (want + 1e-6))
    for param, g in zip(params, before):
        np.testing.assert_allclose(param.grad, g * scale, rtol=1e-12)
    assert params[3].grad is None
    if max_norm < want:
        assert reference_norm([q.grad for q in params[:3]], float(p)) == pytest.approx(max_norm, rel=1e-5)


def test_one_tensor_generators_and_float32():
    param = Parameter(np.array([3.0, 4.0], dtype=np.float32))
    param.grad = np.array([3.0, 4.0], dtype=np.float32)
    norm = minitf.nn.utils.clip_grad_norm_(param, 1.0)  # one Tensor, not a list
    assert norm.dtype == np.float32 and float(norm) == pytest.approx(5.0)
    assert param.grad.dtype == np.float32
    np.testing.assert_allclose(param.grad, [0.6, 0.8], rtol=1e-5)
    params = params_with_grads()
    assert float(clip_grad_norm_((q for q in params), 1e9)) == pytest.approx(reference_norm(
        [q.grad for q in params[:3]], 2))
    empty = clip_grad_norm_([Parameter(np.ones(2))], 1.0)  # nothing has a gradient
    assert float(empty) == 0.0 and empty.dtype == np.float32


def test_non_finite_norm():
    params = params_with_grads()
    params[1].grad[2] = np.inf
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf .not finite.*"
                                           "error_if_nonfinite=False"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert np.isfinite(params[0].grad).all()  # nothing was scaled
    norm = clip_grad_norm_(params, 1.0)  # as torch: scaled by max_norm / inf = 0
    assert float(norm) == math.inf
    assert (params[0].grad == 0).all() and np.isnan(params[1].grad[2])
    params[0].grad[0, 0] = np.nan
    with pytest.raises(RuntimeError, match="is nan"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)


def test_tensor_gradients_keep_their_graph():
    x = Parameter(np.array([1.0, 2.0]))
    (x ** 3).sum().backward(create_graph=True)  # x.grad = 3 x^2, a Tensor with a graph
    norm = clip_grad_norm_([x], 1.0)
    assert float(norm) == pytest.approx(math.hypot(3, 12))
    assert isinstance(x.grad, Tensor) and x.grad.requires_grad
    np.testing.assert_allclose(x.grad.numpy(), np.array([3, 12]) / (math.hypot(3, 12) + 1e-6), rtol=1e-12)
    clip_grad_value_([x], 0.1)  # 0.24 and 0.97 clamped
    assert isinstance(x.grad, Tensor) and x.grad.requires_grad
    np.testing.assert_array_equal(x.grad.numpy(), [0.1, 0.1])


def test_clip_grad_value():
    params = params_with_grads(scale=2.0)
    before = [q.grad.copy() for q in params[:3]]
    ids = [id(q.grad) for q in params[:3]]
    clip_grad_value_(params, 0.75)
    for q, g in zip(params, before):
        np.testing.assert_array_equal(q.grad, np.clip(g, -0.75, 0.75))
    assert [id(q.grad) for q in params[:3]] == ids  # in place


def test_gradients_on_the_device_stay_there(fake_gpu):
    params = params_with_grads()
    before = [q.grad.copy() for q in params[:3]]
    for q in params[:3]:
        q.grad = fake_gpu(q.grad)
    norm = clip_grad_norm_(params, 0.5, norm_type=3)
    assert isinstance(norm.data, FakeCupyArray)  # not copied to the host
    want = reference_norm(before, 3)
    assert float(norm) == pytest.approx(want, rel=1e-12)
    for q, g in zip(params, before):
        assert isinstance(q.grad, FakeCupyArray)
        np.testing.assert_allclose(np.asarray(q.grad), g * 0.5 / (want + 1e-6), rtol=1e-12)
    clip_grad_value_(params, 0.01)
    assert all(isinstance(q.grad, FakeCupyArray) and np.abs(np.asarray(q.grad)).max() <= 0.01 for q in params[:3])


def test_optim_clip_grad_norm_shares_the_norm():
    params = params_with_grads(scale=5.0)
    grads = [q.grad.copy() for q in params[:3]]
    want = reference_norm(grads, 2)
    assert global_grad_norm(params) == pytest.approx(want, rel=1e-12)
    assert float(get_total_norm([q.grad for q in params[:3]])) == pytest.approx(want, rel=1e-12)
    assert clip_grad_norm(params, 0.0) == pytest.approx(want)  # 0: measure only
    np.testing.assert_array_equal(params[0].grad, grads[0])
    assert clip_grad_norm(params, 1.0) == pytest.approx(want)
    assert global_grad_norm(params) == pytest.approx(1.0, rel=1e-5)


def test_vector_round_trip():
    params = [Parameter(np.random.default_rng(0).standard_normal(s)) for s in [*SHAPES, (2,)]]
    vec = parameters_to_vector(params)
    assert vec.shape == (12 + 5 + 1 + 2,)
    np.testing.assert_array_equal(vec.numpy(), np.concatenate([q.numpy().ravel() for q in params]))
    weights = Tensor(np.arange(vec.size, dtype=np.float64))
    (parameters_to_vector(params) * weights).sum().backward()  # the vector is differentiable
    np.testing.assert_array_equal(params[0].grad, np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(params[3].grad, [18.0, 19.0])
    versions = [q._version for q in params]
    vector_to_parameters(Tensor(np.arange(20.0)), params)
    np.testing.assert_array_equal(params[1].numpy(), np.arange(12.0, 17.0))
    assert params[2].numpy() == 17.0 and params[0].shape == (3, 4)
    assert all(q._version > v for q, v in zip(params, versions))  # written through minitf
    vector_to_parameters(vec, params)
    np.testing.assert_array_equal(parameters_to_vector(params).numpy(), vec.numpy())


def test_bad_input():
    params = params_with_grads()
    with pytest.raises(ValueError, match="vec has 19 entries, the parameters have 20 together"):
        vector_to_parameters(Tensor(np.zeros(19)), params)
    with pytest.raises(ValueError, match=r"vec must be 1-D, got shape \(4, 5\)"):
        vector_to_parameters(Tensor(np.zeros((4, 5))), params)
    with pytest.raises(TypeError, match="vec must be a Tensor, got ndarray"):
        vector_to_parameters(np.zeros(20), params)
    with pytest.raises(ValueError, match="needs at least one parameter"):
        parameters_to_vector([])
    with pytest.raises(TypeError, match=r"parameters\[1\] is a ndarray, not a Tensor"):
        clip_grad_norm_([params[0], np.ones(2)], 1.0)
    with pytest.raises(TypeError, match="parameters must be a Tensor or an iterable of Tensors, got float"):
        clip_grad_value_(1.5, 1.0)
    for bad in (0, -1.0, "two", math.nan, True):
        with pytest.raises(ValueError, match="norm_type must be a number > 0 or inf"):
            clip_grad_norm_(params, 1.0, norm_type=bad)
    with pytest.raises(ValueError, match="max_norm must be a number >= 0, got -1"):
        clip_grad_norm_(params, -1)
    with pytest.raises(ValueError, match="clip_value must be a number >= 0, got nan"):
        clip_grad_value_(params, math.nan)


# ---- against torch ----------------------------------------------------------------------------

@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, math.inf])
def test_matches_torch(p):
    torch = pytest.importorskip("torch")
    ours = params_with_grads(scale=3.0)
    theirs = [torch.nn.Parameter(torch.tensor(q.numpy())) for q in ours]
    for a, b in zip(ours, theirs):
        b.grad = None if a.grad is None else torch.tensor(a.grad)
    got = clip_grad_norm_(ours, 1.5, norm_type=p)
    want = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type=p)
    assert float(got) == pytest.approx(float(want), rel=1e-12)
    for a, b in zip(ours[:3], theirs):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-12)
    clip_grad_value_(ours, 0.2)
    torch.nn.utils.clip_grad_value_(theirs, 0.2)
    for a, b in zip(ours[:3], theirs):
        np.testing.assert_array_equal(a.grad, b.grad.numpy())
    np.testing.assert_array_equal(parameters_to_vector(ours).numpy(),
                                  torch.nn.utils.parameters_to_vector(theirs).detach().numpy())
    vec = np.random.default_rng(1).standard_normal(20)
    vector_to_parameters(Tensor(vec), ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(vec), theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.numpy(), b.detach().numpy())


def test_float16_gradients_are_measured_without_overflow():
    """Squares of float16 gradients summed in float32: a norm of 400 (sum of squares 160,000 > 65,504)."""
    p = minitf.nn.Parameter(np.zeros(4, np.float16))
    p.grad = np.full(4, 200, np.float16)
    norm = minitf.nn.utils.clip_grad_norm_([p], 1.0)
    assert float(norm) == 400.0
    np.testing.assert_allclose(p.grad, 0.5, rtol=1e-3)
