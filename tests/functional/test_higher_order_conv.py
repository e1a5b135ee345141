"""Higher-order gradients (create_graph) of convolution, pooling and batch/group norm.

Second derivatives against central differences (gradgradcheck) on the drawn cases of
tests/op_cases/functional_conv.py, third derivatives (gradgradcheck of the create_graph vjp),
double backward against PyTorch in float64, and the gradient penalty of a tiny CNN.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf.functional as F
from minitf import Tensor, backend, gradgradcheck
from minitf.autograd import grad
from minitf.functional import conv

from minitf.testing import arrays

from op_cases.functional_conv import CASES, pairs

OPS = sorted(CASES)
BILINEAR = ("conv1d", "conv2d", "conv_transpose2d")  # the vjp depends on the inputs


# ---- second and third derivatives against finite differences ------------------------------------

@pytest.mark.parametrize("op", OPS)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_second_derivatives_match_finite_differences(op, data, device):
    case = data.draw(CASES[op], label="case")
    case.check_gradgrad(device)
    _assert_rules_agree(case.call, case.tensors(device)[0])


def _vjp(call, count):
    """(inputs..., v) -> the gradients of <call(inputs), v> with create_graph=True (the first `count`
    arguments are the inputs)."""
    def first(*args):
        inputs, v = list(args[:count]), args[count]
        return [g for g in grad(call(*inputs), inputs, grad_outputs=v, create_graph=True, allow_unused=True)
                if g is not None]
    return first


def _assert_rules_agree(fn, inputs, seed=0):
    """The create_graph gradients (the `higher` rules) equal the plain ones (the `backward`s):
    gradgradcheck alone differentiates the rules' results, so a rule off by a factor would pass it."""
    result = fn(*inputs)
    outputs = [o for o in (result if isinstance(result, list) else [result]) if o.requires_grad]
    rng = np.random.default_rng(seed)
    vs = [Tensor(rng.standard_normal(o.shape), device=o.device) for o in outputs]
    plain = grad(outputs, inputs, grad_outputs=vs, retain_graph=True, allow_unused=True)
    ruled = grad(outputs, inputs, grad_outputs=vs, create_graph=True, allow_unused=True)
    for a, b in zip(plain, ruled):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op", OPS)
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_third_derivatives_match_finite_differences(op, data, device):
    """The gradients' own rules are differentiable again, in the inputs and in the cotangent v:
    gradgradcheck of the create_graph vjp. Pooling (and batch norm in eval mode) is linear, so
    the input is cubed first for all but the convolutions (monotonic: max pooling's maxima stay)."""
    case = data.draw(CASES[op], label="case")
    floats, _ = case.tensors(device)
    call = case.call if op in BILINEAR else (lambda x, *params: case.call(x * x * x, *params))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
    v = Tensor(rng.standard_normal(case.run("cpu")[0].shape), requires_grad=True, device=device)
    assert gradgradcheck(_vjp(call, len(floats)), [*floats, v], fast=True)
    _assert_rules_agree(_vjp(call, len(floats)), [*floats, v])


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_max_pool_second_order_routes_through_the_first_maximum(data, device):
    """With ties (no finite differences there), the create_graph rule's own gradient in g is the
    transpose of the first-order backward: <backward(g), u> = <g, d<backward(g), u>/dg>."""
    kernel, stride = data.draw(pairs(1, 3), label="kernel"), data.draw(pairs(1, 3), label="stride")
    size = data.draw(st.tuples(st.integers(kernel[0], 6), st.integers(kernel[1], 6)), label="size")
    x = Tensor(data.draw(arrays((2, *size), 0, 2).map(np.round), label="x"), requires_grad=True, device=device)
    rng = np.random.default_rng(0)
    g = Tensor(rng.standard_normal(F.max_pool2d(x, kernel, stride).shape), requires_grad=True, device=device)
    u = Tensor(rng.standard_normal(x.shape), device=device)
    (gx,) = grad(F.max_pool2d(x, kernel, stride), [x], grad_outputs=g, create_graph=True)
    (transposed,) = grad((gx * u).sum(), [g])
    np.testing.assert_allclose(float((gx * u).sum().item()), float((g * transposed).sum().item()), rtol=1e-12)


