"""PyTorch's nn.MultiheadAttention: its constructor, forward arguments, mask conventions, shapes and
state-dict keys, built from minitf's ops (the translation model's own attention is
attention.FusedMultiHeadAttention).

Shapes: N batch, L query length, S key length, E embed_dim, H num_heads.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor, where
from . import init
from .layers import Linear
from .module import Module, Parameter, check_input_dtype


def check_positive_int(owner: str, name: str, value: Any) -> None:
    """A TypeError or ValueError naming `owner`'s argument `name` unless it is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{owner}: {name} must be at least 1, got {value}")


def check_dropout(owner: str, p: Any) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) or not 0 <= p <= 1:
        raise ValueError(f"{owner}: dropout must be a probability in [0, 1], got {p!r}")


class MultiheadAttention(Module):
    """Multi-head attention as torch.nn.MultiheadAttention (without add_bias_kv / add_zero_attn).

    The projections are `in_proj_weight` (3E, E) when kdim == vdim == embed_dim, else
    `q_proj_weight` (E, E), `k_proj_weight` (E, kdim), `v_proj_weight` (E, vdim); then `in_proj_bias`
    (3E,) and the Linear `out_proj`, initialized as PyTorch's (Xavier-uniform, zero biases).
    A boolean mask marks with True what may NOT be attended (as PyTorch; the opposite of
    minitf.functional.scaled_dot_product_attention), a float mask is added to the scores (a float
    mask Tensor that requires grad, e.g. a learned position bias, gets its gradient). A query row with no key left to attend gives zeros (PyTorch: zeros with
    need_weights=False, NaN with need_weights=True).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False) -> None:
        super().__init__()
        owner = "MultiheadAttention"
        check_positive_int(owner, "embed_dim", embed_dim)
        check_positive_int(owner, "num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"{owner}: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        for name, dim in (("kdim", kdim), ("vdim", vdim)):
            if dim is not None:
                check_positive_int(owner, name, dim)
        check_dropout(owner, dropout)
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError(f"{owner}: add_bias_kv and add_zero_attn are not supported")
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self.head_dim = embed_dim // num_heads
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        e = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(init.xavier_uniform((3 * e, e)))
        else:
            self.q_proj_weight = Parameter(init.xavier_uniform((e, e)))
            self.k_proj_weight = Parameter(init.xavier_uniform((e, self.kdim)))
            self.v_proj_weight = Parameter(init.xavier_uniform((e, self.vdim)))
        self.in_proj_bias = Parameter(np.zeros(3 * e, dtype=init.DEFAULT_DTYPE)) if bias else None
        self.out_proj = Linear(e, e, bias=bias)
        if bias:
            init.zeros_(self.out_proj.bias)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"kdim={self.kdim}, vdim={self.vdim}, batch_first={self.batch_first}")

    def _project(self, x: Tensor, which: int) -> Tensor:
        """Query (0), key (1) or value (2) heads: (N, L, in) -> (N, H, L, head_dim)."""
        e = self.embed_dim
        rows = slice(which * e, (which + 1) * e)
        weight = self.in_proj_weight[rows] if self._qkv_same_embed_dim else \
            (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[which]
        bias = self.in_proj_bias[rows] if self.in_proj_bias is not None else None
        n, length, _ = x.shape
        return F.linear(x, weight, bias).reshape(n, length, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """query (L, N, E), key (S, N, kdim), value (S, N, vdim) ((N, L, E) ... with batch_first;
        (L, E) ... unbatched) -> (attn_output shaped as query, attn_weights or None).

        key_padding_mask: (N, S), boolean (True = padding) or float (added). attn_mask: (L, S) or
        (N * H, L, S), boolean (True = not allowed) or float (added). is_causal: key j > query i is
        not allowed (with attn_mask too: PyTorch takes it as a hint that attn_mask is causal).
        attn_weights (after dropout, as PyTorch's): (N, L, S) averaged over heads, else (N, H, L, S).
        """
        batched = self._check_inputs(query, key, value)
        q_in, k_in, v_in = (_batch_major(t, batched, self.batch_first) for t in (query, key, value))
        n, length, _ = q_in.shape
        source = k_in.shape[1]
        xp = backend.get_array_module(q_in.data)
        masks = Masks(xp, n, self.num_heads, length, source, batched)
        masks.add_attn_mask(attn_mask)
        masks.add_key_padding_mask(key_padding_mask)
        if is_causal:
            masks.add_causal()
        q, k, v = self._project(q_in, 0), self._project(k_in, 1), self._project(v_in, 2)
        p = self.dropout if self.training else 0.0
        if need_weights or masks.has_float:
            out, weights = _composed_attention(q, k, v, masks.additive(q.dtype), p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, mask=masks.allowed(), dropout_p=p)
            weights = None
        out = self.out_proj(out.permute(0, 2, 1, 3).reshape(n, length, self.embed_dim))
        out = out.reshape(length, self.embed_dim) if not batched else out if self.batch_first else out.swapaxes(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(axis=1)
        return out, weights if batched else weights.reshape(weights.shape[1:])

    def _check_inputs(self, query: Any, key: Any, value: Any) -> bool:
        """Errors naming the input whose rank, width or batch does not fit; True if batched."""
        owner = "MultiheadAttention"
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{owner}: {name} must be a minitf Tensor, got {type(t).__name__}")
            check_input_dtype(self, t, weight=self.out_proj.weight)
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"{owner}: query, key and value must all be 3-D (batched) or all 2-D (unbatched), "
                             f"got shapes {query.shape}, {key.shape}, {value.shape}")
        for name, t, dim, arg in (("query", query, self.embed_dim, "embed_dim"), ("key", key, self.kdim, "kdim"),
                                  ("value", value, self.vdim, "vdim")):
            if t.shape[-1] != dim:
                raise ValueError(f"{owner}: {name} of shape {t.shape} has {t.shape[-1]} features, but {arg} is {dim}")
        batched = query.ndim == 3
        seq_axis = 1 if batched and self.batch_first else 0
        if key.shape[seq_axis] != value.shape[seq_axis]:
            raise ValueError(f"{owner}: key {key.shape} and value {value.shape} have different sequence lengths")
        if batched:
            batch_axis = 1 - seq_axis
            if not query.shape[batch_axis] == key.shape[batch_axis] == value.shape[batch_axis]:
                raise ValueError(f"{owner}: query {query.shape}, key {key.shape} and value {value.shape} have "
                                 f"different batch sizes (batch_first={self.batch_first})")
        return batched


def _batch_major(x: Tensor, batched: bool, batch_first: bool) -> Tensor:
    """(L, N, E), (N, L, E) or (L, E) -> (N, L, E)."""
    if not batched:
        return x.reshape((1,) + x.shape)
    return x if batch_first else x.swapaxes(0, 1)


def _composed_attention(q: Tensor, k: Tensor, v: Tensor, additive: Any, p: float) -> tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(d) + additive) -> dropout -> @ v in tensor ops; the weights keep their graph.
    A row whose scores are all -inf gets zero weights."""
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.swapaxes(-1, -2)
    dead = None
    if additive is not None:
        scores = scores + additive
        xp = backend.get_array_module(scores.data)
        dead = xp.isneginf(scores.data).all(axis=-1, keepdims=True)
        if dead.any():
            scores = where(dead, 0.0, scores)
        else:
            dead = None
    weights = F.softmax(scores, axis=-1)
    if dead is not None:
        weights = weights * (~dead).astype(weights.dtype)
    if p > 0:
        weights = F.dropout(weights, p, True)
    return weights @ v, weights


class Masks:
    """The masks of one call, checked against the shapes and kept in (N, H, L, S)-broadcastable form
    (arrays; a float mask Tensor that requires grad stays a Tensor)."""

    def __init__(self, xp: Any, n: int, heads: int, length: int, source: int, batched: bool) -> None:
        self.xp, self.n, self.heads, self.length, self.source, self.batched = xp, n, heads, length, source, batched
        self.parts: list[Any] = []  # boolean (True = not allowed) or float (added) arrays

    @property
    def has_float(self) -> bool:
        return any(part.dtype != np.bool_ for part in self.parts)

    def _array(self, mask: Any, name: str) -> Any:
        data = mask.data if isinstance(mask, Tensor) else mask
        if not hasattr(data, "dtype"):
            data = self.xp.asarray(data)
        if data.dtype != np.bool_ and not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"MultiheadAttention: {name} must be boolean or floating point, got dtype {data.dtype}")
        backend.check_same_device(f"MultiheadAttention {name}", self.xp.empty(0), data)
        if isinstance(mask, Tensor) and mask.requires_grad and data.dtype != np.bool_:
            return mask  # a learned float mask (a position bias): added as a Tensor, so it gets its gradient
        return data

    def add_attn_mask(self, mask: Any) -> None:
        if mask is None:
            return
        data = self._array(mask, "attn_mask")
        l, s, nh = self.length, self.source, self.n * self.heads
        if data.ndim == 2:
            if data.shape != (l, s):
                raise ValueError(f"MultiheadAttention: the 2-D attn_mask has shape {data.shape}, expected (L, S) = "
                                 f"{(l, s)}")
        elif data.ndim == 3:
            if data.shape != (nh, l, s):
                expected = "(num_heads, L, S)" if not self.batched else "(N * num_heads, L, S)"
                raise ValueError(f"MultiheadAttention: the 3-D attn_mask has shape {data.shape}, expected {expected} "
                                 f"= {(nh, l, s)}")
            data = data.reshape(self.n, self.heads, l, s)
        else:
            raise ValueError(f"MultiheadAttention: attn_mask must be 2-D (L, S) or 3-D (N * num_heads, L, S), "
                             f"got shape {data.shape}")
        self.parts.append(data)

    def add_key_padding_mask(self, mask: Any) -> None:
        if mask is None:
            return
        data = self._array(mask, "key_padding_mask")
        expected = (self.n, self.source) if self.batched else (self.source,)
        if data.shape != expected:
            raise ValueError(f"MultiheadAttention: key_padding_mask has shape {data.shape}, expected "
                             f"{'(N, S)' if self.batched else '(S,)'} = {expected}")
        self.parts.append(data.reshape(self.n, 1, 1, self.source))

    def add_causal(self) -> None:
        self.parts.append(self.xp.triu(self.xp.ones((self.length, self.source), dtype=bool), k=1))

    def allowed(self) -> Any:
        """The boolean mask of what may be attended (all parts boolean), or None for everything."""
        if not self.parts:
            return None
        blocked = self.parts[0]
        for part in self.parts[1:]:
            blocked = blocked | part
        return ~blocked

    def additive(self, dtype: Any) -> Any:
        """The sum of the parts as a float array of `dtype` (a boolean part: -inf where True), or None."""
        total = None
        for part in self.parts:
            if part.dtype == np.bool_:
                part = self.xp.where(part, -np.inf, 0.0).astype(dtype)
            elif part.dtype != dtype:
                part = part.astype(dtype)
            total = part if total is None else total + part if isinstance(total, Tensor) else part + total
        return total
