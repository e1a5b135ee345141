"""What a translation checkpoint may hold, checked before it is used: the metadata's types, values
and caps, the weights' names, shapes and dtypes against the model configuration.

The schema is not written here: model_config is a TransformerConfig, train_config a TrainConfig,
progress a Progress (its history EvalRecords), each checked by its own fields' rules (minitf.config),
and the weights' layout is nn.parameter_shapes. Both readers (safetensors.py, version 2; npz.py,
version 1) check with these functions; every problem is a CheckpointError (a ValueError) naming the
file and the key.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ... import config as settings
from ...errors import ConfigError
from ...nn import TransformerConfig, parameter_shapes, tied_names
from ...serialization import CheckpointError
from ...tokenizer import BPETokenizer
from ..config import MODEL_SETTINGS, EvalRecord, Progress, TrainConfig
from ..limits import LIMITS
from ..tokens import SPECIAL_TOKENS

FORMAT = "minitf-checkpoint"
META_KEYS = ("train_config", "model_config", "tokenizer", "schedule", "progress", "rng")
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def check_meta(path: Path, meta: dict[str, Any], version: int) -> dict[str, Any]:
    """Check format, version and the known metadata entries (types, values, LIMITS)."""
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != version:
        raise CheckpointError(f"checkpoint {path} is version {meta.get('version')!r}; this file type holds "
                              f"version {version}")
    for key in META_KEYS:
        if key in meta and not isinstance(meta[key], dict):
            raise CheckpointError(f"checkpoint {path}: {key} must be a JSON object (dict), got "
                                  f"{type(meta[key]).__name__} {short(meta[key])}")
    if "processes" in meta:  # how many processes trained the run (absent before minitf recorded it)
        processes = meta["processes"]
        if not (isinstance(processes, int) and not isinstance(processes, bool) and processes >= 1):
            raise CheckpointError(f"checkpoint {path}: processes must be an integer >= 1, got {short(processes)}")
    model = model_of(path, meta["model_config"]) if "model_config" in meta else None
    if "tokenizer" in meta:
        _check_tokenizer(path, meta["tokenizer"], model)
    if "train_config" in meta:
        _check_train_config(path, meta["train_config"], meta.get("model_config", {}), model)
    if "progress" in meta:
        _check_progress(path, meta["progress"])
    if "schedule" in meta:
        for key, value in meta["schedule"].items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CheckpointError(f"checkpoint {path}: schedule.{key} must be a number, got "
                                      f"{type(value).__name__} {short(value)}")
    return meta


def model_of(path: Path, model_config: dict[str, Any]) -> TransformerConfig:
    """The TransformerConfig of a checkpoint's model_config (missing keys take its defaults):
    each field's type and caps, then the rules between fields, as CheckpointError."""
    values = settings.check(model_config, TransformerConfig, source=f"checkpoint {path}", label="model_config.{}",
                            error=CheckpointError)
    try:
        return TransformerConfig(**values)
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {path}: model_config: {exc}") from None


def check_model_config(path: Path, model_config: dict[str, Any]) -> None:
    """Types, ranges and consistency of a TransformerConfig dict (missing keys take the defaults)."""
    model_of(path, model_config)


def check_model_arrays(path: Path, arrays: dict[str, tuple[tuple[int, ...], np.dtype]],
                       meta: dict[str, Any]) -> None:
    """Each stored parameter's (shape, dtype) against the configuration (if the checkpoint has one)."""
    for name, (shape, dtype) in arrays.items():
        if dtype not in FLOAT_DTYPES:
            raise CheckpointError(f"checkpoint {path}: parameter {name!r} has dtype {dtype}, expected float32 "
                                  "(or float16/float64)")
        if any(n > LIMITS["position_table"] for n in shape):  # no model has such a dimension (LIMITS)
            raise CheckpointError(f"checkpoint {path}: parameter {name!r} has shape {short(tuple(shape))}, a "
                                  f"dimension above the limit of {LIMITS['position_table']:,}")
    if "model_config" not in meta:
        return
    model = model_of(path, meta["model_config"])
    expected = parameter_shapes(model)
    aliases = tied_names(model)  # a tied parameter may be under any of its names, or all
    shapes = {**expected, **{alias: expected[name] for alias, name in aliases.items()}}
    present = set(arrays) | {aliases[name] for name in arrays if name in aliases}
    missing, unexpected = sorted(set(expected) - present), sorted(set(arrays) - set(shapes))
    if missing or unexpected:
        raise CheckpointError(f"checkpoint {path}: the weights do not match model_config: missing "
                              f"{missing[:5]}, unexpected {unexpected[:5]}")
    for name, shape in shapes.items():
        if name in arrays and tuple(arrays[name][0]) != shape:
            raise CheckpointError(f"checkpoint {path}: parameter {name!r} has shape {tuple(arrays[name][0])}, "
                                  f"model_config gives {shape}")


