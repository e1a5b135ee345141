"""Module and Parameter: the containers that models are built from."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from .. import backend
from ..autograd import Tensor
from ..backend import Device
from ..functional.dtypes import check_dtypes
from . import state as _state


class Parameter(Tensor):
    """A float tensor that a Module owns and an optimizer updates (requires grad)."""

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, device='{self.device}')"


class Module:
    """Base class: assign Parameters and Modules as attributes and they are registered.

    Non-trainable arrays that belong to the model (running statistics, position tables) are
    registered with `register_buffer`: they move with `.to()`, are cast by `.double()` etc. and,
    if persistent, appear in `state_dict()`.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            self._buffers[name] = value.data if isinstance(value, Tensor) else value
            object.__setattr__(self, name, self._buffers[name])
            return
        # replacing a parameter or module keeps its place (state-dict order); any other value
        # unregisters the name
        kind = self._parameters if isinstance(value, Parameter) else \
            self._modules if isinstance(value, Module) else None
        if kind is None or name not in kind:
            self._forget(name)
        if kind is not None:
            kind[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent.discard(name)

    def register_buffer(self, name: str, array: Any, persistent: bool = True) -> None:
        """Register a non-trainable array (NumPy/CuPy, a Tensor's data, or None) as `name`.

        Persistent buffers are saved in state_dict(); non-persistent ones (tables computed
        from the configuration) are not, but still move with `.to()`.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"register_buffer: the name must be a non-empty string without '.', got {name!r}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: {name!r} is already a parameter or submodule")
        if isinstance(array, Tensor):
            array = array.data
        if array is not None and not hasattr(array, "dtype"):
            raise TypeError(f"register_buffer: {name!r} must be an array, a Tensor or None, "
                            f"got {type(array).__name__}")
        self._forget(name)
        self._buffers[name] = array
        if not persistent:
            self._non_persistent.add(name)
        object.__setattr__(self, name, array)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(lines) + "\n)" if lines else ")")

    # ---- traversal ----------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True,
                      _seen: set[int] | None = None) -> Iterator[tuple[str, "Module"]]:
        """(dotted name, module) for this module and every descendant, parents first.

        A module reachable under two names (a shared embedding) is listed once unless
        remove_duplicate=False.
        """
        seen = set() if _seen is None else _seen
        if remove_duplicate:
            if id(self) in seen:
                return
            seen.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name, remove_duplicate, seen)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules is listed once."""
        yield from _named_members(self, "_parameters", prefix, remove_duplicate)

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "", remove_duplicate: bool = True) -> Iterator[tuple[str, Any]]:
        """(dotted name, array) for every registered buffer that is not None."""
        yield from _named_members(self, "_buffers", prefix, remove_duplicate)

    def buffers(self) -> list[Any]:
        return [b for _, b in self.named_buffers()]

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        """Call fn on every submodule (children first) and then on this module; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes, gradients, devices and dtypes --------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Freeze (False) or unfreeze (True) every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """Move to a device and/or cast floating parameters and buffers to a dtype, in place.

        Accepts to(device), to(dtype), to(device, dtype) and the keywords device=, dtype=.
        Parameters keep their identity (an optimizer built before still updates them).
        """
        device, dtype = _device_and_dtype("to", args, kwargs)
        return self._convert(lambda a: _state.convert(a, device, dtype))

    def double(self) -> "Module":
        return self.to(np.float64)

    def float(self) -> "Module":
        return self.to(np.float32)

    def half(self) -> "Module":
        return self.to(np.float16)

    def _convert(self, fn: Callable[[Any], Any]) -> "Module":
        for p in self.parameters():
            p.data = fn(p.data)
            if p.grad is not None:
                p.grad = fn(p.grad)
        for module in self.modules():
            for name, array in list(module._buffers.items()):
                if array is not None:
                    setattr(module, name, fn(array))
        return self

    @property
    def device(self) -> Device:
        params = self.parameters()
        return params[0].device if params else backend.CPU

    # ---- state --------------------------------------------------------------------------
    def state_dict(self, remove_duplicate: bool = False) -> dict[str, np.ndarray]:
        """Name -> NumPy array copy (on the CPU) of every parameter and persistent buffer.

        Keys and order as PyTorch's: each module's parameters, then its buffers, then its
        children; a parameter shared under two names (a tied weight) is listed under each, one
        array for both (as PyTorch does; minitf.save stores it once), or only under its first
        name with remove_duplicate=True. load_state_dict takes either form.
        """
        return _state.state_dict(self, remove_duplicate)

    def load_state_dict(self, state: dict[str, Any], strict: bool = True,
                        cast: bool = False) -> _state.IncompatibleKeys:
        """Copy arrays into the parameters and buffers, checking names, shapes and dtypes first.

        strict: missing and unexpected keys are errors. A tied parameter may appear under each
        of its names (as PyTorch lists it) if the values are equal. An array whose dtype does
        not convert losslessly (float64 into float32) is an error unless cast=True.
        Returns the (missing_keys, unexpected_keys) that strict=False let pass.
        """
        return _state.load_state_dict(self, state, strict, cast)


def _named_members(module: Module, kind: str, prefix: str, remove_duplicate: bool) -> Iterator[tuple[str, Any]]:
    seen: set[int] = set()
    for path, m in module.named_modules(prefix, remove_duplicate):
        for name, member in getattr(m, kind).items():
            if member is None or (remove_duplicate and id(member) in seen):
                continue
            seen.add(id(member))
            yield (f"{path}.{name}" if path else name), member


def _device_and_dtype(op: str, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    unknown = set(kwargs) - {"device", "dtype"}
    if unknown or len(args) > 2:
        raise TypeError(f"{op}: expected to(device), to(dtype) or to(device, dtype), got "
                        f"{len(args)} positional arguments and keywords {sorted(kwargs)}")
    device, dtype = kwargs.get("device"), kwargs.get("dtype")
    for arg in args:
        if isinstance(arg, Device) or (isinstance(arg, str) and _is_device(arg)):
            device = arg
        else:
            dtype = arg
    if device is not None:
        device = backend.parse_device(device)  # an unknown name raises a DeviceError naming it
    if dtype is not None:
        dtype = _float_dtype(op, dtype)
    return device, dtype


def _is_device(name: str) -> bool:
    """A device name, or a string that is no dtype either (parse_device then says what is wrong)."""
    try:
        backend.parse_device(name)
    except backend.DeviceError:
        try:
            np.dtype(name)
        except TypeError:
            return True
        return False
    return True


def _float_dtype(op: str, dtype: Any) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: {dtype!r} is neither a device nor a dtype") from None
    if dtype.kind != "f":
        raise TypeError(f"{op}: modules can only be cast to a floating dtype, got {dtype}")
    return dtype


def check_input_dtype(layer: Module, x: Any, **params: Any) -> None:
    """A TypeError naming the layer and both dtypes unless the input x (a Tensor or array) has
    the dtype of the layer's parameters (given by name; None for one the layer lacks)."""
    if hasattr(x, "dtype"):
        check_dtypes(type(layer).__name__, x, hint=f" or the layer with .to(np.{x.dtype.name})", **params)
