"""Conventions of minitf.functional that finite differences cannot check, and its error messages.

Dropout (identity in evaluation, the gradient is the mask, the mask is unbiased and
seeded), the embedding's padding row, attention rows with no allowed key,
cross-entropy's ignore_index / reductions, and the errors raised for bad inputs.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minitf
import minitf.functional as F
from minitf import Tensor, backend, gradcheck
from minitf.testing import arrays, masks, shapes

from conftest import requires_cuda


def tensor(a, device, requires_grad=None):
    """A tensor on `device`; float arrays require grad unless told otherwise."""
    a = np.asarray(a)
    if requires_grad is None:
        requires_grad = a.dtype.kind == "f"
    return Tensor(a, requires_grad=requires_grad, device=device)


def host(array):
    return backend.to_device(array, "cpu")


def int_arrays(shape, low, high):
    return hnp.arrays(np.int64, shape, elements=st.integers(low, high))


def random(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# ---- dropout ---------------------------------------------------------------------------------

@pytest.mark.parametrize("p, training", [(0.5, False), (1.0, False), (0.0, True), (0.0, False)])
def test_dropout_is_the_identity_in_evaluation_or_with_p_zero(p, training, device):
    x = tensor(random(3, 4), device)
    assert F.dropout(x, p, training=training) is x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_with_p_one_gives_zeros_and_zero_gradient(dtype, device):
    x = tensor(random(3, 4).astype(dtype), device)
    out = F.dropout(x, 1.0)
    out.backward(tensor(np.ones((3, 4), dtype), device))
    assert out.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_array_equal(out.numpy(), np.zeros((3, 4)))
    np.testing.assert_array_equal(host(x.grad), np.zeros((3, 4)))


@settings(max_examples=30)
@given(x=shapes().flatmap(lambda s: arrays(s, 0.5, 3.0)), sign=st.sampled_from([1.0, -1.0]),
       p=st.sampled_from([0.1, 0.5, 0.9]), dtype=st.sampled_from([np.float32, np.float64]))
def test_dropout_scales_kept_values_and_its_gradient_is_the_mask(x, sign, p, dtype, device):
    x = (sign * x).astype(dtype)  # no zeros: an output of 0 means dropped
    t = tensor(x, device)
    out = F.dropout(t, p)
    g = random(*x.shape, seed=1).astype(dtype)
    out.backward(tensor(g, device, requires_grad=False))
    kept = out.numpy() != 0
    assert out.dtype == dtype and t.grad.dtype == dtype and t.grad.shape == x.shape
    np.testing.assert_allclose(out.numpy(), kept * x / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(host(t.grad), g * kept / (1 - p), rtol=1e-6)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_mask_has_mean_one_and_drops_a_fraction_p(p, device):
    n = 200_000
    minitf.manual_seed(1234)
    out = F.dropout(tensor(np.ones(n), device), p).numpy()
    std_of_mean = math.sqrt(p / (1 - p) / n)  # one mask entry has variance p / (1 - p)
    assert abs(out.mean() - 1) < 5 * std_of_mean
    assert abs((out == 0).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / (1 - p)])


@requires_cuda
def test_dropout_on_cupy_follows_the_numpy_conventions():
    minitf.manual_seed(3)
    x = tensor(np.full((400, 500), 2.0), "cuda")
    out = F.dropout(x, 0.25)
    out.backward(tensor(np.ones(x.shape), "cuda", requires_grad=False))
    values, grad = out.numpy(), host(x.grad)
    np.testing.assert_allclose(np.unique(values), [0.0, 2.0 / 0.75])
    np.testing.assert_allclose(grad, (values != 0) / 0.75)
    assert abs((values == 0).mean() - 0.25) < 0.01
    assert F.dropout(x, 0.25, training=False) is x


def test_dropout_same_seed_gives_same_mask(device):
    x = tensor(np.ones((50, 40)), device)
    minitf.manual_seed(7)
    first, second = F.dropout(x, 0.5).numpy(), F.dropout(x, 0.5).numpy()
    minitf.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), first)
    assert (first != second).any()  # the generator moves on between calls


# ---- relu's kink -------------------------------------------------------------------------------

def test_relu_gradient_at_zero_is_zero(device):
    x = tensor([-1.0, 0.0, 2.0], device)
    F.relu(x).backward(tensor(np.ones(3), device, requires_grad=False))
    np.testing.assert_array_equal(host(x.grad), [0.0, 0.0, 1.0])  # as PyTorch


def test_feed_forward_relu_gradient_at_zero_pre_activation_is_zero(device):
    x, w1, b1 = tensor(np.zeros((2, 3)), device), tensor(random(4, 3), device), tensor(np.zeros(4), device)
    w2, b2 = tensor(random(2, 4, seed=1), device), tensor(random(2, seed=2), device)
    F.feed_forward(x, w1, b1, w2, b2, activation="relu").backward(
        tensor(np.ones((2, 2)), device, requires_grad=False))
    for t in (x, w1, b1, w2):  # every pre-activation is exactly 0: nothing flows below b2
        np.testing.assert_array_equal(host(t.grad), 0.0)
    np.testing.assert_array_equal(host(b2.grad), [2.0, 2.0])


# ---- embedding ---------------------------------------------------------------------------------

@settings(max_examples=30)
@given(data=st.data())
def test_embedding_scatters_gradient_and_skips_the_padding_row(data, device):
    vocab, dim = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 3))
    ids = data.draw(shapes(max_dims=3).flatmap(lambda s: int_arrays(s, 0, vocab - 1)), label="ids")
    padding_idx = data.draw(st.none() | st.integers(0, vocab - 1), label="padding_idx")
    weight_data = random(vocab, dim)
    weight = tensor(weight_data, device)
    out = F.embedding(tensor(ids, device), weight, padding_idx=padding_idx)
    np.testing.assert_array_equal(out.numpy(), weight_data[ids])  # the padding row is still read
    g = random(*out.shape, seed=1)
    out.backward(tensor(g, device, requires_grad=False))
    expected = np.zeros((vocab, dim))
    for position in np.ndindex(*ids.shape):  # repeated ids add up
        expected[ids[position]] += g[position]
    if padding_idx is not None:
        expected[padding_idx] = 0.0  # by design, not what finite differences would say
    np.testing.assert_allclose(host(weight.grad), expected, rtol=1e-12, atol=1e-12)


def test_embedding_accepts_ids_as_arrays_lists_and_tensors():
    weight = tensor(random(4, 2), "cpu")
    for ids in ([[3, 0]], np.array([[3, 0]], dtype=np.int32), Tensor(np.array([[3, 0]]))):
        np.testing.assert_array_equal(F.embedding(ids, weight).numpy(), weight.numpy()[[[3, 0]]])


# ---- attention -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("how", ["mask", "mask_and_causal"])
def test_attention_row_without_allowed_keys_is_zero_with_finite_gradient(how, dtype, device):
    q, k, v = random(2, 3, 4, seed=0), random(2, 5, 4, seed=1), random(2, 5, 2, seed=2)
    allowed = np.ones((3, 5), dtype=bool)
    if how == "mask":
        allowed[1] = False  # query 1 may attend nothing
        kwargs = {}
    else:
        allowed[:, 0] = False  # with causality query 0 may attend only key 0: nothing is left
        kwargs = {"is_causal": True}
    mask = tensor(allowed, device)
    empty_row = 1 if how == "mask" else 0
    qt, kt, vt = (tensor(a.astype(dtype), device) for a in (q, k, v))
    out, weights = F.scaled_dot_product_attention(qt, kt, vt, mask=mask, return_weights=True, **kwargs)
    out.backward(tensor(random(*out.shape, seed=3).astype(dtype), device, requires_grad=False))
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.numpy()[:, empty_row], 0.0)
    np.testing.assert_array_equal(weights.numpy()[:, empty_row], 0.0)
    other_rows = np.delete(weights.numpy(), empty_row, axis=1)
    np.testing.assert_allclose(other_rows.sum(axis=-1), 1.0, rtol=1e-6)
    for t in (qt, kt, vt):
        assert np.isfinite(host(t.grad)).all()
    np.testing.assert_array_equal(host(qt.grad)[:, empty_row], 0.0)
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask, **kwargs),
                     [tensor(a, device) for a in (q, k, v)])


def test_attention_with_dropout_p_one_gives_zeros(device):
    q = tensor(random(2, 3, 4), device)
    out = F.scaled_dot_product_attention(q, q, q, dropout_p=1.0)
    np.testing.assert_array_equal(out.numpy(), 0.0)


def test_attention_output_and_gradients_are_laid_out_heads_last():
    """On NumPy the output and the q, k, v gradients of (B, H, L, d) inputs live in (B, L, H, d)
    memory, so that multi-head attention merges and splits heads without copies; the values are
    those of plain products (k and v broadcast over the batch: their gradients are summed back)."""
    q = tensor(random(2, 3, 5, 4, seed=0), "cpu")
    k, v = tensor(random(1, 3, 6, 4, seed=1), "cpu"), tensor(random(1, 3, 6, 2, seed=2), "cpu")
    g = random(2, 3, 5, 2, seed=3)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out.backward(tensor(g, "cpu", requires_grad=False))
    assert out.data.swapaxes(1, 2).flags.c_contiguous
    weights = F.scaled_dot_product_attention(q, k, v, is_causal=True, return_weights=True)[1].numpy()
    np.testing.assert_allclose(out.numpy(), weights @ v.numpy(), rtol=1e-12)
    np.testing.assert_allclose(v.grad, (weights.swapaxes(-1, -2) @ g).sum(axis=0, keepdims=True), rtol=1e-12)
    assert merged_heads_are_a_view(out)
    assert q.grad.shape == q.shape and k.grad.shape == k.shape


def merged_heads_are_a_view(out):
    """(B, H, L, d) -> (B, L, H * d) as FusedMultiHeadAttention merges heads, without a copy."""
    b, h, length, d = out.shape
    return np.shares_memory(out.permute(0, 2, 1, 3).reshape(b, length, h * d).data, out.data)


# ---- cross-entropy ---------------------------------------------------------------------------

@settings(max_examples=30)
@given(data=st.data())
def test_cross_entropy_ignored_targets_get_zero_loss_and_zero_gradient(data, device):
    n, n_classes = data.draw(st.integers(1, 6)), data.draw(st.integers(2, 5))
    ignore_index = data.draw(st.sampled_from([-100, -1, 0, n_classes - 1, 99]), label="ignore_index")
    ignored = data.draw(masks((n,)), label="ignored")
    targets = np.where(ignored, ignore_index,
                       data.draw(int_arrays((n,), 0, n_classes - 1), label="classes"))
    ignored = targets == ignore_index  # a drawn class may equal ignore_index
    smoothing = data.draw(st.sampled_from([0.0, 0.25]), label="label_smoothing")
    logits = tensor(random(n, n_classes), device)
    loss = F.cross_entropy(logits, tensor(targets, device), ignore_index=ignore_index,
                           label_smoothing=smoothing, reduction="none")
    loss.backward(tensor(random(n, seed=1), device, requires_grad=False))
    grad = host(logits.grad)
    np.testing.assert_array_equal(loss.numpy()[ignored], 0.0)
    np.testing.assert_array_equal(grad[ignored], 0.0)
    assert (np.abs(grad[~ignored]).sum(axis=-1) > 0).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_non_finite_logits_in_ignored_rows_change_nothing(reduction, label_smoothing, dtype,
                                                                        device):
    """NaN, +inf, -inf (and a row of -inf) where the target is ignored: exactly 0 loss and gradient
    there; the other rows' loss and gradient are those of the same call without the ignored rows."""
    x = random(7, 5).astype(dtype)
    bad = {1: np.nan, 3: np.inf, 4: -np.inf}
    for row, value in bad.items():
        x[row, row % 5] = value
    x[6] = -np.inf
    targets = np.array([2, -100, 0, -100, -100, 4, -100])
    kept = targets != -100
    options = dict(label_smoothing=label_smoothing, reduction=reduction)
    g, g_kept = np.asarray(0.7, dtype), np.asarray(0.7, dtype)
    if reduction == "none":
        g = random(7, seed=1).astype(dtype)
        g_kept, g[~kept] = g[kept], np.nan  # a NaN cotangent on an ignored row changes nothing either

    logits = tensor(x, device)
    loss = F.cross_entropy(logits, tensor(targets, device), **options)
    loss.backward(tensor(g, device, requires_grad=False))
    ref_logits = tensor(x[kept], device)
    ref = F.cross_entropy(ref_logits, tensor(targets[kept], device), **options)
    ref.backward(tensor(g_kept, device, requires_grad=False))

    grad = host(logits.grad)
    assert loss.dtype == grad.dtype == dtype
    np.testing.assert_array_equal(grad[~kept], 0.0)
    np.testing.assert_array_equal(grad[kept], host(ref_logits.grad))
    if reduction == "none":
        np.testing.assert_array_equal(loss.numpy()[~kept], 0.0)
        np.testing.assert_array_equal(loss.numpy()[kept], ref.numpy())
    else:
        np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-6)
        assert np.isfinite(loss.item())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_in_blocks_of_rows_equals_one_block(reduction, label_smoothing, monkeypatch):
    """The CPU path runs its passes over blocks of rows (cpu.cache_blocks): blocks of one and of
    three rows give exactly the loss and gradient of one block, and those match float64 references."""
    from minitf.cpu import blocking

    x = random(2, 5, 7)
    x[1, 2] = np.nan  # an ignored row's NaN stays in its block
    targets = np.array([[3, 0, 6, -100, 1], [2, -100, 5, 4, 0]])
    g = random(2, 5, seed=1) if reduction == "none" else np.asarray(0.7)
    options = dict(label_smoothing=label_smoothing, reduction=reduction)
    results = []
    for block_bytes in (1 << 30, 1, 3 * 7 * 8):
        monkeypatch.setattr(blocking, "CACHE_BLOCK_BYTES", block_bytes)
        logits = tensor(x, "cpu")
        out = F.cross_entropy(logits, tensor(targets, "cpu"), **options)
        out.backward(tensor(g, "cpu", requires_grad=False))
        results.append((out.numpy(), logits.grad))
    for out, grad in results[1:]:
        np.testing.assert_array_equal(out, results[0][0])
        np.testing.assert_array_equal(grad, results[0][1])
    kept = targets != -100
    ref_logits = tensor(x[kept], "cpu")
    ref = F.cross_entropy(ref_logits, tensor(targets[kept], "cpu"), **options)
    ref.backward(tensor(g[kept] if reduction == "none" else g, "cpu", requires_grad=False))
    np.testing.assert_allclose(results[0][1][kept], host(ref_logits.grad), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(results[0][1][~kept], 0.0)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (0, 4)], ids=["rows", "3-d", "no rows"])
