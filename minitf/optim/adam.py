"""Adam and AdamW with in-place updates: no array is allocated per step after the first."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, cpu, kernels
from ..autograd import Tensor, versions
from .optimizer import Optimizer, ParamsT, grads_as_arrays, require


class Adam(Optimizer):
    """Adam (Kingma & Ba), as torch.optim.Adam (amsgrad not supported). `weight_decay` adds an L2
    term to the gradient; with decoupled_weight_decay=True it is AdamW's p *= 1 - lr * weight_decay.

    step() updates every parameter that has a gradient, in place (t: that parameter's step count):
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    State per parameter: "step", "exp_avg" (m), "exp_avg_sq" (v).
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
        self._scratch: dict[Tensor, Any] = {}  # per parameter; not state: never saved
        self._grad_buffer: dict[Tensor, Any] = {}  # -g and/or g + weight_decay * p, when needed

    def check(self, group: dict[str, Any]) -> None:
        b1, b2 = group["betas"]
        require(0.0 <= group["lr"] < math.inf, f"Invalid learning rate: {group['lr']}")
        require(0.0 <= group["eps"] < math.inf, f"Invalid epsilon value: {group['eps']}")
        require(0.0 <= b1 < 1.0, f"Invalid beta parameter at index 0: {b1}")
        require(0.0 <= b2 < 1.0, f"Invalid beta parameter at index 1: {b2}")
        require(0.0 <= group["weight_decay"] < math.inf, f"Invalid weight_decay value: {group['weight_decay']}")
        require(not group.get("amsgrad"), "amsgrad=True is not supported by minitf's Adam")
        for flag in ("maximize", "decoupled_weight_decay"):
            require(isinstance(group[flag], bool), f"Invalid {flag} value: {group[flag]!r} (true or false)")

    def state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("step", "exp_avg", "exp_avg_sq")

    # ---- compatibility: the per-parameter moment lists of minitf's first Adam -------------------
    @property
    def m(self) -> list[Any]:
        """exp_avg of each parameter in group order (None before its first update)."""
        return [self.state[p]["exp_avg"] if p in self.state else None for p in self._params()]

    @property
    def v(self) -> list[Any]:
        """exp_avg_sq of each parameter in group order (None before its first update)."""
        return [self.state[p]["exp_avg_sq"] if p in self.state else None for p in self._params()]

    def _params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    # ---- stepping -----------------------------------------------------------------------------
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        with grads_as_arrays(self.param_groups):
            self._step_groups()
        return loss

    def _step_groups(self) -> None:
        for group in self.param_groups:
            active = [p for p in group["params"] if p.grad is not None]
            if active and not group["maximize"] and all(kernels.available(p.data) for p in active):
                self._fused_cuda_step(active, group)
            elif all(type(p.data) is np.ndarray for p in active):  # shared among minitf's CPU threads
                for p in active:
                    self._state(p)  # created here, not concurrently in the threads
                cpu.for_each(lambda p, group=group: self.update(p, group), active,
                                  [p.size for p in active])
            else:
                for p in active:
                    self.update(p, group)
            for p in active:  # a graph that used the old values can no longer run backward()
                versions.bump(p.data)

    def _fused_cuda_step(self, active: list[Tensor], group: dict[str, Any]) -> None:
        """The group's updates in one kernel launch per (step count, dtype) (minitf.kernels)."""
        by_step: dict[int, list[Tensor]] = {}
        for p in active:
            state = self._state(p)
            state["step"] += 1
            by_step.setdefault(state["step"], []).append(p)
        b1, b2 = group["betas"]
        for t, ps in by_step.items():
            kernels.adam_update_multi([p.data for p in ps], [p.grad for p in ps],
                                      [self.state[p]["exp_avg"] for p in ps],
                                      [self.state[p]["exp_avg_sq"] for p in ps], group["lr"], b1, b2,
                                      group["eps"], t, group["weight_decay"], group["decoupled_weight_decay"])

    def _state(self, p: Tensor) -> dict[str, Any]:
        state = self.state.get(p)
        if state is None:
            xp = backend.get_array_module(p.data)
            state = self.state[p] = {"step": 0, "exp_avg": xp.zeros_like(p.data),
                                     "exp_avg_sq": xp.zeros_like(p.data)}
        return state

    def _buffer(self, store: dict[Tensor, Any], p: Tensor) -> Any:
        buf = store.get(p)
        if buf is None:
            buf = store[p] = backend.get_array_module(p.data).empty_like(p.data)
        return buf

    def update(self, p: Tensor, group: dict[str, Any]) -> None:
        """One parameter's update, in place, through scratch buffers kept from the first step."""
        state = self._state(p)
        state["step"] += 1
        t, lr, wd, (b1, b2) = state["step"], group["lr"], group["weight_decay"], group["betas"]
        step_size, inv_bias2 = lr / (1 - b1 ** t), 1.0 / math.sqrt(1 - b2 ** t)
        data, g = p.data, p.grad
        xp = backend.get_array_module(data)
        m, v, tmp = state["exp_avg"], state["exp_avg_sq"], self._buffer(self._scratch, p)
        coupled = wd and not group["decoupled_weight_decay"]
        if wd and not coupled:
            data *= 1 - lr * wd
        if coupled:  # L2 penalty folded into the (negated when maximizing) gradient, in its own buffer
            g = _add_or_subtract(xp.multiply(data, wd, out=self._buffer(self._grad_buffer, p)), g,
                                 group["maximize"])
        elif group["maximize"]:
            g = xp.negative(g, out=self._buffer(self._grad_buffer, p))
        m *= b1
        xp.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        xp.sqrt(v, out=tmp)  # p -= step_size * m / (sqrt(v) * inv_bias2 + eps)
        tmp *= inv_bias2
        tmp += group["eps"]
        xp.divide(m, tmp, out=tmp)
        tmp *= step_size
        data -= tmp


def _add_or_subtract(out: Any, g: Any, subtract: bool) -> Any:
    if subtract:
        out -= g
    else:
        out += g
    return out


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay each step."""

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, *, maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, maximize=maximize, decoupled_weight_decay=True)
