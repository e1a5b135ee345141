"""Second derivatives of minitf.functional's ops (their `higher` rules): gradgradcheck in float64 on
hypothesis-drawn shapes (negative and size-1 axes, broadcasting, masks, ignore_index, label
smoothing, dropout), PyTorch's double backward in float64, and third order through the rules."""
from __future__ import annotations

import math
import re
import sys
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minitf as mt
import minitf.functional as F
from minitf import gradgradcheck
from minitf.autograd import grad
from minitf.testing import (arrays, away_from_zero, broadcastable_shapes, float_arrays, masks, shapes)

R = np.random.default_rng(0)
SMALL = dict(max_dims=3, max_side=4)


def leaves(*values):
    return [mt.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for v in values]


def seeded(fn, seed=0):
    """fn with the dropout generator reseeded on each call: every evaluation draws the same mask."""
    def call(*args):
        mt.manual_seed(seed)
        return fn(*args)
    return call


# ---- gradgradcheck on drawn shapes ----------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(shapes(min_dims=1, **SMALL).flatmap(float_arrays), st.data())
def test_softmax_and_log_softmax_along_any_axis(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    for op in (F.softmax, F.log_softmax):
        assert gradgradcheck(lambda t: op(t, axis=axis), leaves(x), fast=True)


@settings(max_examples=15, deadline=None)
@given(shapes(**SMALL).flatmap(float_arrays), st.sampled_from([0.2, 1.0, 2.5]), st.sampled_from([0.01, 0.3, 1.5]))
def test_activations(x, beta, slope):
    kinked = away_from_zero(x, 0.05)
    for fn in (F.gelu, lambda t: F.gelu(t, approximate="tanh"), F.silu, F.log_sigmoid):
        assert gradgradcheck(fn, leaves(x), fast=True)
    switch = away_from_zero(beta * x - 1.0) / beta + 1.0 / beta  # beta * x not within 0.05 of the threshold 1
    assert gradgradcheck(lambda t: F.softplus(t, beta=beta, threshold=1.0), leaves(switch), fast=True)
    for fn in (lambda t: F.leaky_relu(t, slope), lambda t: F.elu(t, 1 / slope), F.relu):
        assert gradgradcheck(fn, leaves(kinked), fast=True)


@settings(max_examples=10, deadline=None)
@given(shapes(min_dims=1, **SMALL).flatmap(float_arrays), st.sampled_from([0.0, 0.3, 1.0]))
def test_dropout(x, p):
    assert gradgradcheck(seeded(lambda t: F.dropout(t, p) * t), leaves(x), fast=True)


@settings(max_examples=15, deadline=None)
@given(shapes(min_dims=1, **SMALL).flatmap(float_arrays), st.booleans(), st.booleans(), st.data())
def test_layer_norm_and_the_residual_block(x, has_weight, has_bias, data):
    d = x.shape[-1]
    params = [data.draw(arrays((d,))) for present in (has_weight, has_bias) if present]

    def split(p):
        it = iter(p)
        return (next(it) if has_weight else None), (next(it) if has_bias else None)

    assert gradgradcheck(lambda t, *p: F.layer_norm(t, *split(p)), leaves(x, *params), fast=True)
    h = data.draw(arrays(x.shape))
    p = data.draw(st.sampled_from([0.0, 0.4]))
    block = seeded(lambda a, b, *q: F.dropout_add_layer_norm(a, b, *split(q), p=p, training=True))
    assert gradgradcheck(block, leaves(x, h, *params), fast=True)


@settings(max_examples=15, deadline=None)
@given(shapes(min_dims=1, **SMALL).flatmap(float_arrays), st.booleans(), st.data())
def test_rms_norm_over_the_last_axes(x, has_weight, data):
    k = data.draw(st.integers(1, x.ndim))
    normalized = x.shape[x.ndim - k:]
    weight = [data.draw(arrays(normalized))] if has_weight else []
    assert gradgradcheck(lambda t, *w: F.rms_norm(t, normalized, *w, eps=1e-5), leaves(x, *weight), fast=True)


@settings(max_examples=15, deadline=None)
@given(shapes(min_dims=1, **SMALL).flatmap(float_arrays), st.integers(1, 4), st.booleans(), st.data())
def test_linear_and_feed_forward(x, n_out, has_bias, data):
    d = x.shape[-1]
    w = data.draw(arrays((n_out, d)))
    b = [data.draw(arrays((n_out,)))] if has_bias else []
    assert gradgradcheck(F.linear, leaves(x, w, *b), fast=True)
    ff = data.draw(st.integers(1, 4))
    params = [data.draw(arrays(s)) for s in ((ff, d), (ff,), (n_out, ff), (n_out,))]
    activation = data.draw(st.sampled_from(["relu", "gelu"]))
    p = data.draw(st.sampled_from([0.0, 0.4]))
    if activation == "relu":  # shift b1 per unit: no pre-activation near relu's kink
        h = (x.reshape(-1, d) @ params[0].T + params[1]).reshape(-1, ff)
        shifts = 3e-3 * np.arange(h.shape[0] + 1)
        params[1] = params[1] + shifts[np.argmax((np.abs(h[:, :, None] + shifts) >= 1e-3).all(axis=0), axis=1)]
    block = seeded(lambda *t: F.feed_forward(*t, activation=activation, dropout_p=p, training=True))
    assert gradgradcheck(block, leaves(x, *params), fast=True)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), shapes(max_dims=2, max_side=4), st.data())
