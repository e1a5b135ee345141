"""RMSprop, plain or centered, with optional momentum (torch.optim.RMSprop)."""
from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Tensor
from .optimizer import Optimizer, ParamsT, require
from .sgd import effective_grad


class RMSprop(Optimizer):
    """RMSprop as torch.optim.RMSprop (g: the gradient + weight_decay * p):
        s = alpha s + (1 - alpha) g^2                        ("square_avg")
        centered: a = a + (1 - alpha) (g - a), d = sqrt(s - a^2) + eps, else d = sqrt(s) + eps
        momentum: b = momentum b + g / d, p -= lr b;  else p -= lr g / d
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def check(self, group: dict[str, Any]) -> None:
        require(0.0 <= group["lr"], f"Invalid learning rate: {group['lr']}")
        require(0.0 <= group["eps"], f"Invalid epsilon value: {group['eps']}")
        require(0.0 <= group["momentum"], f"Invalid momentum value: {group['momentum']}")
        require(0.0 <= group["weight_decay"], f"Invalid weight_decay value: {group['weight_decay']}")
        require(0.0 <= group["alpha"], f"Invalid alpha value: {group['alpha']}")

    def state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return (("step", "square_avg") + (("momentum_buffer",) if group["momentum"] > 0 else ())
                + (("grad_avg",) if group["centered"] else ()))

    def update(self, p: Tensor, group: dict[str, Any]) -> None:
        xp = backend.get_array_module(p.data)
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {"step": 0, **{k: xp.zeros_like(p.data) for k in self.state_keys(group)[1:]}}
        state["step"] += 1
        g, alpha, square_avg = effective_grad(p, group), group["alpha"], state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (g - grad_avg)
            avg = xp.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = xp.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * (g / avg)
