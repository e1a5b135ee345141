"""From a language model's next-token logits to the distribution a token is drawn from: temperature,
top-k and top-p ("nucleus") filtering, in NumPy (the translation decoder and the pretrained models'
`generate` share them)."""
from __future__ import annotations

import numpy as np

__all__ = ["top_k_filter", "top_p_filter", "sampling_probs", "draw"]


def top_k_filter(scores: np.ndarray, k: int | None) -> np.ndarray:
    """(R, V) scores with all but the k highest of each row set to -inf (ties: the lower id kept)."""
    if k is None or k >= scores.shape[-1]:
        return scores
    order = np.argsort(-scores, axis=-1, kind="stable")
    out = np.full_like(scores, -np.inf)
    kept = order[:, :k]
    rows = np.arange(scores.shape[0])[:, None]
    out[rows, kept] = scores[rows, kept]
    return out


def top_p_filter(probs: np.ndarray, p: float) -> np.ndarray:
    """(R, V) probabilities with each row cut to its smallest set of most likely tokens whose mass is
    >= p (ties: the lower id first), renormalized. p = 1 returns `probs` as they are."""
    if p >= 1.0:
        return probs
    order = np.argsort(-probs, axis=-1, kind="stable")
    rows = np.arange(probs.shape[0])[:, None]
    sorted_probs = probs[rows, order]
    before = np.cumsum(sorted_probs, axis=-1) - sorted_probs  # mass of the more likely tokens
    keep = np.zeros(probs.shape, dtype=bool)
    keep[rows, order] = before < p * sorted_probs.sum(axis=-1, keepdims=True)
    out = np.where(keep, probs, 0.0)
    return out / out.sum(axis=-1, keepdims=True)


def sampling_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float = 1.0) -> np.ndarray:
    """The distribution tokens are drawn from: softmax(logits / temperature), cut by top-k and top-p.

    Computed in float64 from logits - max, so that a tiny temperature gives 0 and 1, not inf / inf."""
    scores = top_k_filter(np.asarray(logits, dtype=np.float64), top_k)
    scores = (scores - scores.max(axis=-1, keepdims=True)) / temperature
    probs = np.exp(scores)
    return top_p_filter(probs / probs.sum(axis=-1, keepdims=True), top_p)


def draw(probs: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One token id per row of (R, V) probabilities, by the inverse CDF of uniforms (R,) in [0, 1)."""
    cdf = np.cumsum(probs, axis=-1)
    # u in (0, 1]: the first token whose cumulative mass reaches u * total has a positive probability
    u = (1.0 - np.asarray(uniforms)) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=-1), probs.shape[-1] - 1)
