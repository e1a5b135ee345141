"""minitf.nn: Module bookkeeping, the basic layers against their functional ops and NumPy
formulas, and the gradients of attention and the encoder/decoder layers (finite differences).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minitf
import minitf.functional as F
from minitf import Tensor, backend, gradcheck
from minitf.nn import (DecoderLayer, Dropout, Embedding, EncoderLayer, FeedForward, LayerNorm, Linear,
                       Module, ModuleList, FusedMultiHeadAttention, Parameter, ScaledEmbedding, Seq2SeqTransformer,
                       TransformerConfig)


def small_config(**overrides) -> TransformerConfig:
    options = dict(src_vocab_size=11, tgt_vocab_size=11, d_model=8, n_heads=2, n_encoder_layers=1,
                   n_decoder_layers=1, d_ff=12, dropout=0.0, max_len=16)
    options.update(overrides)
    return TransformerConfig(**options)


def to_float64(module: Module) -> Module:
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


def randomize(module: Module, seed: int = 0, scale: float = 0.5) -> Module:
    """Non-trivial values everywhere (biases and norm gains are 0 and 1 at init)."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data = p.data + backend.to_device(scale * rng.standard_normal(p.shape).astype(p.dtype), p.device)
    return module


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def check_module_grads(module: Module, inputs: list, call, fast: bool = False) -> None:
    """gradcheck `call(module, *inputs)` with respect to its float inputs and every parameter.

    gradcheck works on float64 copies of the tensors it is given, so each evaluation puts
    those copies in place of the module's parameters (without registering them) and then
    restores the originals.
    """
    named = list(module.named_parameters())
    owners = []
    for name, _ in named:
        *path, attr = name.split(".")
        owner = module
        for part in path:
            owner = getattr(owner, part)
        owners.append((owner, attr))
    n_inputs = len(inputs)

    def fn(*args):
        originals = [getattr(owner, attr) for owner, attr in owners]
        for (owner, attr), t in zip(owners, args[n_inputs:]):
            object.__setattr__(owner, attr, t)
        try:
            return call(module, *args[:n_inputs])
        finally:
            for (owner, attr), t in zip(owners, originals):
                object.__setattr__(owner, attr, t)

    assert gradcheck(fn, list(inputs) + [p for _, p in named], fast=fast)


# ---- Module -----------------------------------------------------------------------------------

