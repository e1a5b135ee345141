"""Checkpoints as older minitf wrote them, for the tests that old files still load (holds no tests itself)."""
from __future__ import annotations

import json

import numpy as np

from minitf.translation.checkpoint import FORMAT
from minitf.translation.checkpoint.npz import legacy_adam_state


def save_v1(path, model_state, meta, optimizer_state=None):
    """A checkpoint as minitf wrote them before safetensors (version 1, an .npz)."""
    arrays = {f"model/{name}": np.asarray(value) for name, value in model_state.items()}
    meta = {"format": FORMAT, "version": 1, **meta}
    if optimizer_state is not None and "param_groups" in optimizer_state:
        optimizer_state = legacy_adam_state(optimizer_state)  # version 1 held Adam's old layout
    if optimizer_state is not None:
        meta["optimizer"] = {**{k: v for k, v in optimizer_state.items() if k not in ("m", "v")},
                             "n_params": len(optimizer_state["m"]),
                             "has_moments": [m is not None for m in optimizer_state["m"]]}
        for key in ("m", "v"):
            for i, value in enumerate(optimizer_state[key]):
                if value is not None:
                    arrays[f"optim/{key}/{i}"] = np.asarray(value)
    np.savez(path, **arrays, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    return path
