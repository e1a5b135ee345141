"""Byte-level BPE training with incremental pair counts.

Algorithm:

1. Count the unique chunks of the corpus once (``Counter`` of chunk -> count),
   streaming the texts.  With the built-in patterns the texts are cut at single spaces
   first (``str.split`` in C), the distinct words counted, and only each distinct word
   goes through the regex (see :func:`.patterns.splits_at_spaces`).
2. Lay each chunk out as a doubly linked list of byte tokens (as Hugging Face's
   ``Word``) and count every adjacent pair once, weighted by the chunk count; keep an
   index from each pair to the positions where it occurs (NumPy: one sort of all pairs).
3. Repeatedly take the most frequent pair from a heap (stale entries are skipped:
   a pair's count only ever falls after it enters the heap), merge it at the positions
   the index names, and adjust only the counts of the pairs next to each merge.  A
   merge's work is proportional to its occurrences, so training is linear in the
   length of a chunk (a 1 MB line without spaces is one chunk), not quadratic.  A pair
   found at many positions is merged with NumPy (:mod:`.bulk_merge`), the others in a
   Python loop; both leave the same state.

Ties: among pairs of equal count the one with the smallest (left, right) token
order wins, where single bytes come first, ordered as their characters in the GPT-2
byte table (the order Hugging Face numbers its alphabet in), followed by merged
tokens in the order they were created.  This is the rule of Hugging Face
``tokenizers`` (with the full byte alphabet), so both learn the same merges from
the same chunks, and the result never depends on dict or set order or on the
machine.  Chunk order does not matter either: only the chunk counts are used.

Internally, tokens are numbered in that tie order (bytes 0..255 in table order, then
merges); :func:`train_merges` returns the merges as byte strings.
"""

from __future__ import annotations

import array
import contextlib
import gc
import heapq
from collections import Counter, defaultdict
from typing import Iterable, Iterator

import numpy as np
import regex
from tqdm.auto import tqdm

from .bulk_merge import merge_positions
from .byte_level import BYTES_IN_HF_ORDER
from .patterns import Splitter

_BATCH = 1 << 11  # chunks gathered before each Counter update
_LINES = 1 << 6  # texts joined before each split at spaces
_BULK = 256  # a pair indexed at this many positions or more is merged with NumPy
# a text that is not cut at its spaces alone: whitespace other than " ", or two spaces in a row
_IRREGULAR = regex.compile(r"[^\S ]|  ")
# bytes.translate table: byte value -> its internal (tie order) number
_BYTE_TO_ORDER = bytes(BYTES_IN_HF_ORDER.index(b) for b in range(256))


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Switch off Python's cycle collector for the block (it is switched back on after).

    Training allocates hundreds of thousands of objects that form no reference cycles; the
    collector would otherwise traverse them (and the caller's texts) again and again, about
    a tenth of the training time on Multi30k.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def count_chunks(texts: Iterable[str], split: Splitter, progress: bool = False,
                 at_spaces: bool = False) -> Counter:
    """Count how often each chunk occurs in the streamed texts.

    ``at_spaces``: ``split`` cuts at single spaces (:func:`.patterns.splits_at_spaces`), so
    the words between spaces may be counted first and split once each.
    """
    if progress:
        texts = tqdm(texts, desc="counting chunks", unit=" texts")
    if at_spaces:
        return _count_by_words(texts, split)
    counts: Counter = Counter()
    batch: list[str] = []
    for text in texts:
        batch += split(text)
        if len(batch) > _BATCH:
            counts.update(batch)
            batch.clear()
    counts.update(batch)
    return counts


def _count_by_words(texts: Iterable[str], split: Splitter) -> Counter:
    """count_chunks for a pattern that cuts at single spaces: count the words of the texts
    (the first word of a text apart, as it has no space before it), then split each distinct
    word once; texts with other whitespace are split whole."""
    counts: Counter = Counter()
    words: Counter = Counter()  # every word of the regular texts
    firsts: Counter = Counter()  # their first words
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == _LINES:
            _count_words(batch, split, words, firsts, counts)
            batch.clear()
    _count_words(batch, split, words, firsts, counts)
    for word, count in words.items():
        first = firsts.get(word, 0)
        for segment, times in ((word, first), (" " + word, count - first)):
            if not times:
                continue
            if word.isascii() and word.isalpha():  # ASCII letters: one chunk, with its space
                counts[segment] += times
                continue
            for chunk in split(segment):
                counts[chunk] += times
    return counts


def _count_words(batch: list[str], split: Splitter, words: Counter, firsts: Counter,
                 counts: Counter) -> None:
    joined = " ".join(batch)
    # isprintable: no whitespace but " " (all others are controls or separators)
    if not joined.isprintable() or "  " in joined:
        regular = []
        for text in batch:
            if _IRREGULAR.search(text):
                counts.update(split(text))
            else:
                regular.append(text)
        joined = " ".join(regular)
        batch = regular
    if not batch:  # "".split(" ") would count one empty word
        return
    words.update(joined.split(" "))
    firsts.update([text.partition(" ")[0] for text in batch])


def train_merges(chunk_counts: Counter, num_tokens: int, min_frequency: int = 2,
                 progress: bool = False) -> list[tuple[bytes, bytes]]:
    """Learn merges until the vocabulary holds ``num_tokens`` distinct non-special tokens.

    The 256 bytes count towards ``num_tokens``.  Stops early when no pair occurs at
    least ``min_frequency`` times.  Returns the merged pairs in rank order.  A merge
    whose bytes equal an existing token reuses it and does not grow the vocabulary.
    """
    words, counts = _chunks_to_words(chunk_counts)
    state = _MergeState(words, counts, num_tokens)
    if not progress:
        for _ in state.run(min_frequency):
            pass
        return state.merges_as_bytes()
    with tqdm(total=max(num_tokens - 256, 0), desc="learning merges", unit=" merges") as bar:
        for _ in state.run(min_frequency):
            bar.update(1)
    return state.merges_as_bytes()


def _chunks_to_words(chunk_counts: Counter) -> tuple[list[bytes], list[int]]:
    words, counts = [], []
    for chunk, count in chunk_counts.items():
        try:
            data = chunk.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"training text contains a lone surrogate {chunk[exc.start]!r}, "
                             "which UTF-8 cannot encode") from None
        if len(data) > 1:  # single bytes hold no pair
            words.append(data.translate(_BYTE_TO_ORDER))
            counts.append(count)
    return words, counts


