"""TrainConfig and Progress state each fact once, in their fields: a setting added in one place
flows into validation, from_dict, the CLI's flags, FIXED_ON_RESUME and the checkpoint schema."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

import minitf.cli
from minitf.config import fields_with, setting, spec_of
from minitf.errors import ConfigError
from minitf.nn import TransformerConfig
from minitf.translation import DEMO_CONFIG, TrainConfig
from minitf.translation.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minitf.translation.checkpoint import schema
from minitf.translation.config import FIXED_ON_RESUME, MODEL_SETTINGS, Progress, model_config


@dataclass
class WithEvalBeam(TrainConfig):
    """TrainConfig with one more setting, written once: type, default, bounds, tag and help."""

    eval_beam: int = setting(1, low=1, high=16, fixed_on_resume=True, help="beam size of the validation translations")


def test_a_new_field_is_validated_and_read_from_a_dict():
    assert WithEvalBeam().eval_beam == 1 and WithEvalBeam(eval_beam=4).eval_beam == 4
    with pytest.raises(ConfigError, match=r"setting 'eval_beam' must be an integer in 1 \.\. 16, got 17"):
        WithEvalBeam(eval_beam=17)
    assert WithEvalBeam.from_dict({"eval_beam": 3}, source="my.json").eval_beam == 3
    with pytest.raises(ConfigError, match=r"my\.json: setting 'eval_beam' must be an integer, got str 'x'"):
        WithEvalBeam.from_dict({"eval_beam": "x"}, source="my.json")
    with pytest.raises(ConfigError, match="unknown setting 'eval_beam'"):  # the base class does not have it
        TrainConfig.from_dict({"eval_beam": 3})
    assert fields_with(WithEvalBeam, "fixed_on_resume") == FIXED_ON_RESUME + ("eval_beam",)


def test_a_new_field_gets_a_train_flag(monkeypatch, capsys):
    monkeypatch.setattr(minitf.cli, "TrainConfig", WithEvalBeam)
    monkeypatch.setattr(minitf.cli, "DEMO_CONFIG", WithEvalBeam(**DEMO_CONFIG.to_dict(), eval_beam=2))
    with pytest.raises(SystemExit):
        minitf.cli.main(["train", "--help"])
    assert "beam size of the validation translations (default 1; demo 2)" in " ".join(capsys.readouterr().out.split())
    built = []

    class Capture:
        def __init__(self, config, **kwargs):
            built.append(config)
            raise ConfigError("captured")

    monkeypatch.setattr(minitf.cli, "Trainer", Capture)
    assert minitf.cli.main(["train", "--eval-beam", "5", "--max-steps", "3"]) == 1
    assert isinstance(built[0], WithEvalBeam) and (built[0].eval_beam, built[0].max_steps) == (5, 3)
    assert minitf.cli.main(["train", "--eval-beam", "99"]) == 1
    assert "flags: setting 'eval_beam' must be an integer in 1 .. 16, got 99" in capsys.readouterr().err


def test_a_new_field_is_in_the_checkpoint_schema(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "TrainConfig", WithEvalBeam)
    weights = {"w": np.zeros((2, 2), np.float32)}
    path = save_checkpoint(tmp_path / "last.safetensors", weights, {"train_config": {"eval_beam": 99}})
    with pytest.raises(CheckpointError, match=f"checkpoint {path}: train_config.eval_beam must be an integer in "
                                              r"1 \.\. 16, got 99"):
        load_checkpoint(path)
    ok = save_checkpoint(tmp_path / "ok.safetensors", weights, {"train_config": {"eval_beam": 4}})
    assert load_checkpoint(ok)[1]["train_config"] == {"eval_beam": 4}


def test_the_lists_are_derived_from_the_fields():
    model_fields = {f.name for f in dataclasses.fields(TransformerConfig)}
    assert set(MODEL_SETTINGS) <= model_fields and "max_len" not in MODEL_SETTINGS  # (its own meaning here)
    for name in MODEL_SETTINGS:  # a model setting's default, bounds and help are the model's
        ours = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
        theirs = next(f for f in dataclasses.fields(TransformerConfig) if f.name == name)
        assert ours.default == theirs.default and spec_of(ours).help == spec_of(theirs).help
    config = TrainConfig(d_model=64, n_heads=8, dropout=0.25, activation="gelu")
    model = model_config(config, 300, pad_id=0)
    assert all(getattr(model, name) == getattr(config, name) for name in MODEL_SETTINGS)
    assert "dropout" not in FIXED_ON_RESUME and {"d_model", "vocab_size", "seed"} <= set(FIXED_ON_RESUME)
    assert [f.name for f in dataclasses.fields(Progress)] == list(Progress().__dict__)


def test_progress_bounds_are_the_checkpoint_loaders(tmp_path):
    weights = {"w": np.zeros((2, 2), np.float32)}
    path = save_checkpoint(tmp_path / "p.safetensors", weights, {"progress": {"epoch": -1}})
    with pytest.raises(CheckpointError, match=f"checkpoint {path}: progress.epoch must be an integer in 0 .. "):
        load_checkpoint(path)
    path = save_checkpoint(tmp_path / "q.safetensors", weights, {"progress": dataclasses.asdict(Progress())})
    assert load_checkpoint(path)[1]["progress"]["best_score"] == -np.inf
