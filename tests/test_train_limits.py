"""The settings TrainConfig accepts against the caps the checkpoint loader applies (one table:
minitf/translate/limits.py), and the limits on memory, accumulation and input lines."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from minitf.errors import ConfigError
from minitf.train import TrainConfig, model_config
from minitf.translate.checkpoint import CheckpointError, check_model_config
from minitf.translate.limits import LIMITS, TRAIN_CAPS, model_max_len

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
    with pytest.raises(ConfigError, match=f"'{name}' must be at most {cap:,}"):
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
    assert f"'{flag[2:].replace('-', '_')}' must be at most {cap:,}" in err[0]
    assert not (tmp_path / "run").exists()
