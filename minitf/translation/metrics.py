"""Corpus-level translation metrics on detokenized text: BLEU and chrF (via sacrebleu), exact match.

BLEU uses sacrebleu's defaults (13a tokenization, up to 4-grams, 'exp' smoothing, cased unless
`lowercase`); chrF is sacrebleu's chrF2 (character 6-grams, beta 2). One reference per
hypothesis. Scores are on sacrebleu's 0-100 scale; exact_match is a fraction in [0, 1]. An empty
corpus scores 0.
"""
from __future__ import annotations

from typing import Sequence

from sacrebleu.metrics import BLEU, CHRF

__all__ = ["bleu", "chrf", "exact_match"]


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[list[str], list[str]]:
    hyps, refs = list(hypotheses), list(references)
    if len(hyps) != len(refs):
        raise ValueError(f"got {len(hyps)} hypotheses but {len(refs)} references; "
                         "they must be paired one to one")
    for name, items in (("hypotheses", hyps), ("references", refs)):
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise TypeError(f"{name}[{i}] must be a string (detokenized text), "
                                f"got {type(item).__name__}")
    return hyps, refs


def bleu(hypotheses: Sequence[str], references: Sequence[str], lowercase: bool = False) -> float:
    """Corpus BLEU (0-100) of detokenized hypotheses against one reference each (sacrebleu, 13a)."""
    hyps, refs = _check(hypotheses, references)
    if not hyps:
        return 0.0
    return float(BLEU(lowercase=lowercase).corpus_score(hyps, [refs]).score)


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF2 (0-100) of hypotheses against one reference each (sacrebleu)."""
    hyps, refs = _check(hypotheses, references)
    if not hyps:
        return 0.0
    return float(CHRF().corpus_score(hyps, [refs]).score)


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of hypotheses identical to their reference."""
    hyps, refs = _check(hypotheses, references)
    if not hyps:
        return 0.0
    return sum(h == r for h, r in zip(hyps, refs)) / len(hyps)
