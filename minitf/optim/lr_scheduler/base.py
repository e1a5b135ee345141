"""The base of the schedulers: LRScheduler and the helpers its subclasses share."""
from __future__ import annotations

import math
import numbers
from collections import Counter
from typing import Any, Callable

from ..optimizer import Optimizer

# torch's own bookkeeping entries in its schedulers' state dicts; loading ignores them
_TORCH_ONLY = {"_get_lr_called_within_step", "_is_initial", "verbose"}


class LRScheduler:
    """Base: base_lrs (each group's "initial_lr"), last_epoch, and get_lr() of the subclass.

    As in torch, get_lr() may compute the next rates from the current ones (the chainable form,
    so that schedulers can be composed) and `_get_closed_form_lr()`, where a schedule has one,
    gives epoch `last_epoch`'s rates from base_lrs alone (used when a schedule jumps to an epoch).
    While the constructor applies epoch 0, `_is_initial` is True (a chainable schedule leaves
    the rates as they are then).
    """

    _is_initial = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming a "
                               f"scheduler with last_epoch={last_epoch} (load the optimizer's state first)")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            del self._is_initial  # back to the class's False; not part of the state dict

    def get_lr(self) -> list[float]:
        """The rates for epoch `last_epoch` (already advanced), one per group."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def step(self) -> None:
        self._step_count += 1
        self._update_lr()

    def _update_lr(self, epoch: int | None = None) -> None:
        """Move to the next epoch, or to `epoch` (by the closed form where there is one), and write
        every group's "lr"."""
        if epoch is None:
            self.last_epoch += 1
            rates = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            rates = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer, as torch does."""
        return {k: _copy(v) for k, v in vars(self).items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict() (minitf's or torch's); a missing or unknown entry is an error."""
        self._load_entries(state_dict, set(self.state_dict()))

    def _load_entries(self, state_dict: dict[str, Any], known: set[str]) -> None:
        missing = sorted(known - set(state_dict))
        unknown = sorted(set(state_dict) - known - _TORCH_ONLY)
        if missing or unknown:
            raise ValueError(f"{type(self).__name__} state dict: missing entries {missing}, unknown entries "
                             f"{unknown}")
        self.__dict__.update({k: _copy(v) for k, v in state_dict.items() if k in known})


def _copy(value: Any) -> Any:
    if isinstance(value, Counter):
        return Counter(value)
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _per_group(name: str, optimizer: Optimizer, value: Any) -> list[Any]:
    """`value` for each parameter group: a list/tuple of one per group, or one for all."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"expected {n} values for {name}, got {len(value)}")
        return list(value)
    return [value] * n


def _number(name: str, value: Any, condition: Callable[[float], bool], wanted: str) -> Any:
    """`value` if it is a real number (not nan) for which `condition` holds; else a ValueError
    saying what was `wanted`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) or not condition(value):
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return value


def _integer(name: str, value: Any, low: int) -> int:
    """`value` if it is an int >= low; else a ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        wanted = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return value
