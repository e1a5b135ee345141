"""Adam and AdamW with in-place updates: no array is allocated per step after the first."""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from .. import backend, kernels
from ..autograd import Tensor, versions


class Adam:
    """Adam (Kingma & Ba). `weight_decay` adds an L2 term to the gradient, as torch.optim.Adam.

    step() updates every parameter that has a gradient, in place:
        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    decoupled = False

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for p in self.params:
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: a parameter of shape {p.shape} does not require grad")
        if lr < 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or eps <= 0 or weight_decay < 0:
            raise ValueError(f"invalid Adam settings: lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        self.lr, self.betas, self.eps, self.weight_decay = lr, tuple(betas), eps, weight_decay
        self.t = 0
        self.m: list[Any] = [None] * len(self.params)
        self.v: list[Any] = [None] * len(self.params)
        self._scratch: list[Any] = [None] * len(self.params)
        self._decayed: list[Any] = [None] * len(self.params)  # g + weight_decay * p (Adam's L2 only)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1 ** self.t)
        inv_bias2 = 1.0 / math.sqrt(1 - b2 ** self.t)
        active = [i for i, p in enumerate(self.params) if p.grad is not None]
        if active and all(kernels.available(self.params[i].data) for i in active):
            self._fused_cuda_step(active)
        else:
            for i in active:
                self._update(i, self.params[i].data, self.params[i].grad, step_size, inv_bias2)
        for i in active:  # a graph that used these values can no longer run backward()
            versions.bump(self.params[i].data)

    def _fused_cuda_step(self, active: list[int]) -> None:
        """Every parameter's update in one kernel launch per dtype (minitf.kernels)."""
        for i in active:
            self._moments(i, self.params[i].data)
        kernels.adam_update_multi([self.params[i].data for i in active], [self.params[i].grad for i in active],
                                  [self.m[i] for i in active], [self.v[i] for i in active], self.lr,
                                  self.betas[0], self.betas[1], self.eps, self.t, self.weight_decay,
                                  self.decoupled)

    def _moments(self, i: int, p: Any) -> None:
        if self.m[i] is None:
            xp = backend.get_array_module(p)
            self.m[i], self.v[i] = xp.zeros_like(p), xp.zeros_like(p)

    def _buffers(self, i: int, p: Any) -> tuple[Any, Any, Any]:
        self._moments(i, p)
        if self._scratch[i] is None:
            self._scratch[i] = backend.get_array_module(p).empty_like(p)
        return self.m[i], self.v[i], self._scratch[i]

    def _update(self, i: int, p: Any, g: Any, step_size: float, inv_bias2: float) -> None:
        """One parameter's update, in place, through scratch buffers kept from the first step."""
        xp = backend.get_array_module(p)
        m, v, tmp = self._buffers(i, p)
        b1, b2 = self.betas
        if self.weight_decay and self.decoupled:
            p *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:  # L2 penalty folded into the gradient, in a buffer of its own
            if self._decayed[i] is None:
                self._decayed[i] = xp.empty_like(p)
            decayed = xp.multiply(p, self.weight_decay, out=self._decayed[i])
            decayed += g
            g = decayed
        m *= b1
        xp.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        xp.sqrt(v, out=tmp)  # p -= step_size * m / (sqrt(v) * inv_bias2 + eps)
        tmp *= inv_bias2
        tmp += self.eps
        xp.divide(m, tmp, out=tmp)
        tmp *= step_size
        p -= tmp

    def state_dict(self) -> dict[str, Any]:
        """Step count, settings and moment arrays (NumPy copies), for an exact resume."""
        return {"t": self.t, "lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay,
                "m": [None if a is None else backend.to_device(a, "cpu").copy() for a in self.m],
                "v": [None if a is None else backend.to_device(a, "cpu").copy() for a in self.v]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("m", "v"):  # check everything before changing anything
            if len(state[name]) != len(self.params):
                raise ValueError(f"optimizer state holds {len(state[name])} parameters, this optimizer "
                                 f"has {len(self.params)}")
            for i, p in enumerate(self.params):
                value = state[name][i]
                if value is not None and np.shape(value) != p.shape:
                    raise ValueError(f"optimizer state '{name}' of parameter {i} has shape "
                                     f"{np.shape(value)}, the parameter has {p.shape}")
        self.t, self.lr, self.eps = int(state["t"]), float(state["lr"]), float(state["eps"])
        self.betas, self.weight_decay = tuple(state["betas"]), float(state["weight_decay"])
        for i, p in enumerate(self.params):
            for name, store in (("m", self.m), ("v", self.v)):
                value = state[name][i]
                # a copy: the updates are in place and must not write into the caller's state
                store[i] = None if value is None else backend.to_device(np.array(value, p.dtype), p.device)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weight_decay each step."""

    decoupled = True

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)
