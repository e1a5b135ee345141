"""nn.TransformerEncoderLayer/DecoderLayer, TransformerEncoder/Decoder and nn.Transformer against PyTorch's
in float64: a model built and randomly initialized in torch loads under the same keys and gives the same
outputs and gradients (inputs and every parameter), post-norm and pre-norm, relu/gelu/a callable, with
and without biases, masks of every kind. Skipped without PyTorch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minitf as mt
import minitf.functional as F
from minitf import nn
from torch_modules_reference import mask_makers

torch = pytest.importorskip("torch")
R = np.random.default_rng(2123)


def pair(name, *args, seed=0, **kwargs):
    """torch's module (float64, every parameter random) and ours with its state dict loaded."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nn.Transformer: nested tensors need batch_first
        theirs = getattr(torch.nn, name)(*args, dtype=torch.float64, **kwargs)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # torch zeroes biases and sets norms to 1: make them count
    mine = getattr(nn, name)(*args, **kwargs).to(np.float64)
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert list(mine.state_dict()) == list(theirs.state_dict())
    return mine, theirs


blocked, additive, KINDS = mask_makers(R)



def compare(mine, theirs, inputs, masks, torch_masks=None):
    """Same inputs and masks into both; outputs, input gradients and parameter gradients agree."""
    xs = [mt.tensor(x, requires_grad=True) for x in inputs]
    ts = [torch.tensor(x, requires_grad=True) for x in inputs]
    out = mine(*xs, **masks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: mismatched mask types, nested tensors
        out_t = theirs(*ts, **{k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                               for k, v in dict(masks, **(torch_masks or {})).items()})
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = R.standard_normal(out.shape)
    (out * mt.tensor(g)).sum().backward()
    (out_t * torch.from_numpy(g)).sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(np.asarray(x.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    grads = {k: p.grad.numpy() for k, p in theirs.named_parameters()}
    for name, p in mine.named_parameters():
        np.testing.assert_allclose(np.asarray(p.grad), grads[name], rtol=1e-10, atol=1e-12, err_msg=name)


def causal(length):
    return np.triu(np.ones((length, length), bool), 1)


@settings(max_examples=12, deadline=None)
@given(st.data())
def test_encoder_layer_matches_torch(data):
    h = data.draw(st.integers(1, 2), "nhead")
    d, n, s = 2 * h, data.draw(st.integers(1, 3), "N"), data.draw(st.integers(1, 4), "S")
    batch_first = data.draw(st.booleans(), "batch_first")
    kwargs = dict(activation=data.draw(st.sampled_from(["relu", "gelu"]), "activation"), batch_first=batch_first,
                  norm_first=data.draw(st.booleans(), "norm_first"), bias=data.draw(st.booleans(), "bias"))
    mine, theirs = pair("TransformerEncoderLayer", d, h, 5, 0.0, seed=data.draw(st.integers(0, 9)), **kwargs)
    masks = {"src_mask": KINDS[data.draw(st.sampled_from(sorted(KINDS)), "src_mask")](
                 data.draw(st.sampled_from([(s, s), (n * h, s, s)]))),
             "src_key_padding_mask": KINDS[data.draw(st.sampled_from(sorted(KINDS)), "padding")]((n, s))}
    torch_masks = None
    if data.draw(st.booleans(), "is_causal"):  # torch wants its causal mask beside the hint
        masks = {"src_key_padding_mask": masks["src_key_padding_mask"], "is_causal": True}
        torch_masks = {"src_mask": causal(s)}
    x = R.standard_normal((n, s, d) if batch_first else (s, n, d))
    compare(mine, theirs, [x], masks, torch_masks)


@settings(max_examples=12, deadline=None)
@given(st.data())
def test_decoder_layer_matches_torch(data):
    h = data.draw(st.integers(1, 2), "nhead")
    d, n = 2 * h, data.draw(st.integers(1, 3), "N")
    t, s = data.draw(st.integers(1, 4), "T"), data.draw(st.integers(1, 4), "S")
    batch_first = data.draw(st.booleans(), "batch_first")
    kwargs = dict(activation=data.draw(st.sampled_from(["relu", "gelu"]), "activation"), batch_first=batch_first,
                  norm_first=data.draw(st.booleans(), "norm_first"), bias=data.draw(st.booleans(), "bias"))
    mine, theirs = pair("TransformerDecoderLayer", d, h, 5, 0.0, seed=data.draw(st.integers(0, 9)), **kwargs)

    def draw_mask(name, shape):
        return KINDS[data.draw(st.sampled_from(sorted(KINDS)), name)](shape)

    masks = {"tgt_mask": draw_mask("tgt_mask", data.draw(st.sampled_from([(t, t), (n * h, t, t)]))),
             "memory_mask": draw_mask("memory_mask", data.draw(st.sampled_from([(t, s), (n * h, t, s)]))),
             "tgt_key_padding_mask": draw_mask("tgt padding", (n, t)),
             "memory_key_padding_mask": draw_mask("memory padding", (n, s))}
    torch_masks = None
    if data.draw(st.booleans(), "tgt_is_causal"):
        masks.update(tgt_mask=None, tgt_is_causal=True)
        torch_masks = {"tgt_mask": causal(t)}
    shape = (lambda length: (n, length, d)) if batch_first else (lambda length: (length, n, d))
    compare(mine, theirs, [R.standard_normal(shape(t)), R.standard_normal(shape(s))], masks, torch_masks)


def test_a_callable_activation_matches_torch():
    torch.manual_seed(1)
    theirs = torch.nn.TransformerEncoderLayer(4, 2, 6, 0.0, torch.nn.functional.silu, dtype=torch.float64)
    mine = nn.TransformerEncoderLayer(4, 2, 6, 0.0, F.silu).to(np.float64)
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    compare(mine, theirs, [R.standard_normal((3, 2, 4))], {"src_key_padding_mask": blocked((2, 3))})


@pytest.mark.parametrize("norm_first", [False, True])
def test_stacks_match_torch(norm_first):
    torch.manual_seed(2)
    layer_t = torch.nn.TransformerEncoderLayer(4, 2, 6, 0.0, "gelu", norm_first=norm_first, dtype=torch.float64)
    theirs = torch.nn.TransformerEncoder(layer_t, 2, torch.nn.LayerNorm(4, dtype=torch.float64),
                                         enable_nested_tensor=False)
    mine = nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, 6, 0.0, "gelu", norm_first=norm_first), 2,
                                 nn.LayerNorm(4)).to(np.float64)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    compare(mine, theirs, [R.standard_normal((5, 2, 4))], {"mask": additive((5, 5)),
                                                           "src_key_padding_mask": blocked((2, 5))})
    dec_t = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(4, 2, 6, 0.0, norm_first=norm_first,
                                                                         dtype=torch.float64), 2)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(4, 2, 6, 0.0, norm_first=norm_first), 2).to(np.float64)
    dec.load_state_dict({k: v.detach().numpy() for k, v in dec_t.state_dict().items()})
    compare(dec, dec_t, [R.standard_normal((3, 2, 4)), R.standard_normal((5, 2, 4))],
            {"tgt_mask": causal(3), "memory_key_padding_mask": blocked((2, 5)), "tgt_is_causal": True})


