"""Hugging Face tokenizer.json files written by hand, for the tokenizer tests (holds no tests itself)."""
from __future__ import annotations

import json


def hf_file(tmp_path, **changes):
    """A minimal byte-level BPE tokenizer.json (all 256 bytes, one merge), written by hand."""
    from minitf.tokenizer.byte_level import BYTE_TO_CHAR
    vocab = {BYTE_TO_CHAR[b]: b + 2 for b in range(256)}
    vocab["ab"] = 258
    data = {"model": {"type": "BPE", "vocab": vocab, "merges": ["a b"]},
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
            "added_tokens": [{"id": 0, "content": "<pad>"}, {"id": 1, "content": "<eos>"}]}
    for key, value in changes.items():
        (data["model"] if key in ("vocab", "merges") else data)[key] = value
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def hf_split(source: str) -> dict:
    """A tokenizer.json pre_tokenizer: Split on the regex ``source``, then ByteLevel."""
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": source}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]}
