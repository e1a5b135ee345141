"""Forced decoding: how likely a model finds given translations (`minitf score`, Translator.score).

The decoder reads BOS + reference tokens in one teacher-forced pass (no search, so nothing is
banned or cut off), and the score of a reference is the sum over its tokens and the final EOS of
log p(token | source, the tokens before it), from the log-softmax of the model's logits (float64).
Padding never changes a score: padded source positions get no attention, padded target positions
are left out of the sum.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..data import read_parallel
from ..data.batching import make_batch
from ..errors import InputError
from .decoding_options import check_decoding_options
from .decode import _host, _inference, _log_softmax, _on_model_device, _raw

__all__ = ["ReferenceScore", "score_ids", "score_files", "format_score"]


@dataclass(frozen=True)
class ReferenceScore:
    """The log-probability of each token of a reference, its final EOS included (natural log)."""
    token_log_probs: tuple[float, ...]

    @property
    def total(self) -> float:
        """log p(reference | source): the sum over its tokens and EOS."""
        return math.fsum(self.token_log_probs)

    @property
    def tokens(self) -> int:
        """How many tokens were scored: the reference's tokens plus EOS."""
        return len(self.token_log_probs)

    @property
    def per_token(self) -> float:
        """The mean log-probability per scored token (total / tokens)."""
        return self.total / self.tokens


def score_ids(model: Any, src_ids_list: Sequence[Sequence[int]], tgt_ids_list: Sequence[Sequence[int]], *,
              bos_id: int, eos_id: int, pad_id: int, batch_size: int = 64) -> list[np.ndarray]:
    """For each (source ids, target ids) pair, the float64 log-probabilities the model gives the
    target tokens and EOS (len(target) + 1 values), in the input order, in batches of `batch_size`.

    Every source needs at least one token, and source and BOS + target must fit the model's
    positions (max_len); ValueError otherwise, naming the pair.
    """
    if len(src_ids_list) != len(tgt_ids_list):
        raise ValueError(f"got {len(src_ids_list)} sources but {len(tgt_ids_list)} targets; "
                         "they must be paired one to one")
    check_decoding_options(batch_size=batch_size)
    limit = int(model.config.max_len)
    for number, (src, tgt) in enumerate(zip(src_ids_list, tgt_ids_list), 1):
        if not 0 < len(src) <= limit or len(tgt) + 1 > limit:
            raise ValueError(f"pair {number}: a source of {len(src)} and a target of {len(tgt)} tokens do not "
                             f"fit: sources need 1 to {limit} tokens, targets at most {limit - 1}")
    examples = [(list(s), list(t)) for s, t in zip(src_ids_list, tgt_ids_list)]
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][1]), len(examples[i][0])))
    results: list[np.ndarray] = [np.zeros(0)] * len(examples)
    with _inference(model):
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = make_batch([examples[i] for i in chunk], pad_id=pad_id, bos_id=bos_id, eos_id=eos_id)
            src, tgt_in, src_mask = (_on_model_device(a, model) for a in (batch.src, batch.tgt_in, batch.src_mask))
            log_probs = _host(_log_softmax(_raw(model(src, tgt_in, src_mask))))  # (B, T, V) float64
            picked = np.take_along_axis(log_probs, batch.tgt_out[:, :, None], axis=-1)[:, :, 0]
            for row, i in enumerate(chunk):
                results[i] = picked[row, :len(examples[i][1]) + 1].copy()
    return results


def score_files(translator: Any, src: str, ref: str, batch_size: int = 64) -> list[ReferenceScore]:
    """Scores of the references in file `ref` as translations of the lines of `src` (aligned).

    InputError names the file and line of a source the model cannot read (empty, blank, too long)
    or of a reference longer than the model's positions hold; CorpusFormatError (from
    read_parallel) files of different lengths, an empty line, text that is not UTF-8.
    """
    corpus = read_parallel(src, ref)
    if not corpus.sources:
        raise InputError(f"{src} and {ref} hold no lines: nothing to score")
    for number, (source, reference) in enumerate(zip(corpus.sources, corpus.targets), 1):
        problem = translator.problem(source)
        if problem:
            raise InputError(f"{src}, line {number}: the source {problem}; it cannot be scored")
        problem = translator.reference_problem(reference)
        if problem:
            raise InputError(f"{ref}, line {number}: the reference {problem}")
    return translator.score(corpus.sources, corpus.targets, batch_size=batch_size)


def format_score(score: ReferenceScore) -> str:
    """One output line of `minitf score`: total log-probability, per token, tokens (tab-separated)."""
    return f"{score.total:.4f}\t{score.per_token:.4f}\t{score.tokens}"
