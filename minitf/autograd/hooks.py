"""Post-accumulate-grad hooks: functions called with a leaf once backward() has completed its `.grad`."""
from __future__ import annotations

import weakref
from typing import Any, Callable

# Hooks by id(tensor): Tensor defines __eq__ elementwise, so it cannot be a dict key itself.
_post_accumulate_hooks: dict[int, dict[int, Callable[[Any], None]]] = {}


class HookHandle:
    """A registered post-accumulate-grad hook; `remove()` unregisters it."""

    _next_id = 0

    def __init__(self, tensor: Any, hook: Callable[[Any], None]) -> None:
        HookHandle._next_id += 1
        self._key, self._id = id(tensor), HookHandle._next_id
        hooks = _post_accumulate_hooks.setdefault(self._key, {})
        if not hooks:  # forget the hooks when the tensor dies (its id may be reused)
            weakref.finalize(tensor, _post_accumulate_hooks.pop, self._key, None)
        hooks[self._id] = hook

    def remove(self) -> None:
        _post_accumulate_hooks.get(self._key, {}).pop(self._id, None)


def any_registered() -> bool:
    """Whether some tensor has a hook (backward() skips the look-ups when none has)."""
    return bool(_post_accumulate_hooks)


def run_post_accumulate_hooks(leaf: Any) -> None:
    """Call the leaf's hooks, in the order they were registered."""
    for hook in list(_post_accumulate_hooks.get(id(leaf), {}).values()):
        hook(leaf)


__all__ = ["HookHandle", "any_registered", "run_post_accumulate_hooks"]
