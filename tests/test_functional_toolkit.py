"""The research-toolkit activations, losses and normalizations of minitf.functional.

Same pattern as test_functional.py (whose `Case`, with its generic checks, and
`float_arrays` this reuses): one hypothesis strategy per op draws a case with a float64
reference written here with plain formulas; generic tests check the forward, the backward
against central differences (random cotangent) and the dtypes. Then PyTorch's conventions that finite differences
cannot see (kinks, ignore_index, clamps), stability, bad-input errors, and the embedding's
sorted scatter-add against np.add.at.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitf.functional as F
from minitf import Tensor, backend, scatter
from minitf.testing import arrays, broadcastable_shapes, shapes

from test_functional import Case, away_from_zero, float_arrays


def sig(x):
    return 1 / (1 + np.exp(-x))


# ---- NumPy float64 references ---------------------------------------------------------------

def ref_softplus(x, beta=1.0, threshold=20.0):
    return np.where(beta * x > threshold, x, np.log(1 + np.exp(beta * x)) / beta)


def ref_rms_norm(x, k, weight=None, eps=None):
    eps = np.finfo(np.float64).eps if eps is None else eps
    axes = tuple(range(-k, 0))
    y = x / np.sqrt((x ** 2).mean(axis=axes, keepdims=True) + eps)
    return y if weight is None else y * weight


def ref_nll(x, t, weight=None, ignore_index=-100, reduction="mean"):
    """Classes on axis 1 (axis 0 for 1-D x)."""
    axis = 1 if x.ndim > 1 else 0
    w = np.ones(x.shape[axis]) if weight is None else weight
    kept = t != ignore_index
    safe = np.where(kept, t, 0)
    picked = np.take_along_axis(x, np.expand_dims(safe, axis), axis).squeeze(axis)
    item_w = np.where(kept, w[safe], 0.0)
    loss = -picked * item_w
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / item_w.sum()


def reduced(loss, reduction):
    return {"none": loss, "sum": np.sum(loss), "mean": np.mean(loss)}[reduction]


def ref_bce(x, t, w=None, reduction="mean"):
    loss = -(t * np.log(x) + (1 - t) * np.log(1 - x)) * (1 if w is None else w)
    return reduced(loss, reduction)


def ref_bce_logits(x, t, w=None, pos_weight=None, reduction="mean"):
    pw = 1 if pos_weight is None else pos_weight
    loss = -(pw * t * np.log(sig(x)) + (1 - t) * np.log(1 - sig(x))) * (1 if w is None else w)
    return reduced(loss, reduction)


def ref_kl(x, t, reduction, log_target):
    loss = np.exp(t) * (t - x) if log_target else t * (np.log(t) - x)
    loss = loss + np.zeros(np.broadcast_shapes(x.shape, t.shape))
    return loss.sum() / loss.shape[0] if reduction == "batchmean" else reduced(loss, reduction)


def ref_cosine(a, b, dim, eps=1e-8):
    na = np.maximum(np.sqrt((a * a).sum(axis=dim, keepdims=True)), eps)
    nb = np.maximum(np.sqrt((b * b).sum(axis=dim, keepdims=True)), eps)
    return (a / na * (b / nb)).sum(axis=dim)


def ref_normalize(x, p, dim, eps=1e-12):
    norm = np.abs(x).max(axis=dim, keepdims=True) if p == np.inf else \
        (np.abs(x) ** p).sum(axis=dim, keepdims=True) ** (1 / p)
    return x / np.maximum(norm, eps)


# ---- case strategies --------------------------------------------------------------------------

def unary(op, reference, kink=False, **draw_options):
    """Cases of an element-wise op; `kink`: keep x away from 0, where the derivative jumps."""
    @st.composite
    def cases(draw):
        x = draw(shapes().flatmap(float_arrays))
        if kink:
            x = away_from_zero(x)
        options = {k: draw(v) for k, v in draw_options.items()}
        return Case(lambda t: op(t, **options), (x,), lambda x: reference(x, **options))
    return cases()


@st.composite
def softplus_cases(draw):
    beta, threshold = draw(st.sampled_from([0.5, 1.0, 2.0])), draw(st.sampled_from([1.0, 2.0, 20.0]))
    x = draw(shapes().flatmap(float_arrays))
    x = np.where(np.abs(beta * x - threshold) < 0.05, x + 0.1 / beta, x)  # off the switch point
    return Case(lambda t: F.softplus(t, beta, threshold), (x,), lambda x: ref_softplus(x, beta, threshold))


@st.composite
def rms_norm_cases(draw):
    x = away_from_zero(draw(shapes(min_dims=1).flatmap(float_arrays)), 0.1)  # rms >= 0.1
    k = draw(st.integers(1, x.ndim))
    shape = x.shape[x.ndim - k:]
    weight = (draw(arrays(shape)),) if draw(st.booleans()) else ()
    eps = draw(st.sampled_from([None, 1e-5]))
    normalized = shape[0] if k == 1 and draw(st.booleans()) else shape
    return Case(lambda x, *w: F.rms_norm(x, normalized, *w, eps=eps), (x,) + weight,
                lambda x, *w: ref_rms_norm(x, k, *w, eps=eps))


@st.composite
def nll_cases(draw):
    x = draw(shapes(min_dims=1, max_dims=4).flatmap(float_arrays))
    axis = 1 if x.ndim > 1 else 0
    n_classes = x.shape[axis]
    target_shape = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    ignore_index = draw(st.sampled_from([-100, 0, n_classes - 1]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    weight = draw(arrays((n_classes,), 0.1, 2.0)) if draw(st.booleans()) else None
    targets = draw(hnp.arrays(np.int64, target_shape, elements=st.integers(0, n_classes - 1)
                              | st.just(ignore_index)))
    if reduction == "mean" and (targets == ignore_index).all():  # keep one target: else NaN
        kept = [c for c in range(n_classes) if c != ignore_index]
        if kept:
            targets.flat[0] = kept[0]
        else:
            ignore_index = -100
    options = dict(weight=weight, ignore_index=ignore_index, reduction=reduction)
    return Case(lambda x, t: F.nll_loss(x, t, **options), (x,), lambda x, t: ref_nll(x, t, **options),
                (targets,))


def regression_cases(op, reference, kinks):
    """Input and target of broadcastable shapes; their difference kept off the `kinks`."""
    @st.composite
    def cases(draw):
        s1, s2 = draw(broadcastable_shapes(2))
        x, t = draw(float_arrays(s1)), draw(float_arrays(s2))
        if kinks:  # |x - t| in 0.05 + 0.1 * k: at least 0.05 from the kinks at 0 and 0.5
            x, t = np.round(x, 1) + 0.05, np.round(t, 1)
        reduction = draw(st.sampled_from(["mean", "sum", "none"]))
        return Case(lambda x, t: op(x, t, reduction=reduction), (x, t),
                    lambda x, t: reduced(reference(x - t) + np.zeros(np.broadcast_shapes(x.shape, t.shape)),
                                         reduction))
    return cases()


def smooth_l1_ref(beta):
    return lambda d: np.where(np.abs(d) < beta, 0.5 * d * d / beta, np.abs(d) - 0.5 * beta)


@st.composite
def weight_for(draw, shape):
    """An optional positive weight that broadcasts to `shape` (leading axes dropped, some set to 1)."""
    if not draw(st.booleans()):
        return None
    kept = shape[len(shape) - draw(st.integers(0, len(shape))):]
    return draw(arrays(tuple(draw(st.sampled_from([1, n])) for n in kept), 0.1, 2.0))


@st.composite
def bce_cases(draw, logits):
    x = draw(shapes().flatmap(lambda s: float_arrays(s) if logits else float_arrays(s, 0.05, 0.95)))
    t = draw(float_arrays(x.shape, 0.0, 1.0))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    w = draw(weight_for(x.shape))
    if not logits:
        return Case(lambda x, t: F.binary_cross_entropy(x, t, weight=w, reduction=reduction), (x, t),
                    lambda x, t: ref_bce(x, t, w, reduction))
    pw = draw(weight_for(x.shape))
    return Case(lambda x, t: F.binary_cross_entropy_with_logits(x, t, w, reduction, pos_weight=pw), (x, t),
                lambda x, t: ref_bce_logits(x, t, w, pw, reduction))


@st.composite
def kl_cases(draw):
    s1, s2 = draw(broadcastable_shapes(2, min_dims=1))
    log_target = draw(st.booleans())
    x = draw(float_arrays(s1))
    t = draw(float_arrays(s2) if log_target else float_arrays(s2, 0.1, 2.0))
    reduction = draw(st.sampled_from(["mean", "batchmean", "sum", "none"]))
    return Case(lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target), (x, t),
                lambda x, t: ref_kl(x, t, reduction, log_target))


@st.composite
def cosine_cases(draw):
    s1, s2 = draw(broadcastable_shapes(2, min_dims=1))
    a, b = away_from_zero(draw(float_arrays(s1)), 0.1), away_from_zero(draw(float_arrays(s2)), 0.1)
    ndim = len(np.broadcast_shapes(s1, s2))
    dim = draw(st.integers(-ndim, ndim - 1))
    return Case(lambda a, b: F.cosine_similarity(a, b, dim=dim), (a, b), lambda a, b: ref_cosine(
        *np.broadcast_arrays(a, b), dim))


@st.composite
def normalize_cases(draw):
    x = away_from_zero(draw(shapes(min_dims=1).flatmap(float_arrays)), 0.1)
    p = draw(st.sampled_from([1.0, 2.0, 3.0, np.inf]))
    if p == np.inf:  # distinct magnitudes: a tie for the largest has no derivative
        x = np.sign(x) * (np.abs(x) + 0.05 * np.arange(x.size).reshape(x.shape))
    dim = draw(st.integers(-x.ndim, x.ndim - 1))
    return Case(lambda t: F.normalize(t, p=p, dim=dim), (x,), lambda x: ref_normalize(x, p, dim))


CASES = {
    "silu": unary(F.silu, lambda x: x * sig(x)),
    "softplus": softplus_cases(),
    "leaky_relu": unary(F.leaky_relu, lambda x, negative_slope: np.where(x > 0, x, negative_slope * x),
                        kink=True, negative_slope=st.sampled_from([0.01, 0.2, 1.5])),
    "elu": unary(F.elu, lambda x, alpha: np.where(x > 0, x, alpha * (np.exp(x) - 1)), kink=True,
                 alpha=st.sampled_from([1.0, 0.5, 2.0])),
    "sigmoid": unary(F.sigmoid, sig),
    "tanh": unary(F.tanh, np.tanh),
    "log_sigmoid": unary(F.log_sigmoid, lambda x: np.log(sig(x))),
    "rms_norm": rms_norm_cases(),
    "nll_loss": nll_cases(),
    "mse_loss": regression_cases(F.mse_loss, np.square, ()),
    "l1_loss": regression_cases(F.l1_loss, np.abs, (0.0,)),
    "smooth_l1_loss": regression_cases(lambda x, t, **o: F.smooth_l1_loss(x, t, beta=0.5, **o),
                                       smooth_l1_ref(0.5), (0.0, 0.5)),
    "binary_cross_entropy": bce_cases(False),
    "binary_cross_entropy_with_logits": bce_cases(True),
    "kl_div": kl_cases(),
    "cosine_similarity": cosine_cases(),
    "normalize": normalize_cases(),
}

ops = pytest.mark.parametrize("op", sorted(CASES))


@ops
@given(data=st.data())
def test_forward_matches_float64_reference(op, data, device):
    data.draw(CASES[op], label="case").check_forward(device)


@ops
@given(data=st.data())
def test_gradient_matches_finite_differences(op, data, device):
    data.draw(CASES[op], label="case").check_gradient(device)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@ops
@settings(max_examples=10)
@given(data=st.data())
def test_outputs_and_gradients_keep_dtype_and_shape(op, dtype, data, device):
    data.draw(CASES[op], label="case").check_dtype(dtype, device)


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
