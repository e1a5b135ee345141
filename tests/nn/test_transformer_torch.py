"""minitf.nn.Seq2SeqTransformer and minitf.optim against PyTorch with identical weights.

Skipped without torch. The weight mapping and the torch-side model (embedding scaled by
sqrt(d_model), the same sinusoidal positions, output tied to the embedding) live in
examples/torch_parity.py, which prints the same comparison.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from minitf.nn import Parameter, TransformerConfig  # noqa: E402
from minitf.optim import Adam, AdamW, clip_grad_norm  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "torch_parity", Path(__file__).resolve().parents[2] / "examples" / "torch_parity.py")
parity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parity)

TOLERANCE = {"float64": 1e-10, "float32": 2e-5}


def config(norm_first: bool, activation: str = "relu") -> TransformerConfig:
    return TransformerConfig(23, 23, d_model=16, n_heads=4, n_encoder_layers=2, n_decoder_layers=2, d_ff=32,
                             dropout=0.0, activation=activation, norm_first=norm_first, max_len=16)


def test_name_mapping():
    assert parity.torch_name("decoder_layers.1.cross_attn.out_proj_weight") == \
        "transformer.decoder.layers.1.multihead_attn.out_proj.weight"
    assert parity.torch_name("encoder_layers.0.self_attn.in_proj_bias") == \
        "transformer.encoder.layers.0.self_attn.in_proj_bias"
    assert parity.torch_name("encoder_layers.0.ff.linear2.bias") == \
        "transformer.encoder.layers.0.linear2.bias"
    assert parity.torch_name("decoder_layers.0.norm3.weight") == "transformer.decoder.layers.0.norm3.weight"
    assert parity.torch_name("encoder_norm.bias") == "transformer.encoder.norm.bias"
    assert parity.torch_name("decoder_norm.weight") == "transformer.decoder.norm.weight"
    # every torch parameter is filled from exactly one minitf parameter
    ours, theirs = parity.build_pair(config(False))
    assert sorted(parity.torch_name(n) for n, _ in ours.named_parameters()) == \
        sorted(n for n, _ in theirs.named_parameters())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "relu"), (False, "gelu")],
                         ids=["post-norm", "pre-norm", "post-norm-gelu"])
def test_same_logits_loss_and_gradients(norm_first, activation, dtype):
    c = config(norm_first, activation)
    result = parity.compare(c, dtype, label_smoothing=0.1)
    atol = TOLERANCE[dtype]
    ours, theirs = result["logits"]
    assert ours.shape == theirs.shape == (3, 6, 23)
    assert np.abs(ours).max() > 1  # not a degenerate output
    np.testing.assert_allclose(ours, theirs, atol=atol * 10, rtol=atol)
    loss, t_loss = result["loss"]
    assert loss == pytest.approx(t_loss, rel=atol, abs=atol)
    assert loss > 1.0
    grads = result["grads"]
    for name in ("tgt_embed.weight", "encoder_layers.0.self_attn.in_proj_weight",
                 "decoder_layers.1.cross_attn.in_proj_bias", "decoder_layers.0.ff.linear1.weight",
                 "encoder_norm.weight", "decoder_norm.bias"):
        ours_g, theirs_g = grads[name]
        assert np.abs(theirs_g).max() > 1e-4, name
    for name, (ours_g, theirs_g) in grads.items():
        np.testing.assert_allclose(ours_g, theirs_g, atol=atol, rtol=atol * 100, err_msg=name)


def test_unpadded_and_padded_rows_both_checked():
    """The batch has padding in the source (masked keys) and in the target (ignored labels)."""
    c = config(False)
    src, tgt_in, tgt_out, src_mask = parity.example_batch(c)
    assert (~src_mask).any(axis=1).tolist() == [False, True, True]
    assert (tgt_out == c.pad_id).any() and (tgt_out != c.pad_id).sum() > 10


# ---- optimizers against torch.optim ---------------------------------------------------------------

def gradient(p: np.ndarray, t: int, i: int) -> np.ndarray:
    return np.cos(p) + 0.3 * np.random.default_rng(10 * t + i).standard_normal(p.shape)


@pytest.mark.parametrize("ours_cls,torch_name,weight_decay",
                         [(Adam, "Adam", 0.0), (Adam, "Adam", 0.1), (AdamW, "AdamW", 0.0),
                          (AdamW, "AdamW", 0.1)])
def test_optimizer_matches_torch(ours_cls, torch_name, weight_decay):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(s) for s in ((4, 3), (7,))]
    ours = [Parameter(a.copy()) for a in start]
    theirs = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in start]
    settings = dict(lr=0.02, betas=(0.9, 0.98), eps=1e-9, weight_decay=weight_decay)
    opt = ours_cls(ours, **settings)
    t_opt = getattr(torch.optim, torch_name)(theirs, **settings)
    for t in range(1, 11):
        for i, (p, q) in enumerate(zip(ours, theirs)):
            p.grad = gradient(p.numpy(), t, i)
            q.grad = torch.from_numpy(gradient(q.detach().numpy(), t, i))
        norm = clip_grad_norm(ours, 1.5)
        t_norm = torch.nn.utils.clip_grad_norm_(theirs, 1.5)
        assert norm == pytest.approx(float(t_norm), rel=1e-12)
        opt.step()
        t_opt.step()
    for p, q, s in zip(ours, theirs, start):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-10, atol=1e-12)
        assert np.abs(p.numpy() - s).max() > 0.05


def test_clip_matches_torch_when_not_clipping():
    p = Parameter(np.array([0.3, -0.4]))
    p.grad = np.array([0.3, -0.4])
    q = torch.nn.Parameter(torch.tensor([0.3, -0.4], dtype=torch.float64))
    q.grad = torch.tensor([0.3, -0.4], dtype=torch.float64)
    assert clip_grad_norm([p], 1.0) == pytest.approx(float(torch.nn.utils.clip_grad_norm_([q], 1.0)))
    np.testing.assert_array_equal(p.grad, q.grad.numpy())
    assert math.isclose(float(np.linalg.norm(p.grad)), 0.5)


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")], ids=["post-norm", "pre-norm-gelu"])
def test_hessian_vector_product_of_the_loss_matches_torch(norm_first, activation):
    """Second order on the whole model: H v of the label-smoothed loss with respect to every weight, float64."""
    import minitf.functional as F
    from minitf.autograd import grad
    from torch.nn.attention import SDPBackend, sdpa_kernel

    c = config(norm_first, activation)
    ours, theirs = parity.build_pair(c, "float64")
    src, tgt_in, tgt_out, src_mask = parity.example_batch(c)
    names = [n for n, _ in ours.named_parameters()]
    params = [p for _, p in ours.named_parameters()]
    rng = np.random.default_rng(5)
    directions = [rng.standard_normal(p.shape) for p in params]
    loss = F.cross_entropy(ours(src, tgt_in, src_mask), tgt_out, ignore_index=c.pad_id, label_smoothing=0.1)
    grads = grad(loss, params, create_graph=True)
    hv = grad(sum((g * v).sum() for g, v in zip(grads, directions)), params, allow_unused=True)

    t_params = dict(theirs.named_parameters())
    t_list = [t_params[parity.torch_name(n)] for n in names]
    with sdpa_kernel(SDPBackend.MATH):  # torch's fused CPU attention has no double backward
        t_logits = theirs(torch.from_numpy(src), torch.from_numpy(tgt_in), torch.from_numpy(src_mask))
        t_loss = torch.nn.functional.cross_entropy(t_logits.reshape(-1, c.tgt_vocab_size),
                                                   torch.from_numpy(tgt_out).reshape(-1), ignore_index=c.pad_id,
                                                   label_smoothing=0.1)
        t_grads = torch.autograd.grad(t_loss, t_list, create_graph=True)
        t_hv = torch.autograd.grad(sum((g * torch.from_numpy(v)).sum() for g, v in zip(t_grads, directions)),
                                   t_list, allow_unused=True)
    checked = 0
    for name, mine, theirs_hv in zip(names, hv, t_hv):
        expected = np.zeros(mine.shape) if theirs_hv is None else theirs_hv.numpy()
        got = np.zeros(expected.shape) if mine is None else mine.numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9, err_msg=name)
        checked += np.abs(expected).max() > 1e-6
    assert checked > len(names) // 2  # most weights have a non-trivial H v
