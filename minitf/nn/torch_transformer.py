"""PyTorch's Transformer modules: nn.TransformerEncoderLayer, nn.TransformerDecoderLayer,
nn.TransformerEncoder, nn.TransformerDecoder and nn.Transformer, with their arguments, equations
and state-dict keys (so torch's state dicts load), built from MultiheadAttention, Linear,
LayerNorm and Dropout. minitf's own translation model is transformer.Seq2SeqTransformer.

Shapes: (S, N, E) source, (T, N, E) target; (N, S, E), (N, T, E) with batch_first; (S, E) unbatched.
Masks follow MultiheadAttention: boolean True = not allowed / padding, or float added to the scores.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor
from . import init
from .containers import ModuleList
from .layers import Dropout, LayerNorm, Linear
from .module import Module
from .torch_attention import MultiheadAttention, check_dropout, check_positive_int
from .transformer import TransformerConfig

Activation = str | Callable[[Tensor], Tensor]


def _activation(owner: str, activation: Activation) -> Callable[[Tensor], Tensor]:
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    if callable(activation):
        return activation
    raise ValueError(f"{owner}: activation must be 'relu', 'gelu' or a callable, got {activation!r}")


def _layer_norm(d_model: int, eps: float, bias: bool) -> LayerNorm:
    """LayerNorm(d_model, eps), without its bias parameter if bias is False (torch's bias=False)."""
    norm = LayerNorm(d_model, eps=eps)
    if not bias:
        norm.bias = None
    return norm


class _Layer(Module):
    """What the encoder and decoder layers share: the feed-forward block and the arguments' checks."""

    _mask_names = ("attn_mask", "key_padding_mask")  # the layer's names of its self-attention's masks

    def __init__(self, owner: str, d_model: int, nhead: int, dim_feedforward: int, dropout: float,
                 activation: Activation, layer_norm_eps: float, batch_first: bool, norm_first: bool,
                 bias: bool, cross_attention: bool = False) -> None:
        super().__init__()
        check_positive_int(owner, "d_model", d_model)
        check_positive_int(owner, "nhead", nhead)
        check_positive_int(owner, "dim_feedforward", dim_feedforward)
        check_dropout(owner, dropout)
        if d_model % nhead:
            raise ValueError(f"{owner}: d_model {d_model} is not divisible by nhead {nhead}")
        self.activation = _activation(owner, activation)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first)
        if cross_attention:  # registered here, so that parameters come in torch's order
            self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                     batch_first=batch_first)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = norm_first

    def _ff_block(self, x: Tensor, dropout: Dropout) -> Tensor:
        return dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def _sa_block(self, x: Tensor, attn_mask: Any, key_padding_mask: Any, is_causal: bool,
                  dropout: Dropout) -> Tensor:
        return dropout(_attend(self, "self-attention", self._mask_names, self.self_attn, x, x, attn_mask,
                               key_padding_mask, is_causal))


def _attend(layer: Module, which: str, names: tuple[str, str], attention: MultiheadAttention, x: Tensor,
            memory: Tensor, attn_mask: Any, key_padding_mask: Any, is_causal: bool) -> Tensor:
    """attention(x, memory, memory)'s output; its ValueErrors say which of the layer's arguments were its masks."""
    try:
        return attention(x, memory, memory, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                         need_weights=False, is_causal=bool(is_causal))[0]
    except ValueError as error:
        raise ValueError(f"{type(layer).__name__} {which} ({names[0]} is its attn_mask, {names[1]} its "
                         f"key_padding_mask): {error}") from None


class TransformerEncoderLayer(_Layer):
    """Self-attention and a feed-forward block, each residual: post-norm (norm(x + f(x))) or with
    norm_first pre-norm (x + f(norm(x))), as torch.nn.TransformerEncoderLayer."""

    _mask_names = ("src_mask", "src_key_padding_mask")

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Activation = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True) -> None:
        super().__init__("TransformerEncoderLayer", d_model, nhead, dim_feedforward, dropout, activation,
                         layer_norm_eps, batch_first, norm_first, bias)
        self.norm1 = _layer_norm(d_model, layer_norm_eps, bias)
        self.norm2 = _layer_norm(d_model, layer_norm_eps, bias)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)

    def forward(self, src: Tensor, src_mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool = False) -> Tensor:
        """src (S, N, E) (batch_first: (N, S, E)) -> the same shape. src_mask (S, S) or (N * nhead, S, S);
        src_key_padding_mask (N, S); is_causal: each position attends only to itself and earlier ones."""
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal, self.dropout1)
            return x + self._ff_block(self.norm2(x), self.dropout2)
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal, self.dropout1))
        return self.norm2(x + self._ff_block(x, self.dropout2))


class TransformerDecoderLayer(_Layer):
    """Self-attention, cross-attention to the encoder's output (`multihead_attn`) and a feed-forward
    block, each residual (post-norm, or pre-norm with norm_first), as torch.nn.TransformerDecoderLayer."""

    _mask_names = ("tgt_mask", "tgt_key_padding_mask")

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Activation = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True) -> None:
        super().__init__("TransformerDecoderLayer", d_model, nhead, dim_feedforward, dropout, activation,
                         layer_norm_eps, batch_first, norm_first, bias, cross_attention=True)
        self.norm1 = _layer_norm(d_model, layer_norm_eps, bias)
        self.norm2 = _layer_norm(d_model, layer_norm_eps, bias)
        self.norm3 = _layer_norm(d_model, layer_norm_eps, bias)
        self.dropout1, self.dropout2, self.dropout3 = Dropout(dropout), Dropout(dropout), Dropout(dropout)

    def _mha_block(self, x: Tensor, memory: Tensor, attn_mask: Any, key_padding_mask: Any,
                   is_causal: bool) -> Tensor:
        return self.dropout2(_attend(self, "cross-attention", ("memory_mask", "memory_key_padding_mask"),
                                     self.multihead_attn, x, memory, attn_mask, key_padding_mask, is_causal))

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Tensor:
        """tgt (T, N, E), memory (S, N, E) (batch_first: (N, T, E), (N, S, E)) -> (T, N, E).
        tgt_mask (T, T) or (N * nhead, T, T); memory_mask (T, S) or (N * nhead, T, S); key padding
        masks (N, T) and (N, S)."""
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal, self.dropout1)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            return x + self._ff_block(self.norm3(x), self.dropout3)
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal, self.dropout1))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
        return self.norm3(x + self._ff_block(x, self.dropout3))


