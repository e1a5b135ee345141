"""The caps of a translation run: one table that TrainConfig, the trainer and the checkpoint loader read.

A setting that `minitf train` accepts must give a model whose checkpoint the loader accepts,
so both check against LIMITS (the model's own caps, nn.MODEL_LIMITS, and the application's),
and the trainer's position count is derived here once.
"""
from __future__ import annotations

from ..errors import ConfigError
from ..nn import MODEL_LIMITS

LIMITS = {**MODEL_LIMITS, "synthetic_pairs": 1_000_000}
"""MODEL_LIMITS (what a model, and so a checkpoint, may declare), and the pairs of the synthetic task."""

PROGRESS_CAP = 1 << 31
"""The most epochs, batches, steps (and bad epochs) a checkpoint's progress may count: far above any run."""
TRAIN_SECONDS_CAP = 1e12  # seconds of training a checkpoint may count (some 30,000 years)

POSITION_MARGIN = 16  # positions beyond the two sentences' 2 max_len, for BOS/EOS and longer outputs


def model_max_len(max_len: int) -> int:
    """The positions of a trainer's model for sentences of at most `max_len` tokens: 2 max_len + 16
    (evaluation and translation may run longer than the training pairs)."""
    return 2 * max_len + POSITION_MARGIN


MAX_TRAIN_LEN = (LIMITS["max_len"] - POSITION_MARGIN) // 2
"""The largest TrainConfig.max_len whose model_max_len is within LIMITS["max_len"]."""


def check_accumulate(accumulate: int, processes: int, pairs: int) -> None:
    """Raise ConfigError unless each of a step's accumulate x processes micro-batches can hold one
    of the `pairs` training pairs (a step's batch has at most all of them)."""
    if accumulate * processes > pairs:
        raise ConfigError(f"setting 'accumulate' must be at most {pairs // processes:,} here: each of a step's "
                          f"{accumulate:,} x {processes} micro-batches needs at least one of the {pairs:,} "
                          "training pairs")