def test_cross_entropy_mean_over_no_counted_target_is_nan_with_zero_gradient(label_smoothing, dtype,
                                                                             shape, device):
    """As PyTorch: a NaN loss (0 / 0) and a zero gradient, and no RuntimeWarning on the way."""
    logits = tensor(random(*shape).astype(dtype), device)
    targets = tensor(np.full(shape[:-1], 2), device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.cross_entropy(logits, targets, ignore_index=2, label_smoothing=label_smoothing)
        loss.backward()
    assert np.isnan(loss.item()) and loss.dtype == dtype
    np.testing.assert_array_equal(host(logits.grad), np.zeros(shape))  # as PyTorch


@pytest.mark.parametrize("reduction, expected", [("mean", math.log(4)), ("sum", 2 * math.log(4)),
                                                 ("none", [math.log(4), 0.0, math.log(4)])])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.6, 1.0])
def test_cross_entropy_of_uniform_logits_is_log_classes(reduction, expected, label_smoothing, device):
    loss = F.cross_entropy(tensor(np.zeros((3, 4)), device), tensor([1, -100, 3], device),
                           reduction=reduction, label_smoothing=label_smoothing)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("label_smoothing, expected_grad", [
    (0.0, [0.25, -0.75, 0.25, 0.25]),  # softmax - onehot
    (0.4, [0.15, -0.45, 0.15, 0.15]),  # softmax - (0.6 onehot + 0.4 / 4)
])
def test_cross_entropy_gradient_of_uniform_logits(label_smoothing, expected_grad, device):
    logits = tensor(np.zeros((2, 4)), device)
    F.cross_entropy(logits, tensor([1, 1], device), label_smoothing=label_smoothing).backward()
    np.testing.assert_allclose(host(logits.grad), np.array([expected_grad] * 2) / 2, atol=1e-15)


