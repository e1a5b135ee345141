"""The research-toolkit activations, losses and normalizations of minitf.functional, as cases for
the generic checks (tests/functional/test_op_properties.py): one hypothesis strategy per op draws an
`OpCase` with a float64 reference written here with plain formulas.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitf.functional as F
from minitf.testing import OpCase, arrays, away_from_zero, broadcastable_shapes, float_arrays, op_tests, shapes


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
        return OpCase(lambda t: op(t, **options), (x,), lambda x: reference(x, **options))
    return cases()


@st.composite
def softplus_cases(draw):
    beta, threshold = draw(st.sampled_from([0.5, 1.0, 2.0])), draw(st.sampled_from([1.0, 2.0, 20.0]))
    x = draw(shapes().flatmap(float_arrays))
    x = np.where(np.abs(beta * x - threshold) < 0.05, x + 0.1 / beta, x)  # off the switch point
    return OpCase(lambda t: F.softplus(t, beta, threshold), (x,), lambda x: ref_softplus(x, beta, threshold))


@st.composite
def rms_norm_cases(draw):
    x = away_from_zero(draw(shapes(min_dims=1).flatmap(float_arrays)), 0.1)  # rms >= 0.1
    k = draw(st.integers(1, x.ndim))
    shape = x.shape[x.ndim - k:]
    weight = (draw(arrays(shape)),) if draw(st.booleans()) else ()
    eps = draw(st.sampled_from([None, 1e-5]))
    normalized = shape[0] if k == 1 and draw(st.booleans()) else shape
    return OpCase(lambda x, *w: F.rms_norm(x, normalized, *w, eps=eps), (x,) + weight,
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
    return OpCase(lambda x, t: F.nll_loss(x, t, **options), (x,), lambda x, t: ref_nll(x, t, **options),
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
        return OpCase(lambda x, t: op(x, t, reduction=reduction), (x, t),
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
        return OpCase(lambda x, t: F.binary_cross_entropy(x, t, weight=w, reduction=reduction), (x, t),
                      lambda x, t: ref_bce(x, t, w, reduction))
    pw = draw(weight_for(x.shape))
    return OpCase(lambda x, t: F.binary_cross_entropy_with_logits(x, t, w, reduction, pos_weight=pw), (x, t),
                  lambda x, t: ref_bce_logits(x, t, w, pw, reduction))


@st.composite
def kl_cases(draw):
    s1, s2 = draw(broadcastable_shapes(2, min_dims=1))
    log_target = draw(st.booleans())
    x = draw(float_arrays(s1))
    t = draw(float_arrays(s2) if log_target else float_arrays(s2, 0.1, 2.0))
    reduction = draw(st.sampled_from(["mean", "batchmean", "sum", "none"]))
    return OpCase(lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target), (x, t),
                  lambda x, t: ref_kl(x, t, reduction, log_target))


@st.composite
def cosine_cases(draw):
    s1, s2 = draw(broadcastable_shapes(2, min_dims=1))
    a, b = away_from_zero(draw(float_arrays(s1)), 0.1), away_from_zero(draw(float_arrays(s2)), 0.1)
    ndim = len(np.broadcast_shapes(s1, s2))
    dim = draw(st.integers(-ndim, ndim - 1))
    return OpCase(lambda a, b: F.cosine_similarity(a, b, dim=dim), (a, b), lambda a, b: ref_cosine(
        *np.broadcast_arrays(a, b), dim))


@st.composite
def normalize_cases(draw):
    x = away_from_zero(draw(shapes(min_dims=1).flatmap(float_arrays)), 0.1)
    p = draw(st.sampled_from([1.0, 2.0, 3.0, np.inf]))
    if p == np.inf:  # distinct magnitudes: a tie for the largest has no derivative
        x = np.sign(x) * (np.abs(x) + 0.05 * np.arange(x.size).reshape(x.shape))
    dim = draw(st.integers(-x.ndim, x.ndim - 1))
    return OpCase(lambda t: F.normalize(t, p=p, dim=dim), (x,), lambda x: ref_normalize(x, p, dim))


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

OPS = op_tests(CASES, examples={"float32": 10, "float64": 10, "cupy": 10})
