"""Evaluating a translation model: validation loss, and greedy BLEU, chrF and exact match."""
from __future__ import annotations

from typing import Callable

from .. import functional as F
from ..autograd import no_grad
from ..data import Example, TokenBatcher
from ..errors import InputError
from ..nn import Seq2SeqTransformer
from ..tokenizer import BPETokenizer
from .dataset import on_device
from .metrics import bleu, chrf, exact_match
from .tokens import special_ids
from .translator import Translator


def evaluate(model: Seq2SeqTransformer, tokenizer: BPETokenizer, pairs: list[tuple[str, str]], max_tokens: int,
             sentences: int, device: str, log: Callable[[str], None] = print) -> dict[str, float]:
    """Validation loss (plain cross-entropy per token) and greedy BLEU, chrF, exact match of the
    first `sentences` pairs.

    Both are measured on the same pairs and nothing is truncated: only pairs longer than
    the model's positions (its max_len, 2 * max_len + 16 by default) or with an empty
    source are left out, and their number is logged.
    """
    examples, kept = pairs_the_model_holds(model, tokenizer, pairs, log)
    scores = translation_scores(model, tokenizer, kept[:sentences])
    return {"val_loss": loss_on(model, tokenizer, examples, max_tokens, device), **scores}


def pairs_the_model_holds(model: Seq2SeqTransformer, tokenizer: BPETokenizer, pairs: list[tuple[str, str]],
                          log: Callable[[str], None] = print) -> tuple[list[Example], list[tuple[str, str]]]:
    """The encoded pairs that fit the model's positions (target input = BOS + tokens), and their texts."""
    limit = model.config.max_len - 1
    examples, kept = [], []
    for source, target in pairs:
        example = Example(tokenizer.encode(source), tokenizer.encode(target))
        if 0 < len(example.src) <= limit and len(example.tgt) <= limit:
            examples.append(example)
            kept.append((source, target))
    if len(kept) < len(pairs):
        log(f"evaluation: {len(pairs) - len(kept)} of {len(pairs)} pairs left out (longer than the "
            f"model's {limit} tokens, or an empty source)")
    return examples, kept


def loss_on(model: Seq2SeqTransformer, tokenizer: BPETokenizer, examples: list[Example], max_tokens: int,
            device: str) -> float:
    """Mean cross-entropy per target token (no label smoothing) over encoded examples, in batches
    of `max_tokens`."""
    pad_id, bos_id, eos_id = special_ids(tokenizer)
    batcher = TokenBatcher(examples, max_tokens, pad_id=pad_id, bos_id=bos_id, eos_id=eos_id, shuffle=False)
    total, count = 0.0, 0
    model.eval()
    with no_grad():
        for batch in batcher.epoch(0):
            src, tgt_in, tgt_out, src_mask = on_device(batch, device)
            logits = model(src, tgt_in, src_mask)
            total += F.cross_entropy(logits, tgt_out, ignore_index=pad_id, reduction="sum").item()
            count += batch.n_tgt_tokens
    model.train()
    if not count:
        raise InputError(f"no loss to measure: {len(examples)} examples hold no target tokens")
    return total / count


def translate(model: Seq2SeqTransformer, tokenizer: BPETokenizer, sentences: list[str],
              beam_size: int = 1) -> list[str]:
    """Translate whole sentences (none is truncated; one longer than the model allows raises
    ValueError naming it, as Translator does); the model is left in training mode."""
    try:
        return Translator(model, tokenizer).translate(sentences, beam_size=beam_size)
    finally:
        model.train()


def translation_scores(model: Seq2SeqTransformer, tokenizer: BPETokenizer,
                       pairs: list[tuple[str, str]]) -> dict[str, float]:
    """BLEU, chrF and exact match of the model's greedy translations of `pairs`."""
    hypotheses = translate(model, tokenizer, [s for s, _ in pairs])
    references = [t for _, t in pairs]
    return {"bleu": bleu(hypotheses, references), "chrf": chrf(hypotheses, references),
            "exact_match": exact_match(hypotheses, references)}
