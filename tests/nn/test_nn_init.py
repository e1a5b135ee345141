"""minitf.nn.init: PyTorch's in-place initializers (seeded draws, bounds and standard deviations)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minitf
from minitf import Tensor, nn
from minitf.nn import init


def empty(*shape, dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype))


def test_seeded_draws_repeat_and_differ_between_seeds():
    draws = []
    for seed in (3, 3, 4):
        minitf.manual_seed(seed)
        draws.append(init.kaiming_normal_(empty(20, 30)).numpy().copy())
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2])


def test_uniform_normal_constant():
    minitf.manual_seed(0)
    t = init.uniform_(empty(200, 100), -2.0, 3.0)
    values = t.numpy()
    assert values.min() >= -2 and values.max() < 3 and abs(values.mean() - 0.5) < 0.05
    assert abs(values.std() - 5 / math.sqrt(12)) < 0.02
    n = init.normal_(empty(200, 100, dtype=np.float64), mean=1.5, std=0.3)
    assert n.dtype == np.float64 and abs(n.numpy().mean() - 1.5) < 0.01 and abs(n.numpy().std() - 0.3) < 0.01
    assert np.all(init.constant_(empty(3), 2.5).numpy() == 2.5)
    assert np.all(init.ones_(empty(3)).numpy() == 1) and np.all(init.zeros_(init.ones_(empty(3))).numpy() == 0)


def truncated_std(std, a, b):
    """Standard deviation of N(0, std^2) truncated to [a, b] (symmetric a = -b)."""
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    alpha, beta = a / std, b / std
    mass = cdf(beta) - cdf(alpha)
    return std * math.sqrt(1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass)


def test_trunc_normal_bounds_and_std():
    minitf.manual_seed(1)
    values = init.trunc_normal_(empty(300, 200), mean=0.0, std=1.0, a=-1.0, b=1.0).numpy()
    assert values.min() >= -1 and values.max() <= 1
    assert abs(values.std() - truncated_std(1.0, -1.0, 1.0)) < 0.01
    shifted = init.trunc_normal_(empty(20000), mean=2.0, std=0.02, a=1.96, b=2.04).numpy()
    assert shifted.min() >= 1.96 and shifted.max() <= 2.04 and abs(shifted.mean() - 2.0) < 0.002
    with pytest.raises(ValueError, match="a < b"):
        init.trunc_normal_(empty(3), a=1.0, b=-1.0)
    with pytest.raises(ValueError, match="too far in the tail"):
        init.trunc_normal_(empty(3), mean=0.0, std=1.0, a=50.0, b=51.0)


@pytest.mark.parametrize("name, param, gain", [
    ("linear", None, 1.0), ("conv2d", None, 1.0), ("sigmoid", None, 1.0), ("tanh", None, 5 / 3),
    ("relu", None, math.sqrt(2)), ("leaky_relu", None, math.sqrt(2 / (1 + 0.01 ** 2))),
    ("leaky_relu", math.sqrt(5), math.sqrt(1 / 3)), ("selu", None, 0.75)])
def test_calculate_gain(name, param, gain):
    assert init.calculate_gain(name, param) == pytest.approx(gain)


def test_fans_of_linear_and_conv_weights():
    assert init._calculate_fan_in_and_fan_out(empty(7, 5)) == (5, 7)
    assert init._calculate_fan_in_and_fan_out(empty(8, 3, 5, 4)) == (60, 160)
    with pytest.raises(ValueError, match="at least 2 dimensions.*\\(4,\\)"):
        init._calculate_fan_in_and_fan_out(empty(4))


@pytest.mark.parametrize("fn, expected_std", [
    (lambda t: init.xavier_uniform_(t), math.sqrt(2 / (48 + 64))),
    (lambda t: init.xavier_normal_(t, gain=2.0), 2 * math.sqrt(2 / (48 + 64))),
    (lambda t: init.kaiming_uniform_(t), math.sqrt(2 / (1 + 0.0)) / math.sqrt(48)),
    (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2) / math.sqrt(64)),
    (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), 1 / math.sqrt(3 * 48)),
    (lambda t: init.kaiming_normal_(t, a=0.2, nonlinearity="leaky_relu"), math.sqrt(2 / 1.04) / math.sqrt(48)),
])
def test_fan_based_initializers_have_pytorchs_std(fn, expected_std):
    minitf.manual_seed(2)
    weight = empty(16, 12, 2, 2)  # fan_in 48, fan_out 64
    values = fn(weight).numpy()
    assert abs(values.std() - expected_std) < 0.05 * expected_std
    assert abs(values.mean()) < 0.1 * expected_std


def test_uniform_bounds_of_xavier_and_kaiming():
    values = init.xavier_uniform_(empty(300, 100)).numpy()
    bound = math.sqrt(6 / 400)
    assert np.abs(values).max() <= bound and np.abs(values).max() > 0.99 * bound


def test_in_place_write_keeps_identity_and_invalidates_graphs():
    w = empty(3, 2)
    loss = (Tensor(np.ones((1, 3), np.float32)) @ w).sum() * w.sum()
    data = w.data
    assert init.normal_(w) is w and w.data is data
    with pytest.raises(RuntimeError, match="modified"):
        loss.backward()


def test_initializers_reject_bad_input():
    with pytest.raises(TypeError, match="Tensor or Parameter, got ndarray"):
        init.normal_(np.zeros(3))
    with pytest.raises(TypeError, match="floating-point tensor, got dtype int64"):
        init.uniform_(Tensor(np.zeros(3, np.int64)))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan'"):
        init.kaiming_uniform_(empty(2, 2), mode="fan")
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.kaiming_normal_(empty(2, 2), nonlinearity="swish")
    with pytest.raises(ValueError, match="a <= b"):
        init.uniform_(empty(2), 1.0, 0.0)
    with pytest.raises(ValueError, match="std must be >= 0"):
        init.normal_(empty(2), std=-1.0)


def test_embedding_default_is_standard_normal_with_padding_row_zero():
    minitf.manual_seed(5)
    emb = nn.Embedding(400, 50, padding_idx=-1)
    assert emb.padding_idx == 399 and np.all(emb.weight.numpy()[399] == 0)
    assert abs(emb.weight.numpy()[:399].std() - 1.0) < 0.02
    with pytest.raises(ValueError, match="padding_idx 5 is out of range for 5 rows"):
        nn.Embedding(5, 2, padding_idx=5)


def test_zero_element_weights_are_left_alone():
    for fn in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_):
        assert fn(empty(0, 3)).shape == (0, 3)
    layer = nn.Linear(0, 3)
    assert layer.weight.shape == (3, 0) and np.all(layer.bias.numpy() == 0)
