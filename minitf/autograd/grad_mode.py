"""The grad mode: whether ops record the graph. Per thread, as in PyTorch: `no_grad()` in one
thread leaves every other thread's mode alone, and a new thread starts with grad enabled."""
from __future__ import annotations

import contextlib
import threading


class _Mode(threading.local):
    enabled = True  # the class attribute is what a thread sees before it changes its own


mode = _Mode()


class _Stack(threading.local):
    def __init__(self) -> None:  # runs once in each thread that uses the stack
        self.previous: list[bool] = []


def is_grad_enabled() -> bool:
    """Whether ops called from this thread record the graph."""
    return mode.enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager (and decorator) in which ops called from this thread record the graph
    if `enabled`, and none otherwise."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = bool(enabled)
        self._stack = _Stack()  # per thread, and a stack: a decorated function may be re-entered

    def __enter__(self) -> None:
        self._stack.previous.append(mode.enabled)
        mode.enabled = self._enabled

    def __exit__(self, *exc: object) -> None:
        mode.enabled = self._stack.previous.pop()


class no_grad(set_grad_enabled):
    """Context manager (and decorator) in which ops called from this thread record no graph."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Context manager (and decorator) in which ops record the graph again, inside no_grad too."""

    def __init__(self) -> None:
        super().__init__(True)


__all__ = ["enable_grad", "is_grad_enabled", "no_grad", "set_grad_enabled"]
