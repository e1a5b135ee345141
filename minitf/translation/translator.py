"""Translate text with a trained checkpoint: tokenizer + model + greedy or beam decoding."""
from __future__ import annotations

import os
from typing import Callable, Iterable, Sequence

from ..data.corpus import is_blank
from ..errors import InputError
from ..nn import Seq2SeqTransformer
from ..tokenizer import BPETokenizer
from .decode import translate_ids
from .forced import ReferenceScore, score_ids
from .ensemble import Ensemble, load_ensemble, load_model
from .nbest import Hypothesis
from .tokens import special_ids


class Translator:
    """A model and its tokenizer, ready to translate sentences."""

    def __init__(self, model: Seq2SeqTransformer | Ensemble, tokenizer: BPETokenizer) -> None:
        vocab = model.config.src_vocab_size
        if tokenizer.vocab_size != vocab:
            raise ValueError(f"vocabulary mismatch: the tokenizer has {tokenizer.vocab_size} tokens, "
                             f"the model {vocab}")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.pad_id, self.bos_id, self.eos_id = special_ids(tokenizer)
        # No special token but EOS is ever generated (BOS, padding, any other the tokenizer has).
        self.banned_ids = sorted(set(tokenizer.special_tokens.values()) - {self.eos_id})
        # Source and target positions share the model's table; leave room for the output.
        self.max_source_tokens = model.config.max_len - 1

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike | Sequence[str | os.PathLike], device: str = "cpu",
                        tokenizer: BPETokenizer | None = None,
                        log: Callable[[str], None] | None = None) -> "Translator":
        """Load weights, configuration and (unless given) the tokenizer saved with them.

        Several paths (a list) make an ensemble (ensemble.load_ensemble: same tokenizer required;
        `log` gets a note if their max_len differ); a list of one is that one model.
        """
        if not isinstance(path, (str, os.PathLike)):
            paths = list(path)
            if len(paths) != 1:
                return cls(*load_ensemble(paths, device, tokenizer, log))
            path = paths[0]
        model, saved, _ = load_model(path, device)
        return cls(model, tokenizer if tokenizer is not None else saved)

    def problem(self, sentence: str) -> str | None:
        """Why `sentence` cannot be translated ("is empty", "is blank (no visible character)", "has N
        tokens, more than ..."), or None."""
        return self._problem(sentence, self.tokenizer.encode(sentence))

    def _problem(self, sentence: str, ids: list[int]) -> str | None:
        if not ids or not sentence:
            return "is empty"
        if is_blank(sentence):  # nothing to translate: the model would make something up
            return "is blank (no visible character)"
        if len(ids) > self.max_source_tokens:
            return f"has {len(ids)} tokens, more than the model's maximum of {self.max_source_tokens}"
        return None

    def translate(self, sentences: Iterable[str], beam_size: int = 1, batch_size: int = 64,
                  length_penalty: float = 0.6, max_len_a: float = 1.5, max_len_b: float = 10,
                  no_repeat_ngram_size: int = 0, sample: bool = False, temperature: float | None = None,
                  top_k: int | None = None, top_p: float | None = None, seed: int | None = None) -> list[str]:
        """Translate each sentence into at most max_len_a * (source tokens) + max_len_b tokens.

        no_repeat_ngram_size N > 0: no output repeats one of its own N-grams. sample=True (greedy only)
        draws each token instead of taking the best one, shaped by temperature (default 1), top_k (default
        all), top_p (default 1), drawn with `seed` (default 0): see minitf.translation.sampling.

        `sentences`: a list (or any iterable) of strings; one string is a TypeError, not a list of
        characters. A sentence longer than the model allows, empty, blank (no visible character), or
        not encodable raises InputError (a ValueError) naming it (check one beforehand with `problem`).
        """
        return self._translate(sentences, beam_size=beam_size, batch_size=batch_size, length_penalty=length_penalty,
                               max_len_a=max_len_a, max_len_b=max_len_b, no_repeat_ngram_size=no_repeat_ngram_size,
                               sample=sample, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)

    def translate_nbest(self, sentences: Iterable[str], nbest: int, beam_size: int = 5, batch_size: int = 64,
                        length_penalty: float = 0.6, max_len_a: float = 1.5,
                        max_len_b: float = 10, no_repeat_ngram_size: int = 0) -> list[list[Hypothesis]]:
        """The `nbest` best hypotheses of beam search per sentence, best first (nbest <= beam_size):
        Hypothesis(output=text, score=length-penalised log-prob, log_prob=raw log-prob). Same checks as
        `translate`; beam_size = 1 (nbest 1) is greedy search with its scores."""
        return self._translate(sentences, nbest=nbest, beam_size=beam_size, batch_size=batch_size,
                               length_penalty=length_penalty, max_len_a=max_len_a, max_len_b=max_len_b,
                               no_repeat_ngram_size=no_repeat_ngram_size)

    def _translate(self, sentences: Iterable[str], nbest: int | None = None, **options) -> list:
        if isinstance(sentences, (str, bytes)):
            raise TypeError(f"translate takes a list of sentences, got one {type(sentences).__name__}: "
                            "pass a list of sentences, e.g. [text]")
        sentences = list(sentences)  # an iterator would be used up by the checks below
        ids = [self._encode(number, s) for number, s in enumerate(sentences, 1)]
        for number, (sentence, seq) in enumerate(zip(sentences, ids), 1):
            reason = self._problem(sentence, seq)
            if reason:
                raise InputError(f"sentence {number} {reason}")
        outputs = translate_ids(self.model, ids, bos_id=self.bos_id, eos_id=self.eos_id, pad_id=self.pad_id,
                                banned_ids=self.banned_ids, nbest=nbest, **options)
        if nbest is None:
            return [self.tokenizer.decode(o, errors="replace") for o in outputs]
        return [[h._replace(output=self.tokenizer.decode(h.output, errors="replace")) for h in hyps]
                for hyps in outputs]

    def reference_problem(self, reference: str) -> str | None:
        """Why `reference` cannot be scored as a translation ("has N tokens, more than ..."), or None.
        The decoder reads BOS + its tokens, and predicts its tokens + EOS: they must fit the
        model's positions. An empty reference can be scored (the probability of EOS alone)."""
        try:
            ids = self.tokenizer.encode(reference)
        except ValueError as exc:  # text the tokenizer cannot encode, e.g. from undecodable bytes
            return f"cannot be encoded ({exc})"
        return self._reference_problem(ids)

    def _reference_problem(self, ids: list[int]) -> str | None:
        limit = self.model.config.max_len
        if len(ids) > limit - 1:
            return (f"has {len(ids)} tokens, more than the model's maximum of {limit - 1} "
                    f"(its {limit} positions hold BOS and the tokens)")
        return None

    def score(self, sentences: Iterable[str], references: Iterable[str], batch_size: int = 64) -> list[ReferenceScore]:
        """Forced decoding: how likely the model finds each reference as the translation of its
        sentence; a ReferenceScore (log-probability of each reference token and of EOS; total,
        per_token) per pair, in order. A sentence the model cannot translate (see `problem`) or a
        reference longer than its positions raises InputError naming it.
        """
        if isinstance(sentences, (str, bytes)) or isinstance(references, (str, bytes)):
            raise TypeError("score takes a list of sentences and a list of references, e.g. [text], [reference]")
        sentences, references = list(sentences), list(references)
        if len(sentences) != len(references):
            raise InputError(f"got {len(sentences)} sentences but {len(references)} references; "
                             "they must be paired one to one")
        src_ids = [self._encode(number, s) for number, s in enumerate(sentences, 1)]
        tgt_ids = [self._encode(number, r, "reference") for number, r in enumerate(references, 1)]
        for number, (sentence, ids, target) in enumerate(zip(sentences, src_ids, tgt_ids), 1):
            reason = self._problem(sentence, ids)
            if reason:
                raise InputError(f"sentence {number} {reason}")
            reason = self._reference_problem(target)
            if reason:
                raise InputError(f"reference {number} {reason}")
        log_probs = score_ids(self.model, src_ids, tgt_ids, bos_id=self.bos_id, eos_id=self.eos_id,
                              pad_id=self.pad_id, batch_size=batch_size)
        return [ReferenceScore(tuple(float(x) for x in row)) for row in log_probs]

    def _encode(self, number: int, sentence: str, what: str = "sentence") -> list[int]:
        try:
            return self.tokenizer.encode(sentence)
        except ValueError as exc:  # text the tokenizer cannot encode, e.g. from undecodable bytes
            raise InputError(f"{what} {number}: {exc}") from exc
