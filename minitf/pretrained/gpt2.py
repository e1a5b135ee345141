"""A GPT-2-family decoder with Hugging Face's parameter names and layouts.

Learned position embeddings, pre-LN blocks (x + attn(ln_1(x)), then + mlp(ln_2(.))), a final
``ln_f``, and an LM head tied to the token embedding. Parameter names are Hugging Face's
``GPT2LMHeadModel``'s (``transformer.wte.weight``, ``transformer.h.0.attn.c_attn.weight``, ...,
``lm_head.weight`` listed too, one array with ``wte``), and its projections keep HF's ``Conv1D``
layout: a weight of shape (in, out), the transpose of ``nn.Linear``'s. Attention is causal, through
``F.scaled_dot_product_attention``; ``attention_mask`` (B, L) marks real tokens with 1 as HF's does,
for right or left padding. Positions default to HF's forward (0, 1, ... from the cached length,
whatever the padding); pass ``position_ids`` (``generation.positions_from_mask`` gives HF ``generate``'s, which
count real tokens only) for left padding. There is no dropout: the model is for inference
(HF's dropout rates in config.json are ignored).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import Tensor, concat
from ..nn import Embedding, KVCache, LayerNorm, Module, ModuleList, Parameter, init
from .generation import generate

__all__ = ["GPT2Config", "GPT2Model", "GPT2LMHeadModel", "GPT2Cache", "Conv1D"]

ACTIVATIONS = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none", "relu": None}
"""HF ``activation_function`` -> F.gelu's ``approximate`` (None: relu)."""
REQUIRED = ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")
_FLAGS_REFUSED = {"add_cross_attention": "cross-attention (an encoder-decoder GPT-2)"}


