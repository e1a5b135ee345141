"""Array backends: NumPy on the CPU, CuPy on CUDA GPUs, chosen per array.

Every op asks `get_array_module(*arrays)` for `xp` and then writes NumPy-style code
once (the Chainer pattern). CuPy is imported lazily, the first time a CUDA device is
asked for, so the NumPy path never needs it installed.
"""
from __future__ import annotations

import ctypes
import math
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


def scatter_add(target: Any, index: Any, values: Any) -> None:
    """`target[index] += values`, adding repeated indices up (np.add.at / cupyx.scatter_add)."""
    if is_cupy_array(target):
        import cupyx  # noqa: PLC0415

        cupyx.scatter_add(target, index, values)
    else:
        np.add.at(target, index, values)


_ONE_HOT_LIMIT = 16384  # up to this many ids x rows, add_rows multiplies by a one-hot matrix
_SHORT_RUN = 8  # ids with up to this many rows are added level by level, the others by reduceat


def add_rows(target: Any, index: Any, rows: Any) -> None:
    """`target[index[i]] += rows[i]` for each i, repeated ids adding up: an embedding's backward.

    target: (V, ...), C-contiguous; index: (N,) integers in [0, V); rows: (N, ...) with target's
    trailing shape. Several times faster than `np.add.at`, which handles one row at a time:
    small problems (makemore's) take one_hot(index).T @ rows; larger ones sort the ids, sum
    the rows of each frequent id with one `np.add.reduceat` and add the rows of the other ids
    in at most _SHORT_RUN fancy-indexed passes (their first rows, then their second, ...).
    CuPy uses `cupyx.scatter_add`.
    """
    if is_cupy_array(target):
        import cupyx  # noqa: PLC0415

        cupyx.scatter_add(target, index, rows)
        return
    if index.size == 0:
        return
    flat_rows = rows.reshape(index.size, -1)
    flat_target = target.reshape(target.shape[0], -1)
    if index.size * target.shape[0] <= _ONE_HOT_LIMIT:
        one_hot = (np.arange(target.shape[0])[:, None] == index).astype(flat_rows.dtype)
        with np.errstate(invalid="ignore", over="ignore"):
            summed = one_hot @ flat_rows
        if np.isfinite(summed).all():
            flat_target += summed
            return
        # (a row holding inf or NaN would spread NaN to every id through 0 * inf: add exactly)
    # stable: each id's rows are added in their order; 16-bit keys sort by radix, in linear time
    keys = index.astype(np.uint16) if target.shape[0] <= 1 << 16 else index
    order = np.argsort(keys, kind="stable")
    ids = index[order]
    first = np.empty(ids.size, dtype=bool)  # where a run of equal ids starts
    first[0] = True
    np.not_equal(ids[1:], ids[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=ids.size)
    long = counts > _SHORT_RUN
    if long.all():  # (a small vocabulary)
        flat_target[ids[starts]] += np.add.reduceat(np.take(flat_rows, order, axis=0), starts, axis=0)
        return
    if long.any():  # reduceat costs about a microsecond per run: only for the frequent ids
        runs = counts[long]
        gathered = np.take(flat_rows, order[np.repeat(long, counts)], axis=0)
        flat_target[ids[starts[long]]] += np.add.reduceat(gathered, np.cumsum(runs) - runs, axis=0)
    # level k adds the k-th row of each other id: no id twice in a pass
    in_short = np.repeat(~long, counts)
    rank = (np.arange(ids.size) - np.repeat(starts, counts))[in_short]
    positions = np.flatnonzero(in_short)
    for k in range(int(rank.max()) + 1):
        level = positions[rank == k]
        flat_target[ids[level]] += np.take(flat_rows, order[level], axis=0)


# ---- random numbers: one generator per backend, reseeded together by manual_seed ----

_seed: int | None = None
_generators: dict[str, Any] = {}


def manual_seed(seed: int) -> None:
    """Seed every backend's generator (init, dropout), so that runs repeat exactly."""
    global _seed
    _seed = int(seed)
    _generators.clear()


def generator(xp: Any) -> Any:
    """The generator of backend `xp`: a NumPy `Generator` or a CuPy `RandomState`."""
    key = xp.__name__
    if key not in _generators:
        if xp is np:
            _generators[key] = np.random.default_rng(_seed)
        else:
            _generators[key] = xp.random.RandomState(_seed)
    return _generators[key]


def reseed_device_generators(*key: int) -> None:
    """Reseed every generator but NumPy's from the integers `key`, e.g. (seed, step).

    CuPy cannot hand out its generator's state for a checkpoint, so the trainer reseeds it
    from (seed, step) before each step: a resumed run then draws the same dropout masks as
    an uninterrupted one. (NumPy's state is saved and restored as it is: `rng_state`.)
    """
    value = int(np.random.SeedSequence([int(k) for k in key]).generate_state(1)[0])
    for name, gen in _generators.items():
        if name != np.__name__:
            gen.seed(value)


def random_uniform(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Uniform [0, 1) samples of `shape` and `dtype` from the backend's generator."""
    gen = generator(xp)
    if xp is np:
        dtype = np.dtype(dtype)
        if dtype in (np.float32, np.float64):
            return gen.random(shape, dtype=dtype)
        return gen.random(shape).astype(dtype)
    return gen.random_sample(shape, dtype=dtype)


def random_keep_mask(xp: Any, shape: tuple[int, ...], p: float, dtype: Any = np.float32) -> Any:
    """Boolean (shape): each entry False with probability p (dropout).

    NumPy cuts the generator's raw 64-bit words into 16-bit integers (three times as fast
    as drawing floats), so p is rounded to a multiple of 1/65536; CuPy compares uniform
    floats of `dtype` with p (the draws its dropout kernel makes).
    """
    if xp is np:
        size = math.prod(shape)
        words = generator(np).bit_generator.random_raw((size + 3) // 4)
        return keep_from_words(words, size, p).reshape(shape)
    return random_uniform(xp, shape, dtype) >= p


def keep_from_words(words: np.ndarray, size: int, p: float) -> np.ndarray:
    """The first `size` entries of a dropout keep mask (1-D boolean) from raw 64-bit words:
    each word cut into four 16-bit integers, kept where at least round(p * 65536)."""
    return words.view(np.uint16)[:size] >= round(p * 65536)


def random_normal(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Standard normal samples of `shape` and `dtype` from the backend's generator."""
    gen = generator(xp)
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return gen.standard_normal(shape, dtype=dtype)
    return gen.standard_normal(shape).astype(dtype)


def random_integers(xp: Any, low: int, high: int, shape: tuple[int, ...]) -> Any:
    """Uniform int64 samples in [low, high) of `shape` from the backend's generator."""
    gen = generator(xp)
    if xp is np:
        return gen.integers(low, high, size=shape, dtype=np.int64)
    return gen.randint(low, high, size=shape, dtype=np.int64)


def random_permutation(xp: Any, n: int) -> Any:
    """A random permutation of 0..n-1 (int64) from the backend's generator."""
    return generator(xp).permutation(n).astype(np.int64)


def rng_state() -> dict[str, Any]:
    """The NumPy generator's state (JSON-serializable), for checkpoints that resume exactly."""
    return generator(np).bit_generator.state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore an rng_state(); ValueError naming the entry if `state` does not have its layout
    (the same keys, the generator's name, non-negative integers below 2^128)."""
    check_rng_state(state)
    try:
        generator(np).bit_generator.state = state
    except (TypeError, ValueError, OverflowError) as exc:  # a value NumPy refuses
        raise ValueError(f"rng: not a state of {rng_state()['bit_generator']} ({exc})") from None


def check_rng_state(state: Any) -> None:
    """ValueError naming the entry where `state` differs from rng_state()'s layout, or holds a
    value the generator never has (PCG64: an odd increment, has_uint32 0 or 1, a 32-bit uinteger)."""
    _check_like(state, rng_state(), "rng")
    if state["bit_generator"] == "PCG64":
        inc, has, extra = state["state"]["inc"], state["has_uint32"], state["uinteger"]
        for name, value, ok, rule in (("state.inc", inc, inc % 2 == 1, "odd"),
                                      ("has_uint32", has, has in (0, 1), "0 or 1"),
                                      ("uinteger", extra, extra < 1 << 32, "below 2^32")):
            if not ok:
                raise ValueError(f"rng.{name} must be {rule}, got {str(value)[:60]}")


def _check_like(value: Any, template: Any, name: str) -> None:
    if isinstance(template, dict):
        if not isinstance(value, dict) or set(value) != set(template):
            got = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise ValueError(f"{name} must be a dict with keys {sorted(template)}, got {got}")
        for key, entry in template.items():
            _check_like(value[key], entry, f"{name}.{key}")
    elif isinstance(template, str):
        if value != template:
            raise ValueError(f"{name} must be {template!r}, got {repr(value)[:60]}")
    elif not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 128):
        raise ValueError(f"{name} must be an integer in 0 .. 2^128, got {repr(value)[:60]}")


# ---- host memory ----------------------------------------------------------------------

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
RETAINED_BLOCK_LIMIT = 1 << 30


def retain_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.

    Training frees and re-allocates the same activations every step. By default glibc maps
    large blocks (and trims the heap) on every step, so each step page-faults its memory in
    again: about a tenth of a CPU training step of the reference model (BENCHMARKS.md). This
    sets malloc's mmap and trim thresholds to 1 GiB for the whole process, so the process's
    memory stays at its peak instead of shrinking between steps. `minitf train` calls it;
    library users opt in. Returns False (and changes nothing) where the C library is not glibc.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, RETAINED_BLOCK_LIMIT)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, RETAINED_BLOCK_LIMIT))
