"""The special tokens of every translation tokenizer: padding, start and end of a sentence."""
from __future__ import annotations

from ..tokenizer import BPETokenizer

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")


def special_ids(tokenizer: BPETokenizer) -> tuple[int, int, int]:
    """(pad_id, bos_id, eos_id) of `tokenizer`."""
    pad, bos, eos = (tokenizer.special_id(t) for t in SPECIAL_TOKENS)
    return pad, bos, eos