# ---- bad inputs raise clear errors -------------------------------------------------------------

# ---- saved buffers reused in place must survive retain_graph ------------------------------

def _fused_ops(dev):
    """(name, fn of float64 leaves, leaves) for every fused op whose backward may reuse buffers."""
    x, w1, b1 = random(6, 4, seed=1), random(5, 4, seed=2), random(5, seed=3)
    w2, b2 = random(3, 5, seed=4), random(3, seed=5)
    q, k, v = random(2, 3, 4, seed=6), random(2, 5, 4, seed=7), random(2, 5, 4, seed=8)
    ids = tensor(np.array([[0, 2, 4], [1, 1, 3]]), dev)
    return {
        "cross_entropy": (lambda a: F.cross_entropy(a, ids, ignore_index=3, label_smoothing=0.1),
                          [random(2, 3, 5, seed=9)]),
        "feed_forward": (lambda *a: F.feed_forward(*a, activation="gelu"), [x, w1, b1, w2, b2]),
        "layer_norm": (lambda a, w, b: F.layer_norm(a, w, b), [x, random(4, seed=10), random(4, seed=11)]),
        "softmax": (F.softmax, [x]),
        "log_softmax": (F.log_softmax, [x]),
        "attention": (lambda *a: F.scaled_dot_product_attention(*a, is_causal=True), [q, k, v]),
        "linear": (F.linear, [x, w1, b1]),
    }


