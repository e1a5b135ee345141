"""N-best lists: the K best finished hypotheses of beam search per sentence, with their scores.

Each hypothesis carries two scores: `log_prob`, the sum of the log-probabilities of its tokens
(EOS included when it ended with one), and `score`, the value beam search ranks by,

    score = log_prob / ((5 + n) / 6) ** length_penalty     (n: its tokens, EOS counted)

`minitf translate --nbest K` prints one line per hypothesis, best first, in the format of
fairseq's and Moses' n-best lists:

    SENTENCE ||| HYPOTHESIS ||| SCORE ||| LOG_PROB

SENTENCE is the 0-based number of the input line; a line that is not translated (empty, blank,
too long: a warning names it) has no hypothesis line.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

__all__ = ["Hypothesis", "Finished", "greedy_hypotheses", "nbest_line"]


class Hypothesis(NamedTuple):
    output: Any  # the token ids (decode.py), or their text (Translator.translate_nbest)
    score: float  # log_prob with the length penalty: what beam search ranks by
    log_prob: float  # the sum of its tokens' log-probabilities


class Finished:
    """The `size` best finished hypotheses of each row of a batch, best first (ties: the earlier first)."""

    def __init__(self, batch: int, size: int) -> None:
        self.size = size
        self.rows: list[list[Hypothesis]] = [[] for _ in range(batch)]

    def add(self, row: int, score: float, log_prob: float, tokens: np.ndarray) -> None:
        kept = self.rows[row]
        if len(kept) == self.size and not score > kept[-1].score:
            return
        at = next((i for i, h in enumerate(kept) if score > h.score), len(kept))
        kept.insert(at, Hypothesis(tokens.tolist(), float(score), float(log_prob)))
        del kept[self.size:]

    def threshold(self, rows: np.ndarray) -> np.ndarray:
        """Per row, the score a live hypothesis must beat to enter the list (-inf while it is not full)."""
        return np.array([kept[-1].score if len(kept) == self.size else -np.inf
                         for kept in (self.rows[r] for r in rows.tolist())], dtype=np.float64)

    def best_tokens(self) -> list[list[int]]:
        return [kept[0].output if kept else [] for kept in self.rows]

    def hypotheses(self) -> list[list[Hypothesis]]:
        """Each row's list; a row that decoded nothing (length limit 0) has the empty output, of log-prob 0."""
        return [kept if kept else [Hypothesis([], 0.0, 0.0)] for kept in self.rows]


def greedy_hypotheses(outputs: Sequence[list[int]], log_probs: np.ndarray, limits: np.ndarray,
                      penalty: Callable[[int], float]) -> list[list[Hypothesis]]:
    """Greedy search's outputs as one-hypothesis lists scored as beam search scores them (`penalty`:
    the length penalty of n tokens): an output shorter than its row's limit ended with EOS, which
    counts as a token."""
    result = []
    for tokens, log_prob, limit in zip(outputs, log_probs.tolist(), limits.tolist()):
        n = len(tokens) + (len(tokens) < limit)
        result.append([Hypothesis(tokens, log_prob / penalty(n), log_prob)])
    return result


def nbest_line(number: int, text: str, hypothesis: Hypothesis) -> str:
    """One line of an n-best list: `number ||| text ||| score ||| log_prob` (text already one line)."""
    return f"{number} ||| {text} ||| {hypothesis.score:.6f} ||| {hypothesis.log_prob:.6f}"
