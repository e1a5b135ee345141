"""nn.MultiheadAttention without PyTorch: a NumPy float64 reference of its equations (masks of every kind,
kdim/vdim, batch_first, unbatched, weights), gradients against central differences, dropout in training,
state-dict keys, and errors that name the bad argument."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minitf as mt
from minitf import nn

from torch_modules_reference import attention as reference

R = np.random.default_rng(21)


def make(embed_dim=4, num_heads=2, seed=0, **kwargs):
    """A float64 module with every parameter random (torch zeroes the biases: a test could miss them)."""
    mha = nn.MultiheadAttention(embed_dim, num_heads, **kwargs).to(np.float64)
    rng = np.random.default_rng(seed)
    for p in mha.parameters():
        p.data[...] = rng.standard_normal(p.shape) * 0.5
    return mha


def bool_mask(shape):
    """Random True (= blocked) entries, never on key 0, so that no row is left without a key."""
    m = R.random(shape) < 0.4
    m[..., 0] = False
    return m


def float_mask(shape):
    m = R.standard_normal(shape)
    m[(R.random(shape) < 0.3)] = -np.inf
    m[..., 0] = 0.5
    return m


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_matches_numpy_reference(data):
    h = data.draw(st.integers(1, 3), "heads")
    e = h * data.draw(st.integers(1, 2), "head_dim")
    n, length, s = (data.draw(st.integers(1, 3), name) for name in ("N", "L", "S"))
    kdim, vdim = (data.draw(st.sampled_from([None, 3]), name) for name in ("kdim", "vdim"))
    batch_first = data.draw(st.booleans(), "batch_first")
    mha = make(e, h, seed=data.draw(st.integers(0, 99)), kdim=kdim, vdim=vdim, batch_first=batch_first)
    kinds = {"none": lambda shape: None, "bool": bool_mask, "float": float_mask}
    attn_kind = data.draw(st.sampled_from(sorted(kinds)), "attn_mask")
    attn_shape = data.draw(st.sampled_from([(length, s), (n * h, length, s)]), "attn shape")
    attn_mask = kinds[attn_kind](attn_shape)
    kpm = kinds[data.draw(st.sampled_from(sorted(kinds)), "key_padding_mask")]((n, s))
    is_causal = data.draw(st.booleans(), "is_causal")
    need_weights = data.draw(st.booleans(), "need_weights")
    average = data.draw(st.booleans(), "average")
    query = R.standard_normal((n, length, e))
    key, value = R.standard_normal((n, s, mha.kdim)), R.standard_normal((n, s, mha.vdim))
    want, want_weights = reference(mha, query, key, value, attn_mask, kpm, is_causal)

    def arg(x):
        return mt.tensor(x if batch_first else x.swapaxes(0, 1))

    out, weights = mha(arg(query), arg(key), arg(value), key_padding_mask=kpm, need_weights=need_weights,
                       attn_mask=attn_mask, average_attn_weights=average, is_causal=is_causal)
    got = out.numpy() if batch_first else out.numpy().swapaxes(0, 1)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if not need_weights:
        assert weights is None
    else:
        np.testing.assert_allclose(weights.numpy(), want_weights.mean(axis=1) if average else want_weights,
                                   rtol=1e-10, atol=1e-12)


def test_unbatched_inputs_match_a_batch_of_one():
    mha = make(6, 3, kdim=5)
    q, k, v = R.standard_normal((4, 6)), R.standard_normal((3, 5)), R.standard_normal((3, 6))
    attn, kpm = float_mask((3, 4, 3)), bool_mask((3,))
    out, weights = mha(mt.tensor(q), mt.tensor(k), mt.tensor(v), key_padding_mask=kpm, attn_mask=attn,
                       average_attn_weights=False)
    want, want_weights = reference(mha, q[None], k[None], v[None], attn, kpm[None])
    assert out.shape == (4, 6) and weights.shape == (3, 4, 3)
    np.testing.assert_allclose(out.numpy(), want[0], rtol=1e-10)
    np.testing.assert_allclose(weights.numpy(), want_weights[0], rtol=1e-10)


def test_state_dict_keys_are_torchs():
    assert list(nn.MultiheadAttention(4, 2).state_dict()) == [
        "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    assert list(nn.MultiheadAttention(4, 2, kdim=3, vdim=5).state_dict()) == [
        "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    assert list(nn.MultiheadAttention(4, 2, bias=False).state_dict()) == ["in_proj_weight", "out_proj.weight"]
    fresh = nn.MultiheadAttention(4, 2)
    assert not fresh.in_proj_bias.numpy().any() and not fresh.out_proj.bias.numpy().any()  # zeros, as torch


def test_fully_masked_rows_give_zeros_on_both_paths():
    mha = make(4, 2)
    x = mt.tensor(R.standard_normal((3, 2, 4)))
    mask = np.zeros((3, 3), bool)
    mask[1] = True
    float_version = np.where(mask, -np.inf, 0.0)
    bias = mha.out_proj.bias.numpy()
    for m, need in ((mask, True), (mask, False), (float_version, True), (float_version, False)):
        out, _ = mha(x, x, x, attn_mask=m, need_weights=need)
        assert np.isfinite(out.numpy()).all()
        np.testing.assert_allclose(out.numpy()[1], np.broadcast_to(bias, (2, 4)), rtol=1e-12)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
def test_input_gradients_match_central_differences(need_weights, mask_kind):
    mha = make(4, 2, kdim=3, vdim=5, batch_first=True)
    attn = {"none": None, "bool": bool_mask((2, 3)), "float": float_mask((4, 2, 3))}[mask_kind]
    kpm = bool_mask((2, 3)) if mask_kind == "float" else None
    inputs = [mt.tensor(R.standard_normal(shape), requires_grad=True) for shape in ((2, 2, 4), (2, 3, 3), (2, 3, 5))]

    def fn(q, k, v):
        out, weights = mha(q, k, v, attn_mask=attn, key_padding_mask=kpm, need_weights=need_weights,
                           average_attn_weights=False)
        return (out, weights) if need_weights else out

    assert mt.gradcheck(fn, inputs)


def test_parameter_gradients_match_central_differences():
    mha = make(4, 2, kdim=3)
    q, k = mt.tensor(R.standard_normal((2, 2, 4))), mt.tensor(R.standard_normal((3, 2, 3)))
    v = mt.tensor(R.standard_normal((3, 2, 4)))
    kpm, cot = bool_mask((2, 3)), R.standard_normal((2, 2, 4))

    def loss():
        return float((mha(q, k, v, key_padding_mask=kpm, need_weights=False)[0] * mt.tensor(cot)).sum().item())

    (mha(q, k, v, key_padding_mask=kpm, need_weights=False)[0] * mt.tensor(cot)).sum().backward()
    for name, p in mha.named_parameters():
        numeric = np.zeros(p.shape)
        for i in np.ndindex(p.shape):
            keep = p.data[i]
            p.data[i] = keep + 1e-6
            up = loss()
            p.data[i] = keep - 1e-6
            numeric[i] = (up - loss()) / 2e-6
            p.data[i] = keep
        np.testing.assert_allclose(np.asarray(p.grad), numeric, rtol=1e-3, atol=1e-5, err_msg=name)


def test_dropout_acts_in_training_only():
    mha = make(4, 2, dropout=0.5)
    x = mt.tensor(R.standard_normal((5, 3, 4)))
    mha.eval()
    out_eval, w_eval = mha(x, x, x, average_attn_weights=False)
    mha.train()
    mt.manual_seed(0)
    out_train, w_train = mha(x, x, x, average_attn_weights=False)
    w, w0 = w_train.numpy(), w_eval.numpy()
    dropped = w == 0
    assert dropped.any() and (~dropped).any()
    np.testing.assert_allclose(w[~dropped], 2 * w0[~dropped], rtol=1e-12)  # kept weights scaled by 1/(1-p)
    assert not np.allclose(out_train.numpy(), out_eval.numpy())
    fused, _ = mha(x, x, x, need_weights=False)
    assert not np.allclose(fused.numpy(), out_eval.numpy())
    everything = make(4, 2, dropout=1.0)  # every weight dropped: only out_proj's bias is left
    np.testing.assert_allclose(everything(x, x, x, need_weights=False)[0].numpy(),
                               np.broadcast_to(everything.out_proj.bias.numpy(), (5, 3, 4)))


def test_masks_are_also_taken_as_tensors_and_float32_models_keep_float32():
    mha = nn.MultiheadAttention(4, 2)
    x = mt.randn(3, 2, 4)
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    out, weights = mha(x, x, x, attn_mask=mask.astype(np.float64), key_padding_mask=mt.tensor(bool_mask((2, 3))))
    assert out.dtype == np.float32 and weights.dtype == np.float32
    causal, _ = mha(x, x, x, is_causal=True, need_weights=False)
    np.testing.assert_allclose(mha(x, x, x, attn_mask=mask)[0].numpy(), causal.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make_args, message", [
    ((5, 2), "embed_dim 5 is not divisible by num_heads 2"),
    ((4, 0), "num_heads must be at least 1"),
    ((4.0, 2), "embed_dim must be an int"),
    ((4, 2, 1.5), "dropout must be a probability"),
])
def test_bad_constructor_arguments_are_named(make_args, message):
    with pytest.raises((ValueError, TypeError), match=message):
        nn.MultiheadAttention(*make_args)
    with pytest.raises(NotImplementedError, match="add_bias_kv"):
        nn.MultiheadAttention(4, 2, add_bias_kv=True)


@pytest.mark.parametrize("call, message", [
    (lambda m, x, y: m(x, x, x, attn_mask=np.zeros((2, 3), bool)), r"2-D attn_mask has shape \(2, 3\), expected"),
    (lambda m, x, y: m(x, x, x, attn_mask=np.zeros((2, 3, 3))), r"3-D attn_mask has shape \(2, 3, 3\), expected"),
    (lambda m, x, y: m(x, x, x, attn_mask=np.zeros(3)), "attn_mask must be 2-D"),
    (lambda m, x, y: m(x, x, x, attn_mask=np.zeros((3, 3), int)), "attn_mask must be boolean or floating"),
    (lambda m, x, y: m(x, x, x, key_padding_mask=np.zeros((3, 3), bool)), r"key_padding_mask has shape \(3, 3\)"),
    (lambda m, x, y: m(x, y, y), "key of shape .* has 5 features, but kdim is 4"),
    (lambda m, x, y: m(x, x, x[:2]), "different sequence lengths"),
    (lambda m, x, y: m(x, x[:, :1], x[:, :1]), "different batch sizes"),
    (lambda m, x, y: m(x[0], x, x), r"must all be 3-D \(batched\) or all 2-D"),
    (lambda m, x, y: m(x.numpy(), x, x), "query must be a minitf Tensor"),
])
def test_bad_inputs_are_named(call, message):
    mha = nn.MultiheadAttention(4, 2)
    x, y = mt.randn(3, 2, 4), mt.randn(3, 2, 5)
    with pytest.raises((ValueError, TypeError), match=message):
        call(mha, x, y)


def test_old_attention_name_says_where_it_went():
    with pytest.raises(AttributeError, match="renamed FusedMultiHeadAttention.*nn.MultiheadAttention"):
        nn.MultiHeadAttention  # noqa: B018 (the name differs from PyTorch's only in case: a trap)


def test_an_input_of_the_other_float_dtype_is_refused_naming_the_module():
    mha = nn.MultiheadAttention(4, 2, kdim=3)
    x = mt.randn(3, 2, 4)
    with pytest.raises(TypeError, match="^MultiheadAttention: input dtype float64 does not match weight dtype float32"):
        mha(x, mt.tensor(R.standard_normal((5, 2, 3))), mt.randn(5, 2, 4))
