"""The Optimizer base: parameter groups, per-parameter state and torch.optim's state-dict layout."""
from __future__ import annotations

import contextlib
import inspect
import math
import numbers
from typing import Any, Callable, Iterable

import numpy as np

from .. import backend
from ..autograd import Tensor, versions

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


def require(ok: bool, message: str) -> None:
    """Raise ValueError(message) unless `ok` (hyperparameter checks, worded as torch.optim's)."""
    if not ok:
        raise ValueError(message)


class Optimizer:
    """Base of minitf's optimizers, laid out as torch.optim.Optimizer.

    `param_groups`: a list of dicts, each with "params" (a list of Parameters) and that group's
    hyperparameters; `defaults` fill the keys a group leaves out. `state[p]`: a dict per
    parameter (step count and NumPy/CuPy arrays on the parameter's device), made on its first
    update. Subclasses set `defaults` through `__init__` and implement `check(group)` (raise
    ValueError on bad settings), `state_keys(group)` and `update(p, group)`.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self._check_types(self.defaults)
        self.check(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        if isinstance(params, Tensor):
            raise TypeError("params given to the optimizer should be an iterable of Tensors or dicts, "
                            f"got a Tensor of shape {params.shape}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for group in groups if isinstance(groups[0], dict) else [{"params": groups}]:
            self.add_param_group(group)

    # ---- subclass hooks ---------------------------------------------------------------------
    def check(self, group: dict[str, Any]) -> None:
        """Raise ValueError if a hyperparameter of `group` is out of range."""

    def state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The entries a parameter's state must hold under this group's settings."""
        return ()

    def update(self, p: Tensor, group: dict[str, Any]) -> None:
        """Update one parameter (which has a gradient) in place."""
        raise NotImplementedError

    def _check_types(self, group: dict[str, Any]) -> None:
        """TypeError naming the first hyperparameter whose type differs from its default's in the
        constructor's signature (a number, true/false, a tuple of numbers): before `check`, whose
        comparisons would fail on it without naming it."""
        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()}
        for key, value in group.items():
            default = defaults.get(key)
            if isinstance(default, bool):
                ok, kind = isinstance(value, bool), "true or false"
            elif isinstance(default, (int, float)):
                ok, kind = _is_number(value), "a number"
            elif isinstance(default, tuple):
                ok = (isinstance(value, (tuple, list)) and len(value) == len(default)
                      and all(map(_is_number, value)))
                kind = f"a tuple of {len(default)} numbers"
            else:
                continue
            if not ok:
                raise TypeError(f"{key} must be {kind}, got {type(value).__name__} {repr(value)[:60]}")

    # ---- groups -------------------------------------------------------------------------------
    def add_param_group(self, group: dict[str, Any]) -> None:
        """Append a group: {"params": parameters, **hyperparameters}; defaults fill the rest."""
        if not isinstance(group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(group).__name__}")
        if "params" not in group:
            raise ValueError(f"a parameter group needs a 'params' entry; got keys {sorted(group)}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        name = type(self).__name__
        if not params:
            raise ValueError(f"{name} got an empty parameter list")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name} can only optimize Tensors, got {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"{name}: a parameter of shape {p.shape} does not require grad")
        ids = {id(p) for p in params}
        if len(ids) != len(params):
            raise ValueError(f"{name}: a parameter group lists the same parameter more than once")
        if ids & {id(p) for g in self.param_groups for p in g["params"]}:
            raise ValueError("some parameters appear in more than one parameter group")
        full = {**self.defaults, **group, "params": params}
        self._check_types(full)
        self.check(full)
        self.param_groups.append(full)

    @property
    def lr(self) -> float:
        """The learning rate when every group has the same one (a shorthand for one group)."""
        rates = {g["lr"] for g in self.param_groups}
        if len(rates) > 1:
            raise ValueError(f"the parameter groups have different learning rates {sorted(rates)}; "
                             "read them from param_groups")
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = value

    # ---- stepping -----------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every gradient (set_to_none) or zero it in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif getattr(p.grad, "flags", None) is not None and p.grad.flags.writeable:
                    p.grad[...] = 0
                else:
                    p.grad = backend.get_array_module(p.grad).zeros_like(p.grad)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; returns closure() if one is given."""
        loss = closure() if closure is not None else None
        with grads_as_arrays(self.param_groups):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self.update(p, group)
                        versions.bump(p.data)  # a graph that used the old values can no longer run backward()
        return loss

    # ---- state dicts --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """torch.optim's layout: {"state": {index: {...}}, "param_groups": [{..., "params": [index]}]}.

        Parameters are numbered in group order; arrays are NumPy copies (host memory).
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            ids = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: {k: _host_copy(v) for k, v in s.items()} for p, s in self.state.items()}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict() (also one whose indices are strings, as after JSON); checks all first:
        a malformed entry, a hyperparameter out of range, a step that is not an integer >= 0 or an
        array of the wrong shape or with nan/inf raises ValueError naming it."""
        if not isinstance(state_dict, dict):
            raise ValueError(f"optimizer state must be a dict, got {type(state_dict).__name__}")
        for key, kind in (("state", dict), ("param_groups", list)):
            if key not in state_dict:
                raise ValueError(f"optimizer state dict has no {key!r} entry; got keys {sorted(state_dict)}")
            if not isinstance(state_dict[key], kind):
                raise ValueError(f"optimizer.{key} must be a {kind.__name__}, got {type(state_dict[key]).__name__}")
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"optimizer state holds {len(saved)} parameter groups, this optimizer has "
                             f"{len(self.param_groups)}")
        by_index: dict[int, tuple[Tensor, dict[str, Any]]] = {}
        new_groups = []
        for i, (group, old) in enumerate(zip(self.param_groups, saved)):
            if not (isinstance(old, dict) and isinstance(old.get("params"), list)
                    and all(_index(j) is not None for j in old["params"])):
                raise ValueError(f"optimizer.param_groups[{i}] must be a dict whose 'params' lists parameter "
                                 f"indices, got {str(old)[:100]}")
            if len(old["params"]) != len(group["params"]):
                raise ValueError(f"parameter group {i} of the optimizer state holds {len(old['params'])} "
                                 f"parameters, this optimizer's has {len(group['params'])}")
            new = {**group, **{k: self._restore(k, v) for k, v in old.items() if k != "params"}}
            try:
                self._check_types(new)
                self.check(new)
            except (TypeError, ValueError) as exc:  # a value of the wrong type fails a comparison
                raise ValueError(f"optimizer.param_groups[{i}]: {exc}") from None
            new_groups.append(new)
            by_index.update({_index(j): (p, new) for j, p in zip(old["params"], group["params"])})
        new_state = {}
        for key, entries in state_dict["state"].items():
            if _index(key) not in by_index:
                raise ValueError(f"optimizer state has an entry for parameter {key!r}, which no group lists")
            if not isinstance(entries, dict):
                raise ValueError(f"optimizer.state[{key!r}] must be a dict, got {type(entries).__name__}")
            p, group = by_index[_index(key)]
            missing = [k for k in self.state_keys(group) if k not in entries]
            if missing:
                raise ValueError(f"optimizer state of parameter {key} lacks {missing}")
            new_state[p] = {name: _load_value(name, value, p, key) for name, value in entries.items()}
        for group, new in zip(self.param_groups, new_groups):
            group.update(new)
        self.state = new_state

    def _restore(self, key: str, value: Any) -> Any:
        """A saved hyperparameter in its default's type (JSON turns tuples into lists)."""
        return tuple(value) if isinstance(self.defaults.get(key), tuple) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _host_copy(value: Any) -> Any:
    if backend.is_cupy_array(value) or isinstance(value, np.ndarray):
        return backend.to_device(value, "cpu").copy()
    return value


