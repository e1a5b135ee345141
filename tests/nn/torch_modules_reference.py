"""NumPy float64 references of PyTorch's attention and Transformer layers, computed from the
parameters of minitf's modules (batch-major (N, L, E) arrays), for the tests of nn.MultiheadAttention
and nn.Transformer* that run without PyTorch."""
from __future__ import annotations

import numpy as np


def softmax_rows(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def attention(mha, query, key, value, attn_mask=None, key_padding_mask=None, is_causal=False):
    """(attn_output, weights (N, H, L, S)) in plain NumPy, batch-major (N, L, E) inputs."""
    e, h = mha.embed_dim, mha.num_heads
    d = e // h
    if mha._qkv_same_embed_dim:
        w = mha.in_proj_weight.numpy()
        wq, wk, wv = w[:e], w[e:2 * e], w[2 * e:]
    else:
        wq, wk, wv = (p.numpy() for p in (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight))
    b = mha.in_proj_bias.numpy() if mha.in_proj_bias is not None else np.zeros(3 * e)
    n, length, s = query.shape[0], query.shape[1], key.shape[1]

    def heads(x, w, bias):
        return (x @ w.T + bias).reshape(x.shape[0], x.shape[1], h, d).transpose(0, 2, 1, 3)

    q, k, v = heads(query, wq, b[:e]), heads(key, wk, b[e:2 * e]), heads(value, wv, b[2 * e:])
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
    add = np.zeros((n, h, length, s))
    attn = None if attn_mask is None else attn_mask.reshape(-1, h, length, s) if attn_mask.ndim == 3 else attn_mask
    padding = None if key_padding_mask is None else key_padding_mask[:, None, None, :]
    for m in (attn, padding):
        if m is not None:
            add = add + (np.where(m, -np.inf, 0.0) if m.dtype == bool else m)
    if is_causal:
        add = add + np.where(np.triu(np.ones((length, s), bool), 1), -np.inf, 0.0)
    weights = softmax_rows(scores + add)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(n, length, e)
    w_out = mha.out_proj.weight.numpy()
    b_out = mha.out_proj.bias.numpy() if mha.out_proj.bias is not None else 0
    return out @ w_out.T + b_out, weights


def layer_norm(x, norm):
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + norm.eps) * norm.weight.numpy()
    return y + norm.bias.numpy() if norm.bias is not None else y


def linear(x, layer):
    return x @ layer.weight.numpy().T + (layer.bias.numpy() if layer.bias is not None else 0)


def feed_forward(x, layer, activation):
    return linear(activation(linear(x, layer.linear1)), layer.linear2)


def residual(x, block, norm, norm_first):
    return x + block(layer_norm(x, norm)) if norm_first else layer_norm(x + block(x), norm)


def encoder_layer(layer, x, activation, src_mask=None, padding=None, is_causal=False):
    """TransformerEncoderLayer's equations (dropout off) on (N, S, E) x."""
    def attend(h):
        return attention(layer.self_attn, h, h, h, src_mask, padding, is_causal)[0]

    x = residual(x, attend, layer.norm1, layer.norm_first)
    return residual(x, lambda h: feed_forward(h, layer, activation), layer.norm2, layer.norm_first)


def decoder_layer(layer, y, memory, activation, masks):
    """TransformerDecoderLayer's equations (dropout off) on (N, T, E) y and (N, S, E) memory; masks: a dict
    of tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask, tgt_is_causal."""
    def attend(h):
        return attention(layer.self_attn, h, h, h, masks.get("tgt_mask"), masks.get("tgt_key_padding_mask"),
                         masks.get("tgt_is_causal", False))[0]

    def cross(h):
        return attention(layer.multihead_attn, h, memory, memory, masks.get("memory_mask"),
                         masks.get("memory_key_padding_mask"))[0]

    y = residual(y, attend, layer.norm1, layer.norm_first)
    y = residual(y, cross, layer.norm2, layer.norm_first)
    return residual(y, lambda h: feed_forward(h, layer, activation), layer.norm3, layer.norm_first)


def mask_makers(rng):
    """(blocked, additive, kinds) drawing from `rng`: boolean masks (True = not allowed) and additive float
    masks (-inf in places) of a shape, key 0 always open so that no query row is left without a key (PyTorch
    gives NaN there); kinds maps "none", "bool", "float" to a maker."""
    def blocked(shape):
        m = rng.random(shape) < 0.4
        m[..., 0] = False
        return m

    def additive(shape):
        m = rng.standard_normal(shape)
        m[rng.random(shape) < 0.3] = -np.inf
        m[..., 0] = 0.25
        return m
    return blocked, additive, {"none": lambda shape: None, "bool": blocked, "float": additive}
