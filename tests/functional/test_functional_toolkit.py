"""The research-toolkit activations, losses and normalizations of minitf.functional beyond the
generic checks: PyTorch's conventions that finite differences cannot see (kinks, ignore_index,
clamps), stability, bad-input errors, and the embedding's sorted scatter-add against np.add.at.

The ops' cases and float64 references live in tests/op_cases/functional_toolkit.py;
tests/functional/test_op_properties.py runs the generic checks on them (forward, backward against central
differences with a random cotangent, dtypes).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf.functional as F
from minitf import Tensor, backend, scatter


# ---- conventions finite differences cannot check -------------------------------------------------

def grad_of(fn, x, device, cotangent=None):
    t = Tensor(np.asarray(x, dtype=np.float64), requires_grad=True, device=device)
    out = fn(t)
    out.backward(Tensor(np.ones(out.shape) if cotangent is None else cotangent, device=device))
    return out.numpy(), backend.to_device(t.grad, "cpu")


@pytest.mark.parametrize("fn, slope_at_zero", [
    (lambda t: F.leaky_relu(t, 0.2), 0.2), (lambda t: F.elu(t, alpha=0.7), 0.7),
    (lambda t: F.l1_loss(t, np.zeros(1), reduction="sum"), 0.0),
    (lambda t: F.smooth_l1_loss(t, np.zeros(1), reduction="sum"), 0.0),
])
def test_gradient_at_the_kink_follows_pytorch(fn, slope_at_zero, device):
    _, g = grad_of(fn, [0.0], device)
    assert g[0] == slope_at_zero


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, fn, expected, expected_grad", [
    ("log_sigmoid", F.log_sigmoid, [-1000.0, 0.0], [1.0, 0.0]),
    ("softplus", F.softplus, [0.0, 1000.0], [0.0, 1.0]),
    ("silu", F.silu, [-0.0, 1000.0], [0.0, 1.0]),
    ("sigmoid", F.sigmoid, [0.0, 1.0], [0.0, 0.0]),
    ("bce_with_logits", lambda x: F.binary_cross_entropy_with_logits(x, Tensor(np.array([1.0, 0.0], x.dtype),
                                                                                device=x.device),
                                                                      reduction="none"), [1000.0, 1000.0],
     [-1.0, 1.0]),
])
def test_large_inputs_do_not_overflow(name, fn, expected, expected_grad, dtype, device):
    x = Tensor(np.array([-1000.0, 1000.0], dtype), requires_grad=True, device=device)
    with np.errstate(all="raise", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fn(x)
        out.backward(Tensor(np.ones(2, dtype), device=device))
    assert out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(backend.to_device(x.grad, "cpu"), expected_grad, atol=1e-6)


def test_binary_cross_entropy_clamps_the_log_at_minus_100(device):
    out, g = grad_of(lambda x: F.binary_cross_entropy(x, Tensor([1.0, 0.0], device=device), reduction="none"),
                     [0.0, 1.0], device)
    np.testing.assert_array_equal(out, [100.0, 100.0])
    np.testing.assert_allclose(g, [-1e12, 1e12])  # (x - t) / max(x (1 - x), 1e-12)


def test_nll_loss_with_every_target_ignored_is_nan_with_zero_gradient(device):
    out, g = grad_of(lambda x: F.nll_loss(x, Tensor(np.array([1, 1]), device=device), ignore_index=1),
                     random_array(2, 3), device)
    assert np.isnan(out) and not g.any()


@pytest.mark.parametrize("weight, target", [(None, [1, 1]), (np.array([0.0, 0.0, 2.0]), [0, 1])],
                         ids=["all ignored", "zero weights"])
def test_nll_loss_over_no_counted_weight_is_nan_without_a_warning(device, weight, target):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, g = grad_of(lambda x: F.nll_loss(x, Tensor(np.array(target), device=device), weight=weight,
                                              ignore_index=1), random_array(2, 3), device)
    assert np.isnan(out) and not g.any()


@pytest.mark.parametrize("loss", [
    lambda x: F.mse_loss(x, np.zeros((0, 3))), lambda x: F.l1_loss(x, np.zeros((0, 3))),
    lambda x: F.smooth_l1_loss(x, np.zeros((0, 3))), lambda x: F.binary_cross_entropy(x, np.zeros((0, 3))),
    lambda x: F.binary_cross_entropy_with_logits(x, np.zeros((0, 3))),
    lambda x: F.kl_div(x, np.zeros((0, 3))), lambda x: F.kl_div(x, np.zeros((0, 3)), reduction="batchmean"),
], ids=["mse", "l1", "smooth_l1", "bce", "bce_logits", "kl_div", "kl_div_batchmean"])
def test_mean_of_an_empty_input_is_nan_without_a_warning(device, loss):
    """PyTorch's mean of no elements: NaN, and the (empty) gradient."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, g = grad_of(loss, np.zeros((0, 3)), device)
    assert np.isnan(out) and g.shape == (0, 3)