class Block(Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = Linear(3, 4)
        self.layers = ModuleList([Linear(4, 4, bias=False), LayerNorm(4)])
        self.again = self.first  # the same module twice: its parameters are listed once
        self.scale = Parameter(np.ones(4, dtype=np.float32))


def test_named_parameters_dotted_and_shared_once():
    block = Block()
    names = [n for n, _ in block.named_parameters()]
    assert names == ["scale", "first.weight", "first.bias", "layers.0.weight", "layers.1.weight",
                     "layers.1.bias"]
    params = block.parameters()
    assert params[1] is block.first.weight and params[0] is block.scale
    assert len({id(p) for p in params}) == len(params)
    assert block.num_parameters() == 4 + 12 + 4 + 16 + 4 + 4
    assert len(block.layers) == 2 and block.layers[1] is list(block.layers)[1]


def test_reassigning_an_attribute_unregisters_it():
    lin = Linear(3, 4)
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    lin.weight = Parameter(np.zeros((4, 3), dtype=np.float32))
    assert lin.parameters()[0] is lin.weight


def test_transformer_shares_embedding_once():
    model = Seq2SeqTransformer(small_config())
    names = [n for n, _ in model.named_parameters()]
    assert model.src_embed is model.tgt_embed
    assert names.count("tgt_embed.weight") == 1 and "src_embed.weight" not in names
    assert len(names) == len(set(names)) == len({id(p) for p in model.parameters()})
    assert "decoder_layers.0.cross_attn.in_proj_weight" in names
    assert "encoder_layers.0.ff.linear2.bias" in names
    assert "output_weight" not in names  # tied to the target embedding

    untied = Seq2SeqTransformer(small_config(src_vocab_size=13, share_embeddings=False, tie_output=False))
    names = [n for n, _ in untied.named_parameters()]
    assert {"tgt_embed.weight", "src_embed.weight", "output_weight"} <= set(names)
    assert untied.src_embed.weight.shape == (13, 8)


def hand_count(c: TransformerConfig) -> int:
    d, f = c.d_model, c.d_ff
    attention = 3 * d * d + 3 * d + d * d + d
    ff = d * f + f + f * d + d
    norm = 2 * d
    encoder = attention + ff + 2 * norm
    decoder = 2 * attention + ff + 3 * norm
    total = c.n_encoder_layers * encoder + c.n_decoder_layers * decoder + 2 * norm
    total += c.tgt_vocab_size * d
    if not c.share_embeddings:
        total += c.src_vocab_size * d
    if not c.tie_output:
        total += c.tgt_vocab_size * d
    return total


@pytest.mark.parametrize("shared", [True, False])
def test_num_parameters_matches_hand_count(shared):
    c = small_config(n_encoder_layers=2, n_decoder_layers=3, src_vocab_size=11 if shared else 17,
                     share_embeddings=shared, tie_output=shared)
    model = Seq2SeqTransformer(c)
    assert model.num_parameters() == hand_count(c) == sum(p.size for p in model.parameters())
    if shared:
        assert hand_count(c) == 11 * 8 + 2 * (4 * 64 + 4 * 8 + 2 * 96 + 12 + 8 + 32) \
            + 3 * (8 * 64 + 8 * 8 + 2 * 96 + 12 + 8 + 48) + 32


def test_assigning_before_super_init_raises():
    class Broken(Module):
        def __init__(self) -> None:
            self.linear = Linear(2, 2)
            super().__init__()

    with pytest.raises(AttributeError, match=r"super\(\)\.__init__\(\)"):
        Broken()


def test_forward_not_defined_raises():
    with pytest.raises(NotImplementedError, match="Module"):
        Module()(1)


def test_state_dict_round_trip():
    minitf.manual_seed(1)
    a = randomize(Seq2SeqTransformer(small_config()), seed=1)
    minitf.manual_seed(2)
    b = Seq2SeqTransformer(small_config())
    state = a.state_dict()
    assert list(state) == [n for n, _ in a.named_parameters(remove_duplicate=False)]  # tied: both names
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert not np.array_equal(state["tgt_embed.weight"], b.tgt_embed.weight.numpy())
    b.load_state_dict(state)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
        assert q.dtype == np.float32
    src = np.array([[3, 4, 5, 0], [6, 7, 8, 9]])
    tgt = np.array([[1, 2, 3], [4, 5, 6]])
    mask = src != 0
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(src, tgt, mask).numpy(), b(src, tgt, mask).numpy())
    # the state is a copy: changing it does not change the model, nor does training the model change it
    before = a.encoder_norm.weight.numpy().copy()
    state["encoder_norm.weight"] += 1
    np.testing.assert_array_equal(a.encoder_norm.weight.numpy(), before)
    saved = a.state_dict()
    a.encoder_norm.weight.data += 1
    np.testing.assert_array_equal(saved["encoder_norm.weight"], before)


def test_load_state_dict_keeps_parameter_dtype_and_identity():
    model = to_float64(Linear(3, 2))
    weight = model.weight
    model.load_state_dict({"weight": np.ones((2, 3), dtype=np.float32), "bias": np.zeros(2, np.float32)})
    assert model.weight is weight and weight.dtype == np.float64
    np.testing.assert_array_equal(weight.numpy(), np.ones((2, 3)))


def test_load_state_dict_strict_errors():
    model = Seq2SeqTransformer(small_config())
    good = model.state_dict()

    missing = dict(good)
    del missing["decoder_norm.bias"]
    with pytest.raises(KeyError, match="decoder_norm.bias"):
        model.load_state_dict(missing)

    unexpected = dict(good, **{"extra.weight": np.zeros(3)})
    with pytest.raises(KeyError, match=r"extra\.weight"):
        model.load_state_dict(unexpected)

    misshaped = dict(good)
    misshaped["encoder_layers.0.ff.linear1.weight"] = np.zeros((12, 9), np.float32)
    with pytest.raises(ValueError, match=r"encoder_layers\.0\.ff\.linear1\.weight.*\(12, 9\).*\(12, 8\)"):
        model.load_state_dict(misshaped)

    # non-strict: missing entries are left alone, unexpected ones ignored; shapes still checked
    partial = {"decoder_norm.bias": np.full(8, 3.0, np.float32), "extra.weight": np.zeros(3)}
    model.load_state_dict(partial, strict=False)
    np.testing.assert_array_equal(model.decoder_norm.bias.numpy(), np.full(8, 3.0))
    np.testing.assert_array_equal(model.encoder_norm.bias.numpy(), good["encoder_norm.bias"])
    with pytest.raises(ValueError, match="decoder_norm.weight"):
        model.load_state_dict({"decoder_norm.weight": np.zeros(9)}, strict=False)


