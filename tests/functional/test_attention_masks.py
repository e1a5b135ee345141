"""scaled_dot_product_attention with PyTorch's `attn_mask=` (boolean or additive float, learnable) and
`scale=`: forward against a NumPy reference, gradients and second derivatives against finite
differences (float64, hypothesis shapes, broadcasting masks), dtypes, and PyTorch parity."""
import math

import numpy as np
import pytest
from hypothesis import strategies as st

import minitf as mt
import minitf.functional as F
from minitf.testing import OpCase, OpTest, broadcastable_shapes, float_arrays, masks

KINDS = ("bool", "float", "float_grad")  # the mask: boolean, constant float (with -inf), float Tensor


def ref_attention(q, k, v, mask=None, scale=None, is_causal=False):
    """Row by row in float64: scores * scale + the float mask over allowed keys; no key: zeros."""
    lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    lq, lk = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    bias = np.zeros(lead + (lq, lk))
    if mask is not None:
        bias = bias + np.where(mask, 0.0, -np.inf) if mask.dtype == bool else bias + mask
    if is_causal:
        bias = bias + np.where(np.arange(lk)[None, :] <= np.arange(lq)[:, None], 0.0, -np.inf)
    lead = bias.shape[:-2]
    q, k, v = (np.broadcast_to(a, lead + a.shape[-2:]) for a in (q, k, v))
    out = np.zeros(lead + (lq, v.shape[-1]))
    for idx in np.ndindex(*lead):
        for i in range(lq):
            keys = np.flatnonzero(np.isfinite(bias[idx][i]))
            if keys.size:
                scores = k[idx][keys] @ q[idx][i] * scale + bias[idx][i][keys]
                w = np.exp(scores - scores.max())
                out[idx][i] = (w / w.sum()) @ v[idx][keys]
    return out


def torch_mask(torch, mask, is_causal, lq, lk):
    """The mask PyTorch takes for ours (it refuses attn_mask with is_causal: causality folded in)."""
    if not is_causal:
        return mask
    causal = torch.ones(lq, lk, dtype=torch.bool).tril()
    if mask is None:
        return causal
    return mask & causal if mask.dtype == torch.bool else mask.masked_fill(~causal, -math.inf)


@st.composite
def masked_attention_cases(draw, kinds=KINDS, every_row=False):
    """q, k, v with broadcasting leading axes, a mask of a shape broadcasting to the scores', of a
    drawn kind, and scale None or a number. every_row (for PyTorch): each query may attend key 0, and
    the mask broadcasts to q k^T (PyTorch adds it in place, so it may not broaden that shape)."""
    lead_q, lead_k, lead_v = draw(broadcastable_shapes(3, max_dims=2, max_side=3))
    lq, lk, d, dv = (draw(st.integers(1, n)) for n in (4, 4, 3, 3))
    q, k, v = (draw(float_arrays(s)) for s in (lead_q + (lq, d), lead_k + (lk, d), lead_v + (lk, dv)))
    scores_shape = np.broadcast_shapes(lead_q, lead_k, *(() if every_row else (lead_v,))) + (lq, lk)
    kept_axes = scores_shape[len(scores_shape) - draw(st.integers(0, len(scores_shape))):]
    mask_shape = tuple(draw(st.sampled_from([1, n])) for n in kept_axes)
    kind = draw(st.sampled_from(kinds))
    allowed = draw(masks(mask_shape))
    if every_row and allowed.ndim:
        allowed[..., 0] = True
    elif every_row:
        allowed = np.asarray(True)
    mask = allowed
    if kind != "bool":
        mask = draw(float_arrays(mask_shape))
        if kind == "float":  # -inf where not allowed (a constant mask)
            mask = np.where(allowed, mask, -np.inf)
    scale = draw(st.one_of(st.none(), st.floats(0.1, 2.0)))
    is_causal = kind != "float_grad" and draw(st.booleans())  # with mask=: both apply

    def ours(q, k, v, *rest):
        m = rest[0] if rest and rest[0] is not None else None
        return F.scaled_dot_product_attention(q, k, v, mask=m, is_causal=is_causal, scale=scale)

    def theirs(q, k, v, m):
        import torch
        m = torch_mask(torch, m.to(q.dtype) if m.is_floating_point() else m, is_causal, lq, lk)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale)

    floats, aux = ((q, k, v, mask), ()) if kind == "float_grad" else ((q, k, v), (mask,))
    return OpCase(ours, floats, lambda q, k, v, m: ref_attention(q, k, v, m, scale, is_causal), aux, torch=theirs)