def test_nll_loss_mean_divides_by_the_kept_weights(device):
    x = random_array(3, 2)
    out = F.nll_loss(Tensor(x, device=device), Tensor(np.array([0, 1, 1]), device=device),
                     weight=np.array([1.0, 3.0]), ignore_index=0)
    np.testing.assert_allclose(out.numpy(), -(3 * x[1, 1] + 3 * x[2, 1]) / 6)


def test_cosine_similarity_of_a_zero_vector_is_zero_with_a_finite_gradient(device):
    a = Tensor(np.zeros((1, 3)), requires_grad=True, device=device)
    b = Tensor(random_array(1, 3), requires_grad=True, device=device)
    out = F.cosine_similarity(a, b)
    out.backward(Tensor(np.ones(1), device=device))
    assert out.numpy()[0] == 0 and np.isfinite(backend.to_device(a.grad, "cpu")).all()


def test_normalize_below_eps_divides_by_eps(device):
    out, g = grad_of(lambda x: F.normalize(x, dim=0, eps=1e-3), [1e-4, 0.0], device, np.array([1.0, 2.0]))
    np.testing.assert_allclose(out, [0.1, 0.0])
    np.testing.assert_allclose(g, [1e3, 2e3])


def test_normalize_inf_splits_the_norm_gradient_between_tied_largest_entries(device):
    x, g = np.array([1.0, -2.0, 2.0]), np.array([1.0, 2.0, 3.0])
    _, grad = grad_of(lambda t: F.normalize(t, p=np.inf, dim=0), x, device, g)
    norm_gradient = np.array([0.0, -0.5, 0.5])  # sign(x) / 2 at each of the two largest |x|
    np.testing.assert_allclose(grad, g / 2 - (g @ x) / 4 * norm_gradient)


