"""WordPiece tokenizer of BERT-family models, read from a Hugging Face ``tokenizer.json``.

>>> tok = WordPieceTokenizer.from_file("model/tokenizer.json")          # doctest: +SKIP
>>> enc = tok.encode("Naïve café?", "Second part")                      # doctest: +SKIP
>>> enc.ids, enc.type_ids, enc.offsets, enc.attention_mask               # doctest: +SKIP

Encoding follows ``tokenizers``: added tokens (``[MASK]``, ...) are found in the original text
first; the rest is normalized (``bert_text.BertNormalizer``), split into words
(``bert_pre_tokenize``), and each word into the longest vocabulary pieces from the left, pieces after
the first carrying the prefix ``##`` (a word longer than ``max_input_chars_per_word``, or one that
cannot be split, is ``[UNK]``). Then truncation (longest first for pairs: one token at a time from
the longer sequence, the second on a tie), the template's special tokens, and padding. Offsets are
``[start, end)`` character offsets into the original text ((0, 0) for special and pad tokens).
Which file features are supported: see ``wordpiece_file``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence, Union

from .bert_text import bert_pre_tokenize
from .wordpiece_file import MAX_LENGTH, Padding, WordPieceSpec, read_wordpiece

TextInput = Union[str, tuple[str, str]]


@dataclass
class Encoding:
    """One encoded text (or pair): parallel lists, one entry per token."""

    ids: list[int] = field(default_factory=list)
    type_ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    offsets: list[tuple[int, int]] = field(default_factory=list)
    attention_mask: list[int] = field(default_factory=list)
    special_tokens_mask: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def _append(self, token_id: int, token: str, type_id: int, offsets: tuple[int, int],
                special: int = 0, attend: int = 1) -> None:
        self.ids.append(token_id)
        self.tokens.append(token)
        self.type_ids.append(type_id)
        self.offsets.append(offsets)
        self.special_tokens_mask.append(special)
        self.attention_mask.append(attend)


class WordPieceTokenizer:
    """A BERT WordPiece tokenizer: ``encode``, ``encode_batch``, truncation and padding settings."""

    def __init__(self, spec: WordPieceSpec) -> None:
        self.spec = spec
        self.vocab = {**spec.vocab, **spec.added}
        self._tokens = {i: t for t, i in spec.vocab.items()}
        self._tokens.update({i: t for t, i in spec.added.items()})
        self._unk_id = spec.vocab[spec.unk_token]
        self._longest = max((len(t) for t in spec.vocab), default=0)
        names = sorted(spec.added, key=len, reverse=True)  # leftmost, then longest, match first
        self._added = re.compile("|".join(map(re.escape, names))) if names else None
        self.truncation = spec.truncation
        self.padding = spec.padding

    @classmethod
    def from_file(cls, path: str | Path) -> "WordPieceTokenizer":
        """Read a ``tokenizer.json``; ValueError names an unsupported or malformed field."""
        return cls(read_wordpiece(Path(path)))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def max_id(self) -> int:
        """The largest id this tokenizer can produce (vocabulary, added, template and pad tokens)."""
        ids = list(self.vocab.values()) + [self.padding.pad_id if self.padding else 0]
        if self.spec.template is not None:
            ids += [i for ids_ in self.spec.template.specials.values() for i in ids_]
        return max(ids)

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def id_to_token(self, token_id: int) -> str | None:
        return self._tokens.get(token_id)

    # ---- settings ----------------------------------------------------------------------
    def enable_truncation(self, max_length: int) -> None:
        """Truncate each encoding (special tokens included) to ``max_length`` tokens."""
        if isinstance(max_length, bool) or not isinstance(max_length, int) or not 0 <= max_length <= MAX_LENGTH:
            raise ValueError(f"enable_truncation: max_length must be an integer in 0 .. {MAX_LENGTH}, "
                             f"got {max_length!r}")
        self.truncation = max_length

    def no_truncation(self) -> None:
        self.truncation = None

    def enable_padding(self, length: int | None = None, pad_to_multiple_of: int | None = None) -> None:
        """Pad to ``length`` (None: the batch's longest), then up to a multiple of ``pad_to_multiple_of``;
        the pad token, its id and type id are the file's (``[PAD]``, its id, 0 without one)."""
        for name, value in (("length", length), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 1 <= value <= MAX_LENGTH):
                raise ValueError(f"enable_padding: {name} must be None or an integer in 1 .. {MAX_LENGTH}, "
                                 f"got {value!r}")
        base = self.padding or self.spec.padding or Padding(pad_id=self.vocab.get("[PAD]", 0))
        self.padding = replace(base, length=length, multiple_of=pad_to_multiple_of)

    def no_padding(self) -> None:
        self.padding = None

    # ---- encoding ----------------------------------------------------------------------
    def encode(self, text: str, pair: str | None = None, add_special_tokens: bool = True) -> Encoding:
        """The encoding of ``text`` (and ``pair``), truncated and padded as set."""
        return self._pad([self._encode_one(text, pair, add_special_tokens)])[0]

    def encode_batch(self, inputs: Sequence[TextInput], add_special_tokens: bool = True) -> list[Encoding]:
        """Encodings of texts or (text, pair) tuples, padded together as set."""
        if isinstance(inputs, str):
            raise TypeError("encode_batch takes a list of texts or (text, pair) tuples, got one str")
        encodings = []
        for i, item in enumerate(inputs):
            if isinstance(item, str):
                text, pair = item, None
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                text, pair = item
            else:
                raise TypeError(f"encode_batch: inputs[{i}] must be a str or a (text, pair) tuple, got "
                                f"{type(item).__name__}")
            encodings.append(self._encode_one(text, pair, add_special_tokens))
        return self._pad(encodings)

    def _encode_one(self, text: str, pair: str | None, add_special: bool) -> Encoding:
        for name, value in (("text", text), ("pair", pair)):
            if not isinstance(value, str) and not (name == "pair" and value is None):
                raise TypeError(f"encode: {name} must be a str, got {type(value).__name__}")
        first = self._tokenize(text)
        second = None if pair is None else self._tokenize(pair)
        budget = None if self.truncation is None else \
            self.truncation - (self._num_special(pair is not None) if add_special else 0)
        if budget is not None and budget >= 0:  # below the special tokens' count: none, as tokenizers
            first, second = _truncate(first, second, budget)
        return self._post_process(first, second, add_special)

    def _tokenize(self, text: str) -> list[tuple[int, tuple[int, int]]]:
        """(id, original offsets) of each token of one sequence, without special tokens."""
        out: list[tuple[int, tuple[int, int]]] = []
        start = 0
        for match in (self._added.finditer(text) if self._added else ()):
            self._tokenize_plain(text[start:match.start()], start, out)
            out.append((self.vocab[match.group()], (match.start(), match.end())))
            start = match.end()
        self._tokenize_plain(text[start:], start, out)
        return out

    def _tokenize_plain(self, text: str, start: int, out: list) -> None:
        if self.spec.normalizer is not None:
            normalized, origin = self.spec.normalizer.normalize(text, start)
        else:
            normalized, origin = text, list(range(start, start + len(text)))
        for begin, end in bert_pre_tokenize(normalized):
            for token_id, a, b in self._word_pieces(normalized[begin:end]):
                out.append((token_id, (origin[begin + a], origin[begin + b - 1] + 1)))

    def _word_pieces(self, word: str) -> list[tuple[int, int, int]]:
        """(id, start, end) of the pieces of ``word``, longest first from the left; [UNK] if none."""
        unknown = [(self._unk_id, 0, len(word))]
        if len(word) > self.spec.max_input_chars_per_word:
            return unknown
        pieces, start, prefix = [], 0, self.spec.prefix
        while start < len(word):
            end = min(len(word), start + self._longest)
            while end > start and (word[start:end] if start == 0 else prefix + word[start:end]) not in self.spec.vocab:
                end -= 1
            if end == start:
                return unknown
            pieces.append((self.spec.vocab[word[start:end] if start == 0 else prefix + word[start:end]], start, end))
            start = end
        return pieces

    def _num_special(self, is_pair: bool) -> int:
        template = self.spec.template
        if template is None:
            return 0
        pieces = template.pair if is_pair else template.single
        return sum(len(template.specials[p[1]]) for p in pieces if p[0] == "special")

    def _post_process(self, first: list, second: list | None, add_special: bool) -> Encoding:
        enc = Encoding()
        template = self.spec.template
        if not add_special or template is None:
            for type_id, tokens in ((0, first), (1, second or [])):
                for token_id, offsets in tokens:
                    enc._append(token_id, self._tokens.get(token_id, ""), type_id, offsets)
            return enc
        for piece in (template.single if second is None else template.pair):
            if piece[0] == "special":
                for token_id in template.specials[piece[1]]:
                    enc._append(token_id, self._tokens.get(token_id, piece[1]), piece[2], (0, 0), special=1)
            else:
                for token_id, offsets in (first if piece[0] == "A" else second):
                    enc._append(token_id, self._tokens.get(token_id, ""), piece[1], offsets)
        return enc

    def _pad(self, encodings: list[Encoding]) -> list[Encoding]:
        pad = self.padding
        if pad is None or not encodings:
            return encodings
        target = pad.length if pad.length is not None else max(len(e) for e in encodings)
        if pad.multiple_of:
            target = -(-target // pad.multiple_of) * pad.multiple_of
        for enc in encodings:
            for _ in range(target - len(enc)):
                enc._append(pad.pad_id, pad.pad_token, pad.pad_type_id, (0, 0), special=1, attend=0)
        return encodings


def _truncate(first: list, second: list | None, budget: int) -> tuple[list, list | None]:
    """Keep ``budget`` tokens: of one sequence its first ones; of a pair (longest first, as
    ``tokenizers``), the shorter whole if the longer can take the rest, else half each (the odd
    one to the longer; to the second on a tie)."""
    if second is None:
        return first[:budget], None
    if len(first) + len(second) <= budget:
        return first, second
    short, long = sorted((len(first), len(second)))
    long = short if short > budget else max(short, budget - short)
    if short + long > budget:
        short, long = budget // 2, budget - budget // 2
    n1, n2 = (long, short) if len(first) > len(second) else (short, long)
    return first[:n1], second[:n2]