@pytest.mark.parametrize("name", ["cross_entropy", "feed_forward", "layer_norm", "softmax", "log_softmax",
                                  "attention", "linear"])
def test_second_backward_with_retain_graph_doubles_the_gradients(name, device):
    fn, arrays = _fused_ops(device)[name]
    leaves = [tensor(a, device) for a in arrays]
    out = fn(*leaves)
    cotangent = tensor(random(*out.shape, seed=12), device, requires_grad=False)
    out.backward(cotangent, retain_graph=True)
    once = [host(t.grad).copy() for t in leaves]
    out.backward(cotangent)
    for first, t in zip(once, leaves):
        np.testing.assert_allclose(host(t.grad), 2 * first, rtol=1e-12, atol=1e-12)


def _call(op, *arrays, **kwargs):
    """A thunk calling `op` on the arrays made tensors on the device (ints and bools too)."""
    return lambda device: op(*[tensor(a, device) if isinstance(a, np.ndarray) else a for a in arrays],
                             **kwargs)


X23, W43, B4 = random(2, 3), random(4, 3), random(4)
IDS = np.array([[0, 1], [2, 3]])
Q, K, V = random(2, 3, 4), random(2, 5, 4), random(2, 5, 2)

ERRORS = {
    "linear_shape_mismatch": (_call(F.linear, X23, random(4, 5)), ValueError,
                              r"input of shape \(2, 3\) does not fit weight of shape \(4, 5\)"),
    "linear_weight_not_2d": (_call(F.linear, X23, random(3)), ValueError, r"does not fit weight"),
    "linear_bias_shape": (_call(F.linear, X23, W43, random(3)), ValueError,
                          r"bias has shape \(3,\), expected \(4,\)"),
    "feed_forward_second_weight": (_call(F.feed_forward, X23, W43, B4, random(2, 3), random(2)),
                                   ValueError, r"second weight has shape \(2, 3\)"),
    "feed_forward_second_bias": (_call(F.feed_forward, X23, W43, B4, random(2, 4), random(1)),
                                 ValueError, r"second bias has shape \(1,\), expected \(2,\)"),
    "feed_forward_activation": (_call(F.feed_forward, X23, W43, B4, random(2, 4), random(2),
                                      activation="tanh"), ValueError, r"'relu' or 'gelu', got 'tanh'"),
    "layer_norm_weight_shape": (_call(F.layer_norm, X23, random(2)), ValueError,
                                r"weight has shape \(2,\), expected \(3,\)"),
    "layer_norm_bias_shape": (_call(F.layer_norm, X23, None, random(3, 1)), ValueError,
                              r"bias has shape \(3, 1\), expected \(3,\)"),
    "embedding_float_ids": (_call(F.embedding, IDS.astype(float), W43), TypeError,
                            r"ids must be integers, got dtype float64"),
    "embedding_id_too_large": (_call(F.embedding, np.array([0, 7, 1]), W43), IndexError,
                               r"id 7 is outside the vocabulary of 4 rows"),
    "embedding_negative_id": (_call(F.embedding, np.array([0, -1]), W43), IndexError,
                              r"id -1 is outside the vocabulary of 4 rows"),
    "cross_entropy_targets_shape": (_call(F.cross_entropy, X23, np.array([[0, 1]])), ValueError,
                                    r"targets have shape \(1, 2\), expected \(2,\)"),
    "cross_entropy_float_targets": (_call(F.cross_entropy, X23, np.array([0.0, 1.0])), ValueError,
                                    r"probabilities as target need the logits' shape \(2, 3\), got \(2,\)"),
    "cross_entropy_bool_targets": (_call(F.cross_entropy, X23, np.array([True, False])), TypeError,
                                   r"targets must be integer class ids \(or probabilities.*got dtype bool"),
    "cross_entropy_soft_ignore_index": (_call(F.cross_entropy, X23, np.full((2, 3), 1 / 3), ignore_index=0),
                                        ValueError, r"ignore_index \(0\) is not supported for probabilities"),
    "cross_entropy_class_axis": (_call(F.cross_entropy, X23, np.array([0, 1]), class_axis=2), ValueError,
                                 r"class_axis: axis 2 is out of range"),
    "cross_entropy_weight_shape": (_call(F.cross_entropy, X23, np.array([0, 1]), weight=np.ones(2)),
                                   ValueError, r"weight has shape \(2,\), expected \(3,\)"),
    "cross_entropy_target_too_large": (_call(F.cross_entropy, X23, np.array([0, 3])), IndexError,
                                       r"target 3 is not a class id in \[0, 3\)"),
    "cross_entropy_negative_target": (_call(F.cross_entropy, X23, np.array([-1, 0])), IndexError,
                                      r"target -1 is not a class id .* nor ignore_index -100"),
    "cross_entropy_reduction": (_call(F.cross_entropy, X23, np.array([0, 1]), reduction="avg"),
                                ValueError, r"reduction must be .*, got 'avg'"),
    "cross_entropy_smoothing_negative": (_call(F.cross_entropy, X23, np.array([0, 1]),
                                               label_smoothing=-0.1), ValueError,
                                         r"label_smoothing must be in \[0, 1\], got -0.1"),
    "cross_entropy_smoothing_above_one": (_call(F.cross_entropy, X23, np.array([0, 1]),
                                                label_smoothing=1.5), ValueError,
                                          r"label_smoothing must be in \[0, 1\], got 1.5"),
    "attention_attn_mask_and_causal": (_call(F.scaled_dot_product_attention, Q, K, V,
                                             attn_mask=np.ones((3, 5)), is_causal=True), ValueError,
                                       r"attn_mask and is_causal=True"),
    "attention_mask_and_attn_mask": (_call(F.scaled_dot_product_attention, Q, K, V, mask=np.ones((3, 5)),
                                           attn_mask=np.ones((3, 5))), TypeError,
                                     r"got both mask and attn_mask"),
    "attention_scale_nan": (_call(F.scaled_dot_product_attention, Q, K, V, scale=float("nan")), ValueError,
                            r"scale must be a finite number, got nan"),
    "attention_int_mask": (_call(F.scaled_dot_product_attention, Q, K, V,
                                 mask=np.ones((3, 5), dtype=np.int64)), TypeError,
                           r"mask must be boolean .* or floating-point .*got dtype int64"),
    "attention_mask_not_broadcastable": (_call(F.scaled_dot_product_attention, Q, K, V,
                                               mask=np.ones((3, 4), dtype=bool)), ValueError,
                                         r"mask of shape \(3, 4\) does not broadcast .*\(2, 3, 5\)"),
    "attention_shapes": (_call(F.scaled_dot_product_attention, Q, random(2, 5, 3), V), ValueError,
                         r"shapes q \(2, 3, 4\), k \(2, 5, 3\), v \(2, 5, 2\) do not fit"),
    "attention_dropout_p": (_call(F.scaled_dot_product_attention, Q, K, V, dropout_p=1.5), ValueError,
                            r"dropout_p must be in \[0, 1\], got 1.5"),
    "gelu_approximate": (_call(F.gelu, X23, approximate="erf"), ValueError,
                         r"approximate must be 'none' or 'tanh', got 'erf'"),
    "dropout_p_negative": (_call(F.dropout, X23, -0.1), ValueError, r"must be in \[0, 1\], got -0.1"),
    "dropout_p_above_one": (_call(F.dropout, X23, 1.5, training=False), ValueError,
                            r"must be in \[0, 1\], got 1.5"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_bad_inputs_raise_clear_errors(name, device):
    thunk, error, message = ERRORS[name]
    with pytest.raises(error, match=message):
        thunk(device)