def test_failed_load_state_dict_changes_nothing():
    model = Seq2SeqTransformer(small_config())
    before = model.state_dict()
    bad = {name: value + 1 for name, value in before.items()}
    bad["decoder_norm.bias"] = np.zeros(5, np.float32)  # the last entry is wrong
    with pytest.raises(ValueError):
        model.load_state_dict(bad)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_train_eval_propagate_and_control_dropout():
    minitf.manual_seed(0)
    model = Seq2SeqTransformer(small_config(dropout=0.5))
    assert all(m.training for _, m in model.named_modules())
    src = np.array([[3, 4, 5, 6]])
    tgt = np.array([[1, 2, 3]])
    mask = src != 0
    first, second = model(src, tgt, mask).numpy(), model(src, tgt, mask).numpy()
    assert not np.allclose(first, second)  # dropout active in training
    assert model.eval() is model
    assert not any(m.training for _, m in model.named_modules())
    assert not model.decoder_layers[0].ff.training and not model.dropout.training
    first, second = model(src, tgt, mask).numpy(), model(src, tgt, mask).numpy()
    np.testing.assert_array_equal(first, second)
    # eval output equals the output of the same weights built without dropout
    plain = Seq2SeqTransformer(small_config(dropout=0.0))
    plain.load_state_dict(model.state_dict())
    np.testing.assert_allclose(plain(src, tgt, mask).numpy(), first, rtol=1e-6, atol=1e-6)
    model.train()
    assert all(m.training for _, m in model.named_modules())
    model.train(False)
    assert not model.encoder_layers[0].self_attn.training


def test_dropout_module():
    minitf.manual_seed(3)
    drop = Dropout(0.25)
    x = Tensor(np.ones((200, 50), np.float32))
    y = drop(x).numpy()
    zeros = (y == 0).mean()
    assert 0.2 < zeros < 0.3
    np.testing.assert_allclose(y[y != 0], 1 / 0.75, rtol=1e-6)
    drop.eval()
    assert drop(x) is x


def test_to_cpu_keeps_identity_and_zero_grad(device):
    model = Seq2SeqTransformer(small_config())
    params = model.parameters()
    assert model.to(device) is model
    assert all(p is q for p, q in zip(params, model.parameters()))
    assert str(model.device) == str(backend.parse_device(device))
    assert backend.device_of(model.positions) == backend.parse_device(device)
    xp = backend.get_array_module(params[0].data)
    src = xp.asarray(np.array([[3, 4, 5, 0]]))
    tgt = xp.asarray(np.array([[1, 2]]))
    logits = model(src, tgt, src != 0)
    F.cross_entropy(logits, xp.asarray(np.array([[2, 3]]))).backward()
    assert all(p.grad is not None for p in params)
    model.to(device)  # moving again (with gradients present) changes nothing
    assert all(p is q and p.grad is not None for p, q in zip(params, model.parameters()))
    model.to("cpu")
    assert all(isinstance(p.data, np.ndarray) and isinstance(p.grad, np.ndarray) for p in params)
    model.zero_grad()
    assert all(p.grad is None for p in params)


def test_every_parameter_gets_a_gradient():
    model = randomize(Seq2SeqTransformer(small_config(share_embeddings=False, src_vocab_size=12, tie_output=False)))
    src = np.array([[3, 4, 5, 0], [6, 7, 8, 9]])
    tgt = np.array([[1, 2, 3], [4, 5, 6]])
    F.cross_entropy(model(src, tgt, src != 0), np.array([[2, 3, 4], [5, 6, 7]])).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert np.abs(p.grad).max() > 0, name


# ---- basic layers against the functional ops and NumPy ----------------------------------------

