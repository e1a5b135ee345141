"""Version 1 checkpoints: `.npz` files, read without pickle and without trusting their sizes.

Members: "meta.npy" (the UTF-8 bytes of a JSON document), "model/<name>.npy" and
"optim/{m,v}/<i>.npy". Before anything is decompressed, the sizes that the zip directory
declares are checked against what the metadata's model configuration implies, so that a
small file that would unpack to gigabytes (a zip bomb) is refused at once; then each
member's .npy header (dtype, shape) is checked before its data is read.

The optimizer state of a version 1 file is in the layout of minitf's first Adam (one parameter
group; lists of moments); the reader gives it in torch.optim's layout, as version 2 holds it.
"""
from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any, IO

import numpy as np

from ...serialization import MAX_ENTRIES, CheckpointError
from ..limits import LIMITS
from ...nn import parameter_shapes, tied_names
from .schema import FLOAT_DTYPES, check_meta, check_model_arrays, model_of

MAX_META_BYTES = 64 * 2**20
UNCONFIGURED_ELEMENTS = LIMITS["position_table"]  # per array, in a checkpoint without model_config
MAX_RATIO = 16  # uncompressed / compressed size allowed where no configuration bounds a member
NPY_HEADER_BYTES = 1 << 16  # an .npy header is at most 64 KiB (format version 2 allows more; NumPy writes less)
META_KEYS = ("format", "version", "train_config", "model_config", "tokenizer", "schedule", "progress", "rng",
             "optimizer")


