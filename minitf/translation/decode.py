"""Decoding a trained Seq2SeqTransformer: batched greedy search and beam search with the key/value cache.

Both searches run the decoder one position per step, `model.decode(last_tokens, memory,
src_mask, caches, start=t)`, so that step t costs O(t) attention instead of re-running the
whole prefix. They run under `no_grad()` and `cpu.inference()` (products on BLAS's own threads) with
the model in eval mode (its training mode is restored afterwards) and work on NumPy or CuPy models alike: arrays come from the model's
outputs and `xp` from `backend.get_array_module`. Their length limit and banned ids, and the
helpers they share with forced decoding, are in search_steps.py; greedy search's sampling variant
(`sample=True`) draws its tokens with sampling.py.

Rows that have finished are dropped from the running batch (their cache rows with them), so a
batch costs only as much as its still-unfinished rows.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from .. import backend
from .decoding_options import SAMPLING, check_decoding_options
from .nbest import Finished, greedy_hypotheses
from .sampling import Sampling
from .search_steps import (_banned, _host, _inference, _log_softmax, _mask_banned, _on_model_device, _raw,  # noqa: F401
                           _mask_repeats, _reorder_caches, _take, length_limits, length_penalty_factor)

__all__ = ["greedy_decode", "beam_search", "translate_ids", "length_limits", "length_penalty_factor"]


# ---- greedy -------------------------------------------------------------------------------

def _encode_rows(model: Any, src: Any, src_mask: Any, rows: np.ndarray) -> tuple[Any, Any]:
    """Encode the batch rows `rows` only (rows with a length limit of 0 are skipped).

    Returns (memory (R, S, d_model), src_mask (R, S)) for those rows.
    """
    if rows.size < src.shape[0]:
        keep = backend.get_array_module(src).asarray(rows)
        src, src_mask = src[keep], src_mask[keep]
    return model.encode(src, src_mask), src_mask


def greedy_decode(model: Any, src: Any, src_mask: Any, *, bos_id: int, eos_id: int,
                  max_len_a: float = 1.5, max_len_b: float = 10, max_len: int | None = None,
                  banned_ids: Iterable[int] = (), no_repeat_ngram_size: int = 0, with_log_probs: bool = False,
                  sampling: Sampling | None = None, sentences: Sequence[int] | None = None) -> Any:
    """Batched greedy decoding with the key/value cache (with_log_probs: also each output's log-prob).

    src: (B, S) int ids; src_mask: (B, S) bool, True at real tokens (both moved to the model's
    device if it is a GPU and they are not there yet). Each step takes the arg-max token
    (lowest id on ties) among all but BOS, `banned_ids` and, with `no_repeat_ngram_size` N > 0, the
    tokens that would repeat one of the row's N-grams (search_steps._mask_repeats); with `sampling`, the
    token is drawn instead (sampling.py; row b by the Generator of sentence number `sentences[b]`,
    default b). Returns B token lists without
    BOS/EOS (and with_log_probs, a float64 array of their log-probs, EOS's included). Options out of
    range (decoding_options) raise ConfigError naming them.
    """
    check_decoding_options(max_len_a=max_len_a, max_len_b=max_len_b, max_len=max_len,
                           no_repeat_ngram_size=no_repeat_ngram_size,
                           **({key: getattr(sampling, key) for key in SAMPLING} | {"sample": True} if sampling else {}))
    banned = _banned(bos_id, eos_id, banned_ids)
    src, src_mask = _on_model_device(_raw(src), model), _on_model_device(_raw(src_mask), model)
    batch = src.shape[0]
    limits = length_limits(model, src_mask, max_len_a, max_len_b, max_len)
    outputs: list[list[int]] = [[] for _ in range(batch)]
    totals = np.zeros(batch)
    active = np.flatnonzero(limits > 0)  # original row of each row in the running batch
    if active.size == 0:
        return (outputs, totals) if with_log_probs else outputs
    xp = backend.get_array_module(src)
    generators = sampling.generators(range(batch) if sentences is None else sentences) if sampling else None
    with _inference(model):
        memory, src_mask = _encode_rows(model, src, src_mask, active)
        caches = model.new_caches()
        tokens = xp.full((active.size, 1), bos_id, dtype=xp.int64)
        t = 0
        while active.size:
            logits = _raw(model.decode(tokens, memory, src_mask, caches, start=t))[:, -1]
            step = _host(_log_softmax(logits)) if with_log_probs else None  # before the masking (in place)
            if no_repeat_ngram_size:
                history = np.array([outputs[row] for row in active.tolist()], dtype=np.int64).reshape(active.size, t)
                _mask_repeats(logits, history, no_repeat_ngram_size, eos_id)
            if sampling is None:
                next_ids = _mask_banned(logits, banned).argmax(axis=-1)
                host_ids = _host(next_ids)
            else:
                host_ids = sampling.draw(_host(_mask_banned(logits, banned)), [generators[r] for r in active.tolist()])
                next_ids = xp.asarray(host_ids)
            if with_log_probs:
                totals[active] += step[np.arange(active.size), host_ids]
            is_eos = host_ids == eos_id
            for row, token, eos in zip(active.tolist(), host_ids.tolist(), is_eos.tolist()):
                if not eos:
                    outputs[row].append(int(token))
            t += 1
            done = is_eos | (t >= limits[active])
            if done.all():
                break
            tokens = next_ids[:, None].astype(xp.int64)
            if done.any():
                keep_host = np.flatnonzero(~done)
                keep = xp.asarray(keep_host)
                active = active[keep_host]
                tokens, memory, src_mask = tokens[keep], _take(memory, keep), src_mask[keep]
                _reorder_caches(caches, keep)
    return (outputs, totals) if with_log_probs else outputs


# ---- beam search --------------------------------------------------------------------------

def beam_search(model: Any, src: Any, src_mask: Any, *, bos_id: int, eos_id: int,
                beam_size: int = 5, length_penalty: float = 0.6, max_len_a: float = 1.5,
                max_len_b: float = 10, max_len: int | None = None,
                banned_ids: Iterable[int] = (), nbest: int | None = None, no_repeat_ngram_size: int = 0) -> list:
    """Batched beam search with the key/value cache; returns the best hypothesis per row (with
    `nbest` K <= beam_size: the K best per row, as nbest.Hypothesis lists, best first).

    Each row keeps K = beam_size live hypotheses (at t = 0 only the first, the others start
    at score -inf). A step scores every live hypothesis's extensions by cumulative log-prob
    (sum of log_softmax of the decoder's logits; -inf for BOS, `banned_ids` and tokens that would
    repeat an n-gram of the hypothesis, with `no_repeat_ngram_size` n > 0) and takes the
    2K best candidates of the row, best first. An EOS candidate among the first K of them is
    *finished*; the first K non-EOS candidates become the new live hypotheses (there are
    always K: each hypothesis has only one EOS extension). Every cache follows its
    hypothesis's parent via `KVCache.reorder`.

    Finished hypotheses are ranked by

        score = (sum of log-probs of its tokens, EOS included) / ((5 + n) / 6) ** length_penalty

    where n is the number of generated tokens *counting the EOS* (the GNMT length penalty of
    Wu et al. 2016; length_penalty = 0 ranks by raw log-prob). A row is done when no live
    hypothesis can still beat its best finished one (`_best_reachable`: log-probs are <= 0,
    so only the length penalty can raise a live score), or when its live hypotheses reach the
    row's length limit: these are then finished as they are (no EOS, n = their token count).
    Ties keep the earlier one. With `nbest` K, a row is done when no live hypothesis can beat
    its K-th finished one. beam_size = 1 is greedy_decode (a lone hypothesis has no
    alternative to keep alive once EOS is its best choice).
    """
    check_decoding_options(beam_size=beam_size, length_penalty=length_penalty, max_len_a=max_len_a,
                           max_len_b=max_len_b, max_len=max_len, nbest=nbest, no_repeat_ngram_size=no_repeat_ngram_size)
    if beam_size == 1:
        found = greedy_decode(model, src, src_mask, bos_id=bos_id, eos_id=eos_id, max_len_a=max_len_a, max_len_b=max_len_b,
                              max_len=max_len, banned_ids=banned_ids, no_repeat_ngram_size=no_repeat_ngram_size,
                              with_log_probs=nbest is not None)
        if nbest is None:
            return found
        limits = length_limits(model, _raw(src_mask), max_len_a, max_len_b, max_len)
        return greedy_hypotheses(*found, limits, lambda n: length_penalty_factor(n, length_penalty))
    banned = _banned(bos_id, eos_id, banned_ids)
    src, src_mask = _on_model_device(_raw(src), model), _on_model_device(_raw(src_mask), model)
    batch, k = src.shape[0], int(beam_size)
    limits = length_limits(model, src_mask, max_len_a, max_len_b, max_len)
    finished = Finished(batch, nbest or 1)  # the best finished hypotheses of each row
    active = np.flatnonzero(limits > 0)
    if active.size == 0:
        return finished.best_tokens() if nbest is None else finished.hypotheses()

    xp = backend.get_array_module(src)
    with _inference(model):
        memory, src_mask = _encode_rows(model, src, src_mask, active)
        repeat = xp.repeat(xp.arange(active.size), k)  # (n K,): beams of a row lie together
        memory, src_mask = _take(memory, repeat), src_mask[repeat]
        caches = model.new_caches()
        n = active.size
        tokens = xp.full((n * k, 1), bos_id, dtype=xp.int64)
        scores_host = np.full((n, k), -np.inf)
        scores_host[:, 0] = 0.0
        scores = xp.asarray(scores_host)  # (n, K) cumulative log-probs, float64
        history = np.zeros((n * k, 0), dtype=np.int64)  # tokens so far per live hypothesis
        first_k = np.arange(2 * k) < k
        t = 0
        while active.size:
            n = active.size
            logits = _raw(model.decode(tokens, memory, src_mask, caches, start=t))[:, -1]
            vocab = logits.shape[-1]
            log_probs = _mask_repeats(_mask_banned(_log_softmax(logits), banned), history, no_repeat_ngram_size, eos_id)
            log_probs = log_probs.reshape(n, k, vocab)
            candidates = (scores[:, :, None] + log_probs).reshape(n, k * vocab)
            top = _top_candidates(xp, candidates, min(2 * k, k * vocab))
            top_scores = xp.take_along_axis(candidates, top, axis=1)
            top_host, top_scores_host = _host(top), _host(top_scores).astype(np.float64)
            beam, token = top_host // vocab, top_host % vocab
            t += 1

            # EOS among the first K candidates: finished.
            is_eos = token == eos_id
            width = token.shape[1]
            eos_rows, eos_cols = np.nonzero(is_eos & first_k[:width] & np.isfinite(top_scores_host))
            for i, c in zip(eos_rows.tolist(), eos_cols.tolist()):
                parent = i * k + int(beam[i, c])
                finished.add(active[i], top_scores_host[i, c] / length_penalty_factor(t, length_penalty),
                             top_scores_host[i, c], history[parent])

            # The first K non-EOS candidates: the new live hypotheses.
            non_eos = ~is_eos
            chosen = non_eos & (np.cumsum(non_eos, axis=1) <= k)
            rows_sel, cols_sel = np.nonzero(chosen)  # row-major: K per row, best first
            if rows_sel.size != n * k:  # only with a one-token vocabulary
                raise ValueError("beam search needs a vocabulary of at least 2 tokens")
            cols_sel = cols_sel.reshape(n, k)
            rows_idx = np.arange(n)[:, None]
            parent = (rows_idx * k + beam[rows_idx, cols_sel]).reshape(-1)
            new_tokens = token[rows_idx, cols_sel].reshape(-1)
            new_scores = top_scores_host[rows_idx, cols_sel]
            history = np.concatenate([history[parent], new_tokens[:, None]], axis=1)

            # Rows at their length limit finish their live hypotheses as they are.
            at_limit = t >= limits[active]
            factor = length_penalty_factor(t, length_penalty)
            for i in np.flatnonzero(at_limit).tolist():
                for j in range(k):
                    if np.isfinite(new_scores[i, j]):
                        finished.add(active[i], new_scores[i, j] / factor, new_scores[i, j], history[i * k + j])
            reachable = _best_reachable(new_scores, t, limits[active], length_penalty)
            done = at_limit | (reachable <= finished.threshold(active))

            keep_host = np.flatnonzero(~done)
            if keep_host.size == 0:
                break
            beams_kept = (keep_host[:, None] * k + np.arange(k)).reshape(-1)
            index = xp.asarray(parent[beams_kept])
            _reorder_caches(caches, index)
            if keep_host.size < n:
                same_row = xp.asarray(beams_kept)  # memory is identical across a row's beams
                memory, src_mask = _take(memory, same_row), src_mask[same_row]
            history = history[beams_kept]
            active = active[keep_host]
            tokens = xp.asarray(new_tokens[beams_kept][:, None], dtype=xp.int64)
            scores = xp.asarray(new_scores[keep_host])
    return finished.best_tokens() if nbest is None else finished.hypotheses()


def _best_reachable(scores: np.ndarray, t: int, limits: np.ndarray, alpha: float) -> np.ndarray:
    """Per row, an upper bound of the normalized score its live hypotheses can still finish with.

    scores: (n, K) cumulative log-probs after t tokens; limits: (n,). A continuation adds
    log-probs <= 0 and finishes with m in [t + 1, limit] tokens (EOS counted), so its score is
    at most s / lp(m); lp is monotone in m, hence so is s / lp(m) and its maximum lies at an
    end of the range, for either sign of alpha (and of s).
    """
    best = scores.max(axis=1)
    first = best / length_penalty_factor(t + 1, alpha)
    last = best / length_penalty_factor(limits.astype(np.float64), alpha)
    return np.maximum(first, last)


def _top_candidates(xp: Any, candidates: Any, count: int) -> Any:
    """Column indices of the `count` largest entries per row, best first (lower index on ties)."""
    width = candidates.shape[1]
    if count < width:
        part = xp.argpartition(-candidates, count - 1, axis=1)[:, :count]
    else:
        part = xp.broadcast_to(xp.arange(width), candidates.shape).copy()
    values = xp.take_along_axis(candidates, part, axis=1)
    # sort by (-value, index): first by index, then stably by value
    by_index = xp.argsort(part, axis=1)
    part = xp.take_along_axis(part, by_index, axis=1)
    values = xp.take_along_axis(values, by_index, axis=1)
    order = _stable_argsort(xp, -values)
    return xp.take_along_axis(part, order, axis=1)


def _stable_argsort(xp: Any, values: Any) -> Any:
    if xp is np:
        return np.argsort(values, axis=1, kind="stable")
    return xp.argsort(values, axis=1)  # CuPy's sort is a stable radix sort


# ---- many sentences -----------------------------------------------------------------------

def translate_ids(model: Any, src_ids_list: Sequence[Sequence[int]], *, bos_id: int, eos_id: int,
                  pad_id: int, beam_size: int = 1, batch_size: int = 64,
                  banned_ids: Iterable[int] = (), **kw: Any) -> list[list[int]]:
    """Decode many source id lists; returns the outputs (or with `nbest`, their n-best lists) in order.

    Sources are sorted by length and padded into batches of at most `batch_size` (so that
    little padding is wasted), decoded greedily (beam_size = 1) or by beam search, and put
    back in order. BOS, `pad_id` and `banned_ids` are never generated. Extra keywords
    (max_len_a, max_len_b, max_len, no_repeat_ngram_size, and length_penalty for beam search) go to the search;
    sample=True (greedy only) draws the tokens (sampling.Sampling: temperature, top_k, top_p, seed);
    all are checked first (decoding_options), length_penalty with beam_size = 1 too.
    """
    check_decoding_options(beam_size=beam_size, batch_size=batch_size, **kw)
    nbest = kw.pop("nbest", None)
    sampling = {key: value for key in SAMPLING if (value := kw.pop(key, None)) is not None}
    if kw.pop("sample", False):
        kw["sampling"] = Sampling(**sampling)
    kw["banned_ids"] = [pad_id, *banned_ids] if pad_id != eos_id else list(banned_ids)
    sources = [np.asarray(list(ids), dtype=np.int64) for ids in src_ids_list]
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    outputs: list = [[] for _ in sources]
    if beam_size == 1 and nbest is None:
        kw = {key: value for key, value in kw.items() if key != "length_penalty"}
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        lengths = np.array([len(sources[i]) for i in chunk], dtype=np.int64)
        width = max(1, int(lengths.max()))
        src = np.full((len(chunk), width), pad_id, dtype=np.int64)
        for row, i in enumerate(chunk):
            src[row, :lengths[row]] = sources[i]
        src_mask = np.arange(width) < lengths[:, None]
        src, src_mask = _on_model_device(src, model), _on_model_device(src_mask, model)
        if beam_size == 1 and nbest is None:
            results = greedy_decode(model, src, src_mask, bos_id=bos_id, eos_id=eos_id, sentences=chunk, **kw)
        else:
            results = beam_search(model, src, src_mask, bos_id=bos_id, eos_id=eos_id,
                                  beam_size=beam_size, nbest=nbest, **kw)
        for i, result in zip(chunk, results):
            outputs[i] = result
    return outputs
