"""Translation checkpoints: one safetensors file written by `minitf.save` (no pickle).

The saved structure is {"format": "minitf-checkpoint", "version": 2, "model": state dict,
"optimizer": optimizer state, "model_config", "train_config", "tokenizer", "schedule",
"progress", "rng", "processes"}; the weights are tensors named "model.<parameter name>", so other
safetensors readers see them too. Version 1 checkpoints (`.npz`) still load (npz.py).

Loading is bounded, since checkpoints come from other people: only the entries above are
read, and checked (schema.py) before anything is allocated.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from ... import serialization
from ...serialization import ArrayRef, CheckpointError
from .schema import (FORMAT, META_KEYS, check_finite, check_meta, check_model_arrays, check_tied_values,
                     short)

VERSION = 2


def save_checkpoint(path: str | os.PathLike, model_state: dict[str, np.ndarray], meta: dict[str, Any],
                    optimizer_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temporary file, fsync, rename over `path`). An array listed
    under several names (a tied weight in `model.state_dict()`) is written under its first only."""
    obj = {"format": FORMAT, "version": VERSION, **_plain(meta), "model": _each_array_once(model_state)}
    if optimizer_state is not None:
        obj["optimizer"] = optimizer_state
    return serialization.save(obj, path)


def _each_array_once(state: dict[str, Any]) -> dict[str, Any]:
    kept: dict[int, str] = {}
    for name, array in state.items():
        kept.setdefault(id(array), name)
    return {name: state[name] for name in kept.values()}


def _plain(value: Any) -> Any:
    """Metadata with NumPy scalars (e.g. a metric's np.float64) as Python numbers: plain JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def load_checkpoint(path: str | os.PathLike, with_optimizer: bool = True
                    ) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any] | None]:
    """Read (model state, meta, optimizer state or None); CheckpointError says what is wrong.

    `with_optimizer=False` (translating) neither reads nor checks the optimizer state: it gives None.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist" if not path.exists()
                              else f"checkpoint {path} is not a file")
    head = serialization.first_bytes(path)
    if head.startswith(b"PK\x03\x04"):
        from .npz import load_npz_checkpoint  # noqa: PLC0415 (version 1 only)
        weights, meta, optimizer = load_npz_checkpoint(path, with_optimizer)
        check_finite(path, weights)
        check_tied_values(path, weights, meta)
        return weights, meta, optimizer
    try:
        stored = serialization.open_file(path)
        tree = stored.structure()
    except CheckpointError as exc:
        detail = str(exc).removeprefix(str(path)).lstrip(": ")
        raise CheckpointError(f"checkpoint {path} is corrupt or not a minitf checkpoint: {detail}") from None
    if not stored.is_minitf or not isinstance(tree, dict):
        raise CheckpointError(f"checkpoint {path} is a safetensors file but not a minitf checkpoint "
                              "(no minitf metadata); read its arrays with minitf.load")
    meta = check_meta(path, {k: tree[k] for k in ("format", "version", "processes", *META_KEYS) if k in tree},
                      VERSION)
    model = tree.get("model")
    if not isinstance(model, dict) or not all(isinstance(r, ArrayRef) for r in model.values()):
        raise CheckpointError(f"checkpoint {path}: 'model' must map parameter names to arrays")
    check_model_arrays(path, {name: (ref.shape, ref.dtype) for name, ref in model.items()}, meta)
    optimizer = tree.get("optimizer") if with_optimizer else None
    if optimizer is not None and not isinstance(optimizer, dict):
        raise CheckpointError(f"checkpoint {path}: 'optimizer' must be a dict, got {type(optimizer).__name__}")
    if optimizer is not None:  # each optimizer array belongs to a parameter: it has one's shape
        shapes = {tuple(r.shape) for r in model.values()}
        for ref in serialization.iter_refs(optimizer):
            if tuple(ref.shape) not in shapes:
                raise CheckpointError(f"checkpoint {path}: optimizer array {ref.name!r} has shape {short(ref.shape)}, "
                                      "which no parameter has")
    # each weight as a plain array, also one saved as a Tensor or a NumPy scalar
    weights = stored.materialize({name: dataclasses.replace(ref, kind="array", requires_grad=False)
                                  for name, ref in model.items()})
    check_finite(path, weights)
    check_tied_values(path, weights, meta)
    return weights, meta, stored.materialize(optimizer)
