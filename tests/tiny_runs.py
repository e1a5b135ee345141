"""Shared set-up for the training, checkpoint, translator and CLI tests (holds no tests itself).

Import what a test module needs: `from tiny_runs import tiny_config, ...` (pytest puts
tests/ on sys.path). Everything is sized so that a training step takes milliseconds on a CPU.
"""
from __future__ import annotations

import json

import numpy as np

from minitf.nn import TransformerConfig
from minitf.tokenizer import BPETokenizer
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


def write_config(path, settings: dict) -> str:
    path.write_text(json.dumps(settings), encoding="utf-8")
    return str(path)


def train_argv(tmp_path, *extra) -> list:
    """`minitf train` on the tiny synthetic task (sizes via --config, the model via flags)."""
    config = write_config(tmp_path / "config.json", {"synthetic_sizes": [400, 40, 40], "d_model": 64})
    return ["train", "--config", config, *TINY_FLAGS, "--out-dir", tmp_path / "run", "--epochs", 1, *extra]


# A bare tokenizer (259 tokens, nothing to train) and a model for it, for checkpoint and decoding tests.
TINY_TOKENIZER = BPETokenizer(special_tokens=["<pad>", "<bos>", "<eos>"])
TINY_MODEL_CONFIG = TransformerConfig(
    src_vocab_size=TINY_TOKENIZER.vocab_size, tgt_vocab_size=TINY_TOKENIZER.vocab_size, d_model=4, n_heads=2,
    n_encoder_layers=1, n_decoder_layers=1, d_ff=6, max_len=16, dropout=0.0, pad_id=TINY_TOKENIZER.special_id("<pad>"))
