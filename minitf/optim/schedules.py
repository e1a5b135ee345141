"""Learning-rate schedules: a factor of the base rate as a function of the step (1-based)."""
from __future__ import annotations

import math
from typing import Any


class Schedule:
    """Sets each group's lr = base_lr * factor(step) on each `step()`; state is the step count.

    `base_lr` None: each parameter group's rate at construction; a number: that rate for all.
    """

    def __init__(self, optimizer: Any, base_lr: float | None = None) -> None:
        self.optimizer = optimizer
        self.base_lrs = [g["lr"] if base_lr is None else base_lr for g in optimizer.param_groups]
        self.steps = 0
        self._apply()

    @property
    def base_lr(self) -> float:
        """The first group's base rate (the only one for a single-group optimizer)."""
        return self.base_lrs[0]

    def factor(self, step: int) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        """Set the rates of the next optimizer step, number steps + 1."""
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * self.factor(self.steps + 1)

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def step(self) -> float:
        """Advance one step and set the rates for the next optimizer step; return the first group's."""
        self.steps += 1
        self._apply()
        return self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        """{"steps", "base_lr"} for one parameter group, {"steps", "base_lrs"} for several."""
        if len(self.base_lrs) == 1:
            return {"steps": self.steps, "base_lr": self.base_lrs[0]}
        return {"steps": self.steps, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state_dict(); ValueError naming the entry that is missing or out of range
        (steps: an integer >= 0; base rates: finite numbers > 0)."""
        n = len(self.optimizer.param_groups)
        if not isinstance(state, dict) or "steps" not in state or ("base_lr" in state) == ("base_lrs" in state):
            raise ValueError("schedule must be a dict with 'steps' and 'base_lr' (or 'base_lrs'), got "
                             f"{repr(state)[:60]}")
        unknown = sorted(set(state) - {"steps", "base_lr", "base_lrs"}, key=str)
        if unknown:
            raise ValueError(f"schedule has unknown key(s) {unknown[:5]} (it holds steps and base_lr or base_lrs)")
        base_lrs = [state["base_lr"]] * n if "base_lr" in state else state["base_lrs"]
        if not isinstance(base_lrs, list) or len(base_lrs) != n:
            raise ValueError(f"schedule.base_lrs must be a list of {n} rates (one per parameter group), got "
                             f"{repr(base_lrs)[:60]}")
        steps = state["steps"]
        if not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0):
            raise ValueError(f"schedule.steps must be an integer >= 0, got {steps!r}")
        for rate in base_lrs:
            if not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and math.isfinite(rate) and rate > 0):
                raise ValueError(f"schedule.base_lr must be a finite number > 0, got {rate!r}")
        self.steps, self.base_lrs = steps, [float(b) for b in base_lrs]
        self._apply()


class InverseSqrtSchedule(Schedule):
    """Linear warmup to the base rate over `warmup` steps, then decay as sqrt(warmup / step)."""

    def __init__(self, optimizer: Any, warmup: int, base_lr: float | None = None) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be at least 1 step, got {warmup}")
        self.warmup = warmup
        super().__init__(optimizer, base_lr)

    def factor(self, step: int) -> float:
        return min(step / self.warmup, math.sqrt(self.warmup / step))


class CosineSchedule(Schedule):
    """Linear warmup, then a cosine from the base rate down to `min_factor` times it at `total` steps."""

    def __init__(self, optimizer: Any, warmup: int, total: int, min_factor: float = 0.0,
                 base_lr: float | None = None) -> None:
        if not 0 <= warmup < total:
            raise ValueError(f"need 0 <= warmup < total steps, got warmup={warmup}, total={total}")
        self.warmup, self.total, self.min_factor = warmup, total, min_factor
        super().__init__(optimizer, base_lr)

    def factor(self, step: int) -> float:
        if step <= self.warmup:
            return step / max(self.warmup, 1)
        progress = min((step - self.warmup) / (self.total - self.warmup), 1.0)
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


class BudgetSchedule(Schedule):
    """Linear warmup over `warmup` steps, then a decay to 0 as the training budget runs out: the
    factor is min(1, step / warmup) * decay(used), with decay(u) = 1 - u ("linear") or
    (1 + cos(pi u)) / 2 ("cosine"), where `used` in [0, 1] is the fraction of the budget spent.

    The budget may be a number of steps or seconds of training, so the caller tells the schedule
    how much is spent with set_used() before each optimizer step (minitf's Trainer: the larger of
    steps / planned steps and training seconds / --time-limit). "Budgeted training" (Li et al.,
    2020): a rate that reaches 0 when the budget ends beats a schedule cut off in its middle.
    """

    SHAPES = ("linear", "cosine")

    def __init__(self, optimizer: Any, warmup: int, shape: str = "cosine", base_lr: float | None = None) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be at least 1 step, got {warmup}")
        if shape not in self.SHAPES:
            raise ValueError(f"shape must be one of {list(self.SHAPES)}, got {shape!r}")
        self.warmup, self.shape, self.used = warmup, shape, 0.0
        super().__init__(optimizer, base_lr)

    def set_used(self, used: float) -> float:
        """Set the fraction of the budget spent (clipped to [0, 1]) and the next step's rates; return
        the first group's rate."""
        if not math.isfinite(used):
            raise ValueError(f"the budget used must be a finite fraction, got {used!r}")
        self.used = min(max(float(used), 0.0), 1.0)
        self._apply()
        return self.optimizer.param_groups[0]["lr"]

    def factor(self, step: int) -> float:
        decay = 1.0 - self.used if self.shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * self.used))
        return min(step / self.warmup, 1.0) * decay
