"""BERT's text rules as Hugging Face ``tokenizers`` applies them: the ``BertNormalizer`` (with each
normalized character's index in the original text kept, for offsets) and the ``BertPreTokenizer``.

Character classes follow Rust's ``char`` methods, which ``tokenizers`` uses: whitespace is Unicode's
White_Space property (not Python's ``str.isspace``, which adds the separators U+001C..U+001F);
a control character is one of the "other" categories Cc, Cf, Cs, Co (not Cn: tokenizers keeps
unassigned characters) except tab, newline and carriage return; punctuation is ASCII punctuation or a Unicode punctuation category (P*).
Categories come from Python's ``unicodedata``; tokenizers' tables are of an older Unicode, so a
character assigned since (e.g. U+09FD, a Bengali sign that is Po here) may be classed differently.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                       + "".join(chr(c) for c in range(0x2000, 0x200B)))
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


@dataclass(frozen=True)
class BertNormalizer:
    """The ``BertNormalizer`` options; ``strip_accents`` None means "as ``lowercase``"."""

    clean_text: bool = True
    handle_chinese_chars: bool = True
    strip_accents: bool | None = None
    lowercase: bool = True

    def normalize(self, text: str, start: int = 0) -> tuple[str, list[int]]:
        """The normalized text and, for each of its characters, the index in the original text of
        the character it came from (``text`` starts at index ``start`` of the original)."""
        chars = [(c, start + i) for i, c in enumerate(text)]
        if self.clean_text:
            chars = [(" " if c in WHITESPACE else c, i) for c, i in chars
                     if c not in ("\x00", "\ufffd") and not is_control(c)]
        if self.handle_chinese_chars:
            chars = [(part, i) for c, i in chars for part in ((" ", c, " ") if is_cjk(c) else (c,))]
        strip = self.lowercase if self.strip_accents is None else self.strip_accents
        if strip:  # each character decomposed on its own, as tokenizers does; marks Mn dropped
            chars = [(part, i) for c, i in chars for part in unicodedata.normalize("NFD", c)
                     if unicodedata.category(part) != "Mn"]
        if self.lowercase:  # per character: no final-sigma rule, as Rust's char::to_lowercase
            chars = [(part, i) for c, i in chars for part in c.lower()]
        return "".join(c for c, _ in chars), [i for _, i in chars]


def is_control(c: str) -> bool:
    """A character that clean_text removes: Cc, Cf, Cs or Co, except tab, newline, return."""
    return c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs")


def is_cjk(c: str) -> bool:
    """A CJK ideograph, which handle_chinese_chars surrounds with spaces."""
    code = ord(c)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def is_punctuation(c: str) -> bool:
    """ASCII punctuation (including $ + < = > ^ ` | ~) or a Unicode punctuation category."""
    return c in _ASCII_PUNCTUATION or unicodedata.category(c)[0] == "P"


def bert_pre_tokenize(text: str) -> list[tuple[int, int]]:
    """The [start, end) spans of the words of ``text``: split on whitespace (dropped), each
    punctuation character a word of its own."""
    spans: list[tuple[int, int]] = []
    begin = None
    for i, c in enumerate(text):
        if c in WHITESPACE or is_punctuation(c):
            if begin is not None:
                spans.append((begin, i))
                begin = None
            if c not in WHITESPACE:
                spans.append((i, i + 1))
        elif begin is None:
            begin = i
    if begin is not None:
        spans.append((begin, len(text)))
    return spans
