"""Checkpoints: one `.npz` file (no pickle) holding weights, optimizer state and JSON metadata.

Arrays: "model/<parameter name>", "optim/m/<i>", "optim/v/<i>" and "meta", the UTF-8
bytes of a JSON document: format name and version, model and training configuration,
optimizer scalars, schedule, training progress, random state and the tokenizer.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "minitf-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or of another format or version."""


def save_checkpoint(path: str | os.PathLike, model_state: dict[str, np.ndarray], meta: dict[str, Any],
                    optimizer_state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (to a temporary file, then renamed over `path`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"model/{name}": np.asarray(value) for name, value in model_state.items()}
    meta = {"format": FORMAT, "version": VERSION, **meta}
    if optimizer_state is not None:
        scalars = {k: v for k, v in optimizer_state.items() if k not in ("m", "v")}
        meta["optimizer"] = {**scalars, "n_params": len(optimizer_state["m"]),
                             "has_moments": [m is not None for m in optimizer_state["m"]]}
        for key in ("m", "v"):
            for i, value in enumerate(optimizer_state[key]):
                if value is not None:
                    arrays[f"optim/{key}/{i}"] = np.asarray(value)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any] | None]:
    """Read (model state, meta, optimizer state or None); CheckpointError says what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a minitf checkpoint ({exc})") from exc
    meta = _read_meta(path, arrays)
    model_state = {name[len("model/"):]: a for name, a in arrays.items() if name.startswith("model/")}
    return model_state, meta, _optimizer_state(path, arrays, meta)


def _read_meta(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if "meta" not in arrays:
        raise CheckpointError(f"checkpoint {path} has no metadata: not a minitf checkpoint")
    try:
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path}: metadata is corrupt ({exc})") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path}: metadata is corrupt (not a JSON object)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} is version {meta.get('version')}; this minitf reads "
                              f"version {VERSION}")
    return meta


def _optimizer_state(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, Any] | None:
    info = meta.get("optimizer")
    if info is None:
        return None
    state = {k: v for k, v in info.items() if k not in ("n_params", "has_moments")}
    for key in ("m", "v"):
        values = []
        for i, present in enumerate(info["has_moments"]):
            name = f"optim/{key}/{i}"
            if present and name not in arrays:
                raise CheckpointError(f"checkpoint {path}: optimizer entry {name} is missing")
            values.append(arrays[name] if present else None)
        state[key] = values
    return state