def test_linear_forward(device):
    lin = randomize(Linear(5, 3)).to(device)
    x = Tensor(rand(2, 4, 5).astype(np.float32), device=device)
    y = lin(x)
    assert y.shape == (2, 4, 3)
    np.testing.assert_array_equal(y.numpy(), F.linear(x, lin.weight, lin.bias).numpy())
    expected = x.numpy() @ lin.weight.numpy().T + lin.bias.numpy()
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-6)
    bound = 1 / math.sqrt(5)  # PyTorch's default: kaiming_uniform_(a=sqrt(5)) and U(+-1/sqrt(fan_in)) bias
    fresh = Linear(5, 3)
    assert np.abs(fresh.weight.numpy()).max() <= bound and np.abs(fresh.bias.numpy()).max() <= bound
    assert np.all(fresh.bias.numpy() != 0)
    nobias = Linear(5, 3, bias=False)
    np.testing.assert_allclose(nobias(x.to("cpu")).numpy(), x.numpy() @ nobias.weight.numpy().T, rtol=1e-5)


def test_layer_norm_forward(device):
    norm = randomize(LayerNorm(6)).to(device)
    x = Tensor((3 * rand(4, 6) + 1).astype(np.float32), device=device)  # the layer's dtype
    y = norm(x)
    np.testing.assert_array_equal(y.numpy(), F.layer_norm(x, norm.weight, norm.bias, 1e-5).numpy())
    a = x.numpy()
    xhat = (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + 1e-5)
    expected = xhat * norm.weight.numpy() + norm.bias.numpy()
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_embedding_forward_and_padding(device):
    emb = Embedding(7, 4, padding_idx=0).to(device)
    table = emb.weight.numpy()
    np.testing.assert_array_equal(table[0], 0)
    assert 0.6 < table[1:].std() < 1.6  # N(0, 1), as PyTorch's
    scaled = ScaledEmbedding(7, 4, padding_idx=0).weight.numpy()  # the Transformer's N(0, 4^-1/2)
    assert np.all(scaled[0] == 0) and 0.2 < scaled[1:].std() < 0.8
    xp = backend.get_array_module(emb.weight.data)
    ids = np.array([[1, 0, 3], [3, 6, 0]])
    out = emb(xp.asarray(ids))
    np.testing.assert_array_equal(out.numpy(), table[ids])
    np.testing.assert_array_equal(out.numpy(), F.embedding(xp.asarray(ids), emb.weight, 0).numpy())
    out.backward(xp.ones(out.shape, dtype=out.dtype))
    grad = emb.weight.grad if isinstance(emb.weight.grad, np.ndarray) else emb.weight.grad.get()
    np.testing.assert_array_equal(grad[:, 0], [0, 1, 0, 2, 0, 0, 1])  # id 3 twice; the pad row none


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_feed_forward_forward(activation, device):
    ff = randomize(to_float64(FeedForward(5, 7, activation))).to(device)
    x = Tensor(rand(2, 3, 5), device=device)
    y = ff(x)
    expected_op = F.feed_forward(x, ff.linear1.weight, ff.linear1.bias, ff.linear2.weight, ff.linear2.bias,
                                 activation)
    np.testing.assert_array_equal(y.numpy(), expected_op.numpy())
    h = x.numpy() @ ff.linear1.weight.numpy().T + ff.linear1.bias.numpy()
    if activation == "relu":
        a = np.maximum(h, 0)
    else:
        a = h * 0.5 * (1 + np.vectorize(math.erf)(h / math.sqrt(2)))
    np.testing.assert_allclose(y.numpy(), a @ ff.linear2.weight.numpy().T + ff.linear2.bias.numpy(),
                               rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="activation"):
        FeedForward(5, 7, "tanh")


# ---- multi-head attention -----------------------------------------------------------------------

def attention_reference(mha: FusedMultiHeadAttention, x, memory=None, mask=None, causal=False):
    """NumPy float64 multi-head attention written out; mask True = may attend."""
    d, h = mha.d_model, mha.n_heads
    w, b = mha.in_proj_weight.numpy(), mha.in_proj_bias.numpy()
    kv_in = x if memory is None else memory
    q = x @ w[:d].T + b[:d]
    k = kv_in @ w[d:2 * d].T + b[d:2 * d]
    v = kv_in @ w[2 * d:].T + b[2 * d:]

    def heads(a):
        return a.reshape(a.shape[0], a.shape[1], h, d // h).transpose(0, 2, 1, 3)

    q, k, v = heads(q), heads(k), heads(v)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d // h)
    allowed = np.ones(scores.shape, bool)
    if mask is not None:
        allowed &= mask
    if causal:
        allowed &= np.tril(np.ones(scores.shape[-2:], bool))
    scores = np.where(allowed, scores, -np.inf)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], d)
    return out @ mha.out_proj_weight.numpy().T + mha.out_proj_bias.numpy(), weights


