"""Adadelta (torch.optim.Adadelta)."""
from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Tensor
from .optimizer import Optimizer, ParamsT, require
from .sgd import effective_grad


class Adadelta(Optimizer):
    """Adadelta (Zeiler) as torch.optim.Adadelta (g: the gradient + weight_decay * p):
        s = rho s + (1 - rho) g^2                            ("square_avg")
        d = sqrt(u + eps) / sqrt(s + eps) * g
        u = rho u + (1 - rho) d^2                            ("acc_delta")
        p -= lr d
    """

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize))

    def check(self, group: dict[str, Any]) -> None:
        require(0.0 <= group["lr"], f"Invalid learning rate: {group['lr']}")
        require(0.0 <= group["rho"] <= 1.0, f"Invalid rho value: {group['rho']}")
        require(0.0 <= group["eps"], f"Invalid epsilon value: {group['eps']}")
        require(0.0 <= group["weight_decay"], f"Invalid weight_decay value: {group['weight_decay']}")

    def state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("step", "square_avg", "acc_delta")

    def update(self, p: Tensor, group: dict[str, Any]) -> None:
        xp = backend.get_array_module(p.data)
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {"step": 0, "square_avg": xp.zeros_like(p.data),
                                     "acc_delta": xp.zeros_like(p.data)}
        state["step"] += 1
        g, rho, eps = effective_grad(p, group), group["rho"], group["eps"]
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * g * g
        delta = xp.sqrt(acc_delta + eps) / xp.sqrt(square_avg + eps) * g
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        p.data -= group["lr"] * delta
