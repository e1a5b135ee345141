"""Array backends: NumPy on the CPU, CuPy on CUDA GPUs, chosen per array.

Every op asks `get_array_module(*arrays)` for `xp` and then writes NumPy-style code
once (the Chainer pattern). CuPy is imported lazily, the first time a CUDA device is
asked for, so the NumPy path never needs it installed.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import UserError

# The name `minitf` on the public package index belongs to another project: install from the checkout.
CUDA_HINT = (
    "install CuPy from the minitf checkout with `pip install \".[cuda]\"` (the CUDA 12 wheel, "
    "cupy-cuda12x), or `pip install cupy-cuda11x` / `cupy-cuda13x` for other CUDA versions"
)


class DeviceError(UserError, RuntimeError):
    """A device that does not exist or cannot be used, or inputs on different devices."""


@dataclass(frozen=True)
class Device:
    """A device: `Device("cpu")` or `Device("cuda", index)`."""

    kind: str
    index: int = 0

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"


CPU = Device("cpu")


def parse_device(device: str | Device) -> Device:
    """Parse "cpu", "cuda" or "cuda:N" (or pass a Device through)."""
    if isinstance(device, Device):
        return device
    if not isinstance(device, str):
        raise DeviceError(f"device must be a string such as 'cpu' or 'cuda:0', got {device!r}")
    name = device.strip().lower()
    if name == "cpu":
        return CPU
    if name == "cuda":
        return Device("cuda", 0)
    if name.startswith("cuda:") and name[5:].isdigit():
        return Device("cuda", int(name[5:]))
    raise DeviceError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


_cupy: Any = None


def cupy() -> Any:
    """Return the `cupy` module, importing it on first use, or raise a DeviceError saying why."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy as cp  # noqa: PLC0415 (lazy on purpose: CuPy is optional)
    except ImportError as exc:
        raise DeviceError(f"device 'cuda' needs CuPy, which is not installed: {CUDA_HINT}") from exc
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken
        raise DeviceError(f"CuPy is installed but no usable CUDA GPU was found ({exc})") from exc
    if count == 0:
        raise DeviceError("CuPy is installed but this machine has no CUDA GPU")
    _cupy = cp
    return cp


def cuda_available() -> bool:
    """True when CuPy is installed and sees a CUDA GPU (never raises)."""
    try:
        cupy()
    except DeviceError:
        return False
    return True


def require_device(device: str | Device) -> Device:
    """Parse `device` and check that it can be used here (for CUDA: CuPy and that GPU present)."""
    target = parse_device(device)
    if target.kind == "cuda":
        count = cupy().cuda.runtime.getDeviceCount()
        if target.index >= count:
            raise DeviceError(f"device {target} does not exist: this machine has {count} CUDA GPU(s)")
    return target


def is_cupy_array(array: Any) -> bool:
    cp = sys.modules.get("cupy")
    return cp is not None and isinstance(array, cp.ndarray)


def get_array_module(*arrays: Any) -> Any:
    """NumPy, or CuPy if any argument is a CuPy array."""
    cp = sys.modules.get("cupy")
    if cp is not None:
        for a in arrays:
            if isinstance(a, cp.ndarray):
                return cp
    return np


def device_of(array: Any) -> Device:
    if is_cupy_array(array):
        return Device("cuda", array.device.id)
    return CPU


def to_device(array: Any, device: str | Device) -> Any:
    """Copy `array` to `device` (no copy when it is already there)."""
    target = parse_device(device)
    if target.kind == "cpu":
        return array.get() if is_cupy_array(array) else np.asarray(array)
    cp = cupy()
    count = cp.cuda.runtime.getDeviceCount()
    if target.index >= count:
        raise DeviceError(f"device {target} does not exist: this machine has {count} CUDA GPU(s)")
    with cp.cuda.Device(target.index):
        return cp.asarray(array)


def check_same_device(op: str, *arrays: Any) -> None:
    """Raise a DeviceError naming each input's device if `arrays` are not all on one device."""
    first = type(arrays[0])
    if first is np.ndarray and all(type(a) is np.ndarray for a in arrays):
        return
    devices = [device_of(a) for a in arrays]
    if len(set(devices)) > 1:
        names = ", ".join(str(d) for d in devices)
        raise DeviceError(
            f"{op}: inputs are on different devices ({names}); move them to one device with .to(...)"
        )
