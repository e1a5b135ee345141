"""Cosine annealing: CosineAnnealingLR (one half cosine, chainable) and CosineAnnealingWarmRestarts
(SGDR: a half cosine that restarts, each period T_mult times the last)."""
from __future__ import annotations

import math
import numbers

from ..optimizer import Optimizer
from .base import LRScheduler, _number


class CosineAnnealingLR(LRScheduler):
    """eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, reached as torch does:
    recursively from the current rate (so another scheduler may change it in between), and past
    T_max on up again (a cosine, not restarts).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = _number("T_max", T_max, lambda t: 0 < t < math.inf, "a positive number of epochs")
        self.eta_min = _number("eta_min", eta_min, math.isfinite, "a finite number")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups, epoch, low = self.optimizer.param_groups, self.last_epoch, self.eta_min
        if self._is_initial:
            return [g["lr"] for g in groups]
        if self._step_count == 1 and epoch > 0:  # resumed with last_epoch: the closed form once
            return self._get_closed_form_lr()
        if (epoch - 1 - self.T_max) % (2 * self.T_max) == 0:  # the bottom: the recursion would divide by 0
            return [g["lr"] + (base - low) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base, g in zip(self.base_lrs, groups, strict=True)]
        ratio = (1 + math.cos(math.pi * epoch / self.T_max)) / (1 + math.cos(math.pi * (epoch - 1) / self.T_max))
        return [ratio * (g["lr"] - low) + low for g in groups]

    def _get_closed_form_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2, where T_cur counts the
    epochs since the last restart and T_i (T_0 at first) is multiplied by T_mult at each restart.

    step() advances one epoch; step(epoch) jumps to `epoch`, which may be a float (a fraction of
    an epoch: call it after each batch with `epoch + batch / batches`); last_epoch is its floor.
    For T_mult > 1 the jump finds the current period with a floating-point logarithm, as torch
    does (so the rates equal torch's, including at a restart epoch where the log rounds down).
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {T_0!r}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult!r}")
        self.eta_min = _number("eta_min", eta_min, math.isfinite, "a finite number")
        self.T_0, self.T_i, self.T_mult = T_0, T_0, T_mult
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:  # type: ignore[override]
        """The next epoch, or `epoch` (a number >= 0, possibly fractional). As torch's, this step
        does not count _step_count."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur, self.T_i = self.T_cur % self.T_i, self.T_i * self.T_mult
        else:
            self._jump(epoch)
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _jump(self, epoch: float) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Real) or not epoch >= 0 or math.isinf(epoch):
            raise ValueError(f"Expected non-negative epoch, but got {epoch!r}")
        if epoch < self.T_0:
            self.T_i, self.T_cur = self.T_0, epoch
        elif self.T_mult == 1:
            self.T_cur = epoch % self.T_0
        else:
            # restarts at T_0 * (T_mult**n - 1) / (T_mult - 1): n restarts so far
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
            self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
            self.T_i = self.T_0 * self.T_mult ** n