@pytest.mark.parametrize("wants", [(True, False, False), (False, True, True), (False, False, True)])
def test_only_some_inputs_require_grad(wants, device):
    """Rules skip the parents that need no gradient (the weights of a frozen layer, say)."""
    rng = np.random.default_rng(3)
    arrays = (rng.standard_normal((2, 4, 5, 5)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4))
    tensors = [Tensor(a, requires_grad=w, device=device) for a, w in zip(arrays, wants)]
    trained = [t for t in tensors if t.requires_grad]

    def fn(*ts):
        given = iter(ts)
        x, w, b = (next(given) if t.requires_grad else t for t in tensors)
        y = F.conv2d(x, w, b, stride=2, padding=1, groups=2)
        return F.batch_norm(y * y, None, None, b, b, training=True)

    assert gradgradcheck(fn, trained, fast=True)


def test_per_image_first_order_path_keeps_second_derivatives(monkeypatch, device):
    """conv_grads (large images' first-order backward) and the create_graph rules agree."""
    monkeypatch.setattr(conv, "MIN_IMAGE_POSITIONS", 1)
    rng = np.random.default_rng(4)
    x, w = (Tensor(rng.standard_normal(s), requires_grad=True, device=device) for s in ((2, 3, 6, 6), (4, 3, 3, 3)))
    assert gradgradcheck(lambda x, w: F.conv2d(x, w, padding=1) ** 2, [x, w], fast=True)


# ---- against PyTorch's double backward -------------------------------------------------------------

def _double_backward(lib, fn, arrays, v, probes):
    """Gradients of sum(probe_i * grad_i), grad_i = d<fn(inputs), v>/d input_i with create_graph,
    with respect to the inputs and v: torch or minitf (`lib`), as NumPy arrays."""
    if lib == "torch":
        import torch
        ts = [torch.tensor(a, requires_grad=True) for a in arrays]
        vt = torch.tensor(v, requires_grad=True)
        firsts = torch.autograd.grad(fn(*ts), ts, grad_outputs=vt, create_graph=True)
        total = sum((g * torch.tensor(p)).sum() for g, p in zip(firsts, probes))
        seconds = torch.autograd.grad(total, [*ts, vt], allow_unused=True)
        return [np.zeros(t.shape) if g is None else g.detach().numpy() for t, g in zip([*ts, vt], seconds)]
    ts = [Tensor(a, requires_grad=True) for a in arrays]
    vt = Tensor(v, requires_grad=True)
    firsts = grad(fn(*ts), ts, grad_outputs=vt, create_graph=True)
    total = sum((g * Tensor(p)).sum() for g, p in zip(firsts, probes))
    seconds = grad(total, [*ts, vt], allow_unused=True)
    return [np.zeros(t.shape) if g is None else backend.to_device(g.data, "cpu") for t, g in zip([*ts, vt], seconds)]


def _compare_with_torch(ours, theirs, shapes, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in shapes]
    with_torch = theirs(*(__import__("torch").tensor(a) for a in arrays))
    v = rng.standard_normal(tuple(with_torch.shape))
    probes = [rng.standard_normal(s) for s in shapes]
    expected = _double_backward("torch", theirs, arrays, v, probes)
    got = _double_backward("minitf", ours, arrays, v, probes)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 1, 1, 1), (2, 0, 1, 2), (1, "same", 2, 1),
                                                                (2, 1, 2, 2)])