def test_embedding(vocab, dim, id_shape, data):
    ids = data.draw(st.lists(st.integers(0, vocab - 1), min_size=int(np.prod(id_shape)),
                             max_size=int(np.prod(id_shape))))
    ids = np.array(ids, dtype=np.int64).reshape(id_shape)
    padding = data.draw(st.none() | st.integers(0, vocab - 1))
    w = data.draw(arrays((vocab, dim)))
    assert gradgradcheck(lambda t: F.embedding(ids, t, padding_idx=padding), leaves(w))  # linear: checks the rule in g


@settings(max_examples=20, deadline=None)
@given(broadcastable_shapes(3, max_dims=2, max_side=3), st.integers(1, 4), st.integers(1, 4), st.data())
def test_attention_with_masks_causality_and_dropout(leads, lq, lk, data):
    d, dv = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    q, k, v = (data.draw(float_arrays(lead + s)) for lead, s in zip(leads, ((lq, d), (lk, d), (lk, dv))))
    scores = np.broadcast_shapes(*leads) + (lq, lk)
    mask = None
    if data.draw(st.booleans()):  # fewer axes, some of size 1; rows with no allowed key included
        kept = scores[len(scores) - data.draw(st.integers(0, len(scores))):]
        mask = data.draw(masks(tuple(data.draw(st.sampled_from([1, n])) for n in kept)))
    causal, p = data.draw(st.booleans()), data.draw(st.sampled_from([0.0, 0.3]))
    attention = seeded(lambda *t: F.scaled_dot_product_attention(*t, mask=mask, is_causal=causal, dropout_p=p))
    assert gradgradcheck(attention, leaves(q, k, v), fast=True)


@settings(max_examples=20, deadline=None)
@given(shapes(min_dims=1, **SMALL).flatmap(float_arrays), st.data())
def test_cross_entropy_with_ignore_index_and_label_smoothing(logits, data):
    c = logits.shape[-1]
    ignore = data.draw(st.sampled_from([-100, 0, c - 1]))
    targets = data.draw(st.lists(st.integers(0, c - 1) | st.just(ignore), min_size=logits[..., 0].size,
                                 max_size=logits[..., 0].size))
    targets = np.array(targets, dtype=np.int64).reshape(logits.shape[:-1])
    options = dict(ignore_index=ignore, label_smoothing=data.draw(st.sampled_from([0.0, 0.1, 1.0]) | st.floats(0, 1)),
                   reduction=data.draw(st.sampled_from(["mean", "sum", "none"])))
    assert gradgradcheck(lambda t: F.cross_entropy(t, targets, **options), leaves(logits), fast=True)


