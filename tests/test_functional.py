"""minitf.functional against NumPy float64 references and finite differences.

Each op has a hypothesis strategy that draws one `Case`: its float inputs (the ones
whose gradients are checked, sometimes transposed so they are not C-contiguous), its
integer or boolean inputs (ids, targets, masks), how to call the op and a float64
reference written here with plain formulas. Generic tests (the `check_*` methods of `Case`,
shared with the other functional test modules) then check, for every op:
the forward against the reference, the backward against central differences
(`minitf.gradcheck`, random cotangent), and the dtype/shape of outputs and gradients.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf
import minitf.functional as F
from minitf import Tensor, backend, gradcheck
from minitf.testing import arrays, assert_grad_close, broadcastable_shapes, masks, shapes

from conftest import requires_cuda


# ---- the cases ------------------------------------------------------------------------------

@dataclass
class Case:
    """One call of an op: `call(*float_tensors, *aux_tensors)` should equal `reference(*floats, *aux)`."""

    call: Callable[..., Tensor]
    floats: tuple[np.ndarray, ...]
    reference: Callable[..., np.ndarray]
    aux: tuple[Any, ...] = field(default=())  # integer / boolean arrays, or None

    def tensors(self, device: str, dtype: Any = np.float64) -> tuple[list[Tensor], list[Any]]:
        floats = [Tensor(a.astype(dtype), requires_grad=True, device=device) for a in self.floats]
        aux = [None if a is None else Tensor(a, device=device) for a in self.aux]
        return floats, aux

    def run(self, device: str, dtype: Any = np.float64) -> tuple[Tensor, list[Tensor]]:
        floats, aux = self.tensors(device, dtype)
        return self.call(*floats, *aux), floats

    def expected(self) -> np.ndarray:
        return np.asarray(self.reference(*self.floats, *self.aux), dtype=np.float64)

    def check_forward(self, device: str) -> None:
        """The output against the float64 reference."""
        out, _ = self.run(device)
        expected = self.expected()
        assert out.shape == expected.shape
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)

    def check_gradient(self, device: str) -> None:
        """Every float input's gradient against central differences (random cotangent)."""
        floats, aux = self.tensors(device)
        assert gradcheck(lambda *t: self.call(*t, *aux), floats)

    def check_dtype(self, dtype: Any, device: str, float32_tol: float = 1e-4) -> None:
        """Output and gradients keep ``dtype`` and their shapes; the output is close to the reference."""
        out, inputs = self.run(device, dtype)
        assert out.dtype == dtype
        tol = float32_tol if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(out.numpy(), self.expected(), rtol=tol, atol=tol)
        cotangent = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
        out.backward(Tensor(cotangent, device=device))
        for x in inputs:
            assert x.grad is not None
            assert x.grad.shape == x.shape and x.grad.dtype == dtype

    def check_cupy_matches_numpy(self) -> None:
        """Output and gradients on CuPy equal those on NumPy up to rounding."""
        results = []
        for device in ("cpu", "cuda"):
            out, inputs = self.run(device)
            assert out.device.kind == device
            cotangent = np.random.default_rng(0).standard_normal(out.shape)
            out.backward(Tensor(cotangent, device=device))
            results.append([out.numpy()] + [backend.to_device(x.grad, "cpu") for x in inputs])
        for on_cpu, on_gpu in zip(*results):
            np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-9, atol=1e-12)


@st.composite
def float_arrays(draw, shape, min_value=-3.0, max_value=3.0):
    """Float64 arrays of `shape`; with 2+ axes sometimes a transposed (non-contiguous) view."""
    shape = tuple(shape)
    if len(shape) >= 2 and draw(st.booleans()):
        return draw(arrays(shape[::-1], min_value, max_value)).T
    return draw(arrays(shape, min_value, max_value))


