"""Resuming a run from its checkpoint: the training state it must hold, checked before any of it
is used, then restored into a rebuilt trainer (Trainer.from_checkpoint: open_run, then restore).

Translating needs only model_config, tokenizer and the weights (checkpoint.py checks those);
resuming also needs train_config, optimizer, schedule, progress and rng. Each problem is one
CheckpointError naming the file and the entry; the entries' values are checked where they are
loaded too (TrainConfig, Optimizer/Schedule.load_state_dict, rng.set_rng_state).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import backend, distributed, rng
from ..data import TokenBatcher
from ..errors import ConfigError
from ..nn import Seq2SeqTransformer
from ..optim import Optimizer
from ..optim.schedules import Schedule
from ..serialization import CheckpointError
from ..tokenizer import BPETokenizer
from .checkpoint import load_checkpoint
from .config import FIXED_ON_RESUME, MODEL_SETTINGS, Progress, TrainConfig

RESUME_KEYS = ("model_config", "tokenizer", "train_config", "schedule", "progress", "rng")


def check_resumable(path: str | Path, meta: dict[str, Any], optimizer_state: Any,
                    progress_fields: Sequence[str]) -> None:
    """Every entry that resuming reads is present, progress has all its fields, rng has the layout
    of this generator's state."""
    missing = [key for key in RESUME_KEYS if key not in meta] + ["optimizer"] * (optimizer_state is None)
    if missing:
        raise CheckpointError(f"checkpoint {path} holds no training state ({', '.join(missing)} missing): it can "
                              "be used to translate but not to resume")
    absent = [name for name in progress_fields if name not in meta["progress"]]
    if absent:
        raise CheckpointError(f"checkpoint {path}: progress lacks {absent}")
    try:
        rng.check_rng_state(meta["rng"])
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from None


def check_optimizer_settings(path: str | Path, optimizer_state: dict[str, Any], used: dict[str, Any]) -> None:
    """The saved parameter groups' flags must be those the trainer's optimizer uses (`used`, its
    defaults), and their rates finite and > 0 (the ranges themselves: Optimizer.load_state_dict)."""
    groups = optimizer_state.get("param_groups", [])
    for i, group in enumerate(groups if isinstance(groups, list) else []):
        if not isinstance(group, dict):
            continue  # load_state_dict names it
        for key in ("maximize", "decoupled_weight_decay"):
            if key in group and group[key] != used[key]:
                raise CheckpointError(f"checkpoint {path}: optimizer.param_groups[{i}].{key} is {group[key]!r}, "
                                      f"the trainer's optimizer uses {used[key]!r}")
        lr = group.get("lr", 1.0)
        if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
            raise CheckpointError(f"checkpoint {path}: optimizer.param_groups[{i}].lr must be a finite number > 0, "
                                  f"got {lr!r}")


def check_same_model(path: str | Path, stored: dict[str, Any], built: dict[str, Any]) -> None:
    """The model that train_config builds (`built`) must be the one saved (`stored` model_config);
    only the model settings that are not fixed on resume (dropout) may differ."""
    free = set(MODEL_SETTINGS) - set(FIXED_ON_RESUME)
    for key, value in built.items():
        if key not in free and key in stored and stored[key] != value:
            raise CheckpointError(f"checkpoint {path}: model_config.{key} is {stored[key]!r}, but its train_config "
                                  f"builds a model with {value!r}")


BATCH_PLAN_DATA = ("src_train", "tgt_train", "train_tsv", "bpe_dropout")
"""The training data's settings besides those fixed on resume (seed, synthetic sizes, max_len),
and the BPE-dropout that re-encodes it each epoch: with the tokens a step, they define an epoch's
batches (a checkpoint that lacks one was saved before it existed: it had the default)."""


def check_same_batches(path: str | Path, saved: dict[str, Any], saved_processes: int | None, config: Any,
                       processes: int, progress: dict[str, Any]) -> None:
    """A run stopped in the middle of an epoch (progress.batch > 0) continues that epoch's batch
    plan: its training files and its tokens a step (max_tokens x processes x accumulate, which
    agreement.check_resumed_processes lets a different process count keep) must not change; at an
    epoch boundary they may. ConfigError naming each change."""
    if progress["batch"] == 0:
        return
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    was = {name: saved.get(name, defaults[name]) for name in BATCH_PLAN_DATA}
    changed = [f"{name} {was[name]!r} -> {getattr(config, name)!r}" for name in BATCH_PLAN_DATA
               if was[name] != getattr(config, name)]
    before = saved["max_tokens"] * (saved_processes or processes) * saved["accumulate"]
    now = config.max_tokens * processes * config.accumulate
    if before != now:
        changed.append(f"tokens a step (max_tokens x processes x accumulate) {before} -> {now}")
    if changed:
        raise ConfigError(f"{path} stopped in the middle of epoch {progress['epoch'] + 1} (batch {progress['batch']}), "
                          f"whose remaining batches need the settings it was cut with, but {'; '.join(changed)}. "
                          "Resume with them unchanged; they can change at an epoch boundary (a checkpoint saved "
                          "at an epoch's end)")


