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

from ..nn.sampling import draw, sampling_probs, top_k_filter, top_p_filter

__all__ = ["Sampling", "top_k_filter", "top_p_filter", "sampling_probs"]


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
        return draw(probs, np.array([g.random() for g in generators]))
