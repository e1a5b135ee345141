"""A BERT encoder built from minitf modules, loading Hugging Face BERT checkpoints and
sentence-transformers folders (e.g. all-MiniLM-L6-v2).

>>> model, tokenizer = load_bert("all-MiniLM-L6-v2")                        # doctest: +SKIP
>>> vectors = model.encode(["A first sentence.", "Another one."])           # (2, 384) NumPy array
>>> out = model(ids, attention_mask, token_type_ids, output_hidden_states=True,
...             output_attentions=True)                                     # doctest: +SKIP

The layers are Hugging Face's ``BertModel`` (post-LN; dropout as its config says, in train mode only):
embeddings (word + position + token type, then LayerNorm), then per layer self-attention over the keys the attention mask allows, its output
projection, residual and LayerNorm, then intermediate dense + GELU (erf), output dense, residual and
LayerNorm; an optional pooler (tanh of a dense layer on the first token). Parameter names equal
Hugging Face's keys (``embeddings.word_embeddings.weight``, ``encoder.layer.0.attention.self.query.weight``,
...), so ``state_dict()`` is theirs. Weights are read only from ``model.safetensors`` (never pickle)
with minitf's checked safetensors reader; see :func:`load_bert`.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor, no_grad
from ..nn import Embedding, LayerNorm, Linear, Module, ModuleList
from ..tokenizer.wordpiece import WordPieceTokenizer
from ._bert_config import BertConfig, Pooling, read_config, read_pooling
from ._bert_weights import load_weights, weight_names

__all__ = ["BertModel", "BertOutput", "BertConfig", "Pooling", "load_bert", "pool"]


@dataclass
class BertOutput:
    """What a forward pass gives: (B, L, H) states, the pooler's (B, H) if the model has one, and on
    request every layer's input and output (embeddings first: num_hidden_layers + 1 of (B, L, H))
    and every layer's attention probabilities ((B, heads, L, L), rows over keys)."""

    last_hidden_state: Tensor
    pooler_output: Tensor | None = None
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