def check_progress_fits(path: str | Path, progress: dict[str, Any], batches: int, schedule_steps: int,
                        optimizer_entries: int, parameters: int) -> None:
    """The saved progress must fit the rebuilt run: its next batch lies in the epoch's plan of
    `batches` (== batches: stopped after the epoch's last step, before evaluating it), the schedule
    took a step with each training step, and after any step the optimizer holds the moments of all
    `parameters` (it holds `optimizer_entries`)."""
    if progress["batch"] > batches:
        raise CheckpointError(f"checkpoint {path}: progress.batch is {progress['batch']}, but epoch "
                              f"{progress['epoch'] + 1} of this data has {batches} batch(es)")
    if schedule_steps != progress["step"]:
        raise CheckpointError(f"checkpoint {path}: schedule.steps is {schedule_steps}, but progress.step is "
                              f"{progress['step']} (the schedule steps with every training step)")
    if progress["step"] > 0 and optimizer_entries != parameters:
        raise CheckpointError(f"checkpoint {path}: optimizer.state holds the moments of {optimizer_entries} of the "
                              f"{parameters} parameters after progress.step {progress['step']} steps (resuming "
                              "would restart their averages)")


def check_tokenizer_size(path: str | Path, vocab_size: int, tokenizer_size: int) -> None:
    """A tokenizer trained to train_config.vocab_size has at most that many tokens (fewer only when
    its corpus ran out of pairs to merge)."""
    if tokenizer_size > vocab_size:
        raise CheckpointError(f"checkpoint {path}: train_config.vocab_size is {vocab_size}, but its tokenizer has "
                              f"{tokenizer_size} tokens")


@dataclass
class SavedRun:
    """A checkpoint read for resuming, and the settings the resumed run trains with."""

    path: str
    config: TrainConfig  # the saved settings with the overrides
    tokenizer: BPETokenizer
    same_folder: bool  # the run goes on in the checkpoint's folder
    model_state: dict[str, np.ndarray]
    meta: dict[str, Any]
    optimizer_state: dict[str, Any]


def open_run(path: str, overrides: dict[str, Any]) -> SavedRun:
    """Read and check checkpoint `path` and combine its train_config with `overrides`: one in
    FIXED_ON_RESUME that differs from the checkpoint raises ConfigError."""
    model_state, meta, optimizer_state = load_checkpoint(path)
    check_resumable(path, meta, optimizer_state, [f.name for f in dataclasses.fields(Progress)])
    saved = meta["train_config"]
    saved_config = _saved_config(path, saved)
    # The run goes on next to the checkpoint, or into the given out_dir: never into a folder the
    # file names (a copied checkpoint would write into the original's, a crafted one anywhere).
    out_dir = overrides.get("out_dir", str(Path(path).parent))
    config = TrainConfig.from_dict({**saved, **overrides, "out_dir": out_dir},
                                   source=str(path) + " with the given settings" * bool(overrides))
    changed = [f"{k} {getattr(saved_config, k)!r} -> {getattr(config, k)!r}" for k in FIXED_ON_RESUME
               if getattr(config, k) != getattr(saved_config, k)]
    if changed:
        raise ConfigError(f"resuming {path} continues its model and data, whose settings cannot change: "
                          + ", ".join(changed))
    try:
        tokenizer = BPETokenizer.from_dict(meta["tokenizer"], source=str(path))
    except (KeyError, TypeError, ValueError) as exc:  # the file's data, not a bug here
        raise CheckpointError(f"checkpoint {path}: its tokenizer is malformed ({exc})") from exc
    check_tokenizer_size(path, saved_config.vocab_size, tokenizer.vocab_size)
    same_folder = Path(config.out_dir).resolve() == Path(path).resolve().parent
    return SavedRun(str(path), config, tokenizer, same_folder, model_state, meta, optimizer_state)


def restore(run: SavedRun, model: Seq2SeqTransformer, optimizer: Optimizer, schedule: Schedule, batcher: TokenBatcher,
            processes: int) -> Progress:
    """Check that the rebuilt run (on `processes` processes) continues the saved one, load the saved
    weights, optimizer, schedule and random state into it, and return the saved progress."""
    path, meta, saved = run.path, run.meta, run.meta["train_config"]
    distributed.check_resumed_processes(path, saved, meta.get("processes"), run.config, processes)
    check_same_batches(path, saved, meta.get("processes"), run.config, processes, meta["progress"])
    check_same_model(path, meta["model_config"], model.config.to_dict())
    check_optimizer_settings(path, run.optimizer_state, optimizer.defaults)
    try:  # each checks every value before it changes anything
        model.load_state_dict(run.model_state, cast=True)  # float16/64 weights; the optimizer casts its own
        optimizer.load_state_dict(run.optimizer_state)
        schedule.load_state_dict(meta["schedule"])
        rng.set_rng_state(meta["rng"])
    except ValueError as exc:  # weights or state that do not fit the saved configuration or its ranges
        raise CheckpointError(f"checkpoint {path}: {exc}") from exc
    progress = meta["progress"]
    check_progress_fits(path, progress, len(batcher.plan(progress["epoch"])), schedule.steps,
                        len(optimizer.state), len(list(model.parameters())))
    return Progress(**progress)


def _saved_config(path: str, saved: dict[str, Any]) -> TrainConfig:
    """A checkpoint's train_config through TrainConfig's checks (types, ranges), as CheckpointError;
    the settings that define the model must be there (a default would build another model)."""
    missing = [name for name in FIXED_ON_RESUME if name not in saved]
    if missing:
        raise CheckpointError(f"checkpoint {path}: train_config lacks {missing}")
    try:
        return TrainConfig.from_dict(saved, source=f"checkpoint {path}: train_config")
    except ConfigError as exc:  # (from_dict names the file)
        raise CheckpointError(str(exc)) from None
    except backend.DeviceError as exc:
        raise CheckpointError(f"checkpoint {path}: train_config.device: {exc}") from None
