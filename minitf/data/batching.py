"""Token-id examples, padded batches, and token-budget batching with length bucketing.

Everything here is plain NumPy: ids are int64, masks are bool. Shapes use
B = batch size, S = padded source length, T = padded target length (target
tokens + 1 for the BOS/EOS shift).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
import dataclasses
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np


class Tokenizer(Protocol):
    """Anything that turns text into token ids (without BOS/EOS)."""

    def encode(self, text: str) -> list[int]: ...


class Example(NamedTuple):
    """One tokenised pair: ``src`` int64 (len_src,), ``tgt`` int64 (len_tgt,), no BOS/EOS."""

    src: np.ndarray
    tgt: np.ndarray


def _as_ids(ids: Sequence[int] | np.ndarray, what: str) -> np.ndarray:
    """Token ids as a 1-D int64 array; raise on other shapes or negative ids."""
    array = np.asarray(ids, dtype=np.int64)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence of ids, got shape {array.shape}")
    if array.size and array.min() < 0:
        raise ValueError(f"{what} contains a negative token id")
    return array


def encode_pairs(
    pairs: Iterable[tuple[str, str]], tokenizer: Tokenizer, max_len: int
) -> tuple[list[Example], int]:
    """Tokenise (source, target) pairs, dropping those that are too long or have no source.

    A pair is dropped when its source or target has more than ``max_len`` tokens
    (BOS/EOS not counted: batches add one to the target), or its source encodes to
    no tokens at all (nothing to attend to).

    Returns:
        (examples, n_dropped): the kept pairs in input order, and how many were dropped.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    examples: list[Example] = []
    n_dropped = 0
    for src_text, tgt_text in pairs:
        src = _as_ids(tokenizer.encode(src_text), "source")
        tgt = _as_ids(tokenizer.encode(tgt_text), "target")
        if pair_fits(len(src), len(tgt), max_len):
            examples.append(Example(src, tgt))
        else:
            n_dropped += 1
    return examples, n_dropped


def pair_fits(src_len: int, tgt_len: int, max_len: int) -> bool:
    """Whether a pair of these token counts is kept by :func:`encode_pairs`."""
    return 0 < src_len <= max_len and tgt_len <= max_len


@dataclass(frozen=True)
class Batch:
    """A padded batch for teacher-forced training.

    Attributes:
        src: int64 (B, S), source ids padded with pad_id.
        tgt_in: int64 (B, T), decoder input ``[bos] + y`` padded with pad_id.
        tgt_out: int64 (B, T), decoder target ``y + [eos]`` padded with pad_id.
        src_mask: bool (B, S), True at real source tokens.
        tgt_mask: bool (B, T), True at real tokens of tgt_in / tgt_out.
        indices: int64 (B,), positions of the examples in the batcher's list.
    """

    src: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    src_mask: np.ndarray
    tgt_mask: np.ndarray
    indices: np.ndarray

    @property
    def size(self) -> int:
        """Number of examples B."""
        return int(self.src.shape[0])

    @property
    def n_src_tokens(self) -> int:
        """Real (non-padding) source tokens."""
        return int(self.src_mask.sum())

    @property
    def n_tgt_tokens(self) -> int:
        """Real tokens of tgt_out (target tokens + one EOS per example)."""
        return int(self.tgt_mask.sum())

    @property
    def n_cells(self) -> int:
        """Padded cells B * (S + T), i.e. what the model computes on."""
        return int(self.src.size + self.tgt_out.size)

    @property
    def efficiency(self) -> float:
        """Fraction of padded cells that are real tokens (1.0 = no padding)."""
        return (self.n_src_tokens + self.n_tgt_tokens) / max(self.n_cells, 1)


def _pad(
    seqs: Sequence[np.ndarray], lengths: np.ndarray, width: int, offset: int, pad_id: int
) -> np.ndarray:
    """Place each sequence at columns offset.. of a (B, width) array filled with pad_id."""
    out = np.full((len(seqs), width), pad_id, dtype=np.int64)
    columns = np.arange(width)
    where = (columns >= offset) & (columns < offset + lengths[:, None])
    if len(seqs):
        out[where] = np.concatenate(seqs)  # row-major order matches concatenation
    return out


