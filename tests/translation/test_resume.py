"""A real checkpoint with one entry of its metadata, optimizer state or weights spoiled: resuming
(and translating, where that entry matters to it) raises one CheckpointError naming the entry,
and `minitf train --resume` prints it as one error line (exit 1), never a traceback."""
from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest

from minitf.cli import main
from minitf.errors import ConfigError
from minitf.translation import Trainer
from minitf.translation.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minitf.translation.translator import Translator
from tiny_runs import quiet, tiny_config


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """(model state, meta, optimizer state) of a tiny model after two training steps."""
    out = tmp_path_factory.mktemp("run")
    trainer = Trainer(tiny_config(out, max_steps=2), log=quiet)
    for indices in trainer.batcher.plan(0)[:2]:
        trainer.train_step(trainer.batcher.batch(indices))
        trainer.progress.step += 1
    return load_checkpoint(trainer.save("last"))


def first(d):
    return next(iter(d))


def setter(where, key, value):
    def mutate(model, meta, optim):
        target = {"model": model, "meta": meta, "optim": optim}[where.split(".")[0]]
        for part in where.split(".")[1:]:
            target = target[int(part) if isinstance(target, list) else part]
        target[key] = value
    return mutate


def deleter(where, key):
    def mutate(model, meta, optim):
        target = {"meta": meta, "optim": optim}[where.split(".")[0]]
        for part in where.split(".")[1:]:
            target = target[part]
        del target[key]
    return mutate


def spoil_state(name, make):
    def mutate(model, meta, optim):
        entry = optim["state"][first(optim["state"])]
        entry[name] = make(entry[name])
    return mutate


def nan_weight(model, meta, optim):
    model[first(model)][0, 0] = np.nan


def state_as_list(model, meta, optim):
    optim["state"] = list(optim["state"].values())


# (id, mutation, what the error must name, whether translation uses that entry)
MUTATIONS = [
    ("rng missing", deleter("meta", "rng"), "rng missing", False),
    ("rng empty", setter("meta", "rng", {}), "rng must be a dict with keys", False),
    ("rng other generator", setter("meta.rng", "bit_generator", "MT19937"), "rng.bit_generator", False),
    ("rng state a string", setter("meta.rng.state", "state", "abc"), "rng.state.state", False),
    ("schedule missing", deleter("meta", "schedule"), "schedule missing", False),
    ("schedule steps -1", setter("meta.schedule", "steps", -1), "schedule.steps", False),
    ("schedule base_lr 0", setter("meta.schedule", "base_lr", 0.0), "schedule.base_lr", False),
    ("schedule base_lr -1", setter("meta.schedule", "base_lr", -1.0), "schedule.base_lr", False),
    ("progress missing", deleter("meta", "progress"), "progress missing", False),
    ("progress without step", deleter("meta.progress", "step"), "progress lacks ['step']", False),
    ("progress epoch -1", setter("meta.progress", "epoch", -1), "progress.epoch", True),  # (checked on loading)
    ("optimizer missing", lambda model, meta, optim: optim.clear(), "optimizer", False),
    ("optimizer step -1", spoil_state("step", lambda v: -1), "'step' of parameter", False),
    ("optimizer step 1.5", spoil_state("step", lambda v: 1.5), "'step' of parameter", False),
    ("optimizer state a list", state_as_list, "optimizer.state must be a dict", False),
    ("optimizer moment nan", spoil_state("exp_avg", lambda v: v * np.nan), "'exp_avg' of parameter", False),
    ("optimizer moment shape", spoil_state("exp_avg_sq", lambda v: v[:1]), "exp_avg_sq", False),  # (translate skips it)
    ("optimizer lr 0", setter("optim.param_groups.0", "lr", 0.0), "param_groups[0].lr", False),
    ("optimizer maximize", setter("optim.param_groups.0", "maximize", True), "param_groups[0].maximize", False),
    ("optimizer betas", setter("optim.param_groups.0", "betas", [0.9, 1.5]), "beta", False),
    ("optimizer eps -1", setter("optim.param_groups.0", "eps", -1.0), "epsilon", False),
    ("optimizer weight_decay", setter("optim.param_groups.0", "weight_decay", -1.0), "weight_decay", False),
    ("train_config accumulate 1e9", setter("meta.train_config", "accumulate", 10**9), "'accumulate'", False),
    ("train_config lr -1", setter("meta.train_config", "lr", -1.0), "'lr'", False),
    ("train_config without max_len", deleter("meta.train_config", "max_len"), "lacks ['max_len']", False),
    ("train_config seed a string", setter("meta.train_config", "seed", "x"), "'seed'", False),
    ("train_config device tpu", setter("meta.train_config", "device", "tpu"), "train_config.device: unknown device",
     False),
    ("model_config max_len not train_config's", setter("meta.model_config", "max_len", 97), "model_config.max_len",
     False),
    ("history entry without step", setter("meta.progress", "history", [{"val_loss": 1.0}]),
     "progress.history[0].step is required", True),
    ("history step a string", setter("meta.progress", "history", [{"step": "x"}]), "progress.history[0].step", True),
    ("history step after progress.step", setter("meta.progress", "history", [{"step": 3}]),
     "progress.history[0].step", True),
    ("history bleu a string", setter("meta.progress", "history", [{"step": 1, "bleu": "x"}]),
     "progress.history[0].bleu", True),
    ("history unknown key", setter("meta.progress", "history", [{"step": 1, "x": [1]}]),
     "unknown progress.history[0].x", True),
    ("progress epoch 1e18", setter("meta.progress", "epoch", 10**18), "progress.epoch", True),
    ("progress step 1e30", setter("meta.progress", "step", 10**30), "progress.step", True),
    ("progress train_seconds inf", setter("meta.progress", "train_seconds", float("inf")),
     "progress.train_seconds", True),
    ("progress best_score inf", setter("meta.progress", "best_score", float("inf")), "progress.best_score", True),
    ("progress batch 1e9", setter("meta.progress", "batch", 10**9), "progress.batch is 1000000000", False),
    ("rng has_uint32 5", setter("meta.rng", "has_uint32", 5), "rng.has_uint32", False),
    ("rng inc even", setter("meta.rng.state", "inc", 2), "rng.state.inc", False),
    ("schedule steps not progress.step", setter("meta.schedule", "steps", 10**30), "schedule.steps is 10", False),
    ("schedule unknown key", setter("meta.schedule", "extra", 1), "schedule has unknown key(s) ['extra']", False),
    ("optimizer state empty", setter("optim", "state", {}), "optimizer.state holds the moments of 0", False),
    ("tokenizer larger than vocab_size",
     lambda model, meta, optim: meta["train_config"].update(vocab_size=meta["model_config"]["src_vocab_size"] - 1),
     "train_config.vocab_size", False),
    ("weight nan", nan_weight, "holds nan or inf", True),
    ("pad_id not the tokenizer's", setter("meta.model_config", "pad_id", 3), "pad_id 3", True),
    ("tokenizer missing", deleter("meta", "tokenizer"), "tokenizer", True),
    ("model_config missing", deleter("meta", "model_config"), "model_config", True),
]


