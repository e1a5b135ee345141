"""Corpus-level translation metrics on detokenized text: BLEU and chrF (via sacrebleu), exact match.

BLEU uses sacrebleu's defaults (13a tokenization, up to 4-grams, 'exp' smoothing, cased unless
`lowercase`); chrF is sacrebleu's chrF2 (character 6-grams, beta 2). One reference per
hypothesis. Scores are on sacrebleu's 0-100 scale; exact_match is a fraction in [0, 1]. An empty
corpus scores 0 (corpus_scores, which reports signatures too, refuses one).
"""
from __future__ import annotations

from typing import Sequence

from sacrebleu.metrics import BLEU, CHRF

__all__ = ["bleu", "chrf", "corpus_scores", "exact_match"]


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


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float | str]:
    """Cased BLEU, lowercased BLEU and chrF2 of a corpus, each with sacrebleu's signature.

    {"bleu": 39.8, "bleu_lowercase": 41.2, "chrf": 62.1, "bleu_signature":
    "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0", "bleu_lowercase_signature": ...,
    "chrf_signature": ...}: the signature (`metric.get_signature()`) says how the score was made,
    so that a reader can tell a cased, detokenized 13a score from a lowercased one. ValueError for
    an empty corpus (sacrebleu has no signature without one).
    """
    hyps, refs = _check(hypotheses, references)
    if not hyps:
        raise ValueError("no sentences to score")
    scores: dict[str, float | str] = {}
    for name, metric in (("bleu", BLEU()), ("bleu_lowercase", BLEU(lowercase=True)), ("chrf", CHRF())):
        scores[name] = float(metric.corpus_score(hyps, [refs]).score)
        scores[f"{name}_signature"] = str(metric.get_signature())
    return scores


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of hypotheses identical to their reference."""
    hyps, refs = _check(hypotheses, references)
    if not hyps:
        return 0.0
    return sum(h == r for h, r in zip(hyps, refs)) / len(hyps)