def test_attention_heads_must_divide():
    with pytest.raises(ValueError, match="divisible"):
        FusedMultiHeadAttention(10, 4)


def test_self_attention_forward_with_padding_mask():
    mha = randomize(to_float64(FusedMultiHeadAttention(8, 2)))
    x = rand(2, 4, 8)
    key_ok = np.array([[True, True, True, False], [True, True, True, True]])
    mask = key_ok[:, None, None, :]
    out, weights = mha(Tensor(x), mask=mask, return_weights=True)
    expected, expected_weights = attention_reference(mha, x, mask=mask)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(weights.numpy(), expected_weights, rtol=1e-10, atol=1e-12)
    assert weights.shape == (2, 2, 4, 4)
    np.testing.assert_array_equal(weights.numpy()[0, :, :, 3], 0)  # the padded key gets no weight
    causal = mha(Tensor(x), is_causal=True).numpy()
    np.testing.assert_allclose(causal, attention_reference(mha, x, causal=True)[0], rtol=1e-10, atol=1e-12)


def test_cross_attention_forward_with_padding_mask():
    mha = randomize(to_float64(FusedMultiHeadAttention(8, 4)))
    x, memory = rand(2, 3, 8), rand(2, 5, 8, seed=1)
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0]], bool)[:, None, None, :]
    out = mha(Tensor(x), Tensor(memory), mask=mask)
    assert out.shape == (2, 3, 8)
    np.testing.assert_allclose(out.numpy(), attention_reference(mha, x, memory, mask)[0],
                               rtol=1e-10, atol=1e-12)
    # masked memory positions do not matter
    changed = memory.copy()
    changed[0, 2:] = 100.0
    np.testing.assert_allclose(mha(Tensor(x), Tensor(changed), mask=mask).numpy()[0], out.numpy()[0],
                               rtol=1e-12, atol=1e-12)


def test_attention_gradients_self_and_cross_with_mask():
    mha = randomize(to_float64(FusedMultiHeadAttention(6, 2)), seed=2)
    x = Tensor(rand(2, 3, 6), requires_grad=True)
    memory = Tensor(rand(2, 4, 6, seed=1), requires_grad=True)
    self_mask = np.array([[1, 1, 0], [1, 1, 1]], bool)[:, None, None, :]
    cross_mask = np.array([[1, 0, 1, 0], [1, 1, 1, 1]], bool)[:, None, None, :]
    check_module_grads(mha, [x], lambda m, x: m(x, mask=self_mask))
    check_module_grads(mha, [x, memory], lambda m, x, mem: m(x, mem, mask=cross_mask))
    check_module_grads(mha, [x], lambda m, x: m(x, is_causal=True))


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_encoder_layer_gradients(norm_first):
    minitf.manual_seed(4)
    layer = randomize(to_float64(EncoderLayer(6, 2, 10, 0.0, "relu", norm_first)), seed=3, scale=0.3)
    x = Tensor(rand(2, 3, 6, seed=5), requires_grad=True)
    mask = np.array([[1, 1, 0], [1, 1, 1]], bool)[:, None, None, :]
    check_module_grads(layer, [x], lambda m, x: m(x, mask))


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_decoder_layer_gradients(norm_first):
    minitf.manual_seed(5)
    layer = randomize(to_float64(DecoderLayer(6, 2, 10, 0.0, "gelu", norm_first)), seed=4, scale=0.3)
    y = Tensor(rand(2, 3, 6, seed=6), requires_grad=True)
    memory = Tensor(rand(2, 4, 6, seed=7), requires_grad=True)
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)[:, None, None, :]
    check_module_grads(layer, [y, memory], lambda m, y, mem: m(y, mem, mask))


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_transformer_loss_gradients(norm_first):
    model = randomize(to_float64(Seq2SeqTransformer(small_config(norm_first=norm_first, d_model=6, d_ff=8,
                                                                 n_heads=3, src_vocab_size=7, tgt_vocab_size=7))),
                      seed=8, scale=0.3)
    src = np.array([[3, 4, 5, 0], [6, 2, 1, 5]])
    tgt = np.array([[1, 2, 3], [4, 5, 6]])
    out = np.array([[2, 3, 0], [5, 6, 1]])

    def loss(m):
        return F.cross_entropy(m(src, tgt, src != 0), out, ignore_index=0, label_smoothing=0.1)

    check_module_grads(model, [], loss, fast=True)