def spoiled(real, tmp_path, mutate):
    model, meta, optim = copy.deepcopy(real)
    meta["train_config"]["out_dir"] = str(tmp_path)
    mutate(model, meta, optim)
    return save_checkpoint(tmp_path / "last.safetensors", model, meta, optim or None)


@pytest.mark.parametrize("mutate, names, translating", [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_a_spoiled_entry_is_one_checkpoint_error_naming_it(real, tmp_path, capsys, mutate, names, translating):
    path = spoiled(real, tmp_path, mutate)
    with pytest.raises(CheckpointError, match=str(path)) as info:
        Trainer.from_checkpoint(str(path), log=quiet)
    assert names in str(info.value)
    if translating:
        with pytest.raises(CheckpointError, match=re.escape(names.split()[0])):
            Translator.from_checkpoint(str(path))
    else:  # the training state does not matter to translation
        assert Translator.from_checkpoint(str(path)).translate(["one"])
    capsys.readouterr()
    assert main(["train", "--resume", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("minitf: error: checkpoint") and names in err[0], err


def test_the_unspoiled_checkpoint_resumes(real, tmp_path):
    path = spoiled(real, tmp_path, lambda model, meta, optim: None)
    assert Trainer.from_checkpoint(str(path), log=quiet).progress.step == 2


@pytest.mark.parametrize("key, value", [("betas", 5), ("eps", "x"), ("lr", -1.0), ("steps", "bad"), ("steps", [1])])
def test_a_spoiled_version_1_optimizer_state_is_one_checkpoint_error(real, tmp_path, key, value):
    from minitf.translation.checkpoint.npz import legacy_adam_state
    from legacy_checkpoints import save_v1
    model, meta, optim = copy.deepcopy(real)
    meta = {k: v for k, v in meta.items() if k not in ("format", "version")}
    meta["train_config"]["out_dir"] = str(tmp_path)
    path = save_v1(tmp_path / "last.npz", model, meta, legacy_adam_state(optim))
    arrays = dict(np.load(path))  # the scalar entries live in the JSON metadata: rewrite them there
    saved = json.loads(arrays["meta"].tobytes())
    saved["optimizer"][key] = value
    arrays["meta"] = np.frombuffer(json.dumps(saved).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=f"checkpoint {path}"):
        Trainer.from_checkpoint(str(path), log=quiet)


def with_shape(path, name, shape):
    """The safetensors file at `path` with array `name` declared as `shape` and its bytes removed (the
    other arrays' offsets shifted, so that the layout stays valid)."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    start, end = header[name]["data_offsets"]
    for key, spec in header.items():
        if key != "__metadata__" and spec["data_offsets"][0] >= end:
            spec["data_offsets"] = [offset - (end - start) for offset in spec["data_offsets"]]
    header[name].update(shape=shape, data_offsets=[start, start])
    body = json.dumps(header).encode()
    body += b" " * (-len(body) % 8)
    path.write_bytes(len(body).to_bytes(8, "little") + body + data[:start] + data[end:])
    return path


@pytest.mark.parametrize("shape", [[0, 10**30], [2**62, 0]])
def test_an_optimizer_array_of_no_parameter_s_shape_is_refused_before_it_is_read(real, tmp_path, capsys, shape):
    path = spoiled(real, tmp_path, lambda model, meta, optim: None)
    with_shape(path, "optimizer.state.0.exp_avg", shape)
    with pytest.raises(CheckpointError, match=r"array 'optimizer.state.0.exp_avg' has shape "):
        load_checkpoint(path)
    assert main(["train", "--resume", str(path)]) == 1
    assert capsys.readouterr().err.count("minitf: error: checkpoint") == 1


def test_a_weight_of_an_impossible_shape_is_refused_also_without_model_config(real, tmp_path):
    def bare(model, meta, optim):  # weights alone: no model_config and no optimizer state bound them
        del meta["model_config"]
        optim.clear()
    path = spoiled(real, tmp_path, bare)
    with_shape(path, "model." + first(real[0]), [2**30, 0])  # a possible array, above LIMITS
    with pytest.raises(CheckpointError, match=f"parameter '{first(real[0])}' has shape .* above the limit"):
        load_checkpoint(path)


# ---- what may change on resume ----------------------------------------------------------------

def mid_epoch(model, meta, optim):
    meta["progress"]["batch"] = meta["progress"]["step"]  # the fixture's two steps were epoch 1's first


@pytest.mark.parametrize("change", [{"max_tokens": 2048}, {"accumulate": 2}])
def test_the_batch_plan_cannot_change_in_the_middle_of_an_epoch(real, tmp_path, capsys, change):
    path = spoiled(real, tmp_path, mid_epoch)
    with pytest.raises(ConfigError, match=r"middle of epoch 1 \(batch 2\).*tokens a step .*epoch boundary"):
        Trainer.from_checkpoint(str(path), log=quiet, **change)
    start = spoiled(real, tmp_path, lambda model, meta, optim: None)  # batch 0: an epoch boundary
    assert Trainer.from_checkpoint(str(start), log=quiet, **change).progress.step == 2
    flag, value = next(iter(change.items()))
    path = spoiled(real, tmp_path, mid_epoch)
    capsys.readouterr()
    assert main(["train", "--resume", str(path), f"--{flag.replace('_', '-')}", str(value)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "tokens a step" in err[0]


def test_the_training_files_cannot_change_in_the_middle_of_an_epoch(real, tmp_path):
    tsv = tmp_path / "data.tsv"
    tsv.write_text("".join(f"{a}\t{b}\n" for a, b in [("one", "eins"), ("two", "zwei"), ("three", "drei")] * 4))
    files = {"train_tsv": str(tsv), "val_tsv": str(tsv)}
    path = spoiled(real, tmp_path, mid_epoch)
    with pytest.raises(ConfigError, match=r"train_tsv None -> '.*data.tsv'"):
        Trainer.from_checkpoint(str(path), log=quiet, **files)
    start = spoiled(real, tmp_path, lambda model, meta, optim: None)
    assert Trainer.from_checkpoint(str(start), log=quiet, **files).config.train_tsv == str(tsv)


@pytest.mark.parametrize("change", [{"seed": 7}, {"synthetic_sizes": (300, 40, 40)}])
def test_the_seed_and_the_synthetic_data_never_change_on_resume(real, tmp_path, change):
    path = spoiled(real, tmp_path, lambda model, meta, optim: None)  # even at an epoch boundary
    name = next(iter(change))
    with pytest.raises(ConfigError, match=f"cannot change: {name} "):
        Trainer.from_checkpoint(str(path), log=quiet, **change)
