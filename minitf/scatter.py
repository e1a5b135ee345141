"""Scatter-adds for both backends: `target[index] += values` with repeated indices adding up."""
from __future__ import annotations

from typing import Any

import numpy as np

from .backend import is_cupy_array

__all__ = ["scatter_add", "add_rows"]


def scatter_add(target: Any, index: Any, values: Any) -> None:
    """`target[index] += values`, adding repeated indices up (np.add.at / cupyx.scatter_add)."""
    if is_cupy_array(target):
        import cupyx  # noqa: PLC0415

        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


_ONE_HOT_LIMIT = 16384  # up to this many ids x rows, add_rows multiplies by a one-hot matrix
_SHORT_RUN = 8  # ids with up to this many rows are added level by level, the others by reduceat


def add_rows(target: Any, index: Any, rows: Any) -> None:
    """`target[index[i]] += rows[i]` for each i, repeated ids adding up: an embedding's backward.

    target: (V, ...), C-contiguous; index: (N,) integers in [0, V); rows: (N, ...) with target's
    trailing shape. Several times faster than `np.add.at`, which handles one row at a time:
    small problems (makemore's) take one_hot(index).T @ rows; larger ones sort the ids, sum
    the rows of each frequent id with one `np.add.reduceat` and add the rows of the other ids
    in at most _SHORT_RUN fancy-indexed passes (their first rows, then their second, ...).
    CuPy uses `cupyx.scatter_add`.
    """
    if is_cupy_array(target):
        import cupyx  # noqa: PLC0415

        cupyx.scatter_add(target, index, rows)
        return
    if index.size == 0:
        return
    flat_rows = rows.reshape(index.size, -1)
    flat_target = target.reshape(target.shape[0], -1)
    if index.size * target.shape[0] <= _ONE_HOT_LIMIT:
        one_hot = (np.arange(target.shape[0])[:, None] == index).astype(flat_rows.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            summed = one_hot @ flat_rows
        if np.isfinite(summed).all():
            flat_target += summed
            return
        # (a row holding inf or NaN would spread NaN to every id through 0 * inf: add exactly)
    # stable: each id's rows are added in their order; 16-bit keys sort by radix, in linear time
    keys = index.astype(np.uint16) if target.shape[0] <= 1 << 16 else index
    order = np.argsort(keys, kind="stable")
    ids = index[order]
    first = np.empty(ids.size, dtype=bool)  # where a run of equal ids starts
    first[0] = True
    np.not_equal(ids[1:], ids[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=ids.size)
    long = counts > _SHORT_RUN
    if long.all():  # (a small vocabulary)
        flat_target[ids[starts]] += np.add.reduceat(np.take(flat_rows, order, axis=0), starts, axis=0)
        return
    if long.any():  # reduceat costs about a microsecond per run: only for the frequent ids
        runs = counts[long]
        gathered = np.take(flat_rows, order[np.repeat(long, counts)], axis=0)
        flat_target[ids[starts[long]]] += np.add.reduceat(gathered, np.cumsum(runs) - runs, axis=0)
    # level k adds the k-th row of each other id: no id twice in a pass
    in_short = np.repeat(~long, counts)
    rank = (np.arange(ids.size) - np.repeat(starts, counts))[in_short]
    positions = np.flatnonzero(in_short)
    for k in range(int(rank.max()) + 1):
        level = positions[rank == k]
        flat_target[ids[level]] += np.take(flat_rows, order[level], axis=0)
