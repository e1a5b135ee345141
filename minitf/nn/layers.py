"""Basic layers: Linear, Embedding, LayerNorm, Dropout, FeedForward."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import Tensor
from . import init
from .module import Module, Parameter


class Linear(Module):
    """y = x W^T + b with W (out_features, in_features), Glorot-initialized."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = Parameter(init.xavier_uniform((out_features, in_features)))
        self.bias = Parameter(np.zeros(out_features, dtype=init.DEFAULT_DTYPE)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class Embedding(Module):
    """A (num_embeddings, dim) table looked up by integer ids; N(0, dim^-1/2) init."""

    def __init__(self, num_embeddings: int, dim: int, padding_idx: int | None = None) -> None:
        super().__init__()
        self.padding_idx = padding_idx
        table = init.normal((num_embeddings, dim), dim ** -0.5)
        if padding_idx is not None:
            table[padding_idx] = 0
        self.weight = Parameter(table)

    def forward(self, ids: Any) -> Tensor:
        return F.embedding(ids, self.weight, self.padding_idx)


class LayerNorm(Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = Parameter(np.ones(dim, dtype=init.DEFAULT_DTYPE))
        self.bias = Parameter(np.zeros(dim, dtype=init.DEFAULT_DTYPE))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight, self.bias, self.eps)


class Dropout(Module):
    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)


class FeedForward(Module):
    """linear(d -> d_ff) -> relu or gelu -> dropout -> linear(d_ff -> d), as one fused node."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "relu", dropout: float = 0.0) -> None:
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"FeedForward: activation must be 'relu' or 'gelu', got {activation!r}")
        self.activation, self.dropout = activation, dropout
        self.linear1 = Linear(d_model, d_ff)
        self.linear2 = Linear(d_ff, d_model)

    def forward(self, x: Tensor) -> Tensor:
        return F.feed_forward(x, self.linear1.weight, self.linear1.bias, self.linear2.weight,
                              self.linear2.bias, self.activation, self.dropout, self.training)
