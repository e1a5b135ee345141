"""Shared set-up for the training, checkpoint, translator and CLI tests (holds no tests itself).

Import what a test module needs: `from test_trainer_common import tiny_config, ...` (pytest puts
tests/ on sys.path). Everything is sized so that a training step takes milliseconds on a CPU.
"""
from __future__ import annotations

import numpy as np

from minitf.translation import Trainer, TrainConfig

# A model and synthetic task small enough that a step takes a few milliseconds on one core.
TINY_SETTINGS = dict(
    synthetic_sizes=(400, 40, 40), vocab_size=300, max_len=40, max_tokens=512, d_model=32, n_heads=2,
    n_encoder_layers=1, n_decoder_layers=1, d_ff=64, dropout=0.0, epochs=2, warmup=20, lr=3e-3,
    bleu_sentences=5, log_every=5,
)

# The model settings as `minitf train` flags; synthetic_sizes has no flag (use --config).
TINY_FLAGS = ["--vocab-size", "300", "--max-tokens", "512", "--d-model", "32",
              "--n-heads", "2", "--n-encoder-layers", "1", "--n-decoder-layers", "1", "--d-ff", "64",
              "--warmup", "20", "--lr", "3e-3", "--bleu-sentences", "5"]


def tiny_config(out_dir, **overrides) -> TrainConfig:
    """TINY_SETTINGS writing to `out_dir`, with `overrides`."""
    return TrainConfig(**{**TINY_SETTINGS, "out_dir": str(out_dir), **overrides})


def quiet(message: str) -> None:
    """A log function that drops messages."""


def tiny_trainer(out_dir, **overrides) -> Trainer:
    return Trainer(tiny_config(out_dir, **overrides), log=quiet)


def parameters(trainer: Trainer) -> dict[str, np.ndarray]:
    return trainer.model.state_dict(remove_duplicate=True)  # each parameter once, as checkpoints hold them


def assert_same_parameters(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    different = [name for name in a if not np.array_equal(a[name], b[name])]
    assert not different, f"{len(different)} of {len(a)} parameters differ, e.g. {different[:3]}"