def test_cross_entropy_ignored_rows_stay_exactly_zero_at_second_order():
    logits = R.standard_normal((3, 4))
    logits[1] = [np.nan, np.inf, -np.inf, 0.0]  # padding: the row is ignored, its logits garbage
    x = leaves(logits)[0]
    g, = grad(F.cross_entropy(x, np.array([2, -100, 0]), label_smoothing=0.2), x, create_graph=True)
    h, = grad(g, x, R.standard_normal((3, 4)))
    assert np.isfinite(g.numpy()).all() and np.isfinite(h.numpy()).all()
    assert not g.numpy()[1].any() and not h.numpy()[1].any()


def nll_of_log_softmax(x, t, **options):
    """nll_loss of log_softmax(x + t) over the class axis 1, with class weights; class 1 ignored."""
    shape, c = x.shape[:1] + x.shape[2:], x.shape[1]
    targets = (np.arange(int(np.prod(shape))) % c).reshape(shape)
    ignore = 1 if (targets != 1).any() else -100  # not every target ignored ("mean" would be NaN)
    weight = np.linspace(0.5, 2.0, c)
    return F.nll_loss(F.log_softmax(x + t, axis=1), targets, weight=weight, ignore_index=ignore, **options)


LOSSES = {
    "nll_loss": nll_of_log_softmax,
    "mse_loss": F.mse_loss, "l1_loss": F.l1_loss,
    "smooth_l1_loss": lambda x, t, **o: F.smooth_l1_loss(x, t, beta=0.5, **o),
    "binary_cross_entropy": lambda x, t, **o: F.binary_cross_entropy(F.sigmoid(x), F.sigmoid(t), **o),
    "binary_cross_entropy_with_logits": lambda x, t, **o: F.binary_cross_entropy_with_logits(
        x, F.sigmoid(t), pos_weight=np.linspace(0.5, 2, x.shape[-1]), **o),
    "kl_div": lambda x, t, **o: F.kl_div(x, F.sigmoid(t), **o),
    "kl_div_log_target": lambda x, t, **o: F.kl_div(x, t, log_target=True, **o),
}


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(sorted(LOSSES)), shapes(min_dims=2, max_dims=3, max_side=4), st.data())
def test_losses(name, shape, data):
    x, t = (away_from_zero(data.draw(float_arrays(shape)), 0.01) for _ in range(2))
    gap = np.abs(x - t)  # l1 and smooth l1 (beta 0.5) have kinks where |x - t| is 0 or 0.5
    t = t + np.where((gap < 0.02) | (np.abs(gap - 0.5) < 0.02), 0.1, 0.0)
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"] + (["batchmean"] if "kl" in name else [])))
    assert gradgradcheck(lambda a, b: LOSSES[name](a, b, reduction=reduction), leaves(x, t), fast=True)


@settings(max_examples=15, deadline=None)
@given(broadcastable_shapes(2, min_dims=1, max_dims=3, max_side=4), st.sampled_from([1e-8, 1.0]), st.data())
def test_cosine_similarity_and_normalize(two, eps, data):
    """(cosine_similarity's norms clamped below eps are PyTorch's straight-through clamp, whose
    derivatives are not those of the clamped value: that case is compared with PyTorch below.)"""
    a, b = (away_from_zero(data.draw(float_arrays(s)), 0.1) for s in two)
    ndim = len(np.broadcast_shapes(*two))
    dim = data.draw(st.integers(-ndim, ndim - 1))
    assert gradgradcheck(lambda s, t: F.cosine_similarity(s, t, dim=dim), leaves(a, b), fast=True)
    p = data.draw(st.sampled_from([1.0, 2.0, 3.0, np.inf]))
    if p == np.inf:  # distinct magnitudes: a tie for the largest has no derivative
        a = np.sign(a) * (np.abs(a) + 0.05 * np.arange(a.size).reshape(a.shape))
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    assert gradgradcheck(lambda s: F.normalize(s, p=p, dim=dim, eps=eps), leaves(a), fast=True)


def test_a_wrong_second_order_rule_would_fail():
    """The checks above can fail: softmax with its output detached in the rule is caught."""
    x = leaves(R.standard_normal((2, 3)))

    def softmax_detached(t):
        y = F.softmax(t)
        return mt.Tensor.from_op(y.data, (t,), y._backward,
                                 lambda g, out: (out.detach() * (g - (g * out.detach()).sum(axis=-1, keepdims=True)),))

    with pytest.raises(mt.GradcheckError):
        gradgradcheck(softmax_detached, x)


