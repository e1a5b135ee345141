"""The grad mode: whether ops record the graph."""
from __future__ import annotations

import contextlib


class _Mode:
    enabled = True


mode = _Mode()


def is_grad_enabled() -> bool:
    """Whether ops record the graph."""
    return mode.enabled


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) in which ops record no graph."""

    def __init__(self) -> None:
        self._previous: list[bool] = []  # a stack: a decorated function may be re-entered

    def __enter__(self) -> None:
        self._previous.append(mode.enabled)
        mode.enabled = False

    def __exit__(self, *exc: object) -> None:
        mode.enabled = self._previous.pop()


__all__ = ["is_grad_enabled", "no_grad"]
