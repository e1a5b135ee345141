"""The settings TrainConfig accepts against the caps the checkpoint loader applies (one table:
minitf/translation/limits.py), and the limits on memory, accumulation and input lines."""
from __future__ import annotations

import os
import random
import time
import types
from pathlib import Path

import pytest

from minitf.errors import ConfigError
from minitf.translation import Trainer, TrainConfig
from minitf.translation.config import TRAIN_CAPS, model_config
from minitf.translation.checkpoint import CheckpointError
from minitf.translation.checkpoint.schema import check_model_config
from minitf.translation.limits import LIMITS, model_max_len
from tiny_runs import quiet, tiny_config

SMALLEST = dict(vocab_size=300, max_len=1, d_model=1, n_heads=1, n_encoder_layers=1, n_decoder_layers=1, d_ff=1)


def loader_accepts(config: TrainConfig) -> None:
    """The trainer's model configuration passes the checkpoint checker (raises CheckpointError if not)."""
    check_model_config(Path("run.safetensors"), model_config(config, config.vocab_size, pad_id=0).to_dict())


@pytest.mark.parametrize("name", sorted(TRAIN_CAPS))
def test_each_setting_at_its_cap_is_accepted_by_both_and_one_more_is_refused_up_front(name):
    cap = TRAIN_CAPS[name]
    values = {**SMALLEST, name: cap}
    if name == "n_heads":
        values["d_model"] = cap
    loader_accepts(TrainConfig(**values))
    values[name] = cap + 1
    with pytest.raises(ConfigError, match=f"'{name}' must be an integer in 1 .. {cap}, got {cap + 1}"):
        TrainConfig(**values)


def test_every_config_trainconfig_accepts_gives_a_model_the_loader_accepts():
    rng = random.Random(0)
    accepted = refused = 0
    for _ in range(400):
        values = dict(SMALLEST)
        for name, cap in TRAIN_CAPS.items():
            values[name] = rng.choice([SMALLEST[name], cap, cap + 1, rng.randint(SMALLEST[name], cap)])
        if values["d_model"] % values["n_heads"]:
            values["n_heads"] = rng.choice([1, values["d_model"]])
        try:
            config = TrainConfig(**values)
        except ConfigError:
            refused += 1
            continue
        loader_accepts(config)
        accepted += 1
    assert accepted > 20 and refused > 20  # both sides of the boundary were drawn


def test_the_largest_max_len_with_the_widest_model_its_position_table_allows():
    max_len = TRAIN_CAPS["max_len"]
    d_model = LIMITS["position_table"] // model_max_len(max_len)
    loader_accepts(TrainConfig(**{**SMALLEST, "max_len": max_len, "d_model": d_model}))
    with pytest.raises(ConfigError, match="'max_len' .* 'd_model' .* position table"):
        TrainConfig(**{**SMALLEST, "max_len": max_len, "d_model": d_model + 1})
    with pytest.raises(CheckpointError):  # the loader refuses that model, so TrainConfig must
        config = model_config(TrainConfig(**{**SMALLEST, "max_len": max_len, "d_model": d_model}), 300, 0)
        check_model_config(Path("run.safetensors"), {**config.to_dict(), "d_model": d_model + 1})


@pytest.mark.parametrize("flag, value, cap", [("--max-len", "40000", TRAIN_CAPS["max_len"]),
                                              ("--vocab-size", "2000000", TRAIN_CAPS["vocab_size"])])
def test_cli_refuses_settings_whose_checkpoint_would_not_load(capsys, tmp_path, flag, value, cap):
    from minitf.cli import main
    assert main(["train", flag, value, "--out-dir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("minitf: error:")
    assert f"'{flag[2:].replace('-', '_')}' must be an integer in 1 .. {cap}" in err[0]
    assert not (tmp_path / "run").exists()


# ---- memory and accumulation ----------------------------------------------------------------

def test_a_model_that_cannot_fit_is_refused_before_any_data_is_read(tmp_path):
    missing = str(tmp_path / "no-such-file")  # reading it would raise FileNotFoundError instead
    config = TrainConfig(src_train=missing, tgt_train=missing, src_val=missing, tgt_val=missing,
                         d_model=4096, n_heads=8, d_ff=TRAIN_CAPS["d_ff"], n_encoder_layers=64, n_decoder_layers=64,
                         out_dir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"needs at least [\d,.]+ GiB of memory on cpu .* only [\d,.]+ GiB"):
        Trainer(config, log=quiet)
    assert not (tmp_path / "run").exists()


def test_the_estimate_is_compared_with_the_available_memory(tmp_path, monkeypatch):
    from minitf.translation import memory
    config = tiny_config(tmp_path)
    weights, activations = memory.training_bytes(
        model_config(config, min(config.vocab_size, 259), 0), config.max_tokens)
    assert weights > 4 * 4 * 32 * 32 and activations > 4 * config.max_tokens * 32  # grows with the model
    monkeypatch.setattr(memory, "available_bytes", lambda device: weights + activations - 1)
    with pytest.raises(ConfigError, match=f"only {(weights + activations - 1) / 2**30:,.2f} GiB is available"):
        Trainer(config, log=quiet)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 100 * (weights + activations))
    Trainer(config, log=quiet)


def test_available_memory_reads_the_host_or_asks_cupy_for_a_gpu(monkeypatch):
    from minitf import backend
    from minitf.translation.memory import available_bytes
    host = available_bytes("cpu")
    assert host is not None and 0 < host <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=types.SimpleNamespace(
        memGetInfo=lambda: (123 << 20, 456 << 20))))
    monkeypatch.setattr(backend, "cupy", lambda: fake)
    assert available_bytes("cuda") == 123 << 20


def test_accumulate_is_capped_by_the_training_pairs(tmp_path):
    with pytest.raises(ConfigError, match="'accumulate' must be at most the 400 synthetic training pairs"):
        tiny_config(tmp_path, accumulate=10**9)
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("eins\tone\nzwei\ttwo\ndrei\tthree\n")
    data = dict(train_tsv=str(tsv), val_tsv=str(tsv))
    with pytest.raises(ConfigError, match="'accumulate' must be at most 3 here: each of a step's 4 x 1 micro"):
        Trainer(tiny_config(tmp_path / "a", accumulate=4, **data), log=quiet)
    trainer = Trainer(tiny_config(tmp_path / "b", accumulate=3, **data), log=quiet)
    batch = trainer.batcher.batch(trainer.batcher.plan(0)[0])
    assert [part.size for part in trainer._micro_batches(batch)] == [1, 1, 1]
    trainer.config.accumulate = 10**9  # (a stored value, say): no loop over a billion empty micro-batches
    started = time.perf_counter()
    assert [part.size for part in trainer._micro_batches(batch)] == [1, 1, 1]
    assert time.perf_counter() - started < 1.0
