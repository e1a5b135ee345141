"""Basic layers: Linear, Embedding, LayerNorm, Dropout, FeedForward (and the Transformer's
GlorotLinear and ScaledEmbedding, which keep its initialization)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import Tensor
from . import init
from .module import Module, Parameter, check_input_dtype


class Linear(Module):
    """y = x W^T + b with W (out_features, in_features); PyTorch's default initialization."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.zeros((out_features, in_features), dtype=init.DEFAULT_DTYPE))
        self.bias = Parameter(np.zeros(out_features, dtype=init.DEFAULT_DTYPE)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """kaiming_uniform_(a=sqrt(5)) weight, U(+-1/sqrt(in_features)) bias, as torch.nn.Linear."""
        init.default_init_(self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def forward(self, x: Tensor) -> Tensor:
        check_input_dtype(self, x, weight=self.weight, bias=self.bias)
        return F.linear(x, self.weight, self.bias)


class GlorotLinear(Linear):
    """Linear with a Glorot-uniform weight and a zero bias: the Transformer's initialization."""

    def reset_parameters(self) -> None:
        self.weight.data = init.xavier_uniform((self.out_features, self.in_features))
        if self.bias is not None:
            self.bias.data = np.zeros(self.out_features, dtype=init.DEFAULT_DTYPE)


class Embedding(Module):
    """A (num_embeddings, embedding_dim) table looked up by integer ids; N(0, 1) init as PyTorch's,
    with the padding_idx row zeroed (and never updated)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for {num_embeddings} rows")
        self.padding_idx = padding_idx if padding_idx is None or padding_idx >= 0 else padding_idx + num_embeddings
        self.weight = Parameter(np.zeros((num_embeddings, embedding_dim), dtype=init.DEFAULT_DTYPE))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        self._zero_padding()

    def _zero_padding(self) -> None:
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")

    def forward(self, ids: Any) -> Tensor:
        return F.embedding(ids, self.weight, self.padding_idx)


class ScaledEmbedding(Embedding):
    """Embedding initialized N(0, 1/embedding_dim): the Transformer's initialization."""

    def reset_parameters(self) -> None:
        self.weight.data = init.normal((self.num_embeddings, self.embedding_dim), self.embedding_dim ** -0.5)
        self._zero_padding()


class LayerNorm(Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = Parameter(np.ones(dim, dtype=init.DEFAULT_DTYPE))
        self.bias = Parameter(np.zeros(dim, dtype=init.DEFAULT_DTYPE))

    def forward(self, x: Tensor) -> Tensor:
        check_input_dtype(self, x, weight=self.weight, bias=self.bias)
        return F.layer_norm(x, self.weight, self.bias, self.eps)


class Dropout(Module):
    """Zero each entry with probability p while training and scale the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5) -> None:
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
        self.linear1 = GlorotLinear(d_model, d_ff)
        self.linear2 = GlorotLinear(d_ff, d_model)

    def forward(self, x: Tensor) -> Tensor:
        check_input_dtype(self, x, weight=self.linear1.weight)
        return F.feed_forward(x, self.linear1.weight, self.linear1.bias, self.linear2.weight,
                              self.linear2.bias, self.activation, self.dropout, self.training)
