"""minitf's own encoder-decoder Transformer of "Attention Is All You Need" (Seq2SeqTransformer:
token ids in, logits out, with embeddings, positions and fused blocks), readable top to bottom.
PyTorch's modules of the same family (nn.Transformer, nn.TransformerEncoderLayer, ...) are in
torch_transformer.py.

Shapes: B batch, S source length, T target length, D d_model, V vocabulary.
Masks are boolean with True = a real token / may attend.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import functional as F
from ..autograd import Tensor
from ..config import check, setting
from ..errors import ConfigError
from .attention import KVCache, FusedMultiHeadAttention
from .containers import ModuleList
from .layers import Dropout, Embedding, FeedForward, LayerNorm, ScaledEmbedding
from .module import Module, Parameter
from . import init


MODEL_LIMITS = {"vocab_size": 1 << 20, "d_model": 1 << 16, "d_ff": 1 << 18, "layers": 1024, "max_len": 1 << 16,
                "position_table": 1 << 28}
"""Caps on what a TransformerConfig may declare (so also a checkpoint): tokens in a vocabulary (ids
below it), model width, feed-forward width, layers per stack, positions, and max_len x d_model
float32 values of the position table."""

_L = MODEL_LIMITS


@dataclass
class TransformerConfig:
    """The model's shape and options; checked when made (types, MODEL_LIMITS, cross-field rules)."""

    src_vocab_size: int = setting(low=1, high=_L["vocab_size"], help="source vocabulary size")
    tgt_vocab_size: int = setting(low=1, high=_L["vocab_size"], help="target vocabulary size")
    d_model: int = setting(256, low=1, high=_L["d_model"], help="model width")
    n_heads: int = setting(4, low=1, high=_L["d_model"], help="attention heads (must divide d_model)")
    n_encoder_layers: int = setting(3, low=0, high=_L["layers"], help="encoder layers")
    n_decoder_layers: int = setting(3, low=0, high=_L["layers"], help="decoder layers")
    d_ff: int = setting(1024, low=1, high=_L["d_ff"], help="feed-forward width")
    dropout: float = setting(0.1, low=0, high=1, help="dropout probability")
    activation: str = setting("relu", choices=("relu", "gelu"), help="feed-forward activation")
    norm_first: bool = setting(False, help="pre-norm layers instead of the original post-norm")
    max_len: int = setting(256, low=1, high=_L["max_len"], help="positions of the position table")
    pad_id: int = setting(0, low=0, high=_L["vocab_size"] - 1, help="padding token id")
    share_embeddings: bool = setting(True, help="one table for source and target (a joint vocabulary)")
    tie_output: bool = setting(True, help="output projection = target embedding table")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError (a ValueError) for a field of the wrong type or out of bounds, or
        fields that do not fit together."""
        check(self, label="TransformerConfig.{}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"n_heads {self.n_heads} does not divide d_model {self.d_model}")
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ConfigError(f"share_embeddings needs src_vocab_size {self.src_vocab_size} == tgt_vocab_size "
                              f"{self.tgt_vocab_size} (one joint vocabulary)")
        for name in ("tgt_vocab_size", "src_vocab_size"):  # each embedding table has a padding row
            if self.pad_id >= getattr(self, name):
                raise ConfigError(f"pad_id {self.pad_id} is not below {name} {getattr(self, name)}")
        if self.max_len * self.d_model > _L["position_table"]:
            raise ConfigError(f"max_len {self.max_len} x d_model {self.d_model} exceeds the limit of "
                              f"{_L['position_table']:,} position values")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parameter_shapes(config: TransformerConfig) -> dict[str, tuple[int, ...]]:
    """The parameter names and shapes of `Seq2SeqTransformer(config)`, in named_parameters() order,
    without building it (a tied parameter under its first name only: see tied_names)."""
    d, f = config.d_model, config.d_ff
    shapes = {} if config.tie_output else {"output_weight": (config.tgt_vocab_size, d)}  # own ones first
    shapes["tgt_embed.weight"] = (config.tgt_vocab_size, d)
    if not config.share_embeddings:
        shapes["src_embed.weight"] = (config.src_vocab_size, d)

    def layer(prefix: str, attentions: tuple[str, ...], norms: int) -> None:
        for a in attentions:
            shapes.update({f"{prefix}.{a}.in_proj_weight": (3 * d, d), f"{prefix}.{a}.in_proj_bias": (3 * d,),
                           f"{prefix}.{a}.out_proj_weight": (d, d), f"{prefix}.{a}.out_proj_bias": (d,)})
        shapes.update({f"{prefix}.ff.linear1.weight": (f, d), f"{prefix}.ff.linear1.bias": (f,),
                       f"{prefix}.ff.linear2.weight": (d, f), f"{prefix}.ff.linear2.bias": (d,)})
        for i in range(1, norms + 1):
            shapes.update({f"{prefix}.norm{i}.weight": (d,), f"{prefix}.norm{i}.bias": (d,)})

    for i in range(config.n_encoder_layers):
        layer(f"encoder_layers.{i}", ("self_attn",), 2)
    for i in range(config.n_decoder_layers):
        layer(f"decoder_layers.{i}", ("self_attn", "cross_attn"), 3)
    for norm in ("encoder_norm", "decoder_norm"):
        shapes.update({f"{norm}.weight": (d,), f"{norm}.bias": (d,)})
    return shapes


def tied_names(config: TransformerConfig) -> dict[str, str]:
    """Other name -> parameter_shapes name of each tied parameter of `Seq2SeqTransformer(config)` (its
    state_dict lists it under both, as PyTorch's does)."""
    return {"src_embed.weight": "tgt_embed.weight"} if config.share_embeddings else {}


def sinusoidal_positions(max_len: int, d_model: int) -> np.ndarray:
    """(max_len, d_model) table: sin on even, cos on odd features, wavelengths up to 10000 * 2 pi."""
    position = np.arange(max_len)[:, None]
    freq = np.exp(-math.log(10000.0) * np.arange(0, d_model, 2) / d_model)
    table = np.zeros((max_len, d_model), dtype=np.float32)
    table[:, 0::2] = np.sin(position * freq)
    table[:, 1::2] = np.cos(position * freq)[:, : d_model // 2]
    return table


class EncoderLayer(Module):
    """Self-attention and feed-forward, each in a residual block (post-norm or pre-norm)."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, activation: str,
                 norm_first: bool) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = FusedMultiHeadAttention(d_model, n_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, activation, dropout)
        self.norm1, self.norm2 = LayerNorm(d_model), LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, attn_mask: Any) -> Tensor:
        x = residual(x, lambda h: self.self_attn(h, mask=attn_mask), self.dropout, self.norm1, self.norm_first)
        return residual(x, self.ff, self.dropout, self.norm2, self.norm_first)


class DecoderLayer(Module):
    """Causal self-attention, cross-attention to the encoder output, feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, activation: str,
                 norm_first: bool) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = FusedMultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = FusedMultiHeadAttention(d_model, n_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, activation, dropout)
        self.norm1, self.norm2, self.norm3 = LayerNorm(d_model), LayerNorm(d_model), LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(self, y: Tensor, memory: Tensor, memory_mask: Any,
                cache: dict[str, KVCache] | None = None) -> Tensor:
        """With a cache, y holds only the new position(s) and earlier keys come from the cache."""
        self_cache = cache["self"] if cache is not None else None
        cross_cache = cache["cross"] if cache is not None else None

        def self_attend(h: Tensor) -> Tensor:
            # Causal among the given positions; positions already in a cache all lie in the past.
            if self_cache is not None and self_cache.k is not None and h.shape[1] != 1:
                raise ValueError("incremental decoding with a filled cache takes one position at a time")
            causal = self_cache is None or self_cache.k is None
            return self.self_attn(h, is_causal=causal, cache=self_cache)

        def cross_attend(h: Tensor) -> Tensor:
            return self.cross_attn(h, memory, mask=memory_mask, cache=cross_cache)

        y = residual(y, self_attend, self.dropout, self.norm1, self.norm_first)
        y = residual(y, cross_attend, self.dropout, self.norm2, self.norm_first)
        return residual(y, self.ff, self.dropout, self.norm3, self.norm_first)


def residual(x: Tensor, sublayer: Any, dropout: Dropout, norm: LayerNorm, norm_first: bool) -> Tensor:
    """Pre-norm: x + dropout(f(norm(x))). Post-norm (the original paper): norm(x + dropout(f(x))),
    one fused node (F.dropout_add_layer_norm)."""
    if norm_first:
        return x + dropout(sublayer(norm(x)))
    return F.dropout_add_layer_norm(x, sublayer(x), norm.weight, norm.bias, dropout.p, dropout.training, norm.eps)


class Seq2SeqTransformer(Module):
    """Encoder-decoder Transformer with sinusoidal positions and sqrt(D)-scaled embeddings, from
    token ids to logits: the translation model (named nn.Transformer before PyTorch's module took
    that name; its state-dict keys and checkpoints are unchanged)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = self.config = config
        c.validate()  # (again: a config's fields may have been changed since it was made)
        self.tgt_embed = ScaledEmbedding(c.tgt_vocab_size, c.d_model, padding_idx=c.pad_id)
        self.src_embed = self.tgt_embed if c.share_embeddings else \
            ScaledEmbedding(c.src_vocab_size, c.d_model, padding_idx=c.pad_id)
        layer_args = (c.d_model, c.n_heads, c.d_ff, c.dropout, c.activation, c.norm_first)
        self.encoder_layers = ModuleList([EncoderLayer(*layer_args) for _ in range(c.n_encoder_layers)])
        self.decoder_layers = ModuleList([DecoderLayer(*layer_args) for _ in range(c.n_decoder_layers)])
        self.encoder_norm, self.decoder_norm = LayerNorm(c.d_model), LayerNorm(c.d_model)
        self.dropout = Dropout(c.dropout)
        if not c.tie_output:
            self.output_weight = Parameter(init.xavier_uniform((c.tgt_vocab_size, c.d_model)))
        # a table computed from the configuration: moves with .to(), stays out of the state dict
        self.register_buffer("positions", sinusoidal_positions(c.max_len, c.d_model), persistent=False)

    def embed(self, table: Embedding, ids: Any, start: int = 0) -> Tensor:
        """(B, L) ids -> (B, L, D): embedding * sqrt(D) + position, then dropout."""
        length = ids.shape[1]
        if start + length > self.config.max_len:
            raise ValueError(f"sequence of length {start + length} exceeds max_len {self.config.max_len}")
        x = table(ids) * math.sqrt(self.config.d_model) + self.positions[start:start + length]
        return self.dropout(x)

    def encode(self, src: Any, src_mask: Any) -> Tensor:
        """src: (B, S) ids; src_mask: (B, S) True at real tokens -> memory (B, S, D)."""
        attn_mask = _key_mask(src_mask)
        x = self.embed(self.src_embed, src)
        for layer in self.encoder_layers:
            x = layer(x, attn_mask)
        return self.encoder_norm(x)

    def decode(self, tgt_in: Any, memory: Tensor, src_mask: Any,
               caches: list[dict[str, KVCache]] | None = None, start: int = 0) -> Tensor:
        """tgt_in: (B, T) ids -> logits (B, T, V). With `caches`, tgt_in holds positions start.. only."""
        y = self.embed(self.tgt_embed, tgt_in, start)
        memory_mask = _key_mask(src_mask)
        for i, layer in enumerate(self.decoder_layers):
            y = layer(y, memory, memory_mask, caches[i] if caches is not None else None)
        y = self.decoder_norm(y)
        weight = self.output_weight if not self.config.tie_output else self.tgt_embed.weight
        return F.linear(y, weight)

    def forward(self, src: Any, tgt_in: Any, src_mask: Any) -> Tensor:
        """Teacher-forced logits: src (B, S) ids, tgt_in (B, T) ids -> logits (B, T, V).

        src_mask is a (B, S) boolean array or tensor, True at real source tokens and False at
        padding (padded keys get no attention); the decoder's self-attention is causal.
        """
        return self.decode(tgt_in, self.encode(src, src_mask), src_mask)

    def new_caches(self) -> list[dict[str, KVCache]]:
        """Empty key/value caches, one pair (self, cross) per decoder layer."""
        return [{"self": KVCache(), "cross": KVCache()} for _ in self.decoder_layers]


def _key_mask(src_mask: Any) -> Any:
    """(B, S) token mask -> (B, 1, 1, S) attention mask over keys."""
    data = src_mask.data if isinstance(src_mask, Tensor) else src_mask
    return data[:, None, None, :]