class _Dense(Module):
    """A ``dense`` Linear (and a ``LayerNorm`` when ``eps`` is given), as Hugging Face names them;
    forward: LayerNorm(dropout(dense(x)) + residual), dropout in train mode only."""

    def __init__(self, n_in: int, n_out: int, eps: float | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.dense = Linear(n_in, n_out)
        self.dropout = dropout
        if eps is not None:
            self.LayerNorm = LayerNorm(n_out, eps)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(F.dropout(self.dense(x), self.dropout, self.training) + residual)


class BertEmbeddings(Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = LayerNorm(c.hidden_size, c.layer_norm_eps)
        self.dropout = c.hidden_dropout_prob

    def forward(self, ids: Any, token_type_ids: Any) -> Tensor:
        xp = backend.get_array_module(ids)
        positions = xp.arange(ids.shape[1])[None, :]
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return F.dropout(self.LayerNorm(x), self.dropout, self.training)


class BertSelfAttention(Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.heads = c.num_attention_heads
        self.query, self.key, self.value = (Linear(c.hidden_size, c.hidden_size) for _ in range(3))
        self.dropout = c.attention_probs_dropout_prob

    def forward(self, x: Tensor, allowed: Any, weights: bool) -> tuple[Tensor, Tensor | None]:
        """(B, L, H) -> (B, L, H) context and, if ``weights``, the (B, heads, L, L) probabilities."""
        b, length, hidden = x.shape

        def heads(t: Tensor) -> Tensor:
            return t.reshape(b, length, self.heads, hidden // self.heads).permute(0, 2, 1, 3)

        out = F.scaled_dot_product_attention(heads(self.query(x)), heads(self.key(x)), heads(self.value(x)),
                                             mask=allowed, return_weights=weights,
                                             dropout_p=self.dropout if self.training else 0.0)
        context, probs = out if weights else (out, None)
        return context.permute(0, 2, 1, 3).reshape(b, length, hidden), probs


class BertAttention(Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        setattr(self, "self", BertSelfAttention(c))  # Hugging Face's key: attention.self.query...
        self.output = _Dense(c.hidden_size, c.hidden_size, c.layer_norm_eps, c.hidden_dropout_prob)

    def forward(self, x: Tensor, allowed: Any, weights: bool) -> tuple[Tensor, Tensor | None]:
        context, probs = getattr(self, "self")(x, allowed, weights)
        return self.output(context, x), probs


class BertLayer(Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = _Dense(c.hidden_size, c.intermediate_size)
        self.output = _Dense(c.intermediate_size, c.hidden_size, c.layer_norm_eps, c.hidden_dropout_prob)

    def forward(self, x: Tensor, allowed: Any, weights: bool) -> tuple[Tensor, Tensor | None]:
        a, probs = self.attention(x, allowed, weights)
        return self.output(F.gelu(self.intermediate.dense(a)), a), probs


class BertEncoder(Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.layer = ModuleList([BertLayer(c) for _ in range(c.num_hidden_layers)])


class BertModel(Module):
    """Hugging Face's ``BertModel`` in minitf modules; ``encode`` gives sentence embeddings once
    ``load_bert`` has attached a tokenizer and a pooling (or after setting them by hand)."""

    def __init__(self, config: BertConfig, add_pooler: bool = True) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        if add_pooler:
            self.pooler = _Dense(config.hidden_size, config.hidden_size)
        self.tokenizer: WordPieceTokenizer | None = None
        self.pooling = Pooling()

    def forward(self, ids: Any, attention_mask: Any = None, token_type_ids: Any = None,
                output_hidden_states: bool = False, output_attentions: bool = False) -> BertOutput:
        """ids (B, L) integers; attention_mask (B, L), 1 for tokens and 0 for padding (default all 1);
        token_type_ids (B, L) (default 0). Returns a BertOutput."""
        ids, attention_mask, token_type_ids = self._check_inputs(ids, attention_mask, token_type_ids)
        allowed = attention_mask[:, None, None, :] != 0  # (B, 1, 1, L): queries attend real keys only
        x = self.embeddings(ids, token_type_ids)
        states, attentions = [x], []
        for layer in self.encoder.layer:
            x, probs = layer(x, allowed, output_attentions)
            states.append(x)
            attentions.append(probs)
        pooled = F.tanh(self.pooler.dense(x[:, 0])) if getattr(self, "pooler", None) is not None else None
        return BertOutput(x, pooled, tuple(states) if output_hidden_states else None,
                          tuple(attentions) if output_attentions else None)

    def _check_inputs(self, ids: Any, mask: Any, types: Any) -> tuple[Any, Any, Any]:
        xp = backend.get_array_module(self.embeddings.word_embeddings.weight.data)
        c = self.config
        ids = xp.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"BertModel: ids must be a (batch, length) integer array, got shape {ids.shape} "
                             f"dtype {ids.dtype}")
        if ids.shape[1] > c.max_position_embeddings:
            raise ValueError(f"BertModel: {ids.shape[1]} tokens, more than max_position_embeddings "
                             f"{c.max_position_embeddings}")
        mask = xp.ones_like(ids) if mask is None else xp.asarray(mask.data if isinstance(mask, Tensor) else mask)
        types = xp.zeros_like(ids) if types is None else xp.asarray(types.data if isinstance(types, Tensor) else types)
        for name, value in (("attention_mask", mask), ("token_type_ids", types)):
            if value.shape != ids.shape:
                raise ValueError(f"BertModel: {name} has shape {value.shape}, ids {ids.shape}")
        if types.size and (int(types.min()) < 0 or int(types.max()) >= c.type_vocab_size):
            raise ValueError(f"BertModel: token_type_ids must be in 0 .. {c.type_vocab_size - 1}")
        return ids, mask, types

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), hidden_size) float NumPy array of pooled (and, as the folder says, normalized)
        sentence embeddings, as sentence-transformers' ``SentenceTransformer.encode``."""
        if self.tokenizer is None:
            raise ValueError("BertModel.encode needs a tokenizer: load the model with load_bert, or set "
                             "model.tokenizer")
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("BertModel.encode takes a list of strings")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"BertModel.encode: batch_size must be a positive integer, got {batch_size!r}")
        tokenizer = self._encoding_tokenizer()
        texts = [t.lower() for t in texts] if self.pooling.lowercase else list(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths batched together
        out = np.zeros((len(texts), self.config.hidden_size), dtype=self.embeddings.word_embeddings.weight.dtype)
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                for start in range(0, len(order), batch_size):
                    rows = order[start:start + batch_size]
                    encodings = tokenizer.encode_batch([texts[i] for i in rows])
                    ids, mask, types = (np.array([getattr(e, f) for e in encodings], dtype=np.int64)
                                        for f in ("ids", "attention_mask", "type_ids"))
                    states = self(ids, mask, types).last_hidden_state.data
                    out[rows] = backend.to_device(pool(states, mask, self.pooling), "cpu")
        finally:
            self.train(was_training)
        return out

    def _encoding_tokenizer(self) -> WordPieceTokenizer:
        """A copy of the tokenizer truncating to the pooling's max_seq_length and padding to the longest."""
        tokenizer = copy.copy(self.tokenizer)
        limit = self.config.max_position_embeddings
        tokenizer.enable_truncation(min(self.pooling.max_seq_length or limit, limit))
        tokenizer.enable_padding()
        return tokenizer


def pool(states: Any, mask: Any, pooling: Pooling) -> Any:
    """(B, L, H) token states and (B, L) attention mask -> (B, H) sentence vectors, as
    sentence-transformers' Pooling (and Normalize: x / max(|x|, 1e-12))."""
    xp = backend.get_array_module(states)
    weight = xp.asarray(mask)[:, :, None].astype(states.dtype)
    if pooling.mode == "cls_token":
        vectors = states[:, 0]
    elif pooling.mode == "max_tokens":
        vectors = xp.where(weight > 0, states, -1e9).max(axis=1)
    else:
        total = (states * weight).sum(axis=1)
        count = xp.maximum(weight.sum(axis=1), 1e-9)
        vectors = total / (xp.sqrt(count) if pooling.mode == "mean_sqrt_len_tokens" else count)
    if pooling.normalize:
        vectors = vectors / xp.maximum(xp.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors.astype(states.dtype, copy=False)


def load_bert(path: str | Path) -> tuple[BertModel, WordPieceTokenizer]:
    """Load a BERT model folder: ``config.json``, ``model.safetensors`` (keys as Hugging Face's, possibly
    prefixed ``bert.``), ``tokenizer.json`` and, if present, the sentence-transformers files that say
    how to pool. Returns (model in eval mode with its tokenizer and pooling attached, tokenizer).
    A missing file is a FileNotFoundError naming it; an unsupported or malformed setting, or a
    missing or mis-shaped weight, a ValueError naming it."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"load_bert: model folder {folder} not found")
    config = read_config(folder)
    tokenizer = WordPieceTokenizer.from_file(folder / "tokenizer.json")
    too_big = tokenizer.max_id
    if too_big >= config.vocab_size:
        raise ValueError(f"load_bert: {folder / 'tokenizer.json'} has token id {too_big}, beyond the model's "
                         f"vocab_size {config.vocab_size}")
    pooling = read_pooling(folder)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        others = [p.name for p in folder.glob("*.bin")] + [p.name for p in folder.glob("*.pt")]
        raise FileNotFoundError(f"load_bert: {weights} not found" + (
            f" (the folder has {others}: pickle files are never read; convert them to safetensors)" if others else ""))
    names = weight_names(weights, config)
    model = BertModel(config, add_pooler=names.has_pooler)
    load_weights(model, weights, names)
    model.tokenizer, model.pooling = tokenizer, pooling
    model.eval()
    return model, tokenizer
