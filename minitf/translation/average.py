"""Checkpoint averaging (`minitf average`): the element-wise mean of several checkpoints' weights,
written as a checkpoint that translating and evaluating load.

    paths = select_checkpoints("runs/model", last=5)        # epoch checkpoints (--keep-checkpoints)
    average_checkpoints(paths, "runs/model/average.safetensors")

The mean is accumulated in float64 and written in the dtype of the newest checkpoint's weights (by
training step; the last given on a tie), whose metadata (model, tokenizer, settings, progress) it
keeps. It holds no optimizer state, schedule or random state: a mean of Adam's moments is no state
any training reached, so resuming refuses the file ("holds no training state") instead of
continuing a run from weights it never had. Its "averaged" entry names the files and their steps.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..nn import TransformerConfig
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .run import epoch_checkpoints

SELECT_METRIC = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "select_metric")
"""The metric of a checkpoint whose train_config does not name one (TrainConfig's default)."""
KEPT_META = ("train_config", "model_config", "tokenizer", "progress", "processes")
"""What the average keeps of the newest checkpoint's metadata (not schedule and rng: see above)."""


def average_checkpoints(paths: Sequence[str | os.PathLike], output: str | os.PathLike) -> Path:
    """Write the mean of the weights of the checkpoints `paths` to `output` (atomically) and return
    its path. InputError for no path or one given twice, ConfigError for an `output` that is a
    folder or one of `paths`, CheckpointError for a missing or corrupt file, or checkpoints of
    different models (model_config or tokenizer differ)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no checkpoint to average: give at least one")
    _check_distinct(paths)
    output = _check_output(Path(output), paths)
    total: dict[str, np.ndarray] = {}
    first: tuple[Path, dict[str, Any]] | None = None
    newest: tuple[int, dict[str, Any], dict[str, np.dtype]] | None = None
    steps = []
    for path in paths:  # one checkpoint in memory at a time, besides the sum
        weights, meta = _read(path)
        if first is None:
            first = (path, meta)
            total = {name: np.zeros(w.shape, np.float64) for name, w in weights.items()}
        _check_same_model(first, path, meta, weights, total)
        for name, w in weights.items():
            total[name] += w
        step = meta.get("progress", {}).get("step", 0)
        steps.append(step)
        if newest is None or step >= newest[0]:
            newest = (step, meta, {name: w.dtype for name, w in weights.items()})
    assert newest is not None
    _, meta, dtypes = newest
    mean = {name: (s / len(paths)).astype(dtypes[name]) for name, s in total.items()}
    kept = {key: meta[key] for key in KEPT_META if key in meta}
    kept["averaged"] = {"checkpoints": [p.name for p in paths], "steps": steps}
    return save_checkpoint(output, mean, kept)


def select_checkpoints(sources: Sequence[str | os.PathLike], last: int | None = None,
                       best: int | None = None) -> list[Path]:
    """The checkpoints to average, oldest first: `sources` is one run folder (its epoch checkpoints,
    kept by --keep-checkpoints) or checkpoint files. `last` N: the N of the latest training steps;
    `best` N: the N of the best validation scores (the newest one's select_metric, from the
    evaluation record each holds, as in the log; a newer one first on a tie); neither: all of the
    files (a folder needs one of them). ConfigError for N < 1 or both; InputError for fewer than
    N, or a folder given with other sources."""
    if last is not None and best is not None:
        raise ConfigError("give --last N or --best N, not both")
    count = last if last is not None else best
    if count is not None and count < 1:
        raise ConfigError(f"{'--last' if last is not None else '--best'} must be at least 1, got {count}")
    paths = [Path(s) for s in sources]
    folders = [p for p in paths if p.is_dir()]
    if folders and len(paths) > 1:
        raise InputError(f"{folders[0]} is a folder: give one run folder, or checkpoint files")
    if folders:
        if count is None:
            raise ConfigError(f"{folders[0]} is a run folder: choose its checkpoints with --last N or --best N")
        paths = epoch_checkpoints(folders[0])
        where = f"run folder {folders[0]} holds {len(paths)} epoch checkpoint(s)"
        hint = " (train with --keep-checkpoints N to keep them)"
    else:
        where, hint = f"{len(paths)} checkpoint(s) given", ""
    if count is None:
        return paths
    if len(paths) < count:
        names = f" ({', '.join(p.name for p in paths)})" if paths else ""
        raise InputError(f"{where}{names}, fewer than the {count} asked for{hint}")
    progress = {path: _read(path)[1].get("progress", {}) for path in paths}  # one file in memory at a time
    by_step = sorted(paths, key=lambda p: progress[p].get("step", 0))  # stable: the given order on a tie
    if last is not None:
        return by_step[-count:]
    metric = _read(by_step[-1])[1].get("train_config", {}).get("select_metric", SELECT_METRIC)
    scores = {path: _score(path, progress[path], metric) for path in paths}
    chosen = sorted(reversed(by_step), key=lambda p: scores[p], reverse=True)[:count]  # newer first on a tie
    return [p for p in by_step if p in chosen]


def _score(path: Path, progress: dict[str, Any], metric: str) -> float:
    """The validation score (`metric`) of the evaluation that wrote checkpoint `path`."""
    history = progress.get("history", [])
    if not history or history[-1].get("step") != progress.get("step") or metric not in history[-1]:
        raise InputError(f"checkpoint {path} holds no validation {metric} of its own step (not an epoch checkpoint "
                         "of `minitf train`): --best cannot rank it; use --last or name the files")
    return float(history[-1][metric])


def _read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    weights, meta, _ = load_checkpoint(path, with_optimizer=False)
    missing = [key for key in ("model_config", "tokenizer") if key not in meta]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {' and '.join(missing)}: it cannot be averaged")
    return weights, meta


def _check_same_model(first: tuple[Path, dict[str, Any]], path: Path, meta: dict[str, Any],
                      weights: dict[str, np.ndarray], total: dict[str, np.ndarray]) -> None:
    """CheckpointError unless `path` holds the model of the first checkpoint: model_config, tokenizer
    and the weights' names and shapes."""
    first_path, first_meta = first
    # as TransformerConfigs: a key that one file leaves out takes its default (as loading does)
    config, other = (TransformerConfig(**m["model_config"]).to_dict() for m in (first_meta, meta))
    changed = sorted(k for k in set(config) | set(other) if config.get(k) != other.get(k))
    if changed:
        diffs = ", ".join(f"{k} {config.get(k)!r} vs {other.get(k)!r}" for k in changed[:4])
        raise CheckpointError(f"checkpoints {first_path} and {path} hold different models (model_config: {diffs}): "
                              "only checkpoints of one model can be averaged")
    if meta["tokenizer"] != first_meta["tokenizer"]:
        raise CheckpointError(f"checkpoints {first_path} and {path} have different tokenizers: only checkpoints "
                              "of one model can be averaged")
    if weights.keys() != total.keys() or any(w.shape != total[n].shape for n, w in weights.items()):
        raise CheckpointError(f"checkpoints {first_path} and {path} store different weights (names or shapes)")


def _check_distinct(paths: list[Path]) -> None:
    seen: list[Path] = []
    for path in paths:
        if any(_same_file(path, other) for other in seen):
            raise InputError(f"checkpoint {path} is given twice: each checkpoint is averaged once")
        seen.append(path)


def _check_output(output: Path, paths: list[Path]) -> Path:
    if output.is_dir():
        raise ConfigError(f"--output {output} is a folder; give a file name (e.g. {output / 'average.safetensors'})")
    for path in paths:
        if _same_file(output, path):
            raise ConfigError(f"--output {output} is the input checkpoint {path}: writing the average would "
                              "replace it; give another file name")
    return output


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)  # also a hard link or a symbolic link to it
    except OSError:  # one of them does not exist (yet)
        return a.resolve() == b.resolve()