def random_array(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- bad input ------------------------------------------------------------------------------------

X = Tensor(random_array(4, 3))
BAD_INPUTS = [
    (lambda: F.mse_loss(X, np.zeros((2, 3))), ValueError, r"\(4, 3\).*\(2, 3\)"),
    (lambda: F.l1_loss(X, np.zeros(3), reduction="avg"), ValueError, "reduction"),
    (lambda: F.binary_cross_entropy(Tensor(np.full((4, 3), 0.5)), np.zeros((4, 1))), ValueError,
     r"\(4, 1\).*\(4, 3\)"),
    (lambda: F.binary_cross_entropy(Tensor(np.array([0.5, 1.5])), np.zeros(2)), ValueError, r"\[0, 1\]"),
    (lambda: F.binary_cross_entropy_with_logits(X, np.zeros(3)), ValueError, r"\(3,\).*\(4, 3\)"),
    (lambda: F.binary_cross_entropy_with_logits(X, np.zeros((4, 3)), pos_weight=Tensor(np.ones(3),
                                                                                        requires_grad=True)),
     ValueError, "pos_weight.*cannot require grad"),
    (lambda: F.nll_loss(X, np.array([0, 1, 3, 1])), IndexError, r"target 3 .*\[0, 3\)"),
    (lambda: F.nll_loss(X, np.array([0, 1])), ValueError, r"\(2,\).*\(4,\).*\(4, 3\)"),
    (lambda: F.nll_loss(X, np.array([0.0, 1, 1, 1])), TypeError, "integer"),
    (lambda: F.nll_loss(X, np.array([0, 1, 1, 1]), weight=np.ones(4)), ValueError, r"weight.*\(4,\).*\(3,\)"),
    (lambda: F.kl_div(X, np.ones(3), reduction="batch"), ValueError, "batchmean"),
    (lambda: F.cosine_similarity(X, np.ones((2, 3))), ValueError, r"\(4, 3\).*\(2, 3\)"),
    (lambda: F.cosine_similarity(X, X, dim=2), ValueError, "axis 2 is out of range"),
    (lambda: F.normalize(X, p=0), ValueError, "p must be positive"),
    (lambda: F.rms_norm(X, (4,)), ValueError, r"\(4, 3\).*\(4,\)"),
    (lambda: F.rms_norm(X, 3, Tensor(np.ones(4))), ValueError, r"weight.*\(4,\).*\(3,\)"),
    (lambda: F.smooth_l1_loss(X, X, beta=-1.0), ValueError, "beta"),
]


@pytest.mark.parametrize("call, error, message", BAD_INPUTS)
def test_bad_input_raises_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---- embedding backward: sorted scatter-add ---------------------------------------------------------

@settings(max_examples=60)
@given(vocab=st.sampled_from([1, 3, 50, 400, 70_000]), n=st.integers(0, 300), dim=st.integers(1, 4),
       trailing=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 9))
def test_add_rows_matches_np_add_at(vocab, n, dim, trailing, dtype, seed):
    """Small and large problems, few and many distinct ids (each of add_rows' paths), repeats,
    ids beyond 16 bits, a non-zero target."""
    rng = np.random.default_rng(seed)
    index = rng.integers(0, vocab, n) if vocab < 70_000 else rng.choice([0, 5, 65_536, 69_999], n)
    extra = (2,) if trailing else ()
    rows = rng.standard_normal((n, dim) + extra).astype(dtype)
    target = rng.standard_normal((vocab, dim) + extra).astype(dtype)
    expected = target.copy()
    np.add.at(expected, index, rows)
    scatter.add_rows(target, index, rows)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(target, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_add_rows_keeps_a_non_finite_row_to_its_own_id(bad):
    """The one-hot product would spread 0 * inf = NaN to every id; add_rows must not."""
    index = np.array([0, 1, 1, 2])
    rows = random_array(4, 3)
    rows[1, 0] = bad
    target, expected = np.zeros((3, 3)), np.zeros((3, 3))
    np.add.at(expected, index, rows)
    scatter.add_rows(target, index, rows)
    np.testing.assert_array_equal(target, expected)
    assert np.isfinite(target[[0, 2]]).all()


@pytest.mark.parametrize("padding_idx", [None, 0, 7])
def test_embedding_gradient_adds_repeated_ids_and_skips_the_padding_row(padding_idx, device):
    ids = np.random.default_rng(0).integers(0, 100, (8, 30))  # > 64 distinct ids, repeats too
    weight = Tensor(random_array(100, 5), requires_grad=True, device=device)
    g = random_array(8, 30, 5, seed=1)
    F.embedding(Tensor(ids, device=device), weight, padding_idx=padding_idx).backward(Tensor(g, device=device))
    expected = np.zeros((100, 5))
    np.add.at(expected, ids.ravel(), g.reshape(-1, 5))
    if padding_idx is not None:
        expected[padding_idx] = 0
    np.testing.assert_allclose(backend.to_device(weight.grad, "cpu"), expected, rtol=1e-12, atol=1e-12)
