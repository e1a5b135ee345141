"""What a translation checkpoint may hold, checked before it is used: the metadata's types, values
and caps (LIMITS), the weights' names, shapes and dtypes against the model configuration.

Both readers (safetensors.py, version 2; npz.py, version 1) check with these functions; every
problem is a CheckpointError (a ValueError) naming the file and the key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...serialization import CheckpointError
from ...tokenizer import BPETokenizer
from ..limits import LIMITS, MAX_TRAIN_LEN, PROGRESS_CAP, TRAIN_SECONDS_CAP
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
        _check_field(path, "processes", meta["processes"], (int, 1, None))
    if "model_config" in meta:
        check_model_config(path, meta["model_config"])
    if "tokenizer" in meta:
        _check_tokenizer(path, meta["tokenizer"], meta.get("model_config"))
    if "train_config" in meta:
        _check_train_config(path, meta["train_config"], meta.get("model_config", {}))
    if "progress" in meta:
        _check_progress(path, meta["progress"])
    if "schedule" in meta:
        for key, value in meta["schedule"].items():
            _expect(path, f"schedule.{key}", value, (int, float), "a number")
    return meta


_MODEL_FIELDS: dict[str, tuple[Any, ...]] = {
    # name: (type, lowest, highest) for numbers; (str, choices) / (bool,) otherwise
    "src_vocab_size": (int, 1, LIMITS["vocab_size"]), "tgt_vocab_size": (int, 1, LIMITS["vocab_size"]),
    "d_model": (int, 1, LIMITS["d_model"]), "n_heads": (int, 1, LIMITS["d_model"]),
    "n_encoder_layers": (int, 0, LIMITS["layers"]), "n_decoder_layers": (int, 0, LIMITS["layers"]),
    "d_ff": (int, 1, LIMITS["d_ff"]), "dropout": (float, 0.0, 1.0), "activation": (str, ("relu", "gelu")),
    "norm_first": (bool,), "max_len": (int, 1, LIMITS["max_len"]), "pad_id": (int, 0, LIMITS["vocab_size"] - 1),
    "share_embeddings": (bool,), "tie_output": (bool,),
}
_MODEL_DEFAULTS = {"d_model": 256, "n_heads": 4, "n_encoder_layers": 3, "n_decoder_layers": 3, "d_ff": 1024,
                   "dropout": 0.1, "activation": "relu", "norm_first": False, "max_len": 256, "pad_id": 0,
                   "share_embeddings": True, "tie_output": True}


def check_model_config(path: Path, config: dict[str, Any]) -> None:
    """Types, ranges and consistency of a TransformerConfig dict (missing keys take the defaults)."""
    unknown = sorted(set(config) - set(_MODEL_FIELDS))
    if unknown:
        raise CheckpointError(f"checkpoint {path}: model_config has unknown key(s) {unknown}")
    for key in ("src_vocab_size", "tgt_vocab_size"):
        if key not in config:
            raise CheckpointError(f"checkpoint {path}: model_config lacks {key}")
    for key, rule in _MODEL_FIELDS.items():
        if key in config:
            _check_field(path, f"model_config.{key}", config[key], rule)
    c = {**_MODEL_DEFAULTS, **config}
    if c["d_model"] % c["n_heads"]:
        raise CheckpointError(f"checkpoint {path}: model_config.n_heads {c['n_heads']} does not divide "
                              f"d_model {c['d_model']}")
    if c["share_embeddings"] and c["src_vocab_size"] != c["tgt_vocab_size"]:
        raise CheckpointError(f"checkpoint {path}: model_config.share_embeddings needs src_vocab_size "
                              f"{c['src_vocab_size']} == tgt_vocab_size {c['tgt_vocab_size']}")
    if c["pad_id"] >= c["tgt_vocab_size"]:
        raise CheckpointError(f"checkpoint {path}: model_config.pad_id {c['pad_id']} is not below "
                              f"tgt_vocab_size {c['tgt_vocab_size']}")
    if c["max_len"] * c["d_model"] > LIMITS["position_table"]:
        raise CheckpointError(f"checkpoint {path}: model_config.max_len {c['max_len']} x d_model {c['d_model']} "
                              f"exceeds the limit of {LIMITS['position_table']:,} position values")


def parameter_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The parameter names and shapes of `Transformer(TransformerConfig(**config))`, without building it."""
    c = {**_MODEL_DEFAULTS, **config}
    d, f = c["d_model"], c["d_ff"]
    shapes = {"tgt_embed.weight": (c["tgt_vocab_size"], d)}
    if not c["share_embeddings"]:
        shapes["src_embed.weight"] = (c["src_vocab_size"], d)
    if not c["tie_output"]:
        shapes["output_weight"] = (c["tgt_vocab_size"], d)

    def layer(prefix: str, attentions: tuple[str, ...], norms: int) -> None:
        for a in attentions:
            shapes.update({f"{prefix}.{a}.in_proj_weight": (3 * d, d), f"{prefix}.{a}.in_proj_bias": (3 * d,),
                           f"{prefix}.{a}.out_proj_weight": (d, d), f"{prefix}.{a}.out_proj_bias": (d,)})
        shapes.update({f"{prefix}.ff.linear1.weight": (f, d), f"{prefix}.ff.linear1.bias": (f,),
                       f"{prefix}.ff.linear2.weight": (d, f), f"{prefix}.ff.linear2.bias": (d,)})
        for i in range(1, norms + 1):
            shapes.update({f"{prefix}.norm{i}.weight": (d,), f"{prefix}.norm{i}.bias": (d,)})

    for i in range(c["n_encoder_layers"]):
        layer(f"encoder_layers.{i}", ("self_attn",), 2)
    for i in range(c["n_decoder_layers"]):
        layer(f"decoder_layers.{i}", ("self_attn", "cross_attn"), 3)
    for norm in ("encoder_norm", "decoder_norm"):
        shapes.update({f"{norm}.weight": (d,), f"{norm}.bias": (d,)})
    return shapes


