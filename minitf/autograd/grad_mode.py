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


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) in which ops called from this thread record no graph."""

    def __init__(self) -> None:
        self._stack = _Stack()  # per thread, and a stack: a decorated function may be re-entered

    def __enter__(self) -> None:
        self._stack.previous.append(mode.enabled)
        mode.enabled = False

    def __exit__(self, *exc: object) -> None:
        mode.enabled = self._stack.previous.pop()


__all__ = ["is_grad_enabled", "no_grad"]
