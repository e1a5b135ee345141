"""Version counters: backward() raises if an array a recorded op used was written in place since.

Every in-place write through minitf (`t[index] = value`, an optimizer step, load_state_dict)
calls `bump(array)`, which stamps the memory's owner (the array at the root of `.base`, shared
by all views of it) with the next value of a global write clock and counts the write. Each
recorded op notes the clock when it is made: one integer per node, nothing else on the hot path.
At backward, only a node made before the latest write so far (read as each node runs, so a write
by a hook during backward counts) looks further: if the memory of one of its
inputs or of its output was written after the node was made, its saved arrays no longer hold
what the forward pass used, and backward() raises instead of returning a wrong gradient.

Writing to `.data` directly (`t.data[...] = ...`) bypasses this on purpose: it is the escape hatch.
"""
from __future__ import annotations

import functools
import weakref
from typing import Any

clock = 0  # the number of in-place writes so far
_stamps: dict[int, tuple[Any, int, int]] = {}  # id(owner) -> (weakref to it, clock at last write, count)


def owner(array: Any) -> Any:
    """The array that owns `array`'s memory (itself, or the root of its chain of `.base`)."""
    base = getattr(array, "base", None)
    while base is not None and hasattr(base, "shape"):
        array, base = base, getattr(base, "base", None)
    return array


def bump(array: Any) -> None:
    """Record an in-place write to `array` (any view of the memory)."""
    global clock
    clock += 1
    root = owner(array)
    key = id(root)
    entry = _stamps.get(key)
    if entry is not None and entry[0]() is root:
        _stamps[key] = (entry[0], clock, entry[2] + 1)
    else:
        _stamps[key] = (weakref.ref(root, functools.partial(_forget, key)), clock, 1)


def _forget(key: int, ref: Any) -> None:
    entry = _stamps.get(key)
    if entry is not None and entry[0] is ref:
        del _stamps[key]


def _entry(array: Any) -> tuple[Any, int, int] | None:
    root = owner(array)
    entry = _stamps.get(id(root))
    return entry if entry is not None and entry[0]() is root else None


def last_write(array: Any) -> int:
    """The clock at the latest in-place write to `array`'s memory (0 if never written)."""
    entry = _entry(array)
    return 0 if entry is None else entry[1]


def version(array: Any) -> int:
    """How many in-place writes `array`'s memory has had through minitf (torch's `_version`)."""
    entry = _entry(array)
    return 0 if entry is None else entry[2]
