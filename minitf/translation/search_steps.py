"""The building blocks of decode.py's searches: the model's device and inference mode, log-softmax,
banned ids, cache reordering, the length limit and the length penalty.

Length limit. Row b may produce at most

    limit_b = floor(max_len_a * (real source length of row b) + max_len_b)

output tokens (not counting BOS or EOS), capped at `model.config.max_len - 1` (so that BOS
plus the output fits the model's positional table) and at `max_len` when given. A row that
reaches its limit ends there as if it had produced EOS. Returned token lists never contain
BOS or EOS.

Banned ids. BOS, and the ids in `banned_ids` (padding and other special tokens; translate_ids
always adds `pad_id`), are never generated: their scores are set to -inf before the arg-max
and before beam search ranks its candidates (the other tokens keep their log-probs).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator

import numpy as np

from .. import backend, cpu
from ..autograd import Tensor, no_grad
from ..functional.softmax import logsumexp_array

__all__ = ["length_limits", "length_penalty_factor"]


def _raw(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def _host(x: Any) -> np.ndarray:
    return backend.to_device(x, "cpu")


def _take(x: Any, index: Any) -> Any:
    """Rows `index` of a Tensor (kept a Tensor) or of a raw array."""
    if isinstance(x, Tensor):
        return Tensor(x.data[index])
    return x[index]


def _on_model_device(array: Any, model: Any) -> Any:
    """Move a batch array to the model's device if the model sits on a GPU."""
    device = getattr(model, "device", None)
    if device is not None and getattr(device, "kind", "cpu") != "cpu":
        return backend.to_device(array, device)
    return array


@contextlib.contextmanager
def _inference(model: Any) -> Iterator[None]:
    """Eval mode, no graph and unsplit products inside; the model's previous training mode is restored after."""
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        with no_grad(), cpu.inference():
            yield
    finally:
        model.train(was_training)


def _reorder_caches(caches: Any, index: Any) -> None:
    """Follow `index` (rows of the new batch -> rows of the old one) in every layer's caches."""
    for layer in caches:
        for cache in (layer.values() if isinstance(layer, dict) else layer):
            cache.reorder(index)


def _log_softmax(logits: Any) -> Any:
    """Stable log-softmax over the last axis of a raw array, returned in float64.

    The normalizer is computed in the logits' own precision; the subtraction is done in
    float64, where it keeps distinct float32 logits distinct (their order and ties exact).
    """
    xp = backend.get_array_module(logits)
    return logits.astype(xp.float64) - logsumexp_array(logits, axis=-1).astype(xp.float64)


def _banned(bos_id: int, eos_id: int, banned_ids: Iterable[int]) -> list[int]:
    """Sorted ids never to generate: BOS and `banned_ids`, EOS excepted (it ends a sentence)."""
    banned = {int(i) for i in banned_ids}
    if eos_id in banned:
        raise ValueError(f"banned_ids contain the EOS id {eos_id}: no output could ever end")
    return sorted((banned | {int(bos_id)}) - {int(eos_id)})


def _mask_banned(scores: Any, banned: list[int]) -> Any:
    """Set columns `banned` of (rows, V) scores to -inf, in place; returns `scores`."""
    if banned:
        vocab = scores.shape[-1]
        if banned[0] < 0 or banned[-1] >= vocab:
            bad = banned[0] if banned[0] < 0 else banned[-1]
            raise ValueError(f"banned token id {bad} is outside the model's vocabulary [0, {vocab})")
        scores[:, banned] = -backend.get_array_module(scores).inf
    return scores


def length_limits(model: Any, src_mask: Any, max_len_a: float = 1.5, max_len_b: float = 10,
                  max_len: int | None = None) -> np.ndarray:
    """Per-row maximum number of output tokens (without BOS/EOS), as int64 on the host.

    floor(max_len_a * source_length + max_len_b), capped at config.max_len - 1 and at
    `max_len` if given; never negative. Computed in floats and capped before the cast to integers.
    """
    lengths = _host(_raw(src_mask)).astype(bool).sum(axis=1).astype(np.float64)
    cap = int(model.config.max_len) - 1
    if max_len is not None:
        cap = min(cap, int(max_len))
    with np.errstate(over="ignore"):  # a huge (finite) a or b gives inf: capped below
        limits = np.floor(max_len_a * lengths + max_len_b + 1e-9)
    return np.clip(limits, 0, max(cap, 0)).astype(np.int64)


def length_penalty_factor(length: "int | np.ndarray", alpha: float) -> "float | np.ndarray":
    """GNMT length penalty (Wu et al. 2016): ((5 + length) / 6) ** alpha."""
    return ((5.0 + length) / 6.0) ** alpha


def _mask_repeats(scores: Any, history: np.ndarray, size: int, eos_id: int) -> Any:
    """Set to -inf, in place, each token that would complete an n-gram of `size` tokens already in
    its row's `history` (fairseq's --no-repeat-ngram-size; EOS is never blocked, so a row can end).

    scores: (R, V) on the model's device; history: (R, t) int64 on the host, the tokens generated
    so far (BOS excluded: it is never generated again). size 0 blocks nothing. Returns `scores`.
    """
    t = history.shape[1]
    if size == 0 or t < size:  # no n-gram yet (size 1 with t >= 1: every token seen is blocked)
        return scores
    windows = np.lib.stride_tricks.sliding_window_view(history, size, axis=1)  # (R, t - size + 1, size)
    tail = history[:, t - size + 1:]  # the last size - 1 tokens: the prefix the next token would complete
    rows, starts = np.nonzero((windows[:, :, :size - 1] == tail[:, None, :]).all(axis=2))
    tokens = windows[rows, starts, size - 1]
    rows, tokens = rows[tokens != eos_id], tokens[tokens != eos_id]
    if rows.size:
        xp = backend.get_array_module(scores)
        scores[xp.asarray(rows), xp.asarray(tokens)] = -xp.inf
    return scores
