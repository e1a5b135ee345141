"""Schedulers made of others: SequentialLR (one after another, switching at milestones) and
ChainedScheduler (all at once, each chainable one multiplying the rate the one before set)."""
from __future__ import annotations

from bisect import bisect_right
from typing import Any, Sequence

from ..optimizer import Optimizer
from .base import LRScheduler, _copy
from .plateau import ReduceLROnPlateau


def _check_parts(owner: str, optimizer: Optimizer, schedulers: Sequence[LRScheduler]) -> None:
    if len(schedulers) < 1:
        raise ValueError(f"{owner} expects at least one scheduler, but got none")
    for i, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{owner}: the scheduler at index {i} ({type(scheduler).__name__}) has no "
                            "`optimizer` attribute")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(f"{owner} does not support ReduceLROnPlateau (its step needs a metric), but got "
                             f"one at index {i}")
        if scheduler.optimizer is not optimizer:
            raise ValueError(f"{owner} expects all schedulers to belong to the same optimizer, but the "
                             f"{type(scheduler).__name__} at index {i} has another one")


class _Composite(LRScheduler):
    """The state dict: the composite's own entries and, under "_schedulers", each part's state dict."""

    _schedulers: list[LRScheduler]

    def state_dict(self) -> dict[str, Any]:
        state = {k: _copy(v) for k, v in vars(self).items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        parts = state_dict.get("_schedulers")
        if not isinstance(parts, list) or len(parts) != len(self._schedulers):
            have = len(parts) if isinstance(parts, list) else parts
            raise ValueError(f"{type(self).__name__} state dict has {have!r} _schedulers, this scheduler has "
                             f"{len(self._schedulers)}")
        self._load_entries({k: v for k, v in state_dict.items() if k != "_schedulers"},
                           set(self.state_dict()) - {"_schedulers"})
        for scheduler, state in zip(self._schedulers, parts):
            scheduler.load_state_dict(state)


class SequentialLR(_Composite):
    """schedulers[0] until epoch milestones[0], then schedulers[1] (started anew: epoch 0 by its
    closed form where it has one, from the groups' "initial_lr"), ... as torch's SequentialLR.
    The parts must be built on `optimizer` first; building this undoes their first step.
    """

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1) -> None:
        _check_parts("SequentialLR", optimizer, schedulers)
        milestones = list(milestones)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR expects one milestone fewer than schedulers, but got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        if any(isinstance(m, bool) or not isinstance(m, int) for m in milestones) or milestones != sorted(milestones):
            raise ValueError(f"SequentialLR milestones must be integers in increasing order, got {milestones}")
        for i, part in enumerate(schedulers[1:], 1):
            if isinstance(part, _Composite):  # torch's fails at the milestone: its get_lr is not there
                raise ValueError(f"SequentialLR cannot restart the {type(part).__name__} at index {i} at its "
                                 "milestone (only the first scheduler may be made of others)")
        self._schedulers, self._milestones = list(schedulers), milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        _undo_first_step(self)
        first = self._schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


def _undo_first_step(scheduler: Any) -> None:
    """Each part's (and each part's part's) epoch back by one, as if not built yet."""
    parts = getattr(scheduler, "_schedulers", None)
    if parts is not None:
        for part in parts:
            _undo_first_step(part)
    elif hasattr(scheduler, "last_epoch"):
        scheduler.last_epoch -= 1


class ChainedScheduler(_Composite):
    """Steps every scheduler in turn at each step(): chainable ones (StepLR, ExponentialLR, ...)
    multiply the rate by their factors one after another."""

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None) -> None:
        if len(schedulers) < 1:
            raise ValueError("ChainedScheduler expects at least one scheduler, but got none")
        optimizer = optimizer if optimizer is not None else getattr(schedulers[0], "optimizer", None)
        _check_parts("ChainedScheduler", optimizer, schedulers)
        self._schedulers, self.optimizer = list(schedulers), optimizer
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self) -> None:  # type: ignore[override]
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
