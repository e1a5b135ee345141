"""The :class:`BPETokenizer`: byte-level BPE encoding and decoding."""

from __future__ import annotations

import heapq
import os
import random
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import regex

from .corpus import TextSource, iter_texts
from .dropout import check_dropout, merge_with_dropout
from .patterns import make_splitter, resolve_pattern, splits_at_spaces
from .train import count_chunks, gc_paused, train_merges
from .vocab import Vocabulary, as_special_mapping, default_layout

AllowedSpecial = Union[str, Iterable[str]]
_LONG_CHUNK = 64  # bytes; longer chunks use the heap merge, O(n log n)
_CACHE_SIZE = 100_000  # entries of the per-chunk encode cache


class BPETokenizer:
    """Byte-level BPE tokenizer: regex pre-split, 256 byte tokens, ranked merges, specials.

    Build one with :meth:`train`, :meth:`load`, :meth:`from_dict` or
    :meth:`from_huggingface`.  Encoding is lossless: ``decode(encode(s)) == s`` for every
    string UTF-8 can encode.  Special tokens are only recognised in text when the caller
    allows them (``allowed_special``); otherwise they are encoded as ordinary text.
    """

    def __init__(self, merges: Sequence[tuple[int, int, int]] = (), *,
                 special_tokens: Mapping[str, int] | Sequence[str] = (),
                 byte_ids: Sequence[int] | None = None, pattern: str = "gpt4",
                 cache_size: int = _CACHE_SIZE, pattern_origin: str | None = None) -> None:
        """Assemble a tokenizer from its parts (most users call :meth:`train` or :meth:`load`).

        ``merges`` are ``(left_id, right_id, new_id)`` in rank order; ``special_tokens``
        maps names to ids (or lists names, taking ids 0..k-1); ``byte_ids[b]`` is the id of
        byte ``b`` (default: the 256 ids after the specials); ``pattern`` is ``"gpt2"``,
        ``"gpt4"`` or a regex; ``cache_size`` bounds the per-chunk encode cache (entries;
        it is emptied when full).  ``pattern_origin`` names where an untrusted pattern was
        read (e.g. a file and key): it is then size-checked and time-limited on each text
        (see :mod:`.patterns`).  Raises ValueError if the parts do not fit together.
        """
        specials = as_special_mapping(special_tokens)
        if byte_ids is None:
            byte_ids = [len(specials) + b for b in range(256)]
        self._attach(Vocabulary(specials, list(byte_ids), list(merges)), pattern, cache_size,
                     pattern_origin)

    @classmethod
    def _from_vocabulary(cls, vocab: Vocabulary, pattern: str) -> "BPETokenizer":
        """A tokenizer on an already checked vocabulary (training builds it only once)."""
        tokenizer = cls.__new__(cls)
        tokenizer._attach(vocab, pattern, _CACHE_SIZE)
        return tokenizer

    def _attach(self, vocab: Vocabulary, pattern: str, cache_size: int,
                origin: str | None = None) -> None:
        self._vocab = vocab
        self._pattern = resolve_pattern(pattern)
        self._split = make_splitter(self._pattern, origin)
        self._cache: dict[str, list[int]] = {}
        self._cache_size = cache_size
        self._special_regexes: dict[frozenset, regex.Pattern] = {}
        self._byte_to_id = list(self._vocab.byte_ids)

    # ----------------------------------------------------------------- training
    @classmethod
    def train(cls, texts: Iterable[TextSource] | TextSource, vocab_size: int, *,
              min_frequency: int = 2, special_tokens: Sequence[str] = (),
              pattern: str = "gpt4", progress: bool = False) -> "BPETokenizer":
        """Learn a byte-level BPE tokenizer from a corpus.

        ``texts``: an iterable of ``str`` (each a text) and ``pathlib.Path`` objects (each a
        plain or ``.gz`` UTF-8 file read line by line, one text per line, terminator
        removed); a ``str`` is never treated as a file name, and a lone ``str`` or path
        counts as a one-item list.  The corpus is streamed: only the counts of unique
        chunks are kept in memory.

        ``vocab_size`` counts the specials, the 256 bytes and the merged tokens; merging
        stops there or when no pair occurs ``min_frequency`` times.  Ids: specials
        first (in the order given), then the bytes, then merges in rank order.  Ties
        between equally frequent pairs are broken as described in :mod:`.train`.
        """
        specials = list(as_special_mapping(special_tokens))
        _check_training_args(vocab_size, min_frequency, specials)
        split = make_splitter(pattern)
        with gc_paused():
            counts = count_chunks(iter_texts(texts), split, progress, splits_at_spaces(pattern))
            if not counts:
                raise ValueError("empty corpus: the training texts contain no characters")
            merges = train_merges(counts, vocab_size - len(specials), min_frequency, progress)
        return cls._from_vocabulary(default_layout(specials, merges), pattern)

    # ----------------------------------------------------------------- encoding
    def encode(self, text: str, allowed_special: AllowedSpecial = (), *, dropout: float = 0.0,
               rng: random.Random | None = None) -> list[int]:
        """Encode ``text`` to token ids.

        ``allowed_special``: ``"all"`` or a collection of special token names that are
        recognised in the text; all other special names are encoded as plain text.
        ``dropout``: BPE-dropout's probability p in [0, 1) of skipping each applicable
        merge (:mod:`.dropout`), drawing from ``rng`` (anything with a ``random()`` method,
        e.g. ``random.Random(seed)``: the same state gives the same ids; None: a fresh
        unseeded one); 0 (default) is the deterministic encoding.  Decoding stays lossless
        and specials are never split.  Raises ValueError for a ``dropout`` outside [0, 1),
        a lone surrogate, which UTF-8 cannot encode, and
        :class:`~.patterns.PatternTimeoutError` (a ValueError) when a pattern read from a
        file exceeds its time limit on the text.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        allowed = self._allowed_specials(allowed_special)
        ordinary = self._encode_ordinary
        if check_dropout(dropout):
            draw = (rng or random.Random()).random
            ordinary = lambda part: self._encode_with_dropout(part, dropout, draw)  # noqa: E731
        if not allowed:
            return ordinary(text)
        ids: list[int] = []
        specials = self._vocab.special_tokens
        for index, part in enumerate(self._special_regex(allowed).split(text)):
            if index % 2:
                ids.append(specials[part])
            elif part:
                ids += ordinary(part)
        return ids

    def encode_batch(self, texts: Iterable[str], allowed_special: AllowedSpecial = (), *,
                     dropout: float = 0.0, rng: random.Random | None = None) -> list[list[int]]:
        """Encode each text of ``texts`` (see :meth:`encode`; with ``dropout``, one ``rng``
        draws for all of them in order)."""
        if check_dropout(dropout):
            rng = rng or random.Random()
        return [self.encode(text, allowed_special, dropout=dropout, rng=rng) for text in texts]

    def _encode_ordinary(self, text: str) -> list[int]:
        cache = self._cache
        ids: list[int] = []
        for chunk in self._split(text):
            tokens = cache.get(chunk)
            if tokens is None:
                tokens = self._encode_chunk(chunk)
            ids += tokens
        return ids

    def _encode_with_dropout(self, text: str, p: float, random: Any) -> list[int]:
        """Like :meth:`_encode_ordinary` with BPE-dropout (no cache: each chunk draws anew)."""
        ids: list[int] = []
        ranks, merged_ids = self._vocab.ranks, self._vocab.merged_ids
        for chunk in self._split(text):
            tokens = self._byte_tokens(chunk)
            ids += merge_with_dropout(tokens, ranks, merged_ids, p, random) if len(tokens) > 1 else tokens
        return ids

    def _byte_tokens(self, chunk: str) -> list[int]:
        try:
            data = chunk.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"cannot encode a lone surrogate {chunk[exc.start]!r} "
                             "(not valid in UTF-8)") from None
        to_id = self._byte_to_id
        return [to_id[b] for b in data]

    def _encode_chunk(self, chunk: str) -> list[int]:
        tokens = self._byte_tokens(chunk)
        if len(tokens) > 1:
            merge = _merge_short if len(tokens) <= _LONG_CHUNK else _merge_long
            tokens = merge(tokens, self._vocab.ranks, self._vocab.merged_ids)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[chunk] = tokens
        return tokens

    def _allowed_specials(self, allowed_special: AllowedSpecial) -> frozenset:
        specials = self._vocab.special_tokens
        if allowed_special == "all":
            return frozenset(specials)
        if isinstance(allowed_special, str):
            raise ValueError(f"allowed_special must be 'all' or a collection of special "
                             f"token names, not the string {allowed_special!r}")
        allowed = frozenset(allowed_special)
        unknown = allowed - specials.keys()
        if unknown:
            raise ValueError(f"allowed_special names unknown special tokens: "
                             f"{', '.join(sorted(map(repr, unknown)))}")
        return allowed

    def _special_regex(self, allowed: frozenset) -> regex.Pattern:
        compiled = self._special_regexes.get(allowed)
        if compiled is None:  # longest first: the longest special at a position wins
            names = sorted(allowed, key=lambda n: (-len(n), n))
            compiled = regex.compile("(" + "|".join(map(regex.escape, names)) + ")")
            self._special_regexes[allowed] = compiled
        return compiled

    # ----------------------------------------------------------------- decoding
    def decode(self, ids: Iterable[int], errors: str = "strict") -> str:
        """Turn token ids back into text.

        ``errors`` is passed to ``bytes.decode``: with ``"strict"`` (default) ids whose
        bytes are not valid UTF-8 (e.g. a cut multi-byte character) raise ValueError;
        ``"replace"`` puts U+FFFD there instead.  Unknown ids raise ValueError.
        """
        return _decode_utf8(self.decode_bytes(ids), errors)

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes the ids stand for (specials as their UTF-8 names)."""
        table = self._vocab.id_to_bytes
        if not isinstance(ids, (list, tuple)):
            ids = list(ids)
        try:
            return b"".join([table[i] for i in ids])
        except (KeyError, TypeError):
            bad = next(i for i in ids if not _hashable(i) or i not in table)
            raise ValueError(f"unknown token id {bad!r} (vocabulary size "
                             f"{self.vocab_size})") from None

    # ----------------------------------------------------------------- vocabulary
    @property
    def vocab_size(self) -> int:
        """Number of ids: one more than the largest id (specials included)."""
        return self._vocab.size

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token names mapped to their ids (a copy)."""
        return dict(self._vocab.special_tokens)

    def special_id(self, name: str) -> int:
        """Id of the special token ``name``; KeyError naming it if there is none."""
        try:
            return self._vocab.special_tokens[name]
        except KeyError:
            raise KeyError(f"no special token {name!r}; special tokens are "
                           f"{list(self._vocab.special_tokens)}") from None

    @property
    def pattern(self) -> str:
        """The regex source that splits text into chunks."""
        return self._pattern

    @property
    def merges(self) -> list[tuple[int, int, int]]:
        """``(left_id, right_id, new_id)`` for each merge, in rank order (a copy)."""
        return list(self._vocab.merges)

    @property
    def byte_ids(self) -> list[int]:
        """``byte_ids[b]`` is the id of the single byte ``b``."""
        return list(self._vocab.byte_ids)

    def id_to_bytes(self, token_id: int) -> bytes:
        """The exact bytes of a token (a special gives its UTF-8 name)."""
        self._check_known(token_id)
        return self._vocab.id_to_bytes[token_id]

    def id_to_token(self, token_id: int) -> str:
        """Readable form of a token: a special's name, else its bytes as UTF-8 text with
        each byte that is not valid UTF-8 written ``<0xHH>`` (e.g. ``"<0xC3>"``)."""
        self._check_known(token_id)
        return self._vocab.readable(token_id)

    def token_to_id(self, token: str | bytes) -> int:
        """Id of a token given as a special name, its text, its readable form (see
        :meth:`id_to_token`) or its bytes (``bytes`` name ordinary tokens only).  Given
        as ``str``, specials win over ordinary tokens of the same text.  KeyError naming
        the token if the vocabulary lacks it."""
        token_id = self._vocab.lookup(token)
        if token_id is None:
            raise KeyError(f"token {token!r} is not in the vocabulary")
        return token_id

    def _check_known(self, token_id: int) -> None:
        if not _hashable(token_id) or token_id not in self._vocab.id_to_bytes:
            raise KeyError(f"unknown token id {token_id!r} (vocabulary size {self.vocab_size})")

    def __repr__(self) -> str:
        return (f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self._vocab.merges)}, "
                f"special_tokens={list(self._vocab.special_tokens)})")

    # ----------------------------------------------------------------- files
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the tokenizer (format ``minitf-bpe``, version 1)."""
        from .serialization import to_dict
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "BPETokenizer":
        """Rebuild a tokenizer from :meth:`to_dict` output; ValueError naming ``source``."""
        from .serialization import from_dict
        return from_dict(cls, data, source)

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer as one human-readable JSON file."""
        from .serialization import save
        save(self, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BPETokenizer":
        """Read a file written by :meth:`save` (errors name the file and the problem)."""
        from .serialization import load
        return load(cls, Path(path))

    @classmethod
    def from_huggingface(cls, path: str | os.PathLike) -> "BPETokenizer":
        """Load a byte-level BPE ``tokenizer.json`` of Hugging Face ``tokenizers``."""
        from .huggingface import from_huggingface
        return from_huggingface(cls, Path(path))


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _decode_utf8(data: bytes, errors: str) -> str:
    try:
        return data.decode("utf-8", errors)
    except UnicodeDecodeError as exc:
        raise ValueError(f"the ids decode to bytes that are not valid UTF-8 (byte "
                         f"0x{data[exc.start]:02x} at offset {exc.start}: {exc.reason}); "
                         "pass errors='replace' to decode partial sequences") from None


def _check_training_args(vocab_size: int, min_frequency: int, specials: list[str]) -> None:
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size < 256 + len(specials):
        raise ValueError(f"vocab_size {vocab_size} is too small: it must be at least 256 "
                         f"(the bytes) + {len(specials)} (special tokens) = "
                         f"{256 + len(specials)}")
    if not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be an int >= 1, got {min_frequency!r}")
    for name in specials:
        if not isinstance(name, str) or not name:
            raise ValueError(f"special tokens must be non-empty strings, got {name!r}")


def _merge_short(tokens: list[int], ranks: dict, merged_ids: list[int]) -> list[int]:
    """Apply merges lowest rank first, leftmost first; for short chunks (O(n^2) in C)."""
    missing = len(merged_ids)
    get = ranks.get
    pair_ranks = [get(pair, missing) for pair in zip(tokens, tokens[1:])]
    while True:
        rank = min(pair_ranks)
        if rank == missing:
            return tokens
        i = pair_ranks.index(rank)
        new = merged_ids[rank]
        tokens[i:i + 2] = [new]
        del pair_ranks[i]
        if i > 0:
            pair_ranks[i - 1] = get((tokens[i - 1], new), missing)
        if i < len(pair_ranks):
            pair_ranks[i] = get((new, tokens[i + 1]), missing)
        if not pair_ranks:
            return tokens


def _merge_long(tokens: list[int], ranks: dict, merged_ids: list[int]) -> list[int]:
    """Same result as :func:`_merge_short` in O(n log n): a heap of (rank, position) over a
    linked list of symbols; entries whose pair has changed are skipped when popped."""
    size = len(tokens)
    nxt = list(range(1, size + 1))
    prev = list(range(-1, size - 1))
    alive = [True] * size
    get = ranks.get
    heap = [(r, i) for i, pair in enumerate(zip(tokens, tokens[1:]))
            if (r := get(pair)) is not None]
    heapq.heapify(heap)
    while heap:
        rank, i = heapq.heappop(heap)
        j = nxt[i]
        if not alive[i] or j >= size or get((tokens[i], tokens[j])) != rank:
            continue
        tokens[i] = merged_ids[rank]
        alive[j] = False
        nxt[i] = nxt[j]
        if nxt[i] < size:
            prev[nxt[i]] = i
            _push(heap, get((tokens[i], tokens[nxt[i]])), i)
        if prev[i] >= 0:
            _push(heap, get((tokens[prev[i]], tokens[i])), prev[i])
    return [t for t, keep in zip(tokens, alive) if keep]


def _push(heap: list, rank: int | None, position: int) -> None:
    if rank is not None:
        heapq.heappush(heap, (rank, position))