# ---- PyTorch's double backward, float64 ---------------------------------------------------------

def double_backward(lib, fn, inputs, v, w, device=lambda a: a):
    """The vjp g = v^T J at the inputs (create_graph) and the gradients of sum(g * w) with
    respect to the inputs and to v, as NumPy arrays (zeros where unused); lib: minitf or torch;
    device: puts minitf's arrays on the device."""
    if lib is mt:
        make, derive, const = (lambda a: mt.Tensor(device(a), requires_grad=True)), grad, device
    else:
        make, derive, const = (lambda a: lib.tensor(a, requires_grad=True)), lib.autograd.grad, lib.tensor
    xs, vt = [make(a) for a in inputs], make(v)
    gs = derive(fn(*xs), xs, vt, create_graph=True)
    total = sum((g * const(wi)).sum() for g, wi in zip(gs, w))
    hs = derive(total, [*xs, vt], allow_unused=True)
    return [np.asarray(g.detach().numpy()) for g in gs] + [
        np.zeros_like(a) if h is None else np.asarray(h.detach().numpy()) for a, h in zip([*inputs, v], hs)]


def torch_attention(torch, mask=None, is_causal=False):
    """PyTorch's attention as the math composite (its fused kernels have no double backward)."""
    def attention(q, k, v):
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
        allowed = torch.ones(scores.shape[-2:], dtype=torch.bool)
        if mask is not None:
            allowed = allowed & torch.tensor(mask)
        if is_causal:
            allowed = allowed & torch.ones_like(allowed).tril()
        return torch.softmax(scores.masked_fill(~allowed, -float("inf")), dim=-1) @ v
    return attention


def torch_cases(torch):
    tf = torch.nn.functional
    mask = np.array([[1, 0, 1, 1, 0], [0, 1, 0, 0, 0], [1, 1, 1, 0, 1], [0, 0, 0, 0, 1]], dtype=bool)
    targets = np.array([[3, -100, 0], [4, 4, -100]])
    ce = dict(ignore_index=-100, label_smoothing=0.2)
    return {
        "softmax": ((2, 3, 4),), "log_softmax": ((2, 3, 4),), "layer_norm": ((2, 3, 5), (5,), (5,)),
        "gelu": ((3, 4),), "gelu_tanh": ((3, 4),), "cross_entropy_mean": ((2, 3, 5),),
        "cross_entropy_none": ((2, 3, 5),), "attention_mask": ((2, 4, 3), (2, 5, 3), (1, 5, 2)),
        "attention_causal": ((2, 4, 3), (2, 5, 3), (2, 5, 2)),
        "cosine_similarity_tiny_norm": ((3, 4), (3, 4)), "elu_at_zero": (np.array([-1.5, -0.2, 0.0, 0.3, 2.0]),),
    }, {
        "softmax": (lambda x: F.softmax(x, axis=-2), lambda x: torch.softmax(x, dim=-2)),
        "log_softmax": (lambda x: F.log_softmax(x, axis=0), lambda x: torch.log_softmax(x, dim=0)),
        "layer_norm": (F.layer_norm, lambda x, w, b: tf.layer_norm(x, (5,), w, b, eps=1e-5)),
        "gelu": (F.gelu, tf.gelu),
        "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), lambda x: tf.gelu(x, approximate="tanh")),
        "cross_entropy_mean": (lambda x: F.cross_entropy(x, targets, **ce),
                               lambda x: tf.cross_entropy(x.movedim(-1, 1), torch.tensor(targets), **ce)),
        "cross_entropy_none": (lambda x: F.cross_entropy(x, targets, reduction="none", **ce),
                               lambda x: tf.cross_entropy(x.movedim(-1, 1), torch.tensor(targets),
                                                          reduction="none", **ce)),
        "attention_mask": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask),
                           torch_attention(torch, mask)),
        "attention_causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                             torch_attention(torch, is_causal=True)),
        "cosine_similarity_tiny_norm": (lambda a, b: F.cosine_similarity(a * 1e-10, b, dim=0),  # |a| < eps
                                        lambda a, b: tf.cosine_similarity(a * 1e-10, b, dim=0)),
        "elu_at_zero": (lambda x: F.elu(x, alpha=0.7), lambda x: tf.elu(x, alpha=0.7)),  # at 0: 0
    }


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "layer_norm", "gelu", "gelu_tanh",
                                  "cross_entropy_mean", "cross_entropy_none", "attention_mask",
                                  "attention_causal", "cosine_similarity_tiny_norm", "elu_at_zero"])
