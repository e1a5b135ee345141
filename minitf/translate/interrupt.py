"""Ctrl-C and SIGTERM during training: the first asks the trainer to stop after its current step."""
from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..train import Trainer


class graceful_interrupt:
    """During fit, the first Ctrl-C or SIGTERM asks the trainer to stop after the current step."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))

    def __init__(self, trainer: "Trainer") -> None:
        self.trainer = trainer
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        try:
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: leave signals alone
            pass

    def _handle(self, signum: int, frame: Any) -> None:
        if self.trainer._signalled:
            raise KeyboardInterrupt
        self.trainer._signalled = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        self.trainer.log(f"\n{name}: stopping after this step and saving a checkpoint "
                         "(press Ctrl-C again to quit at once)")

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
