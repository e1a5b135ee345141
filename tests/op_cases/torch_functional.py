"""minitf.functional against torch.nn.functional: forward and gradients, in float64.

Fixed cases for the generic "torch" check (tests/functional/test_op_properties.py, skipped when PyTorch
is not installed). Each case gives the float inputs (their gradients are compared after a
backward pass with the same random cotangent), the minitf call and the PyTorch call; integer
ids, targets and masks are closed over.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

import minitf.functional as F
from minitf import Tensor
from minitf.testing import OpCase, op_tests

tF = torch.nn.functional


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def ints(high, *shape, seed=0):
    return np.random.default_rng(seed).integers(0, high, shape)


def parity(floats: tuple[np.ndarray, ...], ours: Callable[..., Tensor], theirs: Callable[..., Any]) -> OpCase:
    """A fixed case checked against PyTorch: the float inputs, the minitf call and the PyTorch call."""
    return OpCase(ours, floats, torch=theirs)


def _ffn(activation):
    def theirs(x, w1, b1, w2, b2):
        h = tF.linear(x, w1, b1)
        return tF.linear(tF.relu(h) if activation == "relu" else tF.gelu(h), w2, b2)
    return parity((rand(2, 3, 4), rand(5, 4, seed=1), rand(5, seed=2), rand(3, 5, seed=3), rand(3, seed=4)),
                  lambda *t: F.feed_forward(*t, activation=activation), theirs)


def _cross_entropy(shape, flatten, **options):
    """`flatten`: torch sees (N, C) logits; otherwise classes are moved to axis 1 for torch."""
    targets = ints(shape[-1], *shape[:-1], seed=5)
    targets.flat[::3] = options.get("ignore_index", -100)
    to_torch = torch.tensor(targets)

    def theirs(x):
        if flatten:
            out = tF.cross_entropy(x.reshape(-1, shape[-1]), to_torch.reshape(-1), **options)
            return out.reshape(shape[:-1]) if options.get("reduction") == "none" else out
        return tF.cross_entropy(x.movedim(-1, 1), to_torch, **options)

    return parity((rand(*shape),), lambda x: F.cross_entropy(x, targets, **options), theirs)


def _attention(q_shape, k_shape, v_shape, mask_shape=None, is_causal=False):
    mask = None if mask_shape is None else np.random.default_rng(6).random(mask_shape) < 0.7
    if mask is not None:
        mask[..., 0] = True  # PyTorch's older kernels give NaN on rows with no allowed key

    def theirs(q, k, v):
        return tF.scaled_dot_product_attention(
            q, k, v, attn_mask=None if mask is None else torch.tensor(mask), is_causal=is_causal)

    return parity((rand(*q_shape), rand(*k_shape, seed=1), rand(*v_shape, seed=2)),
                  lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=is_causal),
                  theirs)


def _nll(shape, **options):
    """Class log-probabilities on axis 1 (axis 0 when 1-D), as torch; a third of targets ignored."""
    targets = ints(shape[1], *(shape[:1] + shape[2:]), seed=5) if len(shape) > 1 else ints(shape[0], seed=5)
    if targets.ndim:
        targets.flat[::3] = options.get("ignore_index", -100)
    return parity((rand(*shape),), lambda x: F.nll_loss(x, targets, **options),
                  lambda x: tF.nll_loss(x, torch.tensor(targets),
                                        **{k: torch.tensor(v) if k == "weight" else v for k, v in options.items()}))


def _pointwise_loss(name, shapes=((3, 4), (3, 4)), **options):
    """A loss of (input, target), both differentiated; `name` is the same in both libraries."""
    return parity(tuple(rand(*s, seed=i) for i, s in enumerate(shapes)),
                  lambda x, t: getattr(F, name)(x, t, **options), lambda x, t: getattr(tF, name)(x, t, **options))


def _bce(logits, reduction="mean", weight=None, pos_weight=None):
    """Probabilities in (0.05, 0.95) (or logits), targets in [0, 1]; constant weights as numpy/torch."""
    x = rand(3, 4) if logits else 0.05 + 0.9 * np.random.default_rng(0).random((3, 4))
    target = np.random.default_rng(1).random((3, 4))
    options = {"weight": weight, "reduction": reduction}
    if logits:
        options["pos_weight"] = pos_weight
    ours = F.binary_cross_entropy_with_logits if logits else F.binary_cross_entropy
    theirs = tF.binary_cross_entropy_with_logits if logits else tF.binary_cross_entropy
    return parity((x, target), lambda x, t: ours(x, t, **options),
                  lambda x, t: theirs(x, t, **{k: v if v is None or isinstance(v, str) else torch.tensor(v)
                                              for k, v in options.items()}))


def _kl(log_target, reduction):
    target = rand(3, 4, seed=1) if log_target else np.random.default_rng(1).random((3, 4)) + 0.1
    return parity((rand(3, 4), target), lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target),
                  lambda x, t: tF.kl_div(x, t, reduction=reduction, log_target=log_target))


IDS = ints(5, 3, 4, seed=7)  # 12 ids from 5 rows: repeats
IDS[0, :2] = 2

CASES = {
    "relu": parity((rand(3, 4),), F.relu, tF.relu),
    "gelu": parity((rand(3, 4, 5),), F.gelu, tF.gelu),
    "gelu_tanh": parity((rand(3, 4, 5),), lambda x: F.gelu(x, approximate="tanh"),
                        lambda x: tF.gelu(x, approximate="tanh")),
    "softmax_last": parity((rand(3, 4, 5),), F.softmax, lambda x: tF.softmax(x, dim=-1)),
    "softmax_first": parity((rand(3, 4, 5),), lambda x: F.softmax(x, axis=0), lambda x: tF.softmax(x, dim=0)),
    "log_softmax_last": parity((rand(3, 4, 5),), F.log_softmax, lambda x: tF.log_softmax(x, dim=-1)),
    "log_softmax_middle": parity((rand(3, 4, 5),), lambda x: F.log_softmax(x, axis=-2),
                                 lambda x: tF.log_softmax(x, dim=1)),
    "layer_norm_affine": parity((rand(2, 3, 6), rand(6, seed=1), rand(6, seed=2)), F.layer_norm,
                                lambda x, w, b: tF.layer_norm(x, (6,), w, b, eps=1e-5)),
    "layer_norm_plain": parity((rand(2, 3, 6),), F.layer_norm, lambda x: tF.layer_norm(x, (6,), eps=1e-5)),
    "linear_bias": parity((rand(2, 3, 4), rand(5, 4, seed=1), rand(5, seed=2)), F.linear, tF.linear),
    "linear_no_bias": parity((rand(7, 4), rand(5, 4, seed=1)), F.linear, tF.linear),
    "feed_forward_relu": _ffn("relu"),
    "feed_forward_gelu": _ffn("gelu"),
    "embedding": parity((rand(5, 3),), lambda w: F.embedding(IDS, w),
                        lambda w: tF.embedding(torch.tensor(IDS), w)),
    "embedding_padding": parity((rand(5, 3),), lambda w: F.embedding(IDS, w, padding_idx=2),
                                lambda w: tF.embedding(torch.tensor(IDS), w, padding_idx=2)),
    **{f"cross_entropy_2d_{reduction}": _cross_entropy((6, 4), True, reduction=reduction,
                                                       label_smoothing=0.1)
       for reduction in ("mean", "sum", "none")},
    "cross_entropy_2d_ignore_class": _cross_entropy((6, 4), True, ignore_index=0, label_smoothing=0.2),
    "cross_entropy_3d_flattened": _cross_entropy((2, 5, 4), True, ignore_index=3, label_smoothing=0.3),
    "cross_entropy_3d_flattened_none": _cross_entropy((2, 5, 4), True, label_smoothing=0.3,
                                                      reduction="none"),
    "cross_entropy_3d_classes_axis1": _cross_entropy((2, 5, 4), False, ignore_index=1,
                                                     label_smoothing=0.15),
    "silu": parity((rand(3, 4),), F.silu, tF.silu),
    "softplus": parity((3 * rand(3, 4),), F.softplus, tF.softplus),
    "softplus_beta_threshold": parity((3 * rand(3, 4),), lambda x: F.softplus(x, beta=2.0, threshold=3.0),
                                      lambda x: tF.softplus(x, beta=2.0, threshold=3.0)),
    "leaky_relu": parity((np.r_[rand(11), 0.0],), lambda x: F.leaky_relu(x, 0.2), lambda x: tF.leaky_relu(x, 0.2)),
    "elu": parity((np.r_[rand(11), 0.0],), lambda x: F.elu(x, alpha=0.7), lambda x: tF.elu(x, alpha=0.7)),
    "sigmoid": parity((rand(3, 4),), F.sigmoid, torch.sigmoid),
    "tanh": parity((rand(3, 4),), F.tanh, torch.tanh),
    "log_sigmoid": parity((np.r_[rand(10), -1000.0, 1000.0],), F.log_sigmoid, tF.logsigmoid),
    "rms_norm": parity((rand(2, 3, 6), rand(6, seed=1)), lambda x, w: F.rms_norm(x, 6, w, eps=1e-5),
                       lambda x, w: tF.rms_norm(x, (6,), w, eps=1e-5)),
    "rms_norm_2_axes_default_eps": parity((rand(2, 3, 6),), lambda x: F.rms_norm(x, (3, 6)),
                                          lambda x: tF.rms_norm(x, (3, 6))),
    "nll_loss_2d": _nll((6, 4)),
    "nll_loss_weighted_ignore": _nll((6, 4), weight=np.arange(1.0, 5.0), ignore_index=2),
    "nll_loss_4d_sum": _nll((2, 4, 3, 2), reduction="sum", weight=np.arange(1.0, 5.0)),
    "nll_loss_3d_none": _nll((2, 4, 3), reduction="none", weight=np.arange(1.0, 5.0)),
    "nll_loss_1d": _nll((4,)),
    "mse_loss": _pointwise_loss("mse_loss"),
    "mse_loss_sum": _pointwise_loss("mse_loss", reduction="sum"),
    "l1_loss_none": _pointwise_loss("l1_loss", reduction="none"),
    "l1_loss": _pointwise_loss("l1_loss"),
    "smooth_l1_loss": _pointwise_loss("smooth_l1_loss", beta=0.5),
    "smooth_l1_loss_beta_0": _pointwise_loss("smooth_l1_loss", beta=0.0, reduction="sum"),
    "bce": _bce(False),
    "bce_weight_none": _bce(False, "none", weight=rand(4, seed=3) ** 2),
    "bce_logits": _bce(True),
    "bce_logits_weights_sum": _bce(True, "sum", weight=rand(3, 1, seed=3) ** 2, pos_weight=rand(4, seed=4) ** 2),
    **{f"kl_div_{reduction}": _kl(False, reduction) for reduction in ("mean", "batchmean", "sum", "none")},
    "kl_div_log_target": _kl(True, "batchmean"),
    "cosine_similarity": parity((rand(3, 4), rand(3, 4, seed=1)), F.cosine_similarity, tF.cosine_similarity),
    "cosine_similarity_broadcast": parity((rand(2, 1, 4), rand(3, 4, seed=1)),
                                          lambda a, b: F.cosine_similarity(a, b, dim=-1),
                                          lambda a, b: tF.cosine_similarity(a, b, dim=-1)),
    "cosine_similarity_tiny_norm": parity((1e-10 * rand(3, 4), rand(3, 4, seed=1)),
                                          lambda a, b: F.cosine_similarity(a, b, dim=0, eps=1e-8),
                                          lambda a, b: tF.cosine_similarity(a, b, dim=0, eps=1e-8)),
    **{f"normalize_p{p}": parity((rand(3, 4),), lambda x, p=p: F.normalize(x, p=p, dim=-1),
                                 lambda x, p=p: tF.normalize(x, p=p, dim=-1)) for p in (1.0, 2.0, 3.0, np.inf)},
    "normalize_tiny": parity((np.r_[1e-14 * rand(3), rand(3)].reshape(2, 3),), lambda x: F.normalize(x, dim=1),
                             lambda x: tF.normalize(x, dim=1)),
    "attention": _attention((2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6)),
    "attention_mask": _attention((2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), mask_shape=(4, 5)),
    "attention_mask_per_batch": _attention((2, 3, 4, 8), (2, 3, 5, 8), (2, 3, 5, 6), mask_shape=(2, 1, 4, 5)),
    "attention_broadcast_kv": _attention((2, 3, 4, 8), (1, 5, 8), (5, 6), mask_shape=(3, 4, 5)),
    "attention_causal_square": _attention((2, 5, 4), (2, 5, 4), (2, 5, 3), is_causal=True),
    "attention_causal_more_keys": _attention((2, 3, 4), (2, 6, 4), (2, 6, 3), is_causal=True),
    "attention_causal_more_queries": _attention((2, 6, 4), (2, 3, 4), (2, 3, 3), is_causal=True),
}

OPS = op_tests(CASES, checks=("torch",))
