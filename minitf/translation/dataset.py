"""The data of a translation run: its splits, its tokenizer and its batches."""
from __future__ import annotations

import functools
import random
from typing import Any, Callable

import numpy as np

from .. import backend
from ..data import (Batch, TokenBatcher, encode_pairs, number_translation_task, pair_fits, read_parallel,
                    read_tsv)
from ..errors import InputError
from ..tokenizer import BPETokenizer
from .config import TrainConfig
from .limits import check_accumulate
from .tokens import SPECIAL_TOKENS, special_ids


def load_splits(config: TrainConfig) -> dict[str, list[tuple[str, str]]]:
    """The synthetic task's splits, or the configured parallel files as "train" and "val"."""
    if config.synthetic:
        n_train, n_val, n_test = config.synthetic_sizes
        return number_translation_task(n_train, n_val, n_test, seed=config.seed)
    if config.train_tsv is not None:
        return {"train": list(read_tsv(config.train_tsv)), "val": list(read_tsv(config.val_tsv))}
    return {"train": list(read_parallel(config.src_train, config.tgt_train)),
            "val": list(read_parallel(config.src_val, config.tgt_val))}


def check_splits(config: TrainConfig, splits: dict[str, list[tuple[str, str]]]) -> None:
    """Raise InputError if the training or validation split holds no sentence pairs."""
    if not splits["train"]:
        raise InputError("the training data holds no sentence pairs")
    if not splits["val"]:  # (the synthetic task's has at least one)
        files = config.val_tsv or f"{config.src_val}, {config.tgt_val}"
        raise InputError(f"the validation data ({files}) holds no sentence pairs")


def train_tokenizer(config: TrainConfig, pairs: list[tuple[str, str]],
                    log: Callable[[str], None] = print) -> BPETokenizer:
    """A joint byte-level BPE vocabulary over both sides of the training pairs."""
    texts = [s for s, _ in pairs] + [t for _, t in pairs]
    tokenizer = BPETokenizer.train(texts, config.vocab_size, special_tokens=SPECIAL_TOKENS)
    log(f"tokenizer: {tokenizer.vocab_size} tokens trained on {len(texts):,} sentences")
    return tokenizer


def make_batcher(config: TrainConfig, pairs: list[tuple[str, str]], tokenizer: BPETokenizer, processes: int,
                 log: Callable[[str], None] = print) -> TokenBatcher:
    """The training pairs that fit max_len, batched: a step's batch is the union of every process's
    micro-batches (each of the `processes` runs `accumulate` micro-batches of about max_tokens)."""
    examples, dropped = encode_pairs(pairs, tokenizer, config.max_len)
    if not examples:
        raise InputError(f"no training pair fits max_len {config.max_len} tokens")
    check_accumulate(config.accumulate, processes, len(examples))
    log(f"training pairs: {len(examples):,} kept, {dropped:,} dropped "
        f"(longer than {config.max_len} tokens or empty source)"
        + (f"; re-encoded each epoch with BPE-dropout {config.bpe_dropout}" if config.bpe_dropout else ""))
    pad_id, bos_id, eos_id = special_ids(tokenizer)
    budget = config.max_tokens * processes * config.accumulate
    if config.bpe_dropout:
        return DropoutBatcher(pairs, tokenizer, config.bpe_dropout, config.max_len, budget, pad_id=pad_id,
                              bos_id=bos_id, eos_id=eos_id, seed=config.seed)
    return TokenBatcher(examples, budget, pad_id=pad_id, bos_id=bos_id, eos_id=eos_id, seed=config.seed)


class DropoutBatcher(TokenBatcher):
    """A TokenBatcher whose training pairs are encoded anew with BPE-dropout `p` for each epoch.

    The pairs are those the plain encoding keeps (encode_pairs' rule); each epoch draws from a
    generator seeded from (seed, epoch), so an epoch's encoding, and so its batch plan, depends on
    nothing else (a resumed run re-encodes as an uninterrupted one). A pair whose dropout encoding
    is longer than max_len keeps its plain encoding that epoch. `plan(epoch)` encodes that epoch
    (unless it is the one encoded last); `examples`, `costs` and `batch` then belong to it.
    """

    def __init__(self, pairs: list[tuple[str, str]], tokenizer: BPETokenizer, p: float, max_len: int,
                 max_tokens: int, **options: Any) -> None:
        plain = [(tokenizer.encode(s), tokenizer.encode(t)) for s, t in pairs]
        kept = [i for i, (s, t) in enumerate(plain) if pair_fits(len(s), len(t), max_len)]
        super().__init__([plain[i] for i in kept], max_tokens, **options)
        self.pairs = [pairs[i] for i in kept]
        self.plain, self.tokenizer, self.p, self.max_len = self.examples, tokenizer, p, max_len
        self.encoded_epoch: int | None = None  # the epoch `examples` hold; None: the plain encoding

    def plan(self, epoch_index: int = 0) -> list[np.ndarray]:
        if epoch_index != self.encoded_epoch:
            self._encode(epoch_index)
        return super().plan(epoch_index)

    def _encode(self, epoch_index: int) -> None:
        rng = random.Random(f"bpe-dropout {self.seed} {epoch_index}")  # str seeds hash with SHA-512
        encode = functools.partial(self.tokenizer.encode, dropout=self.p, rng=rng)
        examples = []
        for (src_text, tgt_text), plain in zip(self.pairs, self.plain):
            src, tgt = encode(src_text), encode(tgt_text)
            examples.append((src, tgt) if pair_fits(len(src), len(tgt), self.max_len) else plain)
        epoch = TokenBatcher(examples, self.max_tokens, pad_id=self.pad_id, bos_id=self.bos_id,
                             eos_id=self.eos_id, shuffle=self.shuffle, seed=self.seed, bucket_size=self.bucket_size)
        self.examples, self.costs, self.encoded_epoch = epoch.examples, epoch.costs, epoch_index


def on_device(batch: Batch, device: str) -> tuple[Any, Any, Any, Any]:
    """(src, tgt_in, tgt_out, src_mask) of `batch` on `device`."""
    return tuple(backend.to_device(a, device) for a in (batch.src, batch.tgt_in, batch.tgt_out, batch.src_mask))