def away_from_zero(x: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """Push values out of (-margin, margin), where relu has its kink."""
    return np.where(x >= 0, x + margin, x - margin)


# ---- NumPy float64 references ---------------------------------------------------------------

def ref_gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return x * 0.5 * (1 + np.vectorize(math.erf, otypes=[float])(x / math.sqrt(2)))


def ref_softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def ref_log_softmax(x, axis=-1):
    return x - np.log(np.exp(x).sum(axis=axis, keepdims=True))


def ref_layer_norm(x, weight=None, bias=None, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y * (1 if weight is None else weight) + (0 if bias is None else bias)


def ref_linear(x, weight, bias=None):
    y = np.einsum("...i,oi->...o", x, weight)
    return y if bias is None else y + bias


def ref_feed_forward(x, w1, b1, w2, b2, activation):
    h = ref_linear(x, w1, b1)
    a = np.maximum(h, 0) if activation == "relu" else ref_gelu(h)
    return ref_linear(a, w2, b2)


def ref_cross_entropy(logits, targets, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """torch.nn.functional.cross_entropy with classes on the last axis."""
    logp = ref_log_softmax(logits)
    kept = targets != ignore_index
    safe = np.where(kept, targets, 0)
    nll = -np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    uniform = -logp.mean(axis=-1)
    loss = np.where(kept, (1 - label_smoothing) * nll + label_smoothing * uniform, 0.0)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / kept.sum() if kept.any() else np.nan


def ref_attention(q, k, v, mask=None, is_causal=False):
    """Row by row: masked scores are -inf, a row with no allowed key gives zeros."""
    lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    lq, lk = q.shape[-2], k.shape[-2]
    allowed = np.ones(lead + (lq, lk), dtype=bool)
    if mask is not None:
        allowed = allowed & mask
    if is_causal:
        allowed = allowed & (np.arange(lk)[None, :] <= np.arange(lq)[:, None])
    lead = allowed.shape[:-2]
    q, k, v = (np.broadcast_to(a, lead + a.shape[-2:]) for a in (q, k, v))
    out = np.zeros(lead + (lq, v.shape[-1]))
    for idx in np.ndindex(*lead):
        for i in range(lq):
            keys = np.flatnonzero(allowed[idx][i])
            if keys.size == 0:
                continue
            scores = k[idx][keys] @ q[idx][i] / math.sqrt(q.shape[-1])
            weights = np.exp(scores - scores.max())
            out[idx][i] = (weights / weights.sum()) @ v[idx][keys]
    return out


# ---- case strategies, one per op --------------------------------------------------------------

@st.composite
def relu_cases(draw):
    x = away_from_zero(draw(shapes().flatmap(float_arrays)))
    return Case(F.relu, (x,), lambda x: np.maximum(x, 0))


def gelu_cases(approximate):
    @st.composite
    def cases(draw):
        x = draw(shapes().flatmap(float_arrays))
        return Case(lambda t: F.gelu(t, approximate=approximate), (x,),
                    lambda x: ref_gelu(x, approximate))
    return cases()


def softmax_cases(op, reference):
    @st.composite
    def cases(draw):
        x = draw(shapes(min_dims=1).flatmap(float_arrays))
        axis = draw(st.integers(-x.ndim, x.ndim - 1))
        return Case(lambda t: op(t, axis=axis), (x,), lambda x: reference(x, axis))
    return cases()


@st.composite
def layer_norm_cases(draw):
    x = draw(shapes(min_dims=1).flatmap(float_arrays))
    d = x.shape[-1]
    has_weight, has_bias = draw(st.booleans()), draw(st.booleans())
    params = tuple(draw(arrays((d,))) for present in (has_weight, has_bias) if present)

    def split(params):
        it = iter(params)
        return (next(it) if has_weight else None), (next(it) if has_bias else None)

    return Case(lambda x, *p: F.layer_norm(x, *split(p)), (x,) + params,
                lambda x, *p: ref_layer_norm(x, *split(p)))


@st.composite
def linear_cases(draw):
    x = draw(shapes(min_dims=1, max_dims=3).flatmap(float_arrays))
    n_out = draw(st.integers(1, 5))
    weight = draw(float_arrays((n_out, x.shape[-1])))
    bias = (draw(arrays((n_out,))),) if draw(st.booleans()) else ()
    return Case(F.linear, (x, weight) + bias, ref_linear)


@st.composite
def feed_forward_cases(draw, **options):
    x = draw(shapes(min_dims=1, max_dims=3, max_side=4).flatmap(float_arrays))
    d, ff, d_out = x.shape[-1], draw(st.integers(1, 4)), draw(st.integers(1, 4))
    w1, w2 = draw(float_arrays((ff, d))), draw(float_arrays((d_out, ff)))
    b1, b2 = draw(arrays((ff,))), draw(arrays((d_out,)))
    activation = draw(st.sampled_from(["relu", "gelu"]))
    if activation == "relu":  # shift b1 per unit so that no pre-activation sits near the kink
        h = ref_linear(x, w1, b1).reshape(-1, ff)
        margin = 1e-3
        shifts = 3 * margin * np.arange(h.shape[0] + 1)
        ok = (np.abs(h[:, :, None] + shifts) >= margin).all(axis=0)
        b1 = b1 + shifts[np.argmax(ok, axis=1)]
    return Case(lambda *t: F.feed_forward(*t, activation=activation, **options), (x, w1, b1, w2, b2),
                lambda *a: ref_feed_forward(*a, activation))


@st.composite
def embedding_cases(draw):
    vocab, dim = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    weight = draw(float_arrays((vocab, dim)))
    ids = draw(shapes(max_dims=3).flatmap(
        lambda s: st.lists(st.integers(0, vocab - 1), min_size=math.prod(s), max_size=math.prod(s))
        .map(lambda v: np.array(v, dtype=np.int64).reshape(s))))
    return Case(lambda w, i: F.embedding(i, w), (weight,), lambda w, i: w[i], (ids,))


@st.composite
def cross_entropy_cases(draw):
    logits = draw(shapes(min_dims=1, max_dims=3).flatmap(float_arrays))
    n_classes = logits.shape[-1]
    ignore_index = draw(st.sampled_from([-100, -1, 0, n_classes - 1]))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    smoothing = draw(st.sampled_from([0.0, 0.1, 1.0]) | st.floats(0, 1))
    choices = st.integers(0, n_classes - 1) | st.just(ignore_index)
    targets = np.array(draw(st.lists(choices, min_size=logits[..., 0].size,
                                     max_size=logits[..., 0].size)), dtype=np.int64)
    targets = targets.reshape(logits.shape[:-1])
    if reduction == "mean" and (targets == ignore_index).all():  # keep one target: else NaN
        kept = [c for c in range(n_classes) if c != ignore_index]
        if kept:
            targets.flat[0] = kept[0]
        else:
            ignore_index = -100
    options = dict(ignore_index=ignore_index, label_smoothing=smoothing, reduction=reduction)
    return Case(lambda x, t: F.cross_entropy(x, t, **options), (logits,),
                lambda x, t: ref_cross_entropy(x, t, **options), (targets,))


@st.composite
def attention_cases(draw, **options):
    lead_q, lead_k, lead_v = draw(broadcastable_shapes(3, max_dims=2, max_side=3))
    lq, lk = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    d, dv = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    q = draw(float_arrays(lead_q + (lq, d)))
    k = draw(float_arrays(lead_k + (lk, d)))
    v = draw(float_arrays(lead_v + (lk, dv)))
    scores_shape = np.broadcast_shapes(lead_q, lead_k, lead_v) + (lq, lk)
    mask = None
    if draw(st.booleans()):  # a shape that broadcasts to the scores': fewer axes, some of size 1
        kept_axes = scores_shape[len(scores_shape) - draw(st.integers(0, len(scores_shape))):]
        mask_shape = tuple(draw(st.sampled_from([1, n])) for n in kept_axes)
        mask = draw(masks(mask_shape))
    is_causal = draw(st.booleans())
    return Case(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, mask=m, is_causal=is_causal,
                                                                  **options),
                (q, k, v), lambda q, k, v, m: ref_attention(q, k, v, m, is_causal), (mask,))


CASES = {
    "relu": relu_cases(),
    "gelu": gelu_cases("none"),
    "gelu_tanh": gelu_cases("tanh"),
    "softmax": softmax_cases(F.softmax, ref_softmax),
    "log_softmax": softmax_cases(F.log_softmax, ref_log_softmax),
    "layer_norm": layer_norm_cases(),
    "linear": linear_cases(),
    "feed_forward": feed_forward_cases(),
    "embedding": embedding_cases(),
    "cross_entropy": cross_entropy_cases(),
    "attention": attention_cases(),
}

ops = pytest.mark.parametrize("op", sorted(CASES))


# ---- the generic tests -------------------------------------------------------------------------

@ops
@given(data=st.data())
def test_forward_matches_float64_reference(op, data, device):
    data.draw(CASES[op], label="case").check_forward(device)


@ops
@given(data=st.data())
def test_gradient_matches_finite_differences(op, data, device):
    data.draw(CASES[op], label="case").check_gradient(device)


DROPOUT_CASES = {
    "feed_forward": lambda p: feed_forward_cases(dropout_p=p, training=True),
    "dropout": lambda p: shapes().flatmap(float_arrays).map(
        lambda x: Case(lambda t: F.dropout(t, p), (x,), None)),
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@ops
@settings(max_examples=15)
@given(data=st.data())
def test_outputs_and_gradients_keep_dtype_and_shape(op, dtype, data, device):
    # float32: layer_norm multiplies rounding errors of a near-constant row by up to 1/sqrt(eps)
    data.draw(CASES[op], label="case").check_dtype(dtype, device, float32_tol=1e-3)


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


# ---- NumPy and CuPy agree -----------------------------------------------------------------------

@requires_cuda
@ops
@settings(max_examples=10)
@given(data=st.data())
def test_cupy_matches_numpy(op, data):
    data.draw(CASES[op], label="case").check_cupy_matches_numpy()


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
