"""Byte-level BPE training with incremental pair counts.

Algorithm:

1. Count the unique chunks of the corpus once (``Counter`` of chunk -> count),
   streaming the texts.
2. Turn each chunk into a list of byte tokens and count every adjacent pair once,
   weighted by the chunk count; keep an index from each pair to the chunks that hold it.
3. Repeatedly take the most frequent pair from a heap (stale entries are skipped:
   a pair's count only ever falls after it enters the heap), merge it in the chunks
   the index names, and adjust only the counts of the pairs next to each merge.

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

import heapq
from collections import Counter, defaultdict
from typing import Iterable, Iterator

from tqdm.auto import tqdm

from .byte_level import BYTES_IN_HF_ORDER
from .patterns import Splitter

_BATCH = 1 << 11  # chunks gathered before each Counter update
# bytes.translate table: byte value -> its internal (tie order) number
_BYTE_TO_ORDER = bytes(BYTES_IN_HF_ORDER.index(b) for b in range(256))


def count_chunks(texts: Iterable[str], split: Splitter, progress: bool = False) -> Counter:
    """Count how often each chunk occurs in the streamed texts."""
    counts: Counter = Counter()
    batch: list[str] = []
    if progress:
        texts = tqdm(texts, desc="counting chunks", unit=" texts")
    for text in texts:
        batch += split(text)
        if len(batch) > _BATCH:
            counts.update(batch)
            batch.clear()
    counts.update(batch)
    return counts


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


def _chunks_to_words(chunk_counts: Counter) -> tuple[list[list[int]], list[int]]:
    words, counts = [], []
    for chunk, count in chunk_counts.items():
        try:
            data = chunk.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"training text contains a lone surrogate {chunk[exc.start]!r}, "
                             "which UTF-8 cannot encode") from None
        if len(data) > 1:  # single bytes hold no pair
            words.append(list(data.translate(_BYTE_TO_ORDER)))
            counts.append(count)
    return words, counts


class _MergeState:
    """Words, pair counts, the pair -> words index and the heap of one training run.

    A pair (a, b) is packed into the int ``a << shift | b``; heap items pack
    ``-count`` above that, so plain int comparison orders by count, then pair.
    """

    def __init__(self, words: list[list[int]], counts: list[int], num_tokens: int) -> None:
        self.words, self.counts, self.num_tokens = words, counts, num_tokens
        self.shift = max(num_tokens, 256).bit_length() + 1
        self.mask = (1 << self.shift) - 1
        self.tokens: list[bytes] = [bytes([b]) for b in BYTES_IN_HF_ORDER]
        self.token_ids: dict[bytes, int] = {t: i for i, t in enumerate(self.tokens)}
        self.merges: list[tuple[int, int]] = []
        self.pair_counts: dict[int, int] = defaultdict(int)
        self.where: defaultdict[int, set[int]] = defaultdict(set)
        self._count_pairs()
        self.heap = [self._item(pair, c) for pair, c in self.pair_counts.items() if c > 0]
        heapq.heapify(self.heap)

    def _item(self, pair: int, count: int) -> int:
        return (-count << (2 * self.shift)) + pair

    def _count_pairs(self) -> None:
        shift, pair_counts, where = self.shift, self.pair_counts, self.where
        for index, (word, count) in enumerate(zip(self.words, self.counts)):
            for a, b in zip(word, word[1:]):
                pair = a << shift | b
                pair_counts[pair] += count
                where[pair].add(index)

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
        """Replace (a, b) by the new token in every word the index names, in place and
        left to right; move the counts of the neighbouring pairs to their new pairs."""
        shift = self.shift
        a, b = pair >> shift, pair & self.mask
        new = self._new_token(a, b)
        pair_counts, where, words, counts = self.pair_counts, self.where, self.words, self.counts
        grown: set[int] = set()
        for index in where.pop(pair):
            word = words[index]
            if a not in word:
                continue  # stale index entry: an earlier merge took the pair away
            count = counts[index]
            i = word.index(a)
            while True:
                if i + 1 < len(word) and word[i + 1] == b:
                    if i > 0:  # the left neighbour may itself be a fresh merge
                        left = word[i - 1]
                        pair_counts[left << shift | a] -= count
                        key = left << shift | new
                        pair_counts[key] += count
                        where[key].add(index)
                        grown.add(key)
                    if i + 2 < len(word):
                        right = word[i + 2]
                        pair_counts[b << shift | right] -= count
                        key = new << shift | right
                        pair_counts[key] += count
                        where[key].add(index)
                        grown.add(key)
                    word[i:i + 2] = (new,)
                try:
                    i = word.index(a, i + 1)
                except ValueError:
                    break
        pair_counts.pop(pair, None)
        for key in grown:
            count = pair_counts[key]
            if count > 0:
                heapq.heappush(self.heap, self._item(key, count))

    def merges_as_bytes(self) -> list[tuple[bytes, bytes]]:
        return [(self.tokens[a], self.tokens[b]) for a, b in self.merges]
