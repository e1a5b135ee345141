"""BPE-dropout (Provilkov et al. 2020): merges skipped at random while encoding.

Each time a merge would be applied, it is skipped with probability ``p``; a skipped pair
stays a candidate and can be merged after the next merge that is applied.  The merges go on
while one is left; when every candidate is skipped in a row the chunk's segmentation ends.
This is the rule of Hugging Face ``tokenizers``' ``BPE(dropout=p)``: each applicable merge
(per position, in rank order, leftmost first) is dropped independently at each step.  With
``p = 0`` it gives the deterministic merges exactly; any ``p`` keeps decoding lossless (the
tokens are always a segmentation of the chunk's bytes).
"""
from __future__ import annotations

import heapq
import math
from typing import Any, Callable


def check_dropout(p: Any) -> float:
    """``p`` as a float in [0, 1); ValueError naming the value otherwise (1 would merge nothing)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0 <= p < 1) or math.isnan(p):
        raise ValueError(f"BPE dropout must be a number in [0, 1) (the probability of skipping a merge), "
                         f"got {p!r}")
    return float(p)


LONG_CHUNK = 64  # tokens; longer chunks use the heap, O(n log n) (as .bpe's deterministic merges)


def merge_with_dropout(tokens: list[int], ranks: dict, merged_ids: list[int], p: float,
                       random: Callable[[], float]) -> list[int]:
    """The ids of one chunk's byte ids ``tokens`` (a list it changes) merged lowest rank first,
    leftmost first, each candidate skipped when ``random() < p``.  Both ways draw for the same
    candidates in the same order, so they give the same ids from the same generator."""
    merge = _merge_short if len(tokens) <= LONG_CHUNK else _merge_long
    return merge(tokens, ranks, merged_ids, p, random)


def _merge_short(tokens: list[int], ranks: dict, merged_ids: list[int], p: float,
                 random: Callable[[], float]) -> list[int]:
    """O(n^2) in C, for short chunks: the best candidate is found with min(); only after it is
    skipped are the others sorted (by rank, then position) and drawn for in that order."""
    missing = len(merged_ids)
    get = ranks.get
    pair_ranks = [get(pair, missing) for pair in zip(tokens, tokens[1:])]
    while pair_ranks:
        rank = min(pair_ranks)
        if rank == missing:
            break
        if random() >= p:
            i = pair_ranks.index(rank)
        else:
            i = _next_kept(pair_ranks, missing, p, random)
            if i < 0:
                break
        new = merged_ids[pair_ranks[i]]
        tokens[i:i + 2] = [new]
        del pair_ranks[i]
        if i > 0:
            pair_ranks[i - 1] = get((tokens[i - 1], new), missing)
        if i < len(pair_ranks):
            pair_ranks[i] = get((new, tokens[i + 1]), missing)
    return tokens


def _next_kept(pair_ranks: list[int], missing: int, p: float, random: Callable[[], float]) -> int:
    """The position of the first candidate after the best (skipped already) that is kept; -1: none."""
    for i in sorted(range(len(pair_ranks)), key=pair_ranks.__getitem__)[1:]:
        if pair_ranks[i] == missing:
            return -1
        if random() >= p:
            return i
    return -1


def _merge_long(tokens: list[int], ranks: dict, merged_ids: list[int], p: float,
                random: Callable[[], float]) -> list[int]:
    """A heap of (rank, position) over a linked list of symbols, as :func:`.bpe._merge_long`
    (entries whose pair has changed are dropped when popped); skipped entries go back on the
    heap after the next merge."""
    size = len(tokens)
    nxt = list(range(1, size + 1))
    prev = list(range(-1, size - 1))
    alive = [True] * size
    get = ranks.get
    heap = [(r, i) for i, pair in enumerate(zip(tokens, tokens[1:])) if (r := get(pair)) is not None]
    heapq.heapify(heap)
    skipped: list[tuple[int, int]] = []
    while heap:
        entry = heapq.heappop(heap)
        rank, i = entry
        j = nxt[i]
        if not alive[i] or j >= size or get((tokens[i], tokens[j])) != rank:
            continue
        if random() < p:
            skipped.append(entry)
            continue
        tokens[i] = merged_ids[rank]
        alive[j] = False
        nxt[i] = k = nxt[j]
        if k < size:
            prev[k] = i
            if (r := get((tokens[i], tokens[k]))) is not None:
                heapq.heappush(heap, (r, i))
        if prev[i] >= 0 and (r := get((tokens[prev[i]], tokens[i]))) is not None:
            heapq.heappush(heap, (r, prev[i]))
        for entry in skipped:  # candidates again (checked when popped: a merge may have changed them)
            heapq.heappush(heap, entry)
        skipped.clear()
    return [t for t, keep in zip(tokens, alive) if keep]
