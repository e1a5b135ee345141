"""Loading GPT-2's original tokenizer files: ``vocab.json`` (token -> id) and ``merges.txt``.

``merges.txt`` holds one merge per line, the two tokens separated by one space, in rank order; a
first line starting with ``#version`` and empty lines are skipped.  Tokens are written in the GPT-2
byte-level alphabet and the vocabulary must hold all 256 bytes (as GPT-2's does).  Text is split
with the GPT-2 pattern, as ``GPT2TokenizerFast`` (``add_prefix_space=False``) does.  A vocabulary
entry that is neither a byte nor the result of a merge (GPT-2's ``<|endoftext|>``) becomes a special
token: ``encode(text, allowed_special="all")`` then gives the ids of Hugging Face's tokenizer, which
registers it as its bos/eos/unk token.  Both files are size-checked before they are read, and every
entry is checked as ``tokenizer.json``'s are (errors name the file).
"""
from __future__ import annotations

import os
from pathlib import Path

from .bpe import BPETokenizer
from .huggingface import _byte_ids, _merges, _vocab
from .patterns import GPT2_PATTERN
from .serialization import TokenizerFileError, check_size, read_json

__all__ = ["from_vocab_merges"]


def from_vocab_merges(vocab_path: str | os.PathLike, merges_path: str | os.PathLike) -> BPETokenizer:
    """A byte-level BPE tokenizer from GPT-2's ``vocab.json`` and ``merges.txt``.

    FileNotFoundError names a missing file; ValueError (TokenizerFileError) names the file and the
    entry that is wrong.
    """
    vocab_path, merges_path = Path(vocab_path), Path(merges_path)
    try:
        vocab = _vocab(read_json(vocab_path, "vocab.json"), "the vocabulary")
        byte_ids = _byte_ids(vocab)
    except TokenizerFileError:
        raise
    except ValueError as exc:
        raise TokenizerFileError(f"{vocab_path}: {exc}") from None
    try:
        merges = _merges(_read_merges(merges_path), vocab)
    except TokenizerFileError:
        raise
    except ValueError as exc:
        raise TokenizerFileError(f"{merges_path}: {exc} (tokens from {vocab_path.name})") from None
    reachable = set(byte_ids) | {new for _, _, new in merges}
    specials = {token: i for token, i in vocab.items() if i not in reachable}
    try:
        return BPETokenizer(merges, special_tokens=specials, byte_ids=byte_ids, pattern=GPT2_PATTERN)
    except ValueError as exc:
        raise TokenizerFileError(f"{vocab_path}: {exc}") from None


def _read_merges(path: Path) -> list[str]:
    """The merge lines of ``merges.txt`` (a ``#version`` first line and empty lines left out)."""
    if not path.is_file():
        raise FileNotFoundError(f"merges.txt not found: {path}")
    check_size(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise TokenizerFileError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    return [line.rstrip("\r") for line in lines if line.rstrip("\r")]
