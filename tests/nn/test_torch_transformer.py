"""nn.TransformerEncoderLayer/DecoderLayer, TransformerEncoder/Decoder and nn.Transformer without PyTorch:
NumPy float64 references of their equations (post-norm and pre-norm, relu/gelu, masks), state-dict keys,
deep copies, initialization, dropout in training, gradients against central differences, and errors
that name the bad argument."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minitf as mt
import minitf.functional as F
from minitf import nn

from torch_modules_reference import decoder_layer, encoder_layer, layer_norm, mask_makers

R = np.random.default_rng(2122)
ACTIVATIONS = {"relu": lambda x: np.maximum(x, 0),
               "gelu": lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))}


def randomized(module, seed=0):
    """float64, every parameter random (zero biases and unit norms would hide mistakes)."""
    module = module.to(np.float64)
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data[...] = rng.standard_normal(p.shape) * 0.5
    return module


blocked, additive, KINDS = mask_makers(R)



def seq_major(x, batch_first):
    return mt.tensor(x if batch_first else x.swapaxes(0, 1))


def batch_major(t, batch_first):
    return t.numpy() if batch_first else t.numpy().swapaxes(0, 1)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_encoder_layer_matches_numpy(data):
    h = data.draw(st.integers(1, 2), "nhead")
    d, n, s = 2 * h, data.draw(st.integers(1, 3), "N"), data.draw(st.integers(1, 4), "S")
    act, norm_first, bias, batch_first = (data.draw(st.sampled_from(["relu", "gelu"]), "activation"),
                                          *(data.draw(st.booleans(), name)
                                            for name in ("norm_first", "bias", "batch_first")))
    layer = randomized(nn.TransformerEncoderLayer(d, h, 5, 0.0, act, batch_first=batch_first, norm_first=norm_first,
                                                  bias=bias), data.draw(st.integers(0, 9)))
    mask = KINDS[data.draw(st.sampled_from(sorted(KINDS)), "src_mask")](
        data.draw(st.sampled_from([(s, s), (n * h, s, s)])))
    padding = KINDS[data.draw(st.sampled_from(sorted(KINDS)), "padding")]((n, s))
    causal = data.draw(st.booleans(), "is_causal")
    x = R.standard_normal((n, s, d))
    out = layer(seq_major(x, batch_first), src_mask=mask, src_key_padding_mask=padding, is_causal=causal)
    want = encoder_layer(layer, x, ACTIVATIONS[act], mask, padding, causal)
    np.testing.assert_allclose(batch_major(out, batch_first), want, rtol=1e-10, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.data())
def test_decoder_layer_matches_numpy(data):
    h = data.draw(st.integers(1, 2), "nhead")
    d, n = 2 * h, data.draw(st.integers(1, 3), "N")
    t, s = data.draw(st.integers(1, 4), "T"), data.draw(st.integers(1, 4), "S")
    act, norm_first, batch_first = (data.draw(st.sampled_from(["relu", "gelu"]), "activation"),
                                    data.draw(st.booleans(), "norm_first"), data.draw(st.booleans(), "batch_first"))
    layer = randomized(nn.TransformerDecoderLayer(d, h, 5, 0.0, act, batch_first=batch_first, norm_first=norm_first),
                       data.draw(st.integers(0, 9)))
    masks = {"tgt_mask": KINDS[data.draw(st.sampled_from(sorted(KINDS)), "tgt_mask")]((t, t)),
             "memory_mask": KINDS[data.draw(st.sampled_from(sorted(KINDS)), "memory_mask")]((n * h, t, s)),
             "tgt_key_padding_mask": KINDS[data.draw(st.sampled_from(sorted(KINDS)), "tgt padding")]((n, t)),
             "memory_key_padding_mask": KINDS[data.draw(st.sampled_from(sorted(KINDS)), "memory padding")]((n, s)),
             "tgt_is_causal": data.draw(st.booleans(), "tgt_is_causal")}
    y, memory = R.standard_normal((n, t, d)), R.standard_normal((n, s, d))
    out = layer(seq_major(y, batch_first), seq_major(memory, batch_first), **masks)
    want = decoder_layer(layer, y, memory, ACTIVATIONS[act], masks)
    np.testing.assert_allclose(batch_major(out, batch_first), want, rtol=1e-10, atol=1e-12)


def test_stacks_and_transformer_match_numpy():
    model = randomized(nn.Transformer(4, 2, 2, 2, 6, 0.0, "gelu", batch_first=True), seed=5)
    src, tgt = R.standard_normal((2, 5, 4)), R.standard_normal((2, 3, 4))
    masks = {"tgt_mask": nn.Transformer.generate_square_subsequent_mask(3, dtype=np.float64).numpy(),
             "tgt_key_padding_mask": blocked((2, 3)), "memory_key_padding_mask": blocked((2, 5))}
    out = model(mt.tensor(src), mt.tensor(tgt), src_key_padding_mask=masks["memory_key_padding_mask"], **masks)
    memory = src
    for layer in model.encoder.layers:
        memory = encoder_layer(layer, memory, ACTIVATIONS["gelu"], padding=masks["memory_key_padding_mask"])
    y = tgt
    for layer in model.decoder.layers:
        y = decoder_layer(layer, y, layer_norm(memory, model.encoder.norm), ACTIVATIONS["gelu"], masks)
    np.testing.assert_allclose(out.numpy(), layer_norm(y, model.decoder.norm), rtol=1e-10, atol=1e-12)


def test_state_dict_keys_are_torchs():
    keys = list(nn.Transformer(4, 2, 1, 1, 6).state_dict())
    attn = ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    ff = ["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"]
    norms = [f"norm{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")]
    assert keys == ([f"encoder.layers.0.self_attn.{k}" for k in attn]
                    + [f"encoder.layers.0.{k}" for k in ff + norms[:4]]
                    + ["encoder.norm.weight", "encoder.norm.bias"]
                    + [f"decoder.layers.0.self_attn.{k}" for k in attn]
                    + [f"decoder.layers.0.multihead_attn.{k}" for k in attn]
                    + [f"decoder.layers.0.{k}" for k in ff + norms] + ["decoder.norm.weight", "decoder.norm.bias"])
    no_bias = nn.TransformerEncoderLayer(4, 2, 6, bias=False).state_dict()
    assert list(no_bias) == ["self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight",
                             "linear2.weight", "norm1.weight", "norm2.weight"]


def test_stacks_hold_independent_deep_copies():
    layer = nn.TransformerEncoderLayer(4, 2, 6)
    encoder = nn.TransformerEncoder(layer, 3)
    first, second = encoder.layers[0], encoder.layers[1]
    assert first is not layer and first.linear1.weight is not second.linear1.weight
    np.testing.assert_array_equal(first.linear1.weight.numpy(), layer.linear1.weight.numpy())
    first.linear1.weight.data[...] = 0
    assert second.linear1.weight.numpy().any() and layer.linear1.weight.numpy().any()
    assert len(list(encoder.parameters())) == 3 * len(list(layer.parameters()))
    assert nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, 6), 2).norm is None


def test_transformer_initialization_and_custom_stacks():
    model = nn.Transformer(8, 2, 1, 1, 16)
    w = model.encoder.layers[0].linear1.weight.numpy()  # Xavier-uniform over (16, 8), as torch's
    assert np.abs(w).max() <= math.sqrt(6 / 24) and np.abs(w).max() > 0.5 * math.sqrt(6 / 24)
    np.testing.assert_array_equal(model.encoder.norm.weight.numpy(), np.ones(8))  # 1-D: left as they are
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16), 2)
    custom = nn.Transformer(8, 2, custom_encoder=encoder, num_decoder_layers=1, dim_feedforward=16)
    assert custom.encoder is encoder and len(custom.decoder.layers) == 1


def test_generate_square_subsequent_mask():
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask.numpy(), [[0, -np.inf, -np.inf], [0, 0, -np.inf], [0, 0, 0]])
    assert nn.Transformer.generate_square_subsequent_mask(2, dtype=np.float64).dtype == np.float64


def test_dropout_acts_in_training_only():
    layer = randomized(nn.TransformerEncoderLayer(4, 2, 6, dropout=0.5))
    x = mt.tensor(R.standard_normal((3, 2, 4)))
    a, b = layer(x), layer(x)
    assert not np.allclose(a.numpy(), b.numpy())
    layer.eval()
    np.testing.assert_allclose(layer(x).numpy(), encoder_layer(layer, x.numpy().swapaxes(0, 1),
                                                               ACTIVATIONS["relu"]).swapaxes(0, 1), rtol=1e-10)
    model = nn.Transformer(4, 2, 1, 1, 6, dropout=0.3).double()
    model.train()
    src, tgt = mt.tensor(R.standard_normal((3, 2, 4))), mt.tensor(R.standard_normal((2, 2, 4)))
    assert not np.allclose(model(src, tgt).numpy(), model(src, tgt).numpy())
    model.eval()
    np.testing.assert_array_equal(model(src, tgt).numpy(), model(src, tgt).numpy())


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_gradients_match_central_differences(norm_first):
    layer = randomized(nn.TransformerDecoderLayer(4, 2, 5, 0.0, norm_first=norm_first, batch_first=True), seed=3)
    y = mt.tensor(R.standard_normal((2, 3, 4)), requires_grad=True)
    memory = mt.tensor(R.standard_normal((2, 2, 4)), requires_grad=True)
    masks = {"memory_mask": additive((3, 2)), "tgt_key_padding_mask": blocked((2, 3)), "tgt_is_causal": True}
    assert mt.gradcheck(lambda a, b: layer(a, b, **masks), [y, memory])


def test_a_callable_activation_is_used():
    layer = randomized(nn.TransformerEncoderLayer(4, 2, 6, 0.0, activation=F.silu))
    x = R.standard_normal((2, 3, 4))
    silu = lambda v: v / (1 + np.exp(-v))  # noqa: E731
    np.testing.assert_allclose(batch_major(layer(seq_major(x, False)), False), encoder_layer(layer, x, silu),
                               rtol=1e-10)


@pytest.mark.parametrize("build, message", [
    (lambda: nn.TransformerEncoderLayer(6, 4), "TransformerEncoderLayer: d_model 6 is not divisible by nhead 4"),
    (lambda: nn.TransformerDecoderLayer(4, 2, activation="tanh"), "activation must be 'relu', 'gelu' or a callable"),
    (lambda: nn.TransformerEncoderLayer(4, 2, dropout=2), "dropout must be a probability"),
    (lambda: nn.TransformerEncoder(nn.TransformerDecoderLayer(4, 2), 2), "expected a TransformerEncoderLayer"),
    (lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2), -1), "num_layers must be an int >= 0"),
    (lambda: nn.Transformer(nn.TransformerConfig(5, 5)), "nn.Seq2SeqTransformer"),
])
def test_bad_arguments_are_named(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()


@pytest.mark.parametrize("call, message", [
    (lambda m, s, t: m(s, t[:, :1]), "different batch sizes"),
    (lambda m, s, t: m(s[..., :2], t), r"must be d_model 4"),
    (lambda m, s, t: m(s, t, tgt_mask=np.zeros((2, 2), bool)),
     "self-attention .tgt_mask is its attn_mask.*2-D attn_mask"),
    (lambda m, s, t: m(s, t, memory_mask=np.zeros((3, 2))), r"cross-attention .memory_mask.*\(L, S\) = \(3, 5\)"),
    (lambda m, s, t: m(s, t, src_key_padding_mask=np.zeros((2, 3), bool)),
     "src_key_padding_mask.*key_padding_mask has"),
    (lambda m, s, t: m(s[0], t), "must both be batched or unbatched"),
])
def test_bad_inputs_are_named(call, message):
    model = nn.Transformer(4, 2, 1, 1, 6)
    src, tgt = mt.randn(5, 2, 4), mt.randn(3, 2, 4)
    with pytest.raises(ValueError, match=message):
        call(model, src, tgt)


@pytest.mark.parametrize("need_weights", [True, False])
def test_runs_on_the_device_with_masks_there(fake_gpu, need_weights):
    """On (stand-in) CuPy arrays: the masks are made and combined there, the outputs stay there."""
    model = randomized(nn.Transformer(4, 2, 1, 1, 6, 0.0, batch_first=True), seed=7)
    src, tgt = R.standard_normal((2, 5, 4)), R.standard_normal((2, 3, 4))
    padding, memory_mask = blocked((2, 5)), additive((3, 5))
    want = model(mt.tensor(src), mt.tensor(tgt), src_key_padding_mask=padding, memory_mask=memory_mask,
                 tgt_is_causal=True).numpy()
    model.to("cuda")
    causal = nn.Transformer.generate_square_subsequent_mask(3, device="cuda", dtype=np.float64)
    out = model(mt.tensor(src).to("cuda"), mt.tensor(tgt).to("cuda"), src_key_padding_mask=fake_gpu(padding),
                memory_mask=fake_gpu(memory_mask), tgt_mask=causal)
    assert out.device.kind == "cuda" and type(out.data).__name__ == "FakeCupyArray"
    np.testing.assert_allclose(np.asarray(out.data), want, rtol=1e-10)
    attention = model.decoder.layers[0].self_attn
    x = mt.tensor(tgt).to("cuda")
    result, weights = attention(x, x, x, is_causal=True, need_weights=need_weights)
    assert type(result.data).__name__ == "FakeCupyArray"
    assert (weights is None) != need_weights
    with pytest.raises(mt.backend.DeviceError, match="key_padding_mask.*different devices"):
        attention(x, x, x, key_padding_mask=blocked((2, 3)))  # a host mask for device inputs