def _index(key: Any) -> int | None:
    """A parameter index: an int >= 0, or its decimal string (JSON object keys); else None."""
    if isinstance(key, str) and key.isdecimal():
        return int(key)
    return key if isinstance(key, int) and not isinstance(key, bool) and key >= 0 else None


def _step(value: Any, index: Any) -> int:
    """A step count: any one number (torch saves a 0-d tensor) that is an integer >= 0."""
    try:
        number = None if isinstance(value, (str, bytes, bool)) else float(value)
    except (TypeError, ValueError, RuntimeError):  # not one number (RuntimeError: torch's many-element tensor)
        number = None
    if number is None or not (math.isfinite(number) and number >= 0 and number == int(number)):
        raise ValueError(f"optimizer state 'step' of parameter {index} must be an integer >= 0, got "
                         f"{repr(value)[:60]}")
    return int(number)


def _load_value(name: str, value: Any, p: Tensor, index: Any) -> Any:
    """A state entry for parameter `p`: "step" as an int, arrays copied to p's dtype and device."""
    if name == "step":
        return _step(value, index)
    array = backend.to_device(value, "cpu") if backend.is_cupy_array(value) else np.asarray(value)
    if array.shape != p.shape:
        raise ValueError(f"optimizer state '{name}' of parameter {index} has shape {array.shape}, "
                         f"the parameter has {p.shape}")
    if array.dtype.kind != "f" or not np.isfinite(array).all():
        raise ValueError(f"optimizer state '{name}' of parameter {index} must hold finite floats, got "
                         f"{'nan or inf' if array.dtype.kind == 'f' else array.dtype}")
    # a copy: the updates are in place and must not write into the caller's state
    return backend.to_device(np.array(array, dtype=p.dtype), p.device)


@contextlib.contextmanager
def grads_as_arrays(param_groups: list[dict[str, Any]]):
    """Within: a `.grad` that is a Tensor (backward(create_graph=True)) replaced by its array, which
    the updates read, as torch.optim steps with the gradient's values; put back after."""
    swapped = [(p, p.grad) for group in param_groups for p in group["params"] if isinstance(p.grad, Tensor)]
    for p, g in swapped:
        p.grad = g.data
    try:
        yield
    finally:
        for p, g in swapped:
            p.grad = g