MASKED = OpTest("attention_masks", masked_attention_cases(),
                checks=("forward", "gradient", "gradgrad", "float32", "float64"),
                examples={"forward": 20, "gradient": 15, "gradgrad": 10, "float32": 10, "float64": 10},
                options={"float32": {"float32_tol": 1e-3}})
TORCH = OpTest("attention_masks_torch", masked_attention_cases(every_row=True), checks=("torch",),
               examples={"torch": 15})


@pytest.mark.parametrize("check", MASKED.checks)
def test_attention_with_masks_and_scale(check):
    MASKED.check(check)


def test_attention_with_masks_and_scale_matches_torch_double_backward_included():
    TORCH.check("torch")


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


Q, K, V = rand(2, 3, 4), rand(2, 5, 4, seed=1), rand(2, 5, 2, seed=2)


def test_attn_mask_is_the_mask_and_a_float_mask_of_zeros_and_minus_inf_is_the_boolean_mask():
    allowed = rand(3, 5, seed=3) > 0
    allowed[1] = False
    q, k, v = (mt.tensor(a) for a in (Q, K, V))
    boolean = F.scaled_dot_product_attention(q, k, v, mask=allowed).numpy()
    np.testing.assert_array_equal(F.scaled_dot_product_attention(q, k, v, attn_mask=allowed).numpy(), boolean)
    additive = np.where(allowed, 0.0, -np.inf)
    np.testing.assert_array_equal(F.scaled_dot_product_attention(q, k, v, attn_mask=additive).numpy(), boolean)
    np.testing.assert_array_equal(boolean[:, 1], 0.0)  # a row with no allowed key


def test_default_scale_is_one_over_sqrt_e_and_scale_changes_it():
    q, k, v = (mt.tensor(a) for a in (Q, K, V))
    default = F.scaled_dot_product_attention(q, k, v).numpy()
    np.testing.assert_array_equal(F.scaled_dot_product_attention(q, k, v, scale=0.5).numpy(), default)
    np.testing.assert_allclose(F.scaled_dot_product_attention(q, k, v, scale=0.3).numpy(),
                               ref_attention(Q, K, V, scale=0.3), rtol=1e-12)
    assert not np.allclose(F.scaled_dot_product_attention(q, k, v, scale=0.3).numpy(), default)


def test_a_learned_float_mask_gets_its_gradient_summed_over_broadcast_axes():
    bias = mt.tensor(rand(1, 5, seed=4).astype(np.float32), requires_grad=True)  # its own dtype
    q = mt.tensor(Q, requires_grad=True)
    out = F.scaled_dot_product_attention(q, mt.tensor(K), mt.tensor(V), attn_mask=bias)
    out.backward(mt.tensor(rand(*out.shape, seed=5)))
    assert bias.grad.shape == (1, 5) and bias.grad.dtype == np.float32 and np.abs(bias.grad).sum() > 0
    mt.gradcheck(lambda q, b: F.scaled_dot_product_attention(q, mt.tensor(K), mt.tensor(V), attn_mask=b),
                 [mt.tensor(Q, requires_grad=True), mt.tensor(rand(1, 5, seed=4), requires_grad=True)])


def test_dropout_passed_in_torchs_position_is_refused_not_taken_for_is_causal():
    q, k, v = (mt.tensor(a) for a in (Q, K, V))
    with pytest.raises(TypeError, match="is_causal must be a bool, got 0.1"):
        F.scaled_dot_product_attention(q, k, v, None, 0.1)  # torch's order: (q, k, v, attn_mask, dropout_p)


def test_attention_with_attn_mask_and_is_causal_is_refused_as_in_torch():
    q, k, v = (mt.tensor(a) for a in (Q, K, V))
    with pytest.raises(ValueError, match="attn_mask and is_causal=True"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5), dtype=bool), is_causal=True)
    combined = F.scaled_dot_product_attention(q, k, v, mask=np.ones((3, 5), dtype=bool), is_causal=True)
    np.testing.assert_array_equal(combined.numpy(), F.scaled_dot_product_attention(q, k, v, is_causal=True).numpy())
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="attn_mask"):
        torch.nn.functional.scaled_dot_product_attention(*(torch.tensor(a) for a in (Q, K, V)),
                                                         attn_mask=torch.ones(3, 5, dtype=torch.bool), is_causal=True)
