"""The data of a translation run: its splits, its tokenizer and its batches."""
from __future__ import annotations

from typing import Any, Callable

from .. import backend
from ..data import Batch, TokenBatcher, encode_pairs, number_translation_task, read_parallel, read_tsv
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
        f"(longer than {config.max_len} tokens or empty source)")
    pad_id, bos_id, eos_id = special_ids(tokenizer)
    return TokenBatcher(examples, config.max_tokens * processes * config.accumulate, pad_id=pad_id,
                        bos_id=bos_id, eos_id=eos_id, seed=config.seed)


def on_device(batch: Batch, device: str) -> tuple[Any, Any, Any, Any]:
    """(src, tgt_in, tgt_out, src_mask) of `batch` on `device`."""
    return tuple(backend.to_device(a, device) for a in (batch.src, batch.tgt_in, batch.tgt_out, batch.src_mask))
