"""minitf.functional beyond the generic checks: training-mode dropout inside the fused ops,
stability on large inputs, and the fused dropout + residual + layer norm block.

The ops' cases (float64 references, hypothesis strategies) live in tests/op_cases/functional.py;
tests/functional/test_op_properties.py runs the generic checks on them (forward against the reference,
backward against central differences, dtypes and shapes, CuPy against NumPy).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf
import minitf.functional as F
from minitf import Tensor, backend, gradcheck
from minitf.testing import OpCase, arrays, assert_grad_close, float_arrays, shapes

from op_cases.functional import attention_cases, feed_forward_cases


# ---- training-mode dropout ------------------------------------------------------------------------

DROPOUT_CASES = {
    "feed_forward": lambda p: feed_forward_cases(dropout_p=p, training=True),
    "dropout": lambda p: shapes().flatmap(float_arrays).map(
        lambda x: OpCase(lambda t: F.dropout(t, p), (x,), None)),
    "attention": lambda p: attention_cases(dropout_p=p),
}


@pytest.mark.parametrize("op", sorted(DROPOUT_CASES))
@given(data=st.data(), p=st.sampled_from([0.3, 0.7]))
def test_gradient_with_dropout_matches_finite_differences(op, p, data, device):
    """Training-mode dropout inside the fused ops: reseeding before each call draws the same
    mask, so the op is one fixed function that finite differences can check."""
    case = data.draw(DROPOUT_CASES[op](p), label="case")
    floats, aux = case.tensors(device)

    def fixed_mask(*t):
        minitf.manual_seed(11)
        return case.call(*t, *aux)

    assert gradcheck(fixed_mask, floats)


# ---- numerical stability -------------------------------------------------------------------------

LARGE = np.array([-1000.0, 1.0, 1000.0])
STABILITY = {  # op on LARGE (and targets on the device) -> expected output, exact up to rounding
    "softmax": (lambda x, dev: F.softmax(x), [0.0, 0.0, 1.0]),
    "log_softmax": (lambda x, dev: F.log_softmax(x), [-2000.0, -999.0, 0.0]),
    "cross_entropy_low": (lambda x, dev: F.cross_entropy(x[None], Tensor([0], device=dev)), 2000.0),
    "cross_entropy_high": (lambda x, dev: F.cross_entropy(x[None], Tensor([2], device=dev)), 0.0),
    "cross_entropy_smoothed": (lambda x, dev: F.cross_entropy(x[None], Tensor([2], device=dev),
                                                             label_smoothing=0.3),
                               0.3 * (1000.0 - 1.0 / 3)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(STABILITY))
def test_large_inputs_do_not_overflow(name, dtype, device):
    fn, expected = STABILITY[name]
    x = Tensor(LARGE.astype(dtype), requires_grad=True, device=device)
    # exp(-2000) underflowing to 0 is the right answer; overflow, 0/0 and log(0) are not.
    with np.errstate(all="raise", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fn(x, device)
        out.backward(Tensor(np.ones(out.shape, dtype), device=device))
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)
    assert np.isfinite(backend.to_device(x.grad, "cpu")).all()


# ---- dropout_add_layer_norm: the post-norm residual block as one node --------------------------

@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_dropout_add_layer_norm_gradients_match_finite_differences(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3, max_side=5).filter(lambda s: s[-1] > 1))
    x, h = data.draw(arrays(shape)), data.draw(arrays(shape))
    weight, bias = data.draw(arrays((shape[-1],))), data.draw(arrays((shape[-1],)))
    p = data.draw(st.sampled_from([0.0, 0.3]))

    def fn(x, h, weight, bias):
        minitf.manual_seed(1)  # the same mask at every evaluation
        return F.dropout_add_layer_norm(x, h, weight, bias, p=p, training=True)

    projection = np.random.default_rng(2).standard_normal(shape)  # not .sum(): a norm's rows sum to a constant
    assert_grad_close(lambda *args: (fn(*args) * Tensor(projection)).sum(), x, h, weight, bias)


@pytest.mark.parametrize("training", [True, False])
def test_dropout_add_layer_norm_equals_the_three_ops(training):
    rng = np.random.default_rng(0)
    x0, h0, w0, b0 = rng.standard_normal((4, 3, 8)), rng.standard_normal((4, 3, 8)), \
        rng.standard_normal(8), rng.standard_normal(8)
    g = rng.standard_normal((4, 3, 8))
    results = []
    for fused in (True, False):
        x, h, w, b = (Tensor(a, requires_grad=True) for a in (x0, h0, w0, b0))
        minitf.manual_seed(5)
        y = F.dropout_add_layer_norm(x, h, w, b, p=0.4, training=training) if fused else \
            F.layer_norm(x + F.dropout(h, 0.4, training), w, b)
        y.backward(Tensor(g))
        results.append([y.numpy()] + [t.grad for t in (x, h, w, b)])
    for fused, composed in zip(*results):
        np.testing.assert_allclose(fused, composed, rtol=1e-12, atol=1e-12)


def test_dropout_add_layer_norm_refuses_mismatched_inputs():
    x = Tensor(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"x \(\(2, 4\), float32\) and h \(\(2, 3\), float32\)"):
        F.dropout_add_layer_norm(x, Tensor(np.zeros((2, 3), np.float32)))
    with pytest.raises(ValueError, match="float64"):
        F.dropout_add_layer_norm(x, Tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="weight has shape"):
        F.dropout_add_layer_norm(x, x, Tensor(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match="must be in"):
        F.dropout_add_layer_norm(x, x, p=1.5)