@pytest.mark.parametrize("batch_first, norm_first", [(False, False), (True, True)])
def test_transformer_matches_torch(batch_first, norm_first):
    mine, theirs = pair("Transformer", 4, 2, 2, 2, 6, 0.0, batch_first=batch_first, norm_first=norm_first)
    n, s, t = 2, 5, 3
    src = R.standard_normal((n, s, 4) if batch_first else (s, n, 4))
    tgt = R.standard_normal((n, t, 4) if batch_first else (t, n, 4))
    float_causal = torch.nn.Transformer.generate_square_subsequent_mask(t, dtype=torch.float64).numpy()
    np.testing.assert_array_equal(nn.Transformer.generate_square_subsequent_mask(t, dtype=np.float64).numpy(),
                                  float_causal)
    masks = {"src_mask": additive((s, s)), "tgt_mask": float_causal, "memory_mask": blocked((n * 2, t, s)),
             "src_key_padding_mask": blocked((n, s)), "tgt_key_padding_mask": blocked((n, t)),
             "memory_key_padding_mask": blocked((n, s))}
    compare(mine, theirs, [src, tgt], masks)


def test_default_initialization_is_torchs_kind():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mine, theirs = nn.Transformer(8, 2, 1, 1, 16), torch.nn.Transformer(8, 2, 1, 1, 16)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    for (name, a), b in zip(mine.named_parameters(), theirs.parameters()):
        a, b = a.numpy(), b.detach().numpy()
        assert a.shape == b.shape, name
        if a.ndim > 1:  # Xavier-uniform: the same bound
            bound = np.sqrt(6 / (a.shape[0] + a.shape[1]))
            assert np.abs(a).max() <= bound and np.abs(b).max() <= bound, name
        else:
            np.testing.assert_array_equal(a == 0, b == 0, err_msg=name)  # zero biases, unit norms
