"""One BPE merge over many positions at once, with NumPy (for the frequent pairs).

:class:`.train._MergeState` merges a pair position by position in Python; when the pair
occurs at many positions, :func:`merge_positions` does the same merge with array
operations on NumPy views of the same position arrays, and leaves exactly the state the
Python loop leaves: the same tokens and links, the same pair counts, and every new pair
indexed at the positions where it starts.

It works on sets of positions instead of one position after the other: the pairs that
start at the left neighbours, at the merged positions and at the removed right halves are
counted out with their old tokens, the merge is written, and the pairs that start at the
left neighbours and the merged positions are counted in with the new ones.  Counting each
starting position once (``np.unique``) is what makes neighbouring merges in one word come
out as in the sequential loop (``a b a b``: the pair between them is removed once and
``(new, new)`` is counted once).
"""

from __future__ import annotations

import numpy as np


def merge_positions(views: tuple[np.ndarray, ...], positions: list[int], a: int, b: int,
                    new: int, shift: int) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Merge (a, b) into ``new`` at the valid ones of ``positions``.

    ``views`` are int64 arrays (tok, prev, next, weight) over all positions, updated in
    place.  Returns the change of each pair count (packed pairs ``left << shift | right``;
    pairs whose count did not change are left out) and the positions at which each new
    pair starts.
    """
    tok, prev, next_, weight = views
    starts = np.array(positions, dtype=np.int64)
    starts.sort()
    starts = starts[tok[starts] == a]  # the others are stale (their pair changed)
    rights = next_[starts]
    valid = tok[rights] == b
    starts, rights = starts[valid], rights[valid]
    if not starts.size:
        return {}, {}
    if a == b:  # a run a a a: merge the leftmost of each overlapping two
        starts, rights = _leftmost_of_runs(starts, rights)
    lefts, after = prev[starts], next_[rights]
    lefts = lefts[lefts >= 0]
    old = _distinct(np.concatenate((lefts, starts, rights[after >= 0])))
    old_codes = tok[old] << shift | tok[next_[old]]
    tok[starts], tok[rights], next_[starts] = new, -1, after
    linked = after >= 0
    prev[after[linked]] = starts[linked]
    fresh = _distinct(np.concatenate((lefts, starts)))
    fresh = fresh[(tok[fresh] >= 0) & (next_[fresh] >= 0)]  # a left may have been removed
    fresh_codes = tok[fresh] << shift | tok[next_[fresh]]
    codes = np.concatenate((old_codes, fresh_codes))
    amounts = np.concatenate((-weight[old], weight[fresh]))
    return _sum_by_code(codes, amounts), _positions_by_code(fresh_codes, fresh)


def _leftmost_of_runs(starts: np.ndarray, rights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep every other occurrence of each chain (a run of a's), from its left end."""
    index = np.arange(starts.size)
    chained = np.zeros(starts.size, dtype=bool)
    chained[1:] = starts[1:] == rights[:-1]
    run_start = np.maximum.accumulate(np.where(chained, 0, index))
    keep = (index - run_start) % 2 == 0
    return starts[keep], rights[keep]


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (np.unique without its overhead)."""
    values.sort()
    return values[np.concatenate(([True], values[1:] != values[:-1]))]


def _sum_by_code(codes: np.ndarray, amounts: np.ndarray) -> dict[int, int]:
    if not codes.size:
        return {}
    order = np.argsort(codes)
    codes, amounts = codes[order], amounts[order]
    firsts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    sums = np.add.reduceat(amounts, firsts)
    changed = sums != 0
    return dict(zip(codes[firsts][changed].tolist(), sums[changed].tolist()))


def _positions_by_code(codes: np.ndarray, positions: np.ndarray) -> dict[int, list[int]]:
    if not codes.size:
        return {}
    order = np.argsort(codes)
    codes, positions = codes[order], positions[order]
    firsts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    edges = firsts.tolist() + [codes.size]
    found = positions.tolist()
    return {code: found[start:end] for code, start, end in
            zip(codes[firsts].tolist(), edges, edges[1:])}