def load_npz_checkpoint(path: Path, with_optimizer: bool = True
                        ) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any] | None]:
    """Read a version 1 checkpoint: (model state, meta, optimizer state or None; None without
    `with_optimizer`, which then is neither read nor checked)."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a minitf checkpoint: it is a damaged "
                              f"zip/npz archive ({exc})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ENTRIES:
            raise CheckpointError(f"checkpoint {path} holds {len(infos):,} files, more than the limit of "
                                  f"{MAX_ENTRIES:,}")
        members = {i.filename[:-4]: i for i in infos if i.filename.endswith(".npy")}
        if "meta" not in members:
            names = [i.filename for i in infos]
            kind = ("a PyTorch torch.save archive (pickle inside)" if any(n.endswith("data.pkl") for n in names)
                    else f"a zip/npz archive holding {names[:5]}")
            raise CheckpointError(f"checkpoint {path} has no metadata: not a minitf checkpoint ({kind})")
        meta = _read_meta(path, archive, members["meta"])
        model = {name[len("model/"):]: info for name, info in members.items() if name.startswith("model/")}
        expected = _expected_shapes(path, meta, model)
        largest = max((math.prod(s) for s in expected.values()), default=UNCONFIGURED_ELEMENTS)
        optim = _optimizer_members(path, meta, members) if with_optimizer else {}
        for name, info in [*(("model/" + n, i) for n, i in model.items()), *optim.items()]:
            shape = expected.get(name[6:]) if name.startswith("model/") else None
            limit = 8 * (math.prod(shape) if shape is not None else largest)
            if info.file_size > limit + NPY_HEADER_BYTES:  # checked for all before reading any
                raise CheckpointError(f"checkpoint {path}: member {info.filename} declares {info.file_size:,} "
                                      f"bytes uncompressed, more than the {limit:,} its shape allows "
                                      "(a corrupt file or a zip bomb)")
            if shape is None and info.file_size > MAX_RATIO * info.compress_size + NPY_HEADER_BYTES:
                raise CheckpointError(f"checkpoint {path}: member {info.filename} declares {info.file_size:,} "
                                      f"bytes uncompressed from {info.compress_size:,} (minitf stores arrays "
                                      "uncompressed: a corrupt file or a zip bomb)")
        state = {name: _read_array(path, archive, info, expected.get(name), largest) for name, info in model.items()}
        check_model_arrays(path, {n: (a.shape, a.dtype) for n, a in state.items()}, meta)
        arrays = {name: _read_array(path, archive, info, None, largest) for name, info in optim.items()}
    return state, meta, _optimizer_state(path, meta, arrays) if with_optimizer else None


def _read_meta(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> dict[str, Any]:
    if info.file_size > MAX_META_BYTES + NPY_HEADER_BYTES:
        raise CheckpointError(f"checkpoint {path}: metadata declares {info.file_size:,} bytes, more than the "
                              f"limit of {MAX_META_BYTES:,}")
    raw = _read_array(path, archive, info, None, MAX_META_BYTES)
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # ValueError: also an integer of over 4,300 digits
        raise CheckpointError(f"checkpoint {path}: metadata is corrupt ({exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path}: metadata is corrupt (not a JSON object)")
    return check_meta(path, {k: v for k, v in meta.items() if k in META_KEYS}, 1)


def _expected_shapes(path: Path, meta: dict[str, Any], model: dict[str, zipfile.ZipInfo]) -> dict[str, Any]:
    """Name -> shape of each member that model_config allows, a tied parameter under any of its names."""
    if "model_config" in meta:
        config = model_of(path, meta["model_config"])
        expected = parameter_shapes(config)
        aliases = tied_names(config)
        shapes = {**expected, **{alias: expected[name] for alias, name in aliases.items()}}
        present = set(model) | {aliases[name] for name in model if name in aliases}
        missing, unexpected = sorted(set(expected) - present), sorted(set(model) - set(shapes))
        if missing or unexpected:
            raise CheckpointError(f"checkpoint {path}: the weights do not match model_config: missing "
                                  f"{missing[:5]}, unexpected {unexpected[:5]}")
        return shapes
    return {}  # no configuration: only UNCONFIGURED_ELEMENTS bounds each array


def _optimizer_members(path: Path, meta: dict[str, Any], members: dict[str, zipfile.ZipInfo]) -> dict[str, Any]:
    info = meta.get("optimizer")
    if info is None:
        return {}
    if not isinstance(info, dict):
        raise CheckpointError(f"checkpoint {path}: optimizer must be a JSON object, got {type(info).__name__}")
    flags = info.get("has_moments")
    if not (isinstance(flags, list) and len(flags) <= MAX_ENTRIES and all(isinstance(f, bool) for f in flags)):
        raise CheckpointError(f"checkpoint {path}: optimizer.has_moments must be a list of true/false, got "
                              f"{str(flags)[:60]}")
    parameters = len(parameter_shapes(model_of(path, meta["model_config"]))) if "model_config" in meta else None
    if parameters is not None and len(flags) != parameters:
        raise CheckpointError(f"checkpoint {path}: optimizer.has_moments lists {len(flags)} parameters, "
                              f"model_config gives {parameters}")
    found = {}
    for key in ("m", "v"):
        for i, present in enumerate(flags):
            name = f"optim/{key}/{i}"
            if present and name not in members:
                raise CheckpointError(f"checkpoint {path}: optimizer entry {name} is missing")
            if present:
                found[name] = members[name]
    return found


def _optimizer_state(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    info = meta.get("optimizer")
    if info is None:
        return None
    state = {k: v for k, v in info.items() if k not in ("n_params", "has_moments")}
    for key in ("m", "v"):
        state[key] = [arrays.get(f"optim/{key}/{i}") for i in range(len(info["has_moments"]))]
    try:
        return adam_state_from_legacy(state)
    except (KeyError, TypeError, IndexError, ValueError) as exc:  # an entry missing, too short or of the wrong type
        raise CheckpointError(f"checkpoint {path}: its optimizer state (minitf's first Adam layout) is malformed: "
                              f"{type(exc).__name__} {exc}") from None


def adam_state_from_legacy(old: dict[str, Any]) -> dict[str, Any]:
    """An Adam/AdamW state_dict() (torch.optim's layout, one parameter group) from the layout of
    minitf's first Adam: {"t", "lr", "betas", "eps", "weight_decay", "m": [...], "v": [...]} and
    optionally "steps" (each parameter's step count; else "t" for all)."""
    n = len(old["m"])
    if len(old["v"]) != n:
        raise ValueError(f"'v' holds {len(old['v'])} parameters, 'm' {n}")
    steps = old.get("steps") or [old["t"]] * n
    group = {"lr": old["lr"], "betas": tuple(old["betas"]), "eps": old["eps"], "weight_decay": old["weight_decay"],
             "params": list(range(n))}
    state = {i: {"step": steps[i], "exp_avg": m, "exp_avg_sq": v}
             for i, (m, v) in enumerate(zip(old["m"], old["v"])) if m is not None}
    return {"state": state, "param_groups": [group]}


def legacy_adam_state(state_dict: dict[str, Any]) -> dict[str, Any]:
    """An Adam/AdamW state_dict() in the layout of minitf's first Adam, which version 1 stores:
    {"t", "lr", "betas", "eps", "weight_decay", "m": [...], "v": [...], "steps": [...]}
    ("steps": each parameter's step count, None before its first update); the inverse of
    adam_state_from_legacy."""
    if len(state_dict["param_groups"]) != 1:
        raise ValueError(f"the old Adam state layout holds one parameter group, got "
                         f"{len(state_dict['param_groups'])}")
    group, state = state_dict["param_groups"][0], state_dict["state"]
    entries = [state.get(i) for i in group["params"]]
    steps = [None if e is None else int(e["step"]) for e in entries]
    return {"t": max([s for s in steps if s is not None], default=0), "lr": group["lr"],
            "betas": list(group["betas"]), "eps": group["eps"], "weight_decay": group["weight_decay"],
            "m": [None if e is None else e["exp_avg"] for e in entries],
            "v": [None if e is None else e["exp_avg_sq"] for e in entries], "steps": steps}


def _read_array(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, shape: tuple[int, ...] | None,
                max_elements: int | None = None) -> np.ndarray:
    """One member: its .npy header checked (no objects; `shape` if given) before its data is read."""
    try:
        with archive.open(info) as f:
            dtype, stored_shape, fortran = _npy_header(path, info, f)
            count = math.prod(stored_shape)
            if shape is not None and stored_shape != tuple(shape):
                raise CheckpointError(f"checkpoint {path}: {info.filename} has shape {stored_shape}, model_config "
                                      f"gives {tuple(shape)}")
            if shape is not None and dtype not in FLOAT_DTYPES:
                raise CheckpointError(f"checkpoint {path}: {info.filename} has dtype {dtype}, expected float32")
            if max_elements is not None and count > max_elements:
                raise CheckpointError(f"checkpoint {path}: {info.filename} has shape {stored_shape}, larger than "
                                      "allowed")
            buffer = bytearray(count * dtype.itemsize)
            if f.readinto(buffer) != len(buffer):
                raise CheckpointError(f"checkpoint {path}: {info.filename} is truncated")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} is corrupt: {info.filename}: {exc}") from None
    return np.frombuffer(buffer, dtype).reshape(stored_shape, order="F" if fortran else "C")


def _npy_header(path: Path, info: zipfile.ZipInfo, f: IO[bytes]) -> tuple[np.dtype, tuple[int, ...], bool]:
    version = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = reader(f, max_header_size=NPY_HEADER_BYTES)
    if dtype.hasobject:
        raise CheckpointError(f"checkpoint {path}: {info.filename} holds pickled Python objects, which minitf "
                              "never reads: not a minitf checkpoint")
    return dtype, tuple(shape), fortran
