"""Ensembles: several models that translate together, averaging their probabilities at each step.

`Ensemble(models)` offers what decode.py's searches use of a Transformer (config.max_len, device,
training/eval/train, encode, new_caches, decode with one key/value cache per model and layer), so
greedy and beam search run on it unchanged. Its `decode` returns, for each position, the log of
the mean of the models' softmaxes,

    log p(y) = logsumexp_m(log_softmax(logits_m)(y)) - log M,

computed in float64 (a log-probability that the searches' own log-softmax leaves as it is, up to
rounding). A lone model's logits are returned untouched, so `Ensemble([model])` decodes exactly
as `model` does (same tokens, same scores).

`load_ensemble(paths)` reads several checkpoints of `minitf train` and refuses, naming both files,
two whose tokenizers differ (compared by their saved content) or whose special-token ids differ.
Models with different max_len may be combined: the ensemble's limit is the smallest (a note says so).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .. import backend
from ..autograd import Tensor
from ..functional.softmax import logsumexp_array
from ..nn import Seq2SeqTransformer, TransformerConfig
from ..tokenizer import BPETokenizer
from .checkpoint import CheckpointError, load_checkpoint
from .tokens import special_ids

__all__ = ["Ensemble", "EnsembleConfig", "load_ensemble", "load_model"]


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


@dataclass(frozen=True)
class EnsembleConfig:
    """What the searches and Translator read of a model's configuration."""

    src_vocab_size: int
    tgt_vocab_size: int
    max_len: int  # the smallest of the models'


class _Memories:
    """The encoder outputs of every model; rows are taken from all of them at once."""

    def __init__(self, parts: Sequence[Any]) -> None:
        self.parts = tuple(parts)

    def __getitem__(self, index: Any) -> "_Memories":
        return _Memories(Tensor(_raw(m)[index]) for m in self.parts)


class _Caches(list):
    """Every model's decoder-layer caches in one list (decode.py reorders them all); `per_model` splits them."""

    def __init__(self, per_model: Sequence[list]) -> None:
        super().__init__(layer for caches in per_model for layer in caches)
        self.per_model = [list(caches) for caches in per_model]


class Ensemble:
    """Models with one vocabulary, decoded as one: the mean of their probabilities at each step."""

    def __init__(self, models: Sequence[Seq2SeqTransformer]) -> None:
        models = list(models)
        if not models:
            raise ValueError("an ensemble needs at least one model")
        sizes = {(m.config.src_vocab_size, m.config.tgt_vocab_size) for m in models}
        if len(sizes) > 1:
            raise ValueError(f"the models' vocabularies differ in size: {sorted(sizes)}")
        devices = {str(m.device) for m in models}
        if len(devices) > 1:
            raise ValueError(f"the models sit on different devices: {sorted(devices)}")
        self.models = models
        (src, tgt), = sizes
        self.config = EnsembleConfig(src, tgt, min(m.config.max_len for m in models))

    def __len__(self) -> int:
        return len(self.models)

    @property
    def device(self) -> Any:
        return self.models[0].device

    @property
    def training(self) -> bool:
        return any(m.training for m in self.models)

    def train(self, mode: bool = True) -> "Ensemble":
        for m in self.models:
            m.train(mode)
        return self

    def eval(self) -> "Ensemble":
        return self.train(False)

    def to(self, *args: Any, **kwargs: Any) -> "Ensemble":
        for m in self.models:
            m.to(*args, **kwargs)
        return self

    def encode(self, src: Any, src_mask: Any) -> _Memories:
        return _Memories(m.encode(src, src_mask) for m in self.models)

    def new_caches(self) -> _Caches:
        return _Caches([m.new_caches() for m in self.models])

    def decode(self, tgt_in: Any, memory: _Memories, src_mask: Any, caches: _Caches | None = None,
               start: int = 0) -> Any:
        """(B, T, V) log-probabilities of the averaged distribution (a lone model's logits as they are)."""
        per_model = caches.per_model if caches is not None else [None] * len(self.models)
        logits = [_raw(m.decode(tgt_in, mem, src_mask, c, start=start))
                  for m, mem, c in zip(self.models, memory.parts, per_model)]
        if len(logits) == 1:
            return logits[0]
        xp = backend.get_array_module(logits[0])
        log_probs = []
        for x in logits:
            x = x.astype(xp.float64)
            log_probs.append(x - logsumexp_array(x, axis=-1))
        stacked = xp.stack(log_probs)
        return logsumexp_array(stacked, axis=0)[0] - math.log(len(logits))


def _tokenizer_text(meta: dict) -> str:
    return json.dumps(meta["tokenizer"], sort_keys=True)


def load_ensemble(paths: Sequence[str], device: str = "cpu", tokenizer: BPETokenizer | None = None,
                  log: Callable[[str], None] | None = None) -> tuple[Ensemble, BPETokenizer]:
    """The models of checkpoints `paths` as an Ensemble, and their (common) tokenizer.

    CheckpointError names a missing or unreadable file, one without a model configuration or
    tokenizer, and both files of a pair whose special-token ids or tokenizers differ. `log` gets
    a note when the models' max_len differ (the ensemble uses the smallest).
    """
    if not paths:
        raise CheckpointError("no checkpoint given")
    models, first = [], None
    for path in paths:
        model, own, meta = load_model(path, device)
        if first is None:
            first = (path, meta, own)
        else:
            _check_same_tokenizer(first, (path, meta, own))
        models.append(model)
    lengths = [m.config.max_len for m in models]
    if log is not None and len(set(lengths)) > 1:
        log(f"the checkpoints' models hold {', '.join(map(str, lengths))} positions (max_len); the ensemble "
            f"uses the smallest, {min(lengths)}: longer sentences are refused and outputs cut to it")
    return Ensemble(models), (tokenizer if tokenizer is not None else first[2])


def load_model(path: str | os.PathLike, device: str = "cpu") -> tuple[Seq2SeqTransformer, BPETokenizer, dict]:
    """The model of checkpoint `path` on `device`, the tokenizer saved with it, and its metadata."""
    model_state, meta, _ = load_checkpoint(path, with_optimizer=False)
    missing = [key for key in ("model_config", "tokenizer") if key not in meta]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks the model configuration or tokenizer "
                              f"({' and '.join(missing)} missing)")
    model = Seq2SeqTransformer(TransformerConfig(**meta["model_config"]))
    model.load_state_dict(model_state, cast=True)  # float16/float64 weights (the checker allows them)
    return model.to(device), BPETokenizer.from_dict(meta["tokenizer"], source=str(path)), meta


def _check_same_tokenizer(a: tuple, b: tuple) -> None:
    (path_a, meta_a, tok_a), (path_b, meta_b, tok_b) = a, b
    ids_a, ids_b = special_ids(tok_a), special_ids(tok_b)
    if ids_a != ids_b:
        raise CheckpointError(f"checkpoints {path_a} and {path_b} give different special-token ids "
                              f"((pad, bos, eos) = {ids_a} and {ids_b}): they cannot be ensembled")
    if _tokenizer_text(meta_a) != _tokenizer_text(meta_b):
        sizes = (f"{tok_a.vocab_size} and {tok_b.vocab_size} tokens" if tok_a.vocab_size != tok_b.vocab_size
                 else f"both of {tok_a.vocab_size} tokens, but not the same merges or settings")
        raise CheckpointError(f"checkpoints {path_a} and {path_b} have different tokenizers ({sizes}): an "
                              "ensemble needs models trained with the same tokenizer")
