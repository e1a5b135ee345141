"""The vocabulary of a byte-level BPE tokenizer: ids, their bytes, and merge ranks.

A vocabulary is given by three parts, each checked here:

* ``special_tokens``: name -> id;
* ``byte_ids``: the id of each of the 256 bytes (``byte_ids[b]``);
* ``merges``: ``(left_id, right_id, new_id)`` in rank order, where the bytes of
  ``new_id`` are those of ``left_id`` followed by those of ``right_id``.

Tokenizers trained here number specials 0..k-1, bytes k..k+255 in byte order and
merged tokens from k+256 on; other layouts (from Hugging Face files) are allowed.

Since vocabularies come from files, every id is below MAX_VOCAB_SIZE, and there are at most
MAX_VOCAB_SIZE merges and MAX_SPECIAL_TOKENS special tokens of at most MAX_SPECIAL_TOKEN_CHARS
characters each (encoding searches every text for them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import regex

MAX_VOCAB_SIZE = 1 << 20  # ids 0 .. 1,048,575 (the largest public BPE vocabularies hold ~260k)
MAX_SPECIAL_TOKENS = 1 << 16
MAX_SPECIAL_TOKEN_CHARS = 200  # e.g. "<|reserved_special_token_250|>" has 30

_ESCAPE = regex.compile(r"<0x([0-9A-F]{2})>")


@dataclass
class Vocabulary:
    """Checked vocabulary with the lookup tables encoding and decoding need."""

    special_tokens: dict[str, int]
    byte_ids: list[int]
    merges: list[tuple[int, int, int]]
    id_to_bytes: dict[int, bytes] = field(init=False, repr=False)
    bytes_to_id: dict[bytes, int] = field(init=False, repr=False)
    ranks: dict[tuple[int, int], int] = field(init=False, repr=False)
    merged_ids: list[int] = field(init=False, repr=False)
    special_names: dict[int, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.special_tokens = dict(self.special_tokens)
        self.byte_ids = list(self.byte_ids)
        self.merges = list(self.merges)
        self._check_specials()
        self._check_bytes()
        self.ranks, self.merged_ids = {}, []
        self.special_names = {i: name for name, i in self.special_tokens.items()}
        if len(self.merges) > MAX_VOCAB_SIZE:
            raise ValueError(f"{len(self.merges):,} merges, more than the limit of {MAX_VOCAB_SIZE:,}")
        for rank, merge in enumerate(self.merges):
            self._add_merge(rank, merge)
        for name, token_id in self.special_tokens.items():
            self.id_to_bytes[token_id] = name.encode("utf-8")

    def _check_specials(self) -> None:
        if len(self.special_tokens) > MAX_SPECIAL_TOKENS:
            raise ValueError(f"{len(self.special_tokens):,} special tokens, more than the limit of "
                             f"{MAX_SPECIAL_TOKENS:,}")
        for name, token_id in self.special_tokens.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"special token names must be non-empty strings, got {name!r:.60}")
            if len(name) > MAX_SPECIAL_TOKEN_CHARS:
                raise ValueError(f"special token {name!r:.40} has {len(name):,} characters, more than "
                                 f"the limit of {MAX_SPECIAL_TOKEN_CHARS}")
            if not _encodable(name):
                raise ValueError(f"special token {name!r} contains a lone surrogate")
            _check_id(token_id, f"special token {name!r}")
        if len(set(self.special_tokens.values())) != len(self.special_tokens):
            raise ValueError("two special tokens share an id")

    def _check_bytes(self) -> None:
        if len(self.byte_ids) != 256:
            raise ValueError(f"byte_ids must list 256 ids, got {len(self.byte_ids)}")
        specials = set(self.special_tokens.values())
        self.id_to_bytes, self.bytes_to_id = {}, {}
        for byte, token_id in enumerate(self.byte_ids):
            _check_id(token_id, f"byte 0x{byte:02x}")
            if token_id in specials or token_id in self.id_to_bytes:
                raise ValueError(f"byte 0x{byte:02x} has id {token_id}, which is already taken")
            self.id_to_bytes[token_id] = bytes([byte])
            self.bytes_to_id[bytes([byte])] = token_id

    def _add_merge(self, rank: int, merge: tuple[int, int, int]) -> None:
        if not isinstance(merge, (tuple, list)) or len(merge) != 3:
            raise ValueError(f"merge {rank} must be three ids (left, right, new), got {merge!r}")
        left, right, new = merge
        if not (_valid_id(left) and _valid_id(right)):  # messages only when needed (speed)
            _check_id(left, f"merge {rank} (left)")
            _check_id(right, f"merge {rank} (right)")
        for side, token_id in (("left", left), ("right", right)):
            if token_id not in self.id_to_bytes:
                raise ValueError(f"merge {rank} uses unknown {side} token id {token_id} "
                                 "(not a byte or an earlier merge)")
        if (left, right) in self.ranks:
            raise ValueError(f"merge {rank} repeats the pair ({left}, {right})")
        data = self.id_to_bytes[left] + self.id_to_bytes[right]
        self._register(rank, new, data)
        self.ranks[(left, right)] = rank
        self.merged_ids.append(new)
        self.merges[rank] = (left, right, new)

    def _register(self, rank: int, new: int, data: bytes) -> None:
        if not _valid_id(new):
            _check_id(new, f"merge {rank}")
        known = self.bytes_to_id.get(data)
        if known is not None and known != new:
            raise ValueError(f"merge {rank} makes {data!r}, which already has id {known}, "
                             f"but gives it id {new}")
        if new in self.special_names or (known is None and new in self.id_to_bytes):
            raise ValueError(f"merge {rank} gives id {new}, which is already taken")
        self.id_to_bytes[new] = data
        self.bytes_to_id[data] = new

    @property
    def size(self) -> int:
        """One more than the largest id (the number of ids, counting any unused gaps)."""
        return max(self.id_to_bytes) + 1

    def readable(self, token_id: int) -> str:
        """The token as text: specials by name, bytes as UTF-8 with ``<0xHH>`` for invalid bytes."""
        name = self.special_names.get(token_id)
        if name is not None:
            return name
        data = self.id_to_bytes[token_id]
        text = data.decode("utf-8", "surrogateescape")
        return "".join(f"<0x{ord(c) - 0xDC00:02X}>" if "\udc80" <= c <= "\udcff" else c
                       for c in text)

    def lookup(self, token: str | bytes) -> int | None:
        """Id of a special name, a token's bytes, or its readable form; None if unknown."""
        if isinstance(token, bytes):
            return self.bytes_to_id.get(token)
        if token in self.special_tokens:
            return self.special_tokens[token]
        if not _encodable(token):
            return None
        token_id = self.bytes_to_id.get(token.encode("utf-8"))
        if token_id is None and "<0x" in token:
            token_id = self.bytes_to_id.get(_unescape(token))
        return token_id