def test_double_backward_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    input_shapes, fns = torch_cases(torch)
    rng = np.random.default_rng(1)
    inputs = [s if isinstance(s, np.ndarray) else rng.standard_normal(s) for s in input_shapes[name]]
    ours, theirs = fns[name]
    out_shape = ours(*leaves(*inputs)).shape
    v = rng.standard_normal(out_shape)
    w = [rng.standard_normal(a.shape) for a in inputs]
    for mine, reference in zip(double_backward(mt, ours, inputs, v, w), double_backward(torch, theirs, inputs, v, w)):
        np.testing.assert_allclose(mine, reference, rtol=1e-9, atol=1e-11)


# ---- third order: the rules' own tensor ops differentiated again -----------------------------------

MINE = {"softmax", "log_softmax", "gelu", "normal_cdf", "silu", "softplus", "leaky_relu", "elu", "log_sigmoid",
        "dropout", "_layer_norm", "layer_norm", "rms_norm", "linear", "feed_forward", "embedding",
        "scaled_dot_product_attention", "cross_entropy", "nll_loss", "binary_cross_entropy",
        "binary_cross_entropy_with_logits", "kl_div", "_elementwise_loss", "cosine_similarity", "normalize"}

THIRD_ORDER = {
    "softmax": (lambda x: F.softmax(x, axis=0), [(3, 2)]),
    "log_softmax": (lambda x: F.log_softmax(x, axis=-1), [(2, 3)]),
    "gelu": (F.gelu, [(4,)]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [(4,)]),
    "silu": (F.silu, [(4,)]),
    "layer_norm": (F.layer_norm, [(2, 4), (4,), (4,)]),
    "rms_norm": (lambda x, w: F.rms_norm(x, 3, w), [(2, 3), (3,)]),
    "linear": (F.linear, [(2, 3), (2, 3), (2,)]),
    "feed_forward": (lambda *t: F.feed_forward(*t, activation="gelu"), [(2, 3), (4, 3), (4,), (2, 4), (2,)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, np.array([1, -100, 0]), label_smoothing=0.1), [(3, 4)]),
    "attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [(3, 2), (3, 2), (3, 2)]),
    "mse_loss": (F.mse_loss, [(2, 3), (3,)]),
    "smooth_l1_loss": (lambda x, t: F.smooth_l1_loss(x, t, beta=2.0) * F.sigmoid(x).sum(), [(2, 3), (3,)]),
    "normalize": (lambda x: F.normalize(x, dim=-1), [(2, 3)]),
    "normalize_p3": (lambda x: F.normalize(x, p=3.0, dim=0), [(2, 3)]),
    "cosine_similarity": (lambda a, b: F.cosine_similarity(a, b, dim=-1), [(2, 3), (3,)]),
    "softplus": (lambda x: F.softplus(x, beta=2.0), [(4,)]),
    "elu": (F.elu, [(4,)]),
    "log_sigmoid": (F.log_sigmoid, [(4,)]),
    "dropout": (seeded(lambda x: F.dropout(x, 0.5) * F.tanh(x)), [(2, 3)]),
    "dropout_add_layer_norm": (seeded(lambda x, h: F.dropout_add_layer_norm(x, h, p=0.3)), [(2, 4), (2, 4)]),
    "embedding": (lambda w: F.embedding(np.array([0, 2, 0]), w, padding_idx=1) * w[0], [(3, 2)]),  # (1 unused)
    "nll_loss": (lambda x: F.nll_loss(F.log_softmax(x, axis=1), np.array([1, 0]), reduction="sum"), [(2, 3)]),
    "binary_cross_entropy": (lambda x, t: F.binary_cross_entropy(F.sigmoid(x), F.sigmoid(t)), [(2, 3), (2, 3)]),
    "binary_cross_entropy_with_logits": (lambda x, t: F.binary_cross_entropy_with_logits(
        x, F.sigmoid(t), pos_weight=np.array([0.5, 1.0, 2.0])), [(2, 3), (2, 3)]),
    "kl_div": (lambda x, t: F.kl_div(x, F.sigmoid(t), reduction="batchmean"), [(2, 3), (2, 3)]),
}


