"""minitf.functional's activations, norms, linear layers, embedding, cross-entropy and attention:
one hypothesis strategy per op draws an `OpCase` (float inputs, sometimes transposed so they are
not C-contiguous; integer or boolean inputs; the call) with a float64 reference written here
with plain formulas. tests/functional/test_op_properties.py runs the generic checks on `OPS`.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

import minitf.functional as F
from minitf.testing import (OpCase, arrays, away_from_zero, broadcastable_shapes, float_arrays, masks, op_tests,
                            shapes)

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
    return OpCase(F.relu, (x,), lambda x: np.maximum(x, 0))


def gelu_cases(approximate):
    @st.composite
    def cases(draw):
        x = draw(shapes().flatmap(float_arrays))
        return OpCase(lambda t: F.gelu(t, approximate=approximate), (x,),
                      lambda x: ref_gelu(x, approximate))
    return cases()


def softmax_cases(op, reference):
    @st.composite
    def cases(draw):
        x = draw(shapes(min_dims=1).flatmap(float_arrays))
        axis = draw(st.integers(-x.ndim, x.ndim - 1))
        return OpCase(lambda t: op(t, axis=axis), (x,), lambda x: reference(x, axis))
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

    return OpCase(lambda x, *p: F.layer_norm(x, *split(p)), (x,) + params,
                  lambda x, *p: ref_layer_norm(x, *split(p)))


@st.composite
def linear_cases(draw):
    x = draw(shapes(min_dims=1, max_dims=3).flatmap(float_arrays))
    n_out = draw(st.integers(1, 5))
    weight = draw(float_arrays((n_out, x.shape[-1])))
    bias = (draw(arrays((n_out,))),) if draw(st.booleans()) else ()
    return OpCase(F.linear, (x, weight) + bias, ref_linear)


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
    return OpCase(lambda *t: F.feed_forward(*t, activation=activation, **options), (x, w1, b1, w2, b2),
                  lambda *a: ref_feed_forward(*a, activation))


@st.composite
def embedding_cases(draw):
    vocab, dim = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    weight = draw(float_arrays((vocab, dim)))
    ids = draw(shapes(max_dims=3).flatmap(
        lambda s: st.lists(st.integers(0, vocab - 1), min_size=math.prod(s), max_size=math.prod(s))
        .map(lambda v: np.array(v, dtype=np.int64).reshape(s))))
    return OpCase(lambda w, i: F.embedding(i, w), (weight,), lambda w, i: w[i], (ids,))


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
    return OpCase(lambda x, t: F.cross_entropy(x, t, **options), (logits,),
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
    return OpCase(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, mask=m, is_causal=is_causal,
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

# float32: layer_norm multiplies rounding errors of a near-constant row by up to 1/sqrt(eps)
OPS = op_tests(CASES, examples={"float32": 15, "float64": 15, "cupy": 10},
               options={"float32": {"float32_tol": 1e-3}})
