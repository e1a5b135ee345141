"""Generating text with a decoder-only model and a key/value cache: greedy search or sampling.

The prompt runs through the model once, filling the cache; then each step runs only the new token.
Greedy search takes the most likely token (ties: the lowest id), as ``transformers``'
``generate(do_sample=False)``. Sampling reshapes the distribution in HF's order, temperature, then
top-k, then top-p (``minitf.nn.sampling``), and draws from a NumPy Generator. A padded batch must be
left-padded (``attention_mask`` 0 before the text), as HF requires for decoder-only models; positions
then count real tokens only, as HF ``generate``'s do. A row that has produced ``eos_token_id`` is
finished: it is padded with ``pad_token_id`` (default ``eos_token_id``) until every row is, or
``max_new_tokens`` are made.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import backend, cpu
from ..autograd import no_grad
from ..nn.sampling import draw, sampling_probs

__all__ = ["generate", "positions_from_mask"]


def generate(model: Any, ids: Any, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, do_sample: bool = False, eos_token_id: int | None = None,
             pad_token_id: int | None = None, attention_mask: Any = None, seed: int | None = None,
             generator: np.random.Generator | None = None) -> np.ndarray:
    """ids (B, T) followed by up to ``max_new_tokens`` generated tokens: an int64 array (B, T + n).

    ``model(ids, attention_mask=, position_ids=, cache=)`` must give logits (B, T, V) and
    ``model.new_cache()`` a cache (GPT2LMHeadModel does). Sampling (``do_sample=True``) draws from
    ``generator`` or, without one, ``numpy.random.default_rng(seed)``; without sampling,
    ``temperature``, ``top_k`` and ``top_p`` are checked but change nothing, as in HF.
    """
    ids = np.asarray(ids)
    _check_options(ids, max_new_tokens, temperature, top_k, top_p, eos_token_id, pad_token_id)
    mask = np.ones(ids.shape, dtype=np.int64) if attention_mask is None else np.asarray(attention_mask)
    if mask.shape != ids.shape:
        raise ValueError(f"generate: attention_mask has shape {mask.shape}, ids {ids.shape}")
    if not (mask[:, -1] == 1).all():
        raise ValueError("generate: the batch must be left-padded (every row's last attention_mask entry 1)")
    limit = getattr(getattr(model, "config", None), "n_positions", None)
    if limit is not None and ids.shape[1] + max_new_tokens > limit:
        raise ValueError(f"generate: {ids.shape[1]} prompt tokens + {max_new_tokens} new ones exceed the "
                         f"model's n_positions {limit}")
    if do_sample and generator is None:
        generator = np.random.default_rng(seed)
    pad = eos_token_id if pad_token_id is None else pad_token_id
    out, done = ids.astype(np.int64), np.zeros(ids.shape[0], dtype=bool)
    cache, positions, step_ids = model.new_cache(), positions_from_mask(mask), out
    with no_grad(), cpu.inference():
        for step in range(max_new_tokens):
            logits = model(step_ids, attention_mask=mask, position_ids=positions, cache=cache)
            last = np.asarray(backend.to_device(logits.data[:, -1], "cpu"), dtype=np.float64)
            if do_sample:
                token = draw(sampling_probs(last, temperature, top_k, 1.0 if top_p is None else top_p),
                             generator.random(len(last)))
            else:
                token = last.argmax(axis=-1)
            if eos_token_id is not None:
                token = np.where(done, pad, token)
                done |= token == eos_token_id
            out = np.concatenate([out, token[:, None].astype(np.int64)], axis=1)
            if done.all() or step == max_new_tokens - 1:
                break
            step_ids, mask = out[:, -1:], np.concatenate([mask, np.ones((len(mask), 1), mask.dtype)], axis=1)
            positions = positions[:, -1:] + 1
    return out


def _check_options(ids: np.ndarray, max_new_tokens: Any, temperature: Any, top_k: Any, top_p: Any,
                   eos_token_id: Any, pad_token_id: Any) -> None:
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or ids.shape[1] == 0:
        raise ValueError(f"generate: ids must be integers of shape (batch, length >= 1), got shape {ids.shape} "
                         f"dtype {ids.dtype}")
    if not _is_int(max_new_tokens) or max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"generate: temperature must be a finite number > 0, got {temperature!r}")
    if top_k is not None and (not _is_int(top_k) or top_k < 1):
        raise ValueError(f"generate: top_k must be an integer >= 1 or None, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                              or not 0 < top_p <= 1):
        raise ValueError(f"generate: top_p must be a number in (0, 1] or None, got {top_p!r}")
    for name, value in (("eos_token_id", eos_token_id), ("pad_token_id", pad_token_id)):
        if value is not None and (not _is_int(value) or value < 0):
            raise ValueError(f"generate: {name} must be a non-negative integer or None, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positions_from_mask(attention_mask: Any) -> np.ndarray:
    """HF ``generate``'s positions for a padded batch: each real token's count of real tokens
    before it (0 at padding). attention_mask: (B, L) of 0/1 -> (B, L) int64."""
    mask = np.asarray(attention_mask)
    return np.where(mask != 0, np.cumsum(mask != 0, axis=-1) - 1, 0).astype(np.int64)
