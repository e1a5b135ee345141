"""Multi-head attention (self and cross) with a key/value cache for incremental decoding."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import Tensor, concat
from . import init
from .module import Module, Parameter


class KVCache:
    """Keys and values of the positions decoded so far, (B, H, L, d_head) each, for one layer."""

    def __init__(self) -> None:
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    def reorder(self, index: Any) -> None:
        """Keep batch rows `index` (beam search: follow each hypothesis's parent)."""
        if self.k is not None:
            self.k, self.v = self.k[index], self.v[index]


class MultiHeadAttention(Module):
    """softmax(Q K^T / sqrt(d_head)) V in `n_heads` heads, as in torch.nn.MultiheadAttention.

    The query/key/value projections are one (3 d_model, d_model) weight, `in_proj_weight`,
    so that self-attention does one matrix product for all three.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.d_model, self.n_heads, self.dropout = d_model, n_heads, dropout
        self.in_proj_weight = Parameter(init.xavier_uniform((3 * d_model, d_model)))
        self.in_proj_bias = Parameter(np.zeros(3 * d_model, dtype=init.DEFAULT_DTYPE))
        self.out_proj_weight = Parameter(init.xavier_uniform((d_model, d_model)))
        self.out_proj_bias = Parameter(np.zeros(d_model, dtype=init.DEFAULT_DTYPE))

    def _split_heads(self, x: Tensor) -> list[Tensor]:
        """(B, L, n * d_model) -> n tensors (B, H, L, d_head), one for each of the n projections."""
        b, length, width = x.shape
        n = width // self.d_model
        heads = x.reshape(b, length, n, self.n_heads, self.d_model // self.n_heads).permute(2, 0, 3, 1, 4)
        return [heads[i] for i in range(n)]

    def project_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        d = self.d_model
        kv = F.linear(memory, self.in_proj_weight[d:], self.in_proj_bias[d:])
        k, v = self._split_heads(kv)
        return k, v

    def forward(self, x: Tensor, memory: Tensor | None = None, mask: Any = None,
                is_causal: bool = False, cache: KVCache | None = None,
                return_weights: bool = False) -> Any:
        """x: (B, Lq, d_model); memory: (B, Lk, d_model) for cross-attention, None for self.

        mask: boolean, broadcastable to (B, H, Lq, Lk), True = may attend. With a `cache`,
        self-attention appends this step's keys/values to it and cross-attention projects
        `memory` once. Returns (B, Lq, d_model) (and the weights if asked).
        """
        d = self.d_model
        if memory is None:
            q, k, v = self._split_heads(F.linear(x, self.in_proj_weight, self.in_proj_bias))
            if cache is not None:
                if cache.k is not None:
                    k, v = concat([cache.k, k], axis=2), concat([cache.v, v], axis=2)
                cache.k, cache.v = k, v
        else:
            q, = self._split_heads(F.linear(x, self.in_proj_weight[:d], self.in_proj_bias[:d]))
            if cache is not None and cache.k is not None:
                k, v = cache.k, cache.v
            else:
                k, v = self.project_kv(memory)
                if cache is not None:
                    cache.k, cache.v = k, v
        p = self.dropout if self.training else 0.0
        result = F.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=is_causal, dropout_p=p,
                                                return_weights=return_weights)
        out, weights = result if return_weights else (result, None)
        b, _, length, _ = out.shape
        out = out.permute(0, 2, 1, 3).reshape(b, length, d)
        out = F.linear(out, self.out_proj_weight, self.out_proj_bias)
        return (out, weights) if return_weights else out
