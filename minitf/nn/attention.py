"""Multi-head attention (self and cross) with a key/value cache for incremental decoding."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import Tensor, concat
from . import init
from .module import Module, Parameter, check_input_dtype


class KVCache:
    """Keys and values of the positions decoded so far, (B, H, L, d_head) each, for one layer."""

    def __init__(self) -> None:
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    def reorder(self, index: Any) -> None:
        """Keep batch rows `index` (beam search: follow each hypothesis's parent)."""
        if self.k is not None:
            self.k, self.v = self.k[index], self.v[index]


class FusedMultiHeadAttention(Module):
    """softmax(Q K^T / sqrt(d_head)) V in `n_heads` heads: the attention of minitf's own
    Seq2SeqTransformer, one fused attention node, with (B, L, d_model) inputs, boolean masks
    (True = may attend) and a key/value cache for incremental decoding. PyTorch's module, with its
    arguments, masks and state-dict keys, is nn.MultiheadAttention.

    The query/key/value projections are stored as one (3 d_model, d_model) weight,
    `in_proj_weight`, laid out as PyTorch's, so that state dicts carry over.
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

    def _split_heads(self, x: Tensor) -> Tensor:
        """(B, L, d_model) -> (B, H, L, d_head)."""
        b, length, _ = x.shape
        return x.reshape(b, length, self.n_heads, self.d_model // self.n_heads).permute(0, 2, 1, 3)

    def _project(self, x: Tensor, which: int) -> Tensor:
        """Query (0), key (1) or value (2) heads of x: (B, L, d_model) -> (B, H, L, d_head).

        Three products with row blocks of in_proj_weight rather than one with all of it:
        as fast, and the backward then needs no full-width gradient for each slice.
        """
        rows = slice(which * self.d_model, (which + 1) * self.d_model)
        return self._split_heads(F.linear(x, self.in_proj_weight[rows], self.in_proj_bias[rows]))

    def project_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        return self._project(memory, 1), self._project(memory, 2)

    def forward(self, x: Tensor, memory: Tensor | None = None, mask: Any = None,
                is_causal: bool = False, cache: KVCache | None = None,
                return_weights: bool = False) -> Any:
        """x: (B, Lq, d_model); memory: (B, Lk, d_model) for cross-attention, None for self.

        mask: boolean, broadcastable to (B, H, Lq, Lk), True = may attend. With a `cache`,
        self-attention appends this step's keys/values to it and cross-attention projects
        `memory` once. Returns (B, Lq, d_model) (and the weights if asked).
        """
        d = self.d_model
        for given in (x, memory):
            check_input_dtype(self, given, weight=self.in_proj_weight)  # None has no dtype: skipped
        if memory is None:
            q, k, v = (self._project(x, i) for i in range(3))
            if cache is not None:
                if cache.k is not None:
                    k, v = concat([cache.k, k], axis=2), concat([cache.v, v], axis=2)
                cache.k, cache.v = k, v
        else:
            q = self._project(x, 0)
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