def test_conv2d_double_backward_matches_torch(stride, padding, dilation, groups):
    torch = pytest.importorskip("torch")
    options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    # squared: the second derivative of a bilinear op alone has no term in x times x
    _compare_with_torch(lambda x, w, b: F.conv2d(x, w, b, **options) ** 2,
                        lambda x, w, b: torch.nn.functional.conv2d(x, w, b, **options) ** 2,
                        [(2, 4, 6, 5), (4, 4 // groups, 3, 2), (4,)])


def test_conv_transpose2d_and_conv1d_double_backward_match_torch():
    torch = pytest.importorskip("torch")
    tF = torch.nn.functional
    options = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    _compare_with_torch(lambda x, w, b: F.conv_transpose2d(x, w, b, **options) ** 2,
                        lambda x, w, b: tF.conv_transpose2d(x, w, b, **options) ** 2,
                        [(2, 4, 3, 3), (4, 1, 3, 2), (2,)])
    _compare_with_torch(lambda x, w: F.conv1d(x, w, stride=2, padding=2, dilation=2) ** 2,
                        lambda x, w: tF.conv1d(x, w, stride=2, padding=2, dilation=2) ** 2,
                        [(2, 3, 9), (2, 3, 3)])


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 3, 2, 2)])
def test_batch_norm_double_backward_matches_torch(training, shape):
    torch = pytest.importorskip("torch")
    mean, var = np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0])

    def ours(x, w, b):
        return F.batch_norm(x, None if training else mean, None if training else var, w, b, training=training)

    def theirs(x, w, b):
        buffers = (None, None) if training else (torch.tensor(mean), torch.tensor(var))
        return torch.nn.functional.batch_norm(x, *buffers, w, b, training=training)

    _compare_with_torch(ours, theirs, [shape, (3,), (3,)], seed=len(shape))


def test_group_norm_double_backward_matches_torch():
    torch = pytest.importorskip("torch")
    _compare_with_torch(lambda x, w, b: F.group_norm(x, 2, w, b),
                        lambda x, w, b: torch.nn.functional.group_norm(x, 2, w, b),
                        [(2, 4, 3, 2), (4,), (4,)])


# ---- the gradient penalty of a tiny CNN ------------------------------------------------------------

def _tiny_cnn(lib, x, params, v):
    """conv - tanh - max pool - conv - batch norm - sigmoid - avg pool - group norm - adaptive pool;
    the penalty |d<out, v>/dx|^2 and its gradients with respect to the parameters."""
    f = F if lib == "minitf" else __import__("torch").nn.functional
    w1, b1, w2, gamma, beta = params  # (a bias before batch norm would cancel)
    h = f.max_pool2d(f.conv2d(x, w1, b1, padding=1).tanh(), 2, stride=2, padding=1)
    h = f.conv2d(h, w2, None, stride=1, padding=1, groups=2)
    h = f.avg_pool2d(f.batch_norm(h, None, None, gamma, beta, training=True).sigmoid(), 2, stride=1)
    out = f.adaptive_avg_pool2d(f.group_norm(h, 2), (2, 1))
    if lib == "minitf":
        (gx,) = grad(out, [x], grad_outputs=v, create_graph=True)
        return grad((gx * gx).sum(), list(params))
    import torch
    (gx,) = torch.autograd.grad(out, [x], grad_outputs=v, create_graph=True)
    return torch.autograd.grad((gx * gx).sum(), list(params))


def test_tiny_cnn_gradient_penalty_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    shapes = [(4, 2, 3, 3), (4,), (4, 2, 3, 3), (4,), (4,)]
    arrays = [rng.standard_normal(s) for s in shapes]
    x, v = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((3, 4, 2, 1))
    ours = _tiny_cnn("minitf", Tensor(x, requires_grad=True), [Tensor(a, requires_grad=True) for a in arrays],
                     Tensor(v))
    theirs = _tiny_cnn("torch", torch.tensor(x, requires_grad=True),
                       [torch.tensor(a, requires_grad=True) for a in arrays], torch.tensor(v))
    for a, b in zip(ours, theirs):
        assert np.abs(b.numpy()).max() > 1e-6  # every parameter reaches the penalty
        np.testing.assert_allclose(backend.to_device(a.data, "cpu"), b.numpy(), rtol=1e-8, atol=1e-10)