def _clones(owner: str, layer: Module, num_layers: int, kind: type) -> ModuleList:
    if not isinstance(layer, kind):
        raise TypeError(f"{owner}: expected a {kind.__name__}, got {type(layer).__name__}")
    if isinstance(num_layers, bool) or not isinstance(num_layers, (int, np.integer)) or num_layers < 0:
        raise ValueError(f"{owner}: num_layers must be an int >= 0, got {num_layers!r}")
    return ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])


class TransformerEncoder(Module):
    """`num_layers` deep copies of `encoder_layer` (keys layers.0. ...), then `norm` if given, as
    torch.nn.TransformerEncoder. enable_nested_tensor and mask_check are accepted for PyTorch's
    signature and change nothing (PyTorch's nested tensors are a speed path)."""

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        super().__init__()
        self.layers = _clones("TransformerEncoder", encoder_layer, num_layers, TransformerEncoderLayer)
        self.num_layers, self.norm = num_layers, norm

    def forward(self, src: Tensor, mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool | None = None) -> Tensor:
        """src as TransformerEncoderLayer's; each layer gets mask, src_key_padding_mask, is_causal."""
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """`num_layers` deep copies of `decoder_layer`, then `norm` if given, as torch.nn.TransformerDecoder."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = _clones("TransformerDecoder", decoder_layer, num_layers, TransformerDecoderLayer)
        self.num_layers, self.norm = num_layers, norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        """tgt, memory and the masks as TransformerDecoderLayer's, given to each layer."""
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask, memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """torch.nn.Transformer: an encoder and a decoder stack on embedded sequences (no embeddings, positions
    or output layer; those are yours), each ending in a LayerNorm (encoder.norm, decoder.norm). Every
    parameter with more than one axis is Xavier-uniform initialized, as PyTorch's. For minitf's own
    translation model from token ids to logits, see nn.Seq2SeqTransformer."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Activation = "relu", custom_encoder: Module | None = None,
                 custom_decoder: Module | None = None, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True) -> None:
        super().__init__()
        if isinstance(d_model, TransformerConfig):
            raise TypeError("nn.Transformer is PyTorch's module (d_model, nhead, ...); minitf's encoder-decoder "
                            "model of a TransformerConfig is nn.Seq2SeqTransformer(config)")
        check_positive_int("Transformer", "d_model", d_model)
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                      norm_first, bias)
        self.encoder = custom_encoder if custom_encoder is not None else TransformerEncoder(
            TransformerEncoderLayer(*layer_args), num_encoder_layers, _layer_norm(d_model, layer_norm_eps, bias))
        self.decoder = custom_decoder if custom_decoder is not None else TransformerDecoder(
            TransformerDecoderLayer(*layer_args), num_decoder_layers, _layer_norm(d_model, layer_norm_eps, bias))
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Any = None, tgt_mask: Any = None, memory_mask: Any = None,
                src_key_padding_mask: Any = None, tgt_key_padding_mask: Any = None,
                memory_key_padding_mask: Any = None, src_is_causal: bool | None = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        """src (S, N, E), tgt (T, N, E) (batch_first: (N, S, E), (N, T, E)) -> (T, N, E).

        src_mask (S, S), tgt_mask (T, T), memory_mask (T, S) (or per head, (N * nhead, ., .)); key
        padding masks (N, S), (N, T), (N, S); is_causal flags as the encoder's and decoder's.
        A causal target mask: tgt_mask=Transformer.generate_square_subsequent_mask(T) or tgt_is_causal=True.
        """
        for name, t in (("src", src), ("tgt", tgt)):
            if not isinstance(t, Tensor) or t.ndim not in (2, 3):
                raise ValueError(f"Transformer: {name} must be a 2-D or 3-D Tensor, got "
                                 f"{getattr(t, 'shape', type(t).__name__)}")
        if src.ndim != tgt.ndim:
            raise ValueError(f"Transformer: src {src.shape} and tgt {tgt.shape} must both be batched or unbatched")
        batch_axis = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch_axis] != tgt.shape[batch_axis]:
            raise ValueError(f"Transformer: src {src.shape} and tgt {tgt.shape} have different batch sizes "
                             f"(batch_first={self.batch_first})")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(f"Transformer: the features of src {src.shape} and tgt {tgt.shape} must be "
                             f"d_model {self.d_model}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: str = "cpu", dtype: Any = None) -> Tensor:
        """(sz, sz) float mask, -inf above the diagonal and 0 elsewhere (float32 unless dtype is given)."""
        check_positive_int("generate_square_subsequent_mask", "sz", sz)
        xp = backend.get_array_module(backend.to_device(np.empty(0), device))
        dtype = np.dtype(dtype if dtype is not None else init.DEFAULT_DTYPE)
        upper = xp.triu(xp.ones((sz, sz), dtype=bool), k=1)
        return Tensor(xp.where(upper, -np.inf, 0.0).astype(dtype))
