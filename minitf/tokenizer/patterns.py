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

A pattern read from a file is untrusted (its ``origin`` is given): before it is
compiled, its length is capped (MAX_PATTERN_CHARS) and its counted repeats are bounded (the
``regex`` package unrolls ``x{1000}`` into 1000 copies, so a short pattern could take
gigabytes); a pattern nested too deeply to compile is a ValueError; and each text it splits
has a time limit (a backtracking pattern such as ``(a|aa)+$`` could take years on a
short text), exceeded with a :class:`PatternTimeoutError`.  The built-in patterns and
patterns given in code run without the limit, which costs time on every text.
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

MAX_PATTERN_CHARS = 4096  # an untrusted pattern's length (the built-in ones have 74 and 115)
MAX_UNROLLED = 100_000  # an untrusted pattern's length times the product of its repeat counts
TIME_LIMIT_S = 1.0  # seconds an untrusted pattern may take on a text, plus TIME_PER_CHAR_S a character
TIME_PER_CHAR_S = 1e-5
_COUNTED_REPEAT = regex.compile(r"\{\s*(\d*)\s*(?:,\s*(\d*)\s*)?\}")


class PatternTimeoutError(TimeoutError, ValueError):
    """An untrusted pattern took longer than its time limit on a text (it backtracks)."""


def resolve_pattern(pattern: str) -> str:
    """Return the regex source for a pattern name (``"gpt2"``, ``"gpt4"``) or a regex string."""
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str (a name or a regex), not {type(pattern).__name__}")
    return PATTERNS.get(pattern, pattern)


def compile_pattern(pattern: str, untrusted: bool = False) -> regex.Pattern:
    """Compile a pattern name or regex string, raising ValueError naming a pattern that fails.

    ``untrusted`` (read from a file): first refuse a pattern that compiling could unroll
    into more than MAX_UNROLLED items (see :func:`check_unrolled_size`).
    """
    source = resolve_pattern(pattern)
    if source == "":
        raise ValueError("pattern must not be empty")
    if untrusted and source not in _FAST_FORMS:
        check_unrolled_size(source)
    try:
        return regex.compile(source)
    except regex.error as exc:
        raise ValueError(f"pattern {source!r:.200} does not compile: {exc}") from None
    except RecursionError:  # the regex package parses groups recursively (~350 levels at most)
        raise ValueError(f"pattern {source!r:.80} of {len(source):,} characters nests its groups too "
                         "deeply to compile") from None


def check_unrolled_size(source: str) -> None:
    """Raise ValueError if ``source`` is longer than MAX_PATTERN_CHARS or compiling it could
    unroll it into more than MAX_UNROLLED items.

    ``regex`` compiles ``x{m,n}`` into about max(m, n) copies of ``x`` and nested repeats
    multiply (``(?:a{1000}){1000}`` takes 270 MB).  The pattern's length times the product
    of every count written in braces bounds that from above (braces that are no repeat
    count too, which only errs towards refusing).
    """
    if len(source) > MAX_PATTERN_CHARS:
        raise ValueError(f"pattern of {len(source):,} characters is longer than the limit of "
                         f"{MAX_PATTERN_CHARS:,}")
    size = len(source)
    for match in _COUNTED_REPEAT.finditer(source):
        size *= max([1] + [int(d) if len(d) < 10 else 10**10 for d in match.groups("") if d])
        if size > MAX_UNROLLED:
            raise ValueError(f"pattern {source!r:.80} repeats too much: its length times its "
                             f"repeat counts is over {MAX_UNROLLED:,} (compiling it could take "
                             "gigabytes)")


def make_splitter(pattern: str, origin: str | None = None) -> Splitter:
    """Return a function cutting a text into its non-empty chunks, in order, losing nothing.

    The built-in patterns match every character, so ``findall`` is used as is.  For
    other patterns the unmatched gaps are kept as chunks and empty matches dropped.
    ``origin`` names where an untrusted pattern was read (e.g. ``"tok.json, key 'pattern'"``):
    its size is checked and each text gets a time limit (:class:`PatternTimeoutError`
    naming the origin); without it the pattern is trusted.
    """
    compiled = compile_pattern(pattern, untrusted=origin is not None)
    if compiled.pattern in _FAST_FORMS:  # matches every character: no gaps to keep
        return regex.compile(_FAST_FORMS[compiled.pattern]).findall
    if origin is None:
        return lambda text: _split_keeping_gaps(compiled, text)
    return lambda text: _split_with_time_limit(compiled, text, origin)


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


def _split_with_time_limit(compiled: regex.Pattern, text: str, origin: str) -> list[str]:
    limit = TIME_LIMIT_S + TIME_PER_CHAR_S * len(text)
    try:
        return _split_keeping_gaps(compiled, text, limit)
    except TimeoutError:
        raise PatternTimeoutError(
            f"{origin}: the pre-tokenization pattern {compiled.pattern!r:.80} took more than "
            f"{limit:.2f} s to split a text of {len(text):,} characters (it backtracks "
            "catastrophically, as nested repeats like (a|aa)+ can); use a pattern that "
            "runs in linear time") from None


def _split_keeping_gaps(compiled: regex.Pattern, text: str,
                        timeout: float | None = None) -> list[str]:
    chunks = []
    end = 0
    for match in compiled.finditer(text, timeout=timeout):
        start, stop = match.span()
        if start > end:
            chunks.append(text[end:start])
        if stop > start:
            chunks.append(text[start:stop])
        end = max(end, stop)
    if end < len(text):
        chunks.append(text[end:])
    return chunks
