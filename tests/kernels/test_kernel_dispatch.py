"""The fused ops and Adam take the CUDA-kernel path for CuPy arrays, with the same results.

Runs without a GPU: the `fake_gpu` fixture (tests/fake_gpu.py) makes host arrays pass for
CuPy arrays and emulates each kernel launch in NumPy, recording its name in LAUNCHES.
"""
import numpy as np
import pytest

import minitf.functional as F
from minitf import Tensor
from minitf.nn import Parameter
from minitf.optim import Adam, AdamW
from fake_gpu import LAUNCHES

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4, 6))
G = RNG.standard_normal((3, 4, 6))
W, B = RNG.standard_normal(6), RNG.standard_normal(6)
TARGETS = np.array([[0, 5, -100, 2], [1, 1, 3, -100], [4, 0, 0, 5]])
X_BAD_IGNORED = X.copy()  # NaN and inf logits where the target is ignored
X_BAD_IGNORED[0, 2, 1], X_BAD_IGNORED[1, 3] = np.nan, np.inf


def targets_like(x):
    """TARGETS on x's (real or stand-in) device."""
    return TARGETS.view(type(x.data))


# (name, op on tensors, inputs, kernels expected for forward + backward)
CASES = [
    ("softmax", lambda x: F.softmax(x), [X], ["softmax_fwd", "softmax_bwd"]),
    ("log_softmax", lambda x: F.log_softmax(x, axis=2), [X], ["log_softmax_fwd", "log_softmax_bwd"]),
    ("gelu", lambda x: F.gelu(x), [X], ["gelu_fwd", "gelu_bwd"]),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [X], ["gelu_fwd", "gelu_bwd"]),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, w, b), [X, W, B], None),
    ("cross_entropy", lambda x: F.cross_entropy(x, targets_like(x), label_smoothing=0.1), [X],
     ["cross_entropy_fwd", "cross_entropy_bwd"]),
    ("cross_entropy_none", lambda x: F.cross_entropy(x, targets_like(x), reduction="none"), [X],
     ["cross_entropy_fwd", "cross_entropy_bwd"]),
    ("cross_entropy_non_finite_ignored", lambda x: F.cross_entropy(x, targets_like(x), label_smoothing=0.1),
     [X_BAD_IGNORED], ["cross_entropy_fwd", "cross_entropy_bwd"]),
    ("cross_entropy_all_ignored", lambda x: F.cross_entropy(x, (TARGETS * 0 - 100).view(type(x.data))), [X],
     ["cross_entropy_fwd", "cross_entropy_bwd"]),
]


def _run(op, arrays, to_device):
    tensors = [Tensor(to_device(a), requires_grad=True) for a in arrays]
    out = op(*tensors)
    cotangent = RNG.standard_normal(out.shape) if out.ndim else np.array(1.3)
    out.backward(to_device(cotangent))
    return np.asarray(out.data), [np.asarray(t.grad) for t in tensors]


@pytest.mark.parametrize("name,op,arrays,kernels_used", CASES, ids=[c[0] for c in CASES])
def test_fused_ops_dispatch_to_kernels_with_same_results(fake_gpu, name, op, arrays, kernels_used):  # noqa: F811
    state = RNG.bit_generator.state
    cpu_out, cpu_grads = _run(op, arrays, lambda a: a)
    RNG.bit_generator.state = state  # the same cotangent on both paths
    LAUNCHES.clear()
    gpu_out, gpu_grads = _run(op, arrays, fake_gpu)
    if kernels_used is None:
        assert any(k.startswith(name) for k in LAUNCHES), LAUNCHES
    else:
        assert LAUNCHES[: len(kernels_used)] == kernels_used
    np.testing.assert_allclose(gpu_out, cpu_out, rtol=1e-10, atol=1e-12)
    for gpu, cpu in zip(gpu_grads, cpu_grads):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-10, atol=1e-12)


def test_dropout_dispatches_to_its_kernel(fake_gpu):  # noqa: F811
    x = Tensor(fake_gpu(X), requires_grad=True)
    y = F.dropout(x, p=0.3, training=True)
    assert LAUNCHES == ["dropout_fwd"]
    kept = np.asarray(y.data) != 0
    np.testing.assert_allclose(np.asarray(y.data)[kept], X[kept] / 0.7)


def test_softmax_over_another_axis_falls_back_to_the_generic_path(fake_gpu):  # noqa: F811
    F.softmax(Tensor(fake_gpu(X)), axis=0)
    assert LAUNCHES == []


@pytest.mark.parametrize("cls,wd", [(Adam, 0.0), (Adam, 0.01), (AdamW, 0.01)])
def test_adam_uses_one_fused_launch_per_step_with_same_trajectory(fake_gpu, cls, wd):  # noqa: F811
    shapes = [(4, 3), (3,), (2, 2, 2)]
    start = [RNG.standard_normal(s) for s in shapes]
    grads = [[RNG.standard_normal(s) for s in shapes] for _ in range(3)]

    def trajectory(to_device):
        params = [Parameter(to_device(a.copy())) for a in start]
        opt = cls(params, lr=0.01, weight_decay=wd)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = to_device(g)
            opt.step()
        return [np.asarray(p.data) for p in params]

    cpu = trajectory(lambda a: a)
    LAUNCHES.clear()
    gpu = trajectory(fake_gpu)
    assert LAUNCHES == ["adam_step_multi"] * 3
    for a, b in zip(gpu, cpu):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_where_of_two_constants_follows_a_gpu_condition(fake_gpu):  # noqa: F811
    from minitf import backend, where

    cond = fake_gpu(np.array([True, False, True]))
    out = where(Tensor(cond), 2.0, -1.0)
    assert backend.is_cupy_array(out.data)
    np.testing.assert_array_equal(np.asarray(out.data), [2.0, -1.0, 2.0])


def test_reseeding_the_gpu_generator_from_seed_and_step_repeats_its_draws(fake_gpu):  # noqa: F811
    from minitf import backend, rng

    cp = backend.cupy()
    rng.manual_seed(0)
    host_before = rng.generator(np).bit_generator.state
    draws = {}
    for step in (5, 6, 5):
        rng.random_uniform(cp, (3,), np.float32)  # draws in between do not matter
        rng.reseed_device_generators(0, step)
        draws.setdefault(step, []).append(np.asarray(rng.random_uniform(cp, (8,), np.float32)))
    np.testing.assert_array_equal(draws[5][0], draws[5][1])
    assert not np.array_equal(draws[5][0], draws[6][0])
    assert rng.generator(np).bit_generator.state == host_before  # NumPy's stream is left alone