def check_finite(path: Path, weights: dict[str, np.ndarray]) -> None:
    """Every weight must be finite: nan or inf would only show up later as nan translations or losses."""
    for name, array in weights.items():
        if not np.isfinite(array).all():
            raise CheckpointError(f"checkpoint {path}: parameter {name!r} holds nan or inf")


def check_tied_values(path: Path, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """A tied parameter stored under two of its names must hold one value (the model has one)."""
    if "model_config" not in meta:
        return
    for alias, name in tied_names(model_of(path, meta["model_config"])).items():
        if alias in weights and name in weights and not (
                weights[alias] is weights[name] or np.array_equal(weights[alias], weights[name])):
            raise CheckpointError(f"checkpoint {path}: parameters {name!r} and {alias!r} are one tied parameter "
                                  "(model_config.share_embeddings) but are stored with different values")


def _check_tokenizer(path: Path, data: dict[str, Any], model: TransformerConfig | None) -> None:
    """The tokenizer must build (its ids are capped), hold the special tokens that translating and
    training use, fit the model's vocabulary and have the model's pad_id as its <pad>."""
    try:
        tokenizer = BPETokenizer.from_dict(data, source=f"checkpoint {path}: tokenizer")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    missing = [name for name in SPECIAL_TOKENS if name not in tokenizer.special_tokens]
    if missing:
        raise CheckpointError(f"checkpoint {path}: the tokenizer lacks the special token(s) {', '.join(missing)} "
                              f"(it has {list(tokenizer.special_tokens)[:10]})")
    if model is None:
        return
    if tokenizer.vocab_size != model.src_vocab_size:
        raise CheckpointError(f"checkpoint {path}: the tokenizer has {tokenizer.vocab_size} tokens, "
                              f"model_config.src_vocab_size is {model.src_vocab_size}")
    tokenizer_pad = tokenizer.special_id(SPECIAL_TOKENS[0])
    if model.pad_id != tokenizer_pad:
        raise CheckpointError(f"checkpoint {path}: model_config.pad_id {model.pad_id} is not the tokenizer's "
                              f"{SPECIAL_TOKENS[0]} id {tokenizer_pad}")


def _check_train_config(path: Path, config: dict[str, Any], model_config: dict[str, Any],
                        model: TransformerConfig | None) -> None:
    """The capped TrainConfig fields it holds (those with a `high` bound: the sizes that resuming
    builds), by their rules; the rest is checked when resuming (translating does not read it).
    The model settings must be model_config's, and the model must have positions for its sentences."""
    capped = {f.name for f in dataclasses.fields(TrainConfig) if settings.spec_of(f).high is not None}
    settings.check({k: v for k, v in config.items() if k in capped}, TrainConfig, source=f"checkpoint {path}",
                   label="train_config.{}", error=CheckpointError)
    for key in MODEL_SETTINGS:
        if key in config and key in model_config and config[key] != model_config[key]:
            raise CheckpointError(f"checkpoint {path}: train_config.{key} {short(config[key])} differs from "
                                  f"model_config.{key} {short(model_config[key])}")
    # the trainer builds its model from train_config: positions for 2 max_len + 16 tokens
    if "max_len" in config and model is not None and config["max_len"] > model.max_len:
        raise CheckpointError(f"checkpoint {path}: train_config.max_len {config['max_len']} exceeds "
                              f"model_config.max_len {model.max_len}")


def _check_progress(path: Path, progress: dict[str, Any]) -> None:
    """Progress's fields by their rules; each history entry an EvalRecord of a step at most progress.step."""
    settings.check(progress, Progress, source=f"checkpoint {path}", label="progress.{}", error=CheckpointError)
    history = progress.get("history", [])
    if not all(isinstance(h, dict) for h in history):
        raise CheckpointError(f"checkpoint {path}: progress.history must be a list of dicts, got "
                              f"{short(history)}")
    step = progress.get("step")  # absent: nothing to compare with (translating does not need it)
    for i, entry in enumerate(history):
        name = f"progress.history[{i}]"
        settings.check(entry, EvalRecord, source=f"checkpoint {path}", label=name + ".{}", error=CheckpointError)
        if step is not None and entry["step"] > step:
            raise CheckpointError(f"checkpoint {path}: {name}.step {entry['step']} is after progress.step {step}")


def short(value: Any) -> str:
    """`value` as a message shows it: its repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
