"""state_dict / load_state_dict for Modules, and the array conversion behind Module.to()."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .. import backend
from ..autograd import Tensor, versions

if TYPE_CHECKING:
    from .module import Module


class IncompatibleKeys(NamedTuple):
    """What load_state_dict(strict=False) left alone, as torch.nn.Module.load_state_dict returns."""
    missing_keys: list[str]
    unexpected_keys: list[str]


def convert(array: Any, device: Any, dtype: Any) -> Any:
    """`array` on `device` and, if it is floating point, of `dtype` (None: unchanged)."""
    if dtype is not None and array.dtype.kind == "f" and array.dtype != dtype:
        array = array.astype(dtype)
    return array if device is None else backend.to_device(array, device)


def _entries(module: "Module", remove_duplicate: bool) -> list[tuple[str, Any, "Module", str]]:
    """(dotted name, member, owning module, attribute) of parameters and persistent buffers,
    in PyTorch's order: each module's parameters, its buffers, then its children."""
    entries, seen = [], set()
    for path, m in module.named_modules(remove_duplicate=remove_duplicate):
        members = list(m._parameters.items()) + [(n, b) for n, b in m._buffers.items()
                                                 if n not in m._non_persistent]
        for name, member in members:
            if member is None or (remove_duplicate and id(member) in seen):
                continue
            seen.add(id(member))
            entries.append((f"{path}.{name}" if path else name, member, m, name))
    return entries


def _host(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.numpy()
    return backend.to_device(value, "cpu") if backend.is_cupy_array(value) else np.asarray(value)


def state_dict(module: "Module", remove_duplicate: bool) -> dict[str, np.ndarray]:
    copies: dict[int, np.ndarray] = {}  # a tied member: one copy, under each of its names
    state = {}
    for name, member, _, _ in _entries(module, remove_duplicate):
        if id(member) not in copies:
            copies[id(member)] = np.array(_host(member))
        state[name] = copies[id(member)]
    return state


def _gather(module: "Module", state: dict[str, Any], strict: bool) -> tuple[dict[str, np.ndarray], IncompatibleKeys]:
    """Canonical name -> array from `state`, merging the keys of tied members; and the keys
    missing from `state` and those the model does not have."""
    canonical = {id(member): name for name, member, _, _ in _entries(module, True)}
    alias = {name: canonical[id(member)] for name, member, _, _ in _entries(module, False)}
    values: dict[str, np.ndarray] = {}
    first_key: dict[str, str] = {}
    unexpected = []
    for key, value in state.items():
        if key not in alias:
            unexpected.append(key)
            continue
        name = alias[key]
        if name in values:
            if not _same_values(state[first_key[name]], value):
                raise ValueError(f"load_state_dict: '{first_key[name]}' and '{key}' name one tied parameter "
                                 "of the model but hold different values")
            continue
        values[name], first_key[name] = _host(value), key
    missing = sorted(set(canonical.values()) - set(values))
    if strict and (missing or unexpected):
        raise KeyError(f"load_state_dict: missing entries {missing}, unexpected entries {sorted(unexpected)}")
    return values, IncompatibleKeys(missing, unexpected)


def _same_values(a: Any, b: Any) -> bool:
    """Whether two entries of a state hold one tied parameter's values: the same object, or equal
    arrays (a nan equals a nan there: it is one weight listed twice)."""
    if a is b:
        return True
    a, b = _host(a), _host(b)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc" and b.dtype.kind in "fc")


def _check(name: str, value: np.ndarray, target: Any, cast: bool) -> None:
    if value.shape != target.shape:
        raise ValueError(f"load_state_dict: '{name}' has shape {value.shape} in the state "
                         f"but {target.shape} in the model")
    if value.dtype != target.dtype and not cast and not np.can_cast(value.dtype, target.dtype, "safe"):
        raise TypeError(f"load_state_dict: '{name}' is {value.dtype} in the state but {target.dtype} in the "
                        "model, which would lose precision; convert the state, or pass cast=True to cast it")


def load_state_dict(module: "Module", state: dict[str, Any], strict: bool, cast: bool) -> IncompatibleKeys:
    if not isinstance(state, dict):
        raise TypeError(f"load_state_dict: expected a dict of name -> array, got {type(state).__name__}")
    values, incompatible = _gather(module, state, strict)
    entries = {name: (member, owner, attr) for name, member, owner, attr in _entries(module, True)}
    for name, value in values.items():  # check every entry before changing anything
        _check(name, value, entries[name][0], cast)
    for name, value in values.items():
        member, owner, attr = entries[name]
        if isinstance(member, Tensor):
            member.data = backend.to_device(value.astype(member.dtype), member.device)
            versions.bump(member.data)  # a graph that used the old values can no longer run backward()
        else:
            member[...] = backend.to_device(value.astype(member.dtype), backend.device_of(member))
            versions.bump(member)
    return incompatible
