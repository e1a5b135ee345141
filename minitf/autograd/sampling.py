"""Random tensors: rand, randn, randint, randperm, multinomial, bernoulli.

All draw from the generator of the device's backend (`minitf.rng.generator`), which
`minitf.manual_seed` seeds: the same seed gives the same draws. Dtypes as PyTorch: float32
for float samples, int64 for integer ones. None of them records a gradient.
"""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .. import backend, rng
from .creation import DeviceLike, backend_of, parse_shape
from .tensor import Tensor, as_array


def rand(*shape: Any, dtype: Any = np.float32, device: DeviceLike = "cpu",
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) of the given shape (`rand(2, 3)` or `rand((2, 3))`)."""
    data = rng.random_uniform(backend_of(device), parse_shape(shape, "rand"), dtype)
    return Tensor(data, requires_grad=requires_grad, device=device)


def randn(*shape: Any, dtype: Any = np.float32, device: DeviceLike = "cpu",
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples of the given shape (`randn(2, 3)` or `randn((2, 3))`)."""
    data = rng.random_normal(backend_of(device), parse_shape(shape, "randn"), dtype)
    return Tensor(data, requires_grad=requires_grad, device=device)


def randint(low: int, high: Any = None, size: Any = None, *, dtype: Any = np.int64,
            device: DeviceLike = "cpu") -> Tensor:
    """Uniform integers in [low, high): `randint(high, size)` or `randint(low, high, size)`."""
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint: give the size, e.g. randint(10, (3,)) or "
                        "randint(0, 10, size=(3,))")
    low, high = _int(low, "randint", "low"), _int(high, "randint", "high")
    if low >= high:
        raise ValueError(f"randint: low ({low}) must be less than high ({high})")
    data = rng.random_integers(backend_of(device), low, high, parse_shape((size,), "randint"))
    return Tensor(data.astype(dtype), device=device)


def randperm(n: int, *, dtype: Any = np.int64, device: DeviceLike = "cpu") -> Tensor:
    """A random permutation of 0..n-1."""
    n = _int(n, "randperm", "n")
    if n < 0:
        raise ValueError(f"randperm: n must not be negative, got {n}")
    return Tensor(rng.random_permutation(backend_of(device), n).astype(dtype), device=device)


def _int(value: Any, op: str, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int, got {value!r}") from None


def bernoulli(p: Any) -> Tensor:
    """1 with probability p, else 0, elementwise; same shape, dtype and device as p."""
    probs = as_array(p)
    xp = backend.get_array_module(probs)
    if probs.dtype.kind != "f":
        raise TypeError(f"bernoulli: p must be floating point, got dtype {probs.dtype}")
    if not bool(((probs >= 0) & (probs <= 1)).all()):
        raise ValueError("bernoulli: every probability must be in [0, 1] (and not NaN)")
    draws = rng.random_uniform(xp, probs.shape, np.float64)
    return Tensor.from_op((draws < probs).astype(probs.dtype))


def multinomial(probs: Any, num_samples: int, replacement: bool = False) -> Tensor:
    """Category indices (int64) drawn from each row of the weights `probs` (1-D: (K,) ->
    (num_samples,); 2-D: (N, K) -> (N, num_samples)), as torch.multinomial.

    Weights need not sum to 1 but must be finite and non-negative with a positive sum per
    row. Without replacement the samples of a row are distinct, in the order they would be
    drawn one after another (an exponential race: the smallest E/w wins, E ~ Exp(1)), and
    each row needs num_samples categories of nonzero weight (PyTorch would fill up with
    zero-weight categories instead).
    """
    weights = as_array(probs)
    rows = _check_weights(weights, num_samples, replacement)
    xp = backend.get_array_module(rows)
    if replacement:
        samples = _inverse_cdf_draws(xp, rows, num_samples)
    else:
        exponential = -xp.log1p(-rng.random_uniform(xp, rows.shape, np.float64))
        positive = rows > 0
        keys = xp.where(positive, exponential / xp.where(positive, rows, 1), xp.inf)
        samples = xp.argsort(keys, axis=1)[:, :num_samples]
    samples = samples.astype(np.int64)
    return Tensor.from_op(samples[0] if weights.ndim == 1 else samples)


def _check_weights(weights: Any, num_samples: int, replacement: bool) -> Any:
    """The weights as float64 rows (N, K), or a clear error about what is wrong with them."""
    if weights.dtype.kind != "f":
        raise TypeError(f"multinomial: probs must be floating point, got dtype {weights.dtype}")
    if weights.ndim not in (1, 2) or weights.shape[-1] == 0:
        raise ValueError(f"multinomial: probs must be 1-D or 2-D with at least one category, "
                         f"got shape {weights.shape}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) \
            or num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be a positive int, got {num_samples!r}")
    xp = backend.get_array_module(weights)
    rows = weights.reshape(-1, weights.shape[-1]).astype(np.float64)
    if not bool((xp.isfinite(rows) & (rows >= 0)).all()):
        raise ValueError("multinomial: probs contain inf, NaN or a negative weight")
    empty = xp.nonzero(rows.sum(axis=1) <= 0)[0]
    if empty.size:
        raise ValueError(f"multinomial: row {int(empty[0])} of probs sums to 0: nothing to draw")
    categories = rows.shape[1]
    if not replacement and num_samples > categories:
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement "
                         f"from {categories} categories")
    if not replacement:
        fewest = int((rows > 0).sum(axis=1).min())
        if num_samples > fewest:
            raise ValueError(f"multinomial: a row has only {fewest} categories of nonzero weight, "
                             f"fewer than the {num_samples} samples to draw without replacement")
    return rows


def _inverse_cdf_draws(xp: Any, rows: Any, num_samples: int) -> Any:
    """(N, num_samples) draws with replacement: one searchsorted over all rows at once.

    Row r's CDF (ending at exactly 1.0) is shifted to [r, r + 1], so the rows lie one after
    another in one sorted array. The uniforms are rounded to multiples of 2^-b, with b such
    that u + r is exact: a draw never lands past its row, and a zero-weight category (a
    step of zero in the CDF) is never drawn.
    """
    count, categories = rows.shape
    cdf = xp.cumsum(rows, axis=1)
    cdf = cdf / cdf[:, -1:]
    scale = 2.0 ** (52 - count.bit_length())
    u = xp.floor(rng.random_uniform(xp, (count, num_samples), np.float64) * scale) / scale
    offsets = xp.arange(count, dtype=np.float64)[:, None]
    flat = xp.searchsorted((cdf + offsets).ravel(), (u + offsets).ravel(), side="right")
    return flat.reshape(count, num_samples) - xp.arange(count)[:, None] * categories
