"""Loading a Hugging Face model folder: ``config.json``, ``model.safetensors`` and the tokenizer.

The weights are read through ``minitf.serialization``: the safetensors header is checked first, then
every expected name and shape is checked against the config before any array is read, and nothing is
unpickled (a folder with only ``pytorch_model.bin`` is refused). A missing, mis-shaped or unexpected
key raises CheckpointError naming it and the file.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..serialization import CheckpointError, open_file
from ..tokenizer import BPETokenizer, from_vocab_merges
from .gpt2 import GPT2Config, GPT2LMHeadModel

__all__ = ["load_gpt2", "read_config", "load_tokenizer"]

MAX_CONFIG_BYTES = 1 << 20
_BUFFERS = re.compile(r"(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)")
"""Causal-mask buffers that older GPT-2 checkpoints hold: constants, not weights (skipped)."""


def load_gpt2(path: str | os.PathLike, dtype: Any = np.float32) -> tuple[GPT2LMHeadModel, BPETokenizer]:
    """(model, tokenizer) of the GPT-2 model folder at ``path``, the model's weights in ``dtype``
    (float16/32/64 files are converted), in evaluation mode. The tokenizer comes from
    ``tokenizer.json`` or else from ``vocab.json`` + ``merges.txt``."""
    folder = _folder(path)
    config = GPT2Config.from_dict(read_config(folder / "config.json"), str(folder / "config.json"))
    model = GPT2LMHeadModel(config, init_weights=False).to(dtype)
    model.load_state_dict(read_weights(folder / "model.safetensors", model, dtype))
    return model.eval(), load_tokenizer(folder)


def _folder(path: str | os.PathLike) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise FileNotFoundError(f"model folder not found: {folder}")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a model folder (config.json, model.safetensors, tokenizer)")
    return folder


def read_config(path: Path) -> dict[str, Any]:
    """The JSON object of a config.json, its size checked first; errors name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"config.json not found: {path}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path}: {path.stat().st_size:,} bytes, more than the limit of "
                              f"{MAX_CONFIG_BYTES:,} for a config file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"{path}: not a valid JSON config ({exc})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_weights(path: Path, model: GPT2LMHeadModel, dtype: Any) -> dict[str, np.ndarray]:
    """The model's state dict (one name per array) read from HF's ``model.safetensors``: keys with or
    without the ``transformer.`` prefix, ``lm_head.weight`` optional when tied (if present it must
    equal ``transformer.wte.weight``)."""
    if not path.is_file():
        found = " (pytorch_model.bin is a pickle and is not read: convert it to safetensors)" \
            if (path.parent / "pytorch_model.bin").exists() else ""
        raise FileNotFoundError(f"model.safetensors not found: {path}{found}")
    stored = open_file(path)
    refs = {}
    for name, ref in stored.arrays.items():
        if _BUFFERS.fullmatch(name):
            continue
        key = name if name.startswith("transformer.") or name == "lm_head.weight" else "transformer." + name
        if key in refs:
            raise CheckpointError(f"{path}: {name!r} is stored twice (with and without 'transformer.')")
        refs[key] = ref
    expected = {name: p.shape for name, p in model.named_parameters()}  # a tied head: under wte only
    tied_head = model.config.tie_word_embeddings
    _check_names(path, refs, expected, tied_head)
    state = {}
    for key, ref in refs.items():
        if ref.dtype.kind != "f":
            raise CheckpointError(f"{path}: {ref.name!r} has dtype {ref.dtype}; weights must be floating-point")
        state[key] = stored.read(ref).astype(dtype, copy=False)
    head = state.pop("lm_head.weight", None) if tied_head else None
    if head is not None and not np.array_equal(head, state["transformer.wte.weight"]):
        raise CheckpointError(f"{path}: lm_head.weight differs from transformer.wte.weight, but the config "
                              "ties them (tie_word_embeddings)")
    return state


def _check_names(path: Path, refs: dict, expected: dict[str, tuple[int, ...]], tied_head: bool) -> None:
    missing = [name for name in expected if name not in refs]
    if missing:
        raise CheckpointError(f"{path}: missing key(s) {', '.join(missing[:8])}"
                              f"{', ...' if len(missing) > 8 else ''} ({len(missing)} of {len(expected)})")
    allowed = set(expected) | ({"lm_head.weight"} if tied_head else set())
    unexpected = sorted(refs[key].name for key in set(refs) - allowed)  # as the file names them
    if unexpected:
        raise CheckpointError(f"{path}: unexpected key(s) {', '.join(unexpected[:8])}"
                              f"{', ...' if len(unexpected) > 8 else ''} (not part of a GPT2LMHeadModel)")
    shapes = dict(expected, **({"lm_head.weight": expected["transformer.wte.weight"]} if tied_head else {}))
    for name, ref in refs.items():
        if tuple(ref.shape) != tuple(shapes[name]):
            raise CheckpointError(f"{path}: {ref.name!r} has shape {tuple(ref.shape)}, but config.json "
                                  f"gives {tuple(shapes[name])}")


def load_tokenizer(folder: Path) -> BPETokenizer:
    """The tokenizer of a model folder: ``tokenizer.json``, else ``vocab.json`` + ``merges.txt``."""
    if (folder / "tokenizer.json").is_file():
        return BPETokenizer.from_huggingface(folder / "tokenizer.json")
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return from_vocab_merges(folder / "vocab.json", folder / "merges.txt")
    raise FileNotFoundError(f"{folder}: no tokenizer (tokenizer.json, or vocab.json and merges.txt)")