@dataclass(frozen=True)
class GPT2Config:
    """The architecture, with HF ``GPT2Config``'s names; ``n_inner`` None means 4 * n_embd."""

    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    n_inner: int | None = None
    layer_norm_epsilon: float = 1e-5
    activation_function: str = "gelu_new"
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    tie_word_embeddings: bool = True
    initializer_range: float = 0.02
    bos_token_id: int | None = None
    eos_token_id: int | None = None

    def __post_init__(self) -> None:
        for name in (*REQUIRED, "n_inner"):
            value = getattr(self, name)
            if value is None and name == "n_inner":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPT2Config: {name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPT2Config: n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        eps = self.layer_norm_epsilon
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 1:
            raise ValueError(f"GPT2Config: layer_norm_epsilon must be a number in (0, 1), got {eps!r}")
        if self.activation_function not in ACTIVATIONS:
            raise ValueError(f"GPT2Config: activation_function {self.activation_function!r} is not supported "
                             f"(supported: {', '.join(ACTIVATIONS)})")
        for name in ("scale_attn_weights", "scale_attn_by_inverse_layer_idx", "tie_word_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GPT2Config: {name} must be true or false, got {getattr(self, name)!r}")
        std = self.initializer_range
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not 0 < std < math.inf:
            raise ValueError(f"GPT2Config: initializer_range must be a number > 0, got {std!r}")
        for name in ("bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"GPT2Config: {name} must be a non-negative integer or null, got {value!r}")

    @property
    def inner_size(self) -> int:
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> "GPT2Config":
        """The config of HF's ``config.json`` dict: the architecture keys must be there; keys that
        change nothing here (dropout rates, task settings) are ignored; values this model cannot
        follow (cross-attention, another model_type, an unknown activation) raise ValueError."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("model_type", "gpt2") != "gpt2":
            raise ValueError(f"{source}: model_type {data['model_type']!r} is not supported (only 'gpt2')")
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise ValueError(f"{source}: missing key(s) {', '.join(missing)}")
        for key, what in _FLAGS_REFUSED.items():
            if data.get(key):
                raise ValueError(f"{source}: {key}={data[key]!r} is not supported ({what})")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{key: value for key, value in data.items() if key in known})
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """HF's keys (``model_type`` included), for a config.json."""
        return {"model_type": "gpt2", **asdict(self)}


class Conv1D(Module):
    """HF's Conv1D: y = x W + b with W of shape (in, out), the transpose of nn.Linear's."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = Parameter(np.zeros((n_in, n_out), dtype=init.DEFAULT_DTYPE))
        self.bias = Parameter(np.zeros(n_out, dtype=init.DEFAULT_DTYPE))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.swapaxes(0, 1), self.bias)


class GPT2Cache:
    """Keys and values of the positions run so far, one ``KVCache`` per layer, and their count."""

    def __init__(self, n_layer: int) -> None:
        self.layers = [KVCache() for _ in range(n_layer)]
        self.length = 0


class GPT2Attention(Module):
    """Causal multi-head self-attention with a fused (E, 3E) query/key/value projection ``c_attn``."""

    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.c_attn = Conv1D(config.n_embd, 3 * config.n_embd)
        self.c_proj = Conv1D(config.n_embd, config.n_embd)
        head_dim = config.n_embd // config.n_head
        self.scale = head_dim ** -0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= layer_idx + 1

    def forward(self, x: Tensor, mask: Any, cache: KVCache | None) -> Tensor:
        """x: (B, T, E); mask: boolean (B or 1, 1, T, L), True = may attend, or None for plain causal
        attention over x alone. With a cache, this step's keys/values are appended to it."""
        b, t, e = x.shape
        qkv = self.c_attn(x).reshape(b, t, 3, self.n_head, e // self.n_head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, T, D) each
        if cache is not None:
            if cache.k is not None:
                k, v = concat([cache.k, k], axis=2), concat([cache.v, v], axis=2)
            cache.k, cache.v = k, v
        out = F.scaled_dot_product_attention(q, k, v, mask=mask, is_causal=mask is None, scale=self.scale)
        return self.c_proj(out.permute(0, 2, 1, 3).reshape(b, t, e))


class GPT2MLP(Module):
    """c_fc (E -> inner), the activation, c_proj (inner -> E)."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.c_fc = Conv1D(config.n_embd, config.inner_size)
        self.c_proj = Conv1D(config.inner_size, config.n_embd)
        self.approximate = ACTIVATIONS[config.activation_function]

    def forward(self, x: Tensor) -> Tensor:
        h = self.c_fc(x)
        h = F.relu(h) if self.approximate is None else F.gelu(h, approximate=self.approximate)
        return self.c_proj(h)


class GPT2Block(Module):
    """x + attn(ln_1(x)), then + mlp(ln_2(.)): a pre-LN block."""

    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = LayerNorm(config.n_embd, config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(self, x: Tensor, mask: Any, cache: KVCache | None) -> Tensor:
        x = x + self.attn(self.ln_1(x), mask, cache)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(Module):
    """The embeddings and blocks (HF's ``transformer``): ids (B, T) -> hidden states (B, T, E)."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.config = config
        self.wte = Embedding(config.vocab_size, config.n_embd)
        self.wpe = Embedding(config.n_positions, config.n_embd)
        self.h = ModuleList([GPT2Block(config, i) for i in range(config.n_layer)])
        self.ln_f = LayerNorm(config.n_embd, config.layer_norm_epsilon)

    def forward(self, ids: Any, attention_mask: Any = None, position_ids: Any = None,
                cache: GPT2Cache | None = None) -> Tensor:
        """ids: (B, T) integers; attention_mask: (B, past + T), 1 = real token, 0 = padding (None: all
        real); position_ids: (B, T) or (T,), default past, past + 1, ... (as HF's forward); cache: a
        GPT2Cache that this call extends. Returns (B, T, E)."""
        ids = _ids(ids, self.config.vocab_size)
        past = 0 if cache is None else cache.length
        b, t = ids.shape
        positions = _positions(position_ids, past, b, t, self.config.n_positions)
        xp = backend.get_array_module(self.wte.weight.data)
        mask = _attention_mask(xp, attention_mask, b, past, t)
        x = self.wte(xp.asarray(ids)) + self.wpe(xp.asarray(positions))
        for i, block in enumerate(self.h):
            x = block(x, mask, None if cache is None else cache.layers[i])
        if cache is not None:
            cache.length += t
        return self.ln_f(x)


class GPT2LMHeadModel(Module):
    """GPT-2 with its language-model head: ``model(ids)`` -> logits (B, T, vocab_size).

    The head is tied to ``transformer.wte`` unless the config says ``tie_word_embeddings: false``.
    A new model is initialized as HF's (N(0, initializer_range) weights, residual projections scaled
    by 1 / sqrt(2 n_layer), zero biases, unit layer-norm scales).
    """

    def __init__(self, config: GPT2Config, init_weights: bool = True) -> None:
        super().__init__()
        self.config = config
        self.transformer = GPT2Model(config)
        self.lm_head = _Head(config, self.transformer.wte.weight)
        if init_weights:  # False: the weights are about to be loaded
            self.init_weights()

    def init_weights(self) -> None:
        """Draw the weights as HF's ``GPT2PreTrainedModel`` does (from minitf's generator)."""
        std = self.config.initializer_range
        for name, p in self.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                p.data = np.ones(p.shape, dtype=p.dtype)
            elif name.endswith(".bias"):
                p.data = np.zeros(p.shape, dtype=p.dtype)
            else:
                scaled = name.endswith("c_proj.weight")
                p.data = init.normal(p.shape, std / math.sqrt(2 * self.config.n_layer) if scaled else std, p.dtype)

    def forward(self, ids: Any, attention_mask: Any = None, position_ids: Any = None,
                cache: GPT2Cache | None = None) -> Tensor:
        """Logits (B, T, vocab_size) of the next token at each position (arguments as GPT2Model's)."""
        return F.linear(self.transformer(ids, attention_mask, position_ids, cache), self.lm_head.weight)

    def new_cache(self) -> GPT2Cache:
        """An empty key/value cache for incremental decoding."""
        return GPT2Cache(self.config.n_layer)

    def generate(self, ids: Any, max_new_tokens: int, **options: Any) -> np.ndarray:
        """Continue each row of ids (B, T): see ``minitf.pretrained.generation.generate``."""
        return generate(self, ids, max_new_tokens, **options)


class _Head(Module):
    """``lm_head``: holds the output embedding, the token embedding itself when tied."""

    def __init__(self, config: GPT2Config, tied: Parameter) -> None:
        super().__init__()
        self.weight = tied if config.tie_word_embeddings else Parameter(
            np.zeros((config.vocab_size, config.n_embd), dtype=init.DEFAULT_DTYPE))


def _host(array: Any) -> Any:
    """A CuPy array copied to the host; anything else as it is."""
    return backend.to_device(array, "cpu") if backend.is_cupy_array(array) else array


def _ids(ids: Any, vocab_size: int) -> np.ndarray:
    data = ids.data if isinstance(ids, Tensor) else ids
    data = np.asarray(_host(data))
    if data.ndim != 2 or data.dtype.kind not in "iu":
        raise ValueError(f"GPT-2: ids must be integers of shape (batch, length), got shape {data.shape} "
                         f"dtype {data.dtype}")
    bad = _outside(data, vocab_size)
    if bad is not None:
        raise ValueError(f"GPT-2: token id {bad} is outside the vocabulary of {vocab_size}")
    return data


def _outside(values: np.ndarray, high: int) -> int | None:
    """A value of `values` outside [0, high) (the lowest if one is negative), or None."""
    if values.size and int(values.min()) < 0:
        return int(values.min())
    if values.size and int(values.max()) >= high:
        return int(values.max())
    return None


def _positions(position_ids: Any, past: int, b: int, t: int, n_positions: int) -> np.ndarray:
    if position_ids is None:
        positions = np.arange(past, past + t)[None, :]
    else:
        positions = np.asarray(_host(position_ids))
        if positions.dtype.kind not in "iu" or positions.shape not in ((t,), (1, t), (b, t)):
            raise ValueError(f"GPT-2: position_ids must be integers of shape ({b}, {t}) or ({t},), got shape "
                             f"{positions.shape} dtype {positions.dtype}")
    bad = _outside(positions, n_positions)
    if bad is not None:
        raise ValueError(f"GPT-2: position {bad} is outside the model's n_positions {n_positions}"
                         + (" (the input with its cache is too long)" if bad >= n_positions else ""))
    return positions


def _attention_mask(xp: Any, attention_mask: Any, b: int, past: int, t: int) -> Any:
    """The boolean (B or 1, 1, T, past + T) mask of allowed keys, or None for plain causal attention."""
    length = past + t
    keys = np.ones((1, length), dtype=bool)
    if attention_mask is not None:
        given = np.asarray(_host(attention_mask))
        if given.shape != (b, length):
            raise ValueError(f"GPT-2: attention_mask must have shape ({b}, {length}) (batch, cached + new "
                             f"length), got {given.shape}")
        if not np.isin(given, (0, 1)).all():
            raise ValueError("GPT-2: attention_mask must hold 1 (real token) and 0 (padding) only")
        keys = given.astype(bool)
    if keys.all() and (past == 0 or t == 1):  # no padding: plain causal attention, or all keys
        return None if past == 0 else xp.ones((1, 1, 1, length), dtype=bool)
    causal = np.arange(length)[None, :] <= past + np.arange(t)[:, None]  # (T, L)
    return xp.asarray(keys[:, None, None, :] & causal[None, None])
