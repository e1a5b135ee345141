"""Adagrad with learning-rate decay (torch.optim.Adagrad)."""
from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Tensor
from .optimizer import Optimizer, ParamsT, require
from .sgd import effective_grad


class Adagrad(Optimizer):
    """Adagrad as torch.optim.Adagrad (g: the gradient + weight_decay * p; t: the step count):
        s += g^2   ("sum", starting at initial_accumulator_value)
        p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
    As torch does, every parameter's state exists from construction (step 0).
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize))

    def check(self, group: dict[str, Any]) -> None:
        require(0.0 <= group["lr"], f"Invalid learning rate: {group['lr']}")
        require(0.0 <= group["lr_decay"], f"Invalid lr_decay value: {group['lr_decay']}")
        require(0.0 <= group["weight_decay"], f"Invalid weight_decay value: {group['weight_decay']}")
        require(0.0 <= group["initial_accumulator_value"],
                f"Invalid initial_accumulator_value value: {group['initial_accumulator_value']}")
        require(0.0 <= group["eps"], f"Invalid epsilon value: {group['eps']}")

    def state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("step", "sum")

    def add_param_group(self, group: dict[str, Any]) -> None:
        super().add_param_group(group)
        added = self.param_groups[-1]
        for p in added["params"]:
            self.state[p] = self._fresh_state(p, added)

    @staticmethod
    def _fresh_state(p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        xp = backend.get_array_module(p.data)
        return {"step": 0, "sum": xp.full_like(p.data, group["initial_accumulator_value"])}

    def update(self, p: Tensor, group: dict[str, Any]) -> None:
        xp = backend.get_array_module(p.data)
        state = self.state.get(p) or self.state.setdefault(p, self._fresh_state(p, group))
        state["step"] += 1
        g = effective_grad(p, group)
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += g * g
        std = xp.sqrt(state["sum"])
        std += group["eps"]
        p.data -= clr * (g / std)