class _MergeState:
    """The words, pair counts, the pair -> positions index and the heap of one training run.

    All words lie in one array of positions: position p holds the token ``tok[p]`` and
    links to its neighbours in its word, ``prev[p]`` and ``next[p]`` (-1 at a word's
    ends), a doubly linked list per word as in Hugging Face's ``Word``. ``where[pair]``
    lists the positions where ``pair`` started when they were indexed (a merge skips
    those whose pair has changed since), so a merge visits only the occurrences of its
    pair: at most 3 visits per position in all (each position is indexed once, and each
    merge indexes at most 2 new pairs; ``visits`` counts them), so the work is linear in
    a word's length, however long. Merging (a, b) at p writes the new token at p and
    unlinks p's right neighbour (its token becomes -1), so positions keep their
    left-to-right order within a word.

    A pair (a, b) is packed into the int ``a << shift | b``; heap items pack
    ``-count`` above that, so plain int comparison orders by count, then pair.

    The position arrays are ``array.array`` of int64, read and written item by item by the
    Python merge and through NumPy views by :func:`.bulk_merge.merge_positions`, which
    does the merges of pairs indexed at ``_BULK`` positions or more.
    """

    def __init__(self, words: list[bytes], counts: list[int], num_tokens: int) -> None:
        self.num_tokens = num_tokens
        self.shift = max(num_tokens, 256).bit_length() + 1
        self.mask = (1 << self.shift) - 1
        self.tokens: list[bytes] = [bytes([b]) for b in BYTES_IN_HF_ORDER]
        self.token_ids: dict[bytes, int] = {t: i for i, t in enumerate(self.tokens)}
        self.merges: list[tuple[int, int]] = []
        self.pair_counts: dict[int, int] = defaultdict(int)
        self.where: defaultdict[int, list[int]] = defaultdict(list)
        self.visits = 0  # positions looked at by merges (a measure of their work)
        self._link(words, counts)
        self.heap = [self._item(pair, c) for pair, c in self.pair_counts.items() if c > 0]
        heapq.heapify(self.heap)

    def _item(self, pair: int, count: int) -> int:
        return (-count << (2 * self.shift)) + pair

    def _link(self, words: list[bytes], counts: list[int]) -> None:
        """Lay the words out as linked positions; count every adjacent pair, index its start.

        Vectorised: the pair codes of all positions are sorted once, so each pair's
        positions come out in increasing order and its count is one segment sum.
        """
        tok = np.frombuffer(b"".join(words), dtype=np.uint8).astype(np.int64)
        lengths = np.array([len(word) for word in words], dtype=np.int64)
        starts = np.cumsum(lengths) - lengths
        weight = np.repeat(np.array(counts, dtype=np.int64), lengths)
        prev, next_ = np.arange(-1, tok.size - 1), np.arange(1, tok.size + 1)
        prev[starts], next_[starts + lengths - 1] = -1, -1
        firsts = np.flatnonzero(next_ >= 0)  # positions that start a pair
        codes = tok[firsts] << self.shift | tok[firsts + 1]
        order = np.argsort(codes, kind="stable")
        codes, firsts = codes[order], firsts[order]
        bounds = np.flatnonzero(np.diff(codes)) + 1
        pairs = codes[np.concatenate(([0], bounds))].tolist() if codes.size else []
        sums = np.add.reduceat(weight[firsts], np.concatenate(([0], bounds))) if codes.size else []
        self.pair_counts.update(zip(pairs, np.asarray(sums).tolist()))
        self.where.update(zip(pairs, (part.tolist() for part in np.split(firsts, bounds))))
        self.tok, self.prev, self.next, self.weight = (
            array.array("q", np.ascontiguousarray(x, dtype=np.int64).tobytes())
            for x in (tok, prev, next_, weight))
        self.views = tuple(np.frombuffer(x, dtype=np.int64)
                           for x in (self.tok, self.prev, self.next, self.weight))

    def run(self, min_frequency: int) -> Iterator[int]:
        """Merge best pairs until the vocabulary is full; yield once per merge."""
        while len(self.tokens) < self.num_tokens:
            pair = self._pop_best(min_frequency)
            if pair is None:
                return
            self._merge(pair)
            yield pair

    def _pop_best(self, min_frequency: int) -> int | None:
        heap, pair_counts, shift2 = self.heap, self.pair_counts, 2 * self.shift
        while heap:
            item = heapq.heappop(heap)
            pair = item & ((1 << shift2) - 1)
            count = -(item >> shift2)
            current = pair_counts.get(pair, 0)
            if current == count:
                return pair if count >= max(min_frequency, 1) else None
            if current > 0:
                heapq.heappush(heap, self._item(pair, current))
        return None

    def _new_token(self, a: int, b: int) -> int:
        data = self.tokens[a] + self.tokens[b]
        token = self.token_ids.get(data)
        if token is None:
            token = len(self.tokens)
            self.tokens.append(data)
            self.token_ids[data] = token
        self.merges.append((a, b))
        return token

    def _merge(self, pair: int) -> None:
        """Replace (a, b) by the new token at every position the index names, left to right
        within a word; move the counts of the neighbouring pairs to their new pairs."""
        shift = self.shift
        a, b = pair >> shift, pair & self.mask
        new = self._new_token(a, b)
        tok, prev, next_, weight = self.tok, self.prev, self.next, self.weight
        pair_counts, where = self.pair_counts, self.where
        positions = where.pop(pair)
        self.visits += len(positions)
        if len(positions) >= _BULK:
            self._merge_bulk(pair, positions, new)
            return
        if a == b:  # occurrences may overlap (a a a): merge the leftmost first, as in a word
            positions.sort()
        grown: set[int] = set()
        grow = grown.add
        b_high, new_high = b << shift, new << shift  # pairs (b, t) and (new, t) are high | t
        for p in positions:
            if tok[p] != a:  # stale: p's pair changed since it was indexed
                continue
            q = next_[p]
            if tok[q] != b:
                continue
            count = weight[p]
            left, right = prev[p], next_[q]
            if left >= 0:  # the left neighbour may itself be a fresh merge
                t = tok[left] << shift
                pair_counts[t | a] -= count
                key = t | new
                pair_counts[key] += count
                where[key].append(left)
                grow(key)
            if right >= 0:
                t = tok[right]
                pair_counts[b_high | t] -= count
                key = new_high | t
                pair_counts[key] += count
                where[key].append(p)
                grow(key)
                prev[right] = p
            tok[p] = new
            tok[q] = -1
            next_[p] = right
        pair_counts.pop(pair, None)
        heap, shift2 = self.heap, 2 * shift
        for key in grown:
            count = pair_counts[key]
            if count > 0:
                heapq.heappush(heap, (-count << shift2) + key)

    def _merge_bulk(self, pair: int, positions: list[int], new: int) -> None:
        """_merge for a frequent pair: the same result with NumPy (see .bulk_merge)."""
        shift, pair_counts, where = self.shift, self.pair_counts, self.where
        deltas, fresh = merge_positions(self.views, positions, pair >> shift, pair & self.mask,
                                        new, shift)
        for key, delta in deltas.items():
            pair_counts[key] += delta
        for key, found in fresh.items():
            where[key] += found
        pair_counts.pop(pair, None)
        for key, delta in deltas.items():
            count = pair_counts[key]
            if delta > 0 and count > 0:
                heapq.heappush(self.heap, self._item(key, count))

    def merges_as_bytes(self) -> list[tuple[bytes, bytes]]:
        return [(self.tokens[a], self.tokens[b]) for a, b in self.merges]
