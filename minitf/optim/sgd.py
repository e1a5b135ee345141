"""Stochastic gradient descent with momentum, dampening and Nesterov momentum (torch.optim.SGD)."""
from __future__ import annotations

from typing import Any

from .. import backend
from ..autograd import Tensor
from .optimizer import Optimizer, ParamsT, require


def effective_grad(p: Tensor, group: dict[str, Any]) -> Any:
    """The gradient torch.optim steps with: negated when maximizing, plus weight_decay * p (L2)."""
    g = -p.grad if group["maximize"] else p.grad
    return g + group["weight_decay"] * p.data if group["weight_decay"] else g


class SGD(Optimizer):
    """SGD as torch.optim.SGD (g: the gradient + weight_decay * p; b: "momentum_buffer"):
        b = g on the first step, then b = momentum b + (1 - dampening) g
        p -= lr * (g + momentum b if nesterov else b)      (p -= lr * g without momentum)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov, maximize=maximize))

    def check(self, group: dict[str, Any]) -> None:
        require(0.0 <= group["lr"], f"Invalid learning rate: {group['lr']}")
        require(0.0 <= group["momentum"], f"Invalid momentum value: {group['momentum']}")
        require(0.0 <= group["weight_decay"], f"Invalid weight_decay value: {group['weight_decay']}")
        require(not group["nesterov"] or (group["momentum"] > 0 and group["dampening"] == 0),
                "Nesterov momentum requires a momentum and zero dampening")

    def update(self, p: Tensor, group: dict[str, Any]) -> None:
        g, momentum = effective_grad(p, group), group["momentum"]
        if momentum:
            state = self.state.get(p)
            if state is None:
                buf = backend.get_array_module(p.data).array(g, dtype=p.data.dtype, copy=True)
                self.state[p] = {"momentum_buffer": buf}
            else:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * g
