"""Learning-rate schedules: a factor of the base rate as a function of the step (1-based)."""
from __future__ import annotations

import math
from typing import Any


class Schedule:
    """Sets `optimizer.lr = base_lr * factor(step)` on each `step()`; state is just the step."""

    def __init__(self, optimizer: Any, base_lr: float | None = None) -> None:
        self.optimizer = optimizer
        self.base_lr = optimizer.lr if base_lr is None else base_lr
        self.steps = 0
        optimizer.lr = self.base_lr * self.factor(1)

    def factor(self, step: int) -> float:
        raise NotImplementedError

    def step(self) -> float:
        """Advance one step and set the rate for the next optimizer step; return it."""
        self.steps += 1
        self.optimizer.lr = self.base_lr * self.factor(self.steps + 1)
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.base_lr = int(state["steps"]), float(state["base_lr"])
        self.optimizer.lr = self.base_lr * self.factor(self.steps + 1)


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
