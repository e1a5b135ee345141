"""Random numbers for both devices: the generators, seeding, resume state and dropout masks.

One generator per backend, created on first use from the seed `manual_seed` set (None: fresh
entropy): a NumPy `Generator` (PCG64) and a CuPy `RandomState`. Initialization, sampling
and dropout all draw from the generator of their array's backend.

Resume state: NumPy's generator state is saved and restored as it is (`rng_state`,
`set_rng_state`, checked by `check_rng_state`). CuPy cannot hand out its generator's state,
so a trainer reseeds it from (seed, step) before each step (`reseed_device_generators`).

Dropout keep masks (`keep_mask`), True = kept; each entry dropped with probability p:
- NumPy: the generator's raw 64-bit words, each cut into four 16-bit integers u (three times
  as fast as drawing floats); kept where u >= round(p * 65536), so p is rounded to a multiple of
  1/65536. Drawn in blocks of words on minitf's threads: each block copies the generator's state
  and advances it to the block's first word (PCG64's jump-ahead), so the bits are those of one
  serial draw, for any thread count, and the generator ends where one draw leaves it.
- CuPy (and the CUDA dropout kernel, which is given these draws): uniform floats u of the
  input's dtype from CuPy's generator, kept where u >= p.
The two rules draw from different generators, so one seed gives different masks on the two
devices; each device repeats its own masks exactly.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .cpu.blocking import row_blocks
from .cpu.pool import run_tasks

__all__ = ["manual_seed", "generator", "reseed_device_generators", "random_uniform", "random_normal",
           "random_integers", "random_permutation", "keep_mask", "keep_from_words", "dropout_keep",
           "dropout_mask", "rng_state", "set_rng_state", "check_rng_state"]

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
    """Reseed every generator but NumPy's from the integers `key`, e.g. (seed, step): a resumed
    run then draws the same dropout masks on CuPy as an uninterrupted one."""
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


# ---- dropout ------------------------------------------------------------------------------------

def keep_mask(xp: Any, shape: tuple[int, ...], p: float, dtype: Any = np.float32) -> Any:
    """Boolean (shape): each entry False with probability p (dropout), by the module's rule for
    backend xp (CuPy compares uniform floats of `dtype`; NumPy ignores dtype)."""
    if xp is not np:
        return random_uniform(xp, shape, dtype) >= p
    bit_generator = generator(np).bit_generator
    size = math.prod(shape)
    n_words = (size + 3) // 4
    parts = row_blocks(n_words, 4)
    if len(parts) == 1 or not hasattr(bit_generator, "advance"):
        return keep_from_words(bit_generator.random_raw(n_words), size, p).reshape(shape)
    keep = np.empty(4 * n_words, dtype=bool)
    state = bit_generator.state

    def draw(words: slice) -> None:
        block = type(bit_generator)()
        block.state = state
        block.advance(words.start)
        n = words.stop - words.start
        keep[4 * words.start:4 * words.stop] = keep_from_words(block.random_raw(n), 4 * n, p)

    run_tasks([lambda s=s: draw(s) for s in parts])
    bit_generator.advance(n_words)
    return keep[:size].reshape(shape)


def keep_from_words(words: np.ndarray, size: int, p: float) -> np.ndarray:
    """The first `size` entries of a NumPy keep mask (1-D boolean) from raw 64-bit words:
    each word cut into four 16-bit integers, kept where at least round(p * 65536)."""
    return words.view(np.uint16)[:size] >= round(p * 65536)


def dropout_keep(xp: Any, shape: tuple[int, ...], p: float, dtype: Any) -> tuple[Any, float]:
    """(keep, scale): keep_mask(xp, shape, p, dtype) and the inverted dropout's 1/(1-p) (0 if
    p is 1); keep * scale is dropout_mask's mask, in a quarter of its memory."""
    return keep_mask(xp, shape, p, dtype), (1.0 / (1.0 - p) if p < 1 else 0.0)


def dropout_mask(xp: Any, shape: tuple[int, ...], p: float, dtype: Any) -> Any:
    """A mask of 0 and 1/(1-p) entries of `dtype`: each zero with probability p (inverted dropout)."""
    return keep_mask(xp, shape, p, dtype) * xp.asarray(1.0 / (1.0 - p), dtype=dtype)


# ---- resume state -------------------------------------------------------------------------------

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
