"""Sampling instead of greedy search (`minitf translate --sample`, e.g. for back-translation).

At each step the next token of a row is drawn from the model's distribution, reshaped as in
fairseq and Hugging Face, in this order:

1. temperature T > 0: the logits are divided by T (T < 1 sharpens, T -> 0 is greedy search);
2. top-k K >= 1: only the K most likely tokens are kept (ties by the lower id, so K = 1 is
   greedy search exactly);
3. top-p P in (0, 1]: of those, only the smallest set of most likely tokens whose probability
   adds up to at least P ("nucleus sampling"; P = 1 keeps all).

BOS, banned ids and, with no_repeat_ngram_size, repeated n-grams are excluded before (decode.py).
The draws come from NumPy Generators: sentence i of a call (its place in the list given to
translate_ids or Translator.translate) has its own, `numpy.random.default_rng([seed, i])`, so its
translation depends on the seed, the sentence and the options only, not on the batch it lands in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

__all__ = ["Sampling", "top_k_filter", "top_p_filter", "sampling_probs"]


def top_k_filter(scores: np.ndarray, k: int | None) -> np.ndarray:
    """(R, V) scores with all but the k highest of each row set to -inf (ties: the lower id kept)."""
    if k is None or k >= scores.shape[-1]:
        return scores
    order = np.argsort(-scores, axis=-1, kind="stable")
    out = np.full_like(scores, -np.inf)
    kept = order[:, :k]
    rows = np.arange(scores.shape[0])[:, None]
    out[rows, kept] = scores[rows, kept]
    return out


def top_p_filter(probs: np.ndarray, p: float) -> np.ndarray:
    """(R, V) probabilities with each row cut to its smallest set of most likely tokens whose mass is
    >= p (ties: the lower id first), renormalized. p = 1 returns `probs` as they are."""
    if p >= 1.0:
        return probs
    order = np.argsort(-probs, axis=-1, kind="stable")
    rows = np.arange(probs.shape[0])[:, None]
    sorted_probs = probs[rows, order]
    before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # mass of the more likely tokens
    keep = np.zeros(probs.shape, dtype=bool)
    keep[rows, order] = before < p * sorted_probs.sum(axis=-1, keepdims=True)
    out = np.where(keep, probs, 0.0)
    return out / out.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Sampling:
    """The sampling options (decoding_options.SAMPLING; greedy_decode checks them)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0
    seed: int = 0

    def generators(self, sentences: Iterable[int]) -> list[np.random.Generator]:
        """One Generator per sentence number."""
        return [np.random.default_rng([self.seed, int(i)]) for i in sentences]

    def draw(self, logits: np.ndarray, generators: list[np.random.Generator]) -> np.ndarray:
        """One token id per row of (R, V) logits (-inf: excluded), row r drawn with generators[r]."""
        probs = sampling_probs(logits, self.temperature, self.top_k, self.top_p)
        cdf = np.cumsum(probs, axis=-1)
        # u in (0, 1]: the first token whose cumulative mass reaches u * total has a positive probability
        u = np.array([1.0 - g.random() for g in generators]) * cdf[:, -1]
        return np.minimum((cdf < u[:, None]).sum(axis=-1), probs.shape[-1] - 1)


def sampling_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float = 1.0) -> np.ndarray:
    """The distribution tokens are drawn from: softmax(logits / temperature), cut by top-k and top-p.

    Computed in float64 from logits - max, so that a tiny temperature gives 0 and 1, not inf / inf."""
    scores = top_k_filter(np.asarray(logits, dtype=np.float64), top_k)
    scores = (scores - scores.max(axis=-1, keepdims=True)) / temperature
    probs = np.exp(scores)
    return top_p_filter(probs / probs.sum(axis=-1, keepdims=True), top_p)
