"""Module and Parameter: the containers that models are built from."""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from .. import backend
from ..autograd import Tensor, versions
from ..backend import Device


class Parameter(Tensor):
    """A float tensor that a Module owns and an optimizer updates (requires grad)."""

    def __init__(self, data: Any) -> None:
        super().__init__(data, requires_grad=True)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, device='{self.device}')"


class Module:
    """Base class: assign Parameters and Modules as attributes and they are registered."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    # ---- traversal ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules is listed once."""
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # ---- modes and devices --------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for _, module in self.named_modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, device: str | Device) -> "Module":
        """Move every parameter (and gradient) to `device` in place; parameters keep their identity."""
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            if p.grad is not None:
                p.grad = backend.to_device(p.grad, device)
        for _, module in self.named_modules():
            module._move_buffers(device)
        return self

    def _move_buffers(self, device: str | Device) -> None:
        """Override to move non-parameter arrays (such as positional tables)."""

    @property
    def device(self) -> Device:
        params = self.parameters()
        return params[0].device if params else backend.CPU

    # ---- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter name -> NumPy array copy (on the CPU)."""
        return {name: np.array(p.numpy()) for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy arrays into the parameters, checking names, shapes and (if strict) completeness."""
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing entries {missing}, unexpected entries {unexpected}")
        values = {name: np.asarray(state[name]) for name in own if name in state}
        for name, value in values.items():  # check every entry before changing any parameter
            if value.shape != own[name].shape:
                raise ValueError(f"load_state_dict: '{name}' has shape {value.shape} in the state "
                                 f"but {own[name].shape} in the model")
        for name, value in values.items():
            p = own[name]
            p.data = backend.to_device(value.astype(p.dtype), p.device)
            versions.bump(p.data)  # a graph that used the old values can no longer run backward()


class ModuleList(Module):
    """A list of modules, registered as children "0", "1", ..."""

    def __init__(self, modules: list[Module] | None = None) -> None:
        super().__init__()
        for m in modules or []:
            self.append(m)

    def append(self, module: Module) -> None:
        setattr(self, str(len(self._modules)), module)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]