def make_batch(
    examples: Sequence[Example | tuple[Sequence[int], Sequence[int]]],
    pad_id: int,
    bos_id: int,
    eos_id: int,
    indices: Sequence[int] | np.ndarray | None = None,
) -> Batch:
    """Pad examples into a :class:`Batch` (S = longest source, T = longest target + 1).

    ``indices`` (default 0..B-1) is stored in ``Batch.indices`` so results can be
    mapped back to the examples.
    """
    if not examples:
        raise ValueError("cannot make a batch from no examples")
    srcs = [np.asarray(src, dtype=np.int64) for src, _ in examples]
    tgts = [np.asarray(tgt, dtype=np.int64) for _, tgt in examples]
    src_len = np.array([len(s) for s in srcs], dtype=np.int64)
    tgt_len = np.array([len(t) for t in tgts], dtype=np.int64)
    width_src, width_tgt = int(src_len.max()), int(tgt_len.max()) + 1
    rows = np.arange(len(examples))
    tgt_in = _pad(tgts, tgt_len, width_tgt, 1, pad_id)
    tgt_in[:, 0] = bos_id
    tgt_out = _pad(tgts, tgt_len, width_tgt, 0, pad_id)
    tgt_out[rows, tgt_len] = eos_id
    return Batch(
        src=_pad(srcs, src_len, width_src, 0, pad_id),
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        src_mask=np.arange(width_src) < src_len[:, None],
        tgt_mask=np.arange(width_tgt) < tgt_len[:, None] + 1,
        indices=rows.copy() if indices is None else np.asarray(indices, dtype=np.int64),
    )