def _unescape(text: str) -> bytes:
    parts = _ESCAPE.split(text)
    return b"".join(bytes([int(p, 16)]) if i % 2 else p.encode("utf-8")
                    for i, p in enumerate(parts))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _valid_id(token_id: object) -> bool:
    return type(token_id) is int and 0 <= token_id < MAX_VOCAB_SIZE


def _check_id(token_id: object, what: str) -> None:
    if isinstance(token_id, bool) or not isinstance(token_id, int) or token_id < 0:
        raise ValueError(f"{what}: id must be a non-negative int, got {token_id!r}")
    if token_id >= MAX_VOCAB_SIZE:
        raise ValueError(f"{what}: id {token_id:,} is not below the limit of {MAX_VOCAB_SIZE:,} tokens")


def default_layout(specials: Sequence[str], merges: Sequence[tuple[bytes, bytes]]
                   ) -> Vocabulary:
    """Vocabulary with specials first, then the 256 bytes, then merged tokens in rank order."""
    names = list(specials)
    k = len(names)
    ids = {bytes([b]): k + b for b in range(256)}
    triples = []
    for left, right in merges:
        data = left + right
        if data not in ids:
            ids[data] = k + len(ids)  # ids already holds the 256 bytes
        triples.append((ids[left], ids[right], ids[data]))
    return Vocabulary(dict(zip(names, range(k))), [k + b for b in range(256)], triples)


def as_special_mapping(special_tokens: Mapping[str, int] | Sequence[str]) -> dict[str, int]:
    """Accept specials as name -> id or as names (ids 0..k-1 in order); reject duplicates."""
    if isinstance(special_tokens, str):
        raise TypeError("special_tokens must be a sequence of strings, not a single string")
    if isinstance(special_tokens, Mapping):
        return dict(special_tokens)
    names = list(special_tokens)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate special tokens: {', '.join(map(repr, duplicates))}")
    return {name: i for i, name in enumerate(names)}
