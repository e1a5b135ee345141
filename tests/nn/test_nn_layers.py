"""The CNN-toolkit modules against the functional ops they wrap (forward, gradients, buffers)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minitf
import minitf.functional as F
from minitf import Tensor, backend, nn


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def same_as_functional(module, functional, x, params):
    """module(x) equals functional(x), and the parameter gradients equal those of the functional call."""
    module.zero_grad()
    xt = Tensor(x, requires_grad=True)
    out = module(xt)
    cotangent = rand(*out.shape, seed=9).astype(out.dtype)
    out.backward(cotangent)
    copies = [Tensor(p.numpy(), requires_grad=True) for p in params]
    xt2 = Tensor(x, requires_grad=True)
    ref = functional(xt2, *copies)
    ref.backward(cotangent)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    np.testing.assert_array_equal(xt.grad, xt2.grad)
    for p, q in zip(params, copies):
        np.testing.assert_array_equal(p.grad, q.grad)


def test_conv2d_module():
    conv = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2)
    assert conv.weight.shape == (6, 2, 3, 2) and conv.bias.shape == (6,)
    same_as_functional(conv, lambda x, w, b: F.conv2d(x, w, b, 2, 1, (1, 2), 2),
                       rand(2, 4, 7, 8).astype(np.float32), [conv.weight, conv.bias])
    nobias = nn.Conv2d(3, 2, 3, padding="same", bias=False)
    assert nobias.bias is None and list(nobias.state_dict()) == ["weight"]
    same_as_functional(nobias, lambda x, w: F.conv2d(x, w, None, 1, "same"), rand(1, 3, 5, 5).astype(np.float32),
                       [nobias.weight])
    with pytest.raises(ValueError, match="divisible by groups 2"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="kernel_size"):
        nn.Conv2d(3, 4, (3, 0))


def test_conv1d_and_conv_transpose2d_modules():
    conv = nn.Conv1d(2, 4, 3, stride=2, padding=1)
    assert conv.weight.shape == (4, 2, 3)
    same_as_functional(conv, lambda x, w, b: F.conv1d(x, w, b, 2, 1), rand(3, 2, 9).astype(np.float32),
                       [conv.weight, conv.bias])
    up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    assert up.weight.shape == (4, 3, 3, 3) and up.bias.shape == (6,)
    same_as_functional(up, lambda x, w, b: F.conv_transpose2d(x, w, b, 2, 1, 1, 2),
                       rand(2, 4, 3, 4).astype(np.float32), [up.weight, up.bias])
    assert up(Tensor(rand(1, 4, 3, 4).astype(np.float32))).shape == (1, 6, 6, 8)


@pytest.mark.parametrize("make, conv", [(lambda: nn.Conv2d(5, 8, 3), lambda m: m.weight[0].size),
                                        (lambda: nn.Conv1d(4, 6, 5), lambda m: m.weight[0].size),
                                        (lambda: nn.ConvTranspose2d(6, 4, 3), lambda m: m.weight[0].size),
                                        (lambda: nn.Linear(40, 30), lambda m: 40)])
def test_default_init_is_pytorchs(make, conv):
    """kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)) on the weight, the same bound on the bias."""
    minitf.manual_seed(0)
    m = make()
    bound = 1 / math.sqrt(conv(m))
    for p in (m.weight, m.bias):
        values = p.numpy()
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.8 * bound
    assert abs(m.weight.numpy().std() - bound / math.sqrt(3)) < 0.15 * bound / math.sqrt(3)


def test_pool_modules():
    x = rand(2, 3, 7, 6).astype(np.float32)
    same_as_functional(nn.MaxPool2d(3, 2, padding=1), lambda t: F.max_pool2d(t, 3, 2, 1), x, [])
    same_as_functional(nn.MaxPool2d(2, ceil_mode=True), lambda t: F.max_pool2d(t, 2, None, 0, 1, True), x, [])
    same_as_functional(nn.AvgPool2d(2, 1, padding=1, count_include_pad=False),
                       lambda t: F.avg_pool2d(t, 2, 1, 1, False, False), x, [])
    same_as_functional(nn.AdaptiveAvgPool2d((2, 3)), lambda t: F.adaptive_avg_pool2d(t, (2, 3)), x, [])


def test_batch_norm_training_updates_buffers_and_eval_uses_them():
    bn = nn.BatchNorm2d(3, momentum=0.2)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    nn.init.uniform_(bn.weight, 0.5, 1.5)
    nn.init.uniform_(bn.bias, -1, 1)
    x = rand(4, 3, 5, 5, seed=1).astype(np.float32) * 2 + 1
    same_as_functional(bn, lambda t, w, b: F.batch_norm(t, None, None, w, b, True), x, [bn.weight, bn.bias])
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean, 0.2 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, 0.8 + 0.2 * var, rtol=1e-5)
    assert int(bn.num_batches_tracked) == 1
    bn.eval()
    stats = (bn.running_mean.copy(), bn.running_var.copy())
    same_as_functional(bn, lambda t, w, b: F.batch_norm(t, stats[0], stats[1], w, b, False), x,
                       [bn.weight, bn.bias])
    np.testing.assert_array_equal(bn.running_mean, stats[0])  # eval leaves the statistics alone
    assert int(bn.num_batches_tracked) == 1


def test_batch_norm_cumulative_average_and_no_tracking():
    bn = nn.BatchNorm1d(2, momentum=None, affine=False)
    assert bn.weight is None and list(bn.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    batches = [rand(6, 2, seed=s).astype(np.float32) + s for s in range(3)]
    for b in batches:
        bn(Tensor(b))
    np.testing.assert_allclose(bn.running_mean, np.mean([b.mean(axis=0) for b in batches], axis=0), rtol=1e-5)
    plain = nn.BatchNorm1d(2, track_running_stats=False).eval()
    assert plain.running_mean is None and list(plain.state_dict()) == ["weight", "bias"]
    x = rand(5, 2, 4).astype(np.float32)
    np.testing.assert_allclose(plain(Tensor(x)).numpy(), F.batch_norm(Tensor(x), None, None, training=True).numpy())
    with pytest.raises(ValueError, match="BatchNorm1d: expected a 2 or 3-D input, got shape \\(2, 2, 2, 2\\)"):
        plain(Tensor(np.zeros((2, 2, 2, 2), np.float32)))


def test_batch_norm_buffers_follow_double_and_device(device):
    bn = nn.BatchNorm2d(2).double().to(device)
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    xp = backend.get_array_module(bn.running_mean)
    bn(Tensor(xp.asarray(rand(3, 2, 2, 2)), device=device))
    assert backend.device_of(bn.running_var) == backend.parse_device(device)
    assert int(backend.to_device(bn.num_batches_tracked, "cpu")) == 1
    bn.to("cpu")


def test_group_norm_and_rms_norm_modules():
    gn = nn.GroupNorm(2, 4)
    nn.init.normal_(gn.weight)
    same_as_functional(gn, lambda t, w, b: F.group_norm(t, 2, w, b), rand(3, 4, 5).astype(np.float32),
                       [gn.weight, gn.bias])
    rms = nn.RMSNorm((3, 4), eps=1e-6)
    nn.init.normal_(rms.weight)
    same_as_functional(rms, lambda t, w: F.rms_norm(t, (3, 4), w, 1e-6), rand(2, 3, 4).astype(np.float32),
                       [rms.weight])
    assert nn.RMSNorm(4, elementwise_affine=False).weight is None
    with pytest.raises(ValueError, match="divisible by num_groups 3"):
        nn.GroupNorm(3, 4)


@pytest.mark.parametrize("module, functional", [
    (nn.ReLU(), F.relu), (nn.ReLU(inplace=True), F.relu), (nn.GELU(), F.gelu),
    (nn.GELU("tanh"), lambda t: F.gelu(t, "tanh")), (nn.SiLU(), F.silu), (nn.Tanh(), F.tanh),
    (nn.Sigmoid(), F.sigmoid), (nn.Softmax(dim=1), lambda t: F.softmax(t, 1)),
    (nn.LogSoftmax(dim=-1), lambda t: F.log_softmax(t, -1)),
    (nn.LeakyReLU(0.2), lambda t: F.leaky_relu(t, 0.2)), (nn.ELU(0.5), lambda t: F.elu(t, 0.5)),
    (nn.Identity(54, unused=True), lambda t: t),
    (nn.Flatten(), lambda t: t.reshape(t.shape[0], -1)), (nn.Flatten(0, 1), lambda t: t.reshape(-1, *t.shape[2:])),
])
def test_stateless_modules(module, functional):
    same_as_functional(module, functional, rand(2, 3, 4, seed=2), [])
    assert module.state_dict() == {}
