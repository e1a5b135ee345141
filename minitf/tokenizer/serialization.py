"""Saving and loading tokenizers as one human-readable JSON file.

Format ``minitf-bpe``, version 1::

    {
      "format": "minitf-bpe",
      "version": 1,
      "pattern": "<regex source that splits text into chunks>",
      "special_tokens": [["<pad>", 0], ["<eos>", 1]],
      "byte_ids": [2, 3, ..., 257],
      "merges": [
        ["t", "h", 258],
        [" ", "th", 259],
        ...
      ]
    }

* ``special_tokens``: ``[name, id]`` pairs;
* ``byte_ids``: 256 ids, the id of byte 0, byte 1, ... byte 255;
* ``merges``: in rank order, ``[left, right, new_id]``, where ``left`` and ``right`` are
  the bytes of the two merged tokens written as Latin-1 text (each byte b is the
  character ``chr(b)``: ASCII reads as itself, e.g. ``" t"``; other bytes show as
  Latin-1 letters or JSON ``\\u00XX`` escapes).  ``left`` and ``right`` must be a byte
  or the result of an earlier merge; ``new_id`` is the id of their concatenation.

Nothing is unpickled; every field is checked, and errors name the file.  The pattern is
untrusted: size-checked before it is compiled and time-limited on each text (see patterns).  Files larger than
MAX_FILE_BYTES are refused unread; ids, merges and special tokens are capped (see vocab).  The ids
run from 0 to the vocabulary size - 1 without gaps (a model may produce any id below its size).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from .vocab import MAX_VOCAB_SIZE

FORMAT = "minitf-bpe"
MAX_FILE_BYTES = 1 << 28  # 256 MiB: a 1M-token vocabulary written as text fits easily
VERSION = 1
_KEYS = ("format", "version", "pattern", "special_tokens", "byte_ids", "merges")


class TokenizerFileError(ValueError):
    """A tokenizer file or dict is not a valid one (message names the source)."""


def to_dict(tokenizer) -> dict[str, Any]:
    """The JSON-ready dict of a tokenizer."""
    table = tokenizer._vocab.id_to_bytes
    return {
        "format": FORMAT,
        "version": VERSION,
        "pattern": tokenizer.pattern,
        "special_tokens": [[name, i] for name, i in tokenizer.special_tokens.items()],
        "byte_ids": tokenizer.byte_ids,
        "merges": [[table[a].decode("latin-1"), table[b].decode("latin-1"), new]
                   for a, b, new in tokenizer.merges],
    }


def save(tokenizer, path: Path) -> None:
    """Write ``to_dict`` as JSON, one merge per line."""
    data = to_dict(tokenizer)
    head = {k: v for k, v in data.items() if k != "merges"}
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    merges = [json.dumps(m, ensure_ascii=False) for m in data["merges"]]
    body = ",\n    ".join(merges)
    text = "{\n" + "\n".join(lines) + '\n  "merges": [' + (f"\n    {body}\n  " if merges else "")
    path.write_text(text + "]\n}\n", encoding="utf-8")


def load(cls, path: Path):
    """Read a file written by :func:`save`."""
    return from_dict(cls, read_json(path, "tokenizer file"), str(path))


def read_json(path: Path, what: str) -> Any:
    """The JSON value in the file at ``path``, its size checked before it is read.

    FileNotFoundError names ``what`` and the path; TokenizerFileError naming the file if it
    is not UTF-8 JSON (or nests too deeply to parse).
    """
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    check_size(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise TokenizerFileError(f"{path}: JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise TokenizerFileError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of over 4,300 digits
        raise TokenizerFileError(f"{path}: not valid JSON: {exc}") from None


def check_size(path: Path) -> None:
    """Refuse a file over MAX_FILE_BYTES before reading it."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise TokenizerFileError(f"{path}: {size:,} bytes, more than the limit of {MAX_FILE_BYTES:,} "
                                 "for a tokenizer file")


def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>"):
    """Check ``data`` and build the tokenizer; TokenizerFileError names ``source``."""
    if not isinstance(data, Mapping):
        raise TokenizerFileError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise TokenizerFileError(f"{source}: not a {FORMAT} tokenizer "
                                 f"(format is {data.get('format')!r})")
    if type(data.get("version")) is not int or data["version"] != VERSION:
        raise TokenizerFileError(f"{source}: unsupported {FORMAT} version "
                                 f"{data.get('version')!r} (this minitf reads version {VERSION})")
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise TokenizerFileError(f"{source}: missing key(s) {', '.join(missing)}")
    try:
        return _build(cls, data, source)
    except (ValueError, TypeError) as exc:
        raise TokenizerFileError(f"{source}: {exc}") from None


def _build(cls, data: Mapping[str, Any], source: str):
    specials = _specials(data["special_tokens"])
    byte_ids = data["byte_ids"]
    if not isinstance(byte_ids, list) or len(byte_ids) != 256:
        raise ValueError(f"byte_ids must list 256 ids, got {byte_ids!r:.60}")
    ids = {bytes([b]): i for b, i in enumerate(byte_ids)}
    merges = []
    listed = _list(data["merges"], "merges")
    if len(listed) > MAX_VOCAB_SIZE:
        raise ValueError(f"{len(listed):,} merges, more than the limit of {MAX_VOCAB_SIZE:,}")
    for rank, merge in enumerate(listed):
        if not (isinstance(merge, list) and len(merge) == 3 and isinstance(merge[0], str)
                and isinstance(merge[1], str)):
            raise ValueError(f"merge {rank} must be [left, right, new_id], got {merge!r}")
        left, right = _latin1(merge[0], rank), _latin1(merge[1], rank)
        for side in (left, right):
            if side not in ids:
                raise ValueError(f"merge {rank} uses unknown token {side.decode('latin-1')!r} "
                                 "(not a byte or an earlier merge)")
        merges.append((ids[left], ids[right], merge[2]))
        ids.setdefault(left + right, merge[2])
    pattern = data["pattern"]
    if not isinstance(pattern, str):
        raise ValueError(f"pattern must be a string, got {pattern!r}")
    tokenizer = cls(merges, special_tokens=specials, byte_ids=byte_ids, pattern=pattern,
                    pattern_origin=f"{source}, key 'pattern'")
    _check_no_gaps(tokenizer._vocab.id_to_bytes)
    return tokenizer


def _check_no_gaps(tokens: Mapping[int, bytes]) -> None:
    """The ids must be 0 .. n-1, each once (the vocabulary has already refused an id used twice)."""
    size = max(tokens) + 1
    if len(tokens) != size:
        missing = next(i for i in range(size) if i not in tokens)
        raise ValueError(f"the ids must run from 0 to {size - 1} without gaps, but {size - len(tokens):,} "
                         f"are unused, the first is {missing}")


def _list(value: Any, key: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list, got {type(value).__name__}")
    return value


def _specials(value: Any) -> dict[str, int]:
    specials: dict[str, int] = {}
    for entry in _list(value, "special_tokens"):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            raise ValueError(f"special_tokens entries must be [name, id], got {entry!r}")
        if entry[0] in specials:
            raise ValueError(f"duplicate special token {entry[0]!r}")
        specials[entry[0]] = entry[1]
    return specials


def _latin1(text: str, rank: int) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"merge {rank}: {text!r} is not Latin-1 text of bytes") from None