def tied_names(config: dict[str, Any]) -> dict[str, str]:
    """Other name -> parameter_shapes name of each tied parameter of the Transformer that
    `config` builds (its state_dict lists it under both, as PyTorch's does)."""
    return {"src_embed.weight": "tgt_embed.weight"} if {**_MODEL_DEFAULTS, **config}["share_embeddings"] else {}


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
    expected = parameter_shapes(meta["model_config"])
    aliases = tied_names(meta["model_config"])  # a tied parameter may be under any of its names, or all
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
    for alias, name in tied_names(meta["model_config"]).items():
        if alias in weights and name in weights and not (
                weights[alias] is weights[name] or np.array_equal(weights[alias], weights[name])):
            raise CheckpointError(f"checkpoint {path}: parameters {name!r} and {alias!r} are one tied parameter "
                                  "(model_config.share_embeddings) but are stored with different values")


def _check_tokenizer(path: Path, data: dict[str, Any], model_config: dict[str, Any] | None) -> None:
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
    if model_config is None:
        return
    if tokenizer.vocab_size != model_config["src_vocab_size"]:
        raise CheckpointError(f"checkpoint {path}: the tokenizer has {tokenizer.vocab_size} tokens, "
                              f"model_config.src_vocab_size is {model_config['src_vocab_size']}")
    pad_id, tokenizer_pad = model_config.get("pad_id", _MODEL_DEFAULTS["pad_id"]), tokenizer.special_id(SPECIAL_TOKENS[0])
    if pad_id != tokenizer_pad:
        raise CheckpointError(f"checkpoint {path}: model_config.pad_id {pad_id} is not the tokenizer's "
                              f"{SPECIAL_TOKENS[0]} id {tokenizer_pad}")