@pytest.mark.parametrize("name", sorted(THIRD_ORDER))
def test_third_derivatives(name):
    """gradgradcheck of the first-order vjp: the `higher` rules' tensor ops are differentiated twice.
    Skips while a primitive tensor op (minitf.autograd) that a rule uses has no rule of its own."""
    fn, input_shapes = THIRD_ORDER[name]
    rng = np.random.default_rng(2)
    inputs = leaves(*(rng.standard_normal(s) for s in input_shapes))
    v = mt.tensor(rng.standard_normal(fn(*inputs).shape), requires_grad=True)

    def vjp(*args):
        return grad(fn(*args[:-1]), list(args[:-1]), args[-1], create_graph=True)

    try:
        assert gradgradcheck(vjp, [*inputs, v], fast=True)
    except RuntimeError as error:
        op = re.search(r"`(\w+)`", str(error))
        if "no differentiable backward" not in str(error) or op is None or op.group(1) in MINE:
            raise
        pytest.skip(f"waits for the rule of the primitive `{op.group(1)}` (minitf.autograd)")


KERNEL_PATHS = {  # the fused ops' CUDA paths (on the fake GPU of tests/fake_gpu.py): name -> (op, shapes, kernel)
    "softmax": (F.softmax, [(3, 5)], "softmax_fwd"),
    "log_softmax": (F.log_softmax, [(2, 3, 4)], "log_softmax_fwd"),
    "gelu": (F.gelu, [(3, 4)], "gelu_fwd"),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [(3, 4)], "gelu_fwd"),
    "layer_norm": (F.layer_norm, [(3, 4), (4,), (4,)], "layer_norm"),
    "cross_entropy": (lambda x: F.cross_entropy(x, np.array([2, -100, 0]).view(type(x.data)), label_smoothing=0.2),
                      [(3, 4)], "cross_entropy_fwd"),
    "cross_entropy_none": (lambda x: F.cross_entropy(x, np.array([2, -100, 0]).view(type(x.data)),
                                                     reduction="none"), [(3, 4)], "cross_entropy_fwd"),
}


@pytest.mark.parametrize("name", sorted(KERNEL_PATHS))
def test_kernel_paths_have_the_generic_paths_second_derivatives(fake_gpu, monkeypatch, name):
    from fake_gpu import LAUNCHES

    erf = np.vectorize(math.erf, otypes=[float])  # cupyx.scipy.special.erf, which the stand-in lacks
    special = types.SimpleNamespace(erf=lambda a: erf(a).view(type(a)))
    for module, value in (("cupyx.scipy", types.SimpleNamespace(special=special)), ("cupyx.scipy.special", special)):
        monkeypatch.setitem(sys.modules, module, value)
    monkeypatch.setattr(sys.modules["cupyx"], "scipy", sys.modules["cupyx.scipy"], raising=False)
    fn, input_shapes, kernel = KERNEL_PATHS[name]
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal(s) for s in input_shapes]
    v = rng.standard_normal(fn(*leaves(*inputs)).shape)
    w = [rng.standard_normal(a.shape) for a in inputs]
    host = double_backward(mt, fn, inputs, v, w)
    LAUNCHES.clear()
    for on_device, on_host in zip(double_backward(mt, fn, inputs, v, w, device=fake_gpu), host):
        np.testing.assert_allclose(on_device, on_host, rtol=1e-10, atol=1e-12)
    assert any(k.startswith(kernel) for k in LAUNCHES), LAUNCHES


def test_the_dropout_kernel_path_passes_gradgradcheck(fake_gpu):
    from fake_gpu import LAUNCHES

    x = mt.Tensor(fake_gpu(R.standard_normal((3, 4))), requires_grad=True)
    assert gradgradcheck(seeded(lambda t: F.dropout(t, 0.4) * t), [x])
    assert "dropout_fwd" in LAUNCHES
