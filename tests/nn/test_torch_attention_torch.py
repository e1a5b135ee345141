"""nn.MultiheadAttention against torch.nn.MultiheadAttention in float64: a torch state dict (random weights
and biases) loads under the same keys and gives the same outputs, weights and gradients (inputs and
parameters) for self/cross attention, kdim/vdim, masks of every kind, need_weights with and without
averaging, batch_first, is_causal and unbatched inputs. Skipped without PyTorch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minitf as mt
from minitf import nn
from torch_modules_reference import mask_makers

torch = pytest.importorskip("torch")
R = np.random.default_rng(2121)


def randomized(module, seed):
    """Every torch parameter random (torch zeroes the biases, which would hide their gradients)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return module


def load_into(mine, theirs):
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return mine


def mha_pair(embed_dim, num_heads, seed=0, **kwargs):
    theirs = randomized(torch.nn.MultiheadAttention(embed_dim, num_heads, dtype=torch.float64, **kwargs), seed)
    return load_into(nn.MultiheadAttention(embed_dim, num_heads, **kwargs).to(np.float64), theirs), theirs


blocked, additive, KINDS = mask_makers(R)


def as_torch(mask):
    return None if mask is None else torch.from_numpy(mask)


def compare(mine, theirs, inputs, cotangents=None, **kwargs):
    """Run both on the same inputs and masks (NumPy), compare outputs, weights and every gradient."""
    xs = [mt.tensor(x, requires_grad=True) for x in inputs]
    ts = [torch.tensor(x, requires_grad=True) for x in inputs]
    masks = {k: kwargs.pop(k) for k in ("attn_mask", "key_padding_mask") if k in kwargs}
    torch_masks = dict(masks, **kwargs.pop("torch_masks", {}))
    out = mine(*xs, **masks, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "mismatched key_padding_mask and attn_mask is deprecated"
        out_t = theirs(*ts, **{k: as_torch(v) for k, v in torch_masks.items()}, **kwargs)
    loss, loss_t = 0, 0
    for a, b in zip(out, out_t):
        assert (a is None) == (b is None)
        if a is None:
            continue
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = R.standard_normal(a.shape)
        loss, loss_t = loss + (a * mt.tensor(g)).sum(), loss_t + (b * torch.from_numpy(g)).sum()
    loss.backward()
    loss_t.backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(np.asarray(x.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    grads = {k: p.grad.numpy() for k, p in theirs.named_parameters()}
    for name, p in mine.named_parameters():
        np.testing.assert_allclose(np.asarray(p.grad), grads[name], rtol=1e-10, atol=1e-12, err_msg=name)


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_matches_torch(data):
    h = data.draw(st.integers(1, 3), "heads")
    e = h * data.draw(st.integers(1, 2), "head_dim")
    n, length, s = (data.draw(st.integers(1, 3), name) for name in ("N", "L", "S"))
    cross = data.draw(st.booleans(), "cross")
    kdim, vdim = (data.draw(st.sampled_from([None, 3]), name) if cross else None for name in ("kdim", "vdim"))
    batch_first = data.draw(st.booleans(), "batch_first")
    bias = data.draw(st.booleans(), "bias")
    mine, theirs = mha_pair(e, h, seed=data.draw(st.integers(0, 99)), kdim=kdim, vdim=vdim,
                            batch_first=batch_first, bias=bias)
    s = s if cross else length
    kinds = {"none": lambda shape: None, "bool": blocked, "float": additive}
    attn_shape = data.draw(st.sampled_from([(length, s), (n * h, length, s)]), "attn shape")
    attn_mask = kinds[data.draw(st.sampled_from(sorted(kinds)), "attn_mask")](attn_shape)
    kpm = kinds[data.draw(st.sampled_from(sorted(kinds)), "key_padding_mask")]((n, s))

    def shaped(lead, dim):
        return R.standard_normal((n, lead, dim) if batch_first else (lead, n, dim))

    query = shaped(length, e)
    inputs = [query, query, query] if not cross else [query, shaped(s, mine.kdim), shaped(s, mine.vdim)]
    compare(mine, theirs, inputs, attn_mask=attn_mask, key_padding_mask=kpm,
            need_weights=data.draw(st.booleans(), "need_weights"),
            average_attn_weights=data.draw(st.booleans(), "average"))


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("with_padding", [True, False])
def test_is_causal_matches_torch_given_its_causal_mask(need_weights, with_padding):
    mine, theirs = mha_pair(6, 2, batch_first=True)
    x = R.standard_normal((2, 4, 6))
    causal = np.triu(np.ones((4, 4), bool), 1)
    kpm = blocked((2, 4)) if with_padding else None
    # torch needs the mask beside its is_causal hint; minitf makes it from is_causal alone (or both given)
    compare(mine, theirs, [x, x, x], key_padding_mask=kpm, need_weights=need_weights, is_causal=True,
            torch_masks={"attn_mask": causal})
    mine.zero_grad()
    theirs.zero_grad()
    compare(mine, theirs, [x, x, x], attn_mask=causal, key_padding_mask=kpm, need_weights=need_weights,
            is_causal=True)


@pytest.mark.parametrize("need_weights", [True, False])
def test_unbatched_matches_torch(need_weights):
    mine, theirs = mha_pair(4, 2, kdim=3, vdim=5)
    inputs = [R.standard_normal((3, 4)), R.standard_normal((2, 3)), R.standard_normal((2, 5))]
    compare(mine, theirs, inputs, attn_mask=additive((2, 3, 2)), key_padding_mask=blocked((2,)),
            need_weights=need_weights, average_attn_weights=False)


def test_default_initialization_has_torchs_distribution_and_keys():
    mine, theirs = nn.MultiheadAttention(8, 2), torch.nn.MultiheadAttention(8, 2)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    bound = np.sqrt(6 / (8 + 24))  # Xavier-uniform over the (3E, E) in_proj_weight, as torch's
    assert np.abs(mine.in_proj_weight.numpy()).max() <= bound
    assert np.abs(theirs.in_proj_weight.detach().numpy()).max() <= bound
    theirs.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in mine.state_dict().items()})


@pytest.mark.parametrize("need_weights", [True, False])
def test_a_learned_float_mask_gets_torchs_gradient(need_weights):
    """A float attn_mask / key_padding_mask that requires grad (a position bias) is differentiated."""
    theirs = torch.nn.MultiheadAttention(4, 2, dtype=torch.float64)
    mine = nn.MultiheadAttention(4, 2).to(np.float64)
    mine.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(4)
    q, bias, padding = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 3)), rng.standard_normal((2, 3))
    b, kp = mt.tensor(bias, requires_grad=True), mt.tensor(padding, requires_grad=True)
    tb, tk = torch.tensor(bias, requires_grad=True), torch.tensor(padding, requires_grad=True)
    cot = rng.standard_normal((3, 2, 4))
    out = mine(mt.tensor(q), mt.tensor(q), mt.tensor(q), attn_mask=b, key_padding_mask=kp, need_weights=need_weights)[0]
    (out * mt.tensor(cot)).sum().backward()
    tq = torch.tensor(q)
    out_t = theirs(tq, tq, tq, attn_mask=tb, key_padding_mask=tk, need_weights=need_weights)[0]
    (out_t * torch.tensor(cot)).sum().backward()
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(kp.grad, tk.grad.numpy(), rtol=1e-9, atol=1e-12)
