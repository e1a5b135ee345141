"""Pre-tokenization regex patterns and the splitter built from them.

Text is cut into *chunks* by a regex before byte-pair encoding; merges never
cross a chunk boundary.  Two patterns are built in:

* ``"gpt2"`` -- the GPT-2 pattern (contractions, letters, numbers and other
  symbols each with an optional leading space, then whitespace runs);
* ``"gpt4"`` -- the cl100k pattern of GPT-4 (case-insensitive contractions,
  numbers in groups of at most three digits, newlines kept apart).

Any other string is compiled as a pattern of the ``regex`` package.  Parts of
the text that a user pattern does not match become chunks of their own, so
encoding stays lossless whatever the pattern.
"""

from __future__ import annotations

from typing import Callable

import regex

GPT2_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)
GPT4_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
PATTERNS: dict[str, str] = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN}

# Faster forms of the built-in patterns that split every text the same way: a
# possessive quantifier only drops backtracking that could never lead to a match.
_FAST_FORMS: dict[str, str] = {
    GPT2_PATTERN: r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s+(?!\S)|\s+""",
    GPT4_PATTERN: (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}"""
                   r"""| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""),
}

Splitter = Callable[[str], list]


def resolve_pattern(pattern: str) -> str:
    """Return the regex source for a pattern name (``"gpt2"``, ``"gpt4"``) or a regex string."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str (a name or a regex), not {type(pattern).__name__}")
    return PATTERNS.get(pattern, pattern)


def compile_pattern(pattern: str) -> regex.Pattern:
    """Compile a pattern name or regex string, raising ValueError naming a pattern that fails."""
    source = resolve_pattern(pattern)
    if source == "":
        raise ValueError("pattern must not be empty")
    try:
        return regex.compile(source)
    except regex.error as exc:
        raise ValueError(f"pattern {source!r} does not compile: {exc}") from None


def make_splitter(pattern: str) -> Splitter:
    """Return a function cutting a text into its non-empty chunks, in order, losing nothing.

    The built-in patterns match every character, so ``findall`` is used as is.  For
    other patterns the unmatched gaps are kept as chunks and empty matches dropped.
    """
    compiled = compile_pattern(pattern)
    if compiled.pattern in _FAST_FORMS:  # matches every character: no gaps to keep
        return regex.compile(_FAST_FORMS[compiled.pattern]).findall
    return lambda text: _split_keeping_gaps(compiled, text)


def splits_at_spaces(pattern: str) -> bool:
    """True if the pattern cuts a line at every space that follows a non-space, so that
    ``split(line) == split(w0) + split(" " + w1) + ...`` for ``line = " ".join([w0, w1, ...])``
    whenever the line's only whitespace is single spaces (no two in a row; the first and the
    last word may be empty, a space at either end).

    This holds for the built-in patterns: they have no lookbehind, no alternative lets a
    match take in a space after a non-space character (a space only ever begins a match, or
    lies in a run of whitespace), and a match ending before a space sees the same as at the
    end of the text (only ``(?!\\S)`` looks ahead).  A word of ASCII letters, with or without its
    space before it, is one chunk.  Training counts each distinct space-separated word
    once and splits it then, instead of running the regex over every line.
    """
    return resolve_pattern(pattern) in _FAST_FORMS


def _split_keeping_gaps(compiled: regex.Pattern, text: str) -> list[str]:
    chunks = []
    end = 0
    for match in compiled.finditer(text):
        start, stop = match.span()
        if start > end:
            chunks.append(text[end:start])
        if stop > start:
            chunks.append(text[start:stop])
        end = max(end, stop)
    if end < len(text):
        chunks.append(text[end:])
    return chunks