def _check_train_config(path: Path, config: dict[str, Any], model_config: dict[str, Any]) -> None:
    for key in ("d_model", "n_heads", "n_encoder_layers", "n_decoder_layers", "d_ff", "dropout", "activation",
                "norm_first"):
        if key in config and key in model_config and config[key] != model_config[key]:
            raise CheckpointError(f"checkpoint {path}: train_config.{key} {short(config[key])} differs from "
                                  f"model_config.{key} {short(model_config[key])}")
    for key, limit in (("vocab_size", LIMITS["vocab_size"]), ("max_len", MAX_TRAIN_LEN)):
        if key in config:
            _check_field(path, f"train_config.{key}", config[key], (int, 1, limit))
    # the trainer builds its model from train_config: positions for 2 max_len + 16 tokens
    if "max_len" in config and config["max_len"] > model_config.get("max_len", LIMITS["max_len"]):
        raise CheckpointError(f"checkpoint {path}: train_config.max_len {config['max_len']} exceeds "
                              f"model_config.max_len {model_config['max_len']}")
    sizes = config.get("synthetic_sizes")
    if sizes is not None:
        if not (isinstance(sizes, (list, tuple)) and len(sizes) == 3):
            raise CheckpointError(f"checkpoint {path}: train_config.synthetic_sizes must be 3 integers, got "
                                  f"{short(sizes)}")
        for i, n in enumerate(sizes):
            _check_field(path, f"train_config.synthetic_sizes[{i}]", n, (int, 0, LIMITS["synthetic_pairs"]))


_PROGRESS = {"epoch": (int, 0, PROGRESS_CAP), "batch": (int, 0, PROGRESS_CAP), "step": (int, 0, PROGRESS_CAP),
             "bad_epochs": (int, 0, PROGRESS_CAP), "best_score": (float, None, 100.0),  # -inf: nothing scored yet
             "train_seconds": (float, 0.0, TRAIN_SECONDS_CAP)}
# An evaluation's record (Trainer._evaluate_and_save); step is required, and at most progress.step.
_HISTORY = {"event": (str, ("eval",)), "epoch": (int, 1, PROGRESS_CAP + 1), "train_seconds": _PROGRESS["train_seconds"],
            "val_loss": (float, 0.0, None), "bleu": (float, 0.0, 100.0), "chrf": (float, 0.0, 100.0),
            "exact_match": (float, 0.0, 1.0)}


def _check_progress(path: Path, progress: dict[str, Any]) -> None:
    unknown = sorted(set(progress) - set(_PROGRESS) - {"history"})
    if unknown:
        raise CheckpointError(f"checkpoint {path}: progress has unknown key(s) {unknown}")
    for key, rule in _PROGRESS.items():
        if key in progress:
            _check_field(path, f"progress.{key}", progress[key], rule)
    history = progress.get("history", [])
    if not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        raise CheckpointError(f"checkpoint {path}: progress.history must be a list of dicts, got "
                              f"{short(history)}")
    for i, entry in enumerate(history):
        _check_history_entry(path, f"progress.history[{i}]", entry, progress.get("step", PROGRESS_CAP))


def _check_history_entry(path: Path, name: str, entry: dict[str, Any], step: int) -> None:
    unknown = sorted(set(entry) - set(_HISTORY) - {"step"})
    if unknown:
        raise CheckpointError(f"checkpoint {path}: {name} has unknown key(s) {unknown[:5]}")
    if "step" not in entry:
        raise CheckpointError(f"checkpoint {path}: {name} lacks 'step' (the step it evaluated)")
    _check_field(path, f"{name}.step", entry["step"], (int, 0, step))
    for key, rule in _HISTORY.items():
        if key in entry:
            _check_field(path, f"{name}.{key}", entry[key], rule)


def _check_field(path: Path, key: str, value: Any, rule: tuple[Any, ...]) -> None:
    kind = rule[0]
    if kind is bool:
        _expect(path, key, value, bool, "true or false")
    elif kind is str:
        if value not in rule[1]:
            raise CheckpointError(f"checkpoint {path}: {key} must be one of {list(rule[1])}, got {short(value)}")
    else:
        name = "an integer" if kind is int else "a number"
        _expect(path, key, value, int if kind is int else (int, float), name)
        low, high = rule[1], rule[2]
        if (low is not None and value < low) or (high is not None and value > high) or value != value:
            bounds = f"{low if low is not None else '-inf'} .. {high if high is not None else 'inf'}"
            raise CheckpointError(f"checkpoint {path}: {key} must be {name} in {bounds}, got {short(value)}")


def _expect(path: Path, key: str, value: Any, types: Any, name: str) -> None:
    if isinstance(value, bool) and types is not bool or not isinstance(value, types):
        raise CheckpointError(f"checkpoint {path}: {key} must be {name}, got {type(value).__name__} "
                              f"{short(value)}")


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