def shard_batch(batch: Batch, rank: int, world_size: int) -> Batch | None:
    """Rank `rank`'s part of a batch that `world_size` processes share (data parallelism).

    Rows rank, rank + world_size, ... (so every rank gets a similar mix of lengths), with
    padding columns that no row of the shard needs trimmed away. None when the batch has
    fewer rows than `rank + 1`. The shards of all ranks partition the batch.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside 0..{world_size - 1}")
    rows = np.arange(rank, batch.size, world_size)
    if rows.size == 0:
        return None
    src_mask, tgt_mask = batch.src_mask[rows], batch.tgt_mask[rows]
    s, t = int(src_mask.sum(axis=1).max()), int(tgt_mask.sum(axis=1).max())
    return Batch(src=batch.src[rows, :s], tgt_in=batch.tgt_in[rows, :t], tgt_out=batch.tgt_out[rows, :t],
                 src_mask=src_mask[:, :s], tgt_mask=tgt_mask[:, :t], indices=batch.indices[rows])


def drop_words(batch: Batch, p: float, rng: np.random.Generator, low: int, high: int) -> Batch:
    """Word dropout by replacement: each real source token and each decoder-input token
    after BOS becomes, with probability ``p``, a token id drawn uniformly from [low, high)
    (``low`` = the first id that is not a special token, ``high`` = the vocabulary size).

    Padding, BOS and ``tgt_out`` (what the loss scores) are never changed, so the model
    learns to translate from a corrupted source and history into the clean target
    (SwitchOut, Wang et al. 2018). Returns a new Batch; ``batch`` is not modified.
    """
    if not 0 <= p < 1:
        raise ValueError(f"word dropout must be in [0, 1), got {p}")
    if not 0 <= low < high:
        raise ValueError(f"the replacement ids [low, high) = [{low}, {high}) are empty")
    if p == 0:
        return batch
    first_tgt = np.zeros_like(batch.tgt_mask)
    first_tgt[:, :1] = True  # BOS stays: every target starts from it
    src = _replace(batch.src, batch.src_mask, p, rng, low, high)
    tgt_in = _replace(batch.tgt_in, batch.tgt_mask & ~first_tgt, p, rng, low, high)
    return dataclasses.replace(batch, src=src, tgt_in=tgt_in)


def _replace(ids: np.ndarray, where: np.ndarray, p: float, rng: np.random.Generator, low: int,
             high: int) -> np.ndarray:
    """Copy of ``ids`` with each position of ``where`` replaced with probability p by an id in [low, high)."""
    hit = where & (rng.random(ids.shape) < p)
    out = ids.copy()
    out[hit] = rng.integers(low, high, size=int(hit.sum()))
    return out


def _greedy_cuts(costs: np.ndarray, max_tokens: int) -> list[int]:
    """Batch boundaries for examples sorted by ascending cost under B * max(cost) <= max_tokens."""
    cuts = [0]
    for i, cost in enumerate(costs.tolist()):
        count = i - cuts[-1] + 1
        if count > 1 and count * cost > max_tokens:
            cuts.append(i)
    cuts.append(len(costs))
    return cuts


class TokenBatcher:
    """Groups examples into batches by a token budget, with length bucketing.

    A batch of B examples with padded lengths S and T (T = longest target + 1 for
    BOS/EOS) satisfies ``B * max(S, T) <= max_tokens``. An example that alone
    exceeds the budget still forms a batch of one (it is never silently lost; filter
    with ``encode_pairs(max_len=...)`` to avoid such batches).

    Each epoch, with ``shuffle``: the examples are permuted, cut into buckets of
    ``bucket_size``, sorted by length within each bucket (so batches hold
    similar lengths and padding stays small), batched greedily, and the batch order
    is shuffled. Without ``shuffle`` the buckets are consecutive runs of examples,
    still sorted by length inside, and the batches keep bucket order: every epoch is
    the same (use ``Batch.indices`` to map outputs back). Every example appears
    exactly once per epoch, and an epoch depends only on ``(seed, epoch_index)``
    (both >= 0), not on which epochs were drawn before.
    """

    def __init__(
        self,
        examples: Sequence[Example | tuple[Sequence[int], Sequence[int]]],
        max_tokens: int,
        *,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        shuffle: bool = True,
        seed: int = 0,
        bucket_size: int = 4096,
    ) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if bucket_size < 1:
            raise ValueError(f"bucket_size must be >= 1, got {bucket_size}")
        self.examples = [Example(_as_ids(s, "source"), _as_ids(t, "target")) for s, t in examples]
        self.max_tokens = max_tokens
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.shuffle, self.seed, self.bucket_size = shuffle, seed, bucket_size
        src_len = np.array([len(e.src) for e in self.examples], dtype=np.int64)
        tgt_len = np.array([len(e.tgt) for e in self.examples], dtype=np.int64)
        self.costs = np.maximum(src_len, tgt_len + 1)
        """int64 (N,): padded length each example needs, max(len_src, len_tgt + 1)."""

    def plan(self, epoch_index: int = 0) -> list[np.ndarray]:
        """The batches of an epoch as int64 arrays of example indices, in batch order."""
        rng = np.random.default_rng([self.seed, epoch_index])
        n = len(self.examples)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        batches: list[np.ndarray] = []
        for start in range(0, n, self.bucket_size):
            bucket = order[start : start + self.bucket_size]
            bucket = bucket[np.argsort(self.costs[bucket], kind="stable")]
            cuts = _greedy_cuts(self.costs[bucket], self.max_tokens)
            batches.extend(bucket[a:b] for a, b in zip(cuts[:-1], cuts[1:]))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def num_batches(self, epoch_index: int = 0) -> int:
        """Number of batches in an epoch (it can vary slightly between epochs)."""
        return len(self.plan(epoch_index))

    def batch(self, indices: np.ndarray) -> Batch:
        """The padded batch of the examples at `indices` (one entry of :meth:`plan`)."""
        chosen = [self.examples[i] for i in indices]
        return make_batch(chosen, self.pad_id, self.bos_id, self.eos_id, indices)

    def epoch(self, epoch_index: int = 0) -> Iterator[Batch]:
        """Yield the padded batches of one epoch, built lazily."""
        for indices in self.plan(epoch_index):
            yield self.batch(indices)


def token_batches(
    examples: Sequence[Example | tuple[Sequence[int], Sequence[int]]],
    *,
    max_tokens: int,
    pad_id: int,
    bos_id: int,
    eos_id: int,
    shuffle: bool = True,
    seed: int = 0,
    epoch_index: int = 0,
    bucket_size: int = 4096,
) -> list[Batch]:
    """All batches of one epoch as a list; see :class:`TokenBatcher` for the rules."""
    batcher = TokenBatcher(
        examples,
        max_tokens,
        pad_id=pad_id,
        bos_id=bos_id,
        eos_id=eos_id,
        shuffle=shuffle,
        seed=seed,
        bucket_size=bucket_size,
    )
    return list(batcher.epoch(epoch_index))


def padding_efficiency(batches: Iterable[Batch]) -> float:
    """Real tokens / padded cells over many batches (1.0 = no padding at all)."""
    real = cells = 0
    for batch in batches:
        real += batch.n_src_tokens + batch.n_tgt_tokens
        cells += batch.n_cells
    return real / max(cells, 1)
